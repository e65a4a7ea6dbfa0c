//! Every limit of the API in one place (TIGER_STYLE: name the limits, assert how they relate).
//!
//! The node builds an [`ApiConfig`] from its config file; [`ApiConfig::default`] is what a node
//! serves with when the file says nothing.

use hutong_core::limits;

use crate::limits as api_limits;

/// The limits and switches of the HTTP API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiConfig {
    /// Largest request body accepted (a JSON transaction is larger than its canonical bytes:
    /// hashes and signatures are written in hexadecimal).
    pub body_bytes_max: usize,
    /// A request that takes longer is answered 503 `timeout`.
    pub request_timeout_ms: u64,
    /// Requests served at once; the next one is answered 503 `overloaded` at once rather than
    /// queued, so that a burst cannot build a backlog that outlives it.
    pub concurrent_requests_max: usize,
    /// Sustained requests per second one client (one peer IP address) may make.
    pub client_requests_per_second: u32,
    /// Requests one client may make in a burst above the sustained rate.
    pub client_burst: u32,
    /// Clients whose buckets are remembered; beyond it, clients not seen recently are forgotten
    /// first, and when none can be, new clients share one bucket.
    pub clients_tracked_max: usize,
    /// The reverse proxies the operator runs: a request that comes from one of them is keyed in
    /// the rate limit on the client its `X-Forwarded-For` names (the address nearest the end
    /// that is not itself a trusted proxy, so a client cannot pick its own bucket by sending
    /// the header itself). Any other request is keyed on its peer address, whatever it says.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Page size when a request names none.
    pub page_size_default: usize,
    /// Largest page a request may ask for.
    pub page_size_max: usize,
    /// Most index entries one search request reads before it answers with what it found and a
    /// cursor to continue from.
    pub search_scan_max: usize,
    /// Most blocks one export request streams (the client resumes from the next height).
    pub export_blocks_max: u64,
    /// Module size of a rendered PNG QR code, in pixels.
    pub qr_png_module_pixels: u32,
    /// Connections open at once. At the cap a new connection takes the place of the one that
    /// has waited longest for a request; when every one is serving, it is closed at once. A
    /// node sets this below its file limit (see docs/operations.md).
    pub connections_max: usize,
    /// A connection waiting this long for a request (its first, or its next one kept alive)
    /// is closed.
    pub idle_timeout_ms: u64,
    /// A request head still incomplete this long after its first byte closes the connection.
    pub header_read_timeout_ms: u64,
    /// A request body still incomplete this long after its head is answered 408
    /// `body_timeout` and the connection closed. Bodies are received before a concurrency
    /// permit is taken, so a slow one holds none.
    pub body_read_timeout_ms: u64,
    /// Request bodies received at once; beyond it a request with a body is answered 503
    /// `overloaded`. Bounds the memory bodies hold to this times `body_bytes_max`.
    pub body_reads_max: usize,
    /// `/healthz`, `/readyz` and `/metrics` served at once, from their own pool (not the
    /// general one, and not rate limited), so that probes answer while other traffic fills
    /// the general pool.
    pub probe_requests_max: usize,
    /// The witnesses whose cosignatures the node accepts (`POST /v1/log/cosignatures`), serves
    /// with its checkpoints and puts in bundles asked with `?witnesses=k` (ADR 0038); at most
    /// `hutong_verify::limits::WITNESS_KEYS_MAX`, each name once.
    pub witnesses: Vec<hutong_verify::witness::WitnessKey>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            body_bytes_max: 4 * limits::TX_BYTES_MAX,
            request_timeout_ms: 10_000,
            concurrent_requests_max: 1024,
            client_requests_per_second: 200,
            client_burst: 400,
            clients_tracked_max: 10_000,
            trusted_proxies: Vec::new(),
            page_size_default: 20,
            page_size_max: 100,
            search_scan_max: 2_000,
            export_blocks_max: 1_000,
            qr_png_module_pixels: 8,
            connections_max: api_limits::CONNECTIONS_MAX_DEFAULT,
            idle_timeout_ms: api_limits::IDLE_TIMEOUT_MS_DEFAULT,
            header_read_timeout_ms: api_limits::HEADER_READ_TIMEOUT_MS_DEFAULT,
            body_read_timeout_ms: api_limits::BODY_READ_TIMEOUT_MS_DEFAULT,
            body_reads_max: api_limits::BODY_READS_MAX_DEFAULT,
            probe_requests_max: api_limits::PROBE_REQUESTS_MAX_DEFAULT,
            witnesses: Vec::new(),
        }
    }
}

/// Why a configuration cannot be served with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("`{field}` must be at least {minimum}, it is {found}")]
    TooSmall {
        field: &'static str,
        minimum: u64,
        found: u64,
    },
    #[error("`{field}` must be at most {maximum}, it is {found}")]
    TooLarge {
        field: &'static str,
        maximum: u64,
        found: u64,
    },
    #[error("page_size_default ({default}) is above page_size_max ({max})")]
    PageDefaultAboveMax { default: usize, max: usize },
    #[error("the accepted witnesses: {0}")]
    Witnesses(hutong_verify::witness::WitnessError),
}

