"""Cloud Functions entry points. Deploy this directory with one of:

    --entry-point=handle_cloud_event       2nd gen (Eventarc): GCS object events, Pub/Sub messages
    --entry-point=handle_background_event  1st gen background functions (GCS, Pub/Sub)

Configuration is by environment variables: see the README.
"""

from __future__ import annotations

from typing import Any

import flask
import functions_framework

from dagtrigger.platforms import cloud_functions


@functions_framework.cloud_event
def handle_cloud_event(cloud_event: Any) -> None:
    cloud_functions.handle_cloud_event(cloud_event)


@functions_framework.errorhandler(UnicodeDecodeError)
def acknowledge_unreadable_body(error: UnicodeDecodeError) -> Any:
    """functions-framework reads the body before dagtrigger is called, and answers 500 (so the
    platform delivers it again) when it is not UTF-8: such a body holds no event, whatever the
    number of deliveries, so it is logged as unusable and acknowledged."""
    request = flask.request
    if cloud_functions.reject_unreadable_body(request.get_data(), request.headers.get("ce-id", "")):
        return "OK", 200
    return functions_framework.crash_handler(error)


def handle_background_event(data: Any, context: Any) -> None:
    cloud_functions.handle_background_event(data, context)
