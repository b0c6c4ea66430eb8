"""One run per day, once all 24 hourly files of that day have landed (Airflow 3.3 and later).

A route that sees `sales/day=2026-11-20/hour=13/part-0001.parquet` records an asset event on
`gs://acme-landing/sales_hourly` with the partition key `2026-11-20T13` and the object's fields in
`extra`. The rollup below maps each hourly key to its day (`2026-11-20`) and holds the day's run
until every hour from T00 to T23 has an event: files may arrive in any order, and a file that
lands twice does not count twice. The run's partition key is the day.

On Airflow 2 and on Airflow 3 before 3.3 (no rollup windows) this file defines no DAG.
"""

from __future__ import annotations

import json

try:
    from airflow.sdk import (
        Asset,
        DayWindow,
        PartitionedAssetTimetable,
        RollupMapper,
        StartOfDayMapper,
        WaitForAll,
        dag,
        task,
    )
except ImportError:  # Airflow 2, or Airflow 3 before 3.3
    ROLLUPS = False
else:
    ROLLUPS = True

if ROLLUPS:
    SALES_HOURLY = Asset(uri="gs://acme-landing/sales_hourly", name="acme_landing_sales_hourly")

    @dag(
        dag_id="dagtrigger_daily_sales",
        schedule=PartitionedAssetTimetable(
            assets=SALES_HOURLY,
            default_partition_mapper=RollupMapper(
                # dagtrigger's hourly keys look like 2026-11-20T13 (the mapper's default input
                # format wants seconds too); the day's key is 2026-11-20.
                upstream_mapper=StartOfDayMapper(input_format="%Y-%m-%dT%H"),
                window=DayWindow(),
                wait_policy=WaitForAll(),
            ),
        ),
        catchup=False,
        tags=["dagtrigger"],
        doc_md=__doc__,
    )
    def dagtrigger_daily_sales():
        @task
        def load_day(**context):
            events = [e for events in context["triggering_asset_events"].values() for e in events]
            hours = sorted({e.partition_key for e in events if e.partition_key})
            objects = sorted({(e.extra or {}).get("uri") for e in events} - {None})
            day = context["dag_run"].partition_key
            print(f"day {day}: {len(hours)} hours, {len(events)} events, {len(objects)} objects")
            return json.dumps(
                {"day": day, "hours": hours, "events": len(events), "objects": objects},
                sort_keys=True,
            )

        load_day()

    dagtrigger_daily_sales()
