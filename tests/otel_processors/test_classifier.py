"""Tests for the classifier: rules, specificity, explicit codes and hostile input."""

from __future__ import annotations

import json
import pickle
import sys
import threading
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_processors import attributes as attrs
from otel_processors.classifier import MESSAGE_SEARCH_LIMIT_CHARS, Classifier
from otel_processors.exceptions import (
    DataError,
    HealthAIError,
    ModelLoadError,
    OutOfRangeError,
)
from otel_processors.registry import Registry

_BUILTIN = Classifier(Registry.builtin())


def _classifier_with(tmp_path: Path, rules_yaml: str, **kwargs: int) -> Classifier:
    """Return a classifier over the catalogue plus one user file."""
    path = tmp_path / "user.yaml"
    path.write_text(rules_yaml, encoding="utf-8")
    return Classifier(Registry.load([path], use_env=False), **kwargs)


def _code(code_id: str, rules: str, subcategory: str = "TIMEOUT") -> str:
    return (
        f"  - id: {code_id}\n"
        "    category: SYSTEM_ERROR\n"
        f"    subcategory: {subcategory}\n"
        "    severity: error\n"
        f"    rules: {rules}\n"
    )


def _raised(function: object, *args: object) -> BaseException:
    """Return the exception a real call raises (C extensions included)."""
    try:
        function(*args)  # type: ignore[operator]  # any callable under test
    except BaseException as exc:
        return exc
    pytest.fail("the call did not raise")


