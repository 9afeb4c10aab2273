"""Tests for the error-code registry and its YAML files."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from otel_processors.errors import RegistryError
from otel_processors.registry import (
    ENV_VAR,
    FALLBACK_CODE_IDS,
    AttributePredicate,
    Registry,
    attribute_text,
)
from otel_processors.taxonomy import SUBCATEGORIES, Category, Severity, Subcategory

_USER_CODE = """\
codes:
  - id: ACME-DATA-014
    category: DATA_ERROR
    subcategory: OUT_OF_RANGE
    severity: warning
    retryable: false
    description: Creatinine above any plausible value.
    remediation: Check the lab interface's unit mapping.
    runbook_url: https://runbooks.acme.example/ACME-DATA-014
    rules:
      - type: acme.labs.LabRangeError
        message: creatinine
        attributes:
          lab.loinc: "2160-0"
"""


def _write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def _entry(**overrides: object) -> str:
    """Return a one-code registry file, with keys replaced or removed (None)."""
    fields: dict[str, object] = {
        "id": "ACME-SYS-001",
        "category": "SYSTEM_ERROR",
        "subcategory": "TIMEOUT",
        "severity": "error",
        "description": "x",
        "remediation": "y",
    }
    fields.update(overrides)
    lines = ["codes:"]
    first = True
    for key, value in fields.items():
        if value is None:
            continue
        prefix = "  - " if first else "    "
        first = False
        lines.append(f"{prefix}{key}: {value}")
    return "\n".join(lines) + "\n"


def test_builtin_catalogue_covers_every_subcategory() -> None:
    """Every subcategory of the taxonomy has at least one built-in code."""
    result = {code.subcategory for code in Registry.builtin().codes.values()}

    assert set(Subcategory) == result


def test_builtin_ids_follow_the_documented_scheme() -> None:
    """Built-in ids are HAI-<AREA>-<S><NN> with S the subcategory's position."""
    areas = {
        Category.PREDICTION_ERROR: "PRED",
        Category.DATA_ERROR: "DATA",
        Category.MODEL_ERROR: "MODEL",
        Category.SYSTEM_ERROR: "SYS",
        Category.UNCLASSIFIED: "UNCL",
    }
    wrong = []
    for code in Registry.builtin().codes.values():
        match = re.fullmatch(r"HAI-([A-Z]+)-(\d)(\d\d)", code.id)
        position = SUBCATEGORIES[code.category].index(code.subcategory) + 1
        is_fallback = FALLBACK_CODE_IDS[code.category] == code.id
        expected_digit = "0" if is_fallback else str(position)
        if match is None or (match[1], match[2]) != (
            areas[code.category],
            expected_digit,
        ):
            wrong.append(code.id)

    expected: list[str] = []
    assert expected == wrong


def test_builtin_codes_have_remediation_and_runbook() -> None:
    """On-call people get a remediation and a runbook for every built-in code."""
    result = [
        code.id
        for code in Registry.builtin().codes.values()
        if not code.remediation or not code.runbook_url.startswith("https://")
    ]

    expected: list[str] = []
    assert expected == result


def test_fallback_of_none_is_unclassified() -> None:
    """``fallback(None)`` gives the UNCLASSIFIED code with subcategory UNKNOWN."""
    code = Registry.builtin().fallback(None)

    expected = ("HAI-UNCL-000", Category.UNCLASSIFIED, Subcategory.UNKNOWN)
    assert expected == (
        code.id,
        code.category,
        code.subcategory,
    )


def test_fallback_of_each_category_stays_in_that_category() -> None:
    """Each category's fallback code belongs to the category."""
    registry = Registry.builtin()

    result = {category: registry.fallback(category).category for category in Category}

    assert {category: category for category in Category} == result


def test_builtin_source_is_named_builtin() -> None:
    """Codes from the catalogue record ``builtin`` as their source."""
    result = {code.source for code in Registry.builtin().codes.values()}

    assert {"builtin"} == result


def test_user_file_adds_a_code_with_its_rules(tmp_path: Path) -> None:
    """A user file's code is available with the conditions it declares."""
    path = _write(tmp_path, "acme.yaml", _USER_CODE)

    code = Registry.load([path], use_env=False).get("ACME-DATA-014")

    assert code is not None
    rule = code.rules[0]
    assert (
        Subcategory.OUT_OF_RANGE,
        Severity.WARNING,
        str(path),
        "acme.labs.LabRangeError",
        "creatinine",
        (AttributePredicate("lab.loinc", equals="2160-0"),),
    ) == (
        code.subcategory,
        code.severity,
        code.source,
        rule.exception_type,
        rule.message.pattern if rule.message else None,
        rule.attributes,
    )


