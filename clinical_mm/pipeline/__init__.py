"""The composition layer: the only place that joins stages together.

Study analysis (:mod:`~clinical_mm.pipeline.analysis_pipeline`), note extraction
(:mod:`~clinical_mm.pipeline.note_extraction`), DICOM batch de-identification
(:mod:`~clinical_mm.pipeline.dicom_batch_deidentifier`), the review preview
(:mod:`~clinical_mm.pipeline.study_preview`), the text de-identifier with the extraction vocabulary on its
allow-list (:mod:`~clinical_mm.pipeline.text_deidentification`), and the model's training data and training
run (:mod:`~clinical_mm.pipeline.model_training`). Each takes its collaborators as constructor arguments with
defaults, so tests inject fakes. Nothing is re-exported here: the analysis imports torch, the others need not.
"""
