//! The offline commands: keygen, init, genesis, and tx (which talks to a node's API).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use clap::Args;

use hutong_core::genesis::Genesis;
use hutong_core::records::AuthorityId;
use hutong_core::tx::{Transaction, TxBody, TxPayload};

use crate::config::Config;
use crate::limits::TX_BODY_FILE_BYTES_MAX;
use crate::shared::now_ms;
use crate::{Failure, WithCode, exit, keys, tx_examples};
use hutong_core::suite::Suite;

pub fn keygen(dir: &Path, force: bool) -> Result<(), Failure> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating {}", dir.display()))
        .code(exit::RUNTIME)?;
    let node = keys::generate()
        .map_err(|error| anyhow!("no randomness from the operating system: {error}"))
        .code(exit::RUNTIME)?;
    let authority = keys::generate()
        .map_err(|error| anyhow!("no randomness from the operating system: {error}"))
        .code(exit::RUNTIME)?;
    keys::write(&dir.join("node_key.json"), "node", &node, force).code(exit::CONFIG)?;
    keys::write(
        &dir.join("authority_key.json"),
        "authority",
        &authority,
        force,
    )
    .code(exit::CONFIG)?;
    println!(
        "node key:      {} ({})",
        node.public_key(),
        dir.join("node_key.json").display()
    );
    println!(
        "authority key: {} ({})",
        authority.public_key(),
        dir.join("authority_key.json").display()
    );
    println!(
        "Keep both files private. Send the public keys to the governors for the genesis or a registration."
    );
    Ok(())
}

#[derive(Debug)]
pub struct InitArgs {
    pub home: PathBuf,
    pub genesis: PathBuf,
    pub node_key: Option<PathBuf>,
    pub p2p_listen: String,
    pub api_listen: String,
    pub peers: Vec<String>,
    pub force: bool,
}

pub fn init(args: &InitArgs) -> Result<(), Failure> {
    let genesis_bytes = std::fs::read(&args.genesis)
        .with_context(|| format!("reading the genesis file {}", args.genesis.display()))
        .code(exit::CONFIG)?;
    let genesis = Genesis::from_json(&genesis_bytes)
        .with_context(|| format!("checking {}", args.genesis.display()))
        .code(exit::CONFIG)?;
    let home = &args.home;
    check_same_chain(home, &genesis)?;
    std::fs::create_dir_all(home.join("data"))
        .with_context(|| format!("creating {}", home.display()))
        .code(exit::RUNTIME)?;
    let config_path = home.join("config.toml");
    if config_path.exists() && !args.force {
        return Err(Failure::new(
            exit::CONFIG,
            anyhow!(
                "{} already exists; pass --force to replace it",
                config_path.display()
            ),
        ));
    }
    let key_path = home.join("node_key.json");
    let node_key = match &args.node_key {
        Some(path) => keys::read(path).code(exit::CONFIG)?,
        None if key_path.exists() => keys::read(&key_path).code(exit::CONFIG)?,
        None => keys::generate()
            .map_err(|error| anyhow!("no randomness: {error}"))
            .code(exit::RUNTIME)?,
    };
    if args.node_key.is_some() || !key_path.exists() {
        keys::write(&key_path, "node", &node_key, true).code(exit::RUNTIME)?;
    }
    let config = Config::new(
        args.p2p_listen.clone(),
        args.api_listen.clone(),
        args.peers.clone(),
    );
    crate::durable::write_atomic(&config_path, config.to_commented_toml().as_bytes(), 0o644)
        .context("writing config.toml")
        .code(exit::RUNTIME)?;
    crate::durable::write_atomic(
        &home.join("genesis.json"),
        genesis.to_json().as_bytes(),
        0o644,
    )
    .context("writing genesis.json")
    .code(exit::RUNTIME)?;
    let registered = genesis
        .nodes
        .iter()
        .any(|node| node.key == node_key.public_key());
    println!("initialised {}", home.display());
    println!("chain {} (genesis {})", genesis.chain_id, genesis.hash());
    println!("node key {}", node_key.public_key());
    if !registered {
        println!(
            "note: this node key is not in the genesis; the governors must register it before peers accept it"
        );
    }
    println!("start it with: hutong run --home {}", home.display());
    Ok(())
}

/// Refuses to put `genesis` into a home whose data directory already holds something while its
/// genesis file is of another chain (or unreadable): the store there is of that chain, and the
/// node would refuse it at its next start, after the old genesis file was gone. `--force`
/// replaces the configuration, never the chain a store belongs to.
fn check_same_chain(home: &Path, genesis: &Genesis) -> Result<(), Failure> {
    let data = home.join("data");
    let holds_data = std::fs::read_dir(&data)
        .map(|mut entries| entries.next().is_some())
        .unwrap_or(false);
    if !holds_data {
        return Ok(());
    }
    let existing_path = home.join("genesis.json");
    let existing = std::fs::read(&existing_path)
        .ok()
        .and_then(|bytes| Genesis::from_json(&bytes).ok());
    match existing {
        Some(existing) if existing.hash() == genesis.hash() => Ok(()),
        existing => {
            let of = existing.map_or_else(
                || {
                    format!(
                        "a chain whose genesis file {} cannot be read",
                        existing_path.display()
                    )
                },
                |existing| format!("chain {} (genesis {})", existing.chain_id, existing.hash()),
            );
            Err(Failure::new(
                exit::CONFIG,
                anyhow!(
                    "{} holds the store of {of}, and the genesis given is of chain {} (genesis \
                     {}): a store belongs to one chain. Move {} away (or remove it) first, then \
                     run init again",
                    data.display(),
                    genesis.chain_id,
                    genesis.hash(),
                    data.display()
                ),
            ))
        }
    }
}

