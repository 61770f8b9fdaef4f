"""A task as it runs: its process, its pidfile, the runtime state files clawback never touches."""
