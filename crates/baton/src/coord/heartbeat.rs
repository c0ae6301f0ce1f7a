//! Per-agent heartbeats: `.claude/subagent-status/<agent-id>.json` in the main checkout, one
//! file per agent, written atomically by the agent (`baton heartbeat`) and by baton (start and
//! finish of an attempt).
//!
//! Answers "is this agent still working?" from the recorded state, the time of the last beat and
//! whether its process exists. Must not end agents or retry tasks: the engine decides that, from
//! these answers and the agent's output stream together.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::claims::check_agent_id;
use super::fsio::write_atomic;
use super::CoordError;

/// The status folder, relative to the main checkout.
pub const STATUS_DIR: &str = ".claude/subagent-status";

/// What an agent is doing, as last recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentState {
    Running,
    Completed,
    Failed,
}

/// One agent's status file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentStatus {
    pub agent_id: String,
    pub task_id: String,
    /// The process whose life is the agent's (baton records the agent's process-group leader).
    pub pid: Option<u32>,
    pub state: AgentState,
    pub updated_at: Timestamp,
    pub note: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Record {
    agent_id: String,
    #[serde(default)]
    task_id: String,
    #[serde(default)]
    pid: Option<u32>,
    state: AgentState,
    updated_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

impl Record {
    fn into_status(self) -> AgentStatus {
        AgentStatus {
            updated_at: self.updated_at.parse().unwrap_or(Timestamp::UNIX_EPOCH),
            agent_id: self.agent_id,
            task_id: self.task_id,
            pid: self.pid,
            state: self.state,
            note: self.note,
        }
    }
}

/// Records that `agent_id` is running now. `pid: None` keeps the pid recorded before (the
/// `baton heartbeat` command runs in a short-lived child of the agent, whose own pid says
/// nothing); `note: None` clears the note.
pub fn beat(
    main_root: &Path,
    agent_id: &str,
    task_id: &str,
    pid: Option<u32>,
    note: Option<&str>,
) -> Result<(), CoordError> {
    beat_at(main_root, agent_id, task_id, pid, note, Timestamp::now())
}

pub(crate) fn beat_at(
    main_root: &Path,
    agent_id: &str,
    task_id: &str,
    pid: Option<u32>,
    note: Option<&str>,
    now: Timestamp,
) -> Result<(), CoordError> {
    check_agent_id(agent_id)?;
    let pid = pid.or_else(|| read_record(main_root, agent_id).and_then(|r| r.pid));
    write(
        main_root,
        &Record {
            agent_id: agent_id.to_string(),
            task_id: task_id.to_string(),
            pid,
            state: AgentState::Running,
            updated_at: now.to_string(),
            note: note.map(str::to_string),
        },
    )
}

/// Records that `agent_id` has ended in `state`, keeping its task, pid and note.
pub fn finish(main_root: &Path, agent_id: &str, state: AgentState) -> Result<(), CoordError> {
    check_agent_id(agent_id)?;
    let old = read_record(main_root, agent_id);
    let (task_id, pid, note) = old.map(|r| (r.task_id, r.pid, r.note)).unwrap_or_default();
    write(
        main_root,
        &Record { agent_id: agent_id.to_string(), task_id, pid, state, updated_at: Timestamp::now().to_string(), note },
    )
}

/// One agent's status; `None` when it has none or it cannot be read.
pub fn read(main_root: &Path, agent_id: &str) -> Option<AgentStatus> {
    check_agent_id(agent_id).ok()?;
    read_record(main_root, agent_id).map(Record::into_status)
}

/// Every agent's status, by agent id. Files that cannot be read (a half-written one from another
/// tool, a stray file) are skipped: a heartbeat is a hint, not a record.
pub fn read_all(main_root: &Path) -> Result<Vec<AgentStatus>, CoordError> {
    let dir = main_root.join(STATUS_DIR);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(CoordError::Io { action: "read the folder", path: dir, source }),
    };
    let mut all: Vec<AgentStatus> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let id = name.strip_suffix(".json")?;
            check_agent_id(id).ok()?;
            read_record(main_root, id)
        })
        .map(Record::into_status)
        .collect();
    all.sort_by(|a, b| a.agent_id.cmp(&b.agent_id));
    Ok(all)
}

