-- The patient-and-code index rows (src/rest/search/patient_code.rs) for resources stored before
-- the server wrote them: one token row per distinct (patient, system, code) of a current
-- resource of the listed types — its `patient` rows pointing at a Patient, its `code` rows with
-- a code — under the code 'patient+code', value '{patient id}|{code}', numbered after the
-- resource's other token rows. The types are patient_code::TYPES; the ids are valid FHIR ids
-- (GLOB keeps those of the allowed characters, length() bounds them), which have no '|'.
INSERT INTO idx_token (resource_type, id, ord, code, system, value, text_norm)
SELECT p.resource_type, p.id,
       (SELECT max(o.ord) FROM idx_token o WHERE o.resource_type = p.resource_type AND o.id = p.id)
         + row_number() OVER (PARTITION BY p.resource_type, p.id ORDER BY p.system, p.value),
       'patient+code', p.system, p.value, NULL
FROM (
    SELECT DISTINCT r.resource_type, r.id, t.system, r.target_id || '|' || t.value AS value
    FROM idx_reference r
    JOIN idx_token t ON t.resource_type = r.resource_type AND t.id = r.id AND t.code = 'code'
    WHERE r.code = 'patient'
      AND r.target_type = 'Patient'
      AND length(r.target_id) BETWEEN 1 AND 64
      AND r.target_id NOT GLOB '*[^A-Za-z0-9.-]*'
      AND t.value IS NOT NULL
      AND r.resource_type IN ('Basic', 'ChargeItem', 'Condition', 'DeviceRequest', 'DiagnosticReport',
          'List', 'MedicationAdministration', 'MedicationDispense', 'MedicationRequest',
          'MedicationStatement', 'Observation', 'Procedure', 'RequestGroup', 'ServiceRequest')
) p;
