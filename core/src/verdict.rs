//! The verdict: "is licence L genuine, valid, and valid for use in region R, at time T?",
//! with every reason (docs/design.md sections 1 and 7).
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

use crate::calendar;
use crate::hash::Hash32;
use crate::ident::RegionCode;
use crate::records::{
    Authority, AuthorityId, CorrectionOutcome, Grant, Height, Licence, LicenceEventKind, Objection,
    Recognition, RecognitionSet, Record, RecordKey, Status, TimeMs,
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
    /// Records of the licence were signed under a key the governors reported compromised, at
    /// a height within the reported window (ADR 0031). The issuance among them makes the
    /// licence invalid; later changes alone are flagged for the verifier to check.
    SignedByCompromisedKey,
    /// Events of the licence's history were corrected by the governors (ADR 0032): voided
    /// ones no longer count, retimed ones count from their corrected time. The verdict already
    /// reads them so; the reason tells the verifier that the history was corrected.
    Corrected,
    /// An objection upheld by T whose follow-up, the event of the history its resolution named
    /// as the correction, no longer counts (the governors voided it) or takes effect only after
    /// T (ADR 0034). A warning: validity is what the history says.
    UpheldWithoutFollowUp,
    /// 年检: the type requires annual inspections, and the next is not due yet at T.
    AnnualInspectionDue,
    /// 年检: the type requires annual inspections and none was recorded within the period
    /// before T, counted from the last inspection or the start of validity (ADR 0033): the
    /// licence is not valid until one is.
    AnnualInspectionOverdue,
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
    /// Genuine and valid at T (issuer authorised, within validity, active, and inspected
    /// within its period when its type requires annual inspections).
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
    /// The other authorities that signed events of the licence's history (supervisors, a
    /// successor), so that the verdict can tell which were signed under compromised keys.
    pub signers: &'a [Authority],
    /// The issuer's grant for the licence's type that covered its region at issuance.
    pub grant: Option<&'a Grant>,
    /// Candidate recognitions (all in force or not; the function picks).
    pub recognitions: &'a [Recognition],
    /// Records of the licence's objections (open or resolved, any of them or none): the
    /// verdict counts the objections open at its time from the licence's marks, and these
    /// only detail them.
    pub objections: &'a [Objection],
}

/// The keys of the records, other than the licence itself and the recognitions, that the
/// verdict on `licence` reads: its issuer, the issuer's grants of the licence's type in every
/// region covering the licence's (the one in force at issuance authorised it), and the
/// objections open on it now. A verdict at a past time counts the objections open then from
/// the licence's own marks ([`Licence::objections_open_at`]); the records of those resolved
/// since are details a reader may fetch. Recognitions are found through the recognition sets
/// instead ([`recognition_set_keys`], [`recognitions_in_sets`]), since no key names them from
/// the licence.
///
/// The store reads these keys to answer a verification, the API proves them in a licence's
/// bundle, and [`VerdictRecords::collect`] picks them out of what a bundle proved: the three
/// cannot disagree on what a verdict is made of.
pub fn input_keys(licence: &Licence) -> Vec<RecordKey> {
    let mut keys = vec![RecordKey::Authority(licence.issuer.clone())];
    keys.extend(
        other_signers(licence)
            .into_iter()
            .map(|signer| RecordKey::Authority(signer.clone())),
    );
    keys.extend(
        licence.region.covering_regions().into_iter().map(|region| {
            RecordKey::Grant(licence.issuer.clone(), licence.type_code.clone(), region)
        }),
    );
    keys.extend(
        licence
            .open_objections()
            .into_iter()
            .map(RecordKey::Objection),
    );
    keys
}

/// The authorities other than the issuer that signed events of `licence`'s history, each once,
/// sorted.
pub fn other_signers(licence: &Licence) -> Vec<&AuthorityId> {
    let mut signers: Vec<&AuthorityId> = licence
        .events
        .iter()
        .map(|event| &event.by)
        .filter(|by| **by != licence.issuer)
        .collect();
    signers.sort();
    signers.dedup();
    signers
}

/// Whether a recognition attestation is an input of the verdict on `licence`: for use in
/// `region`, one that covers the licence there (in force or not at the time asked: the verdict
/// looks at the time). A verdict for no region reads no recognition.
pub fn recognition_is_input(
    recognition: &Recognition,
    licence: &Licence,
    region: Option<&RegionCode>,
) -> bool {
    region.is_some_and(|region| recognition.covers(licence, region))
}

