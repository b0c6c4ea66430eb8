"""DAGTRIGGER_ROUTES: read inline or from a file, re-read after its TTL, never lost to a bad edit."""

from __future__ import annotations

import logging
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from dagtrigger.errors import ConfigurationError
from dagtrigger.routes_source import (
    MAX_ROUTES_BYTES,
    CachedRoutes,
    parse_routes,
    read_routes_text,
)
from dagtrigger.routing import Router

ROUTES_V1 = '[{"dag_id": "sales_v1"}]'
ROUTES_V2 = '[{"dag_id": "sales_v2"}]'


def load(spec: str) -> Any:
    return parse_routes(read_routes_text(spec), spec)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Builder:
    """Builds "routes" (the DAG ids) from the parsed JSON; refuses rules without a dag_id."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, rules: Any) -> tuple[str, ...]:
        self.calls += 1
        if not all(isinstance(rule, dict) and "dag_id" in rule for rule in rules):
            raise ConfigurationError("DAGTRIGGER_ROUTES: route #1: dag_id is required")
        return tuple(rule["dag_id"] for rule in rules)


@pytest.fixture
def routes_file(tmp_path: Path) -> Path:
    path = tmp_path / "routes.json"
    path.write_text(ROUTES_V1, encoding="utf-8")
    return path


def cached(spec: str | Path, clock: Clock, build: Builder, ttl: float = 60) -> CachedRoutes[Any]:
    return CachedRoutes(str(spec), ttl, build, clock=clock)


@pytest.mark.parametrize(
    "spec",
    [ROUTES_V1, "  \n" + ROUTES_V1, '{"routes": [{"dag_id": "sales_v1"}]}'],
    ids=["list", "leading-whitespace", "object"],
)
def test_inline_json_is_used_as_it_is(spec: str) -> None:
    loaded = load(spec)

    rules = loaded["routes"] if isinstance(loaded, dict) else loaded
    assert rules == [{"dag_id": "sales_v1"}]


def test_a_path_is_read_as_a_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "routes.json"
    path.write_text('[{"dag_id": "zürich"}]', encoding="utf-8")

    assert load(str(path)) == [{"dag_id": "zürich"}]


@pytest.mark.parametrize("name", ["missing.json", "a-directory"])
def test_an_unreadable_file_names_the_variable_and_the_fix(tmp_path: Path, name: str) -> None:
    (tmp_path / "a-directory").mkdir()
    spec = str(tmp_path / name)

    with pytest.raises(ConfigurationError) as caught:
        read_routes_text(spec)

    message = str(caught.value)
    assert f"DAGTRIGGER_ROUTES={spec!r} cannot be read" in message
    assert "inline JSON, a readable file path, or a gs:// or s3:// URL" in message


def test_a_file_that_is_not_utf8_names_the_variable(tmp_path: Path) -> None:
    path = tmp_path / "routes.json"
    path.write_bytes(ROUTES_V1.replace("sales", "caf\xe9").encode("latin-1"))

    with pytest.raises(ConfigurationError, match="DAGTRIGGER_ROUTES"):
        read_routes_text(str(path))


@pytest.mark.parametrize(
    ("spec_of", "described"),
    [
        (lambda path: '[{"dag_id": }]', "DAGTRIGGER_ROUTES (inline JSON) is not valid JSON"),
        (lambda path: str(path), "DAGTRIGGER_ROUTES={path} is not valid JSON"),
    ],
    ids=["inline", "file"],
)
def test_invalid_json_names_the_source(tmp_path: Path, spec_of: Any, described: str) -> None:
    path = tmp_path / "routes.json"
    path.write_text('[{"dag_id": "x",}]', encoding="utf-8")
    spec = spec_of(path)

    with pytest.raises(ConfigurationError) as caught:
        load(spec)

    assert described.format(path=path) in str(caught.value)
    assert "line 1 column" in str(caught.value)  # where the mistake is


def test_routes_are_read_once_within_the_ttl(routes_file: Path) -> None:
    clock, build = Clock(), Builder()
    routes = cached(routes_file, clock, build, ttl=60)

    assert routes.get() == ("sales_v1",)
    routes_file.write_text(ROUTES_V2, encoding="utf-8")
    clock.now += 59

    assert routes.get() == ("sales_v1",)
    assert build.calls == 1


def test_an_edit_takes_effect_after_the_ttl(routes_file: Path) -> None:
    clock, build = Clock(), Builder()
    routes = cached(routes_file, clock, build, ttl=60)
    routes.get()

    routes_file.write_text(ROUTES_V2, encoding="utf-8")
    clock.now += 60

    assert routes.get() == ("sales_v2",)
    assert build.calls == 2


def test_unchanged_text_is_not_rebuilt(routes_file: Path) -> None:
    clock, build = Clock(), Builder()
    routes = cached(routes_file, clock, build, ttl=60)
    first = routes.get()

    for _ in range(3):
        clock.now += 61
        assert routes.get() is first

    assert build.calls == 1


@pytest.mark.parametrize(
    "bad_edit",
    [
        pytest.param(lambda path: path.unlink(), id="file-removed"),
        pytest.param(lambda path: path.write_text("[{", encoding="utf-8"), id="invalid-json"),
        pytest.param(lambda path: path.write_text('[{"x": 1}]', encoding="utf-8"), id="bad-rule"),
    ],
)
def test_a_bad_edit_keeps_the_last_good_routes(
    routes_file: Path, bad_edit: Any, caplog: pytest.LogCaptureFixture
) -> None:
    clock, build = Clock(), Builder()
    routes = cached(routes_file, clock, build, ttl=60)
    routes.get()

    bad_edit(routes_file)
    clock.now += 61
    with caplog.at_level(logging.ERROR, logger="dagtrigger"):
        assert routes.get() == ("sales_v1",)

    assert "keeping the previous routes" in caplog.text
    assert "DAGTRIGGER_ROUTES" in caplog.text


def test_a_fixed_edit_is_picked_up_after_a_bad_one(routes_file: Path) -> None:
    clock, build = Clock(), Builder()
    routes = cached(routes_file, clock, build, ttl=60)
    routes.get()
    routes_file.write_text("[{", encoding="utf-8")
    clock.now += 61
    routes.get()

    routes_file.write_text(ROUTES_V2, encoding="utf-8")
    clock.now += 61

    assert routes.get() == ("sales_v2",)


def test_a_non_utf8_edit_keeps_the_last_good_routes(routes_file: Path) -> None:
    clock, build = Clock(), Builder()
    routes = cached(routes_file, clock, build, ttl=60)
    routes.get()

    routes_file.write_bytes('[{"dag_id": "caf\xe9"}]'.encode("latin-1"))
    clock.now += 61

    assert routes.get() == ("sales_v1",)


def test_a_bad_first_read_raises_and_is_retried_on_the_next_call(tmp_path: Path) -> None:
    path = tmp_path / "routes.json"
    clock, build = Clock(), Builder()
    routes = cached(path, clock, build, ttl=60)

    with pytest.raises(ConfigurationError, match="cannot be read"):
        routes.get()

    path.write_text(ROUTES_V1, encoding="utf-8")
    assert routes.get() == ("sales_v1",)  # no TTL wait: there was nothing to serve meanwhile


def test_inline_routes_are_built_once() -> None:
    clock, build = Clock(), Builder()
    routes = cached(ROUTES_V1, clock, build, ttl=1)

    for _ in range(5):
        clock.now += 2
        assert routes.get() == ("sales_v1",)

    assert build.calls == 1


# --- Whatever breaks in a re-read, the last good routes stay; a first read says what is wrong

DEEPLY_NESTED = "[" * 100_000


def padded_to(size: int) -> str:
    """Valid routes (ROUTES_V2) padded with spaces to exactly `size` bytes."""
    return ROUTES_V2 + " " * (size - len(ROUTES_V2))


@pytest.mark.parametrize(
    ("spec_of", "described"),
    [
        (lambda path: DEEPLY_NESTED, "DAGTRIGGER_ROUTES (inline JSON)"),
        (lambda path: str(path), "DAGTRIGGER_ROUTES={path}"),
    ],
    ids=["inline", "file"],
)
def test_deeply_nested_json_is_a_clear_configuration_error(
    tmp_path: Path, spec_of: Any, described: str
) -> None:
    path = tmp_path / "routes.json"
    path.write_text(DEEPLY_NESTED, encoding="utf-8")
    routes = cached(spec_of(path), Clock(), Builder())

    with pytest.raises(ConfigurationError) as caught:
        routes.get()

    assert str(caught.value).startswith(
        f"{described.format(path=path)} is JSON nested too deeply to parse (maximum recursion"
    )
    assert str(caught.value).endswith("routes are a list of rules a few levels deep.")


def test_a_deeply_nested_edit_keeps_the_last_good_routes(
    routes_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    routes = CachedRoutes(str(routes_file), 60, Router.from_rules, clock=clock)
    good = routes.get()

    routes_file.write_text(DEEPLY_NESTED, encoding="utf-8")
    clock.now += 61
    with caplog.at_level(logging.ERROR, logger="dagtrigger"):
        assert routes.get() is good

    assert f"keeping the previous routes: DAGTRIGGER_ROUTES={routes_file} is JSON nested" in (
        caplog.text
    )


class Breaks:
    """A builder that works, then raises `error` once `broken` is set."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.broken = False

    def __call__(self, rules: Any) -> str:
        if self.broken:
            raise self.error
        return "routes"


