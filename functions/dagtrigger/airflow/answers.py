"""What an answer means: decided once, from its status, for every request dagtrigger makes.

`classify` names the kind of problem an answer reports (none for a success):

    3xx        redirect         never followed: the URL names another address
    401        authentication   the credential was rejected
    403        authorization    the identity may not do this
    404        not-found        the caller names what is missing (a DAG, an API, an environment)
    400, 422   rejected         the request was refused as sent (for a trigger: its conf)
    429        throttled        may pass: wait Retry-After, then retry
    5xx        server-error     may pass: retry
    other      refused          a retry will not change it

The caller words the error for what it asked (`Answer.error`, which may name a narrower kind),
or lets `Answer.error_for` word it as every request is worded. The kind picks the error's
class, and so what the platform does with the event.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from dagtrigger.auth import Auth
from dagtrigger.errors import (
    ApiVersionError,
    AuthenticationError,
    AuthorizationError,
    ConfigurationError,
    ConfRejectedError,
    DagNotFoundError,
    DagTriggerError,
    ErrorKind,
    PermanentTriggerError,
    TransientTriggerError,
)
from dagtrigger.http import Response

REFUSALS = frozenset({ErrorKind.AUTHENTICATION, ErrorKind.AUTHORIZATION})

_ERROR_CLASS: Mapping[ErrorKind, type[DagTriggerError]] = {
    ErrorKind.CONFIGURATION: ConfigurationError,
    ErrorKind.REDIRECT: ConfigurationError,
    ErrorKind.AUTHENTICATION: AuthenticationError,
    ErrorKind.AUTHORIZATION: AuthorizationError,
    ErrorKind.NOT_FOUND: PermanentTriggerError,
    ErrorKind.DAG_NOT_FOUND: DagNotFoundError,
    ErrorKind.REJECTED: PermanentTriggerError,
    ErrorKind.CONF_REJECTED: ConfRejectedError,
    ErrorKind.API_VERSION: ApiVersionError,
    ErrorKind.REFUSED: PermanentTriggerError,
    ErrorKind.THROTTLED: TransientTriggerError,
    ErrorKind.SERVER_ERROR: TransientTriggerError,
    ErrorKind.RUN_CONFLICT: TransientTriggerError,
    ErrorKind.UNREACHABLE: TransientTriggerError,
    ErrorKind.TIMEOUT: TransientTriggerError,
    ErrorKind.UNAVAILABLE: TransientTriggerError,
}


def error_of(
    kind: ErrorKind,
    problem: str,
    fix: str | None = None,
    *,
    status: int | None = None,
    retry_after: float | None = None,
) -> DagTriggerError:
    """The error for a kind of problem, of the class that kind calls for."""
    error_class = _ERROR_CLASS[kind]
    if not error_class.retryable:
        retry_after = None  # no wait is worth it when no retry comes
    return error_class(problem, fix=fix, kind=kind, status=status, retry_after=retry_after)


@dataclass(frozen=True, slots=True)
class Asked:
    """A request as its errors name it."""

    server: str  # who answered: "Airflow at https://airflow.example.com", "The Composer API"
    action: str  # what was asked of it: "trigger DAG 'etl'", "GET /api/v2/version"
    auth: Auth | None = None  # the identity a 401 or 403 refused; its hint is the fix


@dataclass(frozen=True, slots=True)
class Answer:
    """An answer and the kind of problem it reports (None for a success)."""

    response: Response
    kind: ErrorKind | None

    @property
    def status(self) -> int:
        return self.response.status

    @property
    def detail(self) -> str:
        """The server's own explanation, redacted and cut short."""
        return self.response.detail()

    @property
    def retry_after(self) -> float | None:
        return self.response.retry_after()

    @property
    def location(self) -> str | None:
        """Where a redirect points."""
        return self.response.headers.get("Location")

    @property
    def retryable(self) -> bool:
        return self.kind is not None and _ERROR_CLASS[self.kind].retryable

    def error(
        self, problem: str, fix: str | None = None, *, kind: ErrorKind | None = None
    ) -> DagTriggerError:
        """The error for this answer in the caller's words; `kind` narrows the answer's own
        (a 404 for a DAG is dag-not-found). A success the caller cannot use is refused."""
        return error_of(
            kind or self.kind or ErrorKind.REFUSED,
            problem,
            fix,
            status=self.status,
            retry_after=self.retry_after,
        )

    def error_for(self, asked: Asked) -> DagTriggerError:
        """The error for this answer in the words every request shares."""
        status, detail, auth = self.status, self.detail, asked.auth
        if self.kind is ErrorKind.REDIRECT:
            return self.error(
                f"{asked.server}, asked to {asked.action}, was answered {status}, a redirect to "
                f"{self.location or '(no Location header)'}: dagtrigger never follows redirects "
                "(they would carry credentials elsewhere, and a POST would be lost)",
                "Set the URL to the address that answers directly, e.g. https:// instead of "
                "http://, or the redirect target's base URL.",
            )
        if self.kind is ErrorKind.AUTHENTICATION and auth is not None:
            return self.error(
                f"{asked.server} rejected {auth.description} ({status}: {detail})",
                auth.hint(status),
            )
        if self.kind is ErrorKind.AUTHORIZATION and auth is not None:
            return self.error(
                f"{asked.server} refused {auth.description} permission to {asked.action} "
                f"({status}: {detail})",
                auth.hint(status),
            )
        return self.error(f"{asked.server} answered {status} to {asked.action}: {detail}")


def classify(response: Response) -> Answer:
    """What an answer means."""
    return Answer(response, kind_of_status(response.status))


def kind_of_status(status: int) -> ErrorKind | None:
    """The kind of problem an HTTP status reports; None for a success."""
    if status < 300:
        return None
    if status < 400:
        return ErrorKind.REDIRECT
    if status == 429:
        return ErrorKind.THROTTLED
    if status >= 500:
        return ErrorKind.SERVER_ERROR
    return _CLIENT_ERRORS.get(status, ErrorKind.REFUSED)


_CLIENT_ERRORS = {
    400: ErrorKind.REJECTED,
    401: ErrorKind.AUTHENTICATION,
    403: ErrorKind.AUTHORIZATION,
    404: ErrorKind.NOT_FOUND,
    422: ErrorKind.REJECTED,
}
