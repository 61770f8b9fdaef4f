"""Prefect flows: composition of tasks_lib steps, transactions (explicit undo), artifacts.

Only this package and its thin ``@task`` wrappers import Prefect. Importing it changes nothing
in the process: the entry points (``clawback`` in clawback/cli.py, the test suite, bench/) call
``flows.runtime.quiet_defaults()`` themselves before Prefect is imported.
"""
