"""Give an error its error code: explicit codes first, then registry rules.

The classifier answers, for an exception or for the ``exception.type`` and
``exception.message`` found on a span or log record, which ``ErrorCode`` of the
registry applies. In order:

1. an ``healthai.error.code`` attribute naming a code of the registry (written
   by ``tagging.tag_error`` or ``tagging.log_extra``);
2. the ``code`` of an exception from ``otel_processors.exceptions``;
3. the most specific registry rule that holds (the order is documented in
   ``otel_processors.registry``);
4. the fallback code: of the category, when an explicit code was unknown but
   its category is known, else ``HAI-UNCL-000``. Fallbacks are counted
   (``unmatched_count``), never dropped.

Type names. Spans write module-qualified names (``requests.exceptions.
ConnectionError``, builtins bare); the logging handler writes the bare class
name. A name is resolved to a class without importing anything: a dotted name
through ``sys.modules``; a bare name first as a builtin, then as the one class
of that name among the registry's rule types whose module is loaded (and the
taxonomy's exceptions). A bare name is ambiguous when it is a builtin too:
``ConnectionError`` from a log record is the builtin, even if the application
raised ``requests.exceptions.ConnectionError``; the catalogue maps both to the
same subcategory. A name that does not resolve matches rules naming exactly
that type (for a bare name: every rule type with that last component), without
its bases.

Cost. Per exception type the candidate rules are sorted once (a plan). When
the first candidate has no condition beyond the type, the type alone decides
and the steady state is one dictionary lookup. Otherwise results are cached by
what the candidates can see: the message when a candidate has a message
pattern (with ASCII digits folded to ``0`` when no pattern can tell digits
apart), the attributes the predicates name, and the scope and span name when
conditions use them; messages longer than 1 KiB are not cached. Both caches
are bounded (the oldest entry goes first) and safe to share between threads;
the cache never changes an answer.

The classifier never raises: any failure while classifying (a hostile
``__str__``, a broken mapping) is recorded through ``_guard.record_failure``
and answered with the UNCLASSIFIED fallback.
"""

from __future__ import annotations

import builtins
import dataclasses
import itertools
import logging
import re
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

from otel_processors import attributes as attrs
from otel_processors._guard import record_failure
from otel_processors.exceptions import HealthAIError
from otel_processors.registry import ErrorCode, MatchRule, Registry, attribute_text
from otel_processors.taxonomy import Category

__all__ = ["MESSAGE_SEARCH_LIMIT_CHARS", "Classification", "Classifier"]

_logger = logging.getLogger(__name__)

MESSAGE_SEARCH_LIMIT_CHARS: Final = 4096
"""Message patterns see this many leading characters of a message."""

_NO_TYPE_DISTANCE: Final = 1 << 20
# Longer messages are matched without caching, which bounds the cache's memory
# (about 4 MiB at the default size) at the price of re-running their patterns.
_MAX_CACHED_MESSAGE_CHARS: Final = 1024
_MAX_TYPE_NAME_CHARS: Final = 512
_DOTTED_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_FOLD_DIGITS = str.maketrans("123456789", "000000000")
# Inside a pattern, a digit that is a literal, a backreference or part of a
# class range can tell digits apart; digits in ``{m,n}`` counts cannot.
_COUNTED_REPEAT = re.compile(r"(?<!\\)\{\d*,?\d*\}")
_DIGIT_AWARE = re.compile(r"\d|\(\?P=|\(\?\(")

# Results are keyed by plan serial, not id(plan): ids are reused after eviction.
_plan_serials = itertools.count()

_K = TypeVar("_K")
_V = TypeVar("_V")


