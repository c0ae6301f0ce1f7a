//! One baton per plan: an exclusive `flock` on a lock file named after the plan.
//!
//! The kernel releases the lock when the process dies, however it dies, so a crashed or
//! `kill -9`ed baton never leaves a stale lock behind. Two different plans lock different files
//! and run side by side.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub struct PlanLock {
    _file: File,
    pub path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another baton is already running plan {} (pid {holder}); lock file {}", plan.display(), lock.display())]
    Held { plan: PathBuf, lock: PathBuf, holder: String },
    #[error("cannot create the lock file {}", lock.display())]
    Io {
        lock: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl PlanLock {
    /// Takes the lock for `plan`, keeping lock files in `dir`.
    pub fn acquire(dir: &Path, plan: &Path) -> Result<PlanLock, LockError> {
        let canonical = std::fs::canonicalize(plan).unwrap_or_else(|_| plan.to_path_buf());
        let name = plan.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let lock = dir.join(format!("{name}-{:016x}.lock", fnv1a(canonical.as_os_str().as_encoded_bytes())));
        let io = |source| LockError::Io { lock: lock.clone(), source };
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&lock).map_err(io)?;
        // SAFETY: flock on a descriptor we own; no memory is involved.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim().to_string();
            return Err(LockError::Held {
                plan: plan.to_path_buf(),
                lock,
                holder: if holder.is_empty() { "unknown".into() } else { holder },
            });
        }
        let _ = file.set_len(0);
        let _ = file.rewind();
        let _ = write!(file, "{}", std::process::id());
        let _ = file.flush();
        Ok(PlanLock { _file: file, path: lock })
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_plan_is_refused_and_another_plan_is_not() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("a.yaml");
        let b = d.path().join("b.yaml");
        std::fs::write(&a, "x").unwrap();
        std::fs::write(&b, "x").unwrap();
        let locks = d.path().join("locks");
        let first = PlanLock::acquire(&locks, &a).unwrap();
        let e = PlanLock::acquire(&locks, &a).unwrap_err();
        assert!(e.to_string().contains(&format!("pid {}", std::process::id())), "{e}");
        let _other = PlanLock::acquire(&locks, &b).unwrap();
        drop(first);
        PlanLock::acquire(&locks, &a).unwrap();
    }
}
