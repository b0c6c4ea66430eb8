"""HttpSession against real loopback servers: keep-alive, stale connections, timeouts, TLS,
hostile answers, proxies."""

from __future__ import annotations

import contextlib
import json
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from dagtrigger import http
from dagtrigger.airflow.answers import Asked, classify
from dagtrigger.deadline import time_limit
from dagtrigger.errors import ConfigurationError, ErrorKind, TransientTriggerError
from dagtrigger.http import HttpSession
from tests.standins.hostile_http import (
    ForwardProxy,
    HostileServer,
    answer,
    endless_continue,
    trickle,
)
from tests.standins.mwaa_web import server_context, write_tls_files

REPO = Path(__file__).resolve().parents[2]


class Recorder(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, idle_timeout: float = 30.0, delay: float = 0.0) -> None:
        self.client_ports: list[int] = []
        self.idle_timeout = idle_timeout
        self.delay = delay
        self.close_after_answer = False
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    @property
    def connections(self) -> int:
        return len(set(self.client_ports))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Recorder

    def setup(self) -> None:
        self.timeout = self.server.idle_timeout  # the server drops connections idle this long
        super().setup()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.client_ports.append(self.client_address[1])
        time.sleep(self.server.delay)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Set-Cookie", "a=1; Path=/")
        self.send_header("Set-Cookie", "b=2; Path=/")
        self.send_header("Transfer-Encoding", "chunked")
        if self.server.close_after_answer:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n")

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def serving(server: Recorder, tls: ssl.SSLContext | None = None) -> Iterator[Recorder]:
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def post(session: HttpSession, url: str, payload: object = None) -> tuple[int, object]:
    response = session.request("POST", url + "/api/v2/dags/d/dagRuns", json_body=payload or {})
    return response.status, response.json()


def test_one_connection_carries_every_request() -> None:
    session = HttpSession(timeout=2.0)
    with serving(Recorder()) as server:
        answers = [post(session, server.url, {"n": n}) for n in range(5)]
        session.close()

    assert answers == [(200, {"n": n}) for n in range(5)]
    assert server.connections == 1


def test_a_connection_the_server_dropped_while_idle_is_replaced_without_an_error() -> None:
    session = HttpSession(timeout=2.0)
    with serving(Recorder(idle_timeout=0.2)) as server:
        first = post(session, server.url)
        time.sleep(0.6)  # the server has closed the kept-alive connection by now
        second = post(session, server.url)
        session.close()

    assert first == second == (200, {})
    assert server.connections == 2


def test_connection_close_from_the_server_is_honoured() -> None:
    session = HttpSession(timeout=2.0)
    with serving(Recorder()) as server:
        server.close_after_answer = True
        answers = [post(session, server.url) for _ in range(3)]

    assert answers == [(200, {})] * 3
    assert server.connections == 3


def test_a_slow_answer_is_a_transient_error_after_the_timeout() -> None:
    session = HttpSession(timeout=0.3)
    with serving(Recorder(delay=1.0)) as server:
        started = time.monotonic()
        with pytest.raises(
            TransientTriggerError,
            match=r"POST http://127\.0\.0\.1:\d+/api.* no complete answer within 0\.3 s",
        ) as caught:
            post(session, server.url)
        waited = time.monotonic() - started

    assert 0.3 <= waited < 0.9
    assert caught.value.kind is ErrorKind.TIMEOUT


SLOW_BODY = b"HTTP/1.1 200 OK\r\nContent-Length: 200\r\n\r\n" + b"x" * 200


@pytest.mark.parametrize(
    "script",
    [
        pytest.param(trickle(SLOW_BODY, every=0.02), id="answer-trickled-a-byte-at-a-time"),
        pytest.param(endless_continue(every=0.1, for_seconds=5), id="100-continue-every-0.1s"),
    ],
)
def test_a_request_ends_by_its_timeout_whatever_the_server_sends(script) -> None:
    """Each byte arrives well within the timeout, so only a limit on the whole request ends it."""
    session = HttpSession(timeout=0.5)
    with HostileServer([script]) as server:
        started = time.monotonic()
        with pytest.raises(TransientTriggerError, match=r"no complete answer within 0\.5 s"):
            post(session, server.url)
        waited = time.monotonic() - started

    assert 0.5 <= waited < 1.0


