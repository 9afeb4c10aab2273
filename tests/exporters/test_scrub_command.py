"""Tests for ``healthai-telemetry scrub``.

Most tests call the command line's ``main`` in-process on byte streams; the
streaming and memory tests run the command as a real process on real pipes.
"""

from __future__ import annotations

import io
import json
import os
import selectors
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from exporters.cli import main
from otel_processors.scrubber import PATTERNS_ENV

# Runs only the scrub command: importing every command would cost seconds.
_COMMAND = """
import argparse, sys
from exporters.commands import scrub
parser = argparse.ArgumentParser()
scrub.register(parser.add_subparsers())
args = parser.parse_args(["scrub", *sys.argv[1:]])
status = args.func(args)
sys.stdout.flush()
import resource
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
sys.exit(status)
"""


@dataclass
class _Result:
    """What the command returned and wrote."""

    returncode: int
    stdout: bytes
    stderr: bytes


Runner = Callable[..., _Result]


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Runner:
    """Return a function running the command on bytes, as the CLI would."""
    monkeypatch.delenv(PATTERNS_ENV, raising=False)

    def run_command(
        args: list[str], stdin: bytes, env: dict[str, str] | None = None
    ) -> _Result:
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        out = io.BytesIO()
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
        monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(out))
        status = main(["scrub", *args])
        sys.stdout.flush()
        return _Result(status, out.getvalue(), capsys.readouterr().err.encode())

    return run_command


def test_text_is_scrubbed_line_by_line_and_other_bytes_pass_through(
    run: Runner,
) -> None:
    """PHI is replaced; clean lines, invalid UTF-8 and a last unterminated line stay."""
    stdin = (
        b"2026-12-03T18:48:31Z INFO served in 12 ms\n"
        b"ERROR no chart for patient John Smith, SSN 123-45-6789\n"
        b"caf\xe9 \xff\xfe raw bytes\n"
        b"callback 555-123-4567"
    )
    expected = (
        b"2026-12-03T18:48:31Z INFO served in 12 ms\n"
        b"ERROR no chart for patient [REDACTED:NAME], SSN [REDACTED:SSN]\n"
        b"caf\xe9 \xff\xfe raw bytes\n"
        b"callback [REDACTED:PHONE]"
    )

    result = run([], stdin)

    assert (0, expected) == (result.returncode, result.stdout)


def test_stats_report_counts_by_kind_on_stderr(run: Runner) -> None:
    """--stats writes the line count and replacements by kind to stderr only."""
    stdin = b"SSN 123-45-6789\nmail a@example.org b@example.org\nclean\n"

    expected = (
        "healthai-telemetry scrub: 3 lines, 3 replacements\n"
        "  EMAIL        2\n"
        "  SSN          1\n"
    )

    result = run(["--stats"], stdin)

    assert expected == result.stderr.decode()


def test_json_lines_are_scrubbed_by_key_and_value_and_stay_json(run: Runner) -> None:
    """Each JSON line is scrubbed structurally and written back as valid JSON."""
    event = {
        "level": "error",
        "patient_name": "Ann Lee",
        "member_id": 998877,
        "msg": "call 555-123-4567",
        "attributes": {"code.lineno": 123, "dob": "1962-03-14"},
    }
    stdin = (json.dumps(event) + "\n").encode()
    expected = {
        "level": "error",
        "patient_name": "[REDACTED:NAME]",
        "member_id": "[REDACTED:ACCOUNT]",
        "msg": "call [REDACTED:PHONE]",
        "attributes": {"code.lineno": 123, "dob": "[REDACTED:DOB]"},
    }

    result = run(["--json-lines"], stdin)

    assert expected == json.loads(result.stdout)


def test_invalid_json_line_is_reported_and_still_emitted_scrubbed(run: Runner) -> None:
    """A line that is not JSON is named on stderr and written scrubbed as text."""
    stdin = b'{"ok": true}\nnot json for SSN 123-45-6789\n\n{"ssn": "123456789"}\n'
    expected = (
        b'{"ok": true}\nnot json for SSN [REDACTED:SSN]\n\n{"ssn": "[REDACTED:SSN]"}\n'
    )

    result = run(["--json-lines"], stdin)

    assert (0, expected) == (result.returncode, result.stdout)
    assert "line 2: invalid JSON (Expecting value at column 1)" in (
        result.stderr.decode()
    )


def test_json_line_that_cannot_be_written_back_as_read_is_scrubbed_as_text(
    run: Runner,
) -> None:
    """Repeated keys and out-of-range numbers are not rewritten into other data."""
    stdin = b'{"a": 1, "a": "SSN 123-45-6789"}\n{"v": 1e999}\n'
    expected = b'{"a": 1, "a": "SSN [REDACTED:SSN]"}\n{"v": 1e999}\n'

    result = run(["--json-lines"], stdin)

    assert (0, expected) == (result.returncode, result.stdout)
    stderr = result.stderr.decode()
    assert "line 1: invalid JSON (key 'a' repeated)" in stderr
    assert "line 2: invalid JSON (number 1e999 out of range)" in stderr


