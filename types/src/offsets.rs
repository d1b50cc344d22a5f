//! Source positions as they cross the checkpoint: which Kafka partition offsets the saved window
//! state covers. The collector's offset tracker produces them, the analyzer's checkpoint stores
//! them (typed, so that an unreadable position is an error at restore, never a silent reset), and
//! the Kafka source resumes from them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A topic partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: String,
    /// Partition number.
    pub partition: i32,
}

impl TopicPartition {
    /// A topic partition.
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        Self {
            topic: topic.into(),
            partition,
        }
    }
}

/// The absorbed position of one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionPosition {
    /// Every offset below this is absorbed: the offset to resume (and commit) at.
    pub watermark: i64,
    /// Offsets at or above the watermark that are absorbed too (skipped after a restart).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub absorbed_above: Vec<i64>,
}

/// Absorbed positions of all partitions, saved in a checkpoint together with the window state
/// they cover. Serialised as `{"partitions": {"topic/partition": {"watermark": N,
/// "absorbed_above": [..]}}}`.
///
/// Deserialising rejects a key that is not `topic/partition` with an `i32` partition, a negative
/// watermark and an absorbed offset below its watermark, so that a damaged checkpoint is an
/// error instead of a partition silently resumed from the committed offset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawSourceOffsets")]
pub struct SourceOffsets {
    /// Position per `topic/partition`.
    pub partitions: BTreeMap<String, PartitionPosition>,
}

impl SourceOffsets {
    /// The map key of a partition: `topic/partition`.
    pub fn key(tp: &TopicPartition) -> String {
        format!("{}/{}", tp.topic, tp.partition)
    }

    /// The position of a partition, if the snapshot has one.
    pub fn get(&self, tp: &TopicPartition) -> Option<&PartitionPosition> {
        self.partitions.get(&Self::key(tp))
    }

    /// Removes and returns the position of `tp`.
    pub fn take(&mut self, tp: &TopicPartition) -> Option<PartitionPosition> {
        self.partitions.remove(&Self::key(tp))
    }

    /// All partitions with their positions.
    pub fn iter(&self) -> impl Iterator<Item = (TopicPartition, &PartitionPosition)> {
        // Keys are checked when deserialised and built by `key`, so none is skipped here.
        self.partitions.iter().filter_map(|(k, v)| {
            let (topic, partition) = k.rsplit_once('/')?;
            Some((TopicPartition::new(topic, partition.parse().ok()?), v))
        })
    }
}

/// The unchecked serialised form of [`SourceOffsets`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSourceOffsets {
    partitions: BTreeMap<String, PartitionPosition>,
}

impl TryFrom<RawSourceOffsets> for SourceOffsets {
    type Error = String;

    fn try_from(raw: RawSourceOffsets) -> Result<Self, Self::Error> {
        for (key, position) in &raw.partitions {
            // Canonical only (`topic/partition` as `key` writes it): `p/05`, `p/+5` or `/0` would
            // never be found again by `get` (found by review).
            let canonical = key.rsplit_once('/').is_some_and(|(topic, p)| {
                !topic.is_empty() && p.parse::<i32>().is_ok_and(|n| n >= 0 && n.to_string() == p)
            });
            if !canonical {
                return Err(format!(
                    "source offsets: `{key}` is not `topic/partition` with a partition number"
                ));
            }
            if position.watermark < 0 {
                return Err(format!(
                    "source offsets: `{key}` has the negative watermark {}",
                    position.watermark
                ));
            }
            if let Some(below) = position
                .absorbed_above
                .iter()
                .find(|&&o| o < position.watermark)
            {
                return Err(format!(
                    "source offsets: `{key}` lists absorbed offset {below} below its watermark {}",
                    position.watermark
                ));
            }
        }
        Ok(Self {
            partitions: raw.partitions,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip_by_topic_and_partition() {
        let mut offsets = SourceOffsets::default();
        offsets.partitions.insert(
            "predictions/3".into(),
            PartitionPosition {
                watermark: 1842,
                absorbed_above: vec![1844],
            },
        );
        let json = serde_json::to_string(&offsets).unwrap();
        assert_eq!(
            json,
            r#"{"partitions":{"predictions/3":{"watermark":1842,"absorbed_above":[1844]}}}"#
        );
        let back: SourceOffsets = serde_json::from_str(&json).unwrap();
        let tp = TopicPartition::new("predictions", 3);
        assert_eq!(back.get(&tp).unwrap().watermark, 1842);
        assert_eq!(back.iter().next().unwrap().0, tp);
    }

    #[test]
    fn a_topic_with_a_slash_keeps_its_name() {
        let mut offsets = SourceOffsets::default();
        offsets
            .partitions
            .insert("team/predictions/0".into(), PartitionPosition::default());
        assert_eq!(
            offsets.iter().next().unwrap().0,
            TopicPartition::new("team/predictions", 0)
        );
    }

    #[test]
    fn garbled_positions_are_rejected_with_the_key() {
        for (json, needle) in [
            (
                r#"{"partitions":{"predictions":{"watermark":1}}}"#,
                "`predictions`",
            ),
            (r#"{"partitions":{"p/x":{"watermark":1}}}"#, "`p/x`"),
            (r#"{"partitions":{"p/05":{"watermark":1}}}"#, "`p/05`"),
            (r#"{"partitions":{"p/+5":{"watermark":1}}}"#, "`p/+5`"),
            (r#"{"partitions":{"/0":{"watermark":1}}}"#, "`/0`"),
            (r#"{"partitions":{"p/-1":{"watermark":1}}}"#, "`p/-1`"),
            (
                r#"{"partitions":{"p/0":{"watermark":-4}}}"#,
                "negative watermark -4",
            ),
            (
                r#"{"partitions":{"p/0":{"watermark":9,"absorbed_above":[3]}}}"#,
                "absorbed offset 3 below its watermark 9",
            ),
            (
                r#"{"partitions":{"p/0":{"watermark":"9"}}}"#,
                "invalid type",
            ),
            (r#"{"partitions":[]}"#, "invalid type"),
            (r#"{"parts":{}}"#, "unknown field"),
        ] {
            let err = serde_json::from_str::<SourceOffsets>(json).unwrap_err();
            assert!(err.to_string().contains(needle), "{json}: {err}");
        }
    }
}
