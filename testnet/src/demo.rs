//! The demo chain: departments, catalogue and grants drawn from the project's source documents
//! (the national market regulator as governor; Qingdao's departments; issuers in Jining and
//! Jiyuan; Xinjiang recognising Shandong's business licences), and a few thousand licences
//! with their later history (suspensions, revocations, renewals, pledges, an objection).
//!
//! Everything here is data and signing; [`crate::network`] submits it.

use std::collections::BTreeMap;

use hutong_core::crypto::{PublicKey, SecretKey};
use hutong_core::genesis::{Genesis, GenesisGrant};
use hutong_core::hash::Hash32;
use hutong_core::ident::{RegionCode, ResidentId, Uscc};
use hutong_core::records::{
    AuthorityId, FaceValue, FieldBound, FieldKind, FieldSchema, Holder, HolderKind, IssuedBy,
    LicenceNumber, NodeEntry, Role, StatusAction, TimeMs, TypeConstraints, Visibility,
    face_commitment,
};
use hutong_core::suite::Suite;
use hutong_core::tx::{
    AuthorityDraft, LicenceTypeDraft, Transaction, TxBody, TxPayload, ValidUntil,
};

use crate::Error;

/// The demo chain's id.
pub const CHAIN_ID: &str = "hutong-demo";
/// One day in milliseconds.
pub const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// One department of the demo: `(id, Chinese name, English gloss, region, roles)`.
pub type Department = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [Role],
);

/// The departments of the demo chain.
pub const DEPARTMENTS: &[Department] = &[
    (
        "samr",
        "国家市场监督管理总局",
        "State Administration for Market Regulation",
        "000000",
        &[Role::Governor],
    ),
    (
        "qd-approval",
        "青岛市行政审批服务局",
        "Qingdao Administrative Approval Service Bureau",
        "370200",
        &[Role::Issuer],
    ),
    (
        "qd-market",
        "青岛市市场监督管理局",
        "Qingdao Administration for Market Regulation",
        "370200",
        &[Role::Supervisor],
    ),
    (
        "qd-tax",
        "国家税务总局青岛市税务局",
        "Qingdao Tax Service",
        "370200",
        &[Role::Issuer],
    ),
    (
        "qd-hrss",
        "青岛市人力资源和社会保障局",
        "Qingdao Human Resources and Social Security Bureau",
        "370200",
        &[Role::Issuer],
    ),
    (
        "qd-healthcare",
        "青岛市医疗保障局",
        "Qingdao Healthcare Security Administration",
        "370200",
        &[Role::Supervisor],
    ),
    (
        "qd-police",
        "青岛市公安局",
        "Qingdao Public Security Bureau",
        "370200",
        &[Role::Supervisor],
    ),
    (
        "qd-bigdata",
        "青岛市大数据发展管理局",
        "Qingdao Big Data Development Administration",
        "370200",
        &[Role::Recognizer],
    ),
    (
        "jn-approval",
        "济宁市行政审批服务局",
        "Jining Administrative Approval Service Bureau",
        "370800",
        &[Role::Issuer],
    ),
    (
        "jy-approval",
        "济源示范区行政审批和政务信息管理局",
        "Jiyuan Administrative Approval and Government Information Bureau",
        "419001",
        &[Role::Issuer],
    ),
    (
        "xj-services",
        "新疆维吾尔自治区人民政府政务服务管理办公室",
        "Xinjiang Uygur Autonomous Region Government Services Office",
        "650000",
        &[Role::Recognizer],
    ),
];

/// The authorities validators are bound to, in turn: the Qingdao big data administration
/// runs the first validator.
pub const VALIDATOR_OPERATORS: &[&str] = &["qd-bigdata", "samr", "jn-approval", "xj-services"];

/// Grants: `(authority, type, region)`.
pub const GRANTS: &[(&str, &str, &str)] = &[
    ("qd-approval", "business-licence", "370200"),
    ("qd-approval", "food-operation-permit", "370200"),
    ("qd-approval", "road-transport-permit", "370200"),
    ("qd-market", "business-licence", "370200"),
    ("qd-market", "food-operation-permit", "370200"),
    ("qd-tax", "tax-credit-rating", "370200"),
    ("qd-hrss", "social-insurance-registration", "370200"),
    ("qd-hrss", "qualification", "370200"),
    ("qd-healthcare", "social-insurance-registration", "370200"),
    ("qd-police", "road-transport-permit", "370200"),
    ("jn-approval", "business-licence", "370800"),
    ("jn-approval", "road-transport-permit", "370800"),
    ("jy-approval", "business-licence", "419001"),
    ("jy-approval", "food-operation-permit", "419001"),
];

