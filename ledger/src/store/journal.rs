//! A write-back journal in front of an engine (docs/adr/0015-store-journal.md).
//!
//! A block's batch touches thousands of keys that land all over the engine's B-tree
//! (transaction ids, state-tree pages, holders), and a copy-on-write B-tree rewrites one page
//! per key: at 150,000 licences the commit was half of a block's cost. [`Journaled`] instead
//! appends each batch to the engine as **one value** under a journal key (adjacent bytes, one
//! durable write) and keeps the batch's writes in memory, where reads find them first. Once the
//! writes held pass a bound, they are folded into their own keys in one engine batch, which
//! also deletes the journal entries they came from; many blocks' keys then share each page
//! rewritten, and a key written by several blocks (the state tree's upper pages, the head) is
//! written once.
//!
//! Crash safety follows from the engine's: a batch is durable once its journal entry is (the
//! engine's write is atomic and synced); a fold is one atomic engine batch, so a crash leaves
//! either the journal entries or their folded writes, never neither. Opening replays whatever
//! journal entries are there, in order, into memory. Reads see exactly what a plain engine
//! would have: the writes held override the engine's keys, deletions included.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::sync::{Mutex, RwLock};

use super::StoreError;
use super::backend::{Backend, Entry, Write};

/// The first byte of every journal key. No store key starts with it (store keys start with an
/// ASCII letter), so journal entries sort after everything else and scans can stop at them.
const JOURNAL_PREFIX: &[u8] = b"\xffjournal";

/// Bookkeeping charged per held write on top of its key and value (map node, vectors).
const ENTRY_OVERHEAD: usize = 64;

/// Entries read per engine call while replaying the journal (each may be megabytes).
const REPLAY_PAGE: usize = 16;

/// When the writes held in memory are folded into the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JournalLimits {
    /// Fold once the writes held take this many bytes (keys, values and bookkeeping). It
    /// bounds the memory the journal holds, the time one fold takes and the bytes replayed
    /// on opening.
    pub fold_bytes: usize,
    /// Fold once this many batches are journaled, however small (heartbeat blocks), so that
    /// a fold's deletions and an opening's replay stay bounded in count too.
    pub fold_batches: u64,
}

impl Default for JournalLimits {
    fn default() -> Self {
        JournalLimits {
            fold_bytes: 32 * 1024 * 1024,
            fold_batches: 4096,
        }
    }
}

/// The writes journaled but not yet folded, newest value per key (`None`: deleted).
#[derive(Debug, Default)]
struct Held {
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    bytes: usize,
    /// The sequence number of the oldest journal entry still in the engine.
    first: u64,
    /// The sequence number the next journal entry gets.
    next: u64,
}

impl Held {
    fn insert(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        let key_length = key.len();
        let value_length = value.as_ref().map_or(0, Vec::len);
        match self.writes.insert(key, value) {
            // The key and its bookkeeping are already counted: only the value changes.
            Some(old) => self.bytes = self.bytes - old.map_or(0, |old| old.len()) + value_length,
            None => self.bytes += key_length + value_length + ENTRY_OVERHEAD,
        }
    }
}

/// An engine with a write-back journal in front of it (see the module's comment).
pub struct Journaled {
    inner: Box<dyn Backend>,
    held: RwLock<Held>,
    /// One writer at a time: journal sequence numbers and folds follow one another.
    writer: Mutex<()>,
    limits: JournalLimits,
}

impl std::fmt::Debug for Journaled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (writes, bytes) = self
            .held
            .read()
            .map(|held| (held.writes.len(), held.bytes))
            .unwrap_or((0, 0));
        f.debug_struct("Journaled")
            .field("inner", &self.inner)
            .field("held_writes", &writes)
            .field("held_bytes", &bytes)
            .field("limits", &self.limits)
            .finish()
    }
}

fn journal_key(sequence: u64) -> Vec<u8> {
    let mut key = JOURNAL_PREFIX.to_vec();
    key.extend_from_slice(&sequence.to_be_bytes());
    key
}

fn is_journal_key(key: &[u8]) -> bool {
    key.first() == JOURNAL_PREFIX.first()
}

