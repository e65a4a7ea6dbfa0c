//! The genesis file: the chain id, its start time, and the initial authorities (with the
//! governors among them), catalogue, grants and nodes. Every node and every auditor starts
//! from it; its hash names the chain's history.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::codec;
use crate::hash::Hash32;
use crate::ident::RegionCode;
use crate::limits;
use crate::records::{
    Authority, Grant, KeyEpoch, KeyOwner, LicenceType, NodeEntry, NodeRegistry, Record, Role,
    TimeMs,
};
use crate::records::{AuthorityId, TypeCode};
use crate::rules::RuleError;
use crate::suite::Suite;
use crate::tx::{AuthorityDraft, FormError, LicenceTypeDraft, TxBody, check_identifier};

/// A grant in the genesis file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisGrant {
    pub authority: AuthorityId,
    pub type_code: TypeCode,
    pub region: RegionCode,
}

/// The genesis file (JSON for people; its canonical bytes are hashed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    pub chain_id: String,
    /// The algorithm suite of every hash and signature of the chain (`"ed25519-blake3"`).
    pub suite: Suite,
    pub genesis_time: TimeMs,
    pub authorities: Vec<AuthorityDraft>,
    pub licence_types: Vec<LicenceTypeDraft>,
    pub grants: Vec<GenesisGrant>,
    pub nodes: Vec<NodeEntry>,
    /// How fresh the chain promises its headers are; defaults when the file leaves it out.
    #[serde(default)]
    pub freshness: Freshness,
}

/// The chain's promise of freshness, fixed by the genesis file (ADR 0037): an idle chain makes a
/// block at least every `heartbeat_ms_max` milliseconds (no node's heartbeat is longer), so a
/// header more than `proof_age_ms_max` older than the verifier's clock comes from a node that is
/// cut off or a chain that has stopped, and a verifier refuses it unless it asks for a
/// historical check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Freshness {
    /// At least [`limits::HEARTBEAT_MS_MIN`].
    pub heartbeat_ms_max: u64,
    /// At least [`limits::PROOF_AGE_HEARTBEATS_MIN`] heartbeats, at most
    /// [`limits::PROOF_AGE_MS_MAX_LIMIT`].
    pub proof_age_ms_max: u64,
}

impl Default for Freshness {
    fn default() -> Self {
        Freshness {
            heartbeat_ms_max: limits::HEARTBEAT_MS_MAX_DEFAULT,
            proof_age_ms_max: limits::PROOF_AGE_MS_MAX_DEFAULT,
        }
    }
}

impl Freshness {
    /// Whether a header of `header_time` is too old at `now`: how much older than allowed.
    pub fn staleness(&self, header_time: TimeMs, now: TimeMs) -> Option<u64> {
        let age = now.saturating_sub(header_time);
        (age > self.proof_age_ms_max).then_some(age)
    }

    fn validate(&self) -> Result<(), GenesisError> {
        let heartbeats_ms = self
            .heartbeat_ms_max
            .saturating_mul(limits::PROOF_AGE_HEARTBEATS_MIN);
        if self.heartbeat_ms_max < limits::HEARTBEAT_MS_MIN
            || self.proof_age_ms_max < heartbeats_ms
            || self.proof_age_ms_max > limits::PROOF_AGE_MS_MAX_LIMIT
        {
            return Err(GenesisError::Freshness(format!(
                "heartbeat_ms_max {} must be at least {}, and proof_age_ms_max {} between {} \
                 heartbeats ({heartbeats_ms}) and {}",
                self.heartbeat_ms_max,
                limits::HEARTBEAT_MS_MIN,
                self.proof_age_ms_max,
                limits::PROOF_AGE_HEARTBEATS_MIN,
                limits::PROOF_AGE_MS_MAX_LIMIT
            )));
        }
        Ok(())
    }
}

/// What is wrong with a genesis file.
#[derive(Debug, thiserror::Error)]
pub enum GenesisError {
    #[error("genesis file is {size_bytes} bytes; the limit is {limit_bytes}")]
    TooLarge {
        size_bytes: usize,
        limit_bytes: usize,
    },
    // The inner errors are written into the message and not given as its source, so that a
    // printed chain of errors says each reason once.
    #[error("genesis JSON: {0}")]
    Json(serde_json::Error),
    #[error("genesis: {0}")]
    Form(FormError),
    #[error("genesis: {0}")]
    Rule(RuleError),
    #[error(
        "genesis: genesis_time {found} ms is outside {min}..={max} (2020-01-01 to 2100-01-01, \
         in milliseconds since 1970): a time in seconds, or none, was likely given"
    )]
    Time {
        found: TimeMs,
        min: TimeMs,
        max: TimeMs,
    },
    #[error("genesis: authority {0} is listed twice")]
    DuplicateAuthority(AuthorityId),
    #[error("genesis: licence type {0} is listed twice")]
    DuplicateType(TypeCode),
    #[error("genesis: no authority holds the governor role")]
    NoGovernor,
    #[error("genesis: no node has voting power")]
    NoValidator,
    #[error("genesis: {0} refers to an unknown authority or type")]
    Dangling(String),
    #[error("genesis: node key {0} is listed twice")]
    DuplicateNode(String),
    #[error("genesis: freshness: {0}")]
    Freshness(String),
}

