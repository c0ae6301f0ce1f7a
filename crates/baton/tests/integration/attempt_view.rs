//! What a person sees of an attempt's verification: `status --json` (every session with its
//! model, checks and review), the status table (`verified`, the MODEL column) and `logs` (checks
//! with a failed one's output, the reviewer's verdict and findings). The plan and the attempt
//! records are written by hand: no run is needed to read them.

use std::fs::File;
use std::os::fd::AsRawFd;

use crate::support::{project, wait_exit, wait_for, Project};

const PLAN: &str = "meta:
  name: Verified work
sections:
- id: s1
  name: First
  tasks:
  - id: '1.1'
    name: Checked twice
    status: verified
    attempts: 2
    model_used: opus
    completed_at: '2026-01-01T00:10:00Z'
  - id: '1.2'
    name: Never ran
    status: pending
";

const TASK_DIR: &str = ".baton/logs/plan/1.1";

/// Session 1 (sonnet) failed its check; session 2 (opus) passed it and the reviewer said PASS.
fn records(p: &Project) {
    let dir = p.path().join(TASK_DIR);
    let first = format!(
        r#"{{"task": "1.1", "session": 1, "attempt": 1, "started_at": "2026-01-01T00:00:00Z", "ended_at": "2026-01-01T00:01:00Z",
  "duration_seconds": 60.0, "outcome": "failed", "message": "check failed: test -f out.txt (exit 1)", "cost_usd": 0.25,
  "turns": 3, "input_tokens": null, "output_tokens": null, "session_id": null, "exit": "0", "waited_seconds": null,
  "model": "sonnet", "changed": false,
  "checks": [{{"command": "test -f out.txt", "from": "task", "exit": 1, "timed_out": false, "passed": false,
    "duration_seconds": 0.5, "output": "{out}", "tail": "out.txt: missing\n"}}]}}"#,
        out = dir.join("attempt-1.check-1.out").display()
    );
    let second = format!(
        r#"{{"task": "1.1", "session": 2, "attempt": 2, "started_at": "2026-01-01T00:02:00Z", "ended_at": "2026-01-01T00:04:00Z",
  "duration_seconds": 120.0, "outcome": "completed", "message": "wrote out.txt", "cost_usd": 0.5,
  "turns": 4, "input_tokens": null, "output_tokens": null, "session_id": null, "exit": "0", "waited_seconds": null,
  "model": "opus", "changed": true,
  "checks": [{{"command": "test -f out.txt", "from": "task", "exit": 0, "timed_out": false, "passed": true,
    "duration_seconds": 0.5, "output": "{out}", "tail": ""}}],
  "review": {{"verdict": "PASS", "findings": ["out.txt has the expected lines"], "sessions": 1, "model": "haiku",
    "cost_usd": 0.05, "transcripts": ["{review}"]}}}}"#,
        out = dir.join("attempt-2.check-1.out").display(),
        review = dir.join("attempt-2.review-1.jsonl").display()
    );
    for (n, text) in [(1, first), (2, second)] {
        p.write(&format!("{TASK_DIR}/attempt-{n}.jsonl"), "");
        p.write(&format!("{TASK_DIR}/attempt-{n}.json"), &text);
    }
}

/// The project's own path in the output, made stable.
fn shown(p: &Project, text: &str) -> String {
    text.replace(&p.path().display().to_string(), "[repo]")
}

