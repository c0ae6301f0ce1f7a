//! `baton run --parallel` under pressure: a usage limit pauses every start for the whole run
//! (limited tasks re-queued without spending an attempt, the longest reset wins), server-side
//! throttling lowers how many agents start at once, and the circuit breaker holds the whole run.
//!
//! Every timing claim is checked against the attempt records baton writes
//! (`.baton/logs/plan/<task>/attempt-<session>.json`: `started_at`, `ended_at`, `outcome`), never
//! by sleeping.

use baton::plan::Status;
use jiff::Timestamp;
use serde_json::Value;

use crate::support::{Project, FAST_CONFIG};

const LIMIT: &str = "You've hit your limit · resets 6pm (America/Toronto)";
const THROTTLE: &str = "API Error: Server is temporarily limiting requests (not your usage limit) · Rate limited";

/// One section, every task in group `g`: (id, depends_on).
fn group_plan(tasks: &[(&str, &[&str])]) -> String {
    let mut s = String::from("meta:\n  name: Parallel limits\n  max_attempts_default: 2\nsections:\n- id: s1\n  name: Group\n  tasks:\n");
    for (id, deps) in tasks {
        s.push_str(&format!(
            "  - id: '{id}'\n    name: Task {id}\n    status: pending\n    parallel_group: g\n    description: 'work item {id}'\n"
        ));
        if !deps.is_empty() {
            let d: Vec<String> = deps.iter().map(|d| format!("'{d}'")).collect();
            s.push_str(&format!("    depends_on: [{}]\n", d.join(", ")));
        }
    }
    s
}

fn project(plan: &str, config: &str) -> Project {
    let p = Project::new();
    p.write("plan.yaml", plan);
    p.write("baton.toml", config);
    p.repo.commit_all("plan");
    p
}

fn task(p: &Project, id: &str) -> baton::plan::Task {
    p.plan().task(id).unwrap_or_else(|| panic!("no task {id}")).clone()
}

