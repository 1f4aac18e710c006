"""Offline evaluation: triage discrimination and calibration, draft accuracy (imported as clinical_mm.evaluation)."""
