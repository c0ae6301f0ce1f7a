//! Benchmark (not a test) of the run-history store: what its sink costs an attempt, how big
//! the database grows, and how long the queries baton makes at every start and `status` take.
//!
//! Drives a real [`StoreSink`] on a real `.baton/baton.db` in a temporary directory on disk (WAL,
//! `synchronous = NORMAL`, as `Store::open` makes it) with the events a run sends it: the
//! banner, then per attempt `AttemptStarted`, a few agent stream events, `AttemptEnded`, a
//! check, a review, `AttemptRecorded` with a full attempt record (one check, a review),
//! `TaskFinished`; one failed attempt in ten is retried after a `Waiting`; the summary and the
//! exit at the end. Only the time inside `Sink::event` is measured.
//!
//! Then, on that database: its size with its WAL and after the last connection closed it, and
//! the queries of every start (`plan_spent`, `attempt_costs`) and of `status` / `history`
//! (`task_usage`, `runs(None, 20)`). The same again on a database where the attempts are spread
//! over 100 runs of 100 attempts, with what opening the store for a run costs.
//!
//! `cargo bench -p baton --bench store`
//!
//! It never asserts on timings; it fails loudly when the store does not hold what it was sent.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use baton::agent::event::StreamEvent;
use baton::plan::{Status, TaskId};
use baton::report::event::{AttemptOutcome, Ending, EventKind, RunEvent, Sink, Summary, WaitReason};
use baton::report::status::Counts;
use baton::run::record::{AttemptRecord, CheckRecord, Records, ReviewRecord};
use baton::store::sink::{RunInfo, RunKind, StoreSink};
use baton::store::Store;

const ATTEMPTS: usize = 10_000;
/// One task in this many has a failed first attempt, a back-off wait and a second attempt.
const RETRY_EVERY: usize = 10;
const TASKS_PER_SECTION: usize = 50;
/// The spread layout: this many runs of ATTEMPTS / RUNS attempts each.
const RUNS: usize = 100;
/// Each query is timed this many times (the first one prepares its statement).
const QUERY_REPEATS: usize = 21;
const PLAN: &str = "plan.yaml";
const TARGET_MS: f64 = 1.0;

