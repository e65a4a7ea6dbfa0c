//! A write-back journal in front of an engine (docs/adr/0015-store-journal.md).
//!
//! A block's batch touches thousands of keys that land all over the engine's B-tree
//! (transaction ids, state-tree pages, holders), and a copy-on-write B-tree pays for every
//! key at the commit of every block: at 150,000 licences the commit was half of a block's
//! cost. [`Journaled`] instead appends each batch to the engine as **one value** under a
//! journal key (adjacent bytes, one durable write) and keeps the batch's writes in memory,
//! where reads find them first.
//!
//! The writes held are moved into their own keys by a **sweep**: once they pass a bound, the
//! next `sweep_steps` writes each fold the next slice of them in key order, in the same
//! engine batch as their own journal entry. A slice's keys have gathered over many blocks,
//! so they share the engine's pages, and a key written by several blocks (the state tree's
//! upper pages, the head) is written once; no single commit carries the whole fold. When a
//! sweep reaches the end of the keys, the journal entries from before it began are deleted
//! in that same batch: each of their writes is then in the engine or replaced by a newer one
//! still journaled.
//!
//! Crash safety follows from the engine's: every write is one atomic, synced engine batch
//! (journal entry, folded slice, deleted entries together), so a batch is durable once its
//! journal entry is, and the folded writes and the journal entries they came from are never
//! both gone. Opening replays the journal entries there, in order, into memory; a write
//! already folded is replayed with the value the engine has or a newer one. Reads see
//! exactly what a plain engine would have: the writes held override the engine's keys,
//! deletions included.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::path::Path;
use std::sync::{Mutex, RwLock};

use super::backend::{
    Backend, Durability, Engine, Entry, PageCheck, StoreError, Write, prefix_range,
};
use crate::limits::{
    JOURNAL_HELD_BYTES_MAX, JOURNAL_SWEEP_BATCHES, JOURNAL_SWEEP_BYTES, JOURNAL_SWEEP_STEPS,
    REPLAY_PAGE,
};

/// The first byte of every journal key. No store key starts with it (store keys start with an
/// ASCII letter), so journal entries sort after everything else and scans can stop at them.
const JOURNAL_PREFIX: &[u8] = b"\xffjournal";

/// Bookkeeping charged per held write on top of its key and value (map node, vectors).
const ENTRY_OVERHEAD: usize = 64;

/// When and how fast the writes held in memory are folded into the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JournalLimits {
    /// A sweep begins once the writes held take this many bytes (keys, values and
    /// bookkeeping): the more a sweep gathers, the more keys share each page it rewrites.
    pub sweep_bytes: usize,
    /// ... or once this many batches are journaled, however small (heartbeat blocks), so
    /// that the journal's entries stay bounded in count too.
    pub sweep_batches: u64,
    /// The writes a sweep takes to fold everything held: each folds about that fraction of
    /// what is ahead of it, so a commit carries a slice of the fold, never all of it.
    pub sweep_steps: u32,
    /// Past this many bytes held (blocks far larger than usual), a write folds everything
    /// ahead of the sweep at once: the bound on the journal's memory.
    pub held_bytes_max: usize,
}

impl Default for JournalLimits {
    fn default() -> Self {
        JournalLimits {
            sweep_bytes: JOURNAL_SWEEP_BYTES,
            sweep_batches: JOURNAL_SWEEP_BATCHES,
            sweep_steps: JOURNAL_SWEEP_STEPS,
            held_bytes_max: JOURNAL_HELD_BYTES_MAX,
        }
    }
}

/// The writes journaled but not yet folded, newest value per key (`None`: deleted), and
/// where the sweep is.
#[derive(Debug, Default)]
struct Held {
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    bytes: usize,
    /// The sequence number of the oldest journal entry still in the engine.
    first: u64,
    /// The sequence number the next journal entry gets.
    next: u64,
    /// The sweep under way: the last key it folded (`None`: not begun, or at the start).
    cursor: Option<Vec<u8>>,
    /// Keys held beyond the cursor: what the sweep has still to fold.
    ahead: usize,
    /// Steps the sweep under way has taken (0: none under way).
    step: u32,
    /// Journal entries below this one are deleted when the sweep under way ends: when it
    /// began, every write they made was held (or already folded).
    sweep_from: u64,
}

