"""Files without quotes (or quoted only around a whole last cell) read by splitting give exactly what
the csv reader gives, and anything else is left to the csv reader (``tables.plain_rows``); a Nezha
trace or log file reads alike either way."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsagent.errors import IncidentFormatError
from opsagent.evals import tables
from opsagent.evals.nezha import logs, traces

PLAIN = [
    "a,b,c\n1,2,3\n4,5,6\n",
    "a,b,c\n1,2,3\n4,5,6",  # no newline at the end
    "a,b,c\n\n1,2,3\n\n\n4,5,6\n\n",  # empty lines are skipped
    "a,b,c\n1,,3\n ,x y, \n",  # empty and blank cells
    "a\n1\n2\n",
    "a,b\n",  # a header alone
    "a,b\nä,ß\n",  # non-ASCII
    'a,b\n1,"x"\n2,""\n',  # a quoted last cell, an empty one
    'a,b\n1,"x,y"\n2,z\n',  # a comma inside it; a row without quotes
    'a,b\n1,"say ""hi"", ok"\n',  # doubled quotes read as one
    'a,b\n1,"""x"""\n2,""""\n',  # doubled quotes at its ends
    'a,b,c\n1,2,"{""log"":""ä\\n""}"\n',  # a Nezha log cell, non-ASCII
    'a\n"x"\n"y,z"\n',  # the only cell quoted
]
NOT_PLAIN = [
    'a,b\n"1",2\n',  # quotes: the csv reader's to read
    "a,b\r\n1,2\r\n",  # carriage returns
    "a,b\n1,2\x00\n",
    "\na,b\n1,2\n",  # an empty first line is the csv reader's (empty) header
    'a,b\n1,"x"y\n',  # text after the closing quote (an error to the strict csv reader)
    'a,b\n1,"x""\n',  # an odd run of quotes closes the cell early
    'a,b\n1,"x"""y"\n',
    'a,b\n1,x"y"\n',  # a quote inside an unquoted cell
    'a,b,c\n"1",2,3\n',  # a quoted cell before the last
    'a,b\n1,"x\ny"\n',  # a quoted cell over two lines
    '"a",b\n1,2\n',  # a quoted header
    'a,b\n1,2,"x"\n',  # a quoted cell past the header's width
    'a,b,c\n1,"x"\n',  # ... and short of it
    "a,b\n1,2,3\n",  # a row of another width
    "a,b\n1\n",
    "",
]


def _by_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    headers, body = tables.rows(path)
    return headers[0], [row for _, row in body]


@pytest.mark.parametrize("text", PLAIN)
def test_plain_files_read_as_the_csv_reader_reads_them(tmp_path: Path, text: str) -> None:
    path = tmp_path / "t.csv"
    path.write_text(text, encoding="utf-8")
    assert tables.plain_rows(path) == _by_csv(path)


@pytest.mark.parametrize("text", NOT_PLAIN)
def test_other_files_are_left_to_the_csv_reader(tmp_path: Path, text: str) -> None:
    path = tmp_path / "t.csv"
    path.write_text(text, encoding="utf-8", newline="")
    assert tables.plain_rows(path) is None


def test_a_line_past_the_csv_field_limit_is_left_to_the_csv_reader(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a,b\n1," + "x" * 200_000 + "\n", encoding="utf-8")
    assert tables.plain_rows(path) is None


_TRACE_HEADER = "TraceID,SpanID,ParentID,PodName,OperationName,StartTimeUnixNano,EndTimeUnixNano,Duration\n"


def test_a_trace_file_reads_alike_by_either_reader(tmp_path: Path) -> None:
    rows = [
        "t1,s1,root,frontend-579b9bff58-t2dbm,Recv.,1661140374351773094,1661140374362982609,11209",
        "t1,s2,s1,cartservice-74f56fd4b-abcde,CartService/AddItem,1661140374357509048,1661140374362852137,5343",
        "t2,s3,,redis-cart-5b6f47b748-xyz12,GET,1661140374400000000,1661140374400100000,100",
    ]
    plain = tmp_path / "03_53_trace.csv"
    plain.write_text(_TRACE_HEADER + "\n".join(rows) + "\n", encoding="utf-8")
    # the same rows with a quoted cell: only the csv reader reads it
    quoted = tmp_path / "03_54_trace.csv"
    quoted.write_text(_TRACE_HEADER + "\n".join(rows).replace("Recv.", '"Recv."') + "\n", encoding="utf-8")
    assert tables.plain_rows(quoted) is None
    assert traces.read_trace_file(str(plain)) == traces.read_trace_file(str(quoted))


def test_a_bad_row_is_named_by_its_line_either_way(tmp_path: Path) -> None:
    path = tmp_path / "03_55_trace.csv"
    path.write_text(_TRACE_HEADER + "t1,s1,root,frontend-5-x,Recv.,not-a-time,1,2\n", encoding="utf-8")
    with pytest.raises(IncidentFormatError, match="line 2: bad start time or duration"):
        traces.read_trace_file(str(path))


_LOG_HEADER = "Timestamp,TimeUnixNano,Node,PodName,Container,TraceID,SpanID,Log\n"
_LOG_ROWS = [
    "2023-01-29T08:42:22.383150913Z,1674981742383150913,33.33.33.116,ts-travel-service-64469b5b48-25zj6,server,"
    'ffc8ca7e4c8f06c75142c880d5595d96,439bc949a9eeb0cc,"{""log"":""16:42:22.382 INFO  t.s.TravelServiceImpl#532 '
    '[getRouteByRouteId][Route is: Route(id=f3d4, stations=[shanghai, suzhou])]\\n"",""stream"":""stdout""}"',
    "2023-01-29T08:42:22.36103685Z,1674981742361036850,33.33.33.116,ts-order-service-5b67c48447-mv5hb,server,,,"
    '"{""log"":""16:42:22.360 ERROR  \\""quoted\\"" ä\\n"",""stream"":""stderr""}"',
]


def test_a_log_file_reads_alike_by_either_reader(tmp_path: Path) -> None:
    split = tmp_path / "08_42_log.csv"
    split.write_text(_LOG_HEADER + "\n".join(_LOG_ROWS) + "\n", encoding="utf-8")
    # the same rows with every cell quoted: only the csv reader reads it
    quoted = tmp_path / "08_43_log.csv"
    quoted.write_text(
        _LOG_HEADER
        + "\n".join(
            ",".join('"' + c.replace('"', '""') + '"' for c in row) for _, row in tables.rows(split)[1]
        )
        + "\n",
        encoding="utf-8",
    )
    assert tables.plain_rows(split) == _by_csv(split)
    assert tables.plain_rows(quoted) is None
    records = logs.read_log_file(str(split))
    assert records == logs.read_log_file(str(quoted))
    assert [(r.level, r.trace_id) for r in records] == [
        ("error", None),
        ("info", "ffc8ca7e4c8f06c75142c880d5595d96"),
    ]


def test_a_bad_log_row_is_named_by_its_line(tmp_path: Path) -> None:
    path = tmp_path / "08_44_log.csv"
    bad = _LOG_ROWS[1].replace(",1674981742361036850,", ",soon,")
    path.write_text(_LOG_HEADER + "\n".join([_LOG_ROWS[0], bad]) + "\n", encoding="utf-8")
    assert tables.plain_rows(path) is not None
    with pytest.raises(IncidentFormatError, match="line 3: bad TimeUnixNano"):
        logs.read_log_file(str(path))
