"""Issue 21: the report labeler scored against people's MeSH indexing of real reports, and the extraction's
medications and problems against an annotation of real ICU notes. The scoring runs here on small sets written for
the test; the real development data (../shared/data, not in the repository) is scored where it is present."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from clinical_mm.cli import cli
from clinical_mm.core.errors import InputError
from clinical_mm.core.findings import FINDINGS
from clinical_mm.evaluation.mesh_report_evaluation import mesh_flags, mesh_part, score_mesh
from clinical_mm.evaluation.note_entity_evaluation import NOTE_ANNOTATIONS, score_note_entities

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
IU_DEV = SHARED / "iu_reports_dev" / "reports.jsonl"
PHYSIONET_DEV = SHARED / "physionet_deid_dev" / "notes.jsonl"

_REPORTS = [
    {"MeSH": "Cardiomegaly/borderline", "indication": "Chest pain, rule out pneumonia", "comparison": "None.",
     "findings": "Borderline cardiomegaly. No focal consolidation.", "impression": "No acute disease."},
    {"MeSH": "normal", "indication": "Cough", "comparison": "None.",
     "findings": "The cardiac silhouette is not enlarged. No residual pneumothorax. Lungs are clear.",
     "impression": "Normal chest."},
    {"MeSH": "Costophrenic Angle/left/blunted;Airspace Disease/lung/base/left", "indication": "", "comparison": "",
     "findings": "Small left pleural effusion. Left basilar airspace disease.", "impression": "Effusion."},
    {"MeSH": "Opacity/lung/base/bilateral", "indication": "", "comparison": "",
     "findings": "Bibasilar airspace opacities, likely atelectasis.", "impression": "Atelectasis."},
    {"MeSH": "Pulmonary Congestion;Density/lung/upper lobe/right/round", "indication": "", "comparison": "",
     "findings": "Pulmonary vascular congestion. Round density in the right upper lobe.",
     "impression": "Congestion."},
]


def _mesh_file(tmp_path: Path) -> Path:
    path = tmp_path / "reports.jsonl"
    path.write_text("".join(json.dumps({"uid": str(i), **r}) + "\n" for i, r in enumerate(_REPORTS)), "utf-8")
    return path


def test_mesh_terms_map_to_flags_strict_and_with_near_synonyms() -> None:
    mesh = "Cardiac Shadow/enlarged/mild;Costophrenic Angle/blunted;Infiltrate/lung;Density/round;Pulmonary Congestion"
    assert mesh_flags(mesh, near=False) == set()
    assert mesh_flags(mesh) == {"cardiomegaly", "pleural_effusion", "consolidation", "nodule_mass", "pulmonary_edema"}
    assert mesh_flags("Hydropneumothorax/right;Pulmonary Atelectasis/base", near=False) == {"pneumothorax", "atelectasis"}
    assert mesh_flags("Cardiac Shadow/borderline;Opacity/lung/base") == set()
    assert {mesh_part(str(i)) for i in range(40)} == {"tune", "untuned"}


def test_mesh_score_reads_each_report_and_reports_both_parts(tmp_path: Path) -> None:
    report = score_mesh(_mesh_file(tmp_path), examples=5)
    parts = [p for p in ("tune", "untuned") if p in report]
    assert sum(report[p]["n"] for p in parts) == len(_REPORTS)
    totals = {f: sum(report[p]["stated"]["by_flag"][f]["tp"] for p in parts) for f in FINDINGS}
    # borderline cardiomegaly is stated; the effusion is a near-synonym match; "likely atelectasis" is not consolidation
    assert totals["cardiomegaly"] == 1 and totals["pleural_effusion"] == 1 and totals["pulmonary_edema"] == 1
    assert totals["nodule_mass"] == 1 and totals["consolidation"] == 1
    fps = sum(report[p]["stated"]["by_flag"][f]["fp"] for p in parts for f in FINDINGS)
    assert fps == 1  # the atelectasis the indexer did not index
    blunt = sum(report[p]["uncertain_as_negative"]["by_flag"]["cardiomegaly"]["tp"] for p in parts)
    assert blunt == 0  # borderline is uncertain in the four-way label


def test_evaluate_report_labels_mesh_command(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["evaluate-report-labels", "--mesh", str(_mesh_file(tmp_path)),
                                      "--examples", "2"])
    assert result.exit_code == 0, result.output
    assert "triage reading (stated): micro F1" in result.output and "uncertain as positive" in result.output
    assert "MeSH 'Opacity/lung/base/bilateral'" in result.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"uid": "1"}\n', "utf-8")
    refused = CliRunner().invoke(cli, ["evaluate-report-labels", "--mesh", str(bad)])
    assert refused.exit_code != 0 and "line 1" in refused.output


def _notes(tmp_path: Path) -> tuple[Path, Path]:
    text = "Pt agitated, given ativan and haldol. BP low, neo started. Denies pain. K 3.2 repleted with KCL."
    notes = tmp_path / "notes.jsonl"
    notes.write_text(json.dumps({"id": "1-1", "text": text}) + "\n", "utf-8")
    spans = [(w, t) for w, t in (("agitated", "problem"), ("ativan", "medication"), ("haldol", "medication"),
                                 ("neo", "medication"), ("pain", "problem"), ("KCL", "medication"))]
    annotation = tmp_path / "annotation.jsonl"
    annotation.write_text(json.dumps({
        "id": "1-1", "part": "tune", "text_sha256": hashlib.sha256(text.encode()).hexdigest(),
        "spans": [{"start": text.index(w), "end": text.index(w) + len(w), "type": t} for w, t in spans]}) + "\n",
        "utf-8")
    return notes, annotation


def test_note_entities_are_scored_against_the_annotation(tmp_path: Path) -> None:
    notes, annotation = _notes(tmp_path)
    report = score_note_entities(notes, annotation, examples=3)
    medication, problem = report["tune"]["medication"]["overlap"], report["tune"]["problem"]["overlap"]
    assert (medication["tp"], medication["fn"]) == (4, 0) and problem["tp"] == 2
    result = CliRunner().invoke(cli, ["evaluate-note-entities", "--notes", str(notes), "--annotations",
                                      str(annotation)])
    assert result.exit_code == 0 and "medication overlap F1 1.000" in result.output, result.output


def test_a_note_that_is_not_the_annotated_text_is_refused(tmp_path: Path) -> None:
    notes, annotation = _notes(tmp_path)
    notes.write_text(json.dumps({"id": "1-1", "text": "Another text."}) + "\n", "utf-8")
    with pytest.raises(InputError, match="1-1"):
        score_note_entities(notes, annotation)


def test_the_shipped_annotation_holds_offsets_not_text() -> None:
    rows = [json.loads(line) for line in NOTE_ANNOTATIONS.read_text("utf-8").splitlines()]
    assert len(rows) == 60 and {r["part"] for r in rows} == {"tune", "untuned"}
    assert all(set(r) == {"id", "part", "text_sha256", "spans"} for r in rows)
    assert all(set(s) == {"start", "end", "type"} for r in rows for s in r["spans"])


@pytest.mark.skipif(not IU_DEV.is_file(), reason=f"the IU development reports are not here ({IU_DEV})")
def test_on_the_real_reports_never_tuned_on_the_bar_holds() -> None:
    untuned = score_mesh(IU_DEV, part="untuned")["untuned"]["stated"]
    assert untuned["micro"]["f1"] >= 0.90
    assert all(v["f1"] >= 0.80 for v in untuned["by_flag"].values()), untuned["by_flag"]


@pytest.mark.skipif(not PHYSIONET_DEV.is_file(), reason=f"the PhysioNet development notes are not here ({PHYSIONET_DEV})")
def test_on_the_real_notes_the_medications_and_problems_stay_found() -> None:
    report = score_note_entities(PHYSIONET_DEV)
    assert report["tune"]["medication"]["overlap"]["f1"] >= 0.90
    assert report["untuned"]["medication"]["overlap"]["f1"] >= 0.75
    assert report["untuned"]["problem"]["overlap"]["f1"] >= 0.60
