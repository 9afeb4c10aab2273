"""The registry of error codes and the rules that assign them.

An error code names one kind of error a service can meet (``HAI-SYS-101``: the
feature store is unreachable) and says where it sits in the taxonomy, how bad it
is, whether a retry can help and what the person on call should do. Its match
rules say which errors get it; ``otel_processors.classifier`` applies them.

Where codes come from, from lowest to highest precedence:

1. the built-in catalogue (``catalogue.yaml`` beside this module);
2. the files named by ``HEALTHAI_ERROR_REGISTRY`` (``os.pathsep``-separated),
   in order;
3. the paths given to ``Registry.load``, in order.

A code whose id is defined again by a later file is replaced wholesale (its
rules too). Within one file a repeated id is an error. Any problem in a file
raises ``RegistryError`` at load time, naming the file, the entry and the
problem.

Rule order. A rule holds when all of its conditions hold. Of the rules that
hold, the most specific wins, compared in this order:

1. exception type: the exception's own type, then its bases by distance along
   the MRO, then rules with no type condition;
2. a message pattern, over none;
3. more attribute predicates, over fewer;
4. more of scope and span-name conditions, over fewer;
5. the rule of the later source (user files before the catalogue, later files
   before earlier ones);
6. registry order: the code's position in its file, then the rule's position
   in the code.

Code ids follow ``<PREFIX>-<AREA>-<NNN>``. Built-in codes use ``HAI`` and the
areas ``PRED``, ``DATA``, ``MODEL``, ``SYS`` and ``UNCL``; the hundreds digit is
the subcategory's position in its category (``taxonomy.SUBCATEGORIES``), ``01``
the code the taxonomy's exception class carries, and ``000`` the category's
fallback code (``FALLBACK_CODE_IDS``).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, TypeVar

import yaml

from otel_processors.errors import RegistryError
from otel_processors.taxonomy import SUBCATEGORIES, Category, Severity, Subcategory

__all__ = [
    "BUILTIN_SOURCE",
    "ENV_VAR",
    "FALLBACK_CODE_IDS",
    "AttributePredicate",
    "ErrorCode",
    "MatchRule",
    "Registry",
    "attribute_text",
    "load_file",
]

_logger = logging.getLogger(__name__)

ENV_VAR: Final = "HEALTHAI_ERROR_REGISTRY"
BUILTIN_SOURCE: Final = "builtin"

FALLBACK_CODE_IDS: Mapping[Category, str] = MappingProxyType(
    {
        Category.PREDICTION_ERROR: "HAI-PRED-000",
        Category.DATA_ERROR: "HAI-DATA-000",
        Category.MODEL_ERROR: "HAI-MODEL-000",
        Category.SYSTEM_ERROR: "HAI-SYS-000",
        Category.UNCLASSIFIED: "HAI-UNCL-000",
    }
)
"""The code used for each category when no rule matched."""

_CATALOGUE_PATH = Path(__file__).with_name("catalogue.yaml")
_CODE_ID = re.compile(r"[A-Z][A-Z0-9_]*(?:-[A-Z0-9_]+)+")
_CODE_ID_MAX_CHARS = 64
_DOTTED_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")

_REQUIRED_KEYS = ("id", "category", "subcategory", "severity")
_OPTIONAL_KEYS = ("retryable", "remediation", "runbook_url", "description", "rules")
_RULE_KEYS = ("type", "message", "attributes", "scope", "span_name")
_PREDICATE_KEYS = ("equals", "regex", "exists")

_E = TypeVar("_E", bound=enum.Enum)


def attribute_text(value: object) -> str | tuple[str, ...] | None:
    """Return the text form under which attribute predicates see a value.

    Strings are kept, booleans become ``"true"``/``"false"``, other scalars
    their ``str``; a sequence (OTel allows homogeneous sequences) becomes a
    tuple of its elements' text; ``None`` stays ``None``.

    Args:
        value: an attribute value from a span, a log record or a caller.

    Returns:
        The text form, hashable, so that it can also key a cache.
    """
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return tuple(_scalar_text(item) for item in value)
    return _scalar_text(value)


def _scalar_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return str(value)


@dataclass(frozen=True)
class AttributePredicate:
    """A condition on one attribute, seen through ``attribute_text``.

    Exactly one of ``equals``, ``regex`` and ``exists`` is set. For a sequence
    value, ``equals`` and ``regex`` hold when they hold for any element.

    Attributes:
        key: the attribute name, e.g. ``http.response.status_code``.
        equals: the text the value must equal (``401`` matches ``401`` and
            ``"401"``).
        regex: a pattern searched in the value's text.
        exists: whether the attribute must be present (``True``) or absent.
    """

    key: str
    equals: str | None = None
    regex: re.Pattern[str] | None = None
    exists: bool | None = None

    def matches_text(self, text: str | tuple[str, ...] | None) -> bool:
        """Return whether the predicate holds for a value's text form."""
        if self.exists is not None:
            return (text is not None) == self.exists
        if text is None:
            return False

        values = text if isinstance(text, tuple) else (text,)
        if self.equals is not None:
            return self.equals in values
        pattern = self.regex
        return pattern is not None and any(pattern.search(v) for v in values)

    def describe(self) -> str:
        """Return the predicate as a short readable condition."""
        if self.exists is not None:
            return f"{self.key} {'exists' if self.exists else 'is absent'}"
        if self.equals is not None:
            return f"{self.key} == {self.equals!r}"
        pattern = self.regex.pattern if self.regex is not None else ""
        return f"{self.key} ~ /{pattern}/"


