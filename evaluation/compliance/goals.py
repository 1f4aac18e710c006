"""Pre-set goals of an evaluation (``--goals goals.yaml``) and the subgroup test's settings.

    goals:
      - {metric: auroc, bound: lower, at_least: 0.90}                 # every flag
      - {metric: sensitivity, bound: lower, at_least: 0.80, flags: [pneumothorax]}
      - {metric: ece, bound: upper, at_most: 0.10}
    subgroups:
      alpha: 0.05           # family-wise error of the subgroup tests (Holm over every comparison)
      min_difference: 0.10  # a group is flagged only this far below the rest, and significantly
      min_n: 30             # smaller groups are marked too small to judge
      min_positives: 10     # fewer positives (negatives): its sensitivity (specificity) is not judged

``bound`` is the part of the estimate judged: ``lower`` or ``upper`` bound of the 95% interval, or the
``estimate``. A goal set before the test is the point: write the file before you run ``evaluate``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from clinical_mm.core.errors import ConfigurationError
from clinical_mm.core.findings import FINDINGS
from clinical_mm.evaluation.compliance.manifest import file_sha256
from clinical_mm.evaluation.compliance.statistics import Estimate

__all__ = ["DEFAULT_GOALS", "FLAG_METRICS", "Goal", "Goals", "SubgroupSettings", "load_goals"]

#: the metrics of each flag, in the report's order
FLAG_METRICS: tuple[str, ...] = ("prevalence", "auroc", "sensitivity", "specificity", "ppv", "npv", "lr_positive",
                                 "lr_negative", "ece", "brier")

DEFAULT_GOALS = Path(__file__).with_name("default_goals.yaml")


@dataclass(frozen=True)
class Goal:
    metric: str
    bound: str  # estimate | lower | upper
    at_least: float | None
    at_most: float | None
    flags: tuple[str, ...]

    def text(self) -> str:
        what = {"estimate": f"{self.metric}", "lower": f"lower CI bound of {self.metric}",
                "upper": f"upper CI bound of {self.metric}"}[self.bound]
        return f"{what} >= {self.at_least:g}" if self.at_least is not None else f"{what} <= {self.at_most:g}"

    def judge(self, value: Estimate) -> dict[str, Any]:
        """``met`` true or false, or ``None`` when the estimate (or its bound) is undefined."""
        x = {"estimate": value.estimate, "lower": value.lower, "upper": value.upper}[self.bound]
        met = None if x is None else (x >= self.at_least if self.at_least is not None
                                      else x <= self.at_most if self.at_most is not None else None)
        return {"goal": self.text(), "metric": self.metric, "bound": self.bound, "value": None if x is None else round(x, 4),
                "target": self.at_least if self.at_least is not None else self.at_most, "met": met}


@dataclass(frozen=True)
class SubgroupSettings:
    alpha: float = 0.05
    min_difference: float = 0.10
    min_n: int = 30
    min_positives: int = 10


@dataclass(frozen=True)
class Goals:
    goals: tuple[Goal, ...]
    subgroups: SubgroupSettings = field(default_factory=SubgroupSettings)
    source: str = "default"
    sha256: str = ""

    def for_flag(self, flag: str) -> list[Goal]:
        return [g for g in self.goals if not g.flags or flag in g.flags]


def _goal(raw: Any, where: str) -> Goal:
    if not isinstance(raw, dict):
        raise ConfigurationError(f"{where}: a goal is a mapping {{metric, bound, at_least | at_most, flags}}")
    metric = str(raw.get("metric", ""))
    if metric not in FLAG_METRICS:
        raise ConfigurationError(f"{where}: unknown metric {metric!r} (one of {', '.join(FLAG_METRICS)})")
    bound = str(raw.get("bound", "lower"))
    if bound not in ("estimate", "lower", "upper"):
        raise ConfigurationError(f"{where}: bound is estimate, lower or upper, not {bound!r}")
    if ("at_least" in raw) == ("at_most" in raw):
        raise ConfigurationError(f"{where}: give one of at_least and at_most")
    flags = raw.get("flags") or []
    flags = [flags] if isinstance(flags, str) else list(flags)
    unknown = sorted(set(flags) - set(FINDINGS))
    if unknown:
        raise ConfigurationError(f"{where}: unknown flags {unknown}")
    try:
        at_least = float(raw["at_least"]) if "at_least" in raw else None
        at_most = float(raw["at_most"]) if "at_most" in raw else None
    except (TypeError, ValueError):
        raise ConfigurationError(f"{where}: the target is not a number") from None
    return Goal(metric, bound, at_least, at_most, tuple(flags))


def load_goals(path: Path | None) -> Goals:
    """The goals of ``path`` (default: the shipped ``default_goals.yaml``); a malformed file is a
    :class:`ConfigurationError`."""
    source = path or DEFAULT_GOALS
    try:
        raw = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigurationError(f"{source}: cannot read the goals ({exc.__class__.__name__})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("goals", []), list):
        raise ConfigurationError(f"{source}: expected a mapping with a 'goals' list")
    goals = tuple(_goal(g, f"{source}: goal {i + 1}") for i, g in enumerate(raw.get("goals", [])))
    sub = raw.get("subgroups") or {}
    if not isinstance(sub, dict) or set(sub) - {"alpha", "min_difference", "min_n", "min_positives"}:
        raise ConfigurationError(f"{source}: subgroups takes alpha, min_difference, min_n, min_positives")
    try:
        settings = SubgroupSettings(float(sub.get("alpha", 0.05)), float(sub.get("min_difference", 0.10)),
                                    int(sub.get("min_n", 30)), int(sub.get("min_positives", 10)))
    except (TypeError, ValueError):
        raise ConfigurationError(f"{source}: a subgroups setting is not a number") from None
    if not 0 < settings.alpha < 1:
        raise ConfigurationError(f"{source}: subgroups.alpha must be between 0 and 1")
    return Goals(goals, settings, "default" if path is None else str(path.name), file_sha256(source))
