"""Grouping: one fingerprint per bug, whatever the values, lines and depths."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_processors.crash import (
    FINGERPRINT_VERSION,
    InAppPolicy,
    TracebackNotFoundError,
    fingerprint_exception,
    fingerprint_text,
    normalise_message,
    parse_traceback,
)

from . import sample_code


def _raised(call: Callable[[], object]) -> BaseException:
    try:
        call()
    except BaseException as exc:
        return exc
    msg = "the call did not raise"
    raise AssertionError(msg)


def _text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))


def test_same_bug_with_different_values_groups_together() -> None:
    """Different patient ids and payloads give the same fingerprint."""
    first = fingerprint_exception(_raised(partial(sample_code.lookup, 1)))
    second = fingerprint_exception(_raised(partial(sample_code.lookup, 987654)))

    result = first.value == second.value

    assert result is True


def test_different_recursion_depth_groups_together() -> None:
    """Recursive frames collapse, so the depth does not matter."""
    shallow = fingerprint_exception(_raised(partial(sample_code.recurse, 2, 5)))
    deep = fingerprint_exception(_raised(partial(sample_code.recurse, 40, 6)))

    result = (shallow.value == deep.value, len(deep.frames) == len(shallow.frames))

    expected = (True, True)

    assert expected == result


def test_shifted_line_numbers_group_together() -> None:
    """Blank lines added above the failing code do not change the fingerprint."""
    exc = _raised(partial(sample_code.lookup, 3))
    text = _text(exc)
    shifted = text.replace(", line ", ", line 1")

    result = fingerprint_text(shifted).value == fingerprint_exception(exc).value

    assert result is True


def test_different_call_paths_do_not_group() -> None:
    """The same failing function reached from two callers gives two groups."""
    handler = fingerprint_exception(_raised(partial(sample_code.via_handler, 1)))
    batch = fingerprint_exception(_raised(partial(sample_code.via_batch, 1)))

    result = handler.value != batch.value

    assert result is True


def test_chained_exception_types_count() -> None:
    """A wrapped exception differs from the bare one, and lists both types."""
    wrapped = fingerprint_exception(_raised(partial(sample_code.wrapped, 1)))
    bare = fingerprint_exception(_raised(partial(sample_code.lookup, 1)))

    result = (wrapped.value != bare.value, wrapped.exception_types)

    expected = (True, ("KeyError", "RuntimeError"))

    assert expected == result


@pytest.mark.parametrize(
    "call",
    [
        partial(sample_code.lookup, 1),
        partial(sample_code.recurse, 30, 1),
        partial(sample_code.wrapped, 2),
        partial(sample_code.load_record, 1, "{bad json"),
    ],
)
def test_text_and_exception_give_the_same_fingerprint(
    call: Callable[[], object],
) -> None:
    """``fingerprint_text(format_exception(exc))`` equals ``fingerprint_exception``."""
    exc = _raised(call)

    result = fingerprint_text(_text(exc))

    expected = fingerprint_exception(exc)

    assert expected == result


def test_context_cycle_does_not_hang() -> None:
    """An exception whose context chain loops is counted once per exception."""
    first = ValueError("a")
    second = KeyError("b")
    first.__context__ = second
    second.__context__ = first

    result = fingerprint_exception(first).exception_types

    expected = ("KeyError", "ValueError")

    assert expected == result


def test_message_counts_only_without_a_stack_and_normalised() -> None:
    """Unraised exceptions group by normalised message."""
    first = fingerprint_exception(ValueError("patient 12 missing at 2026-12-03"))
    second = fingerprint_exception(ValueError("patient 9871 missing at 2025-01-30"))
    other = fingerprint_exception(ValueError("model file missing"))

    result = (first.basis, first.value == second.value, first.value == other.value)

    expected = ("message", True, False)

    assert expected == result


def test_message_is_ignored_when_there_is_a_stack() -> None:
    """Two messages of one raise site give one fingerprint."""
    first = fingerprint_exception(_raised(partial(sample_code.wrapped, 1)))
    second = fingerprint_exception(_raised(partial(sample_code.wrapped, 2)))

    result = (first.basis, first.value == second.value)

    expected = ("frames", True)

    assert expected == result


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("patient 12345 not found", "patient <num> not found"),
        ("id 550e8400-e29b-41d4-a716-446655440000", "id <uuid>"),
        ("at 2026-12-03T10:15:00Z", "at <datetime>"),
        ("mail jane.doe@example.org", "mail <email>"),
        ("from 10.1.2.3:8080", "from <ip>"),
        ("open /var/lib/models/risk.onnx", "open <path>"),
        ("object at 0x7f3a2b1c", "object at <hex>"),
        ("sha 9f86d081884c7d659a2feaa0c55ad015", "sha <hash>"),
        ("key 'MRN-4711'", "key <quoted>"),
    ],
)
def test_normalise_message_replaces_variable_parts(message: str, expected: str) -> None:
    """Numbers, ids, dates, addresses, paths and quoted values become placeholders."""
    result = normalise_message(message)

    assert expected == result


def test_library_frames_are_not_in_app() -> None:
    """Frames of the standard library do not make the fingerprint."""
    exc = _raised(partial(sample_code.load_record, 1, "{bad"))

    result = {frame.module for frame in fingerprint_exception(exc).frames}

    assert {"sample_code", "test_fingerprint"} == {m.rsplit(".", 1)[-1] for m in result}


def test_in_app_prefixes_select_frames() -> None:
    """With include prefixes, only frames under them count."""
    exc = _raised(partial(sample_code.load_record, 1, "{bad"))
    policy = InAppPolicy(include=["json"])

    result = {
        frame.module for frame in fingerprint_exception(exc, in_app=policy).frames
    }

    expected = {"json", "json.decoder"}

    assert expected == result


def test_log_prefix_is_tolerated() -> None:
    """A timestamped log prefix on every line does not change the fingerprint."""
    exc = _raised(partial(sample_code.wrapped, 7))
    lines = _text(exc).splitlines()
    prefixed = "\n".join(
        f"2026-12-03 10:00:{index % 60:02d},123 ERROR scorer: {line}"
        for index, line in enumerate(lines)
    )

    result = fingerprint_text(prefixed)

    expected = fingerprint_exception(exc)

    assert expected == result


_FAULTHANDLER_TEXT = """\
Fatal Python error: Segmentation fault

