//! Where an agent is: the main checkout (home of the coordination files) seen from inside a
//! worktree, the agent's identity, and file arguments turned into repository-relative paths.
//!
//! Reads git and the environment; must not change either.

use std::path::{Component, Path, PathBuf};

use super::CoordError;

/// Set by baton for its agents: the main checkout, so `baton claim` needs no git call.
pub const ENV_MAIN_ROOT: &str = "BATON_MAIN_ROOT";
/// Set by baton for its agents: the agent id the coordination commands act for.
pub const ENV_AGENT_ID: &str = "BATON_AGENT_ID";
/// Set by baton for its agents: the task the agent works on.
pub const ENV_TASK_ID: &str = "BATON_TASK_ID";

/// The folder of the main checkout that holds baton's worktrees; never part of the repository.
const WORKTREES_DIR: &str = ".worktrees";

/// The main checkout of the repository `cwd` is in, also when `cwd` is inside a linked
/// worktree. `BATON_MAIN_ROOT`, when set and not empty, wins (relative to `cwd` if relative).
pub fn main_checkout(cwd: &Path) -> Result<PathBuf, CoordError> {
    main_checkout_with(cwd, std::env::var_os(ENV_MAIN_ROOT))
}

fn main_checkout_with(cwd: &Path, from_env: Option<std::ffi::OsString>) -> Result<PathBuf, CoordError> {
    match from_env.filter(|v| !v.is_empty()) {
        Some(root) => Ok(cwd.join(root)),
        None => main_checkout_from_git(cwd),
    }
}

/// The main checkout according to git: the folder holding the common `.git` directory.
fn main_checkout_from_git(cwd: &Path) -> Result<PathBuf, CoordError> {
    let out = git(cwd, &["rev-parse", "--git-common-dir"])?;
    // git prints the common dir relative to `cwd` when it can (".git"), absolute otherwise.
    let common = cwd.join(out.trim_end_matches('\n'));
    let common = std::fs::canonicalize(&common).map_err(CoordError::io("resolve", &common))?;
    match (common.file_name(), common.parent()) {
        (Some(name), Some(parent)) if name == ".git" => Ok(parent.to_path_buf()),
        // A submodule keeps its git dir under the superproject's `.git/modules/`; its config
        // names the working tree.
        _ => {
            let dir = common.to_string_lossy().into_owned();
            let top = git(cwd, &["--git-dir", &dir, "rev-parse", "--show-toplevel"])?;
            Ok(PathBuf::from(top.trim_end_matches('\n')))
        }
    }
}

/// The top of the working tree (main checkout or linked worktree) `cwd` is in.
pub fn worktree_root(cwd: &Path) -> Result<PathBuf, CoordError> {
    let out = git(cwd, &["rev-parse", "--show-toplevel"])?;
    Ok(PathBuf::from(out.trim_end_matches('\n')))
}

/// The agent id and task id baton gave this process (`BATON_AGENT_ID`, `BATON_TASK_ID`); `None`
/// unless both are set and not empty.
pub fn identity_from_env() -> Option<(String, String)> {
    identity_from(|name| std::env::var(name).ok())
}

fn identity_from(get: impl Fn(&str) -> Option<String>) -> Option<(String, String)> {
    let get = |name| get(name).filter(|v| !v.trim().is_empty());
    Some((get(ENV_AGENT_ID)?, get(ENV_TASK_ID)?))
}

