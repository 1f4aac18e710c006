"""The HTTP API's models: request bodies (``*In``) and responses (``*Public``).

Requests and responses are separate classes, so a field read from a request or the database becomes part of
a response only by being declared here. Every response model mirrors what its route returned as a plain
dict before, key for key: fields that the database or the pipeline may leave out have defaults, and the
routes that return them serialise with ``response_model_exclude_unset`` (an absent key stays absent, a
``null`` stays ``null``). Nothing here holds PHI but :class:`StudyIdentityPublic`, the one response that
names a patient (radiologists only, every read audited): studies are named by pseudonymous keys, results are
PHI-free by construction, subscriber secrets and pull identifiers are never returned.

Two responses are free-form FHIR R4 resources (a signed DiagnosticReport, an extraction Bundle): they are
named root models over ``dict[str, Any]``, because their structure is that of FHIR (validated where they are
built, :mod:`clinical_mm.outputs.fhir_r4`), not of this API.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, model_validator

from clinical_mm.core.findings import Priority

__all__ = [
    "AuditRecordPublic", "DeliveryPublic", "DiagnosticReportPublic", "DicomAttributePublic", "DraftCheckPublic",
    "DraftIn", "DraftPublic", "EntityPublic", "FailedPartPublic", "FhirBundlePublic", "HealthPublic", "JobState",
    "NoteExtractionPublic", "NoteIn", "NoteOutputPublic", "PullIn", "PullPublic", "PullRequestedPublic",
    "ReadinessPublic", "RejectIn", "RetriedPublic", "ReviewPublic", "ReviewStatus", "SignIn", "SignedPublic",
    "StowPublic", "StudyIdentityPublic", "StudyPublic", "StudyResultPublic", "StudySummaryPublic",
    "SubscriberCreatedPublic", "SubscriberIn", "SubscriberPublic", "TargetPublic", "UploadPublic",
]

#: a study job's state (:data:`clinical_mm.service.store.STATES`)
JobState = Literal["received", "deidentified", "analyzed", "delivered", "failed"]
#: a review's status; ``draft`` until a radiologist edits, signs or rejects it
ReviewStatus = Literal["draft", "edited", "signed", "rejected"]


# ---------------------------------------------------------------------------------------------- requests
class DraftIn(BaseModel):
    """The radiologist's edit of a draft."""

    findings: str = Field(max_length=20000, examples=["The lungs are clear. No pleural effusion."])
    impression: str = Field(max_length=5000, examples=["No acute cardiopulmonary process."])


class SignIn(BaseModel):
    """The final text to sign; a part left out is the current draft's."""

    findings: str | None = Field(None, max_length=20000, description="Final findings (default: the current draft)")
    impression: str | None = Field(None, max_length=5000, description="Final impression (default: the current draft)")


class RejectIn(BaseModel):
    """Why the AI draft is rejected."""

    reason: str = Field(min_length=3, max_length=2000, examples=["Wrong laterality in the draft; dictating from scratch."])


class NoteIn(BaseModel):
    """A clinical note or report to extract from (it may hold PHI: it is de-identified before anything reads it)."""

    id: str = Field("note", max_length=200, pattern=r"^[^\x00-\x1f]*$", description="Echoed in the output")
    text: str = Field(max_length=200_000, examples=["HPI: 67M with HTN. Denies chest pain.\nMeds: lisinopril 10 mg "
                                                     "PO daily.\nIMPRESSION: No pneumothorax."])
    targets: list[str] = Field(default_factory=list, max_length=50, description="Terms to find and assert")
    format: Literal["json", "fhir"] = Field("json", description="json: entities and targets; fhir: an R4 Bundle")
    assume_deidentified: bool = Field(False, description="The text is de-identified already (recorded in the audit log)")


