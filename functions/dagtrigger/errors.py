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

Every error also carries its meaning as data, so that no caller reads it from the wording:
`kind` (what kind of problem), `status` (the HTTP status that decided it, if one did),
`retryable`, `retry_after`, and apart from the `problem`, the `fix`: what to do about it. The
message people read is the problem followed by the fix.

Every message is redacted when the error is made: it often quotes an answer, and an answer may
echo the request's credentials. Whatever logs, returns or re-raises an error then shows it as is.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from dagtrigger.redact import redact


class ErrorKind(StrEnum):
    """What kind of problem an error reports; `doctor`, the CLI and logs branch on it."""

    CONFIGURATION = "configuration"  # a setting is missing, wrong or unusable
    REDIRECT = "redirect"  # the server redirects: the URL names another address
    UNTRUSTED_CERTIFICATE = "untrusted-certificate"  # the server's TLS certificate
    EVENT = "event"  # the event cannot be used
    ROUTE = "route"  # a routing rule cannot build its run for this event
    AUTHENTICATION = "authentication"  # the credential was rejected
    AUTHORIZATION = "authorization"  # the identity may not do this
    NOT_FOUND = "not-found"  # what was asked for does not exist (not a DAG)
    DAG_NOT_FOUND = "dag-not-found"
    REJECTED = "rejected"  # the request was refused as sent (400, 422)
    CONF_REJECTED = "conf-rejected"  # a run's body or conf was refused
    API_VERSION = "api-version"  # the REST API version in use does not exist there
    REFUSED = "refused"  # any other refusal a retry will not change
    THROTTLED = "throttled"  # 429: too many requests for now
    SERVER_ERROR = "server-error"  # 5xx, or an answer too broken to use
    RUN_CONFLICT = "run-conflict"  # another run holds the logical date this run needs
    UNREACHABLE = "unreachable"  # no connection, or it was lost before a whole answer came
    TLS_HANDSHAKE = "tls-handshake"  # the connection was made, TLS could not be set up
    TIMEOUT = "timeout"  # no whole answer in the time allowed
    UNAVAILABLE = "unavailable"  # any other failure that may pass


def _compose(problem: str, fix: str | None) -> str:
    """The message people read: the problem, then the fix. A fix that is a sentence of its own
    follows a full stop; one that goes on with the problem's sentence follows a colon."""
    if not fix:
        return problem
    return f"{problem}{'. ' if fix[0].isupper() else ': '}{fix}"


class DagTriggerError(Exception):
    """Base of every error dagtrigger raises on purpose."""

    retryable: ClassVar[bool] = False
    default_kind: ClassVar[ErrorKind] = ErrorKind.REFUSED

    def __init__(
        self,
        problem: str,
        *,
        fix: str | None = None,
        kind: ErrorKind | None = None,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.problem = redact(problem)
        self._fix = None if fix is None else redact(fix)
        self._kind = kind
        self._status = status
        self.retry_after = retry_after
        super().__init__(_compose(self.problem, self._fix))

    @property
    def kind(self) -> ErrorKind:
        if self._kind is not None:
            return self._kind
        wrapped = self._wrapped()
        return wrapped.kind if wrapped is not None else self.default_kind

    @property
    def fix(self) -> str | None:
        if self._fix is not None:
            return self._fix
        wrapped = self._wrapped()
        return wrapped.fix if wrapped is not None else None

    @property
    def status(self) -> int | None:
        if self._status is not None:
            return self._status
        wrapped = self._wrapped()
        return wrapped.status if wrapped is not None else None

    def _wrapped(self) -> DagTriggerError | None:
        """The error of the same class this one was raised from, adding only words (retry's
        give-up, an entry point's redelivery): what it does not say, that one decided."""
        cause = self.__cause__
        return cause if isinstance(cause, type(self)) and cause is not self else None


class ConfigurationError(DagTriggerError):
    """A setting is missing or inconsistent; the message names the variable and the fix."""

    default_kind = ErrorKind.CONFIGURATION


class EventError(DagTriggerError):
    """The event is malformed or unusable; it is acknowledged and never retried."""

    default_kind = ErrorKind.EVENT


class UnsupportedEventError(EventError):
    """The payload is well formed but of a kind dagtrigger does not handle."""


class RouteError(DagTriggerError):
    """A routing rule matched but could not build its conf for this event."""

    default_kind = ErrorKind.ROUTE


class PermanentTriggerError(DagTriggerError):
    """Airflow refused the run for a reason that a retry will not change."""


class AuthenticationError(PermanentTriggerError):
    """The credential was rejected."""

    default_kind = ErrorKind.AUTHENTICATION


class AuthorizationError(PermanentTriggerError):
    """The identity is authenticated but lacks the permission to trigger the DAG."""

    default_kind = ErrorKind.AUTHORIZATION


class DagNotFoundError(PermanentTriggerError):
    """The DAG does not exist (or has not been parsed yet) on the Airflow server."""

    default_kind = ErrorKind.DAG_NOT_FOUND


class ConfRejectedError(PermanentTriggerError):
    """Airflow rejected the request body, usually the conf against the DAG's params."""

    default_kind = ErrorKind.CONF_REJECTED


class ApiVersionError(PermanentTriggerError):
    """The REST API version in use does not exist on this Airflow server."""

    default_kind = ErrorKind.API_VERSION


class TransientTriggerError(DagTriggerError):
    """A failure that may pass: throttling, server errors, timeouts, lost connections."""

    retryable = True
    default_kind = ErrorKind.UNAVAILABLE
