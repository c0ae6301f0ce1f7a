//! The backlog folders: which markdown items wait to be done, in which order, and where each
//! one's plan and design doc go. Reads folders; writes nothing.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::digest::sha256_hex;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Defect,
    Feature,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Defect => "defect",
            Kind::Feature => "feature",
        }
    }
}

/// One backlog item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub kind: Kind,
    /// Relative to the repository root.
    pub path: PathBuf,
    /// File-name-safe name, from the file name: `001-Login fails.md` → `001-login-fails`. The
    /// name of its plan, unless that is taken (see `ledger`): then `<slug>-2`, `<slug>-3`, ….
    pub slug: String,
    /// The content, as this scan read it.
    pub text: String,
    /// SHA-256 of the content, as this scan read it.
    pub digest: String,
    /// What the file system said about the file just before it was read.
    pub stamp: Stamp,
}

/// What writing a file changes besides its content: size, modification and change times, inode
/// (an editor that saves by renaming a new file over the old one changes the inode). Compared
/// for equality only; a time in the future is as good as any other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    pub len: u64,
    pub modified: Option<SystemTime>,
    pub changed: (i64, i64),
    pub inode: u64,
}

impl Stamp {
    pub fn of(meta: &std::fs::Metadata) -> Stamp {
        Stamp {
            len: meta.len(),
            modified: meta.modified().ok(),
            changed: (meta.ctime(), meta.ctime_nsec()),
            inode: meta.ino(),
        }
    }
}

impl Item {
    /// `.claude/plans/<slug>.yaml` (under the configured plans folder).
    pub fn plan_path(&self, plans_dir: &Path) -> PathBuf {
        plan_path(plans_dir, &self.slug)
    }

    /// `docs/plans/YYYY-MM-DD-<slug>-design.md`, dated today.
    pub fn design_path(&self, today: jiff::civil::Date) -> PathBuf {
        design_path(&self.slug, today)
    }
}

/// The plan of the item with this slug.
pub fn plan_path(plans_dir: &Path, slug: &str) -> PathBuf {
    plans_dir.join(format!("{slug}.yaml"))
}

/// The design document of the item with this slug, planned on `day`.
pub fn design_path(slug: &str, day: jiff::civil::Date) -> PathBuf {
    PathBuf::from("docs/plans").join(format!("{}-{slug}-design.md", day.strftime("%Y-%m-%d")))
}

/// The largest backlog item read (an item is a page or two of markdown).
const ITEM_MAX_BYTES: u64 = 16 << 20;

/// Reads one item: its content, digest and stamp.
pub fn read_item(root: &Path, path: &Path) -> std::io::Result<(String, String, Stamp)> {
    let abs = root.join(path);
    // The stamp comes first: if the file changes while it is read, the next look sees a
    // different stamp, so a torn read is never taken for a stable one.
    let stamp = Stamp::of(&std::fs::metadata(&abs)?);
    // A regular file of a sane size: anything may be dropped in a backlog folder.
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(crate::fsx::open_regular_following(&abs)?, ITEM_MAX_BYTES + 1), &mut bytes)?;
    if bytes.len() as u64 > ITEM_MAX_BYTES {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("larger than {} MiB", ITEM_MAX_BYTES >> 20)));
    }
    let digest = sha256_hex(&bytes);
    Ok((String::from_utf8_lossy(&bytes).into_owned(), digest, stamp))
}

/// An item that is not waiting, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub path: PathBuf,
    pub why: String,
}

/// Items waiting in `folders` (defects first, then features; alphabetical in each), and the
/// ones skipped. `failed` holds the items (path and content digest) that failed before
/// (remembered across restarts): an item whose content was changed since is waiting again.
pub fn scan(root: &Path, defects: &Path, features: &Path, failed: &HashSet<(PathBuf, String)>) -> (Vec<Item>, Vec<Skipped>) {
    let mut items = Vec::new();
    let mut skipped = Vec::new();
    for (kind, dir) in [(Kind::Defect, defects), (Kind::Feature, features)] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else { continue };
        let mut names: Vec<PathBuf> = entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter(|e| e.path().extension().is_some_and(|x| x.eq_ignore_ascii_case("md")))
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .map(|e| dir.join(e.file_name()))
            .collect();
        names.sort();
        for path in names {
            let (text, digest, stamp) = match read_item(root, &path) {
                Ok(read) => read,
                Err(e) => {
                    skipped.push(Skipped { path, why: format!("cannot be read: {e}") });
                    continue;
                }
            };
            if failed.contains(&(path.clone(), digest.clone())) {
                skipped.push(Skipped { path, why: "it failed before (see .baton/logs/pipeline/failures.log); change it to try again".into() });
                continue;
            }
            if let Some(status) = done_status(&text) {
                skipped.push(Skipped { path, why: format!("marked `## Status: {status}`") });
                continue;
            }
            // An empty file is one about to be written (created first, filled next).
            if text.trim().is_empty() {
                skipped.push(Skipped { path, why: "empty".into() });
                continue;
            }
            let slug = slug(&path);
            items.push(Item { kind, path, slug, text, digest, stamp });
        }
    }
    (items, skipped)
}

