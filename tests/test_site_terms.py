"""A site's allow/deny term file and score threshold: reading the file, the settings, and how every text
de-identifier the pipeline composes gets them (no spaCy: the de-identifiers are built, never run)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from clinical_mm.core.config import PseudonymKey, Settings
from clinical_mm.core.errors import ConfigurationError
from clinical_mm.deid.dicom_deidentifier import DicomDeidentifier
from clinical_mm.deid.text.site_terms import SiteTerms
from clinical_mm.deid.text.text_deidentifier import DEFAULT_THRESHOLD
from clinical_mm.pipeline.dicom_batch_deidentifier import BatchSpec
from clinical_mm.pipeline.note_extraction import NoteExtraction
from clinical_mm.pipeline.text_deidentification import site_terms, text_deidentifier

KEY = PseudonymKey(b"\x1e" * 32)
GOOD = """\
allow: [CAREVUE, "Aldrete score"]
deny:
  - GH
  - {term: Briarwood, type: WARD}
"""


@pytest.fixture()
def term_file(tmp_path: Path) -> Path:
    path = tmp_path / "terms.yaml"
    path.write_text(GOOD)
    return path


def test_when_term_file_is_good_then_allow_is_lower_case_and_deny_carries_types(term_file: Path) -> None:
    terms = SiteTerms.from_file(term_file)
    assert terms.allow == frozenset({"carevue", "aldrete score"})
    assert terms.deny == (("GH", "LOCATION"), ("Briarwood", "WARD"))


@pytest.mark.parametrize(("text", "problem"), [
    ("", None),  # an empty file: no terms
    ("allow: [A]\n", None),
    ("deny: [B]\n", None),
    ("- just\n- a list\n", "expected a mapping"),
    ("allow: [A]\nextra: [B]\n", "expected a mapping"),
    ("allow: A\n", "'allow' must be a list"),
    ("allow: [A, 3]\n", "'allow' must be a list"),
    ("allow: ['  ']\n", "'allow' must be a list"),
    ("deny: [{type: WARD}]\n", "'deny' entry"),
    ("deny: [{term: X, type: ward}]\n", "'deny' entry"),
    ("deny: [7]\n", "'deny' entry"),
    ("allow: [unclosed\n", "cannot read"),
])
def test_when_term_file_is_bad_then_configuration_error_says_what(tmp_path: Path, text: str,
                                                                   problem: str | None) -> None:
    path = tmp_path / "terms.yaml"
    path.write_text(text)
    if problem is None:
        assert isinstance(SiteTerms.from_file(path), SiteTerms)
        return
    with pytest.raises(ConfigurationError, match=problem):
        SiteTerms.from_file(path)


def test_when_term_file_is_missing_or_not_text_then_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read"):
        SiteTerms.from_file(tmp_path / "absent.yaml")
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00allow")
    with pytest.raises(ConfigurationError, match="cannot read"):
        SiteTerms.from_file(binary)


def test_when_settings_name_terms_and_threshold_then_they_are_read(monkeypatch: pytest.MonkeyPatch,
                                                                   term_file: Path) -> None:
    monkeypatch.delenv("CLINICAL_MM_DEID_TERMS", raising=False)
    monkeypatch.delenv("CLINICAL_MM_DEID_THRESHOLD", raising=False)
    assert Settings().deid_terms is None and Settings().deid_threshold is None
    monkeypatch.setenv("CLINICAL_MM_DEID_TERMS", str(term_file))
    monkeypatch.setenv("CLINICAL_MM_DEID_THRESHOLD", "0.7")
    settings = Settings()
    assert settings.deid_terms == term_file and settings.deid_threshold == 0.7
    for bad in ("1.5", "-0.1", "high"):
        monkeypatch.setenv("CLINICAL_MM_DEID_THRESHOLD", bad)
        with pytest.raises(ValidationError):
            Settings()


def test_when_composed_then_terms_and_threshold_reach_the_text_deidentifier(term_file: Path) -> None:
    plain = text_deidentifier(KEY)
    assert plain.threshold == DEFAULT_THRESHOLD and plain.site_terms == SiteTerms()
    tuned = text_deidentifier(KEY, terms=term_file, threshold=0.8)
    assert tuned.threshold == 0.8 and tuned.site_terms == SiteTerms.from_file(term_file)
    read = SiteTerms.from_file(term_file)
    assert text_deidentifier(KEY, terms=read).site_terms is read and site_terms(None) is None


def test_when_note_extraction_or_dicom_batch_is_composed_then_they_carry_terms_and_threshold(
        term_file: Path, tmp_path: Path) -> None:
    extraction = NoteExtraction(KEY, terms=term_file, threshold=0.6)
    assert extraction.site_terms == SiteTerms.from_file(term_file) and extraction.threshold == 0.6
    bad = tmp_path / "bad.yaml"
    bad.write_text("allow: A\n")
    with pytest.raises(ConfigurationError, match="'allow' must be a list"):
        NoteExtraction(KEY, terms=bad)  # refused when built (the service's start), not at its first request
    spec = BatchSpec(KEY, site_terms=SiteTerms.from_file(term_file), threshold=0.6)
    deid = spec.deidentifier()
    assert isinstance(deid, DicomDeidentifier) and deid.site_terms == spec.site_terms and deid.threshold == 0.6
    text = deid._text_deidentifier()  # built, not run: spaCy loads on first use
    assert text.site_terms == spec.site_terms and text.threshold == 0.6
    assert DicomDeidentifier(KEY)._text_deidentifier().threshold == DEFAULT_THRESHOLD
