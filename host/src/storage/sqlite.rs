//! Opening a SQLite database file the way every SQLite store of the host wants it: the parent
//! folders created, WAL mode (readers never wait for the writer, and other connections — the
//! plugins' `kv` store, another store — may share the file), `synchronous = NORMAL` (durable
//! across a crash of the process, not of the machine) and a busy timeout.
//!
//! Opening blocks on the file system: call it at start-up or on a blocking thread.
//!
//! **Failures.** [`OpenError`] names the file and gives SQLite's reason (unwritable folder, a
//! file that is not a database, a file system that refuses WAL).

use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a statement waits for another connection's write lock on the same file before it
/// fails with "database is locked".
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A database file that could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot open {}: {reason}", path.display())]
pub struct OpenError {
    pub path: PathBuf,
    pub reason: String,
}

/// Opens (creating it and its folders if needed) the database at `path` in WAL mode.
pub fn open(path: &Path) -> Result<Connection, OpenError> {
    let fail = |reason: &dyn std::fmt::Display| OpenError {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        if parent.exists() && !parent.is_dir() {
            return Err(fail(&format!("{} is not a folder", parent.display())));
        }
        std::fs::create_dir_all(parent).map_err(|e| {
            fail(&format!(
                "cannot create the folder {}: {e}",
                parent.display()
            ))
        })?;
    }
    let connection = Connection::open(path).map_err(|e| fail(&e))?;
    connection
        .busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| fail(&e))?;
    // The first statement that reads the file: a file that is not a database fails here.
    let mode: String = connection
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(|e| fail(&e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(fail(&format!("the file system refused WAL mode ({mode})")));
    }
    connection
        .pragma_update(None, "synchronous", "NORMAL")
        .map_err(|e| fail(&e))?;
    Ok(connection)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_folders_and_uses_wal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/store.db");
        let connection = open(&path).unwrap();
        let mode: String = connection
            .query_row("PRAGMA journal_mode", [], |row| row.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        assert!(path.exists());
    }

    #[test]
    fn failures_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain-file");
        std::fs::write(&file, "x").unwrap();
        let under_a_file = file.join("store.db");
        let error = open(&under_a_file).unwrap_err();
        assert_eq!(error.path, under_a_file);
        assert_eq!(
            error.to_string(),
            format!(
                "cannot open {}: {} is not a folder",
                under_a_file.display(),
                file.display()
            )
        );

        let not_a_database = dir.path().join("garbage.db");
        std::fs::write(&not_a_database, vec![7u8; 4096]).unwrap();
        let error = open(&not_a_database).unwrap_err();
        assert!(error.reason.contains("not a database"), "{error}");
    }
}
