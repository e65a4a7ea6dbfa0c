//! redb 4 behind the store's `Backend` interface, for the benchmarks that compare storage
//! engines (docs/adr/0001-storage-engine.md). It lives with the benchmarks, not in the
//! library, until the ADR makes it an engine a node may run on.

use std::path::{Path, PathBuf};

use hutong_ledger::store::{Backend, Durability, Entry, StoreError, Write};
use redb::{ReadableDatabase, TableDefinition};

const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("hutong");
const CACHE_SIZE_BYTES: usize = 256 * 1024 * 1024;

pub struct RedbBackend {
    database: redb::Database,
    file: PathBuf,
    durability: Durability,
}

impl std::fmt::Debug for RedbBackend {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("RedbBackend")
            .field("file", &self.file)
            .field("durability", &self.durability)
            .finish()
    }
}

fn engine_error(error: impl std::fmt::Display) -> StoreError {
    StoreError::Engine(error.to_string())
}

impl RedbBackend {
    /// Opens (or creates) the database file `hutong.redb` in `directory`.
    pub fn open(directory: &Path, durability: Durability) -> Result<Self, StoreError> {
        std::fs::create_dir_all(directory).map_err(engine_error)?;
        let file = directory.join("hutong.redb");
        let database = redb::Database::builder()
            .set_cache_size(CACHE_SIZE_BYTES)
            .create(&file)
            .map_err(engine_error)?;
        let transaction = database.begin_write().map_err(engine_error)?;
        transaction.open_table(TABLE).map_err(engine_error)?;
        transaction.commit().map_err(engine_error)?;
        Ok(RedbBackend {
            database,
            file,
            durability,
        })
    }
}

impl Backend for RedbBackend {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let transaction = self.database.begin_read().map_err(engine_error)?;
        let table = transaction.open_table(TABLE).map_err(engine_error)?;
        Ok(table
            .get(key)
            .map_err(engine_error)?
            .map(|value| value.value().to_vec()))
    }

    fn scan(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        let transaction = self.database.begin_read().map_err(engine_error)?;
        let table = transaction.open_table(TABLE).map_err(engine_error)?;
        let start: Vec<u8> = match after {
            Some(after) => {
                let mut start = after.to_vec();
                start.push(0);
                start
            }
            None => prefix.to_vec(),
        };
        let mut out = Vec::new();
        for entry in table
            .range::<&[u8]>(start.as_slice()..)
            .map_err(engine_error)?
        {
            let (key, value) = entry.map_err(engine_error)?;
            if !key.value().starts_with(prefix) || out.len() >= limit {
                break;
            }
            out.push((key.value().to_vec(), value.value().to_vec()));
        }
        Ok(out)
    }

    fn write(&self, batch: Vec<Write>) -> Result<(), StoreError> {
        let mut transaction = self.database.begin_write().map_err(engine_error)?;
        if self.durability == Durability::Unsynced {
            transaction
                .set_durability(redb::Durability::None)
                .map_err(engine_error)?;
        }
        {
            let mut table = transaction.open_table(TABLE).map_err(engine_error)?;
            for (key, value) in &batch {
                match value {
                    Some(value) => {
                        table
                            .insert(key.as_slice(), value.as_slice())
                            .map_err(engine_error)?;
                    }
                    None => {
                        table.remove(key.as_slice()).map_err(engine_error)?;
                    }
                }
            }
        }
        transaction.commit().map_err(engine_error)
    }

    fn disk_bytes(&self) -> Result<u64, StoreError> {
        std::fs::metadata(&self.file)
            .map(|metadata| metadata.len())
            .map_err(engine_error)
    }
}
