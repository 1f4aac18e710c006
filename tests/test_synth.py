"""Synthetic studies: determinism, manifest format, DICOM content, report consistency."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pydicom
import pytest

from clinical_mm.core.findings import FINDINGS
from clinical_mm.extraction.chexpert import RadiologyReportLabeler
from clinical_mm.synth.chest_phantom import region_boxes
from clinical_mm.synth.study_synthesizer import MANIFEST_COLUMNS, StudySynthesizer, SynthStudy


def test_when_same_seed_then_identical_files_and_reports(tmp_path: Path) -> None:
    a = StudySynthesizer(11).make_study(3, tmp_path / "a")
    b = StudySynthesizer(11).make_study(3, tmp_path / "b")
    assert (tmp_path / "a" / a.path).read_bytes() == (tmp_path / "b" / b.path).read_bytes()
    assert (a.findings, a.impression) == (b.findings, b.impression)
    c = StudySynthesizer(12).make_study(3, tmp_path / "c")
    assert (tmp_path / "c" / c.path).read_bytes() != (tmp_path / "a" / a.path).read_bytes()


def test_when_written_then_manifest_has_the_columns_in_order(synth_dir: tuple[Path, list[SynthStudy]]) -> None:
    out, studies = synth_dir
    with (out / "manifest.csv").open(newline="") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
    assert tuple(reader.fieldnames or ()) == MANIFEST_COLUMNS
    # the columns readers have relied on, in their order; new columns are appended at the end
    assert MANIFEST_COLUMNS == ("study_id", "path", *FINDINGS, "sex", "age", "site", "manufacturer", "findings",
                                "impression", "view", "regions", "specs")
    assert len(rows) == len(studies)
    for row in rows:
        assert (out / row["path"]).is_file()
        assert all(row[f] in ("0", "1") for f in FINDINGS)
        assert row["sex"] in ("F", "M") and 18 <= int(row["age"]) <= 95
        assert row["view"] == pydicom.dcmread(out / row["path"], stop_before_pixels=True).ViewPosition
        assert row["view"] in ("AP", "PA")


def test_when_written_then_each_present_finding_has_its_regions_inside_the_image(tmp_path: Path) -> None:
    studies = StudySynthesizer(3).write(12, tmp_path, progress=False, workers=1)
    rows = {r["study_id"]: r for r in csv.DictReader((tmp_path / "manifest.csv").open(newline=""))}
    seen = set()
    for s in studies:
        assert json.loads(rows[s.study_id]["regions"]) == s.regions
        assert set(s.regions) == {f for f in FINDINGS if s.labels[f]}  # every finding drawn, nothing else
        ds = pydicom.dcmread(tmp_path / s.path, stop_before_pixels=True)
        for name, boxes in s.regions.items():
            seen.add(name)
            assert 1 <= len(boxes) <= (1 if name == "cardiomegaly" else 2)
            for x0, y0, x1, y1 in boxes:
                assert 0 <= x0 < x1 <= ds.Columns and 0 <= y0 < y1 <= ds.Rows
    assert len(seen) >= 4, seen


def test_when_a_finding_is_on_one_side_then_its_box_is_on_that_side_of_the_image() -> None:
    import numpy as np

    from clinical_mm.synth.chest_phantom import Acquisition, ChestPhantom, FindingSpec, PatientAnatomy

    for side in ("right", "left"):
        phantom = ChestPhantom(np.random.default_rng(5))
        phantom.render(PatientAnatomy(), Acquisition(), [FindingSpec("pleural_effusion", side=side, size="large")])
        (x0, _, x1, _), = region_boxes(phantom.regions["pleural_effusion"])
        # the patient's right is on the image's left
        assert (x1 <= 256) if side == "right" else (x0 >= 256)


def _drawn_ctr(graded: bool, severity: float, body_width: float, heart_scale: float, view: str) -> float:
    """The cardiothoracic ratio of a rendered heart: its mask's width over the lung fields'."""
    import numpy as np

    from clinical_mm.synth.chest_phantom import Acquisition, ChestPhantom, FindingSpec, PatientAnatomy

    phantom = ChestPhantom(np.random.default_rng(0), graded_heart=graded)
    phantom.render(PatientAnatomy(body_width=body_width, heart_scale=heart_scale), Acquisition(view=view),
                   [FindingSpec("cardiomegaly", "bilateral", "middle", "moderate", 0.0, severity)])
    heart = np.flatnonzero(phantom.regions["cardiomegaly"].any(0))
    lungs = np.flatnonzero(((phantom._lung_fields["right"] > 0.5) | (phantom._lung_fields["left"] > 0.5)).any(0))
    return float((heart[-1] - heart[0]) / (lungs[-1] - lungs[0]))


def test_when_the_heart_is_graded_then_its_grade_is_its_drawn_ratio_whatever_the_patient_and_view() -> None:
    from clinical_mm.synth.chest_phantom import cardiothoracic_ratio

    patients = [(bw, hs, view) for bw in (0.38, 0.49) for hs in (0.9, 1.1) for view in ("PA", "AP")]
    for severity in (0.36, 0.5, 0.74, 0.76, 1.0):  # mild, moderate (2), marked (2)
        for bw, hs, view in patients:
            assert _drawn_ctr(True, severity, bw, hs, view) == pytest.approx(cardiothoracic_ratio(severity), abs=0.01)
    mild = [_drawn_ctr(True, 0.39, *p) for p in patients]
    marked = [_drawn_ctr(True, 0.75, *p) for p in patients]
    assert max(mild) < 0.63 <= min(marked) - 0.06
    # the shipped model's drawing: a mild heart of a broad-hearted, narrow patient on an AP film is drawn wider
    # than a marked one of a small-hearted, broad patient on a PA film
    assert _drawn_ctr(False, 0.39, 0.38, 1.1, "AP") > _drawn_ctr(False, 0.75, 0.49, 0.9, "PA")


def test_when_written_then_dicom_is_a_chest_radiograph_with_fake_phi(synth_dir: tuple[Path, list[SynthStudy]]) -> None:
    out, studies = synth_dir
    for s in studies:
        ds = pydicom.dcmread(out / s.path)
        assert ds.Modality in ("DX", "CR") and ds.BodyPartExamined == "CHEST" and ds.ViewPosition in ("PA", "AP")
        assert str(ds.PatientName) == s.phi["PatientName"] and ds.PatientID == s.phi["PatientID"]
        assert ds.pixel_array.shape == (ds.Rows, ds.Columns)
        assert ds.RequestAttributesSequence[0].AccessionNumber == s.phi["AccessionNumber"]


def test_when_report_is_labelled_then_it_agrees_with_the_manifest(tmp_path: Path) -> None:
    labeler = RadiologyReportLabeler()
    studies = StudySynthesizer(5).write(40, tmp_path, progress=False, workers=1)
    for s in studies:
        stated = labeler.stated_present(f"{s.findings} {s.impression}")
        assert stated == s.labels, s.study_id
    assert any(sum(s.labels.values()) >= 2 for s in studies), "findings should co-occur"
    assert any(sum(s.labels.values()) == 0 for s in studies), "some studies have no finding"
    assert any(len(s.files) == 2 for s in studies), "some studies have a lateral view"


def test_when_site_config_plants_prevalence_then_it_shows(tmp_path: Path) -> None:
    import json

    from clinical_mm.synth.study_synthesizer import SynthConfig

    cfg_path = tmp_path / "cfg.json"
    cfg_path.write_text(json.dumps({"sites": [
        {"name": "A", "institution": "A Hospital", "manufacturer": "M1", "model": "X", "weight": 1.0,
         "prevalence_multiplier": {"pneumothorax": 6.0}},
        {"name": "B", "institution": "B Hospital", "manufacturer": "M2", "model": "Y", "weight": 1.0,
         "prevalence_multiplier": {"pneumothorax": 0.0}}], "normal_fraction": 0.0}))
    synth = StudySynthesizer(3, SynthConfig.from_json(cfg_path))
    studies = [synth.make_study(i, tmp_path / "o") for i in range(40)]
    a = [s.labels["pneumothorax"] for s in studies if s.site == "A"]
    b = [s.labels["pneumothorax"] for s in studies if s.site == "B"]
    assert sum(a) / len(a) > 0.4 and sum(b) == 0


# The shipped model's training set (data seed 1), as generated when it was trained. Headers and reports come
# from integer random draws and must match exactly; pixels pass through numpy's transcendental functions,
# whose last bits differ between CPU instruction sets (AVX2 / AVX-512), so they are compared as a 4x4 grid of
# block means (stored grey levels) to a tolerance far below any finding's contrast.
_SEED1_STUDIES = {
    0: ("487d337afaf252b5e823f6022a2cdda1d290db101e234c16490039fbde53d8d6",
        "7e397a6b3b0eb2832fd1dd0f3eca7266dff8e41d38596fd68fdf9445cfed9947",
        [[646.1, 647.8, 661.8, 713.0], [580.9, 706.3, 731.3, 635.2], [507.7, 575.7, 600.1, 606.9],
         [482.1, 461.9, 470.0, 555.4]]),
    7: ("3f88aa55c9ab57a66901486cc3cb2a2f0493ae3fdb1cb0683295cf1c8a438f8f",
        "1122f77136f230d5ab264919bc431b8ae1f3003476d18ebddd756549ad39ccee",
        [[951.2, 798.8, 772.6, 936.7], [820.3, 788.8, 731.7, 795.1], [772.6, 685.2, 625.2, 750.2],
         [884.3, 646.7, 645.1, 862.4]]),
    1234: ("f3e0d1b65d0efdbb38e5ee68b203412b030db746c8918cab5b3bb31bd4b7e9b7",
           "be40e874ddfb026e00599e53c20067fde2f3d9ed1748d62d040a2c6af4a17ca2",
           [[761.7, 657.5, 600.9, 677.9], [726.2, 649.2, 601.2, 595.7], [679.6, 556.8, 511.5, 562.0],
            [642.8, 456.9, 455.6, 535.6]]),
    5999: ("2e393b1aa66a79d69d0af9044a6903acc9fd42b11d10858803f503b7d53b3fee",  # the last of the 6,000
           "5684b6dc8a06dd254cddad3a62cffa165c08fb76cae456034ac01507c15f4970",
           [[7039.3, 6946.8, 6511.4, 7344.1], [5670.6, 3318.4, 3161.0, 5598.6], [6447.0, 4548.2, 5714.1, 6538.9],
            [7986.4, 6883.4, 6976.3, 8084.3]]),
}


@pytest.mark.parametrize("index", sorted(_SEED1_STUDIES))
def test_when_generator_runs_then_the_shipped_models_training_data_is_unchanged(tmp_path: Path, index: int) -> None:
    """A change to the phantom, the report writer or the synthesizer changes the training data and breaks
    the reproducibility of the shipped model: retrain it (and update these values) when that is intended."""
    import hashlib
    import io

    import numpy as np

    header_digest, report_digest, grid = _SEED1_STUDIES[index]
    study = StudySynthesizer(1).make_study(index, tmp_path)
    report = f"{study.findings}\n{study.impression}\n{sorted(study.labels.items())}"
    assert hashlib.sha256(report.encode()).hexdigest() == report_digest
    ds = pydicom.dcmread(tmp_path / study.path)
    pixels = ds.pixel_array.astype(np.float64)
    del ds.PixelData
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    assert hashlib.sha256(buf.getvalue()).hexdigest() == header_digest
    r, c = (n // 4 * 4 for n in pixels.shape)
    means = pixels[:r, :c].reshape(4, r // 4, 4, c // 4).mean((1, 3))
    np.testing.assert_allclose(means, np.array(grid), atol=1.0)


def test_when_incidental_findings_are_drawn_then_they_are_reported_boxed_and_never_flags(tmp_path: Path) -> None:
    """Devices and incidental findings: each drawn one is in specs, has a sentence in the report
    and (but hyperinflation, a change of the whole chest) a region; the report labeler reads no flag from them."""
    from clinical_mm.core.findings import INCIDENTAL_FINDINGS
    from clinical_mm.synth.study_synthesizer import INCIDENTAL_PREVALENCE, SynthConfig

    labeler = RadiologyReportLabeler()
    config = SynthConfig(incidental_prevalence=dict(INCIDENTAL_PREVALENCE))
    studies = StudySynthesizer(5, config).write(40, tmp_path, progress=False, workers=1)
    seen: set[str] = set()
    for s in studies:
        drawn = {str(x["name"]) for x in s.specs} - set(FINDINGS)
        assert drawn <= set(INCIDENTAL_FINDINGS)
        seen |= drawn
        assert set(s.regions) == {f for f in FINDINGS if s.labels[f]} | (drawn - {"hyperinflation"})
        assert labeler.stated_present(f"{s.findings} {s.impression}") == s.labels, s.study_id
        words = {"endotracheal_tube": ("endotracheal",), "central_line": ("catheter", "line terminates"),
                 "nasogastric_tube": ("nasogastric", "enteric"), "pacemaker": ("pacemaker",),
                 "sternotomy_wires": ("sternotomy",), "rib_fracture": ("rib",), "hyperinflation": ("hyperinflated",)}
        assert all(any(w in s.findings.lower() for w in words[d]) for d in drawn), (drawn, s.findings)
        devices = {"endotracheal_tube", "central_line", "nasogastric_tube", "pacemaker"}
        if drawn & devices:
            assert "no lines or tubes" not in s.findings.lower() and "no support devices" not in s.findings.lower()
    assert len(seen) >= 5, seen


def test_when_incidental_findings_are_off_then_the_rest_of_the_study_is_the_same(tmp_path: Path) -> None:
    """Their own random stream: without them the flags, the findings' sentences and the impression are those of the
    study with them, and the image differs only where a device was drawn."""
    import numpy as np

    from clinical_mm.synth.study_synthesizer import INCIDENTAL_PREVALENCE, SynthConfig

    for index in range(6):
        a = StudySynthesizer(8, SynthConfig(incidental_prevalence=dict(INCIDENTAL_PREVALENCE))).make_study(
            index, tmp_path / "with")
        b = StudySynthesizer(8, SynthConfig(incidental_prevalence={})).make_study(index, tmp_path / "without")
        assert (a.labels, a.impression) == (b.labels, b.impression)
        assert a.findings.endswith(b.findings)
        assert all(str(x["name"]) in FINDINGS for x in b.specs)
        pa = pydicom.dcmread(tmp_path / "with" / a.path).pixel_array.astype(float)
        pb = pydicom.dcmread(tmp_path / "without" / b.path).pixel_array.astype(float)
        drawn = {str(x["name"]) for x in a.specs} - set(FINDINGS)
        if not drawn:
            assert np.array_equal(pa, pb)
        elif drawn != {"hyperinflation"}:
            changed = np.abs(pa - pb) > 0
            inside = np.zeros_like(changed)
            for name in drawn - {"hyperinflation"}:
                for x0, y0, x1, y1 in a.regions[name]:
                    inside[max(0, y0 - 8):y1 + 8, max(0, x0 - 8):x1 + 8] = True
            if "hyperinflation" not in drawn:
                assert changed[inside].sum() > 0.5 * changed.sum()


def test_when_a_tube_or_a_line_is_drawn_then_it_shows_at_the_model_input_size(tmp_path: Path) -> None:
    """The endotracheal tube's radiopaque stripe and the central line show at 128 pixels: drawn alone, each changes the
    model's input (in its normalised units, a quarter of the intensity range each) by at least 0.85 at its brightest
    in the median study. The earlier drawing (thin tube walls, a fainter line) changed it by about 0.6; a linear
    probe on the pixels told the tube with AUROC 0.73 then, 0.93 now."""
    import numpy as np

    from clinical_mm.model.preprocessing import ChestXrayPreprocessor
    from clinical_mm.synth.study_synthesizer import INCIDENTAL_PREVALENCE, SynthConfig

    pre = ChestXrayPreprocessor(128)
    change: dict[str, list[float]] = {"endotracheal_tube": [], "central_line": []}
    for index in range(60):
        a = StudySynthesizer(8, SynthConfig(incidental_prevalence=dict(INCIDENTAL_PREVALENCE))).make_study(
            index, tmp_path / "with")
        drawn = {str(x["name"]) for x in a.specs} - set(FINDINGS)
        if len(drawn) != 1 or not drawn <= set(change):
            continue
        b = StudySynthesizer(8, SynthConfig(incidental_prevalence={})).make_study(index, tmp_path / "without")
        diff = np.abs(pre(pydicom.dcmread(tmp_path / "with" / a.path)) - pre(pydicom.dcmread(tmp_path / "without" / b.path)))
        change[drawn.pop()].append(float(diff.max()))
    assert all(len(v) >= 3 for v in change.values()), change
    assert all(float(np.median(v)) >= 0.85 for v in change.values()), change
