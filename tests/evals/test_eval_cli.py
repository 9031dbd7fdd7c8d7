"""``opsagent eval`` end to end on the demo incidents (native format) and on the dataset excerpts."""

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from opsagent.cli import app

REPO = Path(__file__).resolve().parents[2]
DEMOS = REPO / "examples" / "incidents"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture
def env(tmp_path):
    return {
        "OPSAGENT_DATA_DIR": str(tmp_path / "data"),
        "OPSAGENT_RUNBOOKS_DIR": str(REPO / "runbooks"),
        "OPSAGENT_EMBEDDING": "hashing",
        "OPSAGENT_CONFIG_FILE": str(tmp_path / "absent.yaml"),
    }


def run(args, env):
    result = CliRunner().invoke(app, ["eval", *args], env=env)
    return result.exit_code, result.stdout, result.stderr


def test_demo_incidents_end_to_end_with_json_and_html(env, tmp_path):
    out_json, out_html = tmp_path / "r" / "eval.json", tmp_path / "r" / "eval.html"
    code, out, err = run([str(DEMOS), "--json", str(out_json), "--html", str(out_html)], env)
    assert code == 0, err
    assert "native" in out and "AC@1" in out and "Avg@5" in out
    doc = json.loads(out_json.read_text())
    assert doc["reasoner"] == "offline"
    native = doc["datasets"]["native"]
    assert native["cases"] == 3
    for key in ("cases", "ac@1", "ac@3", "ac@5", "avg@5", "by_fault"):
        assert key in native
    for fault in native["by_fault"].values():
        assert {"cases", "ac@1", "ac@3", "ac@5", "avg@5"} <= set(fault)
    ids = sorted(c["id"] for c in doc["cases"])
    assert ids == sorted(p.name for p in DEMOS.iterdir() if (p / "incident.yaml").is_file())
    for case in doc["cases"]:
        assert {"dataset", "id", "truth", "ranking", "rank_of_truth", "seconds", "fault_type_correct"} <= set(
            case
        )
        assert case["truth"]["service"]
        if case["rank_of_truth"] is not None:
            assert case["ranking"][case["rank_of_truth"] - 1] == case["truth"]["service"]
        # the runbooks offered, and whether the first is the one the truth names (the demos' are)
        assert case["truth"]["runbook"] and case["runbooks"][0] == case["truth"]["runbook"]
        assert case["runbook_fits"] is True
    assert native["runbook_fit"] == 1.0
    page = out_html.read_text()
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page
    # Self-contained: no script, no external resource.
    assert "<script" not in page and "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert 'href="#case-1"' in page and 'id="case-1"' in page


def test_baro_on_dataset_excerpts_reports_each_dataset_separately(env, tmp_path):
    out_json = tmp_path / "eval.json"
    code, _out, err = run(
        [str(FIXTURES / "nezha"), str(FIXTURES / "petshop"), "--reasoner", "baro", "--json", str(out_json)],
        env,
    )
    assert code == 0, err
    doc = json.loads(out_json.read_text())
    assert doc["reasoner"] == "baro"
    assert list(doc["datasets"]) == ["nezha-ob", "nezha-tt", "petshop"]
    assert [doc["datasets"][d]["cases"] for d in doc["datasets"]] == [2, 2, 3]


def test_limit_case_glob_and_format(env, tmp_path):
    out_json = tmp_path / "eval.json"
    code, _out, err = run(
        [
            str(FIXTURES / "nezha"),
            "--case",
            "2023-*",
            "--limit",
            "1",
            "--format",
            "nezha",
            "--json",
            str(out_json),
        ],
        env,
    )
    assert code == 0, err
    doc = json.loads(out_json.read_text())
    assert [c["id"] for c in doc["cases"]] == ["2023-01-29T08:43:04"]


def test_a_bad_path_exits_non_zero_with_one_line(env):
    code, _out, err = run(["/no/such/dataset"], env)
    assert code != 0
    assert "/no/such/dataset" in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_truncated_csv_exits_non_zero_naming_the_file(env, tmp_path):
    root = tmp_path / "petshop"
    shutil.copytree(FIXTURES / "petshop", root)
    metrics = root / "low_traffic" / "train" / "issue_4" / "metrics.csv"
    metrics.write_bytes(metrics.read_bytes()[:-150])
    code, _out, err = run([str(root)], env)
    assert code != 0
    assert "issue_4/metrics.csv" in " ".join(err.split()) and "Traceback" not in err


def test_unknown_reasoner_and_format_are_refused(env):
    code, _out, err = run([str(DEMOS), "--reasoner", "oracle"], env)
    assert code != 0 and "unknown reasoner" in err
    code, _out, err = run([str(DEMOS), "--format", "xlsx"], env)
    assert code != 0 and "unknown format" in err


def test_worker_processes_give_the_same_results_as_one_process(env, tmp_path):
    docs = []
    for jobs in ("1", "2"):
        out_json = tmp_path / f"eval-{jobs}.json"
        code, _out, err = run([str(FIXTURES / "nezha"), "--jobs", jobs, "--json", str(out_json)], env)
        assert code == 0, err
        docs.append(json.loads(out_json.read_text()))
    one, two = ([(c["id"], c["ranking"], c["rank_of_truth"]) for c in d["cases"]] for d in docs)
    assert one == two and len(one) == 4


def _alerts(doc):
    return {c["id"]: c["window"]["alert"] for c in doc["cases"]}


def test_an_alert_delay_moves_every_recorded_alert(env, tmp_path):
    from datetime import datetime, timedelta

    docs = {}
    for delay, jobs in (("0", "1"), ("90", "1"), ("-30", "2")):
        out_json = tmp_path / f"eval{delay}.json"
        code, _out, err = run(
            [str(FIXTURES / "nezha"), "--jobs", jobs, "--alert-delay", delay, "--json", str(out_json)], env
        )
        assert code == 0, err
        docs[delay] = json.loads(out_json.read_text())
    assert docs["90"]["alert_delay_seconds"] == 90 and docs["0"]["alert_delay_seconds"] == 0
    recorded = _alerts(docs["0"])
    assert len(recorded) == 4
    for delay in ("90", "-30"):  # the worker processes (--jobs 2) move them too
        moved = _alerts(docs[delay])
        for case_id, alert in recorded.items():
            shifted = datetime.fromisoformat(alert) + timedelta(seconds=float(delay))
            assert datetime.fromisoformat(moved[case_id]) == shifted


def test_an_alert_moved_out_of_its_recording_is_refused_in_one_line(env):
    code, _out, err = run([str(DEMOS), "--alert-delay", "3600"], env)
    assert code != 0
    assert "falls outside the recording" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    code, _out, err = run([str(DEMOS), "--alert-delay", "7200"], env)
    assert code != 0 and "Traceback" not in err
