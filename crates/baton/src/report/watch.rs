//! `baton status --watch`, and the run on a plan as seen from beside it: whether a run holds the
//! plan (its pid), the tasks it is running, since when, and what each is doing now.
//!
//! Everything comes from files the run writes anyway — the plan, the plan's lock, the attempt
//! transcripts and records, the heartbeats of a parallel run — so a second terminal can look
//! without asking the run anything. Writes nothing but stdout.
//!
//! On a terminal the view is redrawn in place, every second and on each change; otherwise a new
//! table is printed each time the plan, the records or the run change (not for the running
//! tasks' activity alone, which would print a table per agent event).

use std::io::{BufRead, IsTerminal, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;

use crate::agent::{Dialect, StreamSummary};
use crate::config::Config;
use crate::exit::Exit;
use crate::plan::{Plan, PlanFile, Status};
use crate::report::render::{clock, human};
use crate::report::safe::terminal_line;
use crate::report::status::{self, cut};
use crate::report::wake::{Wake, Woke};
use crate::run::record::Records;

/// How often a terminal's view is redrawn when nothing changes (the elapsed times move).
const REDRAW: Duration = Duration::from_secs(1);
/// How often the files are looked at when no notification comes.
const POLL: Duration = Duration::from_millis(500);
/// How much of a running transcript is read for its latest activity.
const TAIL_BYTES: u64 = 256 * 1024;

/// A run on the plan, as the files it writes say.
#[derive(Debug, Clone, PartialEq)]
pub struct RunView {
    /// The process of `baton run` that holds the plan.
    pub pid: u32,
    pub running: Vec<RunningTask>,
}

/// A task the run has in progress.
#[derive(Debug, Clone, PartialEq)]
pub struct RunningTask {
    pub id: String,
    pub name: String,
    /// The agent session now running for it; `None` between attempts (a back-off, a landing).
    pub session: Option<u32>,
    /// The attempt as the run counts it, and the most it may have: the run's own `attempt 1/2`.
    /// The session number above counts every recorded session (stopped ones, and those before
    /// a `baton reset`), so the two differ after those.
    pub tries: (u32, u32),
    pub started: Option<Timestamp>,
    /// The latest activity in its transcript (`Edit src/x.rs`).
    pub activity: Option<String>,
    /// What the agent last said with `baton heartbeat --note` (parallel runs).
    pub note: Option<String>,
}

/// Where one plan's run keeps its files.
pub struct Place<'a> {
    pub root: &'a Path,
    pub plan: &'a Path,
    pub config: &'a Config,
}

impl Place<'_> {
    fn logs_dir(&self) -> PathBuf {
        self.root.join(&self.config.paths.logs_dir)
    }

    fn records(&self) -> Records {
        Records::new(&self.logs_dir(), self.plan)
    }
}

/// The run holding the plan now, if one does.
pub fn run_view(place: &Place<'_>, plan: &Plan) -> Option<RunView> {
    let pid = crate::run::lock::plan_holder(&place.logs_dir().join("locks"), place.plan)?;
    let records = place.records();
    let default = place.config.agent_def(place.config.default_agent()).map_or(place.config.agent.kind, |d| d.kind);
    let default = crate::agent::dialect_for(default);
    let beats = crate::coord::heartbeat::read_all(place.root).unwrap_or_default();
    let running = plan
        .tasks()
        .filter(|t| t.status == Status::InProgress)
        .map(|t| {
            let id = t.id.as_str();
            // The latest session without a record is the one still running.
            let session = records.sessions(id).last().copied().filter(|n| !records.record_path(id, *n).exists());
            let transcript = session.map(|n| records.transcript(id, n));
            let started = transcript.as_ref().and_then(|t| {
                let prompt = crate::run::attempt::prompt_path(t);
                let time = std::fs::metadata(&prompt).and_then(|m| m.modified()).or_else(|_| std::fs::metadata(t).and_then(|m| m.modified()));
                time.ok().and_then(|s| Timestamp::try_from(s).ok())
            });
            // Each transcript in the dialect of the agent that writes it.
            let activity = transcript.and_then(|t| latest_activity(&t, crate::agent::dialect_of_transcript(&t).unwrap_or(default)));
            let note = beats
                .iter()
                .filter(|b| b.task_id == id && b.state == crate::coord::AgentState::Running)
                .find_map(|b| b.note.as_deref().map(terminal_line))
                .filter(|n| !n.trim().is_empty());
            let attempt = t.attempts + 1;
            let tries = (attempt, plan.max_attempts(t, place.config.run.max_attempts).max(attempt));
            RunningTask { id: id.to_string(), name: terminal_line(&t.name), session, tries, started, activity, note }
        })
        .collect();
    Some(RunView { pid, running })
}

