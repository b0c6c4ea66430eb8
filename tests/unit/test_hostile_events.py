"""The hostile corpus (tests/hostile/) through the normalisers, the planner and `dagtrigger plan`.

Every input ends in the outcome its row in `tests.hostile.CORPUS` names: accepted with the exact
object name and an Airflow-safe run id, ignored with its reason, rejected as an unusable event, or
refused when planned (the conf cap) — each with a one-line message, never another exception.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dagtrigger.cli import main
from dagtrigger.dispatch import DEFAULT_MAX_CONF_BYTES, Plan, plan_events
from dagtrigger.errors import EventError
from dagtrigger.events import Normalised, normalise
from dagtrigger.events.payload import load_json
from dagtrigger.routing import Router
from dagtrigger.settings import Settings
from tests.hostile import CORPUS, HERE, MAX_CONF_VARIABLE, Expected, parsed, read

RUN_ID = re.compile(r"^[A-Za-z0-9_.~:+-]+$")  # Airflow's allowed_run_id_pattern
MAX_MESSAGE = 1000  # a message quotes the input, it never carries it whole (10 MB)
NAMES = sorted(CORPUS)

Outcome = tuple[str, str]  # (outcome, message)


def classify(
    payload: Any, max_conf_bytes: int = DEFAULT_MAX_CONF_BYTES
) -> tuple[Outcome, Plan | None]:
    """What normalise + plan_events make of `payload`, as (outcome, message) and the plan."""
    try:
        normalised = normalise(payload)
    except EventError as exc:
        return ("rejected", str(exc)), None
    plan = plan_events(normalised, Router.single("d"), max_conf_bytes)
    assert_sound(normalised, plan)
    if plan.runs:
        return ("accepted", ""), plan
    if plan.route_errors:
        return ("refused", str(plan.route_errors[0])), plan
    assert plan.ignored, "an event that starts nothing must say why"
    return ("ignored", plan.ignored[0]), plan


def safe_run_id(run_id: str) -> bool:
    """What Airflow 2 and 3 accept: the default pattern, 250 characters, and (3) no '..'."""
    return bool(RUN_ID.match(run_id)) and len(run_id) <= 250 and ".." not in run_id


def assert_sound(normalised: Normalised, plan: Plan) -> None:
    """What every entry point relies on, whatever came in."""
    for run in plan.runs:
        assert safe_run_id(run.dag_run_id), run.dag_run_id
        # strict JSON that Airflow can store: no NaN, no lone surrogate
        json.dumps(run.conf, allow_nan=False, ensure_ascii=False).encode()
    for message in (*plan.ignored, *map(str, plan.route_errors)):
        assert_one_line(message)


def assert_one_line(message: str) -> None:
    assert message and "\n" not in message and "\r" not in message, message
    assert len(message) < MAX_MESSAGE, message[:200]


def assert_expected(outcome: Outcome, expected: Expected) -> None:
    kind, message = outcome
    assert kind == expected.outcome, message
    if kind != "accepted":
        assert_one_line(message)
        assert expected.message in message


def names_in(plan: Plan | None) -> list[str]:
    assert plan is not None
    return [run.conf["name"] for run in plan.runs if "name" in run.conf]


# --- the table and the directory agree ---------------------------------------------------------


def test_every_file_of_the_corpus_has_its_expected_outcome() -> None:
    files = {p.name for p in HERE.iterdir() if p.suffix in (".json", ".bin")}
    generated = {name for name in CORPUS if not (HERE / name).exists()}
    assert files == set(CORPUS) - generated
    assert {p.suffix for p in HERE.iterdir() if p.is_file()} <= {".json", ".bin", ".py"}
    assert len(generated) == 4, "the 10 MB inputs are generated, not kept in git"
    assert {e.outcome for e in CORPUS.values()} == {"accepted", "ignored", "rejected", "refused"}


# --- normalise and plan_events -----------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_the_bytes_as_delivered_end_in_the_expected_outcome(name: str) -> None:
    expected = CORPUS[name]
    outcome, plan = classify(read(name))

    assert_expected(outcome, expected)
    if expected.name is not None:
        assert names_in(plan) == [expected.name]


def _python_can_parse(name: str) -> bool:
    try:
        read(name).decode("utf-8")
        parsed(name)
    except (ValueError, RecursionError):
        return False
    return True


# Only inputs a platform could hand over parsed: the rest is not UTF-8 JSON Python can read.
PARSEABLE = [name for name in NAMES if _python_can_parse(name)]


@pytest.mark.parametrize("name", PARSEABLE)
def test_the_json_a_platform_parsed_ends_in_the_same_outcome(name: str) -> None:
    expected = CORPUS[name]
    payload = parsed(name)
    outcome, plan = classify(payload)

    try:
        load_json(read(name))
    except ValueError:
        # NaN and Infinity: Python's json reads them, strict JSON does not. Parsed, the event is
        # usable, but its conf cannot be sent to Airflow.
        assert outcome[0] == "refused" and "cannot be sent as JSON" in outcome[1]
        return
    if isinstance(payload, str):  # a JSON string handed over is read as JSON text itself
        assert outcome[0] == "rejected" and "event payload is" in outcome[1]
        return
    assert_expected(outcome, expected)
    if expected.name is not None:
        assert names_in(plan) == [expected.name]


def test_a_10_mb_pubsub_message_is_refused_naming_the_variable() -> None:
    (kind, message), plan = classify(read("pubsub_cloudevent_10mb_message.json"))

    assert kind == "refused"
    assert plan is not None and plan.runs == ()
    assert re.search(rf"is \d{{8}} bytes, over {MAX_CONF_VARIABLE}=65536", message), message
    assert '"replace_conf": true' in message


def test_the_cap_is_the_setting_and_a_larger_one_admits_the_message() -> None:
    payload = read("pubsub_cloudevent_10mb_message.json")
    cap = Settings.from_env({"DAG_ID": "d", MAX_CONF_VARIABLE: str(16 * 1024 * 1024)})

    (kind, _), plan = classify(payload, cap.max_conf_bytes)

    assert Settings.from_env({"DAG_ID": "d"}).max_conf_bytes == 65536
    assert kind == "accepted" and plan is not None
    assert len(plan.runs[0].conf["data"]["rows"]) == 10 * 1024 * 1024


@pytest.mark.parametrize(
    ("attribute", "shown"),
    [("\n", "'\\n'"), ('a"b', "'a\"b'"), ("x" * 300, "'xxx"), ("trace-id", "trace-id")],
)
def test_a_message_attribute_named_with_any_text_is_named_on_one_line(
    attribute: str, shown: str
) -> None:
    record = {
        "eventSource": "aws:sqs",
        "messageId": "m1",
        "body": "{}",
        "messageAttributes": {attribute: {"dataType": "String"}},
    }

    (kind, message), _ = classify({"Records": [record]})

    assert kind == "rejected"
    assert f"messageAttributes.{shown}" in message, message
    assert "\n" not in message and len(message) < MAX_MESSAGE


def test_hostile_names_keep_their_bytes_and_get_distinct_safe_run_ids() -> None:
    accepted = [n for n in NAMES if CORPUS[n].name is not None]
    run_ids = set()
    for name in accepted:
        _, plan = classify(read(name))
        assert plan is not None
        (run,) = plan.runs
        assert run.conf["name"] == CORPUS[name].name
        assert run.conf["uri"].endswith("/" + CORPUS[name].name)
        run_ids.add(run.dag_run_id)
    assert len(run_ids) == len(accepted)


# --- dagtrigger plan ---------------------------------------------------------------------------


@pytest.fixture
def cli(
    capsysbinary: pytest.CaptureFixture[bytes], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., tuple[int, list[str], list[str]]]:
    for variable in ("DAGTRIGGER_ROUTES", MAX_CONF_VARIABLE, "AIRFLOW_URL"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("DAG_ID", "d")

    def run(*argv: str) -> tuple[int, list[str], list[str]]:
        try:
            code = main(list(argv))
        except SystemExit as exit_:
            code = int(exit_.code or 0)
        out, err = capsysbinary.readouterr()
        # stdout is JSON (ASCII); stderr must be text a terminal can show, one line per message
        return code, out.decode().splitlines(), err.decode("utf-8").splitlines()

    return run


def cli_fragment(expected: Expected) -> str:
    # The command reads the file itself, and says so in its own words.
    return "is not valid JSON" if expected.message == "is not JSON" else expected.message


@pytest.mark.parametrize("name", NAMES)
def test_plan_exits_0_or_2_with_one_line_and_never_a_traceback(
    name: str, cli: Callable[..., tuple[int, list[str], list[str]]], tmp_path: Path
) -> None:
    expected = CORPUS[name]
    event = tmp_path / name
    event.write_bytes(read(name))

    code, out, err = cli("plan", str(event))

    if expected.outcome == "accepted":
        assert (code, err) == (0, [])
        runs = [json.loads(line) for line in out]
        assert runs and all(safe_run_id(run["dag_run_id"]) for run in runs)
        if expected.name is not None:
            assert [run["conf"]["name"] for run in runs] == [expected.name]
    elif expected.outcome == "ignored":
        assert (code, out) == (0, [])
        assert len(err) == 1 and err[0].startswith("dagtrigger: ignored: ")
        assert expected.message in err[0]
    else:
        assert (code, out) == (2, [])
        assert len(err) == 1, err
        assert err[0].startswith("dagtrigger: error: ")
        assert cli_fragment(expected) in err[0], err[0]
        assert len(err[0]) < MAX_MESSAGE + 200
