//! Worktrees for parallel tasks: `.worktrees/<plan>-<task>` on branch `parallel/<task>`, made
//! from the current HEAD. Owns creating one (clearing a stale one of the same name first), removing
//! one after its work has landed — or giving it back to a [`Pool`] that resets it for the next
//! task —, listing what a crashed run left behind, and the snapshot of a working tree that
//! copy-back and rescues read.
//!
//! Must not lose work: a stale branch or worktree about to be replaced whose work is not
//! reachable from HEAD is first kept on a `parallel-rescued/…` branch (uncommitted changes
//! committed onto it), and that is reported — unless all of it is already in HEAD
//! ([`landed_in_head`]), when keeping it would keep nothing. A rescued branch goes once its
//! task has completed ([`prune_rescued`]): its work then landed, or was replaced by the attempt
//! that completed the task (its commit is named in the run's output). Whether a live task's
//! work has landed is copy-back's to say; [`check_landed`] turns its answer into the [`Landed`]
//! a pool requires.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{git, git_bytes, git_output, GitError};

/// Prefix of the branches baton makes for parallel tasks.
pub const BRANCH_PREFIX: &str = "parallel/";
/// Prefix of the branches that keep work rescued from a stale worktree or branch.
pub const RESCUE_PREFIX: &str = "parallel-rescued/";

/// A task's worktree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Worktree {
    pub path: PathBuf,
    pub branch: String,
    /// The commit the worktree was made from (main's HEAD then): copy-back's merge base.
    pub fork: String,
}

/// What [`create`] or [`Pool::take`] made, and what it kept aside from a stale worktree or
/// branch on the way.
#[derive(Debug)]
pub struct Created {
    pub worktree: Worktree,
    /// For the caller to print: work found in the way, kept rather than deleted.
    pub rescued: Vec<Rescue>,
    /// Made fresh or reused from the pool.
    pub origin: Origin,
}

/// Where a task's worktree came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// `git worktree add`.
    Fresh,
    /// A pooled worktree, whose earlier task's work had landed, moved from `from` and reset to
    /// the new base.
    Reused { from: PathBuf },
    /// Reusing the pooled worktree at `from` failed (`error`); it was removed — its work had
    /// landed — and a fresh one made.
    FreshAfterFailedReuse { from: PathBuf, error: String },
}

/// Work that stood in the way of a new worktree and was kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rescue {
    /// Commits not reachable from HEAD (and, if `uncommitted`, a commit made of a stale
    /// worktree's uncommitted changes on top) now on branch `name`.
    Branch { name: String, commit: String, from: String, uncommitted: bool },
    /// A directory at the worktree's path that git did not know as a worktree, moved aside.
    Directory { from: PathBuf, to: PathBuf },
}

impl std::fmt::Display for Rescue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rescue::Branch { name, from, uncommitted, .. } => {
                let what = if *uncommitted { "unmerged and uncommitted work" } else { "unmerged commits" };
                write!(f, "kept {what} of stale {from} on branch {name}")
            }
            Rescue::Directory { from, to } => {
                write!(f, "moved stale directory {} aside to {}", from.display(), to.display())
            }
        }
    }
}

/// A branch (and maybe its worktree) left behind by an earlier run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stale {
    pub branch: String,
    /// The commit the branch points at.
    pub tip: String,
    /// Its worktree, if one is registered and its folder still exists.
    pub path: Option<PathBuf>,
    /// Where it forked from main: the merge base of HEAD and the branch.
    pub fork: Option<String>,
}

impl std::fmt::Display for Stale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "branch {}", self.branch)?;
        match &self.path {
            Some(p) => write!(f, " with worktree {}", p.display()),
            None => Ok(()),
        }
    }
}

impl Stale {
    /// The worktree, as [`create`] would have returned it, if there is one to copy back from.
    pub fn worktree(&self) -> Option<Worktree> {
        Some(Worktree { path: self.path.clone()?, branch: self.branch.clone(), fork: self.fork.clone()? })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WorktreeError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error("`{name}` is not a valid branch name")]
    InvalidBranch { name: String },
    #[error("branch {branch} is checked out in the main working tree; switch to another branch first")]
    CheckedOutInMain { branch: String },
    #[error("{} is the main working tree, not a place for a task's worktree", path.display())]
    MainCheckout { path: PathBuf },
    #[error("status file {} must be a relative path inside the repository", path.display())]
    BadStatusFile { path: PathBuf },
    #[error("{reason}")]
    NotReusable { reason: String },
    #[error("cannot {what} {}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> WorktreeError + 'a {
    move |source| WorktreeError::Io { what, path: path.to_path_buf(), source }
}

/// The branch of a task: `parallel/<task id>`, made a valid branch name.
pub fn branch_name(task_id: &str) -> String {
    format!("{BRANCH_PREFIX}{}", ref_component(task_id))
}

/// A task id as one component of a ref name. Ids that are already valid (`1.1`, `2.1a`,
/// `fix-login`) come back unchanged; others get the offending characters replaced and a short
/// hash of the original appended, so two different ids never share a branch.
pub fn ref_component(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    let mut prev = '\0';
    for c in id.chars() {
        let ok = c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+' | ',' | '=');
        let c = if !ok || (c == '.' && (prev == '.' || out.is_empty())) { '-' } else { c };
        out.push(c);
        prev = c;
    }
    if out.starts_with('-') {
        out.insert(0, '_');
    }
    if out.ends_with('.') || out.ends_with(".lock") || out.is_empty() {
        out.push('_');
    }
    if out != id {
        out.push_str(&format!("-{:08x}", fnv1a(id.as_bytes())));
    }
    out
}

fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(*b)).wrapping_mul(0x0100_0193))
}

/// Makes a worktree at `dir` on a new branch `branch` from the current HEAD, after clearing
/// whatever an earlier run left at that path or on that branch (see [`Rescue`]). Deletes the
/// status file inherited from the commit (`status_file_rel`, relative to the repository) so a
/// stale report is never read as this attempt's. Adds the folder holding `dir` to the
/// repository's `info/exclude` so main's `git status` / `git add -A` never see worktrees.
/// A relative `dir` is taken relative to `root`. Not for several threads at once: git's
/// worktree records and `info/exclude` are shared.
///
/// Work of a stale worktree or branch that is already all in HEAD (landed by the run that
/// left it) is not rescued: `skip` names the path prefixes that never land (the plan, the
/// coordination files) and so do not count.
pub fn create(root: &Path, dir: &Path, branch: &str, status_file_rel: &Path, skip: &[&str]) -> Result<Created, WorktreeError> {
    let dir = &root.join(dir);
    check_branch(root, branch)?;
    if !is_plain_relative(status_file_rel) {
        return Err(WorktreeError::BadStatusFile { path: status_file_rel.to_path_buf() });
    }
    let fork = git(root, &["rev-parse", "--verify", "HEAD^{commit}"])?.trim().to_string();
    create_at(root, dir, branch, &fork, status_file_rel, skip)
}

/// [`create`] from the commit `fork`, the arguments checked.
fn create_at(root: &Path, dir: &Path, branch: &str, fork: &str, status_file_rel: &Path, skip: &[&str]) -> Result<Created, WorktreeError> {
    let rescued = clear_stale(root, dir, branch, fork, skip)?;
    exclude_worktree_folder(root, dir)?;
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).map_err(io_err("create", parent))?;
    }
    let dir_arg = dir.as_os_str();
    git_bytes(
        root,
        &[
            OsStr::new("worktree"),
            "add".as_ref(),
            "--quiet".as_ref(),
            "-b".as_ref(),
            branch.as_ref(),
            dir_arg,
            fork.as_ref(),
        ],
        &[],
        None,
    )?;
    remove_status_file(dir, status_file_rel)?;
    let worktree = Worktree { path: dir.to_path_buf(), branch: branch.to_string(), fork: fork.to_string() };
    Ok(Created { worktree, rescued, origin: Origin::Fresh })
}

/// Removes a task's worktree (uncommitted changes and all) and deletes its branch. Call it only
/// once the work has landed: this and the reset of a [`Landed`] worktree by a [`Pool`] are the
/// only places baton deletes a task's work. Either already being gone is fine.
pub fn remove(root: &Path, wt: &Worktree) -> Result<(), WorktreeError> {
    if wt.path.exists() {
        git_bytes(
            root,
            &[OsStr::new("worktree"), "remove".as_ref(), "--force".as_ref(), wt.path.as_os_str()],
            &[],
            None,
        )?;
    }
    git(root, &["worktree", "prune"])?;
    if branch_tip(root, &wt.branch)?.is_some() {
        git(root, &["branch", "-D", "--", &wt.branch])?;
    }
    Ok(())
}