/// The attempt record of `task`'s `session`-th agent run.
fn record(p: &Project, task: &str, session: u32) -> Value {
    let rel = format!(".baton/logs/plan/{task}/attempt-{session}.json");
    let text = std::fs::read_to_string(p.path().join(&rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{rel} is not JSON: {e}"))
}

/// Every attempt record of the run: (task, session, record).
fn all_records(p: &Project) -> Vec<(String, u32, Value)> {
    let mut out = Vec::new();
    let dir = p.path().join(".baton/logs/plan");
    for t in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).flatten() {
        if !t.path().is_dir() {
            continue;
        }
        let task = t.file_name().to_string_lossy().into_owned();
        for f in std::fs::read_dir(t.path()).unwrap().flatten() {
            let name = f.file_name().to_string_lossy().into_owned();
            if let Some(n) = name.strip_prefix("attempt-").and_then(|r| r.strip_suffix(".json")) {
                let n: u32 = n.parse().unwrap();
                out.push((task.clone(), n, record(p, &task, n)));
            }
        }
    }
    out.sort_by_key(|(_, _, r)| ts(r, "started_at"));
    out
}

fn ts(rec: &Value, key: &str) -> Timestamp {
    rec[key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key} in {rec}"))
        .parse()
        .unwrap_or_else(|e| panic!("{key} in {rec}: {e}"))
}

/// The largest number of the given [start, end) intervals that overlap at one instant.
fn max_overlap(intervals: &[(Timestamp, Timestamp)]) -> usize {
    let mut edges: Vec<(Timestamp, i32)> = Vec::new();
    for (s, e) in intervals {
        edges.push((*s, 1));
        edges.push((*e, -1));
    }
    // Ends before starts at the same instant: touching intervals do not overlap.
    edges.sort_by_key(|(t, d)| (*t, *d));
    let (mut now, mut best) = (0i32, 0i32);
    for (_, d) in edges {
        now += d;
        best = best.max(now);
    }
    best as usize
}

fn summary(p: &Project, out: &str) -> String {
    let recs: Vec<String> = all_records(p)
        .iter()
        .map(|(t, n, r)| format!("  {t} #{n}: {} {} → {}", r["outcome"], r["started_at"], r["ended_at"]))
        .collect();
    format!("--- records ---\n{}\n--- output ---\n{out}", recs.join("\n"))
}

/// The reset instant the fake agent used for a relative limit (`limit_resets_in`).
fn reset_of(p: &Project, task: &str, attempt: u32) -> Timestamp {
    let name = format!("{task}-{attempt}.resets_at");
    let text = std::fs::read_to_string(p.state_path(&name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    Timestamp::from_second(text.trim().parse().unwrap()).unwrap()
}

fn json_path(path: std::path::PathBuf) -> String {
    serde_json::to_string(&path).unwrap()
}

/// A 3-task group with `--jobs 3`: L hits a usage limit at once, S is slow, F makes N ready
/// (N depends on F) while the run is paused. N must wait for the reset; L is re-queued, runs
/// again after the reset, and its limited run spends no attempt; S keeps running through the
/// pause.
///
/// The order is made by barriers, not by timing: F finishes only once baton has judged L's
/// limited run (its attempt record exists), and S only once N has been judged — so S runs
/// across the whole pause whatever the machine's speed.
#[test]
fn a_usage_limit_pauses_all_starts_and_requeues_the_limited_task() {
    let plan = group_plan(&[("L", &[]), ("S", &[]), ("F", &[]), ("N", &["F"])]);
    let p = project(&plan, FAST_CONFIG);
    p.scenario(&format!(
        r#"{{"tasks": {{
            "L": [{{"limit": {limit}, "limit_resets_in": 4}}, {{}}],
            "S": [{{"wait_for": [{n_judged}], "events": 2, "interval_ms": 20}}],
            "F": [{{"wait_for": [{l_judged}], "events": 2, "interval_ms": 20}}]
        }}}}"#,
        limit = serde_json::to_string(LIMIT).unwrap(),
        n_judged = json_path(p.record_path("N", 1)),
        l_judged = json_path(p.record_path("L", 1)),
    ));
    let r = p.baton(&["run", "plan.yaml", "--parallel", "--jobs", "3"]);
    let ctx = summary(&p, &r.all());
    assert_eq!(r.code(), 0, "{ctx}");
    assert!(r.stdout().contains("usage limit"), "the pause was not reported\n{ctx}");

    for id in ["L", "S", "F", "N"] {
        let t = task(&p, id);
        assert_eq!((t.status, t.attempts), (Status::Completed, 1), "task {id}\n{ctx}");
    }

    let reset = reset_of(&p, "L", 1);
    let limited = record(&p, "L", 1);
    assert_eq!(limited["outcome"], "limited", "{ctx}");
    assert_eq!(limited["attempt"], Value::Null, "the limited run was counted as an attempt\n{ctx}");
    let limited_at = ts(&limited, "ended_at");

    // Nothing started while paused: every run that started after the limit started after the
    // reset (baton waits for the reset plus a 0.1 s margin here).
    for (t, n, rec) in all_records(&p) {
        let started = ts(&rec, "started_at");
        if started > limited_at {
            assert!(started >= reset, "{t} #{n} started at {started}, during the pause (reset {reset})\n{ctx}");
        }
    }
    let again = record(&p, "L", 2);
    assert_eq!(again["outcome"], "completed", "{ctx}");
    assert_eq!(again["attempt"], 1, "the re-queued run is the task's first counted attempt\n{ctx}");
    // F was judged after the limit (its barrier), so N became ready during the pause.
    assert!(ts(&record(&p, "F", 1), "ended_at") > limited_at, "{ctx}");
    assert!(ts(&record(&p, "N", 1), "started_at") >= reset, "{ctx}");
    // The slow sibling ran through the pause: a usage limit stops starts, not running agents.
    let s = record(&p, "S", 1);
    assert!(ts(&s, "started_at") < limited_at && ts(&s, "ended_at") > reset, "S did not run across the pause\n{ctx}");
    assert_eq!(p.invocations().len(), 5, "L twice, S, F and N once each\n{ctx}");
}

