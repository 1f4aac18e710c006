"""Synthetic evaluation sets: graded subtlety, the evaluation mix, the seeded acquisition shift, the manifest's
``view`` column and the ``clinical-mm synth`` options; the defaults stay the shipped model's training data."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pydicom
import pytest
from click.testing import CliRunner

from clinical_mm.cli import cli
from clinical_mm.core.errors import ConfigurationError
from clinical_mm.core.findings import FINDINGS
from clinical_mm.extraction.chexpert import RadiologyReportLabeler
from clinical_mm.synth.chest_phantom import (
    FAINT_SEVERITY,
    Acquisition,
    ChestPhantom,
    FindingSpec,
    PatientAnatomy,
)
from clinical_mm.synth.study_synthesizer import (
    DEFAULT_SITES,
    MANIFEST_COLUMNS,
    AcquisitionShift,
    StudySynthesizer,
    SynthConfig,
    _sample_findings,
)

#: the manifest's columns before ``view`` was added: readers keyed by name keep working, in the same order
_OLD_COLUMNS = ("study_id", "path", *FINDINGS, "sex", "age", "site", "manufacturer", "findings", "impression")


def _header_bytes(path: Path) -> bytes:
    ds = pydicom.dcmread(path)
    del ds.PixelData
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def test_when_config_is_default_then_it_is_the_training_configuration_and_columns_only_grow() -> None:
    assert MANIFEST_COLUMNS[: len(_OLD_COLUMNS)] == _OLD_COLUMNS and MANIFEST_COLUMNS[len(_OLD_COLUMNS):] == ("view", "regions", "specs")
    cfg = SynthConfig()
    assert cfg == SynthConfig.preset("default")
    assert (cfg.subtlety, cfg.shift, cfg.age_mean, cfg.sites) == ("standard", None, None, DEFAULT_SITES)
    assert [s.name for s in cfg.sites] == ["SITE_A", "SITE_B", "SITE_C"]


def test_when_options_are_left_at_their_defaults_then_the_study_is_byte_identical(tmp_path: Path) -> None:
    explicit = SynthConfig(subtlety="standard", shift=None, age_mean=None)
    for index in (0, 5):
        a = StudySynthesizer(1, explicit).make_study(index, tmp_path / "a")
        b = StudySynthesizer(1).make_study(index, tmp_path / "b")
        assert a.manifest_row() == b.manifest_row() and a.files == b.files
        assert all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in a.files)


def test_when_subtlety_is_graded_then_severities_reach_below_the_old_minimum_with_the_same_findings() -> None:
    standard, graded = SynthConfig(), SynthConfig(subtlety="graded")
    sev: list[float] = []
    sizes: list[float] = []
    for seed in range(400):
        a = _sample_findings(np.random.default_rng(seed), standard, DEFAULT_SITES[0])
        b = _sample_findings(np.random.default_rng(seed), graded, DEFAULT_SITES[0])
        # the same number of random draws: the same findings, sides, zones and sizes in words
        assert [(f.name, f.side, f.zone, f.size) for f in a] == [(f.name, f.side, f.zone, f.size) for f in b]
        assert all(f.severity >= FAINT_SEVERITY for f in a)
        sev += [f.severity for f in b]
        sizes += [f.size_mm for f in b if f.name == "nodule_mass"]
    assert min(sev) < 0.05 and max(sev) > 0.95
    assert np.mean(np.array(sev) < FAINT_SEVERITY) > 0.25  # a good share is faint
    assert min(sizes) < 8 and max(sizes) < 60


def test_when_a_finding_has_severity_zero_then_it_is_invisible_and_faint_ones_scale() -> None:
    anatomy, acq = PatientAnatomy(), Acquisition(noise=0.0)

    def render(findings: list[FindingSpec]) -> np.ndarray:
        return ChestPhantom(np.random.default_rng(3)).render(anatomy, acq, findings).astype(np.float64)

    nodule = FindingSpec("nodule_mass", "right", "middle", "moderate", 30.0, 0.0)
    none = render([])
    assert np.array_equal(render([nodule]), none)
    faint = np.abs(render([replace(nodule, severity=0.1)]) - none).max()
    plain = np.abs(render([replace(nodule, severity=FAINT_SEVERITY)]) - none).max()
    assert 0 < faint < 0.5 * plain


def test_when_graded_studies_are_written_then_reports_agree_with_the_labels(tmp_path: Path) -> None:
    labeler = RadiologyReportLabeler()
    studies = StudySynthesizer(5, SynthConfig(subtlety="graded")).write(12, tmp_path, progress=False, workers=1)
    standard = [StudySynthesizer(5).make_study(i, tmp_path / "std") for i in range(12)]
    for s, t in zip(studies, standard, strict=True):
        assert labeler.stated_present(f"{s.findings} {s.impression}") == s.labels, s.study_id
        assert (s.labels, s.site, s.sex, s.age, s.view) == (t.labels, t.site, t.sex, t.age, t.view)


def test_when_mix_is_evaluation_then_four_unequal_sites_and_older_patients() -> None:
    cfg = SynthConfig.preset("evaluation")
    names = [s.name for s in cfg.sites]
    assert names == ["SITE_A", "SITE_B", "SITE_C", "SITE_D"] and len({s.weight for s in cfg.sites}) == 4
    a, d = cfg.sites[0], cfg.sites[3]
    assert d.institution != a.institution
    assert replace(d, name=a.name, institution=a.institution, weight=a.weight) == a  # SITE_A's device
    synth = StudySynthesizer(0, cfg)
    ages = np.array([synth._age(np.random.default_rng(i)) for i in range(2000)])
    assert ages.min() >= 18 and ages.max() <= 95 and 58 < ages.mean() < 66 and np.median(ages) > 56
    with pytest.raises(ConfigurationError, match="unknown"):
        SynthConfig.preset("hospital")


def test_when_a_shift_is_planted_then_only_the_groups_pixels_change(tmp_path: Path) -> None:
    base = replace(SynthConfig.preset("evaluation"), subtlety="graded")
    shifted = replace(base, shift=AcquisitionShift("site", "SITE_B"))
    plain = StudySynthesizer(5, base).write(12, tmp_path / "plain", progress=False, workers=1)
    moved = StudySynthesizer(5, shifted).write(12, tmp_path / "shift", progress=False, workers=1)
    assert (tmp_path / "plain" / "manifest.csv").read_bytes() == (tmp_path / "shift" / "manifest.csv").read_bytes()
    in_group = [s for s in moved if s.site == "SITE_B"]
    assert in_group and len(in_group) < len(moved)
    for p, m in zip(plain, moved, strict=True):
        assert (p.labels, p.findings, p.impression, p.phi, p.files) == (m.labels, m.findings, m.impression, m.phi,
                                                                        m.files)
        assert m.shifted == (m.site == "SITE_B") and not p.shifted
        for f in m.files:
            a, b = tmp_path / "plain" / f, tmp_path / "shift" / f
            if m.site != "SITE_B":
                assert a.read_bytes() == b.read_bytes(), f
                continue
            assert _header_bytes(a) == _header_bytes(b), f
            pa, pb = pydicom.dcmread(a).pixel_array, pydicom.dcmread(b).pixel_array
            assert pa.shape == pb.shape and pa.dtype == pb.dtype and not np.array_equal(pa, pb)
            assert int(pb.max()) <= (1 << int(pydicom.dcmread(b).BitsStored)) - 1
    again = StudySynthesizer(5, shifted).make_study(int(in_group[0].study_id.rsplit("-", 1)[1]), tmp_path / "again")
    assert (tmp_path / "again" / again.path).read_bytes() == (tmp_path / "shift" / again.path).read_bytes()


def test_when_a_shift_names_a_group_then_it_selects_it() -> None:
    a, b = DEFAULT_SITES[0], DEFAULT_SITES[1]
    assert AcquisitionShift("site", "SITE_B").selects(b, "F", "PA") and not AcquisitionShift("site", "SITE_B").selects(
        a, "F", "PA")
    assert AcquisitionShift("sex", "F").selects(a, "F", "AP") and not AcquisitionShift("sex", "F").selects(a, "M", "AP")
    assert AcquisitionShift("manufacturer", b.manufacturer).selects(b, "M", "PA")
    assert AcquisitionShift("view", "AP").selects(a, "M", "AP") and not AcquisitionShift("view", "AP").selects(
        a, "M", "PA")
    assert AcquisitionShift.parse(" site = SITE_B ", 0.5) == AcquisitionShift("site", "SITE_B", 0.5)


@pytest.mark.parametrize(("shift", "message"), [
    (AcquisitionShift("planet", "MARS"), "attribute 'planet' is unknown"),
    (AcquisitionShift("site", "SITE_D"), "one of: SITE_A, SITE_B, SITE_C"),  # SITE_D: the evaluation mix only
    (AcquisitionShift("sex", "X"), "one of: F, M"),
    (AcquisitionShift("view", "LL"), "one of: AP, PA"),
    (AcquisitionShift("site", "SITE_B", 0.0), "strength"),
])
def test_when_a_shift_is_invalid_then_the_config_is_refused(shift: AcquisitionShift, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        SynthConfig(shift=shift)


def test_when_the_json_config_names_the_options_then_they_are_read(tmp_path: Path) -> None:
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps({"mix": "evaluation", "subtlety": "graded", "shift": "site=SITE_D"}))
    cfg = SynthConfig.from_json(path)
    assert (len(cfg.sites), cfg.subtlety, cfg.shift, cfg.age_mean) == (4, "graded", AcquisitionShift("site", "SITE_D"),
                                                                        62.0)
    path.write_text(json.dumps({"shift": {"attribute": "sex", "value": "F", "strength": 1.5}, "age_mean": 70}))
    cfg = SynthConfig.from_json(path)
    assert (cfg.shift, cfg.age_mean, cfg.sites) == (AcquisitionShift("sex", "F", 1.5), 70.0, DEFAULT_SITES)
    path.write_text(json.dumps({}))
    assert SynthConfig.from_json(path) == SynthConfig()
    for bad, message in (({"shift": {"attribute": "sex", "value": "X"}}, "one of: F, M"),
                         ({"shift": {"attribute": "sex"}}, "invalid synthesis config"),
                         ({"subtlety": "hard"}, "subtlety 'hard' is unknown"),
                         ({"mix": "hospital"}, "mix 'hospital' is unknown")):
        path.write_text(json.dumps(bad))
        with pytest.raises(ConfigurationError, match=message):
            SynthConfig.from_json(path)


@pytest.mark.parametrize(("args", "message"), [
    (["--shift", "planet=MARS"], "attribute 'planet' is unknown"),
    (["--shift", "site=SITE_Z"], "no such site"),
    (["--shift", "site=SITE_D"], "one of: SITE_A, SITE_B, SITE_C"),
    (["--shift", "site"], "expected ATTRIBUTE=VALUE"),
    (["--shift", "site=SITE_B", "--shift-strength", "-1"], "strength"),
    (["--shift-strength", "0.5"], "--shift-strength needs --shift"),
])
def test_when_synth_is_given_a_bad_shift_then_it_says_so(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["synth", "--n", "1", "--seed", "1", "--out", str(tmp_path / "o"), *args])
    assert result.exit_code == 1 and "ConfigurationError" in result.output and message in result.output, result.output
    assert not (tmp_path / "o" / "manifest.csv").exists()


def test_when_synth_is_given_the_evaluation_options_then_it_writes_them(tmp_path: Path) -> None:
    out = tmp_path / "o"
    result = CliRunner().invoke(cli, ["synth", "--n", "4", "--seed", "5", "--out", str(out), "--subtlety", "graded",
                                      "--mix", "evaluation", "--shift", "site=SITE_D", "--shift-strength", "0.5",
                                      "--workers", "1", "--no-progress"])
    assert result.exit_code == 0, result.output
    with (out / "manifest.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4 and all(r["view"] in ("AP", "PA") for r in rows)
    assert "with the acquisition shift site=SITE_D" in result.output
