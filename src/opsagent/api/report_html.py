"""The HTML report: the JSON report (``report.to_json``) rendered through an escaped template."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jinja2 import Environment, select_autoescape
from sqlalchemy import select
from sqlalchemy.orm import Session

from opsagent.autonomy.approvals import ActionRequest
from opsagent.domain import Investigation
from opsagent.report import to_json

_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ r.incident.title }}</title>
<style>
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}
.meta{color:#666}code{background:#f4f4f4;padding:0 .2rem}.warn{color:#b42318}
</style></head><body>
<h1>{{ r.incident.title }}</h1>
<p class="meta">Incident <code>{{ r.incident.id }}</code> · autonomy {{ r.autonomy_level }} ·
reasoner {{ r.reasoner_detail }} · {{ "%.2f"|format(r.seconds) }}s</p>
{% if r.fell_back %}<p class="warn"><strong>The {{ r.trace.reasoner }} reasoner failed; these are the
{{ r.reasoner }} findings.</strong></p>{% endif %}
{% if r.links %}<p>{% for l in r.links %}<a href="{{ l.href }}" rel="noreferrer">{{ l.text }}</a>{% if not loop.last %} · {% endif %}{% endfor %}</p>{% endif %}
{% if r.incident.alerts %}<h2>Alerts</h2><table><tr><th>alert</th><th>severity</th><th>status</th><th>starts at</th><th>labels</th></tr>
{% for a in r.incident.alerts %}<tr><td>{{ a.name }}</td><td>{{ a.severity or "" }}</td><td>{{ a.status }}</td>
<td>{{ a.starts_at }}</td><td>{% for k, v in a.labels.items() %}<code>{{ k }}={{ v }}</code> {% endfor %}</td></tr>{% endfor %}
</table>{% endif %}
<p>{{ r.summary }}</p>
{% if r.root_causes %}<h2>Likely root causes</h2><ol>
{% for rc in r.root_causes %}<li><strong>{{ rc.service }}</strong> — {{ rc.fault_type }},
confidence {{ "%.2f"|format(rc.confidence) }}<ul>
{% for e in rc.evidence %}<li><code>{{ e.id }}</code>: {{ e.summary }}</li>{% endfor %}</ul></li>
{% endfor %}</ol>{% endif %}
{% if r.log_templates and r.log_templates.templates %}<h2>Log templates</h2>
<p class="meta">New or increased since {{ r.log_templates.split or "the incident began" }}
({{ r.log_templates.log_lines }} lines{% if r.log_templates.sampled_lines %},
{{ r.log_templates.sampled_lines }} of them condensed{% endif %}, {{ r.log_templates.template_count }} templates)</p>
<table><tr><th>change</th><th>service</th><th>template</th><th>before</th><th>during</th><th>example</th></tr>
{% for t in r.log_templates.templates %}<tr><td>{{ t.change }}{% if t.error %} error{% endif %}</td>
<td>{{ t.service }}</td><td><code>{{ t.template }}</code></td><td>{{ t.normal_count }}</td>
<td>{{ t.incident_count }}</td><td><code>{{ t.example or "" }}</code></td></tr>{% endfor %}</table>{% endif %}
{% if r.runbooks %}<h2>Runbooks</h2><ul>
{% for b in r.runbooks %}<li><strong>{{ b.title }}</strong> (<code>{{ b.id }}</code>,
score {{ "%.2f"|format(b.score) }})</li>{% endfor %}</ul>{% endif %}
{% if r.remediation %}<h2>Remediation</h2><ol>
{% for step in r.remediation %}<li>{{ step }}</li>{% endfor %}</ol>{% endif %}
{% if r.actions %}<h2>Actions</h2><table><tr><th>action</th><th>risk</th><th>target</th>
<th>{{ "status" if r.actions[0].source == "runner" else "decision" }}</th><th>why</th><th>result</th></tr>
{% for a in r.actions %}<tr><td>{{ a.id }}</td><td>{{ a.risk }}</td><td>{{ a.target }}</td>
<td>{{ a.status_label }}</td><td>{{ a.reason }}{% if a.missing_params %}<br><strong>needs parameters:
{{ a.missing_params|join(", ") }}</strong>{% endif %}</td><td>{{ a.result or "" }}
{% for c in a.commands or [] %}<br><code>{{ c.command }}</code>: {{ "ok" if c.ok else "FAILED (exit %d)"|format(c.status) }}{% endfor %}
{% if a.output %}<details><summary>output</summary><pre>{{ a.output }}</pre></details>{% endif %}</td></tr>{% endfor %}
</table>{% endif %}
{% if r.gaps %}<h2>Missing evidence</h2><ul>
{% for g in r.gaps %}<li>{{ g.source }}: {{ g.reason }}</li>{% endfor %}</ul>{% endif %}
{% if r.notes %}<h2>Notes</h2><ul>{% for n in r.notes %}<li>{{ n }}</li>{% endfor %}</ul>{% endif %}
{% if r.audit %}<h2>Audit log (actions)</h2><table><tr><th>time (UTC)</th><th>actor</th><th>event</th>
<th>detail</th></tr>
{% for e in r.audit %}<tr><td>{{ e.at }}</td><td>{{ e.actor }}</td><td>{{ e.event }}</td>
<td>{{ e.detail }}</td></tr>{% endfor %}</table>{% endif %}
</body></html>
"""

_env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
_template = _env.from_string(_TEMPLATE)


def action_outputs(session: Session, incident_id: str) -> dict[str, str]:
    """What each executed action request of the incident printed (its latest execution), by request id."""
    from opsagent.store.models import AuditRow

    rows = session.scalars(
        select(AuditRow)
        .where(AuditRow.incident_id == incident_id, AuditRow.kind == "execution_result")
        .order_by(AuditRow.seq)
    )
    out: dict[str, str] = {}
    for row in rows:
        output = (row.detail or {}).get("output")
        if row.request_id and isinstance(output, str) and output:
            out[row.request_id] = output
    return out


def to_html(
    inv: Investigation,
    requests: Sequence[ActionRequest] | None = None,
    audit: Sequence[dict[str, Any]] = (),
    *,
    dashboard_url: str | None = None,
    outputs: dict[str, str] | None = None,
) -> str:
    """A standalone HTML page; every value from alerts, logs or an LLM is escaped.

    ``requests`` and ``audit`` (the incident's action requests and autonomy audit entries, as the
    JSON report has them) show what actually happened to the proposed actions; ``outputs`` what the
    executed ones printed; ``dashboard_url`` the configured dashboard template.
    """
    report = to_json(inv, requests, dashboard_url=dashboard_url, outputs=outputs)
    return _template.render(r={**report, "audit": list(audit)})
