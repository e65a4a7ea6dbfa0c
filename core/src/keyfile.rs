//! The text of a key file: one ed25519 key as JSON, `{"kind", "public_key", "secret_seed"}`.
//!
//! `hutong keygen` and `hutong init` write it, `hutong run` and `hutong tx` read it, and the
//! testnet writes the same for every node and authority it makes; this module is the one
//! definition of the format they share. Reading and writing the file (mode 0600, durably)
//! is the caller's: the ledger does no IO besides its store.
//!
//! ```
//! use hutong_core::keyfile;
//! use hutong_core::crypto::SecretKey;
//!
//! let key = SecretKey::from_seed([7; 32]);
//! let text = keyfile::encode("authority", &key);
//! assert_eq!(keyfile::decode(&text).unwrap().public_key(), key.public_key());
//! ```

use serde::{Deserialize, Serialize};

use crate::crypto::{PublicKey, SecretKey};

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    /// What the key is for: `node` (its libp2p identity and consensus votes) or
    /// `authority` (the transactions it signs). Informative: any kind decodes.
    kind: String,
    public_key: PublicKey,
    /// The 32-byte ed25519 seed, hex.
    secret_seed: String,
}

/// What is wrong with a key file's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyFileError {
    #[error("not a hutong key file: {0}")]
    NotAKeyFile(String),
    #[error("secret_seed is not 64 hexadecimal characters")]
    Seed,
    #[error("public_key does not belong to secret_seed")]
    Mismatch,
}

/// The key file's text for `key` (pretty JSON, ending with a newline).
pub fn encode(kind: &str, key: &SecretKey) -> String {
    let file = KeyFile {
        kind: kind.to_owned(),
        public_key: key.public_key(),
        secret_seed: hex::encode(key.to_seed_bytes()),
    };
    // Three strings, the key in its text form: serialising them cannot fail.
    let mut text = serde_json::to_string_pretty(&file).unwrap_or_default();
    text.push('\n');
    text
}

/// The key of a key file's text, once its public key is checked against its seed.
pub fn decode(text: &str) -> Result<SecretKey, KeyFileError> {
    let file: KeyFile =
        serde_json::from_str(text).map_err(|error| KeyFileError::NotAKeyFile(error.to_string()))?;
    let mut seed = [0u8; 32];
    hex::decode_to_slice(file.secret_seed.trim(), &mut seed).map_err(|_| KeyFileError::Seed)?;
    let key = SecretKey::from_seed(seed);
    if key.public_key() != file.public_key {
        return Err(KeyFileError::Mismatch);
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_round_trips_through_its_text() {
        let key = SecretKey::from_seed([3; 32]);
        let text = encode("node", &key);
        assert!(text.ends_with('\n'));
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["kind"], "node");
        assert_eq!(value["secret_seed"], hex::encode([3u8; 32]));
        assert_eq!(value["public_key"], key.public_key().to_string());
        assert_eq!(decode(&text).unwrap().to_seed_bytes(), [3; 32]);
    }

    #[test]
    fn each_fault_of_a_key_file_is_named() {
        let key = SecretKey::from_seed([3; 32]);
        let text = encode("node", &key);
        assert!(matches!(
            decode("{}"),
            Err(KeyFileError::NotAKeyFile(problem)) if problem.contains("missing field")
        ));
        let extra = text.replacen('{', "{\"extra\": 1,", 1);
        assert!(matches!(decode(&extra), Err(KeyFileError::NotAKeyFile(_))));
        let short = text.replace(&hex::encode([3u8; 32]), "0303");
        assert_eq!(decode(&short).unwrap_err(), KeyFileError::Seed);
        let other = SecretKey::from_seed([4; 32]).public_key().to_string();
        let mismatched = text.replace(&key.public_key().to_string(), &other);
        assert_eq!(decode(&mismatched).unwrap_err(), KeyFileError::Mismatch);
    }
}