@pytest.mark.parametrize(
    ("exc", "context", "expected"),
    [
        (requests.exceptions.ConnectionError("refused"), {}, "HAI-SYS-101"),
        (requests.exceptions.ReadTimeout("slow"), {}, "HAI-SYS-201"),
        (requests.exceptions.ConnectTimeout("slow"), {}, "HAI-SYS-201"),
        (ConnectionRefusedError(111, "refused"), {}, "HAI-SYS-101"),
        (TimeoutError(), {}, "HAI-SYS-201"),
        (MemoryError(), {}, "HAI-SYS-301"),
        (OSError(28, "No space left on device"), {}, "HAI-SYS-303"),
        (PermissionError(13, "denied"), {}, "HAI-SYS-501"),
        (ModuleNotFoundError("No module named 'xgboost'"), {}, "HAI-SYS-402"),
        (FloatingPointError("overflow"), {}, "HAI-MODEL-301"),
        (np.linalg.LinAlgError("Singular matrix"), {}, "HAI-MODEL-301"),
        (pickle.UnpicklingError("invalid load key"), {}, "HAI-MODEL-101"),
        (
            FileNotFoundError(2, "No such file"),
            {"span_name": "load_model"},
            "HAI-MODEL-101",
        ),
        (
            FileNotFoundError(2, "No such file"),
            {"attributes": {"healthai.model.uri": "s3://models/readmit/7"}},
            "HAI-MODEL-101",
        ),
        (FileNotFoundError(2, "No such file", "/srv/m.onnx"), {}, "HAI-MODEL-101"),
        (KeyError("hba1c"), {"scope": "readmit.features"}, "HAI-PRED-101"),
        (KeyError("hba1c"), {"span_name": "extract_features"}, "HAI-PRED-101"),
        (KeyError("E11.9"), {"span_name": "icd lookup"}, "HAI-DATA-601"),
        (
            ValueError(
                "X has 10 features, but LogisticRegression is expecting 12"
                " features as input"
            ),
            {},
            "HAI-DATA-102",
        ),
        (ValueError("Input X contains NaN."), {}, "HAI-DATA-201"),
        (ValueError("heart rate 900 out of range"), {}, "HAI-DATA-301"),
        (ZeroDivisionError(), {"span_name": "risk score"}, "HAI-PRED-201"),
        (ZeroDivisionError(), {}, "HAI-MODEL-301"),
        (RuntimeError("CUDA out of memory. Tried to allocate"), {}, "HAI-SYS-302"),
        (
            requests.exceptions.HTTPError("503 Server Error: Service Unavailable"),
            {},
            "HAI-SYS-102",
        ),
        (
            requests.exceptions.HTTPError("403 Client Error: Forbidden for url"),
            {},
            "HAI-SYS-501",
        ),
        (
            RuntimeError("upstream failed"),
            {"attributes": {"http.response.status_code": 429}},
            "HAI-SYS-304",
        ),
        (ValueError("anything"), {"span_name": "calibrate"}, "HAI-PRED-301"),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else "",
)
def test_catalogue_classifies_common_errors(
    exc: BaseException, context: dict[str, object], expected: str
) -> None:
    """The built-in catalogue gives realistic errors their documented code."""
    result = _BUILTIN.classify_exception(exc, **context)  # type: ignore[arg-type]

    assert expected == result.code.id, result.reason


def test_real_c_extension_exceptions_are_classified() -> None:
    """Exceptions raised inside C code (numpy, _pickle, json) get their codes."""
    raised = [
        _raised(np.linalg.inv, np.zeros((2, 2))),
        _raised(pickle.loads, b"not a pickle"),
        _raised(json.loads, "{"),
    ]

    result = [_BUILTIN.classify_exception(exc).code.id for exc in raised]

    expected = ["HAI-MODEL-301", "HAI-MODEL-101", "HAI-DATA-101"]
    assert expected == result


def test_unknown_exception_falls_back_to_unclassified() -> None:
    """An error no rule matches gets HAI-UNCL-000, flagged as a fallback."""
    classifier = Classifier(Registry.builtin())

    result = classifier.classify_exception(LookupError("nothing"))

    expected = ("HAI-UNCL-000", True, 1)
    assert expected == (result.code.id, result.fallback, classifier.unmatched_count())


def test_fallbacks_are_counted_on_every_call_even_when_cached() -> None:
    """Each unmatched classification counts, including cache hits."""
    classifier = Classifier(Registry.builtin())

    for _ in range(3):
        classifier.classify("acme.Unknown", "boom")
    classifier.classify("TimeoutError", None)

    expected = 3
    assert expected == classifier.unmatched_count()


def test_attributes_carry_the_code_and_low_cardinality_error_type() -> None:
    """``attributes()`` gives every healthai.error.* key and error.type = code."""
    result = _BUILTIN.classify_exception(TimeoutError()).attributes()

    expected = {
        attrs.ERROR_CATEGORY: "SYSTEM_ERROR",
        attrs.ERROR_SUBCATEGORY: "TIMEOUT",
        attrs.ERROR_CODE: "HAI-SYS-201",
        attrs.ERROR_SEVERITY: "error",
        attrs.ERROR_RETRYABLE: True,
        attrs.ERROR_REMEDIATION: Registry.builtin().codes["HAI-SYS-201"].remediation,
        attrs.ERROR_RUNBOOK_URL: "https://runbooks.healthai.example/errors/HAI-SYS-201",
        attrs.ERROR_FALLBACK: False,
        attrs.ERROR_TYPE: "HAI-SYS-201",
    }
    assert expected == result


# Specificity.


def test_exact_type_beats_base_class(tmp_path: Path) -> None:
    """A rule on the exception's own type wins over one on a base class."""
    classifier = _classifier_with(
        tmp_path,
        "codes:\n"
        + _code("ACME-SYS-001", "[{type: OSError}]")
        + _code("ACME-SYS-002", "[{type: ConnectionResetError}]"),
    )

    result = classifier.classify_exception(ConnectionResetError())

    expected = "ACME-SYS-002"
    assert expected == result.code.id


def test_nearer_base_beats_farther_base(tmp_path: Path) -> None:
    """Among base classes, the one nearer along the MRO wins."""
    classifier = _classifier_with(
        tmp_path,
        "codes:\n"
        + _code("ACME-SYS-001", "[{type: Exception}]")
        + _code("ACME-SYS-002", "[{type: ValueError}]"),
    )

    result = classifier.classify_exception(
        UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")
    )

    expected = "ACME-SYS-002"
    assert expected == result.code.id


def test_message_rule_beats_type_only_rule_on_same_type(tmp_path: Path) -> None:
    """With the same type, a rule with a message pattern is more specific."""
    classifier = _classifier_with(
        tmp_path,
        "codes:\n"
        + _code("ACME-SYS-001", "[{type: LookupError}]")
        + _code("ACME-SYS-002", "[{type: LookupError, message: vault}]"),
    )

    result = [
        classifier.classify_exception(LookupError(text)).code.id
        for text in ("vault sealed", "other")
    ]

    expected = ["ACME-SYS-002", "ACME-SYS-001"]
    assert expected == result


def test_more_attribute_predicates_beat_fewer(tmp_path: Path) -> None:
    """Two attribute predicates outrank one when both rules hold."""
    classifier = _classifier_with(
        tmp_path,
        "codes:\n"
        + _code("ACME-SYS-001", "[{type: LookupError, attributes: {a: 1}}]")
        + _code("ACME-SYS-002", "[{type: LookupError, attributes: {a: 1, b: x}}]"),
    )

    result = classifier.classify_exception(LookupError(), attributes={"a": 1, "b": "x"})

    expected = "ACME-SYS-002"
    assert expected == result.code.id


def test_scope_rule_beats_type_only_rule(tmp_path: Path) -> None:
    """A scope condition makes a rule more specific than the bare type."""
    classifier = _classifier_with(
        tmp_path,
        "codes:\n"
        + _code("ACME-SYS-001", "[{type: LookupError}]")
        + _code("ACME-SYS-002", "[{type: LookupError, scope: 'acme\\.vault'}]"),
    )

    result = [
        classifier.classify_exception(LookupError(), scope=scope).code.id
        for scope in ("acme.vault", "acme.vault.sub", None)
    ]

    expected = ["ACME-SYS-002", "ACME-SYS-001", "ACME-SYS-001"]
    assert expected == result


def test_typed_rule_beats_untyped_rule(tmp_path: Path) -> None:
    """Any type condition outranks rules with no type, whatever they check."""
    classifier = _classifier_with(
        tmp_path,
        "codes:\n"
        + _code("ACME-SYS-001", "[{message: vault, span_name: vault}]")
        + _code("ACME-SYS-002", "[{type: Exception}]"),
    )

    result = classifier.classify_exception(LookupError("vault"), span_name="vault")

    expected = "ACME-SYS-002"
    assert expected == result.code.id


def test_user_rule_beats_builtin_rule_at_equal_specificity(tmp_path: Path) -> None:
    """A user file's rule wins a tie with the catalogue's rule."""
    classifier = _classifier_with(
        tmp_path, "codes:\n" + _code("ACME-SYS-001", "[{type: TimeoutError}]")
    )

    result = classifier.classify_exception(TimeoutError())

    expected = "ACME-SYS-001"
    assert expected == result.code.id


def test_more_specific_builtin_rule_beats_user_rule(tmp_path: Path) -> None:
    """User precedence only breaks ties; it does not beat a nearer type."""
    classifier = _classifier_with(
        tmp_path, "codes:\n" + _code("ACME-SYS-001", "[{type: Exception}]")
    )

    result = classifier.classify_exception(TimeoutError())

    expected = "HAI-SYS-201"
    assert expected == result.code.id


def test_registry_order_breaks_remaining_ties(tmp_path: Path) -> None:
    """Between equally specific rules of one file, the earlier code wins."""
    classifier = _classifier_with(
        tmp_path,
        "codes:\n"
        + _code("ACME-SYS-001", "[{type: LookupError, message: a}]")
        + _code("ACME-SYS-002", "[{type: LookupError, message: b}]"),
    )

    result = classifier.classify_exception(LookupError("ab"))

    expected = "ACME-SYS-001"
    assert expected == result.code.id


# Type names.


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("requests.exceptions.ConnectionError", "HAI-SYS-101"),
        ("requests.exceptions.ReadTimeout", "HAI-SYS-201"),
        ("ConnectionError", "HAI-SYS-101"),
        ("builtins.TimeoutError", "HAI-SYS-201"),
        ("JSONDecodeError", "HAI-DATA-101"),
        ("json.decoder.JSONDecodeError", "HAI-DATA-101"),
        ("UnpicklingError", "HAI-MODEL-101"),
        ("_pickle.UnpicklingError", "HAI-MODEL-101"),
        ("LinAlgError", "HAI-MODEL-301"),
        ("ModelLoadError", "HAI-MODEL-101"),
        ("otel_processors.exceptions.OutOfRangeError", "HAI-DATA-301"),
        ("torch.cuda.OutOfMemoryError", "HAI-SYS-302"),
        ("OutOfMemoryError", "HAI-SYS-302"),
    ],
)
def test_type_names_from_spans_and_logs_resolve(name: str, expected: str) -> None:
    """Module-qualified (span) and bare (logging handler) names both classify."""
    result = _BUILTIN.classify(name, "message")

    assert expected == result.code.id, result.reason


