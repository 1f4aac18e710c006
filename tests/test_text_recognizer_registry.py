"""The text de-identifier's PHI recognizers as a registry a site configures: presidio's recognizers the engine
ran before and the clinical ones, a site's YAML file (``CLINICAL_MM_RECOGNIZERS``) adding or removing
recognizers, and recognizers of installed packages through the ``clinical_mm.recognizers`` entry points."""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from clinical_mm.cli import cli
from clinical_mm.core.config import PseudonymKey, Settings
from clinical_mm.core.errors import ConfigurationError
from clinical_mm.deid.text.text_deidentifier import TextDeidentifier

KEY = PseudonymKey(b"\x1d" * 32)
#: a site's own record number form, which no shipped recognizer knows
NOTE = "Seen today for follow-up, site number XYZ-123456, stable."
SITE_MRN = """
recognizers:
  - name: SiteMrnRecognizer
    supported_language: en
    supported_entity: MRN
    patterns:
      - name: site record number
        regex: "\\\\bXYZ-\\\\d{6}\\\\b"
        score: 0.9
"""
#: a plugin module of a site package: one recognizer class and two broken entry-point targets
PLUGIN = '''
from presidio_analyzer import Pattern, PatternRecognizer


class SiteMrnRecognizer(PatternRecognizer):
    def __init__(self) -> None:
        super().__init__(supported_entity="MRN", name="SiteMrnRecognizer",
                         patterns=[Pattern("site record number", r"\\bXYZ-\\d{6}\\b", 0.9)])


def not_a_recognizer() -> object:
    return object()
'''


