//! Deterministic fixtures for tests, benchmarks and demonstrations: keys derived from names, a
//! small genesis with governors, issuers, a supervisor and a recognizer, and builders that sign
//! transactions with the right nonces. Nothing here is used by a running node's logic.

use std::collections::{BTreeMap, BTreeSet};

use crate::block::{BlockHeader, CommitCertificate, certify};
use crate::crypto::SecretKey;
use crate::genesis::{Genesis, GenesisGrant};
use crate::hash::{Hash32, tagged};
use crate::ident::{RegionCode, Uscc};
use crate::records::{
    AuthorityId, FaceValue, FieldBound, FieldKind, FieldSchema, Holder, HolderKind, LicenceNumber,
    NodeEntry, Record, RecordKey, Role, StatusAction, TimeMs, TypeCode, TypeConstraints,
    Visibility, face_commitment,
};
use crate::rules::{StateError, StateReader};
use crate::suite::Suite;
use crate::tx::{AuthorityDraft, LicenceTypeDraft, Transaction, TxBody, TxPayload, ValidUntil};

/// The algorithm suite of fixture chains.
pub const SUITE: Suite = Suite::Ed25519Blake3;
/// The chain id of fixtures.
pub const CHAIN_ID: &str = "hutong-test";
/// 2026-01-01T00:00:00Z.
pub const GENESIS_TIME: TimeMs = 1_767_225_600_000;
/// One day in milliseconds.
pub const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// A signing key derived from a name (never use outside tests and demos).
pub fn secret(name: &str) -> SecretKey {
    SecretKey::from_seed(tagged("hutong/testkit/key", name.as_bytes()).0)
}

/// A valid USCC for enterprise number `n` registered in `region` (six digits).
pub fn uscc(region: &str, n: u64) -> Uscc {
    let first17 = format!("91{region}MA{:07}", n % 10_000_000);
    // Invariant: the fixture builds 17 characters from the USCC alphabet.
    #[allow(clippy::expect_used)]
    Uscc::with_check(&first17).expect("fixture USCC is well formed")
}

/// A region code from six digits (fixtures only).
pub fn region(code: &str) -> RegionCode {
    #[allow(clippy::expect_used)]
    RegionCode::parse(code).expect("fixture region is six digits")
}

fn field(
    name: &str,
    name_zh: &str,
    kind: FieldKind,
    required: bool,
    visibility: Visibility,
) -> FieldSchema {
    FieldSchema {
        name: name.into(),
        name_zh: name_zh.into(),
        kind,
        required,
        visibility,
    }
}

/// The business-licence type of the fixtures.
pub fn business_licence_type() -> LicenceTypeDraft {
    LicenceTypeDraft {
        code: "business-licence".into(),
        name_zh: "营业执照".into(),
        name_en: "Business licence".into(),
        holder_kind: HolderKind::Enterprise,
        fields: vec![
            field("name", "名称", FieldKind::Text, true, Visibility::Public),
            field(
                "legal_representative",
                "法定代表人",
                FieldKind::Text,
                true,
                Visibility::Public,
            ),
            field(
                "registered_capital",
                "注册资本",
                FieldKind::Decimal,
                false,
                Visibility::Public,
            ),
            field(
                "established",
                "成立日期",
                FieldKind::Date,
                true,
                Visibility::Public,
            ),
            field(
                "address",
                "住所",
                FieldKind::Text,
                false,
                Visibility::Public,
            ),
        ],
        default_validity_days: None,
        supervisor_actions: vec![
            StatusAction::Suspend,
            StatusAction::Reinstate,
            StatusAction::Revoke,
            StatusAction::AnnualInspection,
        ],
        constraints: business_licence_constraints(),
    }
}

