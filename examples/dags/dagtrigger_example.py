"""A DAG started by dagtrigger: it reads the event from `dag_run.conf` the safe way.

Object names are user data: a file may really be called `$(reboot).csv`. So the conf reaches the
shell only as an environment variable (quoted where it is used), never pasted into the command.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

try:  # Airflow 3
    from airflow.providers.standard.operators.bash import BashOperator
    from airflow.sdk import dag, task
except ImportError:  # Airflow 2
    from airflow.decorators import dag, task
    from airflow.operators.bash import BashOperator


@dag(
    dag_id="dagtrigger_example",
    schedule=None,
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    tags=["dagtrigger"],
    doc_md=__doc__,
)
def dagtrigger_example():
    @task
    def describe_event(**context):
        conf = context["dag_run"].conf or {}
        summary = {
            key: conf.get(key) for key in ("provider", "event_type", "uri", "name", "size", "data")
        }
        print(f"dagtrigger event: {summary}")
        return json.dumps(summary, sort_keys=True)

    show_object = BashOperator(
        task_id="show_object",
        bash_command='printf "object: %s\\n" "$OBJECT_URI"',
        env={"OBJECT_URI": "{{ dag_run.conf.get('uri', '') }}"},
        append_env=True,
    )

    describe_event() >> show_object


dagtrigger_example()