def test_a_request_ends_by_the_trigger_deadline_when_that_comes_first() -> None:
    session = HttpSession(timeout=10.0)
    with HostileServer([trickle(SLOW_BODY, every=0.02)]) as server:
        started = time.monotonic()
        with time_limit(0.4), pytest.raises(TransientTriggerError, match=r"within 0\.4 s"):
            post(session, server.url)
        waited = time.monotonic() - started

    assert 0.35 <= waited < 0.9


def test_no_request_starts_once_the_deadline_has_passed() -> None:
    with (
        HostileServer([answer(200)]) as server,
        time_limit(0.0),
        pytest.raises(TransientTriggerError, match="deadline has passed") as caught,
    ):
        post(HttpSession(), server.url)

    assert server.requests == []
    assert caught.value.kind is ErrorKind.TIMEOUT


def test_a_connection_the_server_closed_after_an_error_is_not_reused() -> None:
    """uvicorn closes the connection after some 500s without saying so in the answer."""
    session = HttpSession(timeout=2.0)
    with HostileServer([answer(500, keep=False), answer(200)]) as server:
        first = post(session, server.url)
        time.sleep(0.05)  # the close reaches the client, as it does between two events
        second = post(session, server.url)

    assert (first[0], second[0]) == (500, 200)
    assert server.connections == 2


def test_a_redirect_is_handed_back_unfollowed() -> None:
    with HostileServer(
        [answer(308, headers=[("Location", "https://elsewhere.example/")])]
    ) as server:
        response = HttpSession(timeout=2.0).request("GET", server.url + "/api/v2/version")

    assert response.status == 308
    assert len(server.requests) == 1
    error = classify(response).error_for(Asked("Airflow at x", "GET /api/v2/version"))
    assert isinstance(error, ConfigurationError) and error.kind is ErrorKind.REDIRECT
    assert "redirect to https://elsewhere.example/" in str(error)


def test_an_oversized_answer_is_transient_and_its_connection_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(http, "MAX_BODY_BYTES", 1000)
    session = HttpSession(timeout=2.0)
    with HostileServer([answer(200, b"x" * 5000), answer(200)]) as server:
        with pytest.raises(TransientTriggerError, match="over 1000 bytes") as caught:
            post(session, server.url)
        assert post(session, server.url)[0] == 200

    assert caught.value.kind is ErrorKind.SERVER_ERROR

    assert server.connections == 2


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(
            b"HTTP/1.1 200 OK\r\nContent-Length: \xc2\xb2\r\n\r\n{}", id="length-not-ascii"
        ),
        pytest.param(b"HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\n{}", id="status-2000"),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{}", id="body-cut-short"),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", id="chunk-size"
        ),
    ],
)
def test_an_answer_that_cannot_be_read_is_transient_so_the_event_is_kept(raw: bytes) -> None:
    with (
        HostileServer([trickle(raw, every=0.0, piece=len(raw))]) as server,
        pytest.raises(TransientTriggerError),
    ):
        post(HttpSession(timeout=0.5), server.url)


@pytest.mark.parametrize("value", ["token\nX-Injected: 1", "t\u00f6k\u0113n"])
def test_a_header_value_http_cannot_carry_is_a_configuration_error(value: str) -> None:
    with (
        HostileServer([answer(200)]) as server,
        pytest.raises(ConfigurationError, match="cannot be sent"),
    ):
        HttpSession().request("GET", server.url + "/", headers={"Authorization": value})

    assert server.requests == []


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("1e10", http.MAX_RETRY_AFTER), ("inf", http.MAX_RETRY_AFTER), ("-inf", 0.0),
     ("Fri, 31 Dec 9999 23:59:59 GMT", http.MAX_RETRY_AFTER)],
)  # fmt: skip
def test_an_absurd_retry_after_is_clamped_not_raised(value: str, seconds: float) -> None:
    assert http.Response(429, b"", {"Retry-After": value}).retry_after() == seconds


