"""What the checks learn and hand on to each other: the settings, the client the function would
build, the Airflow answers already read."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from dagtrigger.airflow.api import ApiVersion
from dagtrigger.airflow.client import AirflowClient
from dagtrigger.airflow.transport import HttpTransport
from dagtrigger.composer import ComposerEnvironment
from dagtrigger.dispatch import Plan
from dagtrigger.http import HttpSession, Response
from dagtrigger.settings import AuthMode, Settings

if TYPE_CHECKING:
    from dagtrigger.airflow.mwaa_serverless import WorkflowClient

_ANY_PREFIX = re.compile("^(?:" + "|".join(re.escape(v.prefix) for v in ApiVersion) + ")(?=/|$)")


def strip_api_prefix(path: str) -> str:
    """ "/api/v2/dags" → "/dags"; a path without a prefix gains its leading slash."""
    path = path if path.startswith("/") else "/" + path
    return _ANY_PREFIX.sub("", path, count=1) or "/"


@dataclass
class Context:
    env: Mapping[str, str]
    event: Any = None  # the --event payload, parsed
    write_check: bool = False
    settings: Settings | None = None
    session: HttpSession = field(default_factory=HttpSession)
    plan: Plan | None = None
    dag_ids: tuple[str, ...] = ()
    assets: tuple[str, ...] = ()  # the assets (datasets) the routes record events of
    partitioned_assets: frozenset[str] = frozenset()  # those a route sets partition keys for
    username: str | None = None  # the Airflow user, when dagtrigger signs in as one
    google_email: str | None = None
    composer: ComposerEnvironment | None = None
    mwaa: Mapping[str, Any] | None = None
    iap_client_id_seen: str | None = None  # what IAP's login redirect names
    client: AirflowClient | None = None
    version_source: str = "detected"
    dags: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    workflows: WorkflowClient | None = None  # MWAA Serverless, instead of an Airflow client
    workflow_descriptions: dict[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def need_settings(self) -> Settings:
        assert self.settings is not None  # the runner only calls checks after configuration
        return self.settings

    @property
    def need_client(self) -> AirflowClient:
        assert self.client is not None  # built by the environment or API version check
        return self.client

    @property
    def need_workflows(self) -> WorkflowClient:
        assert self.workflows is not None  # built by the workflow client check
        return self.workflows

    @property
    def base_url(self) -> str | None:
        """The web server the function talks to directly; None for MWAA's invoke_rest_api."""
        if self.client is not None:
            transport = self.client.transport
            return transport.base_url if isinstance(transport, HttpTransport) else None
        if self.composer is not None:
            return self.composer.airflow_uri
        if self.mwaa is not None:
            if self.need_settings.auth == AuthMode.MWAA_WEB:
                return f"https://{self.mwaa.get('WebserverUrl')}"
            return None
        return self.need_settings.airflow_url

    @property
    def where(self) -> str:
        return f"Airflow at {self.need_client.transport.description}"

    def api(self, method: str, path: str, body: Any = None) -> Response:
        """One REST call as the function makes it (same transport and auth), without retries."""
        client = self.need_client
        full = client.api_version.prefix + strip_api_prefix(path)
        return client.transport.request(method, full, json_body=body)

    def dag_path(self, dag_id: str, suffix: str = "") -> str:
        return f"/dags/{quote(dag_id, safe='')}{suffix}"
