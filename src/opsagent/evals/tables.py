"""CSV reading for the dataset importers: every problem is an ``IncidentFormatError`` naming the file.

Public datasets arrive as archives that get cut short, re-saved by spreadsheets or half-extracted; a
row with the wrong number of fields or a cell that is not a number must say which file and line,
not surface as a ``ValueError`` from deep inside an importer.

Also ``builder``: records built from cells the importer has already parsed, without validating them
again.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from opsagent.errors import IncidentFormatError

M = TypeVar("M", bound=BaseModel)

# Spellings of "no value" in the datasets (PetShop writes nothing when a node had no traffic).
_MISSING = frozenset({"", "nan", "NaN", "NAN", "null", "None", "inf", "-inf"})


def to_float(cell: str, path: Path, line_no: int) -> float:
    """A cell as a float; a missing value is NaN; anything else that is not a number is an error."""
    if cell in _MISSING:
        return math.nan
    try:
        return float(cell)
    except ValueError:
        raise IncidentFormatError(path, f"line {line_no}: {cell[:40]!r} is not a number") from None


def rows(
    path: Path, *, header_rows: int = 1, skip_bad_share: float = 0.0
) -> tuple[list[list[str]], Iterator[tuple[int, list[str]]]]:
    """The header rows and an iterator of (line number, row) that checks every row's width.

    A row with fewer or more fields than the first header row is reported as a truncated or
    malformed file; an empty file or a missing header is reported too. With ``skip_bad_share``
    (for free-text logs, where an exporter sometimes glues two lines together) malformed rows in
    the middle are skipped, as long as they are at most that share of the rows; a malformed last
    row is still an error, because that is what a truncated file looks like.
    """
    try:
        fh = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise IncidentFormatError(path, f"cannot read: {exc.strerror or exc}") from None
    reader = csv.reader(fh, strict=True)
    headers: list[list[str]] = []
    try:
        for _ in range(header_rows):
            row = next(reader, None)
            if row is None:
                fh.close()
                raise IncidentFormatError(path, "empty file or missing header")
            headers.append(row)
    except csv.Error as exc:
        fh.close()
        raise IncidentFormatError(path, f"not valid CSV: {exc}") from None
    width = len(headers[0])

    def malformed(line_no: int, problem: str) -> IncidentFormatError:
        return IncidentFormatError(path, f"line {line_no}: {problem} (truncated or malformed file)")

    def body() -> Iterator[tuple[int, list[str]]]:
        with fh:
            line_no = header_rows
            good = 0
            bad: list[tuple[int, str]] = []
            last_bad = False
            while True:
                try:
                    row = next(reader)
                except StopIteration:
                    break
                except csv.Error as exc:
                    # Strict parsing: a quoted cell cut short at the end of a file is an error
                    # here, not a silently shortened last value.
                    row, problem = None, f"not valid CSV ({exc})"
                line_no = reader.line_num
                if row is not None:
                    if not row:
                        continue
                    if len(row) == width:
                        last_bad = False
                        good += 1
                        yield line_no, row
                        continue
                    problem = f"{len(row)} fields, expected {width}"
                if skip_bad_share <= 0.0:
                    raise malformed(line_no, problem)
                bad.append((line_no, problem))
                last_bad = True
            if last_bad or len(bad) > skip_bad_share * (good + len(bad)):
                raise malformed(*bad[-1])

    return headers, body()


def plain_rows(path: Path) -> tuple[list[str], list[list[str]]] | None:
    """The header row and every non-empty row of a file that holds no quote, carriage return or NUL,
    all of the header's width; None for any other file (read it with ``rows``).

    Such a file is read by the csv module exactly as split at newlines and commas, and splitting is
    several times faster than the csv module's reader and a generator step per row (an Online
    Boutique trace minute holds ~25k rows). Lines longer than the csv module's field limit are
    left to it, since it refuses them.
    """
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, ValueError):
        return None
    if '"' in text or "\r" in text or "\x00" in text:
        return None
    lines = text.split("\n")
    if not lines[0] or max(map(len, lines)) > csv.field_size_limit():
        return None
    header = lines[0].split(",")
    body = [line.split(",") for line in lines[1:] if line]
    width = len(header)
    if any(n != width for n in map(len, body)):
        return None
    return header, body


def numeric_table(
    path: Path, *, time_column: str, skip: tuple[str, ...] = ()
) -> tuple[list[str], list[float], list[list[float]]]:
    """A wide CSV with one time column: (column names, timestamps, one value list per column).

    Columns named in ``skip`` are left out (text columns such as a pod name). Rows must have
    strictly numeric cells otherwise, and at least one row must exist.
    """
    headers, body = rows(path)
    header = headers[0]
    if time_column not in header:
        raise IncidentFormatError(path, f"no {time_column!r} column")
    t_idx = header.index(time_column)
    keep = [i for i, name in enumerate(header) if i != t_idx and name not in skip]
    stamps: list[float] = []
    columns: list[list[float]] = [[] for _ in keep]
    for line_no, row in body:
        stamps.append(to_float(row[t_idx], path, line_no))
        for col, i in zip(columns, keep, strict=True):
            col.append(to_float(row[i], path, line_no))
    if not stamps:
        raise IncidentFormatError(path, "no data rows")
    if any(math.isnan(t) for t in stamps):
        raise IncidentFormatError(path, f"a {time_column!r} cell is empty")
    return [header[i] for i in keep], stamps, columns


def builder(cls: type[M], unset: frozenset[str] = frozenset()) -> Callable[[dict[str, Any]], M]:
    """``build(values)``: the model pydantic would validate from ``values``, made without validating.

    ``values`` holds every field, in the order the model declares them, each already of its field's
    type (the importers' own parsers made them: a float from ``float()``, a str from a cell), so
    validation would return them unchanged; ``unset`` names the fields left at their default, which
    a validated model leaves out of ``model_fields_set``. What is built is what ``cls(**values)``
    (less the ``unset`` keys) builds: the same ``__dict__``, fields set, no extra and no private
    values (``tests/evals/test_record_builder.py`` holds pydantic to that). Validating is most of the
    cost of making a record, and a Nezha case reads ~20k of them (log lines and spans).
    """
    fields_set = frozenset(cls.model_fields) - unset
    new = object.__new__
    put = object.__setattr__

    def build(values: dict[str, Any]) -> M:
        model = new(cls)
        put(model, "__dict__", values)
        put(model, "__pydantic_fields_set__", set(fields_set))
        put(model, "__pydantic_extra__", None)
        put(model, "__pydantic_private__", None)
        return model

    return build
