//! The SQLite adapters: the port contracts, then what only an embedded database promises
//! (durability across reopening, migrations, concurrency, the dead-letter table, the signal).

mod bench;
mod contract;
mod durability;
mod queue;
mod tasks;

use std::path::{Path, PathBuf};

use pj_sqlite::{QueueConfig, SqliteStore};
use tempfile::TempDir;

/// Receives before dead-lettering in these tests: small, so the dead-letter checks are quick.
pub const MAX_RECEIVES: u32 = 3;

/// A store on a fresh file in a directory that lives as long as the value.
pub struct TestStore {
    pub store: SqliteStore,
    pub path: PathBuf,
    _dir: TempDir,
}

impl TestStore {
    #[allow(clippy::new_without_default)] // a fresh file per call is not a default value
    pub fn new() -> TestStore {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("pj.sqlite3");
        TestStore {
            store: open(&path),
            path,
            _dir: dir,
        }
    }
}

pub fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(
        path,
        QueueConfig {
            max_receives: MAX_RECEIVES,
        },
    )
    .expect("the store opens")
}
