"""The HTTP API of ``serve``: one router per resource (:mod:`clinical_mm.service.api.routes`), gathered by
:mod:`clinical_mm.service.api.main`."""
