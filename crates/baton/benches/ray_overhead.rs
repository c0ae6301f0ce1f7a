//! Benchmark (not a test) of the Ray executor's cost next to running attempts locally.
//!
//! One local Ray cluster for the whole bench: a head with no CPUs (`RayHead::start(0, "{}")`),
//! so that no attempt runs on it, and worker nodes added with `ray start --address <gcs>
//! --num-cpus 2 --block`, each in a process group of its own that the bench ends (TERM, 2 s,
//! KILL; never `ray stop`). Every Ray run asks `[executor.resources] num_cpus = 1`: an attempt
//! takes one CPU slot of a worker node.
//!
//! (1) Per-attempt overhead: a sequential plan of 10 tasks whose fake agent completes at once,
//!     run locally and on Ray (one worker node), with `--message-format json -v`. From the
//!     events' timestamps, the median per task of
//!     (a) `attempt_started` → the task's first `agent` event (local: spawn → first line; Ray:
//!         job submission, data plane and `baton remote-attempt` on the worker → first line);
//!     (b) the task's last `agent` event → its `task_finished` (the agent's end → the result
//!         is in the checkout and the task recorded: local: the process exits and its report is
//!         read; Ray: the job ends, its work is fetched back and applied);
//!     and the total wall time per task (baton's wall time / tasks).
//! (2) Makespan of 40 tasks in one parallel group, each agent taking ~2 s (4 events, 500 ms
//!     apart), `--parallel --jobs 4`: locally, on Ray with one worker node (2 CPUs) and with two
//!     (4 CPUs); with the most attempts that ran at once (from `attempt_started` /
//!     `attempt_ended`).
//!
//! `cargo bench -p baton --bench ray_overhead [-- attempt|makespan]` (no name: both parts).
//! Ray is found as the tests find it (`BATON_TEST_RAY`, `target/ray-venv`, `PATH`); without it
//! the bench says it is skipped.
//!
//! It never asserts on timings; it fails loudly only when a run itself goes wrong (non-zero
//! exit, a task not completed, an event missing, a node that does not join).

use std::fs::File;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use baton::plan::Status;
use baton_testkit::{RayHead, TempRepo};
use jiff::Timestamp;
use serde_json::{json, Value};

const BATON: &str = env!("CARGO_BIN_EXE_baton");
const SEQ_TASKS: usize = 10;
const SEQ_RUNS: usize = 2;
const PAR_TASKS: usize = 40;
const JOBS: usize = 4;
const PAR_EVENTS: u64 = 4;
const PAR_INTERVAL_MS: u64 = 500;
const WORKER_CPUS: u32 = 2;
/// A run that takes longer than this is killed and the bench fails (a hang, not a slow run).
const RUN_DEADLINE: Duration = Duration::from_secs(900);
/// How long a worker node may take to join and run a job.
const NODE_DEADLINE: Duration = Duration::from_secs(120);
/// The variable the kit's head lifeline looks for: a worker node carrying the head's marker is
/// ended with the head even if this bench dies before it ends the node itself.
const HEAD_MARKER: &str = "BATON_TEST_RAY_HEAD";

fn main() {
    let Some(ray) = baton_testkit::find_ray() else {
        println!(
            "ray_overhead: skipped: Ray is not installed (python3 -m venv target/ray-venv && \
             target/ray-venv/bin/pip install 'ray[default]==2.60.0', or set BATON_TEST_RAY)"
        );
        return;
    };
    let fake = baton_testkit::fake_claude_bin();
    let parts: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let wants = |part: &str| parts.is_empty() || parts.iter().any(|p| p == part);
    let load_before = loadavg();
    println!("ray bench: baton {BATON}");
    println!("ray:       {}", ray.display());
    println!("machine:   {} CPUs; load before: {load_before}", cpus());

    let t = Instant::now();
    let head = RayHead::start(0, "{}");
    println!("head (0 CPUs) ready in {:.1} s at {} (GCS {})", t.elapsed().as_secs_f64(), head.address, head.gcs_address);
    let mut nodes = vec![WorkerNode::start(&ray, &head, 1)];

    let mut table: Vec<(String, String)> = Vec::new();
    if wants("attempt") {
        println!();
        attempt_overhead(&fake, &head, &mut table);
    }
    if wants("makespan") {
        println!();
        makespan(&fake, &ray, &head, &mut nodes, &mut table);
    }
    for node in nodes {
        node.stop();
    }
    drop(head);
    let load_after = loadavg();

    println!();
    println!("{:<64} value", "figure");
    for (k, v) in &table {
        println!("{k:<64} {v}");
    }
    println!("machine load (/proc/loadavg 1/5/15 min, runnable/total): before {load_before}; after {load_after}");
}

