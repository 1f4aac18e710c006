"""A vector index of studies for image-report retrieval: faiss inner-product indexes (exact up to
:data:`EXACT_UP_TO` vectors, HNSW graphs above).

Each study is its image's Q query vectors and its report's vector (unit vectors of the model's contrastive
space, :class:`~clinical_mm.model.vision_language.VisionLanguage`). The similarity of an image and a text is
the best-matching query, so the image index holds every query vector and a search keeps each study's best
hit: text -> images searches the image index with the text, image -> reports searches the report index with
each query vector. With the exact index the ranking is exact: the studies above a study's best vector are
among the studies ranked above it, so 4 k Q candidates (4 k reports) always hold the top k. Entries carry only what the caller gives (a pseudonymous key, the de-identified report):
the index holds no PHI.

Folder layout: ``index.json`` (the model it was built with, the dimensions, the entries), ``images.faiss`` and
``reports.faiss`` (faiss' own format).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from clinical_mm.core.errors import ConfigurationError

__all__ = ["EXACT_UP_TO", "IndexHit", "StudyIndex"]

_M, _EF_CONSTRUCTION, _EF_SEARCH = 32, 200, 256
#: vectors up to which an index is exact (32 query vectors per study: 62,500 studies)
EXACT_UP_TO = 2_000_000


@dataclass(frozen=True)
class IndexHit:
    """One retrieved study: its position, its entry and the similarity (cosine) of the best match."""

    position: int
    entry: dict[str, Any]
    score: float


def _graph(dim: int, vectors: int) -> faiss.Index:
    """An exact inner-product index (``IndexFlatIP``) up to :data:`EXACT_UP_TO` vectors, an HNSW graph above
    (approximate: on 160,000 random unit vectors its recall of the exact top 5 was 0.78)."""
    if vectors <= EXACT_UP_TO:
        return faiss.IndexFlatIP(dim)
    index = faiss.IndexHNSWFlat(dim, _M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = _EF_CONSTRUCTION
    index.hnsw.efSearch = _EF_SEARCH
    return index


class StudyIndex:
    """Studies' image query vectors and report vectors, searchable both ways.

    Parameters
    ----------
    entries
        One JSON-serialisable dict per study (at least ``"key"``; ``"report"`` where it has one).
    image_vectors
        (N, Q, D) unit vectors.
    report_vectors
        (N, D) unit vectors; rows of studies without a report are left out of the report graph.
    model
        ``{"id", "sha256"}`` of the model whose vectors these are (a search with another model's is refused).
    """

    def __init__(self, entries: list[dict[str, Any]], image_vectors: np.ndarray, report_vectors: np.ndarray,
                 model: dict[str, str]) -> None:
        n, q, d = image_vectors.shape
        if len(entries) != n or report_vectors.shape != (n, d):
            raise ValueError("entries, image vectors and report vectors must describe the same studies")
        self.entries, self.model, self.queries, self.dim = entries, model, q, d
        self.images = _graph(d, n * q)
        self.images.add(np.ascontiguousarray(image_vectors.reshape(n * q, d), dtype=np.float32))
        self.with_report = np.array([i for i, e in enumerate(entries) if e.get("report")], dtype=np.int64)
        self.reports = _graph(d, len(self.with_report))
        if len(self.with_report):
            self.reports.add(np.ascontiguousarray(report_vectors[self.with_report], dtype=np.float32))

    def __len__(self) -> int:
        return len(self.entries)

    def _check(self, model_sha256: str) -> None:
        if model_sha256 != self.model["sha256"]:
            raise ConfigurationError(f"the index was built with model {self.model['sha256'][:16]}..., not "
                                     f"{model_sha256[:16]}...: rebuild it with this model")

    def images_for_text(self, text_vector: np.ndarray, k: int, model_sha256: str) -> list[IndexHit]:
        """The ``k`` studies whose images are most similar to a text vector (D,)."""
        self._check(model_sha256)
        want = min(self.images.ntotal, max(64, 4 * k * self.queries))
        scores, ids = self.images.search(np.asarray(text_vector, dtype=np.float32)[None], want)
        best: dict[int, float] = {}
        for s, i in zip(scores[0], ids[0], strict=True):
            if i >= 0:
                study = int(i) // self.queries
                best[study] = max(best.get(study, -2.0), float(s))
        return self._hits(best, k)

    def reports_for_image(self, image_vectors: np.ndarray, k: int, model_sha256: str) -> list[IndexHit]:
        """The ``k`` studies whose reports are most similar to an image's query vectors (Q, D)."""
        self._check(model_sha256)
        if not self.reports.ntotal:
            return []
        want = min(self.reports.ntotal, max(32, 4 * k))
        scores, ids = self.reports.search(np.ascontiguousarray(image_vectors, dtype=np.float32), want)
        best: dict[int, float] = {}
        for row_s, row_i in zip(scores, ids, strict=True):
            for s, i in zip(row_s, row_i, strict=True):
                if i >= 0:
                    study = int(self.with_report[int(i)])
                    best[study] = max(best.get(study, -2.0), float(s))
        return self._hits(best, k)

    def _hits(self, best: dict[int, float], k: int) -> list[IndexHit]:
        order = sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
        return [IndexHit(i, self.entries[i], round(s, 5)) for i, s in order]

    # ------------------------------------------------------------------ files
    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        faiss.write_index(self.images, str(folder / "images.faiss"))
        faiss.write_index(self.reports, str(folder / "reports.faiss"))
        meta = {"format": "clinical-mm study index 1", "model": self.model, "queries": self.queries, "dim": self.dim,
                "engine": f"faiss {faiss.__version__} {type(faiss.downcast_index(self.images)).__name__} inner product",
                "entries": self.entries}
        (folder / "index.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> StudyIndex:
        try:
            meta = json.loads((folder / "index.json").read_text(encoding="utf-8"))
            images = faiss.read_index(str(folder / "images.faiss"))
            reports = faiss.read_index(str(folder / "reports.faiss"))
        except (OSError, ValueError, RuntimeError) as exc:
            raise ConfigurationError(f"{folder}: not a readable study index ({exc.__class__.__name__})") from None
        self = cls.__new__(cls)
        self.entries, self.model = meta["entries"], meta["model"]
        self.queries, self.dim = int(meta["queries"]), int(meta["dim"])
        self.images, self.reports = images, reports
        for graph in (self.images, self.reports):
            found: Any = faiss.downcast_index(graph)
            if hasattr(found, "hnsw"):
                found.hnsw.efSearch = _EF_SEARCH
        self.with_report = np.array([i for i, e in enumerate(self.entries) if e.get("report")], dtype=np.int64)
        if self.images.ntotal != len(self.entries) * self.queries or self.reports.ntotal != len(self.with_report):
            raise ConfigurationError(f"{folder}: the index files do not match index.json")
        return self
