//! The shared claims file: which agent is editing which file, one file per run at
//! `.claude/agent-claims.json` in the main checkout.
//!
//! Every operation reads, changes and writes the file under an exclusive `flock` on the sidecar
//! `.claude/agent-claims.json.lock`, and writes through a temporary file and a rename, so
//! concurrent `baton claim` calls from many worktrees never lose an update and a crash never
//! leaves a torn file. Claims are advisory: this module records and answers, it must not stop
//! anyone from writing a file, nor decide that an agent is dead (the caller says so).
//!
//! ```json
//! { "claims": { "src/lib.rs": { "agent_id": "agent-8.1", "task_id": "8.1",
//!                               "claimed_at": "2026-02-05T10:00:00Z", "worktree": "/repo/.worktrees/plan-8.1" } } }
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::fsio::{lock_exclusive, write_atomic};
use super::{repo_path, CoordError};

/// The claims file, relative to the main checkout.
pub const CLAIMS_FILE: &str = ".claude/agent-claims.json";
/// How long a claim may be held before it counts as stale (PRODUCT.md §7).
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(60 * 60);
/// How long an operation waits for another one to finish with the file. Operations hold the
/// lock for a read and a small write, so only a stuck process makes this run out.
const LOCK_TIMEOUT: Duration = Duration::from_secs(5);

/// Who claims: an agent, the task it works on, and its worktree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimant {
    pub agent_id: String,
    pub task_id: String,
    /// The agent's worktree; recorded in the claim, and absolute paths inside it are accepted.
    pub worktree: PathBuf,
}

/// The answer to a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The file is now the caller's.
    Granted,
    /// The caller already held it; the claim keeps its original time.
    AlreadyYours,
    /// Another agent holds it; the caller must not edit the file.
    HeldBy { agent_id: String, task_id: String, since: Timestamp },
}

/// What `baton claim` prints: `granted`, `already yours`, or who holds the file.
impl std::fmt::Display for ClaimOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClaimOutcome::Granted => f.write_str("granted"),
            ClaimOutcome::AlreadyYours => f.write_str("already yours"),
            ClaimOutcome::HeldBy { agent_id, task_id, since } => {
                write!(f, "held by agent {agent_id} (task {task_id}) since {}", since.strftime("%Y-%m-%d %H:%M:%S UTC"))
            }
        }
    }
}

/// One claim, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// Repository-relative, `/`-separated.
    pub path: String,
    pub agent_id: String,
    pub task_id: String,
    /// When it was claimed. A time that cannot be read is the Unix epoch, so the claim is stale.
    pub claimed_at: Timestamp,
    pub worktree: String,
    /// The run (see [`run_id`]) whose agent made the claim, when it was made under baton.
    pub run: Option<String>,
}

/// The file as stored. Unknown fields (from another version, or the original tool) are kept.
#[derive(Debug, Default, Serialize, Deserialize)]
struct ClaimsFile {
    #[serde(default)]
    claims: BTreeMap<String, Entry>,
    #[serde(flatten)]
    other: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    agent_id: String,
    #[serde(default)]
    task_id: String,
    #[serde(default)]
    claimed_at: String,
    #[serde(default)]
    worktree: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    run: Option<String>,
    #[serde(flatten)]
    other: serde_json::Map<String, serde_json::Value>,
}

impl Entry {
    fn since(&self) -> Timestamp {
        self.claimed_at.parse().unwrap_or(Timestamp::UNIX_EPOCH)
    }

    fn to_claim(&self, path: &str) -> Claim {
        Claim {
            path: path.to_string(),
            agent_id: self.agent_id.clone(),
            task_id: self.task_id.clone(),
            claimed_at: self.since(),
            worktree: self.worktree.clone(),
            run: self.run.clone(),
        }
    }
}

/// Claims `path` (repository-relative, or absolute inside the main checkout or the claimant's
/// worktree; see [`repo_path`]) for `who`.
pub fn claim(main_root: &Path, who: &Claimant, path: &str) -> Result<ClaimOutcome, CoordError> {
    claim_at(main_root, who, path, Timestamp::now())
}

