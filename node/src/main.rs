//! `hutong`: a department's node of the licence ledger network, and the tools around it.

mod admitter;
mod audit;
mod commands;
mod config;
mod durable;
mod engine;
mod failure;
mod faults;
mod files;
#[cfg(test)]
mod fuzz_corpus;
mod home_lock;
mod keys;
mod limits;
mod mempool;
mod messages;
mod metrics;
mod penalty;
// The network's handle offers more than the node uses yet (listen addresses, topic peers),
// for operators' tooling and its own tests.
#[allow(dead_code)]
mod network;
mod network_metrics;
mod repeated_log;
mod run;
mod service;
mod shared;
mod signing_file;
mod signing_state;
mod store_open;
mod testnet_commands;
mod tx_examples;
mod verify;
mod witness;

/// The process's allocator: mimalloc. Block execution, the state tree and the audit allocate
/// and free many small buffers; the system allocator took about a quarter of their time
/// (docs/adr/0010-global-allocator.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

// What every command returns on failure, named `crate::Failure` (and so on) by the commands.
// Defined in `failure.rs` rather than here, since `main` in turn calls the commands.
pub(crate) use failure::{Failure, WithCode, exit};

/// hutong (互通): a permissioned ledger of government electronic licences.
#[derive(Debug, Parser)]
#[command(name = "hutong", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate a node key and an authority signing key (files with mode 0600).
    Keygen {
        /// Directory to write `node_key.json` and `authority_key.json` into.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// Overwrite existing key files.
        #[arg(long)]
        force: bool,
    },
    /// Create a node home: config.toml (commented), the genesis file, the node key, a data dir.
    Init {
        /// The node's home directory (created if missing).
        #[arg(long)]
        home: PathBuf,
        /// The chain's genesis file, copied into the home.
        #[arg(long)]
        genesis: PathBuf,
        /// An existing node key to use; a new one is generated when absent.
        #[arg(long)]
        node_key: Option<PathBuf>,
        /// Address to listen on for peers.
        #[arg(long, default_value = "/ip4/127.0.0.1/tcp/26656")]
        p2p_listen: String,
        /// Address of the HTTP API.
        #[arg(long, default_value = "127.0.0.1:8080")]
        api_listen: String,
        /// A peer to dial, `<node public key hex>@<multiaddress>` (repeatable).
        #[arg(long = "peer")]
        peers: Vec<String>,
        /// Replace an existing config.toml and genesis file.
        #[arg(long)]
        force: bool,
    },
    /// Check a genesis file, write it in canonical form, and print its hash.
    Genesis {
        /// The genesis JSON (chain id, algorithm suite, time, authorities, catalogue, grants, nodes).
        #[arg(long)]
        input: PathBuf,
        /// Where to write the checked file (default: print only the hash).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Run a node from its home directory until SIGINT or SIGTERM.
    Run {
        /// The node's home directory, as made by `hutong init`: config.toml, genesis.json, the
        /// node key and the data directory.
        #[arg(long)]
        home: PathBuf,
        /// Start from genesis and catch up from the peers when the store is missing or empty
        /// although the signing state says this node signed at a later height (a lost store);
        /// without it the node refuses to start. The signing state keeps the node from signing
        /// anything that conflicts with what it signed before.
        #[arg(long)]
        resync: bool,
    },
    /// Build, sign and submit a transaction to a node's API.
    Tx(commands::TxArgs),
    /// Check a proof bundle, transaction proof, checkpoint, QR payload or log consistency
    /// proof offline, trusting only the genesis file.
    Verify(verify::VerifyArgs),
    /// A local network of real node processes on loopback, with demo data.
    #[command(subcommand)]
    Testnet(testnet_commands::TestnetCommand),
    /// Drive a running testnet with signed transactions (or verification reads) and print
    /// one line of JSON with the throughput and latency.
    Bench(testnet_commands::BenchArgs),
    /// A witness: follow nodes' signed checkpoints, check that each log extends the last one
    /// cosigned, cosign it, and stop with exit code 8 on a split view.
    #[command(subcommand)]
    Witness(witness::WitnessCommand),
    /// Re-verify the whole chain from genesis (an export file or a node), compare nodes, and
    /// query the verified history.
    Audit(audit::AuditArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Keygen { dir, force } => commands::keygen(&dir, force),
        Command::Init {
            home,
            genesis,
            node_key,
            p2p_listen,
            api_listen,
            peers,
            force,
        } => commands::init(&commands::InitArgs {
            home,
            genesis,
            node_key,
            p2p_listen,
            api_listen,
            peers,
            force,
        }),
        Command::Genesis { input, out } => commands::genesis(&input, out.as_deref()),
        Command::Run { home, resync } => run::run(&home, resync),
        Command::Tx(args) => commands::tx(&args),
        Command::Verify(args) => verify::verify(&args),
        Command::Testnet(command) => testnet_commands::testnet(command),
        Command::Bench(args) => testnet_commands::bench(&args),
        Command::Audit(args) => audit::run(&args),
        Command::Witness(command) => witness::command(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("hutong: {:#}", failure.error);
            ExitCode::from(failure.code)
        }
    }
}
