"""Google's Cloud Composer 2 sample for triggering a DAG over the Airflow REST API, as its
documentation tells users to copy it ("Trigger DAGs with Cloud Functions and Airflow REST API",
python-docs-samples composer/rest/composer2/composer2_airflow_rest_api.py), call for call:

- Application Default Credentials are resolved once, at import, with the cloud-platform scope;
- every request builds a new `AuthorizedSession` (a new requests.Session, so a new connection),
  which reuses the module's credentials and so their token once it has one;
- the DAG run is POSTed to /api/v1/dags/<dag_id>/dagRuns with `{"conf": data}`, timeout 90 s;
- 403 raises an HTTPError naming Airflow RBAC, any other status but 200 raises for status.

Only its imports matter for cold start: google-auth and requests, nothing else.
"""

from typing import Any

import google.auth
import requests
from google.auth.transport.requests import AuthorizedSession

AUTH_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
CREDENTIALS, _ = google.auth.default(scopes=[AUTH_SCOPE])


def make_composer2_web_server_request(url: str, method: str = "GET", **kwargs: Any) -> Any:
    authed_session = AuthorizedSession(CREDENTIALS)
    if "timeout" not in kwargs:
        kwargs["timeout"] = 90
    return authed_session.request(method, url, **kwargs)


def trigger_dag(web_server_url: str, dag_id: str, data: dict[str, Any]) -> str:
    request_url = f"{web_server_url}/api/v1/dags/{dag_id}/dagRuns"
    response = make_composer2_web_server_request(request_url, method="POST", json={"conf": data})
    if response.status_code == 403:
        raise requests.HTTPError(
            "You do not have a permission to perform this operation. Check Airflow RBAC roles "
            f"for your account.{response.headers} / {response.text}"
        )
    if response.status_code != 200:
        response.raise_for_status()
    return str(response.text)
