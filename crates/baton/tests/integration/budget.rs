//! The run history store and budgets, end to end: every attempt recorded with its cost, a
//! `kill -9` closed as interrupted by the next start, budgets that stop a run (exit 6) and count
//! across runs, the spending cap on the agent's command line, and two batons writing one store.

use std::path::Path;

use baton::store::query::RunRow;
use baton::store::Store;
use baton_testkit::process_alive;

use crate::support::*;

fn plan_of(n: usize, meta: &str) -> String {
    let tasks: String = (1..=n).map(|i| format!("  - {{id: '{i}', name: Task {i}}}\n")).collect();
    format!("meta:\n  name: Budgeted\n{meta}sections:\n- id: s\n  name: S\n  tasks:\n{tasks}")
}

/// The runs the store holds for `plan`, newest first.
fn runs(root: &Path, plan: &str) -> Vec<RunRow> {
    let store = Store::open_existing(root).expect("the store opens").expect("a store was made");
    store.runs(Some(plan), 100).expect("the runs read")
}

fn argv_value(inv: &serde_json::Value, flag: &str) -> Option<String> {
    let argv: Vec<String> = inv["argv"].as_array()?.iter().filter_map(|a| a.as_str().map(str::to_string)).collect();
    argv.iter().position(|a| a == flag).and_then(|i| argv.get(i + 1).cloned())
}

#[test]
fn a_plan_budget_stops_the_run_before_it_is_overshot_and_counts_across_runs() {
    let p = project(&plan_of(5, "  budget_usd: 0.03\n"));
    p.scenario(r#"{"default": [{"cost": 0.0123}]}"#);
    let dry = p.baton(&["run", "plan.yaml", "--dry-run"]);
    assert_eq!(dry.code(), 0, "nothing recorded yet: {}", dry.all());
    assert!(dry.stdout().contains("budget: spent $0.0000 of the plan's budget over all its runs ($0.0300), $0.0300 left"), "{}", dry.stdout());
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 6, "{}", r.all());
    assert!(r.stdout().contains("budget: spent $0.0000 of the plan's budget over all its runs ($0.0300), $0.0300 left\n"), "told at the start: {}", r.stdout());
    assert!(r.stdout().contains("less than an attempt is expected to cost ($0.0123: the median of 2 recorded attempts); no new attempt starts (raise meta.budget_usd to go on)"), "{}", r.stdout());
    let started = p.invocations().len();
    assert!((1..=3).contains(&started), "{started} attempts for a $0.03 budget at $0.0123 each");
    assert!(r.stdout().contains("budget exhausted"), "{}", r.stdout());
    assert!(r.stdout().contains("stopped: budget exhausted"), "the summary says it: {}", r.stdout());
    let spent: f64 = runs(p.path(), "plan.yaml")[0].attempts.iter().map(|a| a.total_cost()).sum();
    assert!(spent <= 0.03 + 1e-9, "spent {spent}");
    // The notification says why the run ended.
    assert!(r.all().contains("budget exhausted"), "{}", r.all());
    let status = p.baton(&["status", "plan.yaml"]);
    assert!(status.stdout().contains(&format!("spent ${spent:.4} of the $0.0300 budget")), "{}", status.stdout());
    let json: serde_json::Value = serde_json::from_str(&p.baton(&["status", "plan.yaml", "--json"]).stdout()).unwrap();
    assert_eq!(json["spending"]["budget_usd"], 0.03);
    assert!((json["spending"]["spent_usd"].as_f64().unwrap() - spent).abs() < 1e-9, "{json}");

    // The dry run foresees it.
    let dry = p.baton(&["run", "plan.yaml", "--dry-run"]);
    assert_eq!(dry.code(), 6, "{}", dry.all());
    assert!(dry.stdout().contains("the run would start no attempt (exit 6)"), "{}", dry.stdout());

    // A second run: the budget counts every run of the plan; nothing starts, and it says why.
    let again = p.baton(&["run", "plan.yaml"]);
    assert_eq!(again.code(), 6, "{}", again.all());
    assert_eq!(p.invocations().len(), started, "no attempt started: {}", again.all());
    assert!(again.stdout().contains("of the plan's budget over all its runs"), "{}", again.stdout());
    let all = runs(p.path(), "plan.yaml");
    assert_eq!(all.len(), 2);
    assert_eq!((all[0].exit_code, all[0].ending.as_deref(), all[0].stopped_by.as_deref()), (Some(6), Some("budget_exhausted"), Some("budget")));
    assert!(all[0].attempts.is_empty());
}