Current thread 0x00007f5285c64b80 (most recent call first):
  File "/usr/lib/python3.11/ctypes/__init__.py", line 519 in string_at
  File "/srv/app/scorer/native.py", line 96 in score_batch
  File "/srv/app/scorer/main.py", line 12 in <module>

Extension modules: numpy.core._multiarray_umath (total: 1)
"""


def test_faulthandler_stack_is_parsed_oldest_first() -> None:
    """A faulthandler crash file gives SIGSEGV with its frames, oldest first."""
    result = [
        (parsed.type, [(f.function, f.lineno) for f in parsed.frames])
        for parsed in parse_traceback(_FAULTHANDLER_TEXT)
    ]

    expected = [
        ("SIGSEGV", [("<module>", 12), ("score_batch", 96), ("string_at", 519)])
    ]
    assert expected == result


def test_text_without_traceback_is_an_error() -> None:
    """Text holding no traceback raises TracebackNotFoundError."""
    with pytest.raises(TracebackNotFoundError):
        fingerprint_text("all requests served\nnothing to see")


def test_version_is_part_of_the_fingerprint() -> None:
    """The fingerprint carries the algorithm version."""
    result = fingerprint_exception(ValueError("x")).version

    expected = FINGERPRINT_VERSION

    assert expected == result


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=200))
def test_parse_traceback_never_raises_on_arbitrary_text(text: str) -> None:
    """Any text parses to a (possibly empty) chain without raising."""
    result = parse_traceback(text)

    assert isinstance(result, list)


def test_sample_code_file_exists() -> None:
    """The sample module is loaded from this directory (frames are in-app)."""
    result = Path(sample_code.__file__).parent

    expected = Path(__file__).parent

    assert expected == result


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=120))
def test_normalise_message_is_idempotent(message: str) -> None:
    """Normalising twice gives what normalising once gives."""
    once = normalise_message(message)

    result = normalise_message(once)

    assert once == result


def test_mutual_recursion_depth_groups_together() -> None:
    """Rounds of a two-function cycle collapse, so depths 10 and 37 group."""
    shallow = _raised(partial(sample_code.ping, 10, 1, sample_code.lookup))
    deep = _raised(partial(sample_code.ping, 37, 2, sample_code.lookup))

    result = (
        fingerprint_exception(shallow).value,
        fingerprint_text(_text(deep)).value,
        [frame.function for frame in fingerprint_exception(deep).frames][-4:],
    )

    expected = (
        fingerprint_exception(deep).value,
        fingerprint_exception(shallow).value,
        ["ping", "pong", "ping", "lookup"],
    )
    assert expected == result


def test_mutual_recursion_with_another_leaf_does_not_group() -> None:
    """The same cycle ending in a different call path gives another group."""
    direct = _raised(partial(sample_code.ping, 10, 1, sample_code.lookup))
    handled = _raised(partial(sample_code.ping, 10, 1, sample_code.via_handler))

    result = fingerprint_exception(direct).value != fingerprint_exception(handled).value

    assert result is True


def _load(path: Path, source: str) -> dict[str, Any]:
    """Write ``source`` to ``path`` and run it as a module loaded from there."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source)
    namespace: dict[str, Any] = {"__name__": path.stem}
    exec(compile(source, str(path), "exec"), namespace)
    return namespace


