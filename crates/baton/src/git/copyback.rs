//! Copy-back: lands what a task changed in its worktree onto the main working tree — without
//! `git merge`, without last-write-wins, and without ever writing outside the repository.
//!
//! The contract of [`copy_back`]:
//! - **What is taken**: everything that differs between the fork commit and the worktree's files
//!   on disk — the agent's commits *and* what it left uncommitted or untracked (ignored files
//!   are not taken). Additions, modifications, deletions, renames (as a deletion plus an
//!   addition), exec-bit changes, symlinks (as symlinks, never followed). Paths under `skip`
//!   prefixes (coordination files) are left out.
//! - **Per path**, with base = the fork's version, ours = main's file on disk now, theirs = the
//!   worktree's: ours == base → theirs is written (or the file deleted); theirs == ours → nothing
//!   to do; otherwise a text file present in all three is merged three-way (`git merge-file`);
//!   anything else — a merge with conflicts, binary content, both sides creating the path with
//!   different content, one side deleting what the other changed, symlinks that differ — is a
//!   conflict.
//! - **All or nothing per task**: every path is checked before the first byte is written. Any
//!   unsafe path → [`CopyBackError::Unsafe`]; any path in `protected` that would change →
//!   [`CopyBackError::ProtectedFile`]; any conflict → [`CopyBackError::Conflict`] with all
//!   conflicting paths. In each of these main is left exactly as it was.
//! - **Safety**: paths with `..`, `.`, `.git` (any case) or absolute are refused; so is a path
//!   whose parent in main is a symlink (unless this landing deletes that symlink first), a
//!   symlink whose target leaves the repository, and one that leads into a `.git` folder (by
//!   name or through a symlink main has). Files are written atomically (temporary file in the
//!   same folder, then rename) with the worktree's exec bit.
//! - **Content, not stat data**: what changed in the worktree is found by hashing every file
//!   ([`snapshot`]); nothing is judged unchanged because its size and times look the same.
//! - **Never touched**: the worktree, its branch, main's index and HEAD. Committing the landed
//!   paths is the caller's job, and so is calling this for one task at a time per main tree.
//!   Calling it again after a landing finds nothing to do.
//! - **Crashes**: [`prepare`] decides everything, [`Prepared::intents`] gives each path's blob
//!   before and after for a journal, [`apply`] writes. A landing cut short (a crash, `kill -9`,
//!   disk full) is completed from the journaled intents alone by [`finish`]. [`unlanded`] tells
//!   whether everything in a worktree is in main, before anyone deletes it.
//! - Files go through no git filters (autocrlf, LFS): content is compared and written as the
//!   blobs are.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::worktree::{snapshot, Worktree};
use super::{git_bytes, git_output, GitError};

/// What landed in main; paths relative to the repository root, sorted.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Landing {
    /// Written with the worktree's content (new, changed, or exec bit only).
    pub written: Vec<PathBuf>,
    pub deleted: Vec<PathBuf>,
    /// Written with a clean three-way merge of main's and the worktree's changes.
    pub merged: Vec<PathBuf>,
}

impl Landing {
    pub fn is_empty(&self) -> bool {
        self.written.is_empty() && self.deleted.is_empty() && self.merged.is_empty()
    }

    /// Every path this landing touched (to stage for the landing commit).
    pub fn paths(&self) -> impl Iterator<Item = &PathBuf> {
        self.written.iter().chain(&self.merged).chain(&self.deleted)
    }
}

/// Why a path was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnsafeReason {
    /// Absolute, or with `..` or `.` in it.
    NotInside,
    /// Inside a `.git` folder.
    GitDir,
    /// Main has a symlink where the path needs a folder: writing would follow it.
    SymlinkedParent(PathBuf),
    /// A symlink whose target leaves the repository.
    SymlinkOutside(PathBuf),
    /// A symlink whose target is in a `.git` folder.
    SymlinkIntoGit(PathBuf),
    /// A nested repository or submodule (gitlink): there is no file to copy.
    Gitlink,
    /// The folder in main is another repository or worktree (has a `.git`): not this tree's.
    NestedRepository(PathBuf),
}

impl fmt::Display for UnsafeReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnsafeReason::NotInside => f.write_str("the path is not inside the repository"),
            UnsafeReason::GitDir => f.write_str("the path is inside a .git folder"),
            UnsafeReason::SymlinkedParent(p) => {
                write!(
                    f,
                    "{} is a symlink in the main working tree; writing through it could leave the repository",
                    p.display()
                )
            }
            UnsafeReason::SymlinkOutside(t) => write!(f, "it is a symlink to {}, outside the repository", t.display()),
            UnsafeReason::SymlinkIntoGit(t) => write!(f, "it is a symlink to {}, inside a .git folder", t.display()),
            UnsafeReason::Gitlink => {
                f.write_str("it is a nested repository or submodule, which copy-back does not carry")
            }
            UnsafeReason::NestedRepository(p) => {
                write!(f, "{} is another repository or worktree in the main working tree", p.display())
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CopyBackError {
    #[error("merge conflict in {}", join(paths))]
    Conflict { paths: Vec<PathBuf> },
    #[error("refused to land {}: {why}", path.display())]
    Unsafe { path: PathBuf, why: UnsafeReason },
    #[error(
        "{} has uncommitted changes in the main working tree that the task would overwrite; \
         commit or stash them, then run again",
        path.display()
    )]
    ProtectedFile { path: PathBuf },
    #[error(transparent)]
    Git(#[from] GitError),
    #[error("cannot {what} {}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn join(paths: &[PathBuf]) -> String {
    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> CopyBackError + 'a {
    move |source| CopyBackError::Io { what, path: path.to_path_buf(), source }
}

/// Lands the work of `wt` in the main working tree at `root` — see the module doc for the
/// contract. `skip`: path prefixes never taken (`.claude/plans/`, a file like
/// `.claude/agent-claims.json`). `protected`: files (relative to `root`, or absolute under it;
/// a folder covers what is inside) with the user's uncommitted changes, never overwritten.
/// [`prepare`] then [`apply`], for a caller with nothing to record in between.
pub fn copy_back(
    root: &Path,
    wt: &Worktree,
    skip: &[&str],
    protected: &HashSet<PathBuf>,
) -> Result<Landing, CopyBackError> {
    let prepared = prepare(root, wt, skip, protected)?;
    apply(root, prepared)
}

/// A landing checked and decided, nothing written yet: what [`apply`] will do, and what a
/// journal records first ([`Prepared::intents`]) so that a crash while writing can be finished.
#[derive(Debug)]
pub struct Prepared {
    plans: BTreeMap<PathBuf, Plan>,
}

impl Prepared {
    /// Whether applying it would change nothing in main.
    pub fn is_empty(&self) -> bool {
        self.plans.values().all(|p| matches!(p.action, Action::Nothing))
    }

