//! The structure of the workspace, checked: who may depend on whom, and no import circles
//! between source files. Fast and offline: no build of the checked crates, no network.
//!
//! # Dependencies
//!
//! `cargo metadata --format-version 1 --frozen --filter-platform HOST` gives the resolved
//! graph of the whole workspace. From it every workspace crate's transitive *normal*
//! dependencies are computed: dev- and build-dependencies are left out, target-specific
//! normal dependencies are kept. The checks:
//!
//! - a workspace crate names (as a normal dependency) only the workspace crates that
//!   [`ALLOWED_WORKSPACE_DEPENDENCIES`] allows it, and `ARCHITECTURE.md` shows the same map;
//! - `hutong-consensus`, `hutong-core` and `hutong-verify` reach no crate of
//!   [`forbidden_for`]'s lists (an async runtime, a network or web stack, a storage engine, a
//!   global source of randomness or of time); a failure names the crate and the path of
//!   dependencies that brings it in.
//!
//! Limits: the graph is filtered to the host platform, because `--frozen` cannot download the
//! packages of other platforms (a crate forbidden only on another target goes unseen; CI
//! builds on Linux, the platform the nodes run on). Features in `cargo metadata` are unified
//! over the workspace, so the graph may hold edges that a crate's own build would not enable:
//! the check errs on the side of failing. `cargo metadata --frozen` needs every package of the
//! host's graph on disk: after a build of the workspace (as CI does first) or `cargo fetch`.
//! The std clock (`std::time::SystemTime::now`) is no dependency and is not seen here.
//!
//! # Import circles
//!
//! Every `.rs` file under a workspace crate's `src/` that the crate root reaches through
//! `mod name;` declarations outside test code is a node; its module path follows from its
//! place (`src/store/mod.rs` is `store`, `src/store/journal.rs` is `store::journal`,
//! `src/lib.rs` and `src/main.rs` are the crate root). A file refers to another through a
//! path in its non-test code that starts with `crate::`, `self::`, `super::`, with the name
//! of a child module (`journal::Journal`, `use journal::Journal`), or with a name a `use`
//! brought in. The path belongs to the longest module prefix that exists (`crate::store::Store`
//! is `store`, whose file is `src/store/mod.rs`); when it goes on with a name that module
//! imports by `use` (a re-export), it is followed there: `crate::store::StoreError`, re-exported
//! by `store` from `store::backend`, belongs to `src/store/backend.rs`, and a name the module
//! imports from another crate belongs to no file of this one. A `mod name;` declaration alone
//! is not a reference. The check fails on every strongly connected group of two or more files,
//! listing the files and the references that close it.
//!
//! So a child that imports an item its parent defines (`use super::StoreError`) while the
//! parent refers to the child (`use journal::Journal`, `journal::open()`) makes a circle; a
//! parent that only declares and re-exports, and children that import through it, do not.
//!
//! Limits of the scanner, which reads tokens rather than compiling:
//! - comments, doc comments, string, byte-string, raw-string and character literals are
//!   blanked first, so paths written inside a string (`#[serde(with = "crate::x")]`) are not
//!   seen;
//! - items under `#[cfg(test)]` (or `#[cfg(all(test, ...))]`) are skipped to the end of the
//!   item: the closing `;`, or the end of its first `{ ... }` block; a file declared only
//!   under `#[cfg(test)]`, or one starting with `#![cfg(test)]`, is test code entirely;
//!   `#[cfg(any(test, ...))]` is not test-only and stays;
//! - a glob import (`use a::*`) binds no name, so a path through a module's glob belongs to
//!   that module; a `use` inside a function counts for its whole module;
//! - `#[path = "..."]` on a module declared outside test code is not followed: the check fails
//!   and says so;
//! - `pub(in crate::a)` counts as a reference to `a`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

// ---------------------------------------------------------------------------------------
// The map
// ---------------------------------------------------------------------------------------

/// Who may depend on whom among the workspace's crates, by normal dependencies (dev-
/// dependencies may reach further: `hutong-verify`'s unit tests build real bundles from a
/// `hutong-ledger` store). A crate may also reach, through these, what they depend on.
/// `ARCHITECTURE.md`'s crate map shows the same lists; a test compares them.
///
/// `hutong-tests` depends on `hutong-core` today and on `hutong-testnet` as a
/// dev-dependency; the harness may take the testnet's client or manifest into its library,
/// so `hutong-testnet` is allowed there.
const ALLOWED_WORKSPACE_DEPENDENCIES: &[(&str, &[&str])] = &[
    ("hutong-consensus", &[]),
    ("hutong-core", &["hutong-consensus"]),
    ("hutong-ledger", &["hutong-core", "hutong-consensus"]),
    ("hutong-verify", &["hutong-core", "hutong-consensus"]),
    (
        "hutong-api",
        &[
            "hutong-ledger",
            "hutong-core",
            "hutong-verify",
            "hutong-consensus",
        ],
    ),
    ("hutong-testnet", &["hutong-core"]),
    (
        "hutong-node",
        &[
            "hutong-core",
            "hutong-ledger",
            "hutong-verify",
            "hutong-consensus",
            "hutong-api",
            "hutong-testnet",
        ],
    ),
    ("hutong-tests", &["hutong-core", "hutong-testnet"]),
];

/// A crate that some workspace crates must not reach.
#[derive(Debug)]
struct Forbidden {
    /// The package's name, or the start of the names of a family of packages when
    /// `family` is true (`libp2p` covers `libp2p-swarm`).
    name: &'static str,
    family: bool,
    /// Forbidden only when this feature of the package is enabled.
    when_feature: Option<&'static str>,
    why: &'static str,
}

const fn crate_named(name: &'static str, why: &'static str) -> Forbidden {
    Forbidden {
        name,
        family: false,
        when_feature: None,
        why,
    }
}

/// An async runtime, a network or a web stack: IO that an offline verifier or a pure rule
/// function does not need.
const RUNTIME_AND_NETWORK: &[Forbidden] = &[
    crate_named("tokio", "an async runtime"),
    Forbidden {
        name: "libp2p",
        family: true,
        when_feature: None,
        why: "the peer-to-peer network stack",
    },
    crate_named("axum", "a web framework"),
    crate_named("hyper", "an HTTP implementation"),
];

/// Storage engines: the ledger's business, behind its store.
const STORAGE_ENGINES: &[Forbidden] = &[
    crate_named("redb", "a storage engine"),
    crate_named("sled", "a storage engine"),
];

/// Global sources of randomness. `getrandom` is the operating system's entropy, under every
/// `OsRng` (also `rand_core`'s `os_rng` feature and `rand_chacha`'s seeding from the OS reach
/// it); `rand` offers `rand::rng()`, a thread-local generator seeded from the OS; `fastrand`
/// seeds a thread-local generator at first use. Allowed: `rand_core` alone (the traits that
/// `ed25519-dalek` names, no generator) and seedable generators such as `rand_chacha`, whose
/// seed must come in as an input.
const GLOBAL_RANDOMNESS: &[Forbidden] = &[
    crate_named("getrandom", "the operating system's entropy source"),
    crate_named("rand", "a global, OS-seeded random generator (`rand::rng`)"),
    crate_named("fastrand", "a global, self-seeded random generator"),
];

/// Global sources of time: crates whose purpose is reading a clock, and the date libraries'
/// clock features (dates without a clock are fine; a time arrives as an input).
const GLOBAL_TIME: &[Forbidden] = &[
    Forbidden {
        name: "chrono",
        family: false,
        when_feature: Some("clock"),
        why: "reads the system clock (`Utc::now`)",
    },
    Forbidden {
        name: "time",
        family: false,
        when_feature: Some("std"),
        why: "reads the system clock (`OffsetDateTime::now_utc`)",
    },
    crate_named("web-time", "a clock"),
    crate_named("instant", "a clock"),
    crate_named("quanta", "a clock"),
    crate_named("coarsetime", "a clock"),
];

/// Workspace crates the offline verifier must not reach: it embeds in a bank's or a court's
/// software with the core alone.
const VERIFIER_EXCLUDES: &[Forbidden] = &[
    crate_named("hutong-ledger", "the block store, with its storage engines"),
    crate_named("hutong-api", "the HTTP API"),
];

