"""The live lab: a small shop of real processes, monitored by real Prometheus and Alertmanager,
with a fault injector and a campaign runner that measures opsagent on live incidents (docs/LAB.md)."""