/// A batch as one journal value: the count, then per write the key's length and bytes, a tag
/// (0 delete, 1 set) and, when set, the value's length and bytes; lengths are u32 big-endian.
fn encode(batch: &[Write]) -> Result<Vec<u8>, StoreError> {
    let too_big = || StoreError::Engine("a batch too large for the store's journal".into());
    let size: usize = batch
        .iter()
        .map(|(key, value)| 9 + key.len() + value.as_ref().map_or(0, Vec::len))
        .sum();
    let mut bytes = Vec::with_capacity(4 + size);
    let length = |length: usize| u32::try_from(length).map_err(|_| too_big());
    bytes.extend_from_slice(&length(batch.len())?.to_be_bytes());
    for (key, value) in batch {
        bytes.extend_from_slice(&length(key.len())?.to_be_bytes());
        bytes.extend_from_slice(key);
        match value {
            None => bytes.push(0),
            Some(value) => {
                bytes.push(1);
                bytes.extend_from_slice(&length(value.len())?.to_be_bytes());
                bytes.extend_from_slice(value);
            }
        }
    }
    Ok(bytes)
}

/// Reads a journal value back into its writes, or says what is wrong with it.
fn decode(mut bytes: &[u8]) -> Result<Vec<Write>, String> {
    fn take<'a>(bytes: &mut &'a [u8], count: usize) -> Result<&'a [u8], String> {
        if bytes.len() < count {
            return Err(format!(
                "truncated: {count} bytes needed, {} left",
                bytes.len()
            ));
        }
        let (head, tail) = bytes.split_at(count);
        *bytes = tail;
        Ok(head)
    }
    fn length(bytes: &mut &[u8]) -> Result<usize, String> {
        let mut word = [0u8; 4];
        word.copy_from_slice(take(bytes, 4)?);
        Ok(u32::from_be_bytes(word) as usize)
    }
    let count = length(&mut bytes)?;
    // Each write takes at least 5 bytes: a count beyond that is corrupt, not a reason to
    // reserve memory.
    if count > bytes.len() / 5 {
        return Err(format!(
            "{count} writes cannot fit in {} bytes",
            bytes.len()
        ));
    }
    let mut batch = Vec::with_capacity(count);
    for _ in 0..count {
        let key_length = length(&mut bytes)?;
        let key = take(&mut bytes, key_length)?.to_vec();
        let value = match take(&mut bytes, 1)?[0] {
            0 => None,
            1 => {
                let value_length = length(&mut bytes)?;
                Some(take(&mut bytes, value_length)?.to_vec())
            }
            tag => return Err(format!("unknown write tag {tag}")),
        };
        batch.push((key, value));
    }
    if !bytes.is_empty() {
        return Err(format!("{} bytes after the last write", bytes.len()));
    }
    Ok(batch)
}

impl Journaled {
    /// Puts a journal in front of `inner`, replaying the journal entries it holds.
    pub fn open(inner: Box<dyn Backend>, limits: JournalLimits) -> Result<Self, StoreError> {
        let mut held = Held::default();
        let mut expected: Option<u64> = None;
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = inner.scan(JOURNAL_PREFIX, after.as_deref(), REPLAY_PAGE)?;
            let full = page.len() == REPLAY_PAGE;
            for (key, value) in page {
                let sequence = key
                    .strip_prefix(JOURNAL_PREFIX)
                    .and_then(|tail| <[u8; 8]>::try_from(tail).ok())
                    .map(u64::from_be_bytes)
                    .ok_or_else(|| {
                        StoreError::Corrupt(format!("a journal key of the wrong form: {key:02x?}"))
                    })?;
                match expected {
                    None => held.first = sequence,
                    Some(expected) if expected != sequence => {
                        return Err(StoreError::Corrupt(format!(
                            "journal entry {expected} is missing (the next one is {sequence})"
                        )));
                    }
                    Some(_) => {}
                }
                let batch = decode(&value).map_err(|error| {
                    StoreError::Corrupt(format!("journal entry {sequence}: {error}"))
                })?;
                for (key, value) in batch {
                    held.insert(key, value);
                }
                expected = Some(sequence + 1);
                after = Some(key);
            }
            if !full {
                break;
            }
        }
        held.next = expected.unwrap_or(held.first);
        Ok(Journaled {
            inner,
            held: RwLock::new(held),
            writer: Mutex::new(()),
            limits,
        })
    }

    /// Bytes and journal entries held in memory, not yet folded.
    pub fn held(&self) -> Result<(usize, u64), StoreError> {
        let held = self.held.read().map_err(|_| StoreError::Poisoned)?;
        Ok((held.bytes, held.next - held.first))
    }

    /// Folds every write held into the engine's keys now, in one atomic batch that also
    /// deletes the journal entries (a crash keeps either these or the folded writes).
    pub fn fold(&self) -> Result<(), StoreError> {
        let _writer = self.writer.lock().map_err(|_| StoreError::Poisoned)?;
        self.fold_locked()
    }

    fn fold_locked(&self) -> Result<(), StoreError> {
        let next = {
            // Readers keep reading the held writes while the engine takes them: they are the
            // same values, so a read gives the same answer before, during and after. Only
            // this writer ever takes the lock for writing, after the fold.
            let held = self.held.read().map_err(|_| StoreError::Poisoned)?;
            if held.first == held.next {
                return Ok(());
            }
            let journal_keys: Vec<Vec<u8>> = (held.first..held.next).map(journal_key).collect();
            let batch: Vec<(&[u8], Option<&[u8]>)> = held
                .writes
                .iter()
                .map(|(key, value)| (key.as_slice(), value.as_deref()))
                .chain(journal_keys.iter().map(|key| (key.as_slice(), None)))
                .collect();
            self.inner.write_borrowed(&batch)?;
            held.next
        };
        let mut held = self.held.write().map_err(|_| StoreError::Poisoned)?;
        held.writes.clear();
        held.bytes = 0;
        held.first = next;
        Ok(())
    }
}

