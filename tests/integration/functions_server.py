"""functions-framework serving functions/main.py on loopback, as Cloud Functions would run it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.records import json_log_lines
from tools.local_airflow import REPO, free_port

FUNCTIONS = REPO / "functions"


@dataclass
class FunctionsServer:
    target: str
    env: dict[str, str]
    log_path: Path
    signature_type: str = "cloudevent"
    source: Path = FUNCTIONS / "main.py"
    port: int = field(default_factory=free_port)
    _process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The server's process id, also its process group's (gunicorn's worker is in it)."""
        assert self._process is not None, "the server is not running"
        return self._process.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def __enter__(self) -> FunctionsServer:
        command = [
            str(Path(sys.executable).parent / "functions-framework"),
            "--target", self.target,
            "--source", str(self.source),
            "--signature-type", self.signature_type,
            "--host", "127.0.0.1",
            "--port", str(self.port),
        ]  # fmt: skip
        environment = {"PATH": os.environ["PATH"], "PYTHONUNBUFFERED": "1", **self.env}
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                command, cwd=self.source.parent, env=environment, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"functions-framework exited: {self.log_path.read_text()[-2000:]}"
                )
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.1)
        self.__exit__()
        raise TimeoutError("functions-framework did not start listening")

    def __exit__(self, *exc_info: object) -> None:
        if self._process is not None:
            os.killpg(self._process.pid, signal.SIGTERM)
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait()
            self._process = None

    def post(self, body: Any, headers: dict[str, str]) -> int:
        """POST an event; the HTTP status is the platform's verdict (2xx acknowledged, else retried)."""
        request = urllib.request.Request(
            self.url, data=json.dumps(body).encode(), headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return exc.code

    def post_binary(self, attributes: dict[str, str], data: Any) -> int:
        """A binary-mode CloudEvent: attributes as ce- headers, data as the body (how Eventarc sends)."""
        headers = {f"ce-{name}": value for name, value in attributes.items()}
        headers["Content-Type"] = "application/json"
        return self.post(data, headers)

    def post_structured(self, event: dict[str, Any]) -> int:
        return self.post(event, {"Content-Type": "application/cloudevents+json"})

    def log_entries(self) -> list[dict[str, Any]]:
        """The structured log lines the function printed (Cloud Logging reads the same)."""
        return json_log_lines(self.log_path.read_text(), "severity")