_TRIAGE_SOURCE = """\
def score(patient_id):
    weights = {}
    return weights[patient_id]
"""


def test_source_moved_down_the_file_groups_together(tmp_path: Path) -> None:
    """The same function 40 lines further down its file keeps its group."""
    first = _load(tmp_path / "v1" / "triage.py", _TRIAGE_SOURCE)
    moved = _load(tmp_path / "v2" / "triage.py", "\n" * 40 + _TRIAGE_SOURCE)
    before = fingerprint_exception(_raised(partial(first["score"], 1)))
    after = fingerprint_exception(_raised(partial(moved["score"], 2)))

    result = (after.value, [f.lineno for f in after.frames][-1])

    expected = (before.value, [f.lineno for f in before.frames][-1] + 40)
    assert expected == result


def test_reindented_source_groups_together(tmp_path: Path) -> None:
    """Indentation and runs of spaces inside the failing line do not count."""
    plain = _load(tmp_path / "v1" / "triage.py", _TRIAGE_SOURCE)
    reindented = _load(
        tmp_path / "v2" / "triage.py",
        "if True:\n"
        "        def score(patient_id):\n"
        "                weights = {}\n"
        "                return   weights[patient_id]\n",
    )

    result = fingerprint_exception(_raised(partial(reindented["score"], 2))).value

    expected = fingerprint_exception(_raised(partial(plain["score"], 1))).value
    assert expected == result


_VENDOR_SOURCE = """\
def apply(callback, value):
    return callback(value)
"""


def test_site_packages_frames_are_not_in_app(tmp_path: Path) -> None:
    """A library in site-packages neither makes the group nor shows as in-app."""
    site = tmp_path / "venv" / "lib" / "python3.12" / "site-packages"
    app = _load(tmp_path / "srv" / "triage.py", _TRIAGE_SOURCE)
    old = _load(site / "vendorlib" / "core.py", _VENDOR_SOURCE)
    new = _load(
        tmp_path
        / "venv2"
        / "lib"
        / "python3.12"
        / "site-packages"
        / "vendorlib"
        / "core.py",
        "import functools\n\n\ndef apply(callback, value):\n"
        "    return functools.partial(callback)(value)\n",
    )
    through_old = _raised(partial(old["apply"], app["score"], 1))
    through_new = _raised(partial(new["apply"], app["score"], 1))

    result = (
        fingerprint_exception(through_new).value,
        [(f.module, f.in_app) for f in fingerprint_exception(through_old).frames],
    )

    expected = (
        fingerprint_exception(through_old).value,
        [(_raised.__module__, True), ("triage", True)],
    )
    assert expected == result
