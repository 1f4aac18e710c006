"""Structured extraction from report text."""
