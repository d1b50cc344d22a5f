//! The label values of the collector's metrics, as enums ([`telemetry::label_values!`]): each
//! encodes as its snake_case text in `/metrics` and logs, and lists every value
//! ([`telemetry::LabelValues::ALL`]), so the label sets stay bounded and documented
//! (`docs/metrics.md`; a test checks the reasons against it).

/// Which half of an exchange: `half` of `driftwatch_unpaired_total` (`request`, `response`).
pub use crate::decode::pairing::Half;

use telemetry::LabelValues;

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
    /// Why an HTTP request was refused before or after decoding, for reasons that are not a
    /// [`DecodeReason`].
    pub enum Refusal {
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

/// Why an HTTP request was refused: `reason` of `driftwatch_http_rejected_total`, either a
/// [`DecodeReason`] (a body over `max_body_bytes`, `413`, is [`DecodeReason::TooLarge`]) or a
/// [`Refusal`]. Encodes as the inner value's text, so the two sets share one label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    /// The body, or an event in it, could not be decoded or validated.
    Decode(DecodeReason),
    /// Refused for another reason.
    Refused(Refusal),
}

impl RejectReason {
    /// The text of the label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Decode(r) => r.as_str(),
            Self::Refused(r) => r.as_str(),
        }
    }

    /// Every value: the decode reasons, then the refusals.
    pub fn all() -> impl Iterator<Item = RejectReason> {
        DecodeReason::ALL
            .iter()
            .map(|&r| Self::Decode(r))
            .chain(Refusal::ALL.iter().map(|&r| Self::Refused(r)))
    }
}

impl From<DecodeReason> for RejectReason {
    fn from(reason: DecodeReason) -> Self {
        Self::Decode(reason)
    }
}

impl From<Refusal> for RejectReason {
    fn from(reason: Refusal) -> Self {
        Self::Refused(reason)
    }
}

impl std::fmt::Display for RejectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl telemetry::prometheus_client::encoding::EncodeLabelValue for RejectReason {
    fn encode(
        &self,
        encoder: &mut telemetry::prometheus_client::encoding::LabelValueEncoder<'_>,
    ) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The decode reasons and the refusals never share a text: one label value, one meaning.
    #[test]
    fn rejection_reasons_are_distinct_texts() {
        let texts: std::collections::BTreeSet<&str> =
            RejectReason::all().map(RejectReason::as_str).collect();
        assert_eq!(texts.len(), DecodeReason::ALL.len() + Refusal::ALL.len());
        assert_eq!(
            RejectReason::from(DecodeReason::TooLarge).to_string(),
            "too_large"
        );
        assert_eq!(
            RejectReason::from(Refusal::ShuttingDown).to_string(),
            "shutting_down"
        );
    }
}