impl Backend for Journaled {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        // The read lock is held across the engine's read so that a fold cannot clear the
        // held value between the two lookups.
        let held = self.held.read().map_err(|_| StoreError::Poisoned)?;
        match held.writes.get(key) {
            Some(value) => Ok(value.clone()),
            None if is_journal_key(key) => Ok(None),
            None => self.inner.get(key),
        }
    }

    fn scan(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        let held = self.held.read().map_err(|_| StoreError::Poisoned)?;
        let start = match after {
            Some(after) => Bound::Excluded(after.to_vec()),
            None => Bound::Included(prefix.to_vec()),
        };
        let mut mine = held
            .writes
            .range((start, Bound::Unbounded))
            .take_while(|(key, _)| key.starts_with(prefix))
            .peekable();
        let mut out = Vec::new();
        let mut cursor: Option<Vec<u8>> = after.map(<[u8]>::to_vec);
        let mut page: VecDeque<Entry> = VecDeque::new();
        let mut engine_done = limit == 0;
        while out.len() < limit {
            if page.is_empty() && !engine_done {
                // Held deletions can hide engine entries, so the engine is read page by page
                // until enough entries survive or it has no more.
                let fetched = self.inner.scan(prefix, cursor.as_deref(), limit)?;
                engine_done = fetched.len() < limit;
                if let Some((key, _)) = fetched.last() {
                    cursor = Some(key.clone());
                }
                for entry in fetched {
                    if is_journal_key(&entry.0) {
                        // Journal entries sort after every store key: nothing further.
                        engine_done = true;
                        break;
                    }
                    page.push_back(entry);
                }
                continue;
            }
            let order = match (page.front(), mine.peek()) {
                (None, None) => break,
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some((engine_key, _)), Some((held_key, _))) => engine_key.cmp(held_key),
            };
            if order == std::cmp::Ordering::Less {
                if let Some(entry) = page.pop_front() {
                    out.push(entry);
                }
                continue;
            }
            if order == std::cmp::Ordering::Equal {
                // The held write replaces the engine's value (or deletes it).
                page.pop_front();
            }
            if let Some((key, Some(value))) = mine.next() {
                out.push((key.clone(), value.clone()));
            }
        }
        Ok(out)
    }

    fn write(&self, batch: Vec<Write>) -> Result<(), StoreError> {
        let _writer = self.writer.lock().map_err(|_| StoreError::Poisoned)?;
        if let Some((key, _)) = batch.iter().find(|(key, _)| is_journal_key(key)) {
            return Err(StoreError::Engine(format!(
                "key {key:02x?} is reserved for the store's journal"
            )));
        }
        let (bytes, sequence, first) = {
            let held = self.held.read().map_err(|_| StoreError::Poisoned)?;
            (held.bytes, held.next, held.first)
        };
        // Fold before journaling more, so that a failed fold fails this write and changes
        // nothing (the held writes stay journaled and are folded by a later write).
        if bytes >= self.limits.fold_bytes || sequence - first >= self.limits.fold_batches {
            self.fold_locked()?;
        }
        if batch.is_empty() {
            return Ok(());
        }
        let value = encode(&batch)?;
        self.inner
            .write(vec![(journal_key(sequence), Some(value))])?;
        // Durable: now readers may see it.
        let mut held = self.held.write().map_err(|_| StoreError::Poisoned)?;
        held.next = sequence + 1;
        for (key, value) in batch {
            held.insert(key, value);
        }
        Ok(())
    }

    fn disk_bytes(&self) -> Result<u64, StoreError> {
        self.inner.disk_bytes()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use proptest::prelude::*;

    use super::*;
    use crate::store::MemoryBackend;

    /// One engine that several journals can be opened on, one after the other, as a store
    /// directory is reopened.
    type SharedEngine = Arc<MemoryBackend>;

    const SMALL: JournalLimits = JournalLimits {
        fold_bytes: 400,
        fold_batches: 3,
    };

    fn journal_on(engine: &SharedEngine, limits: JournalLimits) -> Journaled {
        Journaled::open(Box::new(engine.clone()), limits).unwrap()
    }

    fn set(key: &str, value: &str) -> Write {
        (key.as_bytes().to_vec(), Some(value.as_bytes().to_vec()))
    }

    fn journal_entries(engine: &SharedEngine) -> usize {
        engine.scan(JOURNAL_PREFIX, None, usize::MAX).unwrap().len()
    }

    #[derive(Clone, Debug)]
    enum Op {
        Write(Vec<(Vec<u8>, Option<Vec<u8>>)>),
        Fold,
        Reopen,
    }

    fn key() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), Just(b'c')], 1..4)
    }

    fn op() -> impl Strategy<Value = Op> {
        let write = (
            key(),
            proptest::option::weighted(0.75, proptest::collection::vec(any::<u8>(), 0..40)),
        );
        prop_oneof![
            8 => proptest::collection::vec(write, 0..8).prop_map(Op::Write),
            1 => Just(Op::Fold),
            1 => Just(Op::Reopen),
        ]
    }

    fn all_keys() -> Vec<Vec<u8>> {
        let letters = [b'a', b'b', b'c'];
        let mut keys = vec![Vec::new()];
        for _ in 0..3 {
            let longer: Vec<Vec<u8>> = keys
                .iter()
                .filter(|key| key.len() < 3)
                .flat_map(|key| {
                    letters.iter().map(move |letter| {
                        let mut longer = key.clone();
                        longer.push(*letter);
                        longer
                    })
                })
                .collect();
            keys.extend(longer);
        }
        keys.sort();
        keys.dedup();
        keys
    }

    proptest! {
        /// Whatever the writes, folds and reopenings, the journaled engine answers every get
        /// and scan exactly as a plain engine given the same writes does.
        #[test]
        fn reads_match_a_plain_engine(ops in proptest::collection::vec(op(), 1..40)) {
            let model = MemoryBackend::new();
            let engine = SharedEngine::default();
            let mut journal = journal_on(&engine, SMALL);
            for op in ops {
                match op {
                    Op::Write(batch) => {
                        model.write(batch.clone()).unwrap();
                        journal.write(batch).unwrap();
                    }
                    Op::Fold => journal.fold().unwrap(),
                    Op::Reopen => {
                        drop(journal);
                        journal = journal_on(&engine, SMALL);
                    }
                }
                let (bytes, batches) = journal.held().unwrap();
                // One batch may overshoot the bound once; the next write folds it.
                prop_assert!(batches <= SMALL.fold_batches);
                prop_assert!(bytes <= SMALL.fold_bytes + 8 * (3 + 40 + ENTRY_OVERHEAD));
                for key in all_keys() {
                    prop_assert_eq!(journal.get(&key).unwrap(), model.get(&key).unwrap());
                    for limit in [0, 1, 2, 5, usize::MAX] {
                        prop_assert_eq!(
                            journal.scan(&key, None, limit).unwrap(),
                            model.scan(&key, None, limit).unwrap()
                        );
                        let prefix = &key[..key.len().saturating_sub(1)];
                        prop_assert_eq!(
                            journal.scan(prefix, Some(&key), limit).unwrap(),
                            model.scan(prefix, Some(&key), limit).unwrap()
                        );
                    }
                }
                prop_assert_eq!(
                    journal.scan(b"", None, usize::MAX).unwrap(),
                    model.scan(b"", None, usize::MAX).unwrap()
                );
            }
        }
    }

    #[test]
    fn a_batch_is_one_journal_entry_until_the_fold() {
        let engine = SharedEngine::default();
        let journal = journal_on(&engine, SMALL);
        journal.write(vec![set("a", "1"), set("b", "2")]).unwrap();
        journal.write(vec![set("a", "3")]).unwrap();
        assert_eq!(engine.get(b"a").unwrap(), None, "not folded yet");
        assert_eq!(journal_entries(&engine), 2);
        assert_eq!(journal.get(b"a").unwrap(), Some(b"3".to_vec()));
        journal.fold().unwrap();
        assert_eq!(journal_entries(&engine), 0);
        assert_eq!(engine.get(b"a").unwrap(), Some(b"3".to_vec()));
        assert_eq!(engine.get(b"b").unwrap(), Some(b"2".to_vec()));
        assert_eq!(journal.held().unwrap(), (0, 0));
    }

    #[test]
    fn the_limits_fold_before_the_next_write() {
        let engine = SharedEngine::default();
        let journal = journal_on(&engine, SMALL);
        for round in 0..3 {
            journal.write(vec![set(&format!("k{round}"), "v")]).unwrap();
        }
        assert_eq!(
            journal_entries(&engine),
            3,
            "three batches are within the bound"
        );
        journal.write(vec![set("k3", "v")]).unwrap();
        assert_eq!(
            journal_entries(&engine),
            1,
            "the fourth folded the first three"
        );
        assert_eq!(engine.get(b"k2").unwrap(), Some(b"v".to_vec()));
        let big = "x".repeat(SMALL.fold_bytes);
        journal.write(vec![set("big", &big)]).unwrap();
        journal.write(vec![set("after", "v")]).unwrap();
        assert_eq!(engine.get(b"big").unwrap(), Some(big.into_bytes()));
    }

    #[test]
    fn a_failed_write_changes_nothing() {
        let engine = SharedEngine::default();
        let journal = journal_on(&engine, SMALL);
        journal.write(vec![set("a", "1")]).unwrap();
        engine.fail_next_write();
        journal.write(vec![set("a", "2")]).unwrap_err();
        assert_eq!(journal.get(b"a").unwrap(), Some(b"1".to_vec()));
        drop(journal);
        let journal = journal_on(&engine, SMALL);
        assert_eq!(journal.get(b"a").unwrap(), Some(b"1".to_vec()));
    }

    #[test]
    fn a_failed_fold_fails_the_write_and_keeps_the_journal() {
        let engine = SharedEngine::default();
        let journal = journal_on(&engine, SMALL);
        for round in 0..3 {
            journal.write(vec![set("a", &round.to_string())]).unwrap();
        }
        // The next write folds first; that fold fails.
        engine.fail_next_write();
        journal.write(vec![set("b", "1")]).unwrap_err();
        assert_eq!(journal.get(b"b").unwrap(), None);
        assert_eq!(journal.get(b"a").unwrap(), Some(b"2".to_vec()));
        assert_eq!(journal_entries(&engine), 3);
        // The next one folds and lands.
        journal.write(vec![set("b", "1")]).unwrap();
        assert_eq!(engine.get(b"a").unwrap(), Some(b"2".to_vec()));
        assert_eq!(journal.get(b"b").unwrap(), Some(b"1".to_vec()));
    }

    #[test]
    fn journal_keys_are_reserved_and_hidden() {
        let engine = SharedEngine::default();
        let journal = journal_on(&engine, SMALL);
        journal.write(vec![set("a", "1")]).unwrap();
        assert_eq!(journal.scan(b"", None, 10).unwrap().len(), 1);
        assert_eq!(journal.get(&journal_key(0)).unwrap(), None);
        let error = journal
            .write(vec![(journal_key(7), Some(Vec::new()))])
            .unwrap_err();
        assert!(error.to_string().contains("reserved"), "{error}");
    }

    #[test]
    fn a_damaged_journal_is_reported_on_opening() {
        let engine = SharedEngine::default();
        let journal = journal_on(&engine, SMALL);
        journal.write(vec![set("a", "1")]).unwrap();
        journal.write(vec![set("b", "1")]).unwrap();
        drop(journal);
        let mut value = engine.get(&journal_key(1)).unwrap().unwrap();
        value.push(0);
        engine.write(vec![(journal_key(1), Some(value))]).unwrap();
        let error = Journaled::open(Box::new(engine.clone()), SMALL).unwrap_err();
        assert!(
            error.to_string().contains("journal entry 1: 1 bytes after"),
            "{error}"
        );
        engine.write(vec![(journal_key(1), None)]).unwrap();
        engine
            .write(vec![(
                journal_key(2),
                Some(encode(&[set("c", "1")]).unwrap()),
            )])
            .unwrap();
        let error = Journaled::open(Box::new(engine.clone()), SMALL).unwrap_err();
        assert!(
            error.to_string().contains("journal entry 1 is missing"),
            "{error}"
        );
    }

    #[test]
    fn decoding_refuses_what_encoding_cannot_give() {
        let good = encode(&[set("key", "value"), (b"gone".to_vec(), None)]).unwrap();
        assert_eq!(decode(&good).unwrap().len(), 2);
        for cut in 0..good.len() {
            assert!(decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut bad_tag = encode(&[(b"k".to_vec(), None)]).unwrap();
        *bad_tag.last_mut().unwrap() = 9;
        assert_eq!(decode(&bad_tag).unwrap_err(), "unknown write tag 9");
        assert!(decode(&u32::MAX.to_be_bytes()).is_err());
    }
}
