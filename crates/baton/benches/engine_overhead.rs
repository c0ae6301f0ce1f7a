//! Benchmark (not a test) of the sequential engine's own overhead.
//!
//! Runs the real `baton run plan.yaml` on a 100-task sequential plan against the scripted fake
//! agent, where every task completes at once, and reports what baton itself costs per task:
//! (wall time − agent time) / tasks, where agent time is the sum of `duration_seconds` of the
//! attempt records baton writes. Next to it: the median time of a bare `git commit` of a
//! one-line change on this machine (baton commits the plan after every task, so that is the
//! floor), and baton's peak memory.
//!
//! `cargo bench -p baton --bench engine_overhead`
//!
//! It never asserts on timings (machines are shared and noisy); it fails loudly only when the
//! run itself goes wrong (non-zero exit, a task not completed, records or commits missing).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton::plan::Status;
use baton_testkit::TempRepo;

const BATON: &str = env!("CARGO_BIN_EXE_baton");
const SECTIONS: usize = 5;
const TASKS_PER_SECTION: usize = 20;
const TASKS: usize = SECTIONS * TASKS_PER_SECTION;
const RUNS: usize = 3;
const GIT_COMMITS: usize = 20;
/// A run that takes longer than this is killed and the bench fails (a hang, not a slow run).
const RUN_DEADLINE: Duration = Duration::from_secs(600);
const TARGET_MS: f64 = 30.0;


/// Every task completes at once: no events, no pauses, a status file and a result.
const SCENARIO: &str = r#"{"default": [{"message": "done"}]}"#;

/// 100 tasks in 5 sections, each depending on the one before it.
fn plan_yaml() -> String {
    let mut s = String::from(
        "meta:\n  name: Engine overhead bench\n  max_attempts_default: 3\nsections:\n",
    );
    let mut prev: Option<String> = None;
    for sec in 1..=SECTIONS {
        s.push_str(&format!(
            "- id: s{sec}\n  name: Section {sec}\n  status: pending\n  tasks:\n"
        ));
        for t in 1..=TASKS_PER_SECTION {
            let id = format!("{sec}.{t}");
            s.push_str(&format!(
                "  - id: '{id}'\n    name: Task {id}\n    status: pending\n    description: 'Do step {id}. Files: src/step_{sec}_{t}.txt'\n    attempts: 0\n"
            ));
            if let Some(p) = &prev {
                s.push_str(&format!("    depends_on: ['{p}']\n"));
            }
            prev = Some(id);
        }
    }
    s
}

