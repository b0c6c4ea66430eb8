"""Where DAGTRIGGER_ROUTES comes from: inline JSON, a file, or an object in gs:// or s3://.

Remote sources are read with the cloud's own SDK, imported only when such a URL is configured,
and re-read at most once per DAGTRIGGER_ROUTES_TTL so an edited routes file takes effect without
a redeploy while warm invocations pay nothing.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

from dagtrigger.errors import ConfigurationError

VARIABLE = "DAGTRIGGER_ROUTES"
T = TypeVar("T")
logger = logging.getLogger("dagtrigger")


def describe_source(spec: str) -> str:
    stripped = spec.lstrip()
    if stripped.startswith(("[", "{")):
        return f"{VARIABLE} (inline JSON)"
    return f"{VARIABLE}={spec}"


def read_routes_text(spec: str) -> str:
    """The raw JSON text that `spec` designates."""
    stripped = spec.lstrip()
    if stripped.startswith(("[", "{")):
        return stripped
    if spec.startswith("gs://"):
        return _read_gcs(spec)
    if spec.startswith("s3://"):
        return _read_s3(spec)
    try:
        return Path(spec).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigurationError(
            f"{VARIABLE}={spec!r} is not UTF-8 text ({exc.reason} at byte {exc.start}): save it as UTF-8."
        ) from exc
    except OSError as exc:
        raise ConfigurationError(
            f"{VARIABLE}={spec!r} cannot be read ({exc.strerror or exc}): set it to inline JSON, "
            "a readable file path, or a gs:// or s3:// URL."
        ) from exc


def parse_routes(text: str, spec: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ConfigurationError(f"{describe_source(spec)} is not valid JSON: {exc}") from exc


class CachedRoutes(Generic[T]):
    """Routes read and built once, re-read after `ttl` seconds.

    A re-read that fails (unreadable, invalid JSON, invalid rules) keeps serving the last good
    routes and is logged, so a bad edit of a shared routes file never stops the events flowing.
    """

    def __init__(
        self,
        spec: str,
        ttl: float,
        build: Callable[[Any], T],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.spec = spec
        self._ttl = ttl
        self._build = build
        self._clock = clock
        self._lock = threading.Lock()
        self._text: str | None = None
        self._built: T | None = None
        self._read_at = 0.0

    def get(self) -> T:
        with self._lock:
            now = self._clock()
            if self._built is not None and now - self._read_at < self._ttl:
                return self._built
            try:
                text = read_routes_text(self.spec)
                if text != self._text or self._built is None:
                    self._built = self._build(parse_routes(text, self.spec))
                    self._text = text
            except ConfigurationError as exc:
                if self._built is None:
                    raise
                logger.error("keeping the previous routes: %s", exc)
            self._read_at = now
            return self._built


def _bucket_and_key(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    key = parts.path.lstrip("/")
    if not parts.netloc or not key:
        raise ConfigurationError(
            f"{VARIABLE}={url!r} must name an object: {parts.scheme}://BUCKET/path/routes.json"
        )
    return parts.netloc, key


def _read_gcs(url: str) -> str:
    bucket, key = _bucket_and_key(url)
    try:
        from google.cloud import storage
    except ImportError as exc:
        raise ConfigurationError(
            f"{VARIABLE}={url} needs google-cloud-storage: pip install 'dagtrigger[gcp]'"
        ) from exc
    from google.api_core import exceptions as google_errors

    try:
        blob = storage.Client().bucket(bucket).blob(key)
        return str(blob.download_as_text(encoding="utf-8"))
    except (google_errors.GoogleAPIError, UnicodeDecodeError) as exc:
        raise ConfigurationError(
            f"{VARIABLE}={url} cannot be read ({exc}): check the object exists and the function's "
            "service account has roles/storage.objectViewer on the bucket."
        ) from exc


def _read_s3(url: str) -> str:
    bucket, key = _bucket_and_key(url)
    try:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError as exc:
        raise ConfigurationError(
            f"{VARIABLE}={url} needs boto3: pip install 'dagtrigger[aws]'"
        ) from exc
    try:
        obj = boto3.client("s3").get_object(Bucket=bucket, Key=key)
        return str(obj["Body"].read().decode("utf-8"))
    except (BotoCoreError, ClientError, UnicodeDecodeError) as exc:
        raise ConfigurationError(
            f"{VARIABLE}={url} cannot be read ({exc}): check the object exists and the function's "
            f"role may s3:GetObject on arn:aws:s3:::{bucket}/{key}."
        ) from exc
