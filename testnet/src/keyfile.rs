//! Key files in the node's format (`hutong_core::keyfile`), mode 0600, so that
//! `hutong init --node-key` and `hutong tx --key` read what the testnet writes.

use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use hutong_core::crypto::SecretKey;
use hutong_core::keyfile;

use crate::Error;

/// A new key from the operating system's random source.
pub fn generate() -> Result<SecretKey, Error> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|error| {
        Error::Node(format!("no randomness from the operating system: {error}"))
    })?;
    Ok(SecretKey::from_seed(seed))
}

/// Writes a key file with mode 0600 (replacing any).
pub fn write(path: &Path, kind: &str, key: &SecretKey) -> Result<(), Error> {
    let text = keyfile::encode(kind, key);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true).mode(0o600);
    let mut handle = options.open(path).map_err(|error| Error::io(path, error))?;
    std::io::Write::write_all(&mut handle, text.as_bytes()).map_err(|error| Error::io(path, error))
}

/// Reads a key file and checks that its public key matches its seed.
pub fn read(path: &Path) -> Result<SecretKey, Error> {
    let text = std::fs::read_to_string(path).map_err(|error| Error::io(path, error))?;
    keyfile::decode(&text).map_err(|error| Error::Usage(format!("{}: {error}", path.display())))
}
