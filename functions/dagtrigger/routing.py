"""Which DAGs an event starts, and with which conf.

Rules are checked and compiled once, when they are loaded: every mistake in them is a
ConfigurationError naming the rule, the field and the fix, and matching an event afterwards is a
few precompiled regex calls. Every matching rule plans a run, at most one per DAG (the first
matching rule for a DAG wins).

Object names are chosen by whoever may write to a bucket, so matching one takes time linear in
its length whatever the rules: "match.regex" runs on RE2 (google-re2), and globs are compiled from
fnmatch's translation, whose atomic groups (Python 3.11 and later) never backtrack.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from dagtrigger.assets import ASSET_RULE_KEYS, AssetRule, PlannedAssetEvent, compile_asset_rule
from dagtrigger.errors import ConfigurationError, RouteError
from dagtrigger.events.model import (
    PROVIDERS,
    BridgeEvent,
    Event,
    Message,
    StorageObject,
)
from dagtrigger.events.payload import quote
from dagtrigger.templates import (
    MissingValueError,
    ObjectNode,
    TemplateSyntaxError,
    compile_conf,
    json_kind,
)

DAG_ID_SETTING = "DAG_ID"  # the setting for one DAG, also the route name its runs carry
DAG_ID_PATTERN = re.compile(r"[A-Za-z0-9_.-]+")
DAG_ID_MAX_LENGTH = 250

_RULE_KEYS = ("name", "match", "dag_id", "conf", "replace_conf", *ASSET_RULE_KEYS)
_MATCH_KEYS = (
    "provider",
    "event_type",
    "bucket",
    "prefix",
    "suffix",
    "glob",
    "regex",
    "attributes",
    "source",
    "detail_type",
)


def _every_default_conf_field() -> frozenset[str]:
    # Derived from Event.default_conf() itself, so the fields templates may use cannot drift
    # from the documented conf: an event with an object, a message and a bridge part has them all.
    event = Event(
        provider="gcs",
        event_id="",
        event_type="",
        event_time=None,
        identity=(),
        object=StorageObject(scheme="gs", bucket="", name=""),
        message=Message(message_id="", data=None, data_encoding="base64"),
        bridge=BridgeEvent(source="", detail_type="", detail={}),
    )
    return frozenset(event.default_conf())


DEFAULT_CONF_FIELDS = _every_default_conf_field()


@dataclass(frozen=True, slots=True)
class PlannedTrigger:
    """One DAG run to create for one event."""

    dag_id: str
    conf: dict[str, Any]
    route: str  # the rule's name, or DAG_ID_SETTING when one DAG takes every event
    event: Event


@dataclass(frozen=True, slots=True)
class Routing:
    """What to do with one event: the runs to create and asset events to record, or why there
    are none."""

    triggers: tuple[PlannedTrigger, ...]
    ignored: str | None  # why nothing was planned; None when there are triggers or asset events
    notes: tuple[str, ...] = ()  # what routing decided that a reader of the logs should know
    asset_events: tuple[PlannedAssetEvent, ...] = ()


Matcher = Callable[[Event], bool]
_NO_CONF = ObjectNode(())


class RegexMatch(Protocol):
    """What routing reads of an RE2 match (google-re2 ships no type hints)."""

    def groupdict(self) -> dict[str, str | None]: ...


class Regex(Protocol):
    """What routing uses of a compiled RE2 pattern."""

    @property
    def groupindex(self) -> Mapping[str, int]: ...

    def search(self, text: str) -> RegexMatch | None: ...


@dataclass(frozen=True, slots=True)
class _TextMatcher:
    """Accepts an event when the text `pick` reads from it passes `test`; no text, no match."""

    pick: Callable[[Event], str | None]
    test: Callable[[str], object]

    def __call__(self, event: Event) -> bool:
        text = self.pick(event)
        return text is not None and bool(self.test(text))


@dataclass(frozen=True, slots=True)
class _AttributeMatcher:
    """Accepts a message event whose attributes include every key, each matching its globs."""

    patterns: tuple[tuple[str, re.Pattern[str]], ...]

    def __call__(self, event: Event) -> bool:
        if event.message is None:
            return False
        attributes = event.message.attributes
        return all(
            key in attributes and pattern.match(attributes[key]) is not None
            for key, pattern in self.patterns
        )


@dataclass(frozen=True, slots=True)
class Route:
    """A compiled rule: matchers that must all accept an event, and the run and asset event it
    then plans (a rule with an asset may start no DAG)."""

    name: str
    dag_id: str | None
    matchers: tuple[Matcher, ...] = ()
    regex: Regex | None = None  # searched in the object name; named groups are fields
    conf: ObjectNode = _NO_CONF
    replace_conf: bool = False
    asset: AssetRule | None = None

    def match(self, event: Event) -> dict[str, Any] | None:
        """The regex's named groups when the event matches (empty without a regex), else None.

        RouteError when the regex cannot be searched in the object name: RE2 reads UTF-8, and a
        name holding a lone surrogate (which a forged event can carry) has no UTF-8 form.
        """
        if not all(matcher(event) for matcher in self.matchers):
            return None
        if self.regex is None:
            return {}
        if event.object is None:
            return None
        try:
            found = self.regex.search(event.object.name)
        except UnicodeEncodeError as exc:
            raise RouteError(
                f'route "{self.name}": the object name {quote(event.object.name)} of '
                f"{event.provider} event {quote(event.event_id)} is not valid Unicode "
                f'({exc.reason}), so "match.regex" cannot be searched in it; no real object '
                "has such a name"
            ) from exc
        return None if found is None else found.groupdict()

    def plan(self, dag_id: str, event: Event, groups: Mapping[str, Any]) -> PlannedTrigger:
        """The run for a matching event; RouteError when the conf needs a value it lacks."""
        default_conf = event.default_conf()
        if not self.conf.items:  # no conf of the rule's own: the default one, as it is
            return PlannedTrigger(
                dag_id, {} if self.replace_conf else default_conf, self.name, event
            )
        try:
            rendered = self.conf.render({**default_conf, **groups})
        except MissingValueError as exc:
            raise self._missing(exc, event) from exc
        conf = rendered if self.replace_conf else {**default_conf, **rendered}
        return PlannedTrigger(dag_id, conf, self.name, event)

    def plan_asset_event(
        self, asset: AssetRule, event: Event, groups: Mapping[str, Any]
    ) -> PlannedAssetEvent:
        """The asset event for a matching event; RouteError when a template lacks a value."""
        try:
            return asset.plan(event, {**event.default_conf(), **groups}, self.name)
        except MissingValueError as exc:
            raise self._missing(exc, event) from exc

    def _missing(self, exc: MissingValueError, event: Event) -> RouteError:
        return RouteError(
            f'route "{self.name}": "{exc.placeholder}" has no value for event '
            f"{describe_event(event)} ({exc.reason})",
            fix="narrow the route's match to events that have it, or leave it out of the route",
        )


class Router:
    """Turns each event into the DAG runs it should start."""

    def __init__(self, routes: tuple[Route, ...]) -> None:
        self.routes = routes

    @classmethod
    def single(cls, dag_id: str) -> Router:
        """Every event starts `dag_id` with the default conf."""
        return cls((Route(name=DAG_ID_SETTING, dag_id=check_dag_id(dag_id, DAG_ID_SETTING)),))

    @classmethod
    def from_rules(
        cls, rules: Any, *, default_dag_id: str | None = None, source: str = "DAGTRIGGER_ROUTES"
    ) -> Router:
        """Compile parsed JSON rules: a list of rules, or {"routes": [rules]}.

        `default_dag_id` (the DAG_ID setting) is the DAG of rules without a "dag_id"; `source`
        names where the rules came from in error messages. Raises ConfigurationError for any
        mistake in them.
        """
        if default_dag_id is not None:
            check_dag_id(default_dag_id, f'{DAG_ID_SETTING} (the DAG of routes without "dag_id")')
        routes = tuple(
            _compile_rule(rule, index, source, default_dag_id)
            for index, rule in enumerate(_rule_list(rules, source), start=1)
        )
        _check_unique_names(routes, source)
        return cls(routes)

    def route(self, event: Event) -> Routing:
        """Plan a run for every matching rule, one per DAG.

        RouteError when a rule cannot be applied to the event: a conf that cannot render, a regex
        that cannot be searched in its object name.
        """
        planned: dict[str, PlannedTrigger] = {}
        assets: dict[str, PlannedAssetEvent] = {}
        notes: list[str] = []
        for route in self.routes:
            groups = route.match(event)
            if groups is None:
                continue
            if route.dag_id is not None:
                first = planned.get(route.dag_id)
                if first is None:
                    planned[route.dag_id] = route.plan(route.dag_id, event, groups)
                else:
                    notes.append(_also_matched(route.name, f'DAG "{route.dag_id}"', first.route))
            if route.asset is not None:
                recorded = assets.get(route.asset.asset)
                if recorded is None:
                    assets[route.asset.asset] = route.plan_asset_event(route.asset, event, groups)
                else:
                    notes.append(
                        _also_matched(route.name, f'asset "{route.asset.asset}"', recorded.route)
                    )
        ignored = None if planned or assets else self._why_nothing_matched(event)
        return Routing(tuple(planned.values()), ignored, tuple(notes), tuple(assets.values()))

    def _why_nothing_matched(self, event: Event) -> str:
        count = len(self.routes)
        routes = "1 route" if count == 1 else f"{count} routes"
        return f"no route matched ({routes}; event {describe_event(event)})"


def _also_matched(route: str, target: str, first: str) -> str:
    return f'route "{route}" also matched {target}; the first matching route "{first}" wins'


def describe_event(event: Event) -> str:
    """The event as messages show it: provider, type and what it is about."""
    return f"{event.provider} {event.event_type} {event.label}"


def check_dag_id(dag_id: object, where: str) -> str:
    """`dag_id` when it is a valid Airflow DAG id, else a ConfigurationError prefixed by `where`."""
    fix = "set it to the dag_id of the DAG to start"
    if not isinstance(dag_id, str):
        problem = f"the DAG id must be a string, not {json_kind(dag_id)}"
    elif not dag_id:
        problem = "the DAG id is empty"
    elif len(dag_id) > DAG_ID_MAX_LENGTH:
        problem = f"the DAG id is {len(dag_id)} characters long; Airflow allows {DAG_ID_MAX_LENGTH}"
    elif DAG_ID_PATTERN.fullmatch(dag_id) is None:
        problem = f'"{dag_id}" is not a valid DAG id'
        fix = 'use only letters, digits, "_", "." and "-"'
    else:
        return dag_id
    raise ConfigurationError(f"{where}: {problem}", fix=fix)


# --- Loading: everything below turns one parsed rule into a Route or a ConfigurationError.


@dataclass(frozen=True, slots=True)
class _Rule:
    """Where a rule came from, for error messages."""

    source: str
    label: str  # 'route "daily-sales"', or 'route #2' when the rule has no name

    def error(self, problem: str, *, fix: str | None) -> ConfigurationError:
        return ConfigurationError(f"{self.source}: {self.label}: {problem}", fix=fix)


def _rule_list(rules: Any, source: str) -> list[Any]:
    if isinstance(rules, Mapping):
        unknown = sorted(set(rules) - {"routes"})
        if unknown:
            raise ConfigurationError(
                f'{source}: unknown key "{unknown[0]}" at the top level',
                fix='write {"routes": [...]}, or the list of routes alone',
            )
        if "routes" not in rules:
            raise ConfigurationError(f'{source}: missing "routes"', fix='write {"routes": [...]}')
        rules = rules["routes"]
    if not isinstance(rules, list):
        raise ConfigurationError(
            f"{source}: expected a list of routes, got {json_kind(rules)}",
            fix='write [{"dag_id": ..., "match": {...}}, ...] or {"routes": [...]}',
        )
    if not rules:
        raise ConfigurationError(f"{source}: there are no routes", fix="add at least one")
    return rules


def _compile_rule(raw: Any, index: int, source: str, default_dag_id: str | None) -> Route:
    if not isinstance(raw, Mapping):
        raise _Rule(source, f"route #{index}").error(
            f"must be an object, not {json_kind(raw)}",
            fix='write it as {"dag_id": ..., "match": {...}}',
        )
    name = raw.get("name", f"route-{index}")
    if not isinstance(name, str) or not name:
        raise _Rule(source, f"route #{index}").error(
            '"name" must be a non-empty string', fix="name the route, or leave the name out"
        )
    rule = _Rule(source, f'route "{name}"' if "name" in raw else f"route #{index}")
    _check_keys(raw, _RULE_KEYS, "the route", rule)
    matchers, regex = _compile_match(raw.get("match", {}), rule)
    replace_conf = raw.get("replace_conf", False)
    if not isinstance(replace_conf, bool):
        raise rule.error(
            f'"replace_conf" must be true or false, not {json_kind(replace_conf)}',
            fix="write true or false, without quotes",
        )
    asset = compile_asset_rule(raw, _template_fields(regex), rule.error)
    dag_id = _rule_dag_id(raw, None if asset else default_dag_id, rule)
    if dag_id is None and ("conf" in raw or "replace_conf" in raw):
        raise rule.error(
            '"conf" and "replace_conf" shape a DAG run, and this route starts none',
            fix='add "dag_id", or give the asset event its values with "extra"',
        )
    return Route(
        name=name,
        dag_id=dag_id,
        matchers=matchers,
        regex=regex,
        conf=_compile_rule_conf(raw.get("conf", {}), regex, rule),
        replace_conf=replace_conf,
        asset=asset,
    )


def _template_fields(regex: Regex | None) -> frozenset[str]:
    """What a rule's templates may name: the default conf's fields and the regex's groups."""
    return DEFAULT_CONF_FIELDS | set(regex.groupindex) if regex is not None else DEFAULT_CONF_FIELDS