fn at_least(field: &'static str, found: u64, minimum: u64) -> Result<(), ConfigError> {
    if found < minimum {
        return Err(ConfigError::TooSmall {
            field,
            minimum,
            found,
        });
    }
    Ok(())
}

fn at_most(field: &'static str, found: u64, maximum: u64) -> Result<(), ConfigError> {
    if found > maximum {
        return Err(ConfigError::TooLarge {
            field,
            maximum,
            found,
        });
    }
    Ok(())
}

impl ApiConfig {
    /// Checks the relations between the limits: a body must hold the largest transaction, pages
    /// hold at least one entry and the default fits the maximum, and so on.
    pub fn validate(&self) -> Result<(), ConfigError> {
        at_most(
            "trusted_proxies",
            self.trusted_proxies.len() as u64,
            crate::limits::TRUSTED_PROXIES_MAX as u64,
        )?;
        hutong_verify::witness::check_keys(&self.witnesses).map_err(ConfigError::Witnesses)?;
        at_least(
            "body_bytes_max",
            self.body_bytes_max as u64,
            limits::TX_BYTES_MAX as u64,
        )?;
        at_least("request_timeout_ms", self.request_timeout_ms, 1)?;
        at_least(
            "concurrent_requests_max",
            self.concurrent_requests_max as u64,
            1,
        )?;
        at_least(
            "client_requests_per_second",
            u64::from(self.client_requests_per_second),
            1,
        )?;
        at_least("client_burst", u64::from(self.client_burst), 1)?;
        at_least("clients_tracked_max", self.clients_tracked_max as u64, 1)?;
        at_least("page_size_max", self.page_size_max as u64, 1)?;
        at_most("page_size_max", self.page_size_max as u64, 10_000)?;
        at_least("page_size_default", self.page_size_default as u64, 1)?;
        if self.page_size_default > self.page_size_max {
            return Err(ConfigError::PageDefaultAboveMax {
                default: self.page_size_default,
                max: self.page_size_max,
            });
        }
        at_least(
            "search_scan_max",
            self.search_scan_max as u64,
            self.page_size_max as u64,
        )?;
        at_least("export_blocks_max", self.export_blocks_max, 1)?;
        at_least(
            "qr_png_module_pixels",
            u64::from(self.qr_png_module_pixels),
            1,
        )?;
        at_most(
            "qr_png_module_pixels",
            u64::from(self.qr_png_module_pixels),
            32,
        )?;
        at_least(
            "connections_max",
            self.connections_max as u64,
            api_limits::CONNECTIONS_MIN as u64,
        )?;
        for (field, value) in [
            ("idle_timeout_ms", self.idle_timeout_ms),
            ("header_read_timeout_ms", self.header_read_timeout_ms),
            ("body_read_timeout_ms", self.body_read_timeout_ms),
        ] {
            at_least(field, value, 1)?;
            at_most(field, value, api_limits::CONNECTION_TIMEOUT_MS_MAX)?;
        }
        // Each body being received holds a connection.
        at_least("body_reads_max", self.body_reads_max as u64, 1)?;
        at_most(
            "body_reads_max",
            self.body_reads_max as u64,
            self.connections_max as u64,
        )?;
        // The probes' pool is a few places beside the general pool, not a second one.
        at_least("probe_requests_max", self.probe_requests_max as u64, 1)?;
        at_most(
            "probe_requests_max",
            self.probe_requests_max as u64,
            api_limits::PROBE_REQUESTS_MAX_DEFAULT as u64 * 4,
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        assert_eq!(ApiConfig::default().validate(), Ok(()));
    }

    #[test]
    fn relations_are_checked() {
        let config = ApiConfig {
            body_bytes_max: 10,
            ..ApiConfig::default()
        };
        assert!(matches!(
            config.validate(),
            Err(ConfigError::TooSmall {
                field: "body_bytes_max",
                ..
            })
        ));
        let config = ApiConfig {
            page_size_default: 500,
            ..ApiConfig::default()
        };
        assert!(matches!(
            config.validate(),
            Err(ConfigError::PageDefaultAboveMax { .. })
        ));
        let config = ApiConfig {
            connections_max: 10,
            ..ApiConfig::default()
        };
        assert!(matches!(
            config.validate(),
            Err(ConfigError::TooSmall {
                field: "connections_max",
                ..
            })
        ));
        let config = ApiConfig {
            body_reads_max: ApiConfig::default().connections_max + 1,
            ..ApiConfig::default()
        };
        assert!(matches!(
            config.validate(),
            Err(ConfigError::TooLarge {
                field: "body_reads_max",
                ..
            })
        ));
        let config = ApiConfig {
            header_read_timeout_ms: 0,
            ..ApiConfig::default()
        };
        assert!(matches!(
            config.validate(),
            Err(ConfigError::TooSmall {
                field: "header_read_timeout_ms",
                ..
            })
        ));
    }
}
