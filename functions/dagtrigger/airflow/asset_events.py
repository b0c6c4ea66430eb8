"""Recording asset events (Airflow 3) and dataset events (Airflow 2.9 to 2.11), once per event.

    Airflow 3      GET  /api/v2/assets?uri_pattern=…      the asset's id, by URI or name
                   GET  /api/v2/assets/events?asset_id=…  recorded since the event happened
                   POST /api/v2/assets/events             {asset_id, extra[, partition_key]}
    Airflow 2.9+   GET  /api/v1/datasets?uri_pattern=…
                   GET  /api/v1/datasets/events?dataset_id=…
                   POST /api/v1/datasets/events           {dataset_uri, extra}

An asset event takes no id from its client, so the event's identity is kept in its extra
(`IDENTITY_KEY`), and before recording one the events recorded for the asset since the cloud
event happened are read: finding the identity there means a redelivery (outcome duplicate). The
window that remains is two deliveries of one event read at the same moment: both find nothing
and both record. Every attempt reads before it posts, so a retry after an answer that never came
finds the event the lost answer was about.

The list filters are SQL LIKE substrings (`_` and `%` match other characters, and Airflow 3
splits at `|`), so what they return is only a superset: the asset is the one whose URI or name
equals the route's, compared here.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from dagtrigger.airflow.answers import Asked, classify
from dagtrigger.airflow.api import ApiVersion
from dagtrigger.airflow.retry import RetryPolicy, call_with_retries
from dagtrigger.assets import IDENTITY_KEY, PlannedAssetEvent
from dagtrigger.errors import (
    ConfigurationError,
    DagTriggerError,
    ErrorKind,
    PermanentTriggerError,
    TransientTriggerError,
)

if TYPE_CHECKING:
    from dagtrigger.airflow.client import AirflowClient, AssetEventResult

PAGE_SIZE = 100  # Airflow's default maximum_page_limit
MAX_PAGES = 20  # how far back a redelivery is looked for: 2,000 events of the asset
CLOCK_SKEW = timedelta(minutes=10)  # between the cloud's clock and Airflow's
LOOKBACK_WITHOUT_TIME = timedelta(days=1)  # for an event that carries no time
PARTITIONS_SINCE = (3, 2)
DATASET_EVENTS_SINCE = (2, 9)


@dataclass(frozen=True, slots=True)
class Asset:
    """An asset (or dataset) as Airflow knows it."""

    id: int
    uri: str
    name: str  # a dataset's name is its URI
    scheduled_dags: tuple[str, ...] = ()


class AssetEvents:
    """Records asset events through one Airflow client; assets are looked up once per process."""

    def __init__(self, client: AirflowClient) -> None:
        self._client = client
        self._assets: dict[str, Asset] = {}
        self._version: tuple[int, ...] | None = None
        self._lock = threading.Lock()

    @property
    def _where(self) -> str:
        return f"Airflow at {self._client.transport.description}"

    def record(
        self, planned: PlannedAssetEvent, *, retry: RetryPolicy | None = None
    ) -> AssetEventResult:
        """Record the asset event, or find the one this event recorded before."""
        from dagtrigger.airflow.client import AssetEventResult, Outcome

        attempts = 0
        uncertain = False  # an earlier attempt may have recorded it without our hearing back

        def attempt() -> AssetEventResult:
            nonlocal attempts, uncertain
            attempts += 1
            asset = self.find(planned.asset)
            earlier = self.recorded_before(asset, planned)
            if earlier is not None:
                outcome = Outcome.CREATED if uncertain else Outcome.DUPLICATE
                return AssetEventResult(outcome, earlier, attempts)
            try:
                response = self._client.request(
                    "POST", self._events_path, json_body=self._body(asset, planned)
                )
            except TransientTriggerError:
                uncertain = True
                raise
            if response.status in (200, 201) and isinstance(event := response.json(), dict):
                return AssetEventResult(Outcome.CREATED, event, attempts)
            error = self._refusal(response, planned.asset)
            if error.kind is ErrorKind.SERVER_ERROR:
                uncertain = True
            raise error

        return call_with_retries(
            attempt,
            retry or self._client.retry,
            what=f"recording an event of asset {planned.asset!r} (event {planned.key})",
        )

    def find(self, reference: str) -> Asset:
        """The asset whose URI, else name, is `reference`; asked once, then kept."""
        asset = self._assets.get(reference)
        if asset is None:
            asset = self._look_up(reference)
            with self._lock:
                self._assets[reference] = asset
        return asset

    def recorded_before(self, asset: Asset, planned: PlannedAssetEvent) -> Mapping[str, Any] | None:
        """The asset's event that holds this event's identity, among those recorded since the
        cloud event happened (with some slack for clocks)."""
        since = _since(planned)
        for event in self._events_since(asset, since):
            extra = event.get("extra")
            if isinstance(extra, dict) and extra.get(IDENTITY_KEY) == planned.key:
                return event
        return None

    # --- The server, its version and its paths

    @property
    def _v2(self) -> bool:
        return self._client.api_version is ApiVersion.V2

    @property
    def _prefix(self) -> str:
        return self._client.api_version.prefix

    @property
    def _events_path(self) -> str:
        return f"{self._prefix}/{'assets' if self._v2 else 'datasets'}/events"

    def server_version(self) -> tuple[int, ...]:
        if self._version is None:
            response = self._client.request("GET", f"{self._prefix}/version")
            answer = classify(response)
            if answer.kind is not None:
                raise answer.error_for(Asked(self._where, f"GET {self._prefix}/version"))
            self._version = _parse_version(response.json())
        return self._version

    def _check_version(self, planned: PlannedAssetEvent | None = None) -> None:
        version = self.server_version()
        shown = ".".join(map(str, version))
        if self._client.api_version is ApiVersion.EXPERIMENTAL or (
            not self._v2 and version < DATASET_EVENTS_SINCE
        ):
            raise ConfigurationError(
                f"{self._where} runs Airflow {shown}, which cannot record dataset events from its "
                "REST API",
                fix="upgrade to Airflow 2.9 or later (3.x for assets), or route the events to a "
                "DAG with dag_id.",
            )
        if (
            planned is not None
            and planned.partition_key is not None
            and (not self._v2 or version < PARTITIONS_SINCE)
        ):
            raise ConfigurationError(
                f'route "{planned.route}" sets a partition_key, and {self._where} runs Airflow '
                f"{shown}, whose asset events have no partition key",
                fix="upgrade to Airflow 3.2 or later, or remove partition_key from the route.",
            )

    def _body(self, asset: Asset, planned: PlannedAssetEvent) -> dict[str, Any]:
        self._check_version(planned)
        if not self._v2:
            return {"dataset_uri": asset.uri, "extra": planned.extra}
        # Airflow 3 refuses fields it does not know (422): only what this version has.
        body: dict[str, Any] = {"asset_id": asset.id, "extra": planned.extra}
        if planned.partition_key is not None:
            body["partition_key"] = planned.partition_key
        return body

    # --- Reading

    def _look_up(self, reference: str) -> Asset:
        self._check_version()
        kind = "assets" if self._v2 else "datasets"
        searches = (
            [("uri_pattern", "uri"), ("name_pattern", "name")]
            if self._v2
            else [("uri_pattern", "uri")]
        )
        for parameter, field in searches:
            for item in self._pages(f"{self._prefix}/{kind}", {parameter: reference}, kind):
                if item.get(field) == reference:
                    return _asset(item)
        if self._v2:
            inactive = self._pages(
                f"{self._prefix}/assets",
                {"uri_pattern": reference, "only_active": "false"},
                "assets",
            )
            if any(reference in (a.get("uri"), a.get("name")) for a in inactive):
                raise PermanentTriggerError(
                    f"Asset {reference!r} at {self._where} is not active: no DAG declares it any "
                    "more",
                    fix="declare it in a DAG again (as a schedule, an outlet or an inlet), or "
                    "point the route's asset at one a DAG declares.",
                    kind=ErrorKind.NOT_FOUND,
                )
        what = "Asset" if self._v2 else "Dataset"
        raise PermanentTriggerError(
            f"{what} {reference!r} was not found at {self._where}",
            fix=f"Check the route's asset: its {'URI or name' if self._v2 else 'URI'}, exactly as "
            "a DAG declares it; the DAG's file must be parsed without import errors.",
            kind=ErrorKind.NOT_FOUND,
        )

    def _events_since(self, asset: Asset, since: datetime) -> Iterator[Mapping[str, Any]]:
        if self._v2:
            query = {
                "asset_id": str(asset.id),
                "timestamp_gte": since.isoformat(),
                "order_by": "-timestamp",
            }
            yield from self._pages(f"{self._prefix}/assets/events", query, "asset_events")
            return
        # Airflow 2 filters by no time: newest first, until the events are older than `since`.
        query = {"dataset_id": str(asset.id), "order_by": "-timestamp"}
        for event in self._pages(f"{self._prefix}/datasets/events", query, "dataset_events"):
            if _timestamp(event.get("timestamp")) < since:
                return
            yield event

    def _pages(self, path: str, query: Mapping[str, str], key: str) -> Iterator[Mapping[str, Any]]:
        for page in range(MAX_PAGES):
            arguments = {**query, "limit": str(PAGE_SIZE), "offset": str(page * PAGE_SIZE)}
            if "order_by" not in arguments:
                arguments["order_by"] = "id"
            response = self._client.request("GET", f"{path}?{urlencode(arguments)}")
            answer = classify(response)
            if answer.kind is not None:
                raise self._read_refusal(answer.error_for(Asked(self._where, f"GET {path}")))
            body = response.json()
            items = body.get(key) if isinstance(body, dict) else None
            if not isinstance(items, list):
                raise TransientTriggerError(
                    f"{self._where} answered GET {path} without a list of {key}",
                    kind=ErrorKind.SERVER_ERROR,
                    status=response.status,
                )
            yield from (item for item in items if isinstance(item, dict))
            if len(items) < PAGE_SIZE:
                return

    def _read_refusal(self, error: DagTriggerError) -> DagTriggerError:
        if error.kind is ErrorKind.AUTHORIZATION:
            return type(error)(
                error.problem,
                fix=f"give the identity read access to {_resource(self._v2)} "
                f"({_permissions(self._v2, 'read')}).",
                kind=error.kind,
                status=error.status,
            )
        return error

    def _refusal(self, response: Any, reference: str) -> DagTriggerError:
        answer = classify(response)
        action = f"record an event of {'asset' if self._v2 else 'dataset'} {reference!r}"
        if answer.kind is ErrorKind.AUTHORIZATION:
            return answer.error(
                f"{self._where} refused to {action} ({answer.status}: {answer.detail})",
                f"give the identity the right to create {_resource(self._v2)} "
                f"({_permissions(self._v2, 'create')}).",
            )
        if answer.kind is ErrorKind.REJECTED:
            return answer.error(
                f"{self._where} refused the event for {reference!r} as sent ({answer.status}: "
                f"{answer.detail})",
                "check the route's extra and partition_key; if they look right, report this "
                "message.",
            )
        if answer.kind is ErrorKind.NOT_FOUND:
            # Gone since it was found (its DAG removed, or declared again under a new id): the
            # next attempt looks it up again, and fails for good only if it is not there.
            with self._lock:
                self._assets.pop(reference, None)
            return TransientTriggerError(
                f"{self._where} no longer knows the asset {reference!r} was found as "
                f"({answer.status}: {answer.detail})",
                kind=ErrorKind.NOT_FOUND,
                status=answer.status,
            )
        return answer.error_for(Asked(self._where, action, self._client.transport.auth))


def _asset(item: Mapping[str, Any]) -> Asset:
    uri = str(item.get("uri", ""))
    dags = item.get("scheduled_dags") or item.get("consuming_dags") or []
    return Asset(
        id=int(item["id"]),
        uri=uri,
        name=str(item.get("name") or uri),
        scheduled_dags=tuple(
            str(dag["dag_id"]) for dag in dags if isinstance(dag, dict) and "dag_id" in dag
        ),
    )


def _since(planned: PlannedAssetEvent) -> datetime:
    happened = _parse_time(planned.event.event_time)
    if happened is None:
        return datetime.now(UTC) - LOOKBACK_WITHOUT_TIME
    return happened - CLOCK_SKEW


def _timestamp(value: Any) -> datetime:
    """An event's timestamp as Airflow gives it; one it cannot read counts as very old."""
    return _parse_time(value) or _LONG_AGO


_LONG_AGO = datetime.min.replace(tzinfo=UTC)


def _parse_time(value: Any) -> datetime | None:
    """An ISO 8601 time as an aware datetime (UTC when it names no zone), else None."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _parse_version(payload: Any) -> tuple[int, ...]:
    text = payload.get("version") if isinstance(payload, dict) else None
    numbers: list[int] = []
    for part in str(text or "0").split(".")[:3]:
        digits = "".join(c for c in part if c.isdigit()) or "0"
        numbers.append(int(digits))
        if not part.isdigit():
            break
    return tuple(numbers)


def _resource(v2: bool) -> str:
    return "asset events" if v2 else "dataset events"


def _permissions(v2: bool, action: str) -> str:
    if v2:
        return f"with the FAB auth manager, a role with can {action} on Assets"
    return f"a role with can {action} on Datasets"