    /// Every path the landing will change, with main's content before and after as git blobs
    /// (merge results and main's side of a merge are written to the object store, so that a
    /// landing interrupted half-way can be finished from the journal alone).
    pub fn intents(&self, root: &Path) -> Result<Vec<Intent>, CopyBackError> {
        let mut out = Vec::new();
        for (path, plan) in &self.plans {
            let after = match &plan.action {
                Action::Nothing | Action::Conflict => continue,
                Action::Write => plan.theirs_id.clone(),
                Action::Delete => None,
                Action::Merge(merged) => Some(hash_entry(root, merged)?),
            };
            let before = match &plan.ours {
                Ours::Is(e) if Some(e) == plan.base.as_ref() => plan.base_id.clone(),
                Ours::Is(e) => Some(hash_entry(root, e)?),
                _ => None,
            };
            out.push(Intent { path: path.as_os_str().as_bytes().to_vec(), before, after });
        }
        Ok(out)
    }
}

/// A blob of git's, with the mode of its tree entry (`0o100644`, `0o100755`, `0o120000`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Blob {
    pub mode: u32,
    pub oid: String,
}

/// One path of a landing as a journal records it before the first byte is written.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Intent {
    /// Relative to the repository root, as bytes: a file name need not be UTF-8.
    pub path: Vec<u8>,
    /// What main held before the landing; `None`: nothing.
    pub before: Option<Blob>,
    /// What main holds once landed; `None`: the path is deleted.
    pub after: Option<Blob>,
}

impl Intent {
    pub fn path(&self) -> PathBuf {
        PathBuf::from(OsStr::from_bytes(&self.path))
    }
}

/// Checks and decides a landing (see [`copy_back`]) without writing anything.
pub fn prepare(
    root: &Path,
    wt: &Worktree,
    skip: &[&str],
    protected: &HashSet<PathBuf>,
) -> Result<Prepared, CopyBackError> {
    let changes = changes(wt, skip)?;
    if changes.is_empty() {
        return Ok(Prepared { plans: BTreeMap::new() });
    }
    for c in &changes {
        check_lexically(&c.path)?;
        if [&c.base, &c.theirs].into_iter().flatten().any(|s| s.mode == GITLINK) {
            return Err(unsafe_path(&c.path, UnsafeReason::Gitlink));
        }
    }
    let oids: Vec<&str> = changes.iter().flat_map(|c| [&c.base, &c.theirs]).flatten().map(|s| s.oid.as_str()).collect();
    let blobs = read_blobs(&wt.path, &oids)?;
    let git_dirs = git_dirs(root)?;

    // Pass 1: every path's three versions and what to do, as main looks now.
    let mut plans: BTreeMap<PathBuf, Plan> = BTreeMap::new();
    for c in &changes {
        let base = entry(&blobs, &wt.path, &c.base)?;
        let theirs = entry(&blobs, &wt.path, &c.theirs)?;
        if let Some(Entry::Link(target)) = &theirs {
            check_link_target(&c.path, target)?;
            check_link_not_into_git(root, &c.path, target, &git_dirs)?;
        }
        let ours = read_ours(root, &c.path)?;
        let blob = |s: &Option<Side>| s.as_ref().map(|s| Blob { mode: s.mode, oid: s.oid.clone() });
        let (base_id, theirs_id) = (blob(&c.base), blob(&c.theirs));
        plans.insert(c.path.clone(), Plan { base, theirs, ours, base_id, theirs_id, action: Action::Nothing });
    }
    // Deletions are decided by main's side alone (unchanged since the fork).
    let deletes: HashSet<PathBuf> = plans
        .iter()
        .filter(|(_, plan)| plan.theirs.is_none() && matches!(&plan.ours, Ours::Is(e) if Some(e) == plan.base.as_ref()))
        .map(|(path, _)| path.clone())
        .collect();

    // Pass 2: paths blocked by something this landing deletes first; then each path's action.
    let mut conflicts = Vec::new();
    for (path, plan) in plans.iter_mut() {
        match &plan.ours {
            Ours::BelowSymlink(link) if !deletes.contains(link) => {
                return Err(unsafe_path(path, UnsafeReason::SymlinkedParent(link.clone())));
            }
            Ours::BelowRepository(repo) => {
                return Err(unsafe_path(path, UnsafeReason::NestedRepository(repo.clone())));
            }
            Ours::BelowSymlink(_) | Ours::BelowFile(_) | Ours::Dir => {
                let cleared = match &plan.ours {
                    Ours::BelowSymlink(_) => true,
                    Ours::BelowFile(file) => deletes.contains(file),
                    _ => dir_emptied_by(root, path, &deletes),
                };
                if cleared {
                    plan.ours = Ours::Absent;
                }
            }
            _ => {}
        }
        plan.action = decide(root, path, plan)?;
        if matches!(plan.action, Action::Conflict) {
            conflicts.push(path.clone());
        }
    }
    for (path, plan) in &plans {
        // Even a clean merge would put the user's uncommitted edit into the landing commit.
        if !matches!(plan.action, Action::Nothing) && is_protected(root, path, protected) {
            return Err(CopyBackError::ProtectedFile { path: path.clone() });
        }
    }
    if !conflicts.is_empty() {
        return Err(CopyBackError::Conflict { paths: conflicts });
    }
    Ok(Prepared { plans })
}

/// Writes a prepared landing into main. An I/O error part-way leaves it half-landed: a caller
/// that journaled [`Prepared::intents`] first can [`finish`] it.
pub fn apply(root: &Path, prepared: Prepared) -> Result<Landing, CopyBackError> {
    let plans = prepared.plans;
    // Deletions first, so a file can give way to a folder of the same name.
    let mut landing = Landing::default();
    for (path, plan) in &plans {
        if matches!(plan.action, Action::Delete) {
            delete_path(root, path)?;
            landing.deleted.push(path.clone());
        }
    }
    for (path, plan) in plans {
        match plan.action {
            Action::Write => {
                if let Some(theirs) = &plan.theirs {
                    write_entry(root, &path, theirs)?;
                }
                landing.written.push(path);
            }
            Action::Merge(merged) => {
                write_entry(root, &path, &merged)?;
                landing.merged.push(path);
            }
            Action::Nothing | Action::Delete | Action::Conflict => {}
        }
    }
    Ok(landing)
}

/// What [`finish`] found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Finished {
    /// Paths that now hold what the landing meant (written now, or already there).
    pub landed: Vec<PathBuf>,
    /// Paths that hold neither what was there before nor what the landing meant: changed by
    /// someone since, left alone.
    pub diverged: Vec<PathBuf>,
}

/// Finishes a landing that was interrupted (a crash, `kill -9`) from its journaled intents:
/// each path still holding its `before` content gets its `after`; one already holding its
/// `after` is done; anything else is left alone and reported. Content comes from the object
/// store of the repository at `root` only, so it works with the worktree gone.
pub fn finish(root: &Path, intents: &[Intent]) -> Result<Finished, CopyBackError> {
    let git_dirs = git_dirs(root)?;
    let oids: Vec<&str> = intents.iter().filter_map(|i| i.after.as_ref()).map(|b| b.oid.as_str()).collect();
    let blobs = read_blobs(root, &oids)?;
    let mut out = Finished::default();
    let mut folders: HashSet<PathBuf> = HashSet::new();
    for intent in intents {
        let path = intent.path();
        check_lexically(&path)?;
        folders.insert(root.join(path.parent().unwrap_or(Path::new(""))));
        let after = entry(&blobs, root, &intent.after.as_ref().map(|b| Side { mode: b.mode, oid: b.oid.clone() }))?;
        if let Some(Entry::Link(target)) = &after {
            check_link_target(&path, target)?;
            check_link_not_into_git(root, &path, target, &git_dirs)?;
        }
        let now = match read_ours(root, &path)? {
            Ours::Absent => None,
            Ours::Is(e) => Some(hash_entry_id(root, &e)?),
            _ => {
                out.diverged.push(path);
                continue;
            }
        };
        if now.as_ref() == intent.after.as_ref() {
            out.landed.push(path);
        } else if now.as_ref() == intent.before.as_ref() {
            match &after {
                Some(e) => write_entry(root, &path, e)?,
                None => delete_path(root, &path)?,
            }
            out.landed.push(path);
        } else {
            out.diverged.push(path);
        }
    }
    for folder in folders {
        remove_dead_temps(&folder);
    }
    Ok(out)
}

