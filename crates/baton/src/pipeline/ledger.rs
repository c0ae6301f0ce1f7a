//! Which backlog item each of the pipeline's plans belongs to.
//!
//! A plan's record (`<logs>/pipeline/plan-<slug>/item.json`) names the item it was made for —
//! its path and the SHA-256 of its content — and how far it got (planning, accepted, archived).
//! The pipeline resumes a plan only when its record says it belongs to the item in hand: same
//! path, same content, not archived. Anything else — a plan the user wrote, a plan made for an
//! earlier item of the same name, or for the same file before its content changed — is left
//! alone, and the item is planned under the next free name (`<slug>-2`, `<slug>-3`, …). The old
//! plan is never moved or rewritten: it stays next to its item (or its archived item), with its
//! history.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::backlog::{self, Item};

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("cannot write the pipeline's record {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// How far the pipeline got with an item's plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// A planning session was started; its plan was not accepted (yet).
    Planning,
    /// The plan was written and valid; it is run, or resumed.
    Accepted,
    /// The plan completed and the item was archived.
    Archived,
}

/// The record of one plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The backlog item, relative to the repository root.
    pub item: PathBuf,
    /// The SHA-256 of the item's content when the plan was made, then of any content it was
    /// given while the pipeline worked on it (an agent may note findings in it).
    pub sha256: Vec<String>,
    pub plan: PathBuf,
    pub design: PathBuf,
    pub state: State,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archived_to: Option<PathBuf>,
}

impl Record {
    /// Whether this is the plan of `item` as it is now. A planning session that never ended
    /// with an accepted plan made nothing to keep: its name goes back to its file, whatever
    /// the content is now (it is planned again from that content).
    fn belongs_to(&self, item: &Item) -> bool {
        self.item == item.path
            && match self.state {
                State::Planning => true,
                State::Accepted => self.sha256.contains(&item.digest),
                State::Archived => false,
            }
    }

    /// Why a plan with this record is not `item`'s.
    fn not_for(&self, item: &Item) -> String {
        if self.item != item.path {
            format!("was made for another item, {}", self.item.display())
        } else if let (State::Archived, Some(to)) = (self.state, &self.archived_to) {
            format!("was made for an earlier item of this name, archived as {}", to.display())
        } else {
            "was made for this file when its content was different".into()
        }
    }
}

/// Where an item's plan goes, and what the pipeline knows of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub slug: String,
    pub plan: PathBuf,
    pub design: PathBuf,
    /// The record of this item's plan, when the pipeline already made (or started) one.
    pub record: Option<Record>,
    /// Why the item's own name was not used, when it was not.
    pub passed_over: Option<String>,
}

/// The records, kept beside the planning transcripts.
pub struct Ledger {
    root: PathBuf,
    /// `<logs>/pipeline`.
    dir: PathBuf,
    plans_dir: PathBuf,
}

impl Ledger {
    pub fn new(root: &Path, logs_dir: &Path, plans_dir: &Path) -> Ledger {
        Ledger {
            root: root.to_path_buf(),
            dir: root.join(logs_dir).join("pipeline"),
            plans_dir: plans_dir.to_path_buf(),
        }
    }

