"""Settings: one ``Settings`` object, built once by the CLI or ``create_app()``, never at import.

Sources, highest first: constructor arguments, ``OPSAGENT_*`` environment variables (nested with
``__``, e.g. ``OPSAGENT_LLM__BASE_URL``), the YAML file named by ``OPSAGENT_CONFIG_FILE`` (default
``./opsagent.yaml`` when it exists), then the defaults in the classes.

One module per group of settings: ``settings`` (``Settings`` itself), ``source_settings`` (where
evidence comes from) with the PromQL ``signals`` catalogues, ``llm_settings``, ``autonomy_settings``
(policy, limits, executors) and ``service_settings`` (API tokens, notifiers, console, incidents); and
``parse_duration``. Import them from ``opsagent.config``.
"""

from opsagent.config.autonomy_settings import (
    AutonomySettings,
    HttpExecutorSettings,
    KubernetesExecutorSettings,
    MaintenanceWindow,
    PolicyRule,
)
from opsagent.config.durations import parse_duration
from opsagent.config.llm_settings import LLMSettings
from opsagent.config.service_settings import (
    ApiRole,
    ApiToken,
    ConsoleSettings,
    IncidentSettings,
    NotifySettings,
    WebhookNotifierSettings,
)
from opsagent.config.settings import Settings
from opsagent.config.signals import DEFAULT_PROMETHEUS_SIGNALS, PROMETHEUS_CLIENT_SIGNALS, SIGNAL_CATALOGUES
from opsagent.config.source_settings import (
    FileLogSettings,
    LokiSettings,
    NormalPeriodSettings,
    PrometheusSettings,
    TopologySettings,
)

__all__ = [
    "DEFAULT_PROMETHEUS_SIGNALS",
    "PROMETHEUS_CLIENT_SIGNALS",
    "SIGNAL_CATALOGUES",
    "ApiRole",
    "ApiToken",
    "AutonomySettings",
    "ConsoleSettings",
    "FileLogSettings",
    "HttpExecutorSettings",
    "IncidentSettings",
    "KubernetesExecutorSettings",
    "LLMSettings",
    "LokiSettings",
    "MaintenanceWindow",
    "NormalPeriodSettings",
    "NotifySettings",
    "PolicyRule",
    "PrometheusSettings",
    "Settings",
    "TopologySettings",
    "WebhookNotifierSettings",
    "parse_duration",
]