@dataclass(frozen=True)
class MatchRule:
    """Conditions that must all hold for an error to get a code.

    Attributes:
        exception_type: fully qualified class name (builtins bare, e.g.
            ``TimeoutError``); subclasses match through the MRO.
        message: a pattern searched in the first few KiB of the message.
        attributes: predicates on span or log-record attributes.
        scope: a pattern the instrumentation scope name must match in full.
        span_name: a pattern searched in the span name.
    """

    exception_type: str | None = None
    message: re.Pattern[str] | None = None
    attributes: tuple[AttributePredicate, ...] = ()
    scope: re.Pattern[str] | None = None
    span_name: re.Pattern[str] | None = None

    @property
    def unconditional(self) -> bool:
        """Whether the type (or nothing) is the rule's only condition."""
        return (
            self.message is None
            and not self.attributes
            and self.scope is None
            and self.span_name is None
        )

    def describe(self) -> str:
        """Return the rule's conditions joined by ``and``."""
        parts = []
        if self.exception_type is not None:
            parts.append(f"type {self.exception_type}")
        if self.message is not None:
            parts.append(f"message ~ /{self.message.pattern}/")
        parts.extend(predicate.describe() for predicate in self.attributes)
        if self.scope is not None:
            parts.append(f"scope = /{self.scope.pattern}/")
        if self.span_name is not None:
            parts.append(f"span name ~ /{self.span_name.pattern}/")
        return " and ".join(parts) if parts else "any error"


@dataclass(frozen=True)
class ErrorCode:
    """One kind of error, its place in the taxonomy and what to do about it.

    Attributes:
        id: the stable code id, e.g. ``HAI-DATA-301``.
        category: the taxonomy category.
        subcategory: a subcategory of ``category``.
        severity: how urgently the error needs a human.
        retryable: whether retrying the same request may succeed.
        remediation: what the person on call should do.
        runbook_url: where the runbook for this code lives (may be empty).
        description: what the error means.
        rules: the match rules, in order.
        source: the file the code was loaded from, or ``"builtin"``.
    """

    id: str
    category: Category
    subcategory: Subcategory
    severity: Severity
    retryable: bool
    remediation: str
    runbook_url: str
    description: str
    rules: tuple[MatchRule, ...]
    source: str


