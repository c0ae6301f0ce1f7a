//! A task's `agent: NAME` (plans of the original tool): passed to Claude Code as `--agent NAME`
//! when the task's working copy has `.claude/agents/NAME.md`, else ignored with one warning per
//! name. The fake CLI logs the command line it was given.

use baton::plan::Status;

use crate::support::{project, Project};

const CODER: &str = "---\nname: coder\ndescription: Writes the code of a task.\n---\nYou write code.\n";

/// A plan of one section whose tasks name `(id, agent)`; `None` names none.
fn plan(tasks: &[(&str, Option<&str>)], group: bool) -> String {
    let mut s = String::from("meta:\n  name: Named agents\n  max_attempts_default: 2\nsections:\n- id: s1\n  name: Work\n  tasks:\n");
    for (id, agent) in tasks {
        s.push_str(&format!("  - id: '{id}'\n    name: Task {id}\n    status: pending\n    description: 'Do {id}.'\n"));
        if let Some(a) = agent {
            s.push_str(&format!("    agent: {a}\n"));
        }
        if group {
            s.push_str("    parallel_group: g\n");
        }
    }
    s
}

/// The fake CLI's command line for each task it ran, by task id.
fn argv_of(p: &Project) -> std::collections::HashMap<String, Vec<String>> {
    p.invocations()
        .iter()
        .map(|i| {
            let argv = i["argv"].as_array().expect("argv").iter().map(|a| a.as_str().unwrap_or_default().to_string()).collect();
            (i["task_id"].as_str().unwrap_or_default().to_string(), argv)
        })
        .collect()
}

/// The value after `--agent` in a command line, if it has one.
fn agent_flag(argv: &[String]) -> Option<&str> {
    argv.iter().position(|a| a == "--agent").map(|i| argv.get(i + 1).map_or("", String::as_str))
}

fn record(p: &Project, task: &str) -> serde_json::Value {
    serde_json::from_str(&p.read(&format!(".baton/logs/plan/{task}/attempt-1.json"))).expect("attempt record")
}

#[test]
fn an_agent_defined_in_the_repository_is_passed_as_agent() {
    let p = project(&plan(&[("1.1", Some("coder")), ("1.2", None)], false));
    p.write(".claude/agents/coder.md", CODER);
    p.repo.commit_all("the coder agent");
    let r = p.baton(&["run", "plan.yaml", "--verbose"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let argv = argv_of(&p);
    assert_eq!(agent_flag(&argv["1.1"]), Some("coder"), "{:?}", argv["1.1"]);
    assert_eq!(agent_flag(&argv["1.2"]), None, "a task without `agent:` got one: {:?}", argv["1.2"]);
    // Said where the session starts, and kept in the attempt's record.
    assert!(r.stdout().contains("Claude started as agent 'coder' (pid"), "{}", r.all());
    assert_eq!(record(&p, "1.1")["named_agent"], "coder");
    assert!(record(&p, "1.2").get("named_agent").is_none(), "{}", record(&p, "1.2"));
    assert!(!r.all().contains("warning:"), "{}", r.all());
}

#[test]
fn an_agent_without_its_file_is_ignored_with_one_warning() {
    let p = project(&plan(&[("1.1", Some("ghost")), ("1.2", Some("ghost")), ("1.3", None)], false));
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    for (id, argv) in argv_of(&p) {
        assert_eq!(agent_flag(&argv), None, "{id}: {argv:?}");
    }
    assert_eq!(argv_of(&p).len(), 3);
    for id in ["1.1", "1.2", "1.3"] {
        assert_eq!(p.plan().task(id).unwrap().status, Status::Completed, "{}", r.all());
    }
    let warning = "warning: task 1.1 names agent 'ghost', but .claude/agents/ghost.md does not exist; it runs without --agent (told once per agent)";
    assert!(r.stderr().contains(warning), "{}", r.all());
    assert_eq!(r.all().matches("names agent 'ghost'").count(), 1, "told more than once:\n{}", r.all());
    // The run log has it once too, as a warning.
    let log = p.read(".baton/logs/plan/run.log");
    assert_eq!(log.matches("[WARN] task 1.1 names agent 'ghost'").count(), 1, "{log}");
}

#[test]
fn a_parallel_task_looks_for_its_agent_in_its_worktree() {
    let p = project(&plan(&[("1", Some("coder")), ("2", Some("ghost"))], true));
    p.write(".claude/agents/coder.md", CODER);
    p.repo.commit_all("the coder agent");
    // The checkout is not where a parallel task runs: the committed coder.md deleted here, and
    // a ghost.md that was never committed, must change nothing in the worktrees.
    std::fs::remove_file(p.path().join(".claude/agents/coder.md")).unwrap();
    p.write(".claude/agents/ghost.md", "---\nname: ghost\ndescription: Not committed.\n---\nBoo.\n");
    let r = p.baton(&["run", "plan.yaml", "--parallel", "--allow-dirty"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let cwds: Vec<String> = p.invocations().iter().map(|i| i["cwd"].as_str().unwrap_or_default().to_string()).collect();
    assert!(cwds.len() == 2 && cwds.iter().all(|c| c.contains("/.worktrees/")), "{cwds:?}");
    let argv = argv_of(&p);
    assert_eq!(agent_flag(&argv["1"]), Some("coder"), "{:?}\n{}", argv["1"], r.all());
    assert_eq!(agent_flag(&argv["2"]), None, "{:?}", argv["2"]);
    // The checkout has the file, uncommitted: the warning says why the worktree does not.
    assert!(
        r.stderr().contains("warning: task 2 names agent 'ghost': .claude/agents/ghost.md is in the checkout but not in the task's worktree, which is made from the last commit (commit the file)"),
        "{}",
        r.all()
    );
    assert!(!r.all().contains("names agent 'coder'"), "{}", r.all());
}

#[test]
fn the_simulated_agent_ignores_a_named_agent_once() {
    let p = project(&plan(&[("1.1", Some("coder")), ("1.2", Some("coder"))], false));
    p.write(".claude/agents/coder.md", CODER);
    p.repo.commit_all("the coder agent");
    let r = p.baton(&["run", "plan.yaml", "--agent", "simulated"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(r.stderr().contains("warning: the simulated agent has no named agents; 'coder' is ignored"), "{}", r.all());
    assert_eq!(r.all().matches("'coder' is ignored").count(), 1, "{}", r.all());
    assert_eq!(p.plan().task("1.2").unwrap().status, Status::Completed, "{}", r.all());
}
