"""Synthetic chest radiograph studies: DICOM PS3.10 files with fake PHI, reference reports, manifest.

Each study is drawn from its own random stream ``(seed, index)``, so a study does not depend on how
many others are made or on how the work is split between processes: deterministic per seed.
Site and manufacturer decide acquisition (matrix, bit depth, photometric interpretation, exposure,
noise, collimation, DX or CR); :class:`SiteProfile` also carries prevalence multipliers and image
quality so that a bias suite can plant a disparity between sites and detect it.

Options for evaluation sets (the defaults give the data the shipped model was trained and validated on, byte
for byte): ``subtlety="graded"`` draws findings down to the edge of visibility (severities from 0, smaller
nodules), so that metrics and their confidence intervals are not all 1.0; :meth:`SynthConfig.preset`
``"evaluation"`` is a realistic mix (four sites of unequal weight, older patients); an
:class:`AcquisitionShift` degrades the images of one group (a site, a sex, a manufacturer, a view) so that
a test can plant a performance disparity and check that the evaluation finds it.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import UID, ExplicitVRLittleEndian
from scipy import ndimage

from clinical_mm.core.errors import ConfigurationError
from clinical_mm.core.findings import FINDINGS, INCIDENTAL_FINDINGS
from clinical_mm.synth.chest_phantom import (
    FAINT_SEVERITY,
    Acquisition,
    ChestPhantom,
    FindingSpec,
    IncidentalSpec,
    PatientAnatomy,
    region_boxes,
)
from clinical_mm.synth.report_writer import ReportWriter

__all__ = [
    "INCIDENTAL_PREVALENCE", "MANIFEST_COLUMNS", "MIXES", "SHIFT_ATTRIBUTES", "SUBTLETIES", "AcquisitionShift", "SiteProfile",
    "StudySynthesizer", "SynthConfig", "SynthStudy",
]

#: manifest.csv's columns; new ones are appended at the end (``view``: the frontal image's ViewPosition;
#: ``regions``: JSON, each finding's boxes ``[x0, y0, x1, y1]`` in the frontal image's pixels, see
#: :func:`~clinical_mm.synth.chest_phantom.region_boxes`, incidental findings' too; ``specs``: JSON, the
#: ground truth of every finding and incidental finding drawn, ``[{"name", "side", "zone", "size", "size_mm",
#: "severity"}]`` and ``[{"name", "side", "detail", "tip", "number", "measure_mm"}]``: the source of the
#: questions and answers of :mod:`clinical_mm.core.questions`)
MANIFEST_COLUMNS: tuple[str, ...] = (
    "study_id", "path", *FINDINGS, "sex", "age", "site", "manufacturer", "findings", "impression", "view",
    "regions", "specs",
)

DX_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray Image Storage - For Presentation
CR_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.1"  # Computed Radiography Image Storage
_UID_ROOT = "1.2.826.0.1.3680043.10.1093."  # synthetic-data UID root

_FIRST = ["JOHN", "MARY", "AHMED", "LI", "SOFIA", "OLUWASEUN", "HANNA", "CARLOS", "PRIYA", "DMITRI",
          "GRACE", "KENJI", "FATIMA", "LUCAS", "INGRID", "TOMAS", "AMARA", "YUSUF", "ELENA", "SEAN"]
_LAST = ["ABERNATHY", "BRIGHTWATER", "CASTELLANOS", "DUNMORE", "EKWUEME", "FAIRWEATHER", "GALLOWAY",
         "HOLLINGSWORTH", "IVANOVA", "JANKOWSKI", "KOWALCZYK", "LINDQVIST", "MONTGOMERY", "NAKAMURA",
         "OYELARAN", "PEMBERTON", "QUINTERO", "ROSENTHAL", "SATTERFIELD", "THORNBURY"]
_STREETS = ["Maple Avenue", "Harbour Road", "Linden Street", "Quarry Lane", "Orchard Way"]
_CITIES = ["Riverton", "Eastvale", "Millbrook", "Stonehaven"]

#: Base prevalence of each finding, before co-occurrence and site multipliers.
BASE_PREVALENCE: dict[str, float] = {
    "cardiomegaly": 0.16,
    "pleural_effusion": 0.15,
    "pneumothorax": 0.10,
    "consolidation": 0.14,
    "nodule_mass": 0.11,
    "atelectasis": 0.13,
    "pulmonary_edema": 0.10,
}


#: Prevalence of support devices and incidental findings in an inpatient chest radiograph population, when
#: synthesis draws them (``SynthConfig.incidental_prevalence``); each drawn independently of the flags.
INCIDENTAL_PREVALENCE: dict[str, float] = {
    "endotracheal_tube": 0.16,
    "central_line": 0.24,
    "nasogastric_tube": 0.14,
    "pacemaker": 0.10,
    "sternotomy_wires": 0.10,
    "rib_fracture": 0.12,
    "hyperinflation": 0.12,
}


@dataclass(frozen=True)
class SiteProfile:
    """A hospital site: its device, its acquisition habits and (optionally) planted effects."""

    name: str
    institution: str
    manufacturer: str
    model: str
    modality: str = "DX"  # DX or CR
    matrix: tuple[int, int] = (512, 512)
    bits_stored: int = 12
    monochrome1: bool = False
    exposure: float = 1.0
    noise: float = 0.02
    ap_fraction: float = 0.2
    weight: float = 1.0
    prevalence_multiplier: dict[str, float] = field(default_factory=dict)
    #: extra noise for a subgroup, e.g. {"F": 1.5}: plants an image-quality disparity by sex
    noise_multiplier_by_sex: dict[str, float] = field(default_factory=dict)


DEFAULT_SITES: tuple[SiteProfile, ...] = (
    SiteProfile("SITE_A", "Riverton General Hospital", "Acme Imaging", "AcmeDR 500", "DX",
                (512, 512), 12, False, 1.0, 0.018, 0.15, 1.0),
    SiteProfile("SITE_B", "Eastvale Medical Center", "Northwind Medical", "NW-CR 2", "CR",
                (560, 480), 10, True, 1.15, 0.028, 0.35, 1.0),
    SiteProfile("SITE_C", "Millbrook Community Hospital", "Contoso Radiology", "ContosoX 14", "DX",
                (480, 480), 14, False, 0.85, 0.022, 0.25, 0.8),
)

#: the ``evaluation`` mix's sites: the three above with unequal weights, and SITE_D, another institution
#: with SITE_A's device and acquisition settings (so the model is not out of distribution there)
EVALUATION_SITES: tuple[SiteProfile, ...] = (
    replace(DEFAULT_SITES[0], weight=0.40),
    replace(DEFAULT_SITES[1], weight=0.25),
    replace(DEFAULT_SITES[2], weight=0.20),
    replace(DEFAULT_SITES[0], name="SITE_D", institution="Stonehaven University Hospital", weight=0.15),
)

#: the named mixes of :meth:`SynthConfig.preset` (``clinical-mm synth --mix``)
MIXES: tuple[str, ...] = ("default", "evaluation")

#: per subtlety: the range of finding severity, and of nodule diameter (mm) for a nodule and for a mass.
#: ``standard`` is what the shipped model was trained on (always plainly visible); ``graded`` reaches down to
#: the edge of visibility (a severity below FAINT_SEVERITY fades the finding out, see FindingSpec).
SUBTLETIES: dict[str, tuple[tuple[float, float], tuple[float, float], tuple[float, float]]] = {
    "standard": ((FAINT_SEVERITY, 1.0), (14.0, 28.0), (32.0, 60.0)),
    "graded": ((0.0, 1.0), (5.0, 20.0), (20.0, 45.0)),
}

#: the attributes an acquisition shift can select its group by
SHIFT_ATTRIBUTES: tuple[str, ...] = ("site", "sex", "manufacturer", "view")


def _blur(img: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian blur (scipy.ndimage; edges reflected)."""
    return np.asarray(ndimage.gaussian_filter(img, sigma_px, mode="reflect", truncate=3.0), dtype=np.float32)


