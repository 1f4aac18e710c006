"""Pixel preprocessing for the model, with MONAI transforms.

DICOM stored values -> Modality LUT -> VOI LUT (or window) -> MONOCHROME1 inversion -> resize with the
aspect ratio kept and pad to a square -> robust intensity scaling -> normalisation. The same function
serves training and inference, so the model never sees pixels prepared another way.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels import apply_modality_lut, apply_voi_lut

from clinical_mm.core.errors import UnsupportedStudyError

__all__ = ["ChestXrayPreprocessor"]


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
        """The (rows, columns) float32 image as a reader would see it: LUTs applied, bright = dense."""
        if "PixelData" not in ds:
            raise UnsupportedStudyError("no pixel data")
        if int(ds.get("SamplesPerPixel", 1)) != 1:
            raise UnsupportedStudyError("not a greyscale image (SamplesPerPixel != 1)")
        try:
            arr = ds.pixel_array
        except Exception as exc:  # pydicom raises many types for undecodable pixel data
            raise UnsupportedStudyError(f"pixel data cannot be decoded ({exc.__class__.__name__})") from None
        if arr.ndim != 2:
            raise UnsupportedStudyError(f"expected a single 2-D frame, got an array of {arr.ndim} dimensions")
        arr = apply_modality_lut(arr, ds)
        arr = apply_voi_lut(arr, ds, prefer_lut=True)
        arr = np.asarray(arr, dtype=np.float32)
        if str(ds.get("PhotometricInterpretation", "MONOCHROME2")) == "MONOCHROME1":
            arr = float(arr.max()) + float(arr.min()) - arr
        return arr

    def __call__(self, ds: Dataset) -> np.ndarray:
        arr = self.display_array(ds)
        out = self._transforms(arr[None])
        return np.asarray(out, dtype=np.float32)
