"""The radiology report labeler: each CheXpert observation and triage flag by table, agreement with the
hand-written reports (development and held-out) and with synthetic reports' manifest flags, the CLI, and the
pipeline reading its own drafts with it."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from clinical_mm.cli import cli
from clinical_mm.core.findings import FINDINGS
from clinical_mm.evaluation.report_label_evaluation import (
    HELDOUT_REPORTS,
    SHIPPED_REPORTS,
    score_manifest,
    score_reports,
)
from clinical_mm.extraction.chexpert import CHEXPERT_OBSERVATIONS, RadiologyReportLabeler
from clinical_mm.synth.report_writer import ReportWriter
from clinical_mm.synth.study_synthesizer import SynthConfig, _sample_findings

L = RadiologyReportLabeler()


@pytest.mark.parametrize(("text", "observation", "label"), [
    ("The mediastinum is widened.", "Enlarged Cardiomediastinum", "positive"),
    ("Cardiomediastinal silhouette is within normal limits.", "Enlarged Cardiomediastinum", "negative"),
    ("Moderate cardiomegaly.", "Cardiomegaly", "positive"),
    ("Heart size is normal.", "Cardiomegaly", "negative"),
    ("Borderline cardiomegaly.", "Cardiomegaly", "uncertain"),
    ("A 2 cm mass in the right upper lobe.", "Lung Lesion", "positive"),
    ("No suspicious pulmonary nodules.", "Lung Lesion", "negative"),
    ("Patchy opacity at the left base.", "Lung Opacity", "positive"),
    ("The lungs are clear.", "Lung Opacity", "negative"),
    ("Mild interstitial edema.", "Edema", "positive"),
    ("No pulmonary edema.", "Edema", "negative"),
    ("Focal consolidation in the lingula.", "Consolidation", "positive"),
    ("Findings may represent pneumonia.", "Pneumonia", "uncertain"),
    ("No evidence of pneumonia.", "Pneumonia", "negative"),
    ("Bibasilar atelectasis.", "Atelectasis", "positive"),
    ("Atelectasis versus consolidation at the right base.", "Atelectasis", "uncertain"),
    ("Small right apical pneumothorax.", "Pneumothorax", "positive"),
    ("The previously seen pneumothorax has resolved.", "Pneumothorax", "negative"),
    ("Pneumothorax cannot be excluded.", "Pneumothorax", "uncertain"),
    ("Small left pleural effusion.", "Pleural Effusion", "positive"),
    ("Small pericardial effusion.", "Pleural Effusion", "not_mentioned"),
    ("Apical pleural thickening.", "Pleural Other", "positive"),
    ("Acute fracture of the left sixth rib.", "Fracture", "positive"),
    ("No acute fracture.", "Fracture", "negative"),
    ("Endotracheal tube 4 cm above the carina.", "Support Devices", "positive"),
    ("Right PICC line tip in the SVC.", "Support Devices", "positive"),
    ("The chest tube has been removed.", "Support Devices", "negative"),
    ("Visible pleural line at the apex.", "Support Devices", "not_mentioned"),
])
def test_each_observation_is_labelled_as_the_report_states_it(text: str, observation: str, label: str) -> None:
    assert L.chexpert(f"FINDINGS: {text}")[observation] == label


@pytest.mark.parametrize(("text", "label"), [
    ("FINDINGS: The lungs are clear. Heart size is normal.\nIMPRESSION: No acute cardiopulmonary process.", "positive"),
    ("FINDINGS: Endotracheal tube in place. Lungs are clear.", "positive"),   # devices are not a finding
    ("FINDINGS: Possible small left effusion.", "not_mentioned"),              # uncertain counts as a finding
])
def test_no_finding_is_positive_only_when_nothing_but_devices_is_positive_or_uncertain(text: str, label: str) -> None:
    assert L.chexpert(text)["No Finding"] == label


def test_the_indication_is_the_question_not_the_answer() -> None:
    labels = L.chexpert("INDICATION: Rule out pneumonia and pneumothorax.\nFINDINGS: Lungs are clear.")
    assert labels["Pneumonia"] == "not_mentioned" and labels["Pneumothorax"] == "not_mentioned"


@pytest.mark.parametrize(("text", "flag", "label"), [
    ("Small left pleural effusion.", "pleural_effusion", "positive"),
    ("Right lower lobe pneumonia.", "consolidation", "positive"),
    ("8 mm nodule in the left upper lobe.", "nodule_mass", "positive"),
    ("Pulmonary vascular congestion.", "pulmonary_edema", "positive"),
    ("No pneumothorax.", "pneumothorax", "negative"),
    ("Possible atelectasis at the right base.", "atelectasis", "uncertain"),
    ("The heart is mildly enlarged.", "cardiomegaly", "positive"),
])
def test_each_triage_flag_is_labelled(text: str, flag: str, label: str) -> None:
    assert L.flags(f"FINDINGS: {text}")[flag] == label


def test_hand_written_reports_agree_with_their_labels() -> None:
    for path, n in ((SHIPPED_REPORTS, 40), (HELDOUT_REPORTS, 20)):
        report = score_reports(path, L)
        assert report["n"] == n
        assert report["chexpert"]["micro"]["f1"] >= 0.95, report["disagreements"]
        assert report["flags"]["micro"]["f1"] >= 0.95, report["disagreements"]
        assert set(report["chexpert"]["agreement"]) == set(CHEXPERT_OBSERVATIONS)


def test_synthetic_reports_agree_with_the_manifest_flags(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    cfg = SynthConfig()
    writer = ReportWriter(rng)
    manifest = tmp_path / "manifest.csv"
    with manifest.open("w", newline="") as fh:
        out = csv.DictWriter(fh, fieldnames=["findings", "impression", *FINDINGS])
        out.writeheader()
        for _ in range(400):
            specs = _sample_findings(rng, cfg, cfg.sites[int(rng.integers(len(cfg.sites)))])
            findings, impression = writer.write(specs)
            names = {s.name for s in specs}
            out.writerow({"findings": findings, "impression": impression, **{f: int(f in names) for f in FINDINGS}})
    report = score_manifest(manifest, L)
    assert report["n"] == 400 and report["micro"]["tp"] > 100
    assert report["micro"]["f1"] >= 0.95, report
    result = CliRunner().invoke(cli, ["evaluate-report-labels", "--manifest", str(manifest)])
    assert result.exit_code == 0 and "flags F1 " in result.output


def test_label_report_cli_prints_labels_only_and_is_audited(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLINICAL_MM_DATA_DIR", str(tmp_path / "data"))
    src = tmp_path / "reports.jsonl"
    src.write_text(json.dumps({"id": "r1", "text": "FINDINGS: Dr. Halvorsen was called. Small left effusion."}) + "\n")
    result = CliRunner().invoke(cli, ["label-report", "--jsonl", str(src)])
    assert result.exit_code == 0, result.output
    line = json.loads(result.output)
    assert line["id"] == "r1" and line["chexpert"]["Pleural Effusion"] == "positive"
    assert line["flags"]["pleural_effusion"] == "positive" and "Halvorsen" not in result.output
    from clinical_mm.audit.sqlite_sink import SQLiteAuditSink

    sink = SQLiteAuditSink(tmp_path / "data" / "audit.sqlite")
    try:
        assert [(r["action"], r["detail"]) for r in sink.records()] == [("label-report", "1 reports")]
    finally:
        sink.close()
    table = CliRunner().invoke(cli, ["evaluate-report-labels", "--heldout"])
    assert table.exit_code == 0 and "on 20 reports" in table.output


_FLIPS = [json.loads(line) for line in
          (Path(__file__).resolve().parents[1] / "evaluation" / "data" / "report_flip_sentences.jsonl")
          .read_text("utf-8").splitlines() if line.strip()]


def test_flip_table_covers_every_kind() -> None:
    kinds = {row["kind"] for row in _FLIPS}
    assert len(_FLIPS) >= 60 and kinds >= {"negated_predicate", "residual_negated", "resolved",
                                           "limitation_hypothetical", "hedge", "negation_scope"}


@pytest.mark.parametrize("row", _FLIPS, ids=[f"{r['kind']}-{i}" for i, r in enumerate(_FLIPS)])
def test_no_assertion_flips(row: dict[str, str]) -> None:
    """Sentences written for the assertion errors that flip a report's meaning (issue 21): a predicate's "not",
    "no residual", resolved findings, limitation and hypothetical sentences, hedges, and a negation that must
    not run into the next finding. Each is labelled as meant."""
    labels = L.label(f"FINDINGS: {row['sentence']}")
    got = labels["chexpert" if row["observation"] in CHEXPERT_OBSERVATIONS else "flags"][row["observation"]]
    assert got == row["expected"], row["sentence"]