// ---------------------------------------------------------------------------------------------
// (1) per-attempt overhead

struct SeqFigures {
    wall: f64,
    to_first_line: Vec<f64>,
    last_line_to_finished: Vec<f64>,
    attempt: Vec<f64>,
}

fn attempt_overhead(fake: &Path, head: &RayHead, table: &mut Vec<(String, String)>) {
    println!(
        "(1) per-attempt overhead: a sequential plan of {SEQ_TASKS} tasks, the fake agent completes at once, {SEQ_RUNS} runs each"
    );
    println!("    (a) `attempt_started` → the task's first `agent` event; (b) the task's last `agent` event → its `task_finished`");
    let plan = seq_plan();
    let scenario = r#"{"default": [{"message": "done"}]}"#;
    let mut local = Vec::new();
    let mut ray = Vec::new();
    for i in 1..=SEQ_RUNS {
        for (where_, out) in [("local", &mut local), ("ray", &mut ray)] {
            let addr = (where_ == "ray").then_some(head.address.as_str());
            let run = run_plan(fake, &plan, scenario, addr, &["run", "plan.yaml", "--message-format", "json", "-v"]);
            let f = seq_figures(&run, SEQ_TASKS);
            println!(
                "run {i} {where_:<5}: wall {:>6.2} s, {:>6.0} ms/task; median (a) {:>6.0} ms, (b) {:>6.0} ms, attempt_started→attempt_ended {:>6.0} ms",
                f.wall,
                f.wall * 1000.0 / SEQ_TASKS as f64,
                median(&f.to_first_line) * 1000.0,
                median(&f.last_line_to_finished) * 1000.0,
                median(&f.attempt) * 1000.0,
            );
            out.push(f);
        }
    }
    let all = |v: &[SeqFigures], get: fn(&SeqFigures) -> &Vec<f64>| -> Vec<f64> { v.iter().flat_map(|f| get(f).iter().copied()).collect() };
    let wall_per_task = |v: &[SeqFigures]| median(&v.iter().map(|f| f.wall / SEQ_TASKS as f64).collect::<Vec<_>>());
    println!();
    println!("{:<52} {:>10} {:>10} {:>10}", "per task, median over all runs (ms)", "local", "ray", "ray−local");
    let rows: [(&str, f64, f64); 4] = [
        ("(a) attempt_started → first agent event", median(&all(&local, |f| &f.to_first_line)), median(&all(&ray, |f| &f.to_first_line))),
        ("(b) last agent event → task_finished", median(&all(&local, |f| &f.last_line_to_finished)), median(&all(&ray, |f| &f.last_line_to_finished))),
        ("attempt_started → attempt_ended", median(&all(&local, |f| &f.attempt)), median(&all(&ray, |f| &f.attempt))),
        ("wall time / tasks", wall_per_task(&local), wall_per_task(&ray)),
    ];
    for (name, l, r) in rows {
        println!("{name:<52} {:>10.0} {:>10.0} {:>10.0}", l * 1000.0, r * 1000.0, (r - l) * 1000.0);
        table.push((format!("(1) {name}, local / ray (ms)"), format!("{:.0} / {:.0}", l * 1000.0, r * 1000.0)));
    }
}

fn seq_plan() -> String {
    let mut s = String::from("meta:\n  name: Ray overhead bench\n  max_attempts_default: 1\nsections:\n- id: s\n  name: Sequence\n  tasks:\n");
    for i in 1..=SEQ_TASKS {
        s.push_str(&format!("  - id: t{i}\n    name: Step {i}\n    status: pending\n    description: 'Do step {i}'\n"));
        if i > 1 {
            s.push_str(&format!("    depends_on: [t{}]\n", i - 1));
        }
    }
    s
}