fn main() {
    // `cargo bench` passes `--bench`; a filter or other flags are accepted and ignored.
    println!("run-history store: {ATTEMPTS} attempts through a StoreSink on a real .baton/baton.db (WAL)");
    println!("sqlite {}", rusqlite_version());

    // 1. One run of 10,000 attempts.
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    let written = written_bytes();
    let one = drive(root, &[ATTEMPTS]);
    let written = written_bytes().zip(written).map(|(after, before)| after - before);
    let db = baton::store::path(root);
    println!();
    println!("one run of {ATTEMPTS} attempts, time in the sink per attempt (all of its events):");
    timing_rows(&one.per_attempt);
    println!("  {:<44} {:>10.3} ms", "run start (Store::open + StoreSink::open)", ms(one.opens[0]));
    println!("  {:<44} {:>10.3} ms", "summary + exit", ms(one.closing));
    println!("  {:<44} {:>10.2} s", "all events, whole run", one.total.as_secs_f64());
    match written {
        Some(b) => println!("  {:<44} {:>10}", "written by SQLite per attempt (WAL + checkpoints)", format!("{:.1} KiB", b as f64 / 1024.0 / ATTEMPTS as f64)),
        None => println!("  {:<44} {:>10}", "written by SQLite per attempt", "n/a"),
    }
    let open = one.sizes;
    let closed = files_size(&db);
    check_contents(root, &[ATTEMPTS]);
    println!();
    println!("database size after {ATTEMPTS} attempts:");
    println!("  {:<44} {:>10}", "baton.db + -wal + -shm, still open", mib(open.total()));
    println!("  {:<44} {:>10}", "  of which baton.db", mib(open.db));
    println!("  {:<44} {:>10}", "  of which baton.db-wal", mib(open.wal));
    println!("  {:<44} {:>10}", "after close (checkpointed, WAL removed)", mib(closed.total()));
    println!("  {:<44} {:>10}", "per attempt, closed", format!("{:.0} B", closed.total() as f64 / ATTEMPTS as f64));
    println!();
    println!("queries on it (one run of {ATTEMPTS} attempts), ms:");
    queries(root);

    // 2. The same attempts as 100 runs of 100: the runs as a long-lived repository has them.
    let dir2 = tempfile::tempdir().expect("temp dir");
    let root2 = dir2.path();
    let spread = drive(root2, &[ATTEMPTS / RUNS; RUNS]);
    check_contents(root2, &[ATTEMPTS / RUNS; RUNS]);
    println!();
    println!("{RUNS} runs of {} attempts, time in the sink per attempt:", ATTEMPTS / RUNS);
    timing_rows(&spread.per_attempt);
    println!("  {:<44} {:>10}", "database size after close", mib(files_size(&baton::store::path(root2)).total()));
    println!();
    println!("a run's start on it: Store::open + StoreSink::open (close_interrupted, import check, run row), ms:");
    let first = spread.opens[0];
    let last_ten: Vec<f64> = spread.opens[RUNS - 10..].iter().map(|d| ms(*d)).collect();
    println!("  {:<44} {:>10.3}", "first run (new file, schema)", ms(first));
    println!("  {:<44} {:>10.3}", "last 10 runs (median; 9,000+ attempts in it)", median(last_ten));
    println!();
    println!("queries on it ({RUNS} runs of {} attempts), ms:", ATTEMPTS / RUNS);
    queries(root2);

    println!();
    let mean = mean_ms(&one.per_attempt);
    println!("target: the store adds at most {TARGET_MS:.0} ms per attempt");
    println!(
        "measured: {mean:.3} ms per attempt (mean over {ATTEMPTS}) in the sink — {}",
        if mean <= TARGET_MS { "within the target" } else { "ABOVE the target" }
    );
}

struct Driven {
    per_attempt: Vec<Duration>,
    /// Store::open + StoreSink::open of each run.
    opens: Vec<Duration>,
    /// Summary + Exit of the last run.
    closing: Duration,
    /// Every `event` call of every run.
    total: Duration,
    /// The files' sizes just before the last run's sink was dropped.
    sizes: Sizes,
}

/// Sends the events of `runs.len()` runs (of `runs[i]` attempts each) to store sinks on the
/// repository at `root`, one after the other, as `baton run` would.
fn drive(root: &Path, runs: &[usize]) -> Driven {
    let records = Records::new(&root.join(".baton").join("logs"), Path::new(PLAN));
    let mut per_attempt = Vec::with_capacity(runs.iter().sum());
    let mut opens = Vec::new();
    let mut total = Duration::ZERO;
    let mut closing = Duration::ZERO;
    let mut sizes = Sizes::default();
    let mut next_task = 0usize;
    for (r, &n) in runs.iter().enumerate() {
        let t = Instant::now();
        let store = Store::open(root).expect("open the store");
        let info = RunInfo { kind: RunKind::Run, root: root.to_path_buf(), plan: PLAN.into(), command: "baton run plan.yaml".into() };
        let mut sink = StoreSink::open(store, info, Some(&records)).expect("open the store sink");
        opens.push(t.elapsed());

        let send = |sink: &mut StoreSink, kind: EventKind| -> Duration {
            let ev = RunEvent { time: jiff::Timestamp::now(), kind };
            let t = Instant::now();
            sink.event(&ev);
            let d = t.elapsed();
            assert!(sink.take_warnings().is_empty(), "the store sink failed in run {r}");
            d
        };
        total += send(
            &mut sink,
            EventKind::Banner {
                plan: "Store bench".into(),
                agent: "claude".into(),
                binary: "claude 2.1.0 (/usr/local/bin/claude)".into(),
                counts: Counts { total: n, pending: n, ..Counts::default() },
                parallel: None,
                commit: true,
                others: Vec::new(),
            },
        );
        let mut done = 0;
        while done < n {
            let task = task_id(next_task);
            next_task += 1;
            let retried = next_task % RETRY_EVERY == 0 && done + 1 < n;
            let sessions = if retried { 2 } else { 1 };
            for session in 1..=sessions {
                let failed = retried && session == 1;
                let mut spent = Duration::ZERO;
                for kind in attempt_events(root, &task, session, failed) {
                    spent += send(&mut sink, kind);
                }
                if failed {
                    spent += send(
                        &mut sink,
                        EventKind::Waiting {
                            reason: WaitReason::Retry { task: task.clone(), attempt: 1, max: 3 },
                            until: jiff::Timestamp::now() + jiff::SignedDuration::from_secs(30),
                        },
                    );
                }
                per_attempt.push(spent);
                total += spent;
                done += 1;
            }
        }
        let t = Instant::now();
        send(
            &mut sink,
            EventKind::Summary(Summary {
                how: Ending::Finished,
                elapsed: Duration::from_secs(3600),
                counts: Counts { total: n, completed: n, ..Counts::default() },
                cost: 0.25 * n as f64,
                unpriced_sessions: 0,
                // The sink reads only how the run ended and its cost.
                tasks: Vec::new(),
            }),
        );
        send(&mut sink, EventKind::Exit { code: 0 });
        closing = t.elapsed();
        total += closing;
        if r + 1 == runs.len() {
            sizes = files_size(&baton::store::path(root));
        }
        sink.finish();
        drop(sink);
    }
    Driven { per_attempt, opens, closing, total, sizes }
}