impl From<serde_json::Error> for GenesisError {
    fn from(error: serde_json::Error) -> Self {
        GenesisError::Json(error)
    }
}

impl From<FormError> for GenesisError {
    fn from(error: FormError) -> Self {
        GenesisError::Form(error)
    }
}

impl From<RuleError> for GenesisError {
    fn from(error: RuleError) -> Self {
        GenesisError::Rule(error)
    }
}

impl Genesis {
    /// Reads and checks a genesis file's JSON.
    pub fn from_json(bytes: &[u8]) -> Result<Self, GenesisError> {
        if bytes.len() > limits::GENESIS_BYTES_MAX {
            return Err(GenesisError::TooLarge {
                size_bytes: bytes.len(),
                limit_bytes: limits::GENESIS_BYTES_MAX,
            });
        }
        let genesis: Genesis = serde_json::from_slice(bytes)?;
        genesis.validate()?;
        Ok(genesis)
    }

    /// Pretty JSON, as written to disk.
    pub fn to_json(&self) -> String {
        // Invariant: the genesis types serialise to JSON without fail (no non-string map keys).
        #[allow(clippy::expect_used)]
        serde_json::to_string_pretty(self).expect("genesis serialises")
    }

    /// `H("hutong/genesis/v1", canonical bytes)`: the name of the chain's history.
    pub fn hash(&self) -> Hash32 {
        self.suite
            .tagged("hutong/genesis/v1", &codec::to_canonical(self))
    }

    /// Every check a block's transactions would get, applied to the initial records.
    pub fn validate(&self) -> Result<(), GenesisError> {
        if !(limits::GENESIS_TIME_MS_MIN..=limits::GENESIS_TIME_MS_MAX).contains(&self.genesis_time)
        {
            return Err(GenesisError::Time {
                found: self.genesis_time,
                min: limits::GENESIS_TIME_MS_MIN,
                max: limits::GENESIS_TIME_MS_MAX,
            });
        }
        if self.chain_id.is_empty() || self.chain_id.len() > limits::CHAIN_ID_BYTES_MAX {
            return Err(FormError::TooLong {
                field: "chain_id",
                size_bytes: self.chain_id.len(),
                limit_bytes: limits::CHAIN_ID_BYTES_MAX,
            }
            .into());
        }
        let mut authorities = BTreeSet::new();
        // A key belongs to one authority, ever (ADR 0031): from genesis on.
        let mut owners = std::collections::BTreeMap::new();
        for draft in &self.authorities {
            TxBody::RegisterAuthority(draft.clone()).check_form()?;
            draft.key.validate().map_err(RuleError::KeyRejected)?;
            if !authorities.insert(draft.id.clone()) {
                return Err(GenesisError::DuplicateAuthority(draft.id.clone()));
            }
            if let Some(owner) = owners.insert(draft.key, draft.id.clone()) {
                return Err(RuleError::KeyInUse(owner).into());
            }
        }
        if !self
            .authorities
            .iter()
            .any(|draft| draft.roles.contains(&Role::Governor))
        {
            return Err(GenesisError::NoGovernor);
        }
        let mut types = BTreeSet::new();
        for draft in &self.licence_types {
            TxBody::DefineLicenceType(draft.clone()).check_form()?;
            if !types.insert(draft.code.clone()) {
                return Err(GenesisError::DuplicateType(draft.code.clone()));
            }
        }
        for grant in &self.grants {
            check_identifier("authority", grant.authority.as_str())?;
            if !authorities.contains(&grant.authority) || !types.contains(&grant.type_code) {
                return Err(GenesisError::Dangling(format!(
                    "grant of {} to {}",
                    grant.type_code, grant.authority
                )));
            }
        }
        let mut keys = BTreeSet::new();
        for node in &self.nodes {
            node.key.validate().map_err(RuleError::KeyRejected)?;
            if !authorities.contains(&node.authority) {
                return Err(GenesisError::Dangling(format!("node {}", node.key)));
            }
            if !keys.insert(node.key) {
                return Err(GenesisError::DuplicateNode(node.key.to_string()));
            }
        }
        if self.nodes.len() > limits::NODES_MAX {
            return Err(RuleError::TooManyNodes {
                count: self.nodes.len(),
                limit: limits::NODES_MAX,
            }
            .into());
        }
        if !self.nodes.iter().any(|node| node.power > 0) {
            return Err(GenesisError::NoValidator);
        }
        self.freshness.validate()
    }

