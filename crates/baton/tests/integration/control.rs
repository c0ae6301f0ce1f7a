//! Task control by hand (`baton retry`, `skip`, `reset`), `baton stop` with and without a run,
//! what `--resume-from` says, and `--jobs` without `--parallel`.

use baton::plan::Status;

use crate::support::{project, wait_exit, wait_for, Project};

const PLAN: &str = "# the team's plan: keep this comment
meta:
  name: Control
  max_attempts_default: 2
sections:
- id: s1
  name: First
  tasks:
  - id: '1.1'
    name: Flaky
    status: pending   # baton writes this
    description: 'Fails until fixed'
  - id: '1.2'
    name: After flaky
    status: pending
    depends_on: ['1.1']
- id: s2
  name: Second
  tasks:
  - id: '2.1'
    name: Independent
    status: pending
";

fn task(p: &Project, id: &str) -> baton::plan::Task {
    p.plan().task(id).unwrap_or_else(|| panic!("no task {id}")).clone()
}

fn tasks_run(p: &Project) -> Vec<String> {
    p.invocations().iter().map(|i| i["task_id"].as_str().unwrap_or("?").to_string()).collect()
}

#[test]
fn retry_failed_then_run_reruns_exactly_the_failed_tasks() {
    let p = project(PLAN);
    // 1.1 fails both attempts of the first run and completes on its next one.
    p.scenario(r#"{"tasks": {"1.1": [{"status": "failed", "message": "red tests"}, {"status": "failed", "message": "still red"}, {"message": "green"}]}}"#);
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 3, "1.2 is blocked by the failed 1.1: {}", r.all());
    assert_eq!(tasks_run(&p), ["1.1", "1.1", "2.1"]);
    assert_eq!((task(&p, "1.1").status, task(&p, "1.1").attempts), (Status::Failed, 2));
    assert_eq!(task(&p, "2.1").status, Status::Completed);

    let r = p.baton(&["retry", "plan.yaml", "--failed"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let out = r.stdout();
    assert!(out.contains("1.1: failed → pending (attempts kept at 2 of 2: 1 more attempt; --reset-attempts gives it 2 again)"), "{out}");
    assert!(out.contains("1.2 waits on these and can run once they complete"), "{out}");
    assert!(out.contains("committed: baton: retry 1.1"), "{out}");
    assert!(out.contains("next: baton run plan.yaml"), "{out}");
    let t = task(&p, "1.1");
    assert_eq!((t.status, t.attempts), (Status::Pending, 2), "attempts are kept by default");
    assert_eq!(t.last_error.as_deref(), Some("still red"), "the last error stays in the plan");
    assert_eq!(p.repo.log_subjects()[0], "baton: retry 1.1");
    assert_eq!(p.repo.status_porcelain(), "", "the plan change is committed");
    let text = p.read("plan.yaml");
    assert!(text.starts_with("# the team's plan: keep this comment\n"), "{text}");
    assert!(text.contains("status: pending   # baton writes this"), "{text}");

    let r = p.baton(&["run", "plan.yaml", "--dry-run"]);
    assert!(r.stdout().contains("1.1 Flaky (attempt 3/3)"), "the extra attempt is the last one, not 3/2: {}", r.all());
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(r.all().contains("1.1 Flaky · attempt 3/3"), "{}", r.all());
    assert!(!r.all().contains("3/2"), "{}", r.all());
    // Exactly the failed task ran again, and the task it had blocked ran after it.
    assert_eq!(tasks_run(&p)[3..], ["1.1", "1.2"]);
    let t = task(&p, "1.1");
    assert_eq!((t.status, t.attempts), (Status::Completed, 3));
    assert_eq!(task(&p, "1.2").status, Status::Completed);
}

#[test]
fn retry_with_reset_attempts_and_reset_all_start_the_count_over() {
    let failed = PLAN.replace(
        "    status: pending   # baton writes this\n",
        "    status: failed   # baton writes this\n    attempts: 2\n    last_error: 'boom: it broke'\n",
    );
    let p = project(&failed);
    let r = p.baton(&["retry", "plan.yaml", "1.1", "--reset-attempts"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(r.stdout().contains("1.1: failed → pending (attempts 2 → 0)"), "{}", r.stdout());
    assert!(r.stdout().contains("the last error stays in the plan"), "{}", r.stdout());
    let t = task(&p, "1.1");
    assert_eq!((t.status, t.attempts, t.last_error.as_deref()), (Status::Pending, 0, Some("boom: it broke")));
    // Only the owned fields changed: every other byte is as the user wrote it.
    assert_eq!(p.read("plan.yaml"), failed.replace("status: failed", "status: pending").replace("attempts: 2", "attempts: 0"));

    let p = project(&failed.replace(
        "  - id: '2.1'\n    name: Independent\n    status: pending\n",
        "  - id: '2.1'\n    name: Independent\n    status: completed\n    attempts: 1\n    result_message: \"done: all green\"\n    completed_at: '2026-01-01T00:00:00Z'\n",
    ));
    let r = p.baton(&["reset", "plan.yaml", "--all"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(r.stdout().contains("1.2: already pending with 0 attempt(s); unchanged"), "{}", r.stdout());
    assert!(r.stdout().contains("committed: baton: reset all tasks\n"), "{}", r.stdout());
    for id in ["1.1", "1.2", "2.1"] {
        assert_eq!((task(&p, id).status, task(&p, id).attempts), (Status::Pending, 0), "{id}");
    }
    assert_eq!(p.plan().sections[1].status, Some(Status::Pending), "section statuses follow their tasks");
    // From scratch: a pending task does not keep when it completed, nor what its attempts said.
    for id in ["1.1", "2.1"] {
        let t = task(&p, id);
        assert_eq!((t.completed_at, t.result_message, t.last_error), (None, None, None), "{id}");
    }
    assert!(p.read("plan.yaml").contains("    completed_at: null\n"), "{}", p.read("plan.yaml"));

    // Nothing to do is said, and changes nothing.
    let before = p.repo.log_subjects().len();
    let r = p.baton(&["retry", "plan.yaml", "--failed"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(r.stdout().contains("no failed task in plan.yaml; nothing to retry"), "{}", r.stdout());
    assert_eq!(p.repo.log_subjects().len(), before);
}

#[test]
fn unknown_ids_and_tasks_a_command_does_not_apply_to_change_nothing() {
    let p = project(&PLAN.replace("    name: Independent\n    status: pending\n", "    name: Independent\n    status: completed\n"));
    let before = p.read("plan.yaml");
    let commits = p.repo.log_subjects().len();

    let r = p.baton(&["retry", "plan.yaml", "1.1", "1.3", "21"]);
    assert_eq!(r.code(), 2, "{}", r.all());
    let err = r.stderr();
    assert!(err.contains("error: no task '1.3' in plan.yaml; did you mean '1.1' or '1.2'?"), "{err}");
    assert!(err.contains("no task '21' in plan.yaml; did you mean '2.1'?"), "{err}");
    assert!(err.contains("help: `baton status plan.yaml` lists the task ids; nothing was changed"), "{err}");

    let r = p.baton(&["skip", "plan.yaml", "2.1"]);
    assert_eq!(r.code(), 2, "{}", r.all());
    assert!(r.stderr().contains("2.1 is completed; there is nothing left to skip"), "{}", r.stderr());
    let r = p.baton(&["retry", "plan.yaml", "2.1"]);
    assert_eq!(r.code(), 2, "{}", r.all());
    assert!(r.stderr().contains("`baton reset plan.yaml 2.1` runs it again from scratch"), "{}", r.stderr());
    let r = p.baton(&["reset", "plan.yaml"]);
    assert_eq!(r.code(), 2, "a task or --all is required: {}", r.all());

    assert_eq!(p.read("plan.yaml"), before);
    assert_eq!(p.repo.log_subjects().len(), commits);
}

#[test]
fn skip_records_the_reason_and_warns_about_what_waits_on_it() {
    let p = project(PLAN);
    let r = p.baton(&["skip", "plan.yaml", "1.1", "--reason", "done by hand: see #12"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let out = r.stdout();
    assert!(out.contains("1.1: pending → skipped (reason: done by hand: see #12)"), "{out}");
    assert!(out.contains("warning: 1.2 depends on it and can no longer run"), "{out}");
    assert!(out.contains("committed: baton: skip 1.1 — done by hand: see #12"), "{out}");
    let t = task(&p, "1.1");
    assert_eq!((t.status, t.result_message.as_deref()), (Status::Skipped, Some("done by hand: see #12")));
    // A skipped task does not run.
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 3, "{}", r.all());
    assert_eq!(tasks_run(&p), ["2.1"]);
}

#[test]
fn a_skip_reason_with_control_characters_is_printed_and_committed_on_one_safe_line() {
    let p = project(PLAN);
    let reason = "see\x1b]0;pwned\x07 #12\nsecond line";
    let r = p.baton(&["skip", "plan.yaml", "1.1", "--reason", reason]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let out = r.stdout();
    assert!(!out.chars().any(|c| c.is_control() && c != '\n'), "{out:?}");
    assert!(out.contains("(reason: see�]0;pwned� #12 second line)"), "{out:?}");
    let subject = p.repo.git(&["log", "-1", "--format=%B"]);
    assert!(!subject.chars().any(|c| c.is_control() && c != '\n'), "{subject:?}");
    assert_eq!(subject.trim_end().lines().count(), 1, "{subject:?}");
    // The plan keeps the reason as given.
    assert_eq!(task(&p, "1.1").result_message.as_deref(), Some(reason));
}

#[test]
fn a_plan_with_uncommitted_edits_is_edited_but_left_for_the_user_to_commit() {
    let p = project(PLAN);
    let edited = p.read("plan.yaml").replace("# the team's plan: keep this comment", "# the team's plan: edited, not committed");
    p.write("plan.yaml", &edited);
    let commits = p.repo.log_subjects();
    let r = p.baton(&["skip", "plan.yaml", "2.1"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(r.stdout().contains("not committed: plan.yaml had uncommitted changes of yours"), "{}", r.stdout());
    assert_eq!(p.repo.log_subjects(), commits);
    let text = p.read("plan.yaml");
    assert!(text.contains("edited, not committed"), "{text}");
    assert_eq!(task(&p, "2.1").status, Status::Skipped);
    // A plan git does not track yet is not added behind the user's back.
    p.write("new.yaml", PLAN);
    let r = p.baton(&["skip", "new.yaml", "2.1"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(r.stdout().contains("not committed: git does not track new.yaml yet"), "{}", r.stdout());
    assert_eq!(p.repo.log_subjects(), commits);
}

#[test]
fn control_edits_and_stop_while_a_run_holds_the_plan() {
    let p = project(PLAN);
    p.scenario(r#"{"tasks": {"1.1": [{"await_file": "go"}]}}"#);
    let mut run = p.spawn(&["run", "plan.yaml"]);
    wait_for("the agent to start", || p.state_path("1.1-1.agent.pid").exists());
    let before = p.read("plan.yaml");
    for args in [&["retry", "plan.yaml", "1.1"][..], &["skip", "plan.yaml", "2.1"], &["reset", "plan.yaml", "--all"]] {
        let r = p.baton(args);
        assert_eq!(r.code(), 2, "{args:?}: {}", r.all());
        let err = r.stderr();
        assert!(err.contains(&format!("plan plan.yaml is being run by baton (pid {})", run.id())), "{args:?}: {err}");
        assert!(err.contains("stop it with `baton stop plan.yaml`"), "{err}");
    }
    assert_eq!(p.read("plan.yaml"), before, "nothing was changed");

    let r = p.baton(&["stop", "plan.yaml"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(r.stdout().contains(&format!("stop requested: the baton running plan.yaml (pid {})", run.id())), "{}", r.stdout());
    assert!(p.path().join(".claude/plans/.stop").exists());
    wait_for("the run to take the stop", || p.log().contains("stop requested: no new task starts"));
    std::fs::write(p.state_path("go"), "").unwrap();
    assert_eq!(wait_exit(&mut run), Some(4), "{}", p.log());
    // The running task finished; nothing new started.
    assert_eq!(task(&p, "1.1").status, Status::Completed);
    assert_eq!(task(&p, "2.1").status, Status::Pending);
    assert_eq!(tasks_run(&p), ["1.1"]);
}

#[test]
fn stop_with_no_run_says_so_and_leaves_no_stop_file() {
    let p = project(PLAN);
    let r = p.baton(&["stop", "plan.yaml"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(r.stdout().contains("no baton run is active in"), "{}", r.stdout());
    assert!(!p.path().join(".claude/plans/.stop").exists());
    // A stale stop file from before is cleared, and said so.
    p.write(".claude/plans/.stop", "");
    let r = p.baton(&["stop"]);
    assert!(r.stdout().contains("removed a stale stop file"), "{}", r.stdout());
    assert!(!p.path().join(".claude/plans/.stop").exists());
    // A run that ended released its lock: no run is active again.
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let r = p.baton(&["stop", "plan.yaml"]);
    assert!(r.stdout().contains("no baton run is active"), "{}", r.stdout());
    assert!(!p.path().join(".claude/plans/.stop").exists());
}

#[test]
fn jobs_without_parallel_is_refused() {
    let p = project(PLAN);
    let r = p.baton(&["run", "plan.yaml", "--jobs", "3"]);
    assert_eq!(r.code(), 2, "{}", r.all());
    assert!(r.stderr().contains("error: --jobs 3 needs --parallel"), "{}", r.stderr());
    assert!(r.stderr().contains("baton run plan.yaml --parallel --jobs 3"), "{}", r.stderr());
    assert!(p.invocations().is_empty());
    assert_eq!(task(&p, "1.1").status, Status::Pending);
}

#[test]
fn resume_from_says_what_it_leaves_out_and_why_nothing_runs() {
    let p = project(PLAN);
    let r = p.baton(&["run", "plan.yaml", "--resume-from", "2.1"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(r.stdout().contains("resuming from 2.1: leaving out 2 unfinished tasks before it (1.1, 1.2); they stay as they are"), "{}", r.stdout());
    assert_eq!(tasks_run(&p), ["2.1"]);
    // The dry run says the same.
    let r = p.baton(&["run", "plan.yaml", "--resume-from", "2.1", "--dry-run"]);
    assert!(r.stdout().contains("resuming from 2.1: leaving out 2 unfinished tasks"), "{}", r.stdout());
    // 2.1 is completed now: resuming from it runs nothing, and says why.
    let r = p.baton(&["run", "plan.yaml", "--resume-from", "2.1"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(r.stdout().contains("2.1 itself is already completed, so the run goes on with the tasks after it"), "{}", r.stdout());
    assert_eq!(tasks_run(&p), ["2.1"]);
    // A typo gets the close matches.
    let r = p.baton(&["run", "plan.yaml", "--resume-from", "2.2"]);
    assert_eq!(r.code(), 2, "{}", r.all());
    assert!(r.stderr().contains("no task '2.2' in plan.yaml; did you mean '1.2' or '2.1'?"), "{}", r.stderr());
}

#[test]
fn each_control_command_help_names_its_own_commit() {
    let p = project(PLAN);
    for verb in ["retry", "skip", "reset"] {
        let help = p.baton(&[verb, "--help"]).stdout();
        assert!(help.contains(&format!("commit the plan (`baton: {verb} 3.2`)")), "{verb}: {help}");
    }
}

#[test]
fn a_task_done_before_and_started_again_loses_its_old_completion_time() {
    // Put back to pending by hand (not through `reset`, which clears it): the old time stays in
    // the file until the task starts again; it must not outlive a failure of this run.
    let p = project(&PLAN.replace(
        "    status: pending   # baton writes this\n",
        "    status: pending   # baton writes this\n    completed_at: '2026-01-01T00:00:00Z'\n    attempts: 1\n",
    ));
    p.scenario(r#"{"tasks": {"1.1": [{"status": "failed", "message": "red"}]}}"#);
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 3, "{}", r.all());
    let t = task(&p, "1.1");
    assert_eq!(t.status, Status::Failed);
    assert_eq!(t.completed_at, None, "{}", p.read("plan.yaml"));
}
