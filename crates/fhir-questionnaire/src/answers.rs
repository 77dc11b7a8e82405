//! (internal) answers
