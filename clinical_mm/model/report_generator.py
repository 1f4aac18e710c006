"""Inference: a de-identified study in, a preliminary draft and calibrated triage flags out.

Only :class:`clinical_mm.core.types.DeidentifiedStudy` is accepted: the PHI boundary is a type.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from pydicom.dataset import Dataset

from clinical_mm.core.findings import FINDINGS, priority_for
from clinical_mm.core.metrics import sigmoid
from clinical_mm.core.types import DeidentifiedStudy
from clinical_mm.model.base import DraftReport
from clinical_mm.model.checkpoint import LoadedModel, load_model
from clinical_mm.model.grounding import InputGeometry, encoder_sides, locate, occlusion_maps
from clinical_mm.model.preprocessing import ChestXrayPreprocessor
from clinical_mm.model.tokenizer import split_report

__all__ = ["ClinicalMMReportGenerator", "DraftReport"]


class ClinicalMMReportGenerator:
    """Runs our model on the frontal image of a de-identified study (a :class:`~clinical_mm.model.base.ReportGenerator`).

    Parameters
    ----------
    loaded
        A loaded model folder.
    preprocessor
        Pixel preprocessing (default: the model's image size).
    flag_priority
        Priority each raised flag lifts a study to (default :data:`clinical_mm.core.findings.DEFAULT_FLAG_PRIORITY`).
    ground
        Locate each raised flag (occlusion sensitivity, about 100 encoder passes; see
        :mod:`clinical_mm.model.grounding`); off where only the flags and the draft are scored.
    """

    def __init__(self, loaded: LoadedModel, preprocessor: ChestXrayPreprocessor | None = None,
                 flag_priority: dict[str, str] | None = None, bf16: bool = False, ground: bool = True) -> None:
        self.loaded = loaded
        self.ground = ground
        self.preprocessor = preprocessor or ChestXrayPreprocessor(loaded.model.config.vision.image_size)
        self.flag_priority = flag_priority
        self.bf16 = bf16
        flags = tuple(loaded.model.config.heads.flags)
        if flags != FINDINGS:
            raise ValueError(f"model flags {flags} differ from this version's flags {FINDINGS}")

    @property
    def model_id(self) -> str:
        """``name@version`` of the loaded model."""
        return self.loaded.model_id

    @property
    def model_sha256(self) -> str:
        """The sha256 of the loaded model's weights."""
        return self.loaded.sha256

    @classmethod
    def from_path(cls, path: Path, *, ground: bool = True) -> ClinicalMMReportGenerator:
        return cls(load_model(path), ground=ground)

    @torch.inference_mode()
    def analyze(self, study: DeidentifiedStudy, index: int) -> DraftReport:
        """Draft and triage for ``study.instances[index]`` (the frontal image chosen by the scope check)."""
        if not isinstance(study, DeidentifiedStudy):
            raise TypeError("the model accepts only a DeidentifiedStudy")
        model, tok = self.loaded.model, self.loaded.tokenizer
        timings: dict[str, float] = {}
        t = time.perf_counter()
        pixels = torch.from_numpy(self.preprocessor(study.instances[index]))[None]
        timings["preprocess"] = (time.perf_counter() - t) * 1e3
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            t = time.perf_counter()
            tokens = model.encode_image(pixels)
            q = model.query_output(tokens)
            logits = model.triage_logits(q).float()[0].numpy()
            timings["encode"] = (time.perf_counter() - t) * 1e3
            t = time.perf_counter()
            ids = model.generate(q)[0].tolist()
            timings["generate"] = (time.perf_counter() - t) * 1e3
        findings, impression = split_report(tok.decode(ids))
        temps, thresholds = self.loaded.temperatures, self.loaded.thresholds
        flags = {name: round(float(sigmoid(logits[j] / temps[name])), 4) for j, name in enumerate(FINDINGS)}
        raised = [n for n in FINDINGS if flags[n] >= thresholds[n]]
        t = time.perf_counter()
        regions = self._regions(pixels, tokens, study.instances[index], raised)
        timings["ground"] = (time.perf_counter() - t) * 1e3
        return DraftReport(findings, impression, flags, {n: thresholds[n] for n in FINDINGS}, raised,
                           priority_for(raised, self.flag_priority), timings, regions)

    def _regions(self, pixels: torch.Tensor, tokens: torch.Tensor, dataset: Dataset,
                 names: list[str]) -> dict[str, dict[str, object]]:
        """Where the image encoder sees each of ``names`` (see :mod:`clinical_mm.model.grounding`)."""
        if not names or not self.ground:
            return {}
        model = self.loaded.model
        maps = occlusion_maps(model, pixels).numpy()
        sides = encoder_sides(model, tokens.float())
        geometry = InputGeometry(int(dataset.Rows), int(dataset.Columns), model.config.vision.image_size)
        return {n: locate(n, maps[FINDINGS.index(n)], geometry, sides.get(n, ())).to_json() for n in names}