/// `Fixed` or `Completed` when the item says it is done.
fn done_status(text: &str) -> Option<&'static str> {
    text.lines().find_map(|l| {
        let rest = l.trim().strip_prefix("##")?.trim_start().strip_prefix("Status:")?.trim().to_ascii_lowercase();
        if rest.starts_with("fixed") {
            Some("Fixed")
        } else if rest.starts_with("completed") {
            Some("Completed")
        } else {
            None
        }
    })
}

/// `001-Login fails.md` → `001-login-fails`.
pub fn slug(path: &Path) -> String {
    let stem = path.file_stem().map(|s| s.to_string_lossy().to_lowercase()).unwrap_or_default();
    let mut out = String::new();
    for c in stem.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-').to_string();
    if out.is_empty() {
        "item".into()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defects_first_then_features_alphabetically_and_done_items_skipped() {
        let d = tempfile::tempdir().unwrap();
        let w = |p: &str, t: &str| {
            let f = d.path().join(p);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, t).unwrap();
        };
        w("docs/feature-backlog/a-feature.md", "# A\n");
        w("docs/feature-backlog/b-done.md", "# B\n\n## Status: Completed\n");
        w("docs/defect-backlog/z-bug.md", "# Z\n");
        w("docs/defect-backlog/c-fixed.md", "# C\n## Status: fixed (2026-01-01)\n");
        w("docs/defect-backlog/completed/old.md", "# old\n");
        w("docs/defect-backlog/notes.txt", "not markdown\n");
        w("docs/feature-backlog/c-empty.md", " \n");
        let digest = sha256_hex(b"# A\n");
        let failed: HashSet<(PathBuf, String)> = [(PathBuf::from("docs/feature-backlog/a-feature.md"), digest)].into_iter().collect();
        let (items, skipped) = scan(d.path(), Path::new("docs/defect-backlog"), Path::new("docs/feature-backlog"), &failed);
        let paths: Vec<String> = items.iter().map(|i| i.path.display().to_string()).collect();
        assert_eq!(paths, ["docs/defect-backlog/z-bug.md"]);
        let why: Vec<(String, String)> = skipped.iter().map(|s| (s.path.display().to_string(), s.why.clone())).collect();
        assert!(why.contains(&("docs/defect-backlog/c-fixed.md".into(), "marked `## Status: Fixed`".into())), "{why:?}");
        assert!(why.contains(&("docs/feature-backlog/b-done.md".into(), "marked `## Status: Completed`".into())));
        assert!(why.iter().any(|(p, w)| p.ends_with("a-feature.md") && w.contains("failed before")));
        assert!(why.contains(&("docs/feature-backlog/c-empty.md".into(), "empty".into())), "{why:?}");
        assert_eq!(items[0].kind, Kind::Defect);
        assert_eq!(items[0].text, "# Z\n");
        assert_eq!(items[0].digest, sha256_hex(b"# Z\n"));

        // A failed item whose content changed since is waiting again.
        w("docs/feature-backlog/a-feature.md", "# A, clarified\n");
        let (items, _) = scan(d.path(), Path::new("docs/defect-backlog"), Path::new("docs/feature-backlog"), &failed);
        assert!(items.iter().any(|i| i.path.ends_with("a-feature.md")));
    }

    #[test]
    fn slugs_are_file_name_safe() {
        assert_eq!(slug(Path::new("x/001-Login fails!.md")), "001-login-fails");
        assert_eq!(slug(Path::new("x/---.md")), "item");
        let stamp = Stamp { len: 0, modified: None, changed: (0, 0), inode: 0 };
        let i = Item { kind: Kind::Feature, path: "f/x.md".into(), slug: "x".into(), text: String::new(), digest: String::new(), stamp };
        assert_eq!(i.plan_path(Path::new(".claude/plans")), PathBuf::from(".claude/plans/x.yaml"));
        assert_eq!(i.design_path(jiff::civil::date(2026, 2, 1)), PathBuf::from("docs/plans/2026-02-01-x-design.md"));
    }
}
