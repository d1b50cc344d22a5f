//! The label values of the collector's metrics, as enums ([`telemetry::label_values!`]): each
//! encodes as its snake_case text in `/metrics` and logs, and lists every value
//! ([`telemetry::LabelValues::ALL`]), so the label sets stay bounded and documented
//! (`docs/metrics.md`; a test checks the reasons against it).

/// Which half of an exchange: `half` of `driftwatch_unpaired_total` (`request`, `response`).
pub use crate::decode::pairing::Half;

telemetry::label_values! {
    /// Where events were read from: `source` of `driftwatch_events_consumed_total`.
    pub enum Source {
        /// A Kafka message.
        Kafka => "kafka",
        /// An HTTP ingest request (`POST /v1/events`, `POST /v1/cloudevents`).
        Http => "http",
    }
}

telemetry::label_values! {
    /// What failed in the Kafka source: `kind` of `driftwatch_source_errors_total`.
    pub enum SourceErrorKind {
        /// The consumer reported an error while polling.
        Consumer => "consumer",
        /// An offset commit failed (it is retried).
        Commit => "commit",
        /// A dead letter could not be queued or written.
        DeadLetter => "dead_letter",
    }
}

telemetry::label_values! {
    /// Why a message or event could not be decoded, validated or admitted: `reason` of
    /// `driftwatch_decode_errors_total`, `driftwatch_events_dead_lettered_total` and
    /// `driftwatch_events_skipped_total`, of the `driftwatch-reason` header of a dead letter, and
    /// (through [`RejectReason`]) of `driftwatch_http_rejected_total`. The texts are the ones
    /// `docs/metrics.md` lists.
    pub enum DecodeReason {
        /// Not valid JSON (or an empty message).
        InvalidJson => "invalid_json",
        /// A required field is missing.
        MissingField => "missing_field",
        /// A field has the wrong type or shape.
        InvalidField => "invalid_field",
        /// `model` is empty or too long.
        InvalidModel => "invalid_model",
        /// A name field (`model_version`, `request_id`, ...) is too long.
        FieldTooLong => "field_too_long",
        /// `confidence` is outside [0, 1] or not finite.
        InvalidConfidence => "invalid_confidence",
        /// `latency_ms` is negative or not finite.
        InvalidLatency => "invalid_latency",
        /// A feature name is empty or reserved.
        InvalidFeatureName => "invalid_feature_name",
        /// A numeric feature value is not finite.
        InvalidFeatureValue => "invalid_feature_value",
        /// More than 10,000 features in one event.
        TooManyFeatures => "too_many_features",
        /// A model without a profile past `admission.max_discovered_models`.
        UnknownModel => "unknown_model",
        /// Not the topic's encoding (binary on a JSON topic, JSON on a protobuf one).
        WrongEncoding => "wrong_encoding",
        /// A half without its partner. Documented in `docs/metrics.md` but given by no decoder
        /// today: expired halves are counted in `driftwatch_unpaired_total{half}`.
        Unpaired => "unpaired",
        /// A Kafka message over `max_message_bytes`.
        TooLarge => "too_large",
    }
}

telemetry::label_values! {
    /// Why an HTTP request was refused: `reason` of `driftwatch_http_rejected_total`. Every
    /// [`DecodeReason`] (with the same text, [`From<DecodeReason>`]) and the refusals before or
    /// after decoding.
    pub enum RejectReason {
        /// [`DecodeReason::InvalidJson`].
        InvalidJson => "invalid_json",
        /// [`DecodeReason::MissingField`].
        MissingField => "missing_field",
        /// [`DecodeReason::InvalidField`].
        InvalidField => "invalid_field",
        /// [`DecodeReason::InvalidModel`].
        InvalidModel => "invalid_model",
        /// [`DecodeReason::FieldTooLong`].
        FieldTooLong => "field_too_long",
        /// [`DecodeReason::InvalidConfidence`].
        InvalidConfidence => "invalid_confidence",
        /// [`DecodeReason::InvalidLatency`].
        InvalidLatency => "invalid_latency",
        /// [`DecodeReason::InvalidFeatureName`].
        InvalidFeatureName => "invalid_feature_name",
        /// [`DecodeReason::InvalidFeatureValue`].
        InvalidFeatureValue => "invalid_feature_value",
        /// [`DecodeReason::TooManyFeatures`].
        TooManyFeatures => "too_many_features",
        /// [`DecodeReason::UnknownModel`].
        UnknownModel => "unknown_model",
        /// [`DecodeReason::WrongEncoding`].
        WrongEncoding => "wrong_encoding",
        /// [`DecodeReason::Unpaired`].
        Unpaired => "unpaired",
        /// The body exceeds `max_body_bytes` (`413`), or [`DecodeReason::TooLarge`].
        TooLarge => "too_large",
        /// Missing or wrong credentials (`401`; ingest and the Alertmanager webhook).
        Unauthorized => "unauthorized",
        /// The body declares a non-JSON `Content-Type` (`415`).
        UnsupportedMediaType => "unsupported_media_type",
        /// The analyzer is behind (`503` with `Retry-After`).
        Backpressure => "backpressure",
        /// The write-ahead log could not be written (`503`).
        NotDurable => "not_durable",
        /// Without the write-ahead log, events the stopping analyzer no longer takes (`503`).
        ShuttingDown => "shutting_down",
    }
}

impl From<DecodeReason> for RejectReason {
    fn from(reason: DecodeReason) -> Self {
        match reason {
            DecodeReason::InvalidJson => Self::InvalidJson,
            DecodeReason::MissingField => Self::MissingField,
            DecodeReason::InvalidField => Self::InvalidField,
            DecodeReason::InvalidModel => Self::InvalidModel,
            DecodeReason::FieldTooLong => Self::FieldTooLong,
            DecodeReason::InvalidConfidence => Self::InvalidConfidence,
            DecodeReason::InvalidLatency => Self::InvalidLatency,
            DecodeReason::InvalidFeatureName => Self::InvalidFeatureName,
            DecodeReason::InvalidFeatureValue => Self::InvalidFeatureValue,
            DecodeReason::TooManyFeatures => Self::TooManyFeatures,
            DecodeReason::UnknownModel => Self::UnknownModel,
            DecodeReason::WrongEncoding => Self::WrongEncoding,
            DecodeReason::Unpaired => Self::Unpaired,
            DecodeReason::TooLarge => Self::TooLarge,
        }
    }
}

#[cfg(test)]
mod tests {
    use telemetry::LabelValues;

    use super::*;

    /// Every decode reason is a rejection reason with the same text, and the extra rejection
    /// reasons are not decode reasons.
    #[test]
    fn decode_reasons_are_rejection_reasons_with_the_same_text() {
        for &r in DecodeReason::ALL {
            assert_eq!(RejectReason::from(r).as_str(), r.as_str());
        }
        let decode: Vec<&str> = DecodeReason::ALL.iter().map(|r| r.as_str()).collect();
        let extra: Vec<&str> = RejectReason::ALL
            .iter()
            .map(|r| r.as_str())
            .filter(|t| !decode.contains(t))
            .collect();
        assert_eq!(
            extra,
            [
                "unauthorized",
                "unsupported_media_type",
                "backpressure",
                "not_durable",
                "shutting_down"
            ]
        );
    }
}
