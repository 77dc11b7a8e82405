//! A Goal's achievement status from a new score (R4 goal.html, Goal.achievementStatus with the
//! goal-achievement code system `http://terminology.hl7.org/CodeSystem/goal-achievement`),
//! comparing it with the Goal's target and, when the target is not met, with the previous
//! score using the instrument's minimal important difference (MID).
//!
//! Rules:
//! * `achieved`: the new score meets the target. `detailQuantity` with a comparator (`<`,
//!   `<=`, `>`, `>=`) is met when the score compares so with the value; without a comparator
//!   (and for `detailInteger`) the target is a value to reach: met at the value or beyond it
//!   in the better direction; `detailRange` is met inside `low..=high` (a missing bound is
//!   open).
//! * else `in-progress` when there is no previous score;
//! * else `improving` when the score moved by at least the MID in the better direction,
//!   `worsening` when it moved by at least the MID the other way, `no-change` otherwise.
//!   Without a MID any change counts.
//!
//! Direction: the caller says whether lower is better (PHQ-9, GAD-7: yes). It can be inferred
//! from the target with [`GoalTarget::lower_is_better`]: a `<` / `<=` comparator, or a range
//! with a high bound and no low bound (or a low bound of 0), means lower is better; `>` /
//! `>=`, or a range with only a low bound, means higher is better.

use serde_json::Value;

/// A `detailQuantity` comparator (R4 quantity-comparator).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparator {
    Lt,
    Le,
    Gt,
    Ge,
}

impl Comparator {
    fn parse(code: &str) -> Option<Comparator> {
        match code {
            "<" => Some(Comparator::Lt),
            "<=" => Some(Comparator::Le),
            ">" => Some(Comparator::Gt),
            ">=" => Some(Comparator::Ge),
            _ => None,
        }
    }
}

/// The target's detail[x] this crate understands.
#[derive(Debug, Clone, PartialEq)]
pub enum TargetDetail {
    /// `detailQuantity` (its value and comparator; the unit is not checked).
    Quantity {
        value: f64,
        comparator: Option<Comparator>,
    },
    /// `detailRange` (`low.value`, `high.value`).
    Range { low: Option<f64>, high: Option<f64> },
    /// `detailInteger`.
    Integer(i64),
}

/// One Goal.target: what is measured and the value to reach.
#[derive(Debug, Clone, PartialEq)]
pub struct GoalTarget {
    /// `target.measure` (a CodeableConcept), when present.
    pub measure: Option<Value>,
    pub detail: TargetDetail,
}

fn number(v: Option<&Value>) -> Option<f64> {
    v.and_then(Value::as_f64)
}

impl GoalTarget {
    /// Parses a Goal.target element; `None` when it has no numeric detail (detailQuantity with
    /// a value, detailRange with a bound, detailInteger).
    pub fn from_goal_target(target: &Value) -> Option<GoalTarget> {
        let measure = target.get("measure").cloned();
        let detail = if let Some(q) = target.get("detailQuantity") {
            let comparator = match q.get("comparator").and_then(Value::as_str) {
                Some(c) => Some(Comparator::parse(c)?),
                None => None,
            };
            TargetDetail::Quantity {
                value: number(q.get("value"))?,
                comparator,
            }
        } else if let Some(r) = target.get("detailRange") {
            let low = number(r.get("low").and_then(|l| l.get("value")));
            let high = number(r.get("high").and_then(|h| h.get("value")));
            if low.is_none() && high.is_none() {
                return None;
            }
            TargetDetail::Range { low, high }
        } else {
            TargetDetail::Integer(target.get("detailInteger")?.as_i64()?)
        };
        Some(GoalTarget { measure, detail })
    }

    /// Whether lower scores are better, as far as the target says (see the module doc).
    pub fn lower_is_better(&self) -> Option<bool> {
        match &self.detail {
            TargetDetail::Quantity {
                comparator: Some(Comparator::Lt | Comparator::Le),
                ..
            } => Some(true),
            TargetDetail::Quantity {
                comparator: Some(Comparator::Gt | Comparator::Ge),
                ..
            } => Some(false),
            TargetDetail::Range { low, high: Some(_) } if low.is_none_or(|l| l == 0.0) => {
                Some(true)
            }
            TargetDetail::Range {
                low: Some(_),
                high: None,
            } => Some(false),
            _ => None,
        }
    }

    /// Whether `score` meets the target (see the module doc).
    pub fn is_met(&self, score: f64, lower_is_better: bool) -> bool {
        let reach = |value: f64| {
            if lower_is_better {
                score <= value
            } else {
                score >= value
            }
        };
        match &self.detail {
            TargetDetail::Quantity { value, comparator } => match comparator {
                Some(Comparator::Lt) => score < *value,
                Some(Comparator::Le) => score <= *value,
                Some(Comparator::Gt) => score > *value,
                Some(Comparator::Ge) => score >= *value,
                None => reach(*value),
            },
            TargetDetail::Range { low, high } => {
                low.is_none_or(|l| score >= l) && high.is_none_or(|h| score <= h)
            }
            TargetDetail::Integer(value) => reach(*value as f64),
        }
    }
}

