//! The backlog folders: which markdown items wait to be done, in which order, and where each
//! one's plan and design doc go. Reads folders; writes nothing.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

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
    /// File-name-safe name, from the file name: `001-Login fails.md` → `001-login-fails`.
    pub slug: String,
    pub modified: Option<SystemTime>,
}

impl Item {
    /// `.claude/plans/<slug>.yaml` (under the configured plans folder).
    pub fn plan_path(&self, plans_dir: &Path) -> PathBuf {
        plans_dir.join(format!("{}.yaml", self.slug))
    }

    /// `docs/plans/YYYY-MM-DD-<slug>-design.md`, dated today.
    pub fn design_path(&self, today: jiff::civil::Date) -> PathBuf {
        PathBuf::from("docs/plans").join(format!("{}-{}-design.md", today.strftime("%Y-%m-%d"), self.slug))
    }
}

/// An item that is not waiting, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub path: PathBuf,
    pub why: String,
}

/// Items waiting in `folders` (defects first, then features; alphabetical in each), and the
/// ones skipped. `failed` holds items that failed during this daemon's life.
pub fn scan(root: &Path, defects: &Path, features: &Path, failed: &HashSet<PathBuf>) -> (Vec<Item>, Vec<Skipped>) {
    let mut items = Vec::new();
    let mut skipped = Vec::new();
    for (kind, dir) in [(Kind::Defect, defects), (Kind::Feature, features)] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else { continue };
        let mut names: Vec<(PathBuf, Option<SystemTime>)> = entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter(|e| e.path().extension().is_some_and(|x| x.eq_ignore_ascii_case("md")))
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .map(|e| (dir.join(e.file_name()), e.metadata().ok().and_then(|m| m.modified().ok())))
            .collect();
        names.sort();
        for (path, modified) in names {
            if failed.contains(&path) {
                skipped.push(Skipped { path, why: "failed earlier in this run of the daemon".into() });
                continue;
            }
            let text = std::fs::read_to_string(root.join(&path)).unwrap_or_default();
            if let Some(status) = done_status(&text) {
                skipped.push(Skipped { path, why: format!("marked `## Status: {status}`") });
                continue;
            }
            let slug = slug(&path);
            items.push(Item { kind, path, slug, modified });
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
        let failed: HashSet<PathBuf> = [PathBuf::from("docs/feature-backlog/a-feature.md")].into_iter().collect();
        let (items, skipped) = scan(d.path(), Path::new("docs/defect-backlog"), Path::new("docs/feature-backlog"), &failed);
        let paths: Vec<String> = items.iter().map(|i| i.path.display().to_string()).collect();
        assert_eq!(paths, ["docs/defect-backlog/z-bug.md"]);
        let why: Vec<(String, String)> = skipped.iter().map(|s| (s.path.display().to_string(), s.why.clone())).collect();
        assert!(why.contains(&("docs/defect-backlog/c-fixed.md".into(), "marked `## Status: Fixed`".into())), "{why:?}");
        assert!(why.contains(&("docs/feature-backlog/b-done.md".into(), "marked `## Status: Completed`".into())));
        assert!(why.iter().any(|(p, w)| p.ends_with("a-feature.md") && w.contains("failed earlier")));
        assert_eq!(items[0].kind, Kind::Defect);
    }

    #[test]
    fn slugs_are_file_name_safe() {
        assert_eq!(slug(Path::new("x/001-Login fails!.md")), "001-login-fails");
        assert_eq!(slug(Path::new("x/---.md")), "item");
        let i = Item { kind: Kind::Feature, path: "f/x.md".into(), slug: "x".into(), modified: None };
        assert_eq!(i.plan_path(Path::new(".claude/plans")), PathBuf::from(".claude/plans/x.yaml"));
        assert_eq!(i.design_path(jiff::civil::date(2026, 2, 1)), PathBuf::from("docs/plans/2026-02-01-x-design.md"));
    }
}
