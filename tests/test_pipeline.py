"""End to end: analyze over synthetic studies, junk, real files from elsewhere and a DICOMDIR."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from fhir.resources.R4B.bundle import Bundle
from pydicom.data import get_testdata_file

from clinical_mm.cli import cli
from clinical_mm.core.findings import FINDINGS, PRIORITIES
from clinical_mm.synth.study_synthesizer import SynthStudy

RESULT_KEYS = {"source", "study", "flags", "thresholds", "raised", "priority", "findings", "impression", "fhir",
               "draft_check", "ood", "image"}


def _analyze(src: Path, out: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, object]]:
    monkeypatch.setenv("CLINICAL_MM_KEY", "ab" * 32)
    monkeypatch.setenv("CLINICAL_MM_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(cli, ["analyze", str(src), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def batch(synth_dir: tuple[Path, list[SynthStudy]], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[SynthStudy]]:
    src_dir, studies = synth_dir
    root = tmp_path_factory.mktemp("batch")
    shutil.copytree(src_dir / "studies", root / "studies")
    other = root / "other"
    other.mkdir()
    for name in ("CT_small.dcm", "MR_small.dcm", "US1_UNCR.dcm"):
        shutil.copyfile(str(get_testdata_file(name, download=False)), other / name)
    (other / "garbage.dcm").write_bytes(b"\x00" * 200)
    (other / "truncated.dcm").write_bytes((src_dir / studies[0].path).read_bytes()[:3000])
    return root, studies


def test_when_batch_is_mixed_then_every_study_gets_one_line_and_the_batch_goes_on(
    batch: tuple[Path, list[SynthStudy]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, studies = batch
    lines = _analyze(root, tmp_path / "out", tmp_path, monkeypatch)
    by_source = {line["source"]: line for line in lines}
    for s in studies:  # the manifest path form: the frontal image, relative to the analysed folder
        line = by_source[s.path]
        assert set(line) - {"regions"} == RESULT_KEYS  # regions: only where a flag is raised
        assert set(line.get("regions") or {}) == set(line["raised"])  # type: ignore[call-overload,arg-type]
        for region in dict(line.get("regions") or {}).values():  # type: ignore[call-overload]
            assert all(0 <= v <= 100 for box in region["boxes"] for v in box) and len(region["peak"]) == 2
        assert line["ood"]["in_domain"] is True  # type: ignore[index]
        assert set(line["flags"]) == set(FINDINGS)  # type: ignore[arg-type]
        assert all(0.0 <= p <= 1.0 for p in line["flags"].values())  # type: ignore[union-attr]
        assert line["priority"] in PRIORITIES and line["impression"]
        assert set(line["raised"]) <= set(FINDINGS)  # type: ignore[arg-type]
        check = line["draft_check"]  # the draft read back by the report labeler, disagreements listed
        assert set(check["stated"]) == set(FINDINGS)  # type: ignore[index]
        for flag in FINDINGS:
            stated = check["stated"][flag]  # type: ignore[index]
            assert stated in ("positive", "negative", "uncertain", "not_mentioned")
            expected = (flag in line["raised"] and stated in ("negative", "not_mentioned")) or (  # type: ignore[operator]
                flag not in line["raised"] and stated == "positive")  # type: ignore[operator]
            assert (flag in check["disagree"]) == expected  # type: ignore[index]
        bundle = json.loads((tmp_path / "out" / str(line["fhir"])).read_text())
        Bundle.model_validate(bundle)
        kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
        assert kinds.count("Observation") == len(FINDINGS) and "Provenance" in kinds and "DiagnosticReport" in kinds
        report = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "DiagnosticReport")
        assert report["status"] == "preliminary" and report["meta"]["security"][0]["code"] == "AIAST"
        assert report["imagingStudy"][0]["identifier"]["value"] == f"urn:oid:{line['study']}"
        for e in bundle["entry"]:  # a raised flag's Observation says where the model sees it
            obs = e["resource"]
            if obs["resourceType"] == "Observation":
                grid = [c["valueString"] for c in obs["component"] if "0-100 grid" in c["code"]["text"]]
                assert bool(grid) == (obs["code"]["coding"][0]["code"] in line["raised"])  # type: ignore[operator]
    errors = {src: line["error"] for src, line in by_source.items() if "error" in line}
    assert "modality CT" in errors["other/CT_small.dcm"]
    assert "modality MR" in errors["other/MR_small.dcm"]
    assert "modality US" in errors["other/US1_UNCR.dcm"]
    assert "not a DICOM" in errors["other/garbage.dcm"]
    assert "other/truncated.dcm" in errors
    assert len(lines) == len(studies) + 5


def test_when_real_chest_radiograph_from_elsewhere_then_processed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = Path(str(get_testdata_file("RG1_UNCR.dcm", download=False)))  # dclunie's CR chest PA, MONOCHROME1
    lines = _analyze(real, tmp_path / "out", tmp_path, monkeypatch)
    assert len(lines) == 1 and "error" not in lines[0], lines
    assert lines[0]["source"] == "RG1_UNCR.dcm"


def test_when_dicomdir_then_its_studies_are_read(
    synth_dir: tuple[Path, list[SynthStudy]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pydicom.fileset import FileSet

    src_dir, studies = synth_dir
    fs = FileSet()
    for s in studies[:2]:
        for f in s.files:
            fs.add(str(src_dir / f))
    fs.write(str(tmp_path / "media"))
    lines = _analyze(tmp_path / "media" / "DICOMDIR", tmp_path / "out", tmp_path, monkeypatch)
    assert len(lines) == 2 and all("error" not in line for line in lines), lines


def test_when_study_has_lateral_view_then_frontal_is_chosen(
    synth_dir: tuple[Path, list[SynthStudy]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src_dir, studies = synth_dir
    two = next((s for s in studies if len(s.files) == 2), None)
    if two is None:
        pytest.fail("the synthetic fixture should hold a study with a lateral view")
    study_dir = (src_dir / two.path).parent
    lines = _analyze(study_dir, tmp_path / "out", tmp_path, monkeypatch)
    assert len(lines) == 1 and lines[0]["source"] == "1.dcm"


def test_when_no_key_outside_demo_then_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("CLINICAL_MM_KEY", "CLINICAL_MM_KEY_FILE", "CLINICAL_MM_MODE"):
        monkeypatch.delenv(var, raising=False)
    result = CliRunner().invoke(cli, ["analyze", str(tmp_path), "--out", str(tmp_path / "o")])
    assert result.exit_code != 0 and "no pseudonymisation key" in result.output
