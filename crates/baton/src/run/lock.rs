//! One baton per plan, and one run per checkout: exclusive `flock`s on lock files.
//!
//! The kernel releases a lock when the process dies, however it dies, so a crashed or
//! `kill -9`ed baton never leaves a stale lock behind. Two different plans lock different plan
//! files, but they would share the checkout's status file and working tree (one's commits would
//! take the other's work), so a run also locks its checkout. Two git worktrees are two
//! checkouts and run side by side.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub struct PlanLock {
    _file: File,
    pub path: PathBuf,
}

/// The lock on a checkout (a working tree), held for as long as a run goes on in it.
#[derive(Debug)]
pub struct CheckoutLock {
    _file: File,
    pub path: PathBuf,
}

/// The checkout lock's file, relative to the checkout's root.
pub const CHECKOUT_LOCK: &str = ".baton/run.lock";

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another baton is already running plan {} (pid {holder}); lock file {}", plan.display(), lock.display())]
    Held { plan: PathBuf, lock: PathBuf, holder: String },
    #[error("another baton (pid {pid}) is running plan {running} in this checkout ({}); one run per checkout, since runs share its working tree and status file", root.display())]
    CheckoutBusy { root: PathBuf, running: String, pid: String },
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
        let lock = plan_lock_path(dir, plan);
        match take(&lock, &std::process::id().to_string())? {
            Ok(file) => Ok(PlanLock { _file: file, path: lock }),
            Err(holder) => Err(LockError::Held {
                plan: plan.to_path_buf(),
                lock,
                holder: holder.lines().next().filter(|l| !l.trim().is_empty()).unwrap_or("unknown").trim().to_string(),
            }),
        }
    }
}

impl CheckoutLock {
    /// Takes the lock of the checkout at `root` for a run of `plan`; the file says who holds it.
    pub fn acquire(root: &Path, plan: &Path) -> Result<CheckoutLock, LockError> {
        let lock = root.join(CHECKOUT_LOCK);
        let shown = plan.display().to_string();
        match take(&lock, &format!("{}\n{shown}", std::process::id()))? {
            Ok(file) => Ok(CheckoutLock { _file: file, path: lock }),
            Err(holder) => {
                let mut lines = holder.lines();
                let pid = lines.next().map(str::trim).filter(|l| !l.is_empty()).unwrap_or("unknown").to_string();
                let running = lines.next().map(str::trim).filter(|l| !l.is_empty()).unwrap_or("(unknown)").to_string();
                Err(LockError::CheckoutBusy { root: root.to_path_buf(), running, pid })
            }
        }
    }
}

/// The lock file of `plan` in `dir`: one per plan file, wherever it is named from.
pub fn plan_lock_path(dir: &Path, plan: &Path) -> PathBuf {
    let canonical = std::fs::canonicalize(plan).unwrap_or_else(|_| plan.to_path_buf());
    let name = plan.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    dir.join(format!("{name}-{:016x}.lock", fnv1a(canonical.as_os_str().as_encoded_bytes())))
}

/// The pid of the baton that holds `plan`'s lock (locks kept in `dir`): a run is going on.
///
/// Asks without locking: a probe that took the lock, however briefly, could make a `baton run`
/// starting at that instant refuse. On Linux the kernel's table of locks (`/proc/locks`) says
/// whether the file is locked and by whom; elsewhere the pid the holder wrote is taken if that
/// process exists (a hint: a pid can be reused).
pub fn plan_holder(dir: &Path, plan: &Path) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    let path = plan_lock_path(dir, plan);
    // A lock file is a regular file baton made; anything else at its path (a pipe) is none.
    let file = crate::fsx::open_regular(&path).ok()?;
    let inode = file.metadata().ok()?.ino();
    let mut text = String::new();
    let _ = std::io::Read::read_to_string(&mut std::io::Read::take(&file, 4096), &mut text);
    let written: Option<u32> = text.lines().next().and_then(|l| l.trim().parse().ok());
    match std::fs::read_to_string("/proc/locks") {
        Ok(table) => flock_holder(&table, inode).map(|pid| if pid == 0 { written.unwrap_or(0) } else { pid }).filter(|p| *p != 0),
        Err(_) => written.filter(|p| crate::coord::heartbeat::pid_alive(*p)),
    }
}

/// The pid holding a `flock` on the file with this inode, from `/proc/locks` (lines such as
/// `3: FLOCK  ADVISORY  WRITE 4321 fd:01:1234567 0 EOF`; `->` lines are waiters, not holders).
/// 0 when the holder is not visible from here (another pid namespace).
fn flock_holder(table: &str, inode: u64) -> Option<u32> {
    table.lines().find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let held = f.get(1) == Some(&"FLOCK") && f.get(5).and_then(|d| d.rsplit(':').next()).and_then(|i| i.parse::<u64>().ok()) == Some(inode);
        held.then(|| f.get(4).and_then(|p| p.parse::<u32>().ok()).unwrap_or(0))
    })
}