def test_a_refused_connection_is_a_transient_error_naming_the_url() -> None:
    with serving(Recorder()) as server:
        url = server.url  # a port that was free a moment ago, now closed
    with pytest.raises(
        TransientTriggerError,
        match=r"POST http://127\.0\.0\.1:\d+/api/v2/dags/d/dagRuns failed: ConnectionRefusedError",
    ) as caught:
        post(HttpSession(timeout=1.0), url)

    assert caught.value.kind is ErrorKind.UNREACHABLE


def test_concurrent_requests_never_share_a_connection() -> None:
    session = HttpSession(timeout=5.0)
    results: list[tuple[int, object]] = []
    lock = threading.Lock()

    def send(worker: int) -> None:
        for n in range(10):
            answer = post(session, server.url, {"worker": worker, "n": n})
            with lock:
                results.append(answer)

    with serving(Recorder(delay=0.005)) as server:
        threads = [threading.Thread(target=send, args=(w,)) for w in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        session.close()

    assert sorted(str(r) for r in results) == sorted(
        str((200, {"worker": w, "n": n})) for w in range(6) for n in range(10)
    )
    assert 1 <= server.connections <= 6


def test_every_set_cookie_header_is_kept() -> None:
    session = HttpSession(timeout=2.0)
    with serving(Recorder()) as server:
        response = session.request("POST", server.url + "/login", form={"token": "x"})
        session.close()

    assert response.set_cookies == ("a=1; Path=/", "b=2; Path=/")
    assert response.body == b"token=x"


def test_https_trusts_ssl_cert_file_and_refuses_an_unknown_ca(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = write_tls_files(tmp_path)
    with serving(Recorder(), tls=server_context(files)) as server:
        url = server.url.replace("http://", "https://")
        with pytest.raises(ConfigurationError, match=r"not trusted.*set SSL_CERT_FILE") as caught:
            post(HttpSession(timeout=2.0), url)
        assert caught.value.kind is ErrorKind.UNTRUSTED_CERTIFICATE
        assert caught.value.fix is not None and "SSL_CERT_FILE" in caught.value.fix

        monkeypatch.setenv("SSL_CERT_FILE", str(files.ca_file))
        trusting = HttpSession(timeout=2.0)
        answers = [post(trusting, url, {"n": n}) for n in range(3)]
        trusting.close()

    assert answers == [(200, {"n": n}) for n in range(3)]


def test_tls_to_a_server_that_speaks_plain_http_is_a_failed_handshake_that_may_pass() -> None:
    with serving(Recorder()) as server:
        url = server.url.replace("http://", "https://")
        with pytest.raises(TransientTriggerError) as caught:
            post(HttpSession(timeout=2.0), url)

    assert caught.value.kind is ErrorKind.TLS_HANDSHAKE


def test_a_url_that_is_not_http_is_refused_clearly() -> None:
    with pytest.raises(
        ConfigurationError, match=r"cannot reach ftp://example\.com/x: not an http\(s\) URL"
    ):
        HttpSession().request("GET", "ftp://example.com/x")


def test_a_trigger_over_basic_auth_loads_urllib3_and_no_cloud_sdk() -> None:
    """The self-hosted path needs urllib3 alone: cloud SDKs are for the cloud adapters."""
    probe = """
import sys
before = set(sys.modules)  # namespace packages a site .pth file loads are nobody's choice
import json, os, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Airflow(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        run = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        body = json.dumps({"dag_run_id": run["dag_run_id"], "state": "queued"}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", 0), Airflow)
threading.Thread(target=server.serve_forever, daemon=True).start()
os.environ.update(AIRFLOW_URL=f"http://127.0.0.1:{server.server_address[1]}", AIRFLOW_API_VERSION="v2",
                  AIRFLOW_AUTH="basic", AIRFLOW_USERNAME="u", AIRFLOW_PASSWORD="p", DAG_ID="d")
sys.path.insert(0, "functions")
from dagtrigger import runtime
event = json.load(open("tests/events/gcs_legacy_finalize.json"))
report = runtime.get_dispatcher().handle(event)
server.shutdown()
third_party = ("urllib3", "requests", "google", "boto3", "botocore", "functions_framework", "re2")
print(json.dumps({"created": report.count("created"),
                  "loaded": sorted(m for m in set(sys.modules) - before if m.split(".")[0] in third_party)}))
"""
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    loaded = json.loads(out)
    assert loaded["created"] == 1
    assert {name.split(".")[0] for name in loaded["loaded"]} == {"urllib3"}


# --- proxies -------------------------------------------------------------------------------------


@pytest.fixture
def proxy_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "https_proxy", "http_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_http_proxy_carries_http_requests(proxy_env: pytest.MonkeyPatch) -> None:
    with serving(Recorder()) as server, ForwardProxy() as proxy:
        proxy_env.setenv("HTTP_PROXY", proxy.url)
        session = HttpSession(timeout=2.0)
        answers = [post(session, server.url, {"n": n}) for n in range(2)]

    assert answers == [(200, {"n": 0}), (200, {"n": 1})]
    assert proxy.seen == [f"POST {server.url}/api/v2/dags/d/dagRuns"] * 2


def test_https_proxy_tunnels_https_requests_and_tls_is_still_verified(
    proxy_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    files = write_tls_files(tmp_path)
    with serving(Recorder(), tls=server_context(files)) as server, ForwardProxy() as proxy:
        proxy_env.setenv("HTTPS_PROXY", proxy.url.removeprefix("http://"))  # no scheme: http
        url = server.url.replace("http://", "https://")
        with pytest.raises(ConfigurationError, match="not trusted"):
            post(HttpSession(timeout=2.0), url)
        proxy_env.setenv("SSL_CERT_FILE", str(files.ca_file))
        answered = post(HttpSession(timeout=2.0), url, {"n": 1})

    assert answered == (200, {"n": 1})
    assert proxy.seen == [f"CONNECT 127.0.0.1:{server.server_address[1]}"] * 2


def test_no_proxy_bypasses_and_lower_case_names_win(proxy_env: pytest.MonkeyPatch) -> None:
    with serving(Recorder()) as server, ForwardProxy() as upper, ForwardProxy() as lower:
        proxy_env.setenv("HTTP_PROXY", upper.url)
        proxy_env.setenv("http_proxy", lower.url)
        post(HttpSession(timeout=2.0), server.url)
        proxy_env.setenv("NO_PROXY", "example.com,127.0.0.1")
        post(HttpSession(timeout=2.0), server.url)

    assert (len(upper.seen), len(lower.seen)) == (0, 1)


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_proxy_credentials_come_from_the_proxy_url(
    scheme: str, proxy_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    files = write_tls_files(tmp_path)
    proxy_env.setenv("SSL_CERT_FILE", str(files.ca_file))
    tls = server_context(files) if scheme == "https" else None
    variable = f"{scheme.upper()}_PROXY"
    with serving(Recorder(), tls=tls) as server, ForwardProxy(("svc", "p@ss w")) as proxy:
        url = server.url.replace("http://", f"{scheme}://")
        proxy_env.setenv(variable, proxy.url)
        with pytest.raises(
            ConfigurationError, match=r"asks for credentials|refused the tunnel"
        ) as caught:
            post(HttpSession(timeout=2.0), url)
        assert caught.value.status == 407
        assert caught.value.fix is not None and "USER:PASSWORD" in caught.value.fix
        proxy_env.setenv(variable, proxy.url.replace("://", "://svc:p%40ss%20w@"))
        answered = post(HttpSession(timeout=2.0), url)

    assert answered == (200, {})


def test_an_unreachable_proxy_is_transient_and_named(proxy_env: pytest.MonkeyPatch) -> None:
    with ForwardProxy() as gone:
        address = gone.url
    proxy_env.setenv("HTTP_PROXY", address)
    with pytest.raises(TransientTriggerError, match=f"through the proxy {address}"):
        post(HttpSession(timeout=1.0), "http://127.0.0.1:9")


def test_google_auth_token_requests_go_through_the_proxy(proxy_env: pytest.MonkeyPatch) -> None:
    from google.auth.transport.urllib3 import Request

    with serving(Recorder()) as server, ForwardProxy() as proxy:
        proxy_env.setenv("HTTP_PROXY", proxy.url)
        response = Request(HttpSession(timeout=2.0).pool)(
            server.url + "/token", method="POST", body=b"{}"
        )

    assert response.status == 200
    assert proxy.seen == [f"POST {server.url}/token"]
