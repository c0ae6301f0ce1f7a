//! Plans written for the original tool's later versions: `dependencies:`, the statuses it
//! added, keys that look like known ones, misspelt statuses, conflict markers.

use crate::support::{project, Project};

/// The task ids the fake agent was started for, in order.
fn run_order(p: &Project) -> Vec<String> {
    p.invocations()
        .iter()
        .filter_map(|i| i["prompt"].as_str())
        .filter_map(|prompt| prompt.lines().find_map(|l| l.strip_prefix("Task ID: ")).map(str::to_string))
        .collect()
}

#[test]
fn dependencies_spelled_the_other_way_order_the_run() {
    // Plan order is the reverse of the dependency order: read as unknown keys, the run would
    // go c, b, a.
    let p = project(
        "meta:\n  name: Later\nsections:\n- id: s\n  name: S\n  tasks:\n  - id: c\n    name: C\n    agent: coder\n    dependencies: [b]\n  - id: b\n    name: B\n    dependencies:\n    - a\n  - id: a\n    name: A\n    model_used: sonnet\n",
    );
    let check = p.baton(&["check", "plan.yaml"]);
    assert_eq!(check.code(), 0, "{}", check.all());
    assert!(check.stdout().contains("note: tasks c, b: `dependencies:` read as `depends_on:`"), "{}", check.stdout());
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(run_order(&p), ["a", "b", "c"]);
    // The original tool's spelling is kept as written; `model_used` is baton's to write now.
    let text = p.read("plan.yaml");
    assert!(text.contains("    dependencies: [b]\n"), "{text}");
    assert_eq!(p.plan().task("a").unwrap().model_used.as_deref(), Some("claude-opus-5-5"), "{text}");
}

#[test]
fn verified_tasks_count_as_done_and_stay_verified() {
    let p = project(
        "sections:\n- id: s\n  name: S\n  tasks:\n  - id: a\n    name: A\n    status: verified\n    attempts: 2\n  - id: b\n    name: B\n    depends_on: [a]\n",
    );
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(run_order(&p), ["b"], "only b runs; a is done");
    let plan = p.plan();
    assert_eq!(plan.task("a").unwrap().status.as_str(), "verified");
    assert_eq!(plan.task("a").unwrap().attempts, 2);
    assert_eq!(plan.task("b").unwrap().status.as_str(), "completed");
    let status = p.baton(&["status", "plan.yaml"]);
    assert!(status.stdout().contains("2 of 2 completed (1 verified)"), "{}", status.stdout());
    assert!(status.stdout().lines().any(|l| l.trim_start().starts_with("a ") && l.contains("verified")), "{}", status.stdout());
}

#[test]
fn a_misspelt_status_is_an_error_naming_the_status_meant_and_changes_nothing() {
    let plan = "sections:\n- id: s\n  name: S\n  tasks:\n  - id: a\n    name: A\n    status: complete\n  - id: b\n    name: B\n";
    let p = project(plan);
    let head = p.repo.log_subjects();
    for args in [&["check", "plan.yaml"][..], &["run", "plan.yaml"], &["status", "plan.yaml"]] {
        let r = p.baton(args);
        assert_eq!(r.code(), 2, "{args:?}: {}", r.all());
        assert!(r.stderr().contains("plan.yaml:7:13: unknown status `complete` for task 'a'; did you mean `completed`?"), "{args:?}: {}", r.stderr());
        assert!(r.stderr().contains("help: write `status: completed`"), "{}", r.stderr());
    }
    assert_eq!(p.read("plan.yaml"), plan, "the plan was changed");
    assert_eq!(p.repo.log_subjects(), head, "something was committed");
    assert!(p.invocations().is_empty(), "an agent was started");
}

#[test]
fn a_key_close_to_a_known_one_is_a_warning_naming_it() {
    let plan = "sections:\n- id: s\n  name: S\n  tasks:\n  - id: a\n    name: A\n  - id: b\n    name: B\n    depends-on: [a]\n    paralel_group: g\n";
    let p = project(plan);
    let r = p.baton(&["check", "plan.yaml"]);
    assert_eq!(r.code(), 0, "a warning is not an error: {}", r.all());
    assert!(r.stderr().contains("warning: plan.yaml:9:5: task 'b' has an unknown key `depends-on`; did you mean `depends_on`?"), "{}", r.stderr());
    assert!(r.stderr().contains("warning: plan.yaml:10:5: task 'b' has an unknown key `paralel_group`; did you mean `parallel_group`?"), "{}", r.stderr());
    assert!(r.stdout().contains("valid — 1 section, 2 tasks") && r.stdout().contains("2 warnings"), "{}", r.stdout());
    let json: serde_json::Value = serde_json::from_str(&p.baton(&["check", "--json", "plan.yaml"]).stdout()).unwrap();
    assert_eq!(json["valid"], true);
    assert_eq!(json["warnings"][0]["line"], 9);
    assert_eq!(p.read("plan.yaml"), plan, "check changed the plan");
    // The run says it before anything starts, and goes on.
    let run = p.baton(&["run", "plan.yaml"]);
    assert_eq!(run.code(), 0, "{}", run.all());
    assert!(run.stderr().contains("plan.yaml:9:5: task 'b' has an unknown key `depends-on`; did you mean `depends_on`?"), "{}", run.all());
    assert!(p.read("plan.yaml").contains("    depends-on: [a]\n"), "the unknown key is kept");
}