/// The recognition sets (ADR 0039) the verdict on `licence` for use in `region` reads: none
/// for no region or a region where the licence is usable without recognition; else the set of
/// the licence's type for every region covering `region` (the region itself, its city, its
/// province, the nation), since a recognition for any of them covers `region`. Each is proved
/// in a bundle, present or absent, so that no recognition can be left out.
pub fn recognition_set_keys(licence: &Licence, region: Option<&RegionCode>) -> Vec<RecordKey> {
    match region {
        Some(region) if !usable_without_recognition(&licence.region, region) => region
            .covering_regions()
            .into_iter()
            .map(|covering| RecordKey::RecognitionSet(covering, licence.type_code.clone()))
            .collect(),
        _ => Vec::new(),
    }
}

/// The recognitions listed in `sets` that are about `licence` (by where or by whom it was
/// issued), each once, in the sets' order: the recognitions a verdict on it in the sets'
/// regions reads.
pub fn recognitions_in_sets<'s>(
    licence: &Licence,
    sets: impl IntoIterator<Item = &'s RecognitionSet>,
) -> Vec<Hash32> {
    let mut ids = Vec::new();
    for set in sets {
        if set.type_code != licence.type_code {
            continue;
        }
        for entry in &set.entries {
            if entry.is_about(licence) && !ids.contains(&entry.id) {
                ids.push(entry.id);
            }
        }
    }
    ids
}

/// Whether `grant` is the one that authorised `licence`: the issuer's, for the licence's type,
/// in a region covering the licence's, in force at the height the licence was issued.
pub fn grant_authorised(grant: &Grant, licence: &Licence) -> bool {
    grant.authority == licence.issuer
        && grant.type_code == licence.type_code
        && grant.region.covers(&licence.region)
        && grant.in_force_at(licence.issued_at)
}

/// The records a verdict on one licence is computed from, sorted out of records read from a
/// store or proved in a bundle.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerdictRecords {
    /// The licence's issuer, when among the records.
    pub issuer: Option<Authority>,
    /// The other signers of the licence's events ([`other_signers`]) among the records, each
    /// once.
    pub signers: Vec<Authority>,
    /// The grant that authorised the licence, when among the records.
    pub grant: Option<Grant>,
    /// The recognitions that are inputs ([`recognition_is_input`]), each once, in the order
    /// given.
    pub recognitions: Vec<Recognition>,
    /// The licence's objections among the records (those open now, for what `input_keys`
    /// names), in the licence's order, each once.
    pub objections: Vec<Objection>,
}

impl VerdictRecords {
    /// Sorts `records` (in any order; any that is not an input of the verdict on `licence` in
    /// `region` is left out) into the verdict's inputs.
    pub fn collect(
        licence: &Licence,
        region: Option<&RegionCode>,
        records: impl IntoIterator<Item = Record>,
    ) -> Self {
        let mut collected = VerdictRecords::default();
        let mut objections = Vec::new();
        let signers = other_signers(licence);
        for record in records {
            match record {
                Record::Authority(authority) if authority.id == licence.issuer => {
                    collected.issuer = Some(authority);
                }
                Record::Authority(authority)
                    if signers.contains(&&authority.id)
                        && !collected
                            .signers
                            .iter()
                            .any(|known| known.id == authority.id) =>
                {
                    collected.signers.push(authority);
                }
                Record::Grant(grant)
                    if collected.grant.is_none() && grant_authorised(&grant, licence) =>
                {
                    collected.grant = Some(grant);
                }
                Record::Recognition(recognition)
                    if recognition_is_input(&recognition, licence, region)
                        && !collected
                            .recognitions
                            .iter()
                            .any(|known| known.id == recognition.id) =>
                {
                    collected.recognitions.push(recognition);
                }
                Record::Objection(objection)
                    if licence
                        .objections
                        .iter()
                        .any(|mark| mark.id == objection.id) =>
                {
                    objections.push(objection);
                }
                _ => {}
            }
        }
        collected.objections = licence
            .objections
            .iter()
            .filter_map(|mark| objections.iter().find(|objection| objection.id == mark.id))
            .cloned()
            .collect();
        collected
    }

