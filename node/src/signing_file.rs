//! The signing state's file, written (atomically, durably) before anything it records leaves
//! the node. A write that fails — no descriptor left, a full or read-only disk — does not stop
//! the node: it signs nothing more and sends nothing it signed, and writes the newest state
//! again after a backoff that doubles from [`SIGNING_STATE_RETRY_FIRST`] to
//! [`SIGNING_STATE_RETRY_MAX`]. A vote that never left is only a vote missing from a round,
//! which Tendermint tolerates; one sent but not on disk could be contradicted after a restart,
//! which is why nothing leaves while the file lags. Failures are counted in the metrics and
//! logged at most once per [`SIGNING_STATE_FAILURE_LOG_INTERVAL`].

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::limits::{
    SIGNING_STATE_FAILURE_LOG_INTERVAL, SIGNING_STATE_RETRY_FIRST, SIGNING_STATE_RETRY_MAX,
};
use crate::metrics::Metrics;

/// The file, and the newest state not yet in it.
#[derive(Debug)]
pub struct SigningStateFile<S> {
    path: PathBuf,
    unwritten: Option<S>,
    /// When the next attempt is due, after a failure.
    retry_at: Option<Instant>,
    backoff: Duration,
    last_logged: Option<Instant>,
    failures_not_logged: u64,
}

impl<S: Serialize> SigningStateFile<S> {
    pub fn new(path: PathBuf) -> Self {
        SigningStateFile {
            path,
            unwritten: None,
            retry_at: None,
            backoff: SIGNING_STATE_RETRY_FIRST,
            last_logged: None,
            failures_not_logged: 0,
        }
    }

    /// Records `state`: true once it is on disk (the messages it covers may leave), false
    /// while the file lags (they must not).
    pub fn persist(&mut self, state: S, now: Instant, metrics: &Metrics) -> bool {
        self.unwritten = Some(state);
        if self.retry_at.is_some_and(|at| now < at) {
            return false;
        }
        self.attempt(now, metrics)
    }

    /// Writes the newest state again if an attempt is due; true when this brought the file up
    /// to date (the caller then re-sends its latest messages).
    pub fn retry_if_due(&mut self, now: Instant, metrics: &Metrics) -> bool {
        match self.retry_at {
            Some(at) if now >= at && self.unwritten.is_some() => self.attempt(now, metrics),
            _ => false,
        }
    }

    /// Whether the file lags the machine's state: nothing signed may leave.
    pub fn is_behind(&self) -> bool {
        self.unwritten.is_some()
    }

    /// When the next attempt is due, if one is.
    pub fn retry_at(&self) -> Option<Instant> {
        self.retry_at.filter(|_| self.unwritten.is_some())
    }

    fn attempt(&mut self, now: Instant, metrics: &Metrics) -> bool {
        let Some(state) = self.unwritten.as_ref() else {
            return true;
        };
        let written = serde_json::to_vec(state)
            .map_err(std::io::Error::other)
            .and_then(|bytes| crate::durable::write_atomic(&self.path, &bytes, 0o600));
        match written {
            Ok(()) => {
                if self.retry_at.is_some() {
                    tracing::info!(path = %self.path.display(), "signing state written again; signing resumes");
                }
                self.unwritten = None;
                self.retry_at = None;
                self.backoff = SIGNING_STATE_RETRY_FIRST;
                metrics.signing_state_behind.set(0);
                true
            }
            Err(error) => {
                metrics.signing_state_write_failures.inc();
                metrics.signing_state_behind.set(1);
                self.retry_at = Some(now + self.backoff);
                self.log_failure(now, &error);
                self.backoff = (self.backoff * 2).min(SIGNING_STATE_RETRY_MAX);
                false
            }
        }
    }

    fn log_failure(&mut self, now: Instant, error: &std::io::Error) {
        if self
            .last_logged
            .is_some_and(|at| now.duration_since(at) < SIGNING_STATE_FAILURE_LOG_INTERVAL)
        {
            self.failures_not_logged += 1;
            return;
        }
        tracing::error!(
            path = %self.path.display(),
            %error,
            retry_in_ms = self.backoff.as_millis() as u64,
            failures_not_logged = self.failures_not_logged,
            "cannot write the signing state; not signing until it is written"
        );
        self.last_logged = Some(now);
        self.failures_not_logged = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_blocks_signing_and_backs_off_until_a_retry_succeeds() {
        let directory = tempfile::tempdir().unwrap();
        // The directory does not exist yet: every write fails.
        let path = directory.path().join("missing").join("signing_state.json");
        let metrics = Metrics::new();
        let mut file = SigningStateFile::new(path.clone());
        let start = Instant::now();
        assert!(!file.persist(1u32, start, &metrics));
        assert!(file.is_behind());
        assert_eq!(file.retry_at(), Some(start + SIGNING_STATE_RETRY_FIRST));
        // A newer state before the retry is due replaces the old one without an attempt.
        assert!(!file.persist(2u32, start, &metrics));
        assert_eq!(metrics.signing_state_write_failures.get(), 1);
        assert!(!file.retry_if_due(start, &metrics), "not due yet");
        // Due: fails again, and the wait doubles, up to its bound.
        let mut now = start + SIGNING_STATE_RETRY_FIRST;
        let mut waits = Vec::new();
        for _ in 0..6 {
            assert!(!file.retry_if_due(now, &metrics));
            let at = file.retry_at().unwrap();
            waits.push(at - now);
            now = at;
        }
        assert_eq!(waits[0], SIGNING_STATE_RETRY_FIRST * 2);
        assert!(waits.iter().all(|wait| *wait <= SIGNING_STATE_RETRY_MAX));
        assert_eq!(*waits.last().unwrap(), SIGNING_STATE_RETRY_MAX);
        assert_eq!(metrics.signing_state_write_failures.get(), 7);
        assert_eq!(metrics.signing_state_behind.get(), 1);
        // The disk recovers: the newest state is written and signing resumes.
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        assert!(file.retry_if_due(now, &metrics));
        assert!(!file.is_behind());
        assert_eq!(file.retry_at(), None);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "2");
        assert_eq!(metrics.signing_state_behind.get(), 0);
        assert!(file.persist(3u32, now, &metrics));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "3");
    }
}