class PullIn(BaseModel):
    """Exactly one of the two: the study to pull from the PACS (DICOMweb), or the accession whose studies to pull."""

    study_uid: str | None = Field(None, max_length=64, pattern=r"^[0-9]+(\.[0-9]+)*$",
                                  description="StudyInstanceUID", examples=["1.2.826.0.1.3680043.8.498.1"])
    accession: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[^\\\x00-\x1f]+$",
                                  description="AccessionNumber", examples=["ACC0001"])

    @model_validator(mode="after")
    def _one(self) -> PullIn:
        if (self.study_uid is None) == (self.accession is None):
            raise ValueError("give exactly one of study_uid and accession")
        return self


class SubscriberIn(BaseModel):
    """A triage callback receiver to register."""

    url: str = Field(description="Callback URL (http or https, host on the allow-list)", max_length=2000,
                     pattern=r"^https?://[^\s/@]+(/\S*)?$", examples=["http://127.0.0.1:9000/triage"])
    secret: str = Field(min_length=16, max_length=256, description="HMAC-SHA256 key for X-ClinicalMM-Signature",
                        examples=["s3cr3t-shared-with-the-receiver"])
    min_priority: Literal["routine", "urgent", "critical"] = Field(
        "routine", description="Lowest priority that triggers a callback", examples=["urgent"])


# ---------------------------------------------------------------------------------------------- health
class HealthPublic(BaseModel):
    """Liveness."""

    status: Literal["ok"]


class ReadinessPublic(BaseModel):
    """Readiness (``not ready`` with status 503)."""

    status: Literal["ready", "not ready"]


# ---------------------------------------------------------------------------------------------- ingest
class DicomAttributePublic(BaseModel):
    """One attribute in the DICOM JSON model (PS3.18 F.2): its VR and values."""

    model_config = ConfigDict(populate_by_name=True)

    vr: str
    value: list[Any] = Field(alias="Value")


class StowPublic(BaseModel):
    """The STOW-RS response (PS3.18 10.5.3), in the DICOM JSON model: the stored instances and the failed ones.
    A sequence with no item is left out."""

    model_config = ConfigDict(populate_by_name=True)

    referenced_sops: DicomAttributePublic | None = Field(
        None, alias="00081199", description="ReferencedSOPSequence: each stored instance by its pseudonymous "
                                            "ReferencedSOPInstanceUID (0008,1155)")
    failed_sops: DicomAttributePublic | None = Field(
        None, alias="00081198", description="FailedSOPSequence: one item per part not stored, FailureReason "
                                            "(0008,1197) 0xC000")


class FailedPartPublic(BaseModel):
    """A part of an upload that was not stored."""

    part: int = Field(description="The part's index in the multipart body, from 0")
    reason: str = Field(description="Why it was refused (PHI-free)")


class UploadPublic(BaseModel):
    """What an upload stored (status 409 when nothing)."""

    stored: int = Field(description="New instances stored")
    duplicates: int = Field(description="Instances that were here already")
    studies: list[str] = Field(description="The pseudonymous keys of the studies the stored instances belong to")
    failed: list[FailedPartPublic]


class PullRequestedPublic(BaseModel):
    """A queued pull."""

    pull_id: str
    state: Literal["pending"]


class PullPublic(BaseModel):
    """A pull's state (the identifier it pulls is never returned)."""

    pull_id: str
    kind: Literal["study", "accession"]
    state: Literal["pending", "done", "failed"]
    attempts: int
    last_status: str | None
    studies: list[str] = Field(description="The pseudonymous keys of the studies the pull brought")
    created_at: float
    updated_at: float


# ---------------------------------------------------------------------------------------------- studies
class StudySummaryPublic(BaseModel):
    """A study on the worklist or in the job queue (no result)."""

    study_key: str = Field(description="The pseudonymous StudyInstanceUID")
    state: JobState
    arrived_at: float
    attempts: int
    error: str | None
    priority: Priority | None
    updated_at: float
    review: ReviewStatus | None


class DraftCheckPublic(BaseModel):
    """What the draft states of each flag, and the flags where draft and flags disagree."""

    stated: dict[str, str]
    disagree: list[str]


class RegionPublic(BaseModel):
    """Where the model sees a raised flag, on the image's 0-100 grid (x along columns, y along rows): the point
    it weighs most and the boxes around it (occlusion sensitivity of its image encoder)."""

    peak: list[float]
    boxes: list[list[float]]