class Registry:
    """An immutable set of error codes with their rules in match order.

    Build one with ``Registry.builtin()`` or ``Registry.load(paths)``.

    Args:
        layers: groups of codes in increasing precedence (the catalogue first);
            a code replaces any code of the same id from an earlier layer.

    Raises:
        RegistryError: a category has no fallback code, or a fallback code was
            moved to another category.
    """

    def __init__(self, layers: Sequence[Sequence[ErrorCode]]) -> None:
        codes: dict[str, ErrorCode] = {}
        layer_of: dict[str, int] = {}
        for index, layer in enumerate(layers):
            for code in layer:
                codes[code.id] = code
                layer_of[code.id] = index
        _check_fallbacks(codes)

        self._codes: Mapping[str, ErrorCode] = MappingProxyType(codes)
        self._rules = tuple(
            (code, rule)
            for index in reversed(range(len(layers)))
            for code in layers[index]
            if layer_of[code.id] == index and codes[code.id] is code
            for rule in code.rules
        )

    @classmethod
    def builtin(cls) -> Registry:
        """Return the registry of the built-in catalogue alone (shared, cached)."""
        return _builtin_registry()

    @classmethod
    def load(
        cls,
        paths: Sequence[str | os.PathLike[str]] = (),
        *,
        use_env: bool = True,
    ) -> Registry:
        """Return the catalogue extended by user files.

        Args:
            paths: YAML files, each overriding the ones before it and the files
                of the environment variable.
            use_env: whether to read the files named by ``HEALTHAI_ERROR_REGISTRY``.

        Returns:
            A new registry.

        Raises:
            RegistryError: a file cannot be read or is invalid.
        """
        env_paths: list[str] = []
        if use_env:
            value = os.environ.get(ENV_VAR, "")
            env_paths = [part for part in value.split(os.pathsep) if part.strip()]

        layers: list[Sequence[ErrorCode]] = [_builtin_codes()]
        for path in [*env_paths, *paths]:
            layers.append(load_file(path))
            _logger.debug("Loaded error codes from %s", path)
        return cls(layers)

    @property
    def codes(self) -> Mapping[str, ErrorCode]:
        """All codes by id, in catalogue order (user-only codes after)."""
        return self._codes

    @property
    def rules(self) -> tuple[tuple[ErrorCode, MatchRule], ...]:
        """Every rule with its code, in tie-break order (steps 5 and 6)."""
        return self._rules

    def get(self, code_id: str) -> ErrorCode | None:
        """Return the code with this id, or ``None``."""
        return self._codes.get(code_id)

    def fallback(self, category: Category | None) -> ErrorCode:
        """Return the code for errors of a category that no rule matched.

        Args:
            category: the category, or ``None`` for the UNCLASSIFIED code.

        Returns:
            The category's fallback code.
        """
        key = Category.UNCLASSIFIED if category is None else category
        return self._codes[FALLBACK_CODE_IDS[key]]


def _check_fallbacks(codes: Mapping[str, ErrorCode]) -> None:
    for category, code_id in FALLBACK_CODE_IDS.items():
        code = codes.get(code_id)
        if code is None:
            msg = f"fallback code {code_id} for {category} is missing"
            raise RegistryError(msg)
        if code.category is not category:
            msg = (
                f"{code.source}: code {code_id} is the fallback of {category} "
                f"and cannot move to category {code.category}"
            )
            raise RegistryError(msg)


@functools.lru_cache(maxsize=1)
def _builtin_codes() -> tuple[ErrorCode, ...]:
    return load_file(_CATALOGUE_PATH, source=BUILTIN_SOURCE)


@functools.lru_cache(maxsize=1)
def _builtin_registry() -> Registry:
    return Registry([_builtin_codes()])


