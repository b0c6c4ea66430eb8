"""What the Google auth paths share: google-auth on dagtrigger's own connection pool, its errors.

google-auth is imported here and in the modules that use this one, never by the core, so that a
function that does not talk to Google never loads it.
"""

from __future__ import annotations

import calendar
import logging
from typing import Any

from dagtrigger.auth import Token
from dagtrigger.errors import (
    AuthenticationError,
    ConfigurationError,
    ErrorKind,
    TransientTriggerError,
)
from dagtrigger.http import HttpSession

NO_CREDENTIALS_FIX = (
    "On Cloud Functions and Cloud Run the function's service account is used; elsewhere run "
    "`gcloud auth application-default login` or set GOOGLE_APPLICATION_CREDENTIALS to a "
    "service-account key file."
)


def google_request(session: HttpSession) -> Any:
    """google-auth's urllib3 transport over the session's pool: token calls reuse connections."""
    from google.auth.transport.urllib3 import Request

    transport = logging.getLogger("google.auth.transport.urllib3")
    if not any(isinstance(f, _WithholdRequestBodies) for f in transport.filters):
        transport.addFilter(_WithholdRequestBodies())
    return Request(session.pool)


class _WithholdRequestBodies(logging.Filter):
    """google-auth logs each request body at DEBUG (GOOGLE_SDK_PYTHON_LOGGING_SCOPE turns it on)
    and hashes tokens in it, but not the `assertion` a service-account key signed: that JWT buys
    access tokens for an hour. The line stays, the body does not."""

    def filter(self, record: logging.LogRecord) -> bool:
        request = getattr(record, "httpRequest", None)
        if isinstance(request, dict) and request.get("body") is not None:
            record.httpRequest = {**request, "body": "(withheld by dagtrigger)"}
        return True


def refresh_credentials(credentials: Any, request: Any, what: str) -> Token:
    """Ask Google for a new token; its failures become dagtrigger's classified errors."""
    from google.auth import exceptions

    try:
        credentials.refresh(request)
    except exceptions.DefaultCredentialsError as exc:
        raise ConfigurationError(
            f"No Google credentials for {what}: {exc}", fix=NO_CREDENTIALS_FIX
        ) from exc
    except exceptions.TransportError as exc:
        # The message carries the error's text, redacted; the cause (the token endpoint's answer
        # as google-auth quotes it) would reach a traceback unredacted, so it is not chained.
        raise TransientTriggerError(
            f"Could not reach Google to obtain {what}: {exc}", kind=ErrorKind.UNREACHABLE
        ) from None
    except exceptions.RefreshError as exc:
        if getattr(exc, "retryable", False):
            raise TransientTriggerError(f"Google could not issue {what} now: {exc}") from None
        raise AuthenticationError(
            f"Google refused to issue {what}: {exc}",
            fix="Check that the service account exists, is enabled and its key is valid.",
        ) from None
    expiry = getattr(
        credentials, "expiry", None
    )  # a naive datetime in UTC, by google-auth's convention
    expires_at = float(calendar.timegm(expiry.utctimetuple())) if expiry is not None else None
    return Token(str(credentials.token), expires_at)


def identity_of(credentials: Any) -> str:
    email = getattr(credentials, "service_account_email", None)
    return (
        f"Google identity {email}"
        if isinstance(email, str) and "@" in email
        else "the Google identity of the function"
    )
