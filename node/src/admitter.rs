//! Admission of submitted transactions in batches.
//!
//! Every submission through the API needs a signature check, and ed25519 checks cost about
//! half as much per signature in a batch. Submissions therefore queue (bounded) for one
//! admission thread, which takes whatever waits, up to [`ADMISSION_BATCH_MAX`], and admits it
//! with [`Shared::admit_batch`]: alone when the node is idle (no added delay), in batches
//! under load. Each submission still gets its own answer, decided as if it came alone.

use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Weak};
use std::time::Duration;

use hutong_ledger::hash::Hash32;
use hutong_ledger::tx::Transaction;

use crate::shared::{ADMISSION_BATCH_MAX, AdmissionError, Shared};

/// Most submissions waiting for the admission thread; beyond it a submission is answered
/// "busy".
pub const ADMISSION_QUEUE_MAX: usize = 4096;
/// How long a submission waits for its admission before it is answered "busy".
const ADMISSION_WAIT: Duration = Duration::from_secs(10);

struct Request {
    transaction: Transaction,
    reply: SyncSender<Result<Hash32, AdmissionError>>,
}

/// The submitting side of the admission thread.
#[derive(Debug)]
pub struct Admitter {
    requests: SyncSender<Request>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Request")
    }
}

impl Admitter {
    /// Starts the admission thread. It holds the node's state only while it admits a batch,
    /// so it never keeps the store open past the node's shutdown; it ends when the last
    /// [`Admitter`] is dropped or the node's state is gone.
    pub fn start(shared: &Arc<Shared>) -> std::io::Result<Admitter> {
        let (requests, receiver) = sync_channel(ADMISSION_QUEUE_MAX);
        let shared = Arc::downgrade(shared);
        std::thread::Builder::new()
            .name("admission".into())
            .spawn(move || admit_queued(&shared, &receiver))?;
        Ok(Admitter { requests })
    }

    /// Queues a transaction for admission and waits (bounded) for the answer.
    pub fn submit(&self, transaction: Transaction) -> Result<Hash32, AdmissionError> {
        let (reply, answer) = sync_channel(1);
        match self.requests.try_send(Request { transaction, reply }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(AdmissionError::QueueFull),
            Err(TrySendError::Disconnected(_)) => return Err(AdmissionError::ShuttingDown),
        }
        match answer.recv_timeout(ADMISSION_WAIT) {
            Ok(result) => result,
            Err(RecvTimeoutError::Timeout) => Err(AdmissionError::QueueFull),
            Err(RecvTimeoutError::Disconnected) => Err(AdmissionError::ShuttingDown),
        }
    }
}

fn admit_queued(shared: &Weak<Shared>, receiver: &Receiver<Request>) {
    while let Ok(first) = receiver.recv() {
        let mut batch = vec![first];
        while batch.len() < ADMISSION_BATCH_MAX {
            match receiver.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        // The node is gone: dropping the batch answers its submitters "shutting down".
        let Some(shared) = shared.upgrade() else {
            break;
        };
        let (transactions, replies): (Vec<_>, Vec<_>) = batch
            .into_iter()
            .map(|request| (request.transaction, request.reply))
            .unzip();
        let results = shared.admit_batch(transactions, true);
        drop(shared);
        for (reply, result) in replies.into_iter().zip(results) {
            // A submitter that stopped waiting no longer needs its answer.
            let _ = reply.send(result);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hutong_ledger::testkit::Fixture;

    use crate::shared::tests::shared_for;

    #[test]
    fn concurrent_submissions_each_get_their_own_answer() {
        let mut fixture = Fixture::new();
        let (shared, _gossiped) = shared_for(&fixture);
        let admitter = Arc::new(Admitter::start(&shared).unwrap());
        let transactions: Vec<Transaction> = (1..=64)
            .map(|number| fixture.issue_business_licence("qd-approval", "370200", number))
            .collect();
        let threads: Vec<_> = transactions
            .iter()
            .cloned()
            .map(|transaction| {
                let admitter = admitter.clone();
                std::thread::spawn(move || admitter.submit(transaction))
            })
            .collect();
        for (thread, transaction) in threads.into_iter().zip(&transactions) {
            assert_eq!(thread.join().unwrap().unwrap(), transaction.id());
        }
        // The same again: each is told it is already waiting.
        for transaction in &transactions[..4] {
            assert!(matches!(
                admitter.submit(transaction.clone()),
                Err(AdmissionError::Pool(crate::mempool::AdmitError::Duplicate(
                    _
                )))
            ));
        }
        assert_eq!(shared.mempool.lock().unwrap().len(), 64);
    }

    #[test]
    fn submissions_after_the_node_is_gone_are_refused() {
        let mut fixture = Fixture::new();
        let (shared, _gossiped) = shared_for(&fixture);
        let admitter = Admitter::start(&shared).unwrap();
        drop(shared);
        let transaction = fixture.issue_business_licence("qd-approval", "370200", 1);
        assert!(matches!(
            admitter.submit(transaction),
            Err(AdmissionError::ShuttingDown)
        ));
    }
}
