//! (internal) FHIRPath glue
