//! When an item is complete enough to read: it looked the same — stamp and content digest — on
//! two looks a quiet period apart, and (on Linux) no process has it open for writing. Time is
//! the daemon's own monotonic clock, never the file's modification time, which may lie in the
//! future or the past.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::backlog::{Item, Stamp};

/// What the daemon last saw of each waiting item, and since when it has looked that way.
#[derive(Debug)]
pub(crate) struct Settle {
    quiet: Duration,
    seen: HashMap<PathBuf, Seen>,
}

#[derive(Debug)]
struct Seen {
    stamp: Stamp,
    digest: String,
    since: Instant,
    /// When the daemon first saw the item, whatever changed since.
    first_seen: Instant,
    /// The writer the person was told about, so that a long write is reported once.
    told: Option<u32>,
}

impl Settle {
    pub(crate) fn new(quiet: Duration) -> Settle {
        Settle { quiet, seen: HashMap::new() }
    }

    /// Records this look at `item` (taken at `now`). `None` when it has looked the same for the
    /// whole quiet period; otherwise how long until it may have.
    pub(crate) fn look(&mut self, item: &Item, now: Instant) -> Option<Duration> {
        match self.seen.get(&item.path) {
            Some(s) if s.stamp == item.stamp && s.digest == item.digest => {
                let quiet_for = now.saturating_duration_since(s.since);
                self.quiet.checked_sub(quiet_for).filter(|left| !left.is_zero())
            }
            _ => {
                let told = self.seen.get(&item.path).and_then(|s| s.told);
                let first_seen = self.seen.get(&item.path).map_or(now, |s| s.first_seen);
                let seen = Seen { stamp: item.stamp.clone(), digest: item.digest.clone(), since: now, first_seen, told };
                self.seen.insert(item.path.clone(), seen);
                Some(self.quiet)
            }
        }
    }

    /// The item is still being written (a process holds it open for writing): its quiet period
    /// starts again. True the first time this writer is reported for it.
    pub(crate) fn still_written(&mut self, path: &Path, pid: u32, now: Instant) -> bool {
        match self.seen.get_mut(path) {
            Some(s) => {
                s.since = now;
                let first = s.told != Some(pid);
                s.told = Some(pid);
                first
            }
            None => true,
        }
    }

    /// How long the item has been waiting to settle since the daemon first saw it.
    pub(crate) fn waiting_for(&self, path: &Path, now: Instant) -> Duration {
        self.seen.get(path).map_or(Duration::ZERO, |s| now.saturating_duration_since(s.first_seen))
    }

    /// Forgets items that are no longer waiting.
    pub(crate) fn keep_only(&mut self, items: &[Item]) {
        self.seen.retain(|p, _| items.iter().any(|i| &i.path == p));
    }
}

/// A process that has a file open for writing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Writer {
    pub pid: u32,
    /// Its command name (`/proc/<pid>/comm`), for the person reading the log.
    pub name: String,
}

/// Which of `paths` (absolute) some process has open for writing. A writer that pauses longer
/// than the quiet period (a script, `cat > item.md`) still holds its file open; this catches it
/// where no quiet period can. Linux only; processes of other users are not visible, and
/// elsewhere nothing is known, so the quiet period alone decides.
pub(crate) fn open_for_writing(paths: &[PathBuf]) -> HashMap<PathBuf, Writer> {
    let mut found = HashMap::new();
    if !cfg!(target_os = "linux") || paths.is_empty() {
        return found;
    }
    // /proc shows where each descriptor points with symbolic links resolved.
    let wanted: HashMap<PathBuf, &PathBuf> = paths.iter().filter_map(|p| Some((std::fs::canonicalize(p).ok()?, p))).collect();
    let Ok(procs) = std::fs::read_dir("/proc") else { return found };
    for proc in procs.flatten() {
        let Some(pid) = proc.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(fds) = std::fs::read_dir(proc.path().join("fd")) else { continue };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else { continue };
            let Some(path) = wanted.get(&target) else { continue };
            let info = std::fs::read_to_string(proc.path().join("fdinfo").join(fd.file_name())).unwrap_or_default();
            if opened_for_writing(&info) {
                let name = std::fs::read_to_string(proc.path().join("comm")).unwrap_or_default().trim().to_string();
                found.entry((*path).clone()).or_insert(Writer { pid, name });
            }
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
    use crate::pipeline::backlog::Kind;

    fn item(text: &str, len: u64, secs: i64) -> Item {
        Item {
            kind: Kind::Defect,
            path: "d/x.md".into(),
            slug: "x".into(),
            text: text.into(),
            digest: crate::pipeline::digest::sha256_hex(text.as_bytes()),
            stamp: Stamp { len, modified: None, changed: (secs, 0), inode: 1 },
        }
    }

    #[test]
    fn an_item_is_ready_only_after_looking_the_same_for_the_quiet_period() {
        let quiet = Duration::from_millis(300);
        let mut s = Settle::new(quiet);
        let t0 = Instant::now();
        let a = item("# A\n", 4, 1);
        // First sight: never ready, however old or new the file's times are.
        assert_eq!(s.look(&a, t0), Some(quiet));
        assert_eq!(s.look(&a, t0 + Duration::from_millis(100)), Some(Duration::from_millis(200)));
        assert_eq!(s.look(&a, t0 + quiet), None);
        // A change of content under the same stamp (a writer that keeps the times) starts over.
        let b = item("# A\nmore\n", 4, 1);
        assert_eq!(s.look(&b, t0 + quiet * 2), Some(quiet));
        assert_eq!(s.look(&b, t0 + quiet * 3), None);
        // So does a change of stamp under the same content.
        let c = item("# A\nmore\n", 9, 2);
        assert_eq!(s.look(&c, t0 + quiet * 4), Some(quiet));
    }

    #[test]
    fn a_held_open_item_starts_its_quiet_period_again_and_is_reported_once_per_writer() {
        let quiet = Duration::from_millis(300);
        let mut s = Settle::new(quiet);
        let t0 = Instant::now();
        let a = item("# A\n", 4, 1);
        s.look(&a, t0);
        assert_eq!(s.look(&a, t0 + quiet), None);
        assert!(s.still_written(&a.path, 7, t0 + quiet));
        assert_eq!(s.look(&a, t0 + quiet), Some(quiet));
        assert!(!s.still_written(&a.path, 7, t0 + quiet * 2), "the same writer was reported twice");
        assert!(s.still_written(&a.path, 8, t0 + quiet * 3));
        s.keep_only(&[]);
        assert_eq!(s.look(&a, t0 + quiet * 9), Some(quiet), "a forgotten item was remembered");
    }

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
}
