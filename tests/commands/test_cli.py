"""The CLI as a person uses it: reports per autonomy level, and one-line errors on bad input."""

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from opsagent.cli import app

REPO = Path(__file__).resolve().parents[2]
DEMOS = sorted(p for p in (REPO / "examples" / "incidents").iterdir() if (p / "incident.yaml").is_file())
ALLOW_ALL = json.dumps([{"actions": ["*"], "services": ["*"], "namespaces": ["*"]}])


@pytest.fixture
def env(tmp_path):
    return {
        "OPSAGENT_DATA_DIR": str(tmp_path / "data"),
        "OPSAGENT_RUNBOOKS_DIR": str(REPO / "runbooks"),
        "OPSAGENT_EMBEDDING": "hashing",
        "OPSAGENT_CONFIG_FILE": str(tmp_path / "absent.yaml"),
    }


def run(args, env):
    result = CliRunner().invoke(app, args, env=env)
    return result.exit_code, result.stdout, result.stderr


def investigate_json(path: Path, env) -> dict:
    code, out, err = run(["investigate", str(path), "--format", "json"], env)
    assert code == 0, err
    return json.loads(out)


def test_json_report_has_the_documented_fields(env):
    report = investigate_json(DEMOS[0], env)
    for key in ("incident", "autonomy_level", "root_causes", "runbooks", "remediation", "actions", "gaps"):
        assert key in report
    assert report["autonomy_level"] == "L1"
    assert set(report["incident"]) >= {"id", "title", "alerts"}
    cause = report["root_causes"][0]
    assert set(cause) >= {"service", "fault_type", "confidence", "evidence"}
    assert cause["evidence"], "a root cause must cite evidence"
    assert report["remediation"], "the best runbook's remediation steps are listed"


def test_l0_analyses_when_a_person_asks_and_proposes_no_action(env):
    # `opsagent investigate` is a person asking: analysed in full, but nothing is run or proposed.
    report = investigate_json(DEMOS[0], {**env, "OPSAGENT_AUTONOMY_LEVEL": "L0"})
    assert report["root_causes"]
    assert {a["decision"] for a in report["actions"]} <= {"not_proposed"}


def test_l1_proposes_remediation_as_text_and_runs_nothing_but_diagnostics(env):
    report = investigate_json(DEMOS[0], {**env, "OPSAGENT_AUTONOMY_LEVEL": "L1"})
    assert report["root_causes"]
    for action in report["actions"]:
        expected = "execute" if action["risk"] == "read" else "not_proposed"
        assert action["decision"] == expected, action


def test_l2_every_remediation_awaits_approval(env):
    report = investigate_json(DEMOS[0], {**env, "OPSAGENT_AUTONOMY_LEVEL": "L2"})
    decisions = {a["decision"] for a in report["actions"] if a["risk"] != "read"}
    assert decisions == {"await_approval"}


@pytest.mark.parametrize("demo", DEMOS, ids=lambda p: p.name)
def test_l3_runs_low_risk_automatically_and_the_rest_waits(env, demo):
    report = investigate_json(
        demo, {**env, "OPSAGENT_AUTONOMY_LEVEL": "L3", "OPSAGENT_AUTONOMY__RULES": ALLOW_ALL}
    )
    assert report["actions"], "the matching runbook declares actions"
    confident = report["root_causes"][0]["confidence"] >= 0.7
    for action in report["actions"]:
        # An action whose required parameters could not be derived waits for a person to give them.
        complete = not action.get("missing_params")
        if complete and (action["risk"] in ("read",) or (action["risk"] == "low" and confident)):
            assert action["decision"] == "execute", action
        else:
            assert action["decision"] == "await_approval", action


def test_l3_without_a_policy_rule_runs_no_remediation(env):
    report = investigate_json(DEMOS[0], {**env, "OPSAGENT_AUTONOMY_LEVEL": "L3"})
    assert all(a["decision"] != "execute" for a in report["actions"] if a["risk"] != "read")


def test_unknown_autonomy_level_is_one_clear_line(env):
    code, out, err = run(["investigate", str(DEMOS[0])], {**env, "OPSAGENT_AUTONOMY_LEVEL": "L9"})
    assert code != 0
    assert "OPSAGENT_AUTONOMY_LEVEL" in err and "L9" in err
    assert "Traceback" not in err + out


def test_missing_incident_folder(env, tmp_path):
    code, out, err = run(["investigate", str(tmp_path / "nope")], env)
    assert code != 0
    assert "nope" in err and "not a folder" in err
    assert "Traceback" not in err + out


def test_malformed_incident_folder_names_file_and_problem(env, tmp_path):
    folder = tmp_path / "broken"
    shutil.copytree(DEMOS[0], folder)
    csv = next((folder / "metrics").glob("*.csv"))
    lines = csv.read_text().splitlines()
    lines[5] = lines[5].rsplit(",", 1)[0]  # a truncated row
    csv.write_text("\n".join(lines) + "\n")
    code, _, err = run(["investigate", str(folder)], env)
    assert code != 0
    assert csv.name in err and "line 6" in err


def test_unreadable_runbook_names_the_file(env, tmp_path):
    books = tmp_path / "runbooks"
    shutil.copytree(REPO / "runbooks", books)
    (books / "broken.md").write_text("---\nid: broken\ntitle: [\n---\n")
    code, _, err = run(["investigate", str(DEMOS[0])], {**env, "OPSAGENT_RUNBOOKS_DIR": str(books)})
    assert code != 0
    assert "broken.md" in err and "YAML" in err


def test_unknown_format_is_rejected(env):
    code, _, err = run(["investigate", str(DEMOS[0]), "--format", "pdf"], env)
    assert code != 0 and "pdf" in err