/// The status file a commit may carry, deleted so a stale report is never read as the new
/// attempt's.
fn remove_status_file(dir: &Path, status_file_rel: &Path) -> Result<(), WorktreeError> {
    let status = dir.join(status_file_rel);
    match std::fs::remove_file(&status) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("delete", &status)(e)),
    }
}

/// A worktree whose work is all in the main checkout: everything that differs in it from its
/// fork is there (or was merged three-way into it). Only [`check_landed`] makes one, so a
/// [`Pool`] can never be handed a worktree whose work would be lost by resetting it.
#[derive(Debug)]
pub struct Landed(Worktree);

impl Landed {
    pub fn worktree(&self) -> &Worktree {
        &self.0
    }
}

/// Whether all of `wt`'s work is in the main checkout at `root` (the check copy-back makes
/// after a landing: [`copyback::unlanded`](super::copyback::unlanded), `merged` naming the
/// paths merged three-way): the worktree as [`Landed`] if so, else the paths that are not.
/// Reads every file's content.
pub fn check_landed(
    root: &Path,
    wt: Worktree,
    skip: &[&str],
    merged: &HashSet<PathBuf>,
) -> Result<Result<Landed, Vec<PathBuf>>, super::copyback::CopyBackError> {
    let left = super::copyback::unlanded(root, &wt, skip, merged)?;
    Ok(if left.is_empty() { Ok(Landed(wt)) } else { Err(left) })
}

/// Where a pooled worktree being reused is now.
struct Place {
    path: PathBuf,
    /// Switched to the new task's branch.
    on_new_branch: bool,
}

/// Worktrees reused between the tasks of a run: a task whose work has landed gives its
/// worktree back, and the next task takes it — moved to the new task's place and reset to the
/// new base — instead of `git worktree remove` and `git worktree add`. On a large repository
/// an add writes every file; a reset rewrites only what differs between the two commits and
/// deletes what the earlier task left.
///
/// Safety is the same as for [`remove`]: only a [`Landed`] worktree comes back, so a reset
/// never discards work main lacks; the new task's place is cleared as [`create`] clears it
/// (stale work rescued). A pooled worktree keeps its earlier task's name and branch while it
/// waits, at a commit whose work is in main: if baton dies then, the next run finds a landed
/// leftover of a completed task and clears it without a rescue.
///
/// Not for several threads at once (as [`create`]).
#[derive(Debug)]
pub struct Pool {
    root: PathBuf,
    status_file: PathBuf,
    skip: Vec<String>,
    /// Landed worktrees waiting for a task, the most recently given back last.
    idle: Vec<Worktree>,
    /// At most this many wait; one more given back is removed.
    capacity: usize,
    /// The per-worktree state (see [`Settings`]) of the last worktree this pool made fresh: what
    /// a reused one must still have, or a task would inherit what an earlier one set up.
    fresh: Option<Settings>,
}

/// What git keeps for one worktree beside its index and HEAD that a task can change and
/// `checkout`/`clean` do not reset: its own config (`config.worktree`, with
/// `extensions.worktreeConfig`) and its sparse-checkout patterns. A task's worktree that made
/// itself a sparse checkout would hand the next task a tree with files missing, and new files
/// there could not land.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Settings {
    config: Option<Vec<u8>>,
    sparse: Option<Vec<u8>>,
}

impl Settings {
    /// The settings of the worktree at `path`, read from its admin folder.
    fn of(path: &Path) -> Result<Settings, WorktreeError> {
        let dir = PathBuf::from(git(path, &["rev-parse", "--git-dir"])?.trim_end_matches('\n'));
        let dir = if dir.is_absolute() { dir } else { path.join(dir) };
        let read = |rel: &str| -> Result<Option<Vec<u8>>, WorktreeError> {
            let file = dir.join(rel);
            match std::fs::read(&file) {
                Ok(bytes) => Ok(Some(bytes)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(io_err("read", &file)(e)),
            }
        };
        Ok(Settings { config: read("config.worktree")?, sparse: read("info/sparse-checkout")? })
    }
}

impl Pool {
    /// A pool for the repository at `root`. `status_file_rel` and `skip` are as for
    /// [`create`]; at most `capacity` worktrees wait for reuse (a run's job limit: more never
    /// run at once).
    pub fn new(root: &Path, status_file_rel: &Path, skip: &[&str], capacity: usize) -> Pool {
        Pool {
            root: root.to_path_buf(),
            status_file: status_file_rel.to_path_buf(),
            skip: skip.iter().map(|s| s.to_string()).collect(),
            idle: Vec::new(),
            capacity,
            fresh: None,
        }
    }

    /// The worktrees waiting for a task.
    pub fn idle(&self) -> &[Worktree] {
        &self.idle
    }

    /// A worktree at `dir` on a new branch `branch` at `base` (a commit-ish, e.g. `HEAD`),
    /// made as [`create`] makes one, but from a waiting worktree when there is one: moved to
    /// `dir`, switched to `branch` at `base`, every file of the earlier task — ignored ones
    /// too — removed. If the reuse fails, that worktree (landed) is removed and a fresh one
    /// is made; [`Created::origin`] says which happened.
    pub fn take(&mut self, dir: &Path, branch: &str, base: &str) -> Result<Created, WorktreeError> {
        let dir = self.root.join(dir);
        check_branch(&self.root, branch)?;
        if !is_plain_relative(&self.status_file) {
            return Err(WorktreeError::BadStatusFile { path: self.status_file.clone() });
        }
        let fork = git(&self.root, &["rev-parse", "--verify", &format!("{base}^{{commit}}")])?.trim().to_string();
        let skip: Vec<&str> = self.skip.iter().map(String::as_str).collect();
        let Some(old) = self.idle.pop() else {
            let created = create_at(&self.root, &dir, branch, &fork, &self.status_file, &skip)?;
            self.fresh = Settings::of(&created.worktree.path).ok();
            return Ok(created);
        };
        let mut at = Place { path: old.path.clone(), on_new_branch: false };
        match self.reuse(&old, &dir, branch, &fork, &mut at) {
            Ok(created) => Ok(created),
            Err(error) => {
                // Its work had landed: removing it loses nothing. Only the worktree known to be
                // the pooled one goes, from wherever the reuse left it, with its branches.
                let on = if at.on_new_branch { branch } else { old.branch.as_str() };
                let _ = remove(&self.root, &Worktree { path: at.path, branch: on.to_string(), fork: fork.clone() });
                if at.on_new_branch && old.branch != branch && branch_tip(&self.root, &old.branch)?.is_some() {
                    git(&self.root, &["branch", "-D", "--", &old.branch])?;
                }
                let mut created = create_at(&self.root, &dir, branch, &fork, &self.status_file, &skip)?;
                self.fresh = Settings::of(&created.worktree.path).ok();
                created.origin = Origin::FreshAfterFailedReuse { from: old.path.clone(), error: error.to_string() };
                Ok(created)
            }
        }
    }

