//! hutong-testnet: not built yet; this crate holds only what the workspace build needs.
