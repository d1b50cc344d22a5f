//! Canary checks: one sample in, one of Pass, Fail, NoData or ProviderError out.
//!
//! The rule that matters most (edge cases E15, E16): an absent, empty, NaN or 0/0 measurement is
//! "no data", never a pass and never a comparison against a threshold. A ratio is compared only
//! when its denominator is a positive finite number.

use crate::crd::CheckSpec;
pub use crate::crd::{CheckMeasurement, CheckOutcome};

/// One measurement handed to the state machine for one check.
#[derive(Debug, Clone, PartialEq)]
pub enum Sample {
    /// A plain value in the check kind's unit (NaN or infinite is no data).
    Value(f64),
    /// `numerator / denominator`, e.g. successful over all canary requests, or canary p95 over
    /// stable p95. A zero or non-finite denominator is no data (0/0 never passes).
    Ratio {
        /// The numerator.
        numerator: f64,
        /// The denominator.
        denominator: f64,
    },
    /// The source answered with nothing, e.g. a PromQL query with an empty result vector. The
    /// text says which query.
    Empty(String),
    /// The source answered this query with an error (bad query, unexpected shape). The text is
    /// the provider's message.
    Error(String),
}

/// Evaluates one check against its sample (`None`: the source had no measurement for it).
pub fn evaluate(check: &CheckSpec, sample: Option<&Sample>) -> CheckMeasurement {
    let result = |outcome, value, message: String| CheckMeasurement {
        name: check.name.clone(),
        outcome,
        value,
        message,
    };
    let value = match sample {
        None => {
            return result(
                CheckOutcome::NoData,
                None,
                format!("no measurement for check {}", check.name),
            );
        }
        Some(Sample::Empty(what)) => {
            return result(
                CheckOutcome::NoData,
                None,
                format!("{what} returned an empty result"),
            );
        }
        Some(Sample::Error(message)) => {
            return result(CheckOutcome::ProviderError, None, message.clone());
        }
        Some(Sample::Ratio {
            numerator,
            denominator,
        }) => {
            if !(denominator.is_finite() && *denominator > 0.0 && numerator.is_finite()) {
                return result(
                    CheckOutcome::NoData,
                    None,
                    format!("ratio {numerator}/{denominator} has no usable denominator"),
                );
            }
            numerator / denominator
        }
        Some(Sample::Value(v)) => *v,
    };
    if !value.is_finite() {
        return result(CheckOutcome::NoData, None, format!("value is {value}"));
    }
    if let Some(min) = check.min
        && value < min
    {
        return result(
            CheckOutcome::Fail,
            Some(value),
            format!("{value} is below min {min}"),
        );
    }
    if let Some(max) = check.max
        && value > max
    {
        return result(
            CheckOutcome::Fail,
            Some(value),
            format!("{value} is above max {max}"),
        );
    }
    result(
        CheckOutcome::Pass,
        Some(value),
        format!("{value} is within bounds"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(min: Option<f64>, max: Option<f64>) -> CheckSpec {
        serde_json::from_value(serde_json::json!({
            "name": "success", "kind": "SuccessRate", "min": min, "max": max
        }))
        .expect("check")
    }

    #[test]
    fn e15_zero_over_zero_is_no_data_not_a_pass() {
        let m = evaluate(
            &check(Some(0.99), None),
            Some(&Sample::Ratio {
                numerator: 0.0,
                denominator: 0.0,
            }),
        );
        assert_eq!(m.outcome, CheckOutcome::NoData);
        assert_eq!(m.value, None);
        assert_eq!(m.message, "ratio 0/0 has no usable denominator");
    }

    #[test]
    fn e16_empty_result_is_no_data_with_the_query_named() {
        let m = evaluate(
            &check(Some(0.99), None),
            Some(&Sample::Empty("query `sum(x)`".into())),
        );
        assert_eq!(m.outcome, CheckOutcome::NoData);
        assert_eq!(m.message, "query `sum(x)` returned an empty result");
        assert_eq!(
            evaluate(&check(Some(0.99), None), None).outcome,
            CheckOutcome::NoData
        );
    }

    #[test]
    fn bounds_are_inclusive_and_nan_is_no_data() {
        let c = check(Some(0.5), Some(1.2));
        assert_eq!(
            evaluate(&c, Some(&Sample::Value(1.2))).outcome,
            CheckOutcome::Pass
        );
        assert_eq!(
            evaluate(&c, Some(&Sample::Value(0.5))).outcome,
            CheckOutcome::Pass
        );
        let high = evaluate(&c, Some(&Sample::Value(1.8)));
        assert_eq!(
            (high.outcome, high.message.as_str()),
            (CheckOutcome::Fail, "1.8 is above max 1.2")
        );
        assert_eq!(
            evaluate(&c, Some(&Sample::Value(0.4))).outcome,
            CheckOutcome::Fail
        );
        assert_eq!(
            evaluate(&c, Some(&Sample::Value(f64::NAN))).outcome,
            CheckOutcome::NoData
        );
        let ratio = evaluate(
            &c,
            Some(&Sample::Ratio {
                numerator: 3.0,
                denominator: 2.0,
            }),
        );
        assert_eq!(
            (ratio.outcome, ratio.value),
            (CheckOutcome::Fail, Some(1.5))
        );
        let err = evaluate(&c, Some(&Sample::Error("bad_data: parse error".into())));
        assert_eq!(err.outcome, CheckOutcome::ProviderError);
    }
}