/// When `agent_id` last beat (or finished).
pub fn last_beat(main_root: &Path, agent_id: &str) -> Option<Timestamp> {
    read(main_root, agent_id).map(|s| s.updated_at)
}

/// Whether `agent_id` still runs: its state is running and its process exists (or no process
/// was recorded). How long ago it beat does not matter here; see [`is_live`].
pub fn is_running(main_root: &Path, agent_id: &str) -> bool {
    read(main_root, agent_id).is_some_and(|s| s.state == AgentState::Running && s.pid.is_none_or(pid_alive))
}

/// Whether `agent_id` is running, its process exists, and it beat within `stale_after` of `now`.
pub fn is_live(main_root: &Path, agent_id: &str, now: Timestamp, stale_after: Duration) -> bool {
    let stale_after = SignedDuration::try_from(stale_after).unwrap_or(SignedDuration::MAX);
    read(main_root, agent_id).is_some_and(|s| {
        s.state == AgentState::Running && s.pid.is_none_or(pid_alive) && now.duration_since(s.updated_at) <= stale_after
    })
}

/// Removes the temporary files of heartbeat writes whose writer is gone (`.<agent>.<pid>-<n>.tmp`,
/// left when an agent's `baton heartbeat` was killed mid-write).
pub fn remove_dead_temps(main_root: &Path) {
    let dir = main_root.join(STATUS_DIR);
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(stem) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) else { continue };
        let writer = stem.rsplit_once('.').and_then(|(_, pid_seq)| pid_seq.split_once('-')).and_then(|(pid, _)| pid.parse::<u32>().ok());
        if writer.is_some_and(|pid| !pid_alive(pid)) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Removes every status file (the start of a run).
pub fn clear(main_root: &Path) -> Result<(), CoordError> {
    let dir = main_root.join(STATUS_DIR);
    match std::fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(CoordError::Io { action: "remove the folder", path: dir, source: e })
        }
        _ => Ok(()),
    }
}