/// What each workspace crate must not reach through its normal dependencies.
fn forbidden_for(crate_name: &str) -> Vec<&'static Forbidden> {
    let pure: [&'static [Forbidden]; 4] = [
        RUNTIME_AND_NETWORK,
        STORAGE_ENGINES,
        GLOBAL_RANDOMNESS,
        GLOBAL_TIME,
    ];
    let lists: Vec<&'static [Forbidden]> = match crate_name {
        "hutong-consensus" | "hutong-core" => pure.to_vec(),
        "hutong-verify" => pure.iter().copied().chain([VERIFIER_EXCLUDES]).collect(),
        _ => Vec::new(),
    };
    lists.into_iter().flatten().collect()
}

// ---------------------------------------------------------------------------------------
// The checks on the real workspace
// ---------------------------------------------------------------------------------------

/// The longest `cargo metadata` or `cargo -vV` may take; it reads files only.
const CARGO_SECONDS_MAX: u64 = 120;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits in the workspace root")
        .to_path_buf()
}

/// The cargo that runs these tests (cargo sets `CARGO` for them).
fn cargo() -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.current_dir(workspace_root());
    command
}

/// Runs a command to its end, or kills it (by its own handle) after `CARGO_SECONDS_MAX`.
fn output_of(mut command: Command) -> (bool, String, String) {
    let description = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("start {description}: {error}"));
    // The pipes are drained on their own threads: a full pipe would stall the child.
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let stdout_reader = std::thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).map(|_| text)
    });
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        stderr.read_to_string(&mut text).map(|_| text)
    });
    let deadline = Instant::now() + Duration::from_secs(CARGO_SECONDS_MAX);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for cargo") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{description} took longer than {CARGO_SECONDS_MAX} s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = stdout_reader
        .join()
        .expect("stdout reader")
        .expect("stdout");
    let stderr = stderr_reader
        .join()
        .expect("stderr reader")
        .expect("stderr");
    (status.success(), stdout, stderr)
}

fn host_triple() -> String {
    let mut command = cargo();
    command.arg("-vV");
    let (success, stdout, stderr) = output_of(command);
    assert!(success, "cargo -vV failed: {stderr}");
    stdout
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .unwrap_or_else(|| panic!("no `host:` line in cargo -vV: {stdout}"))
        .trim()
        .to_string()
}

/// The workspace's resolved graph for the host platform, read once per test process.
fn workspace_metadata() -> &'static Value {
    static METADATA: OnceLock<Value> = OnceLock::new();
    METADATA.get_or_init(|| {
        let mut command = cargo();
        command.args(["metadata", "--format-version", "1", "--frozen"]);
        command.args(["--filter-platform", &host_triple()]);
        let (success, stdout, stderr) = output_of(command);
        assert!(
            success,
            "cargo metadata --frozen failed; it needs the lock file up to date and every package \
             on disk (build the workspace or run `cargo fetch` first):\n{stderr}"
        );
        serde_json::from_str(&stdout).expect("cargo metadata prints JSON")
    })
}

#[test]
fn workspace_crates_depend_only_as_the_map_allows() {
    let metadata = workspace_metadata();
    let graph = DependencyGraph::from_metadata(metadata);
    let members: BTreeSet<&str> = graph
        .members
        .iter()
        .map(|id| graph.names[id].as_str())
        .collect();
    let mapped: BTreeSet<&str> = ALLOWED_WORKSPACE_DEPENDENCIES
        .iter()
        .map(|(name, _)| *name)
        .collect();
    assert_eq!(
        members, mapped,
        "the map of allowed dependencies must list exactly the workspace's crates"
    );
    let violations = dependency_violations(metadata);
    assert!(
        violations.is_empty(),
        "forbidden dependencies:\n{}",
        violations.join("\n")
    );
}

#[test]
fn architecture_document_shows_the_same_map() {
    let path = workspace_root().join("ARCHITECTURE.md");
    let text = std::fs::read_to_string(&path).expect("read ARCHITECTURE.md");
    let documented = documented_dependencies(&text);
    let allowed: BTreeMap<String, BTreeSet<String>> = ALLOWED_WORKSPACE_DEPENDENCIES
        .iter()
        .map(|(name, dependencies)| {
            let dependencies = dependencies.iter().map(|name| name.to_string()).collect();
            (name.to_string(), dependencies)
        })
        .collect();
    assert_eq!(
        documented, allowed,
        "ARCHITECTURE.md's crate map (its last column) must show the map of \
         tests/tests/architecture.rs"
    );
}

#[test]
fn source_files_import_no_circles() {
    let metadata = workspace_metadata();
    let root = workspace_root();
    let members: BTreeSet<&str> = json_array(metadata, "workspace_members")
        .iter()
        .map(|id| id.as_str().expect("member id"))
        .collect();
    let mut report = Vec::new();
    for package in json_array(metadata, "packages") {
        let id = json_str(package, "id");
        if !members.contains(id) {
            continue;
        }
        let manifest = PathBuf::from(json_str(package, "manifest_path"));
        let crate_dir = manifest.parent().expect("manifest in a folder");
        let label = crate_dir
            .strip_prefix(&root)
            .expect("a member inside the workspace")
            .to_string_lossy()
            .replace('\\', "/");
        let files = read_sources(&crate_dir.join("src"));
        match import_circles(&format!("{label}/src"), &files) {
            Ok(circles) => {
                for circle in circles {
                    report.push(format!(
                        "{} ({}):\n{circle}",
                        json_str(package, "name"),
                        label
                    ));
                }
            }
            Err(problem) => report.push(format!("{}: {problem}", json_str(package, "name"))),
        }
    }
    assert!(
        report.is_empty(),
        "import circles between files (break each by moving what both sides share into a \
         module of its own):\n\n{}",
        report.join("\n")
    );
}

/// The files whose non-test code may call the cryptographic primitives directly: the suite,
/// which every other file goes through, and the implementations it dispatches to. The core's
/// testkit derives fixture keys and document hashes; it is never a running node's logic.
const PRIMITIVE_FILES: &[&str] = &[
    "core/src/suite.rs",
    "core/src/hash.rs",
    "core/src/log.rs",
    "core/src/crypto.rs",
    "core/src/testkit.rs",
];

/// Crates and free functions that compute a hash or check a signature without a suite
/// (ADR 0016): a call of one of them outside [`PRIMITIVE_FILES`] would fix a chain's
/// algorithms where the genesis file is meant to choose them.
const PRIMITIVE_CRATES: &[&str] = &["blake3", "sha2", "ed25519_dalek", "curve25519_dalek"];
const PRIMITIVE_NAMES: &[&str] = &[
    "Blake3Log",
    "Sha256Log",
    "tagged",
    "blake3_parts",
    "verify_batch",
    "verify_batch_with_errors",
];

/// Digests that never enter the chain and so are no suite's business, by file and name: the
/// store's key for a signature it remembers as verified (a set held in one node's memory),
/// gossipsub's message ids (the network layer's own, ADR 0003), and a witness's key id,
/// which the C2SP cosignature format fixes as SHA-256 whatever the chain's suite (ADR 0038).
const LOCAL_DIGESTS: &[(&str, &str)] = &[
    ("ledger/src/store/mod.rs", "blake3_parts"),
    ("node/src/network/event_loop.rs", "blake3_parts"),
    ("verify/src/witness.rs", "sha2"),
];

/// Where non-test code calls a primitive outside [`PRIMITIVE_FILES`]: `file:line what`.
fn primitive_calls(label: &str, files: &BTreeMap<String, String>) -> Vec<String> {
    let mut found = Vec::new();
    for (file, source) in files {
        let path = format!("{label}/{file}");
        if PRIMITIVE_FILES.contains(&path.as_str()) {
            continue;
        }
        let Some(code) = without_test_items(&tokens(&blank_comments_and_literals(source))) else {
            continue;
        };
        for (index, token) in code.iter().enumerate() {
            let Token::Word(word) = &token.token else {
                continue;
            };
            // `suite.tagged(...)` and `suite.verify_batch(...)` are the suite's methods.
            let is_method = index > 0 && is_punct(&code, index - 1, '.');
            let after_crypto = index >= 2
                && code[index - 1].token == Token::PathSeparator
                && word_at(&code, index - 2) == Some("crypto");
            let primitive = PRIMITIVE_CRATES.contains(&word.as_str())
                || (!is_method && PRIMITIVE_NAMES.contains(&word.as_str()))
                || (after_crypto && word == "verify");
            if primitive && !LOCAL_DIGESTS.contains(&(path.as_str(), word.as_str())) {
                found.push(format!("{path}:{} `{word}`", token.line));
            }
        }
    }
    found
}

