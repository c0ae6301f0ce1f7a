use std::time::Duration;

use super::sink::{RunInfo, RunKind, StoreSink};
use super::*;
use crate::plan::Status;
use crate::report::event::{AttemptOutcome, EventKind, Note, PipelineNote, Reporter, WaitReason};
use crate::report::status::Counts;

fn info(root: &Path, plan: &str) -> RunInfo {
    RunInfo { kind: RunKind::Run, root: root.to_path_buf(), plan: plan.into(), command: "baton run plan.yaml".into() }
}

fn started(task: &str, attempt: u32, session: u32) -> EventKind {
    EventKind::AttemptStarted {
        task: task.into(),
        name: format!("Task {task}"),
        attempt,
        max_attempts: 3,
        session,
        model: Some("sonnet".into()),
        transcript: format!(".baton/logs/plan/{task}/attempt-{session}.jsonl").into(),
        max_budget_usd: None,
        agent: Some("claude".into()),
    }
}

fn ended(task: &str, outcome: AttemptOutcome, cost: Option<f64>) -> EventKind {
    EventKind::AttemptEnded { task: task.into(), outcome, duration: Duration::from_millis(1500), cost_usd: cost }
}

/// A sink that keeps the warnings told, and what it keeps them in.
fn warnings_seen() -> (Box<dyn crate::report::event::Sink>, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    struct Seen(std::sync::Arc<std::sync::Mutex<Vec<String>>>);
    impl crate::report::event::Sink for Seen {
        fn event(&mut self, ev: &crate::report::event::RunEvent) {
            if let EventKind::Warning { text } = &ev.kind {
                self.0.lock().unwrap().push(text.clone());
            }
        }
    }
    let kept = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    (Box::new(Seen(kept.clone())), kept)
}

fn agent_started(task: &str) -> EventKind {
    EventKind::Note(Note::AgentStarted { task: task.into(), agent: "Claude".into(), named_agent: None, pid: 4242, group: 4242, cwd: "/w".into(), job: None })
}

/// Makes the runs of the store's plans look like their baton was killed: a pid no process has.
fn kill_runs(root: &Path) {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    child.wait().unwrap();
    Store::open(root).unwrap().conn().execute("UPDATE runs SET pid = ?1 WHERE ending IS NULL", [child.id()]).unwrap();
}

fn reporter_with(sink: StoreSink) -> Reporter {
    Reporter::new(vec![Box::new(sink)])
}

#[test]
fn a_new_store_is_made_at_the_current_schema_in_wal_mode_and_kept_out_of_git() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(d.path()).unwrap();
    assert_eq!(s.version().unwrap(), schema::MIGRATIONS.len() as i64);
    let mode: String = s.conn().pragma_query_value(None, "journal_mode", |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    assert!(d.path().join(".baton/.gitignore").is_file());
    drop(s);
    // Opening again changes nothing.
    assert_eq!(Store::open(d.path()).unwrap().version().unwrap(), schema::MIGRATIONS.len() as i64);
    assert!(Store::open_existing(tempfile::tempdir().unwrap().path()).unwrap().is_none());
}

#[test]
fn a_store_of_an_older_schema_is_brought_up_to_date_keeping_its_rows() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join(".baton")).unwrap();
    {
        // A store as the first schema left it, with a run in it.
        let c = rusqlite::Connection::open(path(d.path())).unwrap();
        c.execute_batch(schema::MIGRATIONS[0]).unwrap();
        c.pragma_update(None, "user_version", 1).unwrap();
        c.execute("INSERT INTO runs (plan, kind, command, started_at, ending, cost_usd) VALUES ('p.yaml', 'run', 'baton run p.yaml', '2026-11-30T10:00:00.000000000Z', 'finished', 0.5)", []).unwrap();
    }
    let s = Store::open(d.path()).unwrap();
    assert_eq!(s.version().unwrap(), schema::MIGRATIONS.len() as i64);
    let runs = s.runs(Some("p.yaml"), 10).unwrap();
    assert_eq!((runs.len(), runs[0].cost_usd, runs[0].message.clone()), (1, 0.5, None));
}

