"""The HTTP API of ``serve`` (FastAPI).

Every route but ``/healthz``, ``/readyz`` and the static review page needs a credential in
``Authorization: Bearer``: an API key (only its hash is stored) or an OAuth2 JWT, whose role the route
allows: pacs (ingest), radiologist (worklist, review and sign), auditor (audit log), admin (subscribers,
jobs). Every request is audited (actor = key id, route template,
outcome = status code). Responses carry pseudonymous study ids and PHI-free results only.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field, model_validator

from clinical_mm.audit.audit_record import AuditRecord, AuditSink
from clinical_mm.core.errors import ClinicalMMError, DeidentificationError, InputError
from clinical_mm.pipeline.notes import NoteExtraction
from clinical_mm.service.auth import JwtVerifier
from clinical_mm.service.pull import StudyPuller
from clinical_mm.service.spool import Spool
from clinical_mm.service.store import ServiceStore
from clinical_mm.service.worker import callback_allowed

__all__ = ["ServiceContext", "create_app"]


class ServiceContext:
    """What the routes need: the store, the audit sink, the callback allow-list, readiness probes."""

    def __init__(self, store: ServiceStore, audit: AuditSink, callback_hosts: list[str], results_dir: Path,
                 preview: Callable[[list[Path]], bytes], spool: Spool, jwt: JwtVerifier | None = None,
                 ready: Callable[[], bool] = lambda: True,
                 on_signed: Callable[[str, dict[str, Any]], None] = lambda study, report: None,
                 puller: StudyPuller | None = None, extraction: NoteExtraction | None = None) -> None:
        self.extraction = extraction  # de-identifies and extracts notes for POST /v1/notes/extract
        self.puller = puller  # pulls from the PACS by DICOMweb (None: no DICOMweb source configured)
        self.jwt = jwt
        self.on_signed = on_signed  # queues the signed report for the hospital's FHIR server
        self.spool = spool
        self.store = store
        self.audit = audit
        self.callback_hosts = callback_hosts
        self.results_dir = results_dir
        self.preview = preview
        self.ready = ready


class Principal(BaseModel):
    key_id: str  # the API key id, or jwt:<sub>
    roles: frozenset[str]
    name: str = ""


class DraftIn(BaseModel):
    findings: str = Field(max_length=20000, examples=["The lungs are clear. No pleural effusion."])
    impression: str = Field(max_length=5000, examples=["No acute cardiopulmonary process."])


class SignIn(BaseModel):
    findings: str | None = Field(None, max_length=20000, description="Final findings (default: the current draft)")
    impression: str | None = Field(None, max_length=5000, description="Final impression (default: the current draft)")


class RejectIn(BaseModel):
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
    url: str = Field(description="Callback URL (http or https, host on the allow-list)", max_length=2000,
                     pattern=r"^https?://[^\s/@]+(/\S*)?$", examples=["http://127.0.0.1:9000/triage"])
    secret: str = Field(min_length=16, max_length=256, description="HMAC-SHA256 key for X-ClinicalMM-Signature",
                        examples=["s3cr3t-shared-with-the-receiver"])
    min_priority: Literal["routine", "urgent", "critical"] = Field(
        "routine", description="Lowest priority that triggers a callback", examples=["urgent"])


_STUDY = "2.25.181093627262535716218472861139924730015"
_WORKLIST_ROW = {"study_key": _STUDY, "state": "delivered", "arrived_at": 1795000000.0, "attempts": 0, "error": None,
                 "priority": "urgent", "updated_at": 1795000001.2, "review": None}
_RESULT = {"study": _STUDY, "flags": {"pneumothorax": 0.91, "effusion": 0.08}, "thresholds": {"pneumothorax": 0.42},
           "raised": ["pneumothorax"], "priority": "urgent", "findings": "Small right apical pneumothorax.",
           "impression": "Small right pneumothorax.", "fhir": f"fhir/{_STUDY}.json"}
_EXAMPLES: dict[str, Any] = {
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
    "draft": {"study": _STUDY, "findings": _RESULT["findings"], "impression": _RESULT["impression"],
              "ai_findings": _RESULT["findings"], "ai_impression": _RESULT["impression"], "status": "draft",
              "flags": _RESULT["flags"], "raised": ["pneumothorax"], "priority": "urgent"},
    "edited": {"study": _STUDY, "status": "edited"},
    "signed": {"study": _STUDY, "status": "signed", "report": {"resourceType": "DiagnosticReport", "status": "final"},
               "diff": "--- ai-draft\n+++ signed\n"},
    "rejected": {"study": _STUDY, "status": "rejected"},
    "retried": {"study": _STUDY, "state": "received"},
    "upload": {"stored": 2, "duplicates": 0, "studies": [_STUDY], "failed": []},
    "subscriber": {"id": "sub_3f9a0c1d2e4b"},
    "subscribers": [{"id": "sub_3f9a0c1d2e4b", "url": "http://127.0.0.1:9000/triage", "min_priority": "urgent",
                     "created_at": 1795000000.0, "active": 1}],
    "deliveries": [{"event_id": "evt_5d41402abc4b2a76b9719d911017c592", "subscriber_id": "sub_3f9a0c1d2e4b",
                    "study_key": _STUDY, "state": "delivered", "attempts": 1, "last_status": "204",
                    "created_at": 1795000002.0, "updated_at": 1795000002.1}],
    "audit": [{"id": 7, "actor": "k_1a2b3c4d5e6f", "action": "http GET /v1/worklist", "outcome": "200"}],
}


def _ok(name: str, **more: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    """An operation's documented responses: the success example plus ``more`` (status code as a string)."""
    out: dict[int | str, dict[str, Any]] = {200: {"content": {"application/json": {"example": _EXAMPLES[name]}}}}
    out.update(more)
    return out


