"""One module per ``clawback`` command (clawback/commands/interface.py says what each offers).

``COMMANDS`` is the one list clawback/cli.py builds its parser from, in the order ``clawback
--help`` lists them: a new command is a new module here and one more name in it.
"""

from __future__ import annotations

from clawback.commands import (
    demo,
    diff,
    gc,
    health,
    history,
    hook,
    init,
    promote,
    recover,
    rollback,
    serve,
    snapshot,
    start,
    status,
    stop,
    verify_rollback,
    verify_snapshot,
)

COMMANDS = (init, snapshot, rollback, recover, verify_rollback, start, stop, verify_snapshot,
            status, history, diff, health, promote, gc, hook, serve, demo)
