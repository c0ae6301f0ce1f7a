//! Completed means verified: checks after a `completed` report, the no-op rule, a reviewer
//! session, and model escalation — through the real binary and the scripted fake agent.

use crate::support::{project, Project, FAST_CONFIG};

fn prompts(p: &Project) -> Vec<String> {
    p.invocations().iter().map(|i| i["prompt"].as_str().unwrap_or_default().to_string()).collect()
}

fn argv(p: &Project, n: usize) -> Vec<String> {
    p.invocations()[n]["argv"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect()
}

fn model_of(argv: &[String]) -> Option<&str> {
    argv.iter().position(|a| a == "--model").and_then(|i| argv.get(i + 1)).map(String::as_str)
}

fn record(p: &Project, task: &str, session: u32) -> serde_json::Value {
    let text = std::fs::read_to_string(p.record_path(task, session)).unwrap_or_else(|e| panic!("record {task}/{session}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn with_config(plan: &str, extra: &str) -> Project {
    let p = project(plan);
    p.write("baton.toml", &format!("{FAST_CONFIG}\n{extra}\n"));
    p.repo.commit_all("config");
    p
}

const CHECKED: &str = "sections:\n- id: s\n  name: S\n  tasks:\n  - id: t\n    name: Write out.txt\n    verify: test -f out.txt\n";

#[test]
fn a_completed_report_that_fails_its_check_is_not_completed_and_the_retry_is_told_why() {
    let p = project(CHECKED);
    // Attempt 1 reports completed and does nothing; attempt 2 does the work.
    p.scenario(r#"{"tasks": {"t": [{"message": "all done"}, {"write": {"out.txt": "x"}, "commit": "t: out.txt"}]}}"#);
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let plan = p.plan();
    let t = plan.task("t").unwrap();
    assert_eq!((t.status.as_str(), t.attempts), ("completed", 2));
    // Attempt 1: its check failed, with the command and its exit code.
    let first = record(&p, "t", 1);
    assert_eq!(first["outcome"], "failed", "{first}");
    assert_eq!(first["checks"][0]["command"], "test -f out.txt");
    assert_eq!(first["checks"][0]["passed"], false);
    assert_eq!(first["checks"][0]["exit"], 1);
    assert!(first["message"].as_str().unwrap().contains("check `test -f out.txt` failed (exit 1)"), "{first}");
    assert_eq!(record(&p, "t", 2)["checks"][0]["passed"], true);
    // The retry's prompt carries the failing command.
    let prompts = prompts(&p);
    assert!(!prompts[0].contains("What the last attempt left to fix"), "{}", prompts[0]);
    assert!(prompts[1].contains("What the last attempt left to fix") && prompts[1].contains("test -f out.txt"), "{}", prompts[1]);
    assert!(r.stdout().contains("check `test -f out.txt` failed (exit 1)"), "{}", r.stdout());
}

#[test]
fn a_task_whose_check_keeps_failing_is_never_completed() {
    let p = project(&CHECKED.replace("    verify:", "    max_attempts: 2\n    verify:"));
    p.scenario(r#"{"tasks": {"t": [{"message": "all done"}]}}"#);
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 1, "{}", r.all());
    let plan = p.plan();
    let t = plan.task("t").unwrap();
    assert_eq!((t.status.as_str(), t.attempts), ("failed", 2));
    assert!(t.last_error.as_deref().unwrap().contains("check `test -f out.txt` failed (exit 1)"), "{:?}", t.last_error);
}

#[test]
fn checks_come_from_the_config_the_plan_and_the_task_in_that_order() {
    let plan = "meta:\n  verify: [echo plan >> order.log]\nsections:\n- id: s\n  name: S\n  tasks:\n  - id: t\n    name: T\n    verify: echo task >> order.log\n";
    let p = with_config(plan, "[verify]\ncommands = [\"echo config > order.log\"]");
    p.scenario(r#"{"tasks": {"t": [{"write": {"x.txt": "x"}, "commit": "t"}]}}"#);
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(std::fs::read_to_string(p.path().join("order.log")).unwrap(), "config\nplan\ntask\n");
    let rec = record(&p, "t", 1);
    let from: Vec<&str> = rec["checks"].as_array().unwrap().iter().map(|c| c["from"].as_str().unwrap()).collect();
    assert_eq!(from, ["config", "plan", "task"]);
}

const NOOP: &str = "sections:\n- id: s\n  name: S\n  tasks:\n  - id: t\n    name: T\n    max_attempts: 1\n";

#[test]
fn a_completed_report_without_any_change_fails_under_require_changes_fail() {
    let p = with_config(NOOP, "[verify]\nrequire_changes = \"fail\"");
    p.scenario(r#"{"tasks": {"t": [{"message": "nothing to do"}]}}"#);
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 1, "{}", r.all());
    let plan = p.plan();
    let t = plan.task("t").unwrap();
    assert_eq!(t.status.as_str(), "failed");
    assert!(t.last_error.as_deref().unwrap().contains("without any change"), "{:?}", t.last_error);
    assert_eq!(record(&p, "t", 1)["changed"], false);
}

#[test]
fn by_default_a_completed_report_without_any_change_is_only_warned_about() {
    let p = project(NOOP);
    p.scenario(r#"{"tasks": {"t": [{"message": "nothing to do"}]}}"#);
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(p.plan().task("t").unwrap().status.as_str(), "completed");
    assert!(r.stderr().contains("t was reported completed without any change"), "{}", r.all());
    // A task that says no change is expected gets no warning; a change gets none either.
    let quiet = project(&NOOP.replace("    max_attempts: 1\n", "    max_attempts: 1\n    expect_changes: false\n"));
    quiet.scenario(r#"{"tasks": {"t": [{}]}}"#);
    let r = quiet.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(!r.all().contains("without any change"), "{}", r.all());
    let changed = project(NOOP);
    changed.scenario(r#"{"tasks": {"t": [{"write": {"a.txt": "a"}}]}}"#);
    let r = changed.baton(&["run", "plan.yaml"]);
    assert!(!r.all().contains("without any change"), "{}", r.all());
    assert_eq!(record(&changed, "t", 1)["changed"], true);
}

const REVIEWED: &str = "sections:\n- id: s\n  name: S\n  tasks:\n  - id: t\n    name: Parser\n";

#[test]
fn a_reviewer_fail_then_pass_ends_verified_and_the_retry_carries_the_findings() {
    let p = with_config(REVIEWED, "[review]\nenabled = true");
    // Sessions of t, in order: coder, reviewer, coder, reviewer.
    p.scenario(
        r#"{"tasks": {"t": [
            {"write": {"parser.rs": "fn parse() {}"}, "commit": "t: parser"},
            {"status_json": {"task_id": "t", "verdict": "FAIL", "findings": ["no tests for the parser", "parse() ignores its input"]}},
            {"write": {"parser_test.rs": "fn test_parse() {}"}, "commit": "t: tests"},
            {"status_json": {"task_id": "t", "verdict": "PASS", "findings": []}}
        ]}}"#,
    );
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let plan = p.plan();
    let t = plan.task("t").unwrap();
    assert_eq!((t.status.as_str(), t.attempts), ("verified", 2));
    let prompts = prompts(&p);
    assert_eq!(prompts.len(), 4, "two coder and two reviewer sessions");
    assert!(prompts[1].starts_with("You are reviewing") && prompts[3].starts_with("You are reviewing"));
    // The reviewer saw the attempt's diff.
    assert!(prompts[1].contains("parser.rs"), "{}", prompts[1]);
    // The second coder session was told what the reviewer found.
    assert!(prompts[2].contains("no tests for the parser") && prompts[2].contains("parse() ignores its input"), "{}", prompts[2]);
    assert_eq!(record(&p, "t", 1)["review"]["verdict"], "FAIL");
    assert!(r.stdout().contains("FAIL"), "{}", r.stdout());
    let status = p.baton(&["status", "plan.yaml"]);
    assert!(status.stdout().contains("verified"), "{}", status.stdout());
}

#[test]
fn a_reviewer_warn_completes_the_task_with_its_findings() {
    let p = with_config(REVIEWED, "[review]\nenabled = true");
    p.scenario(
        r#"{"tasks": {"t": [
            {"write": {"parser.rs": "x"}, "commit": "t", "message": "parser written"},
            {"status_json": {"task_id": "t", "verdict": "WARN", "findings": ["naming is inconsistent"]}}
        ]}}"#,
    );
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let plan = p.plan();
    let t = plan.task("t").unwrap();
    assert_eq!((t.status.as_str(), t.attempts), ("completed", 1));
    let message = t.result_message.as_deref().unwrap();
    assert!(message.contains("parser written") && message.contains("naming is inconsistent"), "{message}");
}

#[test]
fn a_broken_reviewer_does_not_spend_the_tasks_attempts() {
    let p = with_config(&REVIEWED.replace("    name: Parser\n", "    name: Parser\n    max_attempts: 1\n"), "[review]\nenabled = true");
    // The reviewer crashes, then writes garbage: the task completes, with a warning.
    p.scenario(r#"{"tasks": {"t": [{"write": {"parser.rs": "x"}, "commit": "t"}, {"crash": true}, {"status_json": "{not a verdict"}]}}"#);
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let plan = p.plan();
    let t = plan.task("t").unwrap();
    assert_eq!((t.status.as_str(), t.attempts), ("completed", 1));
    assert!(r.stderr().contains("t could not be reviewed"), "{}", r.all());
    let rec = record(&p, "t", 1);
    assert_eq!(rec["review"]["verdict"], serde_json::Value::Null);
    assert_eq!(rec["review"]["sessions"], 2);
}

#[test]
fn a_reviewer_that_fails_a_task_too_often_exhausts_its_validation() {
    let p = with_config(&REVIEWED.replace("    name: Parser\n", "    name: Parser\n    max_attempts: 5\n"), "[review]\nenabled = true\nmax_attempts = 2");
    p.scenario(
        r#"{"tasks": {"t": [
            {"write": {"a.txt": "1"}, "commit": "t"},
            {"status_json": {"task_id": "t", "verdict": "FAIL", "findings": ["wrong"]}},
            {"write": {"b.txt": "2"}, "commit": "t"},
            {"status_json": {"task_id": "t", "verdict": "FAIL", "findings": ["still wrong"]}}
        ]}}"#,
    );
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 1, "{}", r.all());
    let plan = p.plan();
    let t = plan.task("t").unwrap();
    assert_eq!((t.status.as_str(), t.attempts), ("validation_exhausted", 2));
    assert!(t.last_error.as_deref().unwrap().contains("still wrong"), "{:?}", t.last_error);
}