/// Turns a file argument into the repository-relative form claims are keyed by (`/`-separated,
/// no `.` or `..`).
///
/// A relative `arg` is taken relative to `cwd`; the result must lie inside one of `roots` (the
/// main checkout and the caller's worktree, which hold the same repository). `..` that climbs
/// out, an absolute path elsewhere, the root itself, and anything inside `.git` or inside
/// another agent's worktree (`.worktrees/`) are refused.
/// Purely lexical apart from a last attempt through the real path of the deepest folder that
/// exists, for roots reached through a symlink: claims are names, not file handles.
pub fn repo_path(arg: &Path, cwd: &Path, roots: &[&Path]) -> Result<String, CoordError> {
    let shown = arg.to_string_lossy().into_owned();
    if arg.as_os_str().is_empty() {
        return Err(CoordError::NotAFile { path: shown });
    }
    let cwd = absolute(cwd);
    let full = lexical(&cwd.join(arg));
    let mut roots: Vec<PathBuf> = roots
        .iter()
        .flat_map(|r| {
            let plain = lexical(&cwd.join(r));
            let real = std::fs::canonicalize(&plain).ok();
            std::iter::once(plain).chain(real)
        })
        .collect();
    // Worktrees live inside the main checkout: the deepest root that holds the path is its root.
    roots.sort_by_key(|r| std::cmp::Reverse(r.components().count()));
    let inside = |p: &Path| roots.iter().find_map(|r| p.strip_prefix(r).ok().map(Path::to_path_buf));
    let rel = match inside(&full) {
        Some(rel) => rel,
        None => real_path_of_nearest_folder(&full)
            .and_then(|real| inside(&real))
            .ok_or(CoordError::OutsideRepo { path: shown.clone() })?,
    };
    let mut parts = Vec::new();
    for part in rel.components() {
        match part {
            Component::Normal(name) => {
                parts.push(name.to_str().ok_or_else(|| CoordError::NotUtf8 { path: arg.to_path_buf() })?)
            }
            // `lexical` leaves only normal components below a root.
            _ => return Err(CoordError::OutsideRepo { path: shown }),
        }
    }
    match parts.first() {
        None => Err(CoordError::NotAFile { path: shown }),
        Some(&".git") => Err(CoordError::GitInternal { path: parts.join("/") }),
        Some(&WORKTREES_DIR) => Err(CoordError::OtherWorktree { path: parts.join("/") }),
        Some(_) => Ok(parts.join("/")),
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// `.` dropped and `..` applied, without touching the file system. `..` at the root stays at the
/// root, as the kernel does.
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                if out.file_name().is_some() {
                    out.pop();
                } else if !out.has_root() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// `path` with its deepest existing ancestor replaced by that ancestor's real path.
fn real_path_of_nearest_folder(path: &Path) -> Option<PathBuf> {
    let mut rest = Vec::new();
    let mut cur = path;
    loop {
        if let Ok(real) = std::fs::canonicalize(cur) {
            let mut out = real;
            out.extend(rest.iter().rev());
            return Some(out);
        }
        rest.push(cur.file_name()?);
        cur = cur.parent()?;
    }
}

fn git(dir: &Path, args: &[&str]) -> Result<String, CoordError> {
    crate::git::git(dir, args).map_err(|e| match e {
        crate::git::GitError::Spawn(source) => CoordError::GitSpawn(source),
        crate::git::GitError::Failed { args, dir, stderr } => CoordError::Git { args, dir, stderr },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    fn run(dir: &Path, args: &[&str]) {
        let out = Command::new("git")
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "-c",
                "init.defaultBranch=main",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .current_dir(dir)
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    #[test]
    fn the_main_checkout_is_found_from_itself_and_from_inside_a_worktree() {
        let d = tempfile::tempdir().unwrap();
        let main = std::fs::canonicalize(d.path()).unwrap().join("repo");
        std::fs::create_dir_all(main.join("src")).unwrap();
        run(&main, &["init", "-q"]);
        run(&main, &["commit", "-q", "--allow-empty", "-m", "start"]);
        run(&main, &["worktree", "add", "-q", "-b", "parallel/8.1", ".worktrees/plan-8.1"]);
        let wt = main.join(".worktrees/plan-8.1");
        std::fs::create_dir_all(wt.join("deep/er")).unwrap();

        assert_eq!(main_checkout_from_git(&main).unwrap(), main);
        assert_eq!(main_checkout_from_git(&main.join("src")).unwrap(), main);
        assert_eq!(main_checkout_from_git(&wt).unwrap(), main);
        assert_eq!(main_checkout_from_git(&wt.join("deep/er")).unwrap(), main);
        assert_eq!(worktree_root(&wt.join("deep/er")).unwrap(), wt);
        assert_eq!(worktree_root(&main.join("src")).unwrap(), main);

        // The override wins, relative to where the command runs.
        assert_eq!(main_checkout_with(&wt, Some("/elsewhere".into())).unwrap(), Path::new("/elsewhere"));
        assert_eq!(main_checkout_with(&wt, Some("../..".into())).unwrap(), wt.join("../.."));
        assert_eq!(main_checkout_with(&wt, Some("".into())).unwrap(), main);

        // A file named from deep inside the worktree lands on the same key as from main.
        let key = repo_path(Path::new("../x.rs"), &wt.join("deep/er"), &[&main, &wt]).unwrap();
        assert_eq!(key, "deep/x.rs");
    }

    #[test]
    fn outside_a_repository_the_error_says_where_and_what_git_said() {
        let d = tempfile::tempdir().unwrap();
        let e = main_checkout_from_git(d.path()).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!(
                "cannot find the main checkout from {}: `git rev-parse --git-common-dir` failed: ",
                d.path().display()
            )),
            "{msg}"
        );
        assert!(msg.contains("not a git repository"), "{msg}");
    }

    #[test]
    fn the_identity_needs_both_ids() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
        };
        assert_eq!(
            identity_from(env(&[(ENV_AGENT_ID, "agent-1"), (ENV_TASK_ID, "8.1")])),
            Some(("agent-1".to_string(), "8.1".to_string()))
        );
        assert_eq!(identity_from(env(&[(ENV_AGENT_ID, "agent-1")])), None);
        assert_eq!(identity_from(env(&[(ENV_AGENT_ID, " "), (ENV_TASK_ID, "8.1")])), None);
    }

    #[test]
    fn lexical_normalisation_never_climbs_above_the_root() {
        assert_eq!(lexical(Path::new("/a/./b/../c")), Path::new("/a/c"));
        assert_eq!(lexical(Path::new("/../../etc")), Path::new("/etc"));
        assert_eq!(lexical(Path::new("a/../../b")), Path::new("../b"));
    }
}