    /// The verdict at `at`, for use in `region` if given; `None` when the issuer's record is
    /// not among the records (a verdict cannot say who issued the licence without it).
    pub fn verdict(
        &self,
        licence: &Licence,
        region: Option<&RegionCode>,
        at: TimeMs,
    ) -> Option<Verdict> {
        let issuer = self.issuer.as_ref()?;
        Some(verdict(
            &VerdictInputs {
                licence,
                issuer,
                signers: &self.signers,
                grant: self.grant.as_ref(),
                recognitions: &self.recognitions,
                objections: &self.objections,
            },
            region,
            at,
        ))
    }
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

/// A time in an English reason: China Standard Time to the minute, the time the departments
/// and the holders read, with its zone named.
fn time_en(time_ms: TimeMs) -> String {
    match calendar::format_china(time_ms) {
        Ok(text) => format!("{text} (UTC+8)"),
        Err(_) => calendar::milliseconds_text(time_ms),
    }
}

/// The same time in a Chinese reason: "北京时间2026年1月1日 08:00".
fn time_zh(time_ms: TimeMs) -> String {
    match calendar::format_china_zh(time_ms) {
        Ok(text) => format!("北京时间{text}"),
        Err(_) => format!("1970年1月1日起第{time_ms}毫秒"),
    }
}

/// 年检: for a licence whose type required annual inspections when it was issued, whether
/// the last inspection recorded by `at` (or, before the first, the start of validity) is
/// less than the period before `at`; the reason says when the next falls due, or since when
/// it is overdue. Before the start of validity nothing is due. Licences of other types are
/// not concerned, and pass.
fn annual_inspection(
    licence: &Licence,
    last_inspection: Option<TimeMs>,
    at: TimeMs,
    reasons: &mut Vec<Reason>,
) -> bool {
    let Some(days) = licence.annual_inspection_days else {
        return true;
    };
    if at < licence.valid_from {
        return true;
    }
    let counted_from = last_inspection.unwrap_or(licence.valid_from);
    let due = counted_from.saturating_add(u64::from(days).saturating_mul(crate::limits::DAY_MS));
    if at < due {
        reasons.push(reason(
            ReasonCode::AnnualInspectionDue,
            true,
            format!("the next annual inspection is due by {}", time_en(due)),
            format!("下次年检应于{}前完成", time_zh(due)),
        ));
        return true;
    }
    reasons.push(reason(
        ReasonCode::AnnualInspectionOverdue,
        false,
        format!(
            "annual inspection overdue since {}: none recorded within {days} days",
            time_en(due)
        ),
        format!("年检已于{}逾期：{days}日内无年检记录", time_zh(due)),
    ));
    false
}

/// Computes the verdict at `at`, for use in `region` if given.
pub fn verdict(inputs: &VerdictInputs<'_>, region: Option<&RegionCode>, at: TimeMs) -> Verdict {
    let licence = inputs.licence;
    let standing = licence.standing_at(at);
    let mut reasons = Vec::new();

    let authorised = inputs
        .grant
        .is_some_and(|grant| grant_authorised(grant, licence))
        && inputs.issuer.id == licence.issuer;
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
            format!("valid only from {}", time_en(licence.valid_from)),
            format!("有效期自{}起，尚未生效", time_zh(licence.valid_from)),
        ));
        false
    } else if let Some(until) = standing.valid_until.filter(|until| at >= *until) {
        reasons.push(reason(
            ReasonCode::Expired,
            false,
            format!("expired at {}", time_en(until)),
            format!("已于{}过期", time_zh(until)),
        ));
        false
    } else {
        reasons.push(reason(
            ReasonCode::WithinValidity,
            true,
            match standing.valid_until {
                Some(until) => format!(
                    "within its validity, {} to {}",
                    time_en(licence.valid_from),
                    time_en(until)
                ),
                None => format!("long-term validity from {}", time_en(licence.valid_from)),
            },
            match standing.valid_until {
                Some(until) => format!(
                    "在有效期内（{}至{}）",
                    time_zh(licence.valid_from),
                    time_zh(until)
                ),
                None => format!("长期有效（自{}起）", time_zh(licence.valid_from)),
            },
        ));
        true
    };

    let active = standing.status == Status::Active;
    let status_zh = standing.status.name_zh();
    reasons.push(reason(
        ReasonCode::Status,
        active,
        format!("status at that time: {}", standing.status.name()),
        format!("该时点状态：{status_zh}"),
    ));

    let inspected = annual_inspection(licence, standing.last_annual_inspection, at, &mut reasons);
    let issuance_compromised = compromised_signatures(inputs, &mut reasons);
    let valid = authorised && within_validity && active && inspected && !issuance_compromised;

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

    let open_objections: Vec<Hash32> = licence.objections_open_at(at);
    if !open_objections.is_empty() {
        reasons.push(reason(
            ReasonCode::Disputed,
            true,
            format!(
                "{} objection(s) open: the record is disputed",
                open_objections.len()
            ),
            format!("存在{}项未处理异议", open_objections.len()),
        ));
    }
    if let Some(unfollowed) = upheld_without_follow_up(licence, at) {
        reasons.push(unfollowed);
    }
    // Pledges end with the licence: a revoked one has none left (`Standing`), an expired one
    // lists none past its validity.
    if within_validity && !standing.pledges.is_empty() {
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

    if let Some(corrected) = corrections_reason(licence) {
        reasons.push(corrected);
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
        open_objections,
        reasons,
    }
}

