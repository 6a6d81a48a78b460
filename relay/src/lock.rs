//! One relay per data folder: `mediblock serve` holds an exclusive lock on
//! `<data folder>/serve.lock` for as long as it runs, so a second relay on the same folder —
//! which would start a second embedded chain on the same state file, or issue the same
//! tickets — refuses to start and says which process holds it. The kernel releases the lock
//! when the process ends, however it ends (a SIGKILL included), so a crash never leaves a
//! stale lock behind.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

/// The lock file's name inside the data folder.
pub const LOCK_FILE: &str = "serve.lock";

/// A held lock on a data folder; dropping it (or the process ending) releases it.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
    path: PathBuf,
}

impl DataDirLock {
    /// Takes the lock of `dir`, writing this process's id into the lock file; refuses with
    /// a sentence naming the holder's pid when another process holds it.
    pub fn acquire(dir: &Path) -> Result<Self, String> {
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let who = if holder.is_empty() {
                    "another process".to_owned()
                } else {
                    format!("process {holder}")
                };
                return Err(format!(
                    "{who} is already serving the data folder {} (it holds {}): one data \
                     folder has one relay and one chain; stop that relay first, or give \
                     this one another --data-dir",
                    dir.display(),
                    path.display()
                ));
            }
            Err(TryLockError::Error(e)) => {
                return Err(format!("cannot lock {}: {e}", path.display()));
            }
        }
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)).map(|_| ()))
            .and_then(|()| writeln!(file, "{}", std::process::id()))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(Self { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The name this relay's worker and checkpointer use in leases: the same for every
    /// process that serves this data folder on this host, one at a time (the lock sees to
    /// that). So a relay restarted after a crash knows which leases were its own and takes
    /// them back at once, instead of leaving its accepted records waiting for them to expire;
    /// relays of other data folders (sharing a PostgreSQL store) keep theirs.
    pub fn lease_owner(&self) -> String {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let id = mediblock_protocol::hash::keccak256(dir.as_os_str().as_encoded_bytes());
        format!("relay-{}-{}", host.trim(), hex::encode(&id[..6]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = std::env::temp_dir().join(format!("mediblock-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let first = DataDirLock::acquire(&dir).unwrap();
        assert_eq!(
            std::fs::read_to_string(first.path()).unwrap().trim(),
            std::process::id().to_string()
        );
        let err = DataDirLock::acquire(&dir).unwrap_err();
        assert!(
            err.contains(&format!(
                "process {} is already serving",
                std::process::id()
            )),
            "{err}"
        );
        let owner = first.lease_owner();
        assert!(owner.starts_with("relay-"), "{owner}");
        drop(first);
        let again = DataDirLock::acquire(&dir).unwrap();
        assert_eq!(again.lease_owner(), owner, "one name per folder and host");
        drop(again);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
