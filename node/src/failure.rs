//! How a command fails: the error shown to the operator and the process's exit code, shared
//! by every command and by `main`.

/// A failed command: what to tell the operator and the exit code that classifies it.
#[derive(Debug)]
pub struct Failure {
    pub error: anyhow::Error,
    pub code: u8,
}

/// Exit codes: 1 runtime failure (among them a node home in use by another process), 2 bad
/// usage (clap), 3 bad configuration or input file, 4 a store that cannot be used (corrupt,
/// foreign, or lost beside a later signing state: `store_open`), 5 transaction rejected, 6 node
/// unreachable, 7 a proof does not verify, 8 a witness saw a split view (two checkpoints the
/// validators signed that cannot both be true; it wrote the proof and stopped).
pub mod exit {
    pub const RUNTIME: u8 = 1;
    pub const CONFIG: u8 = 3;
    pub const STORE: u8 = 4;
    pub const REJECTED: u8 = 5;
    pub const UNREACHABLE: u8 = 6;
    pub const INVALID: u8 = 7;
    pub const SPLIT_VIEW: u8 = 8;
}

impl Failure {
    pub fn new(code: u8, error: impl Into<anyhow::Error>) -> Self {
        Failure {
            error: error.into(),
            code,
        }
    }
}

/// Attaches an exit code to any error.
pub trait WithCode<T> {
    fn code(self, code: u8) -> Result<T, Failure>;
}

impl<T, E: Into<anyhow::Error>> WithCode<T> for Result<T, E> {
    fn code(self, code: u8) -> Result<T, Failure> {
        self.map_err(|error| Failure::new(code, error))
    }
}