/// The lines about the run, after the status table: `now` for elapsed times (a live view), or
/// `None` for start times (a view printed once).
pub fn run_text(view: Option<&RunView>, now: Option<Timestamp>) -> String {
    let Some(view) = view else { return "\nno run is active on this plan\n".to_string() };
    let mut out = format!("\nrun: active · pid {}", view.pid);
    if view.running.is_empty() {
        out.push_str(" · no task running now\n");
        return out;
    }
    out.push_str(&format!(" · running {}:\n", view.running.len()));
    for t in &view.running {
        let mut parts = vec![format!("  {}  {}", t.id, t.name)];
        match t.session {
            Some(n) if n == t.tries.0 => parts.push(format!("attempt {}/{}", t.tries.0, t.tries.1)),
            // Its transcript is `baton logs PLAN TASK --attempt n`.
            Some(n) => parts.push(format!("attempt {}/{} (logs: --attempt {n})", t.tries.0, t.tries.1)),
            None => parts.push("between attempts".to_string()),
        }
        match (t.started, now) {
            (Some(s), Some(now)) => parts.push(human(Duration::try_from(now.duration_since(s)).unwrap_or_default())),
            (Some(s), None) => parts.push(format!("since {}", clock(s))),
            (None, _) => {}
        }
        if let Some(a) = &t.activity {
            parts.push(a.clone());
        }
        if let Some(n) = &t.note {
            parts.push(format!("note: {n}"));
        }
        out.push_str(&parts.join(" · "));
        out.push('\n');
    }
    out
}

/// The run for `status --json`: `{"pid", "running": [{"id", "name", "attempt", "started_at",
/// "activity", "note"}]}`, or `null` when no run holds the plan.
pub fn run_json(view: Option<&RunView>) -> serde_json::Value {
    let Some(view) = view else { return serde_json::Value::Null };
    let running: Vec<serde_json::Value> = view
        .running
        .iter()
        .map(|t| {
            serde_json::json!({
                "id": t.id,
                "name": t.name,
                "attempt": t.session,
                "started_at": t.started.map(|s| s.to_string()),
                "activity": t.activity,
                "note": t.note,
            })
        })
        .collect();
    serde_json::json!({"pid": view.pid, "running": running})
}

/// The last thing the agent did, from the end of its transcript.
fn latest_activity(transcript: &Path, dialect: &dyn Dialect) -> Option<String> {
    let mut file = crate::fsx::open_regular(transcript).ok()?;
    let len = file.metadata().ok()?.len();
    let from = len.saturating_sub(TAIL_BYTES);
    file.seek(SeekFrom::Start(from)).ok()?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    // A tail starts inside a line; a line still being written is not complete either.
    let text = if from > 0 { text.split_once('\n').map_or("", |(_, rest)| rest) } else { &text };
    let mut summary = StreamSummary::new();
    if from > 0 {
        // The session's first event says where the agent works: paths are shown relative to it.
        let mut first = String::new();
        if let Ok(f) = crate::fsx::open_regular(transcript) {
            let _ = std::io::BufReader::new(f.take(64 * 1024)).read_line(&mut first);
        }
        for ev in dialect.parse_line(first.trim_end()) {
            summary.observe(&ev);
        }
    }
    for line in text.lines() {
        for ev in dialect.parse_line(line) {
            summary.observe(&ev);
        }
    }
    summary.last_activity()
}

/// One look at the plan and its run.
struct Look {
    table: String,
    run: Option<RunView>,
}

impl Look {
    fn take(place: &Place<'_>, width: usize) -> Look {
        match PlanFile::load(place.plan) {
            Ok(file) => {
                let plan = file.plan();
                let records = place.records();
                let budget = place.config.budget.for_plan(plan).map(|(b, _)| b);
                // The history as it grows; the records when it cannot be read.
                let (totals, spending) = match status::from_history(place.root, place.plan, &records, budget) {
                    Ok(Some((totals, spending))) => (totals, Some(spending.of_agents(&place.config.agent_names()))),
                    _ => (records.usage(plan.tasks().map(|t| t.id.to_string())), None),
                };
                let shown = place.plan.display().to_string();
                Look {
                    table: status::table(plan, &shown, place.config.run.max_attempts, width, &totals, spending.as_ref()),
                    run: run_view(place, plan),
                }
            }
            // Being edited, or replaced: say so and keep watching.
            Err(e) => Look { table: format!("{}\n", e.render()), run: None },
        }
    }

