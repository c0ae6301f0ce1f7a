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
fn an_existing_plan_is_resumed_not_regenerated() {
    let p = project();
    p.write("docs/defect-backlog/again.md", "# Again\n");
    p.write(".claude/plans/again.yaml", &GOOD_PLAN.replace("status: pending", "status: in_progress"));
    p.repo.commit_all("backlog and plan");
    let r = p.baton(&["pipeline", "--once"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let inv = p.invocations();
    assert_eq!(inv.len(), 1);
    assert_eq!(inv[0]["task_id"], "p1", "the plan was regenerated");
    assert!(r.stdout().contains("resuming its plan"), "{}", r.stdout());
    assert_eq!(plan_status(&p, "again", "p1"), (Status::Completed, 1));
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
fn a_plan_belongs_to_the_item_it_was_made_for() {
    let p = project();
    p.write("docs/defect-backlog/login.md", "# Login (defect)\n");
    p.write("docs/feature-backlog/Login.md", "# Login (feature)\n");
    p.repo.commit_all("two items with one slug");
    p.scenario(&format!(r#"{{"tasks": {{"plan:login": [{}]}}}}"#, writes_plan("login", GOOD_PLAN)));
    assert_eq!(p.baton(&["pipeline", "--once"]).code(), 0);
    let r = p.baton(&["pipeline", "--once"]);
    assert_ne!(r.code(), 0, "{}", r.all());
    assert!(r.stderr().contains("belongs to another backlog item"), "{}", r.stderr());
    assert!(p.path().join("docs/feature-backlog/Login.md").exists(), "the second item was archived without work");
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
