"""Entities: the bundled vocabulary (codes checked against ICD-10-CM), each entity type with its attributes,
laterality, site vocabularies, FHIR R4 output, and `clinical-mm extract --format fhir` end to end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from clinical_mm.cli import cli
from clinical_mm.core.errors import ConfigurationError
from clinical_mm.extraction.extractor import ClinicalExtractor
from clinical_mm.extraction.vocabulary import Vocabulary
from clinical_mm.outputs.fhir_r4 import extraction_bundle, validate_resource
from clinical_mm.pipeline.note_extraction import extraction_document

EXTRACTOR = ClinicalExtractor()


def _entities(text: str, kind: str | None = None) -> list[dict[str, Any]]:
    return [e.to_dict() for e in EXTRACTOR.entities(text) if kind is None or e.type == kind]


def _one(text: str, kind: str) -> dict[str, Any]:
    found = _entities(text, kind)
    assert len(found) == 1, found
    return found[0]


def test_every_icd10cm_code_of_the_vocabulary_exists_and_carries_its_official_description() -> None:
    import simple_icd_10_cm as icd

    coded = [c for c in Vocabulary.shipped().concepts if c.system == "ICD-10-CM"]
    assert len(coded) >= 120
    for concept in coded:
        assert icd.is_valid_item(concept.code), concept
        assert icd.get_description(concept.code) == concept.display, concept


def test_the_vocabulary_covers_each_entity_type_and_codes_problems_drugs_labs_and_vitals() -> None:
    concepts = Vocabulary.shipped().concepts
    by_type: dict[str, set[str | None]] = {}
    for c in concepts:
        by_type.setdefault(c.type, set()).add(c.system)
    assert by_type["problem"] == {"ICD-10-CM"} and by_type["medication"] <= {"RxNorm", None}
    assert by_type["lab"] == {"LOINC"} and by_type["vital"] == {"LOINC"}
    assert by_type["procedure"] == by_type["device"] == by_type["anatomy"] == {None}
    assert sum(c.type == "medication" and c.system == "RxNorm" for c in concepts) >= 100


@pytest.mark.parametrize(("text", "term", "code", "assertion", "laterality"), [
    ("Right lower lobe pneumonia.", "pneumonia", "J18.9", "present", "right"),
    ("No pneumothorax.", "pneumothorax", "J93.9", "absent", None),
    ("Small left pleural effusion.", "pleural effusion", "J90", "present", "left"),
    ("Bilateral pleural effusions are noted.", "pleural effusions", "J90", "present", "bilateral"),
    ("Effusion on the right is unchanged.", "Effusion", "J90", "present", "right"),
    ("PMH: HTN, HLD.", "HTN", "I10", "historical", None),
    ("Possible early pneumonia.", "pneumonia", "J18.9", "possible", None),
    ("Mother with breast cancer.", "breast cancer", "C50.919", "family", None),
    ("Return if chest pain recurs.", "chest pain", "R07.9", "hypothetical", None),
    ("Hx of CVA with residual left hemiparesis.", "CVA", "I63.9", "historical", None),
    ("Ground-glass opacities in both lungs.", "Ground-glass opacities", "R91.8", "present", "bilateral"),
    ("Patient with pe.", "pe", None, None, None),                                       # =PE is case-exact
    ("Acute PE on CTA.", "PE", "I26.99", "present", None),
])
def test_problems_are_coded_asserted_and_sided(text: str, term: str, code: str | None, assertion: str | None,
                                               laterality: str | None) -> None:
    found = [e for e in _entities(text, "problem") if e["text"] == term]
    if code is None:
        assert found == []
        return
    (e,) = found
    assert e["code"]["code"] == code and e["code"]["system"] == "http://hl7.org/fhir/sid/icd-10-cm"
    assert e["assertion"] == assertion
    assert e.get("laterality") == laterality
    assert text[e["start"]:e["end"]] == term


@pytest.mark.parametrize(("line", "rxcui", "expected"), [
    ("Metoprolol tartrate 25 mg by mouth twice daily", "6918", {"dose": "25 mg", "route": "PO", "frequency": "BID"}),
    ("lisinopril 10mg PO qd", "29046", {"dose": "10 mg", "route": "PO", "frequency": "DAILY"}),
    ("Albuterol 2 puffs inhaled q4-6h prn wheezing", "435",
     {"dose": "2 puffs", "route": "INH", "frequency": "Q4-6H", "as_needed": True, "as_needed_for": "wheezing"}),
    ("Amoxicillin 500 mg PO TID x 7 days", "723",
     {"dose": "500 mg", "route": "PO", "frequency": "TID", "duration": "7 days"}),
    ("Heparin 5000 units SC q8h", "5224", {"dose": "5000 units", "route": "SC", "frequency": "Q8H"}),
    ("Vancomycin 1 g IV every 12 hours", "11124", {"dose": "1 g", "route": "IV", "frequency": "Q12H"}),
    ("Atorvastatin 40 mg nightly", "83367", {"dose": "40 mg", "frequency": "QHS"}),
    ("Tylenol 650 mg PO q6h as needed for pain", "161",
     {"dose": "650 mg", "route": "PO", "frequency": "Q6H", "as_needed": True, "as_needed_for": "pain"}),
    ("Prednisone 40 mg daily for 5 days", "8640", {"dose": "40 mg", "frequency": "DAILY", "duration": "5 days"}),
    ("Nitroglycerin 0.4 mg SL q5min x3 prn chest pain", "4917",
     {"dose": "0.4 mg", "route": "SL", "as_needed": True, "as_needed_for": "chest pain"}),
    ("Furosemide 40 mg IV once", "4603", {"dose": "40 mg", "route": "IV", "frequency": "ONCE"}),
    ("Insulin glargine 20 units subcutaneously at bedtime", "274783",
     {"dose": "20 units", "route": "SC", "frequency": "QHS"}),
])
def test_medications_carry_dose_route_frequency_duration_and_prn(line: str, rxcui: str,
                                                                expected: dict[str, object]) -> None:
    e = _one(line, "medication")
    assert e["code"]["code"] == rxcui and e["code"]["system"] == "http://www.nlm.nih.gov/research/umls/rxnorm"
    assert {k: e[k] for k in ("dose", "route", "frequency", "duration", "as_needed", "as_needed_for") if k in e} \
        == expected
    assert f"{e['dose_value']} {e['dose_unit']}" == e["dose"]


def test_two_drugs_on_one_line_keep_their_own_instructions() -> None:
    meds = _entities("Started on lisinopril 10 mg daily and metformin 500 mg BID.", "medication")
    assert [(m["concept"], m["dose"], m["frequency"]) for m in meds] == [("lisinopril", "10 mg", "DAILY"),
                                                                         ("metformin", "500 mg", "BID")]


def test_a_stopped_or_denied_drug_is_asserted() -> None:
    assert _one("She is not taking aspirin.", "medication")["assertion"] == "absent"
    assert _one("Previously on warfarin.", "medication")["assertion"] == "historical"


@pytest.mark.parametrize(("text", "kind", "loinc", "value", "unit"), [
    ("BP 142/88", "vital", "85354-9", "142/88", None),
    ("HR 104, RR 22", "vital", "8867-4", "104", None),
    ("T 38.5 C", "vital", "8310-5", "38.5", "C"),
    ("Temp 101.2 F", "vital", "8310-5", "101.2", "F"),
    ("SpO2 91% on room air", "vital", "59408-5", "91", "%"),
    ("K 5.8", "lab", "2823-3", "5.8", None),
    ("Creatinine of 1.9 mg/dL", "lab", "2160-0", "1.9", "mg/dL"),
    ("Hgb was 8.1 g/dL", "lab", "718-7", "8.1", "g/dL"),
    ("Lactate 4.1 mmol/L", "lab", "2524-7", "4.1", "mmol/L"),
    ("Troponin negative x2", "lab", "10839-9", "negative", None),
    ("INR: 2.3", "lab", "6301-6", "2.3", None),
    ("EF 20%", "measurement", "10230-1", "20", "%"),
    ("Ejection fraction of 35-40%", "measurement", "10230-1", "35-40", "%"),
])
def test_labs_vitals_and_ejection_fraction_carry_their_values(text: str, kind: str, loinc: str, value: str,
                                                             unit: str | None) -> None:
    e = [x for x in _entities(text, kind)][0]
    assert e["code"]["code"] == loinc and e["code"]["system"] == "http://loinc.org"
    assert e["value"] == value and e.get("unit") == unit


@pytest.mark.parametrize("text", ["K was not checked.", "Discussed sodium intake.", "T wave inversions."])
def test_a_lab_or_vital_named_without_a_value_is_not_a_result(text: str) -> None:
    assert _entities(text, "lab") == [] and _entities(text, "vital") == []


@pytest.mark.parametrize(("text", "value", "unit", "of"), [
    ("There is a 8 mm nodule in the right upper lobe.", "8", "mm", "nodule"),
    ("A mass measuring 2.1 x 1.8 cm in the left upper lobe.", "2.1 x 1.8", "cm", "mass"),
    ("Endotracheal tube terminates 4 cm above the carina.", "4", "cm", "Endotracheal tube"),
    ("5 mm pulmonary nodule, unchanged.", "5", "mm", "pulmonary nodule"),
])
def test_sizes_are_measurements_of_what_they_stand_next_to(text: str, value: str, unit: str, of: str) -> None:
    e = [x for x in _entities(text, "measurement") if x["code"] is None][0]
    assert (e["value"], e["unit"], e["of"]) == (value, unit, of)


@pytest.mark.parametrize(("text", "kind", "concept", "laterality"), [
    ("Right internal jugular central venous catheter tip in the SVC.", "device", "central venous catheter", "right"),
    ("Left chest tube in place.", "device", "chest tube", "left"),
    ("ET tube 5 cm above the carina.", "device", "endotracheal tube", None),
    ("Dual-chamber pacemaker leads are unchanged.", "device", "cardiac pacemaker", None),
    ("NG tube tip in the stomach.", "device", "enteric tube", None),
    ("Status post CABG.", "procedure", "coronary artery bypass graft", None),
    ("CT chest showed no embolism.", "procedure", "computed tomography", None),
    ("Left thoracentesis yesterday.", "procedure", "thoracentesis", "left"),
    ("Opacity in the right lower lobe.", "anatomy", "lower lobe", "right"),
    ("Blunting of the left costophrenic angle.", "anatomy", "costophrenic angle", "left"),
    ("RUL consolidation.", "anatomy", "upper lobe", "right"),
])
def test_devices_procedures_and_anatomy_are_found_with_their_side(text: str, kind: str, concept: str,
                                                                  laterality: str | None) -> None:
    e = [x for x in _entities(text, kind) if x["concept"] == concept][0]
    assert e["code"] is None and e.get("laterality") == laterality


def test_a_site_vocabulary_adds_terms_and_overrides_a_concept(tmp_path: Path) -> None:
    site = tmp_path / "site.tsv"
    site.write_text("# our terms\nmedication\tRxNorm\t2002\tmade-up drug\tzorbatrex\n"
                    "problem\tICD-10-CM\tJ18.1\tLobar pneumonia, unspecified organism\tpneumonia\n")
    extractor = ClinicalExtractor(vocabulary=Vocabulary.load([site]))
    found = {e.text: e.concept for e in extractor.entities("Zorbatrex 5 mg daily for pneumonia.")}
    assert found["Zorbatrex"] is not None and found["Zorbatrex"].code == "2002"
    assert found["pneumonia"] is not None and found["pneumonia"].code == "J18.1"


@pytest.mark.parametrize(("content", "message"), [
    ("problem\tICD-10-CM\tI10\n", "expected 5 tab-separated fields"),
    ("disease\tICD-10-CM\tI10\tHypertension\thtn\n", "unknown type 'disease'"),
    ("problem\tSNOMED\t38341003\tHypertension\thtn\n", "unknown code system 'SNOMED'"),
    ("problem\tICD-10-CM\t4010\tHypertension\thtn\n", "'4010' is not a ICD-10-CM code"),
    ("lab\tLOINC\t2823\tPotassium\tK+\n", "'2823' is not a LOINC code"),
])
def test_a_bad_vocabulary_file_is_refused_with_its_line(tmp_path: Path, content: str, message: str) -> None:
    bad = tmp_path / "bad.tsv"
    bad.write_text("# header\n" + content)
    with pytest.raises(ConfigurationError, match="line 2") as info:
        Vocabulary.load([bad])
    assert message in str(info.value)


NOTE = """HPI: 67M with HTN and CAD presents with SOB. Denies fever.
Medications: apixaban 5 mg PO BID; albuterol 2 puffs inhaled q4h prn wheezing.
Allergies: amoxicillin.
Vitals: BP 142/88, HR 104, SpO2 91%.
Labs: K 5.8, troponin negative.
FINDINGS: 8 mm nodule in the right upper lobe. No pneumothorax. Possible left lower lobe pneumonia.
Family history: mother with breast cancer. Return if chest pain recurs."""


def test_the_fhir_bundle_holds_conditions_medications_observations_and_provenance() -> None:
    entities = _entities(NOTE)
    bundle = extraction_bundle("note-1", "ab" * 32, entities, "clinical-mm-extract@test")
    resources = [e["resource"] for e in bundle["entry"]]
    for r in resources:
        validate_resource(r)
    by_code = {}
    for r in resources:
        code = r.get("code") or r.get("medicationCodeableConcept")
        if code is not None and code.get("coding"):
            by_code[code["coding"][0]["code"]] = r
    ptx, pna = by_code["J93.9"], by_code["J18.9"]
    assert ptx["resourceType"] == "Condition"
    assert ptx["verificationStatus"]["coding"][0]["code"] == "refuted" and "clinicalStatus" not in ptx
    assert pna["verificationStatus"]["coding"][0]["code"] == "unconfirmed" and pna["bodySite"] == [{"text": "left"}]
    assert by_code["I10"]["clinicalStatus"]["coding"][0]["code"] == "active"
    family = [r for r in resources if r["resourceType"] == "FamilyMemberHistory"]
    assert [f["condition"][0]["code"]["coding"][0]["code"] for f in family] == ["C50.919"]
    assert "R07.9" not in by_code  # hypothetical: not a fact
    apixaban = by_code["1364430"]
    assert apixaban["resourceType"] == "MedicationStatement" and apixaban["status"] == "active"
    dosage = apixaban["dosage"][0]
    assert dosage["doseAndRate"][0]["doseQuantity"] == {"value": 5.0, "unit": "mg",
                                                        "system": "http://unitsofmeasure.org", "code": "mg"}
    assert dosage["timing"]["repeat"] == {"frequency": 2, "period": 1.0, "periodUnit": "d"}
    assert by_code["435"]["dosage"][0]["asNeededCodeableConcept"] == {"text": "wheezing"}
    allergy = by_code["723"]  # "Allergies: amoxicillin": an allergy, not a medication taken
    assert allergy["resourceType"] == "AllergyIntolerance" and allergy["category"] == ["medication"]
    assert allergy["verificationStatus"]["coding"][0]["code"] == "confirmed"
    assert not any(r["resourceType"] == "MedicationStatement" and r["medicationCodeableConcept"]["text"] ==
                   "amoxicillin" for r in resources)
    bp = by_code["85354-9"]
    assert [c["valueQuantity"]["value"] for c in bp["component"]] == [142.0, 88.0]
    assert by_code["8867-4"]["valueQuantity"]["code"] == "/min"
    assert by_code["10839-9"]["valueString"] == "negative"
    sizes = [r for r in resources if r["resourceType"] == "Observation" and r["code"].get("text") == "size of nodule"]
    assert sizes[0]["valueQuantity"]["value"] == 8.0 and sizes[0]["valueQuantity"]["code"] == "mm"
    provenance = resources[-1]
    assert provenance["resourceType"] == "Provenance"
    assert len(provenance["target"]) == len(resources) - 2  # every fact, not the Device or itself
    assert provenance["entity"][0]["what"]["identifier"]["value"] == "ab" * 32
    assert all(r["meta"]["security"][0]["code"] == "AIAST" for r in resources[1:-1])


@pytest.mark.parametrize(("line", "repeat"), [
    ("Potassium chloride 40 mEq PO x 2 doses", {"count": 2}),
    ("Cefepime 2 g IV q8h for 14 days", {"frequency": 1, "period": 8.0, "periodUnit": "h", "boundsDuration": {
        "value": 14.0, "unit": "days", "system": "http://unitsofmeasure.org", "code": "d"}}),
    ("Albuterol 2 puffs q4-6h prn", {"frequency": 1, "period": 4.0, "periodMax": 6.0, "periodUnit": "h"}),
    ("Furosemide 40 mg IV once", {"count": 1}),
    ("Atorvastatin 40 mg nightly", {"frequency": 1, "period": 1.0, "periodUnit": "d", "when": ["HS"]}),
])
def test_every_parsed_frequency_and_duration_becomes_a_valid_fhir_timing(line: str, repeat: dict[str, object]) -> None:
    bundle = extraction_bundle("l", "cd" * 32, _entities(line), "clinical-mm-extract@test")
    (statement,) = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "MedicationStatement"]
    assert statement["dosage"][0]["timing"]["repeat"] == repeat


def test_a_value_stated_as_below_or_above_keeps_its_comparator_in_fhir() -> None:
    entities = _entities("Troponin <0.01 ng/mL. Lactate >= 4 mmol/L.")
    bundle = extraction_bundle("l", "aa" * 32, entities, "clinical-mm-extract@test")
    quantities = [e["resource"]["valueQuantity"] for e in bundle["entry"]
                  if e["resource"]["resourceType"] == "Observation"]
    assert [(q["value"], q.get("comparator"), q["unit"]) for q in quantities] == [(0.01, "<", "ng/mL"),
                                                                                   (4.0, ">=", "mmol/L")]


def test_extract_format_fhir_end_to_end_with_a_site_vocabulary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                               ) -> None:
    monkeypatch.setenv("CLINICAL_MM_KEY", "0d" * 32)
    monkeypatch.setenv("CLINICAL_MM_DATA_DIR", str(tmp_path / "data"))
    site = tmp_path / "site.tsv"
    site.write_text("medication\tRxNorm\t2002\tmade-up drug\tzorbatrex\n")
    src = tmp_path / "notes.jsonl"
    src.write_text(json.dumps({"id": "n1", "text": "Seen by Dr. Halvorsen on 07/22/2031. No pneumothorax. "
                                                   "Zorbatrex 5 mg PO daily."}) + "\n")
    result = CliRunner().invoke(cli, ["extract", "--jsonl", str(src), "--format", "fhir", "--vocabulary", str(site)])
    assert result.exit_code == 0, result.output
    bundle = json.loads(result.output)
    assert bundle["resourceType"] == "Bundle"
    kinds = sorted(e["resource"]["resourceType"] for e in bundle["entry"])
    assert kinds == ["Condition", "Device", "MedicationStatement", "Provenance"]
    assert "Halvorsen" not in result.output and "07/22/2031" not in result.output
    json_out = CliRunner().invoke(cli, ["extract", "--jsonl", str(src), "--vocabulary", str(site)])
    entities = json.loads(json_out.output)["entities"]
    assert [(e["type"], e["concept"], e["assertion"]) for e in entities] == [
        ("problem", "Pneumothorax, unspecified", "absent"), ("medication", "made-up drug", "present")]


def test_medication_dose_route_frequency_f1_on_both_annotated_sets_and_the_cli(tmp_path: Path) -> None:
    from clinical_mm.evaluation.medication_evaluation import (
        HELDOUT_MEDICATION_LINES,
        SHIPPED_MEDICATION_LINES,
        score_medications,
    )

    for path, n in ((SHIPPED_MEDICATION_LINES, 158), (HELDOUT_MEDICATION_LINES, 60)):
        report = score_medications(path, EXTRACTOR)
        assert report["n"] == n
        assert report["dose_route_frequency"]["f1"] >= 0.9, report["disagreements"]
        for line in path.read_text().splitlines():  # and every line's instructions make a valid FHIR Dosage
            text = json.loads(line)["text"]
            bundle = extraction_bundle("l", "ef" * 32, _entities(text), "clinical-mm-extract@test")
            assert any(e["resource"]["resourceType"] == "MedicationStatement" for e in bundle["entry"]), text
    result = CliRunner().invoke(cli, ["evaluate-medications", "--heldout"])
    assert result.exit_code == 0 and "dose/route/frequency F1 0.9" in result.output and "on 60 lines" in result.output
    # a wrong dose counts against precision and recall; a line that does not parse is refused with its number
    own = tmp_path / "own.jsonl"
    own.write_text(json.dumps({"id": "x", "text": "Lisinopril 10 mg PO daily", "drug": "Lisinopril",
                               "dose": ["20 mg"], "route": "PO", "frequency": "DAILY"}) + "\n")
    dose = score_medications(own, EXTRACTOR)["by_attribute"]["dose"]
    assert (dose["tp"], dose["fp"], dose["fn"]) == (0, 1, 1)
    own.write_text("\n" + json.dumps({"text": "Lisinopril 10 mg", "drug": "metformin"}) + "\n")
    refused = CliRunner().invoke(cli, ["evaluate-medications", "--lines", str(own)])
    assert refused.exit_code != 0 and "line 2: expected" in refused.output


def test_every_shipped_note_style_makes_a_valid_fhir_bundle() -> None:
    # 330 nursing, radiology and discharge notes (vitals, doses, dates, upper case): no input the extractor reads
    # may make an invalid R4 resource
    from clinical_mm.evaluation.phi_note_corpus import SHIPPED_NOTES

    kinds: set[str] = set()
    for line in SHIPPED_NOTES.read_text().splitlines():
        bundle = extraction_document(EXTRACTOR, "n", json.loads(line)["text"], [], "fhir")
        kinds |= {e["resource"]["resourceType"] for e in bundle["entry"]}  # type: ignore[index]
    assert {"Condition", "MedicationStatement", "Observation", "Provenance"} <= kinds


@pytest.mark.parametrize(("text", "found", "absent"), [
    # issue 21: ICU nursing shorthand is read, and the words it must not take are not
    ("Neo gtt titrated, dobut at 5, lopressor held, KCL 40 meq given, abx continued.",
     {("medication", "Neo"), ("medication", "dobut"), ("medication", "lopressor"), ("medication", "KCL"),
      ("medication", "abx")}, set()),
    ("Pt agitated and diaphoretic, occasional pvcs, abd distended, LS coarse.",
     {("problem", "agitated"), ("problem", "diaphoretic"), ("problem", "pvcs"), ("problem", "abd distended"),
      ("problem", "LS coarse")}, set()),
    ("Abdomen soft, non-distended. Images reviewed on PACS. Left lateral decubitus view. Coarse calcifications.",
     set(), {"distended", "PACS", "decubitus", "Coarse"}),
])
def test_when_icu_shorthand_is_written_then_it_is_read_and_lookalikes_are_not(text: str, found: set[tuple[str, str]],
                                                                            absent: set[str]) -> None:
    entities = {(e.type, e.text) for e in EXTRACTOR.entities(text)}
    assert found <= entities, entities
    assert not {t for _, t in entities} & absent, entities
