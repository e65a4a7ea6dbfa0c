//! Admission of submitted transactions in batches.
//!
//! Every submission through the API needs a signature check, and ed25519 checks cost about
//! half as much per signature in a batch. Submissions therefore queue (bounded) for one
//! admission thread, which takes whatever waits, up to [`ADMISSION_BATCH_MAX`], and admits it
//! with [`Shared::admit_batch`]: alone when the node is idle (no added delay), in batches
//! under load. Each submission still gets its own answer, decided as if it came alone.
//!
//! "Busy" means not admitted. A submission and the admission thread settle who has it with
//! one atomic claim: the thread takes a queued submission only if its submitter is still
//! waiting, and a submitter that stops waiting gives up only a submission not yet taken.
//! Once taken, the submitter waits (bounded) for the decision itself.
//!
//! Copies of one transaction submitted while the first is being decided do not queue: each
//! waits (bounded) for the first copy's outcome and answers with it, so that concurrent
//! identical submissions all hear the same thing. A copy that arrives after the outcome is
//! decided afresh (a refused transaction is checked again; an admitted one is found waiting
//! in the pool).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use hutong_core::hash::Hash32;
use hutong_core::tx::Transaction;

use crate::limits::{ADMISSION_BATCH_MAX, ADMISSION_QUEUE_MAX};
use crate::limits::{ADMISSION_COPIES_WAITING_MAX, ADMISSION_WAIT, COPY_WAIT, DECISION_WAIT};
use crate::shared::{AdmissionError, Shared};
use hutong_core::suite::Suite;

/// A queued submission's claim: still waiting for the admission thread...
const WAITING: u8 = 0;
/// ... taken by it (it will be decided and answered) ...
const TAKEN: u8 = 1;
/// ... or given up by its submitter before it was taken (it is never admitted).
const WITHDRAWN: u8 = 2;

struct Request {
    transaction: Transaction,
    reply: SyncSender<Result<Hash32, AdmissionError>>,
    claim: Arc<AtomicU8>,
}

