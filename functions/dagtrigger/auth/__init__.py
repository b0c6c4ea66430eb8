"""How dagtrigger proves who it is to Airflow: one small protocol, one module per auth path.

Token-based paths share `CachedTokenAuth`, which holds the token, renews it shortly before it
expires and after a rejection, and does so under a lock so concurrent events fetch it once.
Every credential an auth path holds is handed to `remember_secret`, so that no message shows it.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from dagtrigger.redact import remember_secret


class Auth(Protocol):
    """Supplies the headers that authenticate one request."""

    description: str  # who we claim to be, for error messages; never a secret

    def headers(self) -> Mapping[str, str]: ...

    def refresh(self) -> bool:
        """Forget the current credential; True when fetching a new one may change the answer."""
        ...

    def hint(self, status: int) -> str:
        """What to check or grant when Airflow answers 401 or 403 to this identity."""
        ...


class NoAuth:
    description = "no authentication"

    def headers(self) -> Mapping[str, str]:
        return {}

    def refresh(self) -> bool:
        return False

    def hint(self, status: int) -> str:
        return (
            "The server requires authentication: set AIRFLOW_USERNAME and AIRFLOW_PASSWORD, "
            "or AIRFLOW_TOKEN, or AIRFLOW_AUTH for a cloud identity."
        )


@dataclass(frozen=True, slots=True)
class Token:
    value: str
    expires_at: float | None  # seconds since the epoch; None when the issuer does not say


class CachedTokenAuth(ABC):
    """A bearer token fetched on first use, reused until shortly before it expires."""

    description = "a bearer token"
    refresh_margin = 120.0  # renew this long before expiry so no request carries a dying token

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        self._clock = clock or time.time
        self._token: Token | None = None
        self._lock = threading.Lock()
        self.fetch_count = 0

    @abstractmethod
    def fetch_token(self) -> Token:
        """Obtain a new token from the issuer."""

    def headers(self) -> Mapping[str, str]:
        return {"Authorization": f"Bearer {self._current().value}"}

    def refresh(self) -> bool:
        with self._lock:
            self._token = None
        return True

    def hint(self, status: int) -> str:
        return "Check that the token's identity exists in Airflow and has a role that may trigger DAG runs."

    def _current(self) -> Token:
        with self._lock:
            token = self._token
            if token is None or self._expiring(token):
                token = self._token = self.fetch_token()
                remember_secret(token.value)
                self.fetch_count += 1
            return token

    def _expiring(self, token: Token) -> bool:
        return (
            token.expires_at is not None and token.expires_at - self.refresh_margin <= self._clock()
        )
