"""The train and demo commands end to end (train with one epoch per stage on a handful of studies)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from clinical_mm.cli import cli
from clinical_mm.model.checkpoint import load_input_gate, load_model
from clinical_mm.model.training import native_bf16
from clinical_mm.synth.study_synthesizer import StudySynthesizer


@pytest.mark.slow
def test_when_training_quickly_then_model_folder_is_complete_and_rerun_resumes(tmp_path: Path) -> None:
    StudySynthesizer(8).write(10, tmp_path / "train", progress=False, workers=1)
    StudySynthesizer(9).write(6, tmp_path / "val", progress=False, workers=1)
    args = ["train", "--manifest", str(tmp_path / "train" / "manifest.csv"), "--val-manifest",
            str(tmp_path / "val" / "manifest.csv"), "--work", str(tmp_path / "work"), "--out",
            str(tmp_path / "model"), "--quick", "--no-progress"]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    for stage in ("lm_text", "vision", "stage1", "stage2", "answers"):
        assert f"{stage}: epoch 1/1" in first.output
    manifest = json.loads((tmp_path / "model" / "manifest.json").read_text())
    assert manifest["training_command"].startswith("clinical-mm train --manifest")
    assert set(manifest["calibration"]["temperature"]) == set(manifest["config"]["heads"]["flags"])
    assert "mean_auroc" in manifest["validation"] and manifest["weights"]["dtype"] == "float16"
    assert manifest["config"]["heads"]["detail"] and manifest["config"]["heads"]["reading_tokens"] is True
    # bfloat16 autocast only where the CPU has it natively (emulated, it is ~100x slower than float32)
    assert manifest["training"]["plan"]["bf16"] is native_bf16()
    loaded = load_model(tmp_path / "model")
    assert loaded.sha256 == manifest["weights"]["sha256"]
    gate = load_input_gate(loaded)  # the input gate is fitted with the model, hashed in its manifest
    assert gate is not None and manifest["input_gate"]["threshold"] > 0
    assert manifest["input_gate"]["validation"]["images"] == 6
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0, again.output
    assert "vision: already done, loaded" in again.output and "answers: already done, loaded" in again.output


@pytest.mark.slow
def test_when_demo_runs_then_table_shows_analysed_and_refused_studies(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    for var in ("CLINICAL_MM_KEY", "CLINICAL_MM_KEY_FILE", "CLINICAL_MM_DATA_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CLINICAL_MM_MODE", "demo")
    result = CliRunner().invoke(cli, ["demo", "--out", str(tmp_path / "demo"), "--n", "2"])
    assert result.exit_code == 0, result.output
    assert "REFUSED" in result.output and "modality CT" in result.output and "not a DICOM" in result.output
    lines = (tmp_path / "demo" / "results.jsonl").read_text().splitlines()
    assert len(lines) == 4 and sum("error" not in json.loads(x) for x in lines) == 2
    assert (tmp_path / "demo" / "data" / "audit.sqlite").is_file()
