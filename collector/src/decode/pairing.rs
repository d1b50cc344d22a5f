//! Pairing request and response halves by id, in either arrival order, with expiry.
//!
//! A half waits at most the pairing timeout for its partner; [`Pairer::expire`] returns the ones
//! that waited longer so the source can count them (`unpaired`) and release whatever they hold
//! (Kafka offsets). Memory is bounded by `max_pending` halves and by `max_bytes` of their payloads
//! ([`Pairer::offer_weighted`]): past either, the oldest halves are expired early (issue 19,
//! finding 6: only the number was capped, so 20 halves of 4.45 MB held 357 MB for 30 s).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

telemetry::label_values! {
    /// Which half of an exchange; the bounded label `half` of `driftwatch_unpaired_total`
    /// (`request`, `response`).
    pub enum Half {
        /// The inference request (features).
        Request => "request",
        /// The inference response (prediction).
        Response => "response",
    }
}

/// A half waiting for its partner.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending<T> {
    /// Which half it is.
    pub half: Half,
    /// The half itself.
    pub value: T,
    /// Arrival time in milliseconds on the caller's clock.
    pub arrived_ms: u64,
}

/// A waiting half with its arrival key (arrival ms, sequence) and its weight in bytes.
type Entry<T> = (Pending<T>, (u64, u64), usize);

/// Pairs halves of type `T` by string id.
#[derive(Debug)]
pub struct Pairer<T> {
    pending: HashMap<String, Entry<T>>,
    by_arrival: BTreeMap<(u64, u64), String>,
    seq: u64,
    timeout_ms: u64,
    max_pending: usize,
    max_bytes: usize,
    bytes: usize,
}

/// What [`Pairer::offer`] did with a half.
#[derive(Debug, PartialEq)]
pub enum Offer<T> {
    /// The partner was waiting: `(request, response)`.
    Paired(T, T),
    /// The half waits for its partner.
    Waiting,
    /// A half of the same kind with the same id was already waiting; the older one is returned
    /// (replaced by the new one).
    Replaced(Pending<T>),
}

impl<T> Pairer<T> {
    /// A pairer whose halves wait at most `timeout`, holding at most `max_pending` halves.
    pub fn new(timeout: Duration, max_pending: usize) -> Self {
        Self {
            pending: HashMap::new(),
            by_arrival: BTreeMap::new(),
            seq: 0,
            timeout_ms: timeout.as_millis() as u64,
            max_pending: max_pending.max(1),
            max_bytes: usize::MAX,
            bytes: 0,
        }
    }

    /// Holds at most `max_bytes` of the weights given to [`Pairer::offer_weighted`] (at least
    /// one half is always held).
    pub fn with_max_bytes(mut self, max_bytes: usize) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// The summed weight of the waiting halves, in bytes.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Halves waiting now.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether no half is waiting.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Offers a half that arrived at `now_ms`, weighing nothing.
    pub fn offer(&mut self, id: &str, half: Half, value: T, now_ms: u64) -> Offer<T> {
        self.offer_weighted(id, half, value, now_ms, 0)
    }

    /// Offers a half that arrived at `now_ms` and holds `bytes` (its payload's size). Call
    /// [`Pairer::expire`] after it: the oldest halves beyond the byte cap are expired there.
    pub fn offer_weighted(
        &mut self,
        id: &str,
        half: Half,
        value: T,
        now_ms: u64,
        bytes: usize,
    ) -> Offer<T> {
        if let Some((existing, _, _)) = self.pending.get(id)
            && existing.half != half
        {
            let other = self.remove(id).map(|p| p.value);
            return match (half, other) {
                (Half::Request, Some(resp)) => Offer::Paired(value, resp),
                (Half::Response, Some(req)) => Offer::Paired(req, value),
                _ => Offer::Waiting,
            };
        }
        let replaced = self.remove(id);
        self.seq += 1;
        let key = (now_ms, self.seq);
        self.by_arrival.insert(key, id.to_string());
        self.bytes = self.bytes.saturating_add(bytes);
        self.pending.insert(
            id.to_string(),
            (
                Pending {
                    half,
                    value,
                    arrived_ms: now_ms,
                },
                key,
                bytes,
            ),
        );
        match replaced {
            Some(old) => Offer::Replaced(old),
            None => Offer::Waiting,
        }
    }

