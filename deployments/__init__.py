"""What serves clawback's deployments on one machine.

``python -m deployments.serve --workspace DIR`` serves the health (scheduled, automatic rollback
on), rollback, recover and snapshot flows from one process against the Prefect server in
``PREFECT_API_URL``. The one-command ``clawback serve`` (server, work pool, worker) arrives with
the deployments issue; prefect.yaml can also be deployed with ``prefect deploy --all`` and served
by a process worker.
"""