/// 一企一照 and the bounds of the business licence's face: one per enterprise, numbered by
/// its USCC, a registered capital that is not negative, and an establishment date from the
/// founding of the People's Republic to the day of the block.
pub fn business_licence_constraints() -> TypeConstraints {
    TypeConstraints {
        unique_per_holder: true,
        number_is_holder_uscc: true,
        holder_fields: Vec::new(),
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

/// A qualification for natural persons with a private field.
pub fn qualification_type() -> LicenceTypeDraft {
    LicenceTypeDraft {
        code: "qualification".into(),
        name_zh: "职业资格证书".into(),
        name_en: "Professional qualification".into(),
        holder_kind: HolderKind::Person,
        fields: vec![
            field("name", "姓名", FieldKind::Text, true, Visibility::Public),
            field(
                "id_number",
                "身份证号",
                FieldKind::Text,
                true,
                Visibility::Private,
            ),
            field("level", "等级", FieldKind::Text, true, Visibility::Public),
        ],
        default_validity_days: Some(5 * 365),
        supervisor_actions: vec![StatusAction::Revoke],
        constraints: TypeConstraints::default(),
    }
}

/// The fixture's authorities: `(id, zh name, en name, region, roles)`.
pub const AUTHORITIES: &[(&str, &str, &str, &str, &[Role])] = &[
    (
        "gov-a",
        "国家市场监督管理总局",
        "State Administration for Market Regulation",
        "000000",
        &[Role::Governor],
    ),
    (
        "gov-b",
        "山东省市场监督管理局",
        "Shandong Market Regulation",
        "370000",
        &[Role::Governor],
    ),
    (
        "gov-c",
        "新疆维吾尔自治区市场监督管理局",
        "Xinjiang Market Regulation",
        "650000",
        &[Role::Governor],
    ),
    (
        "gov-d",
        "青岛市大数据发展管理局",
        "Qingdao Big Data Bureau",
        "370200",
        &[Role::Governor],
    ),
    (
        "qd-approval",
        "青岛市行政审批服务局",
        "Qingdao Administrative Approval Bureau",
        "370200",
        &[Role::Issuer],
    ),
    (
        "qd-market",
        "青岛市市场监督管理局",
        "Qingdao Market Regulation",
        "370200",
        &[Role::Supervisor],
    ),
    (
        "jn-approval",
        "济宁市行政审批服务局",
        "Jining Administrative Approval Bureau",
        "370800",
        &[Role::Issuer],
    ),
    (
        "xj-recognizer",
        "新疆维吾尔自治区政务服务管理办公室",
        "Xinjiang Government Services Office",
        "650000",
        &[Role::Recognizer],
    ),
    (
        "hr-bureau",
        "青岛市人力资源和社会保障局",
        "Qingdao Human Resources and Social Security",
        "370200",
        &[Role::Issuer],
    ),
];

/// A fixture chain: a genesis and the keys of its authorities and nodes, with nonce counters.
#[derive(Debug)]
pub struct Fixture {
    pub genesis: Genesis,
    pub keys: BTreeMap<AuthorityId, SecretKey>,
    pub node_keys: Vec<SecretKey>,
    nonces: BTreeMap<AuthorityId, u64>,
}

impl Default for Fixture {
    fn default() -> Self {
        Self::new()
    }
}

impl Fixture {
    /// Four validators, bound to the four governors, each with power 1.
    pub fn new() -> Self {
        Self::with_validators(4)
    }

    /// `validators` nodes, bound to the governors in turn.
    pub fn with_validators(validators: usize) -> Self {
        let mut keys = BTreeMap::new();
        let mut authorities = Vec::new();
        for (index, (id, name_zh, name_en, region_code, roles)) in AUTHORITIES.iter().enumerate() {
            let key = secret(id);
            authorities.push(AuthorityDraft {
                id: (*id).into(),
                name_zh: (*name_zh).into(),
                name_en: (*name_en).into(),
                region: region(region_code),
                uscc: uscc(
                    if *region_code == "000000" {
                        "110000"
                    } else {
                        region_code
                    },
                    9_000_000 + index as u64,
                ),
                roles: roles.to_vec(),
                key: key.public_key(),
            });
            keys.insert(AuthorityId::from(*id), key);
        }
        let node_keys: Vec<SecretKey> = (0..validators)
            .map(|index| secret(&format!("node-{index}")))
            .collect();
        let governors = ["gov-a", "gov-b", "gov-c", "gov-d"];
        let nodes = node_keys
            .iter()
            .enumerate()
            .map(|(index, key)| NodeEntry {
                key: key.public_key(),
                authority: governors[index % governors.len()].into(),
                power: 1,
            })
            .collect();
        let grant = |authority: &str, type_code: &str, region_code: &str| GenesisGrant {
            authority: authority.into(),
            type_code: type_code.into(),
            region: region(region_code),
        };
        let genesis = Genesis {
            chain_id: CHAIN_ID.into(),
            suite: SUITE,
            genesis_time: GENESIS_TIME,
            authorities,
            licence_types: vec![business_licence_type(), qualification_type()],
            grants: vec![
                grant("qd-approval", "business-licence", "370200"),
                grant("qd-market", "business-licence", "370200"),
                grant("jn-approval", "business-licence", "370800"),
                grant("hr-bureau", "qualification", "370200"),
            ],
            nodes,
            freshness: Default::default(),
        };
        Fixture {
            genesis,
            keys,
            node_keys,
            nonces: BTreeMap::new(),
        }
    }

    /// The fixture chain's algorithm suite.
    pub fn suite(&self) -> Suite {
        self.genesis.suite
    }

    /// The state at height 0 of the fixture's genesis, in memory.
    pub fn genesis_state(&self) -> MemoryState {
        MemoryState::from_genesis(&self.genesis)
    }

    /// A certificate for `header` signed by every fixture node in round 0.
    pub fn certify(&self, header: &BlockHeader) -> CommitCertificate {
        let signers: Vec<&SecretKey> = self.node_keys.iter().collect();
        certify(self.suite(), header, 0, &signers)
    }

    /// The governors' ids, sorted.
    pub fn governors(&self) -> Vec<AuthorityId> {
        vec![
            "gov-a".into(),
            "gov-b".into(),
            "gov-c".into(),
            "gov-d".into(),
        ]
    }

    /// The next nonce of `signer`.
    pub fn next_nonce(&mut self, signer: &AuthorityId) -> u64 {
        let nonce = self.nonces.entry(signer.clone()).or_insert(0);
        *nonce += 1;
        *nonce
    }

    /// Sets `signer`'s last nonce (its next is one above): after a rejected transaction, whose
    /// nonce the ledger did not use, the fixture continues from the ledger's.
    pub fn set_last_nonce(&mut self, signer: &AuthorityId, last: u64) {
        self.nonces.insert(signer.clone(), last);
    }

    /// A payload from `signer` with its next nonce, created at `created_at`.
    pub fn payload(&mut self, signer: &str, body: TxBody, created_at: TimeMs) -> TxPayload {
        let signer = AuthorityId::from(signer);
        TxPayload {
            chain_id: CHAIN_ID.into(),
            nonce: self.next_nonce(&signer),
            signer,
            created_at,
            body,
        }
    }

    /// Signs `body` by `signer` alone.
    pub fn tx(&mut self, signer: &str, body: TxBody) -> Transaction {
        let payload = self.payload(signer, body, GENESIS_TIME);
        self.sign(payload, &[signer])
    }

    /// Signs `payload` by the named authorities (the first must be the payload's signer).
    pub fn sign(&self, payload: TxPayload, signers: &[&str]) -> Transaction {
        let ids: Vec<AuthorityId> = signers.iter().map(|id| AuthorityId::from(*id)).collect();
        let pairs: Vec<(&AuthorityId, &SecretKey)> = ids
            .iter()
            .filter_map(|id| self.keys.get(id).map(|key| (id, key)))
            .collect();
        // Invariant: fixture chain ids are short.
        #[allow(clippy::expect_used)]
        Transaction::sign(self.suite(), payload, &pairs).expect("fixture chain id fits")
    }

    /// A governance record signed by the first `count` governors (the first submits it).
    pub fn governance(&mut self, body: TxBody, count: usize) -> Transaction {
        let governors = self.governors();
        let signers: Vec<&str> = governors
            .iter()
            .take(count)
            .map(AuthorityId::as_str)
            .collect();
        let payload = self.payload(signers[0], body, GENESIS_TIME);
        self.sign(payload, &signers)
    }

    /// An issuance of a business licence by `issuer` in `region_code`.
    pub fn issue_business_licence(
        &mut self,
        issuer: &str,
        region_code: &str,
        number: u64,
    ) -> Transaction {
        self.tx(issuer, business_licence_body(region_code, number))
    }
}

/// The body of a business-licence issuance for enterprise `number` in `region_code`.
pub fn business_licence_body(region_code: &str, number: u64) -> TxBody {
    let holder = uscc(region_code, number);
    let mut face = BTreeMap::new();
    face.insert(
        "name".to_string(),
        FaceValue::Clear(format!("青岛测试企业{number}有限公司")),
    );
    face.insert(
        "legal_representative".to_string(),
        FaceValue::Clear("张三".into()),
    );
    face.insert(
        "registered_capital".to_string(),
        FaceValue::Clear("1000000.00".into()),
    );
    face.insert(
        "established".to_string(),
        FaceValue::Clear("2020-05-01".into()),
    );
    TxBody::IssueLicence {
        type_code: "business-licence".into(),
        number: LicenceNumber(holder.to_string()),
        holder: Holder::Enterprise(holder),
        holder_name: format!("Test Enterprise {number}"),
        region: region(region_code),
        face,
        valid_from: GENESIS_TIME,
        valid_until: ValidUntil::LongTerm,
        document_hash: tagged("document", &number.to_be_bytes()),
    }
}

/// The body of a qualification issued to a person identified by `person`, with the private
/// `id_number` field committed with `salt`.
pub fn qualification_body(
    number: &str,
    person: Hash32,
    id_number: &str,
    salt: &[u8; 32],
) -> TxBody {
    let mut face = BTreeMap::new();
    face.insert("name".to_string(), FaceValue::Clear("李四".into()));
    face.insert(
        "id_number".to_string(),
        FaceValue::Committed(face_commitment(SUITE, salt, "id_number", id_number)),
    );
    face.insert("level".to_string(), FaceValue::Clear("高级".into()));
    TxBody::IssueLicence {
        type_code: TypeCode::from("qualification"),
        number: LicenceNumber(number.into()),
        holder: Holder::Person(person),
        holder_name: "李四".into(),
        region: region("370200"),
        face,
        valid_from: GENESIS_TIME,
        valid_until: ValidUntil::TypeDefault,
        document_hash: tagged("document", number.as_bytes()),
    }
}

/// A committed state held in memory: the records by key and the ids of the committed
/// transactions. The rules' tests and examples run on it without a store.
#[derive(Clone, Debug, Default)]
pub struct MemoryState {
    pub records: BTreeMap<RecordKey, Record>,
    pub transactions: BTreeSet<Hash32>,
}

impl MemoryState {
    /// The state at height 0 of `genesis`.
    pub fn from_genesis(genesis: &Genesis) -> Self {
        MemoryState {
            records: genesis
                .records()
                .into_iter()
                .map(|record| (record.key(), record))
                .collect(),
            transactions: BTreeSet::new(),
        }
    }

    /// Takes the writes of a block (an overlay's) and the ids of its transactions as committed.
    pub fn commit(
        &mut self,
        writes: BTreeMap<RecordKey, Record>,
        transactions: impl IntoIterator<Item = Hash32>,
    ) {
        self.records.extend(writes);
        self.transactions.extend(transactions);
    }
}

impl StateReader for MemoryState {
    fn record(&self, key: &RecordKey) -> Result<Option<Record>, StateError> {
        Ok(self.records.get(key).cloned())
    }

    fn contains_transaction(&self, id: &Hash32) -> Result<bool, StateError> {
        Ok(self.transactions.contains(id))
    }
}

/// The leaves of a test log of `size` leaves: leaf `i` is `i` as eight big-endian bytes.
fn counted_leaves(size: u64) -> Vec<Vec<u8>> {
    (0..size)
        .map(|index| index.to_be_bytes().to_vec())
        .collect()
}

/// The root of the test log of `size` counted leaves.
pub fn counted_log_root(suite: Suite, size: u64) -> Hash32 {
    crate::log::root_from_leaves(&suite, &counted_leaves(size))
}

/// The consistency proof from `first` to `second` leaves of the test log of counted leaves.
///
/// For tests only: it panics if the sizes are out of order.
#[allow(clippy::expect_used)]
pub fn counted_log_consistency(
    suite: Suite,
    first: u64,
    second: u64,
) -> crate::log::ConsistencyProof {
    use crate::log::LogHasher as _;
    let mut store = crate::log::MemoryLogStore::new();
    for (index, leaf) in counted_leaves(second).iter().enumerate() {
        let append = crate::log::append(&suite, &store, index as u64, &[suite.leaf_hash(leaf)])
            .expect("a memory log appends");
        store.insert_nodes(append.nodes);
    }
    crate::log::consistency_proof(&suite, &store, first, second).expect("first <= second")
}
