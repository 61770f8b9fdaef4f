"""Prefect flows: composition of tasks_lib steps, transactions (explicit undo), artifacts.

Only this package and its thin ``@task`` wrappers import Prefect.
"""

from flows.runtime import quiet_defaults

quiet_defaults()  # before anything here imports Prefect, which reads them at import
