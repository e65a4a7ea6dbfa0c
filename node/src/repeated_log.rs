//! A limiter for log lines that an outsider can make the node repeat: at most
//! [`REPEATED_LOG_LINES_MAX`] lines of one kind per [`REPEATED_LOG_INTERVAL`], the rest
//! counted and reported once, as one summary line, when the interval ends.
//!
//! The limiter decides and counts; the caller writes the lines (so that each keeps its own
//! level and fields). Time comes in as an argument, so the limiter is a pure state machine:
//!
//! ```ignore
//! // `node` is a binary crate, so this example is compiled only as part of its docs.
//! let mut lines = RepeatedLog::new(2, Duration::from_secs(10));
//! let start = Instant::now();
//! assert!(lines.admit("refused", start));
//! assert!(lines.admit("refused", start));
//! assert!(!lines.admit("refused", start)); // counted, not written
//! let summaries = lines.take_summaries(start + Duration::from_secs(10));
//! assert_eq!(summaries, vec![("refused", 1)]);
//! ```

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::limits::REPEATED_LOG_KINDS_MAX;
#[cfg(doc)]
use crate::limits::{REPEATED_LOG_INTERVAL, REPEATED_LOG_LINES_MAX};

/// One kind's current interval.
#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    written: u32,
    suppressed: u64,
}

/// Counts lines per kind; see the module documentation.
#[derive(Debug)]
pub struct RepeatedLog {
    lines_max: u32,
    interval: Duration,
    windows: HashMap<&'static str, Window>,
}

impl RepeatedLog {
    /// A limiter that lets `lines_max` lines of each kind through per `interval`.
    pub fn new(lines_max: u32, interval: Duration) -> Self {
        Self {
            lines_max,
            interval,
            windows: HashMap::new(),
        }
    }

    /// Whether a line of `kind` seen at `now` is to be written. A line not written is counted
    /// and appears in the kind's summary.
    pub fn admit(&mut self, kind: &'static str, now: Instant) -> bool {
        if !self.windows.contains_key(kind) && self.windows.len() >= REPEATED_LOG_KINDS_MAX {
            // More kinds than the limiter tracks: a programming error in the caller's choice
            // of kinds, not an outsider's doing. Write the line rather than lose it.
            return true;
        }
        let window = self.windows.entry(kind).or_insert(Window {
            started: now,
            written: 0,
            suppressed: 0,
        });
        if now.saturating_duration_since(window.started) >= self.interval && window.suppressed == 0
        {
            // A quiet kind starts a fresh interval at its next line.
            *window = Window {
                started: now,
                written: 0,
                suppressed: 0,
            };
        }
        if window.written < self.lines_max {
            window.written += 1;
            true
        } else {
            window.suppressed = window.suppressed.saturating_add(1);
            false
        }
    }

    /// The kinds whose interval has ended with lines suppressed, and how many were, in kind
    /// order; each is reported once, and its interval starts again. Call it periodically (more
    /// often than the interval), and write one summary line for each.
    pub fn take_summaries(&mut self, now: Instant) -> Vec<(&'static str, u64)> {
        let mut summaries = Vec::new();
        let interval = self.interval;
        self.windows.retain(|kind, window| {
            if now.saturating_duration_since(window.started) < interval {
                return true;
            }
            if window.suppressed > 0 {
                summaries.push((*kind, window.suppressed));
            }
            // An ended interval is forgotten; the kind's next line opens a new one.
            false
        });
        summaries.sort_unstable();
        summaries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERVAL: Duration = Duration::from_secs(10);

    #[test]
    fn lines_past_the_limit_are_counted_and_summarised_once() {
        let mut lines = RepeatedLog::new(3, INTERVAL);
        let start = Instant::now();
        let written = (0..100)
            .filter(|_| lines.admit("refused", start + Duration::from_secs(1)))
            .count();
        assert_eq!(written, 3);
        assert_eq!(
            lines.take_summaries(start + Duration::from_secs(5)),
            vec![],
            "the interval has not ended"
        );
        assert_eq!(
            lines.take_summaries(start + INTERVAL + Duration::from_secs(1)),
            vec![("refused", 97)]
        );
        assert_eq!(
            lines.take_summaries(start + INTERVAL * 3),
            vec![],
            "a summary is given once"
        );
        // The next interval lets lines through again.
        assert!(lines.admit("refused", start + INTERVAL * 3));
    }

    #[test]
    fn kinds_are_limited_separately() {
        let mut lines = RepeatedLog::new(1, INTERVAL);
        let now = Instant::now();
        assert!(lines.admit("timeout", now));
        assert!(!lines.admit("timeout", now));
        assert!(lines.admit("garbage", now));
        assert!(!lines.admit("garbage", now));
        assert!(!lines.admit("garbage", now));
        assert_eq!(
            lines.take_summaries(now + INTERVAL),
            vec![("garbage", 2), ("timeout", 1)]
        );
    }

    #[test]
    fn a_quiet_kind_opens_a_new_interval_without_a_summary() {
        let mut lines = RepeatedLog::new(2, INTERVAL);
        let start = Instant::now();
        assert!(lines.admit("refused", start));
        assert!(lines.admit("refused", start + INTERVAL * 2));
        assert!(lines.admit("refused", start + INTERVAL * 2));
        assert!(!lines.admit("refused", start + INTERVAL * 2));
        assert_eq!(
            lines.take_summaries(start + INTERVAL * 3),
            vec![("refused", 1)]
        );
    }

    #[test]
    fn the_number_of_kinds_tracked_is_bounded() {
        let mut lines = RepeatedLog::new(1, INTERVAL);
        let now = Instant::now();
        let kinds: Vec<&'static str> = (0..REPEATED_LOG_KINDS_MAX + 10)
            .map(|index| &*Box::leak(format!("kind-{index}").into_boxed_str()))
            .collect();
        for kind in &kinds {
            assert!(lines.admit(kind, now));
        }
        assert_eq!(lines.windows.len(), REPEATED_LOG_KINDS_MAX);
        // Untracked kinds are written, not lost.
        assert!(lines.admit(kinds[REPEATED_LOG_KINDS_MAX + 1], now));
    }
}
