"""De-identification of clinical free text (:mod:`clinical_mm.deid.text.text_deidentifier`): presidio's
analyzer and the clinical recognizers of a configurable registry, the name-likeness model and the context
tagger, over the word lists of :mod:`clinical_mm.deid.text.lexicons`. Nothing is re-exported here: the
recognizers import presidio, which loads spaCy."""