UNEXPECTED = [
    RecursionError("maximum recursion depth exceeded"),
    ValueError("invalid literal for int() with base 10: 'x'"),
    TypeError("unhashable type: 'list'"),
    KeyError("dag_id"),
    MemoryError(),
]


@pytest.mark.parametrize("error", UNEXPECTED, ids=lambda error: type(error).__name__)
def test_any_error_building_an_edit_keeps_the_last_good_routes_and_logs_it(
    routes_file: Path, error: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    clock, build = Clock(), Breaks(error)
    routes = CachedRoutes(str(routes_file), 60, build, clock=clock)
    routes.get()

    build.broken = True
    routes_file.write_text(ROUTES_V2, encoding="utf-8")
    clock.now += 61
    with caplog.at_level(logging.ERROR, logger="dagtrigger"):
        assert routes.get() == "routes"

    (record,) = caplog.records
    assert record.levelno == logging.ERROR
    assert record.getMessage() == (
        f"keeping the previous routes: DAGTRIGGER_ROUTES={routes_file} cannot be turned into "
        f'routes ({type(error).__name__}: {error}): correct the rules (README, "Routing '
        'rules"); if they look right, report this message.'
    )


@pytest.mark.parametrize("error", UNEXPECTED, ids=lambda error: type(error).__name__)
def test_any_error_building_the_first_routes_is_a_configuration_error(
    routes_file: Path, error: Exception
) -> None:
    build = Breaks(error)
    build.broken = True
    routes = CachedRoutes(str(routes_file), 60, build, clock=Clock())

    with pytest.raises(ConfigurationError) as caught:
        routes.get()

    assert str(caught.value).startswith(
        f"DAGTRIGGER_ROUTES={routes_file} cannot be turned into routes ({type(error).__name__}"
    )
    assert caught.value.__cause__ is error


# --- At most MAX_ROUTES_BYTES (1 MiB), whatever the source


def test_routes_of_exactly_the_cap_are_read(tmp_path: Path) -> None:
    path = tmp_path / "routes.json"
    path.write_text(padded_to(MAX_ROUTES_BYTES), encoding="utf-8")

    assert load(str(path)) == [{"dag_id": "sales_v2"}]
    assert load(padded_to(MAX_ROUTES_BYTES)) == [{"dag_id": "sales_v2"}]


def test_inline_routes_over_the_cap_are_refused_with_their_size() -> None:
    with pytest.raises(ConfigurationError) as caught:
        read_routes_text(padded_to(MAX_ROUTES_BYTES + 1))

    assert str(caught.value) == (
        "DAGTRIGGER_ROUTES (inline JSON) is 1,048,577 bytes; routes may be at most 1,048,576 "
        "bytes (1 MiB): match many objects with one prefix, glob or regex rather than listing "
        "them, and check that it names the routes, not a data file."
    )


def test_a_file_over_the_cap_is_refused_after_reading_no_more_than_the_cap(
    tmp_path: Path,
) -> None:
    path = tmp_path / "huge.json"
    with path.open("wb") as file:
        file.truncate(64 * MAX_ROUTES_BYTES)  # sparse: 64 MiB that take no disk

    tracemalloc.start()
    try:
        with pytest.raises(ConfigurationError) as caught:
            read_routes_text(str(path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert str(caught.value).startswith(
        f"DAGTRIGGER_ROUTES={path} is 67,108,864 bytes; routes may be at most 1,048,576 bytes"
    )
    assert peak < 3 * MAX_ROUTES_BYTES


def test_a_file_that_grows_over_the_cap_keeps_the_last_good_routes(
    routes_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock, build = Clock(), Builder()
    routes = cached(routes_file, clock, build, ttl=60)
    routes.get()

    routes_file.write_text(padded_to(MAX_ROUTES_BYTES + 1), encoding="utf-8")
    clock.now += 61
    with caplog.at_level(logging.ERROR, logger="dagtrigger"):
        assert routes.get() == ("sales_v1",)

    assert "is 1,048,577 bytes; routes may be at most 1,048,576 bytes" in caplog.text
