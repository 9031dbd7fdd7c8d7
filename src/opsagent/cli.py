"""The ``opsagent`` command line. Commands live in ``opsagent.commands``; this file only assembles them."""

from __future__ import annotations

import typer

from opsagent.commands import approvals, ask, investigate, record, runbooks, serve, users
from opsagent.commands import eval as eval_command

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Incident-analysis agent for on-call engineers."
)

# One module per command group, each with ``register(app)``: import it above and add it here.
for _commands in (investigate, runbooks, ask, record, serve, approvals, eval_command, users):
    _commands.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
