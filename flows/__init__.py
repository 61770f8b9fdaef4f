"""Prefect flows: composition of tasks_lib steps, transactions (explicit undo), artifacts.

Only this package and its thin ``@task`` wrappers import Prefect. Importing it changes nothing
in the process: ``flows.runtime.run`` (how every CLI command runs its flow), the test suite and
bench/ call ``flows.runtime.quiet_defaults()`` themselves before Prefect is imported.
"""
