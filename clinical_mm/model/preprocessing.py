"""Pixel preprocessing for the model, with MONAI transforms.

DICOM stored values -> Modality LUT -> VOI LUT (or window) -> MONOCHROME1 inversion -> resize with the
aspect ratio kept and pad to a square -> robust intensity scaling -> normalisation. The same function
serves training and inference, so the model never sees pixels prepared another way.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels import apply_modality_lut, apply_voi_lut, apply_windowing

from clinical_mm.core.errors import UnsupportedStudyError

__all__ = ["MAX_ASPECT", "MIN_SIDE", "ChestXrayPreprocessor"]

#: the smallest side (pixels) of an image the model reads; a chest radiograph has hundreds to thousands
MIN_SIDE = 32
#: the largest ratio of the long side to the short one (a chest radiograph is near square)
MAX_ASPECT = 4.0


class ChestXrayPreprocessor:
    """Turns a DICOM dataset's pixel data into a (1, S, S) float32 array for the image encoder.

    Parameters
    ----------
    image_size
        Side of the square model input.
    """

    def __init__(self, image_size: int = 128) -> None:
        from monai.transforms import (
            Compose,
            NormalizeIntensity,
            Resize,
            ScaleIntensityRangePercentiles,
            SpatialPad,
        )

        self.image_size = image_size
        self._transforms: Any = Compose([
            Resize(spatial_size=image_size, size_mode="longest", mode="area"),
            ScaleIntensityRangePercentiles(lower=0.5, upper=99.5, b_min=0.0, b_max=1.0, clip=True),
            SpatialPad(spatial_size=(image_size, image_size), mode="constant"),
            NormalizeIntensity(subtrahend=0.5, divisor=0.25),
        ])

    def display_array(self, ds: Dataset) -> np.ndarray:
        """The (rows, columns) float32 image as a reader would see it: LUTs applied, bright = dense.

        Refused (:class:`UnsupportedStudyError`, the reason naming the attribute, never its value): no pixel
        data, colour, more than one frame, an image smaller than :data:`MIN_SIDE` or more elongated than
        :data:`MAX_ASPECT`, pixel data that cannot be decoded, a Modality LUT that cannot be applied (a rescale
        slope or intercept that is no finite number, a slope of 0) or that gives non-finite values. A VOI LUT or
        window that cannot be applied (a width below 1, a centre that is no number, a LUT shorter than its
        descriptor) is left out: the window is display advice, and the intensity scaling that follows adapts.
        """
        if "PixelData" not in ds:
            raise UnsupportedStudyError("no pixel data")
        if int(ds.get("SamplesPerPixel", 1)) != 1:
            raise UnsupportedStudyError("not a greyscale image (SamplesPerPixel != 1)")
        _check_size(ds)
        try:
            arr = ds.pixel_array
        except Exception as exc:  # pydicom raises many types for undecodable pixel data
            raise UnsupportedStudyError(f"pixel data cannot be decoded ({exc.__class__.__name__})") from None
        if arr.ndim != 2:
            raise UnsupportedStudyError(f"expected a single 2-D frame, got an array of {arr.ndim} dimensions")
        arr = np.asarray(_voi(_modality(arr, ds), ds), dtype=np.float32)
        if not np.isfinite(arr).all():
            raise UnsupportedStudyError("pixel values are not finite after the VOI LUT")
        if str(ds.get("PhotometricInterpretation", "MONOCHROME2")) == "MONOCHROME1":
            arr = float(arr.max()) + float(arr.min()) - arr
        return arr

    def __call__(self, ds: Dataset) -> np.ndarray:
        arr = self.display_array(ds)
        out = self._transforms(arr[None])
        return np.asarray(out, dtype=np.float32)


def _check_size(ds: Dataset) -> None:
    """Refuse, from the header and before decoding, an image too small or too elongated to be a radiograph."""
    try:
        rows, columns = int(ds.get("Rows", 0)), int(ds.get("Columns", 0))
    except (TypeError, ValueError):
        raise UnsupportedStudyError("Rows or Columns is not a number") from None
    if min(rows, columns) < MIN_SIDE:
        raise UnsupportedStudyError(f"image smaller than {MIN_SIDE} pixels on a side (Rows, Columns)")
    if max(rows, columns) > MAX_ASPECT * min(rows, columns):
        raise UnsupportedStudyError(f"image more elongated than {MAX_ASPECT:g}:1 (Rows, Columns)")


def _finite_number(ds: Dataset, keyword: str, default: float) -> float:
    """``ds.<keyword>`` as a finite float (``default`` when absent); refused when it is no finite number."""
    if keyword not in ds or ds[keyword].value in (None, ""):
        return default
    try:
        value = float(ds[keyword].value)
    except (TypeError, ValueError):
        raise UnsupportedStudyError(f"{keyword} is not a number") from None
    if not np.isfinite(value):
        raise UnsupportedStudyError(f"{keyword} is not a finite number")
    return value


def _modality(arr: np.ndarray, ds: Dataset) -> np.ndarray:
    """The Modality LUT (a LUT sequence, or rescale slope and intercept), checked; refused when unusable."""
    if "ModalityLUTSequence" not in ds:
        slope = _finite_number(ds, "RescaleSlope", 1.0)
        _finite_number(ds, "RescaleIntercept", 0.0)
        if slope == 0.0:
            raise UnsupportedStudyError("RescaleSlope is 0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an overflow is refused below, not printed
        try:
            out = np.asarray(apply_modality_lut(arr, ds))
        except Exception as exc:  # noqa: BLE001 - pydicom raises many types for a malformed LUT
            raise UnsupportedStudyError(f"the Modality LUT cannot be applied ({exc.__class__.__name__})") from None
    if not np.isfinite(out).all():
        raise UnsupportedStudyError("pixel values are not finite after the Modality LUT (RescaleSlope, "
                                    "RescaleIntercept)")
    return out


def _voi(arr: np.ndarray, ds: Dataset) -> np.ndarray:
    """The VOI LUT, else the window, else nothing: whichever of them can be applied."""
    attempts = [lambda: apply_voi_lut(arr, ds, prefer_lut=True)]
    if "VOILUTSequence" in ds and "WindowWidth" in ds:
        attempts.append(lambda: apply_windowing(arr, ds))
    for attempt in attempts:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydicom warns about float input and odd descriptors
            try:
                return np.asarray(attempt())
            except Exception:  # noqa: BLE001, S112 - an unusable VOI is skipped, see display_array
                continue
    return arr
