"""Every failure dagtrigger raises, classified by what the platform should do with the event.

    DagTriggerError
    ├── ConfigurationError      a setting is missing or wrong: fix the deployment (fails fast)
    ├── EventError              the event cannot be used: log it, acknowledge it, never retry
    │   └── UnsupportedEventError   a well-formed payload of a kind dagtrigger does not handle
    ├── RouteError              a routing rule cannot be applied to this event: never retry
    ├── PermanentTriggerError   Airflow refused the run for a reason a retry will not change
    │   ├── AuthenticationError     the credential was rejected (401, or a 403 for a bad token)
    │   ├── AuthorizationError      the identity is known but may not trigger this DAG (403)
    │   ├── DagNotFoundError        404 for the DAG
    │   ├── ConfRejectedError       400/422: the body or the conf was refused
    │   └── ApiVersionError         the configured API version does not exist on this server
    └── TransientTriggerError   429, 5xx, timeouts, connection errors: retry, then redeliver

Entry points map the three branches onto the platform's answer: acknowledge (event, route and
permanent errors, logged as errors) or raise so the platform redelivers (transient errors).

Every message is redacted when the error is made: it often quotes an answer, and an answer may
echo the request's credentials. Whatever logs, returns or re-raises an error then shows it as is.
"""

from __future__ import annotations

from dagtrigger.redact import redact


class DagTriggerError(Exception):
    """Base of every error dagtrigger raises on purpose."""

    retryable = False

    def __init__(self, message: str) -> None:
        super().__init__(redact(message))


class ConfigurationError(DagTriggerError):
    """A setting is missing or inconsistent; the message names the variable and the fix."""


class EventError(DagTriggerError):
    """The event is malformed or unusable; it is acknowledged and never retried."""


class UnsupportedEventError(EventError):
    """The payload is well formed but of a kind dagtrigger does not handle."""


class RouteError(DagTriggerError):
    """A routing rule matched but could not build its conf for this event."""


class PermanentTriggerError(DagTriggerError):
    """Airflow refused the run for a reason that a retry will not change."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AuthenticationError(PermanentTriggerError):
    """The credential was rejected."""


class AuthorizationError(PermanentTriggerError):
    """The identity is authenticated but lacks the permission to trigger the DAG."""


class DagNotFoundError(PermanentTriggerError):
    """The DAG does not exist (or has not been parsed yet) on the Airflow server."""


class ConfRejectedError(PermanentTriggerError):
    """Airflow rejected the request body, usually the conf against the DAG's params."""


class ApiVersionError(PermanentTriggerError):
    """The REST API version in use does not exist on this Airflow server."""


class TransientTriggerError(DagTriggerError):
    """A failure that may pass: throttling, server errors, timeouts, lost connections."""

    retryable = True

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
