"""Records that cross stage boundaries.

The PHI boundary is a type: the model accepts only :class:`DeidentifiedStudy`, which only the ``deid``
package constructs (it needs :data:`DEID_CONSTRUCTION_TOKEN`, which only ``clinical_mm.deid`` imports: an
architecture test checks that), carrying a
:class:`DeidReceipt` (profile, options, key id, counts of each action).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = ["DEID_CONSTRUCTION_TOKEN", "DeidReceipt", "DeidentifiedStudy", "StudyResult"]

#: passed by ``clinical_mm.deid`` alone when it constructs a :class:`DeidentifiedStudy`
DEID_CONSTRUCTION_TOKEN = object()


@dataclass(frozen=True)
class DeidReceipt:
    """What de-identification did to a study. Holds no PHI: names of rules and counts only."""

    profile: str
    options: tuple[str, ...]
    key_id: str
    action_counts: dict[str, int]
    method: str

    def to_dict(self) -> dict[str, object]:
        return {"profile": self.profile, "options": list(self.options), "key_id": self.key_id,
                "action_counts": dict(sorted(self.action_counts.items())), "method": self.method}


class DeidentifiedStudy:
    """A study whose instances have been de-identified; the only study type the model accepts.

    ``study_uid`` is the pseudonymous StudyInstanceUID; ``accession`` the accession pseudonym.
    """

    def __init__(
        self, token: object, study_uid: str, accession: str, instances: list[Dataset], receipt: DeidReceipt
    ) -> None:
        if token is not DEID_CONSTRUCTION_TOKEN:
            raise TypeError("DeidentifiedStudy is constructed only by clinical_mm.deid")
        self.study_uid = study_uid
        self.accession = accession
        self.instances = instances
        self.receipt = receipt

    def __repr__(self) -> str:
        return f"DeidentifiedStudy(study_uid={self.study_uid!r}, instances={len(self.instances)})"


@dataclass
class StudyResult:
    """The outcome of analysing one study; ``error`` set when it was refused."""

    source: str
    study_uid: str | None = None
    flags: dict[str, float] = field(default_factory=dict)
    thresholds: dict[str, float] = field(default_factory=dict)
    raised: list[str] = field(default_factory=list)
    priority: str | None = None
    findings: str | None = None
    impression: str | None = None
    fhir: str | None = None
    error: str | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    accession: str | None = None  # the accession pseudonym (not in results.jsonl)
    draft_check: dict[str, object] | None = None  # what the draft states of each flag, and where it disagrees
    #: the input gate's reading: {"score", "threshold", "in_domain", "chest_radiograph"} (None: no gate)
    ood: dict[str, object] | None = None
    #: per raised flag, where the model sees it (see clinical_mm.model.grounding)
    regions: dict[str, dict[str, object]] = field(default_factory=dict)
    #: the pseudonymous SOP Instance UID of the image analysed (its regions' pixels are that image's)
    image: str | None = None

    def to_json(self) -> dict[str, object]:
        """The results.jsonl line: no PHI, sources relative to the analysed path."""
        if self.error is not None:
            return {"source": self.source, "error": self.error}
        return {
            "source": self.source, "study": self.study_uid, "flags": self.flags, "thresholds": self.thresholds,
            "raised": self.raised, "priority": self.priority, "findings": self.findings,
            "impression": self.impression, "fhir": self.fhir,
            **({"draft_check": self.draft_check} if self.draft_check is not None else {}),
            **({"ood": self.ood} if self.ood is not None else {}),
            **({"regions": self.regions} if self.regions else {}),
            **({"image": self.image} if self.image else {}),
        }