fn field(name: &str, name_zh: &str, kind: FieldKind, required: bool) -> FieldSchema {
    FieldSchema {
        name: name.into(),
        name_zh: name_zh.into(),
        kind,
        required,
        visibility: Visibility::Public,
    }
}

fn enterprise_type(
    code: &str,
    name_zh: &str,
    name_en: &str,
    extra: Vec<FieldSchema>,
    default_validity_days: Option<u32>,
    supervisor_actions: Vec<StatusAction>,
) -> LicenceTypeDraft {
    let mut fields = vec![
        field("name", "名称", FieldKind::Text, true),
        field("uscc", "统一社会信用代码", FieldKind::Uscc, true),
    ];
    fields.extend(extra);
    LicenceTypeDraft {
        code: code.into(),
        name_zh: name_zh.into(),
        name_en: name_en.into(),
        holder_kind: HolderKind::Enterprise,
        fields,
        default_validity_days,
        supervisor_actions,
        // The face's USCC is the holder's own, on every enterprise licence.
        constraints: TypeConstraints {
            holder_fields: vec!["uscc".into()],
            ..TypeConstraints::default()
        },
    }
}

/// 一企一照 and the business licence's face: one licence per enterprise, numbered by its
/// USCC, a registered capital that is not negative, and an establishment date from the
/// founding of the People's Republic (1949-10-01) to the day of the block.
fn business_licence_constraints() -> TypeConstraints {
    TypeConstraints {
        unique_per_holder: true,
        number_is_holder_uscc: true,
        holder_fields: vec!["uscc".into()],
        bounds: vec![
            FieldBound {
                field: "registered_capital".into(),
                min: Some("0".into()),
                max: None,
                not_after_block_date: false,
            },
            FieldBound {
                field: "established".into(),
                min: Some("1949-10-01".into()),
                max: None,
                not_after_block_date: true,
            },
        ],
        annual_inspection_days: None,
    }
}

/// The catalogue (电子证照目录) of the demo chain.
pub fn catalogue() -> Vec<LicenceTypeDraft> {
    use StatusAction::{AnnualInspection, Reinstate, Revoke, Suspend};
    vec![
        LicenceTypeDraft {
            constraints: business_licence_constraints(),
            ..enterprise_type(
                "business-licence",
                "营业执照",
                "Business licence",
                vec![
                    field("legal_representative", "法定代表人", FieldKind::Text, true),
                    field("registered_capital", "注册资本", FieldKind::Decimal, false),
                    field("established", "成立日期", FieldKind::Date, true),
                    field("address", "住所", FieldKind::Text, false),
                ],
                None,
                vec![Suspend, Reinstate, Revoke, AnnualInspection],
            )
        },
        enterprise_type(
            "food-operation-permit",
            "食品经营许可证",
            "Food operation permit",
            vec![field("scope", "经营项目", FieldKind::Text, true)],
            Some(5 * 365),
            vec![Suspend, Reinstate, Revoke],
        ),
        enterprise_type(
            "social-insurance-registration",
            "社会保险登记证",
            "Social insurance registration",
            vec![field(
                "insured_count",
                "参保人数",
                FieldKind::Integer,
                false,
            )],
            None,
            vec![Suspend, Reinstate],
        ),
        enterprise_type(
            "tax-credit-rating",
            "纳税信用等级证明",
            "Tax credit rating",
            vec![
                field("rating", "信用等级", FieldKind::Text, true),
                field("year", "评价年度", FieldKind::Integer, true),
            ],
            Some(365),
            vec![Revoke],
        ),
        enterprise_type(
            "road-transport-permit",
            "道路运输经营许可证",
            "Road transport operation permit",
            vec![field("scope", "经营范围", FieldKind::Text, true)],
            Some(4 * 365),
            vec![Suspend, Reinstate, Revoke],
        ),
        LicenceTypeDraft {
            code: "qualification".into(),
            name_zh: "职业资格证书".into(),
            name_en: "Professional qualification".into(),
            holder_kind: HolderKind::Person,
            fields: vec![
                field("name", "姓名", FieldKind::Text, true),
                FieldSchema {
                    visibility: Visibility::Private,
                    ..field("id_number", "身份证号", FieldKind::Text, true)
                },
                field("occupation", "职业", FieldKind::Text, true),
                field("level", "等级", FieldKind::Text, true),
            ],
            default_validity_days: None,
            supervisor_actions: vec![Revoke],
            constraints: TypeConstraints::default(),
        },
    ]
}

