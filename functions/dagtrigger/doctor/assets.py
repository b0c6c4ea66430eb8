"""Checks of the assets (datasets) the routes record events of: that each exists, which DAGs it
schedules, that a partitioned consumer waits for the partition keys routes set, and (with
--write-check) that the identity may record asset events."""

from __future__ import annotations

from urllib.parse import quote

from dagtrigger.airflow.api import ApiVersion
from dagtrigger.airflow.asset_events import PARTITIONS_SINCE
from dagtrigger.doctor.access import refusal
from dagtrigger.doctor.context import Context
from dagtrigger.doctor.model import Outcome, fail, ok, skip, warn

# A dataset URI no DAG declares: Airflow 2 answers 404 for it after its permission check.
PROBE_DATASET_URI = "dagtrigger-doctor://probe/no-such-dataset"


def check_asset_exists(ctx: Context, reference: str) -> Outcome:
    """The asset is known and active, and which DAGs are scheduled on it."""
    asset = ctx.need_client.asset_events.find(reference)
    what = "asset" if ctx.need_client.api_version is ApiVersion.V2 else "dataset"
    if not asset.scheduled_dags:
        return warn(
            f"{what} {asset.id} ({asset.uri}) exists, and no DAG is scheduled on it: its events "
            "are recorded and start nothing",
            f"schedule a DAG on it, e.g. schedule=[Asset({asset.uri!r})] (Airflow 2: "
            "Dataset), if its events should start one",
        )
    scheduled = f"{what} {asset.id} ({asset.uri}) schedules {', '.join(asset.scheduled_dags)}"
    paused = [dag for dag in asset.scheduled_dags if _details(ctx, dag, "").get("is_paused")]
    if paused == list(asset.scheduled_dags):
        return warn(
            f"{scheduled}, all paused: Airflow queues no run of a paused DAG for an event, and "
            "does not start one for it when the DAG is unpaused later",
            f"unpause {', '.join(paused)}.",
        )
    return ok(scheduled + (f" ({', '.join(paused)} paused)" if paused else ""))


def check_asset_partitions(ctx: Context, reference: str) -> Outcome:
    """A route sets partition keys for this asset: some DAG scheduled on it takes them."""
    client = ctx.need_client
    if reference not in ctx.partitioned_assets:
        if client.api_version is not ApiVersion.V2:
            return skip("no route sets a partition key for it")
        waiting = _partitioned(ctx, client.asset_events.find(reference).scheduled_dags)
        if waiting:
            return warn(
                f"{', '.join(waiting)} wait for partitions of it, and no route sets a partition "
                "key: Airflow starts no partitioned DAG for an event without one",
                'set "partition_key" on the route that records its events.',
            )
        return skip("no route sets a partition key for it, and no DAG waits for partitions")
    version = client.asset_events.server_version()
    shown = ".".join(map(str, version))
    if client.api_version is not ApiVersion.V2 or version < PARTITIONS_SINCE:
        return fail(
            f"a route sets partition keys for it, and Airflow {shown} has no partitions",
            "upgrade to Airflow 3.2 or later, or remove partition_key from the route.",
        )
    partitioned = _partitioned(ctx, client.asset_events.find(reference).scheduled_dags)
    if not partitioned:
        return warn(
            "a route sets partition keys for it, and no DAG scheduled on it has a partitioned "
            "timetable: Airflow starts no other DAG for an event with a partition key",
            "schedule a DAG on it with PartitionedAssetTimetable (README: Asset events and "
            "partitions), or remove partition_key from the route.",
        )
    return ok(f"partitioned consumers: {', '.join(partitioned)}")


def _partitioned(ctx: Context, dag_ids: tuple[str, ...]) -> list[str]:
    return [dag for dag in dag_ids if _details(ctx, dag, "/details").get("timetable_partitioned")]


def _details(ctx: Context, dag_id: str, suffix: str) -> dict[str, object]:
    """The DAG as Airflow describes it (GET /dags/ID, or with /details); {} when unreadable."""
    response = ctx.api("GET", f"/dags/{quote(dag_id, safe='')}{suffix}")
    details = response.json() if response.status == 200 else None
    return details if isinstance(details, dict) else {}


def check_may_record(ctx: Context) -> Outcome:
    """POST an asset event Airflow must refuse after its permission check, recording nothing.

    Airflow 3 resolves the route's permission dependency before it validates the body, and
    refuses the probe's unknown field with 422. Airflow 2 (connexion) validates the body
    against its schema first, so its probe is valid and names a dataset no DAG declares:
    the endpoint answers 404 after its permission check. 403 means the permission is missing.
    """
    if not ctx.write_check:
        return skip("not probed: add --write-check for a permission probe that records nothing")
    client = ctx.need_client
    if client.api_version is ApiVersion.V2:
        response = ctx.api("POST", "/assets/events", {"asset_id": 0, "dagtrigger_probe": True})
        allowed = response.status == 422
    elif client.api_version is ApiVersion.V1:
        response = ctx.api("POST", "/datasets/events", {"dataset_uri": PROBE_DATASET_URI})
        allowed = response.status == 404
    else:
        return skip("not probed: the experimental API records no dataset events")
    who = client.transport.auth.description
    if allowed:
        return ok(
            f"{who} may record asset events (Airflow checked the permission, then refused the "
            "probe as intended: nothing recorded)"
        )
    if response.status in (401, 403):
        return refusal(ctx, response, "record asset events")
    return fail(
        f"the permission probe got {response.status} ({response.detail()}), not the refusal it "
        "expects after a granted permission",
        "check by hand that the identity may create asset events; if it may, report this line.",
    )
