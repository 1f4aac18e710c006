"""Burned-in text in pixel data: detection, redaction, verification, and OCR where it adds certainty.

Every image whose BurnedInAnnotation is YES, missing or anything but NO (and every image of a device model with
configured text regions) is decoded, frame by frame (compressed pixel data is decompressed; the redacted pixels
are written uncompressed). In each frame:

1. **Detection** (:class:`~clinical_mm.deid.text_regions.TextRegionDetector`) proposes lines of glyph-shaped
   strokes, bright or dark, whether or not an OCR engine can read them. Where BurnedInAnnotation is YES, every
   proposed line is redacted (privacy first). Where it is absent or anything else (most modalities do not fill
   it), a line is redacted only when a second, independent signal confirms it: plain print (six glyphs or more of
   one height on one baseline or top line) or tesseract reading a word in the line's crop (all of a frame's crops
   in one small call), so lung texture, vessels and bone edges that look like a few glyphs stay. Each redacted line
   is blacked out whole with a margin of half a glyph height, as are the device model's configured regions.
2. **Verification**, where anything was blacked out: a second, more sensitive detection pass (weaker strokes,
   two-glyph lines) over crops around the black boxes, measured against the whole frame's noise; what it finds
   outside the black boxes is blacked out too, up to three rounds.
3. **OCR** (tesseract, the Debian ``tesseract-ocr`` program) where it adds certainty: a file that says
   BurnedInAnnotation YES but in which detection found no text is read by OCR, frame by frame; words read at
   confidence >= 60 are blacked out and the frame is read again. ``ocr="always"`` reads every cleaned frame.

Only then is BurnedInAnnotation set to NO. A file that cannot be verified (pixels that cannot be decoded, text
left after three rounds, OCR needed but tesseract missing or failing, BurnedInAnnotation YES but no text
found by detection or OCR) raises :class:`QuarantinedError`. Pixels
outside the black boxes are not touched.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels import pack_bits
from scipy import ndimage

from clinical_mm.core.errors import ConfigurationError, QuarantinedError
from clinical_mm.core.pixel_limits import PIXEL_ELEMENTS
from clinical_mm.deid.text_regions import SENSITIVE, TextLine, TextRegionDetector, display_luminance

__all__ = ["KnownTextRegions", "PixelTextCleaner"]

_ROUNDS = 3


@dataclass(frozen=True)
class KnownTextRegions:
    """Where a device model burns in text, as fractions of the image (x0, y0, x1, y1), by (manufacturer, model).

    JSON: ``[{"manufacturer": "Acme Imaging", "model": "AcmeDR 500", "regions": [[0, 0, 0.4, 0.08]]}]``.
    """

    regions: dict[tuple[str, str], tuple[tuple[float, float, float, float], ...]] = field(default_factory=dict)

    @classmethod
    def from_json(cls, path: Path) -> KnownTextRegions:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            regions = {
                (str(e["manufacturer"]).strip().upper(), str(e["model"]).strip().upper()):
                    tuple((float(a), float(b), float(c), float(d)) for a, b, c, d in e["regions"])
                for e in raw
            }
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigurationError(f"{path}: not a text-region list ({exc.__class__.__name__}); expected a JSON array "
                                     'of {"manufacturer", "model", "regions": [[x0, y0, x1, y1], ...]}') from None
        for boxes in regions.values():
            if not all(0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1 for x0, y0, x1, y1 in boxes):
                raise ConfigurationError(f"{path}: regions must be fractions 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1")
        return cls(regions)

    def for_dataset(self, ds: Dataset) -> tuple[tuple[float, float, float, float], ...]:
        key = (str(ds.get("Manufacturer", "")).strip().upper(), str(ds.get("ManufacturerModelName", "")).strip().upper())
        return self.regions.get(key, ())


@dataclass
class _Frame:
    """One frame being cleaned: its pixels (a view, written through), the black it is filled with, how it is
    turned to display luminance, and the mask of what has been blacked out."""

    pixels: np.ndarray
    fill: float
    luminance: Callable[[np.ndarray], np.ndarray]
    mask: np.ndarray = field(init=False)
    near: list[tuple[tuple[int, int, int, int], int]] = field(default_factory=list)  # where the rest of a text
    # block may be (around a blacked-out line), with the line's glyph height

    def __post_init__(self) -> None:
        self.mask = np.zeros(self.pixels.shape[:2], bool)

    def gray(self) -> np.ndarray:
        return self.luminance(self.pixels)

    def black_out(self, box: tuple[int, int, int, int], height: int = 0) -> None:
        """Fill ``box`` with black; around it (two glyph heights ``height`` above and below, six to either side,
        where the rest of a line or the next line of a block would be) is searched again."""
        x0, y0, x1, y1 = box
        self.pixels[y0:y1, x0:x1] = self.fill
        self.mask[y0:y1, x0:x1] = True
        if height:
            self.near.append(((x0 - 4 * height, y0 - 3 * height // 2, x1 + 4 * height, y1 + 3 * height // 2), height))

    def windows(self, reach: int) -> list[tuple[int, int, int, int]]:
        """Where the verification pass looks: each searched area grown by two glyph heights and ``reach`` pixels
        (so that a line crossing its edge is seen whole), overlapping ones merged, clipped to the frame."""
        h, w = self.mask.shape
        boxes = [[max(0, x0 - 2 * g - reach), max(0, y0 - 2 * g - reach), min(w, x1 + 2 * g + reach),
                  min(h, y1 + 2 * g + reach)] for (x0, y0, x1, y1), g in self.near]
        while True:
            pair = next(((i, j) for i in range(len(boxes)) for j in range(i + 1, len(boxes))
                         if boxes[i][0] < boxes[j][2] and boxes[j][0] < boxes[i][2] and boxes[i][1] < boxes[j][3]
                         and boxes[j][1] < boxes[i][3]), None)
            if pair is None:
                break
            i, j = pair
            boxes[i] = [min(boxes[i][k], boxes[j][k]) for k in (0, 1)] + [max(boxes[i][k], boxes[j][k]) for k in (2, 3)]
            del boxes[j]
        return [(a, b, c, d) for a, b, c, d in boxes]

    def continuation(self, line: TextLine, margin: float) -> tuple[int, int, int, int] | None:
        """The part of ``line`` (padded by ``margin`` glyph heights) around a blacked-out line with glyphs of about
        its height (the rest of the same text) and not yet black, or None where there is none."""
        lx0, ly0, lx1, ly1 = line.padded(self.mask.shape, margin)
        for (x0, y0, x1, y1), h in self.near:
            if x0 < lx1 and lx0 < x1 and y0 < ly1 and ly0 < y1 and h / 1.6 <= line.height <= h * 1.6:
                box = max(lx0, x0, 0), max(ly0, y0, 0), min(lx1, x1), min(ly1, y1)
                if not self.mask[box[1]:box[3], box[0]:box[2]].all():
                    return box
        return None


class PixelTextCleaner:
    """Finds, redacts and verifies burned-in text (see the module docstring).

    Parameters
    ----------
    regions
        Known text regions per device model, redacted whatever detection says.
    tesseract
        The tesseract program (looked up on PATH).
    min_confidence
        Tesseract word confidence (0-100) from which a word of two or more letters or digits counts as
        text. On 25 synthetic radiographs without text, the words tesseract imagined in anatomy scored at
        most 56; planted burned-in words scored 62 to 96 on the 2x rendering.
    detector, verifier
        The detection pass and the more sensitive verification pass.
    ocr
        ``"auto"``: OCR only where BurnedInAnnotation is YES and detection found nothing; ``"always"``: every
        cleaned frame is also read by OCR (about 0.1-0.3 s a frame more).
    margin
        Margin around each detected line, in glyph heights.
    confirm_confidence
        Where BurnedInAnnotation is not YES, a detected line that is not plainly printed is redacted only where
        tesseract reads in its crop a word of three letters or digits or more at this confidence (or of two at 90).
    """

    def __init__(self, regions: KnownTextRegions | None = None, tesseract: str = "tesseract",
                 min_confidence: float = 60.0, detector: TextRegionDetector | None = None,
                 verifier: TextRegionDetector | None = None, ocr: Literal["auto", "always"] = "auto",
                 margin: float = 0.5, confirm_confidence: float = 70.0) -> None:
        self.regions = regions or KnownTextRegions()
        self.tesseract = shutil.which(tesseract)
        self.min_confidence = min_confidence
        self.detector = detector or TextRegionDetector()
        self.verifier = verifier or TextRegionDetector(SENSITIVE)
        self.ocr = ocr
        self.margin = margin
        self.confirm_confidence = confirm_confidence

    def clean(self, ds: Dataset) -> Counter[str]:
        """Redact burned-in text in ``ds`` in place; return counts (regions, detected lines, OCR boxes, frames
        verified)."""
        counts: Counter[str] = Counter()
        element = next((k for k in PIXEL_ELEMENTS if k in ds), None)
        if element is None:
            return counts
        regions = self.regions.for_dataset(ds)
        annotation = str(ds.get("BurnedInAnnotation", "")).strip().upper()
        if annotation == "NO" and not regions:
            return counts
        pixels = self._decoded(ds)
        n_frames = int(ds.get("NumberOfFrames", 1) or 1)
        photometric = str(ds.get("PhotometricInterpretation", ""))
        frames = [_Frame(f, self._fill_value(ds, pixels), lambda p: display_luminance(p, photometric))
                  for f in (pixels if n_frames > 1 else pixels[None])]  # views into ``pixels``
        for frame in frames:
            h, w = frame.mask.shape
            for x0, y0, x1, y1 in regions:
                frame.black_out((int(x0 * w), int(y0 * h), int(np.ceil(x1 * w)), int(np.ceil(y1 * h))))
                counts["pixel:region"] += 1
            counts["pixel:text-region"] += self._detect_and_verify(frame, confirm=annotation != "YES", counts=counts)
        found = any(f.mask.any() for f in frames)
        if self.ocr == "always" or (annotation == "YES" and not found):
            for frame in frames:
                counts["pixel:ocr-box"] += self._redact_read_words(frame, ds, "burned-in text")
        if annotation == "YES" and not any(f.mask.any() for f in frames):
            raise QuarantinedError("BurnedInAnnotation is YES but neither detection nor OCR found the text: its "
                                   "removal cannot be verified")
        counts["pixel:frame-verified"] += len(frames)
        meta = getattr(ds, "file_meta", None)
        now = meta.get("TransferSyntaxUID") if meta is not None else None  # Explicit VR Little Endian if decompressed
        _write_pixels(ds, element, pixels, little_endian=now is None or now.is_little_endian)
        ds.BurnedInAnnotation = "NO"
        return counts

    def clean_overlay(self, ds: Dataset, group: int) -> int:
        """Clear the text in the overlay bitmap of repeating ``group`` (0x6000-0x601E), in place: detection, then
        OCR, and verify; return the number of boxes cleared. :class:`QuarantinedError` when it cannot be verified
        (no tesseract, an overlay that cannot be decoded, text left after three rounds)."""
        if self.tesseract is None:
            raise QuarantinedError("overlay text cannot be verified: OCR (tesseract) is not installed")
        try:
            bits = np.asarray(ds.overlay_array(group), dtype=np.uint8).copy()
        except Exception as exc:  # pydicom raises several types for malformed overlays
            raise QuarantinedError(f"overlay ({group:04X},3000) cannot be decoded ({exc.__class__.__name__})") from None
        plain = Dataset()  # read as MONOCHROME2: set bits white on black
        n = 0
        for bitmap in bits if bits.ndim == 3 else bits[None]:
            frame = _Frame(bitmap, 0, lambda p: p.astype(np.float32))
            n += self._detect_and_verify(frame)
            n += self._redact_read_words(frame, plain, "overlay text")
        ds[(group << 16) | 0x3000].value = pack_bits(bits, pad=True)
        return n

    def read_words(self, pixels: np.ndarray, ds: Dataset) -> list[tuple[int, int, int, int]]:
        """Boxes (x0, y0, x1, y1, in pixels, padded) of the words tesseract reads at ``min_confidence`` in one
        frame (grey or colour) of ``ds``: the OCR pass, also for checking a cleaned frame."""
        if self.tesseract is None:
            raise QuarantinedError("burned-in text cannot be verified: OCR (tesseract) is not installed")
        gray = display_luminance(pixels, str(ds.get("PhotometricInterpretation", "")))
        return _tesseract_words(self.tesseract, gray, self.min_confidence)

    def _decoded(self, ds: Dataset) -> np.ndarray:
        """The pixel array, decompressed in ``ds`` first; :class:`QuarantinedError` when it cannot be decoded."""
        meta = getattr(ds, "file_meta", None)
        syntax = meta.get("TransferSyntaxUID") if meta is not None else None
        try:
            if syntax is not None and syntax.is_compressed:
                ds.decompress()  # the redacted pixels are written uncompressed (Explicit VR Little Endian)
            return np.array(ds.pixel_array, copy=True)
        except Exception as exc:  # pydicom raises many types for undecodable pixel data
            raise QuarantinedError(f"burned-in text cannot be verified: pixel data cannot be decoded "
                                   f"({exc.__class__.__name__})") from None

    def _detect_and_verify(self, frame: _Frame, confirm: bool = False, counts: Counter[str] | None = None) -> int:
        """Black out the text lines detection finds in ``frame`` (with ``confirm``, only those :meth:`_confirmed`);
        where anything is black, look again with the sensitive pass around the black boxes (the rest of a line, the
        next line of a block: crops of the frame, measured against the whole frame's noise) until it finds nothing
        outside them; return the number of lines. :class:`QuarantinedError` when text is still found after
        ``_ROUNDS`` verification rounds."""
        gray = frame.gray()
        lines, noise = self.detector.scan(gray)
        if confirm and lines:
            kept = self._confirmed(gray, lines)
            if counts is not None:
                counts["pixel:line-unconfirmed"] += len(lines) - len(kept)
            lines = kept
        for line in lines:
            frame.black_out(line.padded(frame.mask.shape, self.margin), line.height)
        n = len(lines)
        if not frame.mask.any():
            return n
        for _ in range(_ROUNDS):
            gray = frame.gray()
            found = (frame.continuation(line, self.margin) for window in frame.windows(self.verifier.settings.tophat)
                     for line in self.verifier.detect(gray, frame.mask, window, noise))
            left = [box for box in found if box is not None]
            if not left:
                return n
            for box in left:  # not widening the search: it stays around what the first pass found
                frame.black_out(box)
            n += len(left)
        raise QuarantinedError(f"burned-in text remains after {_ROUNDS} verification rounds")

    def _confirmed(self, gray: np.ndarray, lines: list[TextLine]) -> list[TextLine]:
        """The ``lines`` a second, independent signal says are text: the detector's own strong evidence of print
        (:attr:`TextLine.printed`), or tesseract reading a word in the line's crop (all crops of a frame in one
        call). Without tesseract, only the printed lines."""
        printed = [line for line in lines if line.printed]
        rest = [line for line in lines if not line.printed]
        if not rest or self.tesseract is None:
            return printed
        read = _tesseract_lines(self.tesseract, gray, rest, self.confirm_confidence)
        return printed + [line for line, ok in zip(rest, read, strict=True) if ok]

    def _redact_read_words(self, frame: _Frame, ds: Dataset, what: str) -> int:
        """Black out the words OCR reads in ``frame`` and read it again, until nothing legible is left; return
        the number of boxes. :class:`QuarantinedError` after ``_ROUNDS`` rounds or without tesseract."""
        if self.tesseract is None:
            raise QuarantinedError(f"{what} cannot be verified: OCR (tesseract) is not installed")
        n = 0
        for _ in range(_ROUNDS):
            boxes = _tesseract_words(self.tesseract, frame.gray(), self.min_confidence)
            if not boxes:
                return n
            for box in boxes:
                frame.black_out(box)
            n += len(boxes)
        raise QuarantinedError(f"{what} remains after {_ROUNDS} redaction rounds")

    @staticmethod
    def _fill_value(ds: Dataset, frames: np.ndarray) -> float:
        """Black as the image is displayed: the lowest stored value, or the highest for MONOCHROME1."""
        if str(ds.get("PhotometricInterpretation", "")) == "MONOCHROME1":
            return float(frames.max())
        return float(frames.min())


def _tesseract_words(program: str, gray: np.ndarray, min_confidence: float) -> list[tuple[int, int, int, int]]:
    """Boxes (x0, y0, x1, y1, padded) of the words of two or more letters or digits that tesseract reads at
    ``min_confidence`` in ``gray`` (display luminance), rendered to 8 bits and enlarged 2x up to 1024 pixels."""
    g = np.nan_to_num(gray.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = float(g.min()), float(g.max())
    img = np.zeros(g.shape, np.uint8) if hi <= lo else ((g - lo) / (hi - lo) * 255).astype(np.uint8)
    scale = 2 if max(img.shape) <= 1024 else 1  # small matrices: enlarge, so small fonts are legible
    big = np.kron(img, np.ones((scale, scale), np.uint8)) if scale > 1 else img
    boxes = []
    h, w = gray.shape
    for f in _run_tesseract(program, big):
        if float(f[10]) < min_confidence or sum(ch.isalnum() for ch in f[11]) < 2:
            continue
        left, top, width, height = (int(v) // scale for v in f[6:10])
        pad = max(2, height // 3)
        boxes.append((max(0, left - pad), max(0, top - pad), min(w, left + width + pad + 1),
                      min(h, top + height + pad + 1)))
    return boxes


def _tesseract_lines(program: str, gray: np.ndarray, lines: list[TextLine], min_confidence: float) -> list[bool]:
    """For each of ``lines`` (in ``gray``, display luminance): does tesseract read a word in its crop, of three
    letters or digits or more at ``min_confidence``, or of two at 90 (anatomy's imagined words: one or two
    characters, a few of them at 74-83)? The crops (each windowed to its own 1st-99th percentiles, turned
    to dark text on white, scaled to glyphs ~32 pixels high) are stacked into one small image, read in one call.
    :class:`QuarantinedError` where tesseract fails."""
    strips, bands, y = [], [], 0
    for line in lines:
        x0, y0, x1, y1 = line.padded(gray.shape, 0.5)
        crop = np.nan_to_num(gray[y0:y1, x0:x1].astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        lo, hi = np.percentile(crop, [1.0, 99.0])
        img = np.clip((crop - lo) * (255.0 / max(float(hi - lo), 1e-6)), 0, 255).astype(np.uint8)
        if line.polarity > 0:
            img = 255 - img
        strip = ndimage.zoom(img, min(4.0, max(0.25, 32.0 / max(line.height, 1))), order=1, mode="nearest")
        strips.append(strip)
        bands.append((y + 16, y + 16 + strip.shape[0]))
        y += strip.shape[0] + 32
    sheet = np.full((y, max(s.shape[1] for s in strips) + 32), 255, np.uint8)
    for strip, (top, bottom) in zip(strips, bands, strict=True):
        sheet[top:bottom, 16:16 + strip.shape[1]] = strip
    read = [False] * len(lines)
    for f in _run_tesseract(program, sheet):
        alnum, conf = sum(ch.isalnum() for ch in f[11]), float(f[10])
        if not ((alnum >= 3 and conf >= min_confidence) or (alnum >= 2 and conf >= 90.0)):
            continue
        centre = int(f[7]) + int(f[9]) / 2
        read = [r or top <= centre < bottom for r, (top, bottom) in zip(read, bands, strict=True)]
    return read


def _run_tesseract(program: str, img: np.ndarray) -> list[list[str]]:
    """The word rows (12 fields) of tesseract's TSV for the 8-bit grey image ``img`` (sent as a PGM), sparse-text
    layout, one thread (OMP_THREAD_LIMIT=1: the batch already runs a process per core). :class:`QuarantinedError`
    where it fails."""
    pgm = b"P5\n%d %d\n255\n" % (img.shape[1], img.shape[0]) + img.tobytes()
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    try:
        proc = subprocess.run([program, "stdin", "stdout", "--psm", "11", "tsv"], input=pgm, env=env,
                              capture_output=True, timeout=120, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        raise QuarantinedError(f"burned-in text cannot be verified: tesseract failed ({exc.__class__.__name__})") from None
    rows = (line.split("\t") for line in proc.stdout.decode("utf-8", "replace").splitlines()[1:])
    return [f for f in rows if len(f) == 12 and f[11].strip()]


def _write_pixels(ds: Dataset, element: str, pixels: np.ndarray, little_endian: bool) -> None:
    """The redacted ``pixels`` back into ``ds.<element>`` in the file's own encoding: in its byte order (a big
    endian file stays big endian and valid), colour by plane where the file is, YCbCr as the RGB it was decoded
    to, 1-bit images packed eight pixels a byte, float and double float images in their own element; an odd
    number of bytes padded with a zero byte to even length (PS3.5 8.1.1: an odd-sized 8-bit RGB image of 3 x 3
    pixels is 27 bytes, 28 in the file); 8-bit samples of a big endian OW element in byte-swapped words, as the
    file holds them and pydicom reads them."""
    if element == "PixelData" and int(ds.get("BitsAllocated", 8)) == 1:
        ds.PixelData = pack_bits(pixels, pad=True)
        return
    if int(ds.get("SamplesPerPixel", 1)) > 1:
        if str(ds.get("PhotometricInterpretation", "")).startswith("YBR"):
            ds.PhotometricInterpretation = "RGB"  # pydicom decodes YCbCr to RGB, and RGB is what is written
        if int(ds.get("PlanarConfiguration", 0)) == 1:  # colour-by-plane: R plane, G plane, B plane
            pixels = np.moveaxis(pixels, -1, -3)
    order: Literal["<", ">"] = "<" if little_endian else ">"
    data = pixels.astype(pixels.dtype.newbyteorder(order), copy=False).tobytes()
    data = data + b"\x00" if len(data) % 2 else data
    if not little_endian and pixels.dtype.itemsize == 1 and ds[element].VR == "OW":
        data = np.frombuffer(data, "<u2").byteswap().tobytes()  # 8-bit samples in big endian OW words, as read
    setattr(ds, element, data)