/// Removes the temporary files (`.baton-<pid>-<n>.tmp`, see [`write_entry`]) a process that
/// no longer runs left in `folder` when it was killed mid-write.
fn remove_dead_temps(folder: &Path) {
    let Ok(entries) = std::fs::read_dir(folder) else { return };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(".baton-")).and_then(|n| n.strip_suffix(".tmp")) else {
            continue;
        };
        let Some((pid, seq)) = rest.split_once('-') else { continue };
        let (Ok(pid), true) = (pid.parse::<libc::pid_t>(), seq.bytes().all(|b| b.is_ascii_digit())) else { continue };
        // SAFETY: signal 0 only checks that the process exists; nothing is delivered.
        let alive = pid > 0
            && (unsafe { libc::kill(pid, 0) } == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM));
        if !alive {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Paths whose change in the worktree (fork → its files now) main does not hold: neither the
/// worktree's version nor, for a path in `merged`, a three-way merge of it. Empty means every
/// bit of the task's work is in main and its worktree may go. Reads every file's content.
pub fn unlanded(root: &Path, wt: &Worktree, skip: &[&str], merged: &HashSet<PathBuf>) -> Result<Vec<PathBuf>, CopyBackError> {
    let changes = changes(wt, skip)?;
    let oids: Vec<&str> = changes.iter().filter_map(|c| c.theirs.as_ref()).map(|s| s.oid.as_str()).collect();
    let blobs = read_blobs(&wt.path, &oids)?;
    let mut out = Vec::new();
    for c in &changes {
        if merged.contains(&c.path) {
            continue;
        }
        let theirs = entry(&blobs, &wt.path, &c.theirs)?;
        let held = match (read_ours(root, &c.path)?, &theirs) {
            (Ours::Is(e), Some(t)) => &e == t,
            (Ours::Absent | Ours::BelowFile(_), None) => true,
            _ => false,
        };
        if !held {
            out.push(c.path.clone());
        }
    }
    Ok(out)
}

/// What differs between the fork and the worktree's files now, less the `skip` prefixes.
fn changes(wt: &Worktree, skip: &[&str]) -> Result<Vec<Change>, CopyBackError> {
    let tree = snapshot(&wt.path)?;
    let raw = git_bytes(
        &wt.path,
        &["diff-tree", "-r", "-z", "--no-renames", "--no-abbrev", "--no-commit-id", wt.fork.as_str(), tree.as_str()],
        &[],
        None,
    )?;
    Ok(parse_raw(&raw)
        .into_iter()
        .filter(|c| !skip.iter().any(|s| c.path.starts_with(Path::new(s.trim_end_matches('/')))))
        .collect())
}

/// One side's content, from blobs read with [`read_blobs`].
fn entry(blobs: &HashMap<String, Vec<u8>>, dir: &Path, side: &Option<Side>) -> Result<Option<Entry>, CopyBackError> {
    let Some(side) = side else { return Ok(None) };
    let data = blobs.get(&side.oid).cloned().ok_or_else(|| {
        CopyBackError::Git(GitError::Failed {
            args: format!("cat-file --batch {}", side.oid),
            dir: dir.to_path_buf(),
            stderr: "object missing".to_string(),
        })
    })?;
    Ok(Some(if side.mode == SYMLINK { Entry::Link(data) } else { Entry::File { data, exec: side.mode == EXEC } }))
}

/// Writes an entry's content to the object store; its blob.
fn hash_entry(root: &Path, e: &Entry) -> Result<Blob, CopyBackError> {
    hash_blob(root, e, true)
}

/// An entry's blob id, without writing it.
fn hash_entry_id(root: &Path, e: &Entry) -> Result<Blob, CopyBackError> {
    hash_blob(root, e, false)
}

fn hash_blob(root: &Path, e: &Entry, write: bool) -> Result<Blob, CopyBackError> {
    let (data, mode) = match e {
        Entry::Link(t) => (t, SYMLINK),
        Entry::File { data, exec } => (data, if *exec { EXEC } else { 0o100_644 }),
    };
    let mut args = vec!["hash-object", "-t", "blob", "--no-filters", "--stdin"];
    if write {
        args.push("-w");
    }
    let out = git_bytes(root, &args, &[], Some(data))?;
    Ok(Blob { mode, oid: String::from_utf8_lossy(&out).trim().to_string() })
}

fn delete_path(root: &Path, path: &Path) -> Result<(), CopyBackError> {
    let full = root.join(path);
    match std::fs::remove_file(&full) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("delete", &full)(e)),
    }
    remove_empty_parents(root, path);
    Ok(())
}

/// The repository's git folders (its own and, for a worktree, the common one), canonical.
fn git_dirs(root: &Path) -> Result<Vec<PathBuf>, GitError> {
    let out = super::git(root, &["rev-parse", "--absolute-git-dir", "--git-common-dir"])?;
    Ok(out
        .lines()
        .map(|l| {
            let p = PathBuf::from(l);
            let p = if p.is_absolute() { p } else { root.join(p) };
            std::fs::canonicalize(&p).unwrap_or(p)
        })
        .collect())
}

/// How to recover the work of a task that did not land, by hand: for the failure message.
pub fn recovery_hint(root: &Path, wt: &Worktree) -> String {
    let r = crate::report::safe::shell_quote(&root.to_string_lossy());
    let w = crate::report::safe::shell_quote(&wt.path.to_string_lossy());
    let b = crate::report::safe::shell_quote(&wt.branch);
    let short = &wt.fork[..wt.fork.len().min(12)];
    format!(
        "the work is kept in worktree {w} on branch {b} (forked from {short}).\n\
         \x20 to see it:     git -C {w} status; git -C {w} diff {short}\n\
         \x20 to land it:    git -C {w} add -A && git -C {w} commit -m 'land {b}'\n\
         \x20                git -C {r} merge {b}   (resolve the conflict; keep main's plan file)\n\
         \x20 then clean up: git -C {r} worktree remove {w} && git -C {r} branch -D {b}"
    )
}


const SYMLINK: u32 = 0o120_000;
const EXEC: u32 = 0o100_755;
const GITLINK: u32 = 0o160_000;

/// One side of a changed path in `diff-tree` raw output.
#[derive(Debug)]
struct Side {
    mode: u32,
    oid: String,
}

#[derive(Debug)]
struct Change {
    path: PathBuf,
    base: Option<Side>,
    theirs: Option<Side>,
}

