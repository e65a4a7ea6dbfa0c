//! The verdict: "is licence L genuine, valid, and valid for use in region R, at time T?",
//! with every reason (DESIGN.md sections 1 and 7).
//!
//! It is a pure function of records, so that a verifier holding a proof bundle (the licence,
//! its issuer, the grant, the recognitions and objections, each proved against a signed state
//! root) computes the same answer offline as the node did.
//!
//! Where a licence may be used without a recognition: in the province it was issued in (the
//! first two digits of its region), or anywhere when it was issued nationally (000000).
//! Elsewhere it needs a recognition attestation in force at T whose recognising region covers
//! R (a province-level attestation covers the cities under it) and which names the licence's
//! type and its issuing region or issuer.

use serde::{Deserialize, Serialize};

use crate::hash::Hash32;
use crate::ident::RegionCode;
use crate::records::{
    Authority, AuthorityId, Grant, Height, Licence, Objection, Recognition, Status, TimeMs,
};

/// What one reason is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasonCode {
    /// The issuer held a grant for the type in a region covering the licence's at issuance.
    IssuerAuthorised,
    /// T is before the start of validity.
    NotYetValid,
    /// T is at or after the end of validity.
    Expired,
    /// Within its validity window at T.
    WithinValidity,
    /// The status at T.
    Status,
    /// Usable in R without a recognition (same province, or national issuance).
    IssuedInRegion,
    /// Recognised in R through an attestation.
    Recognised,
    /// Not usable in R: no attestation in force covers it.
    NotRecognised,
    /// Objections are open on the licence (it stays valid; verifiers are told).
    Disputed,
    /// Pledges or mortgages are registered (an annotation; validity is unchanged).
    Pledged,
}

/// One reason behind a verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    pub code: ReasonCode,
    /// Whether this reason counts for validity (`false` makes the verdict invalid).
    pub ok: bool,
    /// One sentence in English.
    pub detail: String,
    /// The same sentence in Chinese.
    pub detail_zh: String,
}

/// The answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// Genuine and valid at T (issuer authorised, within validity, active).
    pub valid: bool,
    /// When a region was asked about: valid and usable there.
    pub valid_in_region: Option<bool>,
    pub at: TimeMs,
    pub region: Option<RegionCode>,
    pub status: Status,
    pub valid_from: TimeMs,
    pub valid_until: Option<TimeMs>,
    pub issuer: AuthorityId,
    /// The attestation that makes it usable in the region, if one was needed and found.
    pub recognition: Option<Hash32>,
    pub open_objections: Vec<Hash32>,
    pub reasons: Vec<Reason>,
}

/// The records a verdict is computed from.
#[derive(Clone, Copy, Debug)]
pub struct VerdictInputs<'a> {
    pub licence: &'a Licence,
    pub issuer: &'a Authority,
    /// The issuer's grant for the licence's type that covered its region at issuance.
    pub grant: Option<&'a Grant>,
    /// Candidate recognitions (all in force or not; the function picks).
    pub recognitions: &'a [Recognition],
    /// The licence's objections (open or resolved; only open ones count).
    pub objections: &'a [Objection],
}

fn reason(code: ReasonCode, ok: bool, detail: String, detail_zh: String) -> Reason {
    Reason {
        code,
        ok,
        detail,
        detail_zh,
    }
}

/// Whether a licence issued in `issued_in` may be used in `region` without a recognition.
pub fn usable_without_recognition(issued_in: &RegionCode, region: &RegionCode) -> bool {
    issued_in.is_national() || issued_in.province() == region.province()
}

