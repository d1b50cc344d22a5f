//! The librdkafka client configurations of the consumer, the dead-letter producer and the admin
//! client: the fixed properties of each, then the `client` pass-through settings (TLS, SASL).

use rdkafka::config::ClientConfig;

use super::config::KafkaConfig;

/// The consumer's configuration: manual offsets (no auto-commit, no auto-store).
pub(super) fn consumer(config: &KafkaConfig) -> ClientConfig {
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", &config.brokers)
        .set("group.id", &config.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", &config.auto_offset_reset)
        .set("partition.assignment.strategy", "range,roundrobin")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "1000");
    for (k, v) in &config.client {
        client.set(k, v);
    }
    client
}

/// The dead-letter producer's configuration: a message times out after `dead_letter_timeout`.
pub(super) fn dead_letter_producer(config: &KafkaConfig) -> ClientConfig {
    let mut p = ClientConfig::new();
    p.set("bootstrap.servers", &config.brokers)
        .set("linger.ms", "5")
        .set(
            "message.timeout.ms",
            config.dead_letter_timeout.as_millis().to_string(),
        );
    for (k, v) in &config.client {
        p.set(k, v);
    }
    p
}

/// The admin client's configuration (creating the dead-letter topics).
pub(super) fn admin(config: &KafkaConfig) -> ClientConfig {
    let mut admin_config = ClientConfig::new();
    admin_config.set("bootstrap.servers", &config.brokers);
    for (k, v) in &config.client {
        admin_config.set(k, v);
    }
    admin_config
}