#[test]
fn hashes_and_signatures_go_through_the_suite() {
    let metadata = workspace_metadata();
    let root = workspace_root();
    let members: BTreeSet<&str> = json_array(metadata, "workspace_members")
        .iter()
        .map(|id| id.as_str().expect("member id"))
        .collect();
    let mut report = Vec::new();
    for package in json_array(metadata, "packages") {
        if !members.contains(json_str(package, "id")) {
            continue;
        }
        let manifest = PathBuf::from(json_str(package, "manifest_path"));
        let crate_dir = manifest.parent().expect("manifest in a folder");
        let label = crate_dir
            .strip_prefix(&root)
            .expect("a member inside the workspace")
            .to_string_lossy()
            .replace('\\', "/");
        report.extend(primitive_calls(
            &format!("{label}/src"),
            &read_sources(&crate_dir.join("src")),
        ));
    }
    assert!(
        report.is_empty(),
        "hashing and signing outside the suite (call the chain's `Suite` instead):\n{}",
        report.join("\n")
    );
}

#[test]
fn a_primitive_called_outside_the_suite_is_found() {
    let files = sources(&[
        (
            "store.rs",
            "use hutong_core::hash::tagged;\nfn root(s: Suite) -> Hash32 { s.tagged(\"a\", b\"\") }\n\
             fn leaf() -> Hash32 { Blake3Log.leaf_hash(b\"\") }\nfn check() { crypto::verify(k, m, s); }\n\
             #[cfg(test)]\nmod tests { fn t() { blake3::hash(b\"\"); } }\n// blake3::hash in a comment\n",
        ),
        (
            "suite_user.rs",
            "fn ok(s: Suite) { s.verify_batch(&[]); }\n",
        ),
    ]);
    assert_eq!(
        primitive_calls("ledger/src", &files),
        vec![
            "ledger/src/store.rs:1 `tagged`".to_owned(),
            "ledger/src/store.rs:3 `Blake3Log`".to_owned(),
            "ledger/src/store.rs:4 `verify`".to_owned(),
        ]
    );
    // The suite's own files may.
    let suite = sources(&[("suite.rs", "fn f() { blake3::hash(b\"\"); }\n")]);
    assert!(primitive_calls("core/src", &suite).is_empty());
}

/// Every `.rs` file under `src`, by its path relative to `src` with `/` separators.
fn read_sources(src: &Path) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    let mut folders = vec![src.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let entries = std::fs::read_dir(&folder)
            .unwrap_or_else(|error| panic!("read {}: {error}", folder.display()));
        for entry in entries {
            let path = entry.expect("folder entry").path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|extension| extension == "rs") {
                let relative = path
                    .strip_prefix(src)
                    .expect("under src")
                    .to_string_lossy()
                    .replace('\\', "/");
                let text = std::fs::read_to_string(&path)
                    .unwrap_or_else(|error| panic!("read {}: {error}", path.display()));
                files.insert(relative, text);
            }
        }
    }
    files
}

// ---------------------------------------------------------------------------------------
// Dependencies, from `cargo metadata`
// ---------------------------------------------------------------------------------------

fn json_array<'a>(value: &'a Value, key: &str) -> &'a Vec<Value> {
    value[key]
        .as_array()
        .unwrap_or_else(|| panic!("cargo metadata: `{key}` is not an array"))
}

fn json_str<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("cargo metadata: `{key}` is not a string"))
}

/// The resolved graph, normal dependencies only.
#[derive(Debug)]
struct DependencyGraph {
    /// Package id to package name.
    names: BTreeMap<String, String>,
    /// Package id to the features enabled on it.
    features: BTreeMap<String, BTreeSet<String>>,
    /// Package id to the ids of its normal dependencies (target-specific ones included).
    normal_dependencies: BTreeMap<String, Vec<String>>,
    members: Vec<String>,
}

impl DependencyGraph {
    fn from_metadata(metadata: &Value) -> DependencyGraph {
        let names = json_array(metadata, "packages")
            .iter()
            .map(|package| {
                let id = json_str(package, "id").to_string();
                (id, json_str(package, "name").to_string())
            })
            .collect();
        let members = json_array(metadata, "workspace_members")
            .iter()
            .map(|id| id.as_str().expect("member id").to_string())
            .collect();
        let mut features = BTreeMap::new();
        let mut normal_dependencies = BTreeMap::new();
        for node in json_array(&metadata["resolve"], "nodes") {
            let id = json_str(node, "id").to_string();
            let enabled = node["features"]
                .as_array()
                .map(|list| {
                    let names = list.iter().filter_map(Value::as_str);
                    names.map(str::to_string).collect()
                })
                .unwrap_or_default();
            // A dependency may be listed under several kinds (normal, dev, build, each
            // perhaps for a target); it is normal when one of them has no kind.
            let normal = json_array(node, "deps")
                .iter()
                .filter(|dependency| {
                    json_array(dependency, "dep_kinds")
                        .iter()
                        .any(|kind| kind["kind"].is_null())
                })
                .map(|dependency| json_str(dependency, "pkg").to_string())
                .collect();
            features.insert(id.clone(), enabled);
            normal_dependencies.insert(id, normal);
        }
        DependencyGraph {
            names,
            features,
            normal_dependencies,
            members,
        }
    }

    fn name<'a>(&'a self, id: &'a str) -> &'a str {
        self.names.get(id).map_or(id, String::as_str)
    }

    /// Every package `from` reaches by normal dependencies, each with the package before it
    /// on one shortest path from `from` (breadth first, so paths are shortest).
    fn reached_from(&self, from: &str) -> BTreeMap<String, Option<String>> {
        let mut previous = BTreeMap::from([(from.to_string(), None)]);
        let mut queue = VecDeque::from([from.to_string()]);
        while let Some(id) = queue.pop_front() {
            for next in self.normal_dependencies.get(&id).into_iter().flatten() {
                if !previous.contains_key(next) {
                    previous.insert(next.clone(), Some(id.clone()));
                    queue.push_back(next.clone());
                }
            }
        }
        previous
    }
}

/// `a -> b -> c`, by names, from the start of `previous` to `to`.
fn path_to(
    graph: &DependencyGraph,
    previous: &BTreeMap<String, Option<String>>,
    to: &str,
) -> String {
    let mut names = vec![graph.name(to).to_string()];
    let mut at = to;
    while let Some(Some(before)) = previous.get(at) {
        names.push(graph.name(before).to_string());
        at = before;
    }
    names.reverse();
    names.join(" -> ")
}

fn rule_matches(forbidden: &Forbidden, name: &str, features: Option<&BTreeSet<String>>) -> bool {
    let named = if forbidden.family {
        name == forbidden.name || name.starts_with(&format!("{}-", forbidden.name))
    } else {
        name == forbidden.name
    };
    let featured = forbidden
        .when_feature
        .is_none_or(|feature| features.is_some_and(|enabled| enabled.contains(feature)));
    named && featured
}

