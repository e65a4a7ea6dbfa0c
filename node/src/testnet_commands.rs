//! `hutong testnet up|down` and `hutong bench`: the command line over `hutong-testnet`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::anyhow;
use clap::{Args, Subcommand};

use hutong_testnet::Error;
use hutong_testnet::bench::{self, BenchOptions};
use hutong_testnet::demo::DemoSize;
use hutong_testnet::network::{self, Manifest, UpOptions};

use crate::{Failure, exit};

#[derive(Debug, Subcommand)]
pub enum TestnetCommand {
    /// Create (or resume) a testnet in DIR, start every node, wait for blocks, load the demo
    /// data once with --demo, print the nodes; Ctrl-C stops them.
    Up {
        /// Validators (voting nodes).
        #[arg(long, default_value_t = 4)]
        validators: usize,
        /// Observers (nodes that follow without voting).
        #[arg(long, default_value_t = 0)]
        observers: usize,
        /// The testnet directory (keys, genesis, node homes, testnet.json).
        #[arg(long, default_value = "testnet")]
        dir: PathBuf,
        /// Load the demo licences, departments' history and recognitions (once per DIR).
        #[arg(long)]
        demo: bool,
        /// How much demo data: `standard` (3,000 licences) or `small` (135, for tests).
        #[arg(long, default_value = "standard", value_parser = ["standard", "small"])]
        demo_size: String,
        /// Return once the network runs instead of staying to supervise it; stop it with
        /// `hutong testnet down`.
        #[arg(long)]
        detach: bool,
        /// Witnesses to start with a new testnet (0 to 8), each following every node, which
        /// all accept them; their keys are in DIR/witness-keys.json for `hutong verify`.
        #[arg(long, default_value_t = 0)]
        witnesses: usize,
    },
    /// Stop every node of the testnet in DIR (and its `up` process).
    Down {
        #[arg(long, default_value = "testnet")]
        dir: PathBuf,
    },
}

/// `hutong bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The testnet directory: its nodes (testnet.json) and keys.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// A node's API to drive instead of all of DIR's validators (repeatable); the keys are
    /// still read from --keys (or --dir).
    #[arg(long = "node")]
    nodes: Vec<String>,
    /// A testnet directory to take the signing keys from (default: --dir).
    #[arg(long)]
    keys: Option<PathBuf>,
    /// Drive the verification endpoint instead of submitting transactions.
    #[arg(long)]
    read: bool,
    /// Target rate per second (default: as fast as accepted).
    #[arg(long)]
    rate: Option<u64>,
    /// How long to submit, in seconds.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Most transactions (or reads) in the run.
    #[arg(long, default_value_t = 100_000)]
    count: u64,
    /// Requests in flight at once (one stream each, spread over the nodes).
    #[arg(long, default_value_t = 16)]
    in_flight: usize,
    /// How long to wait for the last commits, in seconds.
    #[arg(long, default_value_t = 30)]
    commit_wait_seconds: u64,
}

fn failure(error: Error) -> Failure {
    let code = match &error {
        Error::Usage(_) => exit::CONFIG,
        Error::Unreachable(_) => exit::UNREACHABLE,
        Error::Io { .. } | Error::Node(_) | Error::Demo(_) => exit::RUNTIME,
    };
    Failure::new(code, anyhow!(error))
}

pub fn testnet(command: TestnetCommand) -> Result<(), Failure> {
    match command {
        TestnetCommand::Up {
            validators,
            observers,
            dir,
            demo,
            demo_size,
            detach,
            witnesses,
        } => {
            let binary = std::env::current_exe()
                .map_err(|error| Failure::new(exit::RUNTIME, anyhow!("own path: {error}")))?;
            network::up(&UpOptions {
                binary,
                dir,
                validators,
                observers,
                demo,
                demo_size: if demo_size == "small" {
                    DemoSize::SMALL
                } else {
                    DemoSize::STANDARD
                },
                detach,
                witnesses,
            })
            .map_err(failure)
        }
        TestnetCommand::Down { dir } => network::down(&dir).map_err(failure),
    }
}

pub fn bench(args: &BenchArgs) -> Result<(), Failure> {
    let mut nodes = args.nodes.clone();
    if nodes.is_empty()
        && let Some(dir) = &args.dir
    {
        let manifest = Manifest::load(dir).map_err(failure)?;
        nodes = manifest
            .nodes
            .iter()
            .filter(|node| node.role == "validator")
            .map(|node| node.api.clone())
            .collect();
    }
    let keys_dir = args
        .keys
        .clone()
        .or_else(|| args.dir.clone())
        .ok_or_else(|| {
            Failure::new(
                exit::CONFIG,
                anyhow!("pass --dir (or --keys) for the testnet's signing keys"),
            )
        })?;
    let result = bench::run(&BenchOptions {
        nodes: nodes
            .iter()
            .map(|node| node.trim_end_matches('/').to_string())
            .collect(),
        keys_dir,
        read: args.read,
        rate: args.rate,
        duration: Duration::from_secs(args.seconds),
        count: args.count,
        streams: args.in_flight,
        commit_wait: Duration::from_secs(args.commit_wait_seconds),
    })
    .map_err(failure)?;
    let line = serde_json::to_string(&result)
        .map_err(|error| Failure::new(exit::RUNTIME, anyhow!(error)))?;
    println!("{line}");
    Ok(())
}
