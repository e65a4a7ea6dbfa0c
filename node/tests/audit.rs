//! `hutong audit`'s usage errors, on the real binary: a time range naming a day the calendar
//! does not have is refused before anything is read, with exit code 3 and the date named.

use std::path::PathBuf;
use std::process::Command;

/// Bad configuration or input (node/src/main.rs, `exit::CONFIG`).
const CONFIG: i32 = 3;

fn genesis() -> String {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../verify/tests/vectors/genesis.json");
    path.to_str().expect("utf-8 path").to_owned()
}

fn audit(args: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_hutong"))
        .arg("audit")
        .args(args)
        .output()
        .expect("run hutong");
    (
        output.status.code().expect("exit code"),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn an_impossible_date_in_the_range_is_a_usage_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    // Never opened: the range is checked first.
    let export = dir.path().join("export.ndjson");
    let export = export.to_str().unwrap();
    let genesis = genesis();
    let (code, stderr) = audit(&[
        "--genesis",
        &genesis,
        "--export",
        export,
        "--from",
        "2026-02-31",
    ]);
    assert_eq!(code, CONFIG, "{stderr}");
    assert!(
        stderr.contains(
            "--from: \"2026-02-31\": 2026-02-31 is not a day of the calendar: February 2026 has 28 days"
        ),
        "{stderr}"
    );
    let (code, stderr) = audit(&[
        "--genesis",
        &genesis,
        "--export",
        export,
        "--to",
        "2025-02-29T12:00:00Z",
    ]);
    assert_eq!(code, CONFIG, "{stderr}");
    assert!(
        stderr.contains("--to: \"2025-02-29T12:00:00Z\": 2025-02-29 is not a day of the calendar: February 2025 has 28 days"),
        "{stderr}"
    );
}
