"""The vision-language commands end to end with the shipped model: zero-shot findings, questions, phrase grounding,
an index of studies and retrieval both ways. Every study is de-identified and gated first, what users type is
de-identified before the model reads it, every query is audited, and no PHI reaches the output or the audit log."""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path

import pydicom
import pytest
from click.testing import CliRunner
from pydicom.data import get_testdata_file

from clinical_mm.cli import cli
from clinical_mm.core.config import DEFAULT_MODEL_PATH
from clinical_mm.core.findings import FINDINGS
from clinical_mm.core.questions import questions_for
from clinical_mm.evaluation.compliance.vision_language_tasks import own_report_ceiling, prior_baseline
from clinical_mm.synth.relabel import grey_pixels, relabelled_chest_radiograph
from clinical_mm.synth.study_synthesizer import StudySynthesizer, SynthStudy

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def studies(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[SynthStudy]]:
    out = tmp_path_factory.mktemp("vl-studies")
    return out, StudySynthesizer(61).write(8, out, progress=False, workers=1)


@pytest.fixture()
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CLINICAL_MM_KEY", "ab" * 32)
    monkeypatch.setenv("CLINICAL_MM_DATA_DIR", str(tmp_path / "data"))

    def invoke(*args: str) -> list[dict[str, object]]:
        result = CliRunner().invoke(cli, list(args))
        assert result.exit_code == 0, result.output
        return [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]

    return invoke


def _audit(tmp_path: Path) -> list[dict[str, str]]:
    db = sqlite3.connect(tmp_path / "data" / "audit.sqlite")
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute("SELECT * FROM audit ORDER BY id")]
    finally:
        db.close()


def _phi(studies: list[SynthStudy]) -> list[str]:
    return [v for s in studies for k, v in s.phi.items() if k in ("PatientName", "PatientID", "AccessionNumber")
            and len(v) > 4]


def _assert_no_phi(text: str, studies: list[SynthStudy]) -> None:
    for value in _phi(studies):
        assert value not in text
        assert value.split("^")[0] not in text


