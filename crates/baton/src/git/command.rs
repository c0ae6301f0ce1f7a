//! Running git: stdin null (or the given input), `LC_ALL=C`, no automatic maintenance, in a
//! process group of its own (out of reach of the terminal's signals), exit codes checked,
//! stderr carried into errors; and the few compound operations baton needs
//! (commit a file or a set of paths, keep files out of `git status`).

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};

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
    let rel = file.strip_prefix(root).unwrap_or(file);
    let rel = rel.to_string_lossy();
    let status = git(root, &["status", "--porcelain", "--", &rel])?;
    if status.trim().is_empty() {
        return Ok(Committed::NothingToCommit);
    }
    git(root, &["add", "--", &rel])?;
    git(root, &["commit", "-q", "--no-verify", "-m", message, "--only", "--", &rel])?;
    Ok(Committed::Yes)
}

/// Commits exactly these paths (added, changed or deleted), and nothing else that is staged.
pub fn commit_paths(root: &Path, paths: &[PathBuf], message: &str) -> Result<Committed, GitError> {
    let rels: Vec<String> = paths
        .iter()
        .map(|p| p.strip_prefix(root).unwrap_or(p).to_string_lossy().into_owned())
        .collect();
    // A path gone from disk counts only if git knows it (its deletion is then committed);
    // naming a path git never saw would make the whole command fail.
    let mut ls: Vec<&str> = vec!["ls-files", "-z", "--"];
    ls.extend(rels.iter().map(String::as_str));
    let known = git(root, &ls)?;
    let known: Vec<&str> = known.split('\0').filter(|p| !p.is_empty()).collect();
    // An ignored file that git does not track is not the project's to commit (a `.claude/` in
    // .gitignore, say); naming it would make `git add` fail.
    let input: Vec<u8> = rels.iter().flat_map(|r| r.bytes().chain([0])).collect();
    let ignored = git_output(root, &["check-ignore", "-z", "--stdin"], &[], Some(&input))?;
    let ignored = String::from_utf8_lossy(&ignored.stdout).into_owned();
    let ignored: Vec<&str> = ignored.split('\0').filter(|p| !p.is_empty()).collect();
    let rels: Vec<String> = rels
        .into_iter()
        .filter(|r| known.contains(&r.as_str()) || (root.join(r).symlink_metadata().is_ok() && !ignored.contains(&r.as_str())))
        .collect();
    if rels.is_empty() {
        return Ok(Committed::NothingToCommit);
    }
    let mut args: Vec<&str> = vec!["add", "-A", "--"];
    args.extend(rels.iter().map(String::as_str));
    git(root, &args)?;
    let mut status: Vec<&str> = vec!["status", "--porcelain", "--"];
    status.extend(rels.iter().map(String::as_str));
    if git(root, &status)?.trim().is_empty() {
        return Ok(Committed::NothingToCommit);
    }
    let mut commit: Vec<&str> = vec!["commit", "-q", "--no-verify", "-m", message, "--only", "--"];
    commit.extend(rels.iter().map(String::as_str));
    git(root, &commit)?;
    Ok(Committed::Yes)
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
    let mut child = cmd.spawn().map_err(GitError::Spawn)?;
    let stdin = child.stdin.take();
    // Written from a second thread: git may fill its stdout pipe before it has read all of stdin.
    std::thread::scope(|scope| {
        if let (Some(mut pipe), Some(bytes)) = (stdin, input) {
            // A write error means git exited early; its exit code and stderr tell why.
            scope.spawn(move || pipe.write_all(bytes));
        }
        child.wait_with_output().map_err(GitError::Spawn)
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
        Err(GitError::Failed {
            args: args.iter().map(|a| a.as_ref().to_string_lossy()).collect::<Vec<_>>().join(" "),
            dir: dir.to_path_buf(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
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
