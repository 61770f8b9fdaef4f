"""Secrets never leave the workspace: which names and values are credentials, the file scanners, the masker, the pre-commit hook."""
