"""Burned-in text found by detection, not only by OCR: small fonts, low contrast, text over anatomy, dark text on
bright areas, colour, compressed and multi-frame images; nothing legible left, nothing outside the boxes changed,
and radiographs without text keep (almost) all their pixels."""

from __future__ import annotations

import contextlib
import io
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from clinical_mm.core.errors import QuarantinedError
from clinical_mm.deid import text_regions
from clinical_mm.deid.pixel_text import PixelTextCleaner
from clinical_mm.deid.text_regions import TextRegionDetector, display_luminance
from clinical_mm.synth.study_synthesizer import StudySynthesizer

NAME, MRN, DOB = "QXSMITH JOHN", "4471234", "03/04/1961"
TOKENS = ("QXSMITH", "SMITH", "JOHN", "4471234", "1961")


def _study(tmp_path: Path, seed: int) -> pydicom.Dataset:
    study = StudySynthesizer(seed).make_study(0, tmp_path / str(seed))
    ds = pydicom.dcmread(tmp_path / str(seed) / study.path)
    ds.BurnedInAnnotation = "YES"
    return ds


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.truetype("DejaVuSans.ttf", size)
    except OSError:
        return ImageFont.load_default(size=size)


def _plant(ds: pydicom.Dataset, xy: tuple[int, int], size: int, contrast: float, *, dark: bool = False,
           text: str = f"{NAME} {MRN} {DOB}") -> np.ndarray:
    """Draw ``text`` anti-aliased into the pixels, ``contrast`` (a fraction of the 1st-99th percentile range) above
    (or with ``dark`` below) what lies under it, as displayed; return the mask of the text's bounding box."""
    arr = ds.pixel_array.astype(np.float64)
    m1 = ds.PhotometricInterpretation == "MONOCHROME1"
    shown = -arr if m1 else arr
    lo, hi = np.percentile(shown, [1, 99])
    img = Image.new("L", (arr.shape[1], arr.shape[0]), 0)
    ImageDraw.Draw(img).text(xy, text, fill=255, font=_font(size))
    alpha = np.asarray(img, np.float64) / 255
    shown = shown + (-1 if dark else 1) * contrast * (hi - lo) * alpha
    stored = -shown if m1 else shown
    dtype = "<u2" if int(ds.BitsAllocated) == 16 else "u1"
    ds.PixelData = np.clip(np.rint(stored), 0, (1 << int(ds.BitsStored)) - 1).astype(dtype).tobytes()
    ys, xs = np.nonzero(alpha > 0.2)
    box = np.zeros(arr.shape, bool)
    box[ys.min():ys.max() + 1, xs.min():xs.max() + 1] = True
    return box