struct RunFigures {
    wall: Duration,
    agent: Duration,
    /// (wall − agent) / tasks.
    overhead_per_task: Duration,
    /// Peak RSS of the baton process alone (VmHWM, sampled from /proc while it runs), KiB.
    baton_peak_kib: Option<u64>,
    /// ru_maxrss from wait4 on baton: the largest single process of baton's tree (baton, its
    /// guards, the agents, git), KiB.
    tree_peak_kib: u64,
    /// User + system CPU of baton and everything it waited for, per task.
    cpu_per_task: Duration,
    /// Where the wall time went, from the timestamps of baton's run log (best effort).
    phases: Option<Vec<(&'static str, Duration)>>,
}

fn main() {
    // `cargo bench` passes `--bench`; a filter or other flags are accepted and ignored.
    let fake = baton_testkit::fake_claude_bin();
    println!("engine overhead: {TASKS} sequential tasks ({SECTIONS} sections), {RUNS} runs, fake agent completing at once");
    println!("baton:       {BATON}");
    println!("fake agent:  {}", fake.display());

    let git = git_commit_times();
    let mut runs = Vec::new();
    for i in 1..=RUNS {
        let f = run_once(&fake);
        println!(
            "run {i}: wall {:.2} s, agent {:.2} s, overhead {:.1} ms/task, baton peak RSS {}, tree max RSS {}",
            f.wall.as_secs_f64(),
            f.agent.as_secs_f64(),
            ms(f.overhead_per_task),
            f.baton_peak_kib.map_or("n/a".into(), mib),
            mib(f.tree_peak_kib),
        );
        runs.push(f);
    }

    println!();
    println!("{:<52} {:>10} {:>10}", "figure", "min", "median");
    let row = |name: &str, v: Vec<f64>, unit: &str| {
        let (lo, med) = min_median(v);
        println!(
            "{name:<52} {:>10} {:>10}",
            format!("{lo:.1}{unit}"),
            format!("{med:.1}{unit}")
        );
    };
    row(
        "wall time, whole run (s)",
        runs.iter().map(|r| r.wall.as_secs_f64()).collect(),
        "",
    );
    row(
        "agent time, sum of attempt records (s)",
        runs.iter().map(|r| r.agent.as_secs_f64()).collect(),
        "",
    );
    row(
        "agent time per task (ms)",
        runs.iter().map(|r| ms(r.agent) / TASKS as f64).collect(),
        "",
    );
    row(
        "baton overhead per task (ms)",
        runs.iter().map(|r| ms(r.overhead_per_task)).collect(),
        "",
    );
    row(
        "CPU of baton's whole tree per task (ms)",
        runs.iter().map(|r| ms(r.cpu_per_task)).collect(),
        "",
    );
    row(
        "bare `git commit -qam` of a one-line change (ms)",
        git.bare.clone(),
        "",
    );
    row(
        "baton's commit: status + add + commit --only (ms)",
        git.batons_way.clone(),
        "",
    );
    if runs.iter().all(|r| r.baton_peak_kib.is_some()) {
        row(
            "baton peak RSS (MiB)",
            runs.iter()
                .map(|r| r.baton_peak_kib.unwrap() as f64 / 1024.0)
                .collect(),
            "",
        );
    } else {
        println!("{:<52} {:>10} {:>10}", "baton peak RSS (MiB)", "n/a", "n/a");
    }
    row(
        "max RSS of any process in baton's tree (MiB)",
        runs.iter()
            .map(|r| r.tree_peak_kib as f64 / 1024.0)
            .collect(),
        "",
    );
    if runs.iter().all(|r| r.phases.is_some()) {
        println!();
        println!("where a task's wall time goes (from the run log's timestamps), ms per task:");
        for (i, name) in PHASES.iter().enumerate() {
            row(
                &format!("  {name}"),
                runs.iter()
                    .map(|r| ms(r.phases.as_ref().unwrap()[i].1))
                    .collect(),
                "",
            );
        }
    }
    println!();
    let (_, med) = min_median(runs.iter().map(|r| ms(r.overhead_per_task)).collect());
    println!("target: under {TARGET_MS:.0} ms per task (the original Python tool spent about 3 s per task)");
    println!(
        "measured: {med:.1} ms per task (median of {RUNS}) — {}",
        if med < TARGET_MS {
            "within the target"
        } else {
            "ABOVE the target"
        }
    );
}

/// One full run in a fresh repository.
fn run_once(fake: &Path) -> RunFigures {
    let repo = TempRepo::new();
    repo.write("plan.yaml", &plan_yaml());
    repo.write("baton.toml", &format!("{}{}", baton_testkit::FAST_CONFIG, std::env::var("BATON_BENCH_EXTRA_CONFIG").unwrap_or_default()));
    repo.commit_all("plan");
    let commits_before = commit_count(&repo);
    let state = tempfile::tempdir().expect("state dir");
    let scenario = state.path().join("scenario.json");
    std::fs::write(&scenario, SCENARIO).expect("write scenario");
    let out_path = state.path().join("baton.out");
    let err_path = state.path().join("baton.err");

    let start = Instant::now();
    let child = Command::new(BATON)
        .args(["run", "plan.yaml"])
        .current_dir(repo.path())
        .env("NO_COLOR", "1")
        .env("TZ", "UTC")
        .env("BATON_CLAUDE_BIN", fake)
        .env("BATON_FAKE_SCENARIO", &scenario)
        .env("BATON_FAKE_STATE", state.path())
        .env("IS_SANDBOX", "1")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("stderr file"))
        .spawn()
        .expect("start baton");
    let pid = child.id() as libc::pid_t;
    let sampler = Sampler::start(pid);
    let (status, usage) = wait4(pid);
    let wall = start.elapsed();
    let (baton_peak_kib, timed_out) = sampler.stop();
    drop(child); // already reaped by wait4

