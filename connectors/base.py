"""The connectors' extension point: a source of studies for the analysis pipeline.

:class:`~clinical_mm.connectors.file_source.FileStudySource` is ours (a file, a folder or a DICOMDIR); a site
adds another source (an archive export, a cloud bucket) by writing a class with :meth:`StudySource.studies`
and passing a factory for it to :class:`~clinical_mm.pipeline.analysis_pipeline.AnalysisPipeline`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from clinical_mm.connectors.file_source import SourceStudy

__all__ = ["StudySource"]


class StudySource(Protocol):
    """Lists the studies it holds, each readable on demand (:meth:`SourceStudy.load`)."""

    def studies(self) -> Sequence[SourceStudy]:
        """Every study in a stable order, and one refused item (``error`` set) per unreadable file."""
        ...
