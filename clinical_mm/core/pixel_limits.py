"""How many bytes an image's pixels decode to, read from its header before anything decodes them, and the
limits a site sets on that (``CLINICAL_MM_MAX_INSTANCE_PIXEL_BYTES``, ``CLINICAL_MM_MAX_STUDY_PIXEL_BYTES``).

A 2 KiB file can claim a 32768 x 32768 RLE image; decoding it first and refusing it after takes gigabytes. The
size is the header's product (rows x columns x samples x frames x bits allocated), so a file that lies about it
is refused by what it claims. Works on any mapping with ``get`` (a pydicom Dataset): this module imports no
DICOM library.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["DEFAULT_INSTANCE_BYTES", "DEFAULT_STUDY_BYTES", "PIXEL_ELEMENTS", "PixelLimits", "decoded_pixel_bytes"]

#: default limit of one instance's decoded pixels (a chest radiograph: about 20 MB; a large multi-frame: hundreds)
DEFAULT_INSTANCE_BYTES = 256 * 2**20
#: default limit of one study's decoded pixels, all instances together
DEFAULT_STUDY_BYTES = 2**30
#: the elements an image's pixels may be stored in (integer, float and double float pixel data)
PIXEL_ELEMENTS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
#: bits a pixel of each float element takes (integer pixel data says its own, BitsAllocated)
_FLOAT_BITS = {"FloatPixelData": 32, "DoubleFloatPixelData": 64}


class _Header(Protocol):
    """What is read of a header: a pydicom Dataset, or any mapping of keywords."""

    def get(self, key: Any, default: Any = ..., /) -> Any: ...

    def __contains__(self, key: Any, /) -> bool: ...


def _count(header: _Header, keyword: str, default: int) -> int:
    value = header.get(keyword, default)
    try:
        return max(0, int(value if value not in (None, "") else default))
    except (TypeError, ValueError, OverflowError):  # text, NaN, infinity: the header says nothing usable
        return default


def decoded_pixel_bytes(header: _Header) -> int:
    """The bytes ``header``'s pixels decode to (0 without pixel data); unreadable counts taken as 1 frame,
    1 sample, 16 bits."""
    element = next((keyword for keyword in PIXEL_ELEMENTS if keyword in header), None)
    if element is None:
        return 0
    bits = _FLOAT_BITS.get(element) or _count(header, "BitsAllocated", 16)
    pixels = (_count(header, "Rows", 0) * _count(header, "Columns", 0) * _count(header, "SamplesPerPixel", 1)
              * max(1, _count(header, "NumberOfFrames", 1)))
    return (pixels * bits + 7) // 8


@dataclass(frozen=True)
class PixelLimits:
    """The most decoded pixel bytes one instance, and one study, may have."""

    instance_bytes: int = DEFAULT_INSTANCE_BYTES
    study_bytes: int = DEFAULT_STUDY_BYTES

    def instance_refusal(self, header: _Header) -> str | None:
        """The PHI-free reason ``header``'s image is too large to decode, or None."""
        size = decoded_pixel_bytes(header)
        if size > self.instance_bytes:
            return (f"pixel data would decode to {_mib(size)} MiB, over the limit of "
                    f"{_mib(self.instance_bytes)} MiB an instance (CLINICAL_MM_MAX_INSTANCE_PIXEL_BYTES)")
        return None

    def study_refusal(self, headers: Iterable[_Header]) -> str | None:
        """The PHI-free reason the study of ``headers`` is too large to decode, or None."""
        size = sum(decoded_pixel_bytes(h) for h in headers)
        if size > self.study_bytes:
            return (f"the study's pixel data would decode to {_mib(size)} MiB, over the limit of "
                    f"{_mib(self.study_bytes)} MiB a study (CLINICAL_MM_MAX_STUDY_PIXEL_BYTES)")
        return None


def _mib(size: int) -> str:
    """``size`` bytes in MiB, rounded, with thousands separators; a header's counts can multiply to a number too
    large for a float (or for a decimal string), which reads as "more than 2**60"."""
    return f"{(size + 2**19) // 2**20:,}" if size < 2**80 else "more than 2**60"
