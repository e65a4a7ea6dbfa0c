//! Helpers for load and attack tests against a running node: a submitter that keeps its
//! connection, and the resident memory of a node's process read from `/proc`.

use std::path::Path;
use std::time::Duration;

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