fn region(code: &str) -> Result<RegionCode, Error> {
    RegionCode::parse(code).map_err(|error| Error::Demo(format!("region {code}: {error}")))
}

/// A valid USCC (GB 32100-2015) for enterprise `n` registered in `region_code`.
pub fn uscc(region_code: &str, n: u64) -> Result<Uscc, Error> {
    let first17 = format!("91{region_code}MA{:07}", n % 10_000_000);
    Uscc::with_check(&first17).map_err(|error| Error::Demo(format!("USCC {first17}: {error}")))
}

/// The demo genesis: the departments with `keys`, the catalogue, the grants, and one node
/// entry per `(node key, power)` (validators have power 1, observers 0).
pub fn genesis(
    keys: &BTreeMap<String, SecretKey>,
    nodes: &[(PublicKey, u64)],
    genesis_time: TimeMs,
) -> Result<Genesis, Error> {
    let mut authorities = Vec::new();
    for (index, (id, name_zh, name_en, region_code, roles)) in DEPARTMENTS.iter().enumerate() {
        let key = keys
            .get(*id)
            .ok_or_else(|| Error::Demo(format!("no key for {id}")))?;
        let uscc_region = if *region_code == "000000" {
            "110000"
        } else {
            region_code
        };
        authorities.push(AuthorityDraft {
            id: (*id).into(),
            name_zh: (*name_zh).into(),
            name_en: (*name_en).into(),
            region: region(region_code)?,
            uscc: {
                let first17 = format!("11{uscc_region}{:09}", 1000 + index);
                Uscc::with_check(&first17)
                    .map_err(|error| Error::Demo(format!("USCC {first17}: {error}")))?
            },
            roles: roles.to_vec(),
            key: key.public_key(),
        });
    }
    let mut grants = Vec::new();
    for (authority, type_code, region_code) in GRANTS {
        grants.push(GenesisGrant {
            authority: (*authority).into(),
            type_code: (*type_code).into(),
            region: region(region_code)?,
        });
    }
    let nodes = nodes
        .iter()
        .enumerate()
        .map(|(index, (key, power))| NodeEntry {
            key: *key,
            authority: VALIDATOR_OPERATORS[index % VALIDATOR_OPERATORS.len()].into(),
            power: *power,
        })
        .collect();
    let genesis = Genesis {
        chain_id: CHAIN_ID.into(),
        suite: Suite::Ed25519Blake3,
        genesis_time,
        authorities,
        licence_types: catalogue(),
        grants,
        nodes,
        freshness: Default::default(),
    };
    genesis
        .validate()
        .map_err(|error| Error::Demo(format!("the demo genesis is invalid: {error}")))?;
    Ok(genesis)
}

/// Signs transactions for the demo authorities, each authority's nonces one after the other
/// (ADR 0011) from where [`Signer::continue_from`] set them (the next nonce a node reports),
/// or from 1.
#[derive(Debug)]
pub struct Signer {
    suite: Suite,
    chain_id: String,
    keys: BTreeMap<String, SecretKey>,
    last_nonces: BTreeMap<String, u64>,
}

impl Signer {
    pub fn new(suite: Suite, chain_id: &str, keys: BTreeMap<String, SecretKey>) -> Self {
        Signer {
            suite,
            chain_id: chain_id.into(),
            keys,
            last_nonces: BTreeMap::new(),
        }
    }

    /// `authority`'s next transaction gets nonce `next`.
    pub fn continue_from(&mut self, authority: &str, next: u64) {
        self.last_nonces
            .insert(authority.to_string(), next.saturating_sub(1));
    }

