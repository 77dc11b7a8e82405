//! The search vocabulary that the index (`fhir-search-index`), the query parser
//! (`fhir-search-query`) and the store share (FHIR R4 search.html#ptypes "Search Parameter
//! Types" and search.html#prefix "Prefixes"): the type of a search parameter, the
//! comparison prefixes, and what each prefix means for a stored range against a search range.
//!
//! It lives in the primitives crate because that is the one crate all of them depend on, and
//! because a prefix compares the implicit ranges of primitive values ([`crate::InstantRange`],
//! and numbers): the store renders its SQL from [`Prefix::range_test`], so the one table below
//! is what a search does.

/// The type of a search parameter (R4 `search-param-type` value set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParamType {
    Number,
    Date,
    String,
    Token,
    Reference,
    Composite,
    Quantity,
    Uri,
    Special,
}

impl ParamType {
    /// Reads the R4 code (`"token"`, `"date"`, …).
    pub fn from_code(code: &str) -> Option<ParamType> {
        Some(match code {
            "number" => ParamType::Number,
            "date" => ParamType::Date,
            "string" => ParamType::String,
            "token" => ParamType::Token,
            "reference" => ParamType::Reference,
            "composite" => ParamType::Composite,
            "quantity" => ParamType::Quantity,
            "uri" => ParamType::Uri,
            "special" => ParamType::Special,
            _ => return None,
        })
    }

    /// The R4 code of this type.
    pub fn code(self) -> &'static str {
        match self {
            ParamType::Number => "number",
            ParamType::Date => "date",
            ParamType::String => "string",
            ParamType::Token => "token",
            ParamType::Reference => "reference",
            ParamType::Composite => "composite",
            ParamType::Quantity => "quantity",
            ParamType::Uri => "uri",
            ParamType::Special => "special",
        }
    }
}

/// A comparison prefix of a number, date or quantity search value (search.html#prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Prefix {
    #[default]
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    Sa,
    Eb,
    Ap,
}

impl Prefix {
    /// Every prefix.
    pub const ALL: [Prefix; 9] = [
        Prefix::Eq,
        Prefix::Ne,
        Prefix::Gt,
        Prefix::Lt,
        Prefix::Ge,
        Prefix::Le,
        Prefix::Sa,
        Prefix::Eb,
        Prefix::Ap,
    ];

    /// The two-letter code (`eq`, `gt`, …).
    pub fn code(self) -> &'static str {
        match self {
            Prefix::Eq => "eq",
            Prefix::Ne => "ne",
            Prefix::Gt => "gt",
            Prefix::Lt => "lt",
            Prefix::Ge => "ge",
            Prefix::Le => "le",
            Prefix::Sa => "sa",
            Prefix::Eb => "eb",
            Prefix::Ap => "ap",
        }
    }

    /// Reads a two-letter code.
    pub fn from_code(code: &str) -> Option<Prefix> {
        Prefix::ALL.into_iter().find(|p| p.code() == code)
    }

    /// What this prefix asks of a stored range against the search range. With `S` the search
    /// value's range and `T` the stored (target) range:
    ///
    /// | prefix | matches when |
    /// |---|---|
    /// | `eq` | `S` contains `T`: `T.low >= S.low and T.high <= S.high` |
    /// | `ne` | `S` does not contain `T` |
    /// | `gt` | `T` reaches above `S`: `T.high > S.high` |
    /// | `lt` | `T` reaches below `S`: `T.low < S.low` |
    /// | `ge` | `T` reaches `S` or above: `T.high >= S.low` |
    /// | `le` | `T` reaches `S` or below: `T.low <= S.high` |
    /// | `sa` | `T` starts after `S`: `T.low > S.high` |
    /// | `eb` | `T` ends before `S`: `T.high < S.low` |
    /// | `ap` | `T` and `S` overlap (`S` widened by the caller for numbers) |
    pub fn range_test(self) -> RangeTest {
        use Comparison::{Ge, Gt, Le, Lt};
        use RangeEnd::{High, Low};
        const fn stored(stored: RangeEnd, comparison: Comparison, search: RangeEnd) -> EndTest {
            EndTest {
                stored,
                comparison,
                search,
            }
        }
        const EQ: [EndTest; 2] = [stored(Low, Ge, Low), stored(High, Le, High)];
        const NE: [EndTest; 2] = [stored(Low, Lt, Low), stored(High, Gt, High)];
        const GT: [EndTest; 1] = [stored(High, Gt, High)];
        const LT: [EndTest; 1] = [stored(Low, Lt, Low)];
        const GE: [EndTest; 1] = [stored(High, Ge, Low)];
        const LE: [EndTest; 1] = [stored(Low, Le, High)];
        const SA: [EndTest; 1] = [stored(Low, Gt, High)];
        const EB: [EndTest; 1] = [stored(High, Lt, Low)];
        const AP: [EndTest; 2] = [stored(Low, Le, High), stored(High, Ge, Low)];
        match self {
            Prefix::Eq => RangeTest::AllOf(&EQ),
            Prefix::Ne => RangeTest::AnyOf(&NE),
            Prefix::Gt => RangeTest::AllOf(&GT),
            Prefix::Lt => RangeTest::AllOf(&LT),
            Prefix::Ge => RangeTest::AllOf(&GE),
            Prefix::Le => RangeTest::AllOf(&LE),
            Prefix::Sa => RangeTest::AllOf(&SA),
            Prefix::Eb => RangeTest::AllOf(&EB),
            Prefix::Ap => RangeTest::AllOf(&AP),
        }
    }

    /// Whether a stored range matches a search range under this prefix ([`Prefix::range_test`]).
    pub fn matches<T: PartialOrd>(self, stored: Bounds<T>, search: Bounds<T>) -> bool {
        self.range_test().holds(&stored, &search)
    }
}

