//! The runtime's timers: what the core asked for with [`Command::Schedule`], kept in the
//! order they fall due. A loop turn takes the timers due at one instant and no more
//! ([`Timers::take_due`]): a timer the core schedules while those are handled waits for the
//! next turn, even if it is due by then, so that the network's events, the status tick and
//! the shutdown get their turn between (ADR 0036). A lone validator whose heartbeat is shorter
//! than a block's work schedules its next proposal already due at every commit; re-reading
//! the clock after each timer would never leave the loop.
//!
//! [`Command::Schedule`]: super::core::Command::Schedule

use std::collections::BTreeMap;
use std::time::Instant;

use super::core::Timer;

/// The timers scheduled and not fired yet.
#[derive(Debug, Default)]
pub struct Timers {
    queue: BTreeMap<(Instant, u64), Timer>,
    sequence: u64,
    /// The key of the one [`Timer::Propose`] scheduled, if any.
    propose: Option<(Instant, u64)>,
}

impl Timers {
    /// Schedules `timer` at `at`; a [`Timer::Propose`] replaces the one scheduled before.
    pub fn schedule(&mut self, timer: Timer, at: Instant) {
        if timer == Timer::Propose
            && let Some(key) = self.propose.take()
        {
            self.queue.remove(&key);
        }
        self.sequence += 1;
        let key = (at, self.sequence);
        if timer == Timer::Propose {
            self.propose = Some(key);
        }
        self.queue.insert(key, timer);
    }

    /// When the earliest timer falls due, if any is scheduled.
    pub fn next_at(&self) -> Option<Instant> {
        self.queue.keys().next().map(|(at, _)| *at)
    }

    /// Takes every timer due at `now`, earliest first. What is scheduled after this call is
    /// not among them, however soon it falls due.
    pub fn take_due(&mut self, now: Instant) -> Vec<Timer> {
        let mut due = Vec::new();
        while let Some((&key, _)) = self.queue.first_key_value() {
            if key.0 > now {
                break;
            }
            if self.propose == Some(key) {
                self.propose = None;
            }
            if let Some(timer) = self.queue.remove(&key) {
                due.push(timer);
            }
        }
        due
    }
}
