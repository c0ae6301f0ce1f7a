//! The run-level rules that keep the user's work safe, through the real binary: the working
//! tree (refuse a dirty one unless `--allow-dirty`, commit each task's own changes under its
//! name), git (refuse outside a repository unless `[run] commit = false`), one run per
//! checkout, systemic stops, summaries that agree with the exit code, and a status file that
//! cannot hang or bloat the plan.

use std::path::Path;

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

fn status_of(p: &Project, id: &str) -> (Status, u32) {
    let plan = p.plan();
    let t = plan.task(id).unwrap_or_else(|| panic!("no task {id}"));
    (t.status, t.attempts)
}

/// The files a commit touched, by its subject (the newest such commit).
fn files_of(p: &Project, subject: &str) -> Vec<String> {
    let log = p.repo.git(&["log", "--format=%H %s"]);
    let hash = log
        .lines()
        .find_map(|l| l.split_once(' ').filter(|(_, s)| *s == subject).map(|(h, _)| h.to_string()))
        .unwrap_or_else(|| panic!("no commit {subject:?} in:\n{log}"));
    let mut files: Vec<String> =
        p.repo.git(&["show", "--name-only", "--format=", &hash]).lines().filter(|l| !l.is_empty()).map(str::to_string).collect();
    files.sort();
    files
}

// ---- the working tree (sequential runs) ----

#[test]
fn a_dirty_tree_is_refused_naming_the_files_and_nothing_changes() {
    let p = project(THREE);
    p.write("README.md", "# my unsaved edit\n");
    p.write("notes/todo.txt", "mine\n");
    let head = p.repo.git(&["rev-parse", "HEAD"]);
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 2, "{}", r.all());
    let err = r.stderr();
    for want in ["uncommitted changes in 2 paths", "  README.md\n", "  notes/todo.txt\n", "git stash -u", "--allow-dirty"] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    assert!(p.invocations().is_empty(), "an agent was started");
    assert_eq!(p.read("plan.yaml"), THREE);
    assert_eq!(p.repo.git(&["rev-parse", "HEAD"]), head);
    // The dry run says the same.
    let dry = p.baton(&["run", "plan.yaml", "--dry-run"]);
    assert_eq!(dry.code(), 2, "{}", dry.all());
    assert!(dry.stderr().contains("README.md"), "{}", dry.stderr());
    // baton's own files do not count: the plan itself, .claude/plans/, .baton/.
    p.repo.git(&["checkout", "--", "README.md"]);
    std::fs::remove_dir_all(p.path().join("notes")).unwrap();
    p.write("plan.yaml", &THREE.replace("name: Three steps", "name: Three steps, edited"));
    p.write(".claude/plans/other-plan.yaml", "x");
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 0, "{}", r.all());
}