/// The warning for the objections upheld by `at` whose follow-up does not correct the licence
/// at `at`: voided since, or not in effect yet (none: no reason).
fn upheld_without_follow_up(licence: &Licence, at: TimeMs) -> Option<Reason> {
    let mut english = Vec::new();
    let mut chinese = Vec::new();
    for mark in &licence.objections {
        let (Some(resolved_at), Some(index)) = (mark.resolved_at, mark.follow_up) else {
            continue;
        };
        if at < resolved_at {
            continue;
        }
        let event = usize::try_from(index)
            .ok()
            .and_then(|position| licence.events.get(position));
        match event {
            Some(event) if !event.counts() => {
                english.push(format!(
                    "objection {} names event {index}, which the governors voided",
                    mark.id
                ));
                chinese.push(format!("异议{}所指第{index}项已被治理机构作废", mark.id));
            }
            Some(event) if at < event.effective_at => {
                english.push(format!(
                    "objection {} names event {index}, which takes effect only at {}",
                    mark.id,
                    time_en(event.effective_at)
                ));
                chinese.push(format!(
                    "异议{}所指第{index}项于{}才生效",
                    mark.id,
                    time_zh(event.effective_at)
                ));
            }
            Some(_) => {}
            None => {
                english.push(format!(
                    "objection {} names event {index}, which the history does not hold",
                    mark.id
                ));
                chinese.push(format!("异议{}所指第{index}项不在历史记录中", mark.id));
            }
        }
    }
    if english.is_empty() {
        return None;
    }
    Some(reason(
        ReasonCode::UpheldWithoutFollowUp,
        true,
        format!(
            "upheld objection(s) without a correction in effect: {}",
            english.join("; ")
        ),
        format!("异议已成立但更正未生效：{}", chinese.join("；")),
    ))
}

/// The reason naming the events of the licence's history that the governors corrected, if
/// any: which, how, at what height and why.
fn corrections_reason(licence: &Licence) -> Option<Reason> {
    let mut english = Vec::new();
    let mut chinese = Vec::new();
    for (index, event) in licence.events.iter().enumerate() {
        let Some(correction) = &event.correction else {
            continue;
        };
        let (name, name_zh) = match &event.kind {
            LicenceEventKind::Issued => ("issued", "发证"),
            LicenceEventKind::Status(action) => (action.name(), action.name_zh()),
            LicenceEventKind::Amended { .. } => ("amended", "变更"),
            LicenceEventKind::Transferred { .. } => ("transferred", "颁发机构调整"),
        };
        match correction.outcome {
            CorrectionOutcome::Voided => {
                english.push(format!(
                    "event {index} ({name}) voided at height {}: {}",
                    correction.height, correction.reason
                ));
                chinese.push(format!(
                    "第{index}项（{name_zh}）于区块高度{}作废：{}",
                    correction.height, correction.reason
                ));
            }
            CorrectionOutcome::Retimed => {
                english.push(format!(
                    "event {index} ({name}) entered as effective {} and corrected to {} at height {}: {}",
                    time_en(correction.entered_at),
                    time_en(event.effective_at),
                    correction.height,
                    correction.reason
                ));
                chinese.push(format!(
                    "第{index}项（{name_zh}）生效时间由{}更正为{}（区块高度{}）：{}",
                    time_zh(correction.entered_at),
                    time_zh(event.effective_at),
                    correction.height,
                    correction.reason
                ));
            }
        }
    }
    if english.is_empty() {
        return None;
    }
    Some(reason(
        ReasonCode::Corrected,
        true,
        format!(
            "the governors corrected the history: {}",
            english.join("; ")
        ),
        format!("治理机构已更正历史记录：{}", chinese.join("；")),
    ))
}