    /// Moves the pooled worktree `old` to `dir` and resets it onto `branch` at `fork`; `at`
    /// follows where it is, for the clean-up if a step fails.
    fn reuse(&self, old: &Worktree, dir: &Path, branch: &str, fork: &str, at: &mut Place) -> Result<Created, WorktreeError> {
        let skip: Vec<&str> = self.skip.iter().map(String::as_str).collect();
        if let Some(fresh) = &self.fresh {
            if Settings::of(&at.path)? != *fresh {
                return Err(WorktreeError::NotReusable {
                    reason: "its task changed its sparse checkout or worktree config".into(),
                });
            }
        }
        // The pooled worktree must not be what clearing the new place removes: out of the way
        // first if it sits at that place or on that branch.
        if same_path(&at.path, dir) || old.branch == branch {
            let mut aside = dir.as_os_str().to_owned();
            aside.push(format!(".pooled-{}", std::process::id()));
            self.move_worktree(at, Path::new(&aside))?;
            git(&at.path, &["checkout", "-q", "--detach"])?;
        }
        // Nothing at the new place and no such branch (the usual case): nothing to clear. A
        // worktree still registered there with its folder gone makes the move fail, and the
        // fresh worktree made instead clears it.
        let rescued = if dir.exists() || branch_tip(&self.root, branch)?.is_some() {
            clear_stale(&self.root, dir, branch, fork, &skip)?
        } else {
            Vec::new()
        };
        if dir.parent() != at.path.parent() {
            exclude_worktree_folder(&self.root, dir)?;
            if let Some(parent) = dir.parent() {
                std::fs::create_dir_all(parent).map_err(io_err("create", parent))?;
            }
        }
        self.move_worktree(at, dir)?;
        // What the earlier task left that its index does not track: untracked and ignored
        // files, nested repositories (-ff), and what git never sees (a FIFO, a socket). First,
        // so that what a `post-checkout` hook makes below stays, as in a fresh worktree.
        git(dir, &["clean", "-q", "-ffdx"])?;
        remove_special_files(dir)?;
        // Tracked files as `fork` has them, whatever the earlier task did to them or the index
        // (files only in its index go too).
        git(dir, &["checkout", "-q", "-f", "--no-track", "-B", branch, fork])?;
        at.on_new_branch = true;
        if old.branch != branch {
            if let Err(e) = git(&self.root, &["branch", "-D", "--", &old.branch]) {
                // Gone already is fine (one process fewer than asking first).
                if branch_tip(&self.root, &old.branch)?.is_some() {
                    return Err(e.into());
                }
            }
        }
        remove_status_file(dir, &self.status_file)?;
        let worktree = Worktree { path: dir.to_path_buf(), branch: branch.to_string(), fork: fork.to_string() };
        Ok(Created { worktree, rescued, origin: Origin::Reused { from: old.path.clone() } })
    }

    fn move_worktree(&self, at: &mut Place, to: &Path) -> Result<(), WorktreeError> {
        if !same_path(&at.path, to) {
            git_bytes(&self.root, &[OsStr::new("worktree"), "move".as_ref(), at.path.as_os_str(), to.as_os_str()], &[], None)?;
            at.path = to.to_path_buf();
        }
        Ok(())
    }

    /// Takes back a worktree whose work has landed, to be reset for the next task; beyond the
    /// pool's capacity it is removed instead. Its files stay as they are until then.
    pub fn give_back(&mut self, landed: Landed) -> Result<(), WorktreeError> {
        let Landed(wt) = landed;
        if self.idle.len() >= self.capacity || !wt.path.is_dir() {
            return remove(&self.root, &wt);
        }
        self.idle.push(wt);
        Ok(())
    }

    /// Removes every waiting worktree and its branch (their work has landed): at the end of a
    /// run. Tries them all; the first error is returned.
    pub fn close(&mut self) -> Result<(), WorktreeError> {
        let mut first = None;
        for wt in std::mem::take(&mut self.idle) {
            if let Err(e) = remove(&self.root, &wt) {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }
}

/// Removes every FIFO, socket and device file under `dir` (not following symlinks, not into
/// its `.git`): git neither tracks nor cleans them, so a reused worktree would keep them.
fn remove_special_files(dir: &Path) -> Result<(), WorktreeError> {
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).map_err(io_err("read", &folder))? {
            let entry = entry.map_err(io_err("read", &folder))?;
            let path = entry.path();
            let kind = entry.file_type().map_err(io_err("read", &path))?;
            if kind.is_dir() {
                if !(folder == dir && entry.file_name() == ".git") {
                    folders.push(path);
                }
            } else if !kind.is_file() && !kind.is_symlink() {
                std::fs::remove_file(&path).map_err(io_err("remove", &path))?;
            }
        }
    }
    Ok(())
}

/// Branches under `prefix` (e.g. `parallel/`) and their worktrees, as a crashed or stopped run
/// left them: for recovery at start-up. Prunes worktree records whose folder is gone first.
pub fn list_stale(root: &Path, prefix: &str) -> Result<Vec<Stale>, WorktreeError> {
    git(root, &["worktree", "prune"])?;
    let pattern = format!("refs/heads/{prefix}");
    let refs = git(root, &["for-each-ref", "--format=%(objectname) %(refname)", &pattern])?;
    let worktrees = worktree_list(root)?;
    let head = git(root, &["rev-parse", "--verify", "-q", "HEAD^{commit}"]).ok().map(|s| s.trim().to_string());
    let mut out = Vec::new();
    for line in refs.lines() {
        let Some((tip, refname)) = line.split_once(' ') else { continue };
        // for-each-ref matches whole components; a prefix like `parallel/` must also match here.
        let Some(branch) = refname.strip_prefix("refs/heads/") else { continue };
        if !branch.starts_with(prefix) {
            continue;
        }
        let path = worktrees
            .iter()
            .skip(1)
            .find(|w| w.branch.as_deref() == Some(refname))
            .map(|w| w.path.clone())
            .filter(|p| p.is_dir());
        let fork = match &head {
            Some(h) => git(root, &["merge-base", h, tip]).ok().map(|s| s.trim().to_string()),
            None => None,
        };
        out.push(Stale { branch: branch.to_string(), tip: tip.to_string(), path, fork });
    }
    Ok(out)
}

static SNAPSHOT_SEQ: AtomicUsize = AtomicUsize::new(0);

/// The tree id of everything in the working tree at `path` that git would see — tracked files
/// as they are on disk, untracked files that are not ignored, deletions — without touching the
/// worktree's own index: it works on a copy.
///
/// Every file's content is read and hashed: nothing is judged unchanged from stat data alone.
/// git's stat cache trusts an entry whose size and times match unless the entry is "racily
/// clean" (not older than the index file); a copied index gets a new mtime, so a same-size edit
/// made within a second of the worktree's checkout looked unchanged and a task's work was
/// silently left behind. The copy's mtime is therefore set to the start of the epoch, which
/// makes every entry racily clean and has git compare contents: about 0.3 s on a tree of 20k
/// small files, against 0.06 s trusting the stat cache — once per landing, which is worth it.
/// (An empty index would cost the same but lose sparse-checkout bits.) `core.fsmonitor`,
/// `core.untrackedCache` and `core.ignoreStat` are switched off for the same reason.
pub fn snapshot(path: &Path) -> Result<String, GitError> {
    let index = PathBuf::from(git(path, &["rev-parse", "--git-path", "index"])?.trim_end_matches('\n'));
    let index = if index.is_absolute() { index } else { path.join(index) };
    let n = SNAPSHOT_SEQ.fetch_add(1, Ordering::Relaxed);
    let mut tmp = index.clone().into_os_string();
    tmp.push(format!(".baton-snapshot-{}-{n}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    // A missing index (fresh worktree before any checkout) is fine: `add -A` starts empty.
    if std::fs::copy(&index, &tmp).is_ok() {
        // git ignores an index timestamp of 0 ("unknown"), so one second after the epoch.
        let past = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1);
        let stamped = std::fs::File::options().write(true).open(&tmp).and_then(|f| f.set_modified(past));
        if stamped.is_err() {
            // Without the old stamp the stat cache could be trusted: start from no index.
            let _ = std::fs::remove_file(&tmp);
        }
    }
    let env = [("GIT_INDEX_FILE", tmp.as_os_str())];
    let untrusting = ["-c", "core.fsmonitor=false", "-c", "core.untrackedCache=false", "-c", "core.ignoreStat=false"];
    let add: Vec<&str> = untrusting.iter().copied().chain(["add", "-A", "--", ":/"]).collect();
    let result = git_bytes(path, &add, &env, None)
        .and_then(|_| git_bytes(path, &["write-tree"], &env, None))
        .map(|out| String::from_utf8_lossy(&out).trim().to_string());
    let _ = std::fs::remove_file(&tmp);
    result
}

fn check_branch(root: &Path, branch: &str) -> Result<(), WorktreeError> {
    let invalid = || WorktreeError::InvalidBranch { name: branch.to_string() };
    if branch.is_empty() || branch.starts_with('-') {
        return Err(invalid());
    }
    let full = format!("refs/heads/{branch}");
    let out = git_output(root, &["check-ref-format", &full], &[], None)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(invalid())
    }
}

fn is_plain_relative(p: &Path) -> bool {
    p.components().next().is_some() && p.components().all(|c| matches!(c, Component::Normal(_)))
}

fn branch_tip(root: &Path, branch: &str) -> Result<Option<String>, GitError> {
    let full = format!("refs/heads/{branch}");
    let out = git_output(root, &["rev-parse", "--verify", "-q", &full], &[], None)?;
    Ok(out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string()))
}

