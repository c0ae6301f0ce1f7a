//! Running git: stdin null (or the given input), `LC_ALL=C`, no automatic maintenance, in a
//! process group of its own (out of reach of the terminal's signals), exit codes checked,
//! stderr carried into errors; and the few compound operations baton needs
//! (commit a file or a set of paths, keep files out of `git status`).

use std::collections::HashSet;
use std::ffi::OsStr;
use std::os::unix::process::ExitStatusExt;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};

/// What git calls did on their own that a person should hear of (a stale lock removed), for
/// the caller's reporter: this layer has none, and must not print past it.
static NOTICES: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

fn notice(text: String) {
    NOTICES.lock().unwrap_or_else(|p| p.into_inner()).push(text);
}

/// The notices since the last call.
pub fn take_notices() -> Vec<String> {
    std::mem::take(&mut *NOTICES.lock().unwrap_or_else(|p| p.into_inner()))
}

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("cannot run git")]
    Spawn(#[source] std::io::Error),
    #[error("`git {args}` failed in {}: {stderr}", dir.display())]
    Failed { args: String, dir: PathBuf, stderr: String },
}

/// Runs git in `dir`; returns stdout.
pub fn git(dir: &Path, args: &[&str]) -> Result<String, GitError> {
    let out = git_output(dir, args, &[], None)?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(GitError::Failed {
            args: args.join(" "),
            dir: dir.to_path_buf(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

pub fn is_repo(dir: &Path) -> bool {
    git(dir, &["rev-parse", "--git-dir"]).is_ok()
}

/// What committing the plan did.
#[derive(Debug, PartialEq, Eq)]
pub enum Committed {
    Yes,
    /// The plan had no changes to commit.
    NothingToCommit,
}

/// Commits the current content of one file, and only that file (whatever else is staged or
/// changed stays as it is).
pub fn commit_file(root: &Path, file: &Path, message: &str) -> Result<Committed, GitError> {
    commit_paths(root, &[file.to_path_buf()], message)
}

/// Commits exactly these paths (added, changed or deleted), and nothing else that is staged.
/// Paths go to git NUL-separated on stdin and literally (any bytes in a name, no glob magic,
/// no limit on how many).
pub fn commit_paths(root: &Path, paths: &[PathBuf], message: &str) -> Result<Committed, GitError> {
    let rels: Vec<Vec<u8>> = paths
        .iter()
        .map(|p| p.strip_prefix(root).unwrap_or(p).as_os_str().as_bytes().to_vec())
        .filter(|r| !r.is_empty())
        .collect();
    if rels.is_empty() {
        return Ok(Committed::NothingToCommit);
    }
    let literal = [("GIT_LITERAL_PATHSPECS", OsStr::new("1"))];
    // A path gone from disk counts only if git knows it (its deletion is then committed);
    // naming a path git never saw would make the whole command fail.
    let known = nul_set(&git_bytes(root, &["ls-files", "-z", "--full-name"], &[], None)?);
    // An ignored file that git does not track is not the project's to commit (a `.claude/` in
    // .gitignore, say); naming it would make `git add` fail.
    // (check-ignore takes paths, not pathspecs, and refuses the literal-pathspec setting.)
    let ignored = git_output(root, &["check-ignore", "-z", "--stdin"], &[], Some(&nul_join(&rels)))?;
    let ignored = nul_set(&ignored.stdout);
    let rels: Vec<Vec<u8>> = rels
        .into_iter()
        .filter(|r| {
            known.contains(r) || (root.join(OsStr::from_bytes(r)).symlink_metadata().is_ok() && !ignored.contains(r))
        })
        .collect();
    if rels.is_empty() {
        return Ok(Committed::NothingToCommit);
    }
    let from_stdin = ["--pathspec-from-file=-", "--pathspec-file-nul"];
    let add: Vec<&str> = ["add", "-A"].into_iter().chain(from_stdin).collect();
    git_bytes(root, &add, &literal, Some(&nul_join(&rels)))?;
    // What of these differs from HEAD now (an unborn HEAD: from the empty tree).
    let head = match git_output(root, &["rev-parse", "--verify", "-q", "HEAD^{commit}"], &[], None)? {
        out if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_string(),
        _ => String::from_utf8_lossy(&git_bytes(root, &["hash-object", "-t", "tree", "--stdin"], &[], Some(b""))?).trim().to_string(),
    };
    let staged = nul_set(&git_bytes(root, &["diff-index", "--cached", "-z", "--name-only", "--no-renames", &head], &literal, None)?);
    let changed: Vec<Vec<u8>> = rels.into_iter().filter(|r| staged.contains(r)).collect();
    if changed.is_empty() {
        return Ok(Committed::NothingToCommit);
    }
    let commit: Vec<&str> = ["commit", "-q", "--no-verify", "-m", message, "--only"].into_iter().chain(from_stdin).collect();
    git_bytes(root, &commit, &literal, Some(&nul_join(&changed)))?;
    Ok(Committed::Yes)
}

fn nul_join(items: &[Vec<u8>]) -> Vec<u8> {
    items.iter().flat_map(|r| r.iter().copied().chain([0])).collect()
}

fn nul_set(bytes: &[u8]) -> HashSet<Vec<u8>> {
    bytes.split(|b| *b == 0).filter(|p| !p.is_empty()).map(<[u8]>::to_vec).collect()
}

/// Runs git in `dir` like [`git`], with extra environment (e.g. `GIT_INDEX_FILE`) and optional
/// stdin, and returns the whole `Output` whatever the exit code: for commands whose exit code
/// carries an answer (`merge-file`) and output that must stay bytes (`-z` paths, blobs).
pub fn git_output<S: AsRef<OsStr>>(
    dir: &Path,
    args: &[S],
    env: &[(&str, &OsStr)],
    input: Option<&[u8]>,
) -> Result<Output, GitError> {
    let mut out = run_git(dir, args, env, input)?;
    let (mut waited, mut removed, mut signalled) = (0, false, false);
    while !out.status.success() {
        if !signalled && matches!(out.status.signal(), Some(libc::SIGINT | libc::SIGTERM | libc::SIGHUP)) {
            // A terminal's Ctrl+C (or a SIGTERM to baton's group) that came between the fork
            // and the child's move to a process group of its own: it ended git before git
            // ran. Not git's answer: ask again, once.
            signalled = true;
            out = run_git(dir, args, env, input)?;
            continue;
        }
        let Some(lock) = lock_in_the_way(&out.stderr) else { break };
        if !removed && crate::procfs::held_open(&lock).is_none() {
            // A git killed mid-command (an agent's, when its attempt was ended, or baton's own
            // at `kill -9`) leaves its lock file, and every later command that needs it fails
            // for good. A lock no process holds open is such a leftover: a live git keeps its
            // lock open until it renames it into place.
            removed = true;
            if std::fs::remove_file(&lock).is_ok() {
                notice(format!("removed a stale git lock {} (no process held it; a git that was killed leaves one)", lock.display()));
            }
        } else if waited < LOCK_WAITS {
            // Another git holds it for a moment (the user's `git status` refreshing the index,
            // an agent's commit): wait for it rather than fail the run's work.
            waited += 1;
            std::thread::sleep(LOCK_WAIT);
        } else {
            break;
        }
        out = run_git(dir, args, env, input)?;
    }
    Ok(out)
}

/// How long, in all, baton waits for another git's lock: `LOCK_WAITS` × `LOCK_WAIT`.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_millis(100);
const LOCK_WAITS: u32 = 30;

/// The lock file named by git's "Unable to create '…/index.lock': File exists.".
fn lock_in_the_way(stderr: &[u8]) -> Option<PathBuf> {
    let text = String::from_utf8_lossy(stderr);
    let start = text.find("Unable to create '")? + "Unable to create '".len();
    let rest = &text[start..];
    let end = rest.find("': File exists")?;
    let lock = PathBuf::from(&rest[..end]);
    let is_lock = lock.extension().is_some_and(|e| e == "lock") && lock.components().any(|c| c.as_os_str() == ".git");
    (is_lock && lock.is_file()).then_some(lock)
}

fn run_git<S: AsRef<OsStr>>(
    dir: &Path,
    args: &[S],
    env: &[(&str, &OsStr)],
    input: Option<&[u8]>,
) -> Result<Output, GitError> {
    let mut cmd = Command::new("git");
    // baton commits often; git's automatic housekeeping after each commit is its slowest part
    // and can run when the user chooses.
    cmd.args(["-c", "maintenance.auto=false", "-c", "gc.auto=0"])
        // A process group of its own: a terminal's Ctrl+C goes to the foreground group, and
        // must reach baton alone, which stops gracefully; a git command killed half-way would
        // turn a finished task into a failed one.
        .process_group(0)
        .args(args)
        .current_dir(dir)
        .env("LC_ALL", "C")
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in env {
        cmd.env(key, value);
    }
    // A git command of a remote executor runs off the engine's thread: the orphan sweep must
    // not take it for an orphan (see `orphans::spawning`).
    let spawning = crate::supervise::orphans::spawning();
    let mut child = cmd.spawn().map_err(GitError::Spawn)?;
    let pid = child.id() as libc::pid_t;
    crate::supervise::orphans::started(pid);
    drop(spawning);
    let stdin = child.stdin.take();
    // Written from a second thread: git may fill its stdout pipe before it has read all of stdin.
    std::thread::scope(|scope| {
        if let (Some(mut pipe), Some(bytes)) = (stdin, input) {
            // A write error means git exited early; its exit code and stderr tell why.
            scope.spawn(move || pipe.write_all(bytes));
        }
        let out = child.wait_with_output().map_err(GitError::Spawn);
        crate::supervise::orphans::reaped(pid);
        out
    })
}

/// [`git_output`] that fails on a non-zero exit code, with stderr in the error; returns stdout.
pub fn git_bytes<S: AsRef<OsStr>>(
    dir: &Path,
    args: &[S],
    env: &[(&str, &OsStr)],
    input: Option<&[u8]>,
) -> Result<Vec<u8>, GitError> {
    let out = git_output(dir, args, env, input)?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        // Silence means git did not end on its own (a signal): say how it ended instead.
        let stderr = if stderr.is_empty() { format!("(no message; git ended with {})", out.status) } else { stderr };
        Err(GitError::Failed {
            args: args.iter().map(|a| a.as_ref().to_string_lossy()).collect::<Vec<_>>().join(" "),
            dir: dir.to_path_buf(),
            stderr,
        })
    }
}

/// Adds lines to the repository's own `info/exclude` (never committed), under a comment, so
/// that baton's working files stay out of `git status` and `git add -A`.
pub fn exclude_locally(root: &Path, lines: &[&str], comment: &str) -> Result<(), GitError> {
    let exclude = PathBuf::from(git(root, &["rev-parse", "--git-path", "info/exclude"])?.trim_end_matches('\n'));
    let exclude = if exclude.is_absolute() { exclude } else { root.join(exclude) };
    let io = |source: std::io::Error| GitError::Failed {
        args: "(write info/exclude)".into(),
        dir: root.to_path_buf(),
        stderr: format!("{}: {source}", exclude.display()),
    };
    let current = std::fs::read_to_string(&exclude).unwrap_or_default();
    let missing: Vec<&&str> = lines.iter().filter(|l| !current.lines().any(|c| c.trim() == **l)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    if let Some(info) = exclude.parent() {
        std::fs::create_dir_all(info).map_err(io)?;
    }
    let mut text = current;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&format!("# {comment}\n"));
    for l in missing {
        text.push_str(l);
        text.push('\n');
    }
    std::fs::write(&exclude, text).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::worktree::tests::Repo;
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt;

    #[test]
    fn a_lock_a_killed_git_left_is_removed_and_a_held_one_is_not() {
        let repo = Repo::new();
        let lock = repo.root.join(".git/index.lock");
        repo.write("a.txt", "a\n");
        std::fs::write(&lock, "").unwrap();
        // Held open (a live git would): the commit fails and the lock stays.
        let held = std::fs::File::open(&lock).unwrap();
        let err = commit_paths(&repo.root, &[repo.root.join("a.txt")], "a").unwrap_err();
        assert!(err.to_string().contains("index.lock"), "{err}");
        assert!(lock.exists());
        // Nobody holds it: it is a leftover, removed, and the commit goes through.
        drop(held);
        assert_eq!(commit_paths(&repo.root, &[repo.root.join("a.txt")], "a").unwrap(), Committed::Yes);
        assert!(!lock.exists());
    }

    #[test]
    fn commit_paths_takes_any_name_literally_and_leaves_the_rest_staged() {
        let repo = Repo::new();
        repo.write("gone.txt", "bye\n");
        repo.write("[ab].txt", "literal\n");
        repo.commit_all("files");
        let odd = repo.root.join(OsString::from_vec(b"caf\xe9 \n.txt".to_vec()));
        std::fs::write(&odd, "latin-1 name\n").unwrap();
        repo.write("a.txt", "matches the glob [ab].txt\n");
        repo.write("[ab].txt", "changed\n");
        std::fs::remove_file(repo.root.join("gone.txt")).unwrap();
        repo.write("staged-by-user.txt", "mine\n");
        repo.git(&["add", "staged-by-user.txt"]);
        let paths = [odd.clone(), repo.root.join("[ab].txt"), PathBuf::from("gone.txt"), PathBuf::from("never-existed.txt")];
        assert_eq!(commit_paths(&repo.root, &paths, "land").unwrap(), Committed::Yes);
        let committed = repo.git(&["show", "--name-status", "--format=", "HEAD"]);
        assert_eq!(committed, "M\t[ab].txt\nA\t\"caf\\351 \\n.txt\"\nD\tgone.txt\n");
        assert_eq!(repo.git(&["status", "--porcelain"]), "A  staged-by-user.txt\n?? a.txt\n");
        assert_eq!(commit_paths(&repo.root, &paths, "again").unwrap(), Committed::NothingToCommit);
        assert_eq!(commit_file(&repo.root, &repo.root.join("a.txt"), "one file").unwrap(), Committed::Yes);
        repo.write(".gitignore", ".claude/\n");
        repo.write(".claude/plans/p.yaml", "ignored\n");
        assert_eq!(commit_file(&repo.root, &repo.root.join(".claude/plans/p.yaml"), "ignored").unwrap(), Committed::NothingToCommit);
        assert_eq!(repo.git(&["status", "--porcelain"]), "A  staged-by-user.txt\n?? .gitignore\n");
    }
}