def test_type_list_expands_into_one_rule_per_type(tmp_path: Path) -> None:
    """``type: [A, B]`` gives two rules sharing the other conditions."""
    path = _write(
        tmp_path,
        "r.yaml",
        _entry(rules='[{type: [acme.A, acme.B], span_name: "load"}]'),
    )

    code = Registry.load([path], use_env=False).get("ACME-SYS-001")

    assert code is not None
    result = [
        (r.exception_type, r.span_name.pattern if r.span_name else None)
        for r in code.rules
    ]
    expected = [("acme.A", "load"), ("acme.B", "load")]
    assert expected == result


def test_later_file_replaces_a_code_wholesale(tmp_path: Path) -> None:
    """Redefining an id replaces every field of the earlier code, rules too."""
    first = _write(tmp_path, "a.yaml", _USER_CODE)
    second = _write(
        tmp_path,
        "b.yaml",
        _entry(id="ACME-DATA-014", category="DATA_ERROR", subcategory="UNIT_MISMATCH"),
    )

    code = Registry.load([first, second], use_env=False).get("ACME-DATA-014")

    assert code is not None
    assert (Subcategory.UNIT_MISMATCH, (), str(second)) == (
        code.subcategory,
        code.rules,
        code.source,
    )


def test_user_file_can_replace_a_builtin_code(tmp_path: Path) -> None:
    """A service can point a built-in code at its own runbook."""
    path = _write(
        tmp_path,
        "override.yaml",
        _entry(
            id="HAI-SYS-101",
            subcategory="DEPENDENCY_UNAVAILABLE",
            runbook_url="https://wiki.acme.example/feature-store",
        ),
    )

    code = Registry.load([path], use_env=False).get("HAI-SYS-101")

    assert code is not None
    expected = ("https://wiki.acme.example/feature-store", ())
    assert expected == (
        code.runbook_url,
        code.rules,
    )


