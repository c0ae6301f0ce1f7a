//! Hostile input through the real binary: plans, settings and agent output meant to corrupt
//! the plan, crash baton, exhaust it or take over the terminal. Each must be refused clearly or
//! handled, never end in a panic, a hang or a corrupted plan.

use std::os::fd::FromRawFd;
use std::process::Stdio;

use baton::plan::Status;

use crate::support::{FAST_CONFIG, Project, project};

/// Exit 2 with `what` in the output, no panic, and the plan and the agent untouched.
#[track_caller]
fn refused(p: &Project, args: &[&str], what: &str) {
    let before = p.read("plan.yaml");
    let r = p.baton(args);
    assert_eq!(r.code(), 2, "{args:?}: {}", r.all());
    assert!(r.all().contains(what), "{args:?} should say {what:?}: {}", r.all());
    assert!(!r.all().contains("panicked"), "{}", r.all());
    assert_eq!(p.read("plan.yaml"), before, "{args:?} changed the plan");
    assert!(p.invocations().is_empty(), "{args:?} started an agent");
}

const FLOW: &str = "meta: {name: Flow}
sections:
- id: s
  tasks:
  - {id: a, name: First, status: pending}
  - {id: b, name: Second, status: pending, depends_on: [a]}
  - {id: c, name: Third, status: pending}
";

#[test]
fn flow_style_tasks_take_results_with_yaml_punctuation() {
    let p = project(FLOW);
    // Written bare, as plain text would be in a block mapping, these end the flow mapping early.
    let ok = "done, see [x] and {y}";
    let odd = "done: {y}, z # w, 'q' \"dq\" - & * ! | > %";
    let bad = "broke: [1, 2] {k: v} #3\nsecond line";
    p.scenario(&serde_json::json!({
        "tasks": {
            "a": [{"message": ok}],
            "b": [{"message": odd}],
            "c": [{"status": "failed", "message": bad}],
        }
    }).to_string());
    let r = p.baton(&["run", "plan.yaml"]);
    assert!(!r.all().contains("panicked") && !r.all().contains("bug in baton"), "{}", r.all());
    let plan = p.plan();
    let a = plan.task("a").unwrap();
    assert_eq!((a.status, a.result_message.as_deref()), (Status::Completed, Some(ok)), "{}", p.read("plan.yaml"));
    assert_eq!(plan.task("b").unwrap().result_message.as_deref(), Some(odd));
    let c = plan.task("c").unwrap();
    assert_eq!(c.status, Status::Failed, "{}", r.all());
    assert!(c.last_error.as_deref().is_some_and(|e| e.contains("broke: [1, 2] {k: v} #3")), "{:?}", c.last_error);
    assert_eq!(plan.tasks().count(), 3);
    assert_eq!(plan.task("b").unwrap().depends_on, [baton::plan::TaskId::from("a")], "user fields survive");
}

#[test]
fn an_owned_field_written_as_an_alias_is_refused() {
    let p = project(
        "sections:\n- id: s\n  tasks:\n  - id: a\n    name: A\n    status: &s pending\n  - id: b\n    name: B\n    status: *s\n",
    );
    refused(&p, &["check", "plan.yaml"], "plan.yaml:9:13: `status` of task 'b' is written as an alias or anchor; an owned field cannot be an alias or anchor");
    refused(&p, &["run", "plan.yaml"], "an owned field cannot be an alias or anchor");
}

#[test]
fn a_plan_with_cr_only_line_endings_is_refused() {
    let p = project(&FLOW.replace('\n', "\r"));
    refused(&p, &["check", "plan.yaml"], "plan.yaml:1:19: a line ends with a bare carriage return");
    refused(&p, &["run", "plan.yaml"], "CR-only line endings");
    // From the third line on: the line number counts the lines before it.
    let p = project(&FLOW.replacen("\n", "\r", 3).replacen('\r', "\n", 2));
    refused(&p, &["check", "plan.yaml"], "plan.yaml:3:");
}

