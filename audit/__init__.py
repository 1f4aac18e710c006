"""Append-only, hash-chained audit log (imported as clinical_mm.audit)."""
