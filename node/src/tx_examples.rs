//! `hutong tx --example KIND`: one body of every record kind, as `hutong tx --body` reads it.
//! The tests parse each into the ledger's `TxBody`, so the examples cannot drift from the
//! format.

use serde_json::{Value, json};

const KEY: &str = "3ac17a5b2ac94057668c26d9c446ff0028db0b3078d7bf21866b8e74ab9fc935";
const LICENCE: &str = "91370200MA00000015";
/// 2026-01-01 00:00 UTC+8, in milliseconds since the Unix epoch.
const TIME: u64 = 1_767_196_800_000;

/// The record kinds, in the order `hutong tx --example list` prints them.
pub const KINDS: [&str; 20] = [
    "register_authority",
    "update_authority",
    "rotate_key",
    "define_licence_type",
    "grant_issuance",
    "revoke_grant",
    "issue_licence",
    "change_status",
    "amend_licence",
    "attest_recognition",
    "withdraw_recognition",
    "file_objection",
    "resolve_objection",
    "change_validators",
    "set_write_quota",
    "report_key_compromise",
    "correct_event",
    "amend_licence_type",
    "retire_licence_type",
    "transfer_licences",
];

/// Who signs a record of `kind` (the rules check it).
pub fn signer_of(kind: &str) -> &'static str {
    match kind {
        "register_authority"
        | "update_authority"
        | "define_licence_type"
        | "grant_issuance"
        | "revoke_grant"
        | "change_validators"
        | "set_write_quota"
        | "report_key_compromise"
        | "correct_event"
        | "amend_licence_type"
        | "retire_licence_type"
        | "transfer_licences" => {
            "a governor, endorsed by governors holding more than two thirds (--endorse)"
        }
        "rotate_key" => {
            "the authority itself (at most 4,096 blocks ahead), or the governors (at the next height)"
        }
        "issue_licence" => "an issuer granted the type in the licence's region",
        "amend_licence" => "the licence's issuer, holding the issuer role and a grant in force",
        "change_status" => {
            "the issuer, or a supervisor of the region for the type's supervisor actions"
        }
        "attest_recognition" | "withdraw_recognition" => "a recognizer of the recognizing region",
        "file_objection" => {
            "a department of the licence's province, a supervisor of its type there, or a recognizer naming the recognition of its region"
        }
        "resolve_objection" => {
            "a supervisor of the type and region other than the issuer, or the governors (more than two thirds, --endorse)"
        }
        _ => "",
    }
}