#[test]
fn the_model_ladder_moves_up_a_rung_per_failed_attempt_and_model_used_says_the_last() {
    let plan = "sections:\n- id: s\n  name: S\n  tasks:\n  - id: t\n    name: T\n    max_attempts: 3\n    models: [a, b, c]\n";
    let p = project(plan);
    p.scenario(r#"{"tasks": {"t": [{"status": "failed", "message": "nope"}]}}"#);
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 1, "{}", r.all());
    let models: Vec<String> = (0..3).map(|n| model_of(&argv(&p, n)).unwrap_or("").to_string()).collect();
    assert_eq!(models, ["a", "b", "c"]);
    assert_eq!(p.plan().task("t").unwrap().model_used.as_deref(), Some("c"));
    assert_eq!(record(&p, "t", 3)["model"], "c");
    // A failed check moves up a rung too; the plan's ladder serves tasks without their own.
    let q = project("meta:\n  models: [small, large]\nsections:\n- id: s\n  name: S\n  tasks:\n  - id: t\n    name: T\n    verify: test -f out.txt\n");
    q.scenario(r#"{"tasks": {"t": [{}, {"write": {"out.txt": "x"}}]}}"#);
    assert_eq!(q.baton(&["run", "plan.yaml"]).code(), 0);
    assert_eq!((model_of(&argv(&q, 0)), model_of(&argv(&q, 1))), (Some("small"), Some("large")));
    assert_eq!(q.plan().task("t").unwrap().model_used.as_deref(), Some("large"));
}

#[test]
fn a_parallel_tasks_checks_run_in_its_worktree_and_a_failing_one_lands_nothing() {
    let plan = "sections:\n- id: s\n  name: S\n  tasks:\n  - id: good\n    name: Good\n    parallel_group: g\n    verify: test -f good.txt && pwd > where.txt\n  - id: bad\n    name: Bad\n    parallel_group: g\n    max_attempts: 1\n    verify: test -f never.txt\n";
    let p = project(plan);
    p.scenario(r#"{"tasks": {"good": [{"write": {"good.txt": "g"}, "commit": "good"}], "bad": [{"write": {"bad.txt": "b"}, "commit": "bad"}]}}"#);
    let r = p.baton(&["run", "plan.yaml", "--parallel"]);
    assert_eq!(r.code(), 1, "{}", r.all());
    let plan = p.plan();
    assert_eq!(plan.task("good").unwrap().status.as_str(), "completed");
    assert_eq!(plan.task("bad").unwrap().status.as_str(), "failed");
    assert!(p.path().join("good.txt").exists(), "the good task landed");
    assert!(!p.path().join("bad.txt").exists(), "a task that failed its check landed nothing");
    // The check ran in the task's worktree, not in the checkout.
    // (What a check writes is part of the task's changes, and lands with them.)
    let where_ = std::fs::read_to_string(p.path().join("where.txt")).expect("the good task's check wrote where.txt");
    assert!(where_.contains("/.worktrees/"), "{where_}");
    let cwd = p.invocations().iter().find(|i| i["task_id"] == "good").unwrap()["cwd"].as_str().unwrap().to_string();
    assert!(cwd.contains("/.worktrees/"), "{cwd}");
}

#[test]
fn an_agent_that_edits_its_own_checks_in_the_plan_is_still_held_to_them() {
    let p = project(&CHECKED.replace("    verify:", "    max_attempts: 2\n    verify:"));
    // Attempt 1 rewrites its check in the plan to `true`; attempt 2 does nothing either.
    p.scenario(r#"{"tasks": {"t": [{"plan_replace": ["verify: test -f out.txt", "verify: 'true'"], "plan_modified": true}, {}]}}"#);
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 1, "{}", r.all());
    let plan = p.plan();
    let t = plan.task("t").unwrap();
    assert_eq!((t.status.as_str(), t.attempts), ("failed", 2));
    assert!(t.last_error.as_deref().unwrap().contains("test -f out.txt"), "{:?}", t.last_error);
    assert!(r.stderr().contains("t: its checks were changed in the plan during this run"), "{}", r.all());
}

#[test]
fn a_check_that_rewrites_the_agents_work_fails_the_attempt() {
    let plan = "sections:\n- id: s\n  name: S\n  tasks:\n  - id: t\n    name: T\n    max_attempts: 1\n    verify: git reset -q --hard HEAD~1\n";
    let p = project(plan);
    p.scenario(r#"{"tasks": {"t": [{"write": {"work.txt": "w"}, "commit": "t: work"}]}}"#);
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 1, "{}", r.all());
    let plan = p.plan();
    let t = plan.task("t").unwrap();
    assert_eq!(t.status.as_str(), "failed");
    assert!(t.last_error.as_deref().unwrap().contains("changed the task's working copy"), "{:?}", t.last_error);
    // A check's new files (by-products) are not such a change.
    let q = project("sections:\n- id: s\n  name: S\n  tasks:\n  - id: t\n    name: T\n    verify: echo report > coverage.txt\n");
    q.scenario(r#"{"tasks": {"t": [{"write": {"work.txt": "w"}, "commit": "t: work"}]}}"#);
    let r = q.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(q.plan().task("t").unwrap().status.as_str(), "completed");
}

#[test]
fn a_reviewer_that_meets_a_usage_limit_leaves_the_task_unreviewed_and_waits() {
    let p = project(REVIEWED);
    p.write("baton.toml", &format!("{}\n[review]\nenabled = true\n", FAST_CONFIG.replace("[run]\n", "[run]\nlimit_fallback_seconds = 0.5\n")));
    p.repo.commit_all("config");
    // No reset in the message: the wait is limit_fallback_seconds (a reset it says is waited
    // for, as a coder's is).
    p.scenario(
        r#"{"tasks": {"t": [
            {"write": {"a.txt": "1"}, "commit": "t"},
            {"limit": "You've hit your limit"},
            {"write": {"b.txt": "2"}, "commit": "t"},
            {"status_json": {"task_id": "t", "verdict": "PASS", "findings": []}}
        ]}}"#,
    );
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let plan = p.plan();
    let t = plan.task("t").unwrap();
    // Not completed without its review: the limited attempt did not count, the next was reviewed.
    assert_eq!((t.status.as_str(), t.attempts), ("verified", 1));
    assert_eq!(record(&p, "t", 1)["outcome"], "limited");
    assert!(!r.all().contains("completed without a review"), "{}", r.all());
}

#[test]
fn the_simulated_agent_stands_in_for_a_reviewer_with_a_warn_that_says_nothing_was_reviewed() {
    let p = with_config(REVIEWED, "[review]\nenabled = true");
    let r = p.baton(&["run", "plan.yaml", "--agent", "simulated"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let plan = p.plan();
    let t = plan.task("t").unwrap();
    assert_eq!(t.status.as_str(), "completed", "never verified by a stand-in");
    assert!(t.result_message.as_deref().unwrap().contains("simulated reviewer: no model was called"), "{:?}", t.result_message);
    assert!(!r.all().contains("could not be reviewed"), "{}", r.all());
}
