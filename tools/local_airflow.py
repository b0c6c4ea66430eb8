"""A real Airflow 2 or 3 on loopback, for the tests, `make demo` and `make compat`.

Each version is installed once from PyPI into its own virtualenv under the cache directory
(`DAGTRIGGER_CACHE`, default ~/.cache/dagtrigger), pinned by tools/constraints/: the tests' two
versions (VERSIONS) and those `make compat` proves (tools/compat.py) by the exact set of packages
they were proven with, airflow-VERSION.txt; any other by the pins its series needs on today's PyPI,
airflow-MAJOR.MINOR.txt (old releases do not bound what later broke them). It then runs the
components `airflow standalone` runs (metadata DB, scheduler, DAG processor, API server or web
server), each bound to 127.0.0.1 on a free port, on SQLite or, with `database="postgresql"`, on
a PostgreSQL server of its own (tools/local_postgres.py) with LocalExecutor, as production runs
Airflow. Standalone's own log servers listen on every interface and cannot be told otherwise,
so they are not started.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from base64 import b64encode
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.local_postgres import LocalPostgres

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_DAGS = REPO / "examples" / "dags"
VERSIONS = {"2": "2.11.2", "3": "3.3.2"}
CONSTRAINTS = REPO / "tools" / "constraints"
CACHE = Path(os.environ.get("DAGTRIGGER_CACHE", Path.home() / ".cache" / "dagtrigger"))

ADMIN = "admin"
VIEWER = "viewer"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def constraints_for(version: str) -> Path | None:
    """The file pinning `version`'s dependencies: its proven set, else its series' pins."""
    major_minor = ".".join(version.split(".")[:2])
    for name in (f"airflow-{version}.txt", f"airflow-{major_minor}.txt"):
        if (CONSTRAINTS / name).exists():
            return CONSTRAINTS / name
    return None


def ensure_installed(release: str) -> Path:
    """The virtualenv holding Airflow `release` ("2" or "3" for VERSIONS', or a full version such
    as "2.6.3"), installed on first use."""
    version = VERSIONS.get(release, release)
    venv = CACHE / f"airflow-{version}-py{sys.version_info.major}{sys.version_info.minor}"
    marker = venv / ".dagtrigger-installed"
    if marker.exists():
        return venv
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f".install-{version}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test sessions at once install once
        if marker.exists():
            return venv
        constraints = constraints_for(version)
        pins = [] if constraints is None else ["--constraint", str(constraints)]
        uv = [sys.executable, "-m", "uv"]
        subprocess.run(
            [*uv, "venv", "--quiet", "--clear", "--python", sys.executable, str(venv)], check=True
        )
        subprocess.run(
            [
                *uv,
                "pip",
                "install",
                "--quiet",
                "--python",
                str(venv / "bin" / "python"),
                f"apache-airflow=={version}",
                *pins,
            ],
            check=True,
        )
        marker.write_text(version)
    return venv


def ensure_postgresql_driver(venv: Path, version: str) -> None:
    """The PostgreSQL drivers Airflow `version` uses, in its virtualenv `venv`, installed on first
    use and pinned by the version's constraints: psycopg2 and, for Airflow 3's asynchronous
    sessions, asyncpg."""
    marker = venv / ".dagtrigger-installed-postgresql"
    if marker.exists():
        return
    drivers = ["psycopg2-binary"] + (["asyncpg"] if version.startswith("3.") else [])
    constraints = REPO / "tools" / "constraints" / f"airflow-{version}.txt"
    pins = ["--constraint", str(constraints)] if constraints.exists() else []
    with open(CACHE / f".install-{version}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():
            return
        python = str(venv / "bin" / "python")
        install = [sys.executable, "-m", "uv", "pip", "install", "--quiet", "--python", python]
        subprocess.run([*install, *drivers, *pins], check=True)
        marker.write_text(" ".join(drivers))


@dataclass
class LocalAirflow:
    """One Airflow server; `start()` returns once its API answers and the DAGs are parsed.

    `major` ("2" or "3") picks VERSIONS' release unless `release` names another of that major
    version (see `for_version`)."""

    major: str
    home: Path
    dags_folder: Path = EXAMPLE_DAGS
    port: int = field(default_factory=free_port)
    admin_password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    viewer_password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    release: str | None = None
    # "sqlite" (the demo's and most tests'), or "postgresql": a server of its own (see
    # tools.local_postgres) and LocalExecutor, as production runs Airflow.
    database: str = "sqlite"
    _postgres: LocalPostgres | None = None
    _processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)  # by component
    # The environment the components were started with: its secrets sign the tokens they exchange
    # and the admin's, so a component started again must get the same.
    _env: dict[str, str] = field(default_factory=dict)
    _admin_token: str | None = None

    def __post_init__(self) -> None:
        if self.database not in ("sqlite", "postgresql"):
            raise ValueError(f"database is sqlite or postgresql, not {self.database!r}")
        if self.database == "postgresql":
            self._postgres = LocalPostgres(self.home / "postgresql", self.log_dir)

    @classmethod
    def for_version(cls, version: str, home: Path, **kwargs: Any) -> LocalAirflow:
        """Airflow `version` (e.g. "2.6.3"), whichever VERSIONS holds."""
        return cls(version.split(".")[0], home, release=version, **kwargs)

    @property
    def version(self) -> str:
        return self.release or VERSIONS[self.major]

    @property
    def version_info(self) -> tuple[int, ...]:
        return tuple(int(part) for part in self.version.split(".")[:3])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api(self) -> str:
        return f"{self.url}/api/{'v2' if self.major == '3' else 'v1'}"

    @property
    def log_dir(self) -> Path:
        return self.home / "component-logs"

    @property
    def api_component(self) -> str:
        """The component serving the REST API: Airflow 3's api-server, Airflow 2's webserver."""
        return "api-server" if self.major == "3" else "webserver"

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        venv = ensure_installed(self.version)
        if self._postgres is not None:
            ensure_postgresql_driver(venv, self.version)
        env.update(
            PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
            AIRFLOW_HOME=str(self.home),
            AIRFLOW__CORE__DAGS_FOLDER=str(self.dags_folder),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="True",
            AIRFLOW__LOGGING__BASE_LOG_FOLDER=str(self.home / "logs"),
            AIRFLOW__WEBSERVER__SECRET_KEY=secrets.token_hex(16),
            AIRFLOW__API__SECRET_KEY=secrets.token_hex(16),
            AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC="1",
            AIRFLOW__SCHEDULER__DAG_DIR_LIST_INTERVAL="5",
            AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5",
            AIRFLOW__CORE__MIN_SERIALIZED_DAG_UPDATE_INTERVAL="1",
            NO_COLOR="1",
        )
        if self.major == "3":
            env.update(
                AIRFLOW__CORE__EXECUTOR="LocalExecutor",
                AIRFLOW__CORE__PARALLELISM="2",
                AIRFLOW__CORE__AUTH_MANAGER=(
                    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
                ),
                AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=f"{ADMIN}:admin,{VIEWER}:viewer",
                AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(self.home / "passwords.json"),
                AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"{self.url}/execution/",
                AIRFLOW__API_AUTH__JWT_SECRET=secrets.token_hex(32),
                AIRFLOW__API__HOST="127.0.0.1",
                AIRFLOW__API__PORT=str(self.port),
                AIRFLOW__API__WORKERS=self._api_workers(),
            )
        else:
            env.update(
                AIRFLOW__CORE__EXECUTOR="SequentialExecutor",
                AIRFLOW__API__AUTH_BACKENDS=(
                    "airflow.api.auth.backend.basic_auth,airflow.api.auth.backend.session"
                ),
                AIRFLOW__WEBSERVER__WEB_SERVER_HOST="127.0.0.1",
                AIRFLOW__WEBSERVER__WEB_SERVER_PORT=str(self.port),
                AIRFLOW__WEBSERVER__WORKERS="2",
                AIRFLOW__WEBSERVER__WORKER_REFRESH_INTERVAL="86400",
            )
        if self._postgres is not None:
            env.update(
                AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=self._postgres.url,
                AIRFLOW__CORE__EXECUTOR="LocalExecutor",
                AIRFLOW__CORE__PARALLELISM="2",  # task slots: 2 cores, shared with the tests
            )
        return env

    def _api_workers(self) -> str:
        # uvicorn's supervisor kills a worker that does not answer its ping within 5 s: Airflow
        # 3.0's workers, loading the app on a busy machine, were killed over and over, so 3.0
        # gets one (a process uvicorn does not supervise).
        return "1" if self.version_info < (3, 1) else "2"

    def start(self, timeout: float = 240.0, dag_ids: tuple[str, ...] = ()) -> LocalAirflow:
        self.home.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(exist_ok=True)
        self._env = env = self.environment()
        try:
            if self._postgres is not None:
                self._postgres.start()
            # `db migrate` came with 2.7; 2.6 calls it `db upgrade`.
            migrate = "migrate" if self.version_info >= (2, 7) else "upgrade"
            self._run_once(["airflow", "db", migrate], env)
            self._create_users(env)
            for name, command in self._components():
                self._launch(name, command)
            self._wait_until_ready(timeout, dag_ids)
        except BaseException:
            self.stop()
            raise
        return self

    def restart_api_server(self, timeout: float = 240.0) -> float:
        """Kill the API server as a crash would (SIGKILL to its process group: its workers die
        with it) and start it again on the same port; returns the seconds from the kill until
        /version answered again. The scheduler and the DAG processor keep running."""
        name = self.api_component
        crashed = self._processes[name]
        killed = time.monotonic()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(crashed.pid, signal.SIGKILL)
        crashed.wait()
        self._wait_until_port_closed(killed + timeout)
        self._launch(name, dict(self._components())[name])
        self._wait_until_ready(timeout - (time.monotonic() - killed), ())
        return time.monotonic() - killed

    def _wait_until_port_closed(self, deadline: float) -> None:
        # The workers die a moment after the process that leads them, and while one still holds
        # the listening socket, a new server cannot bind the port.
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) != 0:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"port {self.port} still open after the API server was killed")
            time.sleep(0.05)

    def pid(self, component: str) -> int:
        """The process id of `component` ("scheduler", `api_component`, ...), as last started."""
        return self._processes[component].pid

    def _launch(self, name: str, command: list[str]) -> None:
        """Start component `name` in a session of its own, appending to its log."""
        with open(self.log_dir / f"{name}.log", "ab") as log:
            self._processes[name] = subprocess.Popen(
                command,
                env=self._env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def _components(self) -> list[tuple[str, list[str]]]:
        if self.major == "3":
            return [
                (
                    "api-server",
                    ["airflow", "api-server", "--host", "127.0.0.1", "--port", str(self.port)],
                ),
                ("scheduler", ["airflow", "scheduler", "--skip-serve-logs"]),
                ("dag-processor", ["airflow", "dag-processor"]),
            ]
        return [
            (
                "webserver",
                ["airflow", "webserver", "--hostname", "127.0.0.1", "--port", str(self.port)],
            ),
            ("scheduler", ["airflow", "scheduler", "--skip-serve-logs"]),
        ]

    def _create_users(self, env: dict[str, str]) -> None:
        if self.major == "3":
            passwords = {ADMIN: self.admin_password, VIEWER: self.viewer_password}
            (self.home / "passwords.json").write_text(json.dumps(passwords))
            return
        self._run_once(["airflow", "sync-perm"], env)  # creates the default roles (Viewer, Op, ...)
        for user, password, role in (
            (ADMIN, self.admin_password, "Admin"),
            (VIEWER, self.viewer_password, "Viewer"),
        ):
            self._run_once(
                [
                    "airflow",
                    "users",
                    "create",
                    "--username",
                    user,
                    # one argument: a generated password may start with "-"
                    f"--password={password}",
                    "--role",
                    role,
                    "--email",
                    f"{user}@example.com",
                    "--firstname",
                    user,
                    "--lastname",
                    "dagtrigger",
                ],
                env,
            )

    def _run_once(self, command: list[str], env: dict[str, str]) -> None:
        with open(self.log_dir / "setup.log", "ab") as log:
            result = subprocess.run(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, check=False
            )
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command[:3])} failed; see {self.log_dir / 'setup.log'}")

    def _wait_until_ready(self, timeout: float, dag_ids: tuple[str, ...]) -> None:
        deadline = time.monotonic() + timeout
        pending = list(dag_ids)
        while time.monotonic() < deadline:
            for name, process in self._processes.items():
                if process.poll() is not None:
                    raise RuntimeError(
                        f"Airflow {self.version} component {name} exited with "
                        f"{process.returncode}; see {self.log_dir}"
                    )
            status, _ = self.call("GET", "/version", auth=False)
            if status == 200:
                pending = [d for d in pending if self.call("GET", f"/dags/{d}")[0] != 200]
                if not pending:
                    return
            time.sleep(1)
        raise TimeoutError(
            f"Airflow {self.version} not ready after {timeout:g} s (waiting for {pending}); see {self.log_dir}"
        )

    def token(self, user: str = ADMIN) -> str:
        password = self.admin_password if user == ADMIN else self.viewer_password
        request = urllib.request.Request(
            f"{self.url}/auth/token",
            data=json.dumps({"username": user, "password": password}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return str(json.load(response)["access_token"])

    def admin_headers(self) -> dict[str, str]:
        """The admin's Authorization header: a JWT (fetched once) on Airflow 3, basic on 2."""
        if self.major == "3":
            if self._admin_token is None:
                self._admin_token = self.token()
            return {"Authorization": f"Bearer {self._admin_token}"}
        credentials = b64encode(f"{ADMIN}:{self.admin_password}".encode()).decode()
        return {"Authorization": f"Basic {credentials}"}

    def call(
        self, method: str, path: str, body: Any = None, *, auth: bool = True
    ) -> tuple[int, Any]:
        """A REST call as the admin, for tests and the demo to read back what dagtrigger did."""
        headers = {} if body is None else {"Content-Type": "application/json"}
        if auth:
            headers.update(self.admin_headers())
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.api + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                return exc.code, json.loads(raw)
            except ValueError:
                return exc.code, raw.decode("utf-8", "replace")
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return 0, None

    def stop(self) -> None:
        """Stop every process of this Airflow, including children that left its process group."""
        for process in self._processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in self._processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        for pid in _pids_with_env("AIRFLOW_HOME", str(self.home)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for process in self._processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        self._processes.clear()
        if self._postgres is not None:  # after Airflow: its processes held connections
            self._postgres.stop()


def _is_release(name: str) -> bool:
    return name in VERSIONS or re.fullmatch(r"[23]\.\d+\.\d+", name) is not None


def _pids_with_env(name: str, value: str) -> list[int]:
    wanted = f"{name}={value}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if wanted in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def main(argv: list[str]) -> int:
    """`python -m tools.local_airflow install 2 3 2.6.3`: install the Airflow versions (VERSIONS'
    majors or full versions) in parallel."""
    releases = argv[1:]
    if not releases or argv[0] != "install" or not all(map(_is_release, releases)):
        print("usage: python -m tools.local_airflow install {2,3,X.Y.Z}...", file=sys.stderr)
        return 2
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor() as pool:
        for venv in pool.map(ensure_installed, releases):
            print(f"Airflow ready in {venv}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
