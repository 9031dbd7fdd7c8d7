"""``tables.numeric_table`` reads a column at a time where it can; what it gives, and the errors it
names, are those of reading cell by cell (``to_float``)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from opsagent.errors import IncidentFormatError
from opsagent.evals import tables


def _cell_by_cell(path: Path, time_column: str, skip: tuple[str, ...]) -> tuple[object, ...]:
    headers, body = tables.rows(path)
    header = headers[0]
    t_idx = header.index(time_column)
    keep = [i for i, name in enumerate(header) if i != t_idx and name not in skip]
    numbered = list(body)
    stamps = [tables.to_float(row[t_idx], path, n) for n, row in numbered]
    columns = [[tables.to_float(row[i], path, n) for n, row in numbered] for i in keep]
    return [header[i] for i in keep], stamps, columns


def _same(a: object, b: object) -> bool:
    """Equal, NaN equal to NaN."""
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return a == b


@pytest.mark.parametrize(
    "text",
    [
        "time,pod,a,b\n1,p,0.5,2\n2,p,1e3,-3\n",
        "time,pod,a,b\n1,p,,2\n2,p,nan,inf\n3,p,-inf,None\n4,p,null,NaN\n",  # spellings of no value
        "time,pod,a,b\n1,p,Infinity,1_000\n2,p, 7 ,-nan\n",  # what float() reads besides
        'time,pod,a,b\n1,"p",0.5,2\n',  # quoted: read by the csv reader
        "time,pod,a,b\n1,p,0.5,2\n2,p,1,2",  # no newline at the end
    ],
)
def test_values_are_those_read_cell_by_cell(tmp_path: Path, text: str) -> None:
    path = tmp_path / "t.csv"
    path.write_text(text, encoding="utf-8")
    names, stamps, columns = tables.numeric_table(path, time_column="time", skip=("pod",))
    assert _same([names, stamps, columns], list(_cell_by_cell(path, "time", ("pod",))))


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("time,a,b\n1,2,3\n2,x,y\n3,4,z\n", "line 3: 'x' is not a number"),
        ("time,a,b\n1,2,3\n2,3,4\n3,4,5,6\n", "line 4: 4 fields"),
        ("time,a\n", "no data rows"),
        ("time,a\n1,2\n,3\n", "'time' cell is empty"),
        ("t,a\n1,2\n", "no 'time' column"),
    ],
)
def test_errors_name_what_reading_cell_by_cell_names(tmp_path: Path, text: str, error: str) -> None:
    path = tmp_path / "t.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(IncidentFormatError, match=error):
        tables.numeric_table(path, time_column="time")