pub(crate) fn claim_at(
    main_root: &Path,
    who: &Claimant,
    path: &str,
    now: Timestamp,
) -> Result<ClaimOutcome, CoordError> {
    check_agent_id(&who.agent_id)?;
    let key = repo_path(Path::new(path), main_root, &[main_root, &who.worktree])?;
    update(main_root, |file| {
        if let Some(held) = file.claims.get(&key) {
            if held.agent_id == who.agent_id {
                return Ok((ClaimOutcome::AlreadyYours, false));
            }
            return Ok((
                ClaimOutcome::HeldBy {
                    agent_id: held.agent_id.clone(),
                    task_id: held.task_id.clone(),
                    since: held.since(),
                },
                false,
            ));
        }
        let entry = Entry {
            agent_id: who.agent_id.clone(),
            task_id: who.task_id.clone(),
            claimed_at: now.to_string(),
            worktree: who.worktree.to_string_lossy().into_owned(),
            run: std::env::var(ENV_RUN_ID).ok().filter(|r| !r.is_empty()),
            other: serde_json::Map::new(),
        };
        file.claims.insert(key, entry);
        Ok((ClaimOutcome::Granted, true))
    })
}

/// Releases `agent_id`'s claim on `path`, or all of its claims when `path` is `None`; returns
/// the paths released. Releasing a file nobody holds is not an error (releasing twice is
/// harmless); releasing one another agent holds is.
pub fn release(main_root: &Path, agent_id: &str, path: Option<&str>) -> Result<Vec<String>, CoordError> {
    check_agent_id(agent_id)?;
    let key = match path {
        Some(p) => Some(repo_path(Path::new(p), main_root, &[main_root])?),
        None => None,
    };
    update(main_root, |file| {
        let Some(key) = key else {
            let mine: Vec<String> =
                file.claims.iter().filter(|(_, e)| e.agent_id == agent_id).map(|(p, _)| p.clone()).collect();
            for p in &mine {
                file.claims.remove(p);
            }
            let changed = !mine.is_empty();
            return Ok((mine, changed));
        };
        match file.claims.get(&key) {
            None => Ok((Vec::new(), false)),
            Some(held) if held.agent_id != agent_id => Err(CoordError::NotHolder {
                path: key.clone(),
                agent_id: held.agent_id.clone(),
                task_id: held.task_id.clone(),
                caller: agent_id.to_string(),
            }),
            Some(_) => {
                file.claims.remove(&key);
                Ok((vec![key], true))
            }
        }
    })
}

/// All claims, by path.
pub fn list(main_root: &Path) -> Result<Vec<Claim>, CoordError> {
    update(main_root, |file| Ok((file.claims.iter().map(|(p, e)| e.to_claim(p)).collect(), false)))
}

/// Removes claims older than `max_age` at `now`, or whose agent `is_live` says is no longer
/// running (finished, failed, process gone); returns what it removed.
pub fn remove_stale(
    main_root: &Path,
    now: Timestamp,
    max_age: Duration,
    is_live: &dyn Fn(&str) -> bool,
) -> Result<Vec<Claim>, CoordError> {
    let max_age = SignedDuration::try_from(max_age).unwrap_or(SignedDuration::MAX);
    update(main_root, |file| {
        let mut verdicts: BTreeMap<String, bool> = BTreeMap::new();
        let mut removed = Vec::new();
        file.claims.retain(|path, entry| {
            let live = *verdicts.entry(entry.agent_id.clone()).or_insert_with(|| is_live(&entry.agent_id));
            let keep = live && now.duration_since(entry.since()) <= max_age;
            if !keep {
                removed.push(entry.to_claim(path));
            }
            keep
        });
        let changed = !removed.is_empty();
        Ok((removed, changed))
    })
}

/// Removes the claims `orphaned` says belong to no running agent; returns them.
pub fn remove_orphaned(main_root: &Path, orphaned: &dyn Fn(&Claim) -> bool) -> Result<Vec<Claim>, CoordError> {
    update(main_root, |file| {
        let mut removed = Vec::new();
        file.claims.retain(|path, entry| {
            let claim = entry.to_claim(path);
            let keep = !orphaned(&claim);
            if !keep {
                removed.push(claim);
            }
            keep
        });
        let changed = !removed.is_empty();
        Ok((removed, changed))
    })
}

