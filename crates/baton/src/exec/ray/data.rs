//! Git as the data plane of a remote attempt, baton's side: the task's working copy goes out
//! as a snapshot commit under an input commit that holds the attempt's spec and prompt
//! (`refs/baton/<plan>/<task>/<session>.in` on the remote); the worker's result comes back from
//! `refs/baton/<plan>/<task>/<session>` and its changes are put in the working copy, where
//! verification and landing find them as they find a local agent's. Both refs are deleted once
//! the attempt is over.

use std::ffi::OsStr;
use std::path::{Component, Path};

use crate::exec::frame::{self, Spec};
use crate::git::{self, GitError};

/// The refs of one attempt on the remote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refs {
    pub input: String,
    pub result: String,
}

impl Refs {
    /// The refs of session `session` of `task`, made unique by `nonce` (the job's): two
    /// checkouts, or two runs, that share a remote never share a ref.
    pub fn new(plan: &str, task: &str, session: u32, nonce: &str) -> Refs {
        let base = format!("refs/baton/{}/{}/{session}-{nonce}", git::worktree::ref_component(plan), git::worktree::ref_component(task));
        Refs { input: format!("{base}.in"), result: base }
    }
}

/// baton's transport commits are its own, whatever the repository's identity.
const IDENTITY: [(&str, &str); 4] = [
    ("GIT_AUTHOR_NAME", "baton"),
    ("GIT_AUTHOR_EMAIL", "baton@localhost"),
    ("GIT_COMMITTER_NAME", "baton"),
    ("GIT_COMMITTER_EMAIL", "baton@localhost"),
];

fn identity() -> Vec<(&'static str, &'static OsStr)> {
    IDENTITY.iter().map(|(k, v)| (*k, OsStr::new(v))).collect()
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8_lossy(&bytes).trim().to_string()
}

fn failed(what: &str, e: GitError) -> String {
    format!("{what}: {}", crate::exit::render_chain(&e))
}

/// A commit of `tree` with `parents`, as baton.
pub(crate) fn commit_tree(dir: &Path, tree: &str, parents: &[&str], message: &str) -> Result<String, GitError> {
    let mut args = vec!["commit-tree", tree];
    for p in parents {
        args.extend(["-p", p]);
    }
    args.extend(["-m", message]);
    git::git_bytes(dir, &args, &identity(), None).map(text)
}

/// Snapshots `cwd` (tracked and untracked files, not ignored ones) as a commit on its HEAD,
/// puts the spec and the prompt in an input commit on top, and pushes that to `refs.input`.
/// The snapshot commit: what the result is measured from.
pub fn push_input(root: &Path, cwd: &Path, remote: &str, refs: &Refs, spec: &Spec, prompt: &str) -> Result<String, String> {
    let tree = git::worktree::snapshot(cwd).map_err(|e| failed("cannot snapshot the working copy", e))?;
    let head = git::git(cwd, &["rev-parse", "HEAD"]).map_err(|e| failed("cannot read HEAD", e))?;
    let head = head.trim();
    let snapshot = commit_tree(cwd, &tree, &[head], &format!("baton: {} as session {} began", spec.task, spec.session)).map_err(|e| failed("cannot commit the snapshot", e))?;
    let json = serde_json::to_vec_pretty(spec).map_err(|e| e.to_string())?;
    let blob = |bytes: &[u8]| git::git_bytes(cwd, &["hash-object", "-w", "--stdin"], &[], Some(bytes)).map(text);
    let spec_blob = blob(&json).map_err(|e| failed("cannot store the spec", e))?;
    let prompt_blob = blob(prompt.as_bytes()).map_err(|e| failed("cannot store the prompt", e))?;
    let listing = format!("100644 blob {prompt_blob}\t{}\n100644 blob {spec_blob}\t{}\n", frame::PROMPT_FILE, frame::SPEC_FILE);
    let input_tree = git::git_bytes(cwd, &["mktree"], &[], Some(listing.as_bytes())).map(text).map_err(|e| failed("cannot store the input", e))?;
    let input = commit_tree(cwd, &input_tree, &[&snapshot], &format!("baton: the input of {} session {}", spec.task, spec.session))
        .map_err(|e| failed("cannot commit the input", e))?;
    push(root, remote, &[&format!("+{input}:{}", refs.input)]).map_err(|e| failed(&format!("cannot push to {remote}"), e))?;
    Ok(snapshot)
}

fn push(root: &Path, remote: &str, specs: &[&str]) -> Result<(), GitError> {
    let mut args = vec!["push", "--quiet", "--no-verify", remote];
    args.extend_from_slice(specs);
    git::git_bytes(root, &args, &[], None).map(|_| ())
}