fn seq_figures(run: &Run, tasks: usize) -> SeqFigures {
    let mut f = SeqFigures { wall: run.wall.as_secs_f64(), to_first_line: vec![], last_line_to_finished: vec![], attempt: vec![] };
    for i in 1..=tasks {
        let task = format!("t{i}");
        let of = |ty: &str| -> Vec<Timestamp> { run.events.iter().filter(|e| e["type"] == ty && e["task"] == task.as_str()).map(stamp).collect() };
        let started = one(&of("attempt_started"), "attempt_started", &task, run);
        let ended = one(&of("attempt_ended"), "attempt_ended", &task, run);
        let finished = one(&of("task_finished"), "task_finished", &task, run);
        let lines = of("agent");
        let (Some(first), Some(last)) = (lines.first(), lines.last()) else {
            panic!("no `agent` event for {task} (is -v passed?)\n{}", run.tail());
        };
        f.to_first_line.push(secs(started, *first));
        f.last_line_to_finished.push(secs(*last, finished));
        f.attempt.push(secs(started, ended));
    }
    f
}

fn one(v: &[Timestamp], what: &str, task: &str, run: &Run) -> Timestamp {
    assert_eq!(v.len(), 1, "expected one `{what}` event for {task}, got {}\n{}", v.len(), run.tail());
    v[0]
}

// ---------------------------------------------------------------------------------------------
// (2) makespan

fn makespan(fake: &Path, ray: &Path, head: &RayHead, nodes: &mut Vec<WorkerNode>, table: &mut Vec<(String, String)>) {
    let nominal = (PAR_EVENTS * PAR_INTERVAL_MS) as f64 / 1000.0;
    println!(
        "(2) makespan: {PAR_TASKS} tasks in one parallel group, each agent ~{nominal:.1} s ({PAR_EVENTS} events, {PAR_INTERVAL_MS} ms apart), --parallel --jobs {JOBS}"
    );
    println!(
        "    lower bound with 4 slots: {PAR_TASKS} × {nominal:.1} / 4 = {:.1} s; with 2 slots (one worker node of {WORKER_CPUS} CPUs): {:.1} s",
        PAR_TASKS as f64 * nominal / 4.0,
        PAR_TASKS as f64 * nominal / 2.0
    );
    let plan = par_plan();
    let scenario = json!({"default": [{"events": PAR_EVENTS, "interval_ms": PAR_INTERVAL_MS, "message": "done"}]}).to_string();
    let jobs = JOBS.to_string();
    let args = ["run", "plan.yaml", "--parallel", "--jobs", &jobs, "--message-format", "json", "-v"];
    let mut setups: Vec<(String, Option<&str>)> = vec![("local".into(), None)];
    setups.push(("ray, 1 worker node".into(), Some(head.address.as_str())));
    setups.push(("ray, 2 worker nodes".into(), Some(head.address.as_str())));
    println!();
    println!("{:<24} {:>10} {:>10} {:>10} {:>14} {:>12}", "where", "makespan s", "attempts", "agents", "agent median s", "LB slots s");
    println!("{:<24} {:>10} {:>10} {:>10}", "", "", "at once", "at once");
    for (name, addr) in setups {
        if name.contains("2 worker") && nodes.len() < 2 {
            nodes.push(WorkerNode::start(ray, head, 2));
        }
        let run = run_plan(fake, &plan, &scenario, addr, &args);
        let mut spans = Vec::new();
        let mut agent_spans = Vec::new();
        let mut agent = Vec::new();
        for i in 1..=PAR_TASKS {
            let task = format!("t{i}");
            let of = |ty: &str| -> Vec<Timestamp> { run.events.iter().filter(|e| e["type"] == ty && e["task"] == task.as_str()).map(stamp).collect() };
            let s = one(&of("attempt_started"), "attempt_started", &task, &run);
            let e = one(&of("attempt_ended"), "attempt_ended", &task, &run);
            spans.push((s, e));
            let lines = of("agent");
            let (Some(a), Some(b)) = (lines.first(), lines.last()) else {
                panic!("no `agent` event for {task} (is -v passed?)\n{}", run.tail());
            };
            agent.push(secs(*a, *b));
            agent_spans.push((*a, *b));
        }
        let at_once = max_overlap(&spans);
        let agents_at_once = max_overlap(&agent_spans);
        let slots = match addr {
            None => JOBS,
            Some(_) => JOBS.min(nodes.len() * WORKER_CPUS as usize),
        };
        let lb = PAR_TASKS as f64 * nominal / slots as f64;
        let wall = run.wall.as_secs_f64();
        println!("{name:<24} {wall:>10.2} {at_once:>10} {agents_at_once:>10} {:>14.2} {lb:>12.1}", median(&agent));
        table.push((
            format!("(2) makespan {name}"),
            format!("{wall:.2} s (bound {lb:.1} s; at once: {at_once} attempts, {agents_at_once} agents)"),
        ));
    }
    println!("attempts at once: baton's attempt_started … attempt_ended intervals overlapping (on Ray, a submitted job waiting");
    println!("for a CPU slot counts); agents at once: the tasks' first … last `agent` event intervals overlapping (running on a");
    println!("worker). agent median: a task's first → last `agent` event.");
}