/// One record of `git worktree list --porcelain`.
#[derive(Debug)]
struct Listed {
    path: PathBuf,
    head: Option<String>,
    /// Full ref name, `refs/heads/…`.
    branch: Option<String>,
}

/// The first record is the main working tree. (No `-z` before git 2.36: a path with a newline
/// in it would be misread; worktree paths are baton's own.)
fn worktree_list(root: &Path) -> Result<Vec<Listed>, GitError> {
    let out = git(root, &["worktree", "list", "--porcelain"])?;
    let mut list = Vec::new();
    for record in out.split("\n\n") {
        let mut item = Listed { path: PathBuf::new(), head: None, branch: None };
        for line in record.lines() {
            if let Some(p) = line.strip_prefix("worktree ") {
                item.path = PathBuf::from(p);
            } else if let Some(h) = line.strip_prefix("HEAD ") {
                item.head = Some(h.to_string());
            } else if let Some(b) = line.strip_prefix("branch ") {
                item.branch = Some(b.to_string());
            }
        }
        if !item.path.as_os_str().is_empty() {
            list.push(item);
        }
    }
    Ok(list)
}

fn same_path(a: &Path, b: &Path) -> bool {
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| normalize_via_parent(p));
    a == b || canon(a) == canon(b)
}

/// For a path that does not exist (yet): its parent canonicalized, then its name.
fn normalize_via_parent(p: &Path) -> PathBuf {
    match (p.parent(), p.file_name()) {
        (Some(parent), Some(name)) => {
            std::fs::canonicalize(parent).map(|c| c.join(name)).unwrap_or_else(|_| p.to_path_buf())
        }
        _ => p.to_path_buf(),
    }
}

/// Clears what an interrupted run left at `dir` / `branch` (a worktree, a branch) for a task
/// that needs it no more: what is not in HEAD is kept on a rescue branch first.
pub fn clear_leftover(root: &Path, dir: &Path, branch: &str, skip: &[&str]) -> Result<Vec<Rescue>, WorktreeError> {
    if !dir.exists() && branch_tip(root, branch)?.is_none() {
        return Ok(Vec::new());
    }
    let head = git(root, &["rev-parse", "--verify", "-q", "HEAD^{commit}"])?;
    clear_stale(root, dir, branch, head.trim(), skip)
}

/// Removes a stale worktree at `dir` and any worktree or branch named `branch`, keeping
/// anything not reachable from `head` on a rescue branch first.
fn clear_stale(root: &Path, dir: &Path, branch: &str, head: &str, skip: &[&str]) -> Result<Vec<Rescue>, WorktreeError> {
    let full = format!("refs/heads/{branch}");
    let listed = worktree_list(root)?;
    let mut listed = listed.into_iter();
    if let Some(main) = listed.next() {
        if main.branch.as_deref() == Some(full.as_str()) {
            return Err(WorktreeError::CheckedOutInMain { branch: branch.to_string() });
        }
        if same_path(&main.path, dir) || same_path(root, dir) {
            return Err(WorktreeError::MainCheckout { path: dir.to_path_buf() });
        }
    }
    // Tips to keep if unreachable from HEAD: (commit, what it was, had uncommitted changes).
    let mut tips: Vec<(String, String, bool)> = Vec::new();
    for stale in listed.filter(|w| same_path(&w.path, dir) || w.branch.as_deref() == Some(full.as_str())) {
        let what = match &stale.branch {
            Some(b) => format!("worktree {} ({})", stale.path.display(), b.trim_start_matches("refs/heads/")),
            None => format!("worktree {}", stale.path.display()),
        };
        if stale.path.is_dir() {
            let status = git_bytes(&stale.path, &["status", "--porcelain", "-z", "--untracked-files=all"], &[], None)?;
            if !status.is_empty() {
                let commit = commit_snapshot(&stale.path, stale.head.as_deref())?;
                tips.push((commit, what, true));
            } else if let Some(h) = &stale.head {
                tips.push((h.clone(), what, false));
            }
            git_bytes(
                root,
                &[OsStr::new("worktree"), "remove".as_ref(), "--force".as_ref(), stale.path.as_os_str()],
                &[],
                None,
            )?;
        }
    }
    git(root, &["worktree", "prune"])?;
    if let Some(tip) = branch_tip(root, branch)? {
        tips.push((tip, format!("branch {branch}"), false));
    }

    let mut rescued = Vec::new();
    let mut kept: Vec<String> = vec![head.to_string()];
    for (commit, from, uncommitted) in tips {
        // Anything reachable from HEAD or from a branch already rescued here is safe.
        let mut args = vec!["rev-list".to_string(), "--count".to_string(), commit.clone(), "--not".to_string()];
        args.extend(kept.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let unreachable: u64 = git(root, &args)?.trim().parse().unwrap_or(1);
        if unreachable == 0 || landed_in_head(root, &commit, skip)? {
            continue;
        }
        let name = rescue_name(root, branch)?;
        git(root, &["branch", "--", &name, &commit])?;
        kept.push(commit.clone());
        rescued.push(Rescue::Branch { name, commit, from, uncommitted });
    }
    if branch_tip(root, branch)?.is_some() {
        git(root, &["branch", "-D", "--", branch])?;
    }

    // A folder git does not (or no longer) know as a worktree.
    if dir.exists() {
        let empty = std::fs::read_dir(dir).map(|mut d| d.next().is_none()).unwrap_or(false);
        if empty {
            std::fs::remove_dir(dir).map_err(io_err("remove", dir))?;
        } else {
            let mut to = dir.as_os_str().to_owned();
            to.push(format!(".rescued-{}", utc_stamp()));
            let to = PathBuf::from(to);
            std::fs::rename(dir, &to).map_err(io_err("move aside", dir))?;
            rescued.push(Rescue::Directory { from: dir.to_path_buf(), to });
        }
    }
    Ok(rescued)
}

/// Commits everything in the working tree at `path` on top of `parent`, without touching its
/// index or branch; returns the commit id.
fn commit_snapshot(path: &Path, parent: Option<&str>) -> Result<String, GitError> {
    let tree = snapshot(path)?;
    let message = format!("baton: uncommitted work rescued from {}", path.display());
    let mut args = vec!["commit-tree", tree.as_str(), "-m", message.as_str()];
    if let Some(p) = parent {
        args.extend(["-p", p]);
    }
    // The rescue is baton's doing, and must not fail for want of a configured identity.
    let who = OsStr::new("baton");
    let mail = OsStr::new("baton@localhost");
    let env = [
        ("GIT_AUTHOR_NAME", who),
        ("GIT_AUTHOR_EMAIL", mail),
        ("GIT_COMMITTER_NAME", who),
        ("GIT_COMMITTER_EMAIL", mail),
    ];
    let out = git_bytes(path, &args, &env, None)?;
    Ok(String::from_utf8_lossy(&out).trim().to_string())
}

/// Whether everything `tip` changed since it forked from HEAD's history is in HEAD as it is
/// on `tip` (paths under `skip` aside): then keeping it would keep nothing main lacks.
pub fn landed_in_head(root: &Path, tip: &str, skip: &[&str]) -> Result<bool, GitError> {
    let Ok(head) = git(root, &["rev-parse", "--verify", "-q", "HEAD^{commit}"]) else { return Ok(false) };
    let head = head.trim();
    let Ok(fork) = git(root, &["merge-base", head, tip]) else { return Ok(false) };
    let names = |from: &str| -> Result<HashSet<Vec<u8>>, GitError> {
        let out = git_bytes(root, &["diff-tree", "-r", "-z", "--name-only", "--no-renames", from, tip], &[], None)?;
        Ok(out
            .split(|b| *b == 0)
            .filter(|p| !p.is_empty())
            .filter(|p| !skip.iter().any(|s| Path::new(OsStr::from_bytes(p)).starts_with(s.trim_end_matches('/'))))
            .map(<[u8]>::to_vec)
            .collect())
    };
    let changed = names(fork.trim())?;
    let differs = names(head)?;
    Ok(changed.is_disjoint(&differs))
}

/// A rescued branch deleted by [`prune_rescued`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pruned {
    pub branch: String,
    /// Its commit, for the record: recoverable with `git branch <name> <tip>` until git's
    /// garbage collection.
    pub tip: String,
    /// Everything on it is in HEAD; otherwise it was an interrupted attempt's work, superseded
    /// by the attempt that completed the task.
    pub landed: bool,
}

