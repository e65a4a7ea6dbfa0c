//! The `hutong` binary. Its commands arrive with the node issue; until then it only says so.

fn main() -> std::process::ExitCode {
    eprintln!("hutong: no commands are available yet; see README.md");
    std::process::ExitCode::from(2)
}