    /// The initial records (state at height 0).
    pub fn records(&self) -> Vec<Record> {
        let mut records = Vec::new();
        let mut governors: Vec<AuthorityId> = Vec::new();
        for draft in &self.authorities {
            let mut roles = draft.roles.clone();
            roles.sort();
            roles.dedup();
            if roles.contains(&Role::Governor) {
                governors.push(draft.id.clone());
            }
            records.push(Record::Authority(Authority {
                id: draft.id.clone(),
                name_zh: draft.name_zh.clone(),
                name_en: draft.name_en.clone(),
                region: draft.region.clone(),
                uscc: draft.uscc.clone(),
                roles,
                keys: vec![KeyEpoch {
                    key: draft.key,
                    valid_from: 0,
                    valid_until: None,
                    compromised_from: None,
                }],
                last_nonce: 0,
                registered_at: 0,
            }));
            records.push(Record::KeyOwner(KeyOwner {
                key: draft.key,
                authority: draft.id.clone(),
            }));
        }
        governors.sort();
        records.push(Record::Governors(governors));
        for draft in &self.licence_types {
            records.push(Record::LicenceType(type_from_draft(draft)));
        }
        for grant in &self.grants {
            records.push(Record::Grant(Grant {
                authority: grant.authority.clone(),
                type_code: grant.type_code.clone(),
                region: grant.region.clone(),
                periods: vec![(0, None)],
            }));
        }
        let mut nodes = self.nodes.clone();
        nodes.sort_by_key(|node| node.key);
        records.push(Record::Nodes(NodeRegistry {
            nodes,
            pending: Vec::new(),
        }));
        records
    }
}

fn type_from_draft(draft: &LicenceTypeDraft) -> LicenceType {
    draft.to_type(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::Fixture;

    #[test]
    fn the_genesis_file_names_its_suite() {
        let genesis = Fixture::new().genesis;
        let json: serde_json::Value = serde_json::from_str(&genesis.to_json()).unwrap();
        assert_eq!(json["suite"], "ed25519-blake3");
        assert_eq!(
            Genesis::from_json(genesis.to_json().as_bytes()).unwrap(),
            genesis
        );
    }

    #[test]
    fn a_genesis_time_in_seconds_or_of_1970_is_refused_and_each_reason_is_said_once() {
        let genesis = Fixture::new().genesis;
        for time in [0, 1, 1_767_225_600, limits::GENESIS_TIME_MS_MAX + 1] {
            let mut json: serde_json::Value = serde_json::from_str(&genesis.to_json()).unwrap();
            json["genesis_time"] = time.into();
            let error = Genesis::from_json(json.to_string().as_bytes()).unwrap_err();
            assert!(
                matches!(error, GenesisError::Time { found, .. } if found == time),
                "{error}"
            );
        }
        let error = Genesis::from_json(b"{").unwrap_err();
        assert!(std::error::Error::source(&error).is_none(), "{error}");
        let mut json: serde_json::Value = serde_json::from_str(&genesis.to_json()).unwrap();
        json["chain_id"] = "".into();
        let error = Genesis::from_json(json.to_string().as_bytes()).unwrap_err();
        assert!(std::error::Error::source(&error).is_none(), "{error}");
    }

    #[test]
    fn a_genesis_file_without_a_suite_or_with_an_unknown_one_is_refused() {
        let genesis = Fixture::new().genesis;
        let mut json: serde_json::Value = serde_json::from_str(&genesis.to_json()).unwrap();
        json.as_object_mut().unwrap().remove("suite");
        let error = Genesis::from_json(json.to_string().as_bytes()).unwrap_err();
        assert!(
            error.to_string().contains("missing field `suite`"),
            "{error}"
        );

        json["suite"] = "sm2-sm3".into();
        let error = Genesis::from_json(json.to_string().as_bytes()).unwrap_err();
        assert!(
            error.to_string().contains("sm2-sm3") && error.to_string().contains("ed25519-blake3"),
            "{error}"
        );
    }
}
