"""Zero-shot findings, questions, phrase grounding and image-report retrieval on studies, composed of the stages.

Each study is read, checked and de-identified as ``analyze`` does it (the pixel limits, the scope check's
frontal image, the DICOM de-identifier), and its image passes the input gate first: what is not a chest
radiograph is refused, the next frontal image tried, and an image outside the validated domain is answered and
marked. Free text a user types (a finding, a question, a phrase) is de-identified by the text de-identifier
before the model reads it. Every query is audited with the pseudonymous study, the model and the hash of the
text asked, never the text; refusals carry PHI-free reasons, and the batch goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import torch
from pydicom.dataset import Dataset

from clinical_mm.audit.audit_record import AuditRecord, AuditSink, sha256_hex
from clinical_mm.connectors.file_source import FileStudySource, SourceStudy
from clinical_mm.core.config import PseudonymKey, Settings
from clinical_mm.core.errors import ClinicalMMError, InputError
from clinical_mm.core.findings import FINDINGS
from clinical_mm.core.pixel_limits import PixelLimits
from clinical_mm.deid import DicomDeidentifier
from clinical_mm.deid.base import Deidentifier
from clinical_mm.deid.text.text_deidentifier import TextDeidentifier
from clinical_mm.model.base import GateReading, InputGate
from clinical_mm.model.checkpoint import LoadedModel, load_input_gate
from clinical_mm.model.grounding import InputGeometry
from clinical_mm.model.preprocessing import ChestXrayPreprocessor
from clinical_mm.model.study_scope import ChestRadiographScope
from clinical_mm.model.vector_index import IndexHit, StudyIndex
from clinical_mm.model.vision_language import VisionLanguage
from clinical_mm.pipeline.model_training import read_manifest
from clinical_mm.pipeline.text_deidentification import site_vocabulary, text_deidentifier

__all__ = ["StudyImage", "VisionLanguageQueries"]


@dataclass
class StudyImage:
    """A study's analysed image, or why the study was refused (``error``)."""

    source: str
    study_uid: str = ""
    pixels: torch.Tensor | None = None  # (1, C, S, S) model input
    geometry: InputGeometry | None = None
    ood: dict[str, object] | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def head(self) -> dict[str, Any]:
        """The JSON fields every answer about this study starts with."""
        if self.error is not None:
            return {"source": self.source, "error": self.error}
        return {"source": self.source, "study_uid": self.study_uid, "ood": self.ood}


