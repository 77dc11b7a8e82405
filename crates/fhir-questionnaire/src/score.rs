//! Scoring a QuestionnaireResponse from its Questionnaire alone (nothing per instrument in
//! code): SDC 3.0 "Calculations" (`calculatedExpression`, `variable`), the `ordinalValue`
//! and SDC `itemWeight` extensions, and the SDC `ordinal()` / `weight()` FHIRPath functions.
//!
//! Stub: filled in below the API.

use serde_json::Value;

/// One calculated item's score.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemScore {
    /// The calculated item's linkId.
    pub link_id: String,
    /// The item's first code (`item.code[0]`, a Coding), when it has one.
    pub code: Option<Value>,
    /// The calculated value as exact decimal text (`"12"`, `"3.5"`); `None` when no score is
    /// produced: a required item is unanswered, an item contributing an ordinal is missing,
    /// or the expression yields nothing.
    pub value: Option<String>,
    /// The unit, from the item's `questionnaire-unit` extension (its code, else its display).
    pub unit: Option<String>,
    /// Why there is no value: the linkIds of the missing answers (empty when `value` is set).
    pub missing: Vec<String>,
}

impl ItemScore {
    /// The value as an `f64` (for comparisons; keep [`ItemScore::value`] for storage).
    pub fn as_f64(&self) -> Option<f64> {
        self.value.as_deref().and_then(|v| v.parse().ok())
    }
}

/// The scores of one response.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Scores {
    /// Every calculated item (one with `calculatedExpression`), in Questionnaire order.
    pub items: Vec<ItemScore>,
    /// Every answer that carries an ordinal/weight: (linkId, exact decimal text), in response
    /// order.
    pub answered: Vec<(String, String)>,
    /// Whether every required, enabled item is answered.
    pub complete: bool,
}

impl Scores {
    /// The total: the first top-level calculated item that carries a code (else the first
    /// calculated item with a code at any depth).
    pub fn total(&self) -> Option<&ItemScore> {
        self.items.iter().find(|i| i.code.is_some())
    }
}

/// Why a response could not be scored at all.
#[derive(Debug, Clone, PartialEq)]
pub enum ScoreError {
    /// The first argument is not a Questionnaire, or the second not a QuestionnaireResponse.
    NotAQuestionnaire(&'static str),
    /// The FHIRPath engine could not start.
    Engine(String),
    /// A `calculatedExpression` or `variable` does not compile or evaluate.
    Expression {
        link_id: Option<String>,
        expression: String,
        message: String,
    },
}

impl std::fmt::Display for ScoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScoreError::NotAQuestionnaire(what) => write!(f, "{what}"),
            ScoreError::Engine(m) => write!(f, "FHIRPath engine: {m}"),
            ScoreError::Expression {
                link_id,
                expression,
                message,
            } => match link_id {
                Some(l) => write!(f, "item {l}: expression `{expression}`: {message}"),
                None => write!(f, "expression `{expression}`: {message}"),
            },
        }
    }
}

impl std::error::Error for ScoreError {}

/// Scores `response` with the scoring `questionnaire` defines.
pub fn score(questionnaire: &Value, response: &Value) -> Result<Scores, ScoreError> {
    let _ = (questionnaire, response);
    Ok(Scores::default())
}
