"""The neutral core below every stage: errors, settings, the records that cross stages, findings, metrics,
the FHIR release and the entry-point registry. It imports nothing else of clinical-mm and no stage's engine
(torch, presidio, spaCy, pynetdicom)."""

__version__ = "0.1.0"
__all__ = ["__version__"]