class VisionLanguageQueries:
    """Runs the vision-language uses of the model on the studies under a path (see the module docstring).

    Parameters
    ----------
    vl
        The model's vision-language side.
    deidentifier
        The DICOM de-identifier (holds the pseudonymisation key).
    text_deidentifier
        De-identifies what users type before the model reads it, and reports before they enter an index.
    audit
        Where audit records go.
    gate
        The image-level input gate (None: none, for a model folder without one).
    """

    def __init__(self, vl: VisionLanguage, deidentifier: Deidentifier, text_deidentifier: TextDeidentifier,
                 audit: AuditSink, *, actor: str = "clinical-mm", gate: InputGate | None = None,
                 pixel_limits: PixelLimits | None = None, scope: ChestRadiographScope | None = None) -> None:
        self.vl, self.deidentifier, self.text_deidentifier = vl, deidentifier, text_deidentifier
        self.audit, self.actor, self.gate = audit, actor, gate
        self.pixel_limits = pixel_limits or PixelLimits()
        self.scope = scope or ChestRadiographScope()
        self.preprocessor = ChestXrayPreprocessor(vl.model.config.vision.image_size)

    @classmethod
    def from_settings(cls, loaded: LoadedModel, key: PseudonymKey, settings: Settings,
                      audit: AuditSink) -> VisionLanguageQueries:
        """The queries of a loaded model folder with ``key`` and the site's settings (vocabulary, recognizers,
        terms and threshold of the text de-identifier, actor, pixel limits), gated by the folder's input gate."""
        text = text_deidentifier(key, site_vocabulary(settings.vocabulary), settings.recognizers, settings.deid_terms,
                                 settings.deid_threshold)
        return cls(VisionLanguage(loaded), DicomDeidentifier(key), text, audit, actor=settings.actor,
                   gate=load_input_gate(loaded), pixel_limits=settings.pixel_limits)

    # ------------------------------------------------------------------ audit
    def record(self, action: str, outcome: str, study: str = "", text: str = "", detail: str = "") -> None:
        """An audit record of a query: the pseudonymous study, the model, the hash of the text asked (never it)."""
        self.audit.append(AuditRecord(actor=self.actor, action=action, outcome=outcome, study=study,
                                      input_hash=sha256_hex(text) if text else "",
                                      model_id=self.vl.loaded.model_id, model_sha256=self.vl.loaded.sha256,
                                      detail=detail))

    def clean_text(self, text: str) -> str:
        """What a user typed, de-identified (names, dates, numbers that identify replaced)."""
        cleaned, _ = self.text_deidentifier.deidentify(" ".join(text.split()))
        return cleaned

    # ------------------------------------------------------------------ images
    def images(self, path: Path, action: str) -> Iterator[StudyImage]:
        """Each study's analysed image under ``path`` (refusals audited as ``action``)."""
        for item in FileStudySource(path).studies():
            try:
                image = self._image(item)
            except ClinicalMMError as exc:
                image = StudyImage(item.source, error=f"{exc.__class__.__name__}: {exc}")
            except Exception as exc:  # noqa: BLE001 - the batch boundary: one study never stops the others
                image = StudyImage(item.source, error=f"internal error while reading the study ({exc.__class__.__name__})")
            if image.error is not None:
                self.record(action, "refused", image.study_uid, detail=image.error)
            yield image

    def _image(self, item: SourceStudy) -> StudyImage:
        if item.error is not None:
            return StudyImage(item.source, error=item.error)
        loaded, failed = item.load()
        loaded = [e for e in loaded if self.pixel_limits.instance_refusal(e[2]) is None]
        if not loaded:
            return StudyImage(item.source, error=failed[0][1] if failed else "no image within the pixel limits")
        return self._pick([rel for rel, _, _ in loaded], [ds for _, _, ds in loaded])

    def _pick(self, sources: list[str], datasets: list[Dataset], image_uid: str | None = None) -> StudyImage:
        """De-identify a study's datasets and take its frontal image that passes the gate (the one named by its
        pseudonymous SOP Instance UID ``image_uid`` first, when given)."""
        try:
            candidates = self.scope.candidates(datasets)
        except InputError as exc:
            return StudyImage(sources[0], error=exc.reason)
        study = self.deidentifier.deidentify_study(datasets)
        named = [i for i, ds in enumerate(study.instances) if image_uid and str(ds.get("SOPInstanceUID", "")) == image_uid]
        reason = "no frontal image"
        for index in named + [i for i in candidates if i not in named]:
            ds = study.instances[index]
            reading: GateReading | None = self.gate.read_image(ds) if self.gate is not None else None
            if reading is not None and reading.refusal is not None:
                reason = reading.refusal
                continue
            try:
                pixels = torch.from_numpy(self.preprocessor(ds))[None]
            except InputError as exc:
                reason = exc.reason
                continue
            geometry = InputGeometry(int(ds.Rows), int(ds.Columns), self.vl.model.config.vision.image_size)
            return StudyImage(sources[index], study.study_uid, pixels, geometry,
                              reading.to_json() if reading is not None else None)
        return StudyImage(sources[candidates[0]] if candidates else sources[0], study.study_uid, error=reason)

    def study_image(self, files: list[Path], image_uid: str | None, action: str) -> StudyImage:
        """The analysed image of a study whose instances are ``files`` (the service's spool); refusal audited."""
        try:
            datasets: list[Dataset] = [pydicom.dcmread(f) for f in files]
            image = self._pick([f.name for f in files], datasets, image_uid)
        except ClinicalMMError as exc:
            image = StudyImage("", error=f"{exc.__class__.__name__}: {exc}")
        except Exception as exc:  # noqa: BLE001 - a spooled file that cannot be read is an input problem
            image = StudyImage("", error=f"a stored instance cannot be read ({exc.__class__.__name__})")
        if image.error is not None:
            self.record(action, "refused", image.study_uid, detail=image.error)
        return image

    # ------------------------------------------------------------------ queries
    def findings_in_words(self, findings: list[str]) -> list[str]:
        """Findings as typed, de-identified; :class:`InputError` when none is named."""
        names = [self.clean_text(f) for f in findings]
        if not names or not all(names):
            raise InputError("name at least one finding, in words")
        return names

    def zero_shot_image(self, image: StudyImage, names: list[str]) -> dict[str, Any]:
        """One image's zero-shot scores of ``names`` (de-identified already), audited."""
        assert image.pixels is not None
        scores = self.vl.zero_shot(image.pixels, names)[0]
        self.record("zero-shot", "answered", image.study_uid, "\n".join(names),
                    detail=_ood_detail(image.ood) + f"{len(names)} findings")
        return {"zero_shot": [s.to_json() for s in scores]}

    def ask_image(self, image: StudyImage, question: str) -> dict[str, Any]:
        """One image's answer to ``question`` (de-identified already), audited."""
        assert image.pixels is not None
        try:
            answer = self.vl.ask(image.pixels, question)[0]
        except ValueError as exc:  # too long for the model's context: the user's text, not the study
            raise InputError(str(exc)) from None
        self.record("ask", "answered", image.study_uid, question, detail=_ood_detail(image.ood).rstrip("; "))
        return {"question": question, "answer": answer}

    def ground_image(self, image: StudyImage, phrase: str) -> dict[str, Any]:
        """Where ``phrase`` (de-identified already) is on one image, audited."""
        assert image.pixels is not None and image.geometry is not None
        region = self.vl.ground(image.pixels, phrase, image.geometry)
        self.record("ground", "answered", image.study_uid, phrase, detail=_ood_detail(image.ood).rstrip("; "))
        return {"phrase": phrase, "region": region.to_json()}

    def _each(self, path: Path, action: str, answer: Callable[[StudyImage], dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**image.head(), **(answer(image) if image.error is None else {})} for image in self.images(path, action)]

    def zero_shot(self, path: Path, findings: list[str]) -> list[dict[str, Any]]:
        """Each study's zero-shot probability of each finding named in ``findings``."""
        names = self.findings_in_words(findings)
        return self._each(path, "zero-shot", lambda image: self.zero_shot_image(image, names))

    def ask(self, path: Path, question: str) -> list[dict[str, Any]]:
        """Each study's answer to ``question``."""
        text = self.clean_text(question)
        if not text:
            raise InputError("the question is empty")
        return self._each(path, "ask", lambda image: self.ask_image(image, text))

    def ground(self, path: Path, phrase: str) -> list[dict[str, Any]]:
        """Where ``phrase`` is on each study's image (the 0-100 grid and pixels)."""
        text = self.clean_text(phrase)
        if not text:
            raise InputError("the phrase is empty")
        return self._each(path, "ground", lambda image: self.ground_image(image, text))

    # ------------------------------------------------------------------ retrieval
    def build_index(self, manifest: Path, out: Path) -> dict[str, Any]:
        """Index the studies of a manifest (the training manifest's format, :func:`read_manifest`): each image's
        query vectors and its de-identified report (impression, then findings), written to ``out``."""
        rows = read_manifest(manifest)
        entries, image_vectors, refused = [], [], 0
        for row in rows:
            image = next(self.images(manifest.parent / row["path"], "index"), None)
            if image is None or image.error is not None or image.pixels is None:
                refused += 1
                continue
            report = self.clean_text(f"{row['impression']} {row['findings']}")
            entries.append({"key": image.study_uid, "report": report, "ood": image.ood,
                            "labels": {f: int(row[f]) for f in FINDINGS}})
            image_vectors.append(self.vl.image_vectors(image.pixels)[0].numpy())
        if not entries:
            raise InputError(f"{manifest}: no study could be indexed ({refused} refused)")
        texts = self.vl.text_vectors([str(e["report"]) for e in entries]).numpy()
        index = StudyIndex(entries, np.stack(image_vectors), texts,
                           {"id": self.vl.loaded.model_id, "sha256": self.vl.loaded.sha256})
        index.save(out)
        self.record("index", "written", detail=f"{len(entries)} studies indexed, {refused} refused")
        return {"indexed": len(entries), "refused": refused, "index": str(out)}

    def retrieve_by_text(self, index: StudyIndex, text: str, k: int) -> list[IndexHit]:
        """The ``k`` indexed studies whose images best match ``text`` (de-identified first)."""
        clean = self.clean_text(text)
        if not clean:
            raise InputError("the text is empty")
        hits = index.images_for_text(self.vl.text_vectors([clean])[0].numpy(), k, self.vl.loaded.sha256)
        self.record("retrieve", "answered", text=clean, detail=f"text to images, k={k}")
        return hits

    def retrieve_by_image(self, index: StudyIndex, path: Path, k: int) -> list[dict[str, Any]]:
        """For each study under ``path``, the ``k`` indexed studies whose reports best match its image."""
        out = []
        for image in self.images(path, "retrieve"):
            if image.error is None and image.pixels is not None:
                hits = index.reports_for_image(self.vl.image_vectors(image.pixels)[0].numpy(), k + 1,
                                               self.vl.loaded.sha256)
                others = [h for h in hits if h.entry["key"] != image.study_uid][:k]  # not the study itself
                image.extra = {"similar": [{"key": h.entry["key"], "report": h.entry.get("report"), "score": h.score}
                                           for h in others]}
                self.record("retrieve", "answered", image.study_uid, detail=f"image to reports, k={k}")
            out.append({**image.head(), **image.extra})
        return out


def _ood_detail(ood: dict[str, object] | None) -> str:
    if ood is None:
        return "no input gate; "
    return "" if ood.get("in_domain") else "outside the validated domain; "

