"""Tests for ``healthai-telemetry drift``."""

from __future__ import annotations

import csv
import json
import socket
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from exporters.cli import main
from exporters.demo.model import PatientGenerator
from exporters.drift.reference import load_reference


def _write_csv(path: Path, shift: dict[str, float], seed: int, n: int = 1500) -> Path:
    columns = PatientGenerator(seed=seed, shift=shift).columns(n)
    columns["risk"] = np.random.default_rng(seed).uniform(0, 1, n)
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(columns)
        writer.writerows(
            zip(*(values.tolist() for values in columns.values()), strict=True)
        )
    return path


@pytest.fixture
def reference_file(tmp_path: Path) -> Path:
    """A reference built by ``drift baseline`` from demo patients."""
    data = _write_csv(tmp_path / "train.csv", {}, seed=1)
    output = tmp_path / "ref.json"
    status = main(
        [
            "drift", "baseline", "--data", str(data), "--model", "readmission",
            "--score-column", "risk", "--output", str(output),
        ]
    )  # fmt: skip
    assert 0 == status
    return output


def test_baseline_writes_a_reference_with_detected_categorical(
    reference_file: Path,
) -> None:
    """The disposition text column becomes categorical; the score is kept."""
    reference = load_reference(reference_file)

    result = (
        reference.features["discharge_disposition"].layout.kind,
        reference.score is not None,
        len(reference.features),
    )
    assert ("categorical", True, 8) == result


def test_baseline_reads_parquet(tmp_path: Path) -> None:
    """A Parquet training file gives a reference too."""
    data = tmp_path / "train.parquet"
    pq.write_table(pa.table(PatientGenerator(seed=2).columns(500)), data)
    output = tmp_path / "ref.json"

    status = main(
        [
            "drift",
            "baseline",
            "--data",
            str(data),
            "--model",
            "m",
            "--output",
            str(output),
        ]
    )

    result = (status, sorted(load_reference(output).features)[0])
    assert (0, "age_years") == result


def test_compare_json_flags_the_shifted_feature(
    reference_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Comparing shifted raw rows makes the shifted feature critical at once."""
    current = _write_csv(tmp_path / "now.csv", {"creatinine_mg_dl": 1.5}, seed=5)

    status = main(
        ["drift", "compare", "--reference", str(reference_file),
         "--current", str(current), "--json", "--fail-on", "critical"]
    )  # fmt: skip

    report = json.loads(capsys.readouterr().out)
    critical = sorted(
        name for name, f in report["features"].items() if f["level"] == "CRITICAL"
    )
    result = (status, critical, report["root_causes"][0]["feature"])
    assert (1, ["creatinine_mg_dl"], "creatinine_mg_dl") == result


def test_compare_table_shows_model_level(
    reference_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --json a table starts with the model's level."""
    current = _write_csv(tmp_path / "now.csv", {}, seed=6)

    status = main(
        [
            "drift",
            "compare",
            "--reference",
            str(reference_file),
            "--current",
            str(current),
        ]
    )

    result = (status, capsys.readouterr().out.splitlines()[0])
    assert (0, "model readmission: OK") == result


def _table_rows(text: str) -> dict[str, dict[str, str]]:
    """Rows of the table by feature, each a mapping of column to cell."""
    lines = text.splitlines()
    header = lines[1].split()
    rows = {}
    for line in lines[2:]:
        cells = line.split()
        if len(cells) < len(header) or cells[0].endswith(":"):
            continue
        rows[cells[0]] = dict(zip(header, cells, strict=False))
    return rows


def test_compare_table_rows_show_levels_missing_and_top_bins(
    reference_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each feature has a row with its level and missing cell; flagged ones name bins.

    Only the shifted feature is CRITICAL and gets a top-bins line.
    """
    current = _write_csv(tmp_path / "now.csv", {"creatinine_mg_dl": 1.5}, seed=5)

    main(["drift", "compare", "--reference", str(reference_file),
          "--current", str(current)])  # fmt: skip

    text = capsys.readouterr().out
    rows = _table_rows(text)
    flagged = [
        line.split(":")[0] for line in text.splitlines() if ": top bins " in line
    ]
    result = (
        len(rows),
        {name for name, row in rows.items() if row["level"] != "OK"},
        rows["creatinine_mg_dl"]["raw"],
        rows["age_years"]["n"],
        rows["age_years"]["missing"],
        flagged,
    )

    expected = (8, {"creatinine_mg_dl"}, "CRITICAL", "1500", "0", ["creatinine_mg_dl"])
    assert expected == result


def test_compare_importance_file_weights_the_root_causes(
    reference_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--importance reaches root cause: weights normalised to the largest one."""
    current = _write_csv(tmp_path / "now.csv", {"creatinine_mg_dl": 1.5}, seed=5)
    importance = tmp_path / "importance.yaml"
    importance.write_text("creatinine_mg_dl: 0.2\nage_years: 0.8\n", encoding="utf-8")

    main(["drift", "compare", "--reference", str(reference_file),
          "--current", str(current), "--json",
          "--importance", str(importance)])  # fmt: skip

    causes = json.loads(capsys.readouterr().out)["root_causes"]
    result = {c["feature"]: c["importance"] for c in causes if c["importance"]}

    expected = {"creatinine_mg_dl": 0.25, "age_years": 1.0}
    assert expected == result


def test_compare_importance_naming_an_unknown_feature_exits_2(
    reference_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An importance file naming no feature of the reference is a user error."""
    importance = tmp_path / "importance.json"
    importance.write_text('{"height_cm": 1.0}', encoding="utf-8")

    status = main(["drift", "compare", "--reference", str(reference_file),
                   "--current", str(reference_file),
                   "--importance", str(importance)])  # fmt: skip

    result = (status, capsys.readouterr().err)
    expected = (
        2,
        f"healthai-telemetry drift: error: {importance}: key 'height_cm' has value "
        "1.0: not a feature of the reference\n",
    )
    assert expected == result


def test_bad_reference_exits_2_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An invalid reference file is a user error: exit 2 and the file named."""
    broken = tmp_path / "ref.json"
    broken.write_text('{"format": "other"}', encoding="utf-8")

    status = main(
        ["drift", "compare", "--reference", str(broken), "--current", str(broken)]
    )

    result = (status, capsys.readouterr().err)
    assert (2, f"healthai-telemetry drift: error: {broken}: key 'format' has value "
            "'other': expected 'healthai-drift-reference'\n") == result  # fmt: skip


def test_serve_once_reports_unreachable_prometheus(
    reference_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``serve --once`` with Prometheus down prints the error counter, not a crash."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = tmp_path / "drift.yaml"
    config.write_text(
        f"defaults:\n  prometheus: http://127.0.0.1:{port}\n  retries: 0\n"
        f"models:\n  - reference: {reference_file.name}\n",
        encoding="utf-8",
    )

    status = main(["drift", "serve", "--config", str(config), "--once"])

    result = (status, capsys.readouterr().out)
    assert 0 == result[0]
    assert (
        'healthai_drift_evaluation_errors_total{model="readmission",'
        'reason="unavailable"} 1.0'
    ) in result[1]


def test_serve_with_bad_config_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A configuration error is reported with the file and key, exit status 2."""
    config = tmp_path / "drift.yaml"
    config.write_text("models: nope\n", encoding="utf-8")

    status = main(["drift", "serve", "--config", str(config)])

    result = (status, f"{config}: key 'models'" in capsys.readouterr().err)
    assert (2, True) == result