/// Fetches the result `commit` from `refs.result` and makes `cwd` hold what it holds where it
/// differs from `snapshot`: the files the agent wrote, and none of those it deleted. The local
/// copy of the ref goes again. How many paths changed.
pub fn bring_back(root: &Path, cwd: &Path, remote: &str, refs: &Refs, snapshot: &str, commit: &str) -> Result<usize, String> {
    let spec = format!("+{}:{}", refs.result, refs.result);
    git::git_bytes(root, &["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", remote, &spec], &[], None)
        .map_err(|e| failed(&format!("cannot fetch the result from {remote}"), e))?;
    let fetched = git::git(root, &["rev-parse", "--verify", "--quiet", &format!("{}^{{commit}}", refs.result)]).map(|s| s.trim().to_string());
    let _ = git::git(root, &["update-ref", "-d", &refs.result]);
    match fetched {
        Ok(sha) if sha == commit => {}
        Ok(sha) => return Err(format!("{} on {remote} is {sha}, not the worker's result {commit}", refs.result)),
        Err(e) => return Err(failed("cannot read the fetched result", e)),
    }
    let diff = git::git_bytes(root, &["diff-tree", "-r", "-z", "--no-renames", "--name-status", snapshot, commit], &[], None)
        .map_err(|e| failed("cannot compare the result with the snapshot", e))?;
    let mut restore: Vec<u8> = Vec::new();
    let mut changed = 0;
    let mut fields = diff.split(|b| *b == 0).filter(|f| !f.is_empty());
    while let (Some(status), Some(path)) = (fields.next(), fields.next()) {
        let rel = Path::new(<OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(path));
        if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(format!("the result names a path outside the working copy: {}", rel.display()));
        }
        changed += 1;
        if status == b"D" {
            let target = cwd.join(rel);
            match std::fs::remove_file(&target) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(format!("cannot delete {}: {e}", target.display())),
                _ => {}
            }
            // A folder the agent emptied goes too (a file may take its name).
            let mut dir = target.parent();
            while let Some(d) = dir.filter(|d| *d != cwd) {
                if std::fs::remove_dir(d).is_err() {
                    break;
                }
                dir = d.parent();
            }
        } else {
            restore.extend_from_slice(path);
            restore.push(0);
        }
    }
    if !restore.is_empty() {
        let source = format!("--source={commit}");
        let env = [("GIT_LITERAL_PATHSPECS", OsStr::new("1"))];
        git::git_bytes(cwd, &["restore", &source, "--worktree", "--pathspec-from-file=-", "--pathspec-file-nul"], &env, Some(&restore))
            .map_err(|e| failed("cannot put the result in the working copy", e))?;
    }
    Ok(changed)
}

/// Deletes the attempt's refs on the remote; a ref that is not there is not an error.
pub fn delete_remote(root: &Path, remote: &str, refs: &Refs) -> Result<(), String> {
    let input = format!(":{}", refs.input);
    let result = format!(":{}", refs.result);
    match push(root, remote, &[&input, &result]) {
        Ok(()) => Ok(()),
        Err(GitError::Failed { stderr, .. }) if stderr.lines().all(|l| l.trim().is_empty() || l.contains("does not exist") || l.contains("unable to delete") || l.starts_with("error: failed to push")) => Ok(()),
        Err(e) => Err(failed(&format!("cannot delete {} and {} on {remote}", refs.input, refs.result), e)),
    }
}

/// The refs under `refs/baton/` that the remote has (for cleaning up after a killed baton).
pub fn remote_has(root: &Path, remote: &str, refname: &str) -> Result<Option<String>, String> {
    let out = git::git(root, &["ls-remote", remote, refname]).map_err(|e| failed(&format!("cannot list refs of {remote}"), e))?;
    Ok(out.lines().find_map(|l| l.split_once('\t').filter(|(_, r)| *r == refname).map(|(sha, _)| sha.to_string())))
}

/// Whether what the attempt's result changed (from its snapshot) is in HEAD already: a baton
/// killed after landing it leaves nothing to keep. `false` when that cannot be told.
pub fn landed_already(root: &Path, remote: &str, refs: &Refs) -> bool {
    let specs = [format!("+{}:{}", refs.input, refs.input), format!("+{}:{}", refs.result, refs.result)];
    let fetched = git::git_bytes(root, &["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", remote, &specs[0], &specs[1]], &[], None).is_ok();
    let answer = fetched && {
        let snapshot = format!("{}^", refs.input);
        match git::git_bytes(root, &["diff-tree", "-r", "-z", "--no-renames", "--name-only", &snapshot, &refs.result], &[], None) {
            Ok(paths) if paths.iter().all(|b| *b == 0) => true,
            Ok(paths) => {
                let env = [("GIT_LITERAL_PATHSPECS", OsStr::new("1"))];
                git::git_output(root, &["diff", "--quiet", "HEAD", &refs.result, "--pathspec-from-file=-", "--pathspec-file-nul"], &env, Some(&paths))
                    .is_ok_and(|o| o.status.success())
            }
            Err(_) => false,
        }
    };
    let _ = git::git(root, &["update-ref", "-d", &refs.input]);
    let _ = git::git(root, &["update-ref", "-d", &refs.result]);
    answer
}

/// Keeps the commit `refname` points to on the remote as the local branch `branch`.
pub fn rescue(root: &Path, remote: &str, refname: &str, branch: &str) -> Result<(), String> {
    let spec = format!("+{refname}:refs/heads/{branch}");
    git::git_bytes(root, &["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", remote, &spec], &[], None).map(|_| ()).map_err(|e| failed("cannot fetch", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_are_valid_and_the_input_sits_beside_the_result() {
        let r = Refs::new("my plan", "1.2", 3, "0a1b");
        assert_eq!(r.result, format!("refs/baton/{}/1.2/3-0a1b", git::worktree::ref_component("my plan")));
        assert_eq!(r.input, format!("{}.in", r.result));
        assert!(!r.result.contains(' '));
    }
}