    /// Removes the temporary files of record writes a crash cut short. Only for the holder of
    /// the pipeline's lock: no write of anyone else's can be under way then.
    pub fn remove_stale_temps(&self) {
        for entry in std::fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            if entry.file_name().to_string_lossy().starts_with("plan-") {
                crate::plan::remove_stale_temps(&entry.path().join("item.json"));
            }
        }
    }

    fn record_path(&self, slug: &str) -> PathBuf {
        self.dir.join(format!("plan-{slug}")).join("item.json")
    }

    /// The record of the plan named `slug`, if the pipeline made one. A record that cannot be
    /// read or parsed still marks the name as taken.
    fn read(&self, slug: &str) -> Option<Result<Record, String>> {
        let path = self.record_path(slug);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => return Some(Err(format!("has a record the pipeline cannot read ({}: {e})", path.display()))),
        };
        Some(serde_json::from_str(&text).map_err(|e| format!("has a damaged record ({}: {e})", path.display())))
    }

    /// Every record, by slug.
    fn all(&self) -> Vec<(String, Record)> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return Vec::new() };
        let mut out: Vec<(String, Record)> = entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.strip_prefix("plan-").map(str::to_string))
            .filter_map(|slug| Some((slug.clone(), self.read(&slug)?.ok()?)))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Where `item`'s plan is, or goes: the plan the records give it, else the first free name
    /// from its own slug on (a name is free when no record and no file claims it). Reads only.
    pub fn assign(&self, item: &Item, today: jiff::civil::Date) -> Assignment {
        if let Some((slug, record)) = self.all().into_iter().find(|(_, r)| r.belongs_to(item)) {
            return Assignment {
                slug,
                plan: record.plan.clone(),
                design: record.design.clone(),
                record: Some(record),
                passed_over: None,
            };
        }
        let mut passed_over = None;
        let mut n: u64 = 0;
        loop {
            n += 1;
            let slug = if n == 1 { item.slug.clone() } else { format!("{}-{n}", item.slug) };
            let plan = backlog::plan_path(&self.plans_dir, &slug);
            let design = backlog::design_path(&slug, today);
            let taken = match self.read(&slug) {
                Some(Ok(record)) => Some(record.not_for(item)),
                Some(Err(why)) => Some(why),
                None if self.root.join(&plan).symlink_metadata().is_ok() => Some("was not made by the pipeline".into()),
                None if self.root.join(&design).symlink_metadata().is_ok() => {
                    Some(format!("cannot be used: its design document {} already exists", design.display()))
                }
                None => None,
            };
            match taken {
                Some(why) => {
                    passed_over.get_or_insert_with(|| format!("{} {why}", plan.display()));
                }
                None => return Assignment { slug, plan, design, record: None, passed_over },
            }
        }
    }

    /// Saves the record of the plan named `slug` (atomically: a crash leaves the old or the new).
    pub fn write(&self, slug: &str, record: &Record) -> Result<(), LedgerError> {
        let path = self.record_path(slug);
        let text = serde_json::to_string_pretty(record).unwrap_or_default() + "\n";
        let io = |source| LedgerError::Write { path: path.clone(), source };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        crate::plan::write_atomic(&path, text.as_bytes()).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::backlog::{Kind, Stamp};

    fn item(path: &str, text: &str) -> Item {
        Item {
            kind: Kind::Defect,
            path: path.into(),
            slug: backlog::slug(Path::new(path)),
            text: text.into(),
            digest: crate::pipeline::digest::sha256_hex(text.as_bytes()),
            stamp: Stamp { len: 0, modified: None, changed: (0, 0), inode: 0 },
        }
    }

    fn record(item: &Item, slug: &str, state: State) -> Record {
        Record {
            item: item.path.clone(),
            sha256: vec![item.digest.clone()],
            plan: backlog::plan_path(Path::new(".claude/plans"), slug),
            design: backlog::design_path(slug, jiff::civil::date(2026, 1, 1)),
            state,
            archived_to: (state == State::Archived).then(|| PathBuf::from("d/completed/x.md")),
        }
    }

    #[test]
    fn a_plan_is_resumed_only_for_the_item_and_content_it_was_made_for() {
        let d = tempfile::tempdir().unwrap();
        let ledger = Ledger::new(d.path(), Path::new(".baton/logs"), Path::new(".claude/plans"));
        let today = jiff::civil::date(2026, 2, 3);
        let x = item("d/x.md", "# X\n");

        // Nothing known: its own name.
        let a = ledger.assign(&x, today);
        assert_eq!((a.slug.as_str(), a.record.is_none(), a.passed_over.is_none()), ("x", true, true));
        assert_eq!(a.design, PathBuf::from("docs/plans/2026-02-03-x-design.md"));

        // Its own record: resumed, with the design path recorded then.
        ledger.write("x", &record(&x, "x", State::Accepted)).unwrap();
        std::fs::create_dir_all(d.path().join(".claude/plans")).unwrap();
        std::fs::write(d.path().join(".claude/plans/x.yaml"), "plan").unwrap();
        let a = ledger.assign(&x, today);
        assert_eq!(a.slug, "x");
        assert_eq!(a.record.as_ref().map(|r| r.state), Some(State::Accepted));
        assert_eq!(a.design, PathBuf::from("docs/plans/2026-01-01-x-design.md"));

        // The same file with other content: a new item, under the next name.
        let x2 = item("d/x.md", "# X, another one\n");
        let a = ledger.assign(&x2, today);
        assert_eq!((a.slug.as_str(), a.record.is_none()), ("x-2", true));
        assert_eq!(a.passed_over.as_deref(), Some(".claude/plans/x.yaml was made for this file when its content was different"));

        // An unfinished planning session's name goes back to its file, whatever its content.
        ledger.write("x", &record(&x, "x", State::Planning)).unwrap();
        assert_eq!(ledger.assign(&x2, today).slug, "x");

        // Once archived, even the same content is a new item.
        ledger.write("x", &record(&x, "x", State::Archived)).unwrap();
        let a = ledger.assign(&x, today);
        assert_eq!(a.slug, "x-2");
        assert!(a.passed_over.unwrap().contains("archived as d/completed/x.md"));

        // Another item with the same slug.
        let other = item("f/X.md", "# X\n");
        ledger.write("x-2", &record(&x2, "x-2", State::Accepted)).unwrap();
        let a = ledger.assign(&other, today);
        assert_eq!(a.slug, "x-3");
        // ...and the plan of x2 is still found under its name.
        assert_eq!(ledger.assign(&x2, today).slug, "x-2");
    }

    #[test]
    fn a_plan_or_design_the_pipeline_did_not_make_is_never_taken() {
        let d = tempfile::tempdir().unwrap();
        let ledger = Ledger::new(d.path(), Path::new(".baton/logs"), Path::new(".claude/plans"));
        let today = jiff::civil::date(2026, 2, 3);
        std::fs::create_dir_all(d.path().join(".claude/plans")).unwrap();
        std::fs::write(d.path().join(".claude/plans/y.yaml"), "mine").unwrap();
        std::fs::create_dir_all(d.path().join("docs/plans")).unwrap();
        std::fs::write(d.path().join("docs/plans/2026-02-03-y-2-design.md"), "mine too").unwrap();
        let a = ledger.assign(&item("d/y.md", "# Y\n"), today);
        assert_eq!(a.slug, "y-3");
        assert_eq!(a.passed_over.as_deref(), Some(".claude/plans/y.yaml was not made by the pipeline"));
        // A damaged record keeps its name taken.
        std::fs::create_dir_all(d.path().join(".baton/logs/pipeline/plan-z")).unwrap();
        std::fs::write(d.path().join(".baton/logs/pipeline/plan-z/item.json"), "{").unwrap();
        assert_eq!(ledger.assign(&item("d/z.md", "# Z\n"), today).slug, "z-2");
    }
}
