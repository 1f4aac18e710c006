"""Study sources: files, folders and DICOMDIRs (imported as clinical_mm.connectors)."""
