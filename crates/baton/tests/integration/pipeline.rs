//! `baton pipeline` against the scripted fake agent, which writes the plans it is asked for.

use std::time::Duration;

use baton::plan::Status;

use crate::support::{signal, wait_exit, wait_for, Project, FAST_CONFIG};

const GOOD_PLAN: &str = "meta:\n  name: Fix it\nsections:\n- id: s\n  name: Fix\n  tasks:\n  - id: 'p1'\n    name: Do the fix\n    status: pending\n    description: 'Fix it. Files: src/fix.rs'\n";

fn project() -> Project {
    let p = Project::new();
    p.write("baton.toml", FAST_CONFIG);
    p.repo.commit_all("config");
    p
}

/// A scenario step that writes `plan` at the plan path of `slug`.
fn writes_plan(slug: &str, plan: &str) -> String {
    format!(
        r#"{{"write": {{".claude/plans/{slug}.yaml": {}}}, "plan_modified": true}}"#,
        serde_json::to_string(plan).unwrap()
    )
}

fn plan_status(p: &Project, slug: &str, task: &str) -> (Status, u32) {
    let plan = baton::plan::parse_plan(&p.read(&format!(".claude/plans/{slug}.yaml"))).unwrap();
    let t = plan.task(task).unwrap();
    (t.status, t.attempts)
}