def test_type_names_are_never_imported(tmp_path: Path) -> None:
    """Classifying a name from an unimported module imports nothing."""
    classifier = _classifier_with(
        tmp_path,
        "codes:\n" + _code("ACME-SYS-001", "[{type: xml.dom.minidom.Node}]"),
    )
    sys.modules.pop("xml.dom.minidom", None)

    result = classifier.classify("xml.dom.minidom.Node", None)

    expected = ("ACME-SYS-001", False)
    assert expected == (result.code.id, "xml.dom.minidom" in sys.modules)


def test_unresolved_name_matches_only_its_own_rules(tmp_path: Path) -> None:
    """Without the class, only rules naming exactly that type apply."""
    classifier = _classifier_with(
        tmp_path,
        "codes:\n"
        + _code("ACME-SYS-001", "[{type: acme.never.LabTimeout}]")
        + _code("ACME-SYS-002", "[{type: acme.never.Other}]"),
    )

    result = [
        classifier.classify(name, None).code.id
        for name in ("acme.never.LabTimeout", "LabTimeout", "acme.never.Else")
    ]

    expected = ["ACME-SYS-001", "ACME-SYS-001", "HAI-UNCL-000"]
    assert expected == result


def test_name_resolves_once_its_module_is_imported(tmp_path: Path) -> None:
    """A cached unresolved name is looked up again after its module loads."""
    module_dir = tmp_path / "pkg"
    module_dir.mkdir()
    (module_dir / "acme_late_module.py").write_text(
        "class LateError(TimeoutError):\n    pass\n", encoding="utf-8"
    )
    before = _BUILTIN.classify("acme_late_module.LateError", None).code.id
    sys.path.insert(0, str(module_dir))
    try:
        __import__("acme_late_module")
        after = _BUILTIN.classify("acme_late_module.LateError", None).code.id
    finally:
        sys.path.remove(str(module_dir))
        sys.modules.pop("acme_late_module", None)

    expected = ("HAI-UNCL-000", "HAI-SYS-201")
    assert expected == (before, after)