impl Request {
    /// Takes the request for admission, unless its submitter has withdrawn it.
    fn take(&self) -> bool {
        self.claim
            .compare_exchange(WAITING, TAKEN, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

type Answer = SyncSender<Result<Hash32, AdmissionError>>;

/// The submitting side of the admission thread.
#[derive(Debug)]
pub struct Admitter {
    requests: SyncSender<Request>,
    /// The chain's suite, for the ids a submitter waits on.
    suite: Suite,
    /// Transactions being decided, by id, with the answers owed to the copies that arrived
    /// meanwhile. An entry lives from its first copy's submission to its outcome; there are
    /// at most as many as submitters waiting at once.
    in_flight: Mutex<HashMap<Hash32, Vec<Answer>>>,
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
        let (admitter, receiver) = Admitter::queue(shared.store.suite());
        let shared = Arc::downgrade(shared);
        std::thread::Builder::new()
            .name("admission".into())
            .spawn(move || while admit_next(&shared, &receiver) {})?;
        Ok(admitter)
    }

    /// The queue alone, without the thread that takes from it.
    fn queue(suite: Suite) -> (Admitter, Receiver<Request>) {
        let (requests, receiver) = sync_channel(ADMISSION_QUEUE_MAX);
        let admitter = Admitter {
            requests,
            suite,
            in_flight: Mutex::new(HashMap::new()),
        };
        (admitter, receiver)
    }

    /// Queues a transaction for admission and waits (bounded) for the answer; a copy of a
    /// transaction being decided waits for that decision instead.
    pub fn submit(&self, transaction: Transaction) -> Result<Hash32, AdmissionError> {
        self.submit_once(transaction, ADMISSION_WAIT, DECISION_WAIT)
    }

    fn submit_once(
        &self,
        transaction: Transaction,
        queue_wait: Duration,
        decision_wait: Duration,
    ) -> Result<Hash32, AdmissionError> {
        let id = transaction.id(self.suite);
        let copy = {
            let Ok(mut in_flight) = self.in_flight.lock() else {
                return Err(AdmissionError::ShuttingDown);
            };
            match in_flight.get_mut(&id) {
                Some(copies) if copies.len() >= ADMISSION_COPIES_WAITING_MAX => {
                    return Err(AdmissionError::QueueFull);
                }
                Some(copies) => {
                    let (answer, outcome) = sync_channel(1);
                    copies.push(answer);
                    Some(outcome)
                }
                None => {
                    in_flight.insert(id, Vec::new());
                    None
                }
            }
        };
        if let Some(outcome) = copy {
            // The first copy answers within its own bounded waits, which COPY_WAIT exceeds.
            return match outcome.recv_timeout(COPY_WAIT) {
                Ok(result) => result,
                Err(RecvTimeoutError::Disconnected) => Err(AdmissionError::ShuttingDown),
                Err(RecvTimeoutError::Timeout) => Err(AdmissionError::Undecided(id)),
            };
        }
        let result = self.submit_waiting(transaction, queue_wait, decision_wait);
        let copies = self
            .in_flight
            .lock()
            .ok()
            .and_then(|mut in_flight| in_flight.remove(&id))
            .unwrap_or_default();
        for copy in copies {
            // A copy that stopped waiting no longer needs its answer.
            let _ = copy.try_send(result.clone());
        }
        result
    }

    fn submit_waiting(
        &self,
        transaction: Transaction,
        queue_wait: Duration,
        decision_wait: Duration,
    ) -> Result<Hash32, AdmissionError> {
        let id = transaction.id(self.suite);
        let (reply, answer) = sync_channel(1);
        let claim = Arc::new(AtomicU8::new(WAITING));
        let request = Request {
            transaction,
            reply,
            claim: claim.clone(),
        };
        match self.requests.try_send(request) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(AdmissionError::QueueFull),
            Err(TrySendError::Disconnected(_)) => return Err(AdmissionError::ShuttingDown),
        }
        match answer.recv_timeout(queue_wait) {
            Ok(result) => return result,
            Err(RecvTimeoutError::Disconnected) => return Err(AdmissionError::ShuttingDown),
            Err(RecvTimeoutError::Timeout) => {}
        }
        if claim
            .compare_exchange(WAITING, WITHDRAWN, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            // Never taken, now never will be: "busy" is the whole truth.
            return Err(AdmissionError::QueueFull);
        }
        match answer.recv_timeout(decision_wait) {
            Ok(result) => result,
            Err(RecvTimeoutError::Disconnected) => Err(AdmissionError::ShuttingDown),
            Err(RecvTimeoutError::Timeout) => Err(AdmissionError::Undecided(id)),
        }
    }
}

/// Takes what waits in the queue (at least one request, at most a batch), admits the
/// requests still wanted and answers them. False once the queue or the node is gone.
fn admit_next(shared: &Weak<Shared>, receiver: &Receiver<Request>) -> bool {
    let Ok(first) = receiver.recv() else {
        return false;
    };
    let mut batch = vec![first];
    while batch.len() < ADMISSION_BATCH_MAX {
        match receiver.try_recv() {
            Ok(request) => batch.push(request),
            Err(_) => break,
        }
    }
    // The node is gone: dropping the batch answers its submitters "shutting down".
    let Some(shared) = shared.upgrade() else {
        return false;
    };
    let (transactions, replies): (Vec<_>, Vec<_>) = batch
        .into_iter()
        .filter(Request::take)
        .map(|request| (request.transaction, request.reply))
        .unzip();
    if transactions.is_empty() {
        return true;
    }
    let results = shared.admit_batch(transactions, true);
    drop(shared);
    for (reply, result) in replies.into_iter().zip(results) {
        // A submitter that stopped waiting no longer needs its answer.
        let _ = reply.send(result);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use hutong_core::testkit::Fixture;

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
            assert_eq!(
                thread.join().unwrap().unwrap(),
                transaction.id(hutong_core::testkit::SUITE)
            );
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
    fn a_submission_withdrawn_before_it_was_taken_is_never_admitted() {
        let mut fixture = Fixture::new();
        let (shared, _gossiped) = shared_for(&fixture);
        let (admitter, receiver) = Admitter::queue(hutong_core::testkit::SUITE);
        let transaction = fixture.issue_business_licence("qd-approval", "370200", 1);
        // Nothing takes from the queue: the submitter stops waiting and hears "busy".
        assert!(matches!(
            admitter.submit_waiting(
                transaction.clone(),
                Duration::from_millis(20),
                DECISION_WAIT
            ),
            Err(AdmissionError::QueueFull)
        ));
        // The admission thread comes to it afterwards and leaves it alone.
        let node = Arc::downgrade(&shared);
        assert!(admit_next(&node, &receiver));
        assert_eq!(shared.mempool.lock().unwrap().len(), 0);
        // Submitted again, it is admitted, not "already waiting".
        let taker = std::thread::spawn(move || admit_next(&node, &receiver));
        assert_eq!(
            admitter.submit(transaction.clone()).unwrap(),
            transaction.id(hutong_core::testkit::SUITE)
        );
        assert!(taker.join().unwrap());
        assert_eq!(shared.mempool.lock().unwrap().len(), 1);
    }

    #[test]
    fn a_submission_taken_before_its_wait_ends_gets_its_decision() {
        let mut fixture = Fixture::new();
        let (shared, _gossiped) = shared_for(&fixture);
        let (admitter, receiver) = Admitter::queue(hutong_core::testkit::SUITE);
        let admitter = Arc::new(admitter);
        let submit = |transaction: &Transaction, queue_wait_ms: u64, decision_wait_ms: u64| {
            let admitter = admitter.clone();
            let transaction = transaction.clone();
            std::thread::spawn(move || {
                admitter.submit_waiting(
                    transaction,
                    Duration::from_millis(queue_wait_ms),
                    Duration::from_millis(decision_wait_ms),
                )
            })
        };
        let first = fixture.issue_business_licence("qd-approval", "370200", 1);
        let submitter = submit(&first, 300, 10_000);
        let request = receiver.recv().unwrap();
        assert!(request.take());
        // The submitter's wait in the queue ends while its transaction is being decided: it
        // waits for the decision rather than answer "busy" for what is then admitted.
        std::thread::sleep(Duration::from_millis(600));
        let decision = shared.admit_batch(vec![request.transaction], true);
        request
            .reply
            .send(decision.into_iter().next().unwrap())
            .unwrap();
        assert_eq!(
            submitter.join().unwrap().unwrap(),
            first.id(hutong_core::testkit::SUITE)
        );
        assert_eq!(shared.mempool.lock().unwrap().len(), 1);

        // A decision that does not come within its bound is reported as undecided, with
        // the id to look up.
        let second = fixture.issue_business_licence("qd-approval", "370200", 2);
        let submitter = submit(&second, 10, 50);
        let request = receiver.recv().unwrap();
        assert!(request.take());
        let answer = submitter.join().unwrap();
        assert!(
            matches!(answer, Err(AdmissionError::Undecided(id)) if id == second.id(hutong_core::testkit::SUITE)),
            "{answer:?}"
        );
        drop(request);
    }

    /// Waits (bounded) until `count` copies of `id` wait for its first copy.
    fn wait_for_copies(admitter: &Admitter, id: &Hash32, count: usize) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let waiting = admitter.in_flight.lock().unwrap().get(id).map(Vec::len);
            if waiting == Some(count) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{waiting:?} copies wait"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn copies_of_a_refused_transaction_all_hear_the_refusal_and_are_decided_afresh_after_it() {
        let mut fixture = Fixture::new();
        let (shared, _gossiped) = shared_for(&fixture);
        let (admitter, receiver) = Admitter::queue(hutong_core::testkit::SUITE);
        let admitter = Arc::new(admitter);
        let mut forged = fixture.issue_business_licence("qd-approval", "370200", 1);
        forged.signatures[0].signature = hutong_core::crypto::Signature([7; 64]);
        let id = forged.id(hutong_core::testkit::SUITE);
        let submitters: Vec<_> = (0..50)
            .map(|_| {
                let admitter = admitter.clone();
                let forged = forged.clone();
                std::thread::spawn(move || admitter.submit(forged))
            })
            .collect();
        // One copy queues; the other 49 wait for its outcome without queueing.
        wait_for_copies(&admitter, &id, 49);
        let node = Arc::downgrade(&shared);
        assert!(admit_next(&node, &receiver));
        assert!(receiver.try_recv().is_err(), "only the first copy queued");
        for submitter in submitters {
            let answer = submitter.join().unwrap();
            assert!(
                matches!(&answer, Err(AdmissionError::Rule(rule)) if rule.code() == "bad_signature"),
                "{answer:?}"
            );
        }
        assert!(admitter.in_flight.lock().unwrap().is_empty());
        // After the refusal a copy is decided afresh: refused again for its signature, not
        // "already waiting".
        let taker = std::thread::spawn(move || admit_next(&node, &receiver));
        let again = admitter.submit(forged);
        assert!(
            matches!(&again, Err(AdmissionError::Rule(rule)) if rule.code() == "bad_signature"),
            "{again:?}"
        );
        assert!(taker.join().unwrap());
        assert!(shared.mempool.lock().unwrap().is_empty());
    }

    #[test]
    fn copies_of_an_admitted_transaction_all_hear_it_admitted() {
        let mut fixture = Fixture::new();
        let (shared, _gossiped) = shared_for(&fixture);
        let (admitter, receiver) = Admitter::queue(hutong_core::testkit::SUITE);
        let admitter = Arc::new(admitter);
        let good = fixture.issue_business_licence("qd-approval", "370200", 1);
        let id = good.id(hutong_core::testkit::SUITE);
        let submitters: Vec<_> = (0..20)
            .map(|_| {
                let admitter = admitter.clone();
                let good = good.clone();
                std::thread::spawn(move || admitter.submit(good))
            })
            .collect();
        wait_for_copies(&admitter, &id, 19);
        assert!(admit_next(&Arc::downgrade(&shared), &receiver));
        for submitter in submitters {
            assert_eq!(submitter.join().unwrap().unwrap(), id);
        }
        assert_eq!(shared.mempool.lock().unwrap().len(), 1);
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
