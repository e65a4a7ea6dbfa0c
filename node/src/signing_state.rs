//! The signing state file, `signing_state.json` in the data directory: what a validator last
//! signed, so that after a crash it never signs a conflicting message (ADR 0005). It is
//! written by [`write`] before anything it records leaves the node, and read by [`read`] at
//! start; [`decode`] is the one reader of its bytes, bounded by
//! [`limits::SIGNING_STATE_BYTES_MAX`] before a byte is parsed.

use std::io::Read;
use std::path::Path;

use hutong_consensus::SigningState;

use crate::limits;
use crate::messages::Value;

/// Why a signing state file cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SigningStateError {
    #[error("{size_bytes} bytes exceed the limit of {limit_bytes} bytes")]
    TooLarge {
        size_bytes: usize,
        limit_bytes: usize,
    },
    #[error("unreadable ({0})")]
    Json(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Decodes a signing state file's bytes, checking their size first.
pub fn decode(bytes: &[u8]) -> Result<SigningState<Value>, SigningStateError> {
    if bytes.len() > limits::SIGNING_STATE_BYTES_MAX {
        return Err(SigningStateError::TooLarge {
            size_bytes: bytes.len(),
            limit_bytes: limits::SIGNING_STATE_BYTES_MAX,
        });
    }
    serde_json::from_slice(bytes).map_err(|error| SigningStateError::Json(error.to_string()))
}

/// The bytes the node stores for `state` (`signing_file.rs` writes them; this is the fuzz
/// target's and the seed corpus's spelling of the same JSON).
#[cfg_attr(not(test), allow(dead_code))]
pub fn encode(state: &SigningState<Value>) -> Vec<u8> {
    // Invariant: a signing state is plain data (no maps with non-string keys, no floats).
    #[allow(clippy::expect_used)]
    serde_json::to_vec(state).expect("a signing state serialises to JSON")
}

/// Reads the file at `path`: `None` if there is none (a validator that never signed). At
/// most one byte past the limit is read, so a huge file costs no more than a small one.
pub fn read(path: &Path) -> Result<Option<SigningState<Value>>, SigningStateError> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error.into()),
    };
    let mut bytes = Vec::new();
    let read_bytes_max = limits::SIGNING_STATE_BYTES_MAX as u64 + 1;
    file.take(read_bytes_max).read_to_end(&mut bytes)?;
    decode(&bytes).map(Some)
}

#[cfg(test)]
mod tests {
    use hutong_consensus::{Signature, SignedMessage, SignedVote, ValidatorId, Vote, VoteType};

    use super::*;

    fn state() -> SigningState<Value> {
        let vote = SignedVote {
            vote: Vote {
                vote_type: VoteType::Precommit,
                height: 7,
                round: 2,
                value: Some([5; 32]),
                validator: ValidatorId([1; 32]),
            },
            signature: Signature([3; 64]),
        };
        SigningState {
            last_signed: SignedMessage::Vote(vote.clone()),
            signed_before: Vec::new(),
            locked: None,
            valid: None,
            valid_round_prevotes: vec![vote],
        }
    }

    #[test]
    fn a_written_state_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing_state.json");
        assert!(read(&path).unwrap().is_none());
        crate::durable::write_atomic(&path, &encode(&state()), 0o600).unwrap();
        assert_eq!(read(&path).unwrap(), Some(state()));
        assert_eq!(decode(&encode(&state())).unwrap(), state());
    }

    #[test]
    fn an_oversize_file_is_refused_before_parsing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing_state.json");
        std::fs::write(&path, vec![b' '; limits::SIGNING_STATE_BYTES_MAX + 10]).unwrap();
        assert!(matches!(
            read(&path),
            Err(SigningStateError::TooLarge { size_bytes, limit_bytes })
                if size_bytes == limits::SIGNING_STATE_BYTES_MAX + 1
                    && limit_bytes == limits::SIGNING_STATE_BYTES_MAX
        ));
    }

    #[test]
    fn damaged_bytes_are_a_typed_error() {
        let mut bytes = encode(&state());
        bytes.truncate(bytes.len() - 1);
        assert!(matches!(decode(&bytes), Err(SigningStateError::Json(_))));
        assert!(matches!(decode(b"[]"), Err(SigningStateError::Json(_))));
    }
}
