"""Output builders: FHIR R4 resources."""