    /// Removes and returns the halves that waited longer than the timeout at `now_ms`, and the
    /// oldest ones beyond `max_pending` halves or `max_bytes`, oldest first.
    pub fn expire(&mut self, now_ms: u64) -> Vec<(String, Pending<T>)> {
        let mut out = Vec::new();
        while let Some((&(arrived, seq), id)) = self.by_arrival.iter().next() {
            let too_old = now_ms.saturating_sub(arrived) > self.timeout_ms;
            let too_heavy = self.bytes > self.max_bytes && self.pending.len() > 1;
            if !too_old && !too_heavy && self.pending.len() <= self.max_pending {
                break;
            }
            let id = id.clone();
            self.by_arrival.remove(&(arrived, seq));
            if let Some((p, _, bytes)) = self.pending.remove(&id) {
                self.bytes -= bytes;
                out.push((id, p));
            }
        }
        out
    }

    /// Removes every waiting half (shutdown), oldest first.
    pub fn drain(&mut self) -> Vec<(String, Pending<T>)> {
        let order: Vec<String> = std::mem::take(&mut self.by_arrival).into_values().collect();
        self.bytes = 0;
        order
            .into_iter()
            .filter_map(|id| self.pending.remove(&id).map(|(p, _, _)| (id, p)))
            .collect()
    }

    fn remove(&mut self, id: &str) -> Option<Pending<T>> {
        let (p, key, bytes) = self.pending.remove(id)?;
        self.by_arrival.remove(&key);
        self.bytes -= bytes;
        Some(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_in_either_order() {
        let mut p = Pairer::new(Duration::from_secs(10), 100);
        assert_eq!(p.offer("a", Half::Request, "req-a", 0), Offer::Waiting);
        assert_eq!(p.offer("b", Half::Response, "resp-b", 1), Offer::Waiting);
        assert_eq!(
            p.offer("a", Half::Response, "resp-a", 2),
            Offer::Paired("req-a", "resp-a")
        );
        assert_eq!(
            p.offer("b", Half::Request, "req-b", 3),
            Offer::Paired("req-b", "resp-b")
        );
        assert!(p.is_empty());
    }

    #[test]
    fn missing_half_expires_after_the_timeout() {
        let mut p = Pairer::new(Duration::from_millis(100), 100);
        p.offer("a", Half::Request, 1, 0);
        p.offer("b", Half::Request, 2, 50);
        assert!(p.expire(100).is_empty());
        let gone = p.expire(101);
        assert_eq!(gone.len(), 1);
        assert_eq!(
            (gone[0].0.as_str(), gone[0].1.half, gone[0].1.value),
            ("a", Half::Request, 1)
        );
        assert_eq!(p.len(), 1);
    }

    #[test]
    fn bounded_memory_expires_the_oldest() {
        let mut p = Pairer::new(Duration::from_secs(60), 2);
        for (i, id) in ["a", "b", "c"].into_iter().enumerate() {
            p.offer(id, Half::Response, i, i as u64);
        }
        let gone = p.expire(3);
        assert_eq!(
            gone.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(),
            ["a"]
        );
    }

    /// Issue 19, finding 6: halves were capped by number only.
    #[test]
    fn bounded_bytes_expire_the_oldest_and_pairing_releases_them() {
        let mut p = Pairer::new(Duration::from_secs(60), 1000).with_max_bytes(10);
        p.offer_weighted("a", Half::Request, 1, 0, 4);
        p.offer_weighted("b", Half::Request, 2, 1, 4);
        assert!(p.expire(2).is_empty());
        assert_eq!(p.bytes(), 8);
        p.offer_weighted("c", Half::Request, 3, 2, 4);
        let gone = p.expire(3);
        assert_eq!(
            gone.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(),
            ["a"]
        );
        assert_eq!(p.bytes(), 8);
        assert_eq!(
            p.offer_weighted("b", Half::Response, 9, 4, 4),
            Offer::Paired(2, 9)
        );
        assert_eq!(p.bytes(), 4);
        // One half heavier than the cap is still held (and paired) on its own.
        let mut one = Pairer::new(Duration::from_secs(60), 10).with_max_bytes(1);
        one.offer_weighted("x", Half::Request, 1, 0, 100);
        assert!(one.expire(1).is_empty());
        assert_eq!(one.drain().len(), 1);
        assert_eq!(one.bytes(), 0);
    }

    #[test]
    fn duplicate_half_replaces_the_older() {
        let mut p = Pairer::new(Duration::from_secs(60), 10);
        p.offer("a", Half::Request, 1, 0);
        match p.offer("a", Half::Request, 2, 1) {
            Offer::Replaced(old) => assert_eq!(old.value, 1),
            other => panic!("{other:?}"),
        }
        assert_eq!(p.offer("a", Half::Response, 3, 2), Offer::Paired(2, 3));
    }
}
