"""What the model is for: a frontal (PA or AP) chest radiograph, CR or DX, with pixel data.

:meth:`ChestRadiographScope.candidates` lists the frontal chest images of a study, or refuses the study
with a reason that names the attribute and its (non-identifying) coded value, e.g. the modality.
"""

from __future__ import annotations

from pydicom.dataset import Dataset

from clinical_mm.core.errors import UnsupportedStudyError

__all__ = ["ChestRadiographScope"]

_MODALITIES = {"CR", "DX"}
_CHEST = {"CHEST", "THORAX", "LUNG", ""}
_FRONTAL = {"PA": 0, "AP": 1, "": 2}
_RADIOGRAPH_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.1",  # CR
    "1.2.840.10008.5.1.4.1.1.1.1",  # DX for presentation
    "1.2.840.10008.5.1.4.1.1.1.1.1",  # DX for processing
}


def _code(value: object) -> str:
    return str(value or "").strip().upper()[:16]


class ChestRadiographScope:
    """Selects the frontal chest radiograph of a study."""

    def candidates(self, instances: list[Dataset]) -> list[int]:
        """Indices of the frontal chest images with pixel data, PA before AP before unknown view;
        raises :class:`UnsupportedStudyError` naming why there is none."""
        if not instances:
            raise UnsupportedStudyError("empty study")
        modalities = sorted({_code(ds.get("Modality")) for ds in instances})
        candidates = [i for i, ds in enumerate(instances)
                      if _code(ds.get("Modality")) in _MODALITIES or str(ds.get("SOPClassUID", "")) in _RADIOGRAPH_CLASSES]
        if not candidates:
            raise UnsupportedStudyError(
                f"out of scope: modality {'/'.join(m or 'unknown' for m in modalities)} "
                "(the model reads chest radiographs, CR or DX)")
        parts = sorted({_code(instances[i].get("BodyPartExamined")) for i in candidates})
        candidates = [i for i in candidates if _code(instances[i].get("BodyPartExamined")) in _CHEST]
        if not candidates:
            raise UnsupportedStudyError(f"out of scope: body part {'/'.join(parts)} (the model reads chest images)")
        views = sorted({_code(instances[i].get("ViewPosition")) or "unknown" for i in candidates})
        frontal = [i for i in candidates if _code(instances[i].get("ViewPosition")) in _FRONTAL]
        if not frontal:
            raise UnsupportedStudyError(f"no frontal chest image (views: {', '.join(views)})")
        with_pixels = [i for i in frontal if "PixelData" in instances[i]]
        if not with_pixels:
            raise UnsupportedStudyError("the frontal chest image has no pixel data")
        return sorted(with_pixels, key=lambda i: _FRONTAL[_code(instances[i].get("ViewPosition"))])
