//! The plans the repository knows: the plan files in `[paths] plans_dir`, and the plans the run
//! history has runs or attempts of (a plan elsewhere, or deleted since). A URL names a plan by
//! its id from this list, and only a plan of this list is ever read: no path is made of a URL.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::Site;
use crate::store::{Store, StoreError};

/// A plan as the server names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Known {
    /// Its name in URLs: the file name without `.yaml` when no other known plan has that
    /// name, else the path.
    pub id: String,
    /// The path from the repository root: the plan's key in the run history.
    pub path: String,
    /// The plan file is there.
    pub file: bool,
    /// The run history has runs or attempts of it.
    pub recorded: bool,
}

impl Known {
    /// The plan file's path (it may be gone).
    pub fn file_path(&self, root: &Path) -> PathBuf {
        root.join(&self.path)
    }
}

/// Every plan of the repository, by path: the plan files in the plans folder, the YAML files at
/// the root that are plans (`baton init` writes `plan.yaml` there), and the plans the run
/// history has runs or attempts of.
pub fn known(site: &Site) -> Result<Vec<Known>, StoreError> {
    let mut found: Vec<Known> = Vec::new();
    for f in plan_files(site) {
        let path = crate::store::plan_key(&site.root, &f);
        if !found.iter().any(|k| k.path == path) {
            found.push(Known { id: String::new(), path, file: true, recorded: false });
        }
    }
    // A run history that cannot be read leaves the plan files (the pages say what is wrong).
    let recorded = Store::open_existing(&site.root).ok().flatten().and_then(|s| s.plans().ok()).unwrap_or_default();
    {
        // A plan of the history is a path inside the repository, or it is no plan of it.
        let home = std::fs::canonicalize(&site.root).unwrap_or_else(|_| site.root.clone());
        // Through a link to a folder elsewhere is outside too; a file that is gone stays (it is
        // never read).
        let stays_inside = |p: &str| std::fs::canonicalize(site.root.join(p)).map_or(true, |real| real.starts_with(&home));
        for path in recorded.into_iter().filter(|p| inside(p) && stays_inside(p)) {
            match found.iter_mut().find(|k| k.path == path) {
                Some(k) => k.recorded = true,
                None => {
                    let file = site.root.join(&path).is_file();
                    found.push(Known { id: String::new(), path, file, recorded: true });
                }
            }
        }
    }
    // The pipeline's own runs are kept under a name that is no plan.
    found.retain(|k| k.path != "baton-pipeline");
    // A plan is named by its file name, unless another plan that is there has the same; a plan
    // whose file is gone gives its name up to one that is there.
    let stems: Vec<(String, bool)> = found.iter().map(|k| (stem(&k.path), k.file)).collect();
    for (i, k) in found.iter_mut().enumerate() {
        let (s, there) = &stems[i];
        let same = |want_there: bool| stems.iter().filter(|(o, t)| o == s && (*t || !want_there)).count();
        let unique = if *there { same(true) == 1 } else { same(false) == 1 };
        k.id = if unique && !s.is_empty() { s.clone() } else { k.path.clone() };
    }
    Ok(found)
}

/// The plan files there are: `*.yaml`/`*.yml` in the plans folder, and those at the repository
/// root whose text has a top-level `sections:` (a plan; not any YAML file lying there).
pub fn plan_files(site: &Site) -> Vec<PathBuf> {
    let yaml = |p: &Path| {
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        // A save's temp file starts with a dot.
        !name.starts_with('.') && (name.ends_with(".yaml") || name.ends_with(".yml"))
    };
    let files_in = |dir: &Path| -> Vec<PathBuf> {
        // A link to a plan file is one (as for `baton run`); what it leads to must be a file.
        let mut files: Vec<PathBuf> =
            std::fs::read_dir(dir).into_iter().flatten().flatten().map(|e| e.path()).filter(|p| yaml(p) && std::fs::metadata(p).is_ok_and(|m| m.is_file())).collect();
        files.sort();
        files
    };
    let mut files = files_in(&site.root.join(&site.config.paths.plans_dir));
    files.extend(files_in(&site.root).into_iter().filter(|p| looks_like_plan(p)));
    files
}

/// A YAML file with a top-level `sections:` key in its first 64 KiB.
fn looks_like_plan(path: &Path) -> bool {
    use std::io::Read;
    let mut head = Vec::new();
    if crate::fsx::open_regular_following(path).and_then(|f| f.take(64 * 1024).read_to_end(&mut head)).is_err() {
        return false;
    }
    String::from_utf8_lossy(&head).lines().any(|l| l.starts_with("sections:"))
}

/// A relative path that stays inside the folder it is relative to.
fn inside(path: &str) -> bool {
    let p = Path::new(path);
    !path.is_empty() && p.components().all(|c| matches!(c, std::path::Component::Normal(_) | std::path::Component::CurDir))
}

/// The file name without `.yaml`/`.yml`.
pub fn stem(path: &str) -> String {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.strip_suffix(".yaml").or_else(|| name.strip_suffix(".yml")).unwrap_or(name).to_string()
}

/// The known plan a URL names, by id or by path.
pub fn find<'a>(known: &'a [Known], name: &str) -> Option<&'a Known> {
    known.iter().find(|k| k.id == name).or_else(|| known.iter().find(|k| k.path == name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_is_named_by_its_file_name_unless_two_share_it() {
        assert_eq!(stem(".claude/plans/feature.yaml"), "feature");
        assert_eq!(stem("a/b.yml"), "b");
        let k = |id: &str, path: &str| Known { id: id.into(), path: path.into(), file: true, recorded: false };
        let known = vec![k("feature", ".claude/plans/feature.yaml"), k("x/p.yaml", "x/p.yaml")];
        assert_eq!(find(&known, "feature").map(|k| k.path.as_str()), Some(".claude/plans/feature.yaml"));
        assert_eq!(find(&known, ".claude/plans/feature.yaml").map(|k| k.id.as_str()), Some("feature"));
        assert_eq!(find(&known, "../feature"), None);
        assert_eq!(find(&known, "/etc/passwd"), None);
    }
}