#[test]
fn the_original_tools_budget_key_and_a_run_budget_both_hold() {
    // `budget_limit_usd` is the original tool's name for it.
    let p = project(&plan_of(4, "  budget_limit_usd: 0.02\n"));
    p.scenario(r#"{"default": [{"cost": 0.01}]}"#);
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 6, "{}", r.all());
    assert_eq!(p.invocations().len(), 2, "{}", r.all());

    // --max-cost: this run's own budget, whatever the plan allows.
    let p = project(&plan_of(5, ""));
    p.scenario(r#"{"default": [{"cost": 0.25}]}"#);
    let r = p.baton(&["run", "plan.yaml", "--max-cost", "0.5"]);
    assert_eq!(r.code(), 6, "{}", r.all());
    assert_eq!(p.invocations().len(), 2, "{}", r.all());
    assert!(r.stdout().contains("this run's budget"), "{}", r.stdout());
    // The next run has a budget of its own.
    let r = p.baton(&["run", "plan.yaml", "--max-cost", "0.5"]);
    assert_eq!(r.code(), 6, "{}", r.all());
    assert_eq!(p.invocations().len(), 4, "{}", r.all());
}

#[test]
fn the_agent_is_given_what_remains_as_its_spending_cap() {
    let p = project(&plan_of(3, "  budget_usd: 1.00\n"));
    p.scenario(r#"{"default": [{"cost": 0.25}]}"#);
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let caps: Vec<Option<String>> = p.invocations().iter().map(|i| argv_value(i, "--max-budget-usd")).collect();
    assert_eq!(caps, [Some("1.0000".to_string()), Some("0.7500".into()), Some("0.5000".into())]);

    // The tighter of the plan's and the run's budget is the cap; without a budget, none.
    p.baton(&["reset", "plan.yaml", "--all"]);
    let r = p.baton(&["run", "plan.yaml", "--max-cost", "0.30", "--single-task"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(argv_value(p.invocations().last().unwrap(), "--max-budget-usd").as_deref(), Some("0.2500"), "the plan has $0.25 left");
    let q = project(&plan_of(1, ""));
    assert_eq!(q.baton(&["run", "plan.yaml"]).code(), 0);
    assert_eq!(argv_value(&q.invocations()[0], "--max-budget-usd"), None);
}

#[test]
fn every_attempt_is_recorded_and_a_kill_9_is_closed_as_interrupted_by_the_next_start() {
    let p = project(&plan_of(3, ""));
    p.scenario(r#"{"tasks": {"1": [{"status": "failed", "cost": 0.02}, {"cost": 0.03}], "2": [{"hang": true}, {"cost": 0.04}]}}"#);
    let mut child = p.spawn(&["run", "plan.yaml"]);
    wait_for("the agent of 2 to hang", || p.pid_file("2-1.agent.pid").is_some());
    let agent = p.pid_file("2-1.agent.pid").unwrap();
    signal(&child, libc::SIGKILL);
    let _ = child.wait();
    wait_for("the agent to die with baton", || !process_alive(agent));
    let killed = runs(p.path(), "plan.yaml");
    assert_eq!(killed.len(), 1);
    assert_eq!(killed[0].ending, None, "nothing closed the killed run yet");
    assert_eq!(killed[0].attempts.last().map(|a| a.outcome.as_str()), Some("running"));

    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let all = runs(p.path(), "plan.yaml");
    assert_eq!(all.len(), 2);
    let (new, old) = (&all[0], &all[1]);
    assert_eq!((old.ending.as_deref(), old.exit_code), (Some("killed"), None));
    let outcomes: Vec<(&str, i64, &str, Option<f64>)> = old.attempts.iter().map(|a| (a.task.as_str(), a.session, a.outcome.as_str(), a.cost_usd)).collect();
    assert_eq!(outcomes, [("1", 1, "failed", Some(0.02)), ("1", 2, "completed", Some(0.03)), ("2", 1, "interrupted", None)]);
    assert_eq!(old.attempts[2].attempt, Some(1), "its plan attempt number as it started");
    assert_eq!((new.ending.as_deref(), new.exit_code, new.stopped_by.as_deref()), (Some("finished"), Some(0), None));
    let outcomes: Vec<(&str, i64, &str, Option<f64>)> = new.attempts.iter().map(|a| (a.task.as_str(), a.session, a.outcome.as_str(), a.cost_usd)).collect();
    assert_eq!(outcomes, [("2", 2, "completed", Some(0.04)), ("3", 1, "completed", Some(0.01))]);
    // No attempt is missing: one row per agent session started.
    let rows: usize = all.iter().map(|r| r.attempts.len()).sum();
    assert_eq!(rows, p.invocations().len());
    for a in all.iter().flat_map(|r| &r.attempts) {
        assert!(a.transcript.as_deref().is_some_and(|t| p.path().join(t).is_file()), "{a:?}");
        assert!(!a.model.as_deref().unwrap_or_default().is_empty() || a.outcome == "interrupted", "{a:?}");
    }
    assert!((new.cost_usd - 0.05).abs() < 1e-9, "{}", new.cost_usd);
}

#[test]
fn attempt_records_from_before_the_store_are_imported_once() {
    let p = project(&plan_of(2, ""));
    p.scenario(r#"{"default": [{"cost": 0.05}]}"#);
    assert_eq!(p.baton(&["run", "plan.yaml"]).code(), 0);
    // As if the runs had been made by a baton without a store.
    for f in ["baton.db", "baton.db-wal", "baton.db-shm"] {
        let _ = std::fs::remove_file(p.path().join(".baton").join(f));
    }
    p.baton(&["reset", "plan.yaml", "--all"]);
    assert_eq!(p.baton(&["run", "plan.yaml", "--single-task"]).code(), 0);
    let all = runs(p.path(), "plan.yaml");
    let kinds: Vec<(&str, usize)> = all.iter().map(|r| (r.kind.as_str(), r.attempts.len())).collect();
    assert_eq!(kinds, [("run", 1), ("imported", 2)], "{all:#?}");
    assert!((all[1].cost_usd - 0.10).abs() < 1e-9);
    assert_eq!(p.baton(&["run", "plan.yaml"]).code(), 0);
    let all = runs(p.path(), "plan.yaml");
    assert_eq!(all.iter().filter(|r| r.kind == "imported").count(), 1, "imported once");
    assert_eq!(all.iter().map(|r| r.attempts.len()).sum::<usize>(), 4);
}

#[test]
fn two_batons_on_two_plans_of_one_repository_write_the_store_at_once() {
    // One repository, two checkouts: the main one and a linked worktree (one run per checkout).
    let tasks = 12;
    let p = project(&plan_of(tasks, ""));
    p.write("other.yaml", &plan_of(tasks, ""));
    p.repo.commit_all("other plan");
    let second = p.path().with_extension("second");
    p.repo.git(&["worktree", "add", "-q", second.to_str().unwrap()]);
    let mut a = p.spawn(&["run", "plan.yaml"]);
    let b = p.command(&["run", "other.yaml"]).current_dir(&second).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    assert_eq!(wait_exit(&mut a), Some(0), "{}", p.log());
    let out = b.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    // Neither was told the history could not be written.
    assert!(!p.log().contains("history") && !String::from_utf8_lossy(&out.stderr).contains("history"), "{}\n{}", p.log(), String::from_utf8_lossy(&out.stderr));
    assert!(!second.join(".baton/baton.db").exists(), "a linked worktree shares the main checkout's store");
    for plan in ["plan.yaml", "other.yaml"] {
        let all = runs(p.path(), plan);
        assert_eq!(all.len(), 1, "{plan}: {}\n{}", p.baton(&["history", "--json"]).all(), p.log());
        assert_eq!(all[0].attempts.len(), tasks, "{plan}: every attempt recorded");
        assert!(all[0].attempts.iter().all(|a| a.outcome == "completed"), "{plan}");
    }
    let _ = std::fs::remove_dir_all(&second);
}

#[test]
fn a_damaged_store_is_a_warning_unless_a_budget_needs_it() {
    let p = project(&plan_of(1, ""));
    std::fs::create_dir_all(p.path().join(".baton")).unwrap();
    std::fs::write(p.path().join(".baton/baton.db"), "this is not a database, it is a text file of a few bytes\n".repeat(200)).unwrap();
    let before = std::fs::read(p.path().join(".baton/baton.db")).unwrap();
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(r.stderr().contains("warning:") && r.stderr().contains(".baton/baton.db"), "{}", r.stderr());
    assert!(r.stderr().contains("move it aside"), "{}", r.stderr());

    let q = project(&plan_of(1, "  budget_usd: 5\n"));
    std::fs::create_dir_all(q.path().join(".baton")).unwrap();
    std::fs::write(q.path().join(".baton/baton.db"), &before).unwrap();
    let r = q.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 2, "{}", r.all());
    assert!(r.stderr().contains("the budget cannot be enforced"), "{}", r.stderr());
    assert!(q.invocations().is_empty());
    assert_eq!(std::fs::read(q.path().join(".baton/baton.db")).unwrap(), before, "the file is left as it was");
    assert!(q.plan().tasks().all(|t| t.status == baton::plan::Status::Pending));
}

#[test]
fn the_pipeline_records_its_items_their_planning_sessions_and_the_runs_of_their_plans() {
    let p = project(&plan_of(1, ""));
    p.write("docs/defect-backlog/login-bug.md", "# Login fails\n\nUsers cannot log in.\n");
    p.write("docs/defect-backlog/bad.md", "# Bad\n");
    p.repo.commit_all("backlog");
    let good = "meta:\n  name: Fix it\nsections:\n- id: s\n  name: Fix\n  tasks:\n  - id: 'p1'\n    name: Do the fix\n";
    let writes = |slug: &str, plan: &str| format!(r#"{{"write": {{".claude/plans/{slug}.yaml": {}}}, "plan_modified": true, "cost": 0.2}}"#, serde_json::to_string(plan).unwrap());
    p.scenario(&format!(
        r#"{{"tasks": {{"plan:login-bug": [{}], "plan:bad": [{}], "p1": [{{"write": {{"src/fix.rs": "x"}}, "commit": "fix", "cost": 0.3}}]}}}}"#,
        writes("login-bug", good),
        writes("bad", "sections: 3\n"),
    ));
    // bad.md sorts first: its plan never validates (asked twice), so the item fails; then the
    // login bug is planned, run and archived.
    assert_eq!(p.baton(&["pipeline", "--once"]).code(), 1);
    assert_eq!(p.baton(&["pipeline", "--once"]).code(), 0);
    let store = Store::open_existing(p.path()).unwrap().unwrap();
    let plan = ".claude/plans/login-bug.yaml";
    assert!((store.plan_spent(plan).unwrap() - 0.5).abs() < 1e-9, "planning $0.20 + the task's $0.30");
    assert!((store.plan_spent(".claude/plans/bad.yaml").unwrap() - 0.4).abs() < 1e-9, "two planning sessions");
    let runs = store.runs(Some(plan), 10).unwrap();
    let kinds: Vec<(&str, Option<i64>)> = runs.iter().map(|r| (r.kind.as_str(), r.exit_code)).collect();
    assert_eq!(kinds, [("run", Some(0)), ("pipeline", Some(0))], "{runs:#?}");
    let attempts: Vec<(&str, &str, &str)> = runs.iter().flat_map(|r| &r.attempts).map(|a| (a.task.as_str(), a.kind.as_str(), a.outcome.as_str())).collect();
    assert_eq!(attempts, [("p1", "task", "completed"), ("plan:login-bug", "planning", "planned")]);
    let items: Vec<(String, Option<String>, String)> = store.pipeline_items().unwrap().into_iter().map(|i| (i.item, i.plan, i.outcome)).collect();
    assert_eq!(
        items,
        [
            ("docs/defect-backlog/bad.md".to_string(), Some(".claude/plans/bad.yaml".to_string()), "failed".to_string()),
            ("docs/defect-backlog/login-bug.md".into(), Some(plan.into()), "archived".into()),
        ]
    );
}

#[test]
fn a_reviewer_is_capped_and_paid_from_the_budget_and_its_cost_joins_the_estimate() {
    let p = project(&plan_of(3, "  budget_usd: 0.40\n"));
    p.write("baton.toml", &format!("{FAST_CONFIG}\n[review]\nenabled = true\nmodel = \"opus\"\n"));
    p.repo.commit_all("review");
    // Each task: a coder session ($0.10), then a reviewer session ($0.05) that passes.
    let pass = |id: &str| format!(r#"{{"status_json": {{"task_id": "{id}", "verdict": "PASS", "findings": []}}, "cost": 0.05}}"#);
    let coder = r#"{"write": {"f.txt": "x"}, "cost": 0.1}"#;
    p.scenario(&format!(r#"{{"tasks": {{"1": [{coder}, {}], "2": [{coder}, {}], "3": [{coder}, {}]}}}}"#, pass("1"), pass("2"), pass("3")));
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 6, "{}", r.all());
    let inv = p.invocations();
    let caps: Vec<(String, Option<String>)> = inv.iter().map(|i| (i["task_id"].as_str().unwrap_or_default().to_string(), argv_value(i, "--max-budget-usd"))).collect();
    // Coder 1 gets all $0.40; its reviewer what is left ($0.30); coder 2 then $0.25, its
    // reviewer $0.15. The estimate is an attempt with its review, $0.15: $0.10 left does not
    // pay for a third.
    assert_eq!(
        caps,
        [("1", "0.4000"), ("1", "0.3000"), ("2", "0.2500"), ("2", "0.1500")].map(|(t, c)| (t.to_string(), Some(c.to_string()))),
        "{}",
        r.all()
    );
    assert!(r.stdout().contains("less than an attempt is expected to cost ($0.1500"), "{}", r.stdout());
    // The reviewer's cost is under the reviewer's model.
    let cost = p.baton(&["cost", "plan.yaml", "--by", "model", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&cost.stdout()).unwrap();
    let by_model: Vec<(String, f64)> = v["rows"].as_array().unwrap().iter().map(|r| (r["model"].as_str().unwrap_or("?").to_string(), r["cost_usd"].as_f64().unwrap())).collect();
    assert!(by_model.contains(&("opus".to_string(), 0.1)), "{by_model:?}");
    assert_eq!(v["total"]["cost_usd"], 0.3, "no float dust: {v}");
}

#[test]
fn the_simulated_agent_costs_nothing_and_no_budget_holds_it_back() {
    let p = project(&plan_of(2, "  budget_usd: 0\n"));
    let r = p.baton(&["run", "plan.yaml", "--agent", "simulated"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(!r.all().contains("budget"), "{}", r.all());
}

#[test]
fn going_over_the_budget_is_told_and_a_dry_run_refuses_as_the_run_would() {
    // An agent that does not hold to its cap (the fake ignores --max-budget-usd).
    let p = project(&plan_of(1, "  budget_usd: 0.05\n"));
    p.scenario(r#"{"default": [{"cost": 0.08}]}"#);
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(r.stderr().contains("warning: spent $0.0800 of the plan's budget over all its runs ($0.0500): over by $0.0300"), "{}", r.all());
    // A damaged history: the run would refuse (exit 2), and so does its dry run.
    std::fs::write(p.path().join(".baton/baton.db"), "garbage ".repeat(100)).unwrap();
    let dry = p.baton(&["run", "plan.yaml", "--dry-run"]);
    assert_eq!(dry.code(), 2, "{}", dry.all());
    assert!(dry.stderr().contains("the budget cannot be enforced"), "{}", dry.all());
}

#[test]
fn runs_of_one_plan_in_two_checkouts_at_once_share_its_budget() {
    let p = project(&plan_of(10, "  budget_usd: 0.10\n"));
    p.scenario(r#"{"default": [{"cost": 0.02, "events": 4, "interval_ms": 40}]}"#);
    let second = p.path().with_extension("second");
    p.repo.git(&["worktree", "add", "-q", second.to_str().unwrap()]);
    let mut a = p.spawn(&["run", "plan.yaml"]);
    let b = p.command(&["run", "plan.yaml"]).current_dir(&second).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let a_exit = wait_exit(&mut a);
    let out = b.wait_with_output().unwrap();
    assert!(a_exit == Some(6) || out.status.code() == Some(6), "one of them runs out: {a_exit:?} {:?}\n{}", out.status.code(), p.log());
    let spent = Store::open_existing(p.path()).unwrap().unwrap().plan_spent("plan.yaml").unwrap();
    // Each run may overshoot by the attempt it had running when the other spent the rest.
    assert!(spent <= 0.10 + 2.0 * 0.02 + 1e-9, "two runs of one plan spent {spent} of its $0.10: {}\n{}", p.log(), String::from_utf8_lossy(&out.stderr));
    let _ = std::fs::remove_dir_all(&second);
}

#[test]
fn a_plan_reached_through_a_symlinked_folder_from_outside_is_refused_not_given_a_fresh_budget() {
    let p = project(&plan_of(1, ""));
    p.write("plans/p.yaml", &plan_of(1, "  budget_usd: 0.01\n"));
    p.repo.commit_all("a plan in a folder");
    let outside = tempfile::tempdir().unwrap();
    let link = outside.path().join("plans");
    std::os::unix::fs::symlink(p.path().join("plans"), &link).unwrap();
    let r = p.command(&["run", link.join("p.yaml").to_str().unwrap()]).current_dir(outside.path()).output().unwrap();
    assert_eq!(r.status.code(), Some(2), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(String::from_utf8_lossy(&r.stderr).contains("is reached through a symbolic link"), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(p.invocations().is_empty());
    assert!(!p.path().join("plans/.baton").exists());
    // The repository itself reached through a symlink is the same repository: it runs.
    let repo_link = outside.path().join("repo");
    std::os::unix::fs::symlink(p.path(), &repo_link).unwrap();
    let r = p.command(&["run", repo_link.join("plans/p.yaml").to_str().unwrap()]).current_dir(outside.path()).output().unwrap();
    assert_eq!(r.status.code(), Some(0), "{}", String::from_utf8_lossy(&r.stderr));
}