/// `1.1`, `1.2`, … `1.50`, `2.1`, …
fn task_id(i: usize) -> TaskId {
    TaskId(format!("{}.{}", i / TASKS_PER_SECTION + 1, i % TASKS_PER_SECTION + 1))
}

/// What one attempt sends, in the engine's order.
fn attempt_events(root: &Path, task: &TaskId, session: u32, failed: bool) -> Vec<EventKind> {
    let model = Some("claude-sonnet-4-5".to_string());
    let duration = Duration::from_millis(95_000 + 37 * session as u64);
    let cost = Some(0.2137);
    let check_cmd = "cargo test --workspace --quiet".to_string();
    let started = jiff::Timestamp::now();
    let ended = started + jiff::SignedDuration::from_secs(95);
    let mut out = vec![
        EventKind::AttemptStarted {
            task: task.clone(),
            name: format!("Implement step {task}"),
            attempt: session,
            max_attempts: 3,
            session,
            model: model.clone(),
            transcript: root.join(".baton/logs/plan").join(task.as_str()).join(format!("attempt-{session}.jsonl")),
            max_budget_usd: Some(4.5),
            agent: Some("claude".into()),
        },
        agent(task, StreamEvent::Init { session_id: Some("5f0c1a2e-9d7b-4c1e-8a51-1b2f3c4d5e6f".into()), model: model.clone(), cwd: Some(root.display().to_string()), version: Some("2.1.0".into()) }),
        agent(task, StreamEvent::Thinking { text: None }),
        agent(task, StreamEvent::AssistantText { text: "I'll read the module first, then add the function and its test.".into(), synthetic: false }),
        agent(task, StreamEvent::ToolUse { name: "Edit".into(), summary: Some("src/lib.rs".into()), input: serde_json::json!({"file_path": "src/lib.rs", "old_string": "fn a() {}", "new_string": "fn a() {}\nfn b() {}"}) }),
        agent(task, StreamEvent::ToolResult { is_error: false, output: None }),
        EventKind::AttemptEnded {
            task: task.clone(),
            outcome: if failed {
                AttemptOutcome::Failed { message: "the agent ended without reporting the task done".into() }
            } else {
                AttemptOutcome::Reported { status: Status::Completed, from_file: true }
            },
            duration,
            cost_usd: cost,
        },
    ];
    let check = CheckRecord {
        command: check_cmd.clone(),
        from: "config".into(),
        exit: Some(0),
        signal: None,
        timed_out: false,
        passed: true,
        duration_seconds: 41.5,
        output: "running 214 tests\n...\ntest result: ok. 214 passed; 0 failed\n".into(),
        tail: "test result: ok. 214 passed; 0 failed".into(),
    };
    let review = ReviewRecord {
        verdict: Some("PASS".into()),
        findings: vec!["the new function has a test".into(), "error messages name the file".into()],
        problem: None,
        limit_resets_at: None,
        sessions: 1,
        model: Some("claude-opus-4-1".into()),
        cost_usd: Some(0.0815),
        transcripts: vec![format!(".baton/logs/plan/{task}/review-{session}.jsonl")],
    };
    if !failed {
        out.push(EventKind::CheckStarted { task: task.clone(), command: check_cmd.clone(), index: 1, count: 1 });
        out.push(EventKind::CheckEnded { task: task.clone(), command: check_cmd, passed: true, exit: Some(0), signal: None, timed_out: false, duration: Duration::from_millis(41_500) });
        out.push(EventKind::ReviewStarted { task: task.clone(), model: review.model.clone() });
        out.push(EventKind::ReviewEnded { task: task.clone(), verdict: review.verdict.clone(), findings: review.findings.clone(), problem: None });
    }
    let record = AttemptRecord {
        task: task.to_string(),
        session,
        attempt: Some(session),
        started_at: started.to_string(),
        ended_at: ended.to_string(),
        cost_from_prices: false,
        agent: Some("claude".into()),
        duration_seconds: duration.as_secs_f64(),
        outcome: if failed { "failed" } else { "completed" }.into(),
        message: if failed { "the agent ended without reporting the task done".into() } else { "Added b() and its test.".into() },
        cost_usd: cost,
        turns: Some(23),
        input_tokens: Some(48_211),
        output_tokens: Some(6_034),
        cache_read_tokens: Some(412_090),
        cache_creation_tokens: Some(18_552),
        session_id: Some("5f0c1a2e-9d7b-4c1e-8a51-1b2f3c4d5e6f".into()),
        exit: Some("0".into()),
        waited_seconds: None,
        estimated_cost_usd: None,
        named_agent: None,
        model,
        changed: Some(!failed),
        checks: if failed { Vec::new() } else { vec![check] },
        review: (!failed).then_some(review),
    };
    out.push(EventKind::AttemptRecorded { task: task.clone(), record: Box::new(record) });
    if !failed {
        out.push(EventKind::TaskFinished { task: task.clone(), name: format!("Implement step {task}"), status: Status::Verified, message: String::new(), attempts: None });
    }
    out
}