@dataclass(frozen=True)
class Classification:
    """The code an error was given, and why.

    Attributes:
        code: the error code.
        fallback: whether no rule matched and a fallback code was used.
        reason: a human explanation: the rule and how it matched, or why the
            fallback was used.
        rule: the rule that matched, if one did.
    """

    code: ErrorCode
    fallback: bool
    reason: str
    rule: MatchRule | None = None

    def attributes(self) -> dict[str, str | bool]:
        """Return the attributes to write on a span or log record.

        Returns:
            ``healthai.error.{category,subcategory,code,severity,retryable,
            remediation,runbook_url,fallback}`` and ``error.type``, which holds
            the code id to stay low-cardinality.
        """
        code = self.code
        return {
            attrs.ERROR_CATEGORY: code.category.value,
            attrs.ERROR_SUBCATEGORY: code.subcategory.value,
            attrs.ERROR_CODE: code.id,
            attrs.ERROR_SEVERITY: code.severity.value,
            attrs.ERROR_RETRYABLE: code.retryable,
            attrs.ERROR_REMEDIATION: code.remediation,
            attrs.ERROR_RUNBOOK_URL: code.runbook_url,
            attrs.ERROR_FALLBACK: self.fallback,
            attrs.ERROR_TYPE: code.id,
        }


@dataclass(frozen=True)
class _Candidate:
    code: ErrorCode
    rule: MatchRule
    distance: int
    base: str


@dataclass(frozen=True)
class _Plan:
    """The candidate rules for one exception type, most specific first."""

    owner: object
    serial: int
    label: str
    candidates: tuple[_Candidate, ...]
    decided: Classification | None
    needs_message: bool
    digit_blind: bool
    attribute_keys: tuple[str, ...]
    needs_scope: bool
    needs_span_name: bool
    explicit_code: str | None = None
    explicit_category: Category | None = None
    pending_modules: tuple[str, ...] = ()

    def stale(self) -> bool:
        """Whether a module has been imported since that may resolve the name."""
        modules = sys.modules
        return any(name in modules for name in self.pending_modules)


class _BoundedCache(Generic[_K, _V]):
    """A dict with lock-free reads; writes evict the oldest entry when full."""

    def __init__(self, max_entries: int) -> None:
        self._data: dict[_K, _V] = {}
        self._max_entries = max_entries
        self._lock = threading.Lock()

    def get(self, key: _K) -> _V | None:
        return self._data.get(key)

    def put(self, key: _K, value: _V) -> None:
        if self._max_entries <= 0:
            return
        with self._lock:
            if key not in self._data and len(self._data) >= self._max_entries:
                self._data.pop(next(iter(self._data)), None)
            self._data[key] = value

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


