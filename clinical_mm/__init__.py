"""clinical-mm: a clinical document and medical-image assistant.

Connectors take studies in; ``deid`` removes PHI; the multimodal model (ViT -> Q-Former -> causal LM)
drafts preliminary reports and raises calibrated triage flags; results go out as FHIR R4; every step is
written to a hash-chained audit log. ``import clinical_mm`` is light: torch, transformers and monai load
only where a command needs them.
"""

from clinical_mm.core import __version__
from clinical_mm.core.config import PseudonymKey, Settings
from clinical_mm.core.errors import ClinicalMMError
from clinical_mm.core.findings import FINDINGS

__all__ = ["FINDINGS", "ClinicalMMError", "PseudonymKey", "Settings", "__version__"]