#[test]
fn a_store_from_a_newer_baton_or_a_damaged_file_is_refused_and_left_as_it_is() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(d.path()).unwrap();
    s.conn().pragma_update(None, "user_version", 99).unwrap();
    drop(s);
    let e = Store::open(d.path()).unwrap_err();
    assert!(matches!(e, StoreError::Newer { found: 99, .. }), "{e}");
    assert!(e.help().contains("newer baton"));

    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join(".baton")).unwrap();
    let junk = "not a database\n".repeat(300);
    std::fs::write(path(d.path()), &junk).unwrap();
    let e = Store::open(d.path()).unwrap_err();
    assert!(e.to_string().contains(".baton/baton.db"), "{e}");
    assert!(e.help().contains("move it aside"), "{}", e.help());
    assert_eq!(std::fs::read_to_string(path(d.path())).unwrap(), junk);
}

#[test]
fn the_sink_records_a_run_its_attempts_waits_and_ending_from_the_events() {
    let d = tempfile::tempdir().unwrap();
    let sink = StoreSink::open(Store::open(d.path()).unwrap(), info(d.path(), "plan.yaml"), None).unwrap();
    let r = reporter_with(sink);
    r.emit(EventKind::Banner { plan: "My plan".into(), agent: "Claude".into(), binary: "claude".into(), counts: Counts::default(), parallel: None, commit: true, others: Vec::new() });
    r.emit(started("1.1", 1, 1));
    r.emit(ended("1.1", AttemptOutcome::Failed { message: "tests fail".into() }, Some(0.02)));
    r.emit(EventKind::Waiting { reason: WaitReason::Retry { task: "1.1".into(), attempt: 1, max: 3 }, until: jiff::Timestamp::now() });
    r.emit(started("1.1", 2, 2));
    r.emit(ended("1.1", AttemptOutcome::Reported { status: Status::Completed, from_file: true }, Some(0.03)));
    let record = crate::run::record::AttemptRecord {
        task: "1.1".into(),
        session: 2,
        attempt: Some(2),
        outcome: "verified".into(),
        cost_usd: Some(0.03),
        input_tokens: Some(1200),
        output_tokens: Some(340),
        cache_read_tokens: Some(9000),
        turns: Some(7),
        model: Some("claude-sonnet-4-5".into()),
        checks: vec![crate::run::record::CheckRecord {
            command: "cargo test".into(),
            from: "config".into(),
            exit: Some(0),
            signal: None,
            timed_out: false,
            passed: true,
            duration_seconds: 2.0,
            output: String::new(),
            tail: String::new(),
        }],
        review: Some(crate::run::record::ReviewRecord {
            verdict: Some("PASS".into()),
            findings: vec![],
            problem: None,
            limit_resets_at: None,
            sessions: 1,
            model: None,
            cost_usd: Some(0.005),
            transcripts: vec![],
        }),
        ..Default::default()
    };
    r.emit(EventKind::AttemptRecorded { task: "1.1".into(), record: Box::new(record) });
    r.emit(EventKind::Note(Note::StopRequested { running: 0 }));
    r.emit(EventKind::Exit { code: 4 });

    let s = Store::open(d.path()).unwrap();
    let runs = s.runs(Some("plan.yaml"), 10).unwrap();
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!((run.plan_name.as_deref(), run.exit_code, run.ending.as_deref(), run.stopped_by.as_deref()), (Some("My plan"), Some(4), Some("stopped"), Some("stop file")));
    assert!((run.cost_usd - 0.055).abs() < 1e-12, "the attempts and the reviewer: {}", run.cost_usd);
    let a: Vec<(&str, Option<i64>, Option<f64>)> = run.attempts.iter().map(|a| (a.outcome.as_str(), a.attempt, a.cost_usd)).collect();
    assert_eq!(a, [("failed", Some(1), Some(0.02)), ("verified", Some(2), Some(0.03))]);
    let second = &run.attempts[1];
    assert_eq!((second.input_tokens, second.output_tokens, second.cache_read_tokens, second.turns), (Some(1200), Some(340), Some(9000), Some(7)));
    assert_eq!((second.verdict.as_deref(), second.review_cost_usd, second.model.as_deref()), (Some("PASS"), Some(0.005), Some("claude-sonnet-4-5")));
    assert_eq!(run.attempts[0].message.as_deref(), Some("tests fail"));
    assert_eq!(run.attempts[0].transcript.as_deref(), Some(".baton/logs/plan/1.1/attempt-1.jsonl"));
    let checks = s.task_attempts("plan.yaml", "1.1").unwrap()[1].checks.clone();
    assert_eq!(checks.len(), 1);
    assert!(checks[0].passed);
    let waits: i64 = s.conn().query_row("SELECT COUNT(*) FROM waits WHERE kind = 'retry' AND task = '1.1'", [], |r| r.get(0)).unwrap();
    assert_eq!(waits, 1);
    assert!((s.plan_spent("plan.yaml").unwrap() - 0.055).abs() < 1e-12);
    let costs = s.attempt_costs("plan.yaml").unwrap();
    assert_eq!(costs.len(), 2);
    assert!((costs[0] - 0.02).abs() < 1e-12 && (costs[1] - 0.035).abs() < 1e-12, "with the reviewer's: {costs:?}");
    let usage = s.task_usage("plan.yaml").unwrap();
    assert_eq!(usage["1.1"].sessions, 2);
    assert_eq!(usage["1.1"].last_outcome.as_deref(), Some("verified"));
}

