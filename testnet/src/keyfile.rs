//! Key files in the node's format (`{"kind", "public_key", "secret_seed"}`, mode 0600), so
//! that `hutong init --node-key` and `hutong tx --key` read what the testnet writes.

use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use hutong_ledger::crypto::{PublicKey, SecretKey};

use crate::Error;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    kind: String,
    public_key: PublicKey,
    secret_seed: String,
}

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
    let file = KeyFile {
        kind: kind.into(),
        public_key: key.public_key(),
        secret_seed: hex::encode(key.to_seed_bytes()),
    };
    let mut text =
        serde_json::to_string_pretty(&file).map_err(|error| Error::Node(error.to_string()))?;
    text.push('\n');
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true).mode(0o600);
    let mut handle = options.open(path).map_err(|error| Error::io(path, error))?;
    std::io::Write::write_all(&mut handle, text.as_bytes()).map_err(|error| Error::io(path, error))
}

/// Reads a key file and checks that its public key matches its seed.
pub fn read(path: &Path) -> Result<SecretKey, Error> {
    let text = std::fs::read_to_string(path).map_err(|error| Error::io(path, error))?;
    let file: KeyFile = serde_json::from_str(&text)
        .map_err(|error| Error::Usage(format!("{}: not a key file: {error}", path.display())))?;
    let seed: [u8; 32] = hex::decode(&file.secret_seed)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| {
            Error::Usage(format!(
                "{}: secret_seed is not 32 bytes of hex",
                path.display()
            ))
        })?;
    let key = SecretKey::from_seed(seed);
    if key.public_key() != file.public_key {
        return Err(Error::Usage(format!(
            "{}: public_key does not match secret_seed",
            path.display()
        )));
    }
    Ok(key)
}