@dataclass(frozen=True)
class AcquisitionShift:
    """A documented, seeded acquisition shift: the images of one group are acquired worse.

    The group is the studies whose ``attribute`` (``site``, ``sex``, ``manufacturer`` or ``view``: the frontal
    image's ViewPosition, AP or PA) equals ``value``. Every image of such a study (frontal and lateral) is
    degraded after rendering, in image quality only: blurred (detector unsharpness or motion, Gaussian of
    ``1.5 * strength`` pixels at 512 columns), its contrast lowered (under-exposure: ``1 - 0.25 * strength``
    of the original), and noisier (quantum mottle: white noise of ``0.04 * strength`` plus correlated noise of
    ``0.03 * strength`` of full scale). The degradation draws from its own random stream,
    ``SeedSequence([seed, index, 1])``, so that the studies outside the group, and every label, header,
    report and manifest value of those inside it, are byte-identical with and without the shift: only the
    group's pixel data differ. ``strength`` 1.0 (the default) lowers the shipped model's sensitivity and
    AUROC in the group clearly (see the synth tests and the evaluation's bias checks).
    """

    attribute: str
    value: str
    strength: float = 1.0

    @classmethod
    def parse(cls, text: str, strength: float | None = None) -> AcquisitionShift:
        """``ATTRIBUTE=VALUE`` (e.g. ``site=SITE_B``), as ``clinical-mm synth --shift`` takes it."""
        attribute, sep, value = text.partition("=")
        if not sep or not attribute.strip() or not value.strip():
            raise ConfigurationError(f"shift {text!r}: expected ATTRIBUTE=VALUE, e.g. site=SITE_B "
                                     f"(attributes: {', '.join(SHIFT_ATTRIBUTES)})")
        return cls(attribute.strip(), value.strip(), 1.0 if strength is None else float(strength))

    def check(self, sites: tuple[SiteProfile, ...]) -> None:
        """Refuse (:class:`ConfigurationError`) an unknown attribute, a value no study can have, a bad strength."""
        allowed = {
            "site": sorted({s.name for s in sites}), "sex": ["F", "M"],
            "manufacturer": sorted({s.manufacturer for s in sites}), "view": ["AP", "PA"],
        }
        if self.attribute not in allowed:
            raise ConfigurationError(f"shift attribute {self.attribute!r} is unknown (one of: "
                                     f"{', '.join(SHIFT_ATTRIBUTES)})")
        if self.value not in allowed[self.attribute]:
            raise ConfigurationError(f"shift {self.attribute}={self.value!r}: no such {self.attribute} "
                                     f"(one of: {', '.join(allowed[self.attribute])})")
        if not (isinstance(self.strength, (int, float)) and 0.0 < float(self.strength) <= 3.0):
            raise ConfigurationError(f"shift strength must be a number in (0, 3], got {self.strength!r}")

    def selects(self, site: SiteProfile, sex: str, view: str) -> bool:
        """Whether a study of this site, sex and frontal view is in the shifted group."""
        got = {"site": site.name, "sex": sex, "manufacturer": site.manufacturer, "view": view}[self.attribute]
        return got == self.value

    def degrade(self, pixels: np.ndarray, acq: Acquisition, rng: np.random.Generator) -> np.ndarray:
        """The stored pixels of ``pixels`` (as :class:`Acquisition` ``acq`` stores them) acquired worse."""
        s = float(self.strength)
        maxv = (1 << acq.bits_stored) - 1
        img = pixels.astype(np.float32) / maxv
        if acq.monochrome1:
            img = 1.0 - img
        scale = acq.columns / 512
        img = _blur(img, 1.5 * s * scale)
        img = 0.5 + (img - 0.5) * (1.0 - 0.25 * s)
        img += 0.04 * s * rng.standard_normal(img.shape).astype(np.float32)
        mottle = _blur(rng.standard_normal(img.shape).astype(np.float32), 2.5 * scale)
        img += 0.03 * s * mottle / (float(mottle.std()) or 1.0)
        stored = np.round(np.clip(img, 0.0, 1.0) * maxv)
        if acq.monochrome1:
            stored = maxv - stored
        return np.asarray(stored, dtype=np.uint16)


