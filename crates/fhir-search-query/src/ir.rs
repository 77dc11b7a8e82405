//! The intermediate representation of a parsed FHIR R4 search request
//! (search.html §3.1.1 "Search Parameters" and §3.1.1.5 "Modifying search
//! results"). Pure data: no SQL, no HTTP. Every type derives `Eq`; numbers and
//! dates keep their exact source text so no precision is lost.

use fhir_primitives::{ParamType, PartialDateTime, Prefix};

/// A whole search: filters (ANDed), result parameters, and what was ignored.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SearchRequest {
    pub resource_type: String,
    /// ANDed; each repetition of a parameter is its own filter.
    pub filters: Vec<Filter>,
    /// `_sort` keys, in priority order.
    pub sort: Vec<SortKey>,
    /// `_count` as given (the caller clamps it).
    pub count: Option<u32>,
    /// `_page`: an opaque cursor the server produced for a next/previous link.
    pub cursor: Option<String>,
    pub include: Vec<Include>,
    pub revinclude: Vec<Include>,
    pub summary: Option<Summary>,
    /// `_elements` names, in the order given.
    pub elements: Option<Vec<String>>,
    pub total: Option<TotalMode>,
    pub contained: Option<ContainedMode>,
    pub contained_type: Option<ContainedType>,
    /// Parameters that were not applied (unknown, unsupported, or empty).
    pub unknown: Vec<Ignored>,
}

/// A parameter that was not applied to the search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored {
    /// The parameter name as sent (including modifiers / chains).
    pub name: String,
    /// The value as sent.
    pub value: String,
    pub reason: IgnoredReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IgnoredReason {
    /// No such parameter for the resource type (or for a chained/`_has` type).
    Unknown,
    /// A parameter the registry knows but this parser cannot apply
    /// (type `special`, or a known-but-unimplemented control parameter such
    /// as `_text`, `_content`, `_list`, `_query`, `_filter`).
    Unsupported,
    /// An empty value (`name=`): R4 says such parameters are ignored.
    EmptyValue,
}

impl IgnoredReason {
    pub fn as_str(self) -> &'static str {
        match self {
            IgnoredReason::Unknown => "unknown parameter",
            IgnoredReason::Unsupported => "unsupported parameter",
            IgnoredReason::EmptyValue => "empty value ignored",
        }
    }
}

/// One search parameter occurrence: the values are ORed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub param: ParamRef,
    pub values: Vec<Value>,
}

/// What a parameter name refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamRef {
    /// A parameter of the current resource type, with an optional modifier.
    Direct {
        code: String,
        param_type: ParamType,
        modifier: Option<Modifier>,
    },
    /// `code[:Type].then`: `code` is a reference parameter of the current
    /// type; `then` applies to the referenced resource of `target_type`.
    Chain {
        code: String,
        /// Always resolved: the explicit `:Type`, or the single target type
        /// of the reference parameter.
        target_type: String,
        then: Box<ParamRef>,
    },
    /// `_has:Type:reference_param:then`: resources of `target_type` whose
    /// `reference_param` points to the current resource and match `then`.
    Has {
        target_type: String,
        reference_param: String,
        then: Box<ParamRef>,
    },
}

impl ParamRef {
    /// The innermost direct parameter (what the values are parsed against).
    pub fn leaf(&self) -> &ParamRef {
        match self {
            ParamRef::Direct { .. } => self,
            ParamRef::Chain { then, .. } | ParamRef::Has { then, .. } => then.leaf(),
        }
    }
}

/// Supported search modifiers (R4 search.html §3.1.1.5 table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Modifier {
    /// all types; values are [`Value::Missing`]
    Missing,
    /// string
    Exact,
    /// string
    Contains,
    /// token: values are [`Value::String`] (matched against display text)
    Text,
    /// token
    Not,
    /// token (identifier type): values are [`Value::OfType`]
    OfType,
    /// reference: values are [`Value::Token`] (an Identifier)
    Identifier,
    /// uri
    Above,
    /// uri
    Below,
    /// reference `:Type` (e.g. `subject:Patient=123`)
    Type(String),
}

impl Modifier {
    /// The modifier as written after the `:`.
    pub fn as_str(&self) -> &str {
        match self {
            Modifier::Missing => "missing",
            Modifier::Exact => "exact",
            Modifier::Contains => "contains",
            Modifier::Text => "text",
            Modifier::Not => "not",
            Modifier::OfType => "of-type",
            Modifier::Identifier => "identifier",
            Modifier::Above => "above",
            Modifier::Below => "below",
            Modifier::Type(t) => t,
        }
    }
}