#[test]
fn with_allow_dirty_the_users_changes_stay_out_of_batons_commits() {
    let p = project(THREE);
    p.write("README.md", "# my unsaved edit\n");
    p.write("notes.txt", "mine\n");
    // 1.1 leaves its work uncommitted; 1.2 commits its own with `git add -A`, which takes the
    // user's files along: baton cannot stop that, but must say it.
    p.scenario(r#"{"tasks": {"1.1": [{"write": {"one.txt": "1"}}], "1.2": [{"write": {"two.txt": "2"}, "commit": "task 1.2"}]}}"#);
    let r = p.baton(&["run", "plan.yaml", "--allow-dirty"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let err = r.stderr();
    assert!(err.contains("the working tree has uncommitted changes; baton leaves them out of every commit it makes (README.md, notes.txt)"), "{err}");
    assert!(err.contains("1.1 left 1 file uncommitted (one.txt); committed it as `baton: 1.1 completed — One`"), "{err}");
    assert!(err.contains("1.2: the agent's own commit took your uncommitted changes in README.md, notes.txt"), "{err}");
    assert_eq!(files_of(&p, "baton: 1.1 completed — One"), ["one.txt", "plan.yaml"]);
    for subject in p.repo.log_subjects().iter().filter(|s| s.starts_with("baton:")) {
        let files = files_of(&p, subject);
        assert!(!files.iter().any(|f| f == "README.md" || f == "notes.txt"), "{subject} committed the user's files: {files:?}");
    }

    // Without the agent committing, the user's changes simply stay as they were.
    let q = project(THREE);
    q.write("README.md", "# my unsaved edit\n");
    q.write("notes.txt", "mine\n");
    q.scenario(r#"{"default": [{"write": {"work.txt": "w"}}]}"#);
    let r = q.baton(&["run", "plan.yaml", "--allow-dirty"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let status = q.repo.status_porcelain();
    assert_eq!(status, " M README.md\n?? notes.txt\n", "{}", r.all());
    assert_eq!(q.read("README.md"), "# my unsaved edit\n");
}

#[test]
fn work_an_agent_leaves_uncommitted_is_committed_under_its_own_task() {
    let p = project(&THREE.replace("max_attempts_default: 3", "max_attempts_default: 1"));
    p.scenario(
        r#"{"tasks": {
            "1.1": [{"write": {"one.txt": "1", "src/a.txt": "a"}, "message": "left it"}],
            "1.2": [{"write": {"two.txt": "2"}, "commit": "task 1.2"}],
            "2.1": [{"write": {"three.txt": "3"}, "status": "failed", "message": "half done"}]
        }}"#,
    );
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 1, "{}", r.all());
    assert!(r.stderr().contains("1.1 left 2 files uncommitted (one.txt, src/a.txt); committed them as `baton: 1.1 completed — One`"), "{}", r.stderr());
    assert_eq!(files_of(&p, "baton: 1.1 completed — One"), ["one.txt", "plan.yaml", "src/a.txt"]);
    // The next task's agent commits with `git add -A`: only its own work (and the plan, where
    // baton marked it in progress) is in its commit.
    assert_eq!(files_of(&p, "task 1.2"), ["plan.yaml", "two.txt"]);
    // A failed task's work is committed under its own name too, not left for the next one.
    assert_eq!(files_of(&p, "baton: 2.1 failed after 1 attempt — Three"), ["plan.yaml", "three.txt"]);
    assert_eq!(p.repo.status_porcelain(), "", "{}", r.all());
}

#[test]
fn what_a_killed_run_left_is_committed_as_that_tasks_partial_work() {
    let p = project(THREE);
    p.scenario(r#"{"tasks": {"1.2": [{"write": {"partial.txt": "half"}, "hang": true}, {"write": {"partial.txt": "whole"}}]}}"#);
    let mut child = p.spawn(&["run", "plan.yaml"]);
    wait_for("the agent of 1.2 to hang", || p.pid_file("1.2-1.agent.pid").is_some());
    let agent = p.pid_file("1.2-1.agent.pid").unwrap();
    signal(&child, libc::SIGKILL);
    let _ = child.wait();
    wait_for("the agent to die with baton", || !process_alive(agent));
    assert!(p.repo.status_porcelain().contains("?? partial.txt"));

    // The rerun does not take the half-done work for the user's: no --allow-dirty needed.
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let partial = "baton: 1.2 partial work — Two (its run was interrupted; the task is not done)";
    assert!(r.stdout().contains(&format!("1.2 left 1 uncommitted file (partial.txt); committed as `{partial}`")), "{}", r.stdout());
    assert_eq!(files_of(&p, partial), ["partial.txt"]);
    assert_eq!(files_of(&p, "baton: 1.2 completed — Two"), ["partial.txt", "plan.yaml"]);
    assert_eq!(status_of(&p, "1.2"), (Status::Completed, 1));
    assert_eq!(p.repo.status_porcelain(), "");
}

#[test]
fn an_attempt_ended_by_sigterm_leaves_its_work_committed_and_the_tree_clean() {
    let p = project(THREE);
    p.scenario(r#"{"tasks": {"1.1": [{"write": {"partial.txt": "half"}, "hang": true}, {}]}}"#);
    let mut child = p.spawn(&["run", "plan.yaml"]);
    wait_for("the agent of 1.1 to hang", || p.pid_file("1.1-1.agent.pid").is_some());
    signal(&child, libc::SIGTERM);
    assert_eq!(wait_exit(&mut child), Some(4), "{}", p.log());
    assert_eq!(status_of(&p, "1.1"), (Status::Pending, 0));
    assert_eq!(files_of(&p, "baton: 1.1 partial work — One (the run ended before the task did; the task is not done)"), ["partial.txt"]);
    assert_eq!(p.repo.status_porcelain(), "", "{}", p.log());
    // So the next run starts without --allow-dirty.
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 0, "{}", r.all());
}

#[test]
fn parallel_runs_follow_the_same_rule() {
    let plan = "meta:\n  name: P\nsections:\n- id: s\n  tasks:\n  - {id: a, name: A, parallel_group: g}\n  - {id: b, name: B, parallel_group: g}\n";
    let p = project(plan);
    p.write("README.md", "# my unsaved edit\n");
    let r = p.baton(&["run", "plan.yaml", "--parallel"]);
    assert_eq!(r.code(), 2, "{}", r.all());
    assert!(r.stderr().contains("  README.md\n") && r.stderr().contains("--allow-dirty"), "{}", r.stderr());
    assert!(p.invocations().is_empty());
    let r = p.baton(&["run", "plan.yaml", "--parallel", "--allow-dirty"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(p.read("README.md"), "# my unsaved edit\n");
    assert_eq!(p.repo.status_porcelain(), " M README.md\n");
}

// ---- git ----

/// A folder outside any git repository with the plan, and the project for the fake agent.
fn outside_git(config: &str) -> (Project, tempfile::TempDir) {
    let p = Project::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("plan.yaml"), THREE).unwrap();
    std::fs::write(dir.path().join("baton.toml"), config).unwrap();
    (p, dir)
}

#[test]
fn outside_git_the_run_is_refused_and_nothing_is_written() {
    let (p, dir) = outside_git(FAST_CONFIG);
    let r = baton_testkit::run_with_deadline(
        p.command(&["run", "plan.yaml"]).current_dir(dir.path()),
        std::time::Duration::from_secs(60),
    )
    .unwrap();
    assert_eq!(r.status.code(), Some(2), "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("is not in a git repository"), "{}", r.stderr);
    assert!(r.stderr.contains("commit = false"), "{}", r.stderr);
    assert!(p.invocations().is_empty());
    let mut left: Vec<String> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    left.sort();
    assert_eq!(left, ["baton.toml", "plan.yaml"], "the refused run wrote files");
    assert_eq!(std::fs::read_to_string(dir.path().join("plan.yaml")).unwrap(), THREE);
}

#[test]
fn with_commit_off_the_run_makes_no_git_call_and_says_so() {
    let (p, dir) = outside_git(&format!("{FAST_CONFIG}commit = false\n"));
    // A `git` that only records that it was called, first on PATH.
    let bin = tempfile::tempdir().unwrap();
    let called = bin.path().join("git-was-called");
    let git = bin.path().join("git");
    std::fs::write(&git, format!("#!/bin/sh\necho \"$@\" >> '{}'\nexit 1\n", called.display())).unwrap();
    std::fs::set_permissions(&git, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.path().display(), std::env::var("PATH").unwrap_or_default());
    let r = baton_testkit::run_with_deadline(
        p.command(&["run", "plan.yaml"]).current_dir(dir.path()).env("PATH", path),
        std::time::Duration::from_secs(60),
    )
    .unwrap();
    assert_eq!(r.status.code(), Some(0), "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("no git: nothing is committed (baton.toml [run] commit = false)"), "{}", r.stdout);
    assert_eq!(p.invocations().len(), 3);
    assert!(!called.exists(), "baton called git: {}", std::fs::read_to_string(&called).unwrap_or_default());
}

// ---- one run per checkout ----

#[test]
fn two_plans_in_one_checkout_are_refused_but_a_worktree_runs_beside() {
    let p = project(THREE);
    p.write("other.yaml", &THREE.replace("Three steps", "Other"));
    p.repo.commit_all("another plan");
    p.scenario(r#"{"tasks": {"1.1": [{"hang": true}]}}"#);
    let mut first = p.spawn(&["run", "plan.yaml"]);
    wait_for("the first run's agent", || p.pid_file("1.1-1.agent.pid").is_some());

    let second = p.baton(&["run", "other.yaml"]);
    assert_eq!(second.code(), 2, "{}", second.all());
    let err = second.stderr();
    assert!(err.contains(&format!("another baton (pid {}) is running plan plan.yaml in this checkout", first.id())), "{err}");
    assert!(err.contains("git worktree add"), "{err}");
    assert_eq!(p.read("other.yaml"), THREE.replace("Three steps", "Other"), "the refused run changed its plan");

    // Another worktree is another checkout.
    let elsewhere = tempfile::tempdir().unwrap();
    let wt = elsewhere.path().join("wt");
    p.repo.git(&["worktree", "add", "-q", "-b", "other", &wt.display().to_string()]);
    p.scenario("{}");
    let r = baton_testkit::run_with_deadline(
        p.command(&["run", "other.yaml"]).current_dir(&wt),
        std::time::Duration::from_secs(120),
    )
    .unwrap();
    assert_eq!(r.status.code(), Some(0), "{}{}", r.stdout, r.stderr);
    signal(&first, libc::SIGTERM);
    wait_exit(&mut first);
}

// ---- systemic stops ----

/// An agent that prints what the real Claude Code CLI prints without credentials.
fn not_logged_in_agent(dir: &Path) -> std::path::PathBuf {
    let script = dir.join("claude");
    let lines = [
        r#"{"type":"system","subtype":"init","session_id":"s1","model":"claude-sonnet-4-5","cwd":"/w","tools":[],"apiKeySource":"none"}"#,
        r#"{"type":"assistant","message":{"id":"m1","model":"<synthetic>","role":"assistant","type":"message","content":[{"type":"text","text":"Not logged in · Please run /login"}]},"session_id":"s1","error":"authentication_failed"}"#,
        r#"{"type":"result","subtype":"success","is_error":true,"duration_ms":12,"num_turns":1,"result":"Not logged in · Please run /login","total_cost_usd":0,"session_id":"s1"}"#,
    ];
    std::fs::write(&script, format!("#!/bin/sh\ncat <<'EOF'\n{}\nEOF\nexit 1\n", lines.join("\n"))).unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    script
}

#[test]
fn not_logged_in_stops_the_run_at_once_and_spends_no_attempt() {
    let p = project(THREE);
    let bin = tempfile::tempdir().unwrap();
    let agent = not_logged_in_agent(bin.path());
    let r = baton_testkit::run_with_deadline(
        p.command(&["run", "plan.yaml"]).env("BATON_CLAUDE_BIN", &agent),
        std::time::Duration::from_secs(60),
    )
    .unwrap();
    assert_eq!(r.status.code(), Some(2), "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("Claude Code is not logged in"), "{}", r.stderr);
    assert!(r.stderr.contains("ANTHROPIC_API_KEY"), "{}", r.stderr);
    assert!(!r.stdout.contains("BREAKER") && !r.stdout.contains("circuit breaker"), "{}", r.stdout);
    assert_eq!(status_of(&p, "1.1"), (Status::Pending, 0), "the attempt was spent");
    assert!(p.plan().task("1.1").unwrap().last_error.is_none());
    let sessions = std::fs::read_dir(p.path().join(".baton/logs/plan/1.1")).unwrap().filter(|e| {
        e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".jsonl")
    });
    assert_eq!(sessions.count(), 1, "baton retried a systemic failure");
}

// ---- summaries that agree with the exit code ----

#[test]
fn single_task_says_one_task_ran_and_sends_no_plan_notice() {
    let p = project(THREE);
    let notices = tempfile::tempdir().unwrap();
    let file = notices.path().join("notices.jsonl");
    p.write("baton.toml", &format!("{FAST_CONFIG}\n[notify]\ncommand = \"cat >> '{}'\"\n", file.display()));
    p.repo.commit_all("config");
    let r = p.baton(&["run", "plan.yaml", "--single-task"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let out = r.stdout();
    assert!(out.contains("--single-task: 1.1 completed in "), "{out}");
    assert!(out.contains("1 of 3 completed · 2 pending"), "{out}");
    assert!(!out.contains("plan \"Three steps\" completed"), "{out}");
    assert!(!file.exists(), "a plan notice went out: {}", std::fs::read_to_string(&file).unwrap_or_default());
}

#[test]
fn a_dry_run_ends_as_the_run_would() {
    // 1.1 failed in an earlier run: 1.2 and 2.1 can never run.
    let p = project(&THREE.replacen("status: pending", "status: failed\n    attempts: 3", 1));
    let dry = p.baton(&["run", "plan.yaml", "--dry-run"]);
    assert_eq!(dry.code(), 3, "{}", dry.all());
    let out = dry.stdout();
    assert!(out.contains("nothing to run") && out.contains("blocked: 2 tasks can never run") && out.contains("exit 3"), "{out}");
    assert!(p.invocations().is_empty());
    let real = p.baton(&["run", "plan.yaml"]);
    assert_eq!(real.code(), 3, "{}", real.all());

    // Everything done: both say so and exit 0.
    let done = project(&THREE.replace("status: pending", "status: completed"));
    let dry = done.baton(&["run", "plan.yaml", "--dry-run"]);
    assert_eq!(dry.code(), 0, "{}", dry.all());
    assert!(dry.stdout().contains("every task is completed, verified or skipped"), "{}", dry.stdout());
    assert_eq!(done.baton(&["run", "plan.yaml"]).code(), 0);
}

#[test]
fn an_error_after_tasks_ran_does_not_claim_nothing_ran() {
    let p = project(THREE);
    // 1.1 completes with an invalid plan edit; 1.2 meets a CLI that refuses to run as root.
    p.scenario(
        r#"{"tasks": {"1.1": [{"plan_replace": ["depends_on: ['1.2']", "depends_on: ['9.9']"], "plan_modified": true}], "1.2": [{"root_refusal": true}]}}"#,
    );
    let r = baton_testkit::run_with_deadline(
        p.command(&["run", "plan.yaml"]).env_remove("IS_SANDBOX"),
        std::time::Duration::from_secs(60),
    )
    .unwrap();
    assert_eq!(r.status.code(), Some(2), "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("is not a valid plan"), "{}", r.stderr);
    assert!(!r.stderr.contains("nothing was run") && !r.stdout.contains("nothing was run"), "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("stopped on an error after 2 attempts"), "{}", r.stdout);
    assert_eq!(status_of(&p, "1.1").0, Status::Completed);
}

// ---- the status file ----

#[test]
fn a_named_pipe_as_the_status_file_does_not_hang_baton() {
    let p = project(&THREE.replace("max_attempts_default: 3", "max_attempts_default: 1"));
    p.scenario(r#"{"tasks": {"1.1": [{"shell": "mkfifo .claude/plans/task-status.json", "status": "none"}]}}"#);
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 3, "{}", r.all());
    let err = p.plan().task("1.1").unwrap().last_error.clone().unwrap_or_default();
    assert!(err.contains("a named pipe, not a regular file"), "{err}");
    assert!(!p.path().join(".claude/plans/task-status.json").exists(), "the pipe was left behind");
}

#[test]
fn a_huge_status_message_is_cut_in_the_plan_and_kept_whole_in_the_record() {
    let p = project(THREE);
    let message = format!("first line\n{}\nlast words", "x".repeat(200_000));
    p.scenario(&format!(r#"{{"tasks": {{"1.1": [{{"message": {}}}]}}}}"#, serde_json::to_string(&message).unwrap()));
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let kept = p.plan().task("1.1").unwrap().result_message.clone().unwrap();
    assert!(kept.len() < 2200, "{} bytes in the plan", kept.len());
    assert!(kept.starts_with("first line xxx"), "{}", &kept[..40]);
    assert!(kept.ends_with("… (200022 bytes; full text: `baton logs plan.yaml 1.1`)"), "{}", &kept[kept.len() - 80..]);
    assert!(!kept.contains('\n'));
    assert!(r.stdout().len() < 10_000, "the whole message was printed");
    let logs = p.baton(&["logs", "plan.yaml", "1.1"]).stdout();
    // `logs` shows agent text on one line each (made safe for a terminal), so the message's
    // line breaks read as spaces there; every character of it is kept.
    assert!(logs.contains(&message.replace('\n', " ")), "the record lost the full message");
}

/// A commit that fails (here: another process holds git's index lock for longer than baton
/// waits) stops the run with an error instead of going on with commits switched off; the next
/// start commits the finished task's work under its name, and the run goes on.
#[test]
fn a_failed_commit_stops_the_run_and_the_next_start_commits_the_work() {
    let p = project(THREE);
    let (done, held) = (p.state_path("agent-done"), p.state_path("lock-held"));
    p.scenario(&format!(
        r#"{{"tasks": {{"1.1": [{{"mark": [{}], "wait_for": [{}], "write": {{"one.txt": "1"}}}}]}}}}"#,
        serde_json::to_string(&done).unwrap(),
        serde_json::to_string(&held).unwrap()
    ));
    let mut child = p.spawn(&["run", "plan.yaml"]);
    wait_for("the agent to work", || done.exists());
    let lock = p.path().join(".git/index.lock");
    let holder = std::fs::File::create(&lock).unwrap();
    std::fs::write(&held, "").unwrap();
    assert_eq!(wait_exit(&mut child), Some(2), "{}", p.log());
    assert!(p.log().contains("the run stops (no new task starts)"), "{}", p.log());
    assert_eq!(p.invocations().len(), 1, "a task started after the failed commit");
    // The holder is gone, its lock file left behind: stale, removed, and the work committed.
    drop(holder);
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let log = p.repo.log_subjects();
    assert!(log.iter().any(|s| s.starts_with("baton: 1.1 completed — One (committed after")), "{log:?}");
    let by = p.repo.git(&["log", "--format=%s", "--", "one.txt"]);
    assert!(by.trim().starts_with("baton: 1.1 completed — One (committed after"), "one.txt came in with: {by}");
    assert_eq!(p.repo.status_porcelain(), "");
}

/// An agent may change the plan, but not what baton owns: it cannot mark another task done
/// (nor hand back attempts); it may mark a pending task skipped. Sequential and parallel alike.
#[test]
fn an_agent_cannot_mark_another_task_done_but_may_skip_one() {
    for parallel in [false, true] {
        let plan = if parallel { THREE.replace("    depends_on: ['1.1']\n", "") } else { THREE.to_string() };
        let p = project(&plan);
        // 1.1's agent marks 1.2 done with 7 attempts; 1.2's agent marks 2.1 skipped.
        let done = r#"{"plan_replace": ["name: Two\n    status: pending", "name: Two\n    status: completed\n    attempts: 7"], "plan_modified": true}"#;
        let skip = r#"{"plan_replace": ["name: Three\n    status: pending", "name: Three\n    status: skipped"], "plan_modified": true}"#;
        p.scenario(&format!(r#"{{"tasks": {{"1.1": [{done}], "1.2": [{skip}]}}}}"#));
        let mut args = vec!["run", "plan.yaml"];
        if parallel {
            args.push("--parallel");
        }
        let r = p.baton(&args);
        assert_eq!(r.code(), 0, "parallel={parallel}: {}", r.all());
        let ran: Vec<String> = p.invocations().iter().map(|i| i["task_id"].as_str().unwrap_or("").to_string()).collect();
        assert!(ran.contains(&"1.2".to_string()), "parallel={parallel}: 1.2 never ran, its status was taken from the agent: {ran:?}\n{}", r.all());
        assert_eq!(status_of(&p, "1.2"), (Status::Completed, 1), "parallel={parallel}: {}", r.all());
        assert!(!ran.contains(&"2.1".to_string()), "parallel={parallel}: the skipped task ran");
        assert_eq!(status_of(&p, "2.1").0, Status::Skipped, "parallel={parallel}: {}", r.all());
        assert!(r.all().contains("put back: 1.2: status"), "parallel={parallel}: {}", r.all());
    }
}