@dataclass(frozen=True)
class SynthConfig:
    """What to synthesise: sites, finding prevalence, demographics, extra views, subtlety, acquisition shift.

    ``age_mean`` None draws ages uniformly over ``age_range``; a number draws them from a normal distribution
    of that mean and ``age_sd``, rounded and clipped to ``age_range``. ``subtlety`` is one of
    :data:`SUBTLETIES`; ``shift`` an :class:`AcquisitionShift` or None. The defaults are the data the shipped
    model was trained on; checked on construction (:class:`ConfigurationError`).
    """

    sites: tuple[SiteProfile, ...] = DEFAULT_SITES
    prevalence: dict[str, float] = field(default_factory=lambda: dict(BASE_PREVALENCE))
    normal_fraction: float = 0.3
    lateral_fraction: float = 0.15
    age_range: tuple[int, int] = (18, 95)
    age_mean: float | None = None
    age_sd: float = 16.0
    subtlety: str = "standard"
    shift: AcquisitionShift | None = None
    #: support devices and incidental findings drawn and reported (:data:`INCIDENTAL_PREVALENCE`; ``{}``: none)
    incidental_prevalence: dict[str, float] = field(default_factory=dict)
    #: an enlarged heart drawn at its grade's cardiothoracic ratio (see :class:`ChestPhantom`); False: the shipped
    #: model's drawing, in which mild, moderate and marked overlap
    graded_heart: bool = False

    def __post_init__(self) -> None:
        unknown = set(self.incidental_prevalence) - set(INCIDENTAL_FINDINGS)
        if unknown:
            raise ConfigurationError(f"unknown incidental findings: {sorted(unknown)}")
        if self.subtlety not in SUBTLETIES:
            raise ConfigurationError(f"subtlety {self.subtlety!r} is unknown (one of: {', '.join(SUBTLETIES)})")
        if not self.sites:
            raise ConfigurationError("a synthesis config needs at least one site")
        if self.age_range[0] > self.age_range[1]:
            raise ConfigurationError(f"age_range {self.age_range} is empty")
        if self.shift is not None:
            self.shift.check(self.sites)

    @classmethod
    def preset(cls, mix: str = "default") -> SynthConfig:
        """A named mix (:data:`MIXES`): ``default`` (the training data's three sites, ages uniform over 18-95) or
        ``evaluation`` (a realistic mix for evaluation manifests: four sites of unequal weight, SITE_D with
        SITE_A's device under another institution; ages skewed older, normal around 62 (SD 16) clipped to
        18-95, as in chest radiography populations; sexes 50/50; each site's AP fraction as by default)."""
        if mix == "default":
            return cls()
        if mix == "evaluation":
            return cls(sites=EVALUATION_SITES, age_mean=62.0, age_sd=16.0)
        raise ConfigurationError(f"mix {mix!r} is unknown (one of: {', '.join(MIXES)})")

    @classmethod
    def from_json(cls, path: Path, base: SynthConfig | None = None) -> SynthConfig:
        """Read a configuration: ``{"sites": [{...SiteProfile fields...}], "prevalence": {...}, ...}``.

        Keys left out keep the values of ``base`` (when None: of the preset named by the key ``"mix"``, else
        the defaults). Further keys: ``"subtlety"``, ``"age_mean"``, ``"age_sd"`` and ``"shift"``, either
        ``"site=SITE_B"`` or ``{"attribute": "site", "value": "SITE_B", "strength": 1.0}``.
        """
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"{path}: cannot read synthesis config ({exc.__class__.__name__})") from None
        if not isinstance(raw, dict):
            raise ConfigurationError(f"{path}: a synthesis config is a JSON object")
        try:
            base = base or cls.preset(str(raw.get("mix", "default")))
            sites = tuple(
                SiteProfile(**{**s, "matrix": tuple(s.get("matrix", (512, 512)))}) for s in raw.get("sites", [])
            ) or base.sites
            unknown = set(raw.get("prevalence", {})) - set(FINDINGS)
            if unknown:
                raise ConfigurationError(f"{path}: unknown findings in prevalence: {sorted(unknown)}")
            age_range = raw.get("age_range", base.age_range)
            age_mean = raw.get("age_mean", base.age_mean)
            shift = raw.get("shift")
            return cls(
                sites=sites,
                prevalence={**base.prevalence, **raw.get("prevalence", {})},
                normal_fraction=float(raw.get("normal_fraction", base.normal_fraction)),
                lateral_fraction=float(raw.get("lateral_fraction", base.lateral_fraction)),
                age_range=(int(age_range[0]), int(age_range[1])),
                age_mean=None if age_mean is None else float(age_mean),
                age_sd=float(raw.get("age_sd", base.age_sd)),
                subtlety=str(raw.get("subtlety", base.subtlety)),
                shift=(base.shift if shift is None else AcquisitionShift.parse(shift) if isinstance(shift, str)
                       else AcquisitionShift(**shift)),
                incidental_prevalence={k: float(v) for k, v in
                                       raw.get("incidental_prevalence", base.incidental_prevalence).items()},
                graded_heart=bool(raw.get("graded_heart", base.graded_heart)),
            )
        except (TypeError, ValueError, KeyError, IndexError) as exc:
            raise ConfigurationError(f"{path}: invalid synthesis config ({exc})") from None