/// Every breach of [`ALLOWED_WORKSPACE_DEPENDENCIES`] and [`forbidden_for`] in a
/// `cargo metadata --format-version 1` document, one line each.
fn dependency_violations(metadata: &Value) -> Vec<String> {
    let graph = DependencyGraph::from_metadata(metadata);
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED_WORKSPACE_DEPENDENCIES.iter().copied().collect();
    let member_names: BTreeSet<&str> = graph.members.iter().map(|id| graph.name(id)).collect();
    let mut violations = Vec::new();
    for member in &graph.members {
        let name = graph.name(member);
        let Some(allowed_here) = allowed.get(name) else {
            violations.push(format!(
                "{name} is a workspace crate missing from the map of allowed dependencies"
            ));
            continue;
        };
        for dependency in graph.normal_dependencies.get(member).into_iter().flatten() {
            let dependency_name = graph.name(dependency);
            if member_names.contains(dependency_name) && !allowed_here.contains(&dependency_name) {
                let allowed_list = if allowed_here.is_empty() {
                    "none".to_string()
                } else {
                    allowed_here.join(", ")
                };
                violations.push(format!(
                    "{name} depends on {dependency_name}, which the map does not allow \
                     (allowed: {allowed_list})"
                ));
            }
        }
        let rules = forbidden_for(name);
        if rules.is_empty() {
            continue;
        }
        let previous = graph.reached_from(member);
        for id in previous.keys().filter(|id| *id != member) {
            let reached_name = graph.name(id);
            for rule in &rules {
                if rule_matches(rule, reached_name, graph.features.get(id)) {
                    let feature = rule
                        .when_feature
                        .map(|feature| format!(" with its `{feature}` feature"))
                        .unwrap_or_default();
                    violations.push(format!(
                        "{name} must not depend on {reached_name}{feature} ({}), which it \
                         reaches through {}",
                        rule.why,
                        path_to(&graph, &previous, id)
                    ));
                }
            }
        }
    }
    violations.sort();
    violations.dedup();
    violations
}

/// The last column of the crate map in `ARCHITECTURE.md` (the section `## Crate map`), by
/// crate: every backquoted name of a workspace crate in it (`core` or `hutong-core`).
fn documented_dependencies(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let known: BTreeSet<&str> = ALLOWED_WORKSPACE_DEPENDENCIES
        .iter()
        .map(|(name, _)| *name)
        .collect();
    let full_name = |word: &str| {
        let name = if word.starts_with("hutong-") {
            word.to_string()
        } else {
            format!("hutong-{word}")
        };
        known.contains(name.as_str()).then_some(name)
    };
    let section = text
        .split("\n## ")
        .find(|section| section.starts_with("Crate map"))
        .unwrap_or("");
    let mut map = BTreeMap::new();
    for line in section.lines() {
        // `\|` is a pipe inside a cell.
        let line = line.trim().replace("\\|", "/");
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let Some(crate_name) = cells
            .first()
            .and_then(|cell| cell.strip_prefix('`')?.strip_suffix('`'))
            .and_then(full_name)
        else {
            continue;
        };
        let last = cells.last().copied().unwrap_or("");
        let dependencies = last
            .split('`')
            .skip(1)
            .step_by(2)
            .filter_map(full_name)
            .collect();
        map.insert(crate_name, dependencies);
    }
    map
}

// ---------------------------------------------------------------------------------------
// Import circles, from the sources
// ---------------------------------------------------------------------------------------

/// Replaces comments and string, byte-string, raw-string and character literals by spaces,
/// keeping line breaks, so that line numbers hold and only code is left.
fn blank_comments_and_literals(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let blank = |out: &mut String, c: char| out.push(if c == '\n' { '\n' } else { ' ' });
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    let at = |index: usize| chars.get(index).copied().unwrap_or('\0');
    let mut index = 0;
    while index < chars.len() {
        let c = chars[index];
        let starts_token = index == 0 || !is_word(chars[index - 1]);
        if c == '/' && at(index + 1) == '/' {
            while index < chars.len() && chars[index] != '\n' {
                blank(&mut out, chars[index]);
                index += 1;
            }
        } else if c == '/' && at(index + 1) == '*' {
            // Block comments nest.
            let mut depth = 0usize;
            loop {
                if index >= chars.len() {
                    break;
                }
                if chars[index] == '/' && at(index + 1) == '*' {
                    depth += 1;
                    out.push_str("  ");
                    index += 2;
                } else if chars[index] == '*' && at(index + 1) == '/' {
                    depth -= 1;
                    out.push_str("  ");
                    index += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, chars[index]);
                    index += 1;
                }
            }
        } else if starts_token && raw_string_hashes(&chars, index).is_some() {
            let (prefix_length, hashes) = raw_string_hashes(&chars, index).expect("checked");
            // The prefix (`r`, `br` or `cr`), the hashes and the opening quote.
            let body = index + prefix_length + hashes + 1;
            while index < body {
                blank(&mut out, chars[index]);
                index += 1;
            }
            while index < chars.len() {
                let closes =
                    chars[index] == '"' && (1..=hashes).all(|offset| at(index + offset) == '#');
                if closes {
                    for _ in 0..=hashes {
                        out.push(' ');
                    }
                    index += hashes + 1;
                    break;
                }
                blank(&mut out, chars[index]);
                index += 1;
            }
        } else if c == '"' || (starts_token && matches!(c, 'b' | 'c') && at(index + 1) == '"') {
            if c != '"' {
                out.push(' ');
                index += 1;
            }
            out.push(' ');
            index += 1;
            while index < chars.len() {
                match chars[index] {
                    '\\' => {
                        blank(&mut out, chars[index]);
                        blank(&mut out, at(index + 1));
                        index += 2;
                    }
                    '"' => {
                        out.push(' ');
                        index += 1;
                        break;
                    }
                    other => {
                        blank(&mut out, other);
                        index += 1;
                    }
                }
            }
        } else if c == '\'' || (starts_token && c == 'b' && at(index + 1) == '\'') {
            let quote = if c == 'b' { index + 1 } else { index };
            // A character literal is `'x'` or `'\...'`; anything else is a lifetime or a label.
            let end = if at(quote + 1) == '\\' {
                (quote + 3..chars.len()).find(|&end| chars[end] == '\'')
            } else if at(quote + 2) == '\'' && at(quote + 1) != '\n' {
                Some(quote + 2)
            } else {
                None
            };
            match end {
                Some(end) => {
                    while index <= end {
                        blank(&mut out, chars[index]);
                        index += 1;
                    }
                }
                None => {
                    out.push(c);
                    index += 1;
                }
            }
        } else {
            out.push(c);
            index += 1;
        }
    }
    out
}

/// At the start of a raw string literal (`r"`, `r#"`, `br##"`, `cr"`...), the length of its
/// prefix letters and its number of hashes.
fn raw_string_hashes(chars: &[char], index: usize) -> Option<(usize, usize)> {
    let prefix_length = match (chars.get(index), chars.get(index + 1)) {
        (Some('r'), _) => 1,
        (Some('b' | 'c'), Some('r')) => 2,
        _ => return None,
    };
    let mut hashes = 0;
    while chars.get(index + prefix_length + hashes) == Some(&'#') {
        hashes += 1;
    }
    (chars.get(index + prefix_length + hashes) == Some(&'"')).then_some((prefix_length, hashes))
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// An identifier, keyword or number.
    Word(String),
    /// `::`
    PathSeparator,
    Punct(char),
}

#[derive(Debug, Clone)]
struct Spanned {
    token: Token,
    line: usize,
}

/// The tokens of blanked source (see [`blank_comments_and_literals`]).
fn tokens(code: &str) -> Vec<Spanned> {
    let chars: Vec<char> = code.chars().collect();
    let mut tokens = Vec::new();
    let mut line = 1;
    let mut index = 0;
    while index < chars.len() {
        let c = chars[index];
        if c == '\n' {
            line += 1;
            index += 1;
        } else if c.is_whitespace() {
            index += 1;
        } else if c.is_alphanumeric() || c == '_' {
            let start = index;
            while index < chars.len() && (chars[index].is_alphanumeric() || chars[index] == '_') {
                index += 1;
            }
            let word = chars[start..index].iter().collect();
            tokens.push(Spanned {
                token: Token::Word(word),
                line,
            });
        } else if c == ':' && chars.get(index + 1) == Some(&':') {
            tokens.push(Spanned {
                token: Token::PathSeparator,
                line,
            });
            index += 2;
        } else {
            tokens.push(Spanned {
                token: Token::Punct(c),
                line,
            });
            index += 1;
        }
    }
    tokens
}

fn is_punct(tokens: &[Spanned], index: usize, c: char) -> bool {
    tokens
        .get(index)
        .is_some_and(|t| t.token == Token::Punct(c))
}

fn word_at(tokens: &[Spanned], index: usize) -> Option<&str> {
    match tokens.get(index).map(|t| &t.token) {
        Some(Token::Word(word)) => Some(word),
        _ => None,
    }
}

