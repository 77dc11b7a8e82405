-- The patient-and-code index rows (src/rest/search/patient_code.rs) for resources stored before
-- the server wrote them: one token row per distinct (patient, system, code) of a current
-- resource of the listed types — its `patient` rows pointing at a Patient, its `code` rows with
-- a code — under the code 'patient+code', value '{patient id}|{code}'. The types are
-- patient_code::TYPES; the ids are valid FHIR ids, which have no '|'.
INSERT INTO idx_token (resource_type, id, code, system, value, text_norm)
SELECT DISTINCT r.resource_type, r.id, 'patient+code', t.system, r.target_id || '|' || t.value, NULL::text
FROM idx_reference r
JOIN idx_token t ON t.resource_type = r.resource_type AND t.id = r.id AND t.code = 'code'
WHERE r.code = 'patient'
  AND r.target_type = 'Patient'
  AND r.target_id ~ '^[A-Za-z0-9.-]{1,64}$'
  AND t.value IS NOT NULL
  AND r.resource_type IN ('Basic', 'ChargeItem', 'Condition', 'DeviceRequest', 'DiagnosticReport',
      'List', 'MedicationAdministration', 'MedicationDispense', 'MedicationRequest',
      'MedicationStatement', 'Observation', 'Procedure', 'RequestGroup', 'ServiceRequest');
