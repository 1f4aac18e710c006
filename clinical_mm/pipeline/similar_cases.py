"""Similar signed cases for the review page: every study a radiologist signs joins a vector index of its image
and its signed report, and a study under review finds the signed studies most like it.

What is kept per case: the pseudonymous study key, the signed report de-identified by the text de-identifier
(a radiologist may have typed a name into it), the time of signing and the image's query vectors (the model's
contrastive space, :class:`~clinical_mm.model.vision_language.VisionLanguage`). Nothing else, so nothing that
identifies the patient. A case is found by its image against the others' reports (image -> report retrieval) and
never finds itself. The cases live in a folder (``cases.jsonl``, ``vectors/<key>.npy``); the index is rebuilt in
memory when a case is added (faiss, :class:`~clinical_mm.model.vector_index.StudyIndex`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
from pathlib import Path
from typing import Any

import numpy as np

from clinical_mm.core.errors import InputError
from clinical_mm.model.vector_index import StudyIndex
from clinical_mm.pipeline.vision_language_queries import VisionLanguageQueries

__all__ = ["SimilarCases"]


class SimilarCases:
    """The signed cases in ``folder``, searchable by a study's image (see the module docstring)."""

    def __init__(self, folder: Path, queries: VisionLanguageQueries) -> None:
        self.folder, self.queries = folder, queries
        self.lock = threading.Lock()
        self._index: StudyIndex | None = None
        (folder / "vectors").mkdir(parents=True, exist_ok=True)

    def _vector_path(self, key: str) -> Path:
        return self.folder / "vectors" / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.npy"

    def _cases(self) -> list[dict[str, Any]]:
        path = self.folder / "cases.jsonl"
        if not path.is_file():
            return []
        latest: dict[str, dict[str, Any]] = {}
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                case = json.loads(line)
                latest[case["key"]] = case
        return list(latest.values())

    def add(self, key: str, files: list[Path], image_uid: str | None, findings: str, impression: str) -> None:
        """Add a signed study (its spooled ``files``, the analysed image's pseudonymous SOP UID, its signed text)."""
        image = self.queries.study_image(files, image_uid, "similar:add")
        if image.error is not None or image.pixels is None:
            raise InputError(f"the signed study's image cannot be indexed: {image.error}")
        vectors = self.queries.vl.image_vectors(image.pixels)[0].numpy().astype(np.float32)
        report = self.queries.clean_text(" ".join(t for t in (impression.strip(), findings.strip()) if t))
        case = {"key": key, "report": report, "signed_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "model": self.queries.vl.loaded.sha256}
        with self.lock:
            np.save(self._vector_path(key), vectors)
            with (self.folder / "cases.jsonl").open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(case) + "\n")
            self._index = None

    def _built(self) -> StudyIndex | None:
        with self.lock:
            if self._index is None:
                sha = self.queries.vl.loaded.sha256
                cases = [c for c in self._cases() if c.get("model") == sha and self._vector_path(c["key"]).is_file()]
                if not cases:
                    return None
                vectors = np.stack([np.load(self._vector_path(c["key"])) for c in cases])
                texts = self.queries.vl.text_vectors([c["report"] for c in cases]).numpy()
                self._index = StudyIndex(cases, vectors, texts, {"id": self.queries.vl.loaded.model_id, "sha256": sha})
            return self._index

    def similar(self, key: str, files: list[Path], image_uid: str | None, k: int) -> list[dict[str, Any]]:
        """The ``k`` signed cases (not ``key`` itself) whose reports best match the study's image."""
        image = self.queries.study_image(files, image_uid, "similar")
        if image.error is not None or image.pixels is None:
            raise InputError(f"the study's image cannot be used: {image.error}")
        index = self._built()
        if index is None:
            return []
        hits = index.reports_for_image(self.queries.vl.image_vectors(image.pixels)[0].numpy(), k + 1,
                                       self.queries.vl.loaded.sha256)
        found = [{"study": h.entry["key"], "report": h.entry["report"], "signed_at": h.entry["signed_at"],
                  "score": h.score} for h in hits if h.entry["key"] != key][:k]
        self.queries.record("similar", "answered", key, detail=f"{len(found)} signed cases, k={k}")
        return found
