"""Procedural chest radiograph phantom.

The phantom is an attenuation map drawn analytically in normalised patient coordinates, so that
patient rotation, positioning and habitus are a change of coordinates rather than a resampling.
Image convention: PA or AP frontal view, the patient's right on the image left.

Anatomy: body outline with shoulders, two lung fields with vascular markings that fade towards the
periphery, hemidiaphragm domes (the right higher), heart, mediastinum, trachea, spine, posterior ribs,
clavicles, breast shadows in female patients. Findings are added to the same map with a location,
laterality, size and severity (:class:`FindingSpec`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "FAINT_SEVERITY", "Acquisition", "ChestPhantom", "FindingSpec", "IncidentalSpec", "PatientAnatomy",
    "cardiothoracic_ratio", "enlarged_heart_width", "region_boxes",
]

_FOV_MM = 380.0  # field of view of the detector, for converting lesion sizes
#: severity below which a finding fades out as a whole (see :class:`FindingSpec`); the standard synthesis
#: draws severities from this value up, so its images do not depend on the fading
FAINT_SEVERITY = 0.35


#: a finding's region is where it changes the attenuation map by at least this share of its largest change
_REGION_SHARE = 0.25


def _fade(f: FindingSpec) -> float:
    """1.0 from :data:`FAINT_SEVERITY` up; below it the share of the finding's contrast that is drawn."""
    return 1.0 if f.severity >= FAINT_SEVERITY else max(0.0, f.severity) / FAINT_SEVERITY


def cardiothoracic_ratio(severity: float) -> float:
    """The cardiothoracic ratio an enlarged heart of ``severity`` is drawn with: 0.55 to 0.75, whatever the
    patient's habitus and the view. The grade a report gives (mild below severity 0.4, moderate below 0.75,
    marked: CTR below 0.63, below 0.70, up to 0.75) is then what the film shows, as a reader grades it; a normal
    heart is drawn at 0.32 to 0.56 (its own scale, and magnified on AP films)."""
    return 0.55 + 0.2 * float(np.clip(severity, 0.0, 1.0))


def enlarged_heart_width(severity: float, body_width: float) -> float:
    """The heart's width parameter that draws :func:`cardiothoracic_ratio` (the heart spans 2.5 times it, the
    lungs' outer edges about 1.51 ``body_width``)."""
    return cardiothoracic_ratio(severity) * 1.513 * body_width / 2.5


@dataclass(frozen=True)
class FindingSpec:
    """One finding to draw.

    ``side`` is the patient's side (``right``, ``left`` or ``bilateral``); ``zone`` the lung zone
    (``upper``, ``middle``, ``lower``); ``size`` a word (``small``/``moderate``/``large``) and
    ``size_mm`` a diameter for nodules and masses; ``severity`` in [0, 1] scales the opacity. From
    :data:`FAINT_SEVERITY` up, severity grades a finding that is always plainly visible; below it the finding
    fades out as a whole (its added contrast, and for cardiomegaly the enlargement, times
    ``severity / FAINT_SEVERITY``), down to nothing at 0: the edge of visibility, for graded test sets.
    """

    name: str
    side: str = "bilateral"
    zone: str = "lower"
    size: str = "moderate"
    size_mm: float = 0.0
    severity: float = 0.6


@dataclass(frozen=True)
class IncidentalSpec:
    """A support device or a finding that reports mention but that is never a triage flag (see
    :data:`~clinical_mm.core.findings.INCIDENTAL_FINDINGS`).

    ``side``: the patient's side where one applies (a central line's access, a pacemaker's pocket, a fractured
    rib), else ``""``; ``detail``: ``internal jugular``/``subclavian`` (central line), ``single``/``dual``
    (pacemaker leads), ``acute``/``healed`` (rib fracture), ``stomach``/``esophagus`` (nasogastric tube tip),
    ``SVC``/``right atrium`` (central line tip); ``number``: the fractured rib, the count of sternotomy wires;
    ``measure_mm``: the endotracheal tube tip's height above the carina. The drawing takes no random draws.
    """

    name: str
    side: str = ""
    detail: str = ""
    tip: str = ""
    number: int = 0
    measure_mm: float = 0.0


