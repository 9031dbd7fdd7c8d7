"""The ``opsagent`` command line. Commands live in ``opsagent.commands``; this file only assembles them."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Incident-analysis agent for on-call engineers."
)

# One module per command group, each with ``register(app)``. Add a line to add a command group.
COMMAND_MODULES = [
    "opsagent.commands.investigate",
    "opsagent.commands.runbooks",
    "opsagent.commands.ask",
    "opsagent.commands.record",
    "opsagent.commands.serve",
    "opsagent.commands.approvals",
    "opsagent.commands.eval",
    "opsagent.commands.users",
]

for _module in COMMAND_MODULES:
    importlib.import_module(_module).register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