class Classifier:
    """Classify exceptions and exception attributes against a registry.

    Args:
        registry: the codes and rules; default ``Registry.load()`` (the
            catalogue and the files of ``HEALTHAI_ERROR_REGISTRY``).
        cache_size: the most plans and the most results kept; 0 disables
            caching.

    Raises:
        ValueError: ``cache_size`` is negative.
        RegistryError: the default registry's files are invalid.
    """

    def __init__(
        self, registry: Registry | None = None, *, cache_size: int = 4096
    ) -> None:
        if cache_size < 0:
            msg = f"cache_size must be 0 or more, not {cache_size!r}"
            raise ValueError(msg)
        self._registry = registry if registry is not None else Registry.load()
        self._plans: _BoundedCache[object, _Plan] = _BoundedCache(cache_size)
        self._results: _BoundedCache[tuple[object, ...], Classification] = (
            _BoundedCache(cache_size)
        )
        self._unmatched = 0
        self._unmatched_lock = threading.Lock()
        self._rule_type_names = frozenset(
            rule.exception_type
            for _, rule in self._registry.rules
            if rule.exception_type is not None
        )

    @property
    def registry(self) -> Registry:
        """The registry this classifier applies."""
        return self._registry

    def unmatched_count(self) -> int:
        """Return how many classifications so far used a fallback code."""
        return self._unmatched

    def classify_exception(
        self,
        exc: BaseException,
        *,
        attributes: Mapping[str, object] | None = None,
        scope: str | None = None,
        span_name: str | None = None,
    ) -> Classification:
        """Classify an exception object.

        Args:
            exc: the exception.
            attributes: span or log-record attributes, for explicit codes and
                attribute predicates.
            scope: the instrumentation scope name.
            span_name: the name of the span the error happened in.

        Returns:
            The classification; never raises.
        """
        try:
            result = self._classify_exception(exc, attributes, scope, span_name)
        except Exception as failure:
            record_failure("taxonomy.classify_exception", failure)
            result = self._failed(failure)
        return self._counted(result)

    def classify(
        self,
        exception_type: str | None,
        message: str | None,
        *,
        attributes: Mapping[str, object] | None = None,
        scope: str | None = None,
        span_name: str | None = None,
    ) -> Classification:
        """Classify an error known by its type name and message.

        Args:
            exception_type: the ``exception.type`` value: module-qualified, or
                bare as the logging handler writes it; ``None`` when the error
                has no exception (a span with status ERROR).
            message: the ``exception.message`` value, or ``None``.
            attributes: span or log-record attributes.
            scope: the instrumentation scope name.
            span_name: the name of the span the error happened in.

        Returns:
            The classification; never raises.
        """
        try:
            result = self._classify_name(
                exception_type, message, attributes, scope, span_name
            )
        except Exception as failure:
            record_failure("taxonomy.classify", failure)
            result = self._failed(failure)
        return self._counted(result)

    # Classification steps.

    def _classify_exception(
        self,
        exc: BaseException,
        attributes: Mapping[str, object] | None,
        scope: str | None,
        span_name: str | None,
    ) -> Classification:
        if attributes:
            explicit = self._explicit_attribute(attributes)
            if explicit is not None:
                return explicit

        # type() rather than __class__, which an object may fake.
        cls = type(exc)
        if issubclass(cls, HealthAIError):
            return self._explicit(
                _code_of(exc, cls), _category_of(cls), f"exception {cls.__name__}"
            )

        plan = self._plan_for_class(cls)
        return self._decide(
            plan, lambda: _message_of(exc), attributes, scope, span_name
        )

    def _classify_name(
        self,
        exception_type: str | None,
        message: str | None,
        attributes: Mapping[str, object] | None,
        scope: str | None,
        span_name: str | None,
    ) -> Classification:
        if attributes:
            explicit = self._explicit_attribute(attributes)
            if explicit is not None:
                return explicit

        name = _exact_text(exception_type)
        plan = self._plan_for_name(name.strip() if name is not None else "")
        if plan.explicit_code is not None:
            return self._explicit(
                plan.explicit_code, plan.explicit_category, f"exception {plan.label}"
            )
        return self._decide(
            plan, lambda: _truncated(message), attributes, scope, span_name
        )

    def _explicit_attribute(
        self, attributes: Mapping[str, object]
    ) -> Classification | None:
        code_id = attributes.get(attrs.ERROR_CODE)
        if code_id is None:
            return None
        category = _category_or_none(attributes.get(attrs.ERROR_CATEGORY))
        return self._explicit(code_id, category, f"attribute {attrs.ERROR_CODE}")

    def _explicit(
        self, code_id: object, category: Category | None, origin: str
    ) -> Classification:
        text = _exact_text(code_id)
        key = ("explicit", text, category, origin)
        cached = self._results.get(key)
        if cached is None:
            cached = self._explicit_uncached(text, category, origin)
            self._results.put(key, cached)
        return cached

    def _explicit_uncached(
        self, text: str | None, category: Category | None, origin: str
    ) -> Classification:
        code = self._registry.get(text) if text is not None else None
        if code is not None:
            return Classification(code, False, f"explicit code {code.id} from {origin}")

        fallback = self._registry.fallback(category)
        shown = repr(text[:80]) if text is not None else "of a non-string type"
        reason = (
            f"explicit code {shown} from {origin} is not in the registry; "
            f"fallback of {fallback.category.value}"
        )
        return Classification(fallback, True, reason)

    def _decide(
        self,
        plan: _Plan,
        read_message: Callable[[], str | None],
        attributes: Mapping[str, object] | None,
        scope: str | None,
        span_name: str | None,
    ) -> Classification:
        if plan.decided is not None:
            return plan.decided

        message = read_message() if plan.needs_message else None
        texts = tuple(
            _safe_attribute_text(attributes.get(key)) if attributes else None
            for key in plan.attribute_keys
        )
        scope = _exact_text(scope) if plan.needs_scope else None
        span_name = _exact_text(span_name) if plan.needs_span_name else None

        shape = message
        if message is not None and plan.digit_blind:
            shape = message.translate(_FOLD_DIGITS)
        if shape is not None and len(shape) > _MAX_CACHED_MESSAGE_CHARS:
            return _evaluate(plan, message, texts, scope, span_name, self._registry)
        key = (plan.serial, shape, texts, scope, span_name)
        result = self._results.get(key)
        if result is None:
            result = _evaluate(plan, message, texts, scope, span_name, self._registry)
            self._results.put(key, result)
        return result

    def _counted(self, result: Classification) -> Classification:
        if result.fallback:
            with self._unmatched_lock:
                self._unmatched += 1
        return result

    def _failed(self, failure: BaseException) -> Classification:
        reason = f"classification failed ({type(failure).__name__}); see the log"
        return Classification(self._registry.fallback(None), True, reason)

    # Plans.

    def _plan_for_class(self, cls: type) -> _Plan:
        # Keyed by id() so that a metaclass's __hash__ or __eq__ never runs;
        # the owner check guards against a recycled id.
        plan = self._plans.get(id(cls))
        if plan is not None and plan.owner is cls:
            return plan

        plan = self._build_plan(cls, _mro_of(cls), _qualified_name(cls))
        self._plans.put(id(cls), plan)
        return plan

    def _plan_for_name(self, name: str) -> _Plan:
        key = ("name", name)
        plan = self._plans.get(key)
        if plan is not None and not plan.stale():
            return plan

        cls, candidates, pending = self._resolve_name(name)
        if cls is not None:
            plan = self._plan_for_class(cls)
        else:
            plan = self._build_name_plan(name, candidates, pending)
        self._plans.put(key, plan)
        return plan

    def _resolve_name(
        self, name: str
    ) -> tuple[type | None, frozenset[str], tuple[str, ...]]:
        """Find the class a type name means, importing nothing.

        Returns:
            The class, or ``None`` with the rule type names the name may mean
            and the modules whose import could resolve it later.
        """
        if not name or len(name) > _MAX_TYPE_NAME_CHARS:
            return None, frozenset(), ()
        if not _DOTTED_NAME.fullmatch(name):
            return None, frozenset({name}), ()

        if "." in name:
            name = name.removeprefix("builtins.")
        if "." in name:
            cls = _lookup_loaded(name)
            pending = () if cls is not None else _unloaded_prefixes(name)
            return cls, frozenset({name}), pending

        builtin = getattr(builtins, name, None)
        if isinstance(builtin, type) and issubclass(builtin, BaseException):
            return builtin, frozenset({name}), ()

        same_name = frozenset(
            rule_type
            for rule_type in self._rule_type_names
            if rule_type.rpartition(".")[2] == name
        )
        classes = {
            cls
            for cls in (_lookup_loaded(rule_type) for rule_type in same_name)
            if cls is not None
        }
        classes.update(c for c in _taxonomy_classes() if c.__name__ == name)
        if len(classes) == 1:
            return classes.pop(), same_name, ()

        pending = tuple(
            module
            for rule_type in same_name
            for module in _unloaded_prefixes(rule_type)
        )
        return None, same_name or frozenset({name}), pending

    def _build_plan(self, cls: type, mro: tuple[type, ...], label: str) -> _Plan:
        if issubclass(cls, HealthAIError):
            code = getattr(cls, "code", None)
            return _plan_from(
                cls,
                label,
                [],
                self._registry,
                explicit_code=code if isinstance(code, str) else "",
                explicit_category=_category_of(cls),
            )

        names = [_qualified_name(base) for base in mro]
        resolved: dict[str, type | None] = {}
        candidates = []
        for rule_order, (code, rule) in enumerate(self._registry.rules):
            rule_type = rule.exception_type
            distance, base = _NO_TYPE_DISTANCE, ""
            if rule_type is not None:
                if rule_type not in resolved:
                    resolved[rule_type] = _lookup_loaded(rule_type)
                target = resolved[rule_type]
                found = [
                    depth
                    for depth, (klass, klass_name) in enumerate(
                        zip(mro, names, strict=True)
                    )
                    if klass_name == rule_type or klass is target
                ]
                if not found:
                    continue
                distance, base = found[0], rule_type
            candidates.append((rule_order, code, rule, distance, base))
        return _plan_from(cls, label, candidates, self._registry)

    def _build_name_plan(
        self, name: str, type_names: frozenset[str], pending: tuple[str, ...]
    ) -> _Plan:
        candidates = [
            (
                rule_order,
                code,
                rule,
                0 if rule.exception_type else _NO_TYPE_DISTANCE,
                rule.exception_type or "",
            )
            for rule_order, (code, rule) in enumerate(self._registry.rules)
            if rule.exception_type is None or rule.exception_type in type_names
        ]
        label = name or "an error without exception type"
        return _plan_from(
            ("name", name), label, candidates, self._registry, pending_modules=pending
        )


