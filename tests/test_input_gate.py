"""The image-level input gate: what is not a chest radiograph is refused whatever its header says; real chest
radiographs unlike the synthetic training images are analysed and marked outside the validated domain."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pydicom
import pytest
from click.testing import CliRunner
from fhir.resources.R4B.bundle import Bundle
from pydicom.data import get_testdata_file

from clinical_mm.cli import cli
from clinical_mm.synth.relabel import TURNS, grey_pixels, relabelled_chest_radiograph, turned
from clinical_mm.synth.study_synthesizer import SynthStudy

#: pydicom's test images that are not chest radiographs: what each is
NOT_CHEST = {
    "CT_small.dcm": "CT slice", "693_UNCI.dcm": "CT slice", "explicit_VR-UN.dcm": "CT slice",
    "MR2_UNCR.dcm": "MR slice", "MR_small.dcm": "MR slice", "emri_small.dcm": "MR, multi-frame",
    "US1_UNCR.dcm": "ultrasound frame (RGB)", "OBXXXX1A.dcm": "ultrasound frame (palette colour)",
    "RG3_UNCR.dcm": "radiograph of a limb", "JPEG2000_UNC.dcm": "nuclear medicine whole body",
}
REAL_CHEST = "RG1_UNCR.dcm"  # David Clunie's CR chest PA, MONOCHROME1


def _analyze(src: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, object]]:
    monkeypatch.setenv("CLINICAL_MM_KEY", "cd" * 32)
    monkeypatch.setenv("CLINICAL_MM_DATA_DIR", str(tmp_path / "data"))
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["analyze", str(src), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def _audit(tmp_path: Path) -> list[dict[str, str]]:
    db = sqlite3.connect(tmp_path / "data" / "audit.sqlite")
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute("SELECT * FROM audit WHERE action = 'analyze' ORDER BY id")]
    finally:
        db.close()


def _photographs() -> dict[str, np.ndarray]:
    from sklearn.datasets import load_sample_image  # two photographs shipped with scikit-learn

    return {name: load_sample_image(name).astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
            for name in ("china.jpg", "flower.jpg")}


@pytest.fixture(scope="module")
def hostile(synth_dir: tuple[Path, list[SynthStudy]], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A folder of images relabelled CR / CHEST / PA with a synthetic patient's fake PHI: file name -> what it is."""
    src, studies = synth_dir
    patient = pydicom.dcmread(src / studies[0].path)
    root = tmp_path_factory.mktemp("hostile")
    what = {}
    for name, kind in NOT_CHEST.items():
        pixels = grey_pixels(pydicom.dcmread(str(get_testdata_file(name, download=False))))
        relabelled_chest_radiograph(pixels, patient).save_as(root / f"{name}.dcm", enforce_file_format=True)
        what[f"{name}.dcm"] = kind
    for name, pixels in _photographs().items():
        relabelled_chest_radiograph(pixels, patient).save_as(root / f"photo-{name}.dcm", enforce_file_format=True)
        what[f"photo-{name}.dcm"] = "photograph"
    films = {"synthetic": grey_pixels(pydicom.dcmread(src / studies[1].path)),
             "real": grey_pixels(pydicom.dcmread(str(get_testdata_file(REAL_CHEST, download=False))))}
    for film, pixels in films.items():
        for turn in TURNS:
            name = f"{film}-{turn.replace(' ', '-')}.dcm"
            relabelled_chest_radiograph(turned(pixels, turn), patient).save_as(root / name, enforce_file_format=True)
            what[name] = f"{film} chest radiograph, {turn}"
    return root, what


