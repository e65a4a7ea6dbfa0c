//! Key files (the format of `hutong_core::keyfile`), written atomically with mode 0600, and
//! read only when no other user may read or change them (as ssh treats its private keys).

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use hutong_core::crypto::SecretKey;
use hutong_core::keyfile;

use crate::limits::KEY_FILE_BYTES_MAX;

/// What is wrong with a key file.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {error}")]
    Io { path: String, error: std::io::Error },
    #[error("{path}: {problem}")]
    Format { path: String, problem: String },
    #[error("{path} already exists; pass --force to overwrite it")]
    Exists { path: String },
    #[error(
        "{path} holds a secret key but other users may read or change it (mode {mode:03o}); \
         make it private to its owner: chmod 600 {path}"
    )]
    Exposed { path: String, mode: u32 },
    #[error("{path} is larger than a key file can be ({bytes_max} bytes)")]
    TooLarge { path: String, bytes_max: usize },
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

/// Reads a key file and checks that its public key matches its seed. A file that a group or
/// other users may access is refused before it is read, and at most
/// [`KEY_FILE_BYTES_MAX`] bytes are read.
pub fn read(path: &Path) -> Result<SecretKey, KeyError> {
    let display = path.display().to_string();
    let io = |error| KeyError::Io {
        path: display.clone(),
        error,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mode = file.metadata().map_err(io)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyError::Exposed {
            path: display,
            mode,
        });
    }
    let mut bytes = Vec::new();
    file.take(KEY_FILE_BYTES_MAX as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() > KEY_FILE_BYTES_MAX {
        return Err(KeyError::TooLarge {
            path: display,
            bytes_max: KEY_FILE_BYTES_MAX,
        });
    }
    let text = String::from_utf8_lossy(&bytes);
    keyfile::decode(&text).map_err(|error| KeyError::Format {
        path: display,
        problem: error.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn a_key_file_others_may_access_is_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.json");
        let key = generate().unwrap();
        write(&path, "node", &key, false).unwrap();
        for mode in [0o644, 0o640, 0o604, 0o660, 0o602] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            match read(&path) {
                Err(KeyError::Exposed { mode: found, .. }) => assert_eq!(found, mode),
                other => panic!("mode {mode:03o}: {other:?}"),
            }
        }
        let message = read(&path).unwrap_err().to_string();
        assert!(message.contains("chmod 600"), "{message}");
        // Read-only for its owner is private too.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
        assert_eq!(read(&path).unwrap().public_key(), key.public_key());
    }

    #[test]
    fn an_oversize_key_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.json");
        write(&path, "node", &generate().unwrap(), false).unwrap();
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str(&" ".repeat(KEY_FILE_BYTES_MAX));
        std::fs::write(&path, text).unwrap();
        assert!(matches!(
            read(&path),
            Err(KeyError::TooLarge {
                bytes_max: KEY_FILE_BYTES_MAX,
                ..
            })
        ));
    }
}