def _plan_from(
    owner: object,
    label: str,
    found: list[tuple[int, ErrorCode, MatchRule, int, str]],
    registry: Registry,
    *,
    explicit_code: str | None = None,
    explicit_category: Category | None = None,
    pending_modules: tuple[str, ...] = (),
) -> _Plan:
    """Sort candidates by specificity and note what decides among them."""

    def specificity(
        item: tuple[int, ErrorCode, MatchRule, int, str],
    ) -> tuple[int, ...]:
        rule_order, _, rule, distance, _ = item
        return (
            distance,
            0 if rule.message is not None else 1,
            -len(rule.attributes),
            -((rule.scope is not None) + (rule.span_name is not None)),
            rule_order,
        )

    ordered: list[_Candidate] = []
    for _, code, rule, distance, base in sorted(found, key=specificity):
        ordered.append(_Candidate(code, rule, distance, base))
        # Nothing after an unconditional rule can ever be reached.
        if rule.unconditional:
            break

    plan = _Plan(
        owner=owner,
        serial=next(_plan_serials),
        label=label,
        candidates=tuple(ordered),
        decided=None,
        needs_message=any(c.rule.message is not None for c in ordered),
        digit_blind=all(
            _digit_blind(c.rule.message) for c in ordered if c.rule.message is not None
        ),
        attribute_keys=tuple(
            dict.fromkeys(p.key for c in ordered for p in c.rule.attributes)
        ),
        needs_scope=any(c.rule.scope is not None for c in ordered),
        needs_span_name=any(c.rule.span_name is not None for c in ordered),
        explicit_code=explicit_code,
        explicit_category=explicit_category,
        pending_modules=pending_modules,
    )
    if not ordered or ordered[0].rule.unconditional:
        decided = _evaluate(plan, None, (), None, None, registry)
        plan = dataclasses.replace(plan, decided=decided)
    return plan


