"""The FHIR release of clinical-mm, chosen here alone: R4 through ``fhir.resources.R4B`` (R4-family JSON).

Outputs build resources and connectors read them; both validate through :func:`validate_resource` (any
resource, by its ``resourceType``) or :func:`validated` (against a given model class). Errors name the
resource type and the field, never the value.
"""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.diagnosticreport import DiagnosticReport

from clinical_mm.core.errors import OutputError

__all__ = ["FHIR_RELEASE", "Bundle", "DiagnosticReport", "validate_resource", "validated"]

FHIR_RELEASE = "R4 (fhir.resources.R4B)"


def validated(model: Any, resource: dict[str, Any], what: str) -> dict[str, Any]:
    """``resource`` validated against its R4 model and dumped as JSON; the error names the field, never the value."""
    try:
        checked = model.model_validate(resource)
    except Exception as exc:  # pydantic ValidationError
        errors: list[dict[str, Any]] = getattr(exc, "errors", lambda: [])()
        where = ".".join(str(p) for p in errors[0]["loc"]) if errors else exc.__class__.__name__
        raise OutputError(f"{what} failed R4 validation at {where}") from None
    out: dict[str, Any] = checked.model_dump(mode="json", exclude_none=True)
    return out


def validate_resource(resource: Any, what: str = "FHIR resource") -> dict[str, Any]:
    """Any R4 resource (by its ``resourceType``) validated and dumped as JSON; :class:`OutputError` naming the
    type and the field, never the value, when it is not valid R4."""
    if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
        raise OutputError(f"{what} is not a FHIR resource (no resourceType)")
    try:
        model = get_fhir_model_class(resource["resourceType"])
    except (KeyError, ValueError, AttributeError):
        raise OutputError(f"{what}: unknown R4 resource type") from None
    return validated(model, resource, f"{what} ({resource['resourceType']})")