/// The index just past the delimited group opening at `open` (`(`, `[` or `{`).
fn skip_group(tokens: &[Spanned], open: usize) -> usize {
    let mut depth = 0usize;
    let mut index = open;
    while index < tokens.len() {
        match tokens[index].token {
            Token::Punct('(' | '[' | '{') => depth += 1,
            Token::Punct(')' | ']' | '}') => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return index + 1;
                }
            }
            _ => {}
        }
        index += 1;
    }
    index
}

/// Whether the attribute whose `[` is at `open` is `#[cfg(test)]` or `#[cfg(all(test, ...))]`.
fn is_test_attribute(tokens: &[Spanned], open: usize) -> bool {
    let words = |offset: usize| word_at(tokens, open + offset);
    if words(1) != Some("cfg") || !is_punct(tokens, open + 2, '(') {
        return false;
    }
    if words(3) == Some("test") && is_punct(tokens, open + 4, ')') {
        return true;
    }
    if words(3) != Some("all") || !is_punct(tokens, open + 4, '(') {
        return false;
    }
    // `test` among the arguments of `all(...)` themselves, not inside `not(test)`.
    let end = skip_group(tokens, open + 4);
    let mut depth = 0usize;
    for token in &tokens[open + 4..end] {
        match &token.token {
            Token::Punct('(') => depth += 1,
            Token::Punct(')') => depth -= 1,
            Token::Word(word) if depth == 1 && word == "test" => return true,
            _ => {}
        }
    }
    false
}

/// Words that start an item, after which commas belong to the item (`fn f<A, B>()`) rather
/// than ending it (a field, a variant or an element of a list).
const ITEM_KEYWORDS: &[&str] = &[
    "async",
    "const",
    "enum",
    "extern",
    "fn",
    "impl",
    "let",
    "macro_rules",
    "mod",
    "static",
    "struct",
    "trait",
    "type",
    "union",
    "unsafe",
    "use",
];

/// The index just past the item (or field, variant, statement) starting at `start`.
fn skip_item(tokens: &[Spanned], start: usize) -> usize {
    let mut index = start;
    // Further attributes of the same item.
    while is_punct(tokens, index, '#') && is_punct(tokens, index + 1, '[') {
        index = skip_group(tokens, index + 1);
    }
    let mut first_word = index;
    if word_at(tokens, first_word) == Some("pub") {
        first_word += 1;
        if is_punct(tokens, first_word, '(') {
            first_word = skip_group(tokens, first_word);
        }
    }
    let is_item = word_at(tokens, first_word).is_some_and(|word| ITEM_KEYWORDS.contains(&word));
    let mut depth = 0usize;
    while index < tokens.len() {
        match tokens[index].token {
            Token::Punct('(' | '[') => depth += 1,
            Token::Punct(')' | ']' | '}') if depth == 0 => return index,
            Token::Punct(')' | ']') => depth -= 1,
            Token::Punct('{') if depth == 0 => {
                index = skip_group(tokens, index);
                if is_punct(tokens, index, ';') {
                    index += 1;
                }
                return index;
            }
            Token::Punct(';') if depth == 0 => return index + 1,
            Token::Punct(',') if depth == 0 && !is_item => return index + 1,
            _ => {}
        }
        index += 1;
    }
    index
}

/// The tokens of non-test code, or `None` when the file is test code (`#![cfg(test)]`).
fn without_test_items(tokens: &[Spanned]) -> Option<Vec<Spanned>> {
    let mut kept = Vec::with_capacity(tokens.len());
    let mut index = 0;
    while index < tokens.len() {
        let inner = is_punct(tokens, index + 1, '!');
        let open = if inner { index + 2 } else { index + 1 };
        if is_punct(tokens, index, '#')
            && is_punct(tokens, open, '[')
            && is_test_attribute(tokens, open)
        {
            if inner {
                return None;
            }
            index = skip_item(tokens, skip_group(tokens, open));
            continue;
        }
        kept.push(tokens[index].clone());
        index += 1;
    }
    Some(kept)
}

/// A path in a file's code that may name one of the crate's modules.
#[derive(Debug)]
struct Reference {
    /// The inline modules (`mod name { ... }`) the path sits in, outermost first.
    inline_modules: Vec<String>,
    segments: Vec<String>,
    line: usize,
}

/// What a file's non-test code declares and refers to.
#[derive(Debug, Default)]
struct FileScan {
    /// `mod name;` declarations, each with the inline modules it sits in.
    declared_files: Vec<(Vec<String>, String)>,
    /// `mod name { ... }`, by path relative to the file's module.
    inline_modules: Vec<Vec<String>>,
    references: Vec<Reference>,
    /// What each `use` binds: (inline modules, the name bound, the path it stands for).
    bindings: Vec<(Vec<String>, String, Vec<String>)>,
    uses_path_attribute: bool,
}

/// The name a `use` path binds and the path it stands for: `a::B` binds `B`, `a::B as C`
/// binds `C`, `a::{self}` binds `a`; a glob (`a::*`) or `as _` binds no name.
fn binding_of(segments: &[String], alias: Option<String>) -> Option<(String, Vec<String>)> {
    let mut target = segments.to_vec();
    if target.last().is_some_and(|last| last == "self") {
        target.pop();
    }
    let last = target.last()?;
    if last == "*" || alias.as_deref() == Some("_") {
        return None;
    }
    let name = alias.unwrap_or_else(|| last.clone());
    Some((name, target))
}

/// One path of a `use` declaration, with the name it binds when renamed (`as name`).
type UsePath = (Vec<String>, Option<String>);

/// Reads a `use` tree starting at `index` (just after `use` or a `{`), adding each full path
/// to `paths`; returns the index just past the tree.
fn read_use_tree(
    tokens: &[Spanned],
    mut index: usize,
    mut prefix: Vec<String>,
    paths: &mut Vec<UsePath>,
) -> usize {
    loop {
        match tokens.get(index).map(|t| &t.token) {
            Some(Token::Word(word)) => {
                prefix.push(word.clone());
                index += 1;
                if tokens.get(index).map(|t| &t.token) == Some(&Token::PathSeparator) {
                    index += 1;
                    continue;
                }
                let mut alias = None;
                if word_at(tokens, index) == Some("as") {
                    alias = word_at(tokens, index + 1).map(str::to_string);
                    index += 2;
                }
                paths.push((prefix, alias));
                return index;
            }
            Some(Token::PathSeparator) => index += 1,
            Some(Token::Punct('*')) => {
                prefix.push("*".to_string());
                paths.push((prefix, None));
                return index + 1;
            }
            Some(Token::Punct('{')) => {
                index += 1;
                while index < tokens.len() && !is_punct(tokens, index, '}') {
                    let next = read_use_tree(tokens, index, prefix.clone(), paths);
                    index = if next == index { index + 1 } else { next };
                    if is_punct(tokens, index, ',') {
                        index += 1;
                    }
                }
                return index + 1;
            }
            _ => return index,
        }
    }
}

fn scan_file(source: &str) -> Option<FileScan> {
    let all_tokens = tokens(&blank_comments_and_literals(source));
    let tokens = without_test_items(&all_tokens)?;
    let mut scan = FileScan::default();
    // The open inline modules, each with the brace depth inside it.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let inline_path = |inline: &[(String, usize)]| -> Vec<String> {
        inline.iter().map(|(name, _)| name.clone()).collect()
    };
    let mut index = 0;
    while index < tokens.len() {
        let line = tokens[index].line;
        match &tokens[index].token {
            Token::Punct('#')
                if is_punct(&tokens, index + 1, '[')
                    && word_at(&tokens, index + 2) == Some("path") =>
            {
                scan.uses_path_attribute = true;
                index += 1;
            }
            Token::Punct('{') => {
                depth += 1;
                index += 1;
            }
            Token::Punct('}') => {
                if inline.last().is_some_and(|(_, inner)| *inner == depth) {
                    inline.pop();
                }
                depth = depth.saturating_sub(1);
                index += 1;
            }
            Token::Word(word) if word == "mod" => {
                let Some(name) = word_at(&tokens, index + 1) else {
                    index += 1;
                    continue;
                };
                let name = name.to_string();
                if is_punct(&tokens, index + 2, ';') {
                    scan.declared_files.push((inline_path(&inline), name));
                    index += 3;
                } else if is_punct(&tokens, index + 2, '{') {
                    depth += 1;
                    inline.push((name, depth));
                    scan.inline_modules.push(inline_path(&inline));
                    index += 3;
                } else {
                    index += 1;
                }
            }
            // `use<'a>` is a precise-capturing bound, not an import.
            Token::Word(word) if word == "use" && !is_punct(&tokens, index + 1, '<') => {
                let mut paths = Vec::new();
                index = read_use_tree(&tokens, index + 1, Vec::new(), &mut paths);
                for (segments, alias) in paths {
                    if let Some(binding) = binding_of(&segments, alias) {
                        scan.bindings
                            .push((inline_path(&inline), binding.0, binding.1));
                    }
                    scan.references.push(Reference {
                        inline_modules: inline_path(&inline),
                        segments,
                        line,
                    });
                }
            }
            Token::Word(_)
                if tokens.get(index + 1).map(|t| &t.token) == Some(&Token::PathSeparator)
                    && (index == 0 || tokens[index - 1].token != Token::PathSeparator) =>
            {
                let mut segments = Vec::new();
                while let Some(word) = word_at(&tokens, index) {
                    segments.push(word.to_string());
                    index += 1;
                    if tokens.get(index).map(|t| &t.token) != Some(&Token::PathSeparator) {
                        break;
                    }
                    index += 1;
                }
                scan.references.push(Reference {
                    inline_modules: inline_path(&inline),
                    segments,
                    line,
                });
            }
            _ => index += 1,
        }
    }
    Some(scan)
}

