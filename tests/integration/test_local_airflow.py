"""The harness's crash of Airflow's API server (LocalAirflow.restart_api_server), around two small
programs in place of Airflow's components, so that it takes seconds: an API server whose forked
worker answers /version, as uvicorn's and gunicorn's workers do, and a scheduler that waits."""

from __future__ import annotations

import os
import secrets
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.standins.chaos import ChaosProxy
from tools.local_airflow import LocalAirflow

API_SERVER = """
import http.server, json, os, sys

class Version(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"secret": os.environ["API_SECRET"], "worker": os.getpid()}).encode()
        self.send_response(200 if self.path == "/api/v2/version" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

server = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Version)
print("serving", flush=True)
if os.fork() == 0:
    server.serve_forever()
os.wait()
"""


class StandInAirflow(LocalAirflow):
    """LocalAirflow's process handling, with API_SERVER and a sleeping scheduler as components.
    Their environment has no AIRFLOW_HOME, by which stop() would find them untracked."""

    def environment(self) -> dict[str, str]:
        return {"PATH": os.environ["PATH"], "API_SECRET": secrets.token_hex(8)}

    def _run_once(self, command: list[str], env: dict[str, str]) -> None:
        pass  # no database to migrate

    def _create_users(self, env: dict[str, str]) -> None:
        pass

    def _components(self) -> list[tuple[str, list[str]]]:
        return [
            ("api-server", [sys.executable, "-c", API_SERVER, str(self.port)]),
            ("scheduler", [sys.executable, "-c", "import time; time.sleep(600)"]),
        ]


def test_a_crashed_api_server_is_started_again_on_its_port(tmp_path: Path) -> None:
    airflow = StandInAirflow("3", tmp_path).start(timeout=30)
    with ChaosProxy(airflow.url, {}) as proxy:
        try:
            _, before = airflow.call("GET", "/version", auth=False)
            crashed, scheduler = airflow.pid("api-server"), airflow.pid("scheduler")
            airflow.restart_api_server(timeout=30)
            status, after = airflow.call("GET", "/version", auth=False)
            replaced = airflow.pid("api-server")
            assert status == 200
            assert after["secret"] == before["secret"], "started with another environment"
            assert not _alive(before["worker"]), "the worker outlived the crash"
            assert replaced != crashed
            assert airflow.pid("scheduler") == scheduler and _alive(scheduler)
            log = tmp_path / "component-logs" / "api-server.log"
            assert log.read_text().count("serving") == 2
        finally:
            airflow.stop()
        # Where nothing listens, the proxy answers 502, as a load balancer would: a server error,
        # which dagtrigger retries. (Watched during the restart, the gap was sometimes too short
        # for a poll to fall into it.)
        assert _status(f"{proxy.url}/api/v2/version") == 502
    # SIGKILL is delivered asynchronously: a killed worker may take a moment to be gone.
    left = (replaced, after["worker"], scheduler)
    deadline = time.monotonic() + 5
    while any(map(_alive, left)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(map(_alive, left)), "stop() left a process"


def _status(url: str) -> int:
    """The status `url` answers (0: no answer)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def _alive(pid: int) -> bool:
    """Whether process `pid` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"