def _evaluate(
    plan: _Plan,
    message: str | None,
    texts: tuple[str | tuple[str, ...] | None, ...],
    scope: str | None,
    span_name: str | None,
    registry: Registry,
) -> Classification:
    """Return the first candidate of the plan whose conditions all hold."""
    by_key = dict(zip(plan.attribute_keys, texts, strict=True))
    for candidate in plan.candidates:
        rule = candidate.rule
        if rule.message is not None and (
            message is None or rule.message.search(message) is None
        ):
            continue
        if not all(p.matches_text(by_key.get(p.key)) for p in rule.attributes):
            continue
        if rule.scope is not None and (
            scope is None or rule.scope.fullmatch(scope) is None
        ):
            continue
        if rule.span_name is not None and (
            span_name is None or rule.span_name.search(span_name) is None
        ):
            continue
        return Classification(candidate.code, False, _reason(plan, candidate), rule)

    fallback = registry.fallback(None)
    reason = f"no rule matched {plan.label}; fallback {fallback.id}"
    return Classification(fallback, True, reason)


def _reason(plan: _Plan, candidate: _Candidate) -> str:
    code = candidate.code
    reason = (
        f"{code.id} ({code.source}) matched {plan.label} by the rule: "
        f"{candidate.rule.describe()}"
    )
    if 0 < candidate.distance < _NO_TYPE_DISTANCE:
        reason += f" (a base class, {candidate.distance} step(s) up the MRO)"
    return reason


