"""Pure parts of the Prometheus source: query bounds and placeholder filling."""

from __future__ import annotations

import pytest

from opsagent.config import PrometheusSettings
from opsagent.errors import PrometheusError
from opsagent.evidence.prometheus import fill_template, plan_range


def test_step_is_sized_to_the_window_and_aligned() -> None:
    settings = PrometheusSettings()
    plan = plan_range(1_000_000.0, 1_000_000.0 + 7_200, settings)
    assert plan.step == 30 and plan.start % 30 == 0
    assert plan.points <= settings.target_points + 1
    short = plan_range(0.0, 600.0, settings)
    assert short.step == settings.min_step_seconds


def test_range_and_points_are_bounded() -> None:
    settings = PrometheusSettings(max_range_hours=6, max_points=100, target_points=1_000)
    end = 10 * 86_400.0
    plan = plan_range(0.0, end, settings)
    assert plan.end == end and end - plan.start <= 6 * 3600
    assert plan.points <= 100
    with pytest.raises(PrometheusError, match="empty time window"):
        plan_range(end, end, settings)


def test_placeholders_are_regex_literals_and_promql_braces_stay() -> None:
    template = 'sum by (service) (rate(x{namespace=~"{namespace}",pod=~"{pod}"}[5m]))'
    filled = fill_template(template, {"namespace": "shop.eu", "service": "orders"})
    assert filled == 'sum by (service) (rate(x{namespace=~"shop\\\\.eu",pod=~".*"}[5m]))'