/// Whether a process with this pid exists (`kill(pid, 0)`; "not permitted" means it exists).
pub fn pid_alive(pid: u32) -> bool {
    // 0 and negative pids address process groups, never one process.
    let Ok(pid) = libc::pid_t::try_from(pid) else { return false };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists; nothing is delivered.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

fn status_path(main_root: &Path, agent_id: &str) -> PathBuf {
    main_root.join(STATUS_DIR).join(format!("{agent_id}.json"))
}

fn read_record(main_root: &Path, agent_id: &str) -> Option<Record> {
    // In the working copy: a pipe or a huge file left there is no record.
    let text = crate::fsx::read_regular_text(&status_path(main_root, agent_id), 1 << 20).ok()?;
    let record: Record = serde_json::from_str(&text).ok()?;
    (record.agent_id == agent_id).then_some(record)
}

fn write(main_root: &Path, record: &Record) -> Result<(), CoordError> {
    let path = status_path(main_root, &record.agent_id);
    let dir = main_root.join(STATUS_DIR);
    std::fs::create_dir_all(&dir).map_err(CoordError::io("create the folder", &dir))?;
    let bytes =
        serde_json::to_vec_pretty(record).map_err(|source| CoordError::Encode { path: path.clone(), source })?;
    // Baton and the agent may write the same file at once, so each write has its own temp name
    // (starting with '.', never read as a status).
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let tmp =
        dir.join(format!(".{}.{}-{}.tmp", record.agent_id, std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed)));
    write_atomic(&path, &tmp, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    #[test]
    fn a_beat_is_read_back_and_listed() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        let before = Timestamp::now();
        beat(root, "agent-2", "8.2", Some(42), Some("writing tests")).unwrap();
        beat(root, "agent-1", "8.1", None, None).unwrap();
        let s = read(root, "agent-2").unwrap();
        assert_eq!(
            (s.agent_id.as_str(), s.task_id.as_str(), s.pid, s.state, s.note.as_deref()),
            ("agent-2", "8.2", Some(42), AgentState::Running, Some("writing tests"))
        );
        assert!(s.updated_at >= before && s.updated_at <= Timestamp::now());
        assert_eq!(last_beat(root, "agent-2"), Some(s.updated_at));
        assert_eq!(last_beat(root, "agent-3"), None);

        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(root.join(STATUS_DIR).join("agent-2.json")).unwrap())
                .unwrap();
        assert_eq!(json["state"], "running");
        assert_eq!(json["pid"], 42);
        assert!(json["updated_at"].as_str().unwrap().parse::<Timestamp>().is_ok());

        // Stray files, temp files of a crashed write and foreign JSON are skipped.
        let dir = root.join(STATUS_DIR);
        std::fs::write(dir.join(".agent-1.123-0.tmp"), "{").unwrap();
        std::fs::write(dir.join("notes.txt"), "x").unwrap();
        std::fs::write(dir.join("broken.json"), "{\"agent_id\": \"bro").unwrap();
        std::fs::write(dir.join("liar.json"), r#"{"agent_id": "agent-1", "state": "running", "updated_at": "x"}"#)
            .unwrap();
        let ids: Vec<String> = read_all(root).unwrap().into_iter().map(|s| s.agent_id).collect();
        assert_eq!(ids, ["agent-1", "agent-2"]);
        // A temp file whose writer is gone is swept; one of a live writer (this test) is not.
        let live = format!(".agent-4.{}-0.tmp", std::process::id());
        std::fs::write(dir.join(&live), "{").unwrap();
        std::fs::write(dir.join(format!(".agent-1.{}-0.tmp", i32::MAX)), "{").unwrap();
        remove_dead_temps(root);
        assert!(dir.join(&live).exists());
        assert!(!dir.join(format!(".agent-1.{}-0.tmp", i32::MAX)).exists());
    }

    #[test]
    fn a_beat_without_a_pid_keeps_the_one_recorded_and_finish_keeps_the_task() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        beat(root, "agent-1", "8.1", Some(4242), Some("started")).unwrap();
        beat(root, "agent-1", "8.1", None, Some("halfway")).unwrap();
        assert_eq!(read(root, "agent-1").unwrap().pid, Some(4242));
        finish(root, "agent-1", AgentState::Failed).unwrap();
        let s = read(root, "agent-1").unwrap();
        assert_eq!(
            (s.task_id.as_str(), s.pid, s.state, s.note.as_deref()),
            ("8.1", Some(4242), AgentState::Failed, Some("halfway"))
        );
        // An agent that never beat can still be marked finished.
        finish(root, "agent-9", AgentState::Completed).unwrap();
        assert_eq!(read(root, "agent-9").unwrap().state, AgentState::Completed);
    }

    #[test]
    fn an_agent_is_live_only_while_running_with_its_process_and_a_recent_beat() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        let minute = Duration::from_secs(60);
        let now = Timestamp::now();
        beat_at(root, "me", "1", Some(std::process::id()), None, now).unwrap();
        assert!(is_live(root, "me", now, minute));
        assert!(is_running(root, "me"));
        let later = now.checked_add(SignedDuration::from_secs(61)).unwrap();
        assert!(!is_live(root, "me", later, minute), "a beat older than stale_after is not live");
        assert!(is_running(root, "me"), "is_running ignores the age of the beat");

        beat_at(root, "gone", "2", Some(dead_pid()), None, now).unwrap();
        assert!(!is_live(root, "gone", now, minute));
        assert!(!is_running(root, "gone"));

        beat_at(root, "done", "3", Some(std::process::id()), None, now).unwrap();
        finish(root, "done", AgentState::Completed).unwrap();
        assert!(!is_live(root, "done", now, minute));
        assert!(!is_running(root, "done"));

        assert!(!is_live(root, "nobody", now, minute));
        assert!(!is_running(root, "nobody"));
        assert!(!is_live(root, "../etc", now, minute));
    }

    #[test]
    fn pids_that_address_groups_or_nothing_are_not_alive() {
        assert!(pid_alive(std::process::id()));
        assert!(!pid_alive(0));
        assert!(!pid_alive(u32::MAX));
        assert!(!pid_alive(dead_pid()));
    }

    #[test]
    fn clear_removes_every_status_and_is_harmless_twice() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        beat(root, "agent-1", "1", None, None).unwrap();
        clear(root).unwrap();
        assert!(read_all(root).unwrap().is_empty());
        clear(root).unwrap();
        let e = beat(root, "a/b", "1", None, None).unwrap_err();
        assert!(matches!(e, CoordError::InvalidAgentId { .. }), "{e:?}");
    }
}
