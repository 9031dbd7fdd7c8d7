"""Reports of an investigation: a JSON document with stable names (``json_report``) and Markdown
(``markdown``), with the words (``labels``), links (``links``) and action output (``action_output``)
they share.
"""

from opsagent.report.action_output import command_status
from opsagent.report.json_report import REPORT_TEMPLATES, to_json
from opsagent.report.labels import reasoner_detail, status_label
from opsagent.report.links import alert_links, dashboard_link
from opsagent.report.markdown import to_markdown

__all__ = [
    "REPORT_TEMPLATES",
    "alert_links",
    "command_status",
    "dashboard_link",
    "reasoner_detail",
    "status_label",
    "to_json",
    "to_markdown",
]
