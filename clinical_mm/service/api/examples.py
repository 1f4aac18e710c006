"""Example responses of the HTTP API, for its OpenAPI document."""

from __future__ import annotations

from typing import Any

__all__ = ["EXAMPLES", "STUDY", "ok"]

#: a pseudonymous study key
STUDY = "2.25.181093627262535716218472861139924730015"
_WORKLIST_ROW = {"study_key": STUDY, "state": "delivered", "arrived_at": 1795000000.0, "attempts": 0, "error": None,
                 "priority": "urgent", "updated_at": 1795000001.2, "review": None}
_RESULT = {"study": STUDY, "flags": {"pneumothorax": 0.91, "effusion": 0.08}, "thresholds": {"pneumothorax": 0.42},
           "raised": ["pneumothorax"], "priority": "urgent", "findings": "Small right apical pneumothorax.",
           "impression": "Small right pneumothorax.", "fhir": f"fhir/{STUDY}.json"}
_AUDIT_RECORD = {"id": 7, "timestamp": "2026-11-18T09:20:01.123456+00:00", "actor": "k_1a2b3c4d5e6f",
                 "action": "http GET /v1/worklist", "input_hash": "", "study": "", "model_id": "", "model_sha256": "",
                 "output_hash": "", "outcome": "200", "detail": "", "prev_hash": "9f" * 32, "hash": "3c" * 32}
