from pathlib import Path

import pytest

from opsagent.autonomy.catalog import ActionCatalog
from opsagent.domain import ActionTarget
from opsagent.errors import ActionValidationError, RunbookFormatError
from opsagent.evidence.embeddings import HashingEmbedding
from opsagent.evidence.runbook_index import RunbookIndex
from opsagent.evidence.runbooks import load_runbooks, parse_runbook

REPO = Path(__file__).resolve().parents[2]

GOOD = """---
id: sample
title: Sample runbook
alerts: [SampleAlert]
actions:
  - id: restart
    risk: low
    executor: kubernetes
    params: {type: object, properties: {deployment: {type: string, pattern: "^[a-z-]+$"}},
             required: [deployment], additionalProperties: false}
---
# Sample

## Symptoms
- things are slow

## Remediation
1. Restart the deployment.
2. Watch the error rate
   for ten minutes.
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.md"
    path.write_text(text)
    return path


def test_parses_front_matter_and_sections(tmp_path):
    book = parse_runbook(write(tmp_path, "sample", GOOD))
    assert book.alerts == ["SampleAlert"]
    assert book.remediation == ["Restart the deployment.", "Watch the error rate for ten minutes."]
    assert book.actions[0].risk.value == "low"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("# no front matter\n", "no YAML front matter"),
        ("---\nid: x\ntitle: [\n---\nbody\n", "not valid YAML"),
        ("---\nid: bad\ntitle: t\n---\nbody\n", "'alerts' is missing"),
        ("---\nid: other\ntitle: t\nalerts: [A]\n---\nbody\n", "file is named"),
        (
            "---\nid: bad\ntitle: t\nalerts: [A]\nactions: [{id: a, risk: extreme}]\n---\nb\n",
            "actions.0.risk",
        ),
    ],
)
def test_malformed_runbook_names_file_and_field(tmp_path, text, problem):
    path = write(tmp_path, "bad", text)
    with pytest.raises(RunbookFormatError) as info:
        parse_runbook(path)
    assert str(path) in str(info.value)
    assert problem in str(info.value)


def test_bundled_library_loads_with_consistent_actions():
    books = load_runbooks(REPO / "runbooks")
    assert len(books) >= 12
    catalog = ActionCatalog.from_runbooks(books)
    assert len(catalog) >= 5
    for book in books:
        assert book.remediation, f"{book.id} has no numbered remediation steps"


def test_catalog_validates_parameters(tmp_path):
    catalog = ActionCatalog.from_runbooks([parse_runbook(write(tmp_path, "sample", GOOD))])
    target = ActionTarget(service="orders")
    assert catalog.propose("restart", target, {"deployment": "orders"}).risk.value == "low"
    with pytest.raises(ActionValidationError, match="not in the catalogue"):
        catalog.propose("drain-node", target, {})
    with pytest.raises(ActionValidationError, match="does not match"):
        catalog.propose("restart", target, {"deployment": "orders; rm -rf /"})


def test_alert_name_match_ranks_first_and_index_is_incremental(tmp_path):
    books = load_runbooks(REPO / "runbooks")
    index = RunbookIndex(books, HashingEmbedding(), chroma_path=tmp_path / "chroma")
    first = index.sync()
    assert first.added == len(books)
    again = RunbookIndex(books, HashingEmbedding(), chroma_path=tmp_path / "chroma").sync()
    assert again.added == again.updated == 0
    assert again.unchanged == len(books)
    covering = next(b for b in books if "PodOOMKilled" in b.alerts)
    top = index.search("pod was killed", alert_names=["PodOOMKilled"], k=3)[0]
    assert "PodOOMKilled" in next(b for b in books if b.id == top.id).alerts
    assert top.id == covering.id or "covers alert" in top.reason
