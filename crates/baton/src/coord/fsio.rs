//! File plumbing for coordination files: an exclusive `flock` with a deadline, and atomic
//! replacement (temp file in the same folder, fsync, rename), so a crash at any instant leaves
//! the old file or the new one, never a torn one.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

use super::CoordError;

/// An exclusive lock, released when dropped (or when the process dies, however it dies).
#[derive(Debug)]
pub(crate) struct FileLock {
    _file: File,
}

/// Takes an exclusive `flock` on `path`, waiting at most `timeout`.
///
/// The lock file's content is only a hint (the holder's pid, for the timeout message): a lock
/// file that is empty, truncated or full of junk works the same. It is never deleted, because a
/// process waiting on a deleted file's lock would not exclude one that locks a new file.
pub(crate) fn lock_exclusive(path: &Path, timeout: Duration) -> Result<FileLock, CoordError> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(CoordError::io("create the folder", dir))?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(CoordError::io("open the lock file", path))?;
    let started = Instant::now();
    // flock has no timeout of its own; polling with a short, growing pause keeps the common
    // uncontended case instant and a contended one within milliseconds of the release.
    let mut pause = Duration::from_millis(1);
    loop {
        // SAFETY: flock on a descriptor we own; no memory is involved.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            let _ = file.set_len(0);
            let _ = file.rewind();
            let _ = write!(file, "pid {}", std::process::id());
            return Ok(FileLock { _file: file });
        }
        let err = std::io::Error::last_os_error();
        let code = err.raw_os_error();
        if code != Some(libc::EWOULDBLOCK) && code != Some(libc::EINTR) {
            return Err(CoordError::Io { action: "lock", path: path.to_path_buf(), source: err });
        }
        let waited = started.elapsed();
        if waited >= timeout {
            let mut holder = String::new();
            let _ = file.rewind();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(CoordError::LockTimeout {
                lock: path.to_path_buf(),
                waited_ms: waited.as_millis(),
                holder: if holder.is_empty() { "an unknown process".to_string() } else { holder.to_string() },
            });
        }
        std::thread::sleep(pause.min(timeout - waited));
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Replaces `path` with `bytes` through the temporary file `tmp` (same folder).
pub(crate) fn write_atomic(path: &Path, tmp: &Path, bytes: &[u8]) -> Result<(), CoordError> {
    crate::plan::write_atomic_via(path, tmp, bytes).map_err(|source| CoordError::Io { action: "write", path: path.to_path_buf(), source })
}
