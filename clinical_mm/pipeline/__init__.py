"""The composition layer: the only place that joins stages together.

Study analysis (:mod:`~clinical_mm.pipeline.analysis`), note extraction (:mod:`~clinical_mm.pipeline.notes`), DICOM batch
de-identification (:mod:`~clinical_mm.pipeline.dicom_batch`), the review preview
(:mod:`~clinical_mm.pipeline.preview`) and the training data of the model (:mod:`~clinical_mm.pipeline.training_data`).
Each takes its collaborators as constructor arguments with defaults, so tests inject fakes. Nothing is
re-exported here: the analysis imports torch, the other compositions need not.
"""
