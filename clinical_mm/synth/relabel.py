"""Images that are not chest radiographs, relabelled as one: the input gate's hostile test inputs.

:func:`relabelled_chest_radiograph` writes any greyscale picture (a CT or MR slice, an ultrasound frame, a
photograph, a radiograph turned or inverted) into a dataset whose header says CR / CHEST / PA, so that only
the pixels can tell it apart; :func:`grey_pixels` turns a dataset's colour, palette or multi-frame pixels into
one greyscale frame first.
"""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixels import apply_color_lut, convert_color_space
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

__all__ = ["TURNS", "grey_pixels", "relabelled_chest_radiograph", "turned"]

CR_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.1"
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
#: the ways a radiograph can reach us turned: rotated, upside down, or inverted (dense structures dark)
TURNS: tuple[str, ...] = ("rotated 90", "rotated 180", "rotated 270", "upside down", "inverted")


def grey_pixels(ds: Dataset) -> np.ndarray:
    """One greyscale frame (float32, bright = dense for MONOCHROME2 data) of any dataset with pixel data: the
    middle frame of a multi-frame image; colour and palette images as their luminance."""
    arr = ds.pixel_array
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        arr = arr[len(arr) // 2]
    if photometric == "PALETTE COLOR":
        arr = apply_color_lut(arr, ds)
    elif arr.ndim == 3 and photometric.startswith("YBR"):
        arr = convert_color_space(arr, photometric, "RGB")
    out = arr[..., :3].astype(np.float32) @ _LUMA if arr.ndim == 3 else arr.astype(np.float32)
    if photometric == "MONOCHROME1":
        out = float(out.max()) + float(out.min()) - out
    return np.asarray(out, dtype=np.float32)


def turned(pixels: np.ndarray, turn: str) -> np.ndarray:
    """``pixels`` rotated, upside down or inverted (one of :data:`TURNS`)."""
    if turn == "inverted":
        return float(pixels.max()) + float(pixels.min()) - pixels
    if turn == "upside down":
        return np.ascontiguousarray(pixels[::-1])
    quarter = {"rotated 90": 1, "rotated 180": 2, "rotated 270": 3}[turn]
    return np.ascontiguousarray(np.rot90(pixels, quarter))


def relabelled_chest_radiograph(pixels: np.ndarray, patient: Dataset | None = None) -> Dataset:
    """A CR dataset, BodyPartExamined CHEST, ViewPosition PA, holding ``pixels`` (any 2-D array, scaled to 12
    bits, MONOCHROME2), a study of its own (new UIDs); the patient's attributes, the accession and the study date
    are copied from ``patient`` when given (e.g. a synthetic study's, with its fake PHI)."""
    grey = np.asarray(pixels, dtype=np.float64)
    lo, hi = float(grey.min()), float(grey.max())
    stored = np.round((grey - lo) / (hi - lo) * 4095.0) if hi > lo else np.zeros_like(grey)
    ds = Dataset()
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber", "StudyDate",
                    "InstitutionName", "ReferringPhysicianName"):
        if patient is not None and keyword in patient:
            setattr(ds, keyword, patient.get(keyword))
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = generate_uid(), generate_uid(), generate_uid()
    ds.SOPClassUID = CR_SOP_CLASS
    ds.Modality, ds.BodyPartExamined, ds.ViewPosition = "CR", "CHEST", "PA"
    ds.Rows, ds.Columns = grey.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = stored.astype(np.uint16).tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds
