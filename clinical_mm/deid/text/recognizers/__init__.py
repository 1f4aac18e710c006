"""The clinical PHI recognizers: presidio ``EntityRecognizer`` classes, one per module, that the text
de-identifier's registry holds (:mod:`clinical_mm.deid.text.recognizer_registry`)."""