pub fn genesis(input: &Path, out: Option<&Path>) -> Result<(), Failure> {
    let bytes = std::fs::read(input)
        .with_context(|| format!("reading {}", input.display()))
        .code(exit::CONFIG)?;
    let genesis = Genesis::from_json(&bytes)
        .with_context(|| format!("checking {}", input.display()))
        .code(exit::CONFIG)?;
    if let Some(out) = out {
        crate::durable::write_atomic(out, genesis.to_json().as_bytes(), 0o644)
            .with_context(|| format!("writing {}", out.display()))
            .code(exit::RUNTIME)?;
    }
    println!("{}", genesis.hash());
    Ok(())
}

/// `hutong tx`: build, sign and submit a transaction.
#[derive(Debug, Args)]
pub struct TxArgs {
    /// The node's API, e.g. http://127.0.0.1:8080
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    node: String,
    /// The chain id (default: asked from the node).
    #[arg(long)]
    chain_id: Option<String>,
    /// The submitting authority's id.
    #[arg(long, required_unless_present = "example")]
    signer: Option<String>,
    /// The submitting authority's key file.
    #[arg(long, required_unless_present = "example")]
    key: Option<PathBuf>,
    /// Another authority that co-signs (governance records), as `ID=KEYFILE` (repeatable).
    #[arg(long = "endorse")]
    endorsements: Vec<String>,
    /// The nonce: one above the signer's last (default: the next one, as the node reports it,
    /// counting the signer's transactions waiting in its mempool).
    #[arg(long)]
    nonce: Option<u64>,
    /// The record to submit: a JSON file holding the body (`{"issue_licence": {...}}` and so
    /// on; `--example KIND` prints one of each kind), or `-` for standard input.
    #[arg(long, required_unless_present = "example")]
    body: Option<PathBuf>,
    /// Print an example body of a record kind (`list` names the kinds) and exit; nothing is
    /// signed or sent.
    #[arg(long, value_name = "KIND", conflicts_with_all = ["signer", "key", "body", "endorsements", "wait"])]
    example: Option<String>,
    /// Wait until the transaction is committed (or rejected) and print where.
    #[arg(long)]
    wait: bool,
    /// How long to wait with --wait.
    #[arg(long, default_value_t = 30)]
    wait_seconds: u64,
}

fn http_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .build()
        .into()
}

fn get_json(agent: &ureq::Agent, url: &str) -> Result<(u16, serde_json::Value), Failure> {
    let mut response = agent
        .get(url)
        .call()
        .with_context(|| format!("cannot reach {url}; is the node running?"))
        .code(exit::UNREACHABLE)?;
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    let value = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    Ok((status, value))
}

/// The nonce the node says `signer`'s next transaction should carry.
fn next_nonce(agent: &ureq::Agent, base: &str, signer: &AuthorityId) -> Result<u64, Failure> {
    let (status, answer) = get_json(agent, &format!("{base}/v1/authorities/{signer}/nonce"))?;
    match answer.get("next").and_then(|next| next.as_u64()) {
        Some(next) if status == 200 => Ok(next),
        _ => Err(Failure::new(
            exit::REJECTED,
            anyhow!(
                "the node cannot say the next nonce of {signer} ({status}): {answer}; pass --nonce"
            ),
        )),
    }
}

fn print_example(kind: &str) -> Result<(), Failure> {
    if kind == "list" {
        for kind in tx_examples::KINDS {
            println!("{kind:<22} signed by {}", tx_examples::signer_of(kind));
        }
        return Ok(());
    }
    let example = tx_examples::example(kind).ok_or_else(|| {
        Failure::new(
            exit::CONFIG,
            anyhow!(
                "no record kind {kind:?}; the kinds are: {}",
                tx_examples::KINDS.join(", ")
            ),
        )
    })?;
    println!("{example:#}");
    eprintln!(
        "# signed by {}; save it, edit it, and submit it with --body FILE",
        tx_examples::signer_of(kind)
    );
    Ok(())
}

