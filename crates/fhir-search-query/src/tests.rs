//! Parse-level tests (placeholder).
