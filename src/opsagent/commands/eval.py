"""``opsagent eval``: run recorded incidents through the pipeline and score the rankings."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from opsagent.commands.common import console, err_console, fail, load_settings
from opsagent.errors import OpsAgentError


def _pct(value: Any) -> str:
    return "-" if value is None else f"{100 * float(value):.1f}"


def _secs(value: Any) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{float(value):.2f}"


def print_tables(doc: dict[str, Any]) -> None:
    """One table per dataset: the dataset's row, then one row per true fault type."""
    # Piped output (CI logs, files) gets a fixed width instead of rich's 80-column default,
    # which would truncate the figures.
    out = console if console.is_terminal else Console(width=120)
    for name, entry in doc["datasets"].items():
        table = Table(title=f"{name} — reasoner {doc['reasoner']}", title_justify="left", box=box.SIMPLE_HEAD)
        table.add_column("", no_wrap=True, min_width=17)
        for column in ("cases", "AC@1", "AC@3", "AC@5", "Avg@5", "type", "runbook", "med s", "p95 s"):
            table.add_column(column, justify="right", no_wrap=True)
        rows = [("all", entry), *((f"  {fault}", sub) for fault, sub in entry["by_fault"].items())]
        for label, row in rows:
            table.add_row(
                label,
                str(row["cases"]),
                _pct(row["ac@1"]),
                _pct(row["ac@3"]),
                _pct(row["ac@5"]),
                _pct(row["avg@5"]),
                _pct(row["fault_type_accuracy"]),
                _pct(row.get("runbook_fit")),
                _secs(row["median_seconds"]),
                _secs(row["p95_seconds"]),
                style="bold" if label == "all" else None,
            )
        out.print(table)
        if entry.get("errors"):
            console.print(
                f"[yellow]{entry['errors']} case(s) of {name} failed in the pipeline (see --json)[/]"
            )
    out.print(
        "AC@k, Avg@5, type (fault-type accuracy) and runbook (the first runbook offered is the expected one,"
        " or lists the true fault type) in %; seconds: per case, end to end (reading it included).",
        style="dim",
    )


def eval_cmd(
    paths: Annotated[list[Path], typer.Argument(help="dataset folders or recorded-incident folders")],
    reasoner: Annotated[str, typer.Option(help="offline | baro | llm")] = "offline",
    json_path: Annotated[Path | None, typer.Option("--json", help="write the JSON report here")] = None,
    html_path: Annotated[Path | None, typer.Option("--html", help="write the HTML report here")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="at most N cases per dataset")] = None,
    jobs: Annotated[int, typer.Option(min=1, max=64, help="worker processes")] = 1,
    case: Annotated[
        str | None, typer.Option("--case", help="only cases whose id (or dataset/id) matches this glob")
    ] = None,
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="force the layout: native | petshop | sockshop-rcd | nezha"),
    ] = None,
    alert_delay: Annotated[
        float,
        typer.Option(
            "--alert-delay",
            min=-3600.0,
            max=3600.0,
            help="move every recorded alert this many seconds later (negative: earlier), as a real"
            " alert fires after its rule's for: duration",
        ),
    ] = 0.0,
) -> None:
    """Evaluate root-cause ranking on recorded incidents (native folders or public datasets)."""
    from opsagent.evals.discover import FORMATS, discover
    from opsagent.evals.harness import run_cases
    from opsagent.evals.report import build_document
    from opsagent.reasoning.registry import REASONERS

    settings = load_settings()
    if reasoner not in REASONERS:
        fail(f"unknown reasoner {reasoner!r} (expected one of: {', '.join(REASONERS)})")
    if fmt is not None and fmt not in FORMATS:
        fail(f"unknown format {fmt!r} (expected one of: {', '.join(FORMATS)})")
    try:
        refs = [ref for path in paths for ref in discover(path, fmt, case)]
        # Configuration problems surface here, once, not in every worker.
        from opsagent.evidence.runbooks import load_runbooks
        from opsagent.factory import build_reasoner

        load_runbooks(settings.runbooks_dir)
        build_reasoner(settings, reasoner)
    except OpsAgentError as exc:
        fail(str(exc))
    if limit is not None:
        kept: dict[str, int] = {}
        selected = []
        for ref in refs:
            if kept.get(ref.dataset, 0) < limit:
                kept[ref.dataset] = kept.get(ref.dataset, 0) + 1
                selected.append(ref)
        refs = selected
    if not refs:
        fail("no cases match" + (f" --case {case!r}" if case else ""))

    started = time.perf_counter()
    try:
        with Progress(
            TextColumn("[bold]eval[/] {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err_console,
            transient=True,
        ) as progress:
            task = progress.add_task(reasoner, total=len(refs))
            results = run_cases(
                refs,
                settings,
                reasoner,
                jobs=jobs,
                on_progress=lambda n: progress.advance(task, n),
                alert_delay=alert_delay,
            )
    except OpsAgentError as exc:
        fail(str(exc))
    wall = time.perf_counter() - started

    doc = build_document(
        results, reasoner, paths=[str(p) for p in paths], wall_seconds=wall, alert_delay=alert_delay
    )
    print_tables(doc)
    moved = f", every alert moved {alert_delay:+g}s" if alert_delay else ""
    err_console.print(f"{len(results)} cases in {wall:.1f}s with {jobs} job(s){moved}", highlight=False)
    if doc.get("tokens"):
        fell = (
            f"; {doc['fell_back_cases']} case(s) fell back to offline" if doc.get("fell_back_cases") else ""
        )
        err_console.print(
            f"LLM: {doc['tokens']['prompt']} prompt + {doc['tokens']['completion']} completion tokens, "
            f"{doc['llm_seconds']:.1f}s{fell}",
            highlight=False,
        )
    try:
        if json_path is not None:
            json_path.parent.mkdir(parents=True, exist_ok=True)
            json_path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
            err_console.print(f"JSON report: {json_path}", highlight=False)
        if html_path is not None:
            from opsagent.evals.html import render_html

            html_path.parent.mkdir(parents=True, exist_ok=True)
            html_path.write_text(render_html(doc), encoding="utf-8")
            err_console.print(f"HTML report: {html_path}", highlight=False)
    except OSError as exc:
        fail(f"cannot write the report: {exc.strerror or exc}")


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_cmd)
