"""The text de-identifier's PHI recognizers, held in presidio's ``RecognizerRegistry`` and open to a site.

The registry holds presidio's predefined recognizers the de-identifier runs (:data:`PRESIDIO_RECOGNIZERS`,
spaCy's NER among them), the offline e-mail recognizer and the clinical recognizers
(:mod:`clinical_mm.deid.text.recognizers`). A site changes it by configuration alone:

- a recognizer file, named by ``CLINICAL_MM_RECOGNIZERS``, in presidio's YAML form
  (``presidio_analyzer/conf/default_recognizers.yaml``, ``example_recognizers.yaml``): each entry adds a
  recognizer (``type: custom``, the default: patterns or a deny list; ``type: predefined``: a presidio
  predefined recognizer by class name), and an entry with ``enabled: false`` removes the recognizer of that
  name (:func:`add_site_recognizers`);
- installed packages, through the entry-point group ``clinical_mm.recognizers``: each entry point a
  presidio ``EntityRecognizer`` class or a factory called without arguments
  (:func:`add_entry_point_recognizers`).

Entry points are added first, then the file is applied, so the file can remove what a package added.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from clinical_mm.core.errors import ConfigurationError
from clinical_mm.core.registry import load_entry_points
from clinical_mm.deid.text.presidio_loader import (
    EntityRecognizer,
    NlpEngine,
    RecognizerListLoader,
    RecognizerRegistry,
)
from clinical_mm.deid.text.recognizers.clinical_pattern_recognizer import ClinicalPatternRecognizer
from clinical_mm.deid.text.recognizers.cue_recognizer import CueRecognizer
from clinical_mm.deid.text.recognizers.name_lexicon_recognizer import NameLexiconRecognizer
from clinical_mm.deid.text.recognizers.offline_email_recognizer import OfflineEmailRecognizer
from clinical_mm.deid.text.recognizers.place_lexicon_recognizer import PlaceLexiconRecognizer

__all__ = ["ENTRY_POINT_GROUP", "PRESIDIO_RECOGNIZERS", "add_entry_point_recognizers", "add_site_recognizers",
           "clinical_registry"]

#: presidio's predefined recognizers the de-identifier runs: spaCy's NER and the patterns of identifiers notes
#: hold. presidio's phone and date recognizers give way to the clinical patterns (the phone one parses every
#: digit run, a third of the run time), its e-mail one to :class:`OfflineEmailRecognizer`; the others find
#: types that are no PHI in notes (bank, crypto and card numbers) or other countries' identifiers.
PRESIDIO_RECOGNIZERS = ("SpacyRecognizer", "UsSsnRecognizer", "UrlRecognizer", "IpRecognizer",
                        "MedicalLicenseRecognizer")
#: the entry-point group of recognizers that installed packages add
ENTRY_POINT_GROUP = "clinical_mm.recognizers"


def clinical_registry(nlp_engine: NlpEngine, site_file: Path | None = None) -> RecognizerRegistry:
    """The de-identifier's recognizers: presidio's of :data:`PRESIDIO_RECOGNIZERS` (built as presidio builds
    its predefined ones, spaCy's for ``nlp_engine``), the offline e-mail recognizer, the clinical ones, then
    those of the entry points and the changes of ``site_file``."""
    registry = RecognizerRegistry()  # English, presidio's regular-expression flags
    registry.load_predefined_recognizers(nlp_engine=nlp_engine)
    registry.recognizers = [r for r in registry.recognizers if _name(r) in PRESIDIO_RECOGNIZERS]
    for recognizer in (OfflineEmailRecognizer(), ClinicalPatternRecognizer(), CueRecognizer(), NameLexiconRecognizer(),
                       PlaceLexiconRecognizer()):
        registry.add_recognizer(recognizer)
    add_entry_point_recognizers(registry)
    if site_file is not None:
        add_site_recognizers(registry, site_file)
    return registry


def add_entry_point_recognizers(registry: RecognizerRegistry) -> None:
    """Add the recognizer of each entry point of :data:`ENTRY_POINT_GROUP` (in the order of their names)."""
    for name, factory in load_entry_points(ENTRY_POINT_GROUP):
        where = f"entry point {name} of {ENTRY_POINT_GROUP}"
        try:
            recognizer = factory() if callable(factory) else factory
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"{where}: cannot make its recognizer ({type(exc).__name__}: {exc})") from None
        if not isinstance(recognizer, EntityRecognizer):
            raise ConfigurationError(f"{where}: gave a {type(recognizer).__name__}, not a presidio EntityRecognizer")
        registry.add_recognizer(recognizer)


def add_site_recognizers(registry: RecognizerRegistry, path: Path) -> None:
    """Apply a site's recognizer file (presidio's YAML form, a list ``recognizers``): an entry with
    ``enabled: false`` removes the registry's recognizers of its ``name``; every other entry is added, built by
    presidio's loader. A name to remove that no recognizer has is refused, so a typing error is not silent."""
    entries, flags = _read_site_file(path)
    for entry in entries:
        if entry.get("enabled", True) is False:
            if not any(_name(r) == entry["name"] for r in registry.recognizers):
                have = ", ".join(sorted({_name(r) for r in registry.recognizers}))
                raise ConfigurationError(f"recognizer file {path}: no recognizer named {entry['name']!r} to remove "
                                         f"(the registry has {have})")
            registry.remove_recognizer(entry["name"])
    for entry in entries:
        if entry.get("enabled", True) is False:
            continue
        try:
            made = RecognizerListLoader.get(cast(Any, [entry]), registry.supported_languages,
                                            cast(int, registry.global_regex_flags if flags is None else flags))
        except Exception as exc:  # presidio's loader raises its own errors, ValueError, TypeError and KeyError
            raise ConfigurationError(f"recognizer file {path}: entry {entry['name']!r}: {type(exc).__name__}: {exc}") \
                from None
        for recognizer in made:
            registry.add_recognizer(recognizer)


def _name(recognizer: Any) -> str:
    """A recognizer's name (presidio leaves the attribute untyped)."""
    return str(recognizer.name)


def _read_site_file(path: Path) -> tuple[list[dict[str, Any]], int | None]:
    """The entries of a recognizer file and its ``global_regex_flags`` (None when it sets none)."""
    import yaml

    try:
        conf = yaml.safe_load(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigurationError(f"recognizer file {path}: cannot read it ({type(exc).__name__})") from None
    entries = conf.get("recognizers") if isinstance(conf, dict) else None
    if not isinstance(entries, list) or not all(isinstance(e, dict) and isinstance(e.get("name"), str)
                                                for e in entries):
        raise ConfigurationError(f"recognizer file {path}: expected a list 'recognizers' of entries, each with a name")
    flags = conf.get("global_regex_flags")
    if flags is not None and not isinstance(flags, int):
        raise ConfigurationError(f"recognizer file {path}: global_regex_flags must be an integer")
    return entries, flags
