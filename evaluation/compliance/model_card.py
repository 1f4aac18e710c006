"""The model card of an evaluation, in the Coalition for Health AI "Applied Model Card" XML (schema v0.2, vendored
in ``schemas/`` with its licence), validated against that schema before it is written."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import xmlschema

from clinical_mm.core.errors import OutputError
from clinical_mm.core.findings import FINDING_LABELS

__all__ = ["CHAI_NAMESPACE", "SCHEMA", "model_card_xml", "validate_model_card"]

CHAI_NAMESPACE = "https://mc.chai.org/v0.2/schema.xsd"
SCHEMA = Path(__file__).with_name("schemas") / "chai_applied_model_card_v0.2.xsd"
_DSIG = "http://www.w3.org/2000/09/xmldsig#"


def _schema() -> xmlschema.XMLSchema:
    """The vendored schema; its import of the W3C signature schema resolves to xmlschema's own copy (offline)."""
    dsig = Path(os.path.dirname(xmlschema.__file__)) / "schemas" / "DSIG" / "xmldsig-core-schema.xsd"
    return xmlschema.XMLSchema(str(SCHEMA), locations={_DSIG: str(dsig)})


def validate_model_card(xml: str) -> list[str]:
    """The schema's objections to ``xml`` (empty when it is valid; ill-formed XML is one objection)."""
    try:
        return [str(e.reason or e)[:300] for e in _schema().iter_errors(xml)]
    except (xmlschema.XMLResourceError, ET.ParseError) as exc:
        return [f"not well-formed XML ({exc.__class__.__name__})"]


def _text(parent: ET.Element, tag: str, text: str) -> ET.Element:
    el = ET.SubElement(parent, f"{{{CHAI_NAMESPACE}}}{tag}")
    el.text = text
    return el


def _group(parent: ET.Element, tag: str) -> ET.Element:
    return ET.SubElement(parent, f"{{{CHAI_NAMESPACE}}}{tag}")


def _key_metric(parent: ET.Element, tag: str, goal: str, results: list[tuple[str, Any]], interpretation: str,
                test_type: str, data: str, validation: str) -> None:
    block = _group(parent, tag)
    _text(block, "MetricGoal", goal)
    res = _group(block, "Results")
    for label, value in results or [("no result", {"reason": "no study was analysed"})]:
        item = _group(res, "MetricResult")
        _text(item, "Label", label)
        _text(item, "ValueJson", json.dumps(value, sort_keys=True))
    _text(block, "Interpretation", interpretation)
    _text(block, "TestType", test_type)
    _text(block, "TestingDataDescription", data)
    _text(block, "ValidationProcessAndJustification", validation)


def model_card_xml(results: dict[str, Any]) -> str:
    """The Applied Model Card of the evaluated model, its key metrics taken from ``results``; raises
    :class:`OutputError` when the card does not validate against the schema."""
    ET.register_namespace("", CHAI_NAMESPACE)
    root = ET.Element(f"{{{CHAI_NAMESPACE}}}AppliedModelCard")
    _describe(root, results)
    _key_metrics(root, results)
    resources = _group(root, "Resources")
    _text(resources, "EvaluationReferences", "report.html, report.pdf and results.json of this evaluation.")
    _text(resources, "PeerReviewedPublications", "None.")
    _text(resources, "PatientConsentOrDisclosure", "Per the site's policy; outputs are preliminary until signed.")
    _text(root, "Bibliography", "Mitchell et al., Model Cards for Model Reporting, FAT* 2019; CHAI Applied Model "
                                "Card v0.2.")
    ET.indent(root)
    xml = '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
    errors = validate_model_card(xml)
    if errors:
        raise OutputError(f"the model card does not validate against the CHAI schema: {errors[0]}")
    return xml