def _check_keys(raw: Mapping[str, Any], allowed: tuple[str, ...], where: str, rule: _Rule) -> None:
    for key in raw:
        if key not in allowed:
            raise rule.error(
                f'unknown key "{key}" in {where}', fix=f"use only {', '.join(allowed)}"
            )


def _rule_dag_id(raw: Mapping[str, Any], default_dag_id: str | None, rule: _Rule) -> str | None:
    """The rule's DAG; None for a rule that only records an asset event."""
    if "dag_id" not in raw:
        if default_dag_id is None and "asset" not in raw:
            raise rule.error(
                'has no "dag_id"',
                fix=f'add one (or "asset"), or set {DAG_ID_SETTING} as the default',
            )
        return default_dag_id
    return check_dag_id(raw["dag_id"], f'{rule.source}: {rule.label}: "dag_id"')


def _compile_rule_conf(conf: Any, regex: Regex | None, rule: _Rule) -> ObjectNode:
    if not isinstance(conf, Mapping):
        raise rule.error(
            f'"conf" must be an object, not {json_kind(conf)}',
            fix='write it as {"name": value, ...}, e.g. {"date": "{date}"}',
        )
    try:
        return compile_conf(conf, fields=_template_fields(regex))
    except TemplateSyntaxError as exc:
        raise rule.error(exc.problem, fix=exc.fix) from exc


