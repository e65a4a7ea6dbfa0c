//! `hutong verify`: checks a proof document of the API with no network, against the chain's
//! genesis file only. The checks are those of `hutong_verify` (docs/proofs.md): the
//! signers from genesis through every validator-set change, the certificate of more than two
//! thirds of the voting power, the records under the state root, and the verdict recomputed
//! from the proved records.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use clap::Args;
use serde::Deserialize;

use hutong_api::format_time;
use hutong_core::genesis::Genesis;
use hutong_core::hash::Hash32;
use hutong_core::ident::RegionCode;
use hutong_core::log::ConsistencyProof;
use hutong_core::records::{LicenceEventKind, TimeMs};
use hutong_verify::qr::{QrPayload, VerifiedQr};
use hutong_verify::witness::{VerifiedWitnessed, WitnessKeys, WitnessPolicy};
use hutong_verify::{
    self, PROOF_DOCUMENT_BYTES_MAX, TRUSTED_CHECKPOINT_FORMAT, TrustedCheckpoint, Verified,
    VerifiedCheckpoint, VerifiedLicence, VerifyOptions,
};

use crate::{Failure, WithCode, exit};

/// Appends one line to a report.
macro_rules! say {
    ($out:expr, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        // Writing to a String cannot fail.
        let _ = writeln!($out, $($arg)*);
    }};
}

/// Writes the report to standard output; a reader that went away (`| head`) is not an error.
fn emit(report: &str) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(report.as_bytes())
        .and_then(|()| stdout.flush());
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The chain's genesis file: the only thing trusted.
    #[arg(long)]
    pub genesis: PathBuf,
    /// A proof document as the API gives it: a licence bundle
    /// (`/v1/licences/{type}/{number}/proof`), a transaction proof, or a signed checkpoint
    /// (`/v1/log/checkpoint`). `-` reads standard input.
    #[arg(long, required_unless_present_any = ["qr", "consistency"])]
    pub bundle: Option<PathBuf>,
    /// A scanned QR payload (`HT1:…`), or `@FILE` to read it from a file. Checked against the
    /// genesis file, or against the issuer record proved by `--bundle` when one is given.
    #[arg(long)]
    pub qr: Option<String>,
    /// A log consistency proof (`/v1/log/consistency`), checked between the logs of the two
    /// signed checkpoints given with `--checkpoint`.
    #[arg(long, requires = "checkpoints", conflicts_with_all = ["bundle", "qr"])]
    pub consistency: Option<PathBuf>,
    /// A signed checkpoint (`/v1/log/checkpoint`); give two with `--consistency`.
    #[arg(long = "checkpoint", requires = "consistency")]
    pub checkpoints: Vec<PathBuf>,
    /// The time the verdict is computed for, in milliseconds since the Unix epoch
    /// (default: the checkpoint's time).
    #[arg(long)]
    pub at: Option<TimeMs>,
    /// The region the licence is to be used in (six digits); the verdict then says whether
    /// it is recognised there.
    #[arg(long)]
    pub region: Option<String>,
    /// A historical check: accept a bundle whose header is older than the chain's freshness
    /// allows (the genesis file's `freshness.proof_age_ms_max`, against this machine's clock and
    /// against `--at`); the output says the check was historical. Without it such a bundle
    /// fails (exit 7, `stale`): it may predate a suspension or a revocation.
    #[arg(long)]
    pub historical: bool,
    /// A checkpoint this verifier trusts (`hutong-trusted-checkpoint/v1`, written by
    /// `--save-trusted`): a document that starts from it (`?trusted_height=`) carries only
    /// the validator-set hand-overs after it (docs/proofs.md section 5).
    #[arg(long)]
    pub trusted: Option<PathBuf>,
    /// Once `--bundle` verifies, keep its checkpoint as this verifier's trust in FILE (written
    /// whole or not at all), to start later documents from.
    #[arg(long, requires = "bundle", value_name = "FILE")]
    pub save_trusted: Option<PathBuf>,
    /// Require cosignatures of at least this many distinct witnesses named in
    /// `--witness-keys` on a log that extends the document's (a bundle asked with
    /// `?witnesses=k`, or a checkpoint with its cosignatures); fewer fails with exit 7,
    /// naming the witnesses missing and those whose cosignature failed.
    #[arg(long, requires = "witness_keys", value_name = "K")]
    pub witnesses: Option<usize>,
    /// The witnesses this verifier trusts (`hutong-witness-keys/v1`: names and public keys).
    #[arg(long, requires = "witnesses", value_name = "FILE")]
    pub witness_keys: Option<PathBuf>,
    /// Print what was verified as JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// A consistency proof as `/v1/log/consistency` answers it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsistencyDocument {
    first_root: Hash32,
    second_root: Hash32,
    proof: ConsistencyProof,
}

