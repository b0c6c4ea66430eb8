"""Cloud Functions entry points. Deploy this directory with one of:

    --entry-point=handle_cloud_event       2nd gen (Eventarc): GCS object events, Pub/Sub messages
    --entry-point=handle_background_event  1st gen background functions (GCS, Pub/Sub)

Configuration is by environment variables: see the README.
"""

from __future__ import annotations

from typing import Any

import functions_framework

from dagtrigger.platforms import cloud_functions


@functions_framework.cloud_event
def handle_cloud_event(cloud_event: Any) -> None:
    cloud_functions.handle_cloud_event(cloud_event)


def handle_background_event(data: Any, context: Any) -> None:
    cloud_functions.handle_background_event(data, context)