def _ocr_tokens(pixels: np.ndarray, photometric: str, near: np.ndarray | None = None) -> set[str]:
    """An independent OCR pass (not the cleaner's): the area around ``near`` (or the whole frame), windowed to its
    own 0.5-99.5th percentiles (so that low-contrast text is stretched), 3x (crop) or 2x Lanczos, tesseract --psm 6
    (a block of text) and --psm 11 (sparse text); every word read at confidence >= 30, upper-cased."""
    gray = display_luminance(pixels, photometric)
    if near is not None:
        ys, xs = np.nonzero(near)
        gray = gray[max(0, ys.min() - 20):ys.max() + 21, max(0, xs.min() - 20):xs.max() + 21]
    lo, hi = np.percentile(gray, [0.5, 99.5])
    img = np.clip((gray - lo) / max(hi - lo, 1e-6) * 255, 0, 255).astype(np.uint8)
    scale = 3 if near is not None else 2  # a crop: larger, so small fonts are within tesseract's reach
    big = Image.fromarray(img).resize((img.shape[1] * scale, img.shape[0] * scale), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    big.save(buffer, "PNG")
    words: set[str] = set()
    for psm in ("6", "11"):  # two page layouts: a block of text, sparse text
        out = subprocess.run(["tesseract", "stdin", "stdout", "--psm", psm, "tsv"], input=buffer.getvalue(),
                             capture_output=True, check=True).stdout.decode("utf-8", "replace")
        for line in out.splitlines()[1:]:
            f = line.split("\t")
            if len(f) == 12 and f[11].strip() and float(f[10]) >= 30:
                words.add(f[11].strip().upper())
    return words


def _legible(words: set[str]) -> set[str]:
    return {t for t in TOKENS if any(t in w or (len(w) >= 4 and w in t) for w in words)}


def _check_cleaned(ds: pydicom.Dataset, burned: np.ndarray, box: np.ndarray) -> None:
    """Nothing of the planted text legible to the independent OCR pass; its bounding box blacked out whole;
    every changed pixel is display black, and changes stay near the text."""
    after = ds.pixel_array
    assert ds.BurnedInAnnotation == "NO"
    for near in (None, box):  # the whole frame as displayed, and the text's surroundings windowed on their own
        assert not _legible(_ocr_tokens(after, ds.PhotometricInterpretation, near)), "planted text still legible"
    black = burned.max() if ds.PhotometricInterpretation == "MONOCHROME1" else burned.min()
    assert (after[box] == black).all(), "the planted text's bounding box is not blacked out whole"
    changed = after != burned
    assert (after[changed] == black).all()
    near = ndimage.binary_dilation(box, iterations=40)
    assert changed[~near].mean() < 0.02, "more than 2% of the image away from the text was blacked out"


CASES = {  # name: (seed, xy, font size, contrast, dark, smooth, legible to OCR before)
    "small font (7 px) over the lung": (9, (110, 200), 7, 1.0, False, 0.0, True),
    "small font (8 px) over the abdomen": (12, (110, 420), 8, 1.0, False, 0.0, True),
    "low contrast (4%) on a smooth radiograph": (5, (110, 250), 12, 0.04, False, 1.5, False),
    "grey text (30%) over anatomy": (5, (110, 330), 12, 0.3, False, 0.0, True),
    "dark text on the bright abdomen": (9, (110, 380), 14, 0.5, True, 0.0, True),
    "white text over the mediastinum and lungs, MONOCHROME1": (6, (60, 240), 11, 0.6, False, 0.0, True),
}


SMOOTH_FALSE_REGIONS = pytest.mark.xfail(strict=True, reason=(
    "known gap: on a very smooth (low-noise) radiograph the 4% text is found and blacked out, but anatomy near it "
    "is flagged too (more than 2% of the image); see the README"))


@pytest.mark.slow  # several OCR passes each (about 3-10 s)
@pytest.mark.parametrize("case", [pytest.param(c, marks=SMOOTH_FALSE_REGIONS) if CASES[c][5] else c for c in CASES])
def test_when_text_is_hard_to_read_then_detection_blacks_it_out_and_nothing_legible_remains(
        tmp_path: Path, case: str) -> None:
    seed, xy, size, contrast, dark, smooth, legible = CASES[case]
    ds = _study(tmp_path, seed)
    if smooth:  # a processed, low-noise radiograph
        ds.PixelData = ndimage.gaussian_filter(ds.pixel_array.astype(np.float32), smooth).astype("<u2").tobytes()
    box = _plant(ds, xy, size, contrast, dark=dark)
    burned = ds.pixel_array.copy()
    if legible:  # (4% text is beyond tesseract even windowed on its own: detection must find it regardless)
        assert _legible(_ocr_tokens(burned, ds.PhotometricInterpretation, box)), "the planted text must be legible"
    counts = PixelTextCleaner().clean(ds)
    assert counts["pixel:text-region"] >= 1
    _check_cleaned(ds, burned, box)


def test_when_tesseract_alone_reads_too_little_then_detection_still_finds_the_text(tmp_path: Path) -> None:
    """The old recognition-only loop: words it cannot read were left. Detection does not need to read them."""
    ds = _study(tmp_path, 9)
    box = _plant(ds, (110, 200), 7, 1.0)
    burned = ds.pixel_array.copy()
    cleaner = PixelTextCleaner()
    read = cleaner.read_words(burned, ds)  # the recognition pass alone, as the old cleaner ran it
    assert not all(any(b[1] <= y < b[3] and b[0] <= x < b[2] for b in read)
                   for y, x in np.argwhere(box)[:: 97]), "tesseract alone should miss part of this text"
    cleaner.clean(ds)
    _check_cleaned(ds, burned, box)


@pytest.mark.parametrize("seed", range(5, 17))
def test_when_a_radiograph_has_no_text_then_it_keeps_nearly_all_its_pixels(tmp_path: Path, seed: int) -> None:
    ds = _study(tmp_path, seed)
    del ds.BurnedInAnnotation  # unknown: the detector decides; no OCR runs
    before = ds.pixel_array.copy()
    counts = PixelTextCleaner().clean(ds)
    assert counts["pixel:frame-verified"] == 1 and ds.BurnedInAnnotation == "NO"
    assert (ds.pixel_array != before).mean() <= 0.01


def test_when_colour_text_is_burned_into_an_rgb_image_then_it_is_blacked_out(tmp_path: Path) -> None:
    ds = _study(tmp_path, 5)
    gray = ds.pixel_array.astype(np.float64)
    rgb = np.repeat((gray / gray.max() * 255)[..., None], 3, axis=2).astype(np.uint8)
    img = Image.fromarray(rgb)
    ImageDraw.Draw(img).text((120, 300), f"{NAME} {MRN}", fill=(255, 220, 0), font=_font(13))  # yellow overlay
    rgb = np.asarray(img).copy()
    ds.PhotometricInterpretation, ds.SamplesPerPixel, ds.PlanarConfiguration = "RGB", 3, 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelData = rgb.tobytes()
    box = np.zeros(rgb.shape[:2], bool)
    box[np.nonzero((rgb[..., 2] < 100) & (rgb[..., 0] > 200))] = True
    ys, xs = np.nonzero(box)
    box[ys.min():ys.max() + 1, xs.min():xs.max() + 1] = True
    PixelTextCleaner().clean(ds)
    after = ds.pixel_array
    assert (after[box] == 0).all() and not _legible(_ocr_tokens(after, "RGB"))
    changed = (after != rgb).any(-1)
    assert (after[changed] == 0).all()


def test_when_a_jpeg_multi_frame_file_carries_text_then_every_frame_is_cleaned(tmp_path: Path) -> None:
    """JPEG baseline (lossy, 8-bit) with the text in one frame of two: decoded, cleaned, written uncompressed."""
    from pydicom.encaps import encapsulate
    from pydicom.uid import ExplicitVRLittleEndian, JPEGBaseline8Bit

    ds = _study(tmp_path, 12)
    clean = (ds.pixel_array.astype(np.float64) / ds.pixel_array.max() * 255).astype(np.uint8)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PhotometricInterpretation = 8, 8, 7, "MONOCHROME2"
    ds.PixelData = clean.tobytes()
    box = _plant(ds, (110, 420), 12, 1.0)
    burned = ds.pixel_array.copy()
    jpegs = []
    for frame in (clean, burned):
        buffer = io.BytesIO()
        Image.fromarray(frame).save(buffer, "JPEG", quality=95)
        jpegs.append(buffer.getvalue())
    ds.NumberOfFrames = 2
    ds.PixelData = encapsulate(jpegs)
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    try:
        decoded = ds.pixel_array.copy()
    except Exception as exc:  # noqa: BLE001 - no JPEG decoder plugin on this machine
        pytest.skip(f"no JPEG baseline decoder ({exc.__class__.__name__})")
    counts = PixelTextCleaner().clean(ds)
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian and counts["pixel:frame-verified"] == 2
    frames = ds.pixel_array
    black = decoded.min()
    assert (frames[1][box] == black).all() and not _legible(_ocr_tokens(frames[1], "MONOCHROME2", box))
    assert ((frames != decoded) <= (frames == black)).all()  # a changed pixel is black
    assert (frames[0] != decoded[0]).mean() <= 0.01  # the frame without text keeps its pixels


def test_when_text_is_planted_then_the_detector_alone_returns_its_line(tmp_path: Path) -> None:
    """The detector is array work only (no OCR): it returns the planted line, of three glyphs or more."""
    ds = _study(tmp_path, 5)
    _plant(ds, (20, 450), 12, 1.0)
    lines = TextRegionDetector().detect(display_luminance(ds.pixel_array, ds.PhotometricInterpretation))
    assert lines and all(line.glyphs >= 3 for line in lines)


def test_when_a_file_says_yes_but_no_text_is_found_then_it_is_quarantined(tmp_path: Path) -> None:
    """BurnedInAnnotation YES is the modality saying text is there: where neither detection nor OCR finds it, its
    removal cannot be verified, so the file is held back rather than passed on as clean."""
    ds = _study(tmp_path, 7)  # a phantom radiograph without text, marked YES
    with pytest.raises(QuarantinedError, match="YES"):
        PixelTextCleaner().clean(ds)


def test_when_only_a_window_is_searched_then_it_finds_what_the_whole_frame_finds_there(tmp_path: Path) -> None:
    """The verification pass searches crops around what was blacked out, measured against the whole frame's
    noise: a line inside the crop is found as the whole-frame search finds it."""
    ds = _study(tmp_path, 5)
    _plant(ds, (20, 450), 12, 1.0)
    gray = display_luminance(ds.pixel_array, ds.PhotometricInterpretation)
    detector = TextRegionDetector()
    lines, noise = detector.scan(gray)
    assert lines
    for line in lines:
        x0, y0, x1, y1 = line.box
        window = (x0 - 40, y0 - 40, x1 + 40, y1 + 40)
        assert line in detector.detect(gray, window=window, noise=noise)


@pytest.mark.slow  # an independent OCR pass (about 2 s)
@pytest.mark.parametrize("dark", [False, True], ids=["light text on a bright border", "dark text on a dark border"])
def test_when_text_lies_on_a_flat_border_a_few_percent_from_it_then_local_contrast_finds_it(
        tmp_path: Path, dark: bool) -> None:
    """A collimation border, flat and nearly white (or nearly black), with text a few percent brighter (darker)
    than it: against the whole frame's noise (the anatomy's) the strokes are too faint to count, against the
    border's own they stand out. Found by detection, not left to OCR (which missed it: quarantine)."""
    ds = _study(tmp_path, 5)
    arr = ds.pixel_array.astype(np.float64)
    maxv = (1 << int(ds.BitsStored)) - 1
    m1 = ds.PhotometricInterpretation == "MONOCHROME1"
    shown = maxv - arr if m1 else arr
    level, ink = (0.06 * maxv, 0.0) if dark else (0.92 * maxv, float(maxv))
    shown[:24], shown[-30:], shown[:, :12] = level, level, level
    img = Image.new("L", (arr.shape[1], arr.shape[0]), 0)
    ImageDraw.Draw(img).text((6, arr.shape[0] - 24), f"{NAME} {MRN} {DOB}", fill=255, font=_font(10))
    alpha = np.asarray(img, np.float64) / 255
    shown = shown * (1 - alpha) + ink * alpha
    stored = maxv - shown if m1 else shown
    ds.PixelData = np.clip(np.rint(stored), 0, maxv).astype("<u2").tobytes()
    ys, xs = np.nonzero(alpha > 0.2)
    box = np.zeros(arr.shape, bool)
    box[ys.min():ys.max() + 1, xs.min():xs.max() + 1] = True
    burned = ds.pixel_array.copy()
    counts = PixelTextCleaner().clean(ds)
    assert counts["pixel:text-region"] >= 1 and counts["pixel:ocr-box"] == 0, "found by detection, not by OCR"
    _check_cleaned(ds, burned, box)


@pytest.mark.parametrize(("size", "above"), [(11, 24), (13, 38)])
def test_when_a_bottom_line_lies_across_a_borders_edge_then_it_is_redacted_whole(
        tmp_path: Path, size: int, above: int) -> None:
    """The benchmark's bottom line: white text on a flat, nearly white border whose edge falls inside a row of
    the flat tiles (16 pixels), its top pixels over the anatomy. The tile the edge crosses, mostly anatomy, is not
    flat, so the strokes on the border in it were measured against the anatomy's noise and lost: every glyph was
    cut in two, each part too short for a glyph, and the line stayed (at 11 pixels 394 of its 472 stroke pixels)."""
    ds = _study(tmp_path, 5)
    arr = ds.pixel_array.astype(np.float64)
    maxv = (1 << int(ds.BitsStored)) - 1
    top = arr.shape[0] - above  # not on the tiles' grid: the edge crosses a row of tiles
    assert top % 16 in (8, 10)
    shown = arr.copy()
    shown[top:] = 0.92 * maxv
    img = Image.new("L", (arr.shape[1], arr.shape[0]), 0)
    draw, text = ImageDraw.Draw(img), f"{NAME} {MRN} {DOB}"
    draw.text((6, top - 1 - draw.textbbox((0, 0), text, font=_font(size))[1]), text, fill=255, font=_font(size))
    alpha = np.asarray(img, np.float64) / 255
    shown = shown * (1 - alpha) + maxv * alpha
    ds.PixelData = np.clip(np.rint(shown), 0, maxv).astype("<u2").tobytes()
    strokes = alpha >= 0.5
    assert strokes[:top].any() and strokes[top:].any(), "the text lies across the border's edge"
    PixelTextCleaner().clean(ds)
    after = ds.pixel_array
    left = int((after[strokes] != after.min()).sum())
    assert left == 0, f"{left} of {int(strokes.sum())} stroke pixels of the bottom line left"


def test_when_a_small_fonts_letters_fuse_into_two_words_then_they_still_make_a_line() -> None:
    """A name in an 8-pixel font ("DUNMORE, INGRID"): its letters touch, and the line is two components, each
    several glyph heights wide. Each counts as the letters it is wide (a line needs two components or more), so
    the line is grouped (the detector keeps such a line only where it keeps to one font: heights, baseline and top
    line); two lumps of anatomy side by side do not."""
    words = np.array([[9, 9, 51, 15], [56, 9, 84, 15]])  # the benchmark's S0012-00157, as the detector boxed it
    assert text_regions._group_lines(words, 3) == [((9, 9, 84, 15, 6, 2), (0.0, 0.0, 0.0))]
    assert text_regions._group_lines(words[:1], 3) == []
    assert text_regions._group_lines(np.array([[9, 9, 17, 15], [20, 9, 28, 15]]), 3) == [], "two letters: no line"
    lumps = np.array([[126, 70, 150, 86], [160, 78, 196, 88]])  # a text-free phantom's (S0012-00048)
    assert text_regions._group_lines(lumps, 3)[0][1][0] > 0.1, "heights differ: no font"


# The detector's array work, each piece against the plain scipy/numpy it stands for (same pixels, same numbers).

@pytest.mark.parametrize("size", [11, 6, 3])
@pytest.mark.parametrize("shape", [(64, 80), (37, 5), (9, 40), (11, 11), (1, 30)])
def test_when_a_running_filter_is_taken_then_it_is_scipys_with_edges_repeated(shape: tuple[int, int], size: int) -> None:
    """Doubling windows, the rows as one long row, edges from the doubled windows: scipy's minimum and maximum
    filters (mode "nearest"), also where a side is no longer than the window, with and without kept arrays."""
    img = np.random.default_rng(size).normal(size=shape).astype(np.float32)
    for held in (False, True):
        with text_regions._scratch_held() if held else contextlib.nullcontext():
            low = text_regions._running(img, size, np.minimum, "t").copy()
            high = text_regions._running(img, size, np.maximum, "t").copy()
        assert np.array_equal(low, ndimage.minimum_filter(img, size, mode="nearest"))
        assert np.array_equal(high, ndimage.maximum_filter(img, size, mode="nearest"))


@pytest.mark.parametrize("density", [0.002, 0.02, 0.5])
def test_when_a_mask_is_labelled_by_its_runs_then_components_and_numbers_are_scipys(density: float) -> None:
    """Sparse masks of a full frame are labelled by their runs, small or busy ones by scipy: the same components,
    numbered alike (raster order of their first pixel), whichever way; blobs, specks and a snake that winds
    down the columns (the worst case for joining runs) included."""
    rng = np.random.default_rng(3)
    blobs = ndimage.binary_dilation(rng.random((512, 512)) < density / 5) | (rng.random((512, 512)) < density)
    snake = np.zeros((512, 512), bool)
    snake[:, ::2] = True
    snake[-1, 1::4] = snake[0, 3::4] = True
    for mask in (blobs, blobs[:100, :200], snake):
        labels, n = ndimage.label(mask)
        idx, lab, count = text_regions._label(mask)
        assert count == n and np.array_equal(idx, np.flatnonzero(mask)) and np.array_equal(lab, labels.ravel()[idx])


def test_when_a_frame_is_halved_for_the_second_level_then_it_is_scipys_gaussian() -> None:
    for shape in [(512, 480), (37, 53), (5, 3), (2, 9)]:
        img = np.random.default_rng(1).normal(100, 20, size=shape).astype(np.float32)
        expected = ndimage.gaussian_filter(img, 1.0)[::2, ::2]
        got = text_regions._smoothed_half(img)
        assert got.shape == expected.shape and np.allclose(got, expected, rtol=1e-5, atol=1e-4)


def test_when_blacked_out_pixels_are_grown_then_the_table_is_that_of_scipys_dilation() -> None:
    ignore = np.random.default_rng(2).random((90, 70)) < 0.01
    table = text_regions._summed(ignore)
    grown = ndimage.binary_dilation(ignore, iterations=2)
    assert table is not None and np.array_equal(table, np.pad(grown, ((1, 0), (1, 0))).cumsum(0).cumsum(1))


def test_when_flat_tiles_are_found_then_their_medians_are_numpys() -> None:
    img = np.random.default_rng(4).normal(size=(100, 90)).astype(np.float32)
    img[:40] = 0.5  # a flat border
    flat = text_regions._flat(img, 1.0, None)
    assert flat is not None and flat[0][:32].all() and not flat[0][48:96].any()
    tiles = np.pad(img[::2, ::2], ((0, 6), (0, 3)), mode="edge").reshape(7, 8, 6, 8).transpose(0, 2, 1, 3)
    medians = np.median(tiles.reshape(7, 6, 64), axis=2).astype(np.float32)
    assert np.array_equal(flat[1], np.kron(medians, np.ones((16, 16), np.float32))[:100, :90])


def test_when_frames_are_scanned_in_turn_then_the_kept_work_arrays_change_no_result(tmp_path: Path) -> None:
    """The work arrays one scan leaves are the next one's: a frame scanned after another (or while another
    thread holds the arrays, with new ones) gives what it gave alone, and its noise model is not written over."""
    a, b = _study(tmp_path, 5), _study(tmp_path, 9)
    _plant(a, (20, 450), 12, 1.0)
    _plant(b, (110, 200), 8, 1.0)
    gray_a, gray_b = (display_luminance(ds.pixel_array, ds.PhotometricInterpretation) for ds in (a, b))
    detector = TextRegionDetector()
    lines, noise = detector.scan(gray_a)
    assert noise is not None and lines
    kept = [np.array(m) for level in noise.flat for maps in level if maps is not None for m in maps]
    detector.scan(gray_b)
    assert detector.scan(gray_a) == (lines, noise)
    assert np.array_equal(np.concatenate([m.ravel() for m in kept]),
                          np.concatenate([np.ravel(m) for level in noise.flat for maps in level
                                          if maps is not None for m in maps]))
    with text_regions._SCRATCH_LOCK:  # as if another thread were scanning
        assert detector.scan(gray_a)[0] == lines


def test_when_lone_pixels_are_dropped_before_labelling_then_only_one_pixel_components_go() -> None:
    mask = np.random.default_rng(5).random((300, 200)) < 0.08
    labels, n = ndimage.label(mask)
    sizes = np.bincount(labels.ravel())
    pruned = mask.copy()
    text_regions._drop_lone(pruned)
    assert np.array_equal(pruned, mask & (sizes[labels] > 1))


@pytest.mark.parametrize("n", [1, 2, 1023, 1024, 29241, 29240])
def test_when_order_statistics_are_taken_by_ranks_then_they_are_numpys(n: int) -> None:
    """Medians and percentiles by a histogram of the values' bits: numpy's to the last bit, on clustered values (a
    quarter of them 0, as in a top-hat), on ties, on negative values (a MONOCHROME1 frame) and on integers."""
    rng = np.random.default_rng(n)
    clustered = np.where(rng.random(n) < 0.25, 0, rng.integers(0, 40, n) * 0.01 + rng.random(n) ** 6)
    for values in (clustered, np.full(n, 0.5), rng.integers(0, 3, n) * 0.5):
        sample = values.astype(np.float32)
        assert text_regions._median(sample.copy(), ranked=True) == float(np.median(sample))
    for values in (clustered - 0.2, -rng.integers(0, 4096, n), rng.normal(0, 1000, n)):
        frame = values.astype(np.float32).reshape(1, n).repeat(2, axis=0).repeat(2, axis=1)  # every other pixel
        lo, hi = np.percentile(values.astype(np.float32), [1.0, 99.0])
        if hi <= lo:
            lo, hi = float(frame.min()), float(frame.max())
        assert text_regions._centre_and_scale(frame) == (float(np.median(values.astype(np.float32))), float(hi - lo))
