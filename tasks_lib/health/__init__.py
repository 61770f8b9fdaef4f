"""Is a task healthy: the error-rate verdict from its health source, the live checkup, the verdict history, stable marks, what to do about a breach."""
