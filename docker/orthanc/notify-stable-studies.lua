-- Orthanc -> clinical-mm, route 2: when a study becomes stable, tell clinical-mm serve, which pulls it back by
-- DICOMweb (QIDO-RS, WADO-RS against this Orthanc's DICOMweb plugin; serve's CLINICAL_MM_DICOMWEB_URL).
-- Use this script instead of forward-stable-studies.lua (route 1, C-STORE). Set in Orthanc's environment:
--   CLINICALMM_URL      serve's base URL, e.g. http://serve:8000
--   CLINICALMM_API_KEY  an API key of role "pacs" (clinical-mm keys create --role pacs)
-- A POST that fails (serve down) is logged by Orthanc; the study can be pulled later with POST /v1/pulls.
function OnStableStudy(studyId, tags, metadata)
  local url = os.getenv('CLINICALMM_URL')
  local key = os.getenv('CLINICALMM_API_KEY')
  if url == nil or key == nil then
    print('clinical-mm: CLINICALMM_URL or CLINICALMM_API_KEY is not set; study not announced')
    return
  end
  local body = DumpJson({ study_uid = tags['StudyInstanceUID'] }, true)
  local answer = HttpPost(url .. '/v1/pulls', body,
    { ['Authorization'] = 'Bearer ' .. key, ['Content-Type'] = 'application/json' })
  if answer == nil then
    print('clinical-mm: announcing a stable study failed')
  end
end