#[test]
fn sessions_that_did_not_count_keep_no_attempt_number_and_no_place_in_the_estimate() {
    let d = tempfile::tempdir().unwrap();
    let r = reporter_with(StoreSink::open(Store::open(d.path()).unwrap(), info(d.path(), "p.yaml"), None).unwrap());
    r.emit(started("a", 1, 1));
    r.emit(ended("a", AttemptOutcome::Limited, Some(0.0)));
    r.emit(started("a", 1, 2));
    r.emit(ended("a", AttemptOutcome::Interrupted, None));
    let s = Store::open(d.path()).unwrap();
    let rows = s.task_attempts("p.yaml", "a").unwrap();
    assert!(rows.iter().all(|a| a.attempt.is_none()), "{rows:?}");
    assert!(s.attempt_costs("p.yaml").unwrap().is_empty());
}

#[test]
fn the_next_start_closes_what_a_killed_run_left_open_on_its_plan_only() {
    let d = tempfile::tempdir().unwrap();
    for plan in ["a.yaml", "b.yaml"] {
        let r = reporter_with(StoreSink::open(Store::open(d.path()).unwrap(), info(d.path(), plan), None).unwrap());
        r.emit(started("1", 1, 1));
        r.emit(ended("1", AttemptOutcome::Reported { status: Status::Completed, from_file: true }, Some(0.5)));
        r.emit(started("2", 1, 1));
        r.emit(agent_started("2"));
        // Killed here: no end, no exit.
    }
    // Their baton is gone: a pid that no longer runs (a child already reaped).
    let mut child = std::process::Command::new("true").spawn().unwrap();
    child.wait().unwrap();
    Store::open(d.path()).unwrap().conn().execute("UPDATE runs SET pid = ?1", [child.id()]).unwrap();
    // A new run of a.yaml.
    let _next = StoreSink::open(Store::open(d.path()).unwrap(), info(d.path(), "a.yaml"), None).unwrap();
    let s = Store::open(d.path()).unwrap();
    let a = s.runs(Some("a.yaml"), 10).unwrap();
    assert_eq!(a.len(), 2);
    assert_eq!(a[0].ending, None, "the new run is open");
    assert_eq!(a[1].ending.as_deref(), Some("killed"));
    assert!((a[1].cost_usd - 1.0).abs() < 1e-12, "what it spent and what its killed session is charged: {}", a[1].cost_usd);
    assert_eq!(a[1].attempts[1].outcome, "interrupted");
    assert!(a[1].attempts[1].message.as_deref().unwrap().contains("killed"));
    let b = s.runs(Some("b.yaml"), 10).unwrap();
    assert_eq!((b[0].ending.as_deref(), b[0].attempts[1].outcome.as_str()), (None, "running"), "another plan's run is not this start's to close");
    // With recorded costs, a session killed before it said its cost is charged their median.
    assert_eq!(a[1].attempts[1].cost_usd, None);
    assert!((s.plan_spent("a.yaml").unwrap() - 1.0).abs() < 1e-12, "0.5 spent and 0.5 charged: {}", s.plan_spent("a.yaml").unwrap());
}

