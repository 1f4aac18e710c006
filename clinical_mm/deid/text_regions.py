"""Where burned-in text is, found from the shape of the pixels rather than by reading them.

Text is found by detection, whatever an OCR engine can read: a frame is turned to display luminance (bright is
white), strokes narrower than 11 pixels are picked out by a morphological top-hat (bright on dark and dark on
bright), binarised in units of the frame's own noise (a pixel counts above 2.5 robust deviations, a component
when its mean is above 4; on a flat tile of the frame, such as a blank collimation border (or a tile its edge
crosses), and on its level ground, in units of a quarter of that noise, so light text a few percent above a
nearly white border, or dark text on a dark one, is found by its contrast with the border rather than with the
anatomy's noise), and the connected components shaped like glyphs (height within a font range, not a solid bar,
not a thin line) are grouped into horizontal lines: similar heights, centres on one line, gaps under 1.2 glyph
heights, and sharing a baseline or a top line (print does; lumps of anatomy share neither; glyphs cut by the
frame's edge share only the edge). A line of three glyphs or more (a component k glyph heights wide counts as k:
a small font's letters fuse into words; a line of two such words must keep to one font on heights, baseline and
top line), at least 2.5 glyph heights long, is a proposed text region; each carries how closely its
glyphs keep to one font (:attr:`TextLine.spread`, :attr:`TextLine.printed`) for the caller to weigh. Small fonts,
low contrast and text over anatomy are found because nothing here has to be legible to a reader; anatomy rarely
makes lines of glyph-sized blobs.

Two levels: the frame (reduced by block means to at most ~1100 pixels a side, so the cost is bounded) for small
fonts, and a smoothed half-size copy for larger text in noise. Boxes come back in the frame's own pixels.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

__all__ = ["PRIMARY", "SENSITIVE", "DetectorSettings", "NoiseModel", "TextLine", "TextRegionDetector", "display_luminance"]

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)
_FlatMaps = tuple[np.ndarray, np.ndarray]  # where a level lies in flat tiles, and each pixel's tile median
_LevelFlat = tuple[_FlatMaps | None, ...]  # per polarity (bright, dark)
_CROSS = ndimage.generate_binary_structure(2, 1)  # 4-connectivity, scipy.ndimage.label's default
_SCRATCH: dict[tuple[str, str], np.ndarray] = {}  # the process's reusable work arrays (see _scratch)
_SCRATCH_LOCK = threading.Lock()  # held by the one thread whose scan uses them
_SCRATCH_HELD = threading.local()  # .held: this thread holds it


def display_luminance(frame: np.ndarray, photometric: str) -> np.ndarray:
    """``frame`` as float32 luminance in display orientation: MONOCHROME1 inverted, colour to luma."""
    if frame.ndim == 3:
        return np.asarray(frame, np.float32) @ _LUMA
    gray = np.asarray(frame, np.float32)
    return -gray if photometric == "MONOCHROME1" else gray


@dataclass(frozen=True)
class TextLine:
    """A detected line of text: its box in frame pixels (x0, y0, x1, y1, end exclusive), glyph height, glyphs."""

    box: tuple[int, int, int, int]
    height: int
    glyphs: int
    polarity: int = 1  #: 1: bright strokes on a darker ground; -1: dark strokes on a brighter ground
    spread: tuple[float, float, float] = (1.0, 1.0, 1.0)  #: glyph heights, baselines, tops: median deviation
    # from the line's median, in glyph heights (printed text: small; anatomy: large)

    @property
    def printed(self) -> bool:
        """Strong evidence of printed text on its own: six glyphs or more of one height (median deviation at most a
        tenth of it) on one baseline or under one top line (at most a twentieth). No line on the real anatomy
        seen in development (radiographs, CT, MR, ultrasound, NM of pydicom's test data) came this close to a font."""
        heights, bottoms, tops = self.spread
        return self.glyphs >= 6 and heights <= 0.1 and min(bottoms, tops) <= 0.05

    def padded(self, shape: tuple[int, ...], margin: float) -> tuple[int, int, int, int]:
        """The box grown by ``margin`` glyph heights (at least 2 pixels) on every side, clipped to ``shape``; where
        that leaves less than the margin to the frame's edge, up to the edge (text cut off by the edge, whose
        last glyph alone is no line)."""
        pad = max(2, int(np.ceil(margin * self.height)))
        x0, y0, x1, y1 = self.box[0] - pad, self.box[1] - pad, self.box[2] + pad, self.box[3] + pad
        h, w, reach = shape[0], shape[1], pad
        return (0 if x0 < reach else x0, 0 if y0 < reach else y0, w if x1 > w - reach else x1,
                h if y1 > h - reach else y1)


@dataclass(frozen=True)
class DetectorSettings:
    """Operating point of the detector (detection-scale pixels and multiples of the frame's noise).

    ``low``: a pixel's top-hat, in robust standard deviations above the median, from which it counts; ``high``:
    the least mean of a component; ``floor``: the least contrast counted, as a fraction of the frame's 1st-99th
    percentile range;
    ``min_glyphs``: glyphs a line needs; ``align``: the most a line's glyphs may stray from both one baseline and
    one top line (median absolute deviation of bottoms and of tops, in glyph heights: print shares one or the other,
    lumps of anatomy share neither); ``min_height``/``max_height``: glyph heights looked for (and at most a
    tenth of the frame's height: text taller than that is no annotation); ``tophat``: the widest stroke;
    ``local``: the noise counted in flat tiles (a blank border), as a fraction of the frame's."""

    low: float = 2.5
    high: float = 4.0
    floor: float = 0.02
    min_glyphs: int = 3
    min_height: int = 5
    max_height: int = 64
    tophat: int = 11
    align: float = 0.12
    local: float = 0.25


PRIMARY = DetectorSettings()
#: the verification pass: weaker strokes, two-glyph lines and looser alignment count, so what the first pass left is
#: seen
SENSITIVE = DetectorSettings(low=2.0, high=4.0, floor=0.015, min_glyphs=2, align=0.25)


@dataclass(frozen=True)
class NoiseModel:
    """How a frame was normalised, kept so that a later pass over a crop of it measures contrast and noise as the
    pass over the whole frame did: the reduction ``f`` and, per pyramid level, the frame's median and contrast
    range and, per polarity (bright, dark), the median and robust deviation of its top-hat, and its flat tiles
    (:func:`_flat`, on the frame's own grid, before anything was blacked out)."""

    f: int
    levels: tuple[tuple[float, float, tuple[tuple[float, float], ...]], ...]
    flat: tuple[_LevelFlat, ...] = field(default=(), compare=False)


class TextRegionDetector:
    """Finds lines of glyph-like components in a frame (see the module docstring)."""

    def __init__(self, settings: DetectorSettings = PRIMARY, max_side: int = 1100) -> None:
        self.settings = settings
        self.max_side = max_side

    def detect(self, gray: np.ndarray, ignore: np.ndarray | None = None, window: tuple[int, int, int, int] | None = None,
               noise: NoiseModel | None = None) -> list[TextLine]:
        """Text lines in ``gray`` (display luminance, 2-D); glyphs touching ``ignore`` (a boolean mask of already
        redacted pixels) do not count, and a line lying mostly inside it is not reported. With ``window`` (x0, y0,
        x1, y1) only that part of the frame is searched, measured against ``noise`` (the whole frame's, from
        :meth:`scan`) where given."""
        return self.scan(gray, ignore, window, noise)[0]

    def scan(self, gray: np.ndarray, ignore: np.ndarray | None = None, window: tuple[int, int, int, int] | None = None,
             noise: NoiseModel | None = None) -> tuple[list[TextLine], NoiseModel | None]:
        """As :meth:`detect`, and the frame's :class:`NoiseModel` (None for a frame too small to search)."""
        if gray.ndim != 2 or min(gray.shape) < 8:
            return [], noise
        with _scratch_held():
            return self._scan(gray, ignore, window, noise)

    def _scan(self, gray: np.ndarray, ignore: np.ndarray | None, window: tuple[int, int, int, int] | None,
              noise: NoiseModel | None) -> tuple[list[TextLine], NoiseModel | None]:
        """:meth:`scan` of a frame large enough to search."""
        f = noise.f if noise is not None else max(1, int(np.ceil(max(gray.shape) / self.max_side)))
        x0, y0, x1, y1 = _aligned(window, gray.shape, 2 * f)
        if min(y1 - y0, x1 - x0) < 8:
            return [], noise
        base = _reduce(gray[y0:y1, x0:x1], f)
        pyramid = [(f, base)]
        if min(base.shape) >= 32:  # the noise-robust level: smoothed, half the pixels
            pyramid.append((2 * f, _smoothed_half(base)))
        near = ignore[y0:y1, x0:x1] if ignore is not None else None
        found: dict[float, list[np.ndarray]] = {1.0: [], -1.0: []}
        levels, flats = [], []
        for i, (scale, small) in enumerate(pyramid):
            known = noise.levels[i] if noise is not None and i < len(noise.levels) else None
            if noise is not None and i < len(noise.flat):  # the frame's flat tiles, where this crop lies
                given: tuple[_LevelFlat] | None = (tuple(_cropped(m, y0 // scale, x0 // scale, small.shape)
                                                         for m in noise.flat[i]),)
            else:
                given = None
            hidden = near[::scale, ::scale][:small.shape[0], :small.shape[1]] if near is not None else None
            boxes, stats, flat = self._level(small, scale // f, gray.shape[0] // f, known, given, hidden)
            levels.append(stats)
            flats.append(flat)
            for polarity, b in boxes.items():
                found[polarity].append(b * scale)
        lines: list[TextLine] = []
        table, tabled = None, False  # the blacked-out pixels' table, made where glyphs enough for a line need it
        for polarity, glyphs in found.items():
            every = np.concatenate(glyphs) if glyphs else np.zeros((0, 4), np.int64)
            if len(every) < min(2, self.settings.min_glyphs):  # no line can come of them (see _group_lines)
                continue
            if not tabled:
                table, tabled = _summed(near), True
            both = _apart(every, table) + np.array([x0, y0, x0, y0], np.int64)
            for (bx0, by0, bx1, by1, h, n), spread in _group_lines(both, self.settings.min_glyphs):
                box = (bx0, by0, min(gray.shape[1], bx1), min(gray.shape[0], by1))
                spread = (spread[0], 1.0 if box[3] >= gray.shape[0] else spread[1], 1.0 if by0 <= 0 else spread[2])
                # glyphs cut by the frame's edge share the edge, not a baseline or a top line; a line of fewer boxes
                # than min_glyphs (words of fused letters) keeps to one font: heights within a tenth, baseline
                # and top line both within a twentieth (two lumps of anatomy seldom do)
                if min(spread[1:]) > self.settings.align or (n < self.settings.min_glyphs and (
                        spread[0] > 0.1 or max(spread[1:]) > 0.05)) or (
                        ignore is not None and ignore[box[1]:box[3], box[0]:box[2]].mean() > 0.8):
                    continue
                lines.append(TextLine(box, h, n, int(polarity), spread))
        return lines, noise if noise is not None else NoiseModel(f, tuple(levels), tuple(flats))

    def _level(self, small: np.ndarray, level: int, frame_rows: int,
               known: tuple[float, float, tuple[tuple[float, float], ...]] | None,
               given: tuple[_LevelFlat] | None = None, hidden: np.ndarray | None = None
               ) -> tuple[dict[float, np.ndarray], tuple[float, float, tuple[tuple[float, float], ...]], _LevelFlat]:
        """Glyph boxes of bright (1) and dark (-1) strokes in ``small``, a frame (or crop) reduced ``level`` times
        below the detection scale, normalised by ``known`` (median, contrast range, top-hat noise) or by its own,
        its flat tiles as ``given`` (the frame's) or its own (``hidden``, blacked-out, pixels do not make their
        neighbourhood look flat); and the stats and flat tiles used."""
        s = self.settings
        centre, scale = (known[0], known[1]) if known else _centre_and_scale(small)
        if scale <= 0:
            return {}, (centre, scale, ()), ()
        img = np.subtract(small, np.float32(centre), out=_scratch("img", small.shape, np.float32))
        np.multiply(img, np.float32(1.0 / scale), out=img)
        np.clip(img, -3.0, 3.0, out=img)
        opened = _running(_running(img, s.tophat, np.minimum, "a"), s.tophat, np.maximum, "opened")
        closed = _running(_running(img, s.tophat, np.maximum, "a"), s.tophat, np.minimum, "closed")
        tophats = ((1.0, np.subtract(img, opened, out=_scratch("bright", img.shape, np.float32)), opened),
                   (-1.0, np.subtract(closed, img, out=_scratch("dark", img.shape, np.float32)), closed))
        stats = [known[2][k] if known and k < len(known[2]) else _robust(tophat) for k, (_, tophat, _) in
                 enumerate(tophats)]
        if given is not None:
            flats = given[0]
        else:  # the image's flat tiles, for both polarities
            both = _flat(img, min(mad for _, mad in stats), hidden)
            flats = (both, both)
        out = {}
        for k, ((polarity, tophat, ground), (med, mad)) in enumerate(zip(tophats, stats, strict=True)):
            # quiet: where the strokes' ground (the image without them) lies in a flat tile and on its level (an
            # edge of anatomy reaching into the tile is not)
            flat = flats[k] if k < len(flats) else None
            quiet = None if flat is None else _quiet(ground, flat, s.low * s.local * mad)
            out[polarity] = self._glyphs(tophat, med, mad, quiet, level, frame_rows)
        return out, (centre, scale, tuple(stats)), flats

    def _glyphs(self, tophat: np.ndarray, med: float, mad: float, quiet: np.ndarray | None, level: int,
                frame_rows: int) -> np.ndarray:
        """Boxes (x0, y0, x1, y1) of the glyph-shaped components of ``tophat`` (strokes of one polarity) at
        ``level`` (glyph heights scale with it), measured against the frame's noise ``med`` and ``mad`` or, in
        ``quiet`` pixels (flat tiles, see :func:`_flat`), against ``local`` times it; a glyph is at most a tenth
        of ``frame_rows`` high."""
        s = self.settings
        # z above ``low``, above the floor
        above = np.greater(tophat, max(med + s.low * mad, s.floor), out=_scratch("above", tophat.shape, bool))
        if quiet is not None:  # top-hats are >= 0: measured from 0 there
            more = np.greater(tophat, max(s.low * s.local * mad, s.floor), out=_scratch("more", tophat.shape, bool))
            above |= np.logical_and(more, quiet, out=more)
        if above.size >= 1 << 17:  # a pixel without a 4-neighbour is a component of one pixel (no glyph): dropped,
            _drop_lone(above)  # most of the noise's runs go before labelling; the rest keep their order
        idx, lab, n = _label(above)
        if n == 0:
            return np.zeros((0, 4), np.int64)
        value = tophat.ravel()[idx]
        z = (value - med) * (1.0 / mad)  # in units of the noise
        if quiet is not None:
            z = np.where(quiet.ravel()[idx], value * (1.0 / (s.local * mad)), z)
        area = np.bincount(lab, minlength=n + 1)[1:]
        mean = np.bincount(lab, weights=z, minlength=n + 1)[1:] / np.maximum(area, 1)
        label, box = _boxes(lab, idx, tophat.shape[1], (mean > s.high) & (area >= 4))
        area = area[label - 1]
        w, h = box[:, 2] - box[:, 0], box[:, 3] - box[:, 1]
        fill = area / (w * h)
        narrow = w * 3 <= h  # l, I, 1: a solid narrow box is still a glyph
        tallest = min(s.max_height if level == 1 else s.max_height // 3, frame_rows // 10)
        keep = ((h >= s.min_height) & (h * level <= tallest) & (w <= 8 * h) & ((fill <= 0.85) | narrow)
                & (fill >= 0.1))
        kept: np.ndarray = box[keep]
        return kept


def _robust(tophat: np.ndarray) -> tuple[float, float]:
    """The median and robust standard deviation (1.4826 median absolute deviations) of ``tophat``'s every third
    pixel."""
    sample = np.array(tophat[::3, ::3]).ravel()  # a copy, reordered in place
    med = _median(sample, ranked=True)  # top-hats are >= 0, and so are the deviations
    return med, max(_median(np.abs(sample - np.float32(med), out=sample), ranked=True) * 1.4826, 1e-6)


def _median(a: np.ndarray, ranked: bool = False) -> float:
    """:func:`numpy.median` of a 1-D float32 array that may be reordered in place (no copy), as numpy computes it
    (the mean of the two middle values of an even count, in float32); with ``ranked``, of values >= +0.0, by
    :func:`_ranked` (partitioning top-hats, a quarter of them 0 and the rest in clusters, was slow)."""
    n = len(a)
    k = n // 2
    if ranked:  # top-hats and their deviations: >= +0.0
        return float(np.mean(_ranked(a, np.array([k - 1 + n % 2, k]), signed=False)))
    if n % 2:
        a.partition((k, k + 1) if n > 1 else k)  # two kth are quicker than one (numpy 2: ~4x)
        return float(a[k])
    a.partition((k - 1, k))
    return float(np.mean(a[k - 1:k + 1]))


def _ranked(a: np.ndarray, ranks: np.ndarray, signed: bool = True) -> np.ndarray:
    """The values at sorted positions ``ranks`` of ``a`` (1-D float32 without NaN; without ``signed``, without a
    sign bit: every value >= +0.0), as a float32 array: those :func:`numpy.partition` puts there (a zero's sign
    aside). A float's bit pattern, its sign bit flipped (all bits, for a negative one), is in the floats' order;
    a histogram of the upper 16 bits of those keys finds the bins the ranks fall into, and only the values in
    those bins are partitioned. Short arrays are partitioned whole."""
    if len(a) < 1024:
        a.partition(sorted({int(r) for r in ranks} | {min(int(r) + 1, len(a) - 1) for r in ranks}))
        picked: np.ndarray = a[ranks]
        return picked
    bits: np.ndarray = a.view(np.uint32)
    if signed:
        bits = bits ^ ((bits >> 31) * np.uint32(0x7FFFFFFF) | np.uint32(0x80000000))
    high = bits >> 16
    cum = np.bincount(high).cumsum()
    bins = np.searchsorted(cum, ranks, "right")
    out = np.empty(len(ranks), np.float32)
    for b in set(bins.tolist()):
        before = int(cum[b - 1]) if b else 0
        part = a[high == b]  # a copy: the values of ranks before .. cum[b] - 1
        at = np.flatnonzero(bins == b)
        local = ranks[at] - before
        part.partition(sorted({int(r) for r in local} | {min(int(r) + 1, len(part) - 1) for r in local}))  # (two
        out[at] = part[local]  # kth or more: quicker than one)
    return out


def _flat(img: np.ndarray, mad: float, hidden: np.ndarray | None, block: int = 16, step: int = 2
          ) -> _FlatMaps | None:
    """Where ``img`` lies in flat ``block`` x ``block`` tiles (a quarter or more of every ``step``-th pixel within
    a tenth of the top-hat noise ``mad`` of the tile's median: a blank border, a noise-free background; anatomy's
    noise leaves far fewer that close; and the tiles a blank border's edge crosses, see :func:`_bordering`), and
    each pixel's tile median (theirs: the border's); None where no tile is flat. Text a few
    percent above such a border is measured against it, not against the whole frame's noise; strokes and an edge
    of anatomy in the same tile leave it flat (the caller keeps to the pixels on the border's level).
    ``hidden`` pixels (black boxes) count as outliers, so a tile mostly blacked out is not flat."""
    sample = img[::step, ::step]
    if hidden is not None and hidden.any():
        outlier = np.where(np.indices(sample.shape).sum(0) % 2 == 0, np.float32(1e6), np.float32(-1e6))
        sample = np.where(hidden[::step, ::step], outlier, sample)
    q = block // step
    rows, cols = -(-sample.shape[0] // q), -(-sample.shape[1] // q)
    grid = np.pad(sample, ((0, rows * q - sample.shape[0]), (0, cols * q - sample.shape[1])), mode="edge")
    tiles = grid.reshape(rows, q, cols, q).transpose(0, 2, 1, 3).reshape(rows, cols, q * q)  # a copy
    k = q * q // 2  # the median of each tile (q * q is even), as numpy.median takes it (sorting many short rows
    tiles.sort(axis=2)  # is quicker than partitioning them)
    centre = np.mean(tiles[..., k - 1:k + 1], axis=2)
    close = np.count_nonzero(np.abs(tiles - centre[..., None]) < 0.1 * mad, axis=2)
    flat = close >= q * q // 4
    if not flat.any():
        return None
    flat, centre = _bordering(flat, close >= q * q * 3 // 4, centre, mad)
    h, w = img.shape
    return _tiled(flat, block)[:h, :w], _tiled(centre.astype(np.float32), block)[:h, :w]


def _bordering(flat: np.ndarray, blank: np.ndarray, centre: np.ndarray, mad: float) -> tuple[np.ndarray, np.ndarray]:
    """The ``flat`` tiles (a grid of them, with their medians ``centre``) and, as flat too, each tile beside
    (4-neighbour of) a ``blank`` one (three quarters of it on its median: a blank border, not clipped noise) whose
    own median is more than ``mad`` from that one's (mostly something else), with that one's median (of two or
    more, the nearest to its own). A border's edge seldom falls on the tiles' grid: the tile it crosses, mostly
    anatomy, is not flat, and text on the border in it, measured against the anatomy's noise, was lost (a line
    lying across that edge was cut in two, each part too short for a glyph). A tile as dark or bright as the
    border beside it but busy (text, noise) is not taken: its strokes would merge at the border's noise."""
    near, level = flat.copy(), centre.copy()
    gap = np.full(flat.shape, np.inf, np.float32)
    for axis, step in ((0, 1), (0, -1), (1, 1), (1, -1)):
        beside, median = np.roll(blank, step, axis), np.roll(centre, step, axis)  # the neighbour's, before or after
        edge = 0 if step > 0 else beside.shape[axis] - 1  # rolled round from the far side: no neighbour
        _cut(beside, axis, edge, edge + 1)[...] = False
        away = np.abs(median - centre)
        take = beside & ~flat & (away > mad) & (away < gap)
        level[take], gap[take] = median[take], away[take]
        near |= take
    return near, level


def _cropped(flat: _FlatMaps | None, top: int, left: int, shape: tuple[int, ...]) -> _FlatMaps | None:
    """The part of a frame's ``flat`` maps from (``top``, ``left``) of ``shape`` (edge values repeated past the
    frame's maps)."""
    if flat is None:
        return None
    out = []
    for a in flat:
        part = a[top:top + shape[0], left:left + shape[1]]
        if part.shape != shape[:2]:
            part = np.pad(part, ((0, shape[0] - part.shape[0]), (0, shape[1] - part.shape[1])), mode="edge")
        out.append(part)
    return out[0], out[1]


def _tiled(a: np.ndarray, block: int) -> np.ndarray:
    """Each value of ``a`` repeated over a ``block`` x ``block`` tile."""
    rows, cols = a.shape
    tiled: np.ndarray = np.broadcast_to(a[:, None, :, None], (rows, block, cols, block)).reshape(rows * block,
                                                                                                   cols * block)
    return tiled


def _aligned(window: tuple[int, int, int, int] | None, shape: tuple[int, ...], step: int) -> tuple[int, int, int, int]:
    """``window`` clipped to the frame, its origin on a multiple of ``step`` (so the pyramid's grid is the frame's)."""
    if window is None:
        return 0, 0, shape[1], shape[0]
    x0, y0 = max(0, window[0]) // step * step, max(0, window[1]) // step * step
    return x0, y0, min(shape[1], window[2]), min(shape[0], window[3])


def _quiet(ground: np.ndarray, flat: _FlatMaps, tolerance: float) -> np.ndarray:
    """Where ``ground`` lies in a flat tile (``flat``: its mask and each pixel's tile median) within ``tolerance``
    of the tile's median (a scratch array: valid until the next call)."""
    gap = np.subtract(ground, flat[1], out=_scratch("gap", ground.shape, np.float32))
    quiet: np.ndarray = np.less_equal(np.abs(gap, out=gap), tolerance, out=_scratch("quiet", ground.shape, bool))
    np.logical_and(quiet, flat[0], out=quiet)
    return quiet


@contextmanager
def _scratch_held() -> Iterator[None]:
    """Within it, :func:`_scratch` hands out the process's kept work arrays, where no other thread is using them
    (a thread that finds them in use gets new arrays, as without them)."""
    held = _SCRATCH_LOCK.acquire(blocking=False)
    _SCRATCH_HELD.held = held
    try:
        yield
    finally:
        _SCRATCH_HELD.held = False
        if held:
            _SCRATCH_LOCK.release()


def _scratch(slot: str, shape: tuple[int, ...], dtype: type | np.dtype) -> np.ndarray:
    """A work array of ``shape`` for ``slot``: within :func:`_scratch_held`, one kept between calls and reused
    whatever its shape (as large as the largest level seen: at most 1100 x 1100 pixels with the default
    ``max_side``, 13 slots, under 65 MB a process), so that the top-hats' large temporaries are not allocated,
    faulted in and handed back for every frame (a quarter of the detector's time went to that); valid until the
    next request for the same slot. Elsewhere a new array."""
    n, dt = math.prod(shape), np.dtype(dtype)
    if not getattr(_SCRATCH_HELD, "held", False):
        return np.empty(shape, dt)
    key = (slot, dt.str)
    flat = _SCRATCH.get(key)
    if flat is None or flat.size < n:
        flat = _SCRATCH[key] = np.empty(max(n, 1), dt)
    return flat[:n].reshape(shape)


def _running(img: np.ndarray, size: int, op: np.ufunc, slot: str) -> np.ndarray:
    """A ``size`` x ``size`` minimum or maximum filter (``op``) of ``img``, edges repeated (each window clipped to
    the image), into the scratch array ``slot`` (see :func:`_scratch`): the erosion or dilation of a top-hat.
    Separable: down the columns, then along the rows."""
    rows = _running_axis(img, size, op, 0, _scratch("rows", img.shape, img.dtype))
    return _running_axis(rows, size, op, 1, _scratch(slot, img.shape, img.dtype))


def _running_axis(a: np.ndarray, size: int, op: np.ufunc, axis: int, out: np.ndarray) -> np.ndarray:
    """``out`` = the running minimum or maximum (``op``) of ``size`` values of ``a`` along ``axis`` (both
    C-contiguous; windows centred, clipped to the array), by doubling windows (4 array operations for 11 values
    instead of 11) in scratch arrays; the first and last ``size // 2``, whose windows the array's edge clips, from
    the same doubled windows. Along the rows (axis 1) the doubling runs over the whole image as one row after
    another (long contiguous operations instead of a short one a row); what that mixes across the end of a row
    is only where the edges are written after."""
    n, r = a.shape[axis], size // 2
    if n <= size:  # every window reaches an edge: reduce each directly
        for i in range(n):
            _cut(out, axis, i, i + 1)[...] = op.reduce(_cut(a, axis, max(0, i - r), i - r + size), axis=axis,
                                                         keepdims=True)
        return out
    # down the columns: whole rows at a time; along the rows: the (contiguous) image as one long row
    flat, target = (a, out) if axis == 0 else (a.reshape(-1), out.reshape(-1))
    total = len(flat)
    buffers = (_scratch("run0", flat.shape, a.dtype), _scratch("run1", flat.shape, a.dtype))
    m, w, k = flat, 1, 0
    wide = narrow = a  # m and the one before it (windows of w // 2), shaped as ``a``
    while 2 * w <= size:  # m[i] = op(flat[i:i + 2w]), for i < total - 2w + 1
        length = total - 2 * w + 1
        m = op(m[:length], m[w:length + w], out=buffers[k][:length])
        narrow, wide = wide, buffers[k].reshape(a.shape)
        w, k = 2 * w, 1 - k
    inner = total - size + 1  # windows wholly inside: out[r + i] = op(flat[i:i + size])
    if w < size:
        op(m[:inner], m[size - w:size - w + inner], out=target[r:r + inner])
    else:
        target[r:r + inner] = m[:inner]
    # the edges: out[i] = op(a[:i - r + size]) for i < r, op(a[i - r:]) for i >= n - (size - 1 - r); a prefix
    # or suffix of length L as two windows of v = w or w // 2 (v <= L <= 2v) from its two ends
    split = max(0, min(r, w - size + r))  # heads shorter than w
    for lo, hi, x, v in ((0, split, narrow, w // 2), (split, r, wide, w)):
        if hi > lo:
            op(_cut(x, axis, 0, 1), _cut(x, axis, lo + size - r - v, hi + size - r - v), out=_cut(out, axis, lo, hi))
    split = min(n, n + r - w + 1)  # tails of w or more
    for lo, hi, x, v in ((n - (size - 1 - r), split, wide, w), (split, n, narrow, w // 2)):
        if hi > lo:
            op(_cut(x, axis, lo - r, hi - r), _cut(x, axis, n - v, n - v + 1), out=_cut(out, axis, lo, hi))
    return out


def _cut(a: np.ndarray, axis: int, start: int, stop: int) -> np.ndarray:
    part: np.ndarray = a[start:stop] if axis == 0 else a[:, start:stop]
    return part


def _drop_lone(mask: np.ndarray) -> None:
    """Clear the pixels of ``mask`` (2-D, in place) that have no 4-neighbour in it."""
    near = _scratch("near", mask.shape, bool)
    near[0] = False
    near[1:] = mask[:-1]
    near[:-1] |= mask[1:]
    near[:, 1:] |= mask[:, :-1]
    near[:, :-1] |= mask[:, 1:]
    mask &= near


def _label(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """The 4-connected components of ``mask`` (2-D) as :func:`scipy.ndimage.label` finds and numbers them (in the
    raster order of each one's first pixel): the flat indices of its pixels (raster order), each one's component
    (1-based), and their number. A sparse mask is labelled by its runs (a row's consecutive pixels), joined where
    they overlap a run of the row above: the work grows with the runs, not the pixels (a small mask, whose
    fixed cost that would not repay, or one of many runs goes to scipy)."""
    idx = np.flatnonzero(mask)
    width = mask.shape[1]
    if len(idx) == 0:
        return idx, np.zeros(0, np.int64), 0
    cut = np.flatnonzero((np.diff(idx) != 1) | (idx[1:] % width == 0)) + 1
    if mask.size < 1 << 17 or len(cut) >= mask.size // 64:
        labels, n = ndimage.label(mask, _CROSS)
        return idx, labels.ravel()[idx].astype(np.int64), int(n)
    starts, ends = np.concatenate(([0], cut)), np.concatenate((cut, [len(idx)])) - 1
    first, last = idx[starts], idx[ends]  # both increasing: runs are disjoint, in raster order
    lo = np.searchsorted(last, first - width, "left")  # the runs of the row above that reach under this one
    hi = np.searchsorted(first, last - width, "right")  # form the range lo:hi
    counts = np.maximum(hi - lo, 0)
    i = np.repeat(np.arange(len(starts)), counts)
    j = np.repeat(lo, counts) + (np.arange(len(i)) - np.repeat(np.cumsum(counts) - counts, counts))
    n, comp = connected_components(coo_matrix((np.ones(len(i), np.int8), (i, j)), shape=(len(starts),) * 2),
                                   directed=False)
    _, head = np.unique(comp, return_index=True)  # each component's first run (raster order)
    rank = np.empty(n, np.int64)
    rank[np.argsort(head)] = np.arange(1, n + 1)
    return idx, np.repeat(rank[comp], ends - starts + 1), int(n)


def _boxes(lab: np.ndarray, idx: np.ndarray, width: int, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The labels (1-based) of the ``wanted`` components and their boxes (x0, y0, x1, y1), from the labels ``lab``
    of the labelled pixels at flat indices ``idx`` (raster order) of an image ``width`` pixels wide."""
    keep = np.concatenate(([False], wanted))[lab]
    lab, idx = lab[keep], idx[keep]
    if len(idx) == 0:
        return np.zeros(0, np.int64), np.zeros((0, 4), np.int64)
    ys, xs = np.divmod(idx, width)
    order = np.argsort(lab, kind="stable")  # raster order within a label: its first pixel is its top row
    lab, ys, xs = lab[order], ys[order], xs[order]
    starts = np.flatnonzero(np.r_[True, lab[1:] != lab[:-1]])
    ends = np.r_[starts[1:], len(lab)] - 1
    box = np.stack([np.minimum.reduceat(xs, starts), ys[starts], np.maximum.reduceat(xs, starts) + 1, ys[ends] + 1], 1)
    return lab[starts].astype(np.int64), box.astype(np.int64)


def _summed(ignore: np.ndarray | None) -> np.ndarray | None:
    """The summed-area table of ``ignore`` (blacked-out pixels) grown by two pixels, for :func:`_apart`; None
    where nothing is ignored."""
    if ignore is None or not ignore.any():
        return None
    grown = np.pad(ignore, ((1, 0), (1, 0)))
    for _ in range(2):  # binary_dilation(ignore, iterations=2): twice by the 4-neighbour cross
        was = grown[1:, 1:].copy()
        inner = grown[1:, 1:]
        inner[1:] |= was[:-1]
        inner[:-1] |= was[1:]
        inner[:, 1:] |= was[:, :-1]
        inner[:, :-1] |= was[:, 1:]
    table: np.ndarray = grown.cumsum(0, dtype=np.int32).cumsum(1, dtype=np.int32)
    return table


def _apart(boxes: np.ndarray, table: np.ndarray | None) -> np.ndarray:
    """``boxes`` that neither touch nor lie within the ignored pixels whose :func:`_summed` table is ``table``
    (blacked-out areas: their edges and the slivers between them are no text)."""
    if table is None or len(boxes) == 0:
        return boxes
    h, w = table.shape[0] - 1, table.shape[1] - 1
    x0, y0 = np.clip(boxes[:, 0], 0, w), np.clip(boxes[:, 1], 0, h)
    x1, y1 = np.clip(boxes[:, 2], 0, w), np.clip(boxes[:, 3], 0, h)
    inside = table[y1, x1] - table[y0, x1] - table[y1, x0] + table[y0, x0]
    apart: np.ndarray = boxes[inside == 0]
    return apart


def _reduce(gray: np.ndarray, f: int) -> np.ndarray:
    """Block means of ``f`` x ``f`` pixels (the frame cropped to a multiple of ``f``)."""
    g = np.asarray(gray, np.float32)
    if not np.isfinite(g).all():
        g = np.nan_to_num(g, nan=0.0, posinf=0.0, neginf=0.0)
    if f == 1:
        return g
    h, w = (g.shape[0] // f) * f, (g.shape[1] // f) * f
    reduced: np.ndarray = g[:h, :w].reshape(h // f, f, w // f, f).mean(axis=(1, 3))
    return reduced


def _centre_and_scale(img: np.ndarray) -> tuple[float, float]:
    """The median of every other pixel of ``img`` (each axis), and their 1st-99th percentile range (the image's
    full range where that is flat): what contrast is relative to."""
    sample = np.array(img[::2, ::2]).ravel()  # a copy, reordered in place
    n = len(sample)
    virtual = (n - 1) * np.true_divide([1.0, 99.0], 100)  # numpy.percentile's linear method, replayed: the
    below = np.where(virtual >= n - 1, -1.0, np.floor(virtual))  # same order statistics, the same arithmetic
    above = np.where(virtual >= n - 1, -1.0, below + 1)
    ranks = np.concatenate(([n // 2 - 1 + n % 2, n // 2], below, above)).astype(np.intp) % n
    values = _ranked(sample, ranks)
    centre = float(np.mean(values[:2]))  # numpy.median: the middle one, or the mean of the two, in float32
    first, second = values[2:4], values[4:6]
    gamma = virtual - below
    step = second - first
    lo, hi = np.add(first, step * gamma)
    lo, hi = np.where(gamma >= 0.5, second - step * (1 - gamma), (lo, hi))
    if hi <= lo:
        lo, hi = float(img.min()), float(img.max())
    return centre, float(hi - lo)


def _group_lines(boxes: np.ndarray, min_glyphs: int
                 ) -> list[tuple[tuple[int, int, int, int, int, int], tuple[float, float, float]]]:
    """Glyph boxes linked into horizontal lines: (x0, y0, x1, y1, median height, glyphs) of each line of at least
    ``min_glyphs`` glyphs that is at least 2.5 times as wide as it is high, and its :func:`_spread`. A box as wide
    as k of its heights counts as k glyphs (letters of a small font fused into one component: two such words side
    by side, not overlapping, are a line), though a line needs two boxes or more; ``glyphs`` is the number of
    boxes."""
    n = len(boxes)
    if n < min(2, min_glyphs):
        return []
    order = np.argsort(boxes[:, 0], kind="stable")
    b = boxes[order]
    h = b[:, 3] - b[:, 1]
    cy = (b[:, 1] + b[:, 3]) / 2
    reach = b[:, 2] + np.ceil(1.2 * h).astype(np.int64)
    hi = np.searchsorted(b[:, 0], reach, side="right")
    counts = np.maximum(hi - np.arange(n) - 1, 0)
    i = np.repeat(np.arange(n), counts)
    if len(i) == 0:
        return []
    j = i + 1 + (np.arange(len(i)) - np.repeat(np.cumsum(counts) - counts, counts))
    hmax, hmin = np.maximum(h[i], h[j]), np.minimum(h[i], h[j])
    gap = b[j, 0] - b[i, 2]
    overlap = np.minimum(b[i, 3], b[j, 3]) - np.maximum(b[i, 1], b[j, 1])
    ok = ((hmax <= 2.0 * hmin) & (np.abs(cy[i] - cy[j]) <= 0.35 * hmax) & (overlap >= 0.5 * hmin)
          & (gap <= 1.2 * hmax))
    root = _components(n, i[ok], j[ok])
    fused = np.maximum((b[:, 2] - b[:, 0]) // np.maximum(h, 1), 1)  # letters in each box, at least one
    out = []
    for r in np.flatnonzero((np.bincount(root, minlength=n) >= min(2, min_glyphs))
                            & (np.bincount(root, fused, minlength=n) >= min_glyphs)):
        members = np.flatnonzero(root == r)
        m = b[members]  # in order of x0
        if len(m) < min_glyphs and (m[1:, 0] < m[:-1, 2]).any():  # words of fused letters lie side by side (one
            continue  # blob boxed at both pyramid levels overlaps itself)
        x0, y0, x1, y1 = int(m[:, 0].min()), int(m[:, 1].min()), int(m[:, 2].max()), int(m[:, 3].max())
        hm = int(_mid(h[members]))
        if x1 - x0 >= 2.5 * hm:
            out.append(((x0, y0, x1, y1, hm, len(members)), _spread(m)))
    return out


def _spread(m: np.ndarray) -> tuple[float, float, float]:
    """How far a line's glyph boxes ``m`` stray from one font: the median absolute deviation of their heights,
    bottoms (the baseline) and tops (the cap or x-height), each in units of the median height. Printed text
    keeps all three small (descenders and ascenders are a minority); blobs of anatomy do not."""
    h = m[:, 3] - m[:, 1]
    hm = max(_mid(h), 1.0)

    def dev(v: np.ndarray) -> float:
        return round(_mid(np.abs(v - _mid(v))) / hm, 3)

    return dev(h), dev(m[:, 3]), dev(m[:, 1])


def _mid(v: np.ndarray) -> float:
    """The median of a short 1-D array (as :func:`numpy.median`, without its overhead)."""
    s = np.sort(v)
    n = len(s)
    return float(s[(n - 1) // 2] + s[n // 2]) / 2


_GAUSS = np.exp(-0.5 * np.arange(5.0) ** 2)
_GAUSS = (_GAUSS / (_GAUSS[0] + 2 * _GAUSS[1:].sum())).astype(np.float32)  # sigma 1, radius 4: scipy's kernel


def _smoothed_half(img: np.ndarray) -> np.ndarray:
    """``gaussian_filter(img, 1.0)[::2, ::2]`` (edges reflected, the same values to rounding): each axis filtered
    only where it is kept, down the columns at every other row, then along those rows at every other column."""
    return _gauss_half(_gauss_half(img, 0), 1)


def _gauss_half(img: np.ndarray, axis: int) -> np.ndarray:
    """``gaussian_filter1d(img, 1.0, axis)`` at every other position along ``axis``: nine weighted slices."""
    n = img.shape[axis]
    if n < 4:
        p = np.pad(img, ((4, 4), (0, 0)) if axis == 0 else ((0, 0), (4, 4)), mode="symmetric")  # scipy's reflect
    else:  # the same, without numpy.pad's overhead
        shape = (n + 8, img.shape[1]) if axis == 0 else (img.shape[0], n + 8)
        p = np.empty(shape, np.float32)
        _cut(p, axis, 4, n + 4)[...] = img
        _cut(p, axis, 0, 4)[...] = np.flip(_cut(img, axis, 0, 4), axis)
        _cut(p, axis, n + 4, n + 8)[...] = np.flip(_cut(img, axis, n - 4, n), axis)
    out: np.ndarray = p[4:4 + n:2] if axis == 0 else p[:, 4:4 + n:2]
    out = out * _GAUSS[0]
    pair = np.empty_like(out)
    for k in range(1, 5):  # the two taps k away, added, then weighted
        if axis == 0:
            np.add(p[4 - k:4 - k + n:2], p[4 + k:4 + k + n:2], out=pair)
        else:
            np.add(p[:, 4 - k:4 - k + n:2], p[:, 4 + k:4 + k + n:2], out=pair)
        pair *= _GAUSS[k]
        out += pair
    return out


def _components(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Connected components of the graph of ``n`` nodes and edges (i, j): each node's smallest member."""
    root = np.arange(n)
    while True:
        low = np.minimum(root[i], root[j])
        new = root.copy()
        np.minimum.at(new, i, low)
        np.minimum.at(new, j, low)
        new = new[new]  # pointer jumping
        if np.array_equal(new, root):
            return root
        root = new