def _principal(request: Request) -> Principal:
    """The caller of a request, from ``Authorization: Bearer <API key>``; 401 without a valid key."""
    ctx: ServiceContext = request.app.state.ctx
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    principal: Principal | None = None
    if scheme.lower() == "bearer" and token:
        if token.count(".") == 2 and ctx.jwt is not None:
            cred = ctx.jwt.verify(token)
            if cred is not None:
                principal = Principal(key_id=cred.actor, roles=cred.roles, name=cred.name)
        else:
            found = ctx.store.api_key_role(token)
            if found is not None:
                principal = Principal(key_id=found[0], roles=frozenset({found[1]}), name=found[2])
    if principal is None:
        raise HTTPException(401, "missing, invalid or expired credentials", headers={"WWW-Authenticate": "Bearer"})
    request.state.key_id = principal.key_id
    return principal


def _role(*allowed: str) -> Callable[[Principal], Principal]:
    def check(p: Annotated[Principal, Depends(_principal)]) -> Principal:
        if not p.roles & set(allowed):
            raise HTTPException(403, "this role may not use this route")
        return p
    return check


Pacs = Annotated[Principal, Depends(_role("pacs"))]
Radiologist = Annotated[Principal, Depends(_role("radiologist"))]
Admin = Annotated[Principal, Depends(_role("admin"))]
Auditor = Annotated[Principal, Depends(_role("auditor"))]


_MAX_UPLOAD = 512 * 1024 * 1024


def _parts(content_type: str, body: bytes) -> list[bytes]:
    """The bodies of a multipart request (multipart/related for STOW-RS, multipart/form-data for uploads)."""
    from clinical_mm.connectors.dicomweb_client import NotMultipartError, parse_multipart

    try:
        return parse_multipart(content_type, body)
    except NotMultipartError:
        raise HTTPException(415, "expected a multipart body with a boundary") from None
    except ValueError:
        raise HTTPException(400, "malformed multipart body") from None


async def _body(request: Request) -> bytes:
    if int(request.headers.get("content-length") or 0) > _MAX_UPLOAD:
        raise HTTPException(413, "upload too large")
    data = await request.body()
    if len(data) > _MAX_UPLOAD:
        raise HTTPException(413, "upload too large")
    return data


