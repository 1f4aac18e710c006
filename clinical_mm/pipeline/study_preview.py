"""The de-identified preview image of a study for the review page: the frontal image the model read, after
de-identification (burned-in text redacted), windowed to 8 bits, at most 512 pixels a side, as PNG."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset

from clinical_mm.core.errors import InputError
from clinical_mm.deid import DicomDeidentifier
from clinical_mm.model.preprocessing import ChestXrayPreprocessor
from clinical_mm.model.study_scope import ChestRadiographScope

__all__ = ["StudyPreview", "png_grey"]


def png_grey(image: np.ndarray) -> bytes:
    """Encode a 2-D uint8 array as an 8-bit greyscale PNG."""
    height, width = image.shape

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + image[row].tobytes() for row in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


class StudyPreview:
    """Renders previews from spooled files (never from the originals' pixels without de-identification)."""

    def __init__(self, deidentifier: DicomDeidentifier, max_side: int = 512) -> None:
        self.deidentifier = deidentifier
        self.max_side = max_side
        self.scope = ChestRadiographScope()
        self.pre = ChestXrayPreprocessor()

    def render(self, files: list[Path], image: str | None = None) -> bytes:
        """The preview PNG of the study's frontal image: the one analysed when ``image`` (its pseudonymous SOP
        Instance UID, the result's ``image``) names one of them, else the scope check's first choice."""
        import pydicom

        try:
            datasets: list[Dataset] = [pydicom.dcmread(f) for f in files]
        except Exception as exc:  # noqa: BLE001 - any reader failure is an input problem
            raise InputError(f"spooled instance cannot be read ({exc.__class__.__name__})") from None
        index = self.scope.candidates(datasets)[0]
        study = self.deidentifier.deidentify_study(datasets)
        analysed = [i for i, ds in enumerate(study.instances) if image and str(ds.get("SOPInstanceUID", "")) == image]
        index = analysed[0] if analysed else index
        arr = self.pre.display_array(study.instances[index])
        step = max(1, int(np.ceil(max(arr.shape) / self.max_side)))
        arr = arr[::step, ::step]
        lo, hi = np.percentile(arr, [0.5, 99.5])
        scaled = np.clip((arr - lo) / max(float(hi - lo), 1e-6), 0.0, 1.0)
        return png_grey((scaled * 255).astype(np.uint8))