/// Deletes the `parallel-rescued/<name>-<time>` branches made for the tasks whose worktree
/// names are `names` — tasks that have completed since: what such a branch holds either landed
/// or was an interrupted attempt's work that the completing attempt replaced.
pub fn prune_rescued(root: &Path, names: &[String], skip: &[&str]) -> Result<Vec<Pruned>, GitError> {
    let pattern = format!("refs/heads/{RESCUE_PREFIX}");
    let refs = git(root, &["for-each-ref", "--format=%(objectname) %(refname)", &pattern])?;
    let mut gone = Vec::new();
    for line in refs.lines() {
        let Some((tip, refname)) = line.split_once(' ') else { continue };
        let Some(branch) = refname.strip_prefix("refs/heads/") else { continue };
        let Some(rest) = branch.strip_prefix(RESCUE_PREFIX) else { continue };
        // `<name>-<YYYYMMDD-HHMMSS>` or `…-<n>`: not another task whose name starts with this one.
        let ours = names.iter().any(|name| {
            let Some(stamp) = rest.strip_prefix(name.as_str()).and_then(|r| r.strip_prefix('-')) else { return false };
            let parts = stamp.split('-').collect::<Vec<_>>();
            matches!(parts.as_slice(), [d, t] | [d, t, _] if d.len() == 8 && t.len() == 6)
                && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        });
        if ours {
            let landed = landed_in_head(root, tip, skip)?;
            git(root, &["branch", "-D", "--", branch])?;
            gone.push(Pruned { branch: branch.to_string(), tip: tip.to_string(), landed });
        }
    }
    Ok(gone)
}

/// `parallel-rescued/<task>-<UTC time>`, with `-2`, `-3`… if that exists already.
fn rescue_name(root: &Path, branch: &str) -> Result<String, GitError> {
    let task = branch.strip_prefix(BRANCH_PREFIX).unwrap_or(branch);
    let base = format!("{RESCUE_PREFIX}{task}-{}", utc_stamp());
    let mut name = base.clone();
    let mut n = 2;
    while branch_tip(root, &name)?.is_some() {
        name = format!("{base}-{n}");
        n += 1;
    }
    Ok(name)
}

/// Adds `/<folder of dir>/` to the repository's `info/exclude` when `dir` lies inside `root`.
fn exclude_worktree_folder(root: &Path, dir: &Path) -> Result<(), WorktreeError> {
    let (Ok(root_c), Some(parent)) = (std::fs::canonicalize(root), dir.parent()) else { return Ok(()) };
    let parent_c = std::fs::canonicalize(parent).unwrap_or_else(|_| normalize_via_parent(parent));
    let Ok(rel) = parent_c.strip_prefix(&root_c) else { return Ok(()) };
    let Some(rel) = rel.to_str().filter(|r| !r.is_empty()) else { return Ok(()) };
    super::exclude_locally(root, &[&format!("/{rel}/")], "worktrees of baton's parallel tasks")
        .map_err(WorktreeError::Git)
}