#[test]
fn sessions_killed_before_any_cost_was_known_are_charged_once_one_is_and_unstarted_ones_never() {
    let d = tempfile::tempdir().unwrap();
    {
        // Killed during its first session, before any cost was known; and once more between
        // taking a session number and starting the agent.
        let r = reporter_with(StoreSink::open(Store::open(d.path()).unwrap(), info(d.path(), "p.yaml"), None).unwrap());
        r.emit(started("a", 1, 1));
        r.emit(agent_started("a"));
        r.emit(started("b", 1, 1));
    }
    kill_runs(d.path());
    {
        let r = reporter_with(StoreSink::open(Store::open(d.path()).unwrap(), info(d.path(), "p.yaml"), None).unwrap());
        assert_eq!(Store::open(d.path()).unwrap().plan_spent("p.yaml").unwrap(), 0.0, "nothing to go by yet");
        r.emit(started("c", 1, 1));
        r.emit(agent_started("c"));
        r.emit(ended("c", AttemptOutcome::Reported { status: Status::Completed, from_file: true }, Some(0.3)));
        r.emit(EventKind::Exit { code: 0 });
    }
    // The next start: a cost is known now, and the killed session is charged it; the session
    // whose agent never started is not.
    let _next = StoreSink::open(Store::open(d.path()).unwrap(), info(d.path(), "p.yaml"), None).unwrap();
    let s = Store::open(d.path()).unwrap();
    assert!((s.plan_spent("p.yaml").unwrap() - 0.6).abs() < 1e-12, "{}", s.plan_spent("p.yaml").unwrap());
}

#[test]
fn attempt_records_on_disk_are_imported_once_with_their_checks_and_reviews() {
    let d = tempfile::tempdir().unwrap();
    let records = crate::run::record::Records::new(&d.path().join(".baton/logs"), Path::new("plan.yaml"));
    for (task, session, cost) in [("1.1", 1, 0.1), ("1.1", 2, 0.2), ("a/b", 1, 0.3)] {
        std::fs::create_dir_all(records.task_dir(task)).unwrap();
        std::fs::write(records.transcript(task, session), "").unwrap();
        records
            .write(&crate::run::record::AttemptRecord {
                task: task.into(),
                session,
                attempt: Some(session),
                started_at: format!("2026-11-2{session}T10:00:00Z"),
                ended_at: format!("2026-11-2{session}T10:01:00Z"),
                outcome: "completed".into(),
                cost_usd: Some(cost),
                ..Default::default()
            })
            .unwrap();
    }
    let mut s = Store::open(d.path()).unwrap();
    assert_eq!(s.import_records("plan.yaml", &records, d.path()).unwrap(), 3);
    assert_eq!(s.import_records("plan.yaml", &records, d.path()).unwrap(), 0, "once");
    let runs = s.runs(Some("plan.yaml"), 10).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!((runs[0].kind.as_str(), runs[0].started_at.as_str()), ("imported", "2026-11-21T10:00:00.000000000Z"));
    let tasks: Vec<&str> = runs[0].attempts.iter().map(|a| a.task.as_str()).collect();
    assert_eq!(tasks, ["1.1", "a/b", "1.1"], "in the order they started");
    assert!((s.plan_spent("plan.yaml").unwrap() - 0.6).abs() < 1e-12);
    // A plan without records is marked too, and never scanned again.
    let other = crate::run::record::Records::new(&d.path().join(".baton/logs"), Path::new("other.yaml"));
    assert_eq!(s.import_records("other.yaml", &other, d.path()).unwrap(), 0);
    let marked: i64 = s.conn().query_row("SELECT COUNT(*) FROM imported", [], |r| r.get(0)).unwrap();
    assert_eq!(marked, 2);
}