/// Who runs in the checkout at `root` now, as the holder of its lock wrote it: its pid and the
/// plan it runs (`unknown` when it has not written them yet). `None` when no run holds the lock.
/// Only looks: the lock file is never created, and on Linux no lock is taken to look (the
/// kernel's table says who holds it), so a `baton run` starting at that instant is not refused.
pub fn checkout_holder(root: &Path) -> Option<(String, String)> {
    use std::os::unix::fs::MetadataExt;
    let mut file = crate::fsx::open_regular(&root.join(CHECKOUT_LOCK)).ok()?;
    let held = match std::fs::read_to_string("/proc/locks") {
        Ok(table) => flock_holder(&table, file.metadata().ok()?.ino()).is_some(),
        Err(_) => {
            // SAFETY: flock on a descriptor we own; no memory is involved.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) };
            if rc == 0 {
                // SAFETY: as above.
                unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_UN) };
            }
            rc != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EWOULDBLOCK)
        }
    };
    if !held {
        return None;
    }
    let mut text = String::new();
    let _ = (&mut file).take(64 * 1024).read_to_string(&mut text);
    let mut lines = text.lines().map(str::trim);
    let pid = lines.next().filter(|l| !l.is_empty()).unwrap_or("unknown").to_string();
    let plan = lines.next().filter(|l| !l.is_empty()).unwrap_or("unknown").to_string();
    Some((pid, plan))
}

/// Locks `lock` (creating it and its folder) and writes `holder` into it; when another
/// process holds it, what that process wrote.
fn take(lock: &Path, holder: &str) -> Result<Result<File, String>, LockError> {
    let io = |source| LockError::Io { lock: lock.to_path_buf(), source };
    if let Some(dir) = lock.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(lock).map_err(io)?;
    // SAFETY: flock on a descriptor we own; no memory is involved.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let mut text = String::new();
        // The holder writes right after locking: an empty read is a holder that has not yet.
        let _ = file.read_to_string(&mut text);
        return Ok(Err(text));
    }
    let _ = file.set_len(0);
    let _ = file.rewind();
    let _ = write!(file, "{holder}");
    let _ = file.flush();
    Ok(Ok(file))
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
        released("the plan lock is free again", || PlanLock::acquire(&locks, &a).is_ok());
    }

    /// After a lock is dropped: another test of this binary may fork a child in the instant
    /// before it execs, and the child shares the descriptor — and its lock — until then. Wait
    /// for that to pass, with a deadline.
    fn released(what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !cond() {
            assert!(std::time::Instant::now() < deadline, "{what}: not within 30 s");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    #[test]
    fn the_holder_of_a_plan_lock_is_seen_without_taking_it() {
        let d = tempfile::tempdir().unwrap();
        let plan = d.path().join("p.yaml");
        std::fs::write(&plan, "x").unwrap();
        let locks = d.path().join("locks");
        assert_eq!(plan_holder(&locks, &plan), None, "no lock file yet");
        let held = PlanLock::acquire(&locks, &plan).unwrap();
        assert_eq!(plan_holder(&locks, &plan), Some(std::process::id()));
        // Looking took nothing: the lock is still only the holder's.
        assert!(PlanLock::acquire(&locks, &plan).is_err());
        drop(held);
        if cfg!(target_os = "linux") {
            released("a released lock has no holder, whatever its file says", || plan_holder(&locks, &plan).is_none());
        }
    }

    #[test]
    fn proc_locks_lines_name_the_holder_of_an_inode() {
        let table = "1: POSIX  ADVISORY  WRITE 77 00:2f:555 0 EOF\n2: FLOCK  ADVISORY  WRITE 4321 fd:01:1234567 0 EOF\n2: -> FLOCK  ADVISORY  WRITE 99 fd:01:42 0 EOF\n";
        assert_eq!(flock_holder(table, 1234567), Some(4321));
        assert_eq!(flock_holder(table, 555), None, "a POSIX lock is not baton's");
        assert_eq!(flock_holder(table, 42), None, "a waiter holds nothing");
    }

    #[test]
    fn one_run_per_checkout_names_the_running_plan_and_its_pid() {
        let d = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        let first = CheckoutLock::acquire(d.path(), Path::new("plans/a.yaml")).unwrap();
        let e = CheckoutLock::acquire(d.path(), Path::new("plans/b.yaml")).unwrap_err().to_string();
        assert!(e.contains("plan plans/a.yaml") && e.contains(&format!("pid {}", std::process::id())), "{e}");
        // Another checkout (a worktree) is another lock.
        let _elsewhere = CheckoutLock::acquire(other.path(), Path::new("plans/b.yaml")).unwrap();
        assert_eq!(checkout_holder(d.path()), Some((std::process::id().to_string(), "plans/a.yaml".to_string())));
        drop(first);
        released("a lock nobody holds has no holder", || checkout_holder(d.path()).is_none());
        assert_eq!(checkout_holder(&d.path().join("nowhere")), None);
        released("the checkout lock is free again", || CheckoutLock::acquire(d.path(), Path::new("plans/b.yaml")).is_ok());
    }
}