impl Held {
    fn insert(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        let key_length = key.len();
        let value_length = value.as_ref().map_or(0, Vec::len);
        let beyond_cursor = self
            .cursor
            .as_ref()
            .is_none_or(|cursor| key.as_slice() > cursor.as_slice());
        match self.writes.insert(key, value) {
            // The key and its bookkeeping are already counted: only the value changes.
            Some(old) => self.bytes = self.bytes - old.map_or(0, |old| old.len()) + value_length,
            None => {
                self.bytes += key_length + value_length + ENTRY_OVERHEAD;
                if beyond_cursor {
                    self.ahead += 1;
                }
            }
        }
    }

    /// Starts a sweep over everything held now.
    fn begin_sweep(&mut self) {
        self.cursor = None;
        self.ahead = self.writes.len();
        self.step = 0;
        self.sweep_from = self.next;
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

impl Engine {
    /// Opens (or creates) this engine's database in `directory`, with the store's write-back
    /// journal (this module's [`Journaled`]) in front of it, as a store runs it.
    pub fn open(
        self,
        directory: &Path,
        durability: Durability,
    ) -> Result<Box<dyn Backend>, StoreError> {
        self.open_checked(directory, durability, PageCheck::None)
    }

    /// [`Engine::open`] with the engine's own check of its files first ([`PageCheck`]).
    pub fn open_checked(
        self,
        directory: &Path,
        durability: Durability,
        check: PageCheck,
    ) -> Result<Box<dyn Backend>, StoreError> {
        let inner = self.open_direct_checked(directory, durability, check)?;
        Ok(Box::new(Journaled::open(inner, JournalLimits::default())?))
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

/// [`encode`], for the fuzz targets (`fuzz/`) alone: not part of the store's interface, and free
/// to change with the journal's format.
#[doc(hidden)]
pub fn encode_entry_for_fuzzing(batch: &[Write]) -> Result<Vec<u8>, StoreError> {
    encode(batch)
}

/// [`decode`], for the fuzz targets (`fuzz/`) alone, as [`encode_entry_for_fuzzing`].
#[doc(hidden)]
pub fn decode_entry_for_fuzzing(bytes: &[u8]) -> Result<Vec<Write>, String> {
    decode(bytes)
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
        held.begin_sweep();
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
    /// deletes every journal entry (a crash keeps either these or the folded writes).
    pub fn fold(&self) -> Result<(), StoreError> {
        let _writer = self.writer.lock().map_err(|_| StoreError::Poisoned)?;
        let next = {
            // Readers keep reading the held writes while the engine takes them: they are the
            // same values, so a read gives the same answer before, during and after. Only
            // the writer ever takes the lock for writing, afterwards.
            let held = self.held.read().map_err(|_| StoreError::Poisoned)?;
            let journal_keys: Vec<Vec<u8>> = (held.first..held.next).map(journal_key).collect();
            let batch: Vec<(&[u8], Option<&[u8]>)> = held
                .writes
                .iter()
                .map(|(key, value)| (key.as_slice(), value.as_deref()))
                .chain(journal_keys.iter().map(|key| (key.as_slice(), None)))
                .collect();
            if !batch.is_empty() {
                self.inner.write_borrowed(&batch)?;
            }
            held.next
        };
        let mut held = self.held.write().map_err(|_| StoreError::Poisoned)?;
        held.writes.clear();
        held.bytes = 0;
        held.first = next;
        held.begin_sweep();
        Ok(())
    }
}

impl Backend for Journaled {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        // The read lock is held across the engine's read so that a fold cannot drop the
        // held value between the two lookups.
        let held = self.held.read().map_err(|_| StoreError::Poisoned)?;
        match held.writes.get(key) {
            Some(value) => Ok(value.clone()),
            None if is_journal_key(key) => Ok(None),
            None => self.inner.get(key),
        }
    }

    /// A scan of the engine with the held writes merged in (they win, deletions included).
    fn scan(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        let held = self.held.read().map_err(|_| StoreError::Poisoned)?;
        let mut mine = prefix_range(&held.writes, prefix, after).peekable();
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
        let entry = if batch.is_empty() {
            None
        } else {
            Some(encode(&batch)?)
        };
        let step = {
            // As in `fold`: readers go on reading the held writes meanwhile.
            let held = self.held.read().map_err(|_| StoreError::Poisoned)?;
            let step = self.plan_step(&held);
            let start = match &held.cursor {
                Some(cursor) => Bound::Excluded(cursor.clone()),
                None => Bound::Unbounded,
            };
            let folded: Vec<(&[u8], Option<&[u8]>)> = held
                .writes
                .range::<Vec<u8>, _>((start, Bound::Unbounded))
                .take(step.fold)
                .map(|(key, value)| (key.as_slice(), value.as_deref()))
                .collect();
            let deleted: Vec<Vec<u8>> = if step.ends_sweep {
                (held.first..held.sweep_from).map(journal_key).collect()
            } else {
                Vec::new()
            };
            let sequence_key = journal_key(held.next);
            let mut engine_batch: Vec<(&[u8], Option<&[u8]>)> = folded.clone();
            engine_batch.extend(deleted.iter().map(|key| (key.as_slice(), None)));
            if let Some(entry) = &entry {
                engine_batch.push((sequence_key.as_slice(), Some(entry.as_slice())));
            }
            if !engine_batch.is_empty() {
                // One atomic, durable batch: the new entry, the slice folded, the entries
                // the sweep has made redundant.
                self.inner.write_borrowed(&engine_batch)?;
            }
            FoldedStep {
                last: folded.last().map(|(key, _)| key.to_vec()),
                count: folded.len(),
                ends_sweep: step.ends_sweep,
            }
        };
        // Durable: now readers may see it.
        let mut held = self.held.write().map_err(|_| StoreError::Poisoned)?;
        if step.ends_sweep {
            held.first = held.sweep_from;
        }
        if let Some(last) = &step.last {
            // The folded keys are the first `count` beyond the cursor, up to `last`.
            let start = match held.cursor.take() {
                Some(cursor) => Bound::Excluded(cursor),
                None => Bound::Unbounded,
            };
            let mut freed = 0;
            for (key, value) in held
                .writes
                .extract_if((start, Bound::Included(last.clone())), |_, _| true)
            {
                freed += key.len() + value.map_or(0, |value| value.len()) + ENTRY_OVERHEAD;
            }
            held.bytes -= freed;
        }
        held.ahead -= step.count;
        let last_folded = step.last;
        if entry.is_some() {
            held.next += 1;
        }
        if step.ends_sweep {
            // The entry just written is held below: the next sweep covers it.
            held.cursor = None;
            held.step = 0;
            for (key, value) in batch {
                held.insert(key, value);
            }
            held.begin_sweep();
        } else {
            if step.count > 0 || held.step > 0 {
                held.step += 1;
            }
            if last_folded.is_some() {
                held.cursor = last_folded;
            }
            for (key, value) in batch {
                held.insert(key, value);
            }
        }
        Ok(())
    }

    fn disk_bytes(&self) -> Result<u64, StoreError> {
        self.inner.disk_bytes()
    }
}

/// What one write folds (see [`Journaled::plan_step`]).
struct Step {
    /// How many held keys beyond the cursor to fold.
    fold: usize,
    /// Whether this folds the last of them: the sweep ends with this write.
    ends_sweep: bool,
}

/// What a write folded, for updating the held writes once it is durable.
struct FoldedStep {
    /// The last key folded.
    last: Option<Vec<u8>>,
    /// How many keys were folded.
    count: usize,
    ends_sweep: bool,
}

impl Journaled {
    /// The sweep's next step: nothing while no sweep is due; otherwise about `1/steps_left`
    /// of what is ahead, and all of it at the last step or past `held_bytes_max`.
    fn plan_step(&self, held: &Held) -> Step {
        let under_way = held.step > 0;
        let due = held.bytes >= self.limits.sweep_bytes
            || held.next - held.first >= self.limits.sweep_batches;
        if !under_way && !due {
            return Step {
                fold: 0,
                ends_sweep: false,
            };
        }
        let steps = self.limits.sweep_steps.max(1);
        let steps_left = steps.saturating_sub(held.step).max(1) as usize;
        let fold = if held.bytes >= self.limits.held_bytes_max || steps_left == 1 {
            held.ahead
        } else {
            held.ahead.div_ceil(steps_left)
        };
        Step {
            fold,
            ends_sweep: fold >= held.ahead,
        }
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
        sweep_bytes: 400,
        sweep_batches: 3,
        sweep_steps: 2,
        held_bytes_max: 2000,
    };

    /// Limits under which only the count of batches starts a sweep.
    const BY_COUNT: JournalLimits = JournalLimits {
        sweep_bytes: usize::MAX,
        sweep_batches: 3,
        sweep_steps: 2,
        held_bytes_max: usize::MAX,
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
                // A sweep starts at 3 entries or 400 bytes, lasts 2 writes, and deletes
                // the entries from before the previous one; past 2,000 bytes a write folds
                // everything; a batch adds at most 8 writes.
                prop_assert!(batches <= 3 * SMALL.sweep_batches, "{batches} entries");
                prop_assert!(
                    bytes <= SMALL.held_bytes_max + 8 * (3 + 40 + ENTRY_OVERHEAD),
                    "{bytes} bytes"
                );
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
    fn a_sweep_folds_in_slices_then_drops_the_journal_before_it() {
        let engine = SharedEngine::default();
        let journal = journal_on(&engine, BY_COUNT);
        for round in 0..3 {
            journal.write(vec![set(&format!("k{round}"), "v")]).unwrap();
        }
        assert_eq!(
            journal_entries(&engine),
            3,
            "no sweep due before the third entry"
        );
        assert_eq!(engine.get(b"k0").unwrap(), None);
        // Due: the first of two steps folds half of the three keys ahead, with this
        // write's own entry in the same batch.
        journal.write(vec![set("k3", "v")]).unwrap();
        assert_eq!(engine.get(b"k1").unwrap(), Some(b"v".to_vec()));
        assert_eq!(engine.get(b"k2").unwrap(), None);
        assert_eq!(journal_entries(&engine), 4);
        // The last step folds the rest, k3 included (it landed beyond the cursor). The
        // entries from before this sweep began are none: it began at opening.
        journal.write(vec![set("k4", "v")]).unwrap();
        assert_eq!(engine.get(b"k3").unwrap(), Some(b"v".to_vec()));
        assert_eq!(engine.get(b"k4").unwrap(), None, "written after the step");
        assert_eq!(journal_entries(&engine), 5);
        // The next sweep folds k4 and ends: every entry up to k4's is redundant.
        journal.write(vec![set("k5", "v")]).unwrap();
        assert_eq!(engine.get(b"k4").unwrap(), Some(b"v".to_vec()));
        assert_eq!(journal_entries(&engine), 1);
        assert_eq!(journal.held().unwrap().1, 1);
        for round in 0..6 {
            let key = format!("k{round}");
            assert_eq!(journal.get(key.as_bytes()).unwrap(), Some(b"v".to_vec()));
        }
    }

    #[test]
    fn past_the_bound_a_write_folds_everything_ahead() {
        let engine = SharedEngine::default();
        let journal = journal_on(&engine, SMALL);
        let big = "x".repeat(SMALL.held_bytes_max);
        journal
            .write(vec![set("big", &big), set("small", "v")])
            .unwrap();
        journal.write(vec![set("after", "v")]).unwrap();
        assert_eq!(engine.get(b"big").unwrap(), Some(big.into_bytes()));
        assert_eq!(engine.get(b"small").unwrap(), Some(b"v".to_vec()));
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
    fn a_write_whose_fold_fails_changes_nothing() {
        let engine = SharedEngine::default();
        let journal = journal_on(&engine, BY_COUNT);
        for round in 0..3 {
            journal.write(vec![set(&format!("k{round}"), "v")]).unwrap();
        }
        // This write carries the sweep's first step; the batch fails as a whole.
        engine.fail_next_write();
        journal.write(vec![set("b", "1")]).unwrap_err();
        assert_eq!(journal.get(b"b").unwrap(), None);
        assert_eq!(engine.get(b"k0").unwrap(), None);
        assert_eq!(journal_entries(&engine), 3);
        assert_eq!(journal.held().unwrap().1, 3);
        // Tried again, it lands with its step.
        journal.write(vec![set("b", "1")]).unwrap();
        assert_eq!(
            engine.get(b"b").unwrap(),
            None,
            "folded only by a later step"
        );
        assert_eq!(journal.get(b"b").unwrap(), Some(b"1".to_vec()));
        assert_eq!(engine.get(b"k0").unwrap(), Some(b"v".to_vec()));
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
