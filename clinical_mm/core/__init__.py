"""The neutral core below every stage: errors, settings, the records that cross stages, findings, metrics,
the FHIR release, the logistic fit and the registry helper. It imports nothing else of clinical-mm."""

__version__ = "0.1.0"
__all__ = ["__version__"]
