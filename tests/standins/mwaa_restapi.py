"""InvokeRestApi's two halves: checking the request as MWAA does, and calling Airflow with it.

`invoke_refusal(payload)` is the 400 `ValidationException` for a Path outside 1..64 characters,
a Method outside GET/PUT/POST/PATCH/DELETE or QueryParameters that are not an object (AWS's
usual "N validation error(s) detected: Value ... at 'path' failed to satisfy constraint: ..."
wording, assumed for MWAA), else None. `call_airflow(environment, payload)` sends the request to
the environment's Airflow at its API prefix + Path, with QueryParameters as the query string
(lists repeat the key, booleans are `true`/`false`), Body as JSON (not for GET) and the admin's
headers; it returns Airflow's status and body (JSON; text when it is not JSON; `{}` when
empty), or None when Airflow cannot be reached.
"""

from __future__ import annotations

import http.client
import json
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode, urlsplit

from tests.standins._http import Response
from tests.standins.mwaa_sigv4 import aws_error

if TYPE_CHECKING:
    from tests.standins.mwaa import MwaaEnvironment

METHODS = ("GET", "PUT", "POST", "PATCH", "DELETE")
UPSTREAM_TIMEOUT = 30.0


def invoke_refusal(payload: dict[str, Any]) -> Response | None:
    errors = []
    path, method = payload.get("Path"), payload.get("Method")
    if path is None:
        errors.append("Value null at 'path' failed to satisfy constraint: Member must not be null")
    elif not isinstance(path, str) or len(path) > 64:
        errors.append(
            f"Value '{path}' at 'path' failed to satisfy constraint: Member must have length "
            "less than or equal to 64"
        )
    elif not path:
        errors.append(
            "Value '' at 'path' failed to satisfy constraint: Member must have length greater "
            "than or equal to 1"
        )
    if method is None:
        errors.append(
            "Value null at 'method' failed to satisfy constraint: Member must not be null"
        )
    elif method not in METHODS:
        errors.append(
            f"Value '{method}' at 'method' failed to satisfy constraint: Member must satisfy "
            f"enum value set: [{', '.join(METHODS)}]"
        )
    query = payload.get("QueryParameters")
    if query is not None and not isinstance(query, dict):
        errors.append(
            "Value at 'queryParameters' failed to satisfy constraint: Member must be an object"
        )
    return validation_error(errors) if errors else None


def call_airflow(environment: MwaaEnvironment, payload: dict[str, Any]) -> tuple[int, Any] | None:
    """Airflow's status and body (JSON, else text, `{}` if empty); None if unreachable."""
    method, path, query = payload["Method"], payload["Path"], payload.get("QueryParameters")
    upstream = urlsplit(environment.upstream_url)
    target = upstream.path.rstrip("/") + environment.api_prefix
    target += quote(path, safe="/%:@!$&'()*+,;=-._~")
    if query:
        pairs = [
            (key, _query_value(value))
            for key, values in query.items()
            for value in (values if isinstance(values, list) else [values])
        ]
        target += "?" + urlencode(pairs)
    headers = {"Accept": "application/json", **environment.airflow_headers()}
    data = None
    if "Body" in payload and method != "GET":
        data = json.dumps(payload["Body"]).encode()
        headers["Content-Type"] = "application/json"
    connection = http.client.HTTPConnection(
        upstream.hostname or "", upstream.port, timeout=UPSTREAM_TIMEOUT
    )
    try:
        connection.request(method, target, data, headers)
        answer = connection.getresponse()
        return answer.status, _document(answer.read())
    except OSError:
        return None
    finally:
        connection.close()


def _document(body: bytes) -> Any:
    if not body.strip():
        return {}
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def validation_error(errors: list[str]) -> Response:
    count = f"{len(errors)} validation error{'s' if len(errors) > 1 else ''} detected: "
    return aws_error(400, "ValidationException", {"message": count + "; ".join(errors)})