def _describe(root: ET.Element, results: dict[str, Any]) -> None:
    """BasicInfo, ReleaseInfo, ModelSummary, UsesAndDirections, Warnings and TrustIngredients."""
    prov = results["provenance"]
    flags = results["flags"]
    basic = _group(root, "BasicInfo")
    _text(basic, "ModelName", prov["model"]["id"])
    _text(basic, "ModelDeveloper", "clinical-mm (open source)")
    _text(basic, "DeveloperContact", "the clinical-mm project's issue tracker")
    release = _group(root, "ReleaseInfo")
    _text(release, "ReleaseStage", "Local validation; preliminary outputs reviewed by a radiologist")
    _text(release, "ReleaseDate", prov["date"][:10])
    _text(release, "ReleaseVersion", f"weights sha256 {prov['model']['sha256']}; clinical-mm {prov['code']['version']}")
    _text(release, "GlobalAvailability", "Open source (Apache-2.0); runs on the site's own machines")
    _text(release, "RegulatoryApproval", "None. Not a cleared or CE-marked device.")
    summary = _group(root, "ModelSummary")
    _text(summary, "Summary",
          "Triage flags with calibrated probabilities and a draft report for frontal chest radiographs: a ViT image "
          "encoder, a BLIP-2 Q-Former and a causal language model. Flags: "
          + ", ".join(FINDING_LABELS[f] for f in flags) + ".")
    keywords = _group(summary, "Keywords")
    for word in ("chest radiograph", "triage", "report generation", "BLIP-2"):
        _text(keywords, "Keyword", word)
    uses = _group(root, "UsesAndDirections")
    _text(uses, "IntendedUseAndWorkflow",
          "Studies pushed from the PACS are de-identified, triaged and drafted; a raised flag only raises a case's "
          "worklist priority and never removes one; the draft is preliminary until a radiologist signs it.")
    _text(uses, "PrimaryIntendedUsers", "Radiologists reviewing drafts; PACS worklists taking triage callbacks.")
    _text(uses, "HowToUse", "clinical-mm serve (DICOM C-STORE, DICOMweb) or clinical-mm analyze; evaluate locally "
                            "with clinical-mm evaluate before use and watch it with clinical-mm monitor.")
    _text(uses, "TargetedPatientPopulation", "Adults with a frontal (PA or AP) chest radiograph.")
    _text(uses, "CautionedOutOfScopeSettings",
          "Other modalities and body parts (refused by the scope check), children, lateral-only studies, images "
          "unlike the validation data (the out-of-distribution check warns).")
    warnings = _group(root, "Warnings")
    flagged = results["summary"]["flagged_groups"]
    _text(warnings, "KnownRisksAndLimitations",
          "Missed findings (see sensitivity and its interval per flag); false flags raise priority needlessly. "
          f"{results['input_handling']['refused']} of {results['input_handling']['rows']} test studies were refused.")
    _text(warnings, "KnownBiasesOrEthicalConsiderations",
          "Subgroups flagged in this evaluation: " + (", ".join(flagged) if flagged else "none") + ".")
    _text(warnings, "ClinicalRiskLevel", "Moderate: decision support for prioritisation; a radiologist reads every study.")
    trust = _group(root, "TrustIngredients")
    facts = _group(trust, "AISystemFacts")
    _text(facts, "OutcomesAndOutputs", "Per-flag calibrated probabilities, raised flags, priority, a draft report "
                                       "(FHIR R4 DiagnosticReport and DICOM SR).")
    _text(facts, "ModelType", "Multimodal vision-language model (ViT, Q-Former, causal LM) with calibrated heads.")
    _text(facts, "InputDataSource", "DICOM chest radiographs, de-identified (DICOM PS3.15) before the model sees them.")
    _text(facts, "OutputAndInputDataTypes", "Input: DICOM DX/CR images. Output: probabilities, text, FHIR, DICOM SR.")
    _text(facts, "DevelopmentDataCharacterization", str(prov["model"]["training_data"]))
    _text(facts, "BiasMitigationApproaches",
          "Disaggregated evaluation by sex, age band, site, manufacturer and view with permutation tests and Holm "
          "correction; post-deployment monitoring of concordance and input drift.")
    _text(facts, "OngoingMaintenance", "clinical-mm monitor: concordance with signed reports, drift of inputs and "
                                       "refusal rate per site and week, with alert thresholds.")
    _text(facts, "Security", "Runs on site; PHI removed before the model; tamper-evident audit log; signed reports.")
    transparency = _group(trust, "TransparencyInformation")
    _text(transparency, "FundingSource", "Open-source project.")
    _text(transparency, "StakeholdersConsulted", "Not recorded by this evaluation.")


def _key_metrics(root: ET.Element, results: dict[str, Any]) -> None:
    """KeyMetrics: efficacy per flag, fairness per subgroup, safety (calibration, refusals)."""
    prov, flags, flagged = results["provenance"], results["flags"], results["summary"]["flagged_groups"]
    metrics = _group(root, "KeyMetrics")
    data_text = (f"Test manifest {prov['manifest']['name']} (sha256 {prov['manifest']['sha256']}), "
                 f"{results['summary']['analysed']} studies analysed of {results['summary']['studies']}.")
    _key_metric(metrics, "UsefulnessUsabilityEfficacy", "; ".join(results["goals"]["goals"]) or "none set",
                [(f"{FINDING_LABELS[f]} {m}", row[m]) for f, row in flags.items() for m in ("auroc", "sensitivity",
                                                                                             "specificity")],
                f"{results['summary']['goals']['met']} goals met, {results['summary']['goals']['not_met']} not met.",
                "Retrospective local validation", data_text,
                "95% intervals: Wilson for proportions, stratified bootstrap for AUROC.")
    _key_metric(metrics, "FairnessEquity", "No subgroup significantly below the rest (Holm-adjusted permutation tests)",
                [(f"{g['attribute']}={g['group']}", {"n": g["n"], "flagged": g["flagged"], "pooled": g["pooled"]})
                 for g in results["subgroups"]],
                "Flagged: " + (", ".join(flagged) if flagged else "none"), "Disaggregated retrospective evaluation",
                data_text, "One-sided permutation tests of pooled sensitivity and specificity, group against rest.")
    _key_metric(metrics, "SafetyReliability", "Calibrated probabilities (ECE) and input handling",
                [(f"{FINDING_LABELS[f]} ECE", row["ece"]) for f, row in flags.items()]
                + [("refused studies", {"refused": results["input_handling"]["refused"],
                                        "rows": results["input_handling"]["rows"]})],
                "See the report's calibration and input-handling sections.", "Retrospective local validation",
                data_text, "ECE over 10 bins with a paired bootstrap interval.")
