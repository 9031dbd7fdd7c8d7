"""The campaign's record of episodes: the clamp opsagent reports, and fresh against reopened tables."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from lab import campaign, table


def test_the_normal_period_start_is_read_from_opsagents_gap():
    gaps = [
        {"source": "topology", "reason": "no call graph"},
        {
            "source": "normal period",
            "reason": "starts at 2026-12-06 04:40:12 UTC, after the previous episode of this incident "
            "resolved at 2026-12-06 04:39:07 UTC (+65 s for rate windows, ...)",
        },
    ]
    assert campaign.quiet_start(gaps) == datetime(2026, 12, 6, 4, 40, 12, tzinfo=UTC).timestamp()
    assert campaign.quiet_start([{"source": "normal period", "reason": "shorter than wanted: 3 min"}]) is None


def test_fresh_and_reopened_incidents_are_counted_apart(tmp_path: Path):
    cases = []
    for episode, rank in ((1, 1), (2, 1), (3, 2), (4, None)):
        case = campaign.Case("errors", "payment", 1.0, "errors-code", rank_of_truth=rank)
        case.top_fault_type, case.episode, case.reopened = "errors-code", episode, episode > 1
        cases.append(case)
    doc = campaign.summary(cases, 23, {}, 0.0)
    assert doc["by_episode"]["fresh"] == {"n": 1, "ac@1": 1.0, "ac@3": 1.0, "type": 1.0}
    assert doc["by_episode"]["reopened"]["n"] == 3
    assert doc["by_episode"]["reopened"]["ac@1"] == round(1 / 3, 4)
    path = tmp_path / "report.json"
    path.write_text(json.dumps(doc))
    text = table.render(str(path))
    assert "| fresh | 1 | 1.00 | 1.00 | 1.00 |" in text
    assert "| reopened | 3 | 0.33 | 0.67 | 1.00 |" in text
