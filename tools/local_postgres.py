"""A PostgreSQL server of its own for a local Airflow: `initdb` into a fresh data directory, then
`postgres` on a free 127.0.0.1 port, with its unix socket inside the data directory.

The server is the machine's (PostgreSQL 12 or later: `initdb` and `postgres` on PATH, or under
Debian's /usr/lib/postgresql/VERSION/bin); without one, starting fails with the command that
installs it. PostgreSQL refuses to run as root: run by root, the server runs as the `postgres`
account Debian's package creates, with its data directory in a private temporary directory that
account owns (a pytest or demo home under root's 0700 directories is out of its reach), linked
from the Airflow home and removed on stop.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DATABASE = "airflow"
USER = "airflow"
SERVER_ACCOUNT = "postgres"  # who runs the server when we are root
# A modest server for a 2-core machine that Airflow's components (pools of 5 + 10 per process,
# several processes) and a load test share; otherwise PostgreSQL's defaults, durability included.
SETTINGS = {"max_connections": "200", "shared_buffers": "128MB"}


def find_server_binaries() -> Path:
    """The directory holding `initdb` and `postgres`, or a RuntimeError saying how to get them."""
    found = shutil.which("initdb")
    if found and shutil.which("postgres"):
        return Path(found).resolve().parent
    for directory in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(directory) / "initdb").exists() and (Path(directory) / "postgres").exists():
            return Path(directory)
    raise RuntimeError(
        "PostgreSQL's server programs (initdb, postgres) are not on PATH nor under "
        "/usr/lib/postgresql/*/bin: install PostgreSQL's server (on Debian and Ubuntu: "
        "apt-get install postgresql)"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LocalPostgres:
    """One PostgreSQL server with one database; `start()` returns once it takes connections."""

    home: Path
    log_dir: Path
    port: int = field(default_factory=_free_port)
    password: str = field(default_factory=lambda: secrets.token_hex(16))
    _process: subprocess.Popen[bytes] | None = None
    _data_dir: Path | None = None
    _private_parent: Path | None = None

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the database, through psycopg2."""
        return f"postgresql+psycopg2://{USER}:{self.password}@127.0.0.1:{self.port}/{DATABASE}"

    @property
    def data_dir(self) -> Path:
        assert self._data_dir is not None, "not started"
        return self._data_dir

    def start(self, timeout: float = 60.0) -> LocalPostgres:
        binaries = find_server_binaries()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        account = pwd.getpwnam(SERVER_ACCOUNT) if os.geteuid() == 0 else None
        try:
            self._data_dir = self._make_data_dir(account)
            if not (self._data_dir / "PG_VERSION").exists():  # else started before: keep its data
                self._initdb(binaries, account)
                self._create_database(binaries, account)
            log = open(self.log_dir / "postgresql.log", "ab")  # noqa: SIM115
            self._process = subprocess.Popen(
                [str(binaries / "postgres"), "-D", str(self._data_dir), *self._options()],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                **self._as(account),
            )
            log.close()
            self._wait_until_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _make_data_dir(self, account: pwd.struct_passwd | None) -> Path:
        if account is None:
            self.home.mkdir(parents=True, exist_ok=True)
            return self.home / "data"
        self._private_parent = Path(tempfile.mkdtemp(prefix="dagtrigger-postgresql-"))
        os.chown(self._private_parent, account.pw_uid, account.pw_gid)
        self.home.mkdir(parents=True, exist_ok=True)
        link = self.home / "data"
        with contextlib.suppress(FileNotFoundError):
            link.unlink()
        link.symlink_to(self._private_parent / "data")  # to find it from the Airflow home
        return self._private_parent / "data"

    def _as(self, account: pwd.struct_passwd | None) -> dict[str, Any]:
        if account is None:
            return {}
        return {
            "user": account.pw_uid,
            "group": account.pw_gid,
            "extra_groups": [],
            "env": {**os.environ, "HOME": account.pw_dir},
            "cwd": self.data_dir.parent,
        }

    def _options(self) -> list[str]:
        settings = {
            **SETTINGS,
            "port": str(self.port),
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.data_dir),
        }
        return [
            argument for name, value in settings.items() for argument in ("-c", f"{name}={value}")
        ]

    def _initdb(self, binaries: Path, account: pwd.struct_passwd | None) -> None:
        password_file = self.data_dir.parent / "password"
        password_file.write_text(self.password)
        if account is not None:
            os.chown(password_file, account.pw_uid, account.pw_gid)
        try:
            self._run(
                [
                    str(binaries / "initdb"),
                    "--pgdata",
                    str(self.data_dir),
                    "--username",
                    USER,
                    f"--pwfile={password_file}",
                    "--auth",
                    "scram-sha-256",
                    "--encoding",
                    "UTF8",
                    "--locale",
                    "C",
                    "--no-sync",
                ],
                account,
            )
        finally:
            password_file.unlink()

    def _create_database(self, binaries: Path, account: pwd.struct_passwd | None) -> None:
        # The server in single-user mode, before it listens: no client program needed.
        command = [str(binaries / "postgres"), "--single", "-D", str(self.data_dir), "postgres"]
        self._run(command, account, stdin=f"CREATE DATABASE {DATABASE};\n".encode())

    def _run(
        self, command: list[str], account: pwd.struct_passwd | None, stdin: bytes | None = None
    ) -> None:
        with open(self.log_dir / "postgresql-setup.log", "ab") as log:
            result = subprocess.run(
                command,
                input=stdin,
                stdin=None if stdin is not None else subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                check=False,
                **self._as(account),
            )
        if result.returncode != 0:
            raise RuntimeError(
                f"{Path(command[0]).name} failed; see {self.log_dir / 'postgresql-setup.log'}"
            )

    def _wait_until_ready(self, timeout: float) -> None:
        # The server writes postmaster.pid's last line ("ready") once it accepts connections.
        pid_file = self.data_dir / "postmaster.pid"
        deadline = time.monotonic() + timeout
        assert self._process is not None
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"PostgreSQL exited with {self._process.returncode}; see "
                    f"{self.log_dir / 'postgresql.log'}"
                )
            with contextlib.suppress(OSError):
                lines = pid_file.read_text().splitlines()
                if len(lines) >= 8 and lines[7].strip() == "ready":
                    return
            time.sleep(0.2)
        raise TimeoutError(f"PostgreSQL not ready after {timeout:g} s; see {self.log_dir}")

    def stop(self) -> None:
        """Stop the server (a fast shutdown: open sessions are ended) and remove a private data
        directory."""
        if self._process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGINT)
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait()
            self._process = None
        if self._private_parent is not None:
            shutil.rmtree(self._private_parent, ignore_errors=True)
            self._private_parent = None