def create_app(ctx: ServiceContext) -> FastAPI:
    app = FastAPI(title="clinical-mm", version="1", description=__doc__, responses={
        401: {"description": "missing, invalid or expired credentials"},
        403: {"description": "the credential's role may not use this route"}})
    app.state.ctx = ctx

    @app.middleware("http")
    async def audit_requests(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        route = request.scope.get("route")
        template = getattr(route, "path", "unmatched")
        if template not in ("/healthz", "/readyz", "/review", "/review.js"):
            actor = getattr(request.state, "key_id", "anonymous")
            try:
                ctx.audit.append(AuditRecord(actor=actor, action=f"http {request.method} {template}",
                                             outcome=str(response.status_code)))
            except Exception:  # noqa: BLE001 - an unauditable request is refused
                return JSONResponse({"detail": "audit log unavailable"}, status_code=503)
        return response

    static = Path(__file__).resolve().parent / "static"
    page, script = ((static / name).read_text(encoding="utf-8") for name in ("review.html", "review.js"))
    page_headers = {"Content-Security-Policy": "default-src 'self'; img-src 'self' blob:; style-src 'self' 'unsafe-inline'; "
                                               "frame-ancestors 'none'", "X-Content-Type-Options": "nosniff",
                    "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}

    @app.get("/review", tags=["review page"], response_class=HTMLResponse, include_in_schema=False)
    def review_page() -> HTMLResponse:
        """The review page (static, holds no data; every call it makes carries the user's credential)."""
        return HTMLResponse(page, headers=page_headers)

    @app.get("/review.js", tags=["review page"], include_in_schema=False)
    def review_script() -> Response:
        return Response(script, media_type="text/javascript", headers=page_headers)

    @app.get("/healthz", tags=["health"], responses=_ok("health"))
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], responses=_ok("ready", **{"503": {"description": "not ready"}}))
    def readyz() -> JSONResponse:
        """Readiness: database, model, DICOM listener and worker are up."""
        ok = ctx.ready()
        return JSONResponse({"status": "ready" if ok else "not ready"}, status_code=200 if ok else 503)

    def ingest(parts: list[bytes]) -> tuple[list[tuple[str, str, bool]], list[tuple[int, str]]]:
        stored, failed = [], []
        for i, data in enumerate(parts):
            try:
                stored.append(ctx.spool.put(data))
            except InputError as exc:
                failed.append((i, exc.reason))
            except (OSError, ClinicalMMError):
                raise HTTPException(503, "instances cannot be stored now; retry") from None
        return stored, failed

    @app.post("/dicomweb/studies", tags=["ingest"], responses={
        200: {"content": {"application/dicom+json": {}}, "description": "every instance stored"},
        202: {"description": "some instances stored"}, 400: {"description": "malformed multipart body"},
        409: {"description": "no instance stored"}, 413: {"description": "upload too large"},
        415: {"description": "not multipart/related"}, 503: {"description": "cannot store now; retry"}},
        openapi_extra={"requestBody": {"required": True, "content": {
            'multipart/related; type="application/dicom"': {"schema": {"type": "string", "format": "binary"}}}}})
    async def stow_rs(request: Request, _: Pacs) -> JSONResponse:
        """DICOMweb STOW-RS (multipart/related; type="application/dicom"). The response's Referenced SOP
        Sequence names each stored instance by its pseudonymous SOP Instance UID."""
        parts = _parts(request.headers.get("content-type", ""), await _body(request))
        stored, failed = await run_in_threadpool(ingest, parts)  # fsyncs: off the event loop
        body: dict[str, Any] = {}
        if stored:
            body["00081199"] = {"vr": "SQ", "Value": [{"00081155": {"vr": "UI", "Value": [sop]}} for sop, _, _ in stored]}
        if failed:
            body["00081198"] = {"vr": "SQ", "Value": [{"00081197": {"vr": "US", "Value": [0xC000]}} for _ in failed]}
        status = 200 if stored and not failed else 202 if stored else 409
        return JSONResponse(body, status_code=status, media_type="application/dicom+json")

    @app.post("/v1/studies", tags=["ingest"], status_code=200, responses={
        200: {"content": {"application/json": {"example": _EXAMPLES["upload"]}}},
        400: {"description": "malformed multipart body"}, 409: {"description": "no instance stored"},
        413: {"description": "upload too large"}, 415: {"description": "not multipart"},
        503: {"description": "cannot store now; retry"}},
        openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
            "type": "object", "properties": {"file": {"type": "array", "items": {"type": "string", "format": "binary"}}},
            "required": ["file"]}}}}})
    async def upload(request: Request, _: Pacs) -> JSONResponse:
        """Upload DICOM files (multipart/form-data, one file per part); studies are queued like C-STORE ones."""
        parts = _parts(request.headers.get("content-type", ""), await _body(request))
        stored, failed = await run_in_threadpool(ingest, parts)  # fsyncs: off the event loop
        body = {"stored": sum(new for _, _, new in stored), "duplicates": sum(not new for _, _, new in stored),
                "studies": sorted({study for _, study, _ in stored}),
                "failed": [{"part": i, "reason": reason} for i, reason in failed]}
        return JSONResponse(body, status_code=200 if stored else 409)

    @app.post("/v1/pulls", tags=["ingest"], status_code=202, responses={
        202: {"content": {"application/json": {"example": {"pull_id": "pull_3f0c9d3b6a2e41d7b8c5e9a1", "state": "pending"}}}},
        409: {"description": "no PACS DICOMweb source is configured"}})
    def request_pull(body: PullIn, _: Pacs) -> dict[str, str]:
        """Pull a study from the PACS (QIDO-RS to find it, WADO-RS to retrieve it) and analyse it like a pushed
        one; by StudyInstanceUID or accession number (what Orthanc's stable-study script posts). Queued: the
        answer is the pull's id; the identifier itself is never echoed or stored in the clear."""
        if ctx.puller is None:
            raise HTTPException(409, "no PACS DICOMweb source is configured (CLINICAL_MM_DICOMWEB_URL)")
        kind, value = ("study", body.study_uid) if body.study_uid else ("accession", body.accession)
        return {"pull_id": ctx.puller.request(kind, str(value)), "state": "pending"}

    @app.get("/v1/pulls/{pull_id}", tags=["ingest"], responses={
        200: {"content": {"application/json": {"example": {
            "pull_id": "pull_3f0c9d3b6a2e41d7b8c5e9a1", "kind": "study", "state": "done", "attempts": 1,
            "last_status": "1 study retrieved", "studies": [_STUDY], "created_at": 1.8e9, "updated_at": 1.8e9}}}},
        404: {"description": "no such pull"}})
    def get_pull(pull_id: str, _: Pacs) -> dict[str, Any]:
        """A pull's state (pending, done, failed), attempts, last status and the pseudonymous studies it brought."""
        found = ctx.store.pull(pull_id)
        if found is None:
            raise HTTPException(404, "no such pull")
        return found

    @app.get("/v1/worklist", tags=["review"], responses=_ok("worklist"))
    def worklist(_: Radiologist) -> list[dict[str, Any]]:
        """Every study, highest priority first, then by arrival; no case is ever hidden."""
        return ctx.store.studies()

    @app.get("/v1/studies/{study_id}", tags=["review"], responses=_ok("study", **{"404": {"description": "no such study"}}))
    def get_study(study_id: str, _: Radiologist) -> dict[str, Any]:
        """A study's state and draft (pseudonymous id, PHI-free findings, impression and flags)."""
        found = ctx.store.study(study_id)
        if found is None:
            raise HTTPException(404, "no such study")
        return found

    def analysed(study_id: str) -> dict[str, Any]:
        found = ctx.store.study(study_id)
        if found is None:
            raise HTTPException(404, "no such study")
        if not found["result"]:
            raise HTTPException(409, "the study has no draft yet")
        return found

    def current_draft(study_id: str, found: dict[str, Any]) -> tuple[str, str]:
        review = ctx.store.review(study_id)
        if review is not None:
            return review["findings"], review["impression"]
        return str(found["result"].get("findings") or ""), str(found["result"].get("impression") or "")

    @app.get("/v1/studies/{study_id}/draft", tags=["review"], responses=_ok(
        "draft", **{"404": {"description": "no such study"}, "409": {"description": "no draft yet"}}))
    def get_draft(study_id: str, _: Radiologist) -> dict[str, Any]:
        """The draft under review (the AI draft, or the radiologist's edit of it) and the review status."""
        found = analysed(study_id)
        findings, impression = current_draft(study_id, found)
        review = ctx.store.review(study_id)
        return {"study": study_id, "findings": findings, "impression": impression,
                "ai_findings": found["result"].get("findings"), "ai_impression": found["result"].get("impression"),
                "status": review["status"] if review else "draft", "flags": found["result"].get("flags", {}),
                "raised": found["result"].get("raised", []), "priority": found["priority"]}

    @app.put("/v1/studies/{study_id}/draft", tags=["review"], responses=_ok(
        "edited", **{"404": {"description": "no such study"}, "409": {"description": "already signed or rejected"}}))
    def edit_draft(study_id: str, body: DraftIn, who: Radiologist) -> dict[str, str]:
        """Save the radiologist's edit of the draft (not final until signed)."""
        analysed(study_id)
        if not ctx.store.save_review(study_id, status="edited", findings=body.findings, impression=body.impression,
                                     reviewer=who.key_id):
            raise HTTPException(409, "the study is already signed or rejected")
        return {"study": study_id, "status": "edited"}

    @app.post("/v1/studies/{study_id}/sign", tags=["review"], responses=_ok(
        "signed", **{"404": {"description": "no such study"}, "409": {"description": "already signed or rejected"}}))
    def sign(study_id: str, body: SignIn, who: Radiologist) -> dict[str, Any]:
        """Sign the report: the final DiagnosticReport (status final, the signer as performer); the diff between
        the AI draft and the signed text is kept for evaluation."""
        import difflib

        from clinical_mm.outputs.fhir_r4 import final_report

        found = analysed(study_id)
        findings, impression = current_draft(study_id, found)
        findings = body.findings if body.findings is not None else findings
        impression = body.impression if body.impression is not None else impression
        ai = f"FINDINGS: {found['result'].get('findings') or ''}\nIMPRESSION: {found['result'].get('impression') or ''}\n"
        signed = f"FINDINGS: {findings}\nIMPRESSION: {impression}\n"
        diff = "".join(difflib.unified_diff(ai.splitlines(True), signed.splitlines(True), "ai-draft", "signed"))
        try:
            draft_bundle = json.loads((ctx.results_dir / str(found["result"]["fhir"])).read_text(encoding="utf-8"))
        except (OSError, ValueError, KeyError):
            raise HTTPException(409, "the draft's FHIR bundle is not available") from None
        report = final_report(draft_bundle, findings=findings, impression=impression, signer_name=who.name,
                              signer_id=who.key_id)
        if not ctx.store.save_review(study_id, status="signed", findings=findings, impression=impression,
                                     reviewer=who.key_id, diff=diff, report=report):
            raise HTTPException(409, "the study is already signed or rejected")
        ctx.on_signed(study_id, report)
        return {"study": study_id, "status": "signed", "report": report, "diff": diff}

    @app.post("/v1/studies/{study_id}/reject", tags=["review"], responses=_ok(
        "rejected", **{"404": {"description": "no such study"}, "409": {"description": "already signed or rejected"}}))
    def reject(study_id: str, body: RejectIn, who: Radiologist) -> dict[str, str]:
        """Reject the AI draft with a reason (the case stays on the worklist for a human report)."""
        found = analysed(study_id)
        findings, impression = current_draft(study_id, found)
        if not ctx.store.save_review(study_id, status="rejected", findings=findings, impression=impression,
                                     reviewer=who.key_id, reason=body.reason):
            raise HTTPException(409, "the study is already signed or rejected")
        return {"study": study_id, "status": "rejected"}

    @app.get("/v1/studies/{study_id}/report", tags=["review"],
             responses=_ok("report", **{"404": {"description": "not signed"}}))
    def get_report(study_id: str, _: Radiologist) -> dict[str, Any]:
        """The signed (final) DiagnosticReport."""
        review = ctx.store.review(study_id)
        if review is None or review["status"] != "signed":
            raise HTTPException(404, "the study has no signed report")
        report: dict[str, Any] = review["report"]
        return report

    @app.get("/v1/studies/{study_id}/preview.png", tags=["review"], response_class=Response,
             responses={200: {"content": {"image/png": {}}}, 404: {"description": "no such study"},
                        422: {"description": "no image to show"}})
    def preview(study_id: str, _: Radiologist) -> Response:
        """The de-identified frontal image (burned-in text redacted), 8-bit PNG, at most 512 pixels a side."""
        files = ctx.store.files_of(study_id)
        if not files:
            raise HTTPException(404, "no such study")
        try:
            png = ctx.preview(files)
        except (InputError, DeidentificationError) as exc:
            raise HTTPException(422, f"no preview ({exc.__class__.__name__})") from None
        return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})

    @app.post("/v1/notes/extract", tags=["extraction"], responses=_ok(
        "extraction", **{"503": {"description": "extraction is not configured"}}))
    async def extract_note(body: NoteIn, who: Radiologist) -> dict[str, Any]:
        """Structured facts from a clinical note or report: coded entities (problems, medications with dose,
        route and frequency, labs and vitals with values, measurements, procedures, devices, anatomy) and the
        targets asked for, each asserted (present, absent, possible, historical, family, hypothetical), or the
        same as a FHIR R4 Bundle. The text is de-identified first (PHI masked, offsets kept); audited (hashes
        and counts, no text)."""
        extraction = ctx.extraction
        if extraction is None:
            raise HTTPException(503, "extraction is not configured")
        targets = [t for t in body.targets if t.strip()]
        out = await run_in_threadpool(extraction.run, [(body.id, body.text, targets)], body.format,
                                      body.assume_deidentified, ctx.audit, who.key_id)
        return out[0]

    @app.get("/v1/jobs", tags=["operations"], responses=_ok("worklist"))
    def jobs(_: Admin, state: Literal["received", "deidentified", "analyzed", "delivered", "failed"] | None = None
             ) -> list[dict[str, Any]]:
        """Jobs (studies) in the queue, optionally of one state."""
        return ctx.store.studies(state)

    @app.post("/v1/jobs/{study_id}/retry", tags=["operations"], responses=_ok("retried", **{"409": {"description": "not failed"}}))
    def retry(study_id: str, _: Admin) -> dict[str, str]:
        """Queue a failed study again."""
        if not ctx.store.retry_now(study_id):
            raise HTTPException(409, "only a failed study can be retried")
        return {"study": study_id, "state": "received"}

    @app.post("/v1/subscribers", tags=["callbacks"], status_code=201, responses={
        201: {"content": {"application/json": {"example": _EXAMPLES["subscriber"]}}},
        400: {"description": "callback URL not http(s) to an allow-listed host"}})
    def add_subscriber(body: SubscriberIn, _: Admin) -> dict[str, str]:
        """Register a triage callback receiver (the host must be on the allow-list)."""
        if not callback_allowed(body.url, ctx.callback_hosts):
            raise HTTPException(400, "callback URL must be http(s) to an allow-listed host")
        return {"id": ctx.store.add_subscriber(body.url, body.secret, body.min_priority)}

    @app.get("/v1/subscribers", tags=["callbacks"], responses=_ok("subscribers"))
    def list_subscribers(_: Admin) -> list[dict[str, Any]]:
        """Active subscribers (secrets are never returned)."""
        return ctx.store.subscribers()

    @app.delete("/v1/subscribers/{sub_id}", tags=["callbacks"], status_code=204,
                responses={404: {"description": "no such subscriber"}})
    def remove_subscriber(sub_id: str, _: Admin) -> Response:
        if not ctx.store.remove_subscriber(sub_id):
            raise HTTPException(404, "no such subscriber")
        return Response(status_code=204)

    @app.get("/v1/subscribers/{sub_id}/deliveries", tags=["callbacks"], responses=_ok("deliveries"))
    def deliveries(sub_id: str, _: Admin) -> list[dict[str, Any]]:
        """The delivery log of one subscriber: event, state (pending, delivered, dead), attempts, last status."""
        return ctx.store.deliveries(sub_id)

    @app.get("/v1/audit", tags=["audit"], responses=_ok("audit"))
    def audit(_: Auditor, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
        """The latest audit records (PHI-free by construction)."""
        records = getattr(ctx.audit, "records", None)
        rows = records() if callable(records) else []
        return list(rows[-limit:])

    base_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        doc = base_openapi()
        for path in ("/healthz", "/readyz"):  # open routes: no credential, so no 401/403
            for op in doc["paths"][path].values():
                op["responses"].pop("401", None)
                op["responses"].pop("403", None)
        return doc

    app.openapi = openapi  # type: ignore[method-assign]
    return app
