"""The opsagent error tree.

Every error we raise on purpose derives from :class:`OpsAgentError`; adapters translate library
exceptions into one of these (``raise PrometheusError(...) from exc``) so callers never depend on a
third-party exception type. HTTP status mapping lives only in ``api/http_errors.py``.

    OpsAgentError
    ├── ConfigError                 settings or policy file unusable
    ├── InputError                  something a user gave us is malformed
    │   ├── IncidentFormatError     recorded-incident folder / dataset is unusable
    │   ├── RunbookFormatError      runbook front matter is malformed
    │   ├── AlertPayloadError       Alertmanager payload is malformed
    │   ├── PayloadTooLargeError    a request body over the configured limit
    │   └── ActionValidationError   action unknown or parameters outside its schema
    ├── NotFoundError               an incident, action or conversation that does not exist
    ├── ConflictError               the request clashes with the current state (e.g. nothing to report yet)
    ├── AuthError                   missing or unknown credentials
    │   └── PermissionDeniedError   known caller, role too low
    ├── QueueFullError              too many unfinished investigations; retry later
    ├── SourceError                 an evidence source failed (becomes an EvidenceGap)
    │   ├── PrometheusError
    │   ├── LogSourceError
    │   ├── TopologyError           the configured topology file cannot be read
    │   └── RunbookIndexError
    ├── ReasonerError               the reasoner could not produce findings
    │   └── LLMError
    │       ├── LLMTimeoutError
    │       └── LLMOutputError      the model's answer failed validation
    ├── PolicyError                 an action was refused by the autonomy policy
    ├── ExecutorError               an action failed to run
    ├── NotifierError               a notification could not be delivered (logged and audited)
    └── StoreError                  persistence failed
"""

from __future__ import annotations

from pathlib import Path


class OpsAgentError(Exception):
    """Base of every error opsagent raises on purpose."""


class ConfigError(OpsAgentError):
    """Settings or policy cannot be used."""


class InputError(OpsAgentError):
    """Something a user gave us is malformed; the message says what and where."""


class _FileProblemError(InputError):
    """An input file that cannot be used: ``"<path>: <problem>"``, with both kept as attributes."""

    def __init__(self, path: Path | str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = str(path)
        self.problem = problem

    def __reduce__(self) -> tuple[type[Exception], tuple[str, str]]:
        # Two-argument constructor: tell pickle how to rebuild it (eval workers send it across processes).
        return (type(self), (self.path, self.problem))


class IncidentFormatError(_FileProblemError):
    """A recorded incident (native folder or public dataset) is unusable."""


class RunbookFormatError(_FileProblemError):
    """A runbook file cannot be parsed; names the file and the field."""


class AlertPayloadError(InputError):
    """An Alertmanager webhook payload is malformed."""


class ActionValidationError(InputError):
    """An action is not in the catalogue, or its parameters do not match its schema."""


class PayloadTooLargeError(InputError):
    """A request body exceeds the configured limit."""


class NotFoundError(OpsAgentError):
    """The thing asked for does not exist."""


class ConflictError(OpsAgentError):
    """The request is valid but the current state does not allow it."""


class AuthError(OpsAgentError):
    """The caller gave no credentials, or credentials nobody issued."""


class PermissionDeniedError(AuthError):
    """The caller is known but their role does not allow this."""


class QueueFullError(OpsAgentError):
    """The investigation queue is at its limit; the caller should retry later."""


class SourceError(OpsAgentError):
    """An evidence source failed; the pipeline turns it into an EvidenceGap."""


class PrometheusError(SourceError):
    """Prometheus was unreachable or rejected a query."""


class LogSourceError(SourceError):
    """The log store was unreachable or rejected a query."""


class TopologyError(SourceError):
    """The configured topology (``OPSAGENT_TOPOLOGY__FILE``) cannot be read or is malformed."""


class RunbookIndexError(SourceError):
    """The runbook index could not be built or queried."""


class ReasonerError(OpsAgentError):
    """The reasoner could not produce findings."""


class LLMError(ReasonerError):
    """The LLM endpoint failed."""


class LLMTimeoutError(LLMError):
    """The LLM endpoint did not answer in time."""


class LLMOutputError(LLMError):
    """The model's answer did not validate."""


class PolicyError(OpsAgentError):
    """The autonomy policy refused an action."""


class ExecutorError(OpsAgentError):
    """An action failed to run."""


class NotifierError(OpsAgentError):
    """A notifier could not deliver; callers log and audit it, it never stops an action."""


class StoreError(OpsAgentError):
    """Persistence failed."""
