"""The ``healthai-telemetry crash fingerprint`` command."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
import traceback
from pathlib import Path

import pytest

from exporters.cli import main
from otel_processors.crash import fingerprint_exception
from otel_processors.crash.fingerprint import FINGERPRINT_VERSION

# Crashes an application package kept outside this checkout and prints the
# traceback and the fingerprints the crash hooks would write.
_SERVICE_SCRIPT = textwrap.dedent(
    """
    import json, sys, traceback
    sys.path.insert(0, sys.argv[1])
    from readmit import score
    from otel_processors.crash.fingerprint import InAppPolicy, fingerprint_exception
    try:
        score.predict(3)
    except KeyError as exc:
        print(json.dumps({
            "text": "".join(traceback.format_exception(exc)),
            "default": fingerprint_exception(exc).value,
            "readmit": fingerprint_exception(
                exc, in_app=InAppPolicy(include=["readmit"])
            ).value,
        }))
    """
)


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
        FINGERPRINT_VERSION,
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


def _crash_elsewhere(tmp_path: Path) -> dict[str, str]:
    app = tmp_path / "srv" / "app"
    (app / "readmit").mkdir(parents=True)
    (app / "readmit" / "__init__.py").write_text("")
    (app / "readmit" / "score.py").write_text(
        "def predict(patient):\n    return {}[patient]\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", _SERVICE_SCRIPT, str(app)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    crash: dict[str, str] = json.loads(completed.stdout)
    crash["app"] = str(app)
    return crash


def _cli_fingerprint(text: str, options: list[str], cwd: Path) -> str:
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from exporters.cli import main; sys.exit(main())",
            "crash",
            "fingerprint",
            "--json",
            *options,
        ],
        input=text,
        capture_output=True,
        text=True,
        check=True,
        cwd=cwd,
        timeout=60,
    )
    value: str = json.loads(completed.stdout)["fingerprint"]
    return value


@pytest.mark.parametrize(
    ("policy", "options"),
    [("default", ["--app-root", "{app}"]), ("readmit", ["--in-app", "readmit"])],
)
def test_command_elsewhere_agrees_with_the_crashed_process(
    tmp_path: Path, policy: str, options: list[str]
) -> None:
    """From another directory, with the roots or prefixes given, the values agree."""
    crash = _crash_elsewhere(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    result = _cli_fingerprint(
        crash["text"],
        [option.format(app=crash["app"]) for option in options],
        elsewhere,
    )

    expected = crash[policy]
    assert expected == result