/// An inclusive range `[low, high]`: a search value's, or an index row's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Bounds<T> {
    pub low: T,
    pub high: T,
}

impl<T> Bounds<T> {
    /// The given end.
    pub fn end(&self, end: RangeEnd) -> &T {
        match end {
            RangeEnd::Low => &self.low,
            RangeEnd::High => &self.high,
        }
    }
}

/// One end of a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RangeEnd {
    Low,
    High,
}

/// An order comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Comparison {
    Lt,
    Le,
    Gt,
    Ge,
}

impl Comparison {
    /// The operator as written in SQL and mathematics (`<`, `<=`, `>`, `>=`).
    pub fn symbol(self) -> &'static str {
        match self {
            Comparison::Lt => "<",
            Comparison::Le => "<=",
            Comparison::Gt => ">",
            Comparison::Ge => ">=",
        }
    }

    /// `left <op> right`.
    pub fn holds<T: PartialOrd>(self, left: &T, right: &T) -> bool {
        match self {
            Comparison::Lt => left < right,
            Comparison::Le => left <= right,
            Comparison::Gt => left > right,
            Comparison::Ge => left >= right,
        }
    }
}

/// `stored.<end> <comparison> search.<end>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EndTest {
    pub stored: RangeEnd,
    pub comparison: Comparison,
    pub search: RangeEnd,
}

impl EndTest {
    pub fn holds<T: PartialOrd>(&self, stored: &Bounds<T>, search: &Bounds<T>) -> bool {
        self.comparison
            .holds(stored.end(self.stored), search.end(self.search))
    }
}

/// What a prefix asks: all of some end tests, or any of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RangeTest {
    AllOf(&'static [EndTest]),
    AnyOf(&'static [EndTest]),
}

impl RangeTest {
    /// The end tests, in the order they are written.
    pub fn end_tests(&self) -> &'static [EndTest] {
        match self {
            RangeTest::AllOf(tests) | RangeTest::AnyOf(tests) => tests,
        }
    }

    pub fn holds<T: PartialOrd>(&self, stored: &Bounds<T>, search: &Bounds<T>) -> bool {
        match self {
            RangeTest::AllOf(tests) => tests.iter().all(|t| t.holds(stored, search)),
            RangeTest::AnyOf(tests) => tests.iter().any(|t| t.holds(stored, search)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for p in Prefix::ALL {
            assert_eq!(Prefix::from_code(p.code()), Some(p));
        }
        assert_eq!(Prefix::from_code("EQ"), None);
        for code in [
            "number",
            "date",
            "string",
            "token",
            "reference",
            "composite",
            "quantity",
            "uri",
            "special",
        ] {
            assert_eq!(ParamType::from_code(code).map(ParamType::code), Some(code));
        }
        assert_eq!(ParamType::from_code("Token"), None);
    }

    #[test]
    fn prefixes_against_ranges() {
        let r = |low, high| Bounds { low, high };
        let search = r(10, 20);
        // (stored range, prefixes that match it)
        let cases: &[(Bounds<i32>, &[Prefix])] = &[
            (r(10, 20), &[Prefix::Eq, Prefix::Ge, Prefix::Le, Prefix::Ap]),
            (r(12, 18), &[Prefix::Eq, Prefix::Ge, Prefix::Le, Prefix::Ap]),
            (r(21, 30), &[Prefix::Ne, Prefix::Gt, Prefix::Ge, Prefix::Sa]),
            (r(0, 9), &[Prefix::Ne, Prefix::Lt, Prefix::Le, Prefix::Eb]),
            (
                r(15, 25),
                &[Prefix::Ne, Prefix::Gt, Prefix::Ge, Prefix::Le, Prefix::Ap],
            ),
            (
                r(5, 25),
                &[
                    Prefix::Ne,
                    Prefix::Gt,
                    Prefix::Lt,
                    Prefix::Ge,
                    Prefix::Le,
                    Prefix::Ap,
                ],
            ),
        ];
        for (stored, expected) in cases {
            let matching: Vec<Prefix> = Prefix::ALL
                .into_iter()
                .filter(|p| p.matches(*stored, search))
                .collect();
            assert_eq!(&matching, expected, "{stored:?}");
        }
    }
}