class GateReadingPublic(BaseModel):
    """The input gate's reading of the analysed image: its distance from the training images (the image
    encoder's features), the threshold of the validated domain, whether it is inside, and the detector's
    probability that it is an upright frontal chest radiograph."""

    score: float
    threshold: float
    in_domain: bool
    chest_radiograph: float


class StudyResultPublic(BaseModel):
    """A study's analysis (the pipeline's result line without its source); every key may be absent from a
    result of an older version."""

    study: str | None = None
    flags: dict[str, float] = Field(default_factory=dict)
    thresholds: dict[str, float] = Field(default_factory=dict)
    raised: list[str] = Field(default_factory=list)
    priority: Priority | None = None
    findings: str | None = None
    impression: str | None = None
    fhir: str | None = Field(None, description="The draft's FHIR Bundle, relative to the results folder")
    draft_check: DraftCheckPublic | None = None
    ood: GateReadingPublic | None = Field(None, description="The input gate's reading (absent: no gate)")
    regions: dict[str, RegionPublic] = Field(default_factory=dict, description="Per raised flag, where the model sees it")


class StudyPublic(BaseModel):
    """A study's state and analysis; serialised without unset keys (``draft_check`` is absent when the
    analysis made none)."""

    study_key: str = Field(description="The pseudonymous StudyInstanceUID")
    state: JobState
    arrived_at: float
    attempts: int
    error: str | None
    result: StudyResultPublic | None
    priority: Priority | None
    updated_at: float
    instances: int
    review: ReviewStatus | None


class StudyIdentityPublic(BaseModel):
    """PHI: a study's original accession number and patient name, re-linked through the key vault so that the
    radiologist can match the case in the PACS. Each is null where the vault holds none (a study not yet
    de-identified, or de-identified before the name was kept)."""

    study: str = Field(description="The pseudonymous StudyInstanceUID")
    accession: str | None = Field(description="The original AccessionNumber")
    patient_name: str | None = Field(description="The original PatientName as DICOM writes it (PN: family^given^"
                                                 "middle^prefix^suffix)")


# ---------------------------------------------------------------------------------------------- vision-language
class QuestionIn(BaseModel):
    """A question about a study's image (presence, side, size, location, count of findings)."""

    model_config = ConfigDict(extra="forbid")
    question: str = Field(min_length=1, max_length=200)


class AnswerPublic(BaseModel):
    """The model's answer (preliminary, like every output of the model), to the question as the model read it
    (de-identified)."""

    study: str
    question: str
    answer: str
    ood: GateReadingPublic | None = None


class ZeroShotIn(BaseModel):
    """Findings named in words: any the reports mention, not only the triage flags."""

    model_config = ConfigDict(extra="forbid")
    findings: list[Annotated[str, Field(min_length=1, max_length=80)]] = Field(min_length=1, max_length=20)


class ZeroShotScorePublic(BaseModel):
    """A finding's zero-shot probability (calibrated on validation images when ``calibrated``); it changes no
    priority."""

    finding: str
    probability: float
    margin: float
    single_prompt_margin: float
    calibrated: bool


class ZeroShotPublic(BaseModel):
    study: str
    zero_shot: list[ZeroShotScorePublic]
    ood: GateReadingPublic | None = None


class PhraseIn(BaseModel):
    """A phrase to find on the image (``left pleural effusion``, ``pacemaker``)."""

    model_config = ConfigDict(extra="forbid")
    phrase: str = Field(min_length=1, max_length=120)


class GroundedPublic(BaseModel):
    """Where the phrase is on the image: the point the model weighs most and the boxes around it, on the 0-100
    grid (x along columns, y along rows)."""

    study: str
    phrase: str
    region: RegionPublic
    ood: GateReadingPublic | None = None


class SimilarCasePublic(BaseModel):
    """A signed study like this one: its pseudonymous id, its signed report (de-identified) and how alike."""

    study: str
    report: str
    signed_at: str
    score: float = Field(description="Cosine similarity of this study's image and the case's report")


