"""A DAG scheduled on data, not on time: it runs when an event for the landing asset is recorded.

dagtrigger records the event (Airflow 3: an asset event, Airflow 2.9+: a dataset event) with the
object's fields in `extra`: provider, event_id, bucket, name, uri, version (the GCS generation or
the S3 version id), size, etag... the same fields as the conf it gives DAGs it starts directly.
The task reads them from the events that triggered the run; one run may consume several events
when they arrive faster than the scheduler starts runs.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

try:  # Airflow 3: assets
    from airflow.sdk import Asset, dag, task

    SALES_LANDING = Asset(uri="gs://acme-landing/sales", name="acme_landing_sales")
    TRIGGERING_EVENTS = "triggering_asset_events"
except ImportError:  # Airflow 2.9 to 2.11: datasets
    from airflow.datasets import Dataset
    from airflow.decorators import dag, task

    SALES_LANDING = Dataset("gs://acme-landing/sales")
    TRIGGERING_EVENTS = "triggering_dataset_events"

EXTRA_FIELDS = ("provider", "event_id", "bucket", "name", "uri", "version")


@dag(
    dag_id="dagtrigger_asset_consumer",
    schedule=[SALES_LANDING],
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    tags=["dagtrigger"],
    doc_md=__doc__,
)
def dagtrigger_asset_consumer():
    @task
    def read_events(**context):
        events = [event for events in context[TRIGGERING_EVENTS].values() for event in events]
        landed = []
        for event in events:
            extra = event.extra or {}
            print(f"landed: {extra.get('uri')} (version {extra.get('version')})")
            landed.append({key: extra.get(key) for key in EXTRA_FIELDS})
        return json.dumps(landed, sort_keys=True)

    read_events()


dagtrigger_asset_consumer()
