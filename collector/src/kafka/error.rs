//! The errors starting the Kafka source ([`KafkaError`]).

/// Errors starting the Kafka source.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KafkaError {
    /// librdkafka refused the configuration or the subscription.
    #[error("kafka: {0}")]
    Client(#[from] rdkafka::error::KafkaError),
    /// The configuration is inconsistent.
    #[error("invalid kafka setting `{key}`: {message}")]
    Config {
        /// The setting.
        key: String,
        /// Why.
        message: String,
    },
}
