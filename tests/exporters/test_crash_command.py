"""The ``healthai-telemetry crash fingerprint`` command."""

from __future__ import annotations

import io
import json
import traceback

import pytest

from exporters.cli import main
from otel_processors.crash import fingerprint_exception


def _failing_lookup(patient_id: int) -> object:
    records: dict[int, object] = {}
    return records[patient_id]


def _raised() -> BaseException:
    try:
        _failing_lookup(4711)
    except KeyError as exc:
        return exc
    msg = "no exception"
    raise AssertionError(msg)


def _run(
    argv: list[str], stdin: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    status = main(argv)
    return status, out.getvalue()


def test_json_output_matches_the_in_process_fingerprint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The command prints the same fingerprint the crash hooks compute."""
    exc = _raised()
    text = "".join(traceback.format_exception(exc))

    status, out = _run(["crash", "fingerprint", "--json"], text, monkeypatch)

    document = json.loads(out)
    result = (
        status,
        document["fingerprint"],
        document["version"],
        document["basis"],
        [frame["function"] for frame in document["frames"] if frame["in_app"]],
    )
    expected = (
        0,
        fingerprint_exception(exc).value,
        1,
        "frames",
        ["_raised", "_failing_lookup"],
    )
    assert expected == result


def test_log_prefixed_traceback_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """A traceback with a timestamped prefix on each line gives the same value."""
    exc = _raised()
    lines = "".join(traceback.format_exception(exc)).splitlines()
    logged = "\n".join(
        f"2026-12-03T10:00:{i:02d}Z ERROR api | {line}" for i, line in enumerate(lines)
    )

    _, out = _run(["crash", "fingerprint", "--json"], logged, monkeypatch)

    result = json.loads(out)["fingerprint"]
    expected = fingerprint_exception(exc).value
    assert expected == result


@pytest.mark.parametrize(("options", "mark"), [([], "*"), (["--in-app", "json"], " ")])
def test_text_output_marks_in_app_frames(
    monkeypatch: pytest.MonkeyPatch, options: list[str], mark: str
) -> None:
    """The text output names the fingerprint and marks in-app frames with *."""
    text = "".join(traceback.format_exception(_raised()))

    status, out = _run(["crash", "fingerprint", *options], text, monkeypatch)

    result = (
        status,
        out.splitlines()[0].startswith("fingerprint: "),
        [line[2] for line in out.splitlines() if "._failing_lookup" in line],
    )
    expected = (0, True, [mark])
    assert expected == result


def test_stdin_without_traceback_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Text without a traceback exits 2 and says what was expected."""
    monkeypatch.setattr("sys.stdin", io.StringIO("GET /health 200\n"))

    status = main(["crash", "fingerprint"])

    result = (status, "holds no Python traceback" in capsys.readouterr().err)
    expected = (2, True)
    assert expected == result