@dataclass
class SynthStudy:
    """One synthesised study, as written: its manifest row plus what the tests need to know."""

    study_id: str
    path: str
    labels: dict[str, int]
    sex: str
    age: int
    site: str
    manufacturer: str
    findings: str
    impression: str
    files: list[str]
    phi: dict[str, str]
    view: str  # the frontal image's ViewPosition: AP or PA
    shifted: bool = False  # whether the acquisition shift degraded its images
    #: per finding, its boxes [x0, y0, x1, y1] in the frontal image's pixels (columns, rows; end exclusive)
    regions: dict[str, list[list[int]]] = field(default_factory=dict)
    #: the ground truth of what was drawn (see ``MANIFEST_COLUMNS``)
    specs: list[dict[str, object]] = field(default_factory=list)

    def manifest_row(self) -> dict[str, str | int]:
        return {
            "study_id": self.study_id, "path": self.path, **self.labels, "sex": self.sex, "age": self.age,
            "site": self.site, "manufacturer": self.manufacturer, "findings": self.findings,
            "impression": self.impression, "view": self.view,
            "regions": json.dumps(self.regions, separators=(",", ":")),
            "specs": json.dumps(self.specs, separators=(",", ":")),
        }


#: findings whose region is one box whatever side of the image it reaches
_WHOLE = frozenset({"cardiomegaly", "endotracheal_tube", "nasogastric_tube", "central_line", "pacemaker",
                    "sternotomy_wires"})