# Helpers that must not raise on hostile input.


def _exact_text(value: object) -> str | None:
    """Return a plain ``str`` for a str (or str subclass), else ``None``."""
    if type(value) is str:
        return value
    if isinstance(value, str):
        # Slicing through str's own method yields an exact str, whatever the
        # subclass overrides.
        return str.__getitem__(value, slice(0, None))
    return None


def _truncated(message: object) -> str | None:
    text = _exact_text(message)
    if text is None:
        return None
    return text[:MESSAGE_SEARCH_LIMIT_CHARS]


def _message_of(exc: BaseException) -> str | None:
    try:
        text = str(exc)
    except Exception:
        # A hostile or broken __str__: classify by type, scope and attributes.
        return None
    return _truncated(text)


def _safe_attribute_text(value: object) -> str | tuple[str, ...] | None:
    try:
        text = attribute_text(value)
    except Exception:
        return "<unprintable>"
    if isinstance(text, tuple):
        return tuple(_exact_text(item) or "" for item in text)
    return _exact_text(text)


def _code_of(exc: BaseException, cls: type[HealthAIError]) -> object:
    try:
        return getattr(exc, "code", cls.code)
    except Exception:
        return cls.code


def _category_of(cls: type[HealthAIError]) -> Category | None:
    category = getattr(cls, "category", None)
    return category if isinstance(category, Category) else None


def _category_or_none(value: object) -> Category | None:
    text = _exact_text(value)
    if text is None:
        return None
    try:
        return Category(text)
    except ValueError:
        return None


def _mro_of(cls: type) -> tuple[type, ...]:
    try:
        mro = tuple(type.__dict__["__mro__"].__get__(cls))
    except Exception:
        return (cls,)
    return tuple(base for base in mro if isinstance(base, type)) or (cls,)


def _qualified_name(cls: type) -> str:
    """Return the name spans write as ``exception.type`` for a class."""
    module = type.__dict__["__module__"].__get__(cls)
    qualname = type.__dict__["__qualname__"].__get__(cls)
    if not isinstance(qualname, str):
        qualname = "<unnamed>"
    if isinstance(module, str) and module and module != "builtins":
        return f"{module}.{qualname}"
    return qualname


def _lookup_loaded(dotted: str) -> type | None:
    """Return the class a dotted name means among loaded modules, or None."""
    parts = dotted.split(".")
    if len(parts) == 1:
        found = getattr(builtins, dotted, None)
        return found if isinstance(found, type) else None

    modules = sys.modules
    for split in range(len(parts) - 1, 0, -1):
        module = modules.get(".".join(parts[:split]))
        if module is None:
            continue
        target: object = module
        for attribute in parts[split:]:
            try:
                target = getattr(target, attribute)
            except Exception:
                target = None
                break
        if isinstance(target, type):
            return target
    return None


def _unloaded_prefixes(dotted: str) -> tuple[str, ...]:
    parts = dotted.split(".")
    modules = sys.modules
    prefixes = (".".join(parts[:split]) for split in range(1, len(parts)))
    return tuple(prefix for prefix in prefixes if prefix not in modules)


def _taxonomy_classes() -> list[type[HealthAIError]]:
    found: list[type[HealthAIError]] = []
    pending: list[type[HealthAIError]] = [HealthAIError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


def _digit_blind(pattern: re.Pattern[str] | None) -> bool:
    """Whether folding ASCII digits to ``0`` cannot change a search result.

    A pattern that names no digit (outside counted repeats such as ``{2,3}``)
    and has no named backreference or conditional treats all ASCII digits
    alike: ``\\d``, ``\\w``, ``.`` and classes without digit endpoints match all
    ten or none of them.
    """
    if pattern is None:
        return True
    source = _COUNTED_REPEAT.sub("", pattern.pattern)
    return _DIGIT_AWARE.search(source) is None