fn par_plan() -> String {
    let mut s = String::from("meta:\n  name: Ray makespan bench\n  max_attempts_default: 1\nsections:\n- id: s\n  name: Group\n  tasks:\n");
    for i in 1..=PAR_TASKS {
        s.push_str(&format!("  - id: t{i}\n    name: Step {i}\n    status: pending\n    parallel_group: g\n    description: 'Do step {i}'\n"));
    }
    s
}

/// The most intervals holding one instant.
fn max_overlap(spans: &[(Timestamp, Timestamp)]) -> usize {
    let mut points: Vec<(Timestamp, i32)> = spans.iter().flat_map(|&(s, e)| [(s, 1), (e, -1)]).collect();
    // Ends before starts at the same instant.
    points.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    let (mut now, mut most) = (0i32, 0i32);
    for (_, d) in points {
        now += d;
        most = most.max(now);
    }
    most as usize
}

// ---------------------------------------------------------------------------------------------
// running baton

struct Run {
    wall: Duration,
    events: Vec<Value>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn tail(&self) -> String {
        let lines: Vec<&str> = self.stdout.lines().collect();
        format!("--- stdout (tail) ---\n{}\n--- stderr ---\n{}", lines[lines.len().saturating_sub(30)..].join("\n"), self.stderr)
    }
}

/// A fresh project with `plan` and a bare repository as `origin`; on Ray (`ray` = the
/// dashboard's address) its attempts run as jobs with `num_cpus = 1`. Runs baton with `args`
/// to its end; panics unless it exits 0 with every task completed.
fn run_plan(fake: &Path, plan: &str, scenario: &str, ray: Option<&str>, args: &[&str]) -> Run {
    let repo = TempRepo::new();
    let state = tempfile::tempdir().expect("state dir");
    let scen = state.path().join("scenario.json");
    std::fs::write(&scen, scenario).expect("write scenario");
    let remote = state.path().join("remote.git");
    repo.git(&["init", "--quiet", "--bare", remote.to_str().unwrap()]);
    repo.git(&["remote", "add", "origin", remote.to_str().unwrap()]);
    repo.write("plan.yaml", plan);
    let mut toml = baton_testkit::FAST_CONFIG.to_owned();
    if let Some(address) = ray {
        toml.push_str(&format!(
            "\n[executor]\nkind = \"ray\"\naddress = \"{address}\"\nbaton = \"{BATON}\"\n\n[executor.resources]\nnum_cpus = 1\n\n[executor.runtime_env.env_vars]\nBATON_FAKE_SCENARIO = \"{}\"\nBATON_FAKE_STATE = \"{}\"\nIS_SANDBOX = \"1\"\n",
            scen.display(),
            state.path().display(),
        ));
    }
    repo.write("baton.toml", &toml);
    repo.commit_all("plan");
    repo.git(&["push", "--quiet", "origin", "HEAD"]);

    let mut cmd = Command::new(BATON);
    cmd.args(args)
        .current_dir(repo.path())
        .env("NO_COLOR", "1")
        .env("TZ", "UTC")
        .env("BATON_CLAUDE_BIN", fake)
        .env("BATON_FAKE_SCENARIO", &scen)
        .env("BATON_FAKE_STATE", state.path())
        .env("IS_SANDBOX", "1");
    let start = Instant::now();
    let out = baton_testkit::run_with_deadline(&mut cmd, RUN_DEADLINE).expect("start baton");
    let wall = start.elapsed();
    let run = Run {
        wall,
        events: out.stdout.lines().filter_map(|l| serde_json::from_str(l).ok()).collect(),
        stdout: out.stdout.clone(),
        stderr: out.stderr.clone(),
    };
    let place = if ray.is_some() { "on Ray" } else { "locally" };
    assert!(!out.timed_out, "baton {args:?} {place} did not finish within {} s; killed\n{}", RUN_DEADLINE.as_secs(), run.tail());
    assert_eq!(out.status.code(), Some(0), "baton {args:?} {place} did not exit 0\n{}", run.tail());
    let plan = baton::plan::parse_plan(&repo.read("plan.yaml")).unwrap_or_else(|d| panic!("plan invalid after the run: {d:?}\n{}", run.tail()));
    let not_done: Vec<String> = plan.tasks().filter(|t| t.status != Status::Completed).map(|t| format!("{} ({})", t.id, t.status)).collect();
    assert!(not_done.is_empty(), "tasks not completed after exit 0 {place}: {}\n{}", not_done.join(", "), run.tail());
    run
}