def test_missing_exception_type_classifies_by_attributes() -> None:
    """A span with status ERROR and no exception event uses its attributes."""
    result = _BUILTIN.classify(
        None, None, attributes={"http.response.status_code": 503}
    )

    expected = "HAI-SYS-102"
    assert expected == result.code.id


def test_missing_exception_type_without_clues_falls_back() -> None:
    """With nothing to go on, the error is UNCLASSIFIED, never dropped."""
    result = _BUILTIN.classify(None, None)

    expected = ("HAI-UNCL-000", True)
    assert expected == (result.code.id, result.fallback)


# Explicit codes.


def test_code_attribute_wins_over_rules() -> None:
    """A ``healthai.error.code`` attribute outranks every rule."""
    result = _BUILTIN.classify_exception(
        TimeoutError(), attributes={attrs.ERROR_CODE: "HAI-DATA-401"}
    )

    expected = ("HAI-DATA-401", False)
    assert expected == (result.code.id, result.fallback)


def test_unknown_code_attribute_uses_its_category_fallback() -> None:
    """An unknown explicit id falls back to its category when one is given."""
    result = _BUILTIN.classify(
        "TimeoutError",
        None,
        attributes={attrs.ERROR_CODE: "ACME-404", attrs.ERROR_CATEGORY: "DATA_ERROR"},
    )

    expected = ("HAI-DATA-000", True)
    assert expected == (result.code.id, result.fallback)
    assert "'ACME-404'" in result.reason


def test_unknown_code_attribute_without_category_is_unclassified() -> None:
    """An unknown explicit id with no category gives HAI-UNCL-000."""
    result = _BUILTIN.classify(None, None, attributes={attrs.ERROR_CODE: "ACME-404"})

    expected = ("HAI-UNCL-000", True)
    assert expected == (result.code.id, result.fallback)


def test_taxonomy_exception_uses_its_code() -> None:
    """An exception of the hierarchy is classified by its class's code."""
    result = _BUILTIN.classify_exception(ModelLoadError("checksum failed"))

    expected = ("HAI-MODEL-101", False)
    assert expected == (result.code.id, result.fallback)


def test_instance_code_from_user_registry_is_used(tmp_path: Path) -> None:
    """``code=`` on an instance names a code of the user's registry."""
    classifier = _classifier_with(
        tmp_path, "codes:\n" + _code("ACME-DATA-014", "[]", "TIMEOUT")
    )

    result = classifier.classify_exception(OutOfRangeError("x", code="ACME-DATA-014"))

    expected = "ACME-DATA-014"
    assert expected == result.code.id


