//! Atomic file replacement: a crash at any instant leaves the old file or the new one, never a
//! torn one.
//!
//! The new bytes go to a temporary file in the same folder (so the rename cannot cross file
//! systems), which is flushed to disk before it is renamed over the target; then the folder is
//! flushed so the rename itself survives a power cut.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// What every temporary file of an atomic write has in its name.
pub const TEMP_MARK: &str = ".baton-tmp-";

/// The prefix of the temporary files saves of `path` write first.
fn temp_prefix(path: &Path) -> String {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    format!(".{name}{TEMP_MARK}")
}

/// The temporary file this process writes first. Named per process, so that another baton
/// (a `status`, a `check`) can never take it away from under a running save.
fn temp_path(path: &Path) -> PathBuf {
    path.with_file_name(format!("{}{}", temp_prefix(path), std::process::id()))
}

/// Replaces `path` with `bytes` atomically, keeping the file's permissions. A symlink is
/// followed: the file it points to is replaced, and the link stays a link.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let target = if fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        fs::canonicalize(path)?
    } else {
        path.to_path_buf()
    };
    write_steps(&target, bytes, &mut |_| true)
}

/// Replaces `path` with `bytes` through the temporary file `tmp` (same folder), for a writer
/// that names its own temporary file (one that holds a lock of its own). The temporary file is
/// removed when the write fails.
pub fn write_atomic_via(path: &Path, tmp: &Path, bytes: &[u8]) -> io::Result<()> {
    write_steps_via(path, tmp, bytes, &mut |_| true).inspect_err(|_| {
        let _ = fs::remove_file(tmp);
    })
}

/// The save, one step at a time; `go(step)` returning false stops there, as a crash would.
fn write_steps(path: &Path, bytes: &[u8], go: &mut dyn FnMut(Step) -> bool) -> io::Result<()> {
    write_steps_via(path, &temp_path(path), bytes, go)
}

fn write_steps_via(path: &Path, tmp: &Path, bytes: &[u8], go: &mut dyn FnMut(Step) -> bool) -> io::Result<()> {
    let mut file = OpenOptions::new().write(true).create(true).truncate(true).open(tmp)?;
    if !go(Step::Created) {
        return Ok(());
    }
    let half = bytes.len() / 2;
    file.write_all(&bytes[..half])?;
    if !go(Step::HalfWritten) {
        return Ok(());
    }
    file.write_all(&bytes[half..])?;
    if let Ok(meta) = fs::metadata(path) {
        file.set_permissions(meta.permissions())?;
    }
    file.sync_all()?;
    drop(file);
    if !go(Step::Synced) {
        return Ok(());
    }
    fs::rename(tmp, path)?;
    if !go(Step::Renamed) {
        return Ok(());
    }
    sync_dir(path)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Created,
    HalfWritten,
    Synced,
    Renamed,
}

fn sync_dir(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

/// Removes the temporary files crashed saves left behind. Only for the holder of the plan's
/// lock: no save of anyone else's can be under way then.
pub fn remove_stale_temps(path: &Path) {
    let prefix = temp_prefix(path);
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Keeps a copy of an invalid plan someone else wrote, next to the plan, so that nothing of it is
/// lost when baton writes the last valid plan back.
pub(crate) fn keep_rejected(path: &Path, text: &str) -> io::Result<PathBuf> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let stamp = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%S");
    let mut kept = path.with_file_name(format!("{name}.rejected-{stamp}"));
    let mut n = 1;
    while kept.exists() {
        n += 1;
        kept = path.with_file_name(format!("{name}.rejected-{stamp}-{n}"));
    }
    write_atomic(&kept, text.as_bytes())?;
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "meta:\n  name: old\nsections:\n- id: s\n  tasks:\n  - id: '1'\n    name: a\n    status: pending\n";

    #[test]
    fn a_crash_at_any_step_leaves_the_old_or_the_new_file() {
        let new = OLD.replace("status: pending", "status: completed\n    attempts: 1");
        for stop in [Step::Created, Step::HalfWritten, Step::Synced, Step::Renamed] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("plan.yaml");
            fs::write(&path, OLD).unwrap();
            write_steps(&path, new.as_bytes(), &mut |s| s != stop).unwrap();
            let on_disk = fs::read_to_string(&path).unwrap();
            assert!(on_disk == OLD || on_disk == new, "torn file after {stop:?}: {on_disk:?}");
            assert!(crate::plan::parse_plan(&on_disk).is_ok(), "after {stop:?}");
            if stop < Step::Renamed {
                assert_eq!(on_disk, OLD, "the target changed before the rename ({stop:?})");
            }
            // The next load clears what the crash left.
            remove_stale_temps(&path);
            let left: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
            assert_eq!(left, vec![std::ffi::OsString::from("plan.yaml")], "after {stop:?}");
        }
    }

    #[test]
    fn a_symlinked_plan_stays_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.yaml");
        let link = dir.path().join("link.yaml");
        fs::write(&real, OLD).unwrap();
        std::os::unix::fs::symlink(&real, &link).unwrap();
        write_atomic(&link, b"x: 1\n").unwrap();
        assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(fs::read_to_string(&real).unwrap(), "x: 1\n");
    }

    #[test]
    fn save_keeps_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.yaml");
        fs::write(&path, OLD).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        write_atomic(&path, b"x: 1\n").unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o640);
        assert_eq!(fs::read_to_string(&path).unwrap(), "x: 1\n");
    }
}