/// The environment variable that tells `baton claim` which run its agent belongs to.
pub const ENV_RUN_ID: &str = "BATON_RUN_ID";

/// This process's run id: `<pid>-<start time in ns>`, the same for every call.
pub fn run_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| format!("{}-{}", std::process::id(), Timestamp::now().as_nanosecond()))
}

/// Whether the run `run` (an id from [`run_id`]) has ended: its process is gone, or this
/// process has that pid and is another run.
pub fn run_has_ended(run: &str) -> bool {
    let Some(pid) = run.split('-').next().and_then(|p| p.parse::<u32>().ok()) else { return false };
    if pid == std::process::id() {
        return run != run_id();
    }
    !super::heartbeat::pid_alive(pid)
}

/// Removes every claim (the start of a run).
pub fn clear(main_root: &Path) -> Result<Vec<Claim>, CoordError> {
    update(main_root, |file| {
        let removed: Vec<Claim> = file.claims.iter().map(|(p, e)| e.to_claim(p)).collect();
        file.claims.clear();
        let changed = !removed.is_empty();
        Ok((removed, changed))
    })
}

fn claims_path(main_root: &Path) -> PathBuf {
    main_root.join(CLAIMS_FILE)
}

fn sidecar(main_root: &Path, suffix: &str) -> PathBuf {
    main_root.join(format!("{CLAIMS_FILE}{suffix}"))
}

/// Runs `change` on the file under the lock; writes it back when `change` says it changed.
fn update<T>(
    main_root: &Path,
    change: impl FnOnce(&mut ClaimsFile) -> Result<(T, bool), CoordError>,
) -> Result<T, CoordError> {
    let path = claims_path(main_root);
    let _lock = lock_exclusive(&sidecar(main_root, ".lock"), LOCK_TIMEOUT)?;
    let mut file = load(main_root, &path)?;
    let (out, changed) = change(&mut file)?;
    if changed {
        let bytes =
            serde_json::to_vec_pretty(&file).map_err(|source| CoordError::Encode { path: path.clone(), source })?;
        // A fixed temp name is safe: only the lock holder writes it, and a leftover from a crash
        // is simply overwritten.
        write_atomic(&path, &sidecar(main_root, ".tmp"), &bytes)?;
    }
    Ok(out)
}

/// Reads the file; a missing or empty one has no claims. One that is not valid JSON (written by
/// hand or by something that does not write atomically) is kept aside next to it and replaced
/// by an empty one, so one bad write cannot stop every agent of the run.
fn load(main_root: &Path, path: &Path) -> Result<ClaimsFile, CoordError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ClaimsFile::default()),
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => String::from("\u{0}"),
        Err(source) => return Err(CoordError::Io { action: "read", path: path.to_path_buf(), source }),
    };
    if text.trim().is_empty() {
        return Ok(ClaimsFile::default());
    }
    match serde_json::from_str(&text) {
        Ok(file) => Ok(file),
        Err(_) => {
            let now = Timestamp::now();
            let stamp = format!("{}.{:09}", now.strftime("%Y%m%dT%H%M%S"), now.subsec_nanosecond());
            let aside = sidecar(main_root, &format!(".corrupt-{stamp}"));
            std::fs::rename(path, &aside).map_err(CoordError::io("move aside the unreadable", path))?;
            Ok(ClaimsFile::default())
        }
    }
}