/// Parses `diff-tree -r -z` raw output: `:<mode> <mode> <oid> <oid> <status>\0<path>\0`…
fn parse_raw(raw: &[u8]) -> Vec<Change> {
    let mut out = Vec::new();
    let mut fields = raw.split(|b| *b == 0);
    while let Some(meta) = fields.next() {
        let Some(meta) = meta.strip_prefix(b":") else { continue };
        let Some(path) = fields.next() else { break };
        let meta = String::from_utf8_lossy(meta);
        let parts: Vec<&str> = meta.split(' ').collect();
        if parts.len() < 5 {
            continue;
        }
        let side = |mode: &str, oid: &str| {
            let mode = u32::from_str_radix(mode, 8).unwrap_or(0);
            (mode != 0).then(|| Side { mode, oid: oid.to_string() })
        };
        out.push(Change {
            path: PathBuf::from(OsString::from_vec(path.to_vec())),
            base: side(parts[0], parts[2]),
            theirs: side(parts[1], parts[3]),
        });
    }
    out
}

/// Reads blobs in one `cat-file --batch`.
fn read_blobs(dir: &Path, oids: &[&str]) -> Result<HashMap<String, Vec<u8>>, GitError> {
    let mut input = Vec::new();
    for oid in oids {
        input.extend_from_slice(oid.as_bytes());
        input.push(b'\n');
    }
    let out = git_bytes(dir, &["cat-file", "--batch"], &[], Some(&input))?;
    let mut blobs = HashMap::new();
    let mut rest = out.as_slice();
    while let Some(nl) = rest.iter().position(|b| *b == b'\n') {
        let header = String::from_utf8_lossy(&rest[..nl]).into_owned();
        rest = &rest[nl + 1..];
        let parts: Vec<&str> = header.split(' ').collect();
        let [oid, _kind, size] = parts[..] else { continue };
        let Ok(size) = size.parse::<usize>() else { continue };
        if rest.len() < size {
            break;
        }
        blobs.insert(oid.to_string(), rest[..size].to_vec());
        rest = rest.get(size + 1..).unwrap_or_default();
    }
    Ok(blobs)
}

/// A file's content as git records it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    File { data: Vec<u8>, exec: bool },
    Link(Vec<u8>),
}

/// Main's side of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ours {
    Absent,
    Is(Entry),
    /// A folder (or something else that is not a file or symlink) at the path.
    Dir,
    /// A parent in main is a file, not a folder.
    BelowFile(PathBuf),
    /// A parent in main is a symlink: nothing below it is read or written.
    BelowSymlink(PathBuf),
    /// A parent in main holds a `.git`: nothing below it is read or written.
    BelowRepository(PathBuf),
}

#[derive(Debug)]
enum Action {
    Nothing,
    Write,
    Delete,
    Merge(Entry),
    Conflict,
}

#[derive(Debug)]
struct Plan {
    base: Option<Entry>,
    theirs: Option<Entry>,
    ours: Ours,
    base_id: Option<Blob>,
    theirs_id: Option<Blob>,
    action: Action,
}

fn unsafe_path(path: &Path, why: UnsafeReason) -> CopyBackError {
    CopyBackError::Unsafe { path: path.to_path_buf(), why }
}

fn check_lexically(path: &Path) -> Result<(), CopyBackError> {
    if path.as_os_str().is_empty() || !path.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(unsafe_path(path, UnsafeReason::NotInside));
    }
    // `Component` drops a `.` in the middle silently; the bytes do not.
    if path.as_os_str().as_bytes().split(|b| *b == b'/').any(|s| s.is_empty() || s == b"." || s == b"..") {
        return Err(unsafe_path(path, UnsafeReason::NotInside));
    }
    if path.components().any(|c| c.as_os_str().eq_ignore_ascii_case(".git")) {
        return Err(unsafe_path(path, UnsafeReason::GitDir));
    }
    Ok(())
}

/// A symlink at `path` (relative to the root) pointing at `target` must resolve, lexically,
/// to somewhere inside the repository. The climb up (`..`) must come first: the folders it
/// climbs out of are the link's own parents, which copy-back checks are real folders; a `..`
/// after a name could climb out of a symlink instead.
fn check_link_target(path: &Path, target: &[u8]) -> Result<(), CopyBackError> {
    let target_path = PathBuf::from(OsStr::from_bytes(target));
    let outside = || unsafe_path(path, UnsafeReason::SymlinkOutside(target_path.clone()));
    if target.is_empty() || target_path.is_absolute() {
        return Err(outside());
    }
    let mut depth: usize = path.components().count().saturating_sub(1);
    let mut descended = false;
    for part in target.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." if descended => return Err(outside()),
            b".." => depth = depth.checked_sub(1).ok_or_else(outside)?,
            _ => descended = true,
        }
    }
    Ok(())
}

/// A symlink at `path` pointing at `target` must not lead into a git folder — the
/// repository's own (`hooks -> .git/hooks` would let the next git command run the agent's
/// code) or any `.git` below: neither by name, nor through symlinks already in main.
fn check_link_not_into_git(root: &Path, path: &Path, target: &[u8], git_dirs: &[PathBuf]) -> Result<(), CopyBackError> {
    let target_path = PathBuf::from(OsStr::from_bytes(target));
    let refuse = || unsafe_path(path, UnsafeReason::SymlinkIntoGit(target_path.clone()));
    // Lexically, inside the repository (check_link_target ran first: `..` only leads).
    let mut resolved: Vec<&OsStr> = path.parent().map(|p| p.components().map(|c| c.as_os_str()).collect()).unwrap_or_default();
    for part in target.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                resolved.pop();
            }
            name => resolved.push(OsStr::from_bytes(name)),
        }
    }
    if resolved.iter().any(|c| c.eq_ignore_ascii_case(".git")) {
        return Err(refuse());
    }
    // Through what main holds now: the deepest part of the target that exists, resolved.
    let mut full = root.to_path_buf();
    let mut existing = root.to_path_buf();
    for c in &resolved {
        full.push(c);
        if std::fs::symlink_metadata(&full).is_ok() {
            existing = full.clone();
        } else {
            break;
        }
    }
    if let Ok(real) = std::fs::canonicalize(&existing) {
        let root_real = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
        let inside = real.strip_prefix(&root_real).unwrap_or(Path::new(""));
        if git_dirs.iter().any(|g| real.starts_with(g)) || inside.components().any(|c| c.as_os_str().eq_ignore_ascii_case(".git")) {
            return Err(refuse());
        }
    }
    Ok(())
}

/// Main's version of `path`, never following a symlink.
fn read_ours(root: &Path, path: &Path) -> Result<Ours, CopyBackError> {
    let mut prefix = PathBuf::new();
    let parents: Vec<_> = path.components().collect();
    for c in &parents[..parents.len().saturating_sub(1)] {
        prefix.push(c);
        match std::fs::symlink_metadata(root.join(&prefix)) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Ours::Absent),
            Err(e) => return Err(io_err("read", &root.join(&prefix))(e)),
            Ok(m) if m.file_type().is_symlink() => return Ok(Ours::BelowSymlink(prefix)),
            Ok(m) if !m.is_dir() => return Ok(Ours::BelowFile(prefix)),
            Ok(_) if std::fs::symlink_metadata(root.join(&prefix).join(".git")).is_ok() => {
                return Ok(Ours::BelowRepository(prefix));
            }
            Ok(_) => {}
        }
    }
    let full = root.join(path);
    match std::fs::symlink_metadata(&full) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Ours::Absent),
        Err(e) => Err(io_err("read", &full)(e)),
        Ok(m) if m.file_type().is_symlink() => {
            let target = std::fs::read_link(&full).map_err(io_err("read", &full))?;
            Ok(Ours::Is(Entry::Link(target.into_os_string().into_vec())))
        }
        Ok(m) if m.is_file() => {
            let data = std::fs::read(&full).map_err(io_err("read", &full))?;
            Ok(Ours::Is(Entry::File { data, exec: m.permissions().mode() & 0o100 != 0 }))
        }
        Ok(_) => Ok(Ours::Dir),
    }
}

