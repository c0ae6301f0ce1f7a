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

pub(crate) use crate::procfs::open_for_writing;

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

}