    let output = || {
        format!(
            "--- stdout (tail) ---\n{}\n--- stderr ---\n{}",
            tail(&std::fs::read_to_string(&out_path).unwrap_or_default(), 40),
            std::fs::read_to_string(&err_path).unwrap_or_default()
        )
    };
    if timed_out {
        panic!(
            "baton run did not finish within {} s; killed\n{}",
            RUN_DEADLINE.as_secs(),
            output()
        );
    }
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        panic!(
            "baton run did not exit 0 (wait status {status:#x}, exit {})\n{}",
            libc::WEXITSTATUS(status),
            output()
        );
    }

    // The run really completed every task.
    let plan = baton::plan::parse_plan(&repo.read("plan.yaml"))
        .unwrap_or_else(|d| panic!("the plan is no longer valid after the run: {d:?}"));
    let tasks: Vec<_> = plan.tasks().collect();
    assert_eq!(
        tasks.len(),
        TASKS,
        "the plan should still hold {TASKS} tasks"
    );
    let not_done: Vec<String> = tasks
        .iter()
        .filter(|t| t.status != Status::Completed)
        .map(|t| format!("{} ({})", t.id, t.status))
        .collect();
    assert!(
        not_done.is_empty(),
        "tasks not completed after exit 0: {}\n{}",
        not_done.join(", "),
        output()
    );
    assert!(
        plan.sections
            .iter()
            .all(|s| s.status == Some(Status::Completed)),
        "some section is not marked completed\n{}",
        output()
    );
    let commits = commit_count(&repo) - commits_before;
    assert_eq!(
        commits,
        TASKS,
        "expected one plan commit per task\n{}",
        output()
    );

    let records = attempt_records(&repo.join(".baton/logs/plan"));
    assert_eq!(
        records.len(),
        TASKS,
        "expected one attempt record per task (exactly one attempt each)"
    );
    let agent = Duration::from_secs_f64(records.iter().sum());
    let overhead = wall.saturating_sub(agent) / TASKS as u32;
    let cpu = timeval(usage.ru_utime) + timeval(usage.ru_stime);
    RunFigures {
        wall,
        agent,
        overhead_per_task: overhead,
        baton_peak_kib,
        tree_peak_kib: usage.ru_maxrss as u64,
        cpu_per_task: cpu / TASKS as u32,
        phases: phases(&repo.join(".baton/logs/plan/run.log")),
    }
}

/// Phases of one task, named after the run-log event that opens them.
const PHASES: [&str; 5] = [
    "before the agent: mark in progress, save, prompt",
    "agent session: spawn, stream, exit, verdict",
    "after the agent: record result in plan, save",
    "git commit of the plan",
    "other (next-task search, logging)",
];

fn phase_of(tag: &str) -> usize {
    match tag {
        "FIND" => 0,
        "EXEC" | "Init" | "Tool" | "Claude" | "Result" => 1,
        "DONE" => 2,
        "TASK" => 3,
        _ => 4,
    }
}

/// Splits the run's time into phases using `[<timestamp>] [TAG] …` lines of the run log: each
/// gap between two lines is charged to the phase the earlier line opens. None if the log is
/// missing or in another format (it is baton's log, not an interface).
fn phases(run_log: &Path) -> Option<Vec<(&'static str, Duration)>> {
    let text = std::fs::read_to_string(run_log).ok()?;
    let mut events = Vec::new();
    for line in text.lines() {
        let rest = line.strip_prefix('[')?;
        let (ts, rest) = rest.split_once("] [")?;
        let (tag, _) = rest.split_once(']')?;
        let t: jiff::Timestamp = ts.parse().ok()?;
        events.push((t, tag.to_string()));
    }
    let mut sums = [Duration::ZERO; PHASES.len()];
    for w in events.windows(2) {
        let gap = w[1].0.duration_since(w[0].0);
        sums[phase_of(&w[0].1)] += Duration::try_from(gap).unwrap_or_default();
    }
    (events.len() > TASKS).then(|| {
        PHASES
            .iter()
            .zip(sums)
            .map(|(n, d)| (*n, d / TASKS as u32))
            .collect()
    })
}

/// `duration_seconds` of every `<task>/attempt-<n>.json` under the plan's logs folder.
fn attempt_records(dir: &Path) -> Vec<f64> {
    let mut out = Vec::new();
    let tasks = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("no attempt records in {}: {e}", dir.display()));
    for task in tasks.flatten().filter(|e| e.path().is_dir()) {
        for f in std::fs::read_dir(task.path())
            .expect("read a task's log folder")
            .flatten()
        {
            let name = f.file_name().to_string_lossy().into_owned();
            if !(name.starts_with("attempt-") && name.ends_with(".json")) {
                continue;
            }
            let text = std::fs::read_to_string(f.path()).expect("read an attempt record");
            let v: serde_json::Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{} is not JSON: {e}", f.path().display()));
            let secs = v["duration_seconds"]
                .as_f64()
                .unwrap_or_else(|| panic!("{} has no duration_seconds", f.path().display()));
            assert_eq!(v["outcome"], "completed", "{}: {text}", f.path().display());
            out.push(secs);
        }
    }
    out
}