/// Adds the reason for the events of the licence signed under a key reported compromised
/// (none: no reason); returns whether the issuance is among them.
fn compromised_signatures(inputs: &VerdictInputs<'_>, reasons: &mut Vec<Reason>) -> bool {
    let licence = inputs.licence;
    let signer = |id: &AuthorityId| {
        std::iter::once(inputs.issuer)
            .chain(inputs.signers.iter())
            .find(|authority| authority.id == *id)
    };
    let flagged: Vec<&crate::records::LicenceEvent> = licence
        .events
        .iter()
        .filter(|event| {
            // A voided event no longer counts, whoever signed it: the governors' correction
            // has answered the question the flag would ask.
            event.counts()
                && signer(&event.by)
                    .is_some_and(|authority| authority.signed_compromised_at(event.height))
        })
        .collect();
    if flagged.is_empty() {
        return false;
    }
    let issuance = flagged
        .iter()
        .any(|event| event.kind == crate::records::LicenceEventKind::Issued);
    let heights: Vec<String> = flagged
        .iter()
        .map(|event| format!("{} ({})", event.height, event.by))
        .collect();
    reasons.push(reason(
        ReasonCode::SignedByCompromisedKey,
        !issuance,
        format!(
            "signed by a key reported compromised: {} record(s) at height {}{}",
            flagged.len(),
            heights.join(", "),
            if issuance {
                "; the issuance is among them, so the licence is not shown as genuine"
            } else {
                "; ask the department whether they are its own"
            }
        ),
        format!(
            "{}项记录由已报告泄露的密钥签署（区块高度{}）{}",
            flagged.len(),
            heights.join("、"),
            if issuance {
                "，其中包括签发记录，不能证明证照真实"
            } else {
                "，请向发证部门核实"
            }
        ),
    ));
    issuance
}