/// Computes the verdict at `at`, for use in `region` if given.
pub fn verdict(inputs: &VerdictInputs<'_>, region: Option<&RegionCode>, at: TimeMs) -> Verdict {
    let licence = inputs.licence;
    let standing = licence.standing_at(at);
    let mut reasons = Vec::new();

    let authorised = inputs.grant.is_some_and(|grant| {
        grant.authority == licence.issuer
            && grant.type_code == licence.type_code
            && grant.region.covers(&licence.region)
            && grant.in_force_at(licence.issued_at)
    }) && inputs.issuer.id == licence.issuer;
    reasons.push(match inputs.grant {
        Some(grant) if authorised => reason(
            ReasonCode::IssuerAuthorised,
            true,
            format!(
                "issued by {} ({}) under its grant for {} in {}, in force at height {}",
                inputs.issuer.name_en,
                licence.issuer,
                licence.type_code,
                grant.region,
                licence.issued_at
            ),
            format!(
                "由{}依据其在{}的{}发证授权签发（区块高度{}）",
                inputs.issuer.name_zh, grant.region, licence.type_code, licence.issued_at
            ),
        ),
        _ => reason(
            ReasonCode::IssuerAuthorised,
            false,
            format!(
                "no grant shows that {} could issue {} in {} at height {}",
                licence.issuer, licence.type_code, licence.region, licence.issued_at
            ),
            format!("无法证明{}有权签发该证照", licence.issuer),
        ),
    });

    let within_validity = if at < licence.valid_from {
        reasons.push(reason(
            ReasonCode::NotYetValid,
            false,
            format!("valid only from {} (ms since epoch)", licence.valid_from),
            format!("有效期自{}起，尚未生效", licence.valid_from),
        ));
        false
    } else if let Some(until) = standing.valid_until.filter(|until| at >= *until) {
        reasons.push(reason(
            ReasonCode::Expired,
            false,
            format!("expired at {until} (ms since epoch)"),
            format!("已于{until}过期"),
        ));
        false
    } else {
        reasons.push(reason(
            ReasonCode::WithinValidity,
            true,
            match standing.valid_until {
                Some(until) => format!("within its validity, {} to {until}", licence.valid_from),
                None => format!("long-term validity from {}", licence.valid_from),
            },
            match standing.valid_until {
                Some(until) => format!("在有效期内（{}至{until}）", licence.valid_from),
                None => format!("长期有效（自{}起）", licence.valid_from),
            },
        ));
        true
    };

    let active = standing.status == Status::Active;
    let status_zh = match standing.status {
        Status::Active => "正常",
        Status::Suspended => "暂扣",
        Status::Revoked => "吊销",
        Status::Cancelled => "注销",
        Status::Abolished => "废止",
    };
    reasons.push(reason(
        ReasonCode::Status,
        active,
        format!("status at that time: {}", standing.status.name()),
        format!("该时点状态：{status_zh}"),
    ));

    let valid = authorised && within_validity && active;

    let mut recognition = None;
    let valid_in_region = region.map(|region| {
        if usable_without_recognition(&licence.region, region) {
            reasons.push(reason(
                ReasonCode::IssuedInRegion,
                true,
                format!(
                    "issued in {}, usable in {region} without recognition",
                    licence.region
                ),
                format!("签发地{}与使用地{region}同属一省，无需互认", licence.region),
            ));
            return valid;
        }
        let found = inputs
            .recognitions
            .iter()
            .filter(|candidate| candidate.in_force_at(at) && candidate.covers(licence, region))
            .min_by_key(|candidate| (candidate.attested_at, candidate.id));
        match found {
            Some(attestation) => {
                recognition = Some(attestation.id);
                reasons.push(reason(
                    ReasonCode::Recognised,
                    true,
                    format!(
                        "recognised in {} by {} (attestation {}, scope: {})",
                        attestation.recognizing_region,
                        attestation.recognizer,
                        attestation.id,
                        attestation.scope
                    ),
                    format!(
                        "{}已由{}互认（互认声明{}，适用范围：{}）",
                        attestation.recognizing_region,
                        attestation.recognizer,
                        attestation.id,
                        attestation.scope
                    ),
                ));
                valid
            }
            None => {
                reasons.push(reason(
                    ReasonCode::NotRecognised,
                    false,
                    format!(
                        "issued in {}; no recognition in force covers its use in {region}",
                        licence.region
                    ),
                    format!("签发地{}，使用地{region}无有效互认声明", licence.region),
                ));
                false
            }
        }
    });

    let open_objections: Vec<Hash32> = inputs
        .objections
        .iter()
        .filter(|objection| {
            objection.resolution.is_none() && licence.open_objections.contains(&objection.id)
        })
        .map(|objection| objection.id)
        .collect();
    if !licence.open_objections.is_empty() {
        reasons.push(reason(
            ReasonCode::Disputed,
            true,
            format!(
                "{} objection(s) open: the record is disputed",
                licence.open_objections.len()
            ),
            format!("存在{}项未处理异议", licence.open_objections.len()),
        ));
    }
    if !standing.pledges.is_empty() {
        let parties: Vec<&str> = standing
            .pledges
            .iter()
            .map(|(_, party)| party.as_str())
            .collect();
        reasons.push(reason(
            ReasonCode::Pledged,
            true,
            format!("pledged or mortgaged to {}", parties.join(", ")),
            format!("已质押/抵押给{}", parties.join("、")),
        ));
    }

    Verdict {
        valid,
        valid_in_region,
        at,
        region: region.cloned(),
        status: standing.status,
        valid_from: licence.valid_from,
        valid_until: standing.valid_until,
        issuer: licence.issuer.clone(),
        recognition,
        open_objections: if open_objections.is_empty() {
            licence.open_objections.clone()
        } else {
            open_objections
        },
        reasons,
    }
}

/// The height a verdict was computed at, with its time, for answers that say how fresh they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateAt {
    pub height: Height,
    pub time: TimeMs,
}
