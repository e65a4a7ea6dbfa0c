//! Helpers for load and attack tests against a running node: a submitter that keeps its
//! connection, and the resident memory of a node's process read from `/proc`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hutong_core::tx::Transaction;

/// Submits transactions to one node over one kept-alive HTTP connection (a new connection
/// per request would measure the loopback's handshakes, not the node).
#[derive(Debug)]
pub struct Submitter {
    agent: ureq::Agent,
    url: String,
}

/// How one submission was answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// The problem document's `code`, when the answer is one.
    pub code: Option<String>,
    pub body: String,
}

impl Submitter {
    /// A submitter to the API at `api` (`http://127.0.0.1:port`).
    pub fn new(api: &str) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(15)))
            .http_status_as_error(false)
            .build()
            .into();
        Submitter {
            agent,
            url: format!("{api}/v1/transactions"),
        }
    }

    /// POSTs `transaction` as JSON; `None` when the node does not answer.
    pub fn submit(&self, transaction: &Transaction) -> Option<Answer> {
        let body = serde_json::to_string(transaction).ok()?;
        let mut response = self
            .agent
            .post(&self.url)
            .header("content-type", "application/json")
            .send(body.as_bytes())
            .ok()?;
        let status = response.status().as_u16();
        let body = response.body_mut().read_to_string().ok()?;
        let code = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|document| document.get("code")?.as_str().map(str::to_owned));
        Some(Answer { status, code, body })
    }
}

/// How long a flood connection waits before it submits a refused transaction again.
const FLOOD_RETRY_WAIT: Duration = Duration::from_millis(5);

/// One signer's flood: `connections` threads submit `transactions` in order, each one again
/// until it is admitted (its nonce must not be skipped, or the ones after it would wait),
/// until they are all admitted, [`Flood::stop`] is called, or `duration_max` has passed.
/// Every answer is counted by its status and problem code.
#[derive(Debug)]
pub struct Flood {
    stop: Arc<AtomicBool>,
    answers: Arc<Mutex<BTreeMap<String, u64>>>,
    admitted: Arc<Mutex<Vec<usize>>>,
    threads: Vec<JoinHandle<()>>,
    started: Instant,
}

impl Flood {
    pub fn start(
        api: &str,
        transactions: Arc<Vec<Transaction>>,
        connections: usize,
        duration_max: Duration,
    ) -> Flood {
        let stop = Arc::new(AtomicBool::new(false));
        let answers = Arc::new(Mutex::new(BTreeMap::new()));
        let admitted = Arc::new(Mutex::new(Vec::new()));
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let threads = (0..connections)
            .map(|_| {
                let (transactions, stop, answers, admitted, next) = (
                    transactions.clone(),
                    stop.clone(),
                    answers.clone(),
                    admitted.clone(),
                    next.clone(),
                );
                let submitter = Submitter::new(api);
                std::thread::spawn(move || {
                    'transactions: loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        let Some(transaction) = transactions.get(index) else {
                            return;
                        };
                        loop {
                            if stop.load(Ordering::Relaxed) || started.elapsed() > duration_max {
                                return;
                            }
                            let answer = submitter.submit(transaction);
                            let key = match &answer {
                                Some(answer) => match &answer.code {
                                    Some(code) => format!("{} {code}", answer.status),
                                    None => answer.status.to_string(),
                                },
                                None => "no answer".to_owned(),
                            };
                            *answers.lock().expect("answers").entry(key).or_insert(0) += 1;
                            if answer.is_some_and(|answer| answer.status == 202) {
                                admitted.lock().expect("admitted").push(index);
                                continue 'transactions;
                            }
                            std::thread::sleep(FLOOD_RETRY_WAIT);
                        }
                    }
                })
            })
            .collect();
        Flood {
            stop,
            answers,
            admitted,
            threads,
            started,
        }
    }

    /// How many answers had `key`: the status, and the problem code after a space
    /// (`"202"`, `"429 signer_share_exceeded"`).
    pub fn count(&self, key: &str) -> u64 {
        self.answers
            .lock()
            .expect("answers")
            .get(key)
            .copied()
            .unwrap_or(0)
    }

    /// Every answer so far, by key.
    pub fn answers(&self) -> BTreeMap<String, u64> {
        self.answers.lock().expect("answers").clone()
    }

    /// The indexes (into the flood's transactions) of those admitted, in admission order.
    pub fn admitted(&self) -> Vec<usize> {
        self.admitted.lock().expect("admitted").clone()
    }

    /// Time since the flood started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Stops every connection and waits for them.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            thread.join().expect("a flood thread");
        }
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The process id of the `hutong run --home <home>` process, found by its command line (each
/// test node has a home directory of its own).
pub fn pid_of_node(home: &Path) -> Option<u32> {
    let home = home.as_os_str().as_encoded_bytes();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(command_line) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let arguments: Vec<&[u8]> = command_line.split(|byte| *byte == 0).collect();
        if arguments
            .windows(3)
            .any(|window| window[0] == b"run" && window[1] == b"--home" && window[2] == home)
        {
            return Some(pid);
        }
    }
    None
}

/// The resident set size of process `pid` in KiB (`VmRSS` of `/proc/PID/status`).
pub fn resident_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_a_resident_size() {
        let kib = resident_kib(std::process::id()).expect("VmRSS of this process");
        assert!(kib > 0);
        assert!(pid_of_node(Path::new("/nonexistent-home-of-no-node")).is_none());
    }
}