/// One circle: its files, and the references between them.
#[derive(Debug)]
struct Circle {
    files: Vec<String>,
    references: Vec<String>,
}

impl std::fmt::Display for Circle {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for file in &self.files {
            writeln!(formatter, "  {file}")?;
        }
        writeln!(formatter, "  through:")?;
        for reference in &self.references {
            writeln!(formatter, "    {reference}")?;
        }
        Ok(())
    }
}

/// The import circles among a crate's source files, given by path relative to `src`
/// (`lib.rs`, `store/mod.rs`); `label` (`ledger/src`) prefixes the names in the answer.
fn import_circles(label: &str, files: &BTreeMap<String, String>) -> Result<Vec<Circle>, String> {
    let mut circles = Vec::new();
    for root in ["lib.rs", "main.rs"] {
        if files.contains_key(root) {
            circles.extend(import_circles_from(label, files, root)?);
        }
    }
    Ok(circles)
}

/// The folder (relative to `src`, `""` for `src` itself) that holds a file's child modules.
fn children_folder(file: &str) -> String {
    let (folder, name) = file.rsplit_once('/').unwrap_or(("", file));
    if matches!(name, "lib.rs" | "main.rs" | "mod.rs") {
        folder.to_string()
    } else {
        let stem = name.trim_end_matches(".rs");
        if folder.is_empty() {
            stem.to_string()
        } else {
            format!("{folder}/{stem}")
        }
    }
}

fn import_circles_from(
    label: &str,
    files: &BTreeMap<String, String>,
    root: &str,
) -> Result<Vec<Circle>, String> {
    // The module tree: every module path (files' and inline modules') to its file, and the
    // names each module's `use` declarations bind.
    let mut modules = Modules::default();
    let mut file_modules: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut scans: BTreeMap<String, FileScan> = BTreeMap::new();
    let mut pending = vec![(root.to_string(), Vec::<String>::new())];
    while let Some((file, module)) = pending.pop() {
        let Some(scan) = scan_file(&files[&file]) else {
            continue;
        };
        if scan.uses_path_attribute {
            return Err(format!(
                "{label}/{file}: #[path] on a module outside test code is not followed by this check"
            ));
        }
        modules.files.insert(module.clone(), file.clone());
        for inline in &scan.inline_modules {
            modules
                .files
                .insert([module.clone(), inline.clone()].concat(), file.clone());
        }
        for (inline, name, target) in &scan.bindings {
            modules
                .bindings
                .entry([module.clone(), inline.clone()].concat())
                .or_default()
                .insert(name.clone(), target.clone());
        }
        for (inline, name) in &scan.declared_files {
            let mut folder = children_folder(&file);
            for part in inline {
                folder = if folder.is_empty() {
                    part.clone()
                } else {
                    format!("{folder}/{part}")
                };
            }
            let prefix = if folder.is_empty() {
                String::new()
            } else {
                format!("{folder}/")
            };
            let candidates = [
                format!("{prefix}{name}.rs"),
                format!("{prefix}{name}/mod.rs"),
            ];
            let Some(child) = candidates.iter().find(|path| files.contains_key(*path)) else {
                return Err(format!(
                    "{label}/{file}: `mod {name};` names no file ({})",
                    candidates.join(" or ")
                ));
            };
            let child_module = [module.clone(), inline.clone(), vec![name.clone()]].concat();
            pending.push((child.clone(), child_module));
        }
        file_modules.insert(file.clone(), module);
        scans.insert(file, scan);
    }

    // The references, resolved to files: (from, to) to the first reference seen.
    let mut edges: BTreeMap<(String, String), String> = BTreeMap::new();
    for (file, scan) in &scans {
        let file_module = &file_modules[file];
        for reference in &scan.references {
            let here = [file_module.clone(), reference.inline_modules.clone()].concat();
            let Some(target) = modules.resolve(&here, &reference.segments, 0) else {
                continue;
            };
            if target != *file {
                edges
                    .entry((file.clone(), target.clone()))
                    .or_insert_with(|| {
                        format!(
                            "{label}/{file}:{} `{}` -> {label}/{target}",
                            reference.line,
                            reference.segments.join("::")
                        )
                    });
            }
        }
    }

    let names: Vec<String> = scans.keys().cloned().collect();
    let index_of: BTreeMap<&str, usize> = names
        .iter()
        .enumerate()
        .map(|(index, name)| (name.as_str(), index))
        .collect();
    let mut successors = vec![Vec::new(); names.len()];
    for (from, to) in edges.keys() {
        successors[index_of[from.as_str()]].push(index_of[to.as_str()]);
    }
    let circles = strongly_connected_components(&successors)
        .into_iter()
        .filter(|component| component.len() > 1)
        .map(|component| {
            let members: BTreeSet<&str> = component.iter().map(|&i| names[i].as_str()).collect();
            let references = edges
                .iter()
                .filter(|((from, to), _)| {
                    members.contains(from.as_str()) && members.contains(to.as_str())
                })
                .map(|(_, description)| description.clone())
                .collect();
            Circle {
                files: members
                    .iter()
                    .map(|name| format!("{label}/{name}"))
                    .collect(),
                references,
            }
        })
        .collect();
    Ok(circles)
}

/// How far a path is followed through `use` declarations that import what it names (a
/// re-export of a re-export ...); more means a loop.
const USE_HOPS_MAX: usize = 16;

/// A crate's modules: each module path to the file that holds it, and each module's `use`
/// bindings (name to the path it stands for, as written there).
#[derive(Debug, Default)]
struct Modules {
    files: BTreeMap<Vec<String>, String>,
    bindings: BTreeMap<Vec<String>, BTreeMap<String, Vec<String>>>,
}

impl Modules {
    /// The file a path names from module `here`, if it names something of the crate: the
    /// longest module prefix of the path that exists; when the path goes on with a name that
    /// module imports by `use`, the file of what that `use` names instead (or none, for an
    /// item of another crate).
    fn resolve(&self, here: &[String], segments: &[String], hops: usize) -> Option<String> {
        let first = segments.first()?;
        let (mut full, rest): (Vec<String>, &[String]) = match first.as_str() {
            "crate" => (Vec::new(), &segments[1..]),
            "self" => (here.to_vec(), &segments[1..]),
            "super" => {
                let mut base = here.to_vec();
                let mut used = 0;
                while segments.get(used).is_some_and(|segment| segment == "super") {
                    base.pop()?;
                    used += 1;
                }
                (base, &segments[used..])
            }
            child
                if self
                    .files
                    .contains_key(&[here, &[child.to_string()]].concat()) =>
            {
                (here.to_vec(), segments)
            }
            // A name this module imports (`use crate::store; store::Store::open(..)`).
            name => {
                let target = self.bindings.get(here)?.get(name)?;
                if hops >= USE_HOPS_MAX {
                    return None;
                }
                let onward = [target.as_slice(), &segments[1..]].concat();
                return self.resolve(here, &onward, hops + 1);
            }
        };
        let base_length = full.len();
        // `use a::{self, B}` reads as `a::self`: the `self` adds nothing.
        full.extend(rest.iter().filter(|segment| *segment != "self").cloned());
        let length = (base_length..=full.len())
            .rev()
            .find(|length| self.files.contains_key(&full[..*length]))?;
        let module = &full[..length];
        let imported = full
            .get(length)
            .and_then(|name| self.bindings.get(module)?.get(name));
        match imported {
            Some(target) if hops < USE_HOPS_MAX => {
                let onward = [target.as_slice(), &full[length + 1..]].concat();
                self.resolve(module, &onward, hops + 1)
            }
            _ => self.files.get(module).cloned(),
        }
    }
}

