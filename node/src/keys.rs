//! Key files (the format of `hutong_core::keyfile`), written atomically with mode 0600.

use std::path::Path;

use hutong_core::crypto::SecretKey;
use hutong_core::keyfile;

/// What is wrong with a key file.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {error}")]
    Io { path: String, error: std::io::Error },
    #[error("{path}: {problem}")]
    Format { path: String, problem: String },
    #[error("{path} already exists; pass --force to overwrite it")]
    Exists { path: String },
}

/// A new key from the operating system's random source.
pub fn generate() -> Result<SecretKey, getrandom::Error> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)?;
    Ok(SecretKey::from_seed(seed))
}

/// Writes a key file (mode 0600), refusing to overwrite unless `force`.
pub fn write(path: &Path, kind: &str, key: &SecretKey, force: bool) -> Result<(), KeyError> {
    let display = path.display().to_string();
    if path.exists() && !force {
        return Err(KeyError::Exists { path: display });
    }
    let text = keyfile::encode(kind, key);
    crate::durable::write_atomic(path, text.as_bytes(), 0o600).map_err(|error| KeyError::Io {
        path: display,
        error,
    })
}

/// Reads a key file and checks that its public key matches its seed.
pub fn read(path: &Path) -> Result<SecretKey, KeyError> {
    let display = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|error| KeyError::Io {
        path: display.clone(),
        error,
    })?;
    keyfile::decode(&text).map_err(|error| KeyError::Format {
        path: display,
        problem: error.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn round_trip_with_private_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node_key.json");
        let key = generate().unwrap();
        write(&path, "node", &key, false).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(read(&path).unwrap().public_key(), key.public_key());
        assert!(matches!(
            write(&path, "node", &key, false),
            Err(KeyError::Exists { .. })
        ));
    }

    #[test]
    fn mismatched_public_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.json");
        write(&path, "node", &generate().unwrap(), false).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let other = generate().unwrap().public_key().to_string();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let original = value["public_key"].as_str().unwrap().to_string();
        std::fs::write(&path, text.replace(&original, &other)).unwrap();
        assert!(matches!(read(&path), Err(KeyError::Format { .. })));
    }
}
