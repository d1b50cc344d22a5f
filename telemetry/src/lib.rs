//! driftwatch's internal telemetry conventions, after Vector's `internal_events`:
//!
//! - every crate's metric handles are one struct implementing [`Metrics`], created and registered
//!   in a [`Registry`] by the one signature [`Metrics::register`];
//! - every observable event is a struct implementing [`InternalEvent`], whose
//!   [`emit`](InternalEvent::emit) logs it (with `tracing`, at the event's level) and counts it
//!   (in the crate's metrics) in one call, so a log line and its counter cannot drift apart;
//!   callers write `metrics.emit(DecodeFailed { .. })` ([`Emit`]);
//! - bounded label values are enums declared with [`label_values!`], which encode as their
//!   snake_case text and list every value ([`LabelValues::ALL`]).
//!
//! The metric names themselves are in `types::names::metric` and `docs/metrics.md`.

pub use prometheus_client;
pub use prometheus_client::registry::Registry;

/// A crate's metric handles. Cloning shares the underlying metrics.
pub trait Metrics: Clone + Sized {
    /// What registration needs besides the registry (`()` when nothing).
    type Config;

    /// Creates the metrics and registers each in `registry` under its documented name (the
    /// OpenMetrics encoder appends `_total` to counters).
    fn register(registry: &mut Registry, config: &Self::Config) -> Self;
}

/// Something that happened inside driftwatch: its [`emit`](Self::emit) logs it and updates the
/// metrics `M` in one call.
pub trait InternalEvent<M> {
    /// Logs the event and counts it in `metrics`.
    fn emit(self, metrics: &M);
}

/// `metrics.emit(event)`: the call-site form of [`InternalEvent::emit`].
pub trait Emit: Sized {
    /// Emits `event` against these metrics.
    fn emit<E: InternalEvent<Self>>(&self, event: E) {
        event.emit(self);
    }
}

impl<M: Metrics> Emit for M {}

/// A bounded set of label values (declared with [`label_values!`]).
pub trait LabelValues: Copy + 'static {
    /// Every value, in declaration order.
    const ALL: &'static [Self];

    /// The value's text in metric labels and logs (snake_case).
    fn as_str(self) -> &'static str;
}

/// Declares an enum of label values: each variant with its text, a [`LabelValues`] impl, an
/// OpenMetrics label-value encoding, `Display` as that text, and equality with `&str` (so a
/// test can compare a value with its documented text).
///
/// ```
/// telemetry::label_values! {
///     /// Where events came from.
///     pub enum Source {
///         /// A Kafka partition.
///         Kafka => "kafka",
///         /// `POST /v1/events`.
///         Http => "http",
///     }
/// }
/// use telemetry::LabelValues;
/// assert_eq!(Source::Http.as_str(), "http");
/// assert_eq!(Source::ALL, &[Source::Kafka, Source::Http]);
/// assert_eq!(Source::Kafka.to_string(), "kafka");
/// assert_eq!(Source::Kafka, "kafka");
/// ```
#[macro_export]
macro_rules! label_values {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $crate::LabelValues for $name {
            const ALL: &'static [Self] = &[$( Self::$variant ),+];

            fn as_str(self) -> &'static str {
                match self {
                    $( Self::$variant => $text ),+
                }
            }
        }

        impl $name {
            /// The value's text in metric labels and logs.
            $vis fn as_str(self) -> &'static str {
                <Self as $crate::LabelValues>::as_str(self)
            }
        }

        impl ::std::cmp::PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl $crate::prometheus_client::encoding::EncodeLabelValue for $name {
            fn encode(
                &self,
                encoder: &mut $crate::prometheus_client::encoding::LabelValueEncoder<'_>,
            ) -> ::std::result::Result<(), ::std::fmt::Error> {
                ::std::fmt::Write::write_str(encoder, self.as_str())
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use prometheus_client::encoding::EncodeLabelSet;
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::family::Family;

    use super::*;

    label_values! {
        /// Test outcomes.
        pub enum Outcome {
            /// Made.
            Created => "created",
            /// Done.
            Succeeded => "succeeded",
        }
    }

    #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
    struct OutcomeLabel {
        outcome: Outcome,
    }

    #[derive(Clone, Debug, Default)]
    struct TestMetrics {
        jobs: Family<OutcomeLabel, Counter>,
    }

    impl Metrics for TestMetrics {
        type Config = ();

        fn register(registry: &mut Registry, _: &()) -> Self {
            let m = Self::default();
            registry.register("jobs", "Jobs by outcome", m.jobs.clone());
            m
        }
    }

    struct JobFinished {
        outcome: Outcome,
    }

    impl InternalEvent<TestMetrics> for JobFinished {
        fn emit(self, metrics: &TestMetrics) {
            metrics
                .jobs
                .get_or_create(&OutcomeLabel {
                    outcome: self.outcome,
                })
                .inc();
        }
    }

    #[test]
    fn an_emitted_event_is_counted_under_its_enum_label_text() {
        let mut registry = Registry::default();
        let m = TestMetrics::register(&mut registry, &());
        m.emit(JobFinished {
            outcome: Outcome::Created,
        });
        m.emit(JobFinished {
            outcome: Outcome::Created,
        });
        m.emit(JobFinished {
            outcome: Outcome::Succeeded,
        });
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains("jobs_total{outcome=\"created\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("jobs_total{outcome=\"succeeded\"} 1\n"),
            "{text}"
        );
        assert_eq!(Outcome::ALL.len(), 2);
    }
}