    /// Whether `authority`'s key is known.
    pub fn has_key(&self, authority: &str) -> bool {
        self.keys.contains_key(authority)
    }

    /// Signs `body` by `authority` alone with its next nonce.
    pub fn sign(
        &mut self,
        authority: &str,
        body: TxBody,
        now_ms: TimeMs,
    ) -> Result<Transaction, Error> {
        let key = self
            .keys
            .get(authority)
            .ok_or_else(|| Error::Demo(format!("no key for {authority}")))?;
        let last = self.last_nonces.get(authority).copied().unwrap_or(0);
        let nonce = last + 1;
        self.last_nonces.insert(authority.to_string(), nonce);
        let signer = AuthorityId::from(authority);
        let payload = TxPayload {
            chain_id: self.chain_id.clone(),
            signer: signer.clone(),
            nonce,
            created_at: now_ms,
            body,
        };
        Transaction::sign(self.suite, payload, &[(&signer, key)])
            .map_err(|error| Error::Demo(format!("signing for {authority}: {error}")))
    }
}

fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_micros() as u64)
        .unwrap_or(0)
}

/// The time now in milliseconds since the Unix epoch.
pub fn now_ms() -> TimeMs {
    now_micros() / 1000
}

/// Enterprise names: a district, a trade word and a form, glossed.
const DISTRICTS: &[(&str, &str)] = &[
    ("市南", "Shinan"),
    ("市北", "Shibei"),
    ("崂山", "Laoshan"),
    ("黄岛", "Huangdao"),
    ("城阳", "Chengyang"),
    ("即墨", "Jimo"),
];
const TRADES: &[(&str, &str)] = &[
    ("海洋科技", "Marine Technology"),
    ("食品贸易", "Food Trading"),
    ("物流", "Logistics"),
    ("机械制造", "Machinery"),
    ("软件", "Software"),
    ("餐饮管理", "Catering Management"),
    ("建筑工程", "Construction"),
    ("纺织", "Textiles"),
];
const SURNAMES: &[&str] = &["王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴"];
const GIVEN: &[&str] = &["伟", "芳", "娜", "敏", "静", "强", "磊", "洋", "艳", "军"];

/// `(Chinese name, English gloss)` of enterprise `n` in a city.
fn enterprise_name(city_zh: &str, city_en: &str, n: u64) -> (String, String) {
    let (district_zh, district_en) = DISTRICTS[(n as usize) % DISTRICTS.len()];
    let (trade_zh, trade_en) = TRADES[(n as usize / DISTRICTS.len()) % TRADES.len()];
    (
        format!("{city_zh}{district_zh}{trade_zh}有限公司（第{n}号）"),
        format!("{city_en} {district_en} {trade_en} Co., Ltd. (No. {n})"),
    )
}

fn person_name(n: u64) -> String {
    format!(
        "{}{}",
        SURNAMES[(n as usize) % SURNAMES.len()],
        GIVEN[(n as usize / SURNAMES.len()) % GIVEN.len()]
    )
}

/// One enterprise licence to issue.
struct Issue<'a> {
    suite: Suite,
    type_code: &'a str,
    number: String,
    holder: Uscc,
    holder_name: (String, String),
    region: &'a str,
    extra: Vec<(&'a str, String)>,
    valid_from: TimeMs,
}

fn issue_body(issue: Issue<'_>) -> Result<TxBody, Error> {
    let mut face = BTreeMap::new();
    face.insert(
        "name".to_string(),
        FaceValue::Clear(issue.holder_name.0.clone()),
    );
    face.insert(
        "uscc".to_string(),
        FaceValue::Clear(issue.holder.to_string()),
    );
    for (name, value) in issue.extra {
        face.insert(name.to_string(), FaceValue::Clear(value));
    }
    Ok(TxBody::IssueLicence {
        type_code: issue.type_code.into(),
        document_hash: issue
            .suite
            .tagged("hutong/demo/document", issue.number.as_bytes()),
        number: LicenceNumber(issue.number),
        holder: Holder::Enterprise(issue.holder),
        holder_name: issue.holder_name.1,
        region: region(issue.region)?,
        face,
        valid_from: issue.valid_from,
        valid_until: if issue.type_code == "business-licence" {
            ValidUntil::LongTerm
        } else {
            ValidUntil::TypeDefault
        },
    })
}

