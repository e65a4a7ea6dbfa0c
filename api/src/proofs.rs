//! Building proofs from the store: signed checkpoints (with the validator-set hand-overs since
//! genesis), licence proof bundles and transaction inclusion proofs. What they contain and how
//! they are checked is in [`hutong_verify`].

use hutong_core::block::BlockHeader;
use hutong_core::hash::Hash32;
use hutong_core::ident::RegionCode;
use hutong_core::multiproof::SmtMultiProof;
use hutong_core::records::{Holder, LicenceNumber, Record, RecordKey, TypeCode};
use hutong_core::smt::SmtProof;
use hutong_core::tx::TxBody;
use hutong_core::verdict;
use hutong_ledger::store::{StateProof, Store, StoreError};

use crate::limits::CONSISTENT_READ_ATTEMPTS;
use crate::problem::ApiError;
use crate::state::ApiState;
use hutong_verify::{
    self, BUNDLE_FORMAT, Checkpoint, HOLDER_PROOF_FORMAT, HolderProof, LoggedTransaction,
    ProofBundle, ProvedRecord, TRANSACTION_PROOF_FORMAT, TransactionProof, ValidatorChange,
};

fn corrupt(message: String) -> ApiError {
    ApiError::internal(StoreError::Corrupt(message))
}

/// The signed checkpoint of `header` (a header of the store's chain), from genesis.
pub(crate) fn checkpoint(state: &ApiState, header: BlockHeader) -> Result<Checkpoint, ApiError> {
    checkpoint_from(state, header, None)
}

/// The signed checkpoint of `header`, starting from the verifier's trusted checkpoint at
/// `trusted_height` when one is named: only the hand-overs after it are carried. The caller
/// has checked that `trusted_height` is at most the header's height.
pub(crate) fn checkpoint_from(
    state: &ApiState,
    header: BlockHeader,
    trusted_height: Option<u64>,
) -> Result<Checkpoint, ApiError> {
    let store = state.store();
    let certificate = if header.height == 0 {
        None
    } else {
        let block = store
            .block(header.height)?
            .ok_or_else(|| corrupt(format!("block {} is missing", header.height)))?;
        Some(block.certificate)
    };
    let genesis = store.genesis()?;
    let mut validators = hutong_verify::genesis_validators(&genesis);
    let mut validator_changes = Vec::new();
    let plan: Vec<(u64, Vec<(u64, hutong_core::tx::Transaction)>)> = {
        let mut index = state
            .inner
            .changes
            .lock()
            .map_err(|_| ApiError::internal("the validator change index lock is poisoned"))?;
        index.update(store, header.height)?;
        index
            .change_heights
            .iter()
            .filter(|height| **height <= header.height)
            .map(|height| {
                let transactions = index
                    .transactions
                    .get(height)
                    .map(|by_index| {
                        by_index
                            .iter()
                            .map(|(log_index, transaction)| (*log_index, transaction.clone()))
                            .collect()
                    })
                    .unwrap_or_default();
                (*height, transactions)
            })
            .collect()
    };
    for (effective_height, transactions) in plan {
        let previous = store
            .block(effective_height - 1)?
            .ok_or_else(|| corrupt(format!("block {} is missing", effective_height - 1)))?;
        let mut logged = Vec::with_capacity(transactions.len());
        for (log_index, transaction) in transactions {
            let inclusion = store.log_inclusion(log_index, previous.header.log_size)?;
            logged.push(LoggedTransaction {
                transaction,
                inclusion,
            });
        }
        for entry in &logged {
            if let TxBody::ChangeValidators { changes, .. } = &entry.transaction.payload.body {
                for change in changes {
                    hutong_core::records::NodeRegistry::apply_change(&mut validators, change);
                }
            }
        }
        validators.retain(|node| node.power > 0);
        let expected = store
            .header(effective_height)?
            .ok_or_else(|| corrupt(format!("header {effective_height} is missing")))?
            .validators_hash;
        if hutong_verify::validators_hash(store.suite(), &validators) != expected {
            return Err(ApiError::internal(format!(
                "the validator set that took effect at height {effective_height} cannot be \
                 connected to genesis from the governors' ChangeValidators records"
            )));
        }
        if trusted_height.is_some_and(|trusted| effective_height <= trusted) {
            continue;
        }
        validator_changes.push(ValidatorChange {
            effective_height,
            header: previous.header,
            certificate: previous.certificate,
            transactions: logged,
        });
    }
    if hutong_verify::validators_hash(store.suite(), &validators) != header.validators_hash {
        return Err(ApiError::internal(format!(
            "the validator set of height {} does not match its header",
            header.height
        )));
    }
    Ok(Checkpoint {
        header,
        certificate,
        validators,
        validator_changes,
        trusted_height,
    })
}

