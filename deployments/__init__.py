"""What serves clawback's deployments.

- ``clawback serve`` (deployments/local.py): one command per machine: a Prefect server (started
  here unless one answers), the work pool and this machine's work queue, the deployments of
  prefect.yaml named after the machine, and a process worker; stopped in order on a signal.
  Several machines on one server: docs/scale-out.md.
- ``python -m deployments.serve --workspace DIR``: the flows served from one process against the
  server in ``PREFECT_API_URL`` (no work pool), as the end-to-end health tests use it.
"""