def load_file(
    path: str | os.PathLike[str], *, source: str | None = None
) -> tuple[ErrorCode, ...]:
    """Read and validate one registry file.

    Args:
        path: the YAML file.
        source: the name recorded in each code's ``source`` (default: the path).

    Returns:
        The file's codes, in file order.

    Raises:
        RegistryError: the file cannot be read or is invalid; the message names
            the file, the entry (index, id and line) and the problem.
    """
    name = os.fspath(path)
    try:
        text = Path(name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        msg = f"{name}: cannot read the registry file: {exc}"
        raise RegistryError(msg) from exc

    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        msg = f"{name}: invalid YAML{where}: {problem}"
        raise RegistryError(msg) from exc

    return _parse_document(data, name, source or name, _entry_lines(root))


def _entry_lines(root: yaml.Node | None) -> list[int]:
    if not isinstance(root, yaml.MappingNode):
        return []
    for key, value in root.value:
        if key.value == "codes" and isinstance(value, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in value.value]
    return []


def _parse_document(
    data: object, name: str, source: str, lines: list[int]
) -> tuple[ErrorCode, ...]:
    if data is None:
        return ()
    if not isinstance(data, dict):
        msg = f"{name}: the top level must be a mapping with a 'codes' list"
        raise RegistryError(msg)
    unknown = sorted(str(key) for key in data if key not in ("version", "codes"))
    if unknown:
        msg = f"{name}: unknown top-level key {unknown[0]!r}; expected 'codes'"
        raise RegistryError(msg)
    if data.get("version", 1) != 1:
        msg = f"{name}: unsupported version {data['version']!r}; expected 1"
        raise RegistryError(msg)
    entries = data.get("codes")
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        msg = f"{name}: 'codes' must be a list, not {type(entries).__name__}"
        raise RegistryError(msg)

    codes: list[ErrorCode] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        line = lines[index] if index < len(lines) else None
        code = _parse_code(entry, _Where(name, index, line), source)
        if code.id in seen:
            where = _Where(name, index, line, code.id)
            msg = f"{where}: duplicate id {code.id!r} (first at entry {seen[code.id]})"
            raise RegistryError(msg)
        seen[code.id] = index
        codes.append(code)
    return tuple(codes)


@dataclass(frozen=True)
class _Where:
    """The position of an entry in a file, for error messages."""

    name: str
    index: int
    line: int | None
    code_id: str | None = None

    def __str__(self) -> str:
        details = [f"entry {self.index}"]
        if self.code_id is not None:
            details.append(f"id {self.code_id!r}")
        if self.line is not None:
            details.append(f"line {self.line}")
        return f"{self.name}: {', '.join(details)}"


def _parse_code(entry: object, where: _Where, source: str) -> ErrorCode:
    if not isinstance(entry, dict):
        msg = f"{where}: an entry must be a mapping, not {type(entry).__name__}"
        raise RegistryError(msg)
    code_id = entry.get("id")
    if isinstance(code_id, str):
        where = dataclasses.replace(where, code_id=code_id)
    _check_keys(entry, _REQUIRED_KEYS, _OPTIONAL_KEYS, where, "entry")

    code_id = _typed(entry, "id", str, where)
    if not _CODE_ID.fullmatch(code_id) or len(code_id) > _CODE_ID_MAX_CHARS:
        msg = (
            f"{where}: key 'id' has invalid value {code_id!r}; expected upper-case "
            f"words joined by '-', like ACME-DATA-014, at most {_CODE_ID_MAX_CHARS} "
            "characters"
        )
        raise RegistryError(msg)
    category = _member(entry, "category", Category, where)
    subcategory = _member(entry, "subcategory", Subcategory, where)
    if subcategory not in SUBCATEGORIES[category]:
        allowed = ", ".join(sub.value for sub in SUBCATEGORIES[category])
        msg = (
            f"{where}: subcategory {subcategory.value!r} is not in category "
            f"{category.value!r}; expected one of {allowed}"
        )
        raise RegistryError(msg)

    runbook_url = _typed(entry, "runbook_url", str, where, "")
    if runbook_url and not runbook_url.startswith(("https://", "http://")):
        msg = f"{where}: key 'runbook_url' has value {runbook_url!r}; expected a URL"
        raise RegistryError(msg)

    raw_rules = _typed(entry, "rules", list, where, [])
    rules: list[MatchRule] = []
    for rule_index, raw_rule in enumerate(raw_rules):
        rules.extend(_parse_rule(raw_rule, f"{where}, rule {rule_index}"))

    return ErrorCode(
        id=code_id,
        category=category,
        subcategory=subcategory,
        severity=_member(entry, "severity", Severity, where),
        retryable=_typed(entry, "retryable", bool, where, False),
        remediation=_typed(entry, "remediation", str, where, "").strip(),
        runbook_url=runbook_url,
        description=_typed(entry, "description", str, where, "").strip(),
        rules=tuple(rules),
        source=source,
    )


def _parse_rule(raw: object, where: str) -> list[MatchRule]:
    if not isinstance(raw, dict) or not raw:
        msg = f"{where}: a rule must be a non-empty mapping of conditions"
        raise RegistryError(msg)
    _check_keys(raw, (), _RULE_KEYS, where, "rule")

    types = raw.get("type")
    type_names: list[str | None]
    if types is None:
        type_names = [None]
    elif isinstance(types, str):
        type_names = [types]
    elif isinstance(types, list) and types and all(isinstance(t, str) for t in types):
        type_names = list(types)
    else:
        msg = f"{where}: key 'type' must be a class name or a list of them"
        raise RegistryError(msg)
    for name in type_names:
        if name is not None and not _DOTTED_NAME.fullmatch(name):
            msg = f"{where}: key 'type' has invalid class name {name!r}"
            raise RegistryError(msg)

    message = _pattern(raw, "message", where)
    attributes = _parse_predicates(raw.get("attributes"), where)
    scope = _pattern(raw, "scope", where)
    span_name = _pattern(raw, "span_name", where)
    return [
        MatchRule(name, message, attributes, scope, span_name) for name in type_names
    ]


def _parse_predicates(raw: object, where: str) -> tuple[AttributePredicate, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict) or not raw:
        msg = f"{where}: key 'attributes' must be a mapping of attribute names"
        raise RegistryError(msg)

    predicates = []
    for key, condition in raw.items():
        if not isinstance(key, str) or not key:
            msg = f"{where}: attribute name {key!r} must be a non-empty string"
            raise RegistryError(msg)
        here = f"{where}, attribute {key!r}"
        if not isinstance(condition, dict):
            condition = {"equals": condition}
        if len(condition) != 1 or next(iter(condition)) not in _PREDICATE_KEYS:
            msg = (
                f"{here}: expected exactly one of equals, regex, exists; "
                f"got {sorted(map(str, condition))}"
            )
            raise RegistryError(msg)
        predicates.append(_parse_predicate(key, condition, here))
    return tuple(predicates)


def _parse_predicate(
    key: str, condition: dict[Any, Any], where: str
) -> AttributePredicate:
    if "exists" in condition:
        return AttributePredicate(key, exists=_typed(condition, "exists", bool, where))
    if "regex" in condition:
        return AttributePredicate(key, regex=_pattern(condition, "regex", where))

    value = condition["equals"]
    if not isinstance(value, (str, int, float, bool)):
        msg = f"{where}: key 'equals' must be a string, number or boolean"
        raise RegistryError(msg)
    text = attribute_text(value)
    assert isinstance(text, str)
    return AttributePredicate(key, equals=text)


def _check_keys(
    raw: Mapping[Any, Any],
    required: Iterable[str],
    optional: Iterable[str],
    where: object,
    what: str,
) -> None:
    required = tuple(required)
    allowed = (*required, *optional)
    for key in raw:
        if key not in allowed:
            msg = (
                f"{where}: unknown key {key!r} in {what}; expected one of "
                f"{', '.join(allowed)}"
            )
            raise RegistryError(msg)
    for key in required:
        if key not in raw:
            msg = f"{where}: missing required key {key!r}"
            raise RegistryError(msg)


_T = TypeVar("_T")


def _typed(
    raw: Mapping[Any, Any],
    key: str,
    kind: type[_T],
    where: object,
    default: _T | None = None,
) -> _T:
    value = raw.get(key)
    if value is None and default is not None:
        return default
    # bool is an int: keep ``retryable: 1`` from passing as ``True``.
    if isinstance(value, kind) and not (kind is not bool and isinstance(value, bool)):
        return value
    msg = (
        f"{where}: key {key!r} has value {value!r} of type {type(value).__name__}; "
        f"expected {kind.__name__}"
    )
    raise RegistryError(msg)


def _member(raw: Mapping[Any, Any], key: str, kind: type[_E], where: object) -> _E:
    value = raw.get(key)
    for member in kind:
        if isinstance(value, str) and value.upper() in (
            member.name,
            str(member.value).upper(),
        ):
            return member
    allowed = ", ".join(str(member.value) for member in kind)
    msg = f"{where}: unknown {key} {value!r}; expected one of {allowed}"
    raise RegistryError(msg)


def _pattern(raw: Mapping[Any, Any], key: str, where: object) -> re.Pattern[str] | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        msg = f"{where}: key {key!r} must be a non-empty regular expression string"
        raise RegistryError(msg)
    try:
        return re.compile(value)
    except re.error as exc:
        msg = f"{where}: key {key!r} has invalid regular expression {value!r}: {exc}"
        raise RegistryError(msg) from exc
