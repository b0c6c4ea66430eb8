"""The least a function can do with an object event: one POST of the run on a kept-alive
connection, with a conf of two fields and no note, no retry, no logging. It runs on the same platform machinery as dagtrigger in the
burst (functions-framework, or awslambdaric against the Runtime API stand-in), so that the two
differ only by what dagtrigger does per event.

    BARE_AIRFLOW_URL       http://127.0.0.1:PORT
    BARE_AUTHORIZATION     the Authorization header (a JWT bearer or basic credentials)
    BARE_API               v2 (Airflow 3) or v1 (Airflow 2)

The run id is `bare__` and the object's name with slashes as underscores (`bare_run_id`).
"""

from __future__ import annotations

import http.client
import json
import os
import threading
from typing import Any
from urllib.parse import urlsplit

DAG_ID = "dagtrigger_example"
_local = threading.local()


def bare_run_id(name: str) -> str:
    return "bare__" + name.replace("/", "_")


def cloud_event(event: Any) -> None:
    """functions-framework target (`--signature-type cloudevent`)."""
    data = event.data
    _trigger(data["bucket"], data["name"])


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, str]:
    """Lambda handler for an S3 notification of one object."""
    s3 = event["Records"][0]["s3"]
    name = s3["object"]["key"]
    _trigger(s3["bucket"]["name"], name)
    return {"run": bare_run_id(name)}


def _trigger(bucket: str, name: str) -> None:
    body: dict[str, Any] = {
        "conf": {"bucket": bucket, "name": name},
        "dag_run_id": bare_run_id(name),
    }
    api = os.environ["BARE_API"]
    if api == "v2":
        body["logical_date"] = None
    connection = getattr(_local, "connection", None)
    if connection is None:
        url = urlsplit(os.environ["BARE_AIRFLOW_URL"])
        connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=60)
        _local.connection = connection
    headers = {
        "Content-Type": "application/json",
        "Authorization": os.environ["BARE_AUTHORIZATION"],
    }
    try:
        connection.request("POST", f"/api/{api}/dags/{DAG_ID}/dagRuns", json.dumps(body), headers)
        answer = connection.getresponse()
        answer.read()
    except OSError:
        _local.connection = None
        connection.close()
        raise
    if answer.status not in (200, 409):  # 409: a redelivery of a run already made
        raise RuntimeError(f"Airflow answered {answer.status}")
