"""What ``Grounding`` reads as a citation, a service name and a claim that an action ran."""

from __future__ import annotations

import pytest

from opsagent.reasoning.grounding import Grounding

G = Grounding.of(
    ["orders", "payment", "front-end"],
    ["metric:orders:latency", "log:orders:0", "metric:front-end->orders:rate"],
)


@pytest.mark.parametrize(
    "text",
    [
        "The orders service ran out of database connections.",
        "Root cause: connection pool exhaustion in orders [metric:orders:latency].",
        "See log:orders:0 and metric:front-end->orders:rate.",
        "The affected service is orders; a downstream service (payment) slowed.",
        "The pod was restarted 3 times by Kubernetes before the alert.",
        "Restart the orders deployment if the pool stays exhausted.",
    ],
)
def test_grounded_prose_passes(text: str) -> None:
    assert G.problems(text) == []


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("Root cause: billing-ghost.", "'billing-ghost' as a root cause"),
        ("The billing service is down.", "'billing' as a service"),
        ("Check service `ghost_1`.", "'ghost_1' as a service"),
        ("See log:orders:9.", "'log:orders:9'"),
        ("Orders has been restarted.", "audit log records none"),
        ("I have rolled back payment.", "audit log records none"),
    ],
)
def test_ungrounded_prose_is_named(text: str, problem: str) -> None:
    assert any(problem in p for p in G.problems(text)), G.problems(text)


def test_claims_are_checked_against_the_audit_log() -> None:
    ran = Grounding.of(["orders", "payment"], [], [("restart-deployment", "orders")])
    assert ran.problems("I restarted orders.") == []
    assert "no action there" in ran.problems("I restarted payment.")[0]
    assert "every service" in ran.problems("We have restarted all services.")[0]
