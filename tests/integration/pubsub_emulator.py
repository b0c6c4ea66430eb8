"""Google's Pub/Sub emulator (`gcloud beta emulators pubsub start`) on loopback, and a relay that
stands between its push subscriptions and the function to record every delivery and its answer."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from tests.integration.functions_server import FunctionsServer
from tests.standins._http import LoopbackServer, Request, Response, forward
from tools.local_airflow import free_port

PROJECT = "dagtrigger-test"


def emulator_missing() -> str | None:
    """Why the emulator cannot run here, or None: it comes with gcloud's components and needs Java."""
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        return "gcloud is not installed"
    if shutil.which("java") is None:
        return "the Pub/Sub emulator needs Java, which is not installed"
    sdk = Path(gcloud).resolve().parent.parent
    if not (sdk / "platform" / "pubsub-emulator").is_dir():
        return f"the pubsub-emulator component is not installed in {sdk}"
    return None


@dataclass
class PubSubEmulator:
    """The emulator in a process group of its own (gcloud's Python and the emulator's Java), with
    an empty gcloud configuration, stopped with the whole group."""

    workdir: Path
    port: int = field(default_factory=free_port)
    _process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        """The value of PUBSUB_EMULATOR_HOST for the official client."""
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        config = self.workdir / "gcloud"
        config.mkdir(parents=True, exist_ok=True)
        (self.workdir / "data").mkdir(exist_ok=True)
        env = {
            "PATH": os.environ["PATH"],
            "HOME": str(self.workdir),
            "CLOUDSDK_CONFIG": str(config),
            "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
        }
        command = [
            "gcloud", "beta", "emulators", "pubsub", "start",
            f"--host-port={self.host}", f"--project={PROJECT}",
            f"--data-dir={self.workdir / 'data'}",
        ]  # fmt: skip
        self.log_path = self.workdir / "emulator.log"
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self.__exit__()
                raise RuntimeError(f"the emulator exited: {self.log_path.read_text()[-2000:]}")
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.1)
        self.__exit__()
        raise TimeoutError(f"the emulator did not listen: {self.log_path.read_text()[-2000:]}")

    def __exit__(self, *exc_info: object) -> None:
        if self._process is None:
            return
        try:
            os.killpg(self._process.pid, signal.SIGTERM)
            self._process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()
        # gcloud may exit before its Java child: take what is left of the group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signal.SIGKILL)
        self._process = None


@dataclass(frozen=True)
class Delivery:
    message_id: str
    status: int


class PushRelay(LoopbackServer):
    """Forwards each push request to the function unchanged (path included: it names the topic)
    and keeps the message id and the function's answer, which is what the emulator acts on."""

    def __init__(self, function: FunctionsServer) -> None:
        super().__init__()
        self.function = function
        self.deliveries: list[Delivery] = []
        self._changed = threading.Condition()

    def handle(self, request: Request) -> Response:
        answer = forward(self.function.url, request, {}, timeout=60)
        message = json.loads(request.body).get("message", {})
        with self._changed:
            self.deliveries.append(Delivery(str(message.get("messageId")), answer.status))
            self._changed.notify_all()
        return answer

    def statuses(self, message_id: str) -> list[int]:
        with self._changed:
            return [d.status for d in self.deliveries if d.message_id == message_id]

    def wait_for(self, message_id: str, status: int, timeout: float = 60) -> list[int]:
        """The answers given to `message_id` once one of them is `status`."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while status not in (found := self.statuses(message_id)):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"message {message_id}: answers {found}, never {status}")
                self._changed.wait(left)
        return found