def test_paths_in_code_override_environment_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Precedence: built-in < environment files in order < paths given in code."""
    env_one = _write(tmp_path, "e1.yaml", _entry(description="env one"))
    env_two = _write(tmp_path, "e2.yaml", _entry(description="env two"))
    in_code = _write(tmp_path, "c.yaml", _entry(description="in code"))
    monkeypatch.setenv(ENV_VAR, os.pathsep.join([str(env_one), str(env_two)]))

    from_env = Registry.load().get("ACME-SYS-001")
    from_code = Registry.load([in_code]).get("ACME-SYS-001")
    without_env = Registry.load(use_env=False).get("ACME-SYS-001")

    expected = ("env two", "in code", None)
    assert expected == (
        from_env.description if from_env else None,
        from_code.description if from_code else None,
        without_env,
    )


def test_user_rules_come_before_builtin_rules(tmp_path: Path) -> None:
    """In tie-break order, later files' rules precede the catalogue's."""
    path = _write(tmp_path, "u.yaml", _entry(rules="[{type: TimeoutError}]"))

    rules = Registry.load([path], use_env=False).rules

    expected = "ACME-SYS-001"
    assert expected == rules[0][0].id


def test_empty_file_adds_nothing(tmp_path: Path) -> None:
    """An empty registry file is valid and leaves the catalogue as it is."""
    path = _write(tmp_path, "empty.yaml", "")

    result = Registry.load([path], use_env=False).codes.keys()

    assert list(Registry.builtin().codes.keys()) == list(result)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            _entry() + _entry().removeprefix("codes:\n"),
            r"entry 1, id 'ACME-SYS-001', line 8: duplicate id 'ACME-SYS-001'",
        ),
        (_entry(category="LAB_ERROR"), r"entry 0.*unknown category 'LAB_ERROR'"),
        (_entry(subcategory="NOPE"), r"entry 0.*unknown subcategory 'NOPE'"),
        (_entry(severity="urgent"), r"entry 0.*unknown severity 'urgent'"),
        (
            _entry(subcategory="OUT_OF_RANGE"),
            r"subcategory 'OUT_OF_RANGE' is not in category 'SYSTEM_ERROR'",
        ),
        (
            _entry(rules="[{message: '(unclosed'}]"),
            r"rule 0: key 'message' has invalid regular expression '\(unclosed'",
        ),
        (_entry(colour="red"), r"unknown key 'colour' in entry"),
        (_entry(rules="[{typ: ValueError}]"), r"rule 0: unknown key 'typ' in rule"),
        (_entry(retryable="'yes'"), r"key 'retryable' has value 'yes' of type str"),
        (_entry(retryable=1), r"key 'retryable' has value 1 of type int"),
        (
            _entry(severity=None),
            r"entry 0, id 'ACME-SYS-001', line 2: missing .*'severity'",
        ),
        (_entry(id=None), r"entry 0, line 2: missing required key 'id'"),
        (_entry(id="lower-case"), r"key 'id' has invalid value 'lower-case'"),
        (_entry(runbook_url="wiki/page"), r"key 'runbook_url' has value 'wiki/page'"),
        (
            _entry(rules="[{attributes: {a: {equals: 1, regex: x}}}]"),
            r"attribute 'a': expected exactly one of equals, regex, exists",
        ),
        (_entry(rules="[{type: 'not a name'}]"), r"invalid class name 'not a name'"),
        (_entry(rules="[{}]"), r"rule 0: a rule must be a non-empty mapping"),
        ("codes:\n  - id: [unclosed\n", r"invalid YAML at line 3"),
        ("codes: {}\n", r"'codes' must be a list"),
        ("entries: []\n", r"unknown top-level key 'entries'"),
        ("- 1\n", r"the top level must be a mapping"),
        ("version: 2\ncodes: []\n", r"unsupported version 2"),
        ("codes:\n  - 42\n", r"entry 0, line 2: an entry must be a mapping"),
        (
            _entry(id="HAI-SYS-000", category="DATA_ERROR", subcategory="STALE_INPUT"),
            r"HAI-SYS-000 is the fallback of SYSTEM_ERROR",
        ),
    ],
)
def test_bad_file_fails_naming_file_entry_and_problem(
    tmp_path: Path, text: str, expected: str
) -> None:
    """Every kind of mistake raises RegistryError naming the file and problem."""
    path = _write(tmp_path, "bad.yaml", text)

    with pytest.raises(RegistryError) as caught:
        Registry.load([path], use_env=False)

    assert str(path) in str(caught.value)
    assert re.search(expected, str(caught.value)), str(caught.value)


def test_missing_file_fails_naming_the_file(tmp_path: Path) -> None:
    """A path that does not exist fails at load time with its name."""
    path = tmp_path / "absent.yaml"

    with pytest.raises(RegistryError, match=r"absent\.yaml: cannot read"):
        Registry.load([path], use_env=False)


def test_bad_environment_file_fails_at_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A broken file named by the environment variable fails loudly too."""
    path = _write(tmp_path, "env.yaml", _entry(severity="urgent"))
    monkeypatch.setenv(ENV_VAR, str(path))

    with pytest.raises(RegistryError, match=r"env\.yaml"):
        Registry.load()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (401, "401"),
        (True, "true"),
        ("x", "x"),
        (None, None),
        (1.5, "1.5"),
        (("a", 2, False), ("a", "2", "false")),
    ],
)
def test_attribute_text_gives_the_text_predicates_see(
    value: object, expected: object
) -> None:
    """Predicates compare numbers and booleans by their text form."""
    result = attribute_text(value)

    assert expected == result


@pytest.mark.parametrize(
    ("predicate", "text", "expected"),
    [
        (AttributePredicate("k", equals="401"), "401", True),
        (AttributePredicate("k", equals="401"), "403", False),
        (AttributePredicate("k", equals="b"), ("a", "b"), True),
        (AttributePredicate("k", regex=re.compile("^5")), "503", True),
        (AttributePredicate("k", regex=re.compile("^5")), None, False),
        (AttributePredicate("k", exists=True), None, False),
        (AttributePredicate("k", exists=False), None, True),
        (AttributePredicate("k", exists=False), "", False),
    ],
)
def test_attribute_predicate_matches_text(
    predicate: AttributePredicate, text: str | tuple[str, ...] | None, expected: bool
) -> None:
    """Each predicate kind holds exactly when its documented condition does."""
    result = predicate.matches_text(text)

    assert expected == result