#[test]
fn conflict_markers_are_reported_as_such_with_their_line() {
    let plan = "sections:\n- id: s\n  name: S\n  tasks:\n  - id: a\n    name: A\n<<<<<<< Updated upstream\n    status: completed\n=======\n    status: pending\n>>>>>>> Stashed changes\n";
    let p = project(plan);
    for args in [&["check", "plan.yaml"][..], &["run", "plan.yaml"]] {
        let r = p.baton(args);
        assert_eq!(r.code(), 2, "{args:?}: {}", r.all());
        assert!(r.stderr().contains("plan.yaml:7:1: the plan has unresolved git conflict markers at line 7 (to line 11)"), "{}", r.stderr());
        assert!(!r.stderr().contains("YAML syntax error"), "{}", r.stderr());
    }
    assert_eq!(p.read("plan.yaml"), plan);
    assert!(p.invocations().is_empty());
}

#[test]
fn a_plan_left_with_suspended_tasks_ends_blocked_saying_why() {
    let p = project(
        "sections:\n- id: s\n  name: S\n  tasks:\n  - id: a\n    name: A\n    status: suspended\n  - id: b\n    name: B\n  - id: c\n    name: C\n    depends_on: [a]\n",
    );
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 3, "{}", r.all());
    assert_eq!(run_order(&p), ["b"]);
    assert!(r.stdout().contains("a: it is suspended: it waits for a person"), "{}", r.stdout());
    assert!(r.stdout().contains("c: waits for 'a'"), "{}", r.stdout());
    let plan = p.plan();
    assert_eq!(plan.task("a").unwrap().status.as_str(), "suspended");
    // `baton retry` hands it back to the run.
    assert_eq!(p.baton(&["retry", "plan.yaml", "a"]).code(), 0);
    let again = p.baton(&["run", "plan.yaml"]);
    assert_eq!(again.code(), 0, "{}", again.all());
    assert_eq!(run_order(&p), ["b", "a", "c"]);
}

#[test]
fn validation_exhausted_is_a_failure_that_never_runs() {
    let p = project(
        "sections:\n- id: s\n  name: S\n  tasks:\n  - id: a\n    name: A\n    status: validation_exhausted\n    validation_attempts: 2\n  - id: b\n    name: B\n",
    );
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 1, "{}", r.all());
    assert_eq!(run_order(&p), ["b"]);
    assert_eq!(p.plan().task("a").unwrap().status.as_str(), "validation_exhausted");
}

#[test]
fn check_tells_the_warnings_of_a_plan_with_errors_too() {
    let plan = "sections:\n- id: s\n  name: S\n  tasks:\n  - id: a\n    name: A\n    status: done\n  - id: b\n    name: B\n    depends-on: [a]\n";
    let p = project(plan);
    let r = p.baton(&["check", "plan.yaml"]);
    assert_eq!(r.code(), 2, "{}", r.all());
    assert!(r.stderr().contains("warning: plan.yaml:10:5: task 'b' has an unknown key `depends-on`; did you mean `depends_on`?"), "{}", r.stderr());
    assert!(r.stderr().contains("error: plan.yaml:7:13: unknown status `done`"), "{}", r.stderr());
    let json: serde_json::Value = serde_json::from_str(&p.baton(&["check", "--json", "plan.yaml"]).stdout()).unwrap();
    assert_eq!(json["valid"], false);
    assert_eq!(json["warnings"][0]["line"], 10, "{json}");
    assert_eq!(p.read("plan.yaml"), plan);
}

#[test]
fn an_agents_edit_of_another_tasks_status_does_not_outlive_a_kill_9_of_baton() {
    use crate::support::{signal, wait_for};
    let p = project(
        "sections:\n- id: s\n  name: S\n  tasks:\n  - id: a\n    name: A\n    status: verified\n    result_message: reviewed ok\n  - id: b\n    name: B\n    status: suspended\n  - id: c\n    name: C\n",
    );
    // c's agent marks a pending and b verified in the plan, then hangs; baton is killed.
    p.scenario(
        r#"{"tasks": {"c": [{"plan_replace": ["    status: verified\n    result_message: reviewed ok\n  - id: b\n    name: B\n    status: suspended\n", "    status: pending\n    result_message: reviewed ok\n  - id: b\n    name: B\n    status: verified\n"], "hang": true}, {}]}}"#,
    );
    let mut child = p.spawn(&["run", "plan.yaml"]);
    wait_for("c's agent to hang", || p.pid_file("c-1.agent.pid").is_some());
    assert!(p.read("plan.yaml").contains("    name: B\n    status: verified\n"), "the agent's edit is in the file");
    signal(&child, libc::SIGKILL);
    let _ = child.wait();
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 3, "b is suspended again, so the run ends blocked: {}", r.all());
    assert!(r.stderr().contains("put back: a: status verified → pending (kept verified); b: status suspended → verified (kept suspended)"), "{}", r.all());
    let plan = p.plan();
    assert_eq!(plan.task("a").unwrap().status.as_str(), "verified");
    assert_eq!(plan.task("b").unwrap().status.as_str(), "suspended");
    assert_eq!(plan.task("c").unwrap().status.as_str(), "completed");
    assert_eq!(run_order(&p), ["c", "c"], "only c ran, twice (the killed attempt and its retry)");
}