/// How many licences of each kind the demo issues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DemoSize {
    pub qingdao_business: u64,
    pub jining_business: u64,
    pub jiyuan_business: u64,
    pub food_permits: u64,
    pub social_insurance: u64,
    pub tax_ratings: u64,
    pub road_transport: u64,
    pub qualifications: u64,
}

impl DemoSize {
    /// The demo of the README's main command: 3,000 licences.
    pub const STANDARD: DemoSize = DemoSize {
        qingdao_business: 1200,
        jining_business: 400,
        jiyuan_business: 200,
        food_permits: 400,
        social_insurance: 300,
        tax_ratings: 250,
        road_transport: 200,
        qualifications: 50,
    };

    /// A small demo for tests: 135 licences, the same history in proportion.
    pub const SMALL: DemoSize = DemoSize {
        qingdao_business: 60,
        jining_business: 10,
        jiyuan_business: 10,
        food_permits: 20,
        social_insurance: 10,
        tax_ratings: 10,
        road_transport: 10,
        qualifications: 5,
    };

    /// How many issuances in all.
    pub fn total(&self) -> u64 {
        self.qingdao_business
            + self.jining_business
            + self.jiyuan_business
            + self.food_permits
            + self.social_insurance
            + self.tax_ratings
            + self.road_transport
            + self.qualifications
    }
}

/// Licences of the demo worth looking at, written to `DIR/demo.json` and printed by `up`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Examples {
    /// A Qingdao business licence in force (recognised in Xinjiang).
    pub active: String,
    /// A suspended Qingdao business licence.
    pub suspended: String,
    /// A revoked Qingdao business licence.
    pub revoked: String,
    /// A business licence under objection.
    pub objected: String,
    /// A Jiyuan (Henan) business licence: not recognised in Xinjiang.
    pub jiyuan: String,
    /// A renewed food operation permit.
    pub renewed_food_permit: String,
    /// A pledged road transport permit.
    pub pledged_road_transport: String,
    /// A professional qualification of a natural person.
    pub qualification: String,
}

/// The demo's transactions in two waves: issuances first, then what refers to them.
#[derive(Debug)]
pub struct DemoPlan {
    /// `(signer, body)`, signed when submitted (a resubmission needs a fresh nonce).
    pub issuances: Vec<(String, TxBody)>,
    pub follow_ups: Vec<(String, TxBody)>,
    pub examples: Examples,
}