/// Agent ids become file names (heartbeats) and appear in messages; keep them plain.
pub(crate) fn check_agent_id(id: &str) -> Result<(), CoordError> {
    let plain = !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if plain {
        Ok(())
    } else {
        Err(CoordError::InvalidAgentId { id: id.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::super::heartbeat;
    use super::*;
    use std::io::{Read, Write};
    use std::process::{Command, Stdio};
    use std::sync::{Arc, Barrier};

    fn who(agent: &str, task: &str, root: &Path) -> Claimant {
        Claimant {
            agent_id: agent.to_string(),
            task_id: task.to_string(),
            worktree: root.join(".worktrees").join(format!("plan-{task}")),
        }
    }

    fn paths(claims: &[Claim]) -> Vec<&str> {
        claims.iter().map(|c| c.path.as_str()).collect()
    }

    #[test]
    fn claims_of_ended_runs_are_orphans_and_others_stay() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        let mut gone = Command::new("true").spawn().unwrap();
        let dead = gone.id();
        gone.wait().unwrap();
        let runs = [
            ("a.rs", Some(run_id().to_string())),
            ("b.rs", Some(format!("{dead}-1"))),
            ("c.rs", Some(format!("{}-1", std::process::id()))),
            ("d.rs", None),
        ];
        update(root, |file| {
            for (path, run) in &runs {
                let entry = Entry {
                    agent_id: "agent-x".into(),
                    task_id: "x".into(),
                    claimed_at: Timestamp::now().to_string(),
                    worktree: String::new(),
                    run: run.clone(),
                    other: serde_json::Map::new(),
                };
                file.claims.insert(path.to_string(), entry);
            }
            Ok(((), true))
        })
        .unwrap();
        let removed = remove_orphaned(root, &|c| c.run.as_deref().is_some_and(run_has_ended)).unwrap();
        assert_eq!(paths(&removed), ["b.rs", "c.rs"]);
        assert_eq!(paths(&list(root).unwrap()), ["a.rs", "d.rs"]);
        assert_eq!(list(root).unwrap()[0].run.as_deref(), Some(run_id()));
    }

    #[test]
    fn claim_list_and_release_round_trip() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        let a = who("agent-1", "8.1", root);
        let before = Timestamp::now();
        assert_eq!(claim(root, &a, "src/lib.rs").unwrap(), ClaimOutcome::Granted);
        assert_eq!(claim(root, &a, "./src//lib.rs").unwrap(), ClaimOutcome::AlreadyYours);
        assert_eq!(claim(root, &a, "README.md").unwrap(), ClaimOutcome::Granted);

        let listed = list(root).unwrap();
        assert_eq!(paths(&listed), ["README.md", "src/lib.rs"]);
        let c = &listed[1];
        assert_eq!((c.agent_id.as_str(), c.task_id.as_str()), ("agent-1", "8.1"));
        assert_eq!(c.worktree, a.worktree.to_string_lossy());
        assert!(c.claimed_at >= before && c.claimed_at <= Timestamp::now(), "{}", c.claimed_at);

        // The file on disk has the documented shape.
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(root.join(CLAIMS_FILE)).unwrap()).unwrap();
        let entry = &json["claims"]["src/lib.rs"];
        assert_eq!(entry["agent_id"], "agent-1");
        assert_eq!(entry["task_id"], "8.1");
        assert!(entry["claimed_at"].as_str().unwrap().parse::<Timestamp>().is_ok(), "{entry}");

        assert_eq!(release(root, "agent-1", Some("src/lib.rs")).unwrap(), ["src/lib.rs"]);
        assert_eq!(release(root, "agent-1", Some("src/lib.rs")).unwrap(), Vec::<String>::new());
        assert_eq!(paths(&list(root).unwrap()), ["README.md"]);
        assert_eq!(release(root, "agent-1", None).unwrap(), ["README.md"]);
        assert!(list(root).unwrap().is_empty());
    }

    #[test]
    fn a_file_held_by_one_agent_is_refused_to_another_and_only_the_holder_releases_it() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        let a = who("agent-1", "8.1", root);
        let b = who("agent-2", "8.2", root);
        claim(root, &a, "src/lib.rs").unwrap();
        let since = list(root).unwrap()[0].claimed_at;
        let held = claim(root, &b, "src/lib.rs").unwrap();
        assert_eq!(held, ClaimOutcome::HeldBy { agent_id: "agent-1".into(), task_id: "8.1".into(), since });
        assert!(held.to_string().starts_with("held by agent agent-1 (task 8.1) since "), "{held}");

        let e = release(root, "agent-2", Some("src/lib.rs")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "src/lib.rs is claimed by agent agent-1 (task 8.1), not by agent-2; only the holder can release it"
        );
        claim(root, &b, "src/other.rs").unwrap();
        assert_eq!(release(root, "agent-1", None).unwrap(), ["src/lib.rs"]);
        assert_eq!(paths(&list(root).unwrap()), ["src/other.rs"]);
        assert_eq!(claim(root, &b, "src/lib.rs").unwrap(), ClaimOutcome::Granted);
    }

    #[test]
    fn threads_racing_for_one_file_get_exactly_one_owner() {
        let d = tempfile::tempdir().unwrap();
        let root = Arc::new(d.path().to_path_buf());
        const N: usize = 8;
        let gate = Arc::new(Barrier::new(N));
        let handles: Vec<_> = (0..N)
            .map(|i| {
                let (root, gate) = (Arc::clone(&root), Arc::clone(&gate));
                std::thread::spawn(move || {
                    let me = who(&format!("agent-{i}"), &format!("8.{i}"), &root);
                    gate.wait();
                    (me.agent_id.clone(), claim(&root, &me, "src/shared.rs").unwrap())
                })
            })
            .collect();
        let outcomes: Vec<(String, ClaimOutcome)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let winners: Vec<&String> =
            outcomes.iter().filter(|(_, o)| *o == ClaimOutcome::Granted).map(|(a, _)| a).collect();
        assert_eq!(winners.len(), 1, "{outcomes:?}");
        for (_, o) in &outcomes {
            match o {
                ClaimOutcome::Granted => {}
                ClaimOutcome::HeldBy { agent_id, .. } => assert_eq!(agent_id, winners[0]),
                other => panic!("unexpected {other:?}"),
            }
        }
        let listed = list(&root).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(&listed[0].agent_id, winners[0]);
    }

    const RACE_ENV: &str = "BATON_COORD_TEST_RACE_CHILD";

    /// Not a test: the body of one racing process in
    /// `processes_racing_for_one_file_get_exactly_one_owner`, which runs this test binary again
    /// with only this function selected. Does nothing in a normal test run.
    #[test]
    fn race_child_process() {
        let Ok(spec) = std::env::var(RACE_ENV) else { return };
        let (root, agent) = spec.split_once('\n').unwrap();
        // Start together: the parent closes every child's stdin at once.
        std::io::stdin().read_to_end(&mut Vec::new()).unwrap();
        let outcome = claim(Path::new(root), &who(agent, agent, Path::new(root)), "src/shared.rs").unwrap();
        println!("OUTCOME {agent} {outcome}");
    }

    #[test]
    fn processes_racing_for_one_file_get_exactly_one_owner() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().to_str().unwrap();
        let exe = std::env::current_exe().unwrap();
        // `module_path!()` starts with the crate name, which test filters leave out.
        let module = module_path!().split_once("::").unwrap().1;
        let name = format!("{module}::race_child_process");
        const N: usize = 6;
        let mut children: Vec<_> = (0..N)
            .map(|i| {
                Command::new(&exe)
                    .args([name.as_str(), "--exact", "--nocapture", "--test-threads=1"])
                    .env(RACE_ENV, format!("{root}\nagent-{i}"))
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let stdins: Vec<_> = children.iter_mut().map(|c| c.stdin.take().unwrap()).collect();
        drop(stdins);
        let mut lines = Vec::new();
        for child in children {
            let out = child.wait_with_output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
            // libtest prints the test's name on the same line, before the output.
            lines.extend(stdout.lines().filter_map(|l| l.split_once("OUTCOME ")).map(|(_, o)| o.to_string()));
        }
        assert_eq!(lines.len(), N, "{lines:?}");
        let winners: Vec<&str> = lines.iter().filter_map(|l| l.strip_suffix(" granted")).collect();
        assert_eq!(winners.len(), 1, "{lines:?}");
        let held = format!("held by agent {} ", winners[0]);
        assert_eq!(lines.iter().filter(|l| l.contains(&held)).count(), N - 1, "{lines:?}");
        assert_eq!(list(Path::new(root)).unwrap()[0].agent_id, winners[0]);
    }

    #[test]
    fn claims_older_than_the_limit_are_removed_and_younger_ones_stay() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        let now = Timestamp::now();
        let hours = |h: i64| now.checked_sub(SignedDuration::from_hours(h)).unwrap();
        claim_at(root, &who("agent-1", "1", root), "old.rs", hours(2)).unwrap();
        claim_at(root, &who("agent-2", "2", root), "young.rs", now.checked_sub(SignedDuration::from_mins(59)).unwrap())
            .unwrap();
        // A time nobody can read counts as stale, not as forever.
        update(root, |f| {
            let mut e = f.claims["young.rs"].clone();
            e.claimed_at = "yesterday-ish".into();
            f.claims.insert("garbled.rs".into(), e);
            Ok(((), true))
        })
        .unwrap();
        let removed = remove_stale(root, now, DEFAULT_MAX_AGE, &|_| true).unwrap();
        assert_eq!(paths(&removed), ["garbled.rs", "old.rs"]);
        assert_eq!(paths(&list(root).unwrap()), ["young.rs"]);
        assert!(remove_stale(root, now, DEFAULT_MAX_AGE, &|_| true).unwrap().is_empty());
    }

    #[test]
    fn claims_of_agents_that_finished_or_whose_process_is_gone_are_removed() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        let mut gone = Command::new("true").spawn().unwrap();
        let dead_pid = gone.id();
        gone.wait().unwrap();
        heartbeat::beat(root, "alive", "1", Some(std::process::id()), None).unwrap();
        heartbeat::beat(root, "dead", "2", Some(dead_pid), None).unwrap();
        heartbeat::beat(root, "done", "3", Some(std::process::id()), None).unwrap();
        heartbeat::finish(root, "done", heartbeat::AgentState::Completed).unwrap();
        for (agent, file) in [("alive", "a.rs"), ("dead", "b.rs"), ("done", "c.rs"), ("unknown", "d.rs")] {
            claim(root, &who(agent, agent, root), file).unwrap();
        }
        let asked = std::cell::RefCell::new(Vec::new());
        let is_live = |agent: &str| {
            asked.borrow_mut().push(agent.to_string());
            heartbeat::is_running(root, agent)
        };
        let removed = remove_stale(root, Timestamp::now(), DEFAULT_MAX_AGE, &is_live).unwrap();
        assert_eq!(paths(&removed), ["b.rs", "c.rs", "d.rs"]);
        assert_eq!(paths(&list(root).unwrap()), ["a.rs"]);
        assert_eq!(asked.borrow().len(), 4);
    }

    #[test]
    fn paths_are_normalised_to_one_repository_relative_key() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        let a = who("agent-1", "1", root);
        let wt_file = a.worktree.join("src/lib.rs");
        for spelling in ["src/lib.rs", "./src/lib.rs", "src/./x/../lib.rs", "src//lib.rs"] {
            claim(root, &a, spelling).unwrap();
        }
        claim(root, &a, root.join("src/lib.rs").to_str().unwrap()).unwrap();
        claim(root, &a, wt_file.to_str().unwrap()).unwrap();
        assert_eq!(paths(&list(root).unwrap()), ["src/lib.rs"]);
        // Another agent's worktree (inside main's `.worktrees/`) is not the repository.
        let b = who("agent-2", "2", root);
        let e = claim(root, &b, wt_file.to_str().unwrap()).unwrap_err();
        assert_eq!(
            e.to_string(),
            ".worktrees/plan-1/src/lib.rs is inside another agent's worktree; claim files by their path inside the repository (e.g. src/main.rs)"
        );

        // Relative to the folder the agent is in.
        let rel = repo_path(Path::new("lib.rs"), &a.worktree.join("src"), &[root, &a.worktree]).unwrap();
        assert_eq!(rel, "src/lib.rs");
        let up = repo_path(Path::new("../README.md"), &a.worktree.join("src"), &[root, &a.worktree]).unwrap();
        assert_eq!(up, "README.md");
    }

    #[test]
    fn paths_outside_the_repository_or_not_naming_a_file_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        let a = who("agent-1", "1", root);
        for bad in ["../x.rs", "src/../../x.rs", "/etc/passwd", "../../../../../../../../etc/passwd"] {
            let e = claim(root, &a, bad).unwrap_err();
            assert!(matches!(e, CoordError::OutsideRepo { .. }), "{bad}: {e:?}");
            assert_eq!(
                e.to_string(),
                format!("{bad} is outside the repository; claim files by their path inside the repository (e.g. src/main.rs)")
            );
        }
        for bad in ["", ".", "src/.."] {
            let e = claim(root, &a, bad).unwrap_err();
            assert!(matches!(e, CoordError::NotAFile { .. }), "{bad}: {e:?}");
        }
        let e = claim(root, &a, ".git/config").unwrap_err();
        assert_eq!(e.to_string(), ".git/config is inside .git; only working-tree files can be claimed");
        let e = release(root, "agent-1", Some("../x")).unwrap_err();
        assert!(matches!(e, CoordError::OutsideRepo { .. }), "{e:?}");
        assert!(list(root).unwrap().is_empty());
    }

    #[test]
    fn agent_ids_that_could_not_be_file_names_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        for bad in ["", "../evil", "a/b", ".hidden", "a b"] {
            let e = claim(root, &who(bad, "1", root), "x.rs").unwrap_err();
            assert!(matches!(e, CoordError::InvalidAgentId { .. }), "{bad:?}: {e:?}");
        }
        assert!(release(root, "../evil", None).is_err());
    }

    #[test]
    fn leftovers_of_a_crash_do_not_break_the_next_operation() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        let a = who("agent-1", "1", root);
        claim(root, &a, "kept.rs").unwrap();
        // A crash between writing the temp file and renaming it, and a lock file cut short.
        std::fs::write(sidecar(root, ".tmp"), "{\"claims\": {\"half").unwrap();
        std::fs::write(sidecar(root, ".lock"), [0xff, b'p', b'i']).unwrap();
        assert_eq!(claim(root, &a, "next.rs").unwrap(), ClaimOutcome::Granted);
        assert_eq!(paths(&list(root).unwrap()), ["kept.rs", "next.rs"]);
        assert!(!sidecar(root, ".tmp").exists());

        // A lock file truncated to nothing works too.
        std::fs::File::create(sidecar(root, ".lock")).unwrap();
        assert_eq!(release(root, "agent-1", Some("kept.rs")).unwrap(), ["kept.rs"]);
    }

    #[test]
    fn an_unreadable_claims_file_is_kept_aside_and_replaced() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join(".claude")).unwrap();
        std::fs::write(root.join(CLAIMS_FILE), "{\"claims\": {\"src/a.rs\": {\"agent_").unwrap();
        let a = who("agent-1", "1", root);
        assert_eq!(claim(root, &a, "src/a.rs").unwrap(), ClaimOutcome::Granted);
        let aside: Vec<_> = std::fs::read_dir(root.join(".claude"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with("agent-claims.json.corrupt-"))
            .collect();
        assert_eq!(aside.len(), 1, "{aside:?}");
        let kept = std::fs::read_to_string(root.join(".claude").join(&aside[0])).unwrap();
        assert!(kept.ends_with("\"agent_"), "{kept}");
        // An empty file is simply no claims.
        std::fs::write(root.join(CLAIMS_FILE), "").unwrap();
        assert!(list(root).unwrap().is_empty());
    }

    #[test]
    fn fields_this_version_does_not_know_are_kept() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join(".claude")).unwrap();
        let mut f = std::fs::File::create(root.join(CLAIMS_FILE)).unwrap();
        f.write_all(
            br#"{"version": 2, "claims": {"a.rs": {"agent_id": "agent-9", "task_id": "9",
                "claimed_at": "2026-02-05T10:00:00Z", "worktree": "/w", "intent": "refactor"}}}"#,
        )
        .unwrap();
        drop(f);
        claim(root, &who("agent-1", "1", root), "b.rs").unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(root.join(CLAIMS_FILE)).unwrap()).unwrap();
        assert_eq!(json["version"], 2);
        assert_eq!(json["claims"]["a.rs"]["intent"], "refactor");
        assert_eq!(list(root).unwrap()[0].claimed_at, "2026-02-05T10:00:00Z".parse::<Timestamp>().unwrap());
    }

    #[test]
    fn a_held_lock_makes_an_operation_wait_then_give_up_with_the_holder_named() {
        let d = tempfile::tempdir().unwrap();
        let lock = d.path().join("x.lock");
        let held = lock_exclusive(&lock, Duration::from_millis(10)).unwrap();
        let e = lock_exclusive(&lock, Duration::from_millis(30)).unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("timed out after "), "{msg}");
        assert!(msg.ends_with(&format!("(held by pid {})", std::process::id())), "{msg}");
        drop(held);
        lock_exclusive(&lock, Duration::from_millis(10)).unwrap();
    }
}