pub fn verify(args: &VerifyArgs) -> Result<(), Failure> {
    let genesis_bytes = read_bounded(&args.genesis).code(exit::CONFIG)?;
    let genesis = Genesis::from_json(&genesis_bytes)
        .with_context(|| format!("checking the genesis file {}", args.genesis.display()))
        .code(exit::CONFIG)?;
    let region = args
        .region
        .as_deref()
        .map(RegionCode::parse)
        .transpose()
        .context("--region")
        .code(exit::CONFIG)?;
    let options = VerifyOptions {
        at: args.at,
        region,
        now: None,
        historical: args.historical,
        trusted: match &args.trusted {
            Some(path) => Some(read_trusted(path).code(exit::CONFIG)?),
            None => None,
        },
        witnesses: match (&args.witnesses, &args.witness_keys) {
            (Some(required), Some(path)) => {
                let bytes = read_bounded(path).code(exit::CONFIG)?;
                let keys = WitnessKeys::from_json(&bytes)
                    .with_context(|| format!("reading the witness keys {}", path.display()))
                    .code(exit::CONFIG)?;
                if *required == 0 || *required > keys.len() {
                    return Err(Failure::new(
                        exit::CONFIG,
                        anyhow!(
                            "--witnesses {required}: {} names {} witnesses; ask for 1 to that many",
                            path.display(),
                            keys.len()
                        ),
                    ));
                }
                Some(WitnessPolicy {
                    required: *required,
                    keys,
                })
            }
            _ => None,
        },
    };
    if let Some(consistency) = &args.consistency {
        return verify_consistency(consistency, &args.checkpoints, &genesis, args.json);
    }
    let verified = match &args.bundle {
        Some(path) => {
            let document = read_bounded(path).code(exit::CONFIG)?;
            if is_split_view(&document) {
                return verify_split_view(path, &document, &genesis, args.json);
            }
            let verified = hutong_verify::binary::verify_document(&document, &genesis, &options)
                .map_err(|error| {
                    anyhow!(
                        "{} does not verify ({}): {error}",
                        path.display(),
                        error.code()
                    )
                })
                .code(exit::INVALID)?;
            if let Some(save) = &args.save_trusted {
                save_trusted(save, &document, &genesis, options.trusted.as_ref())
                    .code(exit::RUNTIME)?;
            }
            Some(verified)
        }
        None => None,
    };
    let qr = match &args.qr {
        Some(argument) => Some(verify_qr(argument, verified.as_ref(), &genesis)?),
        None => None,
    };
    let mut out = String::new();
    if args.json {
        let output = serde_json::json!({ "verified": verified, "qr": qr });
        say!(out, "{output:#}");
    } else {
        if let Some(verified) = &verified {
            print_verified(&mut out, verified);
        }
        if let Some(qr) = &qr {
            print_qr(&mut out, qr);
        }
    }
    emit(&out);
    Ok(())
}

/// Whether a document is a witness's split-view proof (read by its `format`).
fn is_split_view(document: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct FormatOnly {
        format: String,
    }
    serde_json::from_slice::<FormatOnly>(document)
        .is_ok_and(|only| only.format == hutong_verify::split_view::SPLIT_VIEW_FORMAT)
}

/// Checks a split-view proof: exit 0 when it shows a split view (both checkpoints signed by
/// the validators, contradicting each other), 7 when it does not.
fn verify_split_view(
    path: &Path,
    document: &[u8],
    genesis: &Genesis,
    json: bool,
) -> Result<(), Failure> {
    let split = hutong_verify::split_view::verify_split_view_json(document, genesis)
        .map_err(|error| {
            anyhow!(
                "{} does not verify ({}): {error}",
                path.display(),
                error.code()
            )
        })
        .code(exit::INVALID)?;
    let mut out = String::new();
    if json {
        say!(out, "{:#}", serde_json::json!({ "split_view": split }));
    } else {
        say!(
            out,
            "verified: SPLIT VIEW ({}): the validators signed two checkpoints that cannot both be true",
            split.kind.name()
        );
        print_checkpoint(&mut out, &split.first);
        print_checkpoint(&mut out, &split.second);
    }
    emit(&out);
    Ok(())
}