/// The demo's records and their signers. `now` is the signing time; issuances are dated in the
/// recent past so that their history looks lived-in.
pub fn plan(suite: Suite, size: DemoSize, now: TimeMs) -> Result<DemoPlan, Error> {
    let mut issuances = Vec::new();
    let mut examples = Examples::default();
    let year_ms = 365 * DAY_MS;
    let past = |n: u64| now.saturating_sub(year_ms + (n % 300) * DAY_MS);
    let cities = [
        (
            "qd-approval",
            "370200",
            "青岛",
            "Qingdao",
            size.qingdao_business,
        ),
        (
            "jn-approval",
            "370800",
            "济宁",
            "Jining",
            size.jining_business,
        ),
        (
            "jy-approval",
            "419001",
            "济源",
            "Jiyuan",
            size.jiyuan_business,
        ),
    ];
    let mut qingdao_business = Vec::new();
    let mut jiyuan_business = Vec::new();
    for (issuer, region_code, city_zh, city_en, count) in cities {
        for n in 1..=count {
            let holder = uscc(region_code, n)?;
            let number = holder.to_string();
            let body = issue_body(Issue {
                suite,
                type_code: "business-licence",
                number: number.clone(),
                holder,
                holder_name: enterprise_name(city_zh, city_en, n),
                region: region_code,
                extra: vec![
                    ("legal_representative", person_name(n)),
                    (
                        "registered_capital",
                        format!("{}.00", 100_000 * (1 + n % 50)),
                    ),
                    ("established", "2019-03-15".to_string()),
                    (
                        "address",
                        format!(
                            "{city_zh}市{}路{}号",
                            DISTRICTS[(n as usize) % DISTRICTS.len()].0,
                            n
                        ),
                    ),
                ],
                valid_from: past(n),
            })?;
            issuances.push((issuer.to_string(), body));
            match region_code {
                "370200" => qingdao_business.push(number),
                "419001" => jiyuan_business.push(number),
                _ => {}
            }
        }
    }
    // Other Qingdao licences go to the same enterprises.
    let qingdao_holder = |n: u64| uscc("370200", 1 + (n - 1) % size.qingdao_business.max(1));
    let mut food_permits = Vec::new();
    for n in 1..=size.food_permits {
        let holder = qingdao_holder(n)?;
        let number = format!("JY33702{:09}", n);
        let body = issue_body(Issue {
            suite,
            type_code: "food-operation-permit",
            number: number.clone(),
            holder,
            holder_name: enterprise_name(
                "青岛",
                "Qingdao",
                1 + (n - 1) % size.qingdao_business.max(1),
            ),
            region: "370200",
            extra: vec![("scope", "预包装食品销售；热食类食品制售".to_string())],
            valid_from: past(n),
        })?;
        issuances.push(("qd-approval".to_string(), body));
        food_permits.push(number);
    }
    for n in 1..=size.social_insurance {
        let holder = qingdao_holder(n)?;
        let body = issue_body(Issue {
            suite,
            type_code: "social-insurance-registration",
            number: format!("SB370200{:08}", n),
            holder,
            holder_name: enterprise_name(
                "青岛",
                "Qingdao",
                1 + (n - 1) % size.qingdao_business.max(1),
            ),
            region: "370200",
            extra: vec![("insured_count", (5 + n % 200).to_string())],
            valid_from: past(n),
        })?;
        issuances.push(("qd-hrss".to_string(), body));
    }
    for n in 1..=size.tax_ratings {
        let holder = qingdao_holder(n)?;
        let rating = ["A", "B", "M", "C"][(n as usize) % 4];
        let body = issue_body(Issue {
            suite,
            type_code: "tax-credit-rating",
            number: format!("NSXY2025-{:08}", n),
            holder,
            holder_name: enterprise_name(
                "青岛",
                "Qingdao",
                1 + (n - 1) % size.qingdao_business.max(1),
            ),
            region: "370200",
            extra: vec![("rating", rating.to_string()), ("year", "2025".to_string())],
            valid_from: now.saturating_sub(30 * DAY_MS),
        })?;
        issuances.push(("qd-tax".to_string(), body));
    }
    let mut road_permits = Vec::new();
    for n in 1..=size.road_transport {
        let (issuer, region_code, city_zh, city_en, base) = if n % 2 == 0 {
            (
                "jn-approval",
                "370800",
                "济宁",
                "Jining",
                size.jining_business,
            )
        } else {
            (
                "qd-approval",
                "370200",
                "青岛",
                "Qingdao",
                size.qingdao_business,
            )
        };
        let enterprise = 1 + (n - 1) % base.max(1);
        let number = format!("RT{region_code}{n:06}");
        let body = issue_body(Issue {
            suite,
            type_code: "road-transport-permit",
            number: number.clone(),
            holder: uscc(region_code, enterprise)?,
            holder_name: enterprise_name(city_zh, city_en, enterprise),
            region: region_code,
            extra: vec![("scope", "道路普通货物运输".to_string())],
            valid_from: past(n),
        })?;
        issuances.push((issuer.to_string(), body));
        road_permits.push((issuer, number));
    }
    let mut qualifications = Vec::new();
    for n in 1..=size.qualifications {
        let first17 = format!("370202{}{:03}", 19800101 + (n % 20) * 10000, n % 1000);
        let resident = ResidentId::with_check(&first17)
            .map_err(|error| Error::Demo(format!("resident id {first17}: {error}")))?;
        let salt: [u8; 32] = suite.tagged("hutong/demo/salt", &n.to_be_bytes()).0;
        let person: Hash32 = resident.commitment(suite, &salt);
        let number = format!("ZG3702{:010}", n);
        let mut face = BTreeMap::new();
        let name = person_name(n);
        face.insert("name".to_string(), FaceValue::Clear(name.clone()));
        face.insert(
            "id_number".to_string(),
            FaceValue::Committed(face_commitment(suite, &salt, "id_number", &first17)),
        );
        face.insert(
            "occupation".to_string(),
            FaceValue::Clear(
                ["电工 electrician", "焊工 welder", "育婴员 childcare worker"][(n as usize) % 3]
                    .to_string(),
            ),
        );
        face.insert(
            "level".to_string(),
            FaceValue::Clear(["初级", "中级", "高级"][(n as usize) % 3].to_string()),
        );
        let body = TxBody::IssueLicence {
            type_code: "qualification".into(),
            document_hash: suite.tagged("hutong/demo/document", number.as_bytes()),
            number: LicenceNumber(number.clone()),
            holder: Holder::Person(person),
            holder_name: name,
            region: region("370200")?,
            face,
            valid_from: past(n),
            valid_until: ValidUntil::TypeDefault,
        };
        issuances.push(("qd-hrss".to_string(), body));
        qualifications.push(number);
    }

    // Later history.
    let mut follow_ups = Vec::new();
    let status =
        |type_code: &str, number: &str, action: StatusAction, reason: &str| TxBody::ChangeStatus {
            type_code: type_code.into(),
            number: LicenceNumber(number.into()),
            action,
            effective_at: now.saturating_sub(DAY_MS),
            reason: reason.into(),
        };
    // Every 30th Qingdao business licence suspended, every 60th (offset) revoked.
    for (index, number) in qingdao_business.iter().enumerate() {
        let body = match index % 60 {
            9 | 39 => status(
                "business-licence",
                number,
                StatusAction::Suspend,
                "未按规定报送年度报告 / annual report not filed",
            ),
            19 => status(
                "business-licence",
                number,
                StatusAction::Revoke,
                "提交虚假材料取得登记 / registration obtained with false documents",
            ),
            _ => continue,
        };
        if examples.suspended.is_empty() && index % 60 == 9 {
            examples.suspended = number.clone();
        }
        if examples.revoked.is_empty() && index % 60 == 19 {
            examples.revoked = number.clone();
        }
        follow_ups.push(("qd-market".to_string(), body));
    }
    for (index, number) in food_permits.iter().enumerate().filter(|(i, _)| i % 10 == 4) {
        let body = status(
            "food-operation-permit",
            number,
            StatusAction::Renew {
                valid_until: Some(now + 5 * year_ms),
            },
            "延续换证 / renewed on application",
        );
        if index == 4 {
            examples.renewed_food_permit = number.clone();
        }
        follow_ups.push(("qd-approval".to_string(), body));
    }
    for (index, (issuer, number)) in road_permits.iter().enumerate().filter(|(i, _)| i % 10 == 1) {
        let body = status(
            "road-transport-permit",
            number,
            StatusAction::PledgeRegistered {
                secured_party: "中国银行济宁分行 / Bank of China Jining Branch".into(),
                reference: format!("PLEDGE-2026-{index:04}"),
            },
            "车辆抵押登记 / vehicle pledge registered",
        );
        if examples.pledged_road_transport.is_empty() {
            examples.pledged_road_transport = number.clone();
        }
        follow_ups.push((issuer.to_string(), body));
    }
    if let Some(number) = qingdao_business.get(2) {
        examples.objected = number.clone();
        follow_ups.push((
            "qd-tax".to_string(),
            TxBody::FileObjection {
                type_code: "business-licence".into(),
                number: LicenceNumber(number.clone()),
                reason: "登记住所与纳税申报地址不一致 / registered address differs from the tax filing address".into(),
                recognition: None,
            },
        ));
    }
    follow_ups.push((
        "xj-services".to_string(),
        TxBody::AttestRecognition {
            recognizing_region: region("650000")?,
            type_codes: vec!["business-licence".into()],
            issued_by: IssuedBy::Region(region("370000")?),
            scope: "鲁新营业执照互认 / Shandong business licences recognised in Xinjiang".into(),
            // A recognition's start is an event: inside the window around the block time.
            valid_from: now.saturating_sub(DAY_MS),
            valid_until: None,
        },
    ));
    examples.active = qingdao_business.first().cloned().unwrap_or_default();
    examples.jiyuan = jiyuan_business.first().cloned().unwrap_or_default();
    examples.qualification = qualifications.first().cloned().unwrap_or_default();
    Ok(DemoPlan {
        issuances,
        follow_ups,
        examples,
    })
}
