"""Foundations every other package stands on: errors and exit codes, ids, settings, the workspace, file access that never follows a link."""
