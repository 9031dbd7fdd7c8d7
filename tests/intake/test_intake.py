import json
from pathlib import Path

import pytest

from opsagent.errors import AlertPayloadError
from opsagent.intake import incident_from_alertmanager, incident_id_for_group, parse_alertmanager

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "alertmanager"


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def test_real_firing_payload_becomes_an_incident_for_its_group():
    payload = parse_alertmanager(load("01-firing-HighErrorRate.json"))
    incident = incident_from_alertmanager(payload)
    assert incident.id == incident_id_for_group(payload.groupKey)
    assert incident.alert_names == ["HighErrorRate"]
    assert incident.services == ["checkout"]
    assert incident.namespace == "shop"
    assert incident.alerts[0].ends_at is None  # Alertmanager's zero time means "still firing"
    assert incident.window.start < incident.alert_time < incident.window.end


def test_resolved_payload_of_the_same_group_maps_to_the_same_incident():
    firing = parse_alertmanager(load("01-firing-HighErrorRate.json"))
    resolved = parse_alertmanager(load("02-resolved-HighErrorRate.json"))
    assert incident_from_alertmanager(firing).id == incident_from_alertmanager(resolved).id
    assert incident_from_alertmanager(resolved).alerts[0].status == "resolved"


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda p: p.pop("groupKey"), "groupKey"),
        (lambda p: p.update(version="3"), "version"),
        (lambda p: p.update(alerts=[]), "alerts"),
        (lambda p: p["alerts"][0].update(startsAt="yesterday"), "alerts.0.startsAt"),
        # Go's zero time (found by the schema fuzzer): no window can be computed around it
        (lambda p: p["alerts"][0].update(startsAt="0001-01-01T00:00:00Z"), "alerts.0.startsAt"),
        (lambda p: p["alerts"][0].update(startsAt="9999-12-31T23:59:59Z"), "alerts.0.startsAt"),
        (lambda p: p["alerts"][0].update(endsAt="9999-12-31T23:59:59Z"), "alerts.0.endsAt"),
    ],
)
def test_malformed_payload_names_the_field(mutate, field):
    payload = load("01-firing-HighErrorRate.json")
    mutate(payload)
    with pytest.raises(AlertPayloadError, match=field.replace(".", r"\.")):
        parse_alertmanager(payload)


def test_unset_end_is_go_zero_time():
    payload = load("01-firing-HighErrorRate.json")
    payload["alerts"][0]["endsAt"] = "0001-01-01T00:00:00Z"
    assert incident_from_alertmanager(parse_alertmanager(payload)).alerts[0].ends_at is None


def test_format_errors_survive_pickling_to_worker_processes():
    import pickle

    from opsagent.errors import IncidentFormatError, RunbookFormatError

    for error in (
        IncidentFormatError("/x/metrics/a.csv", "line 3: 2 fields"),
        RunbookFormatError("b.md", "no id"),
    ):
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error)
        assert (copy.path, copy.problem, str(copy)) == (error.path, error.problem, str(error))
