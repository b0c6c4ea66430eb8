"""The sample's Cloud Function (1st gen background function, e.g. on a Cloud Storage trigger).

The sample hard-codes its two TODO values, the web server URL and the DAG id; here they are read
from AIRFLOW_URL and DAG_ID, once per event, which costs nothing measurable.
"""

import os
from typing import Any

import composer2_airflow_rest_api


def trigger_dag_gcf(data: Any, context: Any = None) -> None:
    web_server_url = os.environ["AIRFLOW_URL"]
    dag_id = os.environ["DAG_ID"]
    composer2_airflow_rest_api.trigger_dag(web_server_url, dag_id, data)