@dataclass(frozen=True)
class PatientAnatomy:
    """Body habitus and positioning (``hyperinflation`` in [0, 1]: taller lungs, flatter and lower domes)."""

    sex: str = "F"
    age: int = 55
    body_width: float = 0.44
    lung_height: float = 0.30
    heart_scale: float = 1.0
    rotation_deg: float = 0.0
    shift: tuple[float, float] = (0.0, 0.0)
    hyperinflation: float = 0.0


@dataclass(frozen=True)
class Acquisition:
    """Detector and exposure settings that vary with site and manufacturer."""

    rows: int = 512
    columns: int = 512
    view: str = "PA"
    exposure: float = 1.0
    gamma: float = 1.0
    noise: float = 0.02
    bits_stored: int = 12
    monochrome1: bool = False
    collimation: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)  # top, bottom, left, right
    extra: dict[str, float] = field(default_factory=dict)


def region_boxes(mask: np.ndarray, *, split: bool = True, min_pixels: int = 12) -> list[list[int]]:
    """Bounding boxes ``[x0, y0, x1, y1]`` (columns then rows, end exclusive) of a footprint mask: one per half
    of the image (the patient's right on the image left) with ``split``, else one; halves of fewer than
    ``min_pixels`` pixels are left out."""
    mid = mask.shape[1] // 2
    parts = [(mask[:, :mid], 0), (mask[:, mid:], mid)] if split else [(mask, 0)]
    boxes = []
    for part, offset in parts:
        if int(part.sum()) < min_pixels:
            continue
        rows, cols = np.nonzero(part)
        boxes.append([int(cols.min()) + offset, int(rows.min()), int(cols.max()) + 1 + offset, int(rows.max()) + 1])
    return boxes


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma_px: float) -> np.ndarray:
    """Gaussian-filtered white noise with unit standard deviation (filtered in the Fourier domain)."""
    white = rng.standard_normal(shape).astype(np.float32)
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.rfftfreq(shape[1])[None, :]
    kernel = np.exp(-2.0 * (np.pi * sigma_px) ** 2 * (fx**2 + fy**2)).astype(np.float32)
    out = np.fft.irfft2(np.fft.rfft2(white) * kernel, s=shape).astype(np.float32)
    std = float(out.std()) or 1.0
    return np.asarray(out / std, dtype=np.float32)


def _soft(x: np.ndarray, width: float) -> np.ndarray:
    """A soft step: 1 where ``x < 0``, 0 where ``x > 0``, blended over ``width``."""
    return np.asarray(1.0 / (1.0 + np.exp(np.clip(x / max(width, 1e-6), -30, 30))), dtype=np.float32)


def _polyline(u: np.ndarray, v: np.ndarray, points: list[tuple[float, float]], width: float) -> np.ndarray:
    """A line of Gaussian profile (half width ``width``) through ``points`` (u, v), as a (rows, columns) map."""
    d2 = np.full(u.shape, np.inf, dtype=np.float32)
    for (u0, v0), (u1, v1) in zip(points[:-1], points[1:], strict=True):
        du, dv = u1 - u0, v1 - v0
        t = np.clip(((u - u0) * du + (v - v0) * dv) / max(du * du + dv * dv, 1e-12), 0.0, 1.0)
        d2 = np.minimum(d2, (u - u0 - t * du) ** 2 + (v - v0 - t * dv) ** 2)
    return np.asarray(np.exp(-d2 / width**2), dtype=np.float32)


def _rib_curve(k: int, du: float | np.ndarray) -> float | np.ndarray:
    """The v of posterior rib ``k`` (0 the highest drawn) at distance ``du`` from the midline."""
    return 0.17 + 0.052 * k - 0.03 + 1.1 * du**1.5 * (1.0 - 0.04 * k) - 0.9 * du**3