/// Tarjan's algorithm: the strongly connected components of a graph given by each node's
/// successors.
fn strongly_connected_components(successors: &[Vec<usize>]) -> Vec<Vec<usize>> {
    struct Search<'a> {
        successors: &'a [Vec<usize>],
        next_order: usize,
        order: Vec<Option<usize>>,
        lowest: Vec<usize>,
        stack: Vec<usize>,
        on_stack: Vec<bool>,
        components: Vec<Vec<usize>>,
    }
    impl Search<'_> {
        fn visit(&mut self, node: usize) {
            self.order[node] = Some(self.next_order);
            self.lowest[node] = self.next_order;
            self.next_order += 1;
            self.stack.push(node);
            self.on_stack[node] = true;
            for &next in &self.successors[node] {
                match self.order[next] {
                    None => {
                        self.visit(next);
                        self.lowest[node] = self.lowest[node].min(self.lowest[next]);
                    }
                    Some(order) if self.on_stack[next] => {
                        self.lowest[node] = self.lowest[node].min(order);
                    }
                    Some(_) => {}
                }
            }
            if Some(self.lowest[node]) == self.order[node] {
                let mut component = Vec::new();
                loop {
                    let member = self.stack.pop().expect("the node itself is on the stack");
                    self.on_stack[member] = false;
                    component.push(member);
                    if member == node {
                        break;
                    }
                }
                component.sort_unstable();
                self.components.push(component);
            }
        }
    }
    let count = successors.len();
    let mut search = Search {
        successors,
        next_order: 0,
        order: vec![None; count],
        lowest: vec![0; count],
        stack: Vec::new(),
        on_stack: vec![false; count],
        components: Vec::new(),
    };
    for node in 0..count {
        if search.order[node].is_none() {
            search.visit(node);
        }
    }
    search.components
}

// ---------------------------------------------------------------------------------------
// The checks, proven on made-up inputs
// ---------------------------------------------------------------------------------------

/// A dependency of a made-up package: its name, its kind (`None` for normal, `"dev"`,
/// `"build"`) and its target (`"cfg(unix)"`).
type FakeDependency<'a> = (&'a str, Option<&'a str>, Option<&'a str>);

/// A made-up package: its name, its dependencies and its enabled features.
type FakePackage<'a> = (&'a str, &'a [FakeDependency<'a>], &'a [&'a str]);

/// A `cargo metadata` document of made-up packages and workspace members.
fn fake_metadata(packages: &[FakePackage], members: &[&str]) -> Value {
    let id = |name: &str| format!("fake#{name}@0.1.0");
    let packages_json: Vec<Value> = packages
        .iter()
        .map(|(name, _, _)| serde_json::json!({ "id": id(name), "name": name }))
        .collect();
    let nodes: Vec<Value> = packages
        .iter()
        .map(|(name, dependencies, features)| {
            let deps: Vec<Value> = dependencies
                .iter()
                .map(|(dependency, kind, target)| {
                    serde_json::json!({
                        "name": dependency.replace('-', "_"),
                        "pkg": id(dependency),
                        "dep_kinds": [{ "kind": kind, "target": target }],
                    })
                })
                .collect();
            serde_json::json!({ "id": id(name), "deps": deps, "features": features })
        })
        .collect();
    let members: Vec<String> = members.iter().map(|name| id(name)).collect();
    serde_json::json!({
        "packages": packages_json,
        "workspace_members": members,
        "resolve": { "nodes": nodes, "root": null },
    })
}

#[test]
fn core_reaching_tokio_through_another_crate_fails_with_the_path() {
    let metadata = fake_metadata(
        &[
            (
                "hutong-core",
                &[("hutong-consensus", None, None), ("helper", None, None)],
                &[],
            ),
            ("hutong-consensus", &[], &[]),
            ("helper", &[("tokio", None, None)], &[]),
            ("tokio", &[], &[]),
        ],
        &["hutong-core", "hutong-consensus"],
    );
    let violations = dependency_violations(&metadata);
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(
        violations[0].contains("hutong-core must not depend on tokio"),
        "{violations:?}"
    );
    assert!(
        violations[0].contains("hutong-core -> helper -> tokio"),
        "{violations:?}"
    );
}

#[test]
fn dev_and_build_dependencies_and_plain_traits_pass() {
    let metadata = fake_metadata(
        &[
            (
                "hutong-core",
                &[
                    ("hutong-consensus", None, None),
                    ("ed25519-dalek", None, None),
                    ("tokio", Some("dev"), None),
                    ("builder", Some("build"), None),
                    ("chrono", None, None),
                ],
                &[],
            ),
            ("hutong-consensus", &[], &[]),
            ("ed25519-dalek", &[("rand_core", None, None)], &[]),
            ("rand_core", &[], &[]),
            ("builder", &[("getrandom", None, None)], &[]),
            ("getrandom", &[], &[]),
            ("tokio", &[], &[]),
            // A date library without its clock.
            ("chrono", &[], &["alloc"]),
        ],
        &["hutong-core", "hutong-consensus"],
    );
    assert_eq!(dependency_violations(&metadata), Vec::<String>::new());
}

#[test]
fn target_specific_normal_dependencies_and_clock_features_count() {
    let metadata = fake_metadata(
        &[
            (
                "hutong-verify",
                &[
                    ("hutong-core", None, None),
                    ("entropy", None, Some("cfg(unix)")),
                    ("chrono", None, None),
                ],
                &[],
            ),
            ("hutong-core", &[], &[]),
            ("entropy", &[("getrandom", None, None)], &[]),
            ("getrandom", &[], &[]),
            ("chrono", &[], &["clock"]),
        ],
        &["hutong-verify", "hutong-core"],
    );
    let violations = dependency_violations(&metadata);
    assert_eq!(violations.len(), 2, "{violations:?}");
    assert!(
        violations[0].contains("chrono with its `clock` feature"),
        "{violations:?}"
    );
    assert!(
        violations[1].contains("hutong-verify -> entropy -> getrandom"),
        "{violations:?}"
    );
}

#[test]
fn verifier_reaching_the_ledger_and_consensus_reaching_the_core_fail() {
    let metadata = fake_metadata(
        &[
            ("hutong-verify", &[("hutong-ledger", None, None)], &[]),
            ("hutong-ledger", &[("sled", None, None)], &[]),
            ("sled", &[], &[]),
            ("hutong-consensus", &[("hutong-core", None, None)], &[]),
            ("hutong-core", &[], &[]),
        ],
        &[
            "hutong-verify",
            "hutong-ledger",
            "hutong-consensus",
            "hutong-core",
        ],
    );
    let violations = dependency_violations(&metadata);
    let expected = [
        "hutong-consensus depends on hutong-core, which the map does not allow (allowed: none)",
        "hutong-verify depends on hutong-ledger, which the map does not allow",
        "hutong-verify must not depend on hutong-ledger",
        "hutong-verify must not depend on sled (a storage engine), which it reaches through \
         hutong-verify -> hutong-ledger -> sled",
    ];
    assert_eq!(violations.len(), expected.len(), "{violations:?}");
    for (violation, expected) in violations.iter().zip(expected) {
        assert!(
            violation.starts_with(expected),
            "{violation} is not {expected}"
        );
    }
}

#[test]
fn a_crate_missing_from_the_map_fails() {
    let metadata = fake_metadata(&[("hutong-extra", &[], &[])], &["hutong-extra"]);
    assert_eq!(
        dependency_violations(&metadata),
        ["hutong-extra is a workspace crate missing from the map of allowed dependencies"]
    );
}