/// A trusted checkpoint kept by `--save-trusted`.
fn read_trusted(path: &Path) -> anyhow::Result<TrustedCheckpoint> {
    let bytes = read_bounded(path)?;
    let trusted: TrustedCheckpoint = serde_json::from_slice(&bytes)
        .with_context(|| format!("reading the trusted checkpoint {}", path.display()))?;
    if trusted.format != TRUSTED_CHECKPOINT_FORMAT {
        return Err(anyhow!(
            "{} is of format {:?}, not {TRUSTED_CHECKPOINT_FORMAT}",
            path.display(),
            trusted.format
        ));
    }
    Ok(trusted)
}

/// Keeps the checkpoint of a verified document as the verifier's trust: written beside the
/// file and renamed over it, so that a crash leaves the old trust or the new, never half.
fn save_trusted(
    path: &Path,
    document: &[u8],
    genesis: &Genesis,
    trusted: Option<&TrustedCheckpoint>,
) -> anyhow::Result<()> {
    let checkpoint = hutong_verify::binary::checkpoint_of_document(document)?;
    let kept = TrustedCheckpoint::verified(&checkpoint, genesis, trusted)?;
    let mut bytes = serde_json::to_vec_pretty(&kept)?;
    bytes.push(b'\n');
    let temporary = path.with_extension("partial");
    std::fs::write(&temporary, &bytes)
        .and_then(|()| std::fs::File::open(&temporary)?.sync_all())
        .and_then(|()| std::fs::rename(&temporary, path))
        .with_context(|| format!("writing the trusted checkpoint {}", path.display()))
}

/// Reads a file (or standard input for `-`) of at most the largest proof document.
fn read_bounded(path: &Path) -> anyhow::Result<Vec<u8>> {
    let limit = PROOF_DOCUMENT_BYTES_MAX as u64 + 1;
    let mut bytes = Vec::new();
    if path == Path::new("-") {
        std::io::stdin()
            .take(limit)
            .read_to_end(&mut bytes)
            .context("reading standard input")?;
    } else {
        std::fs::File::open(path)
            .and_then(|file| file.take(limit).read_to_end(&mut bytes))
            .with_context(|| format!("reading {}", path.display()))?;
    }
    if bytes.len() > PROOF_DOCUMENT_BYTES_MAX {
        return Err(anyhow!(
            "{} is larger than {PROOF_DOCUMENT_BYTES_MAX} bytes, the largest proof document",
            path.display()
        ));
    }
    Ok(bytes)
}

fn verify_qr(
    argument: &str,
    bundle: Option<&Verified>,
    genesis: &Genesis,
) -> Result<VerifiedQr, Failure> {
    let text = match argument.strip_prefix('@') {
        Some(path) => {
            let bytes = read_bounded(Path::new(path)).code(exit::CONFIG)?;
            String::from_utf8(bytes)
                .map_err(|_| anyhow!("{path} is not UTF-8 text"))
                .code(exit::CONFIG)?
        }
        None => argument.to_owned(),
    };
    let payload = QrPayload::from_text(text.trim())
        .map_err(|error| anyhow!("the QR payload is malformed ({}): {error}", error.code()))
        .code(exit::INVALID)?;
    let Some(bundle) = bundle else {
        return payload
            .verify_with_genesis(genesis)
            .map_err(|error| {
                anyhow!(
                    "the QR payload does not verify against the genesis file ({}): {error}; \
                     for an issuer registered or rotated after genesis, pass the licence's \
                     proof bundle with --bundle",
                    error.code()
                )
            })
            .code(exit::INVALID);
    };
    let Verified::Licence(licence) = bundle else {
        return Err(Failure::new(
            exit::CONFIG,
            anyhow!("--qr with --bundle needs a licence proof bundle"),
        ));
    };
    let issuer = licence
        .issuer
        .as_ref()
        .ok_or_else(|| anyhow!("the bundle proves no issuer record to check the QR payload with"))
        .code(exit::INVALID)?;
    let qr = payload
        .verify_with_authority(genesis.suite, &licence.checkpoint.chain_id, issuer)
        .map_err(|error| anyhow!("the QR payload does not verify ({}): {error}", error.code()))
        .code(exit::INVALID)?;
    if (&qr.type_code, &qr.number) != (&licence.type_code, &licence.number) {
        return Err(Failure::new(
            exit::INVALID,
            anyhow!(
                "the QR payload names licence {}/{}, the bundle proves {}/{}",
                qr.type_code,
                qr.number,
                licence.type_code,
                licence.number
            ),
        ));
    }
    let issuance = licence.licence.as_ref().and_then(|record| {
        record
            .events
            .iter()
            .find(|event| event.kind == LicenceEventKind::Issued)
    });
    match issuance {
        Some(event) if event.tx == qr.transaction_id => Ok(qr),
        Some(event) => Err(Failure::new(
            exit::INVALID,
            anyhow!(
                "the QR payload carries issuance transaction {}, the proved licence was issued by {}",
                qr.transaction_id,
                event.tx
            ),
        )),
        None => Err(Failure::new(
            exit::INVALID,
            anyhow!("the bundle proves that the licence of the QR payload was never issued"),
        )),
    }
}

