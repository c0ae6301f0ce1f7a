//! `baton run --parallel`: worktrees, overlap, copy-back of every kind of change, conflicts,
//! plan edits from worktrees, crash recovery, and claims.

use baton::plan::Status;

use crate::support::{Project, project, signal, wait_exit, wait_for};

fn group_plan(tasks: &[(&str, &str)]) -> String {
    let mut s = String::from("meta:\n  name: Parallel\n  max_attempts_default: 2\nsections:\n- id: s1\n  name: Group\n  tasks:\n");
    for (id, desc) in tasks {
        s.push_str(&format!("  - id: '{id}'\n    name: Task {id}\n    status: pending\n    parallel_group: g\n    description: '{desc}'\n"));
    }
    s
}

fn status(p: &Project, id: &str) -> Status {
    p.plan().task(id).unwrap_or_else(|| panic!("no task {id}")).status
}

fn record(p: &Project, task: &str, n: u32) -> serde_json::Value {
    serde_json::from_str(&p.read(&format!(".baton/logs/plan/{task}/attempt-{n}.json"))).unwrap()
}

#[test]
fn four_slow_tasks_of_one_group_overlap() {
    let plan = group_plan(&[("1", "one"), ("2", "two"), ("3", "three"), ("4", "four")]);
    let p = project(&plan);
    p.scenario(r#"{"default": [{"events": 20, "interval_ms": 100}]}"#);
    let r = p.baton(&["run", "plan.yaml", "--parallel", "--jobs", "4"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let recs: Vec<serde_json::Value> = ["1", "2", "3", "4"].iter().map(|t| record(&p, t, 1)).collect();
    let ts = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap().parse::<jiff::Timestamp>().unwrap();
    let last_start = recs.iter().map(|r| ts(r, "started_at")).max().unwrap();
    let first_end = recs.iter().map(|r| ts(r, "ended_at")).min().unwrap();
    assert!(last_start < first_end, "the four tasks did not all run at once: last start {last_start}, first end {first_end}");
    // Each in its own worktree.
    let cwds: std::collections::HashSet<String> =
        p.invocations().iter().map(|i| i["cwd"].as_str().unwrap().to_string()).collect();
    assert_eq!(cwds.len(), 4);
    assert!(cwds.iter().all(|c| c.contains("/.worktrees/plan-")), "{cwds:?}");
    for t in ["1", "2", "3", "4"] {
        assert_eq!(status(&p, t), Status::Completed);
    }
    assert!(!p.path().join(".worktrees/plan-1").exists(), "a landed worktree was not removed");
    let branches = p.repo.git(&["branch", "--list", "parallel/*"]);
    assert!(branches.trim().is_empty(), "branches left: {branches}");
}

#[test]
fn a_free_slot_is_refilled_without_waiting_for_the_slowest() {
    let plan = group_plan(&[("slow", "s"), ("a", "a"), ("b", "b")]);
    let p = project(&plan);
    p.scenario(r#"{"tasks": {"slow": [{"events": 30, "interval_ms": 100}]}}"#);
    let r = p.baton(&["run", "plan.yaml", "--parallel", "--jobs", "2"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let ts = |t: &str, k: &str| record(&p, t, 1)[k].as_str().unwrap().parse::<jiff::Timestamp>().unwrap();
    // b started in a's slot while slow was still running.
    assert!(ts("b", "started_at") < ts("slow", "ended_at"), "b waited for the slowest sibling");
}

#[test]
fn groups_do_not_wait_for_one_another_and_a_task_without_either_keeps_plan_order() {
    // b (group two) needs only a, not the slow rest of group one; bar has neither
    // depends_on nor parallel_group, so it runs after everything before it and alone, and z
    // after it.
    let plan = "meta:\n  name: P\nsections:\n- id: s\n  tasks:\n  - {id: slow, name: Slow, parallel_group: one}\n  - {id: a, name: A, parallel_group: one}\n  - {id: b, name: B, parallel_group: two, depends_on: [a]}\n  - {id: bar, name: Bar}\n  - {id: z, name: Z, parallel_group: one}\n";
    let p = project(plan);
    p.scenario(r#"{"tasks": {"slow": [{"events": 30, "interval_ms": 100}]}}"#);
    let r = p.baton(&["run", "plan.yaml", "--parallel", "--jobs", "3"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let ts = |t: &str, k: &str| record(&p, t, 1)[k].as_str().unwrap().parse::<jiff::Timestamp>().unwrap();
    assert!(ts("b", "started_at") < ts("slow", "ended_at"), "group two waited for group one to finish\n{}", r.all());
    for before in ["slow", "a", "b"] {
        assert!(ts(before, "ended_at") <= ts("bar", "started_at"), "bar started before {before} ended\n{}", r.all());
    }
    assert!(ts("bar", "ended_at") <= ts("z", "started_at"), "z started before bar ended\n{}", r.all());
    let dry = plan.replace("name: P", "name: Q");
    p.write("dry.yaml", &dry);
    let out = p.baton(&["run", "dry.yaml", "--parallel", "--dry-run"]).stdout();
    assert!(out.contains("round 1: slow + a"), "{out}");
    assert!(out.contains("round 2: b"), "{out}");
    assert!(out.contains("round 3: bar"), "{out}");
    assert!(out.contains("round 4: z"), "{out}");
}

#[test]
fn every_kind_of_change_lands() {
    let plan = group_plan(&[("1", "changes"), ("2", "more")]);
    let p = project(&plan);
    p.write("keep.txt", "keep\n");
    p.write("gone.txt", "bye\n");
    p.write("old-name.txt", "moving\n");
    p.write("script.sh", "echo hi\n");
    p.write("edit.txt", "before\n");
    p.repo.commit_all("files");
    p.scenario(
        r#"{"tasks": {
        "1": [{"write": {"new/added.txt": "new\n", "edit.txt": "after\n"},
               "shell": "git rm -q gone.txt && git mv old-name.txt new-name.txt && chmod +x script.sh && ln -s keep.txt link.txt",
               "commit": "task 1 work"}],
        "2": [{"write": {"uncommitted.txt": "never committed by the agent\n"}}]
    }}"#,
    );
    let r = p.baton(&["run", "plan.yaml", "--parallel"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(p.read("new/added.txt"), "new\n");
    assert_eq!(p.read("edit.txt"), "after\n");
    assert!(!p.path().join("gone.txt").exists());
    assert!(!p.path().join("old-name.txt").exists());
    assert_eq!(p.read("new-name.txt"), "moving\n");
    use std::os::unix::fs::PermissionsExt;
    assert_ne!(std::fs::metadata(p.path().join("script.sh")).unwrap().permissions().mode() & 0o111, 0, "exec bit lost");
    let link = std::fs::symlink_metadata(p.path().join("link.txt")).unwrap();
    assert!(link.file_type().is_symlink(), "a symlink landed as something else");
    assert_eq!(std::fs::read_link(p.path().join("link.txt")).unwrap(), std::path::PathBuf::from("keep.txt"));
    assert_eq!(p.read("uncommitted.txt"), "never committed by the agent\n");
    // One commit for the round's files, then the plan state; nothing left uncommitted.
    let log = p.repo.log_subjects();
    assert!(log[1].starts_with("plan: land tasks"), "{log:?}");
    assert!(log[0].starts_with("baton: plan state after"), "{log:?}");
    assert_eq!(p.repo.status_porcelain(), "", "landed work was left uncommitted");
}

#[test]
fn edits_to_different_lines_of_one_file_both_land() {
    let plan = group_plan(&[("1", "top"), ("2", "bottom")]);
    let p = project(&plan);
    p.write("shared.txt", "line 1\nline 2\nline 3\nline 4\nline 5\n");
    p.repo.commit_all("shared");
    p.scenario(
        r#"{"tasks": {
        "1": [{"events": 5, "interval_ms": 50, "write": {"shared.txt": "LINE 1\nline 2\nline 3\nline 4\nline 5\n"}}],
        "2": [{"events": 15, "interval_ms": 50, "write": {"shared.txt": "line 1\nline 2\nline 3\nline 4\nLINE 5\n"}}]
    }}"#,
    );
    let r = p.baton(&["run", "plan.yaml", "--parallel"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(p.read("shared.txt"), "LINE 1\nline 2\nline 3\nline 4\nLINE 5\n");
}

#[test]
fn the_same_line_is_a_conflict_that_keeps_main_and_the_branch() {
    let plan = group_plan(&[("1", "first"), ("2", "second")]);
    let p = project(&plan);
    p.write("shared.txt", "one\ntwo\n");
    p.repo.commit_all("shared");
    p.scenario(
        r#"{"tasks": {
        "1": [{"events": 3, "interval_ms": 50, "write": {"shared.txt": "ONE by task 1\ntwo\n"}}],
        "2": [{"events": 15, "interval_ms": 50, "write": {"shared.txt": "ONE by task 2\ntwo\n"}}]
    }}"#,
    );
    let r = p.baton(&["run", "plan.yaml", "--parallel"]);
    assert_eq!(r.code(), 1, "{}", r.all());
    assert_eq!(p.read("shared.txt"), "ONE by task 1\ntwo\n", "main was overwritten");
    assert_eq!(status(&p, "1"), Status::Completed);
    assert_eq!(status(&p, "2"), Status::Failed);
    let err = p.plan().task("2").unwrap().last_error.clone().unwrap();
    assert!(err.contains("merge conflict in shared.txt"), "{err}");
    assert!(r.all().contains("parallel/plan-2"), "the output does not say where the work is kept:\n{}", r.all());
    let kept = p.repo.git(&["show", "parallel/plan-2:shared.txt"]);
    // The uncommitted work was committed onto the branch or is still in the worktree.
    let in_tree = std::fs::read_to_string(p.path().join(".worktrees/plan-2/shared.txt")).unwrap_or_default();
    assert!(kept.contains("ONE by task 2") || in_tree.contains("ONE by task 2"), "task 2's work is gone");
}

#[test]
fn two_tasks_creating_the_same_path_conflict() {
    let plan = group_plan(&[("1", "first"), ("2", "second")]);
    let p = project(&plan);
    p.scenario(
        r#"{"tasks": {
        "1": [{"write": {"new.txt": "from 1\n"}}],
        "2": [{"events": 10, "interval_ms": 50, "write": {"new.txt": "from 2\n"}}]
    }}"#,
    );
    let r = p.baton(&["run", "plan.yaml", "--parallel"]);
    assert_eq!(r.code(), 1, "{}", r.all());
    assert_eq!(p.read("new.txt"), "from 1\n");
    assert!(p.plan().task("2").unwrap().last_error.clone().unwrap().contains("merge conflict in new.txt"));
}

#[test]
fn a_symlink_out_of_the_repository_is_refused() {
    let plan = group_plan(&[("1", "evil")]);
    let p = project(&plan);
    p.scenario(r#"{"tasks": {"1": [{"shell": "ln -s /etc/passwd escape && ln -s ../../outside up"}]}}"#);
    let r = p.baton(&["run", "plan.yaml", "--parallel"]);
    assert_eq!(r.code(), 1, "{}", r.all());
    assert!(std::fs::symlink_metadata(p.path().join("escape")).is_err(), "a symlink out of the tree landed");
    assert!(std::fs::symlink_metadata(p.path().join("up")).is_err());
    let err = p.plan().task("1").unwrap().last_error.clone().unwrap();
    assert!(err.contains("escape") || err.contains("up"), "{err}");
}

#[test]
fn a_task_added_by_an_agent_in_a_worktree_runs() {
    let plan = group_plan(&[("1", "splits")]);
    let p = project(&plan);
    let added = "  - id: '1b'\n    name: Added in a worktree\n    status: pending\n    depends_on: ['1']\n";
    p.scenario(&format!(
        r#"{{"tasks": {{"1": [{{"plan_append": {}, "plan_modified": true}}]}}}}"#,
        serde_json::to_string(added).unwrap()
    ));
    let r = p.baton(&["run", "plan.yaml", "--parallel"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(status(&p, "1b"), Status::Completed);
    assert_eq!(p.invocations().len(), 2);
}

#[test]
fn a_stale_branch_from_a_crash_does_not_block_a_new_run() {
    let plan = group_plan(&[("1", "a"), ("2", "b")]);
    let p = project(&plan);
    // A crashed run left a clean branch and a worktree for task 1.
    p.repo.git(&["worktree", "add", "-q", "-b", "parallel/1", ".worktrees/plan-1"]);
    let r = p.baton(&["run", "plan.yaml", "--parallel"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(status(&p, "1"), Status::Completed);
}

#[test]
fn kill_9_mid_round_then_resume_loses_nothing() {
    let plan = group_plan(&[("1", "quick"), ("2", "hangs")]);
    let p = project(&plan);
    p.scenario(
        r#"{"tasks": {
        "1": [{"write": {"one.txt": "1\n"}}],
        "2": [{"write": {"two.txt": "partial work\n"}, "commit": "partial", "hang": true}, {"write": {"two.txt": "2\n"}}]
    }}"#,
    );
    let mut child = p.spawn(&["run", "plan.yaml", "--parallel"]);
    wait_for("task 1 to land and task 2 to hang", || {
        p.pid_file("2-1.grandchild.pid").is_some() && p.path().join("one.txt").exists()
    });
    let grandchild = p.pid_file("2-1.grandchild.pid").unwrap();
    signal(&child, libc::SIGKILL);
    let _ = child.wait();
    wait_for("the hung agent to die with baton", || !baton_testkit::process_alive(grandchild));

    let r = p.baton(&["run", "plan.yaml", "--parallel"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(p.read("one.txt"), "1\n");
    assert_eq!(p.read("two.txt"), "2\n");
    assert_eq!(status(&p, "1"), Status::Completed);
    assert_eq!(status(&p, "2"), Status::Completed);
    assert_eq!(p.plan().task("2").unwrap().attempts, 1, "the killed attempt counted");
    // What the killed run had landed (task 1) is committed, not left looking like the user's.
    assert_eq!(p.repo.status_porcelain(), "", "landed work was left uncommitted");
    // The killed attempt's commit was rescued onto a branch; once the task completed, that
    // branch went, its commit named in the output so it can be brought back.
    assert!(p.repo.git(&["branch", "--list", "parallel-rescued/*"]).trim().is_empty(), "a rescued branch was left after its task completed");
    let log = p.read(".baton/logs/plan/run.log");
    assert!(log.contains("deleted parallel-rescued/plan-2-") && log.contains("brings it back"), "{log}");
}

#[test]
fn your_uncommitted_changes_are_never_overwritten() {
    let plan = group_plan(&[("1", "touches mine")]);
    let p = project(&plan);
    p.write("mine.txt", "original\n");
    p.repo.commit_all("mine");
    p.write("mine.txt", "my unsaved edit\n");
    p.scenario(r#"{"tasks": {"1": [{"write": {"mine.txt": "the agent's\n"}}]}}"#);
    let r = p.baton(&["run", "plan.yaml", "--parallel", "--allow-dirty"]);
    assert_eq!(r.code(), 4, "{}", r.all());
    assert_eq!(p.read("mine.txt"), "my unsaved edit\n");
    assert!(r.stderr().contains("mine.txt") && r.stderr().contains("uncommitted"), "{}", r.stderr());
    // Not the task's fault: it waits with its attempt unspent; once the user commits, it runs.
    assert_eq!((status(&p, "1"), p.plan().task("1").unwrap().attempts), (Status::Pending, 0));
    p.repo.commit_all("my edit");
    let r = p.baton(&["run", "plan.yaml", "--parallel"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(p.read("mine.txt"), "the agent's\n");
}

#[test]
fn dry_run_shows_what_would_overlap_and_why_not() {
    let plan = "sections:\n- id: s\n  tasks:\n  - {id: a, name: A, parallel_group: g, description: 'Edit src/x.ts'}\n  - {id: b, name: B, parallel_group: g, description: 'Edit src/y.ts'}\n  - {id: c, name: C, parallel_group: g, description: 'Edit src/x.ts again'}\n";
    let p = project(plan);
    let r = p.baton(&["run", "plan.yaml", "--parallel", "--dry-run"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let out = r.stdout();
    assert!(out.contains("round 1: a + b"), "{out}");
    assert!(out.contains("not beside them: c — conflicts with a: both touch src/x.ts"), "{out}");
    assert!(out.contains("round 2: c"), "{out}");
    assert_eq!(p.read("plan.yaml"), plan);
}

#[test]
fn a_claim_race_has_exactly_one_winner() {
    let p = Project::new();
    let mut children = Vec::new();
    for n in 0..6 {
        let child = std::process::Command::new(crate::support::BATON)
            .args(["claim", "src/shared.rs"])
            .current_dir(p.path())
            .env("BATON_AGENT_ID", format!("agent-{n}"))
            .env("BATON_TASK_ID", format!("{n}"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        children.push(child);
    }
    let outs: Vec<std::process::Output> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    let winners = outs.iter().filter(|o| o.status.code() == Some(0)).count();
    let held = outs.iter().filter(|o| o.status.code() == Some(1)).count();
    assert_eq!((winners, held), (1, 5), "{outs:?}");
    let claims: serde_json::Value = serde_json::from_str(&p.read(".claude/agent-claims.json")).unwrap();
    assert_eq!(claims["claims"].as_object().unwrap().len(), 1);
    // Release by the holder frees the file for the next agent.
    let owner = claims["claims"]["src/shared.rs"]["agent_id"].as_str().unwrap().to_string();
    let task = owner.trim_start_matches("agent-").to_string();
    let rel = std::process::Command::new(crate::support::BATON)
        .args(["release", "src/shared.rs"])
        .current_dir(p.path())
        .env("BATON_AGENT_ID", &owner)
        .env("BATON_TASK_ID", &task)
        .output()
        .unwrap();
    assert!(rel.status.success(), "{rel:?}");
    let again = std::process::Command::new(crate::support::BATON)
        .args(["claim", "src/shared.rs"])
        .current_dir(p.path())
        .env("BATON_AGENT_ID", "agent-late")
        .env("BATON_TASK_ID", "9")
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(0), "{again:?}");
    let _ = wait_exit;
}

#[test]
fn heartbeats_keep_a_quiet_agent_alive_and_silence_ends_it() {
    let plan = group_plan(&[("1", "quiet but beating")]).replace("max_attempts_default: 2", "max_attempts_default: 1\n  idle_timeout_seconds: 2");
    let p = project(&plan);
    // The agent prints nothing after its start but calls `baton heartbeat` every 0.3 s for at
    // least 3.6 s: far more often than the 2 s idle timeout, even on a loaded machine.
    let beat = format!(
        "(for i in 1 2 3 4 5 6 7 8 9 10 11 12; do {} heartbeat --note working; sleep 0.3; done) >/dev/null 2>&1 &",
        crate::support::BATON
    );
    p.scenario(&format!(r#"{{"tasks": {{"1": [{{"shell": {}, "hang": true}}]}}}}"#, serde_json::to_string(&beat).unwrap()));
    let r = p.baton(&["run", "plan.yaml", "--parallel"]);
    assert_eq!(r.code(), 1, "{}", r.all());
    let rec = record(&p, "1", 1);
    let lasted = rec["duration_seconds"].as_f64().unwrap();
    assert!(lasted > 3.0, "the agent was ended after {lasted:.1} s although its heartbeat was fresh");
    let err = p.plan().task("1").unwrap().last_error.clone().unwrap();
    assert!(err.contains("idle timeout"), "{err}");
}

#[test]
fn single_task_starts_one_task_even_in_parallel() {
    let plan = group_plan(&[("1", "a"), ("2", "b"), ("3", "c")]);
    let p = project(&plan);
    let r = p.baton(&["run", "plan.yaml", "--parallel", "--single-task"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(p.invocations().len(), 1, "{}", r.all());
    assert_eq!(status(&p, "1"), Status::Completed);
    assert_eq!(status(&p, "2"), Status::Pending);
}

#[test]
fn a_dependent_task_sees_the_work_of_its_dependency_from_the_same_round() {
    let plan = "meta:\n  name: P\nsections:\n- id: s\n  tasks:\n  - {id: a, name: A, parallel_group: g}\n  - {id: slow, name: Slow, parallel_group: g}\n  - {id: b, name: B, parallel_group: g, depends_on: [a]}\n";
    let p = project(plan);
    p.scenario(r#"{"tasks": {"a": [{"write": {"a.txt": "from a\n"}}], "slow": [{"events": 20, "interval_ms": 100}], "b": [{"shell": "cat a.txt > seen-by-b.txt"}]}}"#);
    let r = p.baton(&["run", "plan.yaml", "--parallel", "--jobs", "3"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(p.read("seen-by-b.txt"), "from a\n", "b did not see a's work");
}

#[test]
fn ids_that_sanitise_alike_never_share_a_worktree() {
    let plan = "meta:\n  name: P\nsections:\n- id: s\n  tasks:\n  - {id: 'fix login', name: A, parallel_group: g}\n  - {id: 'fix_login', name: B, parallel_group: g}\n  - {id: 'cache.lock', name: C, parallel_group: g}\n";
    let p = project(plan);
    p.scenario(r#"{"tasks": {"fix login": [{"events": 10, "interval_ms": 50, "write": {"one.txt": "1\n"}}], "fix_login": [{"events": 10, "interval_ms": 50, "write": {"two.txt": "2\n"}}], "cache.lock": [{"write": {"three.txt": "3\n"}}]}}"#);
    let r = p.baton(&["run", "plan.yaml", "--parallel", "--jobs", "3"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    for (f, c) in [("one.txt", "1\n"), ("two.txt", "2\n"), ("three.txt", "3\n")] {
        assert_eq!(p.read(f), c, "{f} was lost:\n{}", r.all());
    }
}

#[test]
fn two_plans_running_in_parallel_at_once_keep_their_own_worktrees() {
    let p = project(&group_plan(&[("1", "slow one")]));
    p.write("other.yaml", &group_plan(&[("1", "other one")]).replace("name: Parallel", "name: Other"));
    p.repo.commit_all("other plan");
    p.scenario(r#"{"tasks": {"1": [{"events": 20, "interval_ms": 100, "write": {"from-a.txt": "a\n"}}, {"write": {"from-b.txt": "b\n"}}]}}"#);
    let mut first = p.spawn(&["run", "plan.yaml", "--parallel"]);
    wait_for("the first plan's agent", || !p.invocations().is_empty());
    // One run per checkout: the second plan runs from a worktree of its own.
    let refused = p.baton(&["run", "other.yaml", "--parallel"]);
    assert_eq!(refused.code(), 2, "{}", refused.all());
    assert!(refused.stderr().contains("is running plan plan.yaml in this checkout"), "{}", refused.stderr());
    let elsewhere = tempfile::tempdir().unwrap();
    let wt = elsewhere.path().join("wt");
    p.repo.git(&["worktree", "add", "-q", "-b", "other", &wt.display().to_string()]);
    let second = crate::support::Run(
        baton_testkit::run_with_deadline(p.command(&["run", "other.yaml", "--parallel"]).current_dir(&wt), std::time::Duration::from_secs(120))
            .map(|o| std::process::Output { status: o.status, stdout: o.stdout.into_bytes(), stderr: o.stderr.into_bytes() })
            .unwrap(),
    );
    assert_eq!(second.code(), 0, "{}", second.all());
    assert_eq!(wait_exit(&mut first), Some(0), "{}", p.log());
    assert_eq!(p.read("from-a.txt"), "a\n", "the first plan's work was lost:\n{}", p.log());
    assert_eq!(std::fs::read_to_string(wt.join("from-b.txt")).unwrap(), "b\n");
}

#[test]
fn an_agents_plan_edit_in_its_worktree_is_merged_not_copied() {
    let plan = group_plan(&[("1", "first"), ("2", "second")]);
    let p = project(&plan);
    p.scenario(r#"{"tasks": {"1": [{"plan_replace": ["description: 'first'", "description: 'first, clarified'"], "plan_modified": true, "write": {"one.txt": "1\n"}}]}}"#);
    let r = p.baton(&["run", "plan.yaml", "--parallel"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(p.read("one.txt"), "1\n");
    assert_eq!(status(&p, "1"), Status::Completed);
}

#[test]
fn a_staged_rename_with_unicode_does_not_break_the_start() {
    let plan = group_plan(&[("1", "a")]);
    let p = project(&plan);
    p.write("ééx.txt", "x\n");
    p.repo.commit_all("unicode");
    p.repo.git(&["mv", "ééx.txt", "new.txt"]);
    let r = p.baton(&["run", "plan.yaml", "--parallel", "--allow-dirty"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    // The user's staged rename is still there, untouched.
    let st = p.repo.status_porcelain();
    assert!(st.contains("new.txt"), "{st}");
    assert_eq!(p.read("new.txt"), "x\n");
}

/// The same plan file run at once in the main checkout and in a linked worktree of the same
/// repository (branches are shared between them): neither run may take, clear or reuse the
/// other's worktree or branch of the same task.
#[test]
fn the_same_plan_run_at_once_in_two_checkouts_of_one_repository_keeps_both_tasks_work() {
    let p = project(&group_plan(&[("1", "one")]));
    let state = tempfile::tempdir().unwrap();
    let started = state.path().join("a-started");
    let b_done = state.path().join("b-done");
    p.scenario(&format!(
        r#"{{"tasks": {{"1": [{{"mark": [{started:?}], "wait_for": [{b_done:?}], "write": {{"from-a.txt": "a\n"}}}}, {{"write": {{"from-b.txt": "b\n"}}, "mark": [{b_done:?}]}}]}}}}"#
    ));
    let mut first = p.spawn(&["run", "plan.yaml", "--parallel"]);
    wait_for("the first run's agent", || started.exists());
    let elsewhere = tempfile::tempdir().unwrap();
    let wt = elsewhere.path().join("wt");
    p.repo.git(&["worktree", "add", "-q", "-b", "other", &wt.display().to_string()]);
    let second = crate::support::Run(
        baton_testkit::run_with_deadline(p.command(&["run", "plan.yaml", "--parallel"]).current_dir(&wt), std::time::Duration::from_secs(120))
            .map(|o| std::process::Output { status: o.status, stdout: o.stdout.into_bytes(), stderr: o.stderr.into_bytes() })
            .unwrap(),
    );
    assert_eq!(second.code(), 0, "{}", second.all());
    assert_eq!(wait_exit(&mut first), Some(0), "{}", p.log());
    assert_eq!(std::fs::read_to_string(wt.join("from-b.txt")).unwrap(), "b\n");
    let a = std::fs::read_to_string(p.path().join("from-a.txt")).unwrap_or_default();
    assert_eq!(a, "a\n", "the first run's work was lost:\n{}\n{}", p.log(), second.all());
    assert!(!second.all().contains("rescued") && !p.log().contains("rescued"), "{}\n{}", second.all(), p.log());
    let rescued = p.repo.git(&["branch", "--list", "parallel-rescued/*"]);
    assert_eq!(rescued.trim(), "", "a live run's work was rescued away:\n{}", p.log());
}

/// A worktree reused for the next task starts as a fresh one would: an agent that made its
/// worktree a sparse checkout (or set worktree config) does not hand that to the next task,
/// whose files outside the sparse patterns would be missing and whose new files there could
/// not land.
#[test]
fn a_reused_worktree_does_not_inherit_the_earlier_tasks_sparse_checkout() {
    let p = project(&group_plan(&[("1", "one"), ("2", "two")]));
    p.repo.git(&["config", "extensions.worktreeConfig", "true"]);
    p.write("src/s.txt", "s\n");
    p.repo.commit_all("src");
    p.scenario(
        r#"{"tasks": {
            "1": [{"write": {"one.txt": "1\n"}, "shell": "git sparse-checkout set --no-cone '/*.txt' '/*.yaml' '/.claude/' && git config --worktree alias.zz status"}],
            "2": [{"write": {"src/new.txt": "new\n", "src/s.txt": "changed\n"}}]
        }}"#,
    );
    let r = p.baton(&["run", "plan.yaml", "--parallel", "--jobs", "1"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(status(&p, "1"), Status::Completed, "{}", p.repo.git(&["log", "--stat"]));
    assert_eq!(status(&p, "2"), Status::Completed, "{}", r.all());
    assert_eq!(p.read("src/new.txt"), "new\n");
    assert_eq!(p.read("src/s.txt"), "changed\n");
}

/// A reused worktree is what a fresh one would be: what a `post-checkout` hook makes is
/// there, and a FIFO the earlier task left (git neither tracks nor cleans one) is not.
#[test]
fn a_reused_worktree_has_what_the_checkout_hook_makes_and_no_fifo_of_the_earlier_task() {
    let p = project(&group_plan(&[("1", "one"), ("2", "two")]));
    p.write(".gitignore", "*.local\n");
    p.repo.commit_all("ignore");
    p.repo.git(&["config", "--unset", "core.hooksPath"]);
    let hook = p.path().join(".git/hooks/post-checkout");
    std::fs::create_dir_all(hook.parent().unwrap()).unwrap();
    std::fs::write(&hook, "#!/bin/sh\necho made > made-by-hook.local\n").unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    p.scenario(
        r#"{"tasks": {
            "1": [{"write": {"one.txt": "1\n"}, "shell": "mkfifo left-by-one"}],
            "2": [{"write": {"two.txt": "2\n"}, "shell": "ls -A > \"$BATON_FAKE_STATE/two-saw.txt\""}]
        }}"#,
    );
    let r = p.baton(&["run", "plan.yaml", "--parallel", "--jobs", "1"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let log = p.read(".baton/logs/plan/run.log");
    assert!(log.contains("2: worktree") && log.contains("(reused)"), "task 2 did not reuse task 1's worktree:\n{log}");
    let saw = p.state_path("two-saw.txt");
    let saw = std::fs::read_to_string(saw).unwrap();
    assert!(saw.lines().any(|l| l == "made-by-hook.local"), "{saw}");
    assert!(!saw.lines().any(|l| l == "left-by-one"), "{saw}");
}