#[test]
fn an_alias_bomb_is_refused_quickly() {
    let mut bomb = String::from("a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
    for (name, prev) in [("b", "a"), ("c", "b"), ("d", "c"), ("e", "d"), ("f", "e"), ("g", "f"), ("h", "g"), ("i", "h")] {
        bomb.push_str(&format!("{name}: &{name} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"));
    }
    bomb.push_str(FLOW);
    assert!(bomb.len() < 1000);
    let p = project(&bomb);
    refused(&p, &["check", "plan.yaml"], "the aliases (`*name`) expand to more than 100000 nodes");
}

#[test]
fn a_long_dependency_cycle_and_deep_nesting_are_refused_without_a_crash() {
    let n = 30_000;
    let mut plan = String::from("sections:\n- id: s\n  tasks:\n");
    for i in 0..n {
        plan.push_str(&format!("  - id: t{i}\n    name: T\n    depends_on: [t{}]\n", (i + 1) % n));
    }
    let p = project(&plan);
    refused(&p, &["check", "plan.yaml"], "dependency cycle: t0 → t1 → t2");
    let deep = |n: usize| format!("x: {}{}\n{FLOW}", "[".repeat(n), "]".repeat(n));
    refused(&project(&deep(150)), &["check", "plan.yaml"], "plan.yaml:1:103: YAML syntax error: the YAML nests lists and mappings more than 100 levels deep");
    // The YAML parser has a limit of its own further down.
    refused(&project(&deep(50_000)), &["check", "plan.yaml"], "YAML syntax error");
}

#[test]
fn a_task_id_too_long_for_a_branch_is_refused_by_check() {
    let long = "x".repeat(300);
    let p = project(&FLOW.replace("id: c,", &format!("id: {long},")));
    refused(&p, &["check", "plan.yaml"], "plan.yaml:7:10: the task id 'xxxxxxxxxxxxxxxxxxxx…' is too long (300 characters; at most 64");
    refused(&p, &["run", "plan.yaml", "--parallel", "--jobs", "2"], "is too long");
}

#[test]
fn a_usage_limit_resetting_in_year_9999_waits_the_fallback_instead_of_panicking() {
    let p = project("sections:\n- id: s\n  tasks:\n  - {id: a, name: A}\n");
    p.write("baton.toml", &format!("{FAST_CONFIG}limit_fallback_seconds = 0.2\n"));
    p.repo.commit_all("config");
    p.scenario(r#"{"tasks": {"a": [{"limit": "You've hit your limit", "limit_resets_at": 253402000000}, {"message": "ok"}]}}"#);
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(!r.all().contains("panicked"), "{}", r.all());
    assert!(r.all().contains("the reset time could not be read"), "{}", r.all());
    assert_eq!(p.plan().task("a").unwrap().status, Status::Completed);
    assert_eq!(p.plan().task("a").unwrap().attempts, 1, "the limit spent no attempt");
}

#[test]
fn the_agents_terminal_escapes_are_never_printed_raw() {
    let p = project("sections:\n- id: s\n  tasks:\n  - {id: a, name: A}\n  - {id: b, name: B}\n");
    let evil = "\u{1b}]0;pwned\u{7}\u{1b}[2J\u{1b}[H\u{1b}]52;c;cm0gLXJmIH4=\u{7}\u{1b}[5A\u{9b}31m";
    p.scenario(&serde_json::json!({
        "tasks": {
            "a": [{"events": 2, "message": format!("done {evil}"), "result_text": format!("result {evil}")}],
            "b": [{"status": "failed", "message": format!("failed {evil}\nline two"), "result_text": evil}],
        }
    }).to_string());
    let escapes = |s: &str| s.chars().any(|c| matches!(c, '\u{1b}' | '\u{7}' | '\u{9b}'));
    for verbose in [false, true] {
        let mut args = vec!["run", "plan.yaml"];
        if verbose {
            args.push("--verbose");
            std::fs::write(p.path().join("plan.yaml"), "sections:\n- id: s\n  tasks:\n  - {id: a, name: A}\n  - {id: b, name: B}\n").unwrap();
            p.repo.commit_all("again");
        }
        let r = p.baton(&args);
        assert!(!escapes(&r.all()), "raw escapes in `baton {}`: {:?}", args.join(" "), r.all());
        assert!(r.all().contains('\u{fffd}'), "the escapes are shown as replaced: {}", r.all());
    }
    for args in [["status", "plan.yaml", ""], ["logs", "plan.yaml", "a"], ["logs", "plan.yaml", "b"]] {
        let args: Vec<&str> = args.into_iter().filter(|a| !a.is_empty()).collect();
        let r = p.baton(&args);
        assert!(!escapes(&r.all()), "raw escapes in `baton {}`: {:?}", args.join(" "), r.all());
    }
}

/// A pipe whose reader is already gone, for a child's stdout.
fn closed_pipe() -> Stdio {
    let mut fds = [0; 2];
    // SAFETY: pipe(2) fills two descriptors we then own; the read end is closed at once.
    unsafe {
        assert_eq!(libc::pipe(fds.as_mut_ptr()), 0);
        libc::close(fds[0]);
        Stdio::from(std::fs::File::from_raw_fd(fds[1]))
    }
}

#[test]
fn output_to_a_closed_pipe_ends_quietly() {
    let p = project(FLOW);
    p.scenario(r#"{"default": [{"message": "ok"}]}"#);
    assert_eq!(p.baton(&["run", "plan.yaml"]).code(), 0);
    for args in [
        &["status", "plan.yaml"][..],
        &["status", "plan.yaml", "--json"],
        &["logs", "plan.yaml", "a"],
        &["check", "plan.yaml", "--json"],
        &["check", "plan.yaml"],
        &["run", "plan.yaml", "--dry-run"],
    ] {
        let out = p.command(args).stdout(closed_pipe()).stderr(Stdio::piped()).output().expect("run baton");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "baton {args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(0), "baton {args:?}: {stderr}");
    }
}

#[test]
fn paths_that_leave_batons_folders_are_refused() {
    for (key, value) in [("status_file", ".git/HEAD"), ("stop_file", "../outside"), ("status_file", "/tmp/x"), ("logs_dir", "src")] {
        let p = project(FLOW);
        p.write("baton.toml", &format!("[paths]\n{key} = \"{value}\"\n"));
        p.repo.commit_all("config");
        let head = p.read(".git/HEAD");
        let what = format!("baton.toml:2:1: `{key}` = \"{value}\" must");
        refused(&p, &["check", "plan.yaml"], &what);
        refused(&p, &["run", "plan.yaml"], &what);
        assert_eq!(p.read(".git/HEAD"), head);
    }
}

/// The plan deleted under a parallel run (here by an agent, from its worktree): the run stops
/// with the error, and the plan-state commit does not commit the plan's deletion.
#[test]
fn a_plan_deleted_during_a_parallel_run_is_not_committed_as_deleted() {
    let p = project(
        "meta:\n  name: Gone\nsections:\n- id: s\n  tasks:\n  - id: a\n    name: A\n    status: pending\n    parallel_group: g\n",
    );
    // The worktree is .worktrees/plan-a: the main checkout's plan is two levels up.
    p.scenario(r#"{"tasks": {"a": [{"write": {"a.txt": "a\n"}, "shell": "rm ../../plan.yaml"}]}}"#);
    let r = p.baton(&["run", "plan.yaml", "--parallel"]);
    assert_eq!(r.code(), 2, "{}", r.all());
    assert!(r.stderr().contains("cannot read plan plan.yaml"), "{}", r.all());
    let head = p.repo.git(&["ls-tree", "--name-only", "HEAD"]);
    assert!(head.lines().any(|l| l == "plan.yaml"), "the plan's deletion was committed:\n{head}\n{}", r.all());
    assert!(head.lines().any(|l| l == "a.txt"), "the landed work was not committed:\n{head}");
    assert!(r.stderr().contains("git checkout -- plan.yaml"), "{}", r.all());
}

/// The plan deleted under a sequential run: the error is said once, on the terminal and in the
/// run log, not repeated as a warning by the run's last save.
#[test]
fn a_plan_deleted_during_a_run_is_reported_once() {
    let p = project("meta:\n  name: Gone\nsections:\n- id: s\n  tasks:\n  - id: a\n    name: A\n    status: pending\n");
    p.scenario(r#"{"tasks": {"a": [{"shell": "rm plan.yaml"}]}}"#);
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 2, "{}", r.all());
    assert_eq!(r.stderr().matches("cannot read plan plan.yaml").count(), 1, "{}", r.stderr());
    assert!(!r.stderr().contains("warning: error"), "{}", r.stderr());
    let log = p.read(".baton/logs/plan/run.log");
    assert_eq!(log.matches("cannot read plan plan.yaml").count(), 1, "{log}");
}