/// The height a verdict was computed at, with its time, for answers that say how fresh they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateAt {
    pub height: Height,
    pub time: TimeMs,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{IssuedBy, TypeCode};
    use crate::rules::{self, Context, Overlay};
    use crate::testkit::{Fixture, GENESIS_TIME, MemoryState, region};
    use crate::tx::{Transaction, TxBody};

    /// A chain in memory: a Qingdao business licence with one objection filed, and Xinjiang's
    /// recognition of business licences issued in Shandong.
    struct Chain {
        fixture: Fixture,
        state: MemoryState,
        height: Height,
    }

    impl Chain {
        fn new() -> Self {
            let fixture = Fixture::new();
            let state = fixture.genesis_state();
            Chain {
                fixture,
                state,
                height: 0,
            }
        }

        fn commit(&mut self, transaction: Transaction) {
            self.height += 1;
            let context = Context {
                chain_id: &self.fixture.genesis.chain_id,
                suite: crate::testkit::SUITE,
                height: self.height,
                time: GENESIS_TIME + self.height * 1_000,
            };
            let id = transaction.id(crate::testkit::SUITE);
            let mut overlay = Overlay::new(&self.state);
            rules::apply_transaction(&mut overlay, &context, &transaction, id).unwrap();
            let writes = overlay.into_writes();
            self.state.commit(writes, [id]);
        }

        fn licence(&self) -> Licence {
            let key = RecordKey::Licence(
                TypeCode::from("business-licence"),
                self.state
                    .records
                    .keys()
                    .find_map(|key| match key {
                        RecordKey::Licence(_, number) => Some(number.clone()),
                        _ => None,
                    })
                    .unwrap(),
            );
            match self.state.records.get(&key) {
                Some(Record::Licence(licence)) => licence.clone(),
                other => panic!("no licence: {other:?}"),
            }
        }
    }

    fn chain() -> Chain {
        let mut chain = Chain::new();
        let issuance = chain
            .fixture
            .issue_business_licence("qd-approval", "370200", 1);
        chain.commit(issuance);
        let licence = chain.licence();
        let objection = chain.fixture.tx(
            "jn-approval",
            TxBody::FileObjection {
                type_code: licence.type_code.clone(),
                number: licence.number.clone(),
                reason: "the address is wrong".into(),
                recognition: None,
            },
        );
        chain.commit(objection);
        let recognition = chain.fixture.tx(
            "xj-recognizer",
            TxBody::AttestRecognition {
                recognizing_region: region("650000"),
                type_codes: vec![licence.type_code.clone()],
                issued_by: IssuedBy::Region(region("370000")),
                scope: "market access".into(),
                valid_from: GENESIS_TIME,
                valid_until: None,
            },
        );
        chain.commit(recognition);
        chain
    }

    #[test]
    fn input_keys_name_the_issuer_every_covering_grant_and_the_open_objections() {
        let chain = chain();
        let licence = chain.licence();
        let issuer = licence.issuer.clone();
        let grant =
            |code: &str| RecordKey::Grant(issuer.clone(), licence.type_code.clone(), region(code));
        assert_eq!(licence.open_objections().len(), 1);
        assert_eq!(
            input_keys(&licence),
            vec![
                RecordKey::Authority(issuer.clone()),
                grant("370200"),
                grant("370000"),
                grant("000000"),
                RecordKey::Objection(licence.open_objections()[0]),
            ]
        );
    }

    #[test]
    fn collect_keeps_exactly_the_inputs_whatever_else_is_given() {
        let chain = chain();
        let licence = chain.licence();
        // Every record of the state, in key order: most are not inputs.
        let all: Vec<Record> = chain.state.records.values().cloned().collect();
        let collected = VerdictRecords::collect(&licence, Some(&region("650100")), all.clone());
        assert_eq!(
            collected.issuer.as_ref().map(|a| a.id.clone()),
            Some(licence.issuer.clone())
        );
        let grant = collected.grant.as_ref().unwrap();
        assert_eq!(
            (&grant.authority, &grant.region),
            (&licence.issuer, &region("370200"))
        );
        assert_eq!(collected.recognitions.len(), 1);
        assert_eq!(
            collected
                .objections
                .iter()
                .map(|o| o.id)
                .collect::<Vec<_>>(),
            licence.open_objections()
        );

        // The same records in reverse order, and each twice, give the same inputs.
        let shuffled: Vec<Record> = all.iter().rev().chain(all.iter()).cloned().collect();
        assert_eq!(
            VerdictRecords::collect(&licence, Some(&region("650100")), shuffled),
            collected
        );

        // For a region the recognition does not cover, it is no input.
        let elsewhere = VerdictRecords::collect(&licence, Some(&region("440300")), all.clone());
        assert!(elsewhere.recognitions.is_empty());
        // A verdict for no region reads no recognition.
        let anywhere = VerdictRecords::collect(&licence, None, all);
        assert!(anywhere.recognitions.is_empty());
    }

    #[test]
    fn the_verdict_from_collected_records_needs_the_issuer() {
        let chain = chain();
        let licence = chain.licence();
        let at = GENESIS_TIME + 10_000;
        let all: Vec<Record> = chain.state.records.values().cloned().collect();
        let region_asked = region("650100");
        let verdict_of = |records: Vec<Record>| {
            VerdictRecords::collect(&licence, Some(&region_asked), records).verdict(
                &licence,
                Some(&region_asked),
                at,
            )
        };
        let verdict = verdict_of(all.clone()).unwrap();
        assert!(verdict.valid);
        assert_eq!(verdict.valid_in_region, Some(true));
        assert!(verdict.recognition.is_some());
        assert_eq!(verdict.open_objections, licence.open_objections());

        let without_issuer: Vec<Record> = all
            .iter()
            .filter(|record| !matches!(record, Record::Authority(a) if a.id == licence.issuer))
            .cloned()
            .collect();
        assert_eq!(verdict_of(without_issuer), None);

        // Without the grant the issuer is not shown to be authorised: not valid.
        let without_grant: Vec<Record> = all
            .into_iter()
            .filter(|record| !matches!(record, Record::Grant(_)))
            .collect();
        let verdict = verdict_of(without_grant).unwrap();
        assert!(!verdict.valid);
        assert!(
            verdict
                .reasons
                .iter()
                .any(|reason| reason.code == ReasonCode::IssuerAuthorised && !reason.ok)
        );
    }

    #[test]
    fn a_grant_counts_only_if_it_was_in_force_when_the_licence_was_issued() {
        let chain = chain();
        let licence = chain.licence();
        let Some(Record::Grant(mut grant)) = chain
            .state
            .records
            .get(&RecordKey::Grant(
                licence.issuer.clone(),
                licence.type_code.clone(),
                region("370200"),
            ))
            .cloned()
        else {
            panic!("the fixture grants qd-approval business licences in 370200");
        };
        assert!(grant_authorised(&grant, &licence));
        grant.periods = vec![(licence.issued_at + 1, None)];
        assert!(!grant_authorised(&grant, &licence));
        grant.periods = vec![(0, Some(licence.issued_at))];
        assert!(!grant_authorised(&grant, &licence));
        let mut other_type = grant.clone();
        other_type.periods = vec![(0, None)];
        other_type.type_code = TypeCode::from("qualification");
        assert!(!grant_authorised(&other_type, &licence));
    }
}