fn agent(task: &TaskId, event: StreamEvent) -> EventKind {
    EventKind::Agent { task: task.clone(), agent: "claude", event }
}

/// The store holds every attempt sent, each with its record's fields, its check and review,
/// every wait, and every run closed with its exit code.
fn check_contents(root: &Path, runs: &[usize]) {
    let attempts: usize = runs.iter().sum();
    let conn = rusqlite::Connection::open_with_flags(baton::store::path(root), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open the store read-only");
    let count = |sql: &str| -> usize { conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap_or_else(|e| panic!("{sql}: {e}")) as usize };
    let failed = count("SELECT COUNT(*) FROM attempts WHERE outcome = 'failed'");
    assert!(failed > 0, "some attempts failed and were retried");
    assert_eq!(count("SELECT COUNT(*) FROM runs WHERE kind = 'run' AND exit_code = 0 AND ending = 'finished'"), runs.len(), "runs closed");
    assert_eq!(count("SELECT COUNT(*) FROM attempts"), attempts, "attempts");
    assert_eq!(count("SELECT COUNT(*) FROM attempts WHERE input_tokens = 48211 AND ended_at IS NOT NULL AND cost_usd > 0"), attempts, "attempts filled in from their records");
    assert_eq!(count("SELECT COUNT(*) FROM attempts WHERE outcome = 'completed' AND verdict = 'PASS' AND review_cost_usd > 0"), attempts - failed, "completed attempts");
    assert_eq!(count("SELECT COUNT(*) FROM checks"), attempts - failed, "one check per completed attempt");
    assert_eq!(count("SELECT COUNT(*) FROM reviews"), attempts - failed, "one review per completed attempt");
    assert_eq!(count("SELECT COUNT(*) FROM waits WHERE kind = 'retry'"), failed, "one wait per retry");
}

/// Times the queries baton makes at every start (the budget's) and for `status` and `history`.
fn queries(root: &Path) {
    let t = Instant::now();
    let store = Store::open_existing(root).expect("reopen").expect("the store exists");
    let opened = t.elapsed();
    println!("  {:<44} {:>10} {:>10}", "query", "first", "median");
    println!("  {:<44} {:>10.3} {:>10}", "Store::open of the existing file", ms(opened), "");
    query_row("plan_spent (every start)", || {
        let spent = store.plan_spent(PLAN).expect("plan_spent");
        assert!(spent > 0.0);
    });
    query_row("attempt_costs (every start)", || {
        let costs = store.attempt_costs(PLAN).expect("attempt_costs");
        assert_eq!(costs.len(), ATTEMPTS);
    });
    query_row("task_usage (status)", || {
        let usage = store.task_usage(PLAN).expect("task_usage");
        assert!(!usage.is_empty());
    });
    query_row("runs(None, 20) (history)", || {
        let runs = store.runs(None, 20).expect("runs");
        assert!(!runs.is_empty());
    });
}

fn query_row(name: &str, mut f: impl FnMut()) {
    let mut times = Vec::with_capacity(QUERY_REPEATS);
    for _ in 0..QUERY_REPEATS {
        let t = Instant::now();
        f();
        times.push(ms(t.elapsed()));
    }
    let first = times[0];
    println!("  {name:<44} {first:>10.3} {:>10.3}", median(times[1..].to_vec()));
}

fn timing_rows(per_attempt: &[Duration]) {
    let mut v: Vec<f64> = per_attempt.iter().map(|d| ms(*d)).collect();
    v.sort_by(f64::total_cmp);
    let pct = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    println!("  {:<44} {:>10.3} ms", "mean", mean_ms(per_attempt));
    println!("  {:<44} {:>10.3} ms", "p50", pct(0.50));
    println!("  {:<44} {:>10.3} ms", "p99", pct(0.99));
    println!("  {:<44} {:>10.3} ms", "max", v[v.len() - 1]);
    println!("  {:<44} {:>10}", "attempts over 1 ms", v.iter().filter(|&&t| t > 1.0).count());
}

#[derive(Debug, Default, Clone, Copy)]
struct Sizes {
    db: u64,
    wal: u64,
    shm: u64,
}

impl Sizes {
    fn total(&self) -> u64 {
        self.db + self.wal + self.shm
    }
}

fn files_size(db: &Path) -> Sizes {
    let size = |p: PathBuf| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let with = |suffix: &str| {
        let mut s = db.as_os_str().to_owned();
        s.push(suffix);
        PathBuf::from(s)
    };
    Sizes { db: size(db.to_path_buf()), wal: size(with("-wal")), shm: size(with("-shm")) }
}

/// Bytes this process has passed to write(2) and its kin so far (`wchar` of /proc/self/io):
/// while the sink runs, that is SQLite's writes.
fn written_bytes() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    io.lines().find_map(|l| l.strip_prefix("wchar:")).and_then(|v| v.trim().parse().ok())
}

fn rusqlite_version() -> String {
    let c = rusqlite::Connection::open_in_memory().expect("in-memory sqlite");
    c.query_row("SELECT sqlite_version()", [], |r| r.get(0)).expect("sqlite_version()")
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn mean_ms(v: &[Duration]) -> f64 {
    ms(v.iter().sum::<Duration>()) / v.len() as f64
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}