#[test]
fn status_json_has_every_session_with_its_checks_and_review() {
    let p = project(PLAN);
    records(&p);
    let r = p.baton(&["status", "plan.yaml", "--json"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let v: serde_json::Value = serde_json::from_str(&r.stdout()).unwrap();
    let t = &v["sections"][0]["tasks"][0];
    assert_eq!((&t["status"], &t["model_used"], &t["attempts"]), (&"verified".into(), &"opus".into(), &2.into()));
    assert_eq!(t["usage"]["sessions"], 2, "the usage keeps its keys: {}", t["usage"]);
    let s = t["sessions"].as_array().unwrap_or_else(|| panic!("no sessions:\n{}", r.stdout()));
    let summary: Vec<(u64, &str, &str, bool)> = s
        .iter()
        .map(|x| (x["session"].as_u64().unwrap(), x["model"].as_str().unwrap(), x["outcome"].as_str().unwrap(), x["changed"].as_bool().unwrap()))
        .collect();
    assert_eq!(summary, [(1, "sonnet", "failed", false), (2, "opus", "completed", true)]);
    assert_eq!(s[0]["checks"][0]["command"], "test -f out.txt");
    assert_eq!((&s[0]["checks"][0]["passed"], &s[0]["checks"][0]["exit"]), (&false.into(), &1.into()));
    assert!(s[0]["review"].is_null());
    assert_eq!(s[1]["review"]["verdict"], "PASS");
    assert_eq!(s[1]["review"]["findings"], serde_json::json!(["out.txt has the expected lines"]));
    let never = &v["sections"][0]["tasks"][1];
    assert_eq!(never["sessions"], serde_json::json!([]));
    assert!(never["usage"].is_null() && never["model_used"].is_null());
}

#[test]
fn the_status_table_shows_verified_and_the_model() {
    let p = project(PLAN);
    records(&p);
    let r = p.baton(&["status", "plan.yaml"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let stdout = r.stdout();
    insta::assert_snapshot!("status_verified_with_model", stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    let header = lines.iter().find(|l| l.trim_start().starts_with("ID")).unwrap();
    let row = lines.iter().find(|l| l.contains("Checked twice")).unwrap();
    assert_eq!(header.find("MODEL"), row.find("opus"), "{}", r.stdout());
    assert_eq!(header.find("STATUS"), row.find("verified"), "{}", r.stdout());
}

#[test]
fn logs_show_the_checks_and_the_review_of_each_attempt() {
    let p = project(PLAN);
    records(&p);
    let first = p.baton(&["logs", "plan.yaml", "1.1", "--attempt", "1"]);
    assert_eq!(first.code(), 0, "{}", first.all());
    let first = shown(&p, &first.stdout());
    assert!(first.contains("model: sonnet\n"), "{first}");
    assert!(first.contains("changes: none"), "{first}");
    assert!(
        first.contains("check: test -f out.txt [task] — failed (exit 1) · 0.5s\n  output: [repo]/.baton/logs/plan/1.1/attempt-1.check-1.out\n  | out.txt: missing\n"),
        "{first}"
    );
    assert!(!first.contains("review:"), "{first}");

    // The latest by default.
    let last = p.baton(&["logs", "plan.yaml", "1.1"]);
    assert_eq!(last.code(), 0, "{}", last.all());
    let last = shown(&p, &last.stdout());
    assert!(last.contains("attempt 2 of 2") && last.contains("model: opus\n"), "{last}");
    assert!(last.contains("earlier attempts (shown by --attempt N):\n  1  failed · sonnet · no changes · check `test -f out.txt` failed (exit 1)\n"), "{last}");
    assert!(!first.contains("earlier attempts"), "{first}");
    assert!(last.contains("check: test -f out.txt [task] — ok · 0.5s\n"), "{last}");
    assert!(!last.contains("output:"), "a passed check's output is not shown:\n{last}");
    assert!(
        last.contains("review: PASS (model haiku · $0.0500)\n  - out.txt has the expected lines\n  transcript: [repo]/.baton/logs/plan/1.1/attempt-2.review-1.jsonl\n"),
        "{last}"
    );
}

#[test]
fn follow_prints_the_checks_when_the_record_appears() {
    let p = project(PLAN);
    records(&p);
    // Session 3 is running: a transcript, no record yet, and the plan's lock held (here by the
    // test, as a run would hold it).
    p.write(&format!("{TASK_DIR}/attempt-3.jsonl"), "");
    let locks = p.path().join(".baton/logs/locks");
    std::fs::create_dir_all(&locks).unwrap();
    let lock = File::create(baton::run::lock::plan_lock_path(&locks, &p.path().join("plan.yaml"))).unwrap();
    // SAFETY: flock(2) on a descriptor this test owns.
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) }, 0);
    let out = p.state_path("follow.out");
    let mut follow = p
        .command(&["logs", "plan.yaml", "1.1", "--follow"])
        .stdout(File::create(&out).unwrap())
        .stderr(File::create(p.state_path("follow.err")).unwrap())
        .spawn()
        .unwrap();
    let read = || std::fs::read_to_string(&out).unwrap_or_default();
    wait_for("the follower to wait", || read().contains("outcome: running"));
    assert!(!read().contains("check:"), "{}", read());
    p.write(
        &format!("{TASK_DIR}/attempt-3.json"),
        r#"{"task": "1.1", "session": 3, "attempt": 3, "started_at": "", "ended_at": "", "duration_seconds": 1.0,
  "outcome": "failed", "message": "check failed", "cost_usd": null, "turns": null, "input_tokens": null,
  "output_tokens": null, "session_id": null, "exit": null, "waited_seconds": null, "model": "opus",
  "checks": [{"command": "cargo test", "from": "config", "exit": 101, "timed_out": false, "passed": false,
    "duration_seconds": 2.0, "output": "o.out", "tail": "test result: FAILED"}],
  "review": {"verdict": null, "findings": [], "problem": "the reviewer wrote no verdict", "sessions": 2,
    "model": null, "cost_usd": null, "transcripts": []}}"#,
    );
    assert_eq!(wait_exit(&mut follow), Some(0), "{}", std::fs::read_to_string(p.state_path("follow.err")).unwrap_or_default());
    drop(lock);
    let text = read();
    assert!(text.contains("outcome: failed — check failed"), "{text}");
    assert!(text.contains("check: cargo test [config] — failed (exit 101) · 2.0s\n  output: o.out\n  | test result: FAILED\n"), "{text}");
    assert!(text.contains("review: no verdict (2 sessions)\n  problem: the reviewer wrote no verdict\n"), "{text}");
}
