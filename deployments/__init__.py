"""What serves the deployments of prefect.yaml on one machine (server, work pool, worker).

The one-command `clawback serve` arrives with the deployments issue; until then prefect.yaml is
deployed with `prefect deploy --all` against a running server and served by a process worker.
"""
