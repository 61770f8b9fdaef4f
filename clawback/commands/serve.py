"""``clawback serve``: server, deployments and worker on this machine (deployments/local.py)."""

from __future__ import annotations

import argparse
import sys

from clawback.commands.interface import Outcome

NAME = "serve"
HELP = ("run everything on this machine: a Prefect server (started "
        "unless one answers), the deployments of prefect.yaml and a worker; Ctrl-C stops it")


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", type=int, default=4200, help="the local server's port (default 4200)")
    p.add_argument("--health-interval", type=float, metavar="SECONDS",
                   help="seconds between health checks (default: prefect.yaml's 300)")
    p.add_argument("--machine", metavar="NAME", help="this machine's name among those sharing "
                   "one server: its deployments are <flow>/NAME on work queue NAME (default: "
                   "the host name)")
    p.add_argument("--drain-timeout", type=float, default=120, metavar="SECONDS",
                   help="on stop, how long flow runs in flight may take to finish (default 120)")


def run(args: argparse.Namespace) -> Outcome:
    from deployments.local import Options, serve

    code = serve(Options(args.workspace, args.port, args.health_interval, args.machine,
                         args.drain_timeout), out=sys.stderr if args.json else sys.stdout)
    return Outcome(code, {"exit_code": code}, "")