/// The sentences of the verdict's reasons, as people read them.
#[cfg(test)]
mod text_tests {
    use super::*;
    use crate::records::{Record, RecordKey};
    use crate::rules::{self, Context, Overlay};
    use crate::testkit::{DAY_MS, Fixture, GENESIS_TIME};

    /// A business licence valid from GENESIS_TIME (2026-01-01T00:00Z, 08:00 in Beijing), and
    /// its issuer.
    fn issued_licence() -> (Licence, Authority) {
        let mut fixture = Fixture::new();
        let state = fixture.genesis_state();
        let issuance = fixture.issue_business_licence("qd-approval", "370200", 1);
        let context = Context {
            chain_id: &fixture.genesis.chain_id,
            suite: crate::testkit::SUITE,
            height: 1,
            time: GENESIS_TIME + 1_000,
        };
        let mut overlay = Overlay::new(&state);
        let applied = rules::apply_transaction(
            &mut overlay,
            &context,
            &issuance,
            issuance.id(crate::testkit::SUITE),
        )
        .unwrap();
        let (type_code, number) = applied.licence.unwrap();
        let Some(Record::Licence(licence)) = overlay
            .record(&RecordKey::Licence(type_code, number))
            .unwrap()
        else {
            panic!("the issuance wrote no licence");
        };
        let Some(Record::Authority(issuer)) = overlay
            .record(&RecordKey::Authority(licence.issuer.clone()))
            .unwrap()
        else {
            panic!("the issuer is not on the ledger");
        };
        (licence, issuer)
    }

    /// The English and Chinese sentences of the validity reason of `licence` at `at`.
    fn validity_sentences(licence: &Licence, issuer: &Authority, at: TimeMs) -> (String, String) {
        let inputs = VerdictInputs {
            licence,
            issuer,
            signers: &[],
            grant: None,
            recognitions: &[],
            objections: &[],
        };
        let verdict = verdict(&inputs, None, at);
        let reason = verdict
            .reasons
            .into_iter()
            .find(|reason| {
                matches!(
                    reason.code,
                    ReasonCode::NotYetValid | ReasonCode::Expired | ReasonCode::WithinValidity
                )
            })
            .unwrap();
        (reason.detail, reason.detail_zh)
    }

    #[test]
    fn validity_reasons_show_china_standard_time() {
        let (mut licence, issuer) = issued_licence();
        assert_eq!(licence.valid_from, GENESIS_TIME);
        assert_eq!(
            validity_sentences(&licence, &issuer, GENESIS_TIME + DAY_MS),
            (
                "long-term validity from 2026-01-01 08:00 (UTC+8)".to_owned(),
                "长期有效（自北京时间2026年1月1日 08:00起）".to_owned()
            )
        );
        // 2027-01-01T00:30Z, half past eight in Beijing.
        let until = GENESIS_TIME + 365 * DAY_MS + 30 * 60_000;
        licence.valid_until = Some(until);
        assert_eq!(
            validity_sentences(&licence, &issuer, GENESIS_TIME - 1),
            (
                "valid only from 2026-01-01 08:00 (UTC+8)".to_owned(),
                "有效期自北京时间2026年1月1日 08:00起，尚未生效".to_owned()
            )
        );
        assert_eq!(
            validity_sentences(&licence, &issuer, until - 1),
            (
                "within its validity, 2026-01-01 08:00 (UTC+8) to 2027-01-01 08:30 (UTC+8)"
                    .to_owned(),
                "在有效期内（北京时间2026年1月1日 08:00至北京时间2027年1月1日 08:30）".to_owned()
            )
        );
        assert_eq!(
            validity_sentences(&licence, &issuer, until),
            (
                "expired at 2027-01-01 08:30 (UTC+8)".to_owned(),
                "已于北京时间2027年1月1日 08:30过期".to_owned()
            )
        );
    }

    #[test]
    fn a_validity_beyond_the_calendar_shows_its_milliseconds() {
        let (mut licence, issuer) = issued_licence();
        licence.valid_until = Some(TimeMs::MAX);
        assert_eq!(
            validity_sentences(&licence, &issuer, GENESIS_TIME),
            (
                "within its validity, 2026-01-01 08:00 (UTC+8) to 18446744073709551615 ms since \
                 the epoch"
                    .to_owned(),
                "在有效期内（北京时间2026年1月1日 08:00至1970年1月1日起第18446744073709551615毫秒）"
                    .to_owned()
            )
        );
    }

