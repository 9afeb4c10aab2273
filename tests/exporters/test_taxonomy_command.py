"""Tests for the ``healthai-telemetry taxonomy`` command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from exporters.cli import main
from otel_processors.registry import ENV_VAR, Registry
from otel_processors.taxonomy import SUBCATEGORIES, Category

_GOOD = """\
codes:
  - id: ACME-DATA-014
    category: DATA_ERROR
    subcategory: OUT_OF_RANGE
    severity: warning
    description: Creatinine above any plausible value.
    remediation: Check the lab interface's unit mapping.
    rules:
      - type: acme.labs.LabRangeError
      - type: ValueError
        message: creatinine
        attributes:
          lab.loinc: "2160-0"
"""

_BAD = """\
codes:
  - id: ACME-DATA-015
    category: DATA_ERROR
    subcategory: TIMEOUT
    severity: warning
"""


@pytest.fixture(autouse=True)
def _no_environment_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)


def _file(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(["taxonomy", *argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_list_shows_every_builtin_code(capsys: pytest.CaptureFixture[str]) -> None:
    """``list`` prints one table row per built-in code, after a header."""
    status, out, _ = _run(capsys, "list")

    rows = out.splitlines()
    result = (status, rows[0].split()[:3], sorted(row.split()[0] for row in rows[1:]))

    expected = (0, ["ID", "SUBCATEGORY", "SEVERITY"], sorted(Registry.builtin().codes))
    assert expected == result


def test_list_filters_by_category_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    """``--category`` keeps one category; ``--json`` gives parseable output."""
    status, out, _ = _run(capsys, "list", "--category", "model_error", "--json")

    result = (status, {entry["category"] for entry in json.loads(out)})

    assert (0, {"MODEL_ERROR"}) == result


def test_list_includes_user_codes_with_their_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--registry`` adds a file's codes, shown with the file as source."""
    path = _file(tmp_path, "acme.yaml", _GOOD)

    status, out, _ = _run(capsys, "list", "--registry", path, "--json")

    result = [entry for entry in json.loads(out) if entry["id"] == "ACME-DATA-014"]
    expected = (0, path, 2)
    assert expected == (status, result[0]["source"], len(result[0]["rules"]))


def test_list_with_unknown_category_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An unknown category is refused by the parser (exit 2)."""
    with pytest.raises(SystemExit) as caught:
        _run(capsys, "list", "--category", "LAB_ERROR")

    assert 2 == caught.value.code


def test_validate_accepts_good_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Valid files give exit 0 and an ``ok`` line each."""
    path = _file(tmp_path, "acme.yaml", _GOOD)

    result = _run(capsys, "validate", path)

    assert (0, f"ok: {path} (1 codes)\n", "") == result


def test_validate_reports_each_bad_file_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Invalid files are named with their problem; the status is 2."""
    good = _file(tmp_path, "good.yaml", _GOOD)
    bad = _file(tmp_path, "bad.yaml", _BAD)

    status, out, err = _run(capsys, "validate", good, bad)

    assert (2, f"ok: {good} (1 codes)\n") == (status, out)
    assert (
        f"invalid: {bad}: entry 0, id 'ACME-DATA-015', line 2: subcategory "
        "'TIMEOUT' is not in category 'DATA_ERROR'"
    ) in err
    assert "1 of 2 registry files are invalid" in err


def test_explain_names_the_code_and_the_rule(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``explain`` prints the code, the rule that matched and the remediation."""
    status, out, _ = _run(
        capsys, "explain", "--type", "requests.exceptions.ConnectionError"
    )

    fields = dict(line.split(None, 1) for line in out.splitlines())
    result = (status, fields["code"], fields["fallback"], fields["why"])

    expected = (
        0,
        "HAI-SYS-101",
        "no",
        "HAI-SYS-101 (builtin) matched requests.exceptions.ConnectionError by the "
        "rule: type requests.exceptions.ConnectionError",
    )
    assert expected == result