struct GitTimes {
    /// One `git commit -qam` of a one-line change, ms.
    bare: Vec<f64>,
    /// What baton does per task: `status --porcelain -- f`, `add -- f`, `commit --only -- f`, ms.
    batons_way: Vec<f64>,
}

/// Commit timings in a throw-away repository on this machine.
fn git_commit_times() -> GitTimes {
    let repo = TempRepo::new();
    repo.write("notes.txt", "start\n");
    repo.commit_all("notes");
    let git = |args: &[&str]| {
        let t = Instant::now();
        repo.git(args);
        t.elapsed()
    };
    let mut bare = Vec::new();
    let mut batons_way = Vec::new();
    for i in 0..GIT_COMMITS {
        repo.write("notes.txt", &format!("line {i}\n"));
        bare.push(ms(git(&[
            "commit",
            "-q",
            "--no-verify",
            "-am",
            &format!("bare {i}"),
        ])));
        repo.write("notes.txt", &format!("again {i}\n"));
        let d = git(&["status", "--porcelain", "--", "notes.txt"])
            + git(&["add", "--", "notes.txt"])
            + git(&[
                "commit",
                "-q",
                "--no-verify",
                "-m",
                &format!("baton {i}"),
                "--only",
                "--",
                "notes.txt",
            ]);
        batons_way.push(ms(d));
    }
    GitTimes { bare, batons_way }
}

fn commit_count(repo: &TempRepo) -> usize {
    repo.git(&["rev-list", "--count", "HEAD"])
        .trim()
        .parse()
        .expect("a commit count")
}

/// Follows baton's own peak RSS (VmHWM) while it runs, and kills it past the deadline.
struct Sampler {
    done: Arc<AtomicBool>,
    timed_out: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: std::thread::JoinHandle<()>,
}

impl Sampler {
    fn start(pid: libc::pid_t) -> Sampler {
        let done = Arc::new(AtomicBool::new(false));
        let timed_out = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(0));
        let (d, t, p) = (done.clone(), timed_out.clone(), peak.clone());
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            let path = PathBuf::from(format!("/proc/{pid}/status"));
            while !d.load(Ordering::SeqCst) {
                if let Ok(text) = std::fs::read_to_string(&path) {
                    // Only while it is still baton (and not yet a zombie without memory).
                    if text
                        .lines()
                        .any(|l| l.starts_with("Name:") && l.contains("baton"))
                    {
                        if let Some(kib) = vm_hwm(&text) {
                            p.fetch_max(kib, Ordering::SeqCst);
                        }
                    }
                }
                if started.elapsed() > RUN_DEADLINE && !t.swap(true, Ordering::SeqCst) {
                    // SAFETY: kill(2) on the child we started and have not reaped yet.
                    unsafe {
                        libc::kill(pid, libc::SIGKILL);
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        Sampler {
            done,
            timed_out,
            peak,
            thread,
        }
    }

    /// (peak KiB if ever read, whether the run was killed for the deadline)
    fn stop(self) -> (Option<u64>, bool) {
        self.done.store(true, Ordering::SeqCst);
        let _ = self.thread.join();
        let kib = self.peak.load(Ordering::SeqCst);
        (
            (kib > 0).then_some(kib),
            self.timed_out.load(Ordering::SeqCst),
        )
    }
}

fn vm_hwm(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Waits for (and reaps) `pid`, returning its wait status and the resource usage of it and
/// every descendant it waited for.
fn wait4(pid: libc::pid_t) -> (libc::c_int, libc::rusage) {
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; zeroed is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: wait4 on our own child with valid out-pointers.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            return (status, usage);
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            panic!("wait4 on baton (pid {pid}): {e}");
        }
    }
}

fn timeval(t: libc::timeval) -> Duration {
    Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn min_median(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    let n = v.len();
    let med = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    (v[0], med)
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
