"""DAG run ids: valid for Airflow, bounded, the same for the same event, distinct otherwise."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dagtrigger.events.model import PROVIDERS, Event, Message, StorageObject
from dagtrigger.run_id import MAX_RUN_ID_LENGTH, build_dag_run_id, canonical_identity

AIRFLOW_RUN_ID = r"^[A-Za-z0-9_.~:+-]+$"  # Airflow's default [scheduler] allowed_run_id_pattern
GCS_FINALIZED = "google.cloud.storage.object.v1.finalized"


def object_event(
    name: str,
    *,
    bucket: str = "landing",
    event_type: str = GCS_FINALIZED,
    identity: tuple[str, ...] | None = None,
    provider: str = "gcs",
) -> Event:
    return Event(
        provider=provider,
        event_id="1",
        event_type=event_type,
        event_time="2024-06-01T00:00:00Z",
        identity=identity if identity is not None else (provider, "finalized", bucket, name, "7"),
        object=StorageObject(scheme="gs", bucket=bucket, name=name, version="7"),
    )


def message_event(identity: tuple[str, ...], message_id: str = "m-1") -> Event:
    """A message event: its readable part is only the message id, whatever the identity."""
    return Event(
        provider="sqs",
        event_id=message_id,
        event_type="aws:sqs",
        event_time=None,
        identity=identity,
        message=Message(message_id=message_id, data="x"),
    )


def test_a_plain_object_event_gets_a_readable_id() -> None:
    run_id = build_dag_run_id(object_event("sales/2024-06-01/orders.csv"))

    assert run_id.startswith("gcs__finalized__landing_sales_2024-06-01_orders.csv__")
    digest = run_id.rsplit("__", 1)[1]
    assert len(digest) == 20
    assert all(c in "0123456789abcdef" for c in digest)


def test_the_same_event_always_gets_the_same_id() -> None:
    first = build_dag_run_id(object_event("sales/orders.csv"))
    again = build_dag_run_id(object_event("sales/orders.csv"))

    assert first == again


def test_the_id_is_stable_across_releases() -> None:
    # A changed id would start a second run for every event redelivered across an upgrade.
    event = object_event("sales/orders.csv")

    assert build_dag_run_id(event) == (
        "gcs__finalized__landing_sales_orders.csv__8e50a0728a44338512c1"
    )


@given(st.lists(st.text(st.characters(exclude_categories=())), max_size=8).map(tuple))
def test_the_digested_text_is_exactly_what_json_dumps_writes(identity: tuple[str, ...]) -> None:
    # Ids released with json.dumps(list(identity)) must come out the same from now on.
    assert canonical_identity(identity) == json.dumps(list(identity), ensure_ascii=True)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param("a b.csv", "a_b.csv", id="space-vs-underscore"),
        pytest.param("a/b.csv", "a?b.csv", id="replaced-characters"),
        pytest.param("Zürich.csv", "Z_rich.csv", id="non-ascii"),
        pytest.param("x" * 300 + "1", "x" * 300 + "2", id="differ-after-char-300"),
        pytest.param("report.csv", "report.csv___", id="trailing-underscores"),
    ],
)
def test_names_that_read_the_same_still_get_different_ids(first: str, second: str) -> None:
    a = build_dag_run_id(object_event(first))
    b = build_dag_run_id(object_event(second))

    assert a.rsplit("__", 1)[0] == b.rsplit("__", 1)[0]  # the readable parts coincide
    assert a != b


def test_the_readable_kind_is_the_last_part_of_the_event_type() -> None:
    run_id = build_dag_run_id(
        object_event("k.csv", provider="s3", event_type="ObjectCreated:Put", bucket="b")
    )

    assert run_id.startswith("s3__ObjectCreated:Put__b_k.csv__")


def test_identities_that_join_to_the_same_text_get_different_ids() -> None:
    one_part = message_event(("sqs", "queue\x1fmsg"))
    two_parts = message_event(("sqs", "queue", "msg"))

    assert build_dag_run_id(one_part) != build_dag_run_id(two_parts)


def test_an_identity_with_a_lone_surrogate_still_gets_a_valid_id() -> None:
    run_id = build_dag_run_id(object_event("x\ud800.csv"))

    assert re.fullmatch(AIRFLOW_RUN_ID, run_id)
    assert run_id != build_dag_run_id(object_event("x\ud801.csv"))


long_unicode = st.text(min_size=1000, max_size=1000)
event_types = st.text(max_size=400)


@given(name=long_unicode, bucket=st.text(min_size=1, max_size=63), event_type=event_types)
def test_any_object_event_gets_a_valid_bounded_id(name: str, bucket: str, event_type: str) -> None:
    run_id = build_dag_run_id(object_event(name, bucket=bucket, event_type=event_type))

    assert len(run_id) <= MAX_RUN_ID_LENGTH
    assert re.fullmatch(AIRFLOW_RUN_ID, run_id)


@given(
    provider=st.sampled_from(PROVIDERS),
    event_type=event_types,
    identity=st.lists(st.text(), max_size=6).map(tuple),
    label=st.text(max_size=600),
)
def test_any_event_gets_a_valid_deterministic_id(
    provider: str, event_type: str, identity: tuple[str, ...], label: str
) -> None:
    event = Event(provider, label, event_type, None, identity)

    run_id = build_dag_run_id(event)

    assert len(run_id) <= MAX_RUN_ID_LENGTH
    assert re.fullmatch(AIRFLOW_RUN_ID, run_id)
    assert build_dag_run_id(Event(provider, label, event_type, None, tuple(identity))) == run_id


identity_part = st.text(alphabet=st.characters(), max_size=40)
identities = st.lists(identity_part, min_size=1, max_size=5).map(tuple)


@given(first=identities, second=identities)
def test_distinct_identities_get_distinct_ids_even_with_the_same_label(
    first: tuple[str, ...], second: tuple[str, ...]
) -> None:
    if first == second:
        assert build_dag_run_id(message_event(first)) == build_dag_run_id(message_event(second))
    else:
        assert build_dag_run_id(message_event(first)) != build_dag_run_id(message_event(second))


@given(prefix=st.text(min_size=300, max_size=300), first=identity_part, second=identity_part)
def test_long_names_differing_only_at_the_end_get_distinct_ids(
    prefix: str, first: str, second: str
) -> None:
    a = build_dag_run_id(object_event(prefix + first))
    b = build_dag_run_id(object_event(prefix + second))

    assert (a == b) == (first == second)
