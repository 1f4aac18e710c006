"""The multimodal model: configuration, modules, tokenizer, preprocessing, checkpoints and training.

Importing this package imports torch; ``import clinical_mm`` does not.
"""
