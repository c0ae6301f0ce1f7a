//! What `/proc` says about open files: which process holds a file open, and how. Used to tell a
//! backlog item still being written from a finished one, and a git lock file of a live git from
//! one a killed git left behind.
//!
//! Linux only; processes of other users may be invisible, and elsewhere nothing is known (the
//! answers are then "nobody"): callers must treat the answer as a hint that errs towards
//! "nobody holds it".

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A process that has a file open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Writer {
    pub pid: u32,
    /// Its command name (`/proc/<pid>/comm`), for the person reading the log.
    pub name: String,
}

/// Which of `paths` (absolute) some process has open for writing. A writer that pauses longer
/// than any quiet period (a script, `cat > item.md`) still holds its file open.
pub(crate) fn open_for_writing(paths: &[PathBuf]) -> HashMap<PathBuf, Writer> {
    holders(paths, true)
}

/// A process that has `path` open at all, if one is visible.
pub(crate) fn held_open(path: &Path) -> Option<Writer> {
    holders(&[path.to_path_buf()], false).into_values().next()
}

fn holders(paths: &[PathBuf], writing_only: bool) -> HashMap<PathBuf, Writer> {
    let mut found = HashMap::new();
    if !cfg!(target_os = "linux") || paths.is_empty() {
        return found;
    }
    // /proc shows where each descriptor points with symbolic links resolved.
    let wanted: HashMap<PathBuf, &PathBuf> = paths.iter().filter_map(|p| Some((std::fs::canonicalize(p).ok()?, p))).collect();
    if wanted.is_empty() {
        return found;
    }
    let Ok(procs) = std::fs::read_dir("/proc") else { return found };
    for proc in procs.flatten() {
        let Some(pid) = proc.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(fds) = std::fs::read_dir(proc.path().join("fd")) else { continue };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else { continue };
            let Some(path) = wanted.get(&target) else { continue };
            if writing_only {
                let info = std::fs::read_to_string(proc.path().join("fdinfo").join(fd.file_name())).unwrap_or_default();
                if !opened_for_writing(&info) {
                    continue;
                }
            }
            let name = std::fs::read_to_string(proc.path().join("comm")).unwrap_or_default().trim().to_string();
            found.entry((*path).clone()).or_insert(Writer { pid, name });
        }
    }
    found
}

/// Whether `/proc/<pid>/fdinfo/<fd>` describes a descriptor opened for writing: its `flags` (in
/// octal) hold `O_WRONLY` or `O_RDWR`.
fn opened_for_writing(fdinfo: &str) -> bool {
    fdinfo
        .lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
        .is_some_and(|flags| flags & 0o3 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fdinfo_flags_tell_writers_from_readers() {
        assert!(opened_for_writing("pos:\t0\nflags:\t0100001\nmnt_id:\t1\n"));
        assert!(opened_for_writing("pos:\t0\nflags:\t02000002\n"));
        assert!(!opened_for_writing("pos:\t0\nflags:\t0100000\n"));
        assert!(!opened_for_writing("nonsense"));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_file_this_process_holds_open_for_writing_is_found() {
        use std::io::Write;
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("x.md");
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(b"# half").unwrap();
        let found = open_for_writing(std::slice::from_ref(&path));
        assert_eq!(found.get(&path).map(|w| w.pid), Some(std::process::id()));
        drop(f);
        // Other tests in this process may open files too, but not this one.
        assert!(open_for_writing(std::slice::from_ref(&path)).is_empty());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_file_open_for_reading_is_held_but_not_written() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("index.lock");
        std::fs::write(&path, "").unwrap();
        let f = std::fs::File::open(&path).unwrap();
        assert_eq!(held_open(&path).map(|w| w.pid), Some(std::process::id()));
        assert!(open_for_writing(std::slice::from_ref(&path)).is_empty());
        drop(f);
        assert_eq!(held_open(&path), None);
    }
}
