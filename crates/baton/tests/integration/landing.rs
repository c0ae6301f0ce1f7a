//! Parallel landing never loses work: edits git's stat cache cannot see, many runs of two
//! tasks editing one file, a crash half-way through copying, names that are not UTF-8, plan
//! edits not announced, symlinks into `.git`, claims and rescued branches left by a crash.

use baton::plan::Status;

use crate::support::{FAST_CONFIG, Project, project};

fn group_plan(tasks: &[&str]) -> String {
    let mut s = String::from("meta:\n  name: Landing\n  max_attempts_default: 2\nsections:\n- id: s1\n  name: Group\n  tasks:\n");
    for id in tasks {
        s.push_str(&format!("  - id: '{id}'\n    name: Task {id}\n    status: pending\n    parallel_group: g\n"));
    }
    s
}

fn status(p: &Project, id: &str) -> Status {
    p.plan().task(id).unwrap_or_else(|| panic!("no task {id}")).status
}

fn branches(p: &Project, pattern: &str) -> String {
    p.repo.git(&["branch", "--list", pattern]).trim().to_string()
}

/// The agent edits a tracked file keeping its size, and its stat data (mtime restored, ctime
/// not trusted by this repository's git), after its own `git status`-like refresh: git's stat
/// cache says "unchanged". The edit must land all the same.
#[test]
fn a_same_size_edit_the_stat_cache_cannot_see_still_lands() {
    let p = project(&group_plan(&["1"]));
    p.repo.git(&["config", "core.trustctime", "false"]);
    p.write("same.txt", "aaaa\n");
    p.repo.commit_all("same");
    let shell = "touch -d '2020-01-01 00:00:00' same.txt && git update-index -q --refresh; \
                 printf 'bbbb\\n' > same.txt && touch -d '2020-01-01 00:00:00' same.txt";
    p.scenario(&format!(r#"{{"tasks": {{"1": [{{"shell": {}}}]}}}}"#, serde_json::to_string(shell).unwrap()));
    let r = p.baton(&["run", "plan.yaml", "--parallel", "--verbose"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(p.read("same.txt"), "bbbb\n", "the edit was lost:\n{}", r.all());
    assert!(r.all().contains("1: landed 1 file(s)"), "{}", r.all());
    assert_eq!(p.repo.status_porcelain(), "");
}

/// Two tasks editing different lines of one file, run many times on whatever load the test
/// harness puts on the machine: both edits land every time.
#[test]
fn two_tasks_editing_one_file_never_lose_an_edit_over_many_runs() {
    let base: String = (1..=6).map(|i| format!("line {i}\n")).collect();
    for round in 0..30 {
        let p = project(&group_plan(&["1", "2"]));
        p.write("shared.txt", &base);
        p.repo.commit_all("shared");
        let one = base.replace("line 1\n", "LINE 1\n");
        let two = base.replace("line 6\n", "LINE 6\n");
        p.scenario(&format!(
            r#"{{"tasks": {{"1": [{{"write": {{"shared.txt": {}}}}}], "2": [{{"write": {{"shared.txt": {}}}}}]}}}}"#,
            serde_json::to_string(&one).unwrap(),
            serde_json::to_string(&two).unwrap()
        ));
        let r = p.baton(&["run", "plan.yaml", "--parallel", "--verbose"]);
        assert_eq!(r.code(), 0, "round {round}: {}", r.all());
        let both = base.replace("line 1\n", "LINE 1\n").replace("line 6\n", "LINE 6\n");
        assert_eq!(p.read("shared.txt"), both, "round {round}: an edit was lost:\n{}", r.all());
        assert_eq!(p.repo.status_porcelain(), "", "round {round}");
        assert_eq!(p.repo.git(&["show", "HEAD:shared.txt"]), both, "round {round}: not committed");
    }
}

/// `kill -9` after the journal was written and part of a task's files were copied: the next
/// start finishes the landing, commits it under the task, records the task done from its
/// attempt record (no agent runs again), and removes its worktree. Nothing looks like the
/// user's change.
#[test]
fn a_landing_killed_half_way_is_finished_and_committed_at_the_next_start() {
    let p = project(&group_plan(&["1"]));
    p.write("edit.txt", "before\n");
    p.repo.commit_all("edit");
    let fork = p.repo.git(&["rev-parse", "HEAD"]).trim().to_string();
    // The crashed run's state: a worktree with the work, the attempt record, the task in
    // progress, the journal, and only new.txt copied so far.
    p.repo.git(&["worktree", "add", "-q", "-b", "parallel/plan-1", ".worktrees/plan-1"]);
    p.write(".worktrees/plan-1/edit.txt", "after\n");
    p.write(".worktrees/plan-1/new.txt", "new\n");
    p.write("new.txt", "new\n");
    p.write("plan.yaml", &p.read("plan.yaml").replace("status: pending", "status: in_progress"));
    p.write(
        ".baton/logs/plan/1/attempt-1.json",
        r#"{"task":"1","session":1,"attempt":1,"started_at":"2026-01-01T00:00:00Z","ended_at":"2026-01-01T00:01:00Z","duration_seconds":60.0,"outcome":"completed","message":"did it","cost_usd":0.01,"turns":2,"input_tokens":null,"output_tokens":null,"session_id":null,"exit":"0","waited_seconds":null}"#,
    );
    p.write(".baton/logs/plan/1/attempt-1.jsonl", "");
    let hash = |text: &str| {
        let wt = p.path().join(".worktrees/plan-1");
        let f = wt.join(".blob");
        std::fs::write(&f, text).unwrap();
        let oid = p.repo.git(&["hash-object", "-w", f.to_str().unwrap()]).trim().to_string();
        std::fs::remove_file(f).unwrap();
        oid
    };
    let blob = |oid: String| serde_json::json!({"mode": 0o100644, "oid": oid});
    let wt = p.path().join(".worktrees/plan-1");
    let journal = serde_json::json!([{
        "task": "1",
        "worktree": wt.to_str().unwrap().as_bytes(),
        "branch": "parallel/plan-1",
        "fork": fork,
        "intents": [
            {"path": b"edit.txt", "before": blob(hash("before\n")), "after": blob(hash("after\n"))},
            {"path": b"new.txt", "before": null, "after": blob(hash("new\n"))},
        ]
    }]);
    p.write(".baton/logs/plan/landing-journal.json", &journal.to_string());

    let r = p.baton(&["run", "plan.yaml", "--parallel", "--verbose"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(p.read("edit.txt"), "after\n");
    assert_eq!(p.read("new.txt"), "new\n");
    assert_eq!(p.repo.status_porcelain(), "", "landed work was left uncommitted:\n{}", r.all());
    let log = p.repo.log_subjects();
    assert!(log.iter().any(|s| s.starts_with("plan: land task 1 (finished after an interrupted run)")), "{log:?}");
    assert_eq!(status(&p, "1"), Status::Completed);
    assert_eq!(p.plan().task("1").unwrap().attempts, 1);
    assert!(p.invocations().is_empty(), "the task ran again although its work had landed:\n{}", r.all());
    assert!(!wt.exists(), "the landed worktree was kept");
    assert_eq!(branches(&p, "parallel*"), "", "a branch was left or rescued");
    assert!(!p.path().join(".baton/logs/plan/landing-journal.json").exists());
}

#[test]
fn a_file_name_that_is_not_utf8_lands_and_is_committed() {
    let p = project(&group_plan(&["1"]));
    p.scenario(r#"{"tasks": {"1": [{"shell": "printf 'latin-1\\n' > \"$(printf 'caf\\351.txt')\""}]}}"#);
    let r = p.baton(&["run", "plan.yaml", "--parallel", "--verbose"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let files = p.repo.git(&["ls-files", "-z"]);
    assert!(files.split('\0').any(|f| f == "caf\u{fffd}.txt" || f.starts_with("caf")), "{files:?}");
    assert_eq!(p.repo.status_porcelain(), "", "landed but not committed");
    use std::os::unix::ffi::OsStrExt;
    let name = std::ffi::OsStr::from_bytes(b"caf\xe9.txt");
    assert_eq!(std::fs::read_to_string(p.path().join(name)).unwrap(), "latin-1\n");
}

#[test]
fn an_unannounced_plan_edit_in_a_worktree_is_kept() {
    let p = project(&group_plan(&["1"]));
    let added = "  - id: '1b'\n    name: Added quietly\n    status: pending\n    depends_on: ['1']\n";
    p.scenario(&format!(
        r#"{{"tasks": {{"1": [{{"plan_append": {}, "plan_replace": ["name: Task 1", "name: Task 1, renamed by its agent"]}}]}}}}"#,
        serde_json::to_string(added).unwrap()
    ));
    let r = p.baton(&["run", "plan.yaml", "--parallel", "--verbose"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(status(&p, "1b"), Status::Completed, "{}", r.all());
    assert_eq!(p.plan().task("1").unwrap().name, "Task 1, renamed by its agent");
    assert_eq!(status(&p, "1"), Status::Completed);
}

#[test]
fn an_uncommitted_plan_is_in_every_worktree() {
    let p = Project::new();
    p.write("baton.toml", FAST_CONFIG);
    p.repo.commit_all("config only");
    p.write("plan.yaml", &group_plan(&["1", "2"]));
    p.scenario(r#"{"default": [{"shell": "cp plan.yaml seen-plan-$BATON_TASK_ID.yaml"}]}"#);
    let r = p.baton(&["run", "plan.yaml", "--parallel", "--verbose"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    for t in ["1", "2"] {
        let seen = p.read(&format!("seen-plan-{t}.yaml"));
        assert!(seen.contains("name: Task 1") && seen.contains("name: Task 2"), "task {t} saw: {seen}");
    }
}

#[test]
fn a_symlink_into_git_is_never_landed() {
    let p = project(&group_plan(&["1", "2"]));
    p.scenario(r#"{"tasks": {"1": [{"shell": "ln -s .git/hooks hooks"}], "2": [{"shell": "ln -s .GIT meta"}]}}"#);
    let r = p.baton(&["run", "plan.yaml", "--parallel", "--verbose"]);
    assert_eq!(r.code(), 1, "{}", r.all());
    for (t, link) in [("1", "hooks"), ("2", "meta")] {
        assert!(std::fs::symlink_metadata(p.path().join(link)).is_err(), "{link} landed");
        let err = p.plan().task(t).unwrap().last_error.clone().unwrap();
        assert!(err.contains(".git"), "{err}");
    }
}

#[test]
fn claims_left_by_a_crashed_run_do_not_block_agents() {
    let p = project(&group_plan(&["1"]));
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    let now = jiff::Timestamp::now().to_string();
    p.write(
        ".claude/agent-claims.json",
        &serde_json::json!({"claims": {"src/a.rs": {"agent_id": "agent-old", "task_id": "9", "claimed_at": now, "worktree": "/x", "run": format!("{dead}-1")}}}).to_string(),
    );
    p.scenario(&format!(
        r#"{{"tasks": {{"1": [{{"shell": "{} claim src/a.rs > claim.out 2>&1; true"}}]}}}}"#,
        crate::support::BATON
    ));
    let r = p.baton(&["run", "plan.yaml", "--parallel", "--verbose"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(r.all().contains("removed the claim of agent-old on src/a.rs"), "{}", r.all());
    assert_eq!(p.read("claim.out").trim(), "src/a.rs: granted");
}

/// Once a task has completed, its rescued branches go: one whose work landed, and one an
/// interrupted attempt left that the completing attempt replaced — named, with its commit, so
/// that it can be brought back. Another task's rescued branch stays.
#[test]
fn rescued_branches_of_a_completed_task_are_deleted_and_an_unlanded_ones_commit_is_named() {
    let p = project(&group_plan(&["1"]));
    // Rescued by an earlier, interrupted run: one holds what the task lands now, one does not.
    let rescued = |name: &str, content: &str| -> String {
        p.repo.git(&["checkout", "-q", "-b", name]);
        p.write("one.txt", content);
        p.repo.commit_all("rescued");
        let tip = p.repo.git(&["rev-parse", "HEAD"]).trim().to_string();
        p.repo.git(&["checkout", "-q", "-"]);
        tip
    };
    rescued("parallel-rescued/plan-1-20260101-000000", "1\n");
    let older = rescued("parallel-rescued/plan-1-20260101-000001", "an older try\n");
    rescued("parallel-rescued/plan-10-20260101-000000", "1\n");
    p.scenario(r#"{"tasks": {"1": [{"write": {"one.txt": "1\n"}}]}}"#);
    let r = p.baton(&["run", "plan.yaml", "--parallel", "--verbose"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let left = branches(&p, "parallel-rescued/*");
    assert!(!left.contains("plan-1-2026"), "{left}");
    assert!(left.contains("plan-10-20260101-000000"), "another task's branch was touched: {left}");
    assert!(
        r.all().contains(&format!("`git branch parallel-rescued/plan-1-20260101-000001 {older}` brings it back")),
        "the unlanded branch's commit was not named:\n{}",
        r.all()
    );
}

/// `kill -9` as soon as the first of a task's many files appears in main (usually while the
/// rest are still being copied): the next run lands and commits all of them, under the task,
/// and the task counts one attempt.
#[test]
fn kill_9_while_files_are_copied_then_resume_lands_all_or_nothing() {
    let p = project(&group_plan(&["1"]));
    p.scenario(r#"{"tasks": {"1": [{"shell": "mkdir -p many && for i in $(seq 1 300); do echo $i > many/$i.txt; done"}]}}"#);
    let mut child = p.spawn(&["run", "plan.yaml", "--parallel"]);
    crate::support::wait_for("the first landed file", || {
        std::fs::read_dir(p.path().join("many")).is_ok_and(|mut d| d.next().is_some())
    });
    crate::support::signal(&child, libc::SIGKILL);
    let _ = child.wait();

    let r = p.baton(&["run", "plan.yaml", "--parallel", "--verbose"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(p.repo.status_porcelain(), "", "landed work was left uncommitted:\n{}", r.all());
    let tracked = p.repo.git(&["ls-files", "many"]);
    assert_eq!(tracked.lines().count(), 300, "{}", r.all());
    for i in [1, 150, 300] {
        assert_eq!(p.read(&format!("many/{i}.txt")), format!("{i}\n"));
    }
    assert_eq!(status(&p, "1"), Status::Completed);
    assert_eq!(p.plan().task("1").unwrap().attempts, 1);
    assert_eq!(branches(&p, "parallel/*"), "", "{}", r.all());
}

#[test]
fn rescued_branches_of_tasks_completed_earlier_are_pruned_at_start_once_landed() {
    let plan = group_plan(&["1", "2"]).replacen("status: pending", "status: completed", 1);
    let p = project(&plan);
    p.repo.git(&["checkout", "-q", "-b", "parallel-rescued/plan-1-20260101-000000"]);
    p.write("one.txt", "1\n");
    p.repo.commit_all("rescued");
    p.repo.git(&["checkout", "-q", "-"]);
    p.write("one.txt", "1\n");
    p.repo.commit_all("landed since");
    let r = p.baton(&["run", "plan.yaml", "--parallel", "--verbose"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(branches(&p, "parallel-rescued/*"), "", "{}", r.all());
    assert_eq!(p.invocations().len(), 1, "only task 2 runs");
}

/// A kill between a task's landing and the removal of its worktree leaves the worktree and its
/// branch behind for a task that is completed: the next run clears them (its work is in main),
/// and rescues what is not.
#[test]
fn a_completed_tasks_leftover_worktree_and_branch_are_cleared_at_start() {
    let plan = group_plan(&["1", "2", "3"]).replacen("status: pending", "status: completed", 2);
    let p = project(&plan);
    p.repo.git(&["worktree", "add", "-q", "-b", "parallel/plan-1", ".worktrees/plan-1"]);
    p.repo.git(&["worktree", "add", "-q", "-b", "parallel/plan-2", ".worktrees/plan-2"]);
    // Task 2's leftover holds work main does not have.
    std::fs::write(p.path().join(".worktrees/plan-2/lost.txt"), "not in main\n").unwrap();
    let r = p.baton(&["run", "plan.yaml", "--parallel", "--verbose"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(branches(&p, "parallel/*"), "", "{}", r.all());
    assert!(!p.path().join(".worktrees/plan-1").exists() && !p.path().join(".worktrees/plan-2").exists());
    // The unlanded work was rescued, and named with its commit when its branch went.
    assert!(r.all().contains("deleted parallel-rescued/plan-2-"), "{}", r.all());
    assert!(r.all().contains("brings it back"), "{}", r.all());
    assert_eq!(status(&p, "3"), Status::Completed);
}
