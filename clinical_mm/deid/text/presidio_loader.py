"""presidio-analyzer and -anonymizer, imported without Hugging Face transformers or a CUDA probe.

presidio-analyzer imports ``transformers`` at import time for its optional transformers NLP engine (seconds
of start-up) and imports torch to look for a CUDA device. clinical-mm runs presidio with the spaCy engine on
the CPU only, so the first import happens with ``transformers`` unavailable (presidio catches the
ImportError and leaves that engine out) and with ``PRESIDIO_DEVICE=cpu`` unless the environment sets it.
Only presidio's own import is affected: ``transformers`` imports normally afterwards. Every module of
clinical-mm that needs presidio imports it from here. presidio's loggers are set to errors only: it warns
about every recognizer of a language we do not load.
"""

from __future__ import annotations

import logging
import os
import sys

_blocked = "transformers" not in sys.modules
if _blocked:
    sys.modules["transformers"] = None  # type: ignore[assignment]  # "import transformers" raises ImportError
os.environ.setdefault("PRESIDIO_DEVICE", "cpu")
try:
    from presidio_analyzer import (
        AnalysisExplanation,
        AnalyzerEngine,
        EntityRecognizer,
        RecognizerRegistry,
        RecognizerResult,
    )
    from presidio_analyzer.context_aware_enhancers import ContextAwareEnhancer
    from presidio_analyzer.nlp_engine import NlpArtifacts, NlpEngine, NlpEngineProvider
    from presidio_analyzer.predefined_recognizers import EmailRecognizer
    from presidio_analyzer.recognizer_registry.recognizers_loader_utils import RecognizerListLoader
    from presidio_anonymizer import AnonymizerEngine  # it imports presidio-analyzer too
    from presidio_anonymizer.entities import OperatorConfig
    from presidio_anonymizer.entities import RecognizerResult as AnonymizerSpan
finally:
    if _blocked:
        del sys.modules["transformers"]
logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)  # it warns about every non-English recognizer
logging.getLogger("presidio-anonymizer").setLevel(logging.ERROR)

__all__ = ["AnalysisExplanation", "AnalyzerEngine", "AnonymizerEngine", "AnonymizerSpan", "ContextAwareEnhancer", "EmailRecognizer",
           "EntityRecognizer", "NlpArtifacts", "NlpEngine", "NlpEngineProvider", "OperatorConfig",
           "RecognizerListLoader", "RecognizerRegistry", "RecognizerResult"]
