"""A local stand-in for Amazon MWAA that boto3 talks to unmodified.

    env = MwaaEnvironment("etl", airflow.url, "3.0.6", lambda: {"Authorization": "Bearer ..."})
    with MwaaStandin({"etl": env}) as mwaa:
        client = boto3.client("mwaa", endpoint_url=mwaa.url, region_name=mwaa.region,
                              aws_access_key_id=DEFAULT_ACCESS_KEY,
                              aws_secret_access_key=DEFAULT_SECRET_KEY,
                              config=Config(inject_host_prefix=False))
        # or, for code that builds its own client: monkeypatch each of mwaa.client_env()

The API (plain HTTP at `url`, rest-json, SigV4 for signing name `airflow`: `mwaa_sigv4`; the
InvokeRestApi checks and the call to Airflow: `mwaa_restapi`; the web fronts: `mwaa_web`):
- `POST /restapi/{Name}` InvokeRestApi: `{Path, Method, QueryParameters, Body}` is sent to the
  environment's Airflow at `/api/v1` + Path (Airflow 2) or `/api/v2` + Path (Airflow 3) with
  `airflow_headers()`. Airflow 2xx/3xx → 200 `{"RestApiStatusCode", "RestApiResponse"}`; 4xx
  → 400 `RestApiClientException`, 5xx → 400 `RestApiServerException`, both with the body
  `{"RestApiStatusCode", "RestApiResponse"}` and no message: the shape of a real MWAA answer
  as recorded in Airflow's Amazon provider tests (HTTP 400, `Error.Message` ""), and a
  maintainer of aws-sdk-go-v2 (#3101: "the 400 is the AWS service-level status code").
  botocore picks the exception from `x-amzn-ErrorType` and copies the body's members into
  `ClientError.response`, so `e.response["RestApiStatusCode"]` is Airflow's status. Airflow's
  body is passed on as JSON, as text when it is not JSON, as `{}` when empty.
- `POST /webtoken/{Name}` CreateWebLoginToken: a single-use `WebToken`, valid 60 s, for the
  environment's HTTPS web front (`mwaa_web`), whose `host:port` is `WebServerHostname`.
- `GET /environments/{Name}` GetEnvironment: `{"Environment": {...}}`, WebserverUrl = that host.

Refusals (besides the SigV4 ones in `mwaa_sigv4`), each `x-amzn-ErrorType` + JSON body:
- 403 `AccessDeniedException` `{"Message": "No Airflow role granted in IAM."}`: InvokeRestApi by
  a key not in `allowed` (MWAA's text: Airflow's Amazon provider matches "Airflow role" in it
  and uses this text in its tests; a public client records it from a real environment).
- 403 `AccessDeniedException` `{"Message": "User: arn:aws:iam::ACCOUNT:user/KEY is not authorized
  to perform: airflow:CreateWebLoginToken on resource: arn:aws:airflow:REGION:ACCOUNT:role/ENV/Op"}`:
  CreateWebLoginToken by a key not in `allowed` (IAM's usual wording; not verified for MWAA).
- 404 `ResourceNotFoundException` `{"message": "Environment NAME not found."}` (text assumed).
- 400 `ValidationException` `{"message": "1 validation error detected: Value ... at 'path' ..."}`
  for a Path outside 1..64 characters, a Method outside GET/PUT/POST/PATCH/DELETE, a bad Name
  (AWS's usual wording, assumed for MWAA).
- 429 `ThrottlingException` `{"message": "Rate exceeded"}` above `rate_limit` InvokeRestApi calls
  a second (token bucket, burst = the rate); botocore retries it unless told not to.
- 500 `InternalServerException` `{"message": "An internal error has occurred."}` when the
  environment's Airflow cannot be reached (assumed: what real MWAA answers then is unknown).

With `echoes` (`tests.standins.echo`), an InvokeRestApi whose Path a rule matches is answered
as if Airflow echoed the request MWAA received (its SigV4 headers and body): the echo is the
`RestApiResponse` of a RestApiServerException (500) or RestApiClientException (422). The web
fronts echo the requests whose path a rule matches, with their cookie or bearer token.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self
from urllib.parse import unquote

from tests.standins._http import LoopbackServer, Request, Response
from tests.standins.echo import Echoes
from tests.standins.mwaa_restapi import call_airflow, invoke_refusal, validation_error
from tests.standins.mwaa_sigv4 import authenticate, aws_answer, aws_error
from tests.standins.mwaa_web import (
    MwaaWebFront,
    TlsFiles,
    WebIdentity,
    WebSessions,
    server_context,
    write_tls_files,
)

DEFAULT_ACCESS_KEY = "AKIDDAGTRIGGER"
DEFAULT_SECRET_KEY = "dagtrigger-standin-secret-access-key"
SIGNING_NAME = "airflow"
AIRFLOW_ROLE = "Op"  # the Airflow role the web login ARNs name
NO_AIRFLOW_ROLE = "No Airflow role granted in IAM."
NAME_PATTERN = "[a-zA-Z][0-9a-zA-Z-_]*"
_OPERATIONS = {
    ("POST", "restapi"): "InvokeRestApi",
    ("POST", "webtoken"): "CreateWebLoginToken",
    ("GET", "environments"): "GetEnvironment",
}
_PATH = re.compile(r"/(restapi|webtoken|environments)/([^/]+)")


@dataclass(frozen=True)
class MwaaEnvironment:
    """An MWAA environment in front of a real Airflow on loopback."""

    name: str
    upstream_url: str  # the Airflow web/API server, e.g. http://127.0.0.1:8080
    airflow_version: str  # "2.10.3", "3.0.6", ...
    airflow_headers: Callable[[], dict[str, str]]  # the admin's Authorization for upstream_url

    @property
    def airflow_major(self) -> int:
        return int(self.airflow_version.split(".")[0])

    @property
    def api_prefix(self) -> str:
        return "/api/v1" if self.airflow_major == 2 else "/api/v2"


class MwaaStandin(LoopbackServer):
    """Amazon MWAA's API (InvokeRestApi, CreateWebLoginToken, GetEnvironment) and web fronts."""

    def __init__(
        self,
        environments: dict[str, MwaaEnvironment],
        *,
        region: str = "eu-west-1",
        account: str = "123456789012",
        credentials: dict[str, str] | None = None,
        allowed: set[str] | None = None,
        rate_limit: float | None = None,
        extra_latency: float = 0.0,
        web_token_ttl: float = 60.0,
        echoes: Echoes | None = None,
    ) -> None:
        super().__init__()
        self.environments = environments
        self.echoes = echoes
        self.region = region
        self.account = account
        self.credentials = (
            dict(credentials)
            if credentials is not None
            else {DEFAULT_ACCESS_KEY: DEFAULT_SECRET_KEY}
        )
        self.allowed = allowed
        self.rate_limit = rate_limit
        self.extra_latency = extra_latency
        self.sessions = WebSessions(web_token_ttl)
        self._lock = threading.Lock()
        self._invocations: list[tuple[str, str, str]] = []
        self._throttled = 0
        self._get_environment_calls = 0
        self._bucket = max(1.0, rate_limit or 1.0)
        self._refilled = time.monotonic()
        self._directory: Path | None = None
        self._tls: TlsFiles | None = None
        self._fronts: dict[str, MwaaWebFront] = {}

    # ---- lifecycle ----

    def start(self) -> Self:
        if self._directory is not None:
            return self
        self._directory = Path(tempfile.mkdtemp(prefix="mwaa-standin-"))
        try:
            self._tls = write_tls_files(self._directory)
            context = server_context(self._tls)
            for name, environment in self.environments.items():
                self._fronts[name] = MwaaWebFront(
                    name,
                    environment.airflow_major,
                    environment.upstream_url,
                    environment.airflow_headers,
                    self.sessions,
                    context,
                    environment.airflow_version,
                    self.echoes,
                ).start()
            super().start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        super().stop()
        for front in self._fronts.values():
            front.stop()
        self._fronts = {}
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
        self._directory = None
        self._tls = None

    # ---- what tests read ----

    @property
    def ca_file(self) -> str:
        """The CA certificate the web fronts' certificates chain to (for `SSL_CERT_FILE`)."""
        if self._tls is None:
            raise RuntimeError("MwaaStandin is not started")
        return str(self._tls.ca_file)

    def web_hostname(self, name: str) -> str:
        """`127.0.0.1:PORT` of environment `name`'s HTTPS web front."""
        return self._fronts[name].host

    def client_env(self, access_key: str = DEFAULT_ACCESS_KEY) -> dict[str, str]:
        """Environment variables under which a bare `boto3.client("mwaa")` talks to this."""
        return {
            "AWS_ENDPOINT_URL_MWAA": self.url,
            "AWS_DISABLE_HOST_PREFIX_INJECTION": "true",
            "AWS_ACCESS_KEY_ID": access_key,
            "AWS_SECRET_ACCESS_KEY": self.credentials[access_key],
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "SSL_CERT_FILE": self.ca_file,
        }

    @property
    def invocations(self) -> list[tuple[str, str, str]]:
        """(Name, Method, Path) of every InvokeRestApi sent on to Airflow."""
        with self._lock:
            return list(self._invocations)

    @property
    def throttled(self) -> int:
        with self._lock:
            return self._throttled

    @property
    def get_environment_calls(self) -> int:
        with self._lock:
            return self._get_environment_calls

    @property
    def web_tokens_issued(self) -> int:
        return self.sessions.tokens_issued

    @property
    def logins(self) -> int:
        """Successful web logins (a token redeemed) on every front."""
        return self.sessions.logins

    def expire_sessions(self) -> None:
        """End every web session: Airflow 2 cookies and Airflow 3 JWTs stop working."""
        self.sessions.expire_sessions()

    def role_arn(self, name: str, role: str = AIRFLOW_ROLE) -> str:
        return f"arn:aws:airflow:{self.region}:{self.account}:role/{name}/{role}"

    def user_arn(self, access_key: str) -> str:
        return f"arn:aws:iam::{self.account}:user/{access_key}"

    # ---- the API ----

    def handle(self, request: Request) -> Response:
        caller = authenticate(request, self.credentials, SIGNING_NAME, self.region)
        if isinstance(caller, Response):
            return caller
        match = _PATH.fullmatch(request.path)
        operation = _OPERATIONS.get((request.method, match.group(1))) if match else None
        if match is None or operation is None:
            return aws_error(404, "UnknownOperationException", {"message": None})
        name = unquote(match.group(2))
        if operation == "InvokeRestApi" and not self._take_token():
            return aws_error(429, "ThrottlingException", {"message": "Rate exceeded"})
        if not re.fullmatch(NAME_PATTERN, name) or len(name) > 80:
            return validation_error(
                [f"Value '{name}' at 'name' failed to satisfy constraint: Member must satisfy "
                 f"regular expression pattern: {NAME_PATTERN}"]
            )  # fmt: skip
        if operation == "GetEnvironment":
            return self._get_environment(name)
        if self.allowed is not None and caller not in self.allowed:
            return self._access_denied(operation, caller, name)
        environment = self.environments.get(name)
        if environment is None:
            return _not_found(name)
        if operation == "CreateWebLoginToken":
            return self._create_web_login_token(environment, caller)
        return self._invoke_rest_api(environment, request)

    def _invoke_rest_api(self, environment: MwaaEnvironment, request: Request) -> Response:
        try:
            payload = json.loads(request.body or b"{}")
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            return validation_error(["Request body must be a JSON object"])
        refusal = invoke_refusal(payload)
        if refusal is not None:
            return refusal
        method, path = payload["Method"], payload["Path"]
        if self.extra_latency:
            time.sleep(self.extra_latency)
        with self._lock:
            self._invocations.append((environment.name, method, path))
        answer = self.echoes.document(request, path) if self.echoes is not None else None
        if answer is None:
            answer = call_airflow(environment, payload)
        if answer is None:
            return aws_error(
                500, "InternalServerException", {"message": "An internal error has occurred."}
            )
        status, document = answer
        members = {"RestApiStatusCode": status, "RestApiResponse": document}
        if status >= 500:
            return aws_error(400, "RestApiServerException", members)
        if status >= 400:
            return aws_error(400, "RestApiClientException", members)
        return aws_answer(members)

    def _create_web_login_token(self, environment: MwaaEnvironment, caller: str) -> Response:
        identity = f"user/{caller}"
        token = self.sessions.issue_token(WebIdentity(environment.name, identity, identity))
        return aws_answer(
            {
                "WebToken": token,
                "WebServerHostname": self.web_hostname(environment.name),
                "IamIdentity": identity,
                "AirflowIdentity": identity,
            }
        )

    def _get_environment(self, name: str) -> Response:
        with self._lock:
            self._get_environment_calls += 1
        environment = self.environments.get(name)
        if environment is None:
            return _not_found(name)
        return aws_answer({"Environment": self._describe(environment)})

    def _describe(self, environment: MwaaEnvironment) -> dict[str, Any]:
        name, account, region = environment.name, self.account, self.region
        return {
            "Name": name,
            "Arn": f"arn:aws:airflow:{region}:{account}:environment/{name}",
            "AirflowVersion": environment.airflow_version,
            "Status": "AVAILABLE",
            "WebserverUrl": self.web_hostname(name),
            "WebserverAccessMode": "PUBLIC_ONLY",
            "EndpointManagement": "SERVICE",
            "EnvironmentClass": "mw1.small",
            "CreatedAt": 1736154000,
            "ExecutionRoleArn": f"arn:aws:iam::{account}:role/service-role/AmazonMWAA-{name}",
            "ServiceRoleArn": f"arn:aws:iam::{account}:role/aws-service-role/"
            "airflow.amazonaws.com/AWSServiceRoleForAmazonMWAA",
            "SourceBucketArn": f"arn:aws:s3:::airflow-{name.lower()}",
            "DagS3Path": "dags",
            "MinWorkers": 1,
            "MaxWorkers": 10,
            "Schedulers": 2,
            "NetworkConfiguration": {
                "SubnetIds": ["subnet-0a1b2c3d4e5f60001", "subnet-0a1b2c3d4e5f60002"],
                "SecurityGroupIds": ["sg-0a1b2c3d4e5f60003"],
            },
            "LastUpdate": {"Status": "SUCCESS", "CreatedAt": 1736155800, "Source": "CREATE"},
            "Tags": {},
        }

    def _access_denied(self, operation: str, caller: str, name: str) -> Response:
        if operation == "InvokeRestApi":
            message = NO_AIRFLOW_ROLE
        else:
            message = (
                f"User: {self.user_arn(caller)} is not authorized to perform: "
                f"airflow:{operation} on resource: {self.role_arn(name)}"
            )
        return aws_error(403, "AccessDeniedException", {"Message": message})

    def _take_token(self) -> bool:
        """One InvokeRestApi's worth from the token bucket; False (counted) when it is empty."""
        if self.rate_limit is None:
            return True
        with self._lock:
            now = time.monotonic()
            capacity = max(1.0, self.rate_limit)
            self._bucket = min(capacity, self._bucket + (now - self._refilled) * self.rate_limit)
            self._refilled = now
            if self._bucket >= 1.0:
                self._bucket -= 1.0
                return True
            self._throttled += 1
            return False


def _not_found(name: str) -> Response:
    return aws_error(
        404, "ResourceNotFoundException", {"message": f"Environment {name} not found."}
    )