/// The proved records of `proofs` (single proofs against one state root, the first kept of a
/// key read twice) and their one multiproof (ADR 0041).
fn proved_records(
    store: &Store,
    proofs: Vec<StateProof>,
) -> Result<(Vec<ProvedRecord>, SmtMultiProof), ApiError> {
    let mut seen = std::collections::BTreeSet::new();
    let proofs: Vec<StateProof> = proofs
        .into_iter()
        .filter(|proof| seen.insert(proof.key.clone()))
        .collect();
    let records: Vec<ProvedRecord> = proofs
        .iter()
        .map(|proof| ProvedRecord::new(proof.key.clone(), proof.record.clone()))
        .collect();
    let singles: Vec<&SmtProof> = proofs.iter().map(|proof| &proof.proof).collect();
    let state_proof = hutong_verify::multiproof_of(store.suite(), &records, &singles)
        .map_err(|error| corrupt(format!("the state proofs do not combine: {error}")))?;
    Ok((records, state_proof))
}

/// Proves every key in `keys` against one state root, retrying when a commit lands between
/// two reads. Returns the proofs and the header they are against.
fn prove_together(
    store: &Store,
    first: &RecordKey,
    more: impl Fn(&Option<Record>) -> Result<Vec<RecordKey>, ApiError>,
) -> Result<(Vec<StateProof>, BlockHeader), ApiError> {
    for _ in 0..CONSISTENT_READ_ATTEMPTS {
        let leading = store.prove(first)?;
        let height = leading.header.height;
        let keys = more(&leading.record)?;
        let mut proofs = Vec::with_capacity(1 + keys.len());
        let header = leading.header.clone();
        proofs.push(leading);
        let mut consistent = true;
        for key in keys {
            let proof = store.prove(&key)?;
            if proof.header.height != height {
                consistent = false;
                break;
            }
            proofs.push(proof);
        }
        if consistent {
            return Ok((proofs, header));
        }
    }
    Err(ApiError::new(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "state_moving",
        "blocks committed faster than the proof could be read; retry",
    )
    .retry_after(1))
}

/// The proof bundle of licence `(type_code, number)`: its record or absence, the records its
/// verdict reads (issuer, grant, open objections and, for use in `region`, the recognition
/// sets of the regions covering it with their recognitions about the licence), and the signed
/// checkpoint.
pub(crate) fn bundle(
    state: &ApiState,
    type_code: &TypeCode,
    number: &LicenceNumber,
    region: Option<&RegionCode>,
    trusted_height: Option<u64>,
) -> Result<ProofBundle, ApiError> {
    let store = state.store();
    let licence_key = RecordKey::Licence(type_code.clone(), number.clone());
    let (proofs, header) = prove_together(store, &licence_key, |record| {
        let Some(Record::Licence(licence)) = record else {
            return Ok(Vec::new());
        };
        // Which records the verdict reads is the core's to say. The bundle proves those that
        // exist, every open objection (the licence lists them, at most
        // OPEN_OBJECTIONS_PER_LICENCE_MAX), and for a region that needs a recognition the
        // whole recognition set of each region covering it, present or absent, with every
        // recognition it lists about the licence (ADR 0039): never a chosen few.
        let mut keys = Vec::new();
        for key in verdict::input_keys(licence) {
            match key {
                RecordKey::Authority(_) | RecordKey::Objection(_) => keys.push(key),
                _ => {
                    if store.record(&key)?.is_some() {
                        keys.push(key);
                    }
                }
            }
        }
        let mut sets = Vec::new();
        for key in verdict::recognition_set_keys(licence, region) {
            if let Some(Record::RecognitionSet(set)) = store.record(&key)? {
                sets.push(set);
            }
            keys.push(key);
        }
        keys.extend(
            verdict::recognitions_in_sets(licence, &sets)
                .into_iter()
                .map(RecordKey::Recognition),
        );
        Ok(keys)
    })?;
    check_trusted_height(trusted_height, &header)?;
    let checkpoint = checkpoint_from(state, header, trusted_height)?;
    let (records, state_proof) = proved_records(store, proofs)?;
    Ok(ProofBundle {
        format: BUNDLE_FORMAT.into(),
        chain_id: store.chain_id().to_owned(),
        type_code: type_code.clone(),
        number: number.clone(),
        region: region.cloned(),
        records,
        state_proof,
        checkpoint,
        witnessed: None,
    })
}