/// The current UTC time as `YYYYMMDD-HHMMSS`.
fn utc_stamp() -> String {
    jiff::Timestamp::now().strftime("%Y%m%d-%H%M%S").to_string()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::process::Command;

    /// A temporary repository with one commit.
    pub(crate) struct Repo {
        _tmp: tempfile::TempDir,
        pub root: PathBuf,
    }

    impl Repo {
        pub fn new() -> Repo {
            let tmp = tempfile::tempdir().unwrap();
            let root = tmp.path().join("repo");
            std::fs::create_dir(&root).unwrap();
            let repo = Repo { _tmp: tmp, root };
            repo.git(&["init", "-q", "-b", "main"]);
            repo.git(&["config", "user.name", "Test"]);
            repo.git(&["config", "user.email", "test@example.invalid"]);
            repo.write("README.md", "hello\n");
            repo.commit_all("initial");
            repo
        }

        /// A scratch folder next to the repository (outside it).
        pub fn outside(&self) -> PathBuf {
            self._tmp.path().to_path_buf()
        }

        pub fn git(&self, args: &[&str]) -> String {
            git_in(&self.root, args)
        }

        pub fn write(&self, rel: &str, content: &str) {
            write_in(&self.root, rel, content);
        }

        pub fn read(&self, rel: &str) -> Option<String> {
            std::fs::read_to_string(self.root.join(rel)).ok()
        }

        pub fn commit_all(&self, message: &str) {
            self.git(&["add", "-A"]);
            self.git(&["commit", "-q", "-m", message]);
        }

        pub fn head(&self) -> String {
            self.git(&["rev-parse", "HEAD"]).trim().to_string()
        }

        pub fn wt_dir(&self, task: &str) -> PathBuf {
            self.root.join(".worktrees").join(format!("plan-{task}"))
        }

        pub fn create(&self, task: &str) -> Created {
            create(&self.root, &self.wt_dir(task), &branch_name(task), Path::new(".claude/plans/task-status.json"), &[])
                .unwrap()
        }

        pub fn has_branch(&self, branch: &str) -> bool {
            branch_tip(&self.root, branch).unwrap().is_some()
        }
    }

    pub(crate) fn git_in(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git").args(args).current_dir(dir).env("LC_ALL", "C").output().unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub(crate) fn write_in(dir: &Path, rel: &str, content: &str) {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    #[test]
    fn create_forks_from_head_clears_inherited_status_file_and_hides_worktrees_from_main() {
        let repo = Repo::new();
        repo.write(".claude/plans/task-status.json", "{\"status\":\"done\"}\n");
        repo.commit_all("status file committed by mistake");
        let created = repo.create("1.1");
        let wt = &created.worktree;
        assert!(created.rescued.is_empty());
        assert_eq!(wt.fork, repo.head());
        assert_eq!(wt.branch, "parallel/1.1");
        assert_eq!(git_in(&wt.path, &["rev-parse", "HEAD"]).trim(), repo.head());
        assert_eq!(git_in(&wt.path, &["symbolic-ref", "HEAD"]).trim(), "refs/heads/parallel/1.1");
        assert!(wt.path.join("README.md").is_file());
        assert!(!wt.path.join(".claude/plans/task-status.json").exists());
        assert!(repo.root.join(".claude/plans/task-status.json").exists(), "main's copy is not touched");
        assert_eq!(repo.git(&["status", "--porcelain"]), "", "the worktree folder is excluded in main");
    }

    #[test]
    fn branch_names_keep_valid_task_ids_and_sanitize_others_without_collisions() {
        assert_eq!(branch_name("1.1"), "parallel/1.1");
        assert_eq!(branch_name("2.1a"), "parallel/2.1a");
        assert_eq!(branch_name("fix-login_2"), "parallel/fix-login_2");
        let nasty = ["a b", "a-b", "..", ".x", "x.lock", "-x", "a~b^c:d?*[e\\", "", "x/y", "@{", "x.", "über", "a..b"];
        let repo = Repo::new();
        let mut seen = HashSet::new();
        for id in nasty {
            let name = branch_name(id);
            assert!(check_branch(&repo.root, &name).is_ok(), "{id:?} gave invalid {name:?}");
            assert!(seen.insert(name.clone()), "{id:?} collides as {name:?}");
        }
        assert!(matches!(check_branch(&repo.root, "parallel/a..b"), Err(WorktreeError::InvalidBranch { .. })));
        assert!(matches!(check_branch(&repo.root, "-x"), Err(WorktreeError::InvalidBranch { .. })));
    }

    #[test]
    fn stale_clean_worktree_and_branch_are_replaced() {
        let repo = Repo::new();
        let old = repo.create("1.1").worktree;
        repo.write("later.txt", "main moved on\n");
        repo.commit_all("later");
        let created = repo.create("1.1");
        assert_eq!(created.rescued, vec![]);
        assert_eq!(created.worktree.fork, repo.head());
        assert_eq!(git_in(&old.path, &["rev-parse", "HEAD"]).trim(), repo.head());
        assert!(old.path.join("later.txt").is_file());
        let rescued = repo.git(&["branch", "--list", "parallel-rescued/*"]);
        assert_eq!(rescued, "");
    }

    #[test]
    fn stale_branch_with_unmerged_commits_is_rescued_not_deleted() {
        let repo = Repo::new();
        repo.git(&["branch", "parallel/1.1"]);
        let wt = repo.outside().join("elsewhere");
        git_in(&repo.root, &["worktree", "add", "-q", wt.to_str().unwrap(), "parallel/1.1"]);
        write_in(&wt, "work.txt", "precious\n");
        git_in(&wt, &["add", "-A"]);
        git_in(&wt, &["commit", "-q", "-m", "work"]);
        let precious = git_in(&wt, &["rev-parse", "HEAD"]).trim().to_string();

        let created = repo.create("1.1");
        let [Rescue::Branch { name, commit, uncommitted, .. }] = &created.rescued[..] else {
            panic!("expected one rescued branch: {:?}", created.rescued)
        };
        assert!(name.starts_with("parallel-rescued/1.1-"), "{name}");
        assert_eq!(commit, &precious);
        assert!(!uncommitted);
        assert_eq!(repo.git(&["rev-parse", name]).trim(), precious);
        assert_eq!(repo.git(&["show", &format!("{name}:work.txt")]), "precious\n");
        assert_eq!(repo.git(&["rev-parse", "parallel/1.1"]).trim(), repo.head(), "new branch from HEAD");
        assert!(!created.worktree.path.join("work.txt").exists());
        assert!(created.rescued[0].to_string().contains(name));
    }

    #[test]
    fn stale_worktree_with_uncommitted_changes_is_committed_onto_a_rescue_branch() {
        let repo = Repo::new();
        let old = repo.create("2.1a").worktree;
        write_in(&old.path, "README.md", "edited\n");
        write_in(&old.path, "new/untracked.txt", "untracked\n");

        let created = repo.create("2.1a");
        let [Rescue::Branch { name, uncommitted: true, .. }] = &created.rescued[..] else {
            panic!("expected one rescued branch with uncommitted work: {:?}", created.rescued)
        };
        assert_eq!(repo.git(&["show", &format!("{name}:README.md")]), "edited\n");
        assert_eq!(repo.git(&["show", &format!("{name}:new/untracked.txt")]), "untracked\n");
        assert_eq!(std::fs::read_to_string(created.worktree.path.join("README.md")).unwrap(), "hello\n");
        assert!(!created.worktree.path.join("new/untracked.txt").exists());
    }

    #[test]
    fn a_stale_worktree_whose_work_is_all_in_head_is_not_rescued_and_landed_rescues_are_pruned() {
        let repo = Repo::new();
        let old = repo.create("1").worktree;
        write_in(&old.path, "done.txt", "landed\n");
        write_in(&old.path, ".claude/plans/plan.yaml", "the agent's copy\n");
        // Main already has the work (a crash after the landing commit, before the cleanup).
        repo.write("done.txt", "landed\n");
        repo.commit_all("plan: land task 1");
        let skip = [".claude/plans/"];
        let created = create(&repo.root, &repo.wt_dir("1"), &branch_name("1"), Path::new("s.json"), &skip).unwrap();
        assert_eq!(created.rescued, vec![], "work already in HEAD was rescued");

        // Rescued branches: one all landed, one not, one of another task.
        for (name, content) in [("parallel-rescued/1-20260101-000000", "landed\n"), ("parallel-rescued/1-20260101-000001", "other\n"), ("parallel-rescued/1-2-20260101-000000", "landed\n")] {
            repo.git(&["checkout", "-q", "-b", name, "HEAD~1"]);
            repo.write("done.txt", content);
            repo.commit_all("rescued");
            repo.git(&["checkout", "-q", "main"]);
        }
        assert!(landed_in_head(&repo.root, "parallel-rescued/1-20260101-000000", &skip).unwrap());
        assert!(!landed_in_head(&repo.root, "parallel-rescued/1-20260101-000001", &skip).unwrap());
        // Task 1 has completed: both its branches go, each said to have landed or not; task
        // 1-2's stays.
        let gone = prune_rescued(&repo.root, &["1".to_string()], &skip).unwrap();
        let gone: Vec<(&str, bool)> = gone.iter().map(|p| (p.branch.as_str(), p.landed)).collect();
        assert_eq!(gone, [("parallel-rescued/1-20260101-000000", true), ("parallel-rescued/1-20260101-000001", false)]);
        assert!(!repo.has_branch("parallel-rescued/1-20260101-000001"));
        assert!(repo.has_branch("parallel-rescued/1-2-20260101-000000"));
    }

    #[test]
    fn unknown_folder_in_the_way_is_moved_aside() {
        let repo = Repo::new();
        let dir = repo.wt_dir("3");
        write_in(&dir, "notes.txt", "mine\n");
        let created = repo.create("3");
        let [Rescue::Directory { to, .. }] = &created.rescued[..] else { panic!("{:?}", created.rescued) };
        assert_eq!(std::fs::read_to_string(to.join("notes.txt")).unwrap(), "mine\n");
        assert!(created.worktree.path.join("README.md").is_file());
    }

    #[test]
    fn refuses_a_branch_checked_out_in_main_and_invalid_names() {
        let repo = Repo::new();
        repo.git(&["checkout", "-q", "-b", "parallel/1"]);
        let err = create(&repo.root, &repo.wt_dir("1"), "parallel/1", Path::new("s.json"), &[]).unwrap_err();
        assert!(matches!(err, WorktreeError::CheckedOutInMain { .. }), "{err:?}");
        let err = create(&repo.root, &repo.wt_dir("x"), "parallel/a b", Path::new("s.json"), &[]).unwrap_err();
        assert!(matches!(err, WorktreeError::InvalidBranch { .. }), "{err:?}");
        let err = create(&repo.root, &repo.wt_dir("x"), "parallel/x", Path::new("../s.json"), &[]).unwrap_err();
        assert!(matches!(err, WorktreeError::BadStatusFile { .. }), "{err:?}");
        assert!(!repo.wt_dir("x").exists());
    }

    #[test]
    fn remove_deletes_worktree_and_branch() {
        let repo = Repo::new();
        let wt = repo.create("1").worktree;
        write_in(&wt.path, "dirty.txt", "landed already\n");
        remove(&repo.root, &wt).unwrap();
        assert!(!wt.path.exists());
        assert!(!repo.has_branch("parallel/1"));
        assert_eq!(repo.git(&["worktree", "list", "--porcelain"]).matches("worktree ").count(), 1);
        remove(&repo.root, &wt).unwrap();
    }

    #[test]
    fn list_stale_finds_baton_branches_with_their_worktrees_and_fork() {
        let repo = Repo::new();
        let fork = repo.head();
        let a = repo.create("a").worktree;
        repo.git(&["branch", "parallel/b"]);
        repo.git(&["branch", "unrelated"]);
        repo.write("later.txt", "x\n");
        repo.commit_all("later");
        let stale = list_stale(&repo.root, BRANCH_PREFIX).unwrap();
        assert_eq!(stale.len(), 2, "{stale:?}");
        assert_eq!(stale[0].branch, "parallel/a");
        assert_eq!(stale[0].worktree(), Some(Worktree { path: stale[0].path.clone().unwrap(), ..a.clone() }));
        assert!(same_path(stale[0].path.as_ref().unwrap(), &a.path));
        assert_eq!(stale[0].fork.as_deref(), Some(fork.as_str()));
        assert_eq!(stale[1].branch, "parallel/b");
        assert_eq!(stale[1].path, None);
        assert_eq!(stale[1].to_string(), "branch parallel/b");
        assert!(stale[0].to_string().starts_with("branch parallel/a with worktree /"), "{}", stale[0]);
    }

    #[test]
    fn snapshot_sees_tracked_untracked_and_deleted_but_not_ignored_files_and_leaves_the_index() {
        let repo = Repo::new();
        repo.write(".gitignore", "*.log\n");
        repo.commit_all("ignore");
        repo.write("README.md", "changed\n");
        repo.write("new.txt", "new\n");
        repo.write("debug.log", "ignored\n");
        let tree = snapshot(&repo.root).unwrap();
        let names = repo.git(&["ls-tree", "-r", "--name-only", &tree]);
        assert_eq!(names, ".gitignore\nREADME.md\nnew.txt\n");
        assert_eq!(repo.git(&["show", &format!("{tree}:README.md")]), "changed\n");
        assert_eq!(repo.git(&["diff", "--cached", "--name-only"]), "", "the real index is untouched");
        std::fs::remove_file(repo.root.join("README.md")).unwrap();
        let tree = snapshot(&repo.root).unwrap();
        assert_eq!(repo.git(&["ls-tree", "-r", "--name-only", &tree]), ".gitignore\nnew.txt\n");
    }

    /// A same-size edit whose stat data matches the index entry (same mtime, ctime not
    /// trusted) is exactly what git's stat cache cannot see; the snapshot must see it anyway.
    #[test]
    fn snapshot_sees_a_same_size_edit_that_stat_data_cannot_tell_apart() {
        let repo = Repo::new();
        repo.git(&["config", "core.trustctime", "false"]);
        repo.write("same.txt", "aaaa\n");
        repo.commit_all("same");
        let wt = repo.create("1").worktree;
        let file = wt.path.join("same.txt");
        // An mtime well before the index's, recorded in the index: the entry is not racy.
        let mtime = std::time::SystemTime::now() - std::time::Duration::from_secs(100);
        std::fs::File::options().write(true).open(&file).unwrap().set_modified(mtime).unwrap();
        git_in(&wt.path, &["update-index", "--refresh"]);
        std::fs::write(&file, "bbbb\n").unwrap();
        std::fs::File::options().write(true).open(&file).unwrap().set_modified(mtime).unwrap();
        let tree = snapshot(&wt.path).unwrap();
        assert_eq!(repo.git(&["show", &format!("{tree}:same.txt")]), "bbbb\n");
    }

    const STATUS: &str = ".claude/plans/task-status.json";

    fn pool(repo: &Repo, capacity: usize) -> Pool {
        Pool::new(&repo.root, Path::new(STATUS), &[], capacity)
    }

    /// Does a task's work in its worktree — a tracked edit, a commit, untracked, ignored and
    /// nested-repository files, a stray status file — and lands what copy-back would land
    /// (everything but ignored files) in main, committed.
    fn work_and_land(repo: &Repo, wt: &Worktree, n: usize) -> Landed {
        write_in(&wt.path, "README.md", &format!("edited by task {n}\n"));
        write_in(&wt.path, &format!("committed-{n}.txt"), "committed in the worktree\n");
        git_in(&wt.path, &["add", "-A"]);
        git_in(&wt.path, &["commit", "-q", "-m", "the agent's commit"]);
        write_in(&wt.path, &format!("new/untracked-{n}.txt"), "untracked\n");
        // Ignored (info/exclude is shared by all worktrees): a build folder holding a
        // repository of its own, as a tool might make.
        let exclude = PathBuf::from(repo.git(&["rev-parse", "--git-path", "info/exclude"]).trim());
        let exclude = if exclude.is_absolute() { exclude } else { repo.root.join(exclude) };
        let mut lines = std::fs::read_to_string(&exclude).unwrap_or_default();
        if !lines.contains("/build/") {
            lines.push_str("\n/build/\n");
            std::fs::write(&exclude, lines).unwrap();
        }
        write_in(&wt.path, "build/out.o", "ignored\n");
        git_in(&wt.path.join("build"), &["init", "-q"]);
        write_in(&wt.path, STATUS, "{}\n");
        for rel in ["README.md".to_string(), format!("committed-{n}.txt"), format!("new/untracked-{n}.txt"), STATUS.to_string()] {
            repo.write(&rel, &std::fs::read_to_string(wt.path.join(&rel)).unwrap());
        }
        repo.commit_all(&format!("plan: land task {n}"));
        match check_landed(&repo.root, wt.clone(), &[], &HashSet::new()).unwrap() {
            Ok(landed) => landed,
            Err(left) => panic!("not landed: {left:?}"),
        }
    }

    fn worktree_count(repo: &Repo) -> usize {
        repo.git(&["worktree", "list", "--porcelain"]).matches("worktree ").count()
    }

    #[test]
    fn a_pooled_worktree_is_moved_to_the_next_task_and_reset_to_the_new_base() {
        let repo = Repo::new();
        repo.write(".gitignore", "*.log\n");
        repo.commit_all("ignore logs");
        let mut pool = pool(&repo, 2);
        let first = pool.take(&repo.wt_dir("1"), &branch_name("1"), "HEAD").unwrap();
        assert_eq!(first.origin, Origin::Fresh, "an empty pool makes a fresh worktree");
        let landed = work_and_land(&repo, &first.worktree, 1);
        pool.give_back(landed).unwrap();
        assert_eq!(pool.idle(), std::slice::from_ref(&first.worktree));
        repo.write("later.txt", "main moved on\n");
        repo.commit_all("later");

        let second = pool.take(&repo.wt_dir("2"), &branch_name("2"), "HEAD").unwrap();
        assert_eq!(second.origin, Origin::Reused { from: first.worktree.path.clone() });
        assert!(second.rescued.is_empty(), "{:?}", second.rescued);
        let wt = &second.worktree;
        assert_eq!((wt.path.clone(), wt.branch.as_str(), wt.fork.clone()), (repo.wt_dir("2"), "parallel/2", repo.head()));
        assert!(pool.idle().is_empty());
        assert!(!first.worktree.path.exists(), "the worktree was moved, not copied");
        assert!(!repo.has_branch("parallel/1"), "the earlier task's branch is gone");
        assert_eq!(worktree_count(&repo), 2);
        assert_eq!(git_in(&wt.path, &["symbolic-ref", "HEAD"]).trim(), "refs/heads/parallel/2");
        assert_eq!(git_in(&wt.path, &["rev-parse", "HEAD"]).trim(), repo.head());
        // Exactly main's HEAD: nothing of the earlier task left, ignored files and the nested
        // repository included; the status file main committed by mistake is not inherited.
        assert_eq!(git_in(&wt.path, &["status", "--porcelain", "--ignored", "--untracked-files=all"]), format!(" D {STATUS}\n"));
        assert_eq!(std::fs::read_to_string(wt.path.join("README.md")).unwrap(), "edited by task 1\n");
        assert!(wt.path.join("later.txt").is_file());
        assert!(!wt.path.join("build").exists(), "ignored files and nested repositories go");
        assert!(wt.path.join("new/untracked-1.txt").is_file(), "what landed is in the base");
        assert_eq!(repo.git(&["status", "--porcelain"]), "", "main does not see the worktrees");
    }

    #[test]
    fn work_that_has_not_landed_cannot_be_given_back() {
        let repo = Repo::new();
        let wt = pool(&repo, 2).take(&repo.wt_dir("1"), &branch_name("1"), "HEAD").unwrap().worktree;
        write_in(&wt.path, "work.txt", "not in main yet\n");
        write_in(&wt.path, "README.md", "edited\n");
        repo.write("README.md", "edited\n");
        let left = check_landed(&repo.root, wt.clone(), &[], &HashSet::new()).unwrap().unwrap_err();
        assert_eq!(left, [PathBuf::from("work.txt")]);
        // What copy-back merged three-way counts as landed.
        let merged: HashSet<PathBuf> = [PathBuf::from("work.txt")].into_iter().collect();
        assert!(check_landed(&repo.root, wt, &[], &merged).unwrap().is_ok());
    }

    #[test]
    fn taking_clears_the_new_place_as_create_does_and_rescues_stale_work() {
        let repo = Repo::new();
        let mut pool = pool(&repo, 2);
        let first = pool.take(&repo.wt_dir("1"), &branch_name("1"), "HEAD").unwrap();
        pool.give_back(work_and_land(&repo, &first.worktree, 1)).unwrap();
        // A crashed run left task 2's branch with work main lacks, and a folder at its place.
        repo.git(&["branch", "parallel/2", "HEAD~1"]);
        let stale = repo.outside().join("stale");
        git_in(&repo.root, &["worktree", "add", "-q", stale.to_str().unwrap(), "parallel/2"]);
        write_in(&stale, "precious.txt", "precious\n");
        write_in(&repo.wt_dir("2"), "notes.txt", "mine\n");

        let second = pool.take(&repo.wt_dir("2"), &branch_name("2"), "HEAD").unwrap();
        assert!(matches!(second.origin, Origin::Reused { .. }), "{:?}", second.origin);
        let name = second
            .rescued
            .iter()
            .find_map(|r| match r {
                Rescue::Branch { name, uncommitted: true, .. } => Some(name.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{:?}", second.rescued));
        assert_eq!(repo.git(&["show", &format!("{name}:precious.txt")]), "precious\n");
        assert!(second.rescued.iter().any(|r| matches!(r, Rescue::Directory { .. })), "{:?}", second.rescued);
        assert!(!second.worktree.path.join("precious.txt").exists() && !second.worktree.path.join("notes.txt").exists());
        assert_eq!(git_in(&second.worktree.path, &["rev-parse", "HEAD"]).trim(), repo.head());
    }

    #[test]
    fn a_place_still_registered_to_a_deleted_worktree_is_cleared() {
        let repo = Repo::new();
        let mut pool = pool(&repo, 2);
        let first = pool.take(&repo.wt_dir("1"), &branch_name("1"), "HEAD").unwrap();
        pool.give_back(work_and_land(&repo, &first.worktree, 1)).unwrap();
        // A detached worktree at task 2's place whose folder someone deleted.
        git_in(&repo.root, &["worktree", "add", "-q", "--detach", repo.wt_dir("2").to_str().unwrap(), "HEAD"]);
        std::fs::remove_dir_all(repo.wt_dir("2")).unwrap();
        let second = pool.take(&repo.wt_dir("2"), &branch_name("2"), "HEAD").unwrap();
        assert!(!matches!(second.origin, Origin::Fresh), "{:?}", second.origin);
        assert_eq!(git_in(&second.worktree.path, &["rev-parse", "HEAD"]).trim(), repo.head());
        assert_eq!(git_in(&second.worktree.path, &["symbolic-ref", "HEAD"]).trim(), "refs/heads/parallel/2");
        assert_eq!(worktree_count(&repo), 2, "{}", repo.git(&["worktree", "list"]));
        assert!(!repo.has_branch("parallel/1"));
    }

    #[test]
    fn a_worktree_given_back_can_be_taken_for_the_same_place() {
        let repo = Repo::new();
        let mut pool = pool(&repo, 1);
        let first = pool.take(&repo.wt_dir("1"), &branch_name("1"), "HEAD").unwrap();
        pool.give_back(work_and_land(&repo, &first.worktree, 1)).unwrap();
        let again = pool.take(&repo.wt_dir("1"), &branch_name("1"), "HEAD").unwrap();
        assert_eq!(again.origin, Origin::Reused { from: repo.wt_dir("1") });
        assert_eq!(again.rescued, vec![]);
        assert_eq!(git_in(&again.worktree.path, &["rev-parse", "HEAD"]).trim(), repo.head());
        assert_eq!(git_in(&again.worktree.path, &["status", "--porcelain", "--untracked-files=all"]), format!(" D {STATUS}\n"));
        assert_eq!(worktree_count(&repo), 2);
        let branches = repo.git(&["branch", "--list", "parallel*"]);
        assert_eq!(branches.trim(), "+ parallel/1");
    }

    #[test]
    fn a_failed_reuse_falls_back_to_a_fresh_worktree() {
        let repo = Repo::new();
        let mut pool = pool(&repo, 2);
        let first = pool.take(&repo.wt_dir("1"), &branch_name("1"), "HEAD").unwrap();
        pool.give_back(work_and_land(&repo, &first.worktree, 1)).unwrap();
        // git refuses to move a locked worktree.
        git_in(&repo.root, &["worktree", "lock", first.worktree.path.to_str().unwrap()]);
        let second = pool.take(&repo.wt_dir("2"), &branch_name("2"), "HEAD").unwrap();
        let Origin::FreshAfterFailedReuse { from, error } = &second.origin else { panic!("{:?}", second.origin) };
        assert_eq!(from, &first.worktree.path);
        assert!(error.contains("lock"), "{error}");
        assert_eq!(git_in(&second.worktree.path, &["rev-parse", "HEAD"]).trim(), repo.head());
        assert!(second.worktree.path.join("README.md").is_file());
    }

    #[test]
    fn a_worktree_whose_task_made_it_sparse_is_not_reused() {
        let repo = Repo::new();
        repo.git(&["config", "extensions.worktreeConfig", "true"]);
        repo.write("src/s.txt", "s\n");
        repo.commit_all("src");
        let mut pool = pool(&repo, 2);
        let first = pool.take(&repo.wt_dir("1"), &branch_name("1"), "HEAD").unwrap();
        git_in(&first.worktree.path, &["sparse-checkout", "set", "--no-cone", "/*", "!/src/"]);
        assert!(!first.worktree.path.join("src/s.txt").exists());
        pool.give_back(work_and_land(&repo, &first.worktree, 1)).unwrap();
        let second = pool.take(&repo.wt_dir("2"), &branch_name("2"), "HEAD").unwrap();
        let Origin::FreshAfterFailedReuse { error, .. } = &second.origin else { panic!("{:?}", second.origin) };
        assert!(error.contains("sparse"), "{error}");
        assert!(second.worktree.path.join("src/s.txt").is_file(), "the new task's tree is whole");
        assert_eq!(worktree_count(&repo), 2);
        assert!(!repo.has_branch("parallel/1"));
        // A worktree left as it was made is reused.
        pool.give_back(work_and_land(&repo, &second.worktree, 2)).unwrap();
        let third = pool.take(&repo.wt_dir("3"), &branch_name("3"), "HEAD").unwrap();
        assert!(matches!(third.origin, Origin::Reused { .. }), "{:?}", third.origin);
    }

    #[test]
    fn a_reused_worktree_keeps_no_special_files_and_gets_what_a_post_checkout_hook_makes() {
        let repo = Repo::new();
        let hooks = PathBuf::from(repo.git(&["rev-parse", "--git-path", "hooks"]).trim());
        let hooks = if hooks.is_absolute() { hooks } else { repo.root.join(hooks) };
        write_in(&hooks, "post-checkout", "#!/bin/sh\nmkdir -p build && echo made > build/made-by-hook\n");
        Command::new("chmod").arg("+x").arg(hooks.join("post-checkout")).status().unwrap();
        repo.write(".gitignore", "/build/\n");
        repo.commit_all("ignore build");
        let mut pool = pool(&repo, 2);
        let first = pool.take(&repo.wt_dir("1"), &branch_name("1"), "HEAD").unwrap();
        assert!(first.worktree.path.join("build/made-by-hook").is_file(), "git worktree add runs the hook");
        std::fs::create_dir_all(first.worktree.path.join("deep")).unwrap();
        for fifo in ["fifo", "deep/fifo"] {
            assert!(Command::new("mkfifo").arg(first.worktree.path.join(fifo)).status().unwrap().success());
        }
        pool.give_back(work_and_land(&repo, &first.worktree, 1)).unwrap();
        let second = pool.take(&repo.wt_dir("2"), &branch_name("2"), "HEAD").unwrap();
        assert!(matches!(second.origin, Origin::Reused { .. }), "{:?}", second.origin);
        let wt = &second.worktree.path;
        assert!(!wt.join("fifo").exists() && !wt.join("deep").exists(), "special files were kept");
        assert!(wt.join("build/made-by-hook").is_file(), "the hook's file was cleaned away");
    }

    #[test]
    fn beyond_its_capacity_the_pool_removes_and_close_removes_the_rest() {
        let repo = Repo::new();
        let mut pool = pool(&repo, 1);
        let a = pool.take(&repo.wt_dir("a"), &branch_name("a"), "HEAD").unwrap().worktree;
        let b = pool.take(&repo.wt_dir("b"), &branch_name("b"), "HEAD").unwrap().worktree;
        pool.give_back(work_and_land(&repo, &a, 1)).unwrap();
        pool.give_back(work_and_land(&repo, &b, 2)).unwrap();
        assert_eq!(pool.idle(), std::slice::from_ref(&a));
        assert!(!b.path.exists() && !repo.has_branch(&b.branch));
        pool.close().unwrap();
        assert!(pool.idle().is_empty());
        assert!(!a.path.exists() && !repo.has_branch(&a.branch));
        assert_eq!(worktree_count(&repo), 1);
    }

    #[test]
    fn a_waiting_worktree_left_by_a_crash_is_cleared_without_a_rescue() {
        let repo = Repo::new();
        let mut pool = pool(&repo, 2);
        let wt = pool.take(&repo.wt_dir("1"), &branch_name("1"), "HEAD").unwrap().worktree;
        pool.give_back(work_and_land(&repo, &wt, 1)).unwrap();
        // baton dies here; the next run clears what task 1 (completed) left.
        let rescued = clear_leftover(&repo.root, &wt.path, &wt.branch, &[]).unwrap();
        assert_eq!(rescued, vec![]);
        assert!(!wt.path.exists() && !repo.has_branch(&wt.branch));
    }

    #[test]
    fn utc_stamp_looks_like_a_time() {
        let s = utc_stamp();
        assert_eq!(s.len(), 15, "{s}");
        assert!(s.starts_with("20"), "{s}");
        assert_eq!(&s[8..9], "-");
    }
}
