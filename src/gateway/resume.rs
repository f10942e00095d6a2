//! Exactly-once delivery across a `resume`: the bookkeeping of one connection,
//! as a plain struct.
//!
//! A session is registered for live events before it asks to resume, so every
//! event committed after the backlog query reaches it live; events committed
//! before reach it through the backlog. The overlap (an event read from
//! storage whose live copy arrives too) and the window in between are handled
//! here:
//!
//! - While a chat's backlog is being sent, its live events are **held**.
//! - When the backlog is through `last_sent`, the held events are released if
//!   they continue it without a gap (`last_sent + 1, + 2, ...`). A held event
//!   proves that every smaller seq is committed, so when there is a gap, or
//!   when held events had to be dropped to stay within the memory budget,
//!   the backlog is simply read further from storage ([`Release::ReadMore`]).
//! - Afterwards, a live event at or below what was already sent for that chat
//!   is a duplicate and is dropped.

use bytestring::ByteString;
use ferrogram_core::ids::{ChatId, Seq};
use std::collections::{BTreeMap, HashMap};

/// The bytes a held event keeps in memory.
pub trait Weight {
    fn weight(&self) -> usize;
}

impl Weight for ByteString {
    fn weight(&self) -> usize {
        self.len()
    }
}

/// Tests hold plain seqs: one byte each.
impl Weight for Seq {
    fn weight(&self) -> usize {
        1
    }
}

fn weigh<T: Weight>(events: &BTreeMap<Seq, T>) -> usize {
    events.values().map(Weight::weight).sum()
}

/// What to do with one live event.
#[derive(Debug, PartialEq, Eq)]
pub enum Offer<T> {
    /// Send it now.
    Send(T),
    /// Kept (or dropped in favour of a storage read) until the chat's backlog is sent.
    Held,
    /// Already sent from the backlog.
    Duplicate,
}

/// What follows the end of a chat's backlog page run.
#[derive(Debug, PartialEq, Eq)]
pub enum Release<T> {
    /// The chat is live again: send these held events, in this order.
    Done(Vec<T>),
    /// Read the backlog again after this seq (held events were dropped or do
    /// not continue it).
    ReadMore(Seq),
}

#[derive(Debug)]
struct Held<T> {
    events: BTreeMap<Seq, T>,
    /// Events were dropped to stay within the budget: storage has them.
    dropped: bool,
}

/// Per-connection resume state.
#[derive(Debug)]
pub struct ResumeGate<T> {
    held: HashMap<ChatId, Held<T>>,
    held_total: usize,
    held_bytes: usize,
    /// Largest number of held events across chats.
    budget: usize,
    /// Largest number of bytes of held events across chats.
    byte_budget: usize,
    /// Per resumed chat, the highest seq sent from the backlog or released.
    sent: HashMap<ChatId, Seq>,
}

impl<T: Weight> ResumeGate<T> {
    pub fn new(budget: usize) -> Self {
        Self::with_byte_budget(budget, usize::MAX)
    }

    /// At most `budget` events and `byte_budget` bytes held across chats.
    pub fn with_byte_budget(budget: usize, byte_budget: usize) -> Self {
        Self {
            held: HashMap::new(),
            held_total: 0,
            held_bytes: 0,
            budget,
            byte_budget,
            sent: HashMap::new(),
        }
    }

    fn forget(&mut self, count: usize, bytes: usize) {
        self.held_total -= count;
        self.held_bytes -= bytes;
    }

    /// Starts holding live events of `chat` (its backlog is about to be read).
    /// False if it is already being resumed.
    pub fn begin(&mut self, chat: ChatId) -> bool {
        if self.held.contains_key(&chat) {
            return false;
        }
        self.held.insert(
            chat,
            Held {
                events: BTreeMap::new(),
                dropped: false,
            },
        );
        true
    }

    pub fn is_resuming(&self) -> bool {
        !self.held.is_empty()
    }