def test_explain_uses_message_attributes_and_user_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Message, attributes and ``--registry`` all take part in the match."""
    path = _file(tmp_path, "acme.yaml", _GOOD)

    status, out, _ = _run(
        capsys,
        "explain",
        "--type",
        "ValueError",
        "--message",
        "creatinine 99 mg/dL",
        "--attribute",
        "lab.loinc=2160-0",
        "--registry",
        path,
        "--json",
    )

    result = json.loads(out)
    expected = (0, "ACME-DATA-014", False, "lab.loinc == '2160-0'")
    assert expected == (
        status,
        result["code"]["id"],
        result["fallback"],
        result["rule"].split(" and ")[-1],
    )


def test_explain_unmatched_error_shows_the_fallback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An error no rule matches is explained as the UNCLASSIFIED fallback."""
    status, out, _ = _run(capsys, "explain", "--type", "acme.Mystery")

    fields = dict(line.split(None, 1) for line in out.splitlines())

    expected = (0, "HAI-UNCL-000", "yes (no rule matched)")
    assert expected == (status, fields["code"], fields["fallback"])


def test_explain_flag_is_an_alias(capsys: pytest.CaptureFixture[str]) -> None:
    """``taxonomy --explain TYPE`` explains like ``taxonomy explain --type``."""
    alias = _run(capsys, "--explain", "MemoryError")
    full = _run(capsys, "explain", "--type", "MemoryError")

    assert full == alias


def test_explain_flag_takes_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    """``--explain TYPE --message M`` lets the message choose the code."""
    status, out, _ = _run(
        capsys, "--explain", "ValueError", "--message", "age 212 out of range", "--json"
    )

    result = (status, json.loads(out)["code"]["id"])

    expected = (0, "HAI-DATA-301")
    assert expected == result


def test_explain_rejects_malformed_attribute(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``--attribute`` without ``=`` is a user error (exit 2) that says why."""
    status, _, err = _run(capsys, "explain", "--type", "X", "--attribute", "novalue")

    assert 2 == status
    assert "--attribute expects KEY=VALUE, got 'novalue'" in err


def test_bad_registry_file_is_a_user_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A broken ``--registry`` file gives exit 2 naming the file."""
    path = _file(tmp_path, "bad.yaml", _BAD)

    status, _, err = _run(capsys, "list", "--registry", path)

    assert 2 == status
    assert f"{path}: entry 0" in err


def test_environment_files_are_read_unless_no_env(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Codes from HEALTHAI_ERROR_REGISTRY are listed; ``--no-env`` drops them."""
    monkeypatch.setenv(ENV_VAR, _file(tmp_path, "env.yaml", _GOOD))

    with_env = _run(capsys, "list", "--json")[1]
    without_env = _run(capsys, "list", "--json", "--no-env")[1]

    result = [
        "ACME-DATA-014" in {entry["id"] for entry in json.loads(out)}
        for out in (with_env, without_env)
    ]
    assert [True, False] == result


def test_categories_lists_every_subcategory_with_its_meaning(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``categories`` prints each category and subcategory with a description."""
    status, out, _ = _run(capsys, "categories")

    lines = out.splitlines()
    names = [line.split(":")[0].strip() for line in lines]
    undocumented = [line for line in lines if line.rstrip().endswith(":")]
    expected_names = [
        name
        for category in Category
        for name in (category.value, *(s.value for s in SUBCATEGORIES[category]))
    ]

    assert (0, expected_names, []) == (status, names, undocumented)
    assert "OUT_OF_RANGE: A value is physiologically or logically impossible" in out


def test_taxonomy_without_subcommand_is_a_user_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Bare ``taxonomy`` asks for a subcommand and exits 2."""
    status, _, err = _run(capsys)

    assert 2 == status
    assert "choose a subcommand" in err


def test_help_describes_the_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    """``--help`` names every subcommand."""
    with pytest.raises(SystemExit):
        main(["taxonomy", "--help"])

    out = capsys.readouterr().out
    result = [
        name for name in ("list", "validate", "explain", "categories") if name in out
    ]

    assert ["list", "validate", "explain", "categories"] == result
