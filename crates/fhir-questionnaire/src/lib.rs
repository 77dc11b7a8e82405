//! FHIR R4 Questionnaire and QuestionnaireResponse over plain `serde_json::Value` JSON, for
//! patient-reported outcome measures (PROMs): no HTTP, no database, no clock.
//!
//! * [`validate`]: a QuestionnaireResponse against its Questionnaire (R4
//!   questionnaireresponse.html, "Questionnaire Responses and Questionnaires");
//! * [`score`]: scores defined by the Questionnaire only — `ordinalValue` / SDC `itemWeight`
//!   per answer and SDC `calculatedExpression` items evaluated with FHIRPath (SDC 3.0
//!   "Calculations");
//! * [`score_observation`] / [`item_observations`]: the total score and the observable items
//!   as Observations (US Core PHQ-9 examples' shape);
//! * [`extract`]: SDC Observation-based extraction as a transaction Bundle;
//! * [`populate`]: SDC expression-based population (`initial[x]`, `initialExpression`);
//! * [`trajectory`]: a Goal.achievementStatus from a new score, a target and the instrument's
//!   minimal important difference;
//! * [`library`]: the shipped instruments (PHQ-9, PHQ-2, GAD-7) as SDC Questionnaire JSON,
//!   with their interpretation bands and minimal important difference as data ([`bands`]).
//!
//! Every function returns data and never panics on client data. Decimals (ordinals, weights,
//! calculated values) are carried as their exact decimal text (`String`), never rounded
//! through `f64` unless a caller asks ([`ItemScore::as_f64`]).

mod answers;
pub mod bands;
mod enable;
mod expr;
mod ext;
mod extract;
#[cfg(test)]
mod fixtures;
mod issue;
pub mod library;
mod observation;
mod populate;
mod score;
mod trajectory;
mod validate;

pub use bands::{interpretation, minimal_important_difference, Band};
pub use extract::extract;
pub use issue::{Issue, Severity};
pub use observation::{item_observations, score_observation};
pub use populate::{populate, Populated};
pub use score::{score, ItemScore, ScoreError, Scores};
pub use trajectory::{trajectory, Comparator, GoalTarget, TargetDetail};
pub use validate::validate;