/// The example body of `kind`, or `None` for an unknown kind.
pub fn example(kind: &str) -> Option<Value> {
    let body = match kind {
        "register_authority" => json!({
            "id": "qd-market",
            "name_zh": "青岛市市场监督管理局",
            "name_en": "Qingdao Administration for Market Regulation",
            "region": "370200",
            "uscc": "11370200MB0000000C",
            "roles": ["supervisor"],
            "key": KEY,
        }),
        "update_authority" => json!({
            "id": "qd-market",
            "name_zh": null,
            "name_en": "Qingdao Market Regulation Bureau",
            "roles": ["supervisor", "issuer"],
        }),
        "rotate_key" => json!({
            "authority": "qd-market",
            "new_key": KEY,
            "effective_height": 1200,
        }),
        "define_licence_type" => json!({
            "code": "food-operation",
            "name_zh": "食品经营许可证",
            "name_en": "Food operation permit",
            "holder_kind": "enterprise",
            "fields": [
                { "name": "premises", "name_zh": "经营场所", "kind": "text", "required": true, "visibility": "public" },
                { "name": "categories", "name_zh": "经营项目", "kind": "text", "required": true, "visibility": "public" }
            ],
            "default_validity_days": 1826,
            "supervisor_actions": ["suspend", "reinstate", "revoke"],
            "constraints": {
                "unique_per_holder": false,
                "number_is_holder_uscc": false,
                "holder_fields": [],
                "bounds": [],
                "annual_inspection_days": null
            },
        }),
        "amend_licence_type" => json!({
            "code": "food-operation",
            "name_zh": "食品经营许可证",
            "name_en": "Food operation permit",
            "holder_kind": "enterprise",
            "fields": [
                { "name": "premises", "name_zh": "经营场所", "kind": "text", "required": true, "visibility": "public" },
                { "name": "categories", "name_zh": "经营项目", "kind": "text", "required": true, "visibility": "public" },
                { "name": "uscc", "name_zh": "统一社会信用代码", "kind": "uscc", "required": false, "visibility": "public" },
                { "name": "staff", "name_zh": "从业人员数", "kind": "integer", "required": false, "visibility": "public" }
            ],
            "default_validity_days": 1826,
            "supervisor_actions": ["suspend", "reinstate", "revoke", "annual_inspection"],
            "constraints": {
                "unique_per_holder": false,
                "number_is_holder_uscc": false,
                "holder_fields": ["uscc"],
                "bounds": [{ "field": "staff", "min": "0", "max": null, "not_after_block_date": false }],
                "annual_inspection_days": 366
            },
        }),
        "transfer_licences" => json!({
            "from": "qd-approval",
            "to": "qd-market",
            "type_code": "business-licence",
            "numbers": [LICENCE],
            "reason": "机构改革，审批职能划入市场监督管理局 reorganisation: approvals move to the market regulator",
        }),
        "retire_licence_type" => json!({
            "type_code": "food-operation",
            "reason": "并入食品经营许可证新版目录 merged into the new catalogue entry",
        }),
        "grant_issuance" | "revoke_grant" => json!({
            "authority": "qd-approval",
            "type_code": "food-operation",
            "region": "370200",
        }),
        "issue_licence" => json!({
            "type_code": "business-licence",
            "number": LICENCE,
            "holder": { "enterprise": LICENCE },
            "holder_name": "青岛测试企业1有限公司",
            "region": "370200",
            "face": {
                "name": { "clear": "青岛测试企业1有限公司" },
                "legal_representative": { "clear": "张三" },
                "registered_capital": { "clear": "1000000.00" },
                "established": { "clear": "2020-05-01" }
            },
            "valid_from": TIME,
            "valid_until": "long_term",
            "document_hash": "263a347ae66e2627be8469bc5f32d85698a37dae0c023e9c4a291c46df69b69e",
        }),
        "change_status" => json!({
            "type_code": "business-licence",
            "number": LICENCE,
            "action": { "pledge_registered": { "secured_party": "青岛银行 Bank of Qingdao", "reference": "DY-2026-0001" } },
            "effective_at": TIME,
            "reason": "股权出质登记 equity pledge registered",
        }),
        "amend_licence" => json!({
            "type_code": "business-licence",
            "number": LICENCE,
            "changes": {
                "legal_representative": { "clear": "李四" },
                "registered_capital": { "clear": "2000000.00" }
            },
            "effective_at": TIME,
            "reason": "变更登记 change of registration",
        }),
        "attest_recognition" => json!({
            "recognizing_region": "650000",
            "type_codes": ["business-licence"],
            "issued_by": { "region": "370000" },
            "scope": "政务服务与市场准入 government services and market access",
            "valid_from": TIME,
            "valid_until": null,
        }),
        "withdraw_recognition" => json!({
            "id": "6ea67bcb687be40e050add3cbdce2ffffb595bc65b57b4bd0642c3c884a3448a",
            "effective_at": TIME,
            "reason": "互认协议到期 the agreement ended",
        }),
        "file_objection" => json!({
            "type_code": "business-licence",
            "number": LICENCE,
            "reason": "住所与实际经营地不符 the registered address is not where it operates",
            "recognition": null,
        }),
        "resolve_objection" => json!({
            "id": "6ea67bcb687be40e050add3cbdce2ffffb595bc65b57b4bd0642c3c884a3448a",
            "outcome": "upheld",
            "note": "住所已变更登记 the address was corrected by an amendment",
            "follow_up": 3,
        }),
        "change_validators" => json!({
            "changes": [
                { "set": { "key": KEY, "authority": "qd-bigdata", "power": 1 } }
            ],
            "effective_height": 1500,
        }),
        "set_write_quota" => json!({
            "scope": { "authority": "qd-market" },
            "quota": { "limited": { "max_transactions": 5000, "window_blocks": 1800 } },
        }),
        "report_key_compromise" => json!({
            "authority": "qd-approval",
            "compromised_from": 1200,
            "new_key": KEY,
        }),
        "correct_event" => json!({
            "type_code": "business-licence",
            "number": LICENCE,
            "event": 3,
            "action": { "retime": { "effective_at": TIME } },
            "reason": "年检日期录入错误，按纸质记录更正 the inspection was entered with the wrong year; corrected from the paper record",
        }),
        _ => return None,
    };
    Some(json!({ kind: body }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hutong_core::tx::TxBody;

    #[test]
    fn every_kind_has_an_example_the_ledger_reads() {
        for kind in KINDS {
            let example = example(kind).unwrap_or_else(|| panic!("no example of {kind}"));
            let body: TxBody = serde_json::from_value(example.clone())
                .unwrap_or_else(|error| panic!("{kind}: {error}\n{example:#}"));
            assert_eq!(body.kind_name(), kind);
            assert!(!signer_of(kind).is_empty(), "{kind}");
            // What is printed is what is read back.
            assert_eq!(serde_json::to_value(&body).unwrap(), example, "{kind}");
        }
        assert!(example("issue_licences").is_none());
    }

    const FIELD_MAPS: &[&str] = &["face", "changes"];

    /// Every object that reaches the ledger refuses a field it does not know, at every depth
    /// of every kind: a signer cannot smuggle bytes into a record that the rules never read.
    #[test]
    fn an_unknown_field_anywhere_in_a_body_is_refused() {
        fn objects(value: &Value, path: Vec<String>, found: &mut Vec<Vec<String>>) {
            match value {
                Value::Object(map) => {
                    found.push(path.clone());
                    for (key, child) in map {
                        let mut next = path.clone();
                        next.push(key.clone());
                        objects(child, next, found);
                    }
                }
                Value::Array(items) => {
                    for (index, child) in items.iter().enumerate() {
                        let mut next = path.clone();
                        next.push(index.to_string());
                        objects(child, next, found);
                    }
                }
                _ => {}
            }
        }
        fn at<'v>(value: &'v mut Value, path: &[String]) -> &'v mut Value {
            path.iter().fold(value, |value, step| match value {
                Value::Array(items) => &mut items[step.parse::<usize>().expect("index")],
                other => &mut other[step.as_str()],
            })
        }
        let mut checked = 0;
        for kind in KINDS {
            let body: TxBody = serde_json::from_value(example(kind).expect("example")).unwrap();
            let full = serde_json::to_value(&body).unwrap();
            let mut paths = Vec::new();
            objects(&full, Vec::new(), &mut paths);
            for path in paths {
                // Face fields are a map by name, checked against the type's schema by the rules.
                if path
                    .last()
                    .is_some_and(|last| FIELD_MAPS.contains(&last.as_str()))
                {
                    continue;
                }
                let mut smuggled = full.clone();
                if let Value::Object(map) = at(&mut smuggled, &path) {
                    map.insert("evil".into(), Value::from(1));
                }
                let error = serde_json::from_value::<TxBody>(smuggled.clone()).expect_err(
                    &format!("{kind} took an unknown field at {path:?}: {smuggled}"),
                );
                // An enum's variant is a map of one key: a second is refused as such.
                let text = error.to_string();
                assert!(
                    text.contains("evil") || text.contains("single key") || path.is_empty(),
                    "{kind} at {path:?}: {error}"
                );
                checked += 1;
            }
        }
        assert!(checked > 2 * KINDS.len(), "only {checked} objects checked");
    }
}