/// The goal-achievement code for a `new` score (see the module doc for the rules).
pub fn trajectory(
    previous: Option<f64>,
    new: f64,
    target: &GoalTarget,
    mid: Option<f64>,
    lower_is_better: bool,
) -> &'static str {
    if target.is_met(new, lower_is_better) {
        return "achieved";
    }
    let Some(previous) = previous else {
        return "in-progress";
    };
    let gain = if lower_is_better {
        previous - new
    } else {
        new - previous
    };
    // A tolerance for decimal scores carried as f64 (0.1 + 0.2 must reach a MID of 0.3).
    const EPSILON: f64 = 1e-9;
    let mid = mid.map_or(0.0, f64::abs);
    if gain > EPSILON && gain + EPSILON >= mid {
        "improving"
    } else if -gain > EPSILON && -gain + EPSILON >= mid {
        "worsening"
    } else {
        "no-change"
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn phq9_below_5() -> GoalTarget {
        GoalTarget::from_goal_target(&json!({
            "measure": {"coding": [{"system": "http://loinc.org", "code": "44261-6"}]},
            "detailQuantity": {"value": 5, "comparator": "<", "unit": "{score}"}
        }))
        .unwrap()
    }

    #[test]
    fn parses_targets_and_infers_direction() {
        let t = phq9_below_5();
        assert_eq!(
            t.detail,
            TargetDetail::Quantity {
                value: 5.0,
                comparator: Some(Comparator::Lt)
            }
        );
        assert_eq!(t.lower_is_better(), Some(true));
        assert!(t.measure.is_some());
        let range = GoalTarget::from_goal_target(&json!({
            "detailRange": {"low": {"value": 0}, "high": {"value": 4}}
        }))
        .unwrap();
        assert_eq!(range.lower_is_better(), Some(true));
        let above = GoalTarget::from_goal_target(&json!({
            "detailQuantity": {"value": 40, "comparator": ">="}
        }))
        .unwrap();
        assert_eq!(above.lower_is_better(), Some(false));
        let integer = GoalTarget::from_goal_target(&json!({"detailInteger": 3})).unwrap();
        assert_eq!(integer.detail, TargetDetail::Integer(3));
        assert_eq!(integer.lower_is_better(), None);
        // Nothing numeric, or a comparator that is not one.
        assert_eq!(
            GoalTarget::from_goal_target(&json!({"detailString": "less"})),
            None
        );
        assert_eq!(
            GoalTarget::from_goal_target(
                &json!({"detailQuantity": {"value": 1, "comparator": "ad"}})
            ),
            None
        );
        assert_eq!(
            GoalTarget::from_goal_target(&json!({"detailRange": {}})),
            None
        );
    }

    #[test]
    fn a_series_of_phq9_scores() {
        // (previous, new) → status, with a PHQ-9 target "< 5" and MID 5.
        let target = phq9_below_5();
        let table: &[(Option<f64>, f64, &str)] = &[
            (None, 14.0, "in-progress"),
            (Some(14.0), 19.0, "worsening"),
            (Some(19.0), 12.0, "improving"),
            (Some(12.0), 10.0, "no-change"),
            (Some(10.0), 13.0, "no-change"),
            (Some(13.0), 8.0, "improving"),
            (Some(8.0), 4.0, "achieved"),
            (None, 3.0, "achieved"),
            (Some(4.0), 5.0, "no-change"),
        ];
        for (previous, new, expected) in table {
            assert_eq!(
                trajectory(*previous, *new, &target, Some(5.0), true),
                *expected,
                "{previous:?} → {new}"
            );
        }
    }

    #[test]
    fn ranges_without_mid_and_higher_is_better() {
        let range = GoalTarget::from_goal_target(&json!({
            "detailRange": {"low": {"value": 0}, "high": {"value": 4}}
        }))
        .unwrap();
        assert_eq!(trajectory(Some(9.0), 4.0, &range, None, true), "achieved");
        assert_eq!(trajectory(Some(9.0), 8.0, &range, None, true), "improving");
        assert_eq!(trajectory(Some(9.0), 9.0, &range, None, true), "no-change");
        assert_eq!(trajectory(Some(9.0), 10.0, &range, None, true), "worsening");
        // Higher is better, target "reach 40" (no comparator).
        let reach =
            GoalTarget::from_goal_target(&json!({"detailQuantity": {"value": 40}})).unwrap();
        assert_eq!(
            trajectory(Some(30.0), 41.0, &reach, Some(3.0), false),
            "achieved"
        );
        assert_eq!(
            trajectory(Some(30.0), 34.0, &reach, Some(3.0), false),
            "improving"
        );
        assert_eq!(
            trajectory(Some(30.0), 28.0, &reach, Some(3.0), false),
            "no-change"
        );
        assert_eq!(
            trajectory(Some(30.0), 26.0, &reach, Some(3.0), false),
            "worsening"
        );
        // Decimal scores: a change of exactly the MID counts.
        assert_eq!(
            trajectory(Some(0.3), 0.0, &range_hi(), Some(0.3), true),
            "improving"
        );
    }

    fn range_hi() -> GoalTarget {
        GoalTarget::from_goal_target(&json!({"detailRange": {"high": {"value": -1}}})).unwrap()
    }
}