/// Whether the folder at `path` holds only files this landing deletes.
fn dir_emptied_by(root: &Path, path: &Path, deletes: &HashSet<PathBuf>) -> bool {
    let Ok(entries) = std::fs::read_dir(root.join(path)) else { return false };
    entries.into_iter().all(|e| {
        let Ok(e) = e else { return false };
        let rel = path.join(e.file_name());
        match e.file_type() {
            Ok(t) if t.is_dir() => dir_emptied_by(root, &rel, deletes),
            Ok(_) => deletes.contains(&rel),
            Err(_) => false,
        }
    })
}

fn decide(root: &Path, path: &Path, plan: &Plan) -> Result<Action, CopyBackError> {
    let ours = match &plan.ours {
        Ours::Absent => None,
        Ours::Is(e) => Some(e),
        // The task deletes a file main no longer has (a folder or a file took the place of it
        // or of a parent, e.g. by an earlier landing of this same task): nothing to delete.
        Ours::Dir | Ours::BelowFile(_) if plan.theirs.is_none() => return Ok(Action::Nothing),
        Ours::Dir | Ours::BelowFile(_) | Ours::BelowSymlink(_) | Ours::BelowRepository(_) => {
            return Ok(Action::Conflict)
        }
    };
    if ours == plan.base.as_ref() {
        return Ok(if plan.theirs.is_some() { Action::Write } else { Action::Delete });
    }
    if ours == plan.theirs.as_ref() {
        return Ok(Action::Nothing);
    }
    match (&plan.base, ours, &plan.theirs) {
        (
            Some(Entry::File { data: b, exec: be }),
            Some(Entry::File { data: o, exec: oe }),
            Some(Entry::File { data: t, exec: te }),
        ) => {
            let exec = if oe == be { *te } else { *oe };
            Ok(match merge_text(root, path, b, o, t)? {
                Some(data) => Action::Merge(Entry::File { data, exec }),
                None => Action::Conflict,
            })
        }
        _ => Ok(Action::Conflict),
    }
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

fn unique_suffix() -> String {
    format!("{}-{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed))
}

fn is_binary(data: &[u8]) -> bool {
    data[..data.len().min(8000)].contains(&0)
}

/// A clean three-way merge of one text (`git merge-file`), or `None` on conflicts or binary;
/// `path` names it in errors.
pub fn merge_three(root: &Path, path: &Path, base: &[u8], ours: &[u8], theirs: &[u8]) -> Result<Option<Vec<u8>>, CopyBackError> {
    merge_text(root, path, base, ours, theirs)
}

/// `git merge-file -p ours base theirs`: the merged text, or `None` on conflicts or binary.
fn merge_text(
    root: &Path,
    path: &Path,
    base: &[u8],
    ours: &[u8],
    theirs: &[u8],
) -> Result<Option<Vec<u8>>, CopyBackError> {
    if is_binary(base) || is_binary(ours) || is_binary(theirs) {
        return Ok(None);
    }
    let dir = std::env::temp_dir().join(format!("baton-merge-{}", unique_suffix()));
    std::fs::create_dir(&dir).map_err(io_err("create", &dir))?;
    let result = (|| {
        let files = [("ours", ours), ("base", base), ("theirs", theirs)].map(|(name, data)| (dir.join(name), data));
        for (file, data) in &files {
            std::fs::write(file, data).map_err(io_err("write", file))?;
        }
        let args = [OsStr::new("merge-file"), "-p".as_ref(), "-q".as_ref()]
            .into_iter()
            .chain(files.iter().map(|(f, _)| f.as_os_str()))
            .collect::<Vec<_>>();
        let out = git_output(root, &args, &[], None)?;
        match out.status.code() {
            Some(0) => Ok(Some(out.stdout)),
            Some(1..=127) => Ok(None),
            _ => Err(CopyBackError::Git(GitError::Failed {
                args: format!("merge-file -p (for {})", path.display()),
                dir: root.to_path_buf(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            })),
        }
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn is_protected(root: &Path, path: &Path, protected: &HashSet<PathBuf>) -> bool {
    path.ancestors()
        .filter(|a| !a.as_os_str().is_empty())
        .any(|a| protected.contains(a) || protected.contains(&root.join(a)))
}

/// Writes `entry` at `path` under `root` through a temporary file in the same folder and a
/// rename, so main never holds a half-written file and a symlink there is replaced, not
/// followed.
fn write_entry(root: &Path, path: &Path, entry: &Entry) -> Result<(), CopyBackError> {
    let full = root.join(path);
    let parent = full.parent().unwrap_or(root);
    std::fs::create_dir_all(parent).map_err(io_err("create", parent))?;
    let tmp = parent.join(format!(".baton-{}.tmp", unique_suffix()));
    let written = match entry {
        Entry::Link(target) => std::os::unix::fs::symlink(OsStr::from_bytes(target), &tmp),
        Entry::File { data, exec } => (|| {
            // The mode is applied through the umask, as git's checkout does.
            let mut f =
                OpenOptions::new().write(true).create_new(true).mode(if *exec { 0o777 } else { 0o666 }).open(&tmp)?;
            f.write_all(data)?;
            f.sync_all()
        })(),
    };
    // A folder in the way holds no files (planning checked): remove it as git would.
    let written = written.and_then(|()| match std::fs::symlink_metadata(&full) {
        Ok(m) if m.is_dir() => remove_empty_folders(&full),
        _ => Ok(()),
    });
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, &full)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_err("write", &full)(e));
    }
    Ok(())
}

/// Removes a folder holding nothing but (possibly nested) empty folders; fails on anything else.
fn remove_empty_folders(dir: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            remove_empty_folders(&entry.path())?;
        }
    }
    std::fs::remove_dir(dir)
}

/// Removes folders left empty by a deletion, up to (not including) the root, as git does.
fn remove_empty_parents(root: &Path, path: &Path) {
    for dir in path.ancestors().skip(1).filter(|a| !a.as_os_str().is_empty()) {
        if std::fs::remove_dir(root.join(dir)).is_err() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::worktree::remove;
    use crate::git::worktree::tests::{git_in, write_in, Repo};
    use std::os::unix::fs::symlink;

    const SKIP: &[&str] = &[".claude/plans/", ".claude/subagent-status/", ".claude/agent-claims.json"];

    fn land(repo: &Repo, wt: &Worktree) -> Result<Landing, CopyBackError> {
        copy_back(&repo.root, wt, SKIP, &HashSet::new())
    }

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    fn is_exec(path: &Path) -> bool {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o100 != 0
    }

    /// Main's files and HEAD, to show that a refused landing changed nothing.
    fn main_state(repo: &Repo) -> (String, String) {
        (repo.git(&["status", "--porcelain", "--untracked-files=all"]), repo.head())
    }

    #[test]
    fn lands_committed_uncommitted_and_untracked_changes_of_every_kind() {
        let repo = Repo::new();
        repo.write("committed.txt", "one\n");
        repo.write("uncommitted.txt", "one\n");
        repo.write("gone.txt", "bye\n");
        repo.write("old/name.txt", "moving\n");
        repo.write("script.sh", "#!/bin/sh\n");
        repo.write("was-exec.sh", "#!/bin/sh\n");
        std::fs::set_permissions(repo.root.join("was-exec.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
        repo.commit_all("files");
        let wt = repo.create("1").worktree;
        let w = &wt.path;
        write_in(w, "committed.txt", "two\n");
        git_in(w, &["commit", "-q", "-am", "agent's commit"]);
        write_in(w, "uncommitted.txt", "two\n");
        write_in(w, "deep/new/untracked.txt", "new\n");
        std::fs::remove_file(w.join("gone.txt")).unwrap();
        git_in(w, &["mv", "old/name.txt", "new-name.txt"]);
        std::fs::set_permissions(w.join("script.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(w.join("was-exec.sh"), std::fs::Permissions::from_mode(0o644)).unwrap();
        symlink("committed.txt", w.join("link")).unwrap();

        let landing = land(&repo, &wt).unwrap();
        assert_eq!(repo.read("committed.txt").as_deref(), Some("two\n"));
        assert_eq!(repo.read("uncommitted.txt").as_deref(), Some("two\n"));
        assert_eq!(repo.read("deep/new/untracked.txt").as_deref(), Some("new\n"));
        assert!(!repo.root.join("gone.txt").exists());
        assert!(!repo.root.join("old").exists(), "a folder emptied by the landing goes too");
        assert_eq!(repo.read("new-name.txt").as_deref(), Some("moving\n"));
        assert!(is_exec(&repo.root.join("script.sh")));
        assert!(!is_exec(&repo.root.join("was-exec.sh")));
        assert_eq!(std::fs::read_link(repo.root.join("link")).unwrap(), p("committed.txt"));
        assert_eq!(
            landing,
            Landing {
                written: [
                    "committed.txt",
                    "deep/new/untracked.txt",
                    "link",
                    "new-name.txt",
                    "script.sh",
                    "uncommitted.txt",
                    "was-exec.sh"
                ]
                .map(p)
                .to_vec(),
                deleted: vec![p("gone.txt"), p("old/name.txt")],
                merged: vec![],
            }
        );
        // Main now matches the worktree exactly: git sees the same tree.
        assert_eq!(snapshot(&repo.root).unwrap(), snapshot(w).unwrap());
        assert!(land(&repo, &wt).unwrap().is_empty(), "landing twice finds nothing to do");
    }

    #[test]
    fn a_file_can_become_a_folder_and_a_file_a_symlink() {
        let repo = Repo::new();
        repo.write("thing", "a file\n");
        repo.write("target.txt", "t\n");
        repo.write("was-file", "f\n");
        repo.commit_all("files");
        let wt = repo.create("1").worktree;
        std::fs::remove_file(wt.path.join("thing")).unwrap();
        write_in(&wt.path, "thing/inside.txt", "now a folder\n");
        std::fs::remove_file(wt.path.join("was-file")).unwrap();
        symlink("target.txt", wt.path.join("was-file")).unwrap();
        land(&repo, &wt).unwrap();
        assert_eq!(repo.read("thing/inside.txt").as_deref(), Some("now a folder\n"));
        assert_eq!(std::fs::read_link(repo.root.join("was-file")).unwrap(), p("target.txt"));

        // A folder in main that holds only empty folders gives way to a new file; one with a
        // file in it does not.
        std::fs::create_dir_all(repo.root.join("empty/nested")).unwrap();
        write_in(&repo.root, "full/user.txt", "mine\n");
        write_in(&wt.path, "empty", "file\n");
        write_in(&wt.path, "full", "file\n");
        let err = land(&repo, &wt).unwrap_err();
        assert!(matches!(&err, CopyBackError::Conflict { paths } if paths == &vec![p("full")]), "{err:?}");
        std::fs::remove_file(wt.path.join("full")).unwrap();
        land(&repo, &wt).unwrap();
        assert_eq!(repo.read("empty").as_deref(), Some("file\n"));
        assert_eq!(repo.read("full/user.txt").as_deref(), Some("mine\n"));
    }

    fn numbered(n: usize) -> String {
        (1..=n).map(|i| format!("line {i}\n")).collect()
    }

    #[test]
    fn two_tasks_editing_different_lines_of_one_file_both_land() {
        let repo = Repo::new();
        repo.write("shared.txt", &numbered(10));
        repo.commit_all("shared");
        let a = repo.create("a").worktree;
        let b = repo.create("b").worktree;
        write_in(&a.path, "shared.txt", &numbered(10).replace("line 2\n", "line 2 by a\n"));
        write_in(&b.path, "shared.txt", &numbered(10).replace("line 9\n", "line 9 by b\n"));
        std::fs::set_permissions(b.path.join("shared.txt"), std::fs::Permissions::from_mode(0o755)).unwrap();

        assert_eq!(land(&repo, &a).unwrap().written, vec![p("shared.txt")]);
        let landing = land(&repo, &b).unwrap();
        assert_eq!(landing.merged, vec![p("shared.txt")]);
        assert!(landing.written.is_empty());
        let expected = numbered(10).replace("line 2\n", "line 2 by a\n").replace("line 9\n", "line 9 by b\n");
        assert_eq!(repo.read("shared.txt").as_deref(), Some(expected.as_str()));
        assert!(is_exec(&repo.root.join("shared.txt")), "b's exec bit merged in");
    }

    #[test]
    fn same_line_is_a_conflict_and_nothing_of_the_task_lands() {
        let repo = Repo::new();
        repo.write("shared.txt", &numbered(5));
        repo.commit_all("shared");
        let a = repo.create("a").worktree;
        let b = repo.create("b").worktree;
        write_in(&a.path, "shared.txt", &numbered(5).replace("line 3\n", "line 3 by a\n"));
        write_in(&b.path, "shared.txt", &numbered(5).replace("line 3\n", "line 3 by b\n"));
        write_in(&b.path, "b-only.txt", "would land alone\n");
        land(&repo, &a).unwrap();
        let before = main_state(&repo);

        let err = land(&repo, &b).unwrap_err();
        let CopyBackError::Conflict { paths } = &err else { panic!("{err:?}") };
        assert_eq!(paths, &vec![p("shared.txt")]);
        assert_eq!(err.to_string(), "merge conflict in shared.txt");
        assert_eq!(main_state(&repo), before);
        assert!(repo.read("shared.txt").unwrap().contains("line 3 by a"));
        assert!(!repo.root.join("b-only.txt").exists(), "all or nothing per task");
        assert!(b.path.join("b-only.txt").exists(), "the worktree keeps the work");
        assert!(repo.has_branch("parallel/b"));
        assert!(!repo.root.join("shared.txt").with_extension("orig").exists());
    }

    #[test]
    fn two_tasks_creating_one_path_conflict_unless_the_content_is_the_same() {
        let repo = Repo::new();
        let a = repo.create("a").worktree;
        let b = repo.create("b").worktree;
        let c = repo.create("c").worktree;
        write_in(&a.path, "new.txt", "from a\n");
        write_in(&b.path, "new.txt", "from b\n");
        write_in(&c.path, "new.txt", "from a\n");
        land(&repo, &a).unwrap();
        let err = land(&repo, &b).unwrap_err();
        assert!(matches!(&err, CopyBackError::Conflict { paths } if paths == &vec![p("new.txt")]), "{err:?}");
        assert_eq!(repo.read("new.txt").as_deref(), Some("from a\n"));
        assert!(land(&repo, &c).unwrap().is_empty());
    }

    #[test]
    fn deleting_what_main_changed_and_binary_edits_on_both_sides_conflict() {
        let repo = Repo::new();
        repo.write("doc.txt", "v1\n");
        repo.write("image.bin", "\0\x01binary\n");
        repo.commit_all("files");
        let a = repo.create("a").worktree;
        let b = repo.create("b").worktree;
        write_in(&a.path, "doc.txt", "v2\n");
        write_in(&a.path, "image.bin", "\0\x01binary by a\n");
        std::fs::remove_file(b.path.join("doc.txt")).unwrap();
        write_in(&b.path, "image.bin", "\0\x02binary by b\n");
        land(&repo, &a).unwrap();
        let err = land(&repo, &b).unwrap_err();
        assert!(
            matches!(&err, CopyBackError::Conflict { paths } if paths == &vec![p("doc.txt"), p("image.bin")]),
            "{err:?}"
        );
        assert_eq!(repo.read("doc.txt").as_deref(), Some("v2\n"));
    }

    #[test]
    fn a_symlink_pointing_outside_the_repository_is_refused() {
        for target in ["../../outside", "/etc/passwd", "sub/../../x"] {
            let repo = Repo::new();
            let wt = repo.create("1").worktree;
            write_in(&wt.path, "fine.txt", "fine\n");
            symlink(target, wt.path.join("escape")).unwrap();
            let before = main_state(&repo);
            let err = land(&repo, &wt).unwrap_err();
            assert!(
                matches!(&err, CopyBackError::Unsafe { path, why: UnsafeReason::SymlinkOutside(t) } if path == &p("escape") && t == &p(target)),
                "{target}: {err:?}"
            );
            assert!(err.to_string().contains("outside the repository"), "{err}");
            assert_eq!(main_state(&repo), before);
        }
        let repo = Repo::new();
        let wt = repo.create("1").worktree;
        write_in(&wt.path, "sub/file.txt", "x\n");
        symlink("../README.md", wt.path.join("sub/up")).unwrap();
        land(&repo, &wt).expect("a link up but still inside is fine");
    }

    #[test]
    fn a_symlink_into_a_git_folder_is_refused() {
        for target in [".git/hooks", ".git", "./.GIT/config", "vendor/.git"] {
            let repo = Repo::new();
            let wt = repo.create("1").worktree;
            symlink(target, wt.path.join("hooks")).unwrap();
            let err = land(&repo, &wt).unwrap_err();
            assert!(
                matches!(&err, CopyBackError::Unsafe { why: UnsafeReason::SymlinkIntoGit(_), .. }),
                "{target}: {err:?}"
            );
            assert!(err.to_string().contains("inside a .git folder"), "{err}");
            assert!(std::fs::symlink_metadata(repo.root.join("hooks")).is_err());
        }
        // Through a symlink main already has.
        let repo = Repo::new();
        symlink(".git", repo.root.join("meta")).unwrap();
        let wt = repo.create("1").worktree;
        symlink("meta/hooks", wt.path.join("hooks")).unwrap();
        let err = land(&repo, &wt).unwrap_err();
        assert!(matches!(&err, CopyBackError::Unsafe { why: UnsafeReason::SymlinkIntoGit(_), .. }), "{err:?}");
        // A folder merely named like it is fine.
        let repo = Repo::new();
        let wt = repo.create("1").worktree;
        write_in(&wt.path, ".github/x.yml", "x\n");
        symlink(".github/x.yml", wt.path.join("ci")).unwrap();
        land(&repo, &wt).expect(".github is not .git");
    }

    #[test]
    fn a_landing_interrupted_half_way_is_finished_from_its_intents_alone() {
        let repo = Repo::new();
        repo.write("edit.txt", &numbered(5));
        repo.write("gone.txt", "bye\n");
        repo.commit_all("files");
        let wt = repo.create("1").worktree;
        write_in(&wt.path, "edit.txt", &numbered(5).replace("line 5\n", "line 5 by task\n"));
        write_in(&wt.path, "new.txt", "new\n");
        std::fs::remove_file(wt.path.join("gone.txt")).unwrap();
        // Main changed line 1 meanwhile: edit.txt is merged.
        repo.write("edit.txt", &numbered(5).replace("line 1\n", "line 1 by main\n"));
        repo.commit_all("main moves");
        let prepared = prepare(&repo.root, &wt, SKIP, &HashSet::new()).unwrap();
        let intents = prepared.intents(&repo.root).unwrap();
        let paths: Vec<PathBuf> = intents.iter().map(Intent::path).collect();
        assert_eq!(paths, vec![p("edit.txt"), p("gone.txt"), p("new.txt")]);
        // The crash: only new.txt was written, a temporary file is left; the worktree is gone.
        write_in(&repo.root, "new.txt", "new\n");
        write_in(&repo.root, ".baton-999999999-3.tmp", "half");
        let live = format!(".baton-{}-3.tmp", std::process::id());
        write_in(&repo.root, &live, "another process's write in progress");
        remove(&repo.root, &wt).unwrap();
        let done = finish(&repo.root, &intents).unwrap();
        assert_eq!(done, Finished { landed: paths.clone(), diverged: vec![] });
        assert!(!repo.root.join(".baton-999999999-3.tmp").exists(), "a dead write's temporary file was left");
        assert!(repo.root.join(&live).exists(), "a live process's temporary file was removed");
        std::fs::remove_file(repo.root.join(&live)).unwrap();
        assert_eq!(repo.read("edit.txt").unwrap(), numbered(5).replace("line 1\n", "line 1 by main\n").replace("line 5\n", "line 5 by task\n"));
        assert!(!repo.root.join("gone.txt").exists());
        assert_eq!(finish(&repo.root, &intents).unwrap().landed, paths, "finishing twice is harmless");
        // A path someone changed since is left alone and reported.
        repo.write("new.txt", "the user's\n");
        let later = finish(&repo.root, &intents[2..]).unwrap();
        assert_eq!(later.diverged, vec![p("new.txt")]);
        assert_eq!(repo.read("new.txt").as_deref(), Some("the user's\n"));
    }

    #[test]
    fn unlanded_names_what_main_does_not_hold() {
        let repo = Repo::new();
        repo.write("a.txt", "a\n");
        repo.commit_all("a");
        let wt = repo.create("1").worktree;
        write_in(&wt.path, "a.txt", "A\n");
        write_in(&wt.path, "b.txt", "b\n");
        write_in(&wt.path, ".claude/plans/task-status.json", "{}\n");
        assert_eq!(unlanded(&repo.root, &wt, SKIP, &HashSet::new()).unwrap(), vec![p("a.txt"), p("b.txt")]);
        let landing = land(&repo, &wt).unwrap();
        assert_eq!(landing.written, vec![p("a.txt"), p("b.txt")]);
        assert!(unlanded(&repo.root, &wt, SKIP, &HashSet::new()).unwrap().is_empty());
        // Work done after the landing is not in main.
        std::fs::remove_file(wt.path.join("a.txt")).unwrap();
        assert_eq!(unlanded(&repo.root, &wt, SKIP, &HashSet::new()).unwrap(), vec![p("a.txt")]);
        let merged: HashSet<PathBuf> = [p("a.txt")].into();
        assert!(unlanded(&repo.root, &wt, SKIP, &merged).unwrap().is_empty());
    }

    #[test]
    fn a_path_through_a_symlinked_folder_in_main_is_refused() {
        let repo = Repo::new();
        repo.write("sub/file.txt", "in repo\n");
        repo.commit_all("sub");
        let wt = repo.create("1").worktree;
        let outside = repo.outside().join("victim");
        write_in(&outside, "file.txt", "outside\n");
        // After the fork, main's folder became a symlink out of the tree.
        std::fs::remove_dir_all(repo.root.join("sub")).unwrap();
        symlink(&outside, repo.root.join("sub")).unwrap();
        write_in(&wt.path, "sub/file.txt", "written by the task\n");

        let err = land(&repo, &wt).unwrap_err();
        assert!(
            matches!(&err, CopyBackError::Unsafe { path, why: UnsafeReason::SymlinkedParent(l) } if path == &p("sub/file.txt") && l == &p("sub")),
            "{err:?}"
        );
        assert_eq!(std::fs::read_to_string(outside.join("file.txt")).unwrap(), "outside\n");
        std::fs::remove_file(wt.path.join("sub/file.txt")).unwrap();
        assert!(land(&repo, &wt).is_err(), "a deletion through it is refused too");
        assert!(outside.join("file.txt").exists());
    }

    #[test]
    fn a_path_into_a_nested_repository_in_main_is_refused() {
        let repo = Repo::new();
        let wt = repo.create("1").worktree;
        git_in(&repo.root, &["init", "-q", "vendor/lib"]);
        write_in(&wt.path, "vendor/lib/file.txt", "x\n");
        let err = land(&repo, &wt).unwrap_err();
        assert!(
            matches!(&err, CopyBackError::Unsafe { why: UnsafeReason::NestedRepository(r), .. } if r == &p("vendor/lib")),
            "{err:?}"
        );
        assert!(!repo.root.join("vendor/lib/file.txt").exists());
    }

    #[test]
    fn paths_that_leave_the_repository_are_refused_lexically() {
        for bad in ["../x", "/abs", "a/../b", "a/./b", ".git/config", "sub/.GIT/hooks/x", ""] {
            assert!(check_lexically(Path::new(bad)).is_err(), "{bad}");
        }
        assert!(check_lexically(Path::new("a/..b/.c")).is_ok());
        assert!(check_link_target(Path::new("a/b/l"), b"../../x").is_ok());
        assert!(check_link_target(Path::new("a/b/l"), b"../../../x").is_err());
        assert!(check_link_target(Path::new("l"), b"x/../../y").is_err());
        assert!(
            check_link_target(Path::new("a/l"), b"sub/../x").is_err(),
            "`..` after a name could climb out of a symlink"
        );
        assert!(check_link_target(Path::new("a/l"), b"./sub/x").is_ok());
    }

    #[test]
    fn coordination_files_are_skipped() {
        let repo = Repo::new();
        repo.write(".claude/plans/plan.yaml", "tasks: []\n");
        repo.commit_all("plan");
        let wt = repo.create("1").worktree;
        write_in(&wt.path, ".claude/plans/plan.yaml", "tasks: [edited]\n");
        write_in(&wt.path, ".claude/plans/task-status.json", "{}\n");
        write_in(&wt.path, ".claude/subagent-status/1.json", "{}\n");
        write_in(&wt.path, ".claude/agent-claims.json", "{}\n");
        write_in(&wt.path, ".claude/settings.json", "{}\n");
        let landing = land(&repo, &wt).unwrap();
        assert_eq!(landing.written, vec![p(".claude/settings.json")]);
        assert_eq!(repo.read(".claude/plans/plan.yaml").as_deref(), Some("tasks: []\n"));
        assert!(!repo.root.join(".claude/plans/task-status.json").exists());
        assert!(!repo.root.join(".claude/subagent-status").exists());
        assert!(!repo.root.join(".claude/agent-claims.json").exists());
    }

    #[test]
    fn the_users_uncommitted_file_is_never_overwritten() {
        let repo = Repo::new();
        repo.write("mine.txt", "committed\n");
        repo.write("other.txt", "committed\n");
        repo.commit_all("files");
        let wt = repo.create("1").worktree;
        repo.write("mine.txt", "the user's edit\n");
        write_in(&wt.path, "mine.txt", "the task's edit\n");
        write_in(&wt.path, "other.txt", "the task's edit\n");
        let protected: HashSet<PathBuf> = [p("mine.txt")].into();
        let err = copy_back(&repo.root, &wt, SKIP, &protected).unwrap_err();
        assert!(matches!(&err, CopyBackError::ProtectedFile { path } if path == &p("mine.txt")), "{err:?}");
        assert!(err.to_string().starts_with("mine.txt has uncommitted changes"), "{err}");
        assert_eq!(repo.read("mine.txt").as_deref(), Some("the user's edit\n"));
        assert_eq!(repo.read("other.txt").as_deref(), Some("committed\n"));

        // Absolute paths and folders count too; a protected file the task leaves alone does not.
        let protected: HashSet<PathBuf> = [repo.root.join("mine.txt")].into();
        assert!(matches!(copy_back(&repo.root, &wt, SKIP, &protected), Err(CopyBackError::ProtectedFile { .. })));
        write_in(&wt.path, "mine.txt", "committed\n");
        let protected: HashSet<PathBuf> = [p("mine.txt"), p("untouched")].into();
        let landing = copy_back(&repo.root, &wt, SKIP, &protected).unwrap();
        assert_eq!(landing.written, vec![p("other.txt")]);
        let protected: HashSet<PathBuf> = [p("dir")].into();
        write_in(&wt.path, "dir/new.txt", "x\n");
        assert!(matches!(copy_back(&repo.root, &wt, SKIP, &protected), Err(CopyBackError::ProtectedFile { .. })));
    }

    #[test]
    fn recovery_hint_names_the_worktree_branch_fork_and_commands() {
        let repo = Repo::new();
        let wt = repo.create("1.1").worktree;
        let hint = recovery_hint(&repo.root, &wt);
        assert!(hint.contains(&format!("git -C {} diff {}", wt.path.display(), &wt.fork[..12])), "{hint}");
        assert!(hint.contains(&format!("git -C {} merge parallel/1.1", repo.root.display())), "{hint}");
        assert!(hint.contains("worktree remove"), "{hint}");
        assert_eq!(crate::report::safe::shell_quote("it's here"), r"'it'\''s here'");
    }
}