def _sample_findings(rng: np.random.Generator, cfg: SynthConfig, site: SiteProfile) -> list[FindingSpec]:
    if rng.random() < cfg.normal_fraction:
        return []
    prev = {k: min(0.95, v * site.prevalence_multiplier.get(k, 1.0)) for k, v in cfg.prevalence.items()}
    present = {k for k, p in prev.items() if rng.random() < p}
    if "pulmonary_edema" in present:  # heart failure: edema travels with cardiomegaly and effusions
        if rng.random() < 0.55:
            present.add("cardiomegaly")
        if rng.random() < 0.45:
            present.add("pleural_effusion")
    if "pleural_effusion" in present and rng.random() < 0.3:
        present.add("atelectasis")
    if not present:  # an abnormal study has at least one finding, among those the site can have
        candidates = [f for f in FINDINGS if prev[f] > 0]
        if not candidates:
            return []
        present.add(str(rng.choice(candidates)))
    specs: list[FindingSpec] = []
    sides = ["right", "left"]
    (sev_lo, sev_hi), nodule_mm, mass_mm = SUBTLETIES[cfg.subtlety]  # the same draws whatever the subtlety
    for name in FINDINGS:
        if name not in present:
            continue
        sev = float(rng.uniform(sev_lo, sev_hi))
        side = str(rng.choice(sides))
        if name == "cardiomegaly" or name == "pulmonary_edema":
            specs.append(FindingSpec(name, "bilateral", "middle", "moderate", 0.0, sev))
        elif name == "pleural_effusion":
            side = "bilateral" if rng.random() < 0.3 else side
            specs.append(FindingSpec(name, side, "lower", str(rng.choice(["small", "moderate", "large"])), 0.0, sev))
        elif name == "pneumothorax":
            specs.append(FindingSpec(name, side, "upper", str(rng.choice(["small", "moderate", "large"])), 0.0, sev))
        elif name == "consolidation":
            specs.append(FindingSpec(name, side, str(rng.choice(["upper", "middle", "lower"])), "moderate", 0.0, sev))
        elif name == "nodule_mass":
            size = float(rng.uniform(*nodule_mm)) if rng.random() < 0.65 else float(rng.uniform(*mass_mm))
            specs.append(FindingSpec(name, side, str(rng.choice(["upper", "middle", "lower"])), "moderate", size, sev))
        elif name == "atelectasis":
            side = "bilateral" if rng.random() < 0.2 else side
            specs.append(FindingSpec(name, side, "lower", "small", 0.0, sev))
    return specs


def _sample_incidentals(rng: np.random.Generator, cfg: SynthConfig) -> tuple[IncidentalSpec, ...]:
    """Support devices and incidental findings, from the study's own incidental stream (none drawn: no draws)."""
    out: list[IncidentalSpec] = []
    for name in INCIDENTAL_FINDINGS:
        p = cfg.incidental_prevalence.get(name, 0.0)
        if p <= 0.0 or rng.random() >= p:
            continue
        side = "right" if rng.random() < 0.5 else "left"
        if name == "endotracheal_tube":
            out.append(IncidentalSpec(name, measure_mm=float(round(rng.uniform(20, 70) / 5) * 5)))
        elif name == "nasogastric_tube":
            out.append(IncidentalSpec(name, tip="stomach" if rng.random() < 0.8 else "esophagus"))
        elif name == "central_line":
            out.append(IncidentalSpec(name, "right" if rng.random() < 0.7 else "left",
                                      "internal jugular" if rng.random() < 0.6 else "subclavian",
                                      "SVC" if rng.random() < 0.75 else "right atrium"))
        elif name == "pacemaker":
            out.append(IncidentalSpec(name, "left" if rng.random() < 0.85 else "right",
                                      "dual" if rng.random() < 0.6 else "single"))
        elif name == "sternotomy_wires":
            out.append(IncidentalSpec(name, number=int(rng.integers(4, 8))))
        elif name == "rib_fracture":
            out.append(IncidentalSpec(name, side, "acute" if rng.random() < 0.5 else "healed",
                                      number=int(rng.integers(4, 10))))
        else:
            out.append(IncidentalSpec(name))
    return tuple(out)


