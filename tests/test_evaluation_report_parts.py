"""The parts of `clinical-mm evaluate` one by one: intervals, goals, the test manifest and its overlap check, the
model card against the CHAI schema, and the signature over the outputs."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clinical_mm.cli import cli
from clinical_mm.core.errors import ConfigurationError, ManifestError
from clinical_mm.core.findings import FINDINGS
from clinical_mm.evaluation.compliance.analysis import analyse
from clinical_mm.evaluation.compliance.goals import load_goals
from clinical_mm.evaluation.compliance.manifest import (
    EvaluationManifest,
    ManifestRow,
    age_band,
    check_no_overlap,
    clean_value,
    read_manifest,
)
from clinical_mm.evaluation.compliance.model_card import model_card_xml, validate_model_card
from clinical_mm.evaluation.compliance.runner import StudyOutcome
from clinical_mm.evaluation.compliance.signing import SignatureError, sign_outputs, verify_outputs
from clinical_mm.evaluation.compliance.statistics import (
    Estimate,
    auroc,
    binary_metrics,
    brier,
    calibration_error,
    holm,
    likelihood_ratios,
    proportion,
)

# ----------------------------------------------------------------------------------------------- intervals


def test_a_proportion_has_the_wilson_interval() -> None:
    e = proportion(8, 10)
    assert e.estimate == pytest.approx(0.8)
    assert (e.lower, e.upper) == (pytest.approx(0.4902, abs=1e-4), pytest.approx(0.9433, abs=1e-4))
    assert proportion(0, 0).estimate is None  # no trials: no number that only looks like one


def test_the_auroc_interval_holds_the_estimate_and_narrows_with_more_studies() -> None:
    rng = np.random.default_rng(3)

    def sample(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, 2, n)
        return y, y * 0.8 + rng.normal(0, 0.6, n)

    small, large = auroc(*sample(60), seed=1), auroc(*sample(2000), seed=1)
    for e in (small, large):
        assert e.lower is not None and e.upper is not None and e.estimate is not None
        assert e.lower <= e.estimate <= e.upper
    assert (large.upper - large.lower) < (small.upper - small.lower) / 3  # type: ignore[operator]
    assert 0.7 < large.estimate < 0.88  # type: ignore[operator]
    assert auroc(np.array([1, 1, 1]), np.array([0.1, 0.5, 0.9])).estimate is None  # one class: undefined


def test_calibration_error_and_brier_tell_a_calibrated_model_from_an_overconfident_one() -> None:
    rng = np.random.default_rng(5)
    p = rng.random(3000)
    y = (rng.random(3000) < p).astype(int)  # outcomes drawn at the stated probability
    overconfident = np.where(p > 0.5, 0.99, 0.01)
    good, bad = calibration_error(y, p, seed=2), calibration_error(y, overconfident, seed=2)
    assert good.upper is not None and good.upper < 0.04
    assert bad.lower is not None and bad.lower > 0.15
    assert brier(y, p).estimate < brier(y, overconfident).estimate  # type: ignore[operator]


def test_operating_point_metrics_and_likelihood_ratios() -> None:
    y = np.array([1] * 20 + [0] * 80)
    r = np.array([1] * 18 + [0] * 2 + [1] * 8 + [0] * 72)
    m = binary_metrics(y, r)
    assert m["sensitivity"].estimate == pytest.approx(0.9)
    assert m["specificity"].estimate == pytest.approx(0.9)
    assert m["ppv"].estimate == pytest.approx(18 / 26)
    assert m["lr_positive"].estimate == pytest.approx(9.0)
    assert m["lr_negative"].estimate == pytest.approx(0.1 / 0.9)
    lr_pos, lr_neg = likelihood_ratios(10, 0, 2, 8)  # an empty cell: the table's own ratio, a corrected interval
    assert lr_pos.estimate == pytest.approx(5.0) and lr_pos.lower < 5.0 < lr_pos.upper  # type: ignore[operator]
    assert lr_neg.estimate == 0.0 and lr_neg.upper is not None and np.isfinite(lr_neg.upper)
    assert likelihood_ratios(10, 0, 0, 10)[0].estimate is None  # specificity 1: LR+ is infinite, not a number


def test_an_interval_the_bootstrap_cannot_give_is_none_and_never_excludes_its_estimate() -> None:
    # perfectly separated on 2 + 2 studies: every resample gives 1.0; no interval, so no goal judged on it
    assert auroc(np.array([1, 1, 0, 0]), np.array([0.9, 0.8, 0.2, 0.1])) == Estimate(1.0, None, None)
    assert load_goals(None).for_flag("pneumothorax")[0].judge(Estimate(1.0, None, None))["met"] is None
    rng = np.random.default_rng(11)
    for _ in range(60):  # small sets, where BCa on the (upward-biased) ECE could leave its estimate outside
        n = int(rng.integers(12, 60))
        p = rng.random(n)
        y = (rng.random(n) < p).astype(int)
        for e in (calibration_error(y, p, seed=3), brier(y, p, seed=3), auroc(y, p, seed=3)):
            if e.lower is not None:
                assert e.lower <= e.estimate <= e.upper  # type: ignore[operator]


def test_holm_adjusts_step_down() -> None:
    assert holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])


# ----------------------------------------------------------------------------------------------- goals


def test_the_shipped_goals_load_and_a_malformed_goal_is_refused(tmp_path: Path) -> None:
    goals = load_goals(None)
    assert {g.metric for g in goals.goals} >= {"auroc", "sensitivity"}
    assert goals.subgroups.alpha == 0.05
    for text in ("goals:\n  - {metric: accuracy_ish, at_least: 0.9}\n",
                 "goals:\n  - {metric: auroc, at_least: 0.9, at_most: 0.95}\n",
                 "goals:\n  - {metric: auroc, at_least: 0.9, flags: [fracture]}\n",
                 "subgroups: {alpha: 2}\n"):
        path = tmp_path / "goals.yaml"
        path.write_text(text)
        with pytest.raises(ConfigurationError):
            load_goals(path)


def test_a_goal_is_judged_on_the_bound_it_names(tmp_path: Path) -> None:
    path = tmp_path / "goals.yaml"
    path.write_text("goals:\n  - {metric: sensitivity, bound: lower, at_least: 0.80, flags: [pneumothorax]}\n")
    goal = load_goals(path).goals[0]
    assert goal.text() == "lower CI bound of sensitivity >= 0.8"
    assert goal.judge(proportion(90, 100))["met"] is True  # 0.90, lower bound 0.826
    assert goal.judge(proportion(9, 10))["met"] is False  # 0.90 too, lower bound 0.596
    assert goal.judge(proportion(0, 0))["met"] is None


# ----------------------------------------------------------------------------------------------- manifests


def _manifest(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["study_id", "path", *FINDINGS, "sex", "age", "site"])
        w.writeheader()
        for row in rows:
            w.writerow({"sex": "F", "age": "70", "site": "A", **{f: "0" for f in FINDINGS}, **row})
    return path


def test_a_malformed_manifest_is_a_typed_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("study_id,file\nS1,x.dcm\n")
    with pytest.raises(ManifestError, match="no 'path' column"):
        read_manifest(bad)
    bad.write_text("path,cardiomegaly\nx.dcm,maybe\n")
    with pytest.raises(ManifestError, match="line 2: the label of cardiomegaly"):
        read_manifest(bad)
    assert age_band("067Y") == "60-74" and age_band("80") == "75+" and age_band("") == "unknown"
    assert age_band("006M") == "<18"


def test_overlapping_manifests_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a.dcm").write_bytes(b"one study")
    (tmp_path / "b.dcm").write_bytes(b"another study")
    (tmp_path / "c.dcm").write_bytes(b"one study")  # the same bytes as a.dcm under another name
    train = read_manifest(_manifest(tmp_path / "train.csv", [{"study_id": "T1", "path": "a.dcm"}]))
    same_id = read_manifest(_manifest(tmp_path / "t1.csv", [{"study_id": "X9", "path": "b.dcm"},
                                                            {"study_id": "T1", "path": "b.dcm"}]))
    with pytest.raises(ManifestError, match=r"overlaps the training manifest: 1 study id.*lines 3"):
        check_no_overlap(same_id, train, {})
    same_file = read_manifest(_manifest(tmp_path / "t2.csv", [{"study_id": "X1", "path": "c.dcm"}]))
    with pytest.raises(ManifestError, match=r"1 file\(s\) in both"):
        check_no_overlap(same_file, train, {})
    clean = read_manifest(_manifest(tmp_path / "t3.csv", [{"study_id": "X2", "path": "b.dcm"}]))
    check_no_overlap(clean, train, {})
    seed_one = read_manifest(_manifest(tmp_path / "t4.csv", [{"study_id": "S0001-00007", "path": "b.dcm"}]))
    with pytest.raises(ManifestError, match="synthetic data seed 1"):
        check_no_overlap(seed_one, None, {"synthetic": True, "data_seed": 1, "val_seed": 2})


def test_the_cli_refuses_a_test_set_of_the_models_training_seed(tmp_path: Path) -> None:
    (tmp_path / "b.dcm").write_bytes(b"x")
    manifest = _manifest(tmp_path / "m.csv", [{"study_id": "S0001-00003", "path": "b.dcm"}])
    res = CliRunner().invoke(cli, ["evaluate", "--manifest", str(manifest), "--out", str(tmp_path / "out"),
                                   "--no-progress"], env={"CLINICAL_MM_DATA_DIR": str(tmp_path / "state")})
    assert res.exit_code == 1
    assert "ManifestError: the test manifest overlaps the model's training data" in res.output
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------------------------- model card


def test_the_validator_rejects_a_card_that_breaks_the_schema() -> None:
    ns = "https://mc.chai.org/v0.2/schema.xsd"
    assert validate_model_card(f'<AppliedModelCard xmlns="{ns}"><BasicInfo/></AppliedModelCard>')


# ----------------------------------------------------------------------------------------------- signatures


def _key(path: Path) -> Ed25519PrivateKey:
    key = Ed25519PrivateKey.generate()
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return key


def test_a_signed_folder_verifies_and_any_change_fails(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    for name in ("results.json", "report.html"):
        (out / name).write_text(json.dumps({"name": name}))
    key = _key(tmp_path / "key.pem")
    sign_outputs(out, key, "tester", "2026-12-06T00:00:00+00:00")
    assert verify_outputs(out)["files"] == 2
    for change in ("edit", "add", "remove"):
        copy = tmp_path / change
        shutil.copytree(out, copy)
        if change == "edit":
            (copy / "results.json").write_text(json.dumps({"name": "results.json", "auroc": 0.99}))
        elif change == "add":
            (copy / "extra.txt").write_text("x")
        else:
            (copy / "report.html").unlink()
        with pytest.raises(SignatureError, match={"edit": "results.json: changed after signing",
                                                  "add": "extra.txt: added after signing",
                                                  "remove": "report.html: missing"}[change]):
            verify_outputs(copy)
    # re-signed by someone else: valid on its own, refused against the expected public key
    forged = tmp_path / "forged"
    shutil.copytree(out, forged)
    (forged / "results.json").write_text("{}")
    sign_outputs(forged, _key(tmp_path / "other.pem"), "someone", "2026-12-06T00:00:00+00:00")
    public = tmp_path / "key.pub.pem"
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    assert verify_outputs(out, public)["files"] == 2
    with pytest.raises(SignatureError, match="signed by another key"):
        verify_outputs(forged, public)
    res = CliRunner().invoke(cli, ["evaluate", "verify", str(forged), "--public-key", str(public)])
    assert res.exit_code == 1 and "SignatureError: signed by another key" in res.output
    res = CliRunner().invoke(cli, ["evaluate", "verify", str(out), "--public-key", str(public)])
    assert res.exit_code == 0 and "verified: 2 files" in res.output


# ----------------------------------------------------------------------------------------------- analysis


def _outcomes(n: int, site_of: Any, miss_at: str | None) -> tuple[EvaluationManifest, list[StudyOutcome]]:
    """Outcomes without a model: every 3rd study positive for pneumothorax (no other flag), found by the model
    everywhere but at site ``miss_at``."""
    rows, outcomes = [], []
    for i in range(n):
        site = site_of(i)
        labels = {f: int(f == "pneumothorax" and i % 3 == 0) for f in FINDINGS}
        row = ManifestRow(i + 2, f"T{i}", Path(f"{i}.dcm"), labels, "", {"sex": "FM"[i % 2], "site": site})
        found = labels["pneumothorax"] and site != miss_at
        probabilities = {f: (0.9 if f == "pneumothorax" and found else 0.05) for f in FINDINGS}
        attributes = {"sex": "FM"[i % 2], "age_band": "40-59", "site": site, "manufacturer": "Acme\x01 Imaging",
                      "view": "PA"}
        outcomes.append(StudyOutcome(row, attributes, None, probabilities, {f: 0.5 for f in FINDINGS},
                                     {f for f, p in probabilities.items() if p >= 0.5}, "FINDINGS: x IMPRESSION: y"))
        rows.append(row)
    return EvaluationManifest(Path("m.csv"), "0" * 64, FINDINGS, rows, False), outcomes


def test_a_group_that_misses_everything_is_the_worst_group_and_flagged() -> None:
    manifest, outcomes = _outcomes(120, lambda i: "A" if i < 60 else "B", "B")
    results = analyse(manifest, outcomes, load_goals(None), n_resamples=200)
    summary = results["subgroup_tests"]["by_attribute"]["site"]["flags"]["pneumothorax"]
    assert summary["sensitivity"] == {"difference": 1.0, "ratio": 0.0, "worst_group": "B"}
    assert results["summary"]["flagged_groups"] == ["site=B"]
    # no group has positives of the other flags: no equalized-odds figure made of a rate of 0 by default
    assert summary["equalized_odds_difference"] == 1.0
    assert results["subgroup_tests"]["by_attribute"]["site"]["flags"]["cardiomegaly"]["equalized_odds_difference"] \
        is None
    assert results["report_text"]["available"] is False  # no reference reports in this manifest


def test_a_control_character_in_a_value_does_not_break_the_model_card() -> None:
    manifest, outcomes = _outcomes(40, lambda i: "A", None)
    for o in outcomes:
        o.attributes["manufacturer"] = clean_value(o.attributes["manufacturer"])
    results = analyse(manifest, outcomes, load_goals(None), n_resamples=200)
    results["provenance"] = {"model": {"id": "m@1", "sha256": "0" * 64, "training_data": "synthetic"},
                             "manifest": {"name": "m.csv", "sha256": "0" * 64}, "date": "2026-12-06T00:00:00+00:00",
                             "code": {"version": "0.1.0"}}
    assert clean_value("Acme\x01 Imaging\n") == "Acme Imaging"
    assert validate_model_card(model_card_xml(results)) == []


def test_a_quoted_report_with_line_breaks_is_read_whole_and_lines_are_counted_as_an_editor_does(
        tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text('path,pneumothorax,findings,impression,sex\n'
                    'a.dcm,1,"Small right apical\npneumothorax.",Pneumothorax.,female\n'
                    'b.dcm,0,Clear.,Normal.,M\n')
    manifest = read_manifest(path)
    assert manifest.rows[0].reference == "FINDINGS: Small right apical\npneumothorax. IMPRESSION: Pneumothorax."
    assert [r.number for r in manifest.rows] == [3, 4]
    assert manifest.rows[0].attributes["sex"] == "F" and "age_band" not in manifest.rows[0].attributes


def test_verify_refuses_links_and_the_evaluation_options(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.json").write_text("{}")
    sign_outputs(out, _key(tmp_path / "key.pem"), "tester", "2026-12-06T00:00:00+00:00")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "report.html").write_text("forged")
    (out / "extra").symlink_to(elsewhere)
    with pytest.raises(SignatureError, match="extra: a link"):
        verify_outputs(out)
    (out / "extra").unlink()
    (out / "sub").mkdir()
    (out / "sub" / "signature.json").write_text("{}")  # only the top-level signature file is the signature
    with pytest.raises(SignatureError, match="sub/signature.json: added after signing"):
        verify_outputs(out)
    res = CliRunner().invoke(cli, ["evaluate", "--out", str(tmp_path / "x"), "verify", str(out)])
    assert res.exit_code == 2 and "--out belong to the evaluation" in res.output
