"""Deterministic, readable DAG run ids: the same event always maps to the same run."""

from __future__ import annotations

import hashlib
import json
import re

from dagtrigger.events.model import Event

MAX_RUN_ID_LENGTH = 250
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.~:+-]+$")  # Airflow's default allowed_run_id_pattern

_DISALLOWED = re.compile(r"[^A-Za-z0-9_.~:+-]+")
_DOTS = re.compile(r"\.{2,}")  # Airflow 3 refuses run ids holding ".." (path traversal)
_DIGEST_LENGTH = 20  # 80 bits: collisions between distinct events are not a practical concern
_SEPARATOR = "__"
_MAX_KIND_LENGTH = 60


def build_dag_run_id(event: Event) -> str:
    """Return `<provider>__<kind>__<label>__<digest>` for the event.

    The digest covers the event's full identity, so two events whose readable parts coincide after
    sanitising or truncation still get different ids; the readable parts are for people scanning
    the Airflow UI.
    """
    digest = hashlib.sha256(canonical_identity(event.identity).encode()).hexdigest()
    digest = digest[:_DIGEST_LENGTH]
    kind = _sanitise(event.event_type.rsplit(".", 1)[-1])[:_MAX_KIND_LENGTH]
    head = f"{event.provider}{_SEPARATOR}{kind}"
    room = MAX_RUN_ID_LENGTH - len(head) - len(digest) - 2 * len(_SEPARATOR)
    label = _sanitise(event.label)[: max(room, 0)].rstrip("_")
    return _SEPARATOR.join(part for part in (head, label, digest) if part)


def canonical_identity(identity: tuple[str, ...]) -> str:
    """The identity as `json.dumps(list(identity))` writes it: the text the digest is taken of.

    JSON keeps part boundaries unambiguous and escapes lone surrogates a payload may carry. The
    text must never change between releases (a redelivered event would get a new run): the golden
    events pin the run ids it gives.
    """
    return json.dumps(list(identity))


def _sanitise(text: str) -> str:
    return _DOTS.sub(".", _DISALLOWED.sub("_", text)).strip("_") or "_"


CLIENT_TOKEN_PREFIX = "dagtrigger-"  # noqa: S105 (an idempotency token, no secret)


def build_client_token(dag_run_id: str, target: str) -> str:
    """The idempotency token for one run of one target (e.g. MWAA Serverless's ClientToken).

    It is derived from the run id, itself derived from the event's identity, and from the target,
    so that an event starting runs of two workflows gives each its own token: 75 printable ASCII
    characters, within the 1 to 128 of [!-~] such tokens take.
    """
    digest = hashlib.sha256(json.dumps([dag_run_id, target]).encode()).hexdigest()
    return CLIENT_TOKEN_PREFIX + digest