/// Three tasks hit usage limits with different resets, in the order middle, earliest, latest;
/// a fourth waits for a slot. No task starts before the latest reset: a shorter pause never
/// shortens a longer one, and a longer one extends a shorter one.
///
/// Barriers order the limits: A reports its limit once baton has judged B's, D once baton has
/// judged A's. Resets are relative to each limit: B's in 6 s, A's 1 s after A's limit (so
/// earlier than B's unless 5 s pass between the two), D's 9 s after D's.
#[test]
fn with_several_usage_limits_the_longest_reset_wins() {
    let plan = group_plan(&[("A", &[]), ("B", &[]), ("D", &[]), ("C", &[])]);
    let p = project(&plan, FAST_CONFIG);
    p.scenario(&format!(
        r#"{{"tasks": {{
            "B": [{{"limit": {limit}, "limit_resets_in": 6}}, {{}}],
            "A": [{{"wait_for": [{b_judged}], "limit": {limit}, "limit_resets_in": 1}}, {{}}],
            "D": [{{"wait_for": [{a_judged}], "limit": {limit}, "limit_resets_in": 9}}, {{}}]
        }}}}"#,
        limit = serde_json::to_string(LIMIT).unwrap(),
        b_judged = json_path(p.record_path("B", 1)),
        a_judged = json_path(p.record_path("A", 1)),
    ));
    let r = p.baton(&["run", "plan.yaml", "--parallel", "--jobs", "3"]);
    let ctx = summary(&p, &r.all());
    assert_eq!(r.code(), 0, "{ctx}");
    for id in ["A", "B", "C", "D"] {
        let t = task(&p, id);
        assert_eq!((t.status, t.attempts), (Status::Completed, 1), "task {id}\n{ctx}");
    }
    let (b1, a1, d1) = (record(&p, "B", 1), record(&p, "A", 1), record(&p, "D", 1));
    for (id, rec) in [("B", &b1), ("A", &a1), ("D", &d1)] {
        assert_eq!(rec["outcome"], "limited", "{id}\n{ctx}");
    }
    let (early, middle, late) = (reset_of(&p, "A", 1), reset_of(&p, "B", 1), reset_of(&p, "D", 1));
    let (tb, td) = (ts(&b1, "ended_at"), ts(&d1, "ended_at"));
    // What the test is about needs D's limit to come while B's pause holds; 6 s for two
    // barrier hops of a few milliseconds each.
    assert!(early < middle && td < middle, "premise: the limits were not reported while B's pause held\n{ctx}");

    let second_round: Vec<(String, u32, Value)> =
        all_records(&p).into_iter().filter(|(_, _, r)| ts(r, "started_at") > tb).collect();
    // A, B and D started together before the first limit; everything after it is the second
    // round: A, B and D again, and C.
    assert_eq!(second_round.len(), 4, "{ctx}");
    for (t, n, rec) in &second_round {
        let started = ts(rec, "started_at");
        assert!(started >= late, "{t} #{n} started at {started}, before the latest reset {late}\n{ctx}");
    }
    assert!(ts(&record(&p, "C", 1), "started_at") >= late, "{ctx}");
    assert_eq!(p.invocations().len(), 7, "{ctx}");
}

