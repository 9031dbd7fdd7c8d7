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
from collections.abc import Callable, Iterable, Iterator
from itertools import repeat
from pathlib import Path
from typing import Any, TypeVar, cast

from pydantic import BaseModel

from opsagent.errors import IncidentFormatError

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

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
    """The header row and every non-empty row of a file that holds no carriage return or NUL and no
    quote but around a whole last cell (not the header's), all of the header's width; None for any
    other file (read it with ``rows``).

    Such a file is read by the csv module exactly as split at newlines and commas (a quoted last cell
    unquoted), and splitting is several times faster than the csv module's reader and a generator
    step per row: an Online Boutique trace minute holds ~25k rows, a Train Ticket log minute ~2k rows
    of ~700 characters, most of them the last cell (the container runtime's JSON, quoted). Lines
    longer than the csv module's field limit are left to it, since it refuses them.
    """
    # Read as bytes and decoded a line at a time: the searches and the split run on bytes, and a line
    # comes out a compact ASCII str even where the file holds other characters elsewhere. (UTF-8
    # never puts a newline byte inside a character, so this decodes what decoding the file would.)
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if b"\r" in data or b"\x00" in data:
        return None
    raw = data.split(b"\n")
    # a line's length in bytes is at least its length in characters, the csv module's limit's unit
    if not raw[0] or max(map(len, raw)) > csv.field_size_limit():
        return None
    try:
        lines = [line.decode("utf-8") for line in raw]
    except UnicodeDecodeError:
        return None
    header = lines[0].split(",")
    width = len(header)
    if b'"' not in data:
        body = [line.split(",") for line in lines[1:] if line]
    elif '"' in lines[0]:
        return None
    else:
        cells = [_quoted_last(line, width) for line in lines[1:] if line]
        if None in cells:
            return None
        body = cast(list[list[str]], cells)
    if any(n != width for n in map(len, body)):
        return None
    return header, body


def _quoted_last(line: str, width: int) -> list[str] | None:
    """The cells of a line as the csv reader (strict) reads them when its only quotes are those of
    its ``width``-th cell, quoted whole; None otherwise. (A line of fewer cells comes out short.)

    The csv reader takes a quote as opening a cell only at the cell's start, reads each doubled quote
    inside as one, and (strict) allows only the line's end after the closing quote. So the text
    between the opening quote and the line's last character (the closing quote) must hold quotes
    only in runs of even length: an odd run would close the cell early. Anything else (a quoted cell
    before the last, a cell going on past the line's end) is the csv reader's.
    """
    start = line.find('"')
    if start < 0:
        return line.split(",")
    cells = line.split(",", width - 1)
    last = cells[-1]
    # the first quote opens the last cell, and the line ends with a quote
    if len(line) - start != len(last) or len(last) < 2 or last[-1] != '"':
        return None
    inner = last[1:-1]
    text = inner.replace('""', '"')
    # Halving a run of k quotes removes k // 2 and leaves k // 2 + k % 2: as many quotes are left as
    # were removed only when every run is of even length. (Counting is cheaper than searching for an
    # odd run: a Train Ticket log cell holds dozens of doubled quotes.)
    if text.count('"') != len(inner) - len(text):
        return None
    cells[-1] = text
    return cells


def read_rows(
    path: Path,
    parse: Callable[[Path, list[str], Iterable[tuple[int, list[str]]]], T],
    *,
    skip_bad_share: float = 0.0,
) -> T:
    """``parse(path, header, (line number, row) pairs)`` over the file's rows: split by ``plain_rows``
    where it can, read by ``rows`` (``skip_bad_share`` as there) otherwise.

    Split rows come numbered 0: line numbers only name a bad row, so when ``parse`` rejects them
    (IncidentFormatError) the file is read again by ``rows``, whose numbers name the line.
    """
    plain = plain_rows(path)
    if plain is not None:
        header, body = plain
        try:
            return parse(path, header, zip(repeat(0), body))
        except IncidentFormatError:
            pass
    headers, numbered = rows(path, skip_bad_share=skip_bad_share)
    return parse(path, headers[0], numbered)


def numeric_table(
    path: Path, *, time_column: str, skip: tuple[str, ...] = ()
) -> tuple[list[str], list[float], list[list[float]]]:
    """A wide CSV with one time column: (column names, timestamps, one value list per column).

    Columns named in ``skip`` are left out (text columns such as a pod name). Rows must have
    strictly numeric cells otherwise, and at least one row must exist.
    """
    plain = plain_rows(path)
    if plain is not None:
        header, cells = plain
        t_idx, keep = _numeric_layout(path, header, time_column, skip)
        try:
            # A column at a time, its cells mapped by ``float`` in one call (a Nezha day's metric
            # files hold ~850k cells). A cell that is no number is named by its line below.
            by_column = list(zip(*cells, strict=True)) if cells else [()] * len(header)
            stamps = _floats(by_column[t_idx])
            columns = [_floats(by_column[i]) for i in keep]
        except ValueError:
            pass
        else:
            return _numeric_checked(path, header, time_column, keep, stamps, columns)
    headers, body = rows(path)
    header = headers[0]
    t_idx, keep = _numeric_layout(path, header, time_column, skip)
    stamps = []
    columns = [[] for _ in keep]
    for line_no, row in body:
        stamps.append(to_float(row[t_idx], path, line_no))
        for col, i in zip(columns, keep, strict=True):
            col.append(to_float(row[i], path, line_no))
    return _numeric_checked(path, header, time_column, keep, stamps, columns)


def _numeric_layout(
    path: Path, header: list[str], time_column: str, skip: tuple[str, ...]
) -> tuple[int, list[int]]:
    """The time column's index and those of the value columns."""
    if time_column not in header:
        raise IncidentFormatError(path, f"no {time_column!r} column")
    t_idx = header.index(time_column)
    return t_idx, [i for i, name in enumerate(header) if i != t_idx and name not in skip]


def _floats(cells: tuple[str, ...]) -> list[float]:
    """``to_float`` of each cell (ValueError for a cell that is no number)."""
    if _MISSING.isdisjoint(cells):
        return list(map(float, cells))
    return [math.nan if cell in _MISSING else float(cell) for cell in cells]


def _numeric_checked(
    path: Path,
    header: list[str],
    time_column: str,
    keep: list[int],
    stamps: list[float],
    columns: list[list[float]],
) -> tuple[list[str], list[float], list[list[float]]]:
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
