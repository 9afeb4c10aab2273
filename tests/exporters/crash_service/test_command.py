"""Tests for the ``healthai-telemetry crash-service`` command."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from exporters.cli import main
from tests.exporters.crash_service.otlp_builders import (
    TOKEN,
    exception_attributes,
    log_record,
    logs_request,
)


def test_missing_auth_choice_is_a_usage_error(tmp_path: Path) -> None:
    """Neither --token-file nor --no-auth stops the command before it starts."""
    with pytest.raises(SystemExit) as caught:
        main(["crash-service", "--db", str(tmp_path / "c.db")])

    expected = 2
    assert expected == caught.value.code


@pytest.mark.parametrize(
    ("token_text", "message"),
    [(None, "cannot be read"), ("\n", "is empty"), ("short", "at least 16")],
    ids=["missing-file", "empty-file", "short-token"],
)
def test_bad_token_file_fails_with_its_name(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    token_text: str | None,
    message: str,
) -> None:
    """A token file that is missing, empty or too short fails naming the problem."""
    token_file = tmp_path / "token"
    if token_text is not None:
        token_file.write_text(token_text, encoding="utf-8")

    status = main(
        [
            "crash-service",
            "--db",
            str(tmp_path / "c.db"),
            "--token-file",
            str(token_file),
        ]
    )

    expected = 2
    assert expected == status
    assert message in capsys.readouterr().err


def test_command_serves_until_terminated(tmp_path: Path) -> None:
    """The command listens on loopback, stores crashes and exits 0 on SIGTERM."""
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n", encoding="utf-8")
    command = [
        sys.executable,
        "-m",
        "exporters.cli",
        "crash-service",
        "--port",
        "0",
        "--db",
        str(tmp_path / "crashes.db"),
        "--token-file",
        str(token_file),
    ]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        banner = process.stderr.readline()
        match = re.search(r"http://127\.0\.0\.1:\d+", banner)
        assert match is not None, banner
        url = match.group(0)
        body = logs_request([log_record(exception_attributes())]).SerializeToString()

        posted = requests.post(
            f"{url}/v1/logs",
            data=body,
            headers={
                "Content-Type": "application/x-protobuf",
                "Authorization": f"Bearer {TOKEN}",
            },
            timeout=5,
        )
        listed = requests.get(
            f"{url}/api/groups", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5
        )
    finally:
        process.send_signal(signal.SIGTERM)
        status = process.wait(timeout=20)

    expected = (200, 1, 0)
    assert expected == (posted.status_code, len(listed.json()["groups"]), status)