def _person_name(rng: np.random.Generator) -> str:
    return f"{rng.choice(_LAST)}^{rng.choice(_FIRST)}^{rng.choice(list('ABCDEFGHJKLMNPRSTW'))}"


class StudySynthesizer:
    """Makes synthetic chest radiograph studies.

    Parameters
    ----------
    seed
        The data seed: the same seed gives byte-identical pixel data, headers and reports.
    config
        Sites, prevalence and demographics.
    """

    def __init__(self, seed: int, config: SynthConfig | None = None) -> None:
        self.seed = int(seed)
        self.config = config or SynthConfig()

    def _rng(self, index: int, stream: int | None = None) -> np.random.Generator:
        """Study ``index``'s random stream; ``stream`` 1 is its acquisition shift's own stream."""
        key = [self.seed, index] if stream is None else [self.seed, index, stream]
        return np.random.default_rng(np.random.SeedSequence(key))

    def _age(self, rng: np.random.Generator) -> int:
        lo, hi = self.config.age_range
        if self.config.age_mean is None:
            return int(rng.integers(lo, hi + 1))
        return int(np.clip(round(float(rng.normal(self.config.age_mean, self.config.age_sd))), lo, hi))

    def _uid(self, rng: np.random.Generator) -> str:
        return _UID_ROOT + ".".join(str(int(x)) for x in rng.integers(1, 2**31 - 1, size=3))

    def make_study(self, index: int, out_dir: Path) -> SynthStudy:
        """Write study ``index`` under ``out_dir/studies`` and return its description."""
        rng = self._rng(index)
        cfg = self.config
        weights = np.array([s.weight for s in cfg.sites], dtype=float)
        site = cfg.sites[int(rng.choice(len(cfg.sites), p=weights / weights.sum()))]
        sex = "F" if rng.random() < 0.5 else "M"
        age = self._age(rng)
        findings = _sample_findings(rng, cfg, site)
        inc_rng = self._rng(index, 2)  # incidental findings' own stream: the rest is the same without them
        incidentals = _sample_incidentals(inc_rng, cfg)
        sick = bool({f.name for f in findings} & {"pulmonary_edema", "pleural_effusion", "consolidation"})
        view = "AP" if rng.random() < min(0.9, site.ap_fraction * (2.0 if sick else 1.0)) else "PA"
        anatomy = PatientAnatomy(
            sex=sex, age=age,
            body_width=float(rng.uniform(0.38, 0.47)) * (1.04 if sex == "M" else 1.0),
            lung_height=float(rng.uniform(0.27, 0.32)),
            heart_scale=float(rng.uniform(0.9, 1.1)),
            rotation_deg=float(rng.normal(0, 2.5)),
            shift=(float(rng.normal(0, 0.015)), float(rng.normal(0, 0.015))),
            hyperinflation=float(any(i.name == "hyperinflation" for i in incidentals)),
        )
        noise = site.noise * float(rng.uniform(0.8, 1.25)) * site.noise_multiplier_by_sex.get(sex, 1.0)
        coll = tuple(float(x) for x in rng.uniform(0.0, 0.06, size=4)) if rng.random() < 0.6 else (0.0,) * 4
        acq = Acquisition(
            rows=site.matrix[0], columns=site.matrix[1], view=view,
            exposure=site.exposure * float(rng.uniform(0.85, 1.2)), gamma=float(rng.uniform(0.85, 1.15)),
            noise=noise, bits_stored=site.bits_stored, monochrome1=site.monochrome1,
            collimation=coll,  # type: ignore[arg-type]
        )
        phantom = ChestPhantom(rng, cfg.graded_heart)
        pixels = phantom.render(anatomy, acq, findings, incidentals)
        regions = {name: region_boxes(mask, split=name not in _WHOLE) for name, mask in phantom.regions.items()}
        shift = cfg.shift if cfg.shift is not None and cfg.shift.selects(site, sex, view) else None
        shift_rng = self._rng(index, 1)  # its own stream: the study's other draws are the same without it
        if shift is not None:
            pixels = shift.degrade(pixels, acq, shift_rng)
        findings_text, impression = ReportWriter(rng).write(findings)
        if cfg.incidental_prevalence:  # lines and tubes first, as reports list them (or their absence)
            findings_text = " ".join([*ReportWriter.incidental_sentences(incidentals, inc_rng), findings_text])

        study_id = f"S{self.seed:04d}-{index:05d}"
        study_dir = out_dir / "studies" / study_id
        study_dir.mkdir(parents=True, exist_ok=True)
        phi = self._phi(rng, site, sex, age)
        study_uid, series_uid = self._uid(rng), self._uid(rng)
        frontal = study_dir / "1.dcm"
        ds = self._dataset(rng, site, acq, pixels, phi, sex, age, study_uid, series_uid, 1, view, findings_text)
        ds.save_as(frontal, enforce_file_format=True)
        files = [str(frontal.relative_to(out_dir))]
        if rng.random() < cfg.lateral_fraction:
            lat_acq = Acquisition(**{**asdict(acq), "view": "LL", "collimation": (0.0, 0.0, 0.0, 0.0)})
            lat = phantom.render_lateral(anatomy, lat_acq)
            if shift is not None:
                lat = shift.degrade(lat, lat_acq, shift_rng)
            ds2 = self._dataset(rng, site, lat_acq, lat, phi, sex, age, study_uid, self._uid(rng), 2, "LL", "")
            ds2.save_as(study_dir / "2.dcm", enforce_file_format=True)
            files.append(str((study_dir / "2.dcm").relative_to(out_dir)))
        labels = {name: int(any(f.name == name for f in findings)) for name in FINDINGS}
        return SynthStudy(
            study_id, files[0], labels, sex, age, site.name, site.manufacturer, findings_text, impression,
            files, phi, view, shift is not None, regions,
            [asdict(f) for f in findings] + [asdict(i) for i in incidentals],
        )

    def _phi(self, rng: np.random.Generator, site: SiteProfile, sex: str, age: int) -> dict[str, str]:
        study_date = dt.date(2031, 1, 1) + dt.timedelta(days=int(rng.integers(0, 700)))
        birth = study_date - dt.timedelta(days=int(age * 365.25 + rng.integers(0, 360)))
        return {
            "PatientName": _person_name(rng),
            "PatientID": f"MRN{int(rng.integers(10**6, 10**7)):07d}",
            "PatientBirthDate": birth.strftime("%Y%m%d"),
            "StudyDate": study_date.strftime("%Y%m%d"),
            "AccessionNumber": f"ACC{int(rng.integers(10**7, 10**8)):08d}",
            "ReferringPhysicianName": _person_name(rng),
            "PerformingPhysicianName": _person_name(rng),
            "OperatorsName": _person_name(rng),
            "InstitutionName": site.institution,
            "InstitutionAddress": f"{int(rng.integers(1, 999))} {rng.choice(_STREETS)}, {rng.choice(_CITIES)}",
            "PatientAddress": f"{int(rng.integers(1, 999))} {rng.choice(_STREETS)}, {rng.choice(_CITIES)}",
            "PatientTelephoneNumbers": f"555-{int(rng.integers(1000, 9999))}",
            "DeviceSerialNumber": f"SN{int(rng.integers(10**5, 10**6))}",
            "StationName": f"{site.name}-XR{int(rng.integers(1, 9))}",
            "StudyID": f"{int(rng.integers(10**4, 10**5))}",
            "OtherPatientIDs": f"EMR{int(rng.integers(10**6, 10**7))}",
            "ImageComments": f"Portable exam, patient transferred from ward {int(rng.integers(1, 9))}B",
            "PatientComments": "Allergic to penicillin; lives with daughter",
        }

    def _dataset(
        self, rng: np.random.Generator, site: SiteProfile, acq: Acquisition, pixels: np.ndarray,
        phi: dict[str, str], sex: str, age: int, study_uid: str, series_uid: str, number: int, view: str,
        findings_text: str,
    ) -> Dataset:
        sop_class = DX_SOP_CLASS if site.modality == "DX" else CR_SOP_CLASS
        sop_uid = self._uid(rng)
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = UID(sop_class)
        meta.MediaStorageSOPInstanceUID = UID(sop_uid)
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = UID(_UID_ROOT + "1")
        ds = Dataset()
        ds.file_meta = meta
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.SOPClassUID, ds.SOPInstanceUID = UID(sop_class), UID(sop_uid)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = UID(study_uid), UID(series_uid)
        ds.Modality = site.modality
        ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = phi["StudyDate"]
        ds.StudyTime = ds.SeriesTime = ds.ContentTime = f"{int(rng.integers(7, 20)):02d}{int(rng.integers(0, 60)):02d}00"
        for key in ("AccessionNumber", "ReferringPhysicianName", "InstitutionName", "InstitutionAddress",
                    "StationName", "PatientName", "PatientID", "PatientBirthDate", "OtherPatientIDs",
                    "PatientAddress", "PatientTelephoneNumbers", "DeviceSerialNumber", "StudyID",
                    "OperatorsName", "PerformingPhysicianName", "ImageComments", "PatientComments"):
            setattr(ds, key, phi[key])
        ds.PatientSex = sex
        ds.PatientAge = f"{age:03d}Y"
        ds.Manufacturer = site.manufacturer
        ds.ManufacturerModelName = site.model
        ds.SoftwareVersions = "4.2.1"
        ds.StudyDescription = "XR CHEST 1-2 VIEWS"
        ds.SeriesDescription = f"CHEST {view}"
        ds.BodyPartExamined = "CHEST"
        ds.ViewPosition = view
        ds.PatientOrientation = ["L", "F"] if view != "LL" else ["A", "F"]
        ds.SeriesNumber = number
        ds.InstanceNumber = 1
        ds.ImageType = ["ORIGINAL", "PRIMARY"]
        if site.modality == "DX":
            ds.PresentationIntentType = "FOR PRESENTATION"
        ds.BurnedInAnnotation = "NO"
        ds.ImagerPixelSpacing = [f"{380.0 / acq.columns:.4f}", f"{380.0 / acq.columns:.4f}"]
        ds.PixelSpacing = ds.ImagerPixelSpacing
        ds.KVP = f"{int(rng.integers(90, 125))}"
        ds.ExposureTime = int(rng.integers(5, 25))
        ds.Rows, ds.Columns = int(pixels.shape[0]), int(pixels.shape[1])
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME1" if acq.monochrome1 else "MONOCHROME2"
        ds.BitsAllocated = 16
        ds.BitsStored = acq.bits_stored
        ds.HighBit = acq.bits_stored - 1
        ds.PixelRepresentation = 0
        maxv = (1 << acq.bits_stored) - 1
        ds.WindowCenter = f"{maxv * float(rng.uniform(0.45, 0.55)):.0f}"
        ds.WindowWidth = f"{maxv * float(rng.uniform(0.85, 1.0)):.0f}"
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = "0", "1", "US"
        req = Dataset()
        req.RequestedProcedureID = f"RP{phi['StudyID']}"
        req.AccessionNumber = phi["AccessionNumber"]
        req.ScheduledProcedureStepID = f"SPS{phi['StudyID']}"
        req.RequestedProcedureDescription = f"CXR for {phi['PatientName'].split('^')[0].title()}"
        ds.RequestAttributesSequence = Sequence([req])
        block = ds.private_block(0x0029, "CLINICALMM SYNTH", create=True)
        block.add_new(0x10, "LO", phi["PatientName"])
        block.add_new(0x11, "LO", phi["PatientID"])
        ds.PixelData = pixels.astype("<u2").tobytes()
        return ds

    def iter_studies(self, n: int, out_dir: Path, workers: int = 1) -> Iterator[SynthStudy]:
        """Yield ``n`` studies in index order, made by ``workers`` processes."""
        if workers <= 1 or n < 8:
            for i in range(n):
                yield self.make_study(i, out_dir)
            return
        with ProcessPoolExecutor(max_workers=workers) as pool:
            yield from pool.map(self.make_study, range(n), [out_dir] * n, chunksize=8)

    def write(self, n: int, out_dir: Path, *, progress: bool = True, workers: int | None = None) -> list[SynthStudy]:
        """Write ``n`` studies and ``out_dir/manifest.csv``; return the studies."""
        if n < 1:
            raise ConfigurationError("--n must be at least 1")
        out_dir.mkdir(parents=True, exist_ok=True)
        workers = workers if workers is not None else min(2, os.cpu_count() or 1)
        from tqdm import tqdm

        studies = list(tqdm(self.iter_studies(n, out_dir, workers), total=n, desc="synth", unit="study",
                            disable=not progress))
        with (out_dir / "manifest.csv").open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(MANIFEST_COLUMNS))
            writer.writeheader()
            for s in studies:
                writer.writerow(s.manifest_row())
        return studies
