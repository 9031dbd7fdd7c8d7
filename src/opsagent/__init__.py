"""opsagent: an incident-analysis agent for on-call engineers."""

__version__ = "0.1.0"