fn verify_consistency(
    path: &Path,
    checkpoint_paths: &[PathBuf],
    genesis: &Genesis,
    json: bool,
) -> Result<(), Failure> {
    let [first_path, second_path] = checkpoint_paths else {
        return Err(Failure::new(
            exit::CONFIG,
            anyhow!(
                "--consistency needs exactly two --checkpoint files, {} given",
                checkpoint_paths.len()
            ),
        ));
    };
    let checkpoint = |path: &PathBuf| -> Result<VerifiedCheckpoint, Failure> {
        let document = read_bounded(path).code(exit::CONFIG)?;
        // A checkpoint of a consistency check is history by nature: its age is no fault.
        match hutong_verify::binary::verify_document(
            &document,
            genesis,
            &VerifyOptions::historical(),
        ) {
            Ok(Verified::Checkpoint(checkpoint)) => Ok(checkpoint),
            Ok(_) => Err(Failure::new(
                exit::CONFIG,
                anyhow!("{} is not a signed checkpoint", path.display()),
            )),
            Err(error) => Err(Failure::new(
                exit::INVALID,
                anyhow!(
                    "{} does not verify ({}): {error}",
                    path.display(),
                    error.code()
                ),
            )),
        }
    };
    let mut first = checkpoint(first_path)?;
    let mut second = checkpoint(second_path)?;
    if first.log_size > second.log_size {
        std::mem::swap(&mut first, &mut second);
    }
    let bytes = read_bounded(path).code(exit::CONFIG)?;
    let document: ConsistencyDocument = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not a consistency proof", path.display()))
        .code(exit::CONFIG)?;
    let proof = &document.proof;
    if (proof.first_size, proof.second_size) != (first.log_size, second.log_size) {
        return Err(Failure::new(
            exit::INVALID,
            anyhow!(
                "the proof is between logs of {} and {} transactions; the checkpoints have {} and {}",
                proof.first_size,
                proof.second_size,
                first.log_size,
                second.log_size
            ),
        ));
    }
    if (document.first_root, document.second_root) != (first.log_root, second.log_root) {
        return Err(Failure::new(
            exit::INVALID,
            anyhow!(
                "the proof's roots ({}, {}) are not the checkpoints' log roots ({}, {})",
                document.first_root,
                document.second_root,
                first.log_root,
                second.log_root
            ),
        ));
    }
    hutong_verify::verify_log_consistency(genesis.suite, proof, &first.log_root, &second.log_root)
        .map_err(|error| {
            anyhow!(
                "the log at height {} is not a prefix of the log at height {}: {error}",
                first.height,
                second.height
            )
        })
        .code(exit::INVALID)?;
    let mut out = String::new();
    if json {
        let output = serde_json::json!({ "consistent": true, "first": first, "second": second });
        say!(out, "{output:#}");
    } else {
        say!(
            out,
            "verified: the log of {} transactions at height {} is a prefix of the log of {} at height {}",
            first.log_size,
            first.height,
            second.log_size,
            second.height
        );
        print_checkpoint(&mut out, &first);
        print_checkpoint(&mut out, &second);
    }
    emit(&out);
    Ok(())
}

fn print_checkpoint(out: &mut String, checkpoint: &VerifiedCheckpoint) {
    say!(
        out,
        "  checkpoint: chain {} height {} at {} (UTC+8) block {}",
        checkpoint.chain_id,
        checkpoint.height,
        format_time(checkpoint.time),
        checkpoint.block_hash
    );
    say!(
        out,
        "    state root {} · log {} transactions, root {} · signed by more than 2/3 of the validators ({} validator-set changes since genesis)",
        checkpoint.state_root,
        checkpoint.log_size,
        checkpoint.log_root,
        checkpoint.validator_changes
    );
}

