//! `baton run` against the scripted fake agent: every behaviour of the sequential engine.

use baton::plan::Status;
use baton_testkit::process_alive;

use crate::support::{FAST_CONFIG, Project, project, signal, wait_exit, wait_for};

const THREE: &str = "meta:
  name: Three steps
  max_attempts_default: 3
sections:
- id: s1
  name: First
  tasks:
  - id: '1.1'
    name: One
    status: pending
    description: 'Write one.txt. Files: one.txt'
  - id: '1.2'
    name: Two
    status: pending
    depends_on: ['1.1']
- id: s2
  name: Second
  tasks:
  - id: '2.1'
    name: Three
    status: pending
    depends_on: ['1.2']
";

fn task_status(p: &Project, id: &str) -> (Status, u32, Option<String>) {
    let plan = p.plan();
    let t = plan.task(id).unwrap_or_else(|| panic!("no task {id}"));
    (t.status, t.attempts, t.last_error.clone())
}

#[test]
fn a_plan_runs_to_completion_with_one_commit_per_task() {
    let p = project(THREE);
    p.scenario(r#"{"tasks": {"1.1": [{"write": {"one.txt": "1"}, "commit": "task 1.1", "message": "wrote one", "cost": 0.5}]}}"#);
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    for id in ["1.1", "1.2", "2.1"] {
        assert_eq!(task_status(&p, id).0, Status::Completed, "{id}");
        assert_eq!(task_status(&p, id).1, 1);
    }
    let plan = p.plan();
    assert_eq!(plan.task("1.1").unwrap().result_message.as_deref(), Some("wrote one"));
    assert!(plan.task("1.1").unwrap().completed_at.is_some());
    assert_eq!(plan.sections[0].status, Some(Status::Completed));
    assert_eq!(p.read("one.txt"), "1");
    let log = p.repo.log_subjects();
    assert_eq!(
        log[..4],
        ["baton: 2.1 completed — Three", "baton: 1.2 completed — Two", "baton: 1.1 completed — One", "task 1.1"]
    );
    // A fresh session per task, in the repository, with the documented flags.
    let inv = p.invocations();
    assert_eq!(inv.len(), 3);
    let argv: Vec<&str> = inv[0]["argv"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    assert_eq!(argv[1..3], ["--dangerously-skip-permissions", "--print"]);
    // The prompt comes on stdin, not on the command line.
    assert_eq!(argv[3..], ["--output-format", "stream-json", "--verbose"]);
    assert!(inv[0]["prompt"].as_str().unwrap().contains("Task ID: 1.1"));
    assert_ne!(inv[0]["pgid"], inv[1]["pgid"], "each attempt has its own process group");
    assert!(r.stdout().contains("finished in"), "{}", r.stdout());
    assert!(r.stdout().contains("3 of 3 completed · agent cost $0.5200"), "{}", r.stdout());
    // The working tree holds no leftovers of baton's (the status file is consumed, logs ignore themselves).
    assert_eq!(p.repo.status_porcelain(), "", "baton left files in the working tree");
}

#[test]
fn status_and_logs_show_what_happened() {
    let p = project(THREE);
    p.scenario(r#"{"tasks": {"1.1": [{"status": "failed", "message": "red tests", "cost": 0.25}, {"write": {"a.txt": "x"}, "cost": 0.5}]}}"#);
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let s = p.baton(&["status", "plan.yaml", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&s.stdout()).unwrap();
    let t = &v["sections"][0]["tasks"][0];
    assert_eq!(t["attempts"], 2);
    assert_eq!(t["usage"]["cost_usd"], 0.75);
    assert_eq!(t["usage"]["sessions"], 2);
    assert!(t["usage"]["seconds"].as_f64().unwrap() > 0.0);
    let table = p.baton(&["status", "plan.yaml"]).stdout();
    assert!(table.contains("$0.7500"), "{table}");

    let logs = p.baton(&["logs", "plan.yaml", "1.1"]);
    assert_eq!(logs.code(), 0, "{}", logs.stderr());
    let out = logs.stdout();
    assert!(out.contains("attempt 2 of 2 recorded"), "{out}");
    assert!(out.contains("outcome: completed"), "{out}");
    assert!(out.contains("[Tool] Write: "), "{out}");
    assert!(out.contains("[Result] "), "{out}");
    let first = p.baton(&["logs", "plan.yaml", "1.1", "--attempt", "1"]).stdout();
    assert!(first.contains("outcome: failed — red tests"), "{first}");
    let none = p.baton(&["logs", "plan.yaml", "1.1", "--attempt", "7"]);
    assert_eq!(none.code(), 2);
    assert!(none.stderr().contains("no attempt 7; recorded: 1, 2"), "{}", none.stderr());
    let unknown = p.baton(&["logs", "plan.yaml", "9.9"]);
    assert_eq!(unknown.code(), 2);
}

#[test]
fn a_task_that_fails_twice_then_succeeds() {
    let p = project(THREE);
    p.scenario(r#"{"tasks": {"1.2": [{"status": "failed", "message": "first"}, {"status": "failed", "message": "second"}, {}]}}"#);
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let (status, attempts, last_error) = task_status(&p, "1.2");
    assert_eq!((status, attempts), (Status::Completed, 3));
    assert_eq!(last_error.as_deref(), Some("second"));
    assert!(r.stdout().contains("1.2 failed (attempt 1/3); retrying"), "{}", r.stdout());
}

#[test]
fn a_failed_task_blocks_its_dependents_and_the_run_says_so() {
    let p = project(THREE);
    p.scenario(r#"{"tasks": {"1.1": [{"status": "failed", "message": "cannot"}]}}"#);
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 3, "{}", r.all());
    assert_eq!(task_status(&p, "1.1"), (Status::Failed, 3, Some("cannot".into())));
    assert_eq!(task_status(&p, "1.2").0, Status::Pending);
    let out = r.stdout();
    assert!(out.contains("blocked: 2 tasks can never run"), "{out}");
    assert!(out.contains("1.2: its dependency '1.1' failed"), "{out}");
    assert!(out.contains("2.1: waits for '1.2'"), "{out}");
    // The task's line says how it ended once: not "failed: failed after …".
    assert!(out.contains("— failed after 3 attempts: cannot"), "{out}");
    assert!(!out.contains("failed: failed"), "{out}");
    let log = p.read(".baton/logs/plan/run.log");
    assert!(log.contains("[TASK] 1.1 failed after 3 attempts: cannot"), "{log}");
    assert_eq!(p.invocations().len(), 3, "the blocked tasks were started");
    assert!(p.repo.log_subjects()[0].starts_with("baton: 1.1 failed after 3 attempts"));
}

#[test]
fn every_kind_of_bad_report_fails_the_attempt_with_a_reason() {
    let cases = [
        (r#"{"crash": true}"#, "no status report"),
        (r#"{"status": "none"}"#, "wrote no .claude/plans/task-status.json"),
        (r#"{"status": "malformed"}"#, "is not valid JSON"),
        (r#"{"status": "wrong_id"}"#, "reports task 'nope', not the task that was run ('1.1')"),
    ];
    for (step, want) in cases {
        let p = project(THREE);
        p.write("baton.toml", &format!("{FAST_CONFIG}max_attempts = 1\n"));
        p.scenario(&format!(r#"{{"tasks": {{"1.1": [{step}]}}}}"#));
        p.write("plan.yaml", &THREE.replace("  max_attempts_default: 3\n", ""));
        p.repo.commit_all("config");
        let r = p.baton(&["run", "plan.yaml"]);
        assert_eq!(r.code(), 3, "{step}: {}", r.all());
        let (status, attempts, err) = task_status(&p, "1.1");
        assert_eq!((status, attempts), (Status::Failed, 1), "{step}");
        assert!(err.as_deref().unwrap_or("").contains(want), "{step}: {err:?}");
    }
}

#[test]
fn a_crash_names_the_exit_and_stderr() {
    let p = project(&THREE.replace("max_attempts_default: 3", "max_attempts_default: 1"));
    p.scenario(r#"{"tasks": {"1.1": [{"crash": true}]}}"#);
    let r = p.baton(&["run", "plan.yaml"]);
    let err = task_status(&p, "1.1").2.unwrap();
    assert!(err.contains("exit code 2"), "{err}");
    assert!(err.contains("fake-claude: crashed"), "{err}");
    assert!(err.contains("no status report"), "{err}");
    // The run's one-line view cuts a long reason: how the agent ended comes first, so it shows.
    let out = r.stdout();
    let line = out.lines().find(|l| l.contains("✗ 1.1") && l.contains("attempt 1/1")).unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains("exit code 2") && line.contains("fake-claude: crashed"), "{line}");
}

#[test]
fn a_status_in_the_final_answer_counts_when_the_file_is_missing() {
    let p = project(THREE);
    p.scenario(r#"{"default": [{"status_in_result": true}]}"#);
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(task_status(&p, "2.1").0, Status::Completed);
}

#[test]
fn a_stale_status_file_is_never_read_as_a_new_result() {
    let p = project(THREE);
    p.write(".claude/plans/task-status.json", r#"{"task_id": "1.1", "status": "completed", "message": "old"}"#);
    p.scenario(r#"{"tasks": {"1.1": [{"status": "none"}, {}]}}"#);
    let r = p.baton(&["run", "plan.yaml", "--single-task"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let (status, attempts, err) = task_status(&p, "1.1");
    assert_eq!((status, attempts), (Status::Completed, 2));
    assert!(err.unwrap().contains("no status report"));
}

#[test]
fn an_agent_adding_a_task_gets_it_run() {
    let p = project(THREE);
    let added = "  - id: '2.2'\n    name: Added by the agent\n    status: pending\n    depends_on: ['2.1']\n";
    p.scenario(&format!(
        r#"{{"tasks": {{"1.1": [{{"plan_append": {}, "plan_modified": true}}]}}}}"#,
        serde_json::to_string(added).unwrap()
    ));
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(task_status(&p, "2.2").0, Status::Completed);
    assert_eq!(p.invocations().len(), 4);
}

#[test]
fn an_unannounced_plan_edit_is_kept() {
    let p = project(THREE);
    p.scenario(r#"{"tasks": {"1.1": [{"plan_replace": ["name: Three", "name: Three (reworded)"]}]}}"#);
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(p.plan().task("2.1").unwrap().name, "Three (reworded)");
}

#[test]
fn an_invalid_plan_edit_is_reported_and_the_last_good_plan_kept() {
    let p = project(THREE);
    p.scenario(r#"{"tasks": {"1.1": [{"plan_replace": ["depends_on: ['1.2']", "depends_on: ['9.9']"], "plan_modified": true}]}}"#);
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(r.stderr().contains("is not valid"), "{}", r.stderr());
    assert_eq!(p.plan().task("2.1").unwrap().depends_on[0].as_str(), "1.2");
    let kept: Vec<_> = std::fs::read_dir(p.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("plan.yaml.rejected-"))
        .collect();
    assert_eq!(kept.len(), 1, "the agent's invalid text was not kept aside");
    assert!(std::fs::read_to_string(kept[0].path()).unwrap().contains("'9.9'"));
}

#[test]
fn a_hung_agent_and_its_grandchild_are_ended_by_the_idle_timeout() {
    let p = project(&THREE.replace("max_attempts_default: 3", "max_attempts_default: 1\n  idle_timeout_seconds: 3"));
    p.scenario(r#"{"tasks": {"1.1": [{"hang": true}]}}"#);
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 3, "{}", r.all());
    let err = task_status(&p, "1.1").2.unwrap();
    assert!(err.contains("no output from the agent for 3 s (idle timeout)"), "{err}");
    let agent = p.pid_file("1.1-1.agent.pid").expect("agent pid");
    let grandchild = p.pid_file("1.1-1.grandchild.pid").expect("grandchild pid");
    wait_for("the hung agent and its grandchild to be gone", || !process_alive(agent) && !process_alive(grandchild));
}

#[test]
fn the_total_timeout_ends_an_agent_that_keeps_talking() {
    let p = project(&THREE.replace("max_attempts_default: 3", "max_attempts_default: 1\n  timeout_seconds: 3"));
    p.scenario(r#"{"tasks": {"1.1": [{"hang_streaming": true}]}}"#);
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 3, "{}", r.all());
    let err = task_status(&p, "1.1").2.unwrap();
    assert!(err.contains("total timeout of 3 s"), "{err}");
    let grandchild = p.pid_file("1.1-1.grandchild.pid").expect("grandchild pid");
    wait_for("the grandchild to be gone", || !process_alive(grandchild));
}

#[test]
fn kill_9_of_baton_orphans_nothing_and_the_next_run_resumes_without_spending_the_attempt() {
    let p = project(THREE);
    p.scenario(r#"{"tasks": {"1.2": [{"hang": true}, {}]}}"#);
    let mut child = p.spawn(&["run", "plan.yaml"]);
    // The fake agent writes its own pid file after the grandchild's.
    wait_for("the agent of 1.2 to hang", || p.pid_file("1.2-1.agent.pid").is_some());
    let agent = p.pid_file("1.2-1.agent.pid").unwrap();
    let grandchild = p.pid_file("1.2-1.grandchild.pid").unwrap();
    assert!(process_alive(agent) && process_alive(grandchild));
    signal(&child, libc::SIGKILL);
    let _ = child.wait();
    wait_for("the agent and its grandchild to die with baton", || !process_alive(agent) && !process_alive(grandchild));
    assert_eq!(task_status(&p, "1.2").0, Status::InProgress, "the kill left the task in progress");

    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(r.stdout().contains("1.2 was left in progress by an interrupted run; back to pending"), "{}", r.stdout());
    assert_eq!(task_status(&p, "1.2"), (Status::Completed, 1, None), "the killed attempt counted");
}

#[test]
fn the_stop_file_lets_the_running_task_finish_and_starts_no_other() {
    let p = project(THREE);
    p.scenario(r#"{"tasks": {"1.1": [{"events": 40, "interval_ms": 50}]}}"#);
    let mut child = p.spawn(&["run", "plan.yaml"]);
    wait_for("1.1 to start", || !p.invocations().is_empty());
    let stop = p.baton(&["stop", "plan.yaml"]);
    assert_eq!(stop.code(), 0);
    assert_eq!(wait_exit(&mut child), Some(4), "{}", p.log());
    assert_eq!(task_status(&p, "1.1").0, Status::Completed, "{}", p.log());
    assert_eq!(task_status(&p, "1.2").0, Status::Pending);
    assert_eq!(p.invocations().len(), 1);
    assert!(p.log().contains("stop requested"), "{}", p.log());
    assert!(!p.path().join(".claude/plans/.stop").exists(), "the honoured stop file was left behind");
    // A stale stop file (left while no run watched) is cleared at the next start.
    p.write(".claude/plans/.stop", "");
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 0, "{}", r.all());
}

#[test]
fn a_second_ctrl_c_ends_the_agent_and_spends_no_attempt() {
    let p = project(THREE);
    p.scenario(r#"{"tasks": {"1.1": [{"hang": true}]}}"#);
    let mut child = p.spawn(&["run", "plan.yaml"]);
    wait_for("the agent to hang", || p.pid_file("1.1-1.grandchild.pid").is_some());
    signal(&child, libc::SIGINT);
    wait_for("the graceful-stop notice", || p.log().contains("stopping gracefully"));
    let grandchild = p.pid_file("1.1-1.grandchild.pid").unwrap();
    assert!(process_alive(grandchild), "the first Ctrl+C must let the task run on");
    signal(&child, libc::SIGINT);
    assert_eq!(wait_exit(&mut child), Some(4), "{}", p.log());
    wait_for("the grandchild to be gone", || !process_alive(grandchild));
    assert_eq!(task_status(&p, "1.1"), (Status::Pending, 0, None));
}

#[test]
fn sigterm_ends_agents_now() {
    let p = project(THREE);
    p.scenario(r#"{"tasks": {"1.1": [{"hang": true}]}}"#);
    let mut child = p.spawn(&["run", "plan.yaml"]);
    // The fake agent writes its own pid file after the grandchild's.
    wait_for("the agent to hang", || p.pid_file("1.1-1.agent.pid").is_some());
    let agent = p.pid_file("1.1-1.agent.pid").unwrap();
    signal(&child, libc::SIGTERM);
    assert_eq!(wait_exit(&mut child), Some(4), "{}", p.log());
    wait_for("the agent to be gone", || !process_alive(agent));
    assert_eq!(task_status(&p, "1.1"), (Status::Pending, 0, None));
    assert!(p.repo.log_subjects()[0].contains("plan state at stop"));
}

#[test]
fn dry_run_lists_the_order_and_changes_nothing() {
    let p = project(&THREE.replace("name: One\n    status: pending", "name: One\n    status: in_progress"));
    let before = p.read("plan.yaml");
    let r = p.baton(&["run", "plan.yaml", "--dry-run"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let out = r.stdout();
    let a = out.find("1. 1.1 One").expect(&out);
    let b = out.find("2. 1.2 Two").expect(&out);
    let c = out.find("3. 2.1 Three").expect(&out);
    assert!(a < b && b < c);
    assert_eq!(p.read("plan.yaml"), before);
    assert!(p.invocations().is_empty());
    assert!(!p.path().join(".baton").exists(), "dry run wrote files");
}

#[test]
fn single_task_and_resume_from() {
    let p = project(THREE);
    let r = p.baton(&["run", "plan.yaml", "--single-task"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(task_status(&p, "1.1").0, Status::Completed);
    assert_eq!(task_status(&p, "1.2").0, Status::Pending);

    let p = project(&THREE.replace("depends_on: ['1.2']", "depends_on: []").replace("max_attempts_default: 3", "max_attempts_default: 3\n  smoke_command: echo SMOKE-RAN"));
    let r = p.baton(&["run", "plan.yaml", "--resume-from", "2.1"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(task_status(&p, "2.1").0, Status::Completed);
    assert_eq!(task_status(&p, "1.1").0, Status::Pending);
    // The plan is not finished: no smoke tests, no "plan completed", and the summary says so.
    assert!(!r.all().contains("SMOKE-RAN") && !r.all().contains("completed —"), "{}", r.all());
    assert!(r.all().contains("finished from 2.1 (--resume-from); 2 task(s) left out are still pending"), "{}", r.all());
    // Resuming past a dependency that is not done: nothing can run, and the run says why.
    let q = project(THREE);
    let r = q.baton(&["run", "plan.yaml", "--resume-from", "1.2"]);
    assert_eq!(r.code(), 3, "{}", r.all());
    assert!(r.stdout().contains("1.2: its dependency '1.1' is not completed and comes before --resume-from"), "{}", r.stdout());
    assert!(q.invocations().is_empty());
    let bad = p.baton(&["run", "plan.yaml", "--resume-from", "7"]);
    assert_eq!(bad.code(), 2);
    assert!(bad.stderr().contains("no task '7'"));
}

#[test]
fn one_baton_per_plan() {
    let p = project(THREE);
    p.scenario(r#"{"tasks": {"1.1": [{"hang": true}]}}"#);
    let mut first = p.spawn(&["run", "plan.yaml"]);
    wait_for("the first run's agent", || p.pid_file("1.1-1.agent.pid").is_some());
    let second = p.baton(&["run", "plan.yaml"]);
    assert_eq!(second.code(), 2, "{}", second.all());
    assert!(second.stderr().contains("another baton is already running plan"), "{}", second.stderr());
    signal(&first, libc::SIGTERM);
    wait_exit(&mut first);
}

#[test]
fn root_refusal_stops_the_run_and_says_how_to_fix_it() {
    let p = project(THREE);
    p.scenario(r#"{"default": [{"root_refusal": true}]}"#);
    let r = baton_testkit::run_with_deadline(
        p.command(&["run", "plan.yaml"]).env_remove("IS_SANDBOX"),
        std::time::Duration::from_secs(60),
    )
    .unwrap();
    assert_eq!(r.status.code(), Some(2), "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("IS_SANDBOX=1"), "{}", r.stderr);
    assert_eq!(task_status(&p, "1.1"), (Status::Pending, 0, None), "a refusal spent an attempt");
    assert_eq!(p.invocations().len(), 1, "baton retried a systemic failure");
}

#[test]
fn a_missing_agent_binary_is_a_clear_error() {
    let p = project(THREE);
    let r = baton_testkit::run_with_deadline(
        p.command(&["run", "plan.yaml"]).env("BATON_CLAUDE_BIN", "/nonexistent/claude"),
        std::time::Duration::from_secs(60),
    )
    .unwrap();
    assert_eq!(r.status.code(), Some(2));
    assert!(r.stderr.contains("/nonexistent/claude"), "{}", r.stderr);
    assert_eq!(p.read("plan.yaml"), THREE);
}

#[test]
fn the_circuit_breaker_opens_after_consecutive_failures() {
    let plan = "meta:\n  name: B\n  max_attempts_default: 2\nsections:\n- id: s\n  tasks:\n  - {id: a, name: A}\n  - {id: b, name: B}\n  - {id: c, name: C}\n";
    let p = project(plan);
    p.write("baton.toml", &format!("{FAST_CONFIG}\n[notify]\ncommand = \"cat >> notices.jsonl; echo >> notices.jsonl\"\n"));
    p.repo.commit_all("config");
    p.scenario(r#"{"default": [{"status": "failed", "message": "systemic"}]}"#);
    let r = p.baton(&["run", "plan.yaml", "--verbose"]);
    assert_eq!(r.code(), 1, "{}", r.all());
    let out = r.stdout();
    assert!(out.contains("circuit breaker open: 3 consecutive failures"), "{out}");
    assert!(out.contains("half-open: letting one attempt through"), "{out}");
    // One notice when it trips (a failed probe re-opening it is the same episode), one at the end.
    let events: Vec<String> = p
        .read("notices.jsonl")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["event"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(events, ["circuit_breaker", "tasks_failed"], "{out}");
}

#[test]
fn a_usage_limit_waits_for_the_reset_and_spends_no_attempt() {
    let p = project(THREE);
    let reset = jiff::Timestamp::now().as_second() + 1;
    p.scenario(&format!(
        r#"{{"tasks": {{"1.1": [{{"limit": "You've hit your limit · resets 6pm (America/Toronto)", "limit_resets_at": {reset}}}, {{}}]}}}}"#
    ));
    let r = p.baton(&["run", "plan.yaml", "--single-task"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(task_status(&p, "1.1"), (Status::Completed, 1, None));
    assert!(r.stdout().contains("usage limit"), "{}", r.stdout());
    let rec: serde_json::Value =
        serde_json::from_str(&p.read(".baton/logs/plan/1.1/attempt-1.json")).unwrap();
    assert_eq!(rec["outcome"], "limited");
    assert!(rec["waited_seconds"].as_f64().unwrap() > 0.0);
}

#[test]
fn throttling_backs_off_and_spends_no_attempt() {
    let p = project(THREE);
    p.scenario(r#"{"tasks": {"1.1": [{"throttle": "API Error: Server is temporarily limiting requests (not your usage limit) · Rate limited"}, {"throttle": "API Error: Server is temporarily limiting requests (not your usage limit) · Rate limited"}, {}]}}"#);
    let r = p.baton(&["run", "plan.yaml", "--single-task"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(task_status(&p, "1.1"), (Status::Completed, 1, None));
    assert!(r.stdout().contains("server-side throttling"), "{}", r.stdout());
}

#[test]
fn verbose_output_has_time_stamped_agent_lines() {
    let p = project(THREE);
    p.scenario(r#"{"tasks": {"1.1": [{"write": {"x.ts": "1"}, "commit": "c"}]}}"#);
    let r = p.baton(&["run", "plan.yaml", "--verbose", "--single-task"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let out = r.stdout();
    let lines: Vec<&str> = out.lines().map(|l| l.get(11..).unwrap_or("")).collect();
    let stamped = r.stdout().lines().all(|l| l.len() > 11 && l.as_bytes()[0] == b'[' && l.as_bytes()[9] == b']');
    assert!(stamped, "{}", r.stdout());
    for want in ["[1.1] [Tool] Write: ", "[1.1] [Tool] Bash: git add -A && git commit", "[1.1] [Result] ", "[EXEC] 1.1 One — attempt 1/3", "[FIND] next task: 1.1 One", "[GIT] committed the plan"] {
        assert!(lines.iter().any(|l| l.starts_with(want)), "no line starting {want:?}:\n{}", r.stdout());
    }
}

#[test]
fn a_limit_text_is_read_in_its_zone_against_the_pinned_clock() {
    let p = project(THREE);
    // 17:59:58 in Toronto; the CLI says the limit resets at 6pm there: two seconds away.
    p.scenario(r#"{"tasks": {"1.1": [{"limit": "You've hit your limit · resets 6pm (America/Toronto)"}, {}]}}"#);
    let r = baton_testkit::run_with_deadline(
        p.command(&["run", "plan.yaml", "--single-task"]).env("BATON_FAKE_NOW", "2026-11-25T17:59:58-05:00[America/Toronto]"),
        std::time::Duration::from_secs(60),
    )
    .unwrap();
    assert_eq!(r.status.code(), Some(0), "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("(18:00 in America/Toronto)"), "{}", r.stdout);
    let rec: serde_json::Value = serde_json::from_str(&p.read(".baton/logs/plan/1.1/attempt-1.json")).unwrap();
    assert_eq!(rec["outcome"], "limited");
    let waited = rec["waited_seconds"].as_f64().unwrap();
    // The reset is 2 s after the pinned start, plus the 0.1 s margin, less however long the
    // agent took to start on this machine; never the 1 h fallback, never a day.
    assert!((0.0..2.2).contains(&waited), "waited {waited} s");
    assert_eq!(task_status(&p, "1.1"), (Status::Completed, 1, None));
    let logs = p.baton(&["logs", "plan.yaml", "1.1", "--attempt", "1"]).stdout();
    assert!(logs.contains("outcome: limited") && logs.contains("baton then waited"), "{logs}");
}

#[test]
fn stop_during_a_limit_wait_exits_at_once_with_the_task_pending() {
    let p = project(THREE);
    let reset = jiff::Timestamp::now().as_second() + 3600;
    p.scenario(&format!(
        r#"{{"tasks": {{"1.1": [{{"limit": "You've hit your limit · resets 6pm (America/Toronto)", "limit_resets_at": {reset}}}]}}}}"#
    ));
    let mut child = p.spawn(&["run", "plan.yaml"]);
    wait_for("the limit wait", || p.log().contains("usage limit"));
    assert_eq!(p.baton(&["stop", "plan.yaml"]).code(), 0);
    assert_eq!(wait_exit(&mut child), Some(4), "{}", p.log());
    assert_eq!(task_status(&p, "1.1"), (Status::Pending, 0, None));
    let table = p.baton(&["status", "plan.yaml"]).stdout();
    assert!(table.contains("(usage limit; waited "), "{table}");
}

/// A folder holding a `claude` that is the fake agent, for PATH and npm-prefix resolution.
fn bin_dir_with_claude(p: &Project, name: &str) -> std::path::PathBuf {
    let dir = p.path().join(".test-bin").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink(baton_testkit::fake_claude_bin(), dir.join("claude")).unwrap();
    std::fs::write(p.path().join(".git/info/exclude"), ".test-bin/\n").unwrap();
    dir
}

#[test]
fn the_binary_is_found_on_path_then_through_the_npm_prefix() {
    let p = project(THREE);
    let on_path = bin_dir_with_claude(&p, "path");
    let path = format!("{}:/usr/bin:/bin", on_path.display());
    let r = baton_testkit::run_with_deadline(
        p.command(&["run", "plan.yaml", "--single-task"]).env_remove("BATON_CLAUDE_BIN").env("PATH", &path),
        std::time::Duration::from_secs(60),
    )
    .unwrap();
    assert_eq!(r.status.code(), Some(0), "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains(&format!("{}/claude (on PATH)", on_path.display())), "{}", r.stdout);

    // No claude on PATH, but `npm prefix -g` names a prefix whose bin/ has one.
    let prefix = p.path().join(".test-bin/prefix");
    bin_dir_with_claude(&p, "prefix/bin");
    let npm_dir = p.path().join(".test-bin/npm");
    std::fs::create_dir_all(&npm_dir).unwrap();
    let npm = npm_dir.join("npm");
    std::fs::write(&npm, format!("#!/bin/sh\n[ \"$1 $2\" = \"prefix -g\" ] && echo {}\n", prefix.display())).unwrap();
    std::fs::set_permissions(&npm, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:/usr/bin:/bin", npm_dir.display());
    let r = baton_testkit::run_with_deadline(
        p.command(&["run", "plan.yaml", "--single-task"]).env_remove("BATON_CLAUDE_BIN").env("PATH", &path),
        std::time::Duration::from_secs(60),
    )
    .unwrap();
    assert_eq!(r.status.code(), Some(0), "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("/prefix/bin/claude (npm global install)"), "{}", r.stdout);
    assert_eq!(task_status(&p, "1.2").0, Status::Completed);
}

#[test]
fn a_prompt_template_replaces_the_built_in_prompt() {
    let p = project(THREE);
    p.write(
        "prompts/task.md",
        "Custom prompt for {task_name}.\nTask ID: {task_id}\nStatus file: {status_file}\nPlan file: {plan_file}\nBuild: {build_command}\n",
    );
    p.write("baton.toml", &format!("{FAST_CONFIG}\n[agent]\nprompt_template = \"prompts/task.md\"\nbuild_command = \"make check\"\n"));
    p.repo.commit_all("config");
    let r = p.baton(&["run", "plan.yaml", "--single-task"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let prompt = p.invocations()[0]["prompt"].as_str().unwrap().to_string();
    assert_eq!(
        prompt,
        "Custom prompt for One.\nTask ID: 1.1\nStatus file: .claude/plans/task-status.json\nPlan file: plan.yaml\nBuild: run `make check`\n"
    );
}

#[test]
fn the_calm_view_shows_one_line_per_start_and_finish() {
    let p = project(THREE);
    p.scenario(r#"{"tasks": {"1.2": [{"status": "failed", "message": "red"}, {}]}}"#);
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let out = r.stdout();
    for want in [
        "▸ 1.1 One · attempt 1/3\n✓ 1.1 One — completed: did it\n",
        "  ✗ 1.2 Two · attempt 1/3: failed: red",
        "✓ 2.1 Three — completed: did it\n",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    assert!(!out.contains("[Tool]"), "raw agent activity in the calm view:\n{out}");
}

#[test]
fn a_task_that_cannot_start_ends_the_run_with_its_error() {
    let p = project(THREE);
    p.write("baton.toml", &format!("{FAST_CONFIG}\n[agent]\nprompt_template = \"prompts/missing.md\"\n"));
    p.repo.commit_all("config");
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 2, "{}", r.all());
    assert!(r.stderr().contains("cannot read the prompt template"), "{}", r.stderr());
    assert_eq!(task_status(&p, "1.1"), (Status::Pending, 0, None));
}

#[test]
fn an_agent_quoting_a_cli_error_in_its_work_is_not_a_broken_environment() {
    let p = project(THREE);
    p.scenario(r#"{"default": [{"message": "the 'Not logged in' banner now shows; also handled 'Invalid API key' and 'cannot be used with root/sudo privileges'"}]}"#);
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(task_status(&p, "2.1").0, Status::Completed);
}