    /// What a printed table changes with: not the running tasks' activity or times.
    fn key(&self) -> String {
        let run = self.run.as_ref().map(|r| (r.pid, r.running.iter().map(|t| (&t.id, t.session)).collect::<Vec<_>>()));
        format!("{}\n{run:?}", self.table)
    }

    fn text(&self, now: Option<Timestamp>) -> String {
        format!("{}{}", self.table, run_text(self.run.as_ref(), now))
    }
}

/// Watches the plan until Ctrl+C (exit 0).
pub fn watch(place: &Place<'_>, width: usize) -> Exit {
    let records = place.records();
    let plan_dir = match place.plan.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let wake = Wake::new(&[
        (plan_dir, false),
        (records.dir().to_path_buf(), true),
        (place.logs_dir().join("locks"), false),
        (place.root.join(crate::coord::heartbeat::STATUS_DIR), false),
    ]);
    let tty = std::io::stdout().is_terminal();
    let mut shown = None;
    let mut first = true;
    loop {
        if tty {
            let (rows, cols) = terminal_size();
            let look = Look::take(place, usize::from(cols));
            let text = format!("{}\nwatching · {} · Ctrl+C to quit", look.text(Some(Timestamp::now())), clock(Timestamp::now()));
            crate::out!("{}", frame(&text, rows, cols, first));
        } else {
            let look = Look::take(place, width);
            let key = look.key();
            if shown.as_ref() != Some(&key) {
                crate::out!("{}{}", if first { "" } else { "\n" }, look.text(None));
                shown = Some(key);
            }
        }
        first = false;
        if super::out::reader_gone() {
            return Exit::Completed;
        }
        if wake.wait(if tty { REDRAW } else { POLL }) == Woke::Interrupted {
            if tty {
                crate::outln!();
            }
            return Exit::Completed;
        }
    }
}

/// `text` drawn over the previous frame from the top of the screen: each line cut to the width
/// and cleared to its end, at most a screenful, the rest of the screen cleared.
fn frame(text: &str, rows: u16, cols: u16, first: bool) -> String {
    let mut out = String::from(if first { "\x1b[2J\x1b[H" } else { "\x1b[H" });
    let lines: Vec<&str> = text.lines().collect();
    let room = usize::from(rows.max(2)) - 1;
    let (shown, hidden) = if lines.len() > room { (&lines[..room - 1], lines.len() - (room - 1)) } else { (&lines[..], 0) };
    let mut body: Vec<String> = shown.iter().map(|l| cut(l, usize::from(cols))).collect();
    if hidden > 0 {
        body.push(cut(&format!("… {hidden} more lines (a taller terminal shows them)"), usize::from(cols)));
    }
    out.push_str(&body.join("\x1b[K\n"));
    out.push_str("\x1b[K\x1b[J");
    out
}

