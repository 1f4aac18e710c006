"""Shared fixtures: a small synthetic study set, keys, the shipped model."""

from __future__ import annotations

from pathlib import Path

import pytest

from clinical_mm.config import DEFAULT_MODEL_PATH, PseudonymKey
from clinical_mm.synth.study_synthesizer import StudySynthesizer, SynthStudy


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[SynthStudy]]:
    out = tmp_path_factory.mktemp("synth")
    studies = StudySynthesizer(44).write(6, out, progress=False, workers=1)
    return out, studies


@pytest.fixture()
def key() -> PseudonymKey:
    return PseudonymKey(bytes(range(32)))


@pytest.fixture(scope="session")
def model_path() -> Path:
    if not (DEFAULT_MODEL_PATH / "manifest.json").is_file():
        pytest.fail("the shipped model is missing from clinical_mm/weights/default")
    return DEFAULT_MODEL_PATH
