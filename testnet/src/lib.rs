//! hutong-testnet: local test networks of real `hutong run` processes on loopback
//! ([`network`]: `hutong testnet up|down`), the demo data set drawn from the project's
//! source documents ([`demo`]), and the load generator ([`bench`]: `hutong bench`).
//!
//! The `hutong` binary wires these into its command line; this crate starts the binary it is
//! given for each node, so a testnet runs exactly what an operator runs.

pub mod bench;
pub mod client;
pub mod demo;
pub mod keyfile;
pub mod limits;
pub mod network;

use std::path::Path;

/// What went wrong, classified for the command's exit code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad options or a testnet directory in the wrong state.
    #[error("{0}")]
    Usage(String),
    #[error("{path}: {error}")]
    Io { path: String, error: std::io::Error },
    /// A node process failed to start, exited, or did not make progress in time.
    #[error("{0}")]
    Node(String),
    /// A node's API did not answer.
    #[error("{0}")]
    Unreachable(String),
    #[error("demo data: {0}")]
    Demo(String),
}

impl Error {
    fn io(path: &Path, error: std::io::Error) -> Self {
        Error::Io {
            path: path.display().to_string(),
            error,
        }
    }
}
