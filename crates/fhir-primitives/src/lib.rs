//! The FHIR R4 primitive types, with one meaning each for the whole workspace (FHIR R4
//! datatypes.html "Primitive Types"; search.html#date, #number, #prefix for what they mean in a
//! search). Validation (`fhir-validate`), write-time indexing (`fhir-search-index`), search
//! parsing (`fhir-search-query`) and the server all read primitives through this crate:
//!
//! * [`PartialDateTime`]: a `date`, `dateTime` or `instant` at its [`DateTimePrecision`],
//!   parsed once with [`FromStr`](std::str::FromStr); [`TimeOfDay`] is the `time` type;
//! * [`InstantRange`]: the instants such a value covers (`low_us`..=`high_us`), the same for
//!   an index row and for a search value of the same text;
//! * [`format_instant`] / [`parse_instant_or_date`]: the server's own instants
//!   (`meta.lastUpdated`, `_since`);
//! * [`DecimalPrecision`]: a `decimal`'s grammar and the precision its text carries;
//! * [`formats`]: the lexical checks of every other primitive, and [`PrimitiveType`];
//! * [`ParamType`], [`Prefix`]: the search vocabulary the index and the query share, with the
//!   one table of what a prefix means for two ranges ([`Prefix::range_test`]).
//!
//! No dependencies. The properties that tie index and query together are checked by
//! proptests: `tests/date_time_properties.rs` here, and the server's
//! `rest::search::range_agreement` end to end.

mod calendar;
mod datetime;
mod decimal;
pub mod formats;
mod instant;
mod range;
mod search;

pub use datetime::{DateTimePrecision, ParseDateTimeError, PartialDateTime, TimeOfDay, ZoneOffset};
pub use decimal::{is_decimal, DecimalPrecision};
pub use formats::PrimitiveType;
pub use instant::{format_instant, parse_instant_or_date};
pub use range::InstantRange;
pub use search::{Bounds, Comparison, EndTest, ParamType, Prefix, RangeEnd, RangeTest};