/// Rows and columns of the terminal on stdout; a common size when it will not say.
fn terminal_size() -> (u16, u16) {
    // SAFETY: TIOCGWINSZ writes one `winsize` into the struct we own; on failure it writes
    // nothing and the zeroes below stand.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0;
    match (ok, ws.ws_row, ws.ws_col) {
        (true, rows, cols) if rows > 0 && cols > 0 => (rows, cols),
        _ => (24, 80),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(session: Option<u32>, activity: Option<&str>) -> RunningTask {
        RunningTask {
            id: "1.2".into(),
            name: "Members endpoint".into(),
            session,
            tries: (2, 3),
            started: Some(Timestamp::UNIX_EPOCH),
            activity: activity.map(str::to_string),
            note: None,
        }
    }

    #[test]
    fn the_run_says_its_pid_and_what_each_running_task_does() {
        assert_eq!(run_text(None, None), "\nno run is active on this plan\n");
        let idle = RunView { pid: 42, running: vec![] };
        assert_eq!(run_text(Some(&idle), None), "\nrun: active · pid 42 · no task running now\n");
        let view = RunView { pid: 42, running: vec![task(Some(2), Some("Edit src/x.rs")), task(None, None)] };
        let later = Timestamp::UNIX_EPOCH.checked_add(jiff::SignedDuration::from_secs(65)).unwrap();
        let live = run_text(Some(&view), Some(later));
        assert_eq!(
            live,
            "\nrun: active · pid 42 · running 2:\n  1.2  Members endpoint · attempt 2/3 · 1m 05s · Edit src/x.rs\n  1.2  Members endpoint · between attempts · 1m 05s\n"
        );
        assert!(run_text(Some(&view), None).contains("attempt 2/3 · since "), "a printed view gives the start time");
        // After a stopped attempt or a `baton reset` the session number runs ahead of the run's
        // count: the line says the run's count, and where the transcript is.
        let reset = RunView { pid: 42, running: vec![task(Some(4), None)] };
        assert!(run_text(Some(&reset), None).contains("· attempt 2/3 (logs: --attempt 4) · since "), "{}", run_text(Some(&reset), None));
        let json = run_json(Some(&view));
        assert_eq!((json["pid"].as_u64(), json["running"][0]["attempt"].as_u64()), (Some(42), Some(2)));
        assert_eq!(json["running"][0]["started_at"], "1970-01-01T00:00:00Z");
        assert_eq!(json["running"][1]["attempt"], serde_json::Value::Null);
        assert_eq!(run_json(None), serde_json::Value::Null);
    }

    #[test]
    fn a_running_task_shows_its_attempt_its_latest_activity_and_its_note() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        let plan_path = root.join("plan.yaml");
        let text = "meta:\n  name: P\nsections:\n- id: s\n  tasks:\n  - id: '1.1'\n    name: One\n    status: in_progress\n  - id: '1.2'\n    name: Two\n    status: pending\n";
        std::fs::write(&plan_path, text).unwrap();
        let plan = crate::plan::parse_plan(text).unwrap();
        let config = Config::default();
        let place = Place { root, plan: &plan_path, config: &config };
        assert_eq!(run_view(&place, &plan), None, "no run holds the plan");

        let _lock = crate::run::lock::PlanLock::acquire(&place.logs_dir().join("locks"), &plan_path).unwrap();
        let records = place.records();
        std::fs::create_dir_all(records.task_dir("1.1")).unwrap();
        // Session 1 ended (it has its record); session 2 is the one running.
        std::fs::write(records.transcript("1.1", 1), "").unwrap();
        std::fs::write(records.record_path("1.1", 1), "{}").unwrap();
        let init = serde_json::json!({"type": "system", "subtype": "init", "session_id": "s", "cwd": "/w"});
        let edit = serde_json::json!({"type": "assistant", "message": {"content": [
            {"type": "tool_use", "id": "t1", "name": "Edit", "input": {"file_path": "/w/src/x.rs"}}]}});
        std::fs::write(records.transcript("1.1", 2), format!("{init}\n{edit}\n{{\"type\": \"assist")).unwrap();
        std::fs::write(crate::run::attempt::prompt_path(&records.transcript("1.1", 2)), "the prompt").unwrap();
        crate::coord::heartbeat::beat(root, "agent-1", "1.1", None, Some("writing tests")).unwrap();

        let view = run_view(&place, &plan).expect("the lock's holder is this test");
        assert_eq!(view.pid, std::process::id());
        let [t] = &view.running[..] else { panic!("one task runs: {view:?}") };
        assert_eq!(
            (t.id.as_str(), t.session, t.activity.as_deref(), t.note.as_deref()),
            ("1.1", Some(2), Some("Edit src/x.rs"), Some("writing tests"))
        );
        assert_eq!(t.tries, (1, 3), "no attempt spent yet in the plan: the run's attempt 1 of the default 3");
        assert!(t.started.is_some_and(|s| s <= Timestamp::now()));
        // A transcript longer than the tail read still shows paths from where the agent works.
        let padding = serde_json::json!({"type": "assistant", "message": {"content": [{"type": "text", "text": "x".repeat(1000)}]}});
        let mut long = format!("{init}\n");
        for _ in 0..300 {
            long.push_str(&format!("{padding}\n"));
        }
        long.push_str(&format!("{edit}\n"));
        std::fs::write(records.transcript("1.1", 2), long).unwrap();
        let dialect = crate::agent::dialect_for(config.agent.kind);
        assert_eq!(latest_activity(&records.transcript("1.1", 2), dialect).as_deref(), Some("Edit src/x.rs"));
    }

    #[test]
    fn a_frame_fits_the_screen_and_clears_what_the_last_one_left() {
        let text = "a long first line\nb\nc\nd\ne";
        let f = frame(text, 4, 6, false);
        assert_eq!(f, "\x1b[Ha lon…\x1b[K\nb\x1b[K\n… 3 m…\x1b[K\x1b[J");
        assert!(frame("x", 24, 80, true).starts_with("\x1b[2J\x1b[H"));
    }
}
