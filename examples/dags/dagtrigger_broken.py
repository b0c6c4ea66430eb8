"""A DAG file that fails to import, so that `dagtrigger doctor` can show what Airflow reports.

The tests point DAG_ID at `dagtrigger_broken` and expect the doctor to name this file and the
error. Airflow records the failure as an import error for this file only; the other example DAGs
are not affected.
"""

from __future__ import annotations

from datetime import UTC, datetime

from dagtrigger_helpers_not_installed import load_partition  # the import error, on purpose

try:  # Airflow 3
    from airflow.sdk import dag
except ImportError:  # Airflow 2
    from airflow.decorators import dag


@dag(
    dag_id="dagtrigger_broken",
    schedule=None,
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    tags=["dagtrigger"],
)
def dagtrigger_broken():
    load_partition()


dagtrigger_broken()
