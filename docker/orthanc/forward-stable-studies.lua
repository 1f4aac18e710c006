-- Orthanc -> clinical-mm, route 1: when a study becomes stable (no new instance for StableAge seconds),
-- forward it by C-STORE to the modality named "clinicalmm" in Orthanc's DicomModalities (clinical-mm serve's
-- DICOM listener, whose --allow-aet must list Orthanc's DicomAet). The send runs as an Orthanc job: a
-- failed one (serve down) is listed under /jobs and can be resubmitted with POST /jobs/{id}/resubmit.
-- (Orthanc 1.10's Lua SendToModality() cannot read attachments stored by this build; the REST route can.)
function OnStableStudy(studyId, tags, metadata)
  RestApiPost('/modalities/clinicalmm/store', '{"Resources": ["' .. studyId .. '"], "Asynchronous": true}')
end
