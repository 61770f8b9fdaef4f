"""The clawback command line. The domain is in tasks_lib/, the flows in flows/."""