#[test]
fn the_documented_map_is_read_from_the_last_column() {
    let text = "# Architecture\n\n## Crate map\n\n\
        | crate | folder | what \\| more | may depend on |\n|---|---|---|---|\n\
        | `hutong-consensus` | `consensus/` | a \\| b | nothing of ours (`thiserror` only) |\n\
        | `hutong-tests` | `tests/` | harness | `core`, `testnet`, and the `hutong` binary |\n\
        \n## Next\n\n| `hutong-core` | x | `ledger` |\n";
    let documented = documented_dependencies(text);
    let expected = BTreeMap::from([
        ("hutong-consensus".to_string(), BTreeSet::new()),
        (
            "hutong-tests".to_string(),
            BTreeSet::from(["hutong-core".to_string(), "hutong-testnet".to_string()]),
        ),
    ]);
    assert_eq!(documented, expected);
}

fn sources(files: &[(&str, &str)]) -> BTreeMap<String, String> {
    files
        .iter()
        .map(|(path, text)| (path.to_string(), text.to_string()))
        .collect()
}

fn circle_files(files: &[(&str, &str)]) -> Vec<Vec<String>> {
    import_circles("fake/src", &sources(files))
        .expect("a well-formed crate")
        .into_iter()
        .map(|circle| circle.files)
        .collect()
}

#[test]
fn two_files_importing_each_other_are_a_circle() {
    let circles = import_circles(
        "fake/src",
        &sources(&[
            ("lib.rs", "mod a;\nmod b;\n"),
            ("a.rs", "use crate::b::B;\npub struct A(B);\n"),
            ("b.rs", "pub struct B;\nfn f() -> crate::a::A { todo!() }\n"),
        ]),
    )
    .expect("a well-formed crate");
    assert_eq!(circles.len(), 1);
    assert_eq!(circles[0].files, ["fake/src/a.rs", "fake/src/b.rs"]);
    assert_eq!(
        circles[0].references,
        [
            "fake/src/a.rs:1 `crate::b::B` -> fake/src/b.rs",
            "fake/src/b.rs:2 `crate::a::A` -> fake/src/a.rs",
        ]
    );
}

#[test]
fn a_chain_of_imports_is_no_circle() {
    let circles = circle_files(&[
        ("lib.rs", "mod a;\nmod b;\nmod c;\npub use a::A;\n"),
        ("a.rs", "use crate::b::B;\npub struct A(B);\n"),
        ("b.rs", "use super::c::C;\npub struct B(C);\n"),
        ("c.rs", "pub struct C;\n"),
    ]);
    assert_eq!(circles, Vec::<Vec<String>>::new());
}

#[test]
fn a_longer_circle_names_every_file() {
    let circles = circle_files(&[
        ("lib.rs", "mod a;\nmod b;\nmod c;\n"),
        ("a.rs", "use crate::b::B;\n"),
        ("b.rs", "use crate::{c::{self, C}};\n"),
        ("c.rs", "pub fn f() { crate::a::g(); }\n"),
    ]);
    assert_eq!(
        circles,
        [["fake/src/a.rs", "fake/src/b.rs", "fake/src/c.rs"]]
    );
}

#[test]
fn imports_in_test_code_are_ignored() {
    let circles = circle_files(&[
        ("lib.rs", "mod a;\nmod b;\n#[cfg(test)]\nmod tests;\n"),
        ("a.rs", "use crate::b::B;\n"),
        (
            "b.rs",
            "pub struct B;\n\
             #[cfg(test)]\nfn helper() -> crate::a::A { todo!() }\n\
             #[cfg(test)]\nmod tests {\n    use crate::a;\n}\n",
        ),
        // Declared under `#[cfg(test)]` only: test code entirely.
        ("tests.rs", "use crate::a::A;\nuse crate::b::B;\n"),
    ]);
    assert_eq!(circles, Vec::<Vec<String>>::new());
}

#[test]
fn comments_and_literals_are_ignored() {
    let circles = circle_files(&[
        ("lib.rs", "mod a;\nmod b;\n"),
        ("a.rs", "use crate::b::B;\n"),
        (
            "b.rs",
            "// crate::a::A\n/// See crate::a.\n/* outer /* crate::a */ still */\n\
             const TEXT: &str = \"crate::a::A\";\nconst RAW: &str = r#\"crate::a\"#;\n\
             const QUOTE: char = '\"';\nfn f<'a>(x: &'a str) -> &'a str { x }\n",
        ),
    ]);
    assert_eq!(circles, Vec::<Vec<String>>::new());
}

#[test]
fn code_after_a_quote_character_and_a_lifetime_is_still_read() {
    let circles = circle_files(&[
        ("lib.rs", "mod a;\nmod b;\n"),
        ("a.rs", "use crate::b::B;\n"),
        (
            "b.rs",
            "const QUOTE: char = '\"';\nfn f<'a>(_: &'a str) { crate::a::g() }\n",
        ),
    ]);
    assert_eq!(circles, [["fake/src/a.rs", "fake/src/b.rs"]]);
}

#[test]
fn a_child_importing_its_parent_which_uses_the_child_is_a_circle() {
    let circles = circle_files(&[
        ("lib.rs", "pub mod store;\n"),
        (
            "store/mod.rs",
            "mod journal;\npub use journal::Journal;\npub enum StoreError {}\n",
        ),
        (
            "store/journal.rs",
            "use super::StoreError;\npub struct Journal;\n",
        ),
    ]);
    assert_eq!(
        circles,
        [["fake/src/store/journal.rs", "fake/src/store/mod.rs"]]
    );
}

#[test]
fn a_shared_error_in_its_own_file_breaks_the_circle() {
    let circles = circle_files(&[
        ("lib.rs", "pub mod store;\n"),
        (
            "store/mod.rs",
            "mod error;\nmod journal;\npub use error::StoreError;\npub use journal::Journal;\n",
        ),
        ("store/error.rs", "pub enum StoreError {}\n"),
        (
            "store/journal.rs",
            "use super::error::StoreError;\npub struct Journal;\n\
             mod inner {\n    use super::Journal;\n}\n",
        ),
    ]);
    assert_eq!(circles, Vec::<Vec<String>>::new());
}

#[test]
fn a_parent_that_only_re_exports_makes_no_circle() {
    let circles = circle_files(&[
        ("lib.rs", "pub mod store;\n"),
        (
            "store/mod.rs",
            "mod error;\nmod journal;\npub use error::StoreError as Failure;\n\
             pub use journal::Journal;\npub use other_crate::Thing;\n",
        ),
        ("store/error.rs", "pub enum StoreError {}\n"),
        (
            "store/journal.rs",
            "use super::{Failure, Thing};\npub struct Journal(Failure, Thing);\n",
        ),
    ]);
    assert_eq!(circles, Vec::<Vec<String>>::new());
}

#[test]
fn a_path_through_a_re_export_belongs_to_the_defining_file() {
    let circles = import_circles(
        "fake/src",
        &sources(&[
            ("lib.rs", "mod a;\nmod b;\npub use a::A;\n"),
            ("a.rs", "use crate::b::B;\npub struct A(B);\n"),
            ("b.rs", "pub struct B;\nfn f() -> crate::A { todo!() }\n"),
        ]),
    )
    .expect("a well-formed crate");
    assert_eq!(circles.len(), 1);
    assert_eq!(circles[0].files, ["fake/src/a.rs", "fake/src/b.rs"]);
    assert_eq!(
        circles[0].references,
        [
            "fake/src/a.rs:1 `crate::b::B` -> fake/src/b.rs",
            "fake/src/b.rs:2 `crate::A` -> fake/src/a.rs",
        ]
    );
}

#[test]
fn a_missing_module_file_and_a_path_attribute_are_reported() {
    let missing = import_circles("fake/src", &sources(&[("lib.rs", "mod gone;\n")]));
    assert!(missing.is_err_and(|problem| problem.contains("`mod gone;` names no file")));
    let moved = import_circles(
        "fake/src",
        &sources(&[("lib.rs", "#[path = \"x.rs\"]\nmod a;\n"), ("x.rs", "")]),
    );
    assert!(moved.is_err_and(|problem| problem.contains("#[path]")));
}
