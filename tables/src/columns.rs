//! Turning Arrow columns into the two shapes drift statistics need: `f64` values for numeric
//! features and text categories for categorical ones.

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, StringArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;
pub use types::FeatureKind;

/// The kind a column of this Arrow type is given when nothing is declared (DESIGN.md: bool and
/// string are categorical; numbers are numeric). Returns `None` for types that cannot be features
/// (timestamps, dates, nested types). An all-null column (`Null`) is numeric.
pub fn infer_kind(data_type: &DataType) -> Option<FeatureKind> {
    match data_type {
        DataType::Boolean | DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            Some(FeatureKind::Categorical)
        }
        DataType::Dictionary(_, value) if infer_kind(value) == Some(FeatureKind::Categorical) => {
            Some(FeatureKind::Categorical)
        }
        DataType::Null => Some(FeatureKind::Numeric),
        t if t.is_numeric() => Some(FeatureKind::Numeric),
        _ => None,
    }
}

/// A value that does not parse as a number, at `index` within its array.
#[derive(Debug, Clone, PartialEq)]
pub struct NotANumber {
    /// Position within the array.
    pub index: usize,
    /// The offending text.
    pub value: String,
}

/// Converts a column to `f64` values (nulls stay null).
///
/// Numeric types are cast; text is parsed (surrounding spaces ignored, empty text is null, `NaN`
/// and `inf` are accepted) and the first value that does not parse is returned as the error, so
/// the caller can name its line.
///
/// # Errors
/// [`NotANumber`] for text that is not a number, or (index 0, the type name) for a type that has no
/// numeric reading such as a bool.
pub fn to_f64(array: &ArrayRef) -> Result<Float64Array, NotANumber> {
    match array.data_type() {
        DataType::Float64 => Ok(array.as_primitive().clone()),
        DataType::Null => Ok(Float64Array::new_null(array.len())),
        t if t.is_numeric() => cast(array, &DataType::Float64)
            .map(|a| a.as_primitive().clone())
            .map_err(|e| NotANumber {
                index: 0,
                value: e.to_string(),
            }),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(_, _) => {
            let text = to_text(array).map_err(|e| NotANumber { index: 0, value: e })?;
            let mut out = Vec::with_capacity(text.len());
            for (index, v) in text.iter().enumerate() {
                match v.map(str::trim) {
                    None | Some("") => out.push(None),
                    Some(s) => match s.parse::<f64>() {
                        Ok(x) => out.push(Some(x)),
                        Err(_) => {
                            return Err(NotANumber {
                                index,
                                value: s.to_string(),
                            });
                        }
                    },
                }
            }
            Ok(Float64Array::from(out))
        }
        other => Err(NotANumber {
            index: 0,
            value: format!("<{other} value>"),
        }),
    }
}

/// Converts a column to text categories (nulls stay null). Bools become `"true"`/`"false"`,
/// numbers their decimal text, dictionaries their values.
///
/// # Errors
/// The cast error's message for types arrow cannot render as text.
pub fn to_text(array: &ArrayRef) -> Result<StringArray, String> {
    if let Some(s) = array.as_string_opt::<i32>() {
        return Ok(s.clone());
    }
    if array.data_type() == &DataType::Null {
        return Ok(StringArray::new_null(array.len()));
    }
    cast(array, &DataType::Utf8)
        .map(|a| a.as_string::<i32>().clone())
        .map_err(|e| e.to_string())
}

/// Column names that are not features unless named explicitly: identifiers, event time, the
/// model's identity and outputs, and ground truth.
pub const NON_FEATURE_COLUMNS: &[&str] = &[
    "id",
    "request_id",
    "timestamp",
    "model",
    "model_version",
    "variant",
    "prediction",
    "y_pred",
    "y_pred_proba",
    "confidence",
    "latency_ms",
    "label",
    "target",
    "y_true",
];

/// Why a column is not a feature by default, judged by its name alone: `"identifier"` (`id`,
/// `*_id`, `*Id`, `uuid`, `request_id`), `"model output"` (`prediction*`, `predicted_*`,
/// `y_pred*`, a word `proba`/`probability`, `confidence`, `latency_ms`), `"ground truth"` (`label`, `target`,
/// `*_target`, `y_true`), `"event time or model identity"` (`timestamp`, `model`,
/// `model_version`, `variant`); `None` for any other name. Case-insensitive, except that `*Id`
/// needs the capital (so `paid` and `valid` stay features).
pub fn non_feature_reason(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    let camel_id = name.len() > 2
        && name.ends_with("Id")
        && name[..name.len() - 2]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_lowercase());
    if matches!(lower.as_str(), "id" | "uuid" | "guid" | "request_id")
        || lower.ends_with("_id")
        || camel_id
    {
        Some("identifier")
    } else if lower.starts_with("prediction")
        || lower.starts_with("predicted_")
        || lower.starts_with("y_pred")
        // A `proba`/`probability` word, not `on_probation`.
        || lower
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(|w| matches!(w, "proba" | "probas" | "prob" | "probs" | "probability" | "probabilities"))
        || matches!(lower.as_str(), "confidence" | "latency_ms")
    {
        Some("model output")
    } else if matches!(lower.as_str(), "label" | "target" | "y_true") || lower.ends_with("_target")
    {
        Some("ground truth")
    } else if NON_FEATURE_COLUMNS.contains(&lower.as_str()) {
        Some("event time or model identity")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn non_feature_names_by_rule() {
        let reason = |n| super::non_feature_reason(n);
        for (name, expected) in [
            ("id", Some("identifier")),
            ("PassengerId", Some("identifier")),
            ("customer_id", Some("identifier")),
            ("paid", None),
            ("valid", None),
            ("Id", Some("identifier")),
            ("y_pred_proba_1", Some("model output")),
            ("predicted_probability", Some("model output")),
            ("prediction", Some("model output")),
            ("clf_target", Some("ground truth")),
            ("on_probation", None),
            ("churn_proba", Some("model output")),
            ("timestamp", Some("event time or model identity")),
            ("car_value", None),
            ("Name", None),
        ] {
            assert_eq!(reason(name), expected, "{name}");
        }
    }

    use std::sync::Arc;

    use arrow::array::BooleanArray;

    use super::*;

    #[test]
    fn text_numbers_parse_and_report_the_bad_one() {
        let a: ArrayRef = Arc::new(StringArray::from(vec![
            Some("1.5"),
            None,
            Some(" 2 "),
            Some("x"),
        ]));
        let err = to_f64(&a).unwrap_err();
        assert_eq!(
            err,
            NotANumber {
                index: 3,
                value: "x".into()
            }
        );
    }

    #[test]
    fn bools_are_categories() {
        let a: ArrayRef = Arc::new(BooleanArray::from(vec![Some(true), None, Some(false)]));
        let t = to_text(&a).unwrap();
        assert_eq!(t.value(0), "true");
        assert!(t.is_null(1));
        assert_eq!(t.value(2), "false");
        assert_eq!(infer_kind(a.data_type()), Some(FeatureKind::Categorical));
    }
}
