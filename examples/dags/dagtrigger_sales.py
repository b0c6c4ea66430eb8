"""A DAG for routed events: it expects the partition date a route extracts from the object path."""

from __future__ import annotations

from datetime import UTC, datetime

try:  # Airflow 3
    from airflow.sdk import dag, task
except ImportError:  # Airflow 2
    from airflow.decorators import dag, task


@dag(
    dag_id="dagtrigger_sales",
    schedule=None,
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    tags=["dagtrigger"],
    doc_md=__doc__,
)
def dagtrigger_sales():
    @task
    def load_partition(**context):
        conf = context["dag_run"].conf or {}
        print(f"loading partition {conf.get('partition')} from {conf.get('uri')}")

    load_partition()


dagtrigger_sales()