#[test]
fn writers_in_several_processes_worth_of_connections_lose_no_row() {
    // They also make the file together: the first to switch it to WAL wins, the others wait.
    let d = tempfile::tempdir().unwrap();
    let threads: Vec<_> = (0..4)
        .map(|n| {
            let root = d.path().to_path_buf();
            std::thread::spawn(move || {
                let plan = format!("plan-{n}.yaml");
                let r = reporter_with(StoreSink::open(Store::open(&root).unwrap(), info(&root, &plan), None).unwrap());
                for i in 0..50u32 {
                    let task = format!("t{i}");
                    r.emit(started(&task, 1, 1));
                    r.emit(ended(&task, AttemptOutcome::Reported { status: Status::Completed, from_file: true }, Some(0.01)));
                }
                r.emit(EventKind::Exit { code: 0 });
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let s = Store::open(d.path()).unwrap();
    let n: i64 = s.conn().query_row("SELECT COUNT(*) FROM attempts WHERE outcome = 'completed'", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 200);
}

#[test]
fn a_write_that_fails_is_told_once_as_a_warning_and_the_run_goes_on() {
    let d = tempfile::tempdir().unwrap();
    let sink = StoreSink::open(Store::open(d.path()).unwrap(), info(d.path(), "p.yaml"), None).unwrap();
    // Another process takes the runs table away underneath.
    Store::open(d.path()).unwrap().conn().execute_batch("DROP TABLE waits;").unwrap();
    let (seen, warnings) = warnings_seen();
    let r = Reporter::new(vec![Box::new(sink), seen]);
    for _ in 0..3 {
        r.emit(EventKind::Waiting { reason: WaitReason::Throttling { message: "429".into() }, until: jiff::Timestamp::now() });
    }
    let told = warnings.lock().unwrap().clone();
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(told[0].contains("not recorded") && told[0].contains("baton.db"), "{}", told[0]);
}

#[test]
fn records_the_store_has_from_another_plan_of_the_same_name_are_not_imported() {
    // a/plan.yaml and b/plan.yaml share `.baton/logs/plan/`.
    let d = tempfile::tempdir().unwrap();
    let logs = d.path().join(".baton/logs");
    let records = crate::run::record::Records::new(&logs, Path::new("a/plan.yaml"));
    {
        // A run of a/plan.yaml with the store: its record is written as it goes.
        let r = reporter_with(StoreSink::open(Store::open(d.path()).unwrap(), info(d.path(), "a/plan.yaml"), Some(&records)).unwrap());
        r.emit(EventKind::AttemptStarted { task: "1".into(), name: "A".into(), attempt: 1, max_attempts: 3, session: 1, model: None, transcript: records.transcript("1", 1), max_budget_usd: None, agent: None });
        std::fs::create_dir_all(records.task_dir("1")).unwrap();
        std::fs::write(records.transcript("1", 1), "").unwrap();
        records.write(&crate::run::record::AttemptRecord { task: "1".into(), session: 1, attempt: Some(1), outcome: "completed".into(), cost_usd: Some(0.4), ..Default::default() }).unwrap();
        r.emit(ended("1", AttemptOutcome::Reported { status: Status::Completed, from_file: true }, Some(0.4)));
    }
    let mut s = Store::open(d.path()).unwrap();
    let b = crate::run::record::Records::new(&logs, Path::new("b/plan.yaml"));
    assert_eq!(s.import_records("b/plan.yaml", &b, d.path()).unwrap(), 0);
    assert_eq!(s.plan_spent("b/plan.yaml").unwrap(), 0.0);
    assert!((s.plan_spent("a/plan.yaml").unwrap() - 0.4).abs() < 1e-12);
}

#[test]
fn times_are_written_so_that_they_sort_as_text() {
    let a: jiff::Timestamp = "2026-12-01T09:33:51.729Z".parse().unwrap();
    let b: jiff::Timestamp = "2026-12-01T09:33:51.7291Z".parse().unwrap();
    let c: jiff::Timestamp = "2026-12-01T09:33:52Z".parse().unwrap();
    let texts = [stamp(a), stamp(b), stamp(c)];
    let mut sorted = texts.clone();
    sorted.sort();
    assert_eq!(sorted, texts);
    assert_eq!(stamp_text("2026-12-01T09:33:51.7Z"), "2026-12-01T09:33:51.700000000Z");
    assert_eq!(stamp_text(""), "");
}

#[test]
fn a_plan_named_another_way_has_the_same_key() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    std::fs::create_dir_all(root.join(".claude/plans")).unwrap();
    std::fs::write(root.join(".claude/plans/p.yaml"), "x").unwrap();
    std::os::unix::fs::symlink(root.join(".claude/plans/p.yaml"), root.join("link.yaml")).unwrap();
    for name in [".claude/plans/p.yaml", ".claude/plans/../plans/p.yaml", "link.yaml", "./.claude//plans/p.yaml"] {
        assert_eq!(plan_key(root, &root.join(name)), ".claude/plans/p.yaml", "{name}");
    }
    // A plan that is not there (a deleted one, named to `history`) keeps its spelling.
    assert_eq!(plan_key(root, &root.join("gone.yaml")), "gone.yaml");
}

#[test]
fn a_symlink_in_place_of_the_store_is_refused_and_nothing_is_made_where_it_points() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join(".baton")).unwrap();
    let target = d.path().join("elsewhere.db");
    std::os::unix::fs::symlink(&target, path(d.path())).unwrap();
    let e = Store::open(d.path()).unwrap_err();
    assert!(e.to_string().contains("is a symbolic link"), "{e}");
    assert!(matches!(Store::open_existing(d.path()), Err(StoreError::NotAFile { .. })), "a dangling link is there too");
    assert!(!target.exists());
}

#[test]
fn a_store_locked_by_another_process_delays_the_writes_and_loses_none() {
    let d = tempfile::tempdir().unwrap();
    let sink = StoreSink::open(Store::open(d.path()).unwrap(), info(d.path(), "p.yaml"), None).unwrap();
    let (seen, warnings) = warnings_seen();
    let r = Reporter::new(vec![Box::new(sink), seen]);
    r.emit(started("a", 1, 1));
    // Another process takes the write lock and keeps it.
    let locker = rusqlite::Connection::open(path(d.path())).unwrap();
    locker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let waited = std::time::Instant::now();
    r.emit(ended("a", AttemptOutcome::Reported { status: Status::Completed, from_file: true }, Some(0.1)));
    r.emit(started("b", 1, 1));
    r.emit(ended("b", AttemptOutcome::Failed { message: "no".into() }, Some(0.2)));
    // The run is not held up for long (the writes wait in the sink), and is told once.
    assert!(waited.elapsed() < Duration::from_secs(5), "{:?}", waited.elapsed());
    let told = warnings.lock().unwrap().clone();
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(told[0].contains("write lock") && told[0].contains("not damaged"), "{}", told[0]);
    locker.execute_batch("COMMIT").unwrap();
    r.emit(EventKind::Exit { code: 0 });
    let s = Store::open(d.path()).unwrap();
    let rows: Vec<(String, String, Option<f64>)> = s.runs(Some("p.yaml"), 1).unwrap()[0].attempts.iter().map(|a| (a.task.clone(), a.outcome.clone(), a.cost_usd)).collect();
    assert_eq!(rows, [("a".to_string(), "completed".to_string(), Some(0.1)), ("b".into(), "failed".into(), Some(0.2))]);
    assert_eq!(s.runs(Some("p.yaml"), 1).unwrap()[0].exit_code, Some(0));
}

#[test]
fn a_run_whose_baton_still_runs_is_not_closed_by_another_start() {
    let d = tempfile::tempdir().unwrap();
    // This process is a baton that still runs (the test binary's name says `baton`).
    let live = reporter_with(StoreSink::open(Store::open(d.path()).unwrap(), info(d.path(), "p.yaml"), None).unwrap());
    live.emit(started("a", 1, 1));
    let _other = StoreSink::open(Store::open(d.path()).unwrap(), info(d.path(), "p.yaml"), None).unwrap();
    let s = Store::open(d.path()).unwrap();
    let runs = s.runs(Some("p.yaml"), 10).unwrap();
    assert!(runs.iter().all(|r| r.ending.is_none()), "{runs:#?}");
    assert_eq!(runs[1].attempts[0].outcome, "running");
}

#[test]
fn a_linked_worktree_shares_the_main_checkouts_store() {
    let d = tempfile::tempdir().unwrap();
    let main = d.path().join("main");
    let run = |args: &[&str], cwd: &Path| {
        let ok = std::process::Command::new("git").args(args).current_dir(cwd).env("GIT_CONFIG_GLOBAL", "/dev/null").output().unwrap();
        assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    };
    std::fs::create_dir_all(&main).unwrap();
    run(&["init", "-q"], &main);
    run(&["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "x"], &main);
    run(&["worktree", "add", "-q", "../linked"], &main);
    let linked = d.path().join("linked");
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap();
    assert_eq!(canon(&home(&linked)), canon(&main));
    assert_eq!(home(&main), main);
    assert_eq!(home(d.path()), d.path(), "no repository: the folder itself");
}

#[test]
fn the_pipeline_records_its_items_and_planning_sessions_under_their_plans() {
    let d = tempfile::tempdir().unwrap();
    let info = RunInfo { kind: RunKind::Pipeline, root: d.path().to_path_buf(), plan: String::new(), command: "baton pipeline".into() };
    let r = reporter_with(StoreSink::open(Store::open(d.path()).unwrap(), info, None).unwrap());
    let item = std::path::PathBuf::from("docs/feature-backlog/x.md");
    let plan = std::path::PathBuf::from(".claude/plans/x.yaml");
    r.emit(EventKind::Note(Note::Pipeline(PipelineNote::PickedUp { kind: "feature".into(), item: d.path().join(&item) })));
    r.emit(EventKind::Note(Note::Pipeline(PipelineNote::Asking { item: item.clone(), design: "docs/plans/x.md".into(), plan: plan.clone() })));
    r.emit(started("plan:x", 1, 1));
    r.emit(ended("plan:x", AttemptOutcome::Planned { written: true }, Some(0.07)));
    r.emit(EventKind::Note(Note::Pipeline(PipelineNote::Archived { item: item.clone(), elapsed: Duration::from_secs(3), dest: "done".into() })));
    r.emit(EventKind::Exit { code: 0 });
    let s = Store::open(d.path()).unwrap();
    assert!((s.plan_spent(".claude/plans/x.yaml").unwrap() - 0.07).abs() < 1e-12, "the planning session is the plan's spending");
    assert!(s.attempt_costs(".claude/plans/x.yaml").unwrap().is_empty(), "and no attempt of a task");
    let row: (String, String, String) = s.conn().query_row("SELECT item, plan, outcome FROM pipeline_items", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap();
    assert_eq!(row, ("docs/feature-backlog/x.md".to_string(), ".claude/plans/x.yaml".to_string(), "archived".to_string()));
}
