"""Unusable input gives one clear error that names the path: bad paths, unknown layouts, truncated CSVs."""

import shutil
from pathlib import Path

import pytest

from opsagent.errors import IncidentFormatError
from opsagent.evals.discover import detect_format, discover, load_case

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def test_layouts_are_detected_and_format_overrides(tmp_path):
    assert detect_format(FIXTURES / "petshop") == "petshop"
    assert detect_format(FIXTURES / "petshop" / "low_traffic") == "petshop"
    assert detect_format(FIXTURES / "petshop" / "low_traffic" / "train" / "issue_0") == "petshop"
    assert detect_format(FIXTURES / "nezha") == "nezha"
    assert detect_format(FIXTURES / "nezha" / "rca_data") == "nezha"
    examples = Path(__file__).resolve().parents[2] / "examples" / "incidents"
    assert detect_format(examples) == "native"
    with pytest.raises(IncidentFormatError, match="no nezha cases"):
        discover(FIXTURES / "petshop", "nezha")


def test_a_missing_path_is_named():
    with pytest.raises(IncidentFormatError) as err:
        discover(Path("/nonexistent/dataset"))
    assert "/nonexistent/dataset" in str(err.value) and "no such file" in str(err.value)


def test_an_unknown_layout_says_what_is_expected(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(IncidentFormatError, match=r"not a recognised recorded-incident layout.*--format"):
        discover(tmp_path)
    with pytest.raises(IncidentFormatError, match="unknown format"):
        discover(tmp_path, "csv")


def _truncate(path: Path, keep_bytes_from_end: int) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - keep_bytes_from_end])


def test_a_truncated_petshop_csv_names_the_file_and_line(tmp_path):
    root = tmp_path / "petshop"
    shutil.copytree(FIXTURES / "petshop", root)
    metrics = root / "low_traffic" / "train" / "issue_0" / "metrics.csv"
    _truncate(metrics, 200)
    ref = discover(root, case_glob="low_traffic/issue_0")[0]
    with pytest.raises(IncidentFormatError) as err:
        load_case(ref)
    message = str(err.value)
    assert str(metrics) in message and "line 9" in message and "truncated" in message


def test_a_truncated_nezha_trace_file_names_the_file(tmp_path):
    root = tmp_path / "nezha"
    shutil.copytree(FIXTURES / "nezha", root)
    trace = root / "rca_data" / "2023-01-29" / "trace" / "08_43_trace.csv"
    _truncate(trace, 30)
    ref = discover(root, case_glob="2023-01-29T08:43:04")[0]
    with pytest.raises(IncidentFormatError, match=r"08_43_trace\.csv: line \d+: .*truncated"):
        load_case(ref)


def test_a_glued_line_inside_a_log_file_is_skipped_but_a_truncated_end_is_not(tmp_path):
    root = tmp_path / "nezha"
    shutil.copytree(FIXTURES / "nezha", root)
    log = root / "rca_data" / "2023-01-29" / "log" / "08_43_log.csv"
    lines = log.read_text().splitlines(keepends=True)
    # Real exports sometimes glue two log lines: one malformed row in the middle of a large file.
    body = lines[1:] * 30
    body[100] = body[100].rstrip("\n") + ",extra,fields\n"
    log.write_text("".join([lines[0], *body]))
    ref = discover(root, case_glob="2023-01-29T08:43:04")[0]
    rec = load_case(ref)
    assert rec.logs
    _truncate(log, 40)
    from opsagent.evals import nezha

    nezha.clear_caches()  # the excerpt was parsed above
    with pytest.raises(IncidentFormatError, match=r"08_43_log\.csv: line \d+"):
        load_case(ref)


def test_a_non_numeric_metric_cell_is_reported(tmp_path):
    root = tmp_path / "nezha"
    shutil.copytree(FIXTURES / "nezha", root)
    metric = root / "rca_data" / "2022-08-22" / "metric" / "frontend-579b9bff58-t2dbm_metric.csv"
    lines = metric.read_text().splitlines()
    fields = lines[2].split(",")
    fields[5] = "oops"
    lines[2] = ",".join(fields)
    metric.write_text("\n".join(lines) + "\n")
    with pytest.raises(IncidentFormatError, match=r"frontend-579b9bff58-t2dbm_metric\.csv: line 3: 'oops'"):
        load_case(discover(root)[0])