    /// Decides about one live event.
    pub fn offer(&mut self, chat: ChatId, seq: Seq, event: T) -> Offer<T> {
        if self.sent.get(&chat).is_some_and(|&sent| seq <= sent) {
            return Offer::Duplicate;
        }
        let Some(held) = self.held.get_mut(&chat) else {
            return Offer::Send(event);
        };
        if held.dropped {
            // The storage read that follows will find it.
            return Offer::Held;
        }
        let weight = event.weight();
        if self.held_total >= self.budget
            || self.held_bytes.saturating_add(weight) > self.byte_budget
        {
            // Over budget: give up holding this chat's events, read them again.
            let (count, bytes) = (held.events.len(), weigh(&held.events));
            held.events.clear();
            held.dropped = true;
            self.forget(count, bytes);
            return Offer::Held;
        }
        self.held_total += 1;
        self.held_bytes += weight;
        if let Some(old) = held.events.insert(seq, event) {
            self.forget(1, old.weight());
        }
        Offer::Held
    }

    /// The backlog of `chat` has been sent through `last_sent` (the last seq
    /// read from storage, or the starting position when nothing was new).
    pub fn backlog_sent(&mut self, chat: ChatId, last_sent: Seq) -> Release<T> {
        let sent = self.sent.entry(chat).or_insert(last_sent);
        *sent = (*sent).max(last_sent);
        let sent_through = *sent;
        let Some(held) = self.held.get_mut(&chat) else {
            return Release::Done(Vec::new());
        };
        // Copies the backlog already sent are duplicates.
        let keep = held.events.split_off(&sent_through.next());
        let (count, bytes) = (held.events.len(), weigh(&held.events));
        held.events = keep;
        let contiguous = held
            .events
            .keys()
            .zip(sent_through.following())
            .all(|(&seq, expected)| seq == expected);
        if held.dropped || !contiguous {
            let (more, more_bytes) = (held.events.len(), weigh(&held.events));
            held.events.clear();
            held.dropped = false;
            self.forget(count + more, bytes + more_bytes);
            return Release::ReadMore(sent_through);
        }
        self.forget(count, bytes);
        let held = self
            .held
            .remove(&chat)
            .map(|h| h.events)
            .unwrap_or_default();
        self.forget(held.len(), weigh(&held));
        if let Some((&last, _)) = held.last_key_value() {
            self.sent.insert(chat, last);
        }
        Release::Done(held.into_values().collect())
    }

    /// Stops resuming `chat` without a backlog (not a member, or a storage
    /// error): its held events are released as they are.
    pub fn abort(&mut self, chat: ChatId) -> Vec<T> {
        let Some(held) = self.held.remove(&chat) else {
            return Vec::new();
        };
        self.forget(held.events.len(), weigh(&held.events));
        held.events.into_values().collect()
    }

    /// The highest seq sent for a resumed chat.
    pub fn position(&self, chat: ChatId) -> Option<Seq> {
        self.sent.get(&chat).copied()
    }

    /// Events currently held (for tests and metrics).
    pub fn held_count(&self) -> usize {
        self.held_total
    }

