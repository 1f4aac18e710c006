"""Evaluation and the trainers of the shipped de-identification models, above the CLI (imported as
clinical_mm.evaluation): the ``evaluate-*`` and ``deid train-*`` commands (added to ``clinical-mm`` through the
``clinical_mm.commands`` entry point), the annotated sets they read, and the first-contact check of the blind
note sets. No runtime module imports this package."""