// ---------------------------------------------------------------------------------------------
// worker nodes

/// A worker node of the bench's cluster: `ray start --address <gcs> --block` as the leader of
/// its own process group, with a custom resource `bench_node_<n>` to prove it runs jobs.
struct WorkerNode {
    pgid: u32,
    child: Child,
    n: usize,
    _dir: tempfile::TempDir,
}

impl WorkerNode {
    fn start(ray: &Path, head: &RayHead, n: usize) -> WorkerNode {
        let dir = tempfile::tempdir().expect("worker node dir");
        let log = dir.path().join("ray-start.log");
        let agent_port = free_port();
        let t = Instant::now();
        let child = Command::new(ray)
            .args(["start", "--block", "--disable-usage-stats", "--address", &head.gcs_address])
            .args(["--num-cpus", &WORKER_CPUS.to_string()])
            .args(["--resources", &format!("{{\"bench_node_{n}\": 1}}")])
            .args(["--dashboard-agent-listen-port", &agent_port.to_string()])
            .args(["--object-store-memory", "100000000"])
            .env_remove("RAY_ADDRESS")
            .env(HEAD_MARKER, head.temp_dir())
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(File::create(&log).expect("worker log"))
            .stderr(Stdio::from(File::create(dir.path().join("ray-start.err")).expect("worker err")))
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {} start: {e}", ray.display()));
        let mut node = WorkerNode { pgid: child.id(), child, n, _dir: dir };
        // Joined and running jobs: a job that needs this node's own resource succeeds.
        let probe = format!("bench-node-{n}-ready-{}", std::process::id());
        let id = head.submit_job(&json!({"entrypoint": "true", "submission_id": probe, "entrypoint_resources": {format!("bench_node_{n}"): 1}}));
        let deadline = Instant::now() + NODE_DEADLINE;
        loop {
            if let Ok(Some(status)) = node.child.try_wait() {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("worker node {n}: `ray start` exited ({status})\n{text}");
            }
            let job = head.job(&id).expect("the probe job is known");
            match job["status"].as_str() {
                Some("SUCCEEDED") => break,
                Some("FAILED" | "STOPPED") => panic!("worker node {n}: the probe job did not succeed: {job}"),
                _ => {}
            }
            if Instant::now() >= deadline {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                node.stop();
                panic!("worker node {n} did not run a job within {NODE_DEADLINE:?}: {job}\n{text}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        head.delete_job(&id);
        println!("worker node {n} ({WORKER_CPUS} CPUs) joined and ran a job in {:.1} s", t.elapsed().as_secs_f64());
        node
    }

    /// TERM to the node's group, up to 2 s, then KILL. What Ray put in groups of their own
    /// (its workers, job drivers) goes with the head's lifeline, which finds them by the marker.
    fn stop(mut self) {
        baton_testkit::kill_process_group(self.pgid, libc::SIGTERM);
        let gone = baton_testkit::wait_until(Duration::from_secs(2), || matches!(self.child.try_wait(), Ok(Some(_))) && !group_alive(self.pgid));
        if !gone {
            baton_testkit::kill_process_group(self.pgid, libc::SIGKILL);
        }
        let _ = self.child.wait();
        println!("worker node {} stopped", self.n);
    }
}

fn group_alive(pgid: u32) -> bool {
    // SAFETY: signal 0 only checks that the group exists.
    unsafe { libc::kill(-(pgid as i32), 0) == 0 }
}

fn free_port() -> u16 {
    let l = TcpListener::bind("0.0.0.0:0").expect("bind a free port");
    l.local_addr().expect("local address").port()
}

// ---------------------------------------------------------------------------------------------

fn stamp(e: &Value) -> Timestamp {
    e["time"].as_str().and_then(|t| t.parse().ok()).unwrap_or_else(|| panic!("event without a valid `time`: {e}"))
}

fn secs(a: Timestamp, b: Timestamp) -> f64 {
    b.duration_since(a).as_secs_f64()
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").map(|s| s.split_whitespace().take(4).collect::<Vec<_>>().join(" ")).unwrap_or_else(|e| format!("unreadable ({e})"))
}

fn cpus() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
}
