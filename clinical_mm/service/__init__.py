"""``clinical-mm serve``: the HTTP API, the DICOM listener, the durable job queue and signed callbacks."""