class SimilarPublic(BaseModel):
    study: str
    similar: list[SimilarCasePublic]


# ---------------------------------------------------------------------------------------------- review
class DraftPublic(BaseModel):
    """The draft under review, the AI draft it started from, the flags and the review status."""

    study: str
    findings: str = Field(description="The draft under review: the radiologist's edit, or else the AI draft")
    impression: str
    ai_findings: str | None
    ai_impression: str | None
    status: ReviewStatus
    flags: dict[str, float]
    raised: list[str]
    priority: Priority | None
    regions: dict[str, RegionPublic] = Field(default_factory=dict, description="Per raised flag, where the model sees it")
    ood: GateReadingPublic | None = Field(None, description="The input gate's reading (absent: no gate)")


class ReviewPublic(BaseModel):
    """A review's new status (an edit saved, a draft rejected)."""

    study: str
    status: ReviewStatus


class MonitoringPublic(RootModel[dict[str, Any]]):
    """The monitoring of the service (clinical_mm.service.monitoring): concordance, drift, refusals, time to
    notification per site and week, and alerts."""


class DiagnosticReportPublic(RootModel[dict[str, Any]]):
    """A FHIR R4 DiagnosticReport (``status`` final, the signer as performer): free-form, FHIR's structure."""


class SignedPublic(BaseModel):
    """A signed report."""

    study: str
    status: Literal["signed"]
    report: DiagnosticReportPublic
    diff: str = Field(description="Unified diff from the AI draft to the signed text")


# ---------------------------------------------------------------------------------------------- extraction
class CodingPublic(BaseModel):
    """An entity's code (RxNorm, ICD-10-CM, LOINC...)."""

    system: str
    code: str
    display: str


class EntityPublic(BaseModel):
    """An entity in the (de-identified) text. Its attributes (a medication's dose, route, frequency; a lab's
    value and unit; laterality...) follow the declared fields as further keys, as many as the text gives."""

    model_config = ConfigDict(extra="allow")

    type: str
    text: str
    start: int
    end: int
    code: CodingPublic | None
    concept: str | None
    assertion: str
    section: str
    cues: list[str]


class TargetPublic(BaseModel):
    """One occurrence of a target asked for, asserted; a target not found has ``target`` and ``found`` only."""

    target: str
    found: bool
    start: int | None = None
    end: int | None = None
    assertion: str | None = None
    section: str | None = None
    cues: list[str] | None = None


class NoteExtractionPublic(BaseModel):
    """A note's entities and targets (format json)."""

    id: str
    entities: list[EntityPublic]
    targets: list[TargetPublic]


class FhirBundlePublic(RootModel[dict[str, Any]]):
    """A FHIR R4 transaction Bundle: free-form, FHIR's structure."""


class NoteOutputPublic(RootModel[Annotated[NoteExtractionPublic | FhirBundlePublic,
                                           Field(union_mode="left_to_right")]]):
    """A note's extraction: entities and targets (format json), or a FHIR R4 Bundle (format fhir)."""


# ---------------------------------------------------------------------------------------------- operations
class RetriedPublic(BaseModel):
    """A failed study queued again."""

    study: str
    state: Literal["received"]


class SubscriberCreatedPublic(BaseModel):
    """A registered subscriber's id."""

    id: str


class SubscriberPublic(BaseModel):
    """A callback receiver (its secret is never returned)."""

    id: str
    url: str
    min_priority: Priority
    created_at: float
    active: int


class DeliveryPublic(BaseModel):
    """One delivery of an event to a subscriber (its body is not returned)."""

    event_id: str
    subscriber_id: str
    study_key: str
    state: Literal["pending", "delivered", "dead"]
    attempts: int
    last_status: str | None
    created_at: float
    updated_at: float


class AuditRecordPublic(BaseModel):
    """One record of the hash-chained audit log (PHI-free by construction)."""

    id: int
    timestamp: str
    actor: str
    action: str
    input_hash: str
    study: str
    model_id: str
    model_sha256: str
    output_hash: str
    outcome: str
    detail: str
    prev_hash: str
    hash: str