def test_when_findings_are_named_in_words_then_each_study_gets_calibrated_probabilities(
        studies: tuple[Path, list[SynthStudy]], run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root, made = studies
    lines = run("zero-shot", str(root / "studies"), "--finding", "pleural effusion", "--finding", "endotracheal tube")
    assert len(lines) == len(made)
    manifest = json.loads((DEFAULT_MODEL_PATH / "manifest.json").read_text())
    calibrated = bool((manifest.get("zero_shot") or {}).get("calibration"))
    for line in lines:
        assert line["ood"] is not None
        scores = {s["finding"]: s for s in line["zero_shot"]}  # type: ignore[union-attr]
        assert set(scores) == {"pleural effusion", "endotracheal tube"}
        # the probability says whether it is calibrated, as the model folder does
        assert all(0 <= s["probability"] <= 1 and s["calibrated"] is calibrated for s in scores.values())
    records = [r for r in _audit(tmp_path) if r["action"] == "zero-shot"]
    assert len(records) == len(made) and all(r["outcome"] == "answered" and r["input_hash"] for r in records)
    assert all("effusion" not in r["detail"] for r in records)  # the text asked is hashed, never written
    _assert_no_phi(json.dumps(lines) + json.dumps(records), made)


def test_when_a_question_names_a_patient_then_the_model_reads_it_de_identified(
        studies: tuple[Path, list[SynthStudy]], run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root, made = studies
    surname = made[0].phi["PatientName"].split("^")[0].title()
    lines = run("ask", str(root / made[0].path), f"Does Mr {surname} have a pneumothorax?")
    assert len(lines) == 1 and isinstance(lines[0]["answer"], str)
    assert surname not in str(lines[0]["question"]) and "pneumothorax" in str(lines[0]["question"])
    lines = run("ask", str(root / "studies"), "Is there a pneumothorax?")
    assert len(lines) == len(made) and all(isinstance(line["answer"], str) for line in lines)
    records = [r for r in _audit(tmp_path) if r["action"] == "ask"]
    assert len(records) == 1 + len(made) and all(r["outcome"] == "answered" for r in records)
    _assert_no_phi(json.dumps(lines) + json.dumps(_audit(tmp_path)), made)


def test_when_a_phrase_is_grounded_then_its_region_is_on_the_image(
        studies: tuple[Path, list[SynthStudy]], run) -> None:  # type: ignore[no-untyped-def]
    root, made = studies
    study = next(s for s in made if s.regions)
    name = next(iter(study.regions))
    lines = run("ground", str(root / study.path), name.replace("_", " "))
    ds = pydicom.dcmread(root / study.path, stop_before_pixels=True)
    region = lines[0]["region"]
    assert 0 <= region["pixel_peak"][0] <= ds.Columns and 0 <= region["pixel_peak"][1] <= ds.Rows  # type: ignore[index]
    assert all(0 <= v <= 100 for box in region["boxes"] for v in box)  # type: ignore[index]


def test_when_studies_are_indexed_then_retrieval_works_both_ways_without_phi(
        studies: tuple[Path, list[SynthStudy]], run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root, made = studies
    manifest = tmp_path / "manifest.csv"
    rows = list(csv.DictReader((root / "manifest.csv").open(newline="")))
    canary = made[0].phi["PatientName"].split("^")[0].title()
    rows[0]["findings"] = f"Discussed with Dr {canary} by phone. " + rows[0]["findings"]  # PHI in a report
    with manifest.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({**r, "path": str(root / r["path"])} for r in rows)
    summary = run("index", "build", str(manifest), "--out", str(tmp_path / "idx"))
    assert summary[0]["indexed"] == len(made)
    index_text = (tmp_path / "idx" / "index.json").read_text()
    assert canary not in index_text
    hits = run("retrieve", "--index", str(tmp_path / "idx"), "--text", made[3].impression, "--k", "3")
    assert len(hits) == 3 and hits[0]["score"] >= hits[-1]["score"]
    similar = run("retrieve", "--index", str(tmp_path / "idx"), "--image", str(root / made[2].path), "--k", "4")
    keys = [h["key"] for h in similar[0]["similar"]]  # type: ignore[union-attr]
    assert len(keys) == 4 and similar[0]["study_uid"] not in keys  # the study itself is not its own similar case
    assert {r["action"] for r in _audit(tmp_path)} >= {"index", "retrieve"}
    _assert_no_phi(index_text + json.dumps(hits + similar) + json.dumps(_audit(tmp_path)), made)


def test_when_an_image_is_no_chest_radiograph_then_the_query_refuses_it(
        studies: tuple[Path, list[SynthStudy]], run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root, made = studies
    pixels = grey_pixels(pydicom.dcmread(str(get_testdata_file("CT_small.dcm", download=False))))
    ct = tmp_path / "ct.dcm"
    relabelled_chest_radiograph(pixels, pydicom.dcmread(root / made[0].path)).save_as(ct, enforce_file_format=True)
    lines = run("zero-shot", str(ct), "--finding", "pneumothorax")
    assert "zero_shot" not in lines[0] and "not" in str(lines[0]["error"])
    assert [r["outcome"] for r in _audit(tmp_path) if r["action"] == "zero-shot"] == ["refused"]


def test_when_evaluating_the_vision_language_tasks_then_results_name_each_measure(
        studies: tuple[Path, list[SynthStudy]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, made = studies
    monkeypatch.setenv("CLINICAL_MM_DATA_DIR", str(tmp_path / "data"))
    out = tmp_path / "eval"
    result = CliRunner().invoke(cli, ["evaluate", "--manifest", str(root / "manifest.csv"), "--out", str(out),
                                      "--tasks", "zero_shot,retrieval,vqa,ood", "--bootstrap", "200",
                                      "--no-progress"])
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    assert results["tasks"]["selected"] == ["zero_shot", "retrieval", "vqa", "ood"]
    assert all("estimate" in results["zero_shot"][f]["auroc"] and "estimate" in results["zero_shot"][f][
        "auroc_unseen_templates"] for f in FINDINGS if f in results["zero_shot"])
    assert "unseen_templates" in results["zero_shot"]["mean"]["flags"]
    assert set(results["retrieval"]["image_to_text"]) == {"recall@1", "recall@5", "recall@10", "class_precision@5"}
    assert "presence" in results["vqa"]["accuracy"]
    ceiling = results["retrieval"]["own_report_ceiling"]["recall@5"]["estimate"]
    assert 0 < ceiling <= 1 and results["retrieval"]["own_report_ceiling"]["recall@1"]["estimate"] <= ceiling
    assert results["vqa"]["prior_baseline"]["presence"]["answer"] == "no"
    assert results["ood"]["refused_turned_images"]["estimate"] is not None
    html = (out / "report.html").read_text()
    assert "Vision-language tasks" in html and "retrieval.image_to_text.recall@5" in html
    assert "retrieval.own_report_ceiling.recall@5" in html and "vqa.prior_baseline.presence" in html
    bad = CliRunner().invoke(cli, ["evaluate", "--manifest", str(root / "manifest.csv"), "--out", str(tmp_path / "x"),
                                   "--tasks", "zero_shot,telepathy"])
    assert bad.exit_code != 0 and "telepathy" in bad.output


def test_when_studies_show_the_same_then_the_own_report_ceiling_is_chance_among_them() -> None:
    """Three studies showing the same small right effusion (their reports differ only in wording) and one normal:
    a perfect reader finds its own report first for 1 of 3 of the three, and always for the fourth."""
    effusion = [{"name": "pleural_effusion", "side": "right", "zone": "lower", "size": "small", "severity": 0.3}]
    same_content = [[{**effusion[0], "severity": sev}] for sev in (0.2, 0.3, 0.4)]  # severity: not readable
    ceiling = own_report_ceiling([*same_content, []])
    assert ceiling["recall@1"]["estimate"] == pytest.approx((3 * (1 / 3) + 1) / 4, abs=1e-4)
    assert ceiling["recall@5"]["estimate"] == 1.0 and ceiling["recall@5"]["lower"] is None


def test_the_prior_baseline_is_the_most_common_answer_of_each_question_type() -> None:
    specs = [{"name": "pneumothorax", "side": "right", "zone": "upper", "size": "small", "severity": 0.3}]
    asked = [*questions_for(specs), *questions_for([])]
    baseline = prior_baseline(asked)
    presence = [q for q in asked if q.kind == "presence"]
    assert baseline["presence"]["answer"] == "no"
    assert baseline["presence"]["estimate"] == pytest.approx(sum(q.answer == "no" for q in presence) / len(presence),
                                                             abs=1e-4)
