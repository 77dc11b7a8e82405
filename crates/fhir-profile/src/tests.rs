//! Unit tests of the crate internals (FHIR R4 profiling.html).
