//! Shared set-up of the tests that run `hutong` on a home and expect it to refuse at once.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use hutong_core::genesis::Genesis;

/// A node must refuse before it starts anything: far less than this.
pub const REFUSAL_WAIT: Duration = Duration::from_secs(60);

/// `hutong init` of a home under `dir` for `genesis`; returns the home.
pub fn init_home(dir: &Path, genesis: &Genesis) -> PathBuf {
    let home = dir.join("home");
    let genesis_path = dir.join("genesis.json");
    std::fs::write(&genesis_path, genesis.to_json()).unwrap();
    let init = Command::new(env!("CARGO_BIN_EXE_hutong"))
        .arg("init")
        .arg("--home")
        .arg(&home)
        .arg("--genesis")
        .arg(&genesis_path)
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    home
}

/// `hutong run` on `home`, waited for (at most [`REFUSAL_WAIT`], then killed and failed):
/// its exit status and what it wrote to standard error.
pub fn run_until_exit(home: &Path) -> (ExitStatus, String) {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hutong"))
        .arg("run")
        .arg("--home")
        .arg(home)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > REFUSAL_WAIT {
            child.kill().unwrap();
            panic!("the node did not refuse within {REFUSAL_WAIT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    (status, stderr)
}

/// What a run of `hutong` gave.
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `hutong` with `args` in `directory` (the test's own working directory when `None`).
pub fn hutong_in(directory: Option<&Path>, args: &[&str]) -> Outcome {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hutong"));
    if let Some(directory) = directory {
        command.current_dir(directory);
    }
    let output = command.args(args).output().expect("run hutong");
    Outcome {
        code: output.status.code().expect("exit code"),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}