/// A `trusted_height` above the proof's own height names no checkpoint it can start from.
fn check_trusted_height(trusted_height: Option<u64>, header: &BlockHeader) -> Result<(), ApiError> {
    if let Some(trusted) = trusted_height.filter(|trusted| *trusted > header.height) {
        return Err(ApiError::bad_request(
            "trusted_height_out_of_range",
            format!(
                "trusted_height {trusted} is above the height of the proof, {}",
                header.height
            ),
        ));
    }
    Ok(())
}

/// The holder proof of `holder` (一照通查, ADR 0039): the proof of its licence list (or of its
/// absence), of every licence the list names, and the signed checkpoint.
pub(crate) fn holder_proof(
    state: &ApiState,
    holder: &Holder,
    trusted_height: Option<u64>,
) -> Result<HolderProof, ApiError> {
    let store = state.store();
    let list_key = RecordKey::HolderLicences(holder.clone());
    let (proofs, header) = prove_together(store, &list_key, |record| {
        Ok(match record {
            Some(Record::HolderLicences(list)) => list
                .licences
                .iter()
                .map(|(type_code, number)| RecordKey::Licence(type_code.clone(), number.clone()))
                .collect(),
            _ => Vec::new(),
        })
    })?;
    check_trusted_height(trusted_height, &header)?;
    let checkpoint = checkpoint_from(state, header, trusted_height)?;
    let (records, state_proof) = proved_records(store, proofs)?;
    Ok(HolderProof {
        format: HOLDER_PROOF_FORMAT.into(),
        chain_id: store.chain_id().to_owned(),
        holder: holder.clone(),
        records,
        state_proof,
        checkpoint,
    })
}

/// The proof of committed transaction `id` and its place (the signed checkpoint of its block,
/// the header before it, its inclusion under the block's `tx_root` and in the log at the
/// block's size), or `None` when it is not committed.
pub(crate) fn transaction_proof(
    state: &ApiState,
    id: &Hash32,
) -> Result<Option<TransactionProof>, ApiError> {
    let store = state.store();
    let Some((transaction, location)) = store.transaction(id)? else {
        return Ok(None);
    };
    let block = store
        .block(location.height)?
        .ok_or_else(|| corrupt(format!("block {} is missing", location.height)))?;
    let previous_header = store
        .header(location.height - 1)?
        .ok_or_else(|| corrupt(format!("header {} is missing", location.height - 1)))?;
    let bytes: Vec<Vec<u8>> = block
        .transactions
        .iter()
        .map(hutong_core::tx::Transaction::to_bytes)
        .collect();
    let block_inclusion =
        hutong_core::block::tx_inclusion(store.suite(), &bytes, u64::from(location.index))
            .map_err(|error| {
                corrupt(format!(
                    "transaction {id} is not at index {} of block {}: {error}",
                    location.index, location.height
                ))
            })?;
    let inclusion = store.log_inclusion(location.log_index, block.header.log_size)?;
    let checkpoint = checkpoint(state, block.header)?;
    Ok(Some(TransactionProof {
        format: TRANSACTION_PROOF_FORMAT.into(),
        transaction,
        location,
        previous_header,
        block_inclusion,
        inclusion,
        checkpoint,
    }))
}

/// The accepted witnesses' cosignatures of the log of `log_size` the node holds.
pub(crate) fn cosignatures_at(
    state: &ApiState,
    log_size: u64,
) -> Result<Vec<hutong_verify::witness::Cosignature>, ApiError> {
    Ok(state
        .inner
        .cosignatures
        .lock()
        .map_err(|_| ApiError::internal("the cosignature pool's lock is poisoned"))?
        .at(log_size))
}

/// The `witnessed` section of a bundle whose header's log has `header_log_size` leaves (ADR
/// 0038): the largest log size at or above it, up to the head's, that at least `required`
/// accepted witnesses cosigned, their cosignatures, and the consistency proof from the
/// header's log to it. `None` while no such size has been cosigned.
pub(crate) fn witnessed(
    state: &ApiState,
    header_log_size: u64,
    required: usize,
) -> Result<Option<hutong_verify::witness::Witnessed>, ApiError> {
    use hutong_verify::witness::{CheckpointNote, Witnessed, origin};
    let store = state.store();
    let head_size = store.head()?.header.log_size;
    let found = state
        .inner
        .cosignatures
        .lock()
        .map_err(|_| ApiError::internal("the cosignature pool's lock is poisoned"))?
        .witnessed(header_log_size, head_size, required);
    let Some((log_size, mut cosignatures)) = found else {
        return Ok(None);
    };
    cosignatures.truncate(hutong_verify::limits::COSIGNATURES_MAX);
    Ok(Some(Witnessed {
        note: CheckpointNote {
            origin: origin(store.chain_id()),
            log_size,
            log_root: store.log_root(log_size)?,
        },
        cosignatures,
        consistency: store.log_consistency(header_log_size, log_size)?,
    }))
}