/// Four tasks with `--jobs 4` are all throttled at once: baton says it now starts fewer agents
/// at once, the retries do not all run side by side again, and the run completes without
/// spending attempts.
#[test]
fn throttling_in_a_parallel_run_lowers_how_many_agents_start_at_once() {
    let plan = group_plan(&[("1", &[]), ("2", &[]), ("3", &[]), ("4", &[])]);
    let p = project(&plan, FAST_CONFIG);
    p.scenario(&format!(
        r#"{{"default": [{{"throttle": {t}}}, {{"events": 6, "interval_ms": 100}}]}}"#,
        t = serde_json::to_string(THROTTLE).unwrap()
    ));
    let r = p.baton(&["run", "plan.yaml", "--parallel", "--jobs", "4", "--verbose"]);
    let ctx = summary(&p, &r.all());
    assert_eq!(r.code(), 0, "{ctx}");
    assert!(r.stdout().contains("server-side throttling"), "{ctx}");
    assert!(
        r.stdout().contains("throttled: starting at most 2 agent(s) at once"),
        "no word that concurrency was lowered after the first throttle\n{ctx}"
    );
    for id in ["1", "2", "3", "4"] {
        let t = task(&p, id);
        assert_eq!((t.status, t.attempts), (Status::Completed, 1), "task {id}: a throttle spent an attempt\n{ctx}");
    }
    let recs = all_records(&p);
    let first: Vec<(Timestamp, Timestamp)> = recs
        .iter()
        .filter(|(_, _, r)| r["outcome"] == "throttled")
        .map(|(_, _, r)| (ts(r, "started_at"), ts(r, "ended_at")))
        .collect();
    assert_eq!(first.len(), 4, "{ctx}");
    let retries: Vec<(Timestamp, Timestamp)> = recs
        .iter()
        .filter(|(_, _, r)| r["outcome"] == "completed")
        .map(|(_, _, r)| (ts(r, "started_at"), ts(r, "ended_at")))
        .collect();
    assert_eq!(retries.len(), 4, "{ctx}");
    // Unthrottled, all four retries would start together once the back-off ends.
    let overlap = max_overlap(&retries);
    assert!(overlap <= 2, "{overlap} retries ran at once after four throttles with --jobs 4\n{ctx}");
}

/// Three tasks failing side by side open the breaker for the whole run; after the cool-down
/// one probe at a time is let through, and each task stops at its `max_attempts` (2): six
/// agent runs in all, exit 1.
#[test]
fn the_circuit_breaker_holds_a_parallel_run_and_failures_end() {
    let plan = group_plan(&[("a", &[]), ("b", &[]), ("c", &[])]);
    // Retries wait 4 s (far longer than the 0.3 s cool-down), so all three first failures —
    // finished together by the barrier below — are judged before any retry may start, even
    // when a loaded machine notices an agent's exit a second late.
    let config = FAST_CONFIG
        .replace("backoff_initial_seconds = 0.05", "backoff_initial_seconds = 4")
        .replace("backoff_max_seconds = 0.2", "backoff_max_seconds = 4");
    assert_ne!(config, FAST_CONFIG);
    let p = project(&plan, &config);
    // A barrier: each first attempt fails only once all three have started, so the three
    // failures come together (well within the 1 s back-off) on any machine.
    let started: Vec<String> = ["a", "b", "c"].iter().map(|t| json_path(p.state_path(&format!("started-{t}")))).collect();
    let step = |t: usize| {
        format!(
            r#"[{{"mark": [{}], "wait_for": [{}], "events": 2, "interval_ms": 20, "status": "failed", "message": "broken everywhere"}}]"#,
            started[t],
            started.join(", ")
        )
    };
    p.scenario(&format!(r#"{{"tasks": {{"a": {}, "b": {}, "c": {}}}}}"#, step(0), step(1), step(2)));
    let r = p.baton(&["run", "plan.yaml", "--parallel", "--jobs", "3", "--verbose"]);
    let ctx = summary(&p, &r.all());
    assert_eq!(r.code(), 1, "{ctx}");
    let out = r.stdout();
    assert!(out.contains("circuit breaker open: 3 consecutive failures"), "{ctx}");
    assert!(out.contains("half-open: letting one attempt through"), "{ctx}");
    for id in ["a", "b", "c"] {
        let t = task(&p, id);
        assert_eq!((t.status, t.attempts), (Status::Failed, 2), "task {id}\n{ctx}");
        assert!(t.last_error.as_deref().unwrap_or("").contains("broken everywhere"), "{ctx}");
    }
    assert_eq!(p.invocations().len(), 6, "each task runs exactly max_attempts times\n{ctx}");
    let recs = all_records(&p);
    let span = |n: u32| -> Vec<(Timestamp, Timestamp)> {
        recs.iter().filter(|(_, s, _)| *s == n).map(|(_, _, r)| (ts(r, "started_at"), ts(r, "ended_at"))).collect()
    };
    // The first attempts really ran side by side …
    assert_eq!(max_overlap(&span(1)), 3, "the first attempts did not run in parallel\n{ctx}");
    // … and once the breaker opened, the retries went through one probe at a time.
    assert_eq!(max_overlap(&span(2)), 1, "retries ran side by side while the breaker was open or half-open\n{ctx}");
}