/// One (ORed) value of a filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `:missing=true|false`
    Missing(bool),
    /// string values (unescaped, not folded) and token `:text`
    String(String),
    Token(TokenValue),
    /// token `:of-type`: `system|code|value`
    OfType {
        system: String,
        code: String,
        value: String,
    },
    Date(DateValue),
    Number(NumberValue),
    Quantity(QuantityValue),
    Reference(ReferenceValue),
    Uri(String),
    /// composite: one value per component, in component order
    Composite(Vec<Value>),
}

/// The system part of a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSystem {
    /// `code`: any system (or none)
    Any,
    /// `|code`: the coding/identifier has no system
    NoSystem,
    /// `system|code` or `system|`
    Is(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenValue {
    pub system: TokenSystem,
    /// `None` for `system|` (any code in the system).
    pub code: Option<String>,
}

/// A date/dateTime/instant search value (search.html#date).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateValue {
    pub prefix: Prefix,
    /// The date text exactly as given, without the prefix.
    pub raw: String,
    /// The value read from `raw`: its precision, fields and zone (a time may have none: the
    /// executor reads it in the server zone). Its `range` is the one an index row of the same
    /// text holds.
    pub date: PartialDateTime,
}

/// A decimal search value, kept as text (search.html "number").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberValue {
    pub prefix: Prefix,
    /// The number exactly as given, without the prefix (e.g. `100`, `1.50`, `1e2`).
    pub raw: String,
    /// Count of significant digits in the mantissa (leading zeros excluded;
    /// `0` and `0.0` count their zeros after the first, min 1).
    pub significant_digits: u32,
    /// Power of ten of the last given digit: `100` → 0, `100.00` → -2,
    /// `1e2` → 2, `1.5e2` → 1. The implicit range for `eq` is
    /// value ± 0.5 × 10^scale (R4: `100` means [99.5, 100.5)).
    pub scale: i32,
}

/// A quantity search value: `[prefix]number[|system|code]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuantityValue {
    pub number: NumberValue,
    /// `None` for `number` and `number||code`.
    pub system: Option<String>,
    /// `None` for a bare `number`.
    pub code: Option<String>,
}

/// A reference search value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReferenceValue {
    /// A bare logical id (`123`); with a `:Type` modifier the type is on the
    /// modifier.
    Id(String),
    /// `Type/id` or `Type/id/_history/vid` (Type checked against the registry).
    Typed {
        resource_type: String,
        id: String,
        version: Option<String>,
    },
    /// An absolute URL or URN (`http://…/Patient/123`, canonicals with
    /// `|version`). `resource_type`/`id` are filled when the URL ends in
    /// `/{ResourceType}/{id}` (optionally followed by `/_history/{vid}`).
    Url {
        url: String,
        resource_type: Option<String>,
        id: Option<String>,
    },
}

/// `_sort` key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    pub code: String,
    pub param_type: ParamType,
    pub descending: bool,
}

/// `_include` / `_revinclude` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Include {
    /// `None` for the bare wildcard `*`.
    pub source_type: Option<String>,
    /// `None` for `*` / `Type:*` (every reference parameter).
    pub param: Option<String>,
    pub target_type: Option<String>,
    /// `:iterate` (or the legacy `:recurse`).
    pub iterate: bool,
}

/// `_summary`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Summary {
    True,
    Text,
    Data,
    Count,
    False,
}

impl Summary {
    pub fn as_str(self) -> &'static str {
        match self {
            Summary::True => "true",
            Summary::Text => "text",
            Summary::Data => "data",
            Summary::Count => "count",
            Summary::False => "false",
        }
    }
}

/// `_total`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotalMode {
    None,
    Estimate,
    Accurate,
}

impl TotalMode {
    pub fn as_str(self) -> &'static str {
        match self {
            TotalMode::None => "none",
            TotalMode::Estimate => "estimate",
            TotalMode::Accurate => "accurate",
        }
    }
}

/// `_contained`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainedMode {
    False,
    True,
    Both,
}

impl ContainedMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ContainedMode::False => "false",
            ContainedMode::True => "true",
            ContainedMode::Both => "both",
        }
    }
}

/// `_containedType`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainedType {
    Container,
    Contained,
}

impl ContainedType {
    pub fn as_str(self) -> &'static str {
        match self {
            ContainedType::Container => "container",
            ContainedType::Contained => "contained",
        }
    }
}