def test_unknown_instance_code_falls_back_to_the_class_category() -> None:
    """An unknown ``code=`` gives the fallback of the exception's category."""
    result = _BUILTIN.classify_exception(DataError("x", code="ACME-NOPE"))

    expected = ("HAI-DATA-000", True)
    assert expected == (result.code.id, result.fallback)


# Hostile input.


class _BadStr(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no str for you")


class _OddClass(Exception):
    @property  # type: ignore[misc]  # deliberately lie about the class
    def __class__(self) -> type:
        return TimeoutError


class _HostileMeta(type):
    def __hash__(cls) -> int:
        raise RuntimeError("unhashable class")

    def __eq__(cls, other: object) -> bool:
        raise RuntimeError("incomparable class")


class _MetaError(TimeoutError, metaclass=_HostileMeta):
    pass


class _BadCode(HealthAIError):
    @property  # type: ignore[override]  # a broken code property
    def code(self) -> str:
        raise RuntimeError("no code")


def _cyclic() -> BaseException:
    first, second = ValueError("a"), KeyError("b")
    first.__cause__, second.__cause__ = second, first
    first.__context__ = second
    return first


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (_BadStr(), "HAI-UNCL-000"),
        (_OddClass(), "HAI-UNCL-000"),
        (_MetaError(), "HAI-SYS-201"),
        (_BadCode(), "HAI-UNCL-000"),
        (_cyclic(), "HAI-UNCL-000"),
        (ValueError("x" * 10_000_000 + "out of range"), "HAI-UNCL-000"),
        (ValueError("\udcff\ud800 out of range \x00"), "HAI-DATA-301"),
    ],
    ids=[
        "bad-str",
        "odd-class",
        "hostile-metaclass",
        "bad-code",
        "cyclic",
        "huge",
        "surrogates",
    ],
)
def test_hostile_exceptions_still_get_a_classification(
    exc: BaseException, expected: str
) -> None:
    """Broken or hostile exceptions are classified, never raised into the host."""
    result = Classifier(Registry.builtin()).classify_exception(exc)

    assert expected == result.code.id


def test_message_beyond_the_search_limit_is_not_seen() -> None:
    """Message patterns see only the first MESSAGE_SEARCH_LIMIT_CHARS characters."""
    padding = "x" * MESSAGE_SEARCH_LIMIT_CHARS

    result = [
        _BUILTIN.classify("ValueError", text).code.id
        for text in (padding[:-20] + " out of range", padding + " out of range")
    ]

    expected = ["HAI-DATA-301", "HAI-UNCL-000"]
    assert expected == result


class _BrokenMapping(Mapping[str, object]):
    def __getitem__(self, key: str) -> object:
        raise RuntimeError("broken mapping")

    def __iter__(self):  # type: ignore[no-untyped-def]  # never iterated
        raise RuntimeError("broken mapping")

    def __len__(self) -> int:
        return 1


def test_broken_attribute_mapping_gives_unclassified() -> None:
    """A mapping that raises is answered with the fallback, with a reason."""
    result = _BUILTIN.classify("ValueError", "x", attributes=_BrokenMapping())

    expected = ("HAI-UNCL-000", True)
    assert expected == (result.code.id, result.fallback)
    assert "classification failed" in result.reason


def test_negative_cache_size_is_rejected() -> None:
    """A bad constructor argument raises ValueError at once."""
    with pytest.raises(ValueError, match="cache_size"):
        Classifier(Registry.builtin(), cache_size=-1)