# --- The "match" object: a table from key to what it reads from the event and how it tests it.


def _object_name(event: Event) -> str | None:
    return event.object.name if event.object is not None else None


def _bucket(event: Event) -> str | None:
    return event.object.bucket if event.object is not None else None


def _bridge_source(event: Event) -> str | None:
    return event.bridge.source if event.bridge is not None else None


def _bridge_detail_type(event: Event) -> str | None:
    return event.bridge.detail_type if event.bridge is not None else None


def _any_glob(globs: tuple[str, ...]) -> Callable[[str], object]:
    return _compile_globs(globs).match


def _any_prefix(prefixes: tuple[str, ...]) -> Callable[[str], object]:
    return lambda text: text.startswith(prefixes)


def _any_suffix(suffixes: tuple[str, ...]) -> Callable[[str], object]:
    return lambda text: text.endswith(suffixes)


def _any_of(values: tuple[str, ...]) -> Callable[[str], object]:
    return frozenset(values).__contains__


_TEXT_MATCHERS: dict[
    str, tuple[Callable[[Event], str | None], Callable[[tuple[str, ...]], Callable[[str], object]]]
] = {
    "provider": (lambda event: event.provider, _any_of),
    "event_type": (lambda event: event.event_type, _any_glob),
    "bucket": (_bucket, _any_glob),
    "prefix": (_object_name, _any_prefix),
    "suffix": (_object_name, _any_suffix),
    "glob": (_object_name, _any_glob),
    "source": (_bridge_source, _any_glob),
    "detail_type": (_bridge_detail_type, _any_glob),
}