def _site_file(tmp_path: Path, text: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "recognizers.yaml"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setenv("CLINICAL_MM_RECOGNIZERS", str(path))
    return path


def _configured() -> TextDeidentifier:
    """The text de-identifier as the composition layer builds it from the settings (CLINICAL_MM_RECOGNIZERS)."""
    return TextDeidentifier(KEY, recognizers=Settings().recognizers)


def _found(deid: TextDeidentifier, note: str) -> list[tuple[str, str]]:
    return [(note[s.start:s.end], s.entity_type) for s in deid.find(note)]


def test_when_nothing_is_configured_then_the_registry_holds_the_recognizers_the_engine_always_ran(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLINICAL_MM_RECOGNIZERS", raising=False)
    deid = _configured()
    assert _found(deid, NOTE) == []
    assert sorted(r.name for r in deid.registry.recognizers) == [
        "ClinicalPatternRecognizer", "CueRecognizer", "IpRecognizer", "MedicalLicenseRecognizer", "NameLexiconRecognizer",
        "OfflineEmailRecognizer", "PlaceLexiconRecognizer", "SpacyRecognizer", "UrlRecognizer", "UsSsnRecognizer"]


def test_when_a_site_file_adds_a_pattern_recognizer_then_the_text_deidentifier_replaces_what_it_finds(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _site_file(tmp_path, SITE_MRN, monkeypatch)
    assert Settings().recognizers == path
    out, spans = _configured().deidentify(NOTE, patient="P1")
    assert [(NOTE[s.start:s.end], s.entity_type) for s in spans] == [("XYZ-123456", "MRN")]
    assert "XYZ-123456" not in out and out.startswith("Seen today for follow-up, site number XYZ-")


def test_when_a_site_file_adds_a_pattern_recognizer_then_the_deid_text_command_replaces_what_it_finds(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _site_file(tmp_path, SITE_MRN, monkeypatch)
    monkeypatch.setenv("CLINICAL_MM_KEY", "1d" * 32)
    result = CliRunner().invoke(cli, ["deid", "text", "-", "--format", "json"], input=NOTE + "\n")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output.splitlines()[-1])
    assert "XYZ-123456" not in out["text"]
    assert [(NOTE[s["start"]:s["end"]], s["entity_type"]) for s in out["spans"]] == [("XYZ-123456", "MRN")]


@pytest.mark.parametrize(("name", "note", "phi"), [
    ("UrlRecognizer", "Results posted at https://portal.example.org/r/1 today.", "https://portal.example.org/r/1"),
    ("ClinicalPatternRecognizer", "MRN: 4471234, admitted for pneumonia.", "4471234"),
], ids=["a presidio recognizer", "a clinical recognizer"])
def test_when_a_site_file_disables_a_recognizer_then_it_is_removed_and_finds_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, note: str, phi: str) -> None:
    monkeypatch.delenv("CLINICAL_MM_RECOGNIZERS", raising=False)
    assert (phi, "URL" if name == "UrlRecognizer" else "MRN") in _found(_configured(), note)
    _site_file(tmp_path, f"recognizers:\n  - name: {name}\n    enabled: false\n", monkeypatch)
    deid = _configured()
    assert not any(found == phi for found, _ in _found(deid, note))
    assert name not in {r.name for r in deid.registry.recognizers}


@pytest.mark.parametrize(("text", "message"), [
    ("recognizers:\n  - name: NoSuchRecognizer\n    enabled: false\n", "no recognizer named 'NoSuchRecognizer'"),
    ("recognizers: [1, 2]\n", "expected a list 'recognizers'"),
    ("recognizers:\n  - name: Odd\n    patterns: 3\n", "entry 'Odd'"),
    ("recognizers: [\n", "cannot read it"),
], ids=["unknown name to remove", "entries without names", "an entry presidio cannot build", "not YAML"])
def test_when_a_site_file_is_wrong_then_a_clear_configuration_error_names_the_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, message: str) -> None:
    path = _site_file(tmp_path, text, monkeypatch)
    with pytest.raises(ConfigurationError, match=message) as caught:
        _configured().find(NOTE)
    assert str(path) in str(caught.value)


def _entry_points(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, target: str) -> None:
    (tmp_path / "site_recognizers_plugin.py").write_text(PLUGIN, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    point = importlib.metadata.EntryPoint(name="site-mrn", value=f"site_recognizers_plugin:{target}",
                                          group="clinical_mm.recognizers")
    real = importlib.metadata.entry_points

    def entry_points(**params: str) -> object:
        return [point] if params.get("group") == "clinical_mm.recognizers" else real(**params)

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)


def test_when_a_package_adds_a_recognizer_by_entry_point_then_it_is_registered_and_a_site_file_can_remove_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLINICAL_MM_RECOGNIZERS", raising=False)
    _entry_points(monkeypatch, tmp_path, "SiteMrnRecognizer")
    assert _found(_configured(), NOTE) == [("XYZ-123456", "MRN")]
    _site_file(tmp_path, "recognizers:\n  - name: SiteMrnRecognizer\n    enabled: false\n", monkeypatch)
    assert _found(_configured(), NOTE) == []


@pytest.mark.parametrize(("target", "message"), [
    ("not_a_recognizer", "gave a object, not a presidio EntityRecognizer"),
    ("NoSuchClass", "cannot be loaded"),
], ids=["not a recognizer", "missing"])
def test_when_an_entry_point_gives_no_recognizer_then_a_clear_configuration_error_names_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str, message: str) -> None:
    monkeypatch.delenv("CLINICAL_MM_RECOGNIZERS", raising=False)
    _entry_points(monkeypatch, tmp_path, target)
    with pytest.raises(ConfigurationError, match=message) as caught:
        _configured().find(NOTE)
    assert "site-mrn" in str(caught.value)


def test_when_a_site_vocabulary_names_a_drug_then_deid_text_keeps_it_and_masks_it_without(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the site's vocabulary (CLINICAL_MM_VOCABULARY) reaches the allow-list of every text de-identifier, not only
    # the extractor: a local drug name the models take for a person stays readable for extraction
    note = "Plan: continue Tremlidor, follow up in clinic."
    monkeypatch.delenv("CLINICAL_MM_RECOGNIZERS", raising=False)
    monkeypatch.delenv("CLINICAL_MM_VOCABULARY", raising=False)
    monkeypatch.setenv("CLINICAL_MM_KEY", "1d" * 32)

    def spans() -> list[tuple[str, str]]:
        result = CliRunner().invoke(cli, ["deid", "text", "-", "--format", "json"], input=note + "\n")
        assert result.exit_code == 0, result.output
        return [(note[s["start"]:s["end"]], s["entity_type"]) for s in json.loads(result.output.splitlines()[-1])["spans"]]

    assert ("Tremlidor", "PERSON") in spans()
    vocabulary = tmp_path / "site.tsv"
    vocabulary.write_text("medication\t-\t-\tTremlidor\ttremlidor\n", encoding="utf-8")
    monkeypatch.setenv("CLINICAL_MM_VOCABULARY", str(vocabulary))
    assert spans() == []