    /// Bytes of the events currently held.
    pub fn held_bytes(&self) -> usize {
        self.held_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: ChatId = ChatId(1);
    const B: ChatId = ChatId(2);

    fn s(seq: i64) -> Seq {
        Seq::new(seq)
    }

    /// Simulates a client that saw `from`, a store holding `1..=stored`, and
    /// live copies of `live` arriving while the backlog is read; returns the
    /// seqs the client receives.
    fn deliver(from: i64, stored: i64, live_during: &[i64], live_after: &[i64]) -> Vec<i64> {
        let mut gate = ResumeGate::new(100);
        let mut got = Vec::new();
        assert!(gate.begin(A));
        for &seq in live_during {
            assert_eq!(gate.offer(A, s(seq), s(seq)), Offer::Held);
        }
        let mut after = s(from);
        loop {
            got.extend(after.following().take_while(|&seq| seq <= s(stored)));
            after = after.max(s(stored));
            match gate.backlog_sent(A, after) {
                Release::Done(events) => {
                    got.extend(events);
                    break;
                }
                Release::ReadMore(from) => after = from,
            }
        }
        for &seq in live_after {
            if let Offer::Send(seq) = gate.offer(A, s(seq), s(seq)) {
                got.push(seq);
            }
        }
        got.into_iter().map(Seq::get).collect()
    }

    #[test]
    fn overlap_between_backlog_and_live_is_sent_once_in_order() {
        // 4 and 5 were read from storage and also arrive live; 6, 7 only live
        assert_eq!(deliver(2, 5, &[4, 5, 6, 7], &[]), vec![3, 4, 5, 6, 7]);
        // late live copies after the chat went live again are duplicates
        assert_eq!(deliver(2, 5, &[6], &[4, 5, 6, 7]), vec![3, 4, 5, 6, 7]);
        // nothing missed: only what arrives live
        assert_eq!(deliver(5, 5, &[], &[6]), vec![6]);
    }

    #[test]
    fn a_gap_in_held_events_is_filled_from_storage() {
        let mut gate = ResumeGate::new(100);
        gate.begin(A);
        // 7 arrived live, 6 not yet: both are committed, so read again
        assert_eq!(gate.offer(A, s(7), s(7)), Offer::Held);
        assert_eq!(gate.backlog_sent(A, s(5)), Release::ReadMore(s(5)));
        // the second read found 6 and 7; the held copy of 7 was dropped
        assert_eq!(gate.held_count(), 0);
        assert_eq!(gate.backlog_sent(A, s(7)), Release::Done(vec![]));
        assert_eq!(gate.offer(A, s(6), s(6)), Offer::Duplicate);
        assert_eq!(gate.offer(A, s(8), s(8)), Offer::Send(s(8)));
        assert_eq!(gate.position(A), Some(s(7)));
    }

    #[test]
    fn over_budget_events_are_dropped_and_read_again() {
        let mut gate = ResumeGate::new(2);
        gate.begin(A);
        gate.begin(B);
        assert_eq!(gate.offer(A, s(11), s(11)), Offer::Held);
        assert_eq!(gate.offer(B, s(21), s(21)), Offer::Held);
        assert_eq!(gate.held_count(), 2);
        // the budget is spent: A gives up its held events
        assert_eq!(gate.offer(A, s(12), s(12)), Offer::Held);
        assert_eq!(gate.held_count(), 1);
        assert_eq!(gate.offer(A, s(13), s(13)), Offer::Held);
        assert_eq!(gate.held_count(), 1, "nothing more is kept for A");
        assert_eq!(gate.backlog_sent(A, s(10)), Release::ReadMore(s(10)));
        assert_eq!(gate.backlog_sent(A, s(13)), Release::Done(vec![]));
        assert_eq!(gate.backlog_sent(B, s(20)), Release::Done(vec![s(21)]));
        assert_eq!(gate.held_count(), 0);
        assert!(!gate.is_resuming());
    }

    #[test]
    fn the_byte_budget_drops_held_events_like_the_count_budget() {
        let frame = |n: usize| ByteString::from("x".repeat(n));
        let mut gate = ResumeGate::with_byte_budget(100, 1000);
        gate.begin(A);
        gate.begin(B);
        assert_eq!(gate.offer(A, s(11), frame(600)), Offer::Held);
        assert_eq!(gate.offer(B, s(21), frame(300)), Offer::Held);
        assert_eq!(gate.held_bytes(), 900);
        // 200 more would make 1100: A gives up what it held
        assert_eq!(gate.offer(A, s(12), frame(200)), Offer::Held);
        assert_eq!((gate.held_count(), gate.held_bytes()), (1, 300));
        assert_eq!(gate.backlog_sent(A, s(10)), Release::ReadMore(s(10)));
        assert_eq!(gate.backlog_sent(A, s(12)), Release::Done(vec![]));
        assert_eq!(gate.backlog_sent(B, s(20)), Release::Done(vec![frame(300)]));
        assert_eq!((gate.held_count(), gate.held_bytes()), (0, 0));
    }

    #[test]
    fn chats_not_resumed_pass_through_and_aborts_release_what_was_held() {
        let mut gate = ResumeGate::new(10);
        assert_eq!(gate.offer(B, s(3), s(3)), Offer::Send(s(3)));
        gate.begin(A);
        assert!(!gate.begin(A), "a chat is resumed once at a time");
        assert_eq!(gate.offer(A, s(9), s(9)), Offer::Held);
        assert_eq!(gate.offer(A, s(8), s(8)), Offer::Held);
        assert_eq!(gate.abort(A), vec![s(8), s(9)]);
        assert_eq!(gate.held_count(), 0);
        assert_eq!(gate.offer(A, s(10), s(10)), Offer::Send(s(10)));
        assert_eq!(gate.position(A), None);
    }
}