#[test]
fn once_takes_the_defect_first_plans_runs_archives_and_commits() {
    let p = project();
    p.write("docs/feature-backlog/a-feature.md", "# A feature\n\nDo a thing.\n");
    p.write("docs/defect-backlog/login-bug.md", "# Login fails\n\nUsers cannot log in.\n");
    p.write("docs/defect-backlog/old.md", "# Old\n\n## Status: Fixed\n");
    p.repo.commit_all("backlog");
    p.scenario(&format!(
        r#"{{"tasks": {{"plan:login-bug": [{}], "p1": [{{"write": {{"src/fix.rs": "// fixed\n"}}, "commit": "fix login"}}]}}}}"#,
        writes_plan("login-bug", GOOD_PLAN)
    ));
    let r = p.baton(&["pipeline", "--once"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    // The defect went first and is archived; the feature and the fixed defect are untouched.
    assert!(!p.path().join("docs/defect-backlog/login-bug.md").exists());
    let archived = p.read("docs/defect-backlog/completed/login-bug.md");
    assert!(archived.starts_with("# Login fails\n"), "{archived}");
    assert!(archived.contains("## Status: Completed ("), "{archived}");
    assert!(p.path().join("docs/feature-backlog/a-feature.md").exists());
    assert_eq!(p.read("docs/defect-backlog/old.md"), "# Old\n\n## Status: Fixed\n");
    assert_eq!(plan_status(&p, "login-bug", "p1"), (Status::Completed, 1));
    assert_eq!(p.read("src/fix.rs"), "// fixed\n");
    let log = p.repo.log_subjects();
    assert_eq!(log[0], "pipeline: docs/defect-backlog/login-bug.md completed", "{log:?}");
    assert_eq!(p.repo.status_porcelain(), "", "the pipeline left changes uncommitted");
    // The planning prompt carried the item and the paths to write.
    let inv = p.invocations();
    let prompt = inv[0]["prompt"].as_str().unwrap();
    assert_eq!(inv[0]["task_id"], "plan:login-bug");
    for want in ["Users cannot log in.", "Plan file: .claude/plans/login-bug.yaml", "Design document: docs/plans/", "-login-bug-design.md"] {
        assert!(prompt.contains(want), "missing {want:?} in the planning prompt:\n{prompt}");
    }
}

#[test]
fn an_invalid_plan_is_asked_for_once_more_with_the_errors_then_fails_the_item() {
    let p = project();
    p.write("docs/defect-backlog/bad.md", "# Bad\n");
    p.repo.commit_all("backlog");
    let broken = "sections:\n- id: s\n  tasks:\n  - id: '1'\n    name: x\n    depends_on: ['nope']\n";
    p.scenario(&format!(r#"{{"tasks": {{"plan:bad": [{}]}}}}"#, writes_plan("bad", broken)));
    let r = p.baton(&["pipeline", "--once"]);
    assert_eq!(r.code(), 1, "{}", r.all());
    let inv = p.invocations();
    assert_eq!(inv.len(), 2, "the agent was not asked exactly twice");
    let second = inv[1]["prompt"].as_str().unwrap();
    assert!(second.contains("did not validate"), "{second}");
    assert!(second.contains("depends on 'nope', which is not a task"), "the errors were not passed on:\n{second}");
    assert!(p.path().join("docs/defect-backlog/bad.md").exists(), "a failed item was moved");
    assert!(r.stderr().contains("bad.md failed"), "{}", r.stderr());
}

#[test]
fn a_second_try_that_fixes_the_plan_succeeds() {
    let p = project();
    p.write("docs/feature-backlog/f.md", "# F\n");
    p.repo.commit_all("backlog");
    let broken = "sections: [\n";
    p.scenario(&format!(r#"{{"tasks": {{"plan:f": [{}, {}]}}}}"#, writes_plan("f", broken), writes_plan("f", GOOD_PLAN)));
    let r = p.baton(&["pipeline", "--once"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(p.path().join("docs/feature-backlog/completed/f.md").exists());
}

#[test]
fn a_users_own_plan_with_the_items_name_is_left_alone() {
    let p = project();
    p.write("docs/defect-backlog/again.md", "# Again\n");
    // The user's plan, not made by the pipeline, happens to have the item's name.
    let mine = GOOD_PLAN.replace("'p1'", "'u1'").replace("Do the fix", "My own work");
    p.write(".claude/plans/again.yaml", &mine);
    p.repo.commit_all("backlog and the user's plan");
    p.scenario(&format!(
        r#"{{"tasks": {{"plan:again-2": [{}], "u1": [{{"crash": true}}]}}}}"#,
        writes_plan("again-2", GOOD_PLAN)
    ));
    let r = p.baton(&["pipeline", "--once"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let tasks: Vec<String> = p.invocations().iter().map(|i| i["task_id"].as_str().unwrap_or_default().to_string()).collect();
    assert_eq!(tasks, ["plan:again-2", "p1"], "the user's plan was run as the item's");
    assert!(r.stdout().contains(".claude/plans/again.yaml was not made by the pipeline; planning it as .claude/plans/again-2.yaml"), "{}", r.stdout());
    assert_eq!(p.read(".claude/plans/again.yaml"), mine, "the user's plan was changed");
    assert_eq!(plan_status(&p, "again-2", "p1"), (Status::Completed, 1));
    assert!(p.path().join("docs/defect-backlog/completed/again.md").exists());
}

#[test]
fn a_reused_item_name_is_a_new_item_and_its_archive_never_replaces_the_earlier_one() {
    let p = project();
    let first = "# Crash on save\n\nThe first report.\n";
    p.write("docs/defect-backlog/crash.md", first);
    p.repo.commit_all("backlog");
    let second_plan = GOOD_PLAN.replace("'p1'", "'p2'");
    let third_plan = GOOD_PLAN.replace("'p1'", "'p3'");
    p.scenario(&format!(
        r#"{{"tasks": {{"plan:crash": [{}], "plan:crash-2": [{}], "plan:crash-3": [{}]}}}}"#,
        writes_plan("crash", GOOD_PLAN),
        writes_plan("crash-2", &second_plan),
        writes_plan("crash-3", &third_plan)
    ));
    assert_eq!(p.baton(&["pipeline", "--once"]).code(), 0);
    let archived_first = p.read("docs/defect-backlog/completed/crash.md");

    // A new item under the same file name: planned and worked on, not taken for done.
    p.write("docs/defect-backlog/crash.md", "# Crash on save\n\nA different crash, reported later.\n");
    p.repo.commit_all("a new item with an old name");
    let r = p.baton(&["pipeline", "--once"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let tasks: Vec<String> = p.invocations().iter().map(|i| i["task_id"].as_str().unwrap_or_default().to_string()).collect();
    assert_eq!(tasks, ["plan:crash", "p1", "plan:crash-2", "p2"], "the reused name was archived without work");
    assert!(p.invocations()[2]["prompt"].as_str().unwrap().contains("A different crash"));
    assert!(r.stdout().contains("archived as docs/defect-backlog/completed/crash.md"), "{}", r.stdout());
    assert_eq!(p.read("docs/defect-backlog/completed/crash.md"), archived_first, "the earlier archived item was replaced");
    assert!(p.read("docs/defect-backlog/completed/crash-2.md").contains("A different crash"));
    assert_eq!(plan_status(&p, "crash", "p1"), (Status::Completed, 1), "the first plan was touched");
    assert_eq!(plan_status(&p, "crash-2", "p2"), (Status::Completed, 1));

    // Even the very first text again is new work once its item was archived.
    p.write("docs/defect-backlog/crash.md", first);
    p.repo.commit_all("the first report, filed again");
    assert_eq!(p.baton(&["pipeline", "--once"]).code(), 0);
    assert_eq!(p.invocations().len(), 6);
    assert_eq!(p.read("docs/defect-backlog/completed/crash.md"), archived_first);
    assert!(p.path().join("docs/defect-backlog/completed/crash-3.md").exists());
    assert_eq!(p.repo.status_porcelain(), "");
}

#[test]
fn an_item_still_being_written_is_read_only_once_its_writer_closes_it() {
    use std::io::Write;
    let p = project();
    p.scenario(&format!(r#"{{"tasks": {{"plan:slow-writer": [{}]}}}}"#, writes_plan("slow-writer", GOOD_PLAN)));
    let mut child = p.spawn(&["pipeline"]);
    wait_for("the daemon to watch", || p.log().contains("watching 2 folders, 0 items waiting"));
    // A writer that pauses mid-item (a script, `cat > item.md`) for longer than any quiet period.
    let mut item = std::fs::File::create(p.path().join("docs/defect-backlog/slow-writer.md")).unwrap();
    item.write_all(b"# Slow writer\n").unwrap();
    item.flush().unwrap();
    wait_for("the daemon to see the item held open", || p.log().contains("slow-writer.md is open for writing"));
    assert!(p.invocations().is_empty(), "the item was planned while being written");
    item.write_all(b"\nThe whole story.\nLAST LINE\n").unwrap();
    drop(item);
    wait_for("the item to be planned", || !p.invocations().is_empty());
    let prompt = p.invocations()[0]["prompt"].as_str().unwrap().to_string();
    assert!(prompt.contains("The whole story.\nLAST LINE"), "planned from a half-written item:\n{prompt}");
    wait_for("the item to be archived", || p.path().join("docs/defect-backlog/completed/slow-writer.md").exists());
    assert_eq!(p.baton(&["stop"]).code(), 0);
    assert_eq!(wait_exit(&mut child), Some(4), "{}", p.log());
}

#[test]
fn an_item_dated_in_the_future_is_picked_up_and_once_returns() {
    let p = project();
    let path = p.write("docs/defect-backlog/future.md", "# From the future\n");
    p.repo.commit_all("backlog");
    let tomorrow = std::time::SystemTime::now() + Duration::from_secs(86_400);
    std::fs::File::options().write(true).open(&path).unwrap().set_modified(tomorrow).unwrap();
    p.scenario(&format!(r#"{{"tasks": {{"plan:future": [{}]}}}}"#, writes_plan("future", GOOD_PLAN)));
    let out = baton_testkit::run_with_deadline(&mut p.command(&["pipeline", "--once"]), Duration::from_secs(60)).unwrap();
    assert!(!out.timed_out, "`pipeline --once` never returned:\n{}{}", out.stdout, out.stderr);
    assert_eq!(out.status.code(), Some(0), "{}{}", out.stdout, out.stderr);
    assert!(p.path().join("docs/defect-backlog/completed/future.md").exists());
}

#[test]
fn outside_a_git_repository_the_pipeline_refuses_and_creates_nothing() {
    let p = project();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("baton.toml"), FAST_CONFIG).unwrap();
    for args in [&["pipeline", "--once"][..], &["pipeline", "--dry-run"], &["pipeline"]] {
        let out = baton_testkit::run_with_deadline(p.command(args).current_dir(outside.path()), Duration::from_secs(60)).unwrap();
        assert!(!out.timed_out, "{args:?} did not return");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}{}", out.stdout, out.stderr);
        assert!(out.stderr.contains("is not inside a git repository"), "{}", out.stderr);
        let left: Vec<String> = std::fs::read_dir(outside.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert_eq!(left, ["baton.toml"], "{args:?} created files outside git");
    }
    assert!(p.invocations().is_empty());
}

/// `[run] commit = false`: the user wants no git, so the pipeline runs outside a repository and
/// commits nothing.
#[test]
fn with_commit_off_the_pipeline_works_outside_git() {
    let p = project();
    let outside = tempfile::tempdir().unwrap();
    let dir = outside.path();
    std::fs::write(dir.join("baton.toml"), format!("{FAST_CONFIG}commit = false\n")).unwrap();
    std::fs::create_dir_all(dir.join("docs/defect-backlog")).unwrap();
    std::fs::write(dir.join("docs/defect-backlog/bug.md"), "# Bug\n\nFix it.\n").unwrap();
    p.scenario(&format!(
        r#"{{"tasks": {{"plan:bug": [{}], "p1": [{{"write": {{"src/fix.rs": "// fixed\n"}}}}]}}}}"#,
        writes_plan("bug", GOOD_PLAN)
    ));
    let out = baton_testkit::run_with_deadline(p.command(&["pipeline", "--once"]).current_dir(dir), Duration::from_secs(120)).unwrap();
    assert_eq!(out.status.code(), Some(0), "{}{}", out.stdout, out.stderr);
    assert_eq!(std::fs::read_to_string(dir.join("src/fix.rs")).unwrap(), "// fixed\n");
    assert!(dir.join("docs/defect-backlog/completed/bug.md").exists(), "{}", out.stdout);
    assert!(!dir.join(".git").exists(), "a repository was made");
}

#[test]
fn dry_run_lists_the_order_and_starts_nothing() {
    let p = project();
    p.write("docs/feature-backlog/b.md", "# B\n");
    p.write("docs/defect-backlog/a.md", "# A\n");
    p.write("docs/defect-backlog/done.md", "## Status: Completed\n");
    let r = p.baton(&["pipeline", "--dry-run"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let out = r.stdout();
    let a = out.find("1. defect docs/defect-backlog/a.md → create .claude/plans/a.yaml").expect(&out);
    let b = out.find("2. feature docs/feature-backlog/b.md → create .claude/plans/b.yaml").expect(&out);
    assert!(a < b);
    assert!(out.contains("skipped: docs/defect-backlog/done.md (marked `## Status: Completed`)"), "{out}");
    assert!(p.invocations().is_empty());
}

#[test]
fn the_daemon_picks_up_a_new_item_and_the_stop_file_ends_it() {
    let p = project();
    p.scenario(&format!(r#"{{"tasks": {{"plan:new-item": [{}]}}}}"#, writes_plan("new-item", GOOD_PLAN)));
    let mut child = p.spawn(&["pipeline"]);
    wait_for("the daemon to watch", || p.log().contains("watching 2 folders, 0 items waiting"));
    let written = jiff::Timestamp::now();
    p.write("docs/defect-backlog/new-item.md", "# New\n\nSomething broke.\n");
    wait_for("the new item to be planned", || !p.invocations().is_empty());
    let started: jiff::Timestamp = p.invocations()[0]["time"].as_str().unwrap().parse().unwrap();
    let latency = started.duration_since(written);
    println!("pick-up latency (item written → plan creation started): {:.0} ms", latency.as_secs_f64() * 1000.0);
    wait_for("the item to be archived", || p.path().join("docs/defect-backlog/completed/new-item.md").exists());
    assert_eq!(p.baton(&["stop"]).code(), 0);
    assert_eq!(wait_exit(&mut child), Some(4), "{}", p.log());
    for inv in p.invocations() {
        let pid = inv["pid"].as_u64().unwrap() as u32;
        assert!(!baton_testkit::process_alive(pid), "an agent outlived the daemon");
    }
}

#[test]
fn killing_the_daemon_mid_plan_and_restarting_resumes_without_spending_the_attempt() {
    let p = project();
    p.write("docs/defect-backlog/slow.md", "# Slow\n");
    p.repo.commit_all("backlog");
    p.scenario(&format!(
        r#"{{"tasks": {{"plan:slow": [{}], "p1": [{{"hang": true}}, {{}}]}}}}"#,
        writes_plan("slow", GOOD_PLAN)
    ));
    let mut child = p.spawn(&["pipeline"]);
    wait_for("the plan's task to hang", || p.pid_file("p1-1.grandchild.pid").is_some());
    let grandchild = p.pid_file("p1-1.grandchild.pid").unwrap();
    signal(&child, libc::SIGKILL);
    let _ = child.wait();
    wait_for("the hung agent to die with the daemon", || !baton_testkit::process_alive(grandchild));
    assert_eq!(plan_status(&p, "slow", "p1").0, Status::InProgress);

    let r = p.baton(&["pipeline", "--once"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(plan_status(&p, "slow", "p1"), (Status::Completed, 1), "the killed attempt counted");
    let planned = p.invocations().iter().filter(|i| i["task_id"] == "plan:slow").count();
    assert_eq!(planned, 1, "the plan was made twice");
    assert!(p.path().join("docs/defect-backlog/completed/slow.md").exists());
    let _ = Duration::ZERO;
}

#[test]
fn two_items_with_one_name_get_a_plan_each() {
    let p = project();
    p.write("docs/defect-backlog/login.md", "# Login (defect)\n");
    p.write("docs/feature-backlog/Login.md", "# Login (feature)\n");
    p.repo.commit_all("two items with one slug");
    let second = GOOD_PLAN.replace("'p1'", "'p2'");
    p.scenario(&format!(
        r#"{{"tasks": {{"plan:login": [{}], "plan:login-2": [{}]}}}}"#,
        writes_plan("login", GOOD_PLAN),
        writes_plan("login-2", &second)
    ));
    assert_eq!(p.baton(&["pipeline", "--once"]).code(), 0);
    let r = p.baton(&["pipeline", "--once"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(r.stdout().contains(".claude/plans/login.yaml was made for another item, docs/defect-backlog/login.md"), "{}", r.stdout());
    let tasks: Vec<String> = p.invocations().iter().map(|i| i["task_id"].as_str().unwrap_or_default().to_string()).collect();
    assert_eq!(tasks, ["plan:login", "p1", "plan:login-2", "p2"]);
    assert!(p.read("docs/feature-backlog/completed/Login.md").starts_with("# Login (feature)"));
    assert!(p.read("docs/defect-backlog/completed/login.md").starts_with("# Login (defect)"));
}

#[test]
fn a_plan_from_an_interrupted_planning_session_is_not_resumed() {
    let p = project();
    p.write("docs/defect-backlog/half.md", "# Half\n");
    p.repo.commit_all("backlog");
    // The first session writes a plan, then hangs: it is killed before its plan is accepted.
    p.scenario(&format!(
        r#"{{"tasks": {{"plan:half": [{{"write": {{".claude/plans/half.yaml": {}}}, "hang": true}}, {}]}}}}"#,
        serde_json::to_string(&GOOD_PLAN.replace("Do the fix", "Half-made")).unwrap(),
        writes_plan("half", GOOD_PLAN)
    ));
    let mut child = p.spawn(&["pipeline"]);
    wait_for("the planning session to hang", || p.pid_file("plan_half-1.agent.pid").is_some());
    signal(&child, libc::SIGKILL);
    let _ = child.wait();
    let r = p.baton(&["pipeline", "--once"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(r.stdout().contains("was never accepted"), "{}", r.stdout());
    let planned = p.invocations().iter().filter(|i| i["task_id"] == "plan:half").count();
    assert_eq!(planned, 2, "the item was not planned again");
    let plan = baton::plan::parse_plan(&p.read(".claude/plans/half.yaml")).unwrap();
    assert_eq!(plan.task("p1").unwrap().name, "Do the fix");
}

#[test]
fn a_plan_with_nothing_to_do_is_not_accepted() {
    let p = project();
    p.write("docs/defect-backlog/empty.md", "# Empty\n");
    p.repo.commit_all("backlog");
    p.scenario(&format!(r#"{{"tasks": {{"plan:empty": [{}]}}}}"#, writes_plan("empty", "meta:\n  name: Nothing\nsections: []\n")));
    let r = p.baton(&["pipeline", "--once"]);
    assert_eq!(r.code(), 1, "{}", r.all());
    assert_eq!(p.invocations().len(), 2, "the agent was not asked once more");
    assert!(p.path().join("docs/defect-backlog/empty.md").exists());
}

#[test]
fn a_graceful_stop_during_planning_starts_no_second_session() {
    let p = project();
    p.write("docs/defect-backlog/slowplan.md", "# Slow plan\n");
    p.repo.commit_all("backlog");
    let broken = "sections: [\n";
    p.scenario(&format!(
        r#"{{"tasks": {{"plan:slowplan": [{{"events": 20, "interval_ms": 100, "write": {{".claude/plans/slowplan.yaml": {}}}}}]}}}}"#,
        serde_json::to_string(broken).unwrap()
    ));
    let mut child = p.spawn(&["pipeline", "--once"]);
    wait_for("the planning session", || !p.invocations().is_empty());
    assert_eq!(p.baton(&["stop"]).code(), 0);
    assert_eq!(wait_exit(&mut child), Some(4), "{}", p.log());
    assert_eq!(p.invocations().len(), 1, "a second planning session started after the stop");
    assert!(!p.log().contains("slowplan.md failed"), "{}", p.log());
}

#[test]
fn archiving_works_when_the_plans_folder_is_git_ignored() {
    let p = project();
    p.write(".gitignore", ".claude/\n");
    p.write("docs/defect-backlog/ign.md", "# Ignored plans\n");
    p.repo.commit_all("backlog");
    p.scenario(&format!(r#"{{"tasks": {{"plan:ign": [{}]}}}}"#, writes_plan("ign", GOOD_PLAN)));
    let r = p.baton(&["pipeline", "--once"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(p.path().join("docs/defect-backlog/completed/ign.md").exists());
    assert_eq!(p.repo.status_porcelain(), "", "the archive was not committed");
}

/// The daemon's agents work in its checkout: while it runs, `baton run` there is refused (it
/// would share the working tree and the status file), and it does not start beside a run.
#[test]
fn the_daemon_and_a_run_never_share_a_checkout() {
    let p = project();
    p.write("plan.yaml", GOOD_PLAN);
    p.repo.commit_all("plan");
    let mut child = p.spawn(&["pipeline"]);
    wait_for("the daemon to watch", || p.log().contains("watching 2 folders, 0 items waiting"));
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 2, "{}", r.all());
    assert!(r.all().contains("(the backlog pipeline) in this checkout"), "{}", r.all());
    assert!(p.invocations().is_empty(), "the refused run started an agent");
    assert_eq!(p.baton(&["stop"]).code(), 0);
    assert_eq!(wait_exit(&mut child), Some(4), "{}", p.log());

    // And the other way round: a run holds the checkout, the daemon is refused.
    p.scenario(r#"{"tasks": {"p1": [{"hang": true}]}}"#);
    let mut run = p.spawn(&["run", "plan.yaml"]);
    wait_for("the task to hang", || p.pid_file("p1-1.agent.pid").is_some());
    let out = baton_testkit::run_with_deadline(&mut p.command(&["pipeline", "--once"]), Duration::from_secs(60)).unwrap();
    assert_eq!(out.status.code(), Some(2), "{}{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("is running plan"), "{}", out.stderr);
    signal(&run, libc::SIGTERM);
    assert_eq!(wait_exit(&mut run), Some(4), "{}", p.log());
}

/// Each `--once` is a new life of the daemon: an item that failed in an earlier one is not
/// tried again (until it changes), so the items after it get their turn.
#[test]
fn an_item_that_failed_before_does_not_block_the_next_once() {
    let p = project();
    p.write("docs/defect-backlog/bad.md", "# Bad\n");
    p.write("docs/defect-backlog/good.md", "# Good\n");
    p.repo.commit_all("backlog");
    let broken = "sections: [\n";
    p.scenario(&format!(
        r#"{{"tasks": {{"plan:bad": [{}], "plan:good": [{}], "p1": [{{"write": {{"src/fix.rs": "// fixed\n"}}}}]}}}}"#,
        writes_plan("bad", broken),
        writes_plan("good", GOOD_PLAN)
    ));
    let first = p.baton(&["pipeline", "--once"]);
    assert_eq!(first.code(), 1, "{}", first.all());
    let asked = p.invocations().len();
    let second = p.baton(&["pipeline", "--once"]);
    assert_eq!(second.code(), 0, "{}", second.all());
    assert!(p.path().join("docs/defect-backlog/completed/good.md").exists(), "{}", second.all());
    assert!(p.invocations()[asked..].iter().all(|i| i["task_id"] != "plan:bad"), "the failed item was tried again");
    let dry = p.baton(&["pipeline", "--dry-run"]).stdout();
    assert!(dry.contains("skipped: docs/defect-backlog/bad.md (it failed before"), "{dry}");
    // Changed, it is tried again.
    p.write("docs/defect-backlog/bad.md", "# Bad\n\nNow with details.\n");
    let dry = p.baton(&["pipeline", "--dry-run"]).stdout();
    assert!(dry.contains("defect docs/defect-backlog/bad.md → create"), "{dry}");
}