def test_line_longer_than_a_piece_is_cut_where_no_identifier_is_split(
    run: Runner,
) -> None:
    """An identifier at the 1 MiB mark of one long line is still found."""
    # The SSN straddles the first 1 MiB boundary, where a blind cut would fall.
    filler = b"a " * (512 * 1024 - 3)
    stdin = filler + b"SSN 123-45-6789 and patient John Smith\n"

    result = run(["--stats"], stdin)

    assert filler + b"SSN [REDACTED:SSN] and patient [REDACTED:NAME]\n" == (
        result.stdout
    )
    assert "scrub: 1 lines, 2 replacements" in result.stderr.decode()


def test_patterns_file_adds_kinds_and_keys(tmp_path: Path, run: Runner) -> None:
    """--patterns loads the same YAML as the environment variable."""
    path = tmp_path / "scrub.yaml"
    path.write_text("patterns:\n  BED: 'bed \\d{3}[A-Z]'\n", encoding="utf-8")

    result = run(["--patterns", str(path)], b"moved to bed 412B\n")

    assert b"moved to [REDACTED:BED]\n" == result.stdout


def test_patterns_file_from_the_environment_is_used(
    tmp_path: Path, run: Runner
) -> None:
    """Without --patterns, HEALTHAI_SCRUB_PATTERNS configures the command."""
    path = tmp_path / "scrub.yaml"
    path.write_text("redact_keys: [ward]\n", encoding="utf-8")

    result = run([], b"ward=B4\n", env={PATTERNS_ENV: str(path)})

    assert b"ward=[REDACTED:KEY]\n" == result.stdout


def test_bad_patterns_file_exits_2_naming_the_file(tmp_path: Path, run: Runner) -> None:
    """A broken configuration is a user error: exit status 2 and the file named."""
    path = tmp_path / "scrub.yaml"
    path.write_text("patterns: {BED: 'bed ('}\n", encoding="utf-8")

    outcome = run(["--patterns", str(path)], b"x\n")
    message = outcome.stderr.decode()

    result = (outcome.returncode, str(path) in message, "pattern BED" in message)

    assert (2, True, True) == result


def test_lines_come_out_before_input_ends() -> None:
    """The command streams: a line is written while stdin is still open."""
    process = subprocess.Popen(
        [sys.executable, "-c", _COMMAND],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={k: v for k, v in os.environ.items() if k != PATTERNS_ENV},
    )
    assert process.stdin is not None
    assert process.stdout is not None
    try:
        process.stdin.write(b"SSN 123-45-6789\n")
        process.stdin.flush()
        selector = selectors.DefaultSelector()
        selector.register(process.stdout, selectors.EVENT_READ)
        ready = selector.select(timeout=30)

        result = process.stdout.readline() if ready else b""
    finally:
        process.stdin.close()
        process.wait(timeout=30)

    assert b"SSN [REDACTED:SSN]\n" == result


def _peak_rss_kib(megabytes: int) -> int:
    """Stream ``megabytes`` of log lines through the command; return its peak RSS.

    One line in fifty carries an SSN; every one must come out redacted.
    """
    clean = b"2026-12-03T18:48:31Z INFO scorer latency_ms=12 status=200\n"
    dirty = b"2026-12-03T18:48:31Z ERROR no chart for SSN 123-45-6789\n"
    block = clean * 49 + dirty
    blocks = megabytes * 1024 * 1024 // len(block)
    process = subprocess.Popen(
        [sys.executable, "-c", _COMMAND],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={k: v for k, v in os.environ.items() if k != PATTERNS_ENV},
    )
    assert process.stdin is not None
    assert process.stdout is not None

    def feed() -> None:
        assert process.stdin is not None
        for _ in range(blocks):
            process.stdin.write(block)
        process.stdin.close()

    writer = threading.Thread(target=feed)
    writer.start()
    marker = b"[REDACTED:SSN]"
    written, tail = 0, b""
    while chunk := process.stdout.read(1 << 16):
        # A marker may straddle two reads: keep a shorter tail for the next.
        text = tail + chunk
        written += text.count(marker)
        tail = text[-(len(marker) - 1) :]
    writer.join()
    assert process.stderr is not None
    stderr = process.stderr.read()
    process.wait(timeout=60)
    assert blocks == written
    return int(stderr.decode().split()[-1])


@pytest.mark.slow
def test_memory_stays_flat_however_long_the_input() -> None:
    """Sixteen times more input costs no more than a few MiB of extra memory."""
    small = _peak_rss_kib(1)
    large = _peak_rss_kib(16)

    result = large - small

    assert result < 6 * 1024