pub fn tx(args: &TxArgs) -> Result<(), Failure> {
    if let Some(kind) = &args.example {
        return print_example(kind);
    }
    let (Some(signer), Some(key), Some(body_path)) = (&args.signer, &args.key, &args.body) else {
        return Err(Failure::new(
            exit::CONFIG,
            anyhow!("--signer, --key and --body are required to submit a record"),
        ));
    };
    let agent = http_agent();
    let base = args.node.trim_end_matches('/');
    // The node says which chain it serves and the chain's algorithm suite; a node that lied
    // would only get the transaction refused by the others.
    let (_, info) = get_json(&agent, &format!("{base}/v1/node"))?;
    let chain_id = match &args.chain_id {
        Some(chain_id) => chain_id.clone(),
        None => info
            .get("chain_id")
            .and_then(|value| value.as_str())
            .map(str::to_owned)
            .ok_or_else(|| {
                Failure::new(
                    exit::UNREACHABLE,
                    anyhow!("{base}/v1/node did not say the chain id; pass --chain-id"),
                )
            })?,
    };
    let suite: Suite = info
        .get("suite")
        .cloned()
        .and_then(|value| serde_json::from_value(value).ok())
        .ok_or_else(|| {
            Failure::new(
                exit::UNREACHABLE,
                anyhow!("{base}/v1/node did not name an algorithm suite this build implements"),
            )
        })?;
    let mut body_text = String::new();
    let read = if body_path.as_os_str() == "-" {
        std::io::stdin()
            .take(TX_BODY_FILE_BYTES_MAX + 1)
            .read_to_string(&mut body_text)
            .context("reading the body from standard input")
    } else {
        std::fs::File::open(body_path)
            .and_then(|file| {
                file.take(TX_BODY_FILE_BYTES_MAX + 1)
                    .read_to_string(&mut body_text)
            })
            .with_context(|| format!("reading {}", body_path.display()))
    };
    read.code(exit::CONFIG)?;
    if body_text.len() as u64 > TX_BODY_FILE_BYTES_MAX {
        return Err(Failure::new(
            exit::CONFIG,
            anyhow!("the body is larger than {TX_BODY_FILE_BYTES_MAX} bytes"),
        ));
    }
    let body: TxBody = serde_json::from_str(&body_text)
        .context("the body is not a record in JSON (`hutong tx --example list` shows the kinds)")
        .code(exit::CONFIG)?;
    let signer = AuthorityId::from(signer.as_str());
    let mut signers = vec![(signer.clone(), keys::read(key).code(exit::CONFIG)?)];
    for endorsement in &args.endorsements {
        let (id, path) = endorsement.split_once('=').ok_or_else(|| {
            Failure::new(
                exit::CONFIG,
                anyhow!("--endorse takes ID=KEYFILE, got {endorsement:?}"),
            )
        })?;
        signers.push((
            AuthorityId::from(id),
            keys::read(Path::new(path)).code(exit::CONFIG)?,
        ));
    }
    let nonce = match args.nonce {
        Some(nonce) => nonce,
        None => next_nonce(&agent, base, &signer)?,
    };
    let payload = TxPayload {
        chain_id,
        signer,
        nonce,
        created_at: now_ms(),
        body,
    };
    let pairs: Vec<(&AuthorityId, &hutong_core::crypto::SecretKey)> =
        signers.iter().map(|(id, key)| (id, key)).collect();
    let transaction = Transaction::sign(suite, payload, &pairs)
        .context("signing")
        .code(exit::CONFIG)?;
    transaction
        .check_size_and_form()
        .context("the transaction is malformed")
        .code(exit::CONFIG)?;
    let id = transaction.id(suite);
    let json = serde_json::to_string(&transaction)
        .context("encoding")
        .code(exit::RUNTIME)?;
    let mut response = agent
        .post(&format!("{base}/v1/transactions"))
        .header("content-type", "application/json")
        .send(json.as_bytes())
        .with_context(|| format!("cannot reach {base}; is the node running?"))
        .code(exit::UNREACHABLE)?;
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    if status != 202 && status != 200 {
        return Err(Failure::new(
            exit::REJECTED,
            anyhow!("the node refused the transaction ({status}): {text}"),
        ));
    }
    println!("{id}");
    if !args.wait {
        return Ok(());
    }
    let deadline = Instant::now() + Duration::from_secs(args.wait_seconds);
    loop {
        let (_, answer) = get_json(&agent, &format!("{base}/v1/transactions/{id}"))?;
        match answer.get("state").and_then(|value| value.as_str()) {
            Some("committed") => {
                println!(
                    "committed at height {} (index {})",
                    answer.get("height").cloned().unwrap_or_default(),
                    answer.get("index").cloned().unwrap_or_default()
                );
                return Ok(());
            }
            Some("rejected") => {
                return Err(Failure::new(exit::REJECTED, anyhow!("rejected: {answer}")));
            }
            _ => {}
        }
        if Instant::now() >= deadline {
            bail_timeout(args.wait_seconds)?;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn bail_timeout(seconds: u64) -> Result<(), Failure> {
    let error: anyhow::Result<()> = (|| {
        bail!("not committed within {seconds} s; it may still be; ask GET /v1/transactions/<hash>")
    })();
    error.code(exit::RUNTIME)
}