def test_when_an_image_is_no_chest_radiograph_whatever_its_header_then_it_is_refused_with_a_reason(
    hostile: tuple[Path, dict[str, str]], synth_dir: tuple[Path, list[SynthStudy]], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root, what = hostile
    lines = _analyze(root, tmp_path, monkeypatch)
    by_source = {str(line["source"]): line for line in lines}
    assert set(by_source) == set(what)
    accepted = {what[s]: line.get("priority") for s, line in by_source.items() if "error" not in line}
    assert not accepted, f"analysed although not a chest radiograph: {accepted}"
    for line in lines:
        assert "not a frontal chest radiograph by its pixels" in str(line["error"])
    # the reasons and the audit log name no PHI of the relabelled patient
    _, studies = synth_dir
    text = (tmp_path / "out" / "results.jsonl").read_text()
    for value in studies[0].phi.values():
        assert value not in text
    records = _audit(tmp_path)
    assert sum(r["outcome"] == "refused" for r in records) == len(what)
    for value in studies[0].phi.values():
        assert value not in json.dumps(records)


def test_when_synthetic_and_real_chest_radiographs_are_analysed_then_only_the_real_one_is_outside_the_domain(
    synth_dir: tuple[Path, list[SynthStudy]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    src, studies = synth_dir
    root = tmp_path / "in"
    shutil.copytree(src / "studies", root / "studies")
    shutil.copyfile(str(get_testdata_file(REAL_CHEST, download=False)), root / REAL_CHEST)
    lines = _analyze(root, tmp_path, monkeypatch)
    by_source = {str(line["source"]): line for line in lines}
    for s in studies:
        line = by_source[s.path]
        assert "error" not in line, line
        assert line["ood"]["in_domain"] is True and line["ood"]["score"] <= line["ood"]["threshold"]  # type: ignore[index,operator]
    real = by_source[REAL_CHEST]
    assert "error" not in real, real  # analysed: a chest radiograph, however unlike the training images
    ood = real["ood"]
    assert ood["in_domain"] is False and ood["score"] > ood["threshold"]  # type: ignore[index,operator]
    bundle = json.loads((tmp_path / "out" / str(real["fhir"])).read_text())
    Bundle.model_validate(bundle)
    report = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "DiagnosticReport")
    gate = next(x for x in report["extension"] if x["url"] == "urn:clinical-mm:input-gate")
    assert {"url": "in-validated-domain", "valueBoolean": False} in gate["extension"]
    assert "outside the domain the model was validated on" in report["presentedForm"][0]["title"]
    details = [r["detail"] for r in _audit(tmp_path) if r["outcome"] == "analyzed"]
    assert sum("outside the validated domain" in d for d in details) == 1 and len(details) == len(studies) + 1


def test_when_the_preferred_frontal_image_is_refused_then_the_next_one_is_analysed(
    synth_dir: tuple[Path, list[SynthStudy]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A PA film stored rotated and an AP film of the same study: the gate refuses the PA (preferred by the scope
    check), the AP is analysed, and the result names the image it analysed."""
    src, studies = synth_dir
    good = pydicom.dcmread(src / studies[1].path)
    good.ViewPosition = "AP"
    rotated = relabelled_chest_radiograph(turned(grey_pixels(good), "rotated 90"), good)
    rotated.StudyInstanceUID, rotated.ViewPosition = good.StudyInstanceUID, "PA"
    root = tmp_path / "in"
    root.mkdir()
    good.save_as(root / "ap.dcm", enforce_file_format=True)
    rotated.save_as(root / "pa-rotated.dcm", enforce_file_format=True)
    lines = {str(line["source"]): line for line in _analyze(root, tmp_path, monkeypatch)}
    assert set(lines) == {"ap.dcm", "pa-rotated.dcm"}
    assert "not a frontal chest radiograph by its pixels" in str(lines["pa-rotated.dcm"]["error"])
    analysed = lines["ap.dcm"]
    assert "error" not in analysed and analysed["ood"]["in_domain"] is True  # type: ignore[index]
    assert str(analysed["image"]).startswith("2.25.") and analysed["image"] != str(good.SOPInstanceUID)
    outcomes = [r["outcome"] for r in _audit(tmp_path)]
    assert outcomes == ["refused", "analyzed"]


def test_when_the_gate_file_is_tampered_then_the_model_folder_is_refused(model_path: Path, tmp_path: Path) -> None:
    from clinical_mm.core.errors import CheckpointError
    from clinical_mm.model.checkpoint import load_input_gate, load_model

    folder = tmp_path / "model"
    shutil.copytree(model_path, folder)
    gate_file = folder / json.loads((folder / "manifest.json").read_text())["input_gate"]["file"]
    data = bytearray(gate_file.read_bytes())
    data[-5] ^= 0xFF
    gate_file.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256"):
        load_input_gate(load_model(folder))