fn print_verified(out: &mut String, verified: &Verified) {
    match verified {
        Verified::Licence(licence) => print_licence(out, licence),
        Verified::Transaction(transaction) => {
            say!(
                out,
                "verified: transaction {} is in the log at index {} (block {}, position {})",
                transaction.id,
                transaction.location.log_index,
                transaction.location.height,
                transaction.location.index
            );
            print_checkpoint(out, &transaction.checkpoint);
        }
        Verified::Checkpoint(checkpoint) => {
            say!(out, "verified: signed checkpoint");
            print_checkpoint(out, checkpoint);
        }
        Verified::History(history) => {
            say!(
                out,
                "verified: history of licence {}/{}, {} events, each recorded by a transaction in the log",
                history.licence.type_code,
                history.licence.number,
                history.licence.events.len()
            );
            for event in &history.licence.events {
                say!(
                    out,
                    "  {} (UTC+8) {} ({}) by {} at height {}{}",
                    format_time(event.effective_at),
                    event.kind.name_zh(),
                    event.kind.name(),
                    event.by,
                    event.height,
                    if event.counts() { "" } else { ", voided" }
                );
            }
            print_checkpoint(out, &history.checkpoint);
        }
        Verified::Holder(holder) => {
            say!(
                out,
                "verified: holder {} holds {} licence(s) on this chain, the whole list",
                holder.holder.to_text(),
                holder.licences.len()
            );
            for licence in &holder.licences {
                let standing = licence.standing_at(holder.checkpoint.time);
                say!(
                    out,
                    "  {}/{} issued by {} in region {}, status {}",
                    licence.type_code,
                    licence.number,
                    licence.issuer,
                    licence.region,
                    standing.status.name()
                );
            }
            print_checkpoint(out, &holder.checkpoint);
        }
        Verified::WitnessedCheckpoint {
            checkpoint,
            witnessed,
        } => {
            say!(out, "verified: signed checkpoint");
            print_checkpoint(out, checkpoint);
            print_witnessed(out, witnessed);
        }
    }
}

fn print_witnessed(out: &mut String, witnessed: &VerifiedWitnessed) {
    say!(
        out,
        "  witnessed: the log of {} transactions (root {}) extends the header's; cosigned by {} of the {} required: {}",
        witnessed.log_size,
        witnessed.log_root,
        witnessed.witnesses.len(),
        witnessed.required,
        witnessed.witnesses.join(", ")
    );
}

fn print_licence(out: &mut String, licence: &VerifiedLicence) {
    match &licence.licence {
        None => say!(
            out,
            "verified: licence {}/{} was never issued on this chain",
            licence.type_code,
            licence.number
        ),
        Some(record) => {
            say!(
                out,
                "verified: licence {}/{} held by {} ({}), issued by {} in region {}",
                licence.type_code,
                licence.number,
                record.holder_name,
                record.holder.to_text(),
                record.issuer,
                record.region
            );
        }
    }
    if let Some(verdict) = &licence.verdict {
        let region = match (&verdict.region, verdict.valid_in_region) {
            (Some(region), Some(true)) => format!(", usable in {region}"),
            (Some(region), _) => format!(", NOT usable in {region}"),
            (None, _) => String::new(),
        };
        say!(
            out,
            "  verdict at {} (UTC+8): {} (status {}){region}",
            format_time(verdict.at),
            if verdict.valid { "VALID" } else { "NOT VALID" },
            verdict.status.name()
        );
        for reason in &verdict.reasons {
            say!(
                out,
                "    [{}] {} · {}",
                if reason.ok { "ok" } else { "no" },
                reason.detail,
                reason.detail_zh
            );
        }
    }
    print_checkpoint(out, &licence.checkpoint);
    if let Some(witnessed) = &licence.witnessed {
        print_witnessed(out, witnessed);
    }
    match licence.age_ms {
        Some(age_ms) => say!(
            out,
            "  fresh: the header is {} s old by this machine's clock, within the chain's limit",
            age_ms / 1000
        ),
        None => say!(
            out,
            "  HISTORICAL check: the header's age was not checked; this says what the chain held \
             at {} (UTC+8), not that it holds now",
            format_time(licence.checkpoint.time)
        ),
    }
}

fn print_qr(out: &mut String, qr: &VerifiedQr) {
    say!(
        out,
        "verified: QR payload of licence {}/{} for {} ({}), signed by {} with key {} at height {}",
        qr.type_code,
        qr.number,
        qr.holder_name,
        qr.holder.to_text(),
        qr.issuer,
        qr.issuer_key,
        qr.issued_height
    );
    say!(
        out,
        "  issuance transaction {} · document hash {}",
        qr.transaction_id,
        qr.document_hash
    );
}
