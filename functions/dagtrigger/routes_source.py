"""Where DAGTRIGGER_ROUTES comes from: inline JSON, a file, or an object in gs:// or s3://.

Remote sources are read with the cloud's own SDK, imported only when such a URL is configured,
and re-read at most once per DAGTRIGGER_ROUTES_TTL so an edited routes file takes effect without
a redeploy while warm invocations pay nothing. Routes are at most MAX_ROUTES_BYTES whatever their
source, and no more than that (plus one byte, to tell) is ever read.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

from dagtrigger.errors import ConfigurationError

VARIABLE = "DAGTRIGGER_ROUTES"
# Routes are rules, not data: a few kilobytes hold hundreds of them. The cap keeps a wrong URL (a
# data file, a log) from taking the function's memory and time at every re-read.
MAX_ROUTES_BYTES = 1024 * 1024
T = TypeVar("T")
logger = logging.getLogger("dagtrigger")


def describe_source(spec: str) -> str:
    stripped = spec.lstrip()
    if stripped.startswith(("[", "{")):
        return f"{VARIABLE} (inline JSON)"
    return f"{VARIABLE}={spec}"


def read_routes_text(spec: str) -> str:
    """The raw JSON text that `spec` designates; ConfigurationError past MAX_ROUTES_BYTES."""
    stripped = spec.lstrip()
    if stripped.startswith(("[", "{")):
        size = len(stripped.encode("utf-8", "surrogatepass"))
        if size > MAX_ROUTES_BYTES:
            raise _too_large(spec, size)
        return stripped
    if spec.startswith("gs://"):
        data = _read_gcs(spec)
    elif spec.startswith("s3://"):
        data = _read_s3(spec)
    else:
        data = _read_file(spec)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigurationError(
            f"{describe_source(spec)} is not UTF-8 text ({exc.reason} at byte {exc.start})",
            fix="save it as UTF-8.",
        ) from exc


def parse_routes(text: str, spec: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ConfigurationError(
            f"{describe_source(spec)} is not valid JSON: {exc}",
            fix='write the rules as a JSON list (README, "Routing rules").',
        ) from exc
    except RecursionError as exc:
        raise ConfigurationError(
            f"{describe_source(spec)} is JSON nested too deeply to parse ({exc})",
            fix="routes are a list of rules a few levels deep.",
        ) from exc


def _too_large(spec: str, size: int | None) -> ConfigurationError:
    measured = f"{size:,} bytes" if size is not None else f"over {MAX_ROUTES_BYTES:,} bytes"
    return ConfigurationError(
        f"{describe_source(spec)} is {measured}; routes may be at most {MAX_ROUTES_BYTES:,} "
        "bytes (1 MiB)",
        fix="match many objects with one prefix, glob or regex rather than listing them, and "
        "check that it names the routes, not a data file.",
    )


def _read_file(spec: str) -> bytes:
    try:
        with open(spec, "rb") as file:
            data = file.read(MAX_ROUTES_BYTES + 1)
            size = os.fstat(file.fileno()).st_size  # 0 for a pipe or a device: size unknown
    except OSError as exc:
        raise ConfigurationError(
            f"{VARIABLE}={spec!r} cannot be read ({exc.strerror or exc})",
            fix="set it to inline JSON, a readable file path, or a gs:// or s3:// URL.",
        ) from exc
    if len(data) > MAX_ROUTES_BYTES:
        raise _too_large(spec, size if size > MAX_ROUTES_BYTES else None)
    return data


class CachedRoutes(Generic[T]):
    """Routes read and built once, re-read after `ttl` seconds.

    A re-read that fails in any way (unreadable, too large, invalid JSON, nested too deeply,
    invalid rules, or any error building them) keeps serving the last good routes and is logged,
    so a bad edit of a shared routes file never stops the events flowing. A first read has nothing
    to fall back on: it raises a ConfigurationError.
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
            except Exception as exc:  # whatever an edit breaks, the events keep flowing
                failure = exc if isinstance(exc, ConfigurationError) else _unusable(exc, self.spec)
                if self._built is None:
                    if failure is exc:
                        raise
                    raise failure from exc
                logger.error("keeping the previous routes: %s", failure)
            self._read_at = now
            return self._built


def _unusable(exc: Exception, spec: str) -> ConfigurationError:
    return ConfigurationError(
        f"{describe_source(spec)} cannot be turned into routes ({type(exc).__name__}: {exc})",
        fix='correct the rules (README, "Routing rules"); if they look right, report this message.',
    )


def _bucket_and_key(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    key = parts.path.lstrip("/")
    if not parts.netloc or not key:
        raise ConfigurationError(
            f"{VARIABLE}={url!r} must name an object",
            fix=f"e.g. {VARIABLE}={parts.scheme}://BUCKET/path/routes.json",
        )
    return parts.netloc, key


def _read_gcs(url: str) -> bytes:
    bucket, key = _bucket_and_key(url)
    try:
        from google.cloud import storage
    except ImportError as exc:
        raise ConfigurationError(
            f"{VARIABLE}={url} needs google-cloud-storage", fix="pip install 'dagtrigger[gcp]'"
        ) from exc
    from google.api_core import exceptions as google_errors

    try:
        blob = storage.Client().bucket(bucket).blob(key)
        data = bytes(blob.download_as_bytes(start=0, end=MAX_ROUTES_BYTES))  # `end` is included
    except google_errors.RequestRangeNotSatisfiable:
        return b""  # an empty object has no byte 0 for the range to start at
    except google_errors.GoogleAPIError as exc:
        raise ConfigurationError(
            f"{VARIABLE}={url} cannot be read ({exc})",
            fix="check the object exists and the function's "
            "service account has roles/storage.objectViewer on the bucket.",
        ) from exc
    if len(data) > MAX_ROUTES_BYTES:
        try:
            blob.reload()  # one more request, made only to name the size in the refusal
            size = blob.size
        except google_errors.GoogleAPIError:
            size = None
        raise _too_large(url, size)
    return data


def _read_s3(url: str) -> bytes:
    bucket, key = _bucket_and_key(url)
    try:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError as exc:
        raise ConfigurationError(
            f"{VARIABLE}={url} needs boto3", fix="pip install 'dagtrigger[aws]'"
        ) from exc
    try:
        obj = boto3.client("s3").get_object(
            Bucket=bucket, Key=key, Range=f"bytes=0-{MAX_ROUTES_BYTES}"
        )
        data = bytes(obj["Body"].read())
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "InvalidRange":
            return b""  # an empty object has no byte 0 for the range to start at
        raise _unreadable_s3(url, bucket, key, exc) from exc
    except BotoCoreError as exc:
        raise _unreadable_s3(url, bucket, key, exc) from exc
    if len(data) > MAX_ROUTES_BYTES:
        # "bytes 0-1048576/5242880": the object's whole size follows the slash
        total = str(obj.get("ContentRange", "")).rpartition("/")[2]
        raise _too_large(url, int(total) if total.isdigit() else None)
    return data


def _unreadable_s3(url: str, bucket: str, key: str, exc: Exception) -> ConfigurationError:
    return ConfigurationError(
        f"{VARIABLE}={url} cannot be read ({exc})",
        fix=f"check the object exists and the function's "
        f"role may s3:GetObject on arn:aws:s3:::{bucket}/{key}.",
    )
