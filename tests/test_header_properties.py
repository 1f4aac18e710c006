"""Property-based tests (hypothesis) of the header and pixel validators: whatever a header holds, they give a
result or a typed refusal, never another exception."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from clinical_mm.core.errors import UnsupportedStudyError
from clinical_mm.core.pixel_limits import PixelLimits, decoded_pixel_bytes
from clinical_mm.model.preprocessing import ChestXrayPreprocessor

#: values a PACS may hold in a numeric attribute: numbers of any size, text, blanks, infinities
ODD = st.one_of(st.integers(-10**12, 10**12), st.floats(allow_nan=True, allow_infinity=True),
                st.sampled_from(["", "abc", " 12 ", "1e308", "-0", "nan", "inf", "3\\4"]), st.none())
PRE = ChestXrayPreprocessor()


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["Rows", "Columns", "SamplesPerPixel", "NumberOfFrames", "BitsAllocated",
                                        "PixelData", "FloatPixelData", "DoubleFloatPixelData"]), ODD))
@example({"Rows": 10**12, "Columns": 10**12, "SamplesPerPixel": 10**12, "NumberOfFrames": 10**12,
          "BitsAllocated": 10**12, "PixelData": 1})  # a size beyond a float: the refusal's message once overflowed
def test_when_a_header_holds_anything_then_its_decoded_size_is_a_count_and_the_limits_decide(header: dict) -> None:
    size = decoded_pixel_bytes(header)
    assert isinstance(size, int) and size >= 0
    limits = PixelLimits(instance_bytes=1000, study_bytes=5000)
    assert (limits.instance_refusal(header) is None) == (size <= 1000)
    assert (limits.study_refusal([header] * 3) is None) == (3 * size <= 5000)


def _image(rows: int, columns: int) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = rows, columns, 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = np.random.default_rng(rows * columns).integers(0, 4096, (rows, columns), dtype="<u2").tobytes()
    return ds


def _set_raw(ds: Dataset, keyword: str, vr: str, value: object) -> None:
    ds.add_new(keyword, vr, None)
    ds[keyword]._value = value  # a value as a PACS may send it, unparsed


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.integers(1, 96), columns=st.integers(1, 96), centre=ODD, width=ODD, slope=ODD, intercept=ODD)
def test_when_window_and_rescale_hold_anything_then_preprocessing_gives_a_finite_image_or_a_typed_refusal(
        rows: int, columns: int, centre: object, width: object, slope: object, intercept: object) -> None:
    ds = _image(rows, columns)
    for keyword, value in (("WindowCenter", centre), ("WindowWidth", width), ("RescaleSlope", slope),
                           ("RescaleIntercept", intercept)):
        if value is not None:
            _set_raw(ds, keyword, "DS", value)
    try:
        out = PRE(ds)
    except UnsupportedStudyError as exc:
        assert str(exc)  # a reason
        return
    assert out.shape == (1, 128, 128) and np.isfinite(out).all()


@pytest.mark.parametrize("size", [(31, 512), (512, 2049), (40, 161)])
def test_when_an_image_is_too_small_or_too_elongated_then_it_is_refused_before_decoding(size: tuple[int, int]) -> None:
    ds = _image(*size)
    del ds.PixelData
    ds.PixelData = b"\x00"  # would not decode: the size check comes first
    with pytest.raises(UnsupportedStudyError, match="Rows, Columns"):
        PRE(ds)
