"""The findings the model flags, in one place: names, severities and the default priority map."""

from __future__ import annotations

from typing import Final, Literal

__all__ = ["FINDINGS", "FINDING_LABELS", "INCIDENTAL_FINDINGS", "INCIDENTAL_LABELS", "PRIORITIES", "Priority", "DEFAULT_FLAG_PRIORITY", "priority_for"]

#: Triage flags, in model-output order. Manifest columns and FHIR Observations use these names.
FINDINGS: Final[tuple[str, ...]] = (
    "cardiomegaly",
    "pleural_effusion",
    "pneumothorax",
    "consolidation",
    "nodule_mass",
    "atelectasis",
    "pulmonary_edema",
)

#: Human-readable label of each flag.
FINDING_LABELS: Final[dict[str, str]] = {
    "cardiomegaly": "Cardiomegaly",
    "pleural_effusion": "Pleural effusion",
    "pneumothorax": "Pneumothorax",
    "consolidation": "Consolidation",
    "nodule_mass": "Lung nodule or mass",
    "atelectasis": "Atelectasis",
    "pulmonary_edema": "Pulmonary edema",
}

#: Support devices and findings that reports mention and that the model can be asked about (zero-shot
#: classification, questions) but that never raise a flag or a study's priority.
INCIDENTAL_FINDINGS: Final[tuple[str, ...]] = (
    "endotracheal_tube",
    "central_line",
    "nasogastric_tube",
    "pacemaker",
    "sternotomy_wires",
    "rib_fracture",
    "hyperinflation",
)

INCIDENTAL_LABELS: Final[dict[str, str]] = {
    "endotracheal_tube": "Endotracheal tube",
    "central_line": "Central venous catheter",
    "nasogastric_tube": "Nasogastric tube",
    "pacemaker": "Cardiac pacemaker",
    "sternotomy_wires": "Sternotomy wires",
    "rib_fracture": "Rib fracture",
    "hyperinflation": "Hyperinflated lungs",
}

Priority = Literal["routine", "urgent", "critical"]
PRIORITIES: Final[tuple[str, ...]] = ("routine", "urgent", "critical")

#: The priority a raised flag lifts a study to. A flag only ever raises priority.
DEFAULT_FLAG_PRIORITY: Final[dict[str, str]] = {
    "cardiomegaly": "routine",
    "pleural_effusion": "urgent",
    "pneumothorax": "critical",
    "consolidation": "urgent",
    "nodule_mass": "urgent",
    "atelectasis": "routine",
    "pulmonary_edema": "urgent",
}


def priority_for(raised: list[str] | tuple[str, ...], flag_priority: dict[str, str] | None = None) -> str:
    """Return the highest priority any raised flag calls for (``routine`` when none is raised)."""
    mapping = flag_priority or DEFAULT_FLAG_PRIORITY
    level = 0
    for name in raised:
        level = max(level, PRIORITIES.index(mapping.get(name, "urgent")))
    return PRIORITIES[level]
