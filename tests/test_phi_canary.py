"""Canary PHI planted in every identifying header must appear in no output: results, FHIR, audit log, logs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from support.canary import NEEDLES, plant_canaries

from clinical_mm.synth.study_synthesizer import StudySynthesizer


def test_when_canary_phi_is_planted_then_no_output_contains_it(tmp_path: Path) -> None:
    src = tmp_path / "in"
    studies = [StudySynthesizer(77).make_study(i, src) for i in range(2)]
    uids: list[str] = []
    for s in studies:
        uids += plant_canaries(src / s.path)
    out = tmp_path / "out"
    env = {**os.environ, "CLINICAL_MM_KEY": "cd" * 32, "CLINICAL_MM_DATA_DIR": str(tmp_path / "data"),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "clinical_mm.cli", "-v", "analyze", str(src), "--out", str(out)],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "analysed" in proc.stderr + proc.stdout
    haystacks = {
        "stdout+stderr": (proc.stdout + proc.stderr).encode(),
        "results.jsonl": (out / "results.jsonl").read_bytes(),
        "audit": (tmp_path / "data" / "audit.sqlite").read_bytes(),
    }
    for bundle in (out / "fhir").glob("*.json"):
        haystacks[bundle.name] = bundle.read_bytes()
    assert len(haystacks) == 3 + len(studies)
    needles = NEEDLES + uids
    for where, data in haystacks.items():
        for needle in needles:
            assert needle.encode() not in data, f"planted value found in {where}"