    /// The reasons about annual inspections of `licence` at `at`, and whether it is valid.
    fn inspection_reasons(licence: &Licence, issuer: &Authority, at: TimeMs) -> Vec<Reason> {
        let inputs = VerdictInputs {
            licence,
            issuer,
            signers: &[],
            grant: None,
            recognitions: &[],
            objections: &[],
        };
        verdict(&inputs, None, at)
            .reasons
            .into_iter()
            .filter(|reason| {
                matches!(
                    reason.code,
                    ReasonCode::AnnualInspectionDue | ReasonCode::AnnualInspectionOverdue
                )
            })
            .collect()
    }

    #[test]
    fn an_annual_inspection_overdue_makes_the_licence_invalid_until_one_is_recorded() {
        use crate::records::{LicenceEvent, LicenceEventKind, StatusAction};
        let (mut licence, issuer) = issued_licence();
        // Of a type without inspections, nothing is said.
        assert!(inspection_reasons(&licence, &issuer, GENESIS_TIME + 900 * DAY_MS).is_empty());

        licence.annual_inspection_days = Some(365);
        let due = GENESIS_TIME + 365 * DAY_MS;
        let before = inspection_reasons(&licence, &issuer, due - 1);
        assert_eq!(before.len(), 1);
        assert_eq!(before[0].code, ReasonCode::AnnualInspectionDue);
        assert!(before[0].ok);
        assert_eq!(
            before[0].detail,
            "the next annual inspection is due by 2027-01-01 08:00 (UTC+8)"
        );
        let overdue = inspection_reasons(&licence, &issuer, due);
        assert_eq!(overdue[0].code, ReasonCode::AnnualInspectionOverdue);
        assert!(!overdue[0].ok);
        assert_eq!(
            overdue[0].detail_zh,
            "年检已于北京时间2027年1月1日 08:00逾期：365日内无年检记录"
        );
        // Before the start of validity, nothing is due.
        assert!(inspection_reasons(&licence, &issuer, GENESIS_TIME - 1).is_empty());

        // An inspection recorded 300 days in counts the next period from it.
        let inspected_at = GENESIS_TIME + 300 * DAY_MS;
        let mut event = licence.events[0].clone();
        event.kind = LicenceEventKind::Status(StatusAction::AnnualInspection);
        event.effective_at = inspected_at;
        licence.events.push(LicenceEvent { ..event });
        let after = inspection_reasons(&licence, &issuer, due);
        assert_eq!(after[0].code, ReasonCode::AnnualInspectionDue);
        let next_due = inspected_at + 365 * DAY_MS;
        let late = inspection_reasons(&licence, &issuer, next_due);
        assert_eq!(late[0].code, ReasonCode::AnnualInspectionOverdue);
    }

    #[test]
    fn pledges_end_with_the_licence() {
        use crate::records::{LicenceEvent, LicenceEventKind, StatusAction};
        let (mut licence, issuer) = issued_licence();
        licence.valid_until = Some(GENESIS_TIME + 100 * DAY_MS);
        let pledged = |licence: &Licence, at: TimeMs| {
            let inputs = VerdictInputs {
                licence,
                issuer: &issuer,
                signers: &[],
                grant: None,
                recognitions: &[],
                objections: &[],
            };
            verdict(&inputs, None, at)
                .reasons
                .iter()
                .any(|reason| reason.code == ReasonCode::Pledged)
        };
        let mut event = licence.events[0].clone();
        event.kind = LicenceEventKind::Status(StatusAction::PledgeRegistered {
            secured_party: "青岛银行".into(),
            reference: "DY-1".into(),
        });
        event.effective_at = GENESIS_TIME + DAY_MS;
        licence.events.push(LicenceEvent { ..event.clone() });
        assert!(pledged(&licence, GENESIS_TIME + 50 * DAY_MS));
        // Past its validity the licence lists no pledge.
        assert!(!pledged(&licence, GENESIS_TIME + 100 * DAY_MS));

        // Revoked, it has none left, and its standing says so too.
        event.kind = LicenceEventKind::Status(StatusAction::Revoke);
        event.effective_at = GENESIS_TIME + 60 * DAY_MS;
        licence.events.push(event);
        assert!(pledged(&licence, GENESIS_TIME + 59 * DAY_MS));
        assert!(!pledged(&licence, GENESIS_TIME + 60 * DAY_MS));
        assert!(licence.final_standing().pledges.is_empty());
    }
}