#: the success example of each operation, by name
EXAMPLES: dict[str, Any] = {
    "health": {"status": "ok"},
    "extraction": {"id": "note", "entities": [
        {"type": "medication", "text": "lisinopril", "start": 28, "end": 38,
         "code": {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "29046", "display": "lisinopril"},
         "concept": "lisinopril", "assertion": "present", "section": "medications", "cues": [], "dose": "10 mg",
         "route": "PO", "frequency": "DAILY"}],
        "targets": [{"target": "pneumothorax", "found": True, "start": 66, "end": 78, "assertion": "absent",
                     "section": "impression", "cues": ["No"]}]},
    "ready": {"status": "ready"},
    "report": {"resourceType": "DiagnosticReport", "status": "final", "conclusion": "Small right pneumothorax.",
               "performer": [{"identifier": {"system": "urn:clinical-mm:reviewer", "value": "k_1a2b3c4d5e6f"},
                              "display": "Dr. A. Reader"}]},
    "worklist": [_WORKLIST_ROW],
    "study": {**_WORKLIST_ROW, "result": _RESULT, "instances": 2},
    "identity": {"study": STUDY, "accession": "ACC00417731", "patient_name": "DOE^JANE"},
    "similar": {"study": STUDY, "similar": [{"study": "2.25.41172409913245", "report": "Small right pneumothorax. "
                                                                                   "No pleural effusion.",
                                             "signed_at": "2031-03-02T10:14:07+00:00", "score": 0.62}]},
    "answer": {"study": STUDY, "question": "Which side is the pneumothorax on?", "answer": "right"},
    "zero_shot": {"study": STUDY, "zero_shot": [{"finding": "endotracheal tube", "probability": 0.93, "margin": 0.081,
                                                 "single_prompt_margin": 0.064, "calibrated": True}]},
    "grounded": {"study": STUDY, "phrase": "pacemaker", "region": {"peak": [71.5, 23.0],
                                                                  "boxes": [[62.1, 15.6, 80.5, 30.1]]}},
    "draft": {"study": STUDY, "findings": _RESULT["findings"], "impression": _RESULT["impression"],
              "ai_findings": _RESULT["findings"], "ai_impression": _RESULT["impression"], "status": "draft",
              "flags": _RESULT["flags"], "raised": ["pneumothorax"], "priority": "urgent"},
    "edited": {"study": STUDY, "status": "edited"},
    "signed": {"study": STUDY, "status": "signed", "report": {"resourceType": "DiagnosticReport", "status": "final"},
               "diff": "--- ai-draft\n+++ signed\n"},
    "rejected": {"study": STUDY, "status": "rejected"},
    "retried": {"study": STUDY, "state": "received"},
    "upload": {"stored": 2, "duplicates": 0, "studies": [STUDY], "failed": []},
    "pull": {"pull_id": "pull_3f0c9d3b6a2e41d7b8c5e9a1", "state": "pending"},
    "pull_state": {"pull_id": "pull_3f0c9d3b6a2e41d7b8c5e9a1", "kind": "study", "state": "done", "attempts": 1,
                   "last_status": "1 study retrieved", "studies": [STUDY], "created_at": 1.8e9, "updated_at": 1.8e9},
    "subscriber": {"id": "sub_3f9a0c1d2e4b"},
    "subscribers": [{"id": "sub_3f9a0c1d2e4b", "url": "http://127.0.0.1:9000/triage", "min_priority": "urgent",
                     "created_at": 1795000000.0, "active": 1}],
    "deliveries": [{"event_id": "evt_5d41402abc4b2a76b9719d911017c592", "subscriber_id": "sub_3f9a0c1d2e4b",
                    "study_key": STUDY, "state": "delivered", "attempts": 1, "last_status": "204",
                    "created_at": 1795000002.0, "updated_at": 1795000002.1}],
    "audit": [_AUDIT_RECORD],
    "monitoring": {
        "period": {"from": "2026-09-21T00:00:00+00:00", "first_arrival": "2026-W48", "last_arrival": "2026-W49",
                   "weeks_are": "ISO weeks, UTC"}, "studies": 212, "refused": 6, "delivery_failed": 0,
        "signed": 150, "signed_with_edits": 31, "rejected": 2,
        "concordance": {"agreement_all_flags": {"estimate": 0.9, "lower": 0.84, "upper": 0.94}, "by_flag": {
            "pneumothorax": {"signed": 150, "both_positive": 9, "ai_only": 3, "radiologist_only": 1,
                             "both_negative": 137, "agreement": {"estimate": 0.973, "lower": 0.933, "upper": 0.99},
                             "sensitivity": {"estimate": 0.9, "lower": 0.596, "upper": 0.982},
                             "ppv": {"estimate": 0.75, "lower": 0.468, "upper": 0.911}, "kappa": 0.8}}},
        "by_site_week": [{"site": "PACS", "week": "2026-W49", "studies": 104, "refused": 3,
                          "refusal_rate": {"estimate": 0.029, "lower": 0.01, "upper": 0.081},
                          "refusal_reasons": {"not a chest radiograph (modality CT)": 3}, "delivery_failed": 0,
                          "signed": 70, "signed_with_edits": 12, "rejected": 1,
                          "agreement": {"estimate": 0.9, "lower": 0.81, "upper": 0.95},
                          "baseline": False, "drift": {"manufacturer": 0.04, "model": 0.04, "software": 0.51,
                                                       "view": 0.02},
                          "inputs": {"manufacturer": {"Acme Imaging": 104}, "model": {"AcmeDR 500": 104},
                                     "software": {"4.2.1": 50, "5.0": 54}, "view": {"PA": 80, "AP": 24}}}],
        "baselines": {"PACS": {"weeks": ["2026-W39"], "studies": 98, "enough": True}},
        "time_to_notification": {"available": True, "n": 140, "median_seconds": {"estimate": 6.2, "lower": 5.8,
                                                                                  "upper": 6.9}, "p90_seconds": 11.4,
                                 "by_site": {"PACS": {"n": 140, "median_seconds": {"estimate": 6.2, "lower": 5.8,
                                                                                   "upper": 6.9},
                                                      "p90_seconds": 11.4}}},
        "alerts": [{"site": "PACS", "week": "2026-W49", "kind": "drift_software", "value": 0.51, "threshold": 0.3,
                    "message": "PACS 2026-W49: software drifted from the baseline (distance 0.51)"}],
        "thresholds": {"min_agreement": 0.85, "max_refusal_rate": 0.1, "max_drift": 0.3, "baseline_weeks": 1,
                       "min_studies": 10}, "weeks": 12, "generated": "2026-12-06T21:00:00+00:00"},
}


def ok(name: str, status: int = 200, errors: dict[int, str] | None = None) -> dict[int | str, dict[str, Any]]:
    """An operation's documented responses: the example ``name`` for ``status``, and the description of each
    error status in ``errors``."""
    out: dict[int | str, dict[str, Any]] = {status: {"content": {"application/json": {"example": EXAMPLES[name]}}}}
    out.update({code: {"description": text} for code, text in (errors or {}).items()})
    return out