_TYPES = st.sampled_from(
    [
        None,
        "ValueError",
        "KeyError",
        "RuntimeError",
        "OSError",
        "TimeoutError",
        "requests.exceptions.HTTPError",
        "HTTPError",
        "FileNotFoundError",
        "acme.Unknown",
        "",
        "not a name!",
    ]
)
_MESSAGES = st.one_of(
    st.none(),
    st.text(max_size=60),
    st.sampled_from(
        [
            "heart rate 900 out of range",
            "503 Server Error: x",
            "504 Server Error: y",
            "401 Client Error: z",
            "Input X contains NaN.",
            "X has 10 features, but M is expecting 12 features",
            "[Errno 28] No space left on device",
            "code 42",
            "code 43",
            "model.onnx",
            "a" * 1500 + " out of range",
            "b" * 1500 + " out of range",
        ]
    ),
)
_ATTRIBUTES = st.one_of(
    st.none(),
    st.dictionaries(
        st.sampled_from(
            [
                "http.response.status_code",
                "healthai.model.uri",
                "a",
                "fhir.resource_type",
            ]
        ),
        st.one_of(
            st.integers(400, 599),
            st.text(max_size=5),
            st.booleans(),
            st.lists(st.text(max_size=3), max_size=3),
        ),
        max_size=3,
    ),
)
_NAMES = st.one_of(
    st.none(),
    st.sampled_from(["extract_features", "load_model", "risk score", "calibrate", "x"]),
    st.text(max_size=20),
)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    calls=st.lists(
        st.tuples(_TYPES, _MESSAGES, _ATTRIBUTES, _NAMES, _NAMES),
        min_size=1,
        max_size=8,
    )
)
def test_cache_never_changes_the_answer(
    calls: list[
        tuple[str | None, str | None, dict[str, object] | None, str | None, str | None]
    ],
) -> None:
    """Cached and uncached classifiers agree on every sequence of calls."""
    registry = _DIGIT_REGISTRY
    cached, uncached = (
        Classifier(registry, cache_size=8),
        Classifier(registry, cache_size=0),
    )

    for type_name, message, attributes, scope, span_name in calls:
        result = cached.classify(
            type_name, message, attributes=attributes, scope=scope, span_name=span_name
        )
        expected = uncached.classify(
            type_name, message, attributes=attributes, scope=scope, span_name=span_name
        )

        assert expected == result


@settings(max_examples=300, deadline=None, derandomize=True)
@given(message=st.text(), attributes=_ATTRIBUTES, scope=st.text(), type_name=st.text())
def test_classify_never_raises(
    message: str, attributes: dict[str, object] | None, scope: str, type_name: str
) -> None:
    """Any text, attributes or type name yields a Classification."""
    result = _BUILTIN.classify(type_name, message, attributes=attributes, scope=scope)

    assert result.code.id in _BUILTIN.registry.codes


def _digit_registry() -> Registry:
    # A user rule whose literal digits must defeat the digit-folding cache key.
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
        handle.write(
            "codes:\n"
            + _code("ACME-SYS-042", "[{type: ValueError, message: 'code 42'}]")
            + _code("ACME-SYS-043", "[{type: ValueError, message: 'code \\d{2}'}]")
        )
    try:
        return Registry.load([handle.name], use_env=False)
    finally:
        Path(handle.name).unlink()


_DIGIT_REGISTRY = _digit_registry()


def test_literal_digits_in_patterns_keep_messages_apart() -> None:
    """A pattern naming a digit is not fooled by the digit-folded cache key."""
    classifier = Classifier(_DIGIT_REGISTRY)

    result = [
        classifier.classify("ValueError", text).code.id
        for text in ("code 42", "code 43", "code 42")
    ]

    expected = ["ACME-SYS-042", "ACME-SYS-043", "ACME-SYS-042"]
    assert expected == result


def test_numbers_in_messages_share_one_cache_entry() -> None:
    """Messages differing only in digits reuse one result when no pattern can tell."""
    classifier = Classifier(Registry.builtin())

    first = classifier.classify("ValueError", "heart rate 900 out of range")
    second = classifier.classify("ValueError", "heart rate 317 out of range")

    assert first is second


def test_steady_state_returns_the_cached_classification() -> None:
    """The second classification of a type-decided error is the cached object."""
    classifier = Classifier(Registry.builtin())

    first = classifier.classify_exception(TimeoutError("a"))
    second = classifier.classify_exception(TimeoutError("b"))

    assert first is second


def test_concurrent_classification_agrees_with_serial() -> None:
    """Threads sharing one classifier get the same answers as one thread."""
    classifier = Classifier(Registry.builtin(), cache_size=16)
    inputs = [
        (name, f"{text} {i}")
        for i in range(60)
        for name, text in (
            ("ValueError", "value out of range"),
            ("OSError", "No space left on device"),
            ("KeyError", "k"),
            ("requests.exceptions.HTTPError", "503 Server Error"),
        )
    ]
    expected = [
        Classifier(Registry.builtin()).classify(*item).code.id for item in inputs
    ]
    results: list[list[str]] = []

    def work() -> None:
        results.append([classifier.classify(*item).code.id for item in inputs])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [expected] * 4 == results