def _compile_match(match: Any, rule: _Rule) -> tuple[tuple[Matcher, ...], Regex | None]:
    if not isinstance(match, Mapping):
        raise rule.error(
            f'"match" must be an object, not {json_kind(match)}',
            fix='write it as {"key": ..., ...}, e.g. {"prefix": "sales/"}',
        )
    _check_keys(match, _MATCH_KEYS, '"match"', rule)
    matchers: list[Matcher] = []
    for key, (pick, make_test) in _TEXT_MATCHERS.items():  # table order: cheap tests first
        if key in match:
            values = _strings(match[key], f"match.{key}", rule)
            if key == "provider":
                _check_providers(values, rule)
            matchers.append(_TextMatcher(pick, make_test(values)))
    if "attributes" in match:
        matchers.append(_compile_attributes(match["attributes"], rule))
    regex = _compile_regex(match["regex"], rule) if "regex" in match else None
    return tuple(matchers), regex


def _strings(value: Any, field: str, rule: _Rule) -> tuple[str, ...]:
    """A string or a non-empty list of strings, as a tuple ("any of")."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        return tuple(value)
    if isinstance(value, list) and not value:
        raise rule.error(f'"{field}" is an empty list, which matches nothing', fix="remove it")
    raise rule.error(
        f'"{field}" must be a string or a list of strings, not {json_kind(value)}',
        fix='write "text" or ["text", ...]',
    )


def _check_providers(providers: tuple[str, ...], rule: _Rule) -> None:
    for provider in providers:
        if provider not in PROVIDERS:
            raise rule.error(
                f'unknown provider "{provider}" in "match.provider"',
                fix=f"use one of {', '.join(PROVIDERS)}",
            )


def _compile_attributes(attributes: Any, rule: _Rule) -> _AttributeMatcher:
    if not isinstance(attributes, Mapping) or not attributes:
        raise rule.error(
            '"match.attributes" must be a non-empty object of attribute name to glob',
            fix='e.g. {"eventType": "OBJECT_FINALIZE"}',
        )
    return _AttributeMatcher(
        tuple(
            (key, _compile_globs(_strings(globs, f"match.attributes.{key}", rule)))
            for key, globs in attributes.items()
        )
    )


# Two things RE2 accepts that routing refuses, as Python's re did: \C, which matches one byte of
# a UTF-8 character, and a group name given twice (RE2 fills only the first such group). A
# "(?P<x>" written inside a character class is counted too, which only matters to a pattern that
# also has a group named x.
_ESCAPE_OR_GROUP_NAME = re.compile(r"\\(.)|\(\?P?<(\w+)>", re.DOTALL)
_RE2_SYNTAX = (
    "Routes use RE2 syntax: named groups as (?P<name>...); no backreferences, lookarounds, atomic or "
    "possessive groups, or conditionals; \\z, not \\Z, for the end of the name; \\d, \\w, \\s "
    "and \\b are ASCII-only."
)


def _compile_regex(pattern: Any, rule: _Rule) -> Regex:
    if not isinstance(pattern, str):
        raise rule.error(
            f'"match.regex" must be a string, not {json_kind(pattern)}',
            fix='write the pattern as a JSON string, e.g. "^sales/(?P<day>[0-9-]+)/"',
        )
    regex = _compile_re2(pattern, rule)
    names: set[str] = set()
    for escaped, name in _ESCAPE_OR_GROUP_NAME.findall(pattern):
        if escaped == "C":
            raise rule.error(
                '"match.regex" uses \\C (one byte), which can cut a character in two',
                fix='use "." for any character',
            )
        if name in names:
            raise rule.error(
                f'"match.regex" has two groups named "{name}"', fix="give each group its own name"
            )
        if name:
            names.add(name)
    for group in regex.groupindex:
        if group in DEFAULT_CONF_FIELDS:
            raise rule.error(
                f'"match.regex" has a group named "{group}", which is already a conf field',
                fix=f'rename the group (e.g. "{group}_part")',
            )
    return regex


def _compile_re2(pattern: str, rule: _Rule) -> Regex:
    try:
        import re2  # imported here: routes without a regex never load it
    except ImportError as exc:
        raise rule.error(
            f'"match.regex" needs google-re2, which cannot be loaded ({exc})',
            fix="pip install google-re2; on AWS Lambda, build the package for the function's "
            "Architecture (make package-aws ARCH=arm64 or ARCH=x86_64)",
        ) from exc
    options = re2.Options()
    options.log_errors = False  # the error is ours to report, not a line on stderr
    try:
        regex: Regex = re2.compile(pattern, options)
    except re2.error as exc:
        detail = exc.args[0] if exc.args else exc
        problem = detail.decode("utf-8", "replace") if isinstance(detail, bytes) else str(detail)
        raise rule.error(
            f'"match.regex" is not a valid regular expression: {problem}',
            fix=_RE2_SYNTAX,
        ) from exc
    except UnicodeEncodeError as exc:  # a lone surrogate, e.g. from a "\ud800" JSON escape
        raise rule.error(
            f'"match.regex" is not valid Unicode ({exc.reason} at position {exc.start})',
            fix="write it without lone surrogates (\\ud800-\\udfff escapes)",
        ) from exc
    return regex


def _compile_globs(globs: tuple[str, ...]) -> re.Pattern[str]:
    # fnmatchcase semantics (case-sensitive; "*" also matches "/"), all globs in one pattern.
    return re.compile("|".join(f"(?:{fnmatch.translate(glob)})" for glob in globs))


def _check_unique_names(routes: tuple[Route, ...], source: str) -> None:
    seen: set[str] = set()
    for route in routes:
        if route.name in seen:
            raise ConfigurationError(
                f'{source}: two routes are named "{route.name}"', fix="give each route its own name"
            )
        seen.add(route.name)
