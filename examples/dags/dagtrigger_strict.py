"""A DAG whose params validate the conf: Airflow refuses a run whose conf does not fit them."""

from __future__ import annotations

from datetime import UTC, datetime

try:  # Airflow 3
    from airflow.sdk import Param, dag, task
except ImportError:  # Airflow 2
    from airflow.decorators import dag, task
    from airflow.models.param import Param


@dag(
    dag_id="dagtrigger_strict",
    schedule=None,
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    tags=["dagtrigger"],
    params={"partition": Param(type="string", pattern=r"^\d{4}-\d{2}-\d{2}$")},
    doc_md=__doc__,
)
def dagtrigger_strict():
    @task
    def load(**context):
        print(f"loading partition {context['params']['partition']}")

    load()


dagtrigger_strict()