class ChestPhantom:
    """Renders frontal chest radiographs (and a simple lateral view) as stored pixel arrays.

    Parameters
    ----------
    rng
        The random generator; the same generator state gives the same image.
    graded_heart
        Draw an enlarged heart at its grade's cardiothoracic ratio (:func:`cardiothoracic_ratio`), so that the
        grade is readable from the film; False: the shipped model's drawing, which widens the patient's own heart
        (0.9 to 1.1, and 1.12 on AP films) by 1.32 + 0.28 severity, so that the grades overlap.
    """

    def __init__(self, rng: np.random.Generator, graded_heart: bool = False) -> None:
        self.rng = rng
        self.graded_heart = graded_heart
        #: the last frontal render's findings and their footprints (see :meth:`render`)
        self.regions: dict[str, np.ndarray] = {}
        self._dome_height = 0.07

    # ------------------------------------------------------------------ geometry
    def _grid(self, acq: Acquisition, anatomy: PatientAnatomy) -> tuple[np.ndarray, np.ndarray]:
        v, u = np.meshgrid(
            (np.arange(acq.rows, dtype=np.float32) + 0.5) / acq.rows,
            (np.arange(acq.columns, dtype=np.float32) + 0.5) / acq.columns,
            indexing="ij",
        )
        theta = np.deg2rad(anatomy.rotation_deg)
        cu, cv = u - 0.5 - anatomy.shift[0], v - 0.5 - anatomy.shift[1]
        ur = np.cos(theta) * cu - np.sin(theta) * cv + 0.5
        vr = np.sin(theta) * cu + np.cos(theta) * cv + 0.5
        # Detectors are not square in patient space: keep mm scale isotropic.
        aspect = acq.rows / acq.columns
        vr = 0.5 + (vr - 0.5) * aspect
        return ur.astype(np.float32), vr.astype(np.float32)

    @staticmethod
    def _lung_centres(anatomy: PatientAnatomy) -> dict[str, tuple[float, float, float, float]]:
        """Per patient side: centre u, centre v, half width, half height of the lung field."""
        half_w = anatomy.body_width * 0.34
        h = anatomy.hyperinflation
        if h > 0:  # taller lungs, reaching lower
            height = anatomy.lung_height * (1.0 + 0.16 * h)
            return {
                "right": (0.5 - anatomy.body_width * 0.42, 0.47 + 0.035 * h, half_w * 1.03, height),
                "left": (0.5 + anatomy.body_width * 0.43, 0.48 + 0.035 * h, half_w * 0.95 * 1.03, height * 0.98),
            }
        return {
            "right": (0.5 - anatomy.body_width * 0.42, 0.47, half_w, anatomy.lung_height),
            "left": (0.5 + anatomy.body_width * 0.43, 0.48, half_w * 0.95, anatomy.lung_height * 0.98),
        }

    def _dome(self, u: np.ndarray | np.floating[Any], side: tuple[float, float, float, float], lift: float) -> np.ndarray:
        cu, cv, hw, hh = side
        base = cv + hh * 0.78 - lift
        return np.asarray(base - self._dome_height * (1.0 - np.clip(((u - cu) / (hw * 1.2)) ** 2, 0, 1)),
                          dtype=np.float32)

    # ------------------------------------------------------------------ rendering
    def render(
        self, anatomy: PatientAnatomy, acq: Acquisition, findings: list[FindingSpec],
        incidentals: tuple[IncidentalSpec, ...] = (),
    ) -> np.ndarray:
        """Return the stored pixel array (uint16) of a frontal view with ``findings`` and ``incidentals`` drawn.

        Afterwards :attr:`regions` maps each drawn finding to its footprint, a boolean (rows, columns) mask:
        where it changed the attenuation map by at least a quarter of its largest change (for cardiomegaly,
        the enlarged heart). The masks take no random draws: the image is the same as without them. Incidental
        findings take none either (their places are in their specs): without them the image is unchanged.
        """
        rng = self.rng
        self._dome_height = 0.07 * (1.0 - 0.7 * anatomy.hyperinflation)
        u, v = self._grid(acq, anatomy)
        shape = u.shape
        names = {f.name for f in findings}
        ap = acq.view == "AP"

        att = np.zeros(shape, dtype=np.float32)
        # Body outline: torso ellipse plus shoulders and neck.
        bw = anatomy.body_width
        torso = ((u - 0.5) / bw) ** 2 + ((v - 0.62) / 0.55) ** 2
        att += 0.55 * _soft(torso - 1.0, 0.02)
        shoulders = ((u - 0.5) / (bw * 1.08)) ** 2 + ((v - 0.25) / 0.16) ** 2
        att += 0.45 * _soft(shoulders - 1.0, 0.03) * (1 - _soft(torso - 1.0, 0.02))
        neck = np.abs(u - 0.5) / 0.08
        att += 0.5 * _soft(neck - 1.0, 0.05) * _soft(v - 0.12, 0.02)
        if anatomy.sex == "F":
            for s in (-1, 1):
                breast = ((u - 0.5 - s * bw * 0.45) / (bw * 0.35)) ** 2 + ((v - 0.74) / 0.12) ** 2
                att += 0.10 * _soft(breast - 1.0, 0.08)

        # Lungs, with hemidiaphragms.
        centres = self._lung_centres(anatomy)
        lung_masks: dict[str, np.ndarray] = {}
        self._lung_fields: dict[str, np.ndarray] = {}
        for side, (cu, cv, hw, hh) in centres.items():
            lift = 0.0
            for f in findings:
                if f.name == "atelectasis" and f.side in (side, "bilateral"):
                    lift = max(lift, (0.025 + 0.03 * f.severity) * _fade(f))
            shape_ = (np.abs((u - cu) / hw) ** 2.2 + np.abs((v - cv) / hh) ** 2.0)
            # apex is narrower: taper the top
            taper = np.clip((v - (cv - hh)) / (hh * 0.6), 0.2, 1.0)
            lat = np.abs(u - cu) / (hw * (0.55 + 0.45 * taper))
            inside = _soft(np.maximum(shape_, lat**2.2) - 1.0, 0.04)
            below = _soft(v - self._dome(u, centres[side], lift), 0.006)
            lung_masks[side] = inside * below
            self._lung_fields[side] = inside
        lungs = np.clip(lung_masks["right"] + lung_masks["left"], 0, 1)

        # Vascular markings: bright ridges of band-passed noise, stronger near the hila.
        ridge = np.abs(_smooth_noise(rng, shape, 2.0 * acq.rows / 512))
        markings = np.exp(-((ridge / 0.3) ** 2))
        hila = np.zeros(shape, dtype=np.float32)
        for side, (cu, cv, _hw, _hh) in centres.items():
            hx = cu + (0.07 if side == "right" else -0.07)
            hila += np.exp(-(((u - hx) / 0.12) ** 2 + ((v - (cv + 0.02)) / 0.16) ** 2))
        vessels = markings * (0.25 + 0.75 * np.clip(hila, 0, 1))
        edema = next((f for f in findings if f.name == "pulmonary_edema"), None)
        vessel_gain = 0.11 + (0.08 * edema.severity * _fade(edema) if edema else 0.0)
        att -= 0.42 * lungs
        att += vessel_gain * vessels * lungs

        # Mediastinum, trachea, spine, heart.
        med = np.abs(u - 0.5) / (0.06 * (1.15 if ap else 1.0))
        att += 0.32 * _soft(med - 1.0, 0.2) * _soft(v - 0.75, 0.02) * (1 - _soft(v - 0.15, 0.02))
        trachea = np.abs(u - 0.5 - 0.004) / 0.013
        att -= 0.14 * _soft(trachea - 1.0, 0.2) * _soft(v - 0.36, 0.02) * (1 - _soft(v - 0.1, 0.02))
        spine = np.abs(u - 0.5) / 0.035
        att += 0.16 * _soft(spine - 1.0, 0.15)
        heart_w = 0.105 * anatomy.heart_scale * (1.12 if ap else 1.0)
        if "cardiomegaly" in names:
            f = next(f for f in findings if f.name == "cardiomegaly")
            fade = _fade(f)
            if self.graded_heart:
                heart_w += (enlarged_heart_width(f.severity, bw) - heart_w) * fade
            else:  # the shipped model's drawing: the grade's widening overlaps the patient's scale and AP magnification
                heart_w *= 1.32 + 0.28 * f.severity if fade >= 1.0 else 1.0 + (0.32 + 0.28 * f.severity) * fade
        heart = ((u - 0.5 - heart_w * 0.42) / (heart_w * 1.25)) ** 2 + ((v - 0.6) / 0.13) ** 2
        heart_mask = _soft(heart - 1.0, 0.08)
        att += (0.42 * lungs + 0.06 * (1 - lungs)) * heart_mask

        # Ribs (posterior arcs) and clavicles.
        ribs = np.zeros(shape, dtype=np.float32)
        for sgn in (-1.0, 1.0):  # patient's right (image left), then left
            du = np.clip(sgn * (u - 0.5), 0, None)
            for k in range(10):
                y0 = 0.17 + 0.052 * k
                curve = y0 - 0.03 + 1.1 * du**1.5 * (1.0 - 0.04 * k) - 0.9 * du**3
                d = np.abs(v - curve) / (0.0085 + 0.0005 * k)
                ribs += np.exp(-(d**2)) * (du > 0.03) * (du < bw * 0.98)
        att += 0.09 * ribs
        for sgn in (-1.0, 1.0):
            t = np.clip((sgn * (u - 0.5) - 0.04) / 0.22, 0, 1)
            line_v = 0.19 - 0.06 * t + (0.04 if ap else 0.0) * t
            d = np.abs(v - line_v) / 0.011
            att += 0.22 * np.exp(-(d**2)) * (t > 0) * (t < 1)

        # Findings, each one's footprint kept (what it changed of the attenuation map) for grounding.
        self.regions = {}
        if "cardiomegaly" in names:
            self.regions["cardiomegaly"] = heart_mask > 0.5
        for f in findings:
            before = att.copy()
            att = self._draw_finding(att, f, u, v, centres, lung_masks, vessels)
            change = np.abs(att - before)
            peak = float(change.max())
            if peak > 0.0:
                self.regions[f.name] = change >= _REGION_SHARE * peak
        for inc in incidentals:
            before = att.copy()
            att = self._draw_incidental(att, inc, u, v, bw)
            change = np.abs(att - before)
            peak = float(change.max())
            if peak > 0.0:
                self.regions[inc.name] = change >= _REGION_SHARE * peak

        # Acquisition: exposure, gamma, noise, collimation, bit depth, photometric.
        img = np.clip(att, 0, None) * acq.exposure
        img = img / (1.0 + img)  # film-like compression
        img = np.power(np.clip(img, 0, 1), acq.gamma)
        img += acq.noise * rng.standard_normal(shape).astype(np.float32)
        img += 0.3 * acq.noise * _smooth_noise(rng, shape, 12.0)
        top, bottom, left, right = acq.collimation
        r0, r1 = int(top * acq.rows), acq.rows - int(bottom * acq.rows)
        c0, c1 = int(left * acq.columns), acq.columns - int(right * acq.columns)
        collimated = np.ones(shape, dtype=bool)
        collimated[r0:r1, c0:c1] = False
        img[collimated] = 0.92
        img = np.clip(img, 0.0, 1.0)
        maxv = (1 << acq.bits_stored) - 1
        stored = np.round(img * maxv)
        if acq.monochrome1:
            stored = maxv - stored
        return np.asarray(stored, dtype=np.uint16)

    def _draw_finding(
        self,
        att: np.ndarray,
        f: FindingSpec,
        u: np.ndarray,
        v: np.ndarray,
        centres: dict[str, tuple[float, float, float, float]],
        lung_masks: dict[str, np.ndarray],
        vessels: np.ndarray,
    ) -> np.ndarray:
        fade = _fade(f)
        if fade < 1.0:  # a faint finding: draw it whole (the same random draws), then keep a share of it
            before = att.copy()
            drawn = self._draw_finding(att, FindingSpec(f.name, f.side, f.zone, f.size, f.size_mm, FAINT_SEVERITY),
                                       u, v, centres, lung_masks, vessels)
            return np.asarray(before + np.float32(fade) * (drawn - before), dtype=np.float32)
        rng = self.rng
        sides = ["right", "left"] if f.side == "bilateral" else [f.side]
        zone_v = {"upper": -0.55, "middle": 0.0, "lower": 0.45}
        for side in sides:
            cu, cv, hw, hh = centres[side]
            lung = lung_masks[side]
            lateral = -1.0 if side == "right" else 1.0
            if f.name == "pleural_effusion":
                height = {"small": 0.06, "moderate": 0.14, "large": 0.24}[f.size]
                if f.side == "bilateral" and side == "left":
                    height *= 0.75
                dome = self._dome(u, centres[side], 0.0)
                # meniscus: the fluid climbs the lateral chest wall
                meniscus = dome - height - 0.09 * np.clip(lateral * (u - cu) / hw, -1, 1.3) ** 2
                fluid = _soft(meniscus - v, 0.012)
                region = np.clip(self._lung_fields[side] * 1.2, 0, 1) * _soft(v - dome - 0.02, 0.008)
                att += (0.36 + 0.08 * f.severity) * fluid * region
            elif f.name == "pneumothorax":
                depth = {"small": 0.045, "moderate": 0.075, "large": 0.12}[f.size] * hw / 0.15
                # distance inwards from the lateral and apical lung edge, approximated on the ellipse
                rad = np.sqrt(((u - cu) / hw) ** 2 + ((v - (cv + 0.05)) / (hh * 1.05)) ** 2)
                angle_ok = ((v < cv + hh * 0.3) & (lateral * (u - cu) > -hw * 0.35)).astype(np.float32)
                band = _soft((1.0 - rad) - depth / hw, 0.01) * lung * angle_ok
                att -= 0.9 * 0.07 * vessels * band  # no lung markings beyond the pleural line
                att -= 0.07 * band
                line = np.exp(-((((1.0 - rad) - depth / hw) / 0.012) ** 2)) * lung * angle_ok
                att += 0.10 * line
            elif f.name == "consolidation":
                cz = cv + zone_v[f.zone] * hh
                bu = cu + lateral * rng.uniform(-0.2, 0.3) * hw
                blob = np.zeros_like(u)
                for _ in range(5):
                    ou, ov = rng.normal(0, 0.035, size=2)
                    r = rng.uniform(0.04, 0.07) * (0.8 + 0.6 * f.severity)
                    blob = np.maximum(blob, np.exp(-(((u - bu - ou) ** 2 + (v - cz - ov) ** 2) / r**2) ** 2))
                texture = 0.75 + 0.25 * np.clip(_smooth_noise(rng, u.shape, 3.0), -2, 2) / 2
                bronchogram = 1.0 - 0.35 * np.exp(-((_smooth_noise(rng, u.shape, 1.5) / 0.2) ** 2))
                att += (0.22 + 0.16 * f.severity) * blob * texture * bronchogram * lung
            elif f.name == "nodule_mass":
                cz = cv + zone_v[f.zone] * hh * 0.8
                nu = cu + lateral * rng.uniform(-0.35, 0.45) * hw
                r = f.size_mm / _FOV_MM / 2.0
                lobulation = 1.0 + 0.05 * np.sin(5 * np.arctan2(v - cz, u - nu) + rng.uniform(0, 6))
                d = np.sqrt((u - nu) ** 2 + (v - cz) ** 2) / (r * lobulation)
                att += (0.26 + 0.12 * f.severity) * _soft(d - 1.0, 0.12) * np.clip(lung * 1.5, 0, 1)
            elif f.name == "atelectasis":
                plate_v = self._dome(np.float32(cu), centres[side], 0.03) - rng.uniform(0.05, 0.1)
                ang = rng.uniform(-0.25, 0.25)
                du, dv = u - cu, v - float(plate_v)
                along = np.cos(ang) * du + np.sin(ang) * dv
                across = -np.sin(ang) * du + np.cos(ang) * dv
                plate = np.exp(-((across / (0.010 + 0.008 * f.severity)) ** 2)) * _soft(np.abs(along) - hw * 0.8, 0.02)
                att += (0.24 + 0.1 * f.severity) * plate * lung
                # volume loss: crowding haze at the base
                att += 0.06 * f.severity * np.exp(-(dv / 0.05) ** 2) * lung
            elif f.name == "pulmonary_edema" and side == sides[0]:
                haze = np.zeros_like(u)
                for s2, (cu2, cv2, hw2, _hh2) in centres.items():
                    hx = cu2 + (0.06 if s2 == "right" else -0.06)
                    haze += np.exp(-(((u - hx) / (hw2 * 0.9)) ** 2 + ((v - cv2) / 0.2) ** 2))
                lungs = np.clip(lung_masks["right"] + lung_masks["left"], 0, 1)
                att += (0.16 + 0.16 * f.severity) * np.clip(haze, 0, 1) * lungs
                # Kerley B lines: short horizontal lines at the lateral bases
                for s2, (cu2, cv2, hw2, hh2) in centres.items():
                    lat2 = -1.0 if s2 == "right" else 1.0
                    for _ in range(6):
                        ly = cv2 + hh2 * rng.uniform(0.35, 0.7)
                        lx0 = cu2 + lat2 * hw2 * rng.uniform(0.65, 0.85)
                        seg = np.exp(-(((v - ly) / 0.004) ** 2)) * _soft(np.abs(u - lx0) - 0.025, 0.004)
                        att += 0.08 * f.severity * seg * lung_masks[s2]
        return att

    @staticmethod
    def _draw_incidental(att: np.ndarray, inc: IncidentalSpec, u: np.ndarray, v: np.ndarray, bw: float) -> np.ndarray:
        """Draw a device or an incidental finding; hyperinflation is drawn with the anatomy (nothing here)."""
        sgn = -1.0 if inc.side == "right" else 1.0  # the patient's right is the image left
        if inc.name == "endotracheal_tube":
            tip = 0.36 - inc.measure_mm / _FOV_MM  # the carina at v 0.36
            wall = _polyline(u, v, [(0.493, 0.0), (0.493, tip)], 0.005) + _polyline(u, v, [(0.515, 0.0), (0.515, tip)], 0.005)
            att += 0.35 * np.clip(wall, 0, 1)
            # the radiopaque stripe along the tube, which is what shows it on a film (over the trachea's air)
            att += 0.7 * _polyline(u, v, [(0.509, 0.0), (0.509, tip)], 0.007)
        elif inc.name == "nasogastric_tube":
            tip_v = 0.80 if inc.tip == "stomach" else 0.62
            path = [(0.492, 0.0), (0.488, 0.35), (0.505, 0.62)]
            if inc.tip == "stomach":
                path += [(0.56, 0.74), (0.60, tip_v)]
            att += 0.35 * _polyline(u, v, path, 0.006)
        elif inc.name == "central_line":
            tip_v = 0.33 if inc.tip == "SVC" else 0.43
            if inc.detail == "internal jugular":
                path = [(0.5 + sgn * 0.075, 0.02), (0.5 + sgn * 0.05, 0.18), (0.47, 0.25), (0.47, tip_v)]
            else:
                path = [(0.5 + sgn * bw * 0.62, 0.215), (0.5 + sgn * 0.08, 0.21), (0.47, 0.25), (0.47, tip_v)]
            att += 0.7 * _polyline(u, v, path, 0.007)  # a radiopaque catheter
        elif inc.name == "pacemaker":
            gu, gv = 0.5 + sgn * bw * 0.55, 0.245
            box = np.maximum(np.abs(u - gu) / 0.035, np.abs(v - gv) / 0.026)
            att += 0.9 * _soft(box - 1.0, 0.08)
            leads = [[(gu, gv), (0.5 + sgn * 0.06, 0.24), (0.47, 0.33), (0.53, 0.62)]]
            if inc.detail == "dual":
                leads.append([(gu, gv), (0.5 + sgn * 0.07, 0.25), (0.475, 0.34), (0.47, 0.45)])
            for lead in leads:
                att += 0.45 * _polyline(u, v, lead, 0.005)
        elif inc.name == "sternotomy_wires":
            for i in range(inc.number):
                wv = 0.30 + 0.30 * i / max(1, inc.number - 1)
                loop = np.abs(np.sqrt(((u - 0.5) / 0.016) ** 2 + ((v - wv) / 0.009) ** 2) - 1.0)
                att += 0.9 * np.exp(-((loop / 0.45) ** 2))
        elif inc.name == "rib_fracture":
            k = inc.number - 2  # the highest rib drawn is the 2nd
            du0 = 0.17 if inc.detail == "acute" else 0.21
            du = np.clip(sgn * (u - 0.5), 0, None)
            rib = np.exp(-((np.abs(v - _rib_curve(k, du)) / (0.0085 + 0.0005 * k)) ** 2)) * (du > 0.03)
            near = np.exp(-(((du - du0) / 0.02) ** 2))
            if inc.detail == "acute":  # a lucent gap through the rib, the fragments stepped
                att -= 0.12 * rib * near
                v0 = float(_rib_curve(k, du0))
                step = np.exp(-((np.abs(v - v0 - 0.01) / 0.01) ** 2)) * np.exp(-(((du - du0 - 0.03) / 0.012) ** 2))
                att += 0.12 * step
            else:  # callus: a smooth bony bulge
                v0 = float(_rib_curve(k, du0))
                callus = np.exp(-(((du - du0) / 0.025) ** 2 + ((v - v0) / 0.022) ** 2))
                att += 0.2 * callus
        elif inc.name != "hyperinflation":
            raise ValueError(f"unknown incidental finding {inc.name!r}")
        return att

    def render_lateral(self, anatomy: PatientAnatomy, acq: Acquisition) -> np.ndarray:
        """Return a simple lateral view (uint16): body, lungs, heart, spine; for study grouping tests."""
        u, v = self._grid(acq, anatomy)
        att = 0.55 * _soft(((u - 0.5) / 0.36) ** 2 + ((v - 0.6) / 0.55) ** 2 - 1.0, 0.02)
        lung = _soft(((u - 0.5) / 0.24) ** 2 + ((v - 0.48) / 0.3) ** 2 - 1.0, 0.04)
        att -= 0.38 * lung
        att += 0.35 * _soft(((u - 0.38) / 0.12) ** 2 + ((v - 0.62) / 0.12) ** 2 - 1.0, 0.05)
        att += 0.3 * _soft(np.abs(u - 0.76) / 0.04 - 1.0, 0.1)
        img = np.clip(att, 0, None) * acq.exposure
        img = img / (1 + img) + acq.noise * self.rng.standard_normal(u.shape).astype(np.float32)
        maxv = (1 << acq.bits_stored) - 1
        stored = np.round(np.clip(img, 0, 1) * maxv)
        if acq.monochrome1:
            stored = maxv - stored
        return np.asarray(stored, dtype=np.uint16)
