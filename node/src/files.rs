//! The process's file descriptors. At start the node raises its soft `RLIMIT_NOFILE` to the
//! hard limit, then caps the API's open connections so that, with every descriptor reserved
//! for the store, the signing state, the p2p side and the process itself
//! ([`FILE_DESCRIPTORS_RESERVED`]), the process never runs out: a flood of connections is
//! then refused by the API's cap, not by `accept` failing, and never by the signing state
//! failing to open (docs/operations.md, "File descriptors and API connections").

use nix::sys::resource::{Resource, getrlimit, setrlimit};

use crate::limits::{API_CONNECTIONS_COMPUTED_MAX, FILE_DESCRIPTORS_RESERVED};

/// The open-file limit, before and after raising it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileLimit {
    /// The soft limit the process was started with.
    pub soft_at_start: u64,
    /// The soft limit now: the hard limit, unless the system refused to raise it.
    pub soft: u64,
    pub hard: u64,
}

/// Why the API's connection cap does not fit under the file limit.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FileLimitError {
    #[error("reading the open-file limit: {0}")]
    Read(String),
    #[error(
        "api.connections_max is {configured}, but the open-file limit is {limit} and {reserved} \
         descriptors are reserved for the store, the signing state, the p2p side and the process: \
         at most {room} connections fit; lower api.connections_max or raise the limit (ulimit -n)"
    )]
    DoesNotFit {
        configured: usize,
        limit: u64,
        reserved: u64,
        room: u64,
    },
    #[error(
        "the open-file limit is {limit}; with {reserved} descriptors reserved, fewer than the \
         {minimum} API connections a node needs fit: raise the limit (ulimit -n)"
    )]
    TooLow {
        limit: u64,
        reserved: u64,
        minimum: usize,
    },
}

/// Raises the soft open-file limit to the hard one (if the system refuses, the limit stays
/// as it was, which the caller logs).
pub fn raise_file_limit() -> Result<FileLimit, FileLimitError> {
    let (soft_at_start, hard) = getrlimit(Resource::RLIMIT_NOFILE)
        .map_err(|error| FileLimitError::Read(error.to_string()))?;
    let soft = if soft_at_start < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        hard
    } else {
        soft_at_start
    };
    Ok(FileLimit {
        soft_at_start,
        soft,
        hard,
    })
}

/// The API's connection cap under the soft limit `limit`: the configured one if it fits
/// beside the reserved descriptors, else an error; unconfigured, all the room there is (up to
/// [`API_CONNECTIONS_COMPUTED_MAX`]).
pub fn api_connections_max(limit: u64, configured: Option<usize>) -> Result<usize, FileLimitError> {
    let room = limit.saturating_sub(FILE_DESCRIPTORS_RESERVED);
    let minimum = hutong_api::limits::CONNECTIONS_MIN;
    match configured {
        Some(configured) if configured as u64 > room => Err(FileLimitError::DoesNotFit {
            configured,
            limit,
            reserved: FILE_DESCRIPTORS_RESERVED,
            room,
        }),
        Some(configured) => Ok(configured),
        None if room < minimum as u64 => Err(FileLimitError::TooLow {
            limit,
            reserved: FILE_DESCRIPTORS_RESERVED,
            minimum,
        }),
        None => Ok(room.min(API_CONNECTIONS_COMPUTED_MAX as u64) as usize),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::FILE_DESCRIPTORS_P2P;

    #[test]
    fn the_cap_is_what_fits_beside_the_reserved_descriptors() {
        let room = 1024 - FILE_DESCRIPTORS_RESERVED;
        assert_eq!(api_connections_max(1024, None), Ok(room as usize));
        assert_eq!(api_connections_max(1024, Some(100)), Ok(100));
        assert_eq!(
            api_connections_max(1024, Some(room as usize + 1)),
            Err(FileLimitError::DoesNotFit {
                configured: room as usize + 1,
                limit: 1024,
                reserved: FILE_DESCRIPTORS_RESERVED,
                room,
            })
        );
        assert!(matches!(
            api_connections_max(FILE_DESCRIPTORS_RESERVED + 10, None),
            Err(FileLimitError::TooLow { .. })
        ));
        assert_eq!(
            api_connections_max(1 << 20, None),
            Ok(API_CONNECTIONS_COMPUTED_MAX)
        );
    }

    #[test]
    fn the_p2p_reserve_covers_the_networks_connections() {
        let network = crate::network::NetworkLimits::default();
        assert!(
            u64::from(network.connections_established_max)
                + u64::from(network.connections_pending_incoming_max)
                <= FILE_DESCRIPTORS_P2P
        );
    }

    #[test]
    fn the_soft_limit_ends_at_the_hard_one() {
        let limit = raise_file_limit().unwrap();
        assert!(limit.soft_at_start <= limit.soft && limit.soft <= limit.hard);
        let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        assert_eq!(soft, limit.soft);
    }
}
