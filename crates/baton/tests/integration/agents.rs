//! Several agents in one run: `[agents.NAME]` tables, a task's `agent: NAME`, `[agent] default`
//! and `fallback`, and failover when an agent meets a long usage limit. The agents are the fake
//! CLI under different names (symbolic links) with a state folder each, so each one's log says
//! which tasks it ran, under which name it was started.

use std::path::{Path, PathBuf};

use baton::plan::Status;
use serde_json::Value;

use crate::support::{project, Project, FAST_CONFIG};

const LIMIT: &str = "You've hit your limit · resets 6pm (America/Toronto)";

fn plan(tasks: &[(&str, Option<&str>)]) -> String {
    let mut s = String::from("meta:\n  name: Agents\n  max_attempts_default: 2\nsections:\n- id: s1\n  name: Work\n  tasks:\n");
    for (id, agent) in tasks {
        s.push_str(&format!("  - id: '{id}'\n    name: Task {id}\n    status: pending\n    description: 'Do {id}.'\n"));
        if let Some(a) = agent {
            s.push_str(&format!("    agent: {a}\n"));
        }
    }
    s
}

/// A copy of the fake CLI under `name`, and its own state folder (scenario and log).
struct FakeAgent {
    bin: PathBuf,
    state: PathBuf,
}

impl FakeAgent {
    fn new(p: &Project, name: &str, scenario: &str) -> FakeAgent {
        let dir = p.state_path(&format!("agent-{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        let bin = dir.join(name);
        std::os::unix::fs::symlink(baton_testkit::fake_claude_bin(), &bin).unwrap();
        std::fs::write(dir.join("scenario.json"), scenario).unwrap();
        FakeAgent { bin, state: dir }
    }

    /// Its `[agents.NAME]` table.
    fn table(&self, name: &str) -> String {
        format!(
            "[agents.{name}]\nkind = \"claude\"\nbinary = \"{}\"\nenv = {{ BATON_FAKE_STATE = \"{}\", BATON_FAKE_SCENARIO = \"{}\" }}\n",
            self.bin.display(),
            self.state.display(),
            self.state.join("scenario.json").display()
        )
    }

    /// The tasks it ran, in order, and the program it was started as.
    fn ran(&self) -> Vec<(String, String)> {
        std::fs::read_to_string(self.state.join("invocations.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .map(|i| (i["task_id"].as_str().unwrap_or_default().to_string(), i["argv"][0].as_str().unwrap_or_default().to_string()))
            .collect()
    }
}

fn config(p: &Project, extra: &str) {
    p.write("baton.toml", &format!("{FAST_CONFIG}{extra}"));
    p.repo.commit_all("config");
}

fn name_of(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn each_task_runs_on_the_agent_it_names() {
    let p = project(&plan(&[("1", Some("alpha")), ("2", Some("beta")), ("3", None), ("4", Some("gamma"))]));
    let agents: Vec<(&str, FakeAgent)> = ["alpha", "beta", "gamma"].into_iter().map(|n| (n, FakeAgent::new(&p, n, "{}"))).collect();
    let tables: String = agents.iter().map(|(n, a)| a.table(n)).collect();
    config(&p, &format!("[agent]\ndefault = \"alpha\"\n{tables}"));
    // The dry run says which agent each task would run on.
    let d = p.baton(&["run", "plan.yaml", "--dry-run"]);
    assert_eq!(d.code(), 0, "{}", d.all());
    for line in ["1. 1 Task 1 (attempt 1/2) on alpha", "2. 2 Task 2 (attempt 1/2) on beta", "3. 3 Task 3 (attempt 1/2) on alpha", "4. 4 Task 4 (attempt 1/2) on gamma", "also: beta"] {
        assert!(d.stdout().contains(line), "no `{line}` in the dry run:\n{}", d.all());
    }
    let r = p.baton(&["run", "plan.yaml"]);
    let ctx = r.all();
    assert_eq!(r.code(), 0, "{ctx}");
    for (name, agent) in &agents {
        let ran = agent.ran();
        let expected: &[&str] = match *name {
            "alpha" => &["1", "3"],
            "beta" => &["2"],
            _ => &["4"],
        };
        assert_eq!(ran.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>(), expected, "{name}\n{ctx}");
        assert!(ran.iter().all(|(_, argv0)| name_of(Path::new(argv0)) == *name), "{name} was started as another program: {ran:?}");
    }
    assert!(p.invocations().is_empty(), "the agent of [agent] was started though every task has its own\n{ctx}");
    assert!(p.plan().tasks().all(|t| t.status == Status::Completed));
    // The history names the agent each attempt ran on.
    let h: Value = serde_json::from_str(&p.baton(&["history", "plan.yaml", "--json"]).stdout()).unwrap();
    let by_task: std::collections::HashMap<String, String> = h["runs"][0]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["task"].as_str().unwrap().to_string(), a["agent"].as_str().unwrap_or_default().to_string()))
        .collect();
    assert_eq!(by_task["2"], "beta", "{h:#}");
    assert_eq!(by_task["4"], "gamma", "{h:#}");
}

#[test]
fn a_long_usage_limit_moves_the_task_to_the_fallback_without_spending_an_attempt() {
    let p = project(&plan(&[("1", None), ("2", None)]));
    // The primary meets a limit that resets in 5 hours on its first session, whatever the task.
    let primary = FakeAgent::new(&p, "primary", &format!(r#"{{"default": {{"limit": {}, "limit_resets_in": 18000}}}}"#, serde_json::to_string(LIMIT).unwrap()));
    let backup = FakeAgent::new(&p, "backup", "{}");
    config(&p, &format!("[agent]\ndefault = \"primary\"\nfallback = [\"backup\"]\n{}{}", primary.table("primary"), backup.table("backup")));
    let r = p.baton(&["run", "plan.yaml"]);
    let ctx = r.all();
    assert_eq!(r.code(), 0, "{ctx}");
    assert!(ctx.contains("primary hit its usage limit") && ctx.contains("run on backup"), "the failover was not told\n{ctx}");
    // Once limited, the primary is passed over: one session met the limit, both tasks ran on the
    // backup.
    assert_eq!(primary.ran().len(), 1, "{ctx}");
    assert_eq!(backup.ran().iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>(), ["1", "2"], "{ctx}");
    let plan = p.plan();
    for t in plan.tasks() {
        assert_eq!((t.status, t.attempts), (Status::Completed, 1), "{}: the limit spent an attempt\n{ctx}", t.id);
    }
    // `status` shows the primary as limited until its reset.
    let s = p.baton(&["status", "plan.yaml"]);
    assert!(s.stdout().contains("primary: usage limit until"), "{}", s.all());
    let j: Value = serde_json::from_str(&p.baton(&["status", "plan.yaml", "--json"]).stdout()).unwrap();
    let sessions: Vec<&str> = j["sections"][0]["tasks"][0]["sessions"].as_array().unwrap().iter().map(|s| s["agent"].as_str().unwrap_or_default()).collect();
    assert_eq!(sessions, ["primary", "backup"], "each session says its agent: {j:#}");
    let limits = j["agent_limits"].as_array().expect("agent_limits");
    assert_eq!(limits.len(), 1, "{j:#}");
    assert_eq!(limits[0]["agent"], "primary");
    let until: jiff::Timestamp = limits[0]["until"].as_str().unwrap().parse().unwrap();
    let resets_at: i64 = std::fs::read_to_string(primary.state.join("1-1.resets_at")).unwrap().trim().parse().unwrap();
    assert!((until.as_second() - resets_at).abs() <= 60, "the reset is {until}, the agent said {resets_at}");

    // A later run knows the limit: the primary is not tried again before its reset.
    let mut text = p.read("plan.yaml");
    text.push_str("  - id: '3'\n    name: Task 3\n    status: pending\n    description: 'Do 3.'\n");
    p.write("plan.yaml", &text);
    p.repo.commit_all("more");
    let d = p.baton(&["run", "plan.yaml", "--dry-run"]);
    assert!(d.stdout().contains("primary: usage limit until ") && d.stdout().contains("3 Task 3 (attempt 1/2) on backup"), "the dry run reads the recorded limit:\n{}", d.all());
    let r = p.baton(&["run", "plan.yaml"]);
    let ctx = r.all();
    assert_eq!(r.code(), 0, "{ctx}");
    assert!(ctx.contains("primary is under a usage limit an earlier run met"), "{ctx}");
    assert_eq!(primary.ran().len(), 1, "the limited agent was started again\n{ctx}");
    assert!(backup.ran().iter().any(|(t, _)| t == "3"), "{ctx}");
    // `20:13 UTC`, or `2026-12-02 01:13 UTC` on another day; never `2026-12-01T20:13:00Z`.
    let said = ctx.split("met until ").nth(1).unwrap_or("");
    let rfc3339 = said.len() > 10 && said.as_bytes()[10] == b'T' && said[..4].chars().all(|c| c.is_ascii_digit());
    assert!(ctx.contains("primary is under a usage limit an earlier run met until ") && !rfc3339, "the reset in local time, not RFC 3339:\n{ctx}");

    // Naming the agent with --agent tries it whatever was recorded (a lifted limit, another
    // account): here it is still limited, and the task fails over again.
    let mut text = p.read("plan.yaml");
    text.push_str("  - id: '4'\n    name: Task 4\n    status: pending\n    description: 'Do 4.'\n");
    p.write("plan.yaml", &text);
    p.repo.commit_all("more");
    let r = p.baton(&["run", "plan.yaml", "--agent", "primary"]);
    let ctx = r.all();
    assert_eq!(r.code(), 0, "{ctx}");
    assert!(!ctx.contains("an earlier run met"), "{ctx}");
    assert_eq!(primary.ran().len(), 2, "{ctx}");
    assert!(backup.ran().iter().any(|(t, _)| t == "4"), "{ctx}");

    // The limit is lifted: tried again, the primary does the work, and its recorded limit is
    // over for status and for the next run.
    std::fs::write(primary.state.join("scenario.json"), "{}").unwrap();
    let mut text = p.read("plan.yaml");
    text.push_str("  - id: '5'\n    name: Task 5\n    status: pending\n    description: 'Do 5.'\n");
    p.write("plan.yaml", &text);
    p.repo.commit_all("more");
    let r = p.baton(&["run", "plan.yaml", "--agent", "primary"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(primary.ran().last().map(|(t, _)| t.as_str()), Some("5"), "{}", r.all());
    let s = p.baton(&["status", "plan.yaml"]);
    assert!(!s.stdout().contains("primary: usage limit"), "a session it answered lifts its limit:\n{}", s.all());
}

#[test]
fn while_the_default_agent_is_limited_the_reviewer_runs_on_the_fallback() {
    let p = project(&plan(&[("1", None)]));
    let primary = FakeAgent::new(&p, "primary", &format!(r#"{{"default": {{"limit": {}, "limit_resets_in": 18000}}}}"#, serde_json::to_string(LIMIT).unwrap()));
    // The backup codes the task, then reviews it.
    let backup = FakeAgent::new(&p, "backup", r#"{"tasks": {"1": [{"write": {"one.txt": "1"}, "commit": "one"}, {"status_json": {"task_id": "1", "verdict": "PASS", "findings": []}}]}}"#);
    config(&p, &format!("[agent]\ndefault = \"primary\"\nfallback = [\"backup\"]\n[review]\nenabled = true\nmodel = \"opus\"\n{}{}", primary.table("primary"), backup.table("backup")));
    let r = p.baton(&["run", "plan.yaml"]);
    let ctx = r.all();
    assert_eq!(r.code(), 0, "{ctx}");
    assert_eq!(primary.ran().len(), 1, "the limited default was asked to review\n{ctx}");
    assert_eq!(backup.ran().len(), 2, "{ctx}");
    let t = p.plan().task("1").cloned().unwrap();
    assert_eq!((t.status, t.attempts), (Status::Verified, 1), "{ctx}");
    // `[review] model` is the default agent's; the fallback reviews with its own (none here).
    let argv: Vec<Value> = std::fs::read_to_string(backup.state.join("invocations.jsonl")).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(!argv[1]["argv"].to_string().contains("opus"), "{}", argv[1]);
}

#[test]
fn a_short_limit_is_waited_out_on_the_same_agent() {
    let p = project(&plan(&[("1", None)]));
    let primary = FakeAgent::new(&p, "primary", &format!(r#"{{"default": [{{"limit": {}, "limit_resets_in": 1}}, {{}}]}}"#, serde_json::to_string(LIMIT).unwrap()));
    let backup = FakeAgent::new(&p, "backup", "{}");
    config(&p, &format!("[agent]\ndefault = \"primary\"\nfallback = [\"backup\"]\n{}{}", primary.table("primary"), backup.table("backup")));
    let r = p.baton(&["run", "plan.yaml"]);
    let ctx = r.all();
    assert_eq!(r.code(), 0, "{ctx}");
    assert_eq!(primary.ran().len(), 2, "{ctx}");
    assert!(backup.ran().is_empty(), "a limit that resets within failover_after_minutes moved the task\n{ctx}");
    assert_eq!(p.plan().task("1").unwrap().attempts, 1);
}

#[test]
fn undefined_agents_and_kinds_are_refused_and_an_unknown_task_agent_is_a_warning() {
    let p = project(&plan(&[("1", Some("nobody"))]));
    config(&p, "[agent]\ndefault = \"main\"\nfallback = [\"spare\"]\n[agents.main]\nkind = \"claude\"\n");
    let r = p.baton(&["check", "plan.yaml"]);
    assert_eq!(r.code(), 2, "{}", r.all());
    let e = r.all();
    assert!(e.contains("baton.toml:") && e.contains("`fallback` names \"spare\", which is no agent"), "{e}");
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 2, "{}", r.all());
    assert!(p.invocations().is_empty(), "an agent ran");

    config(&p, "[agents.main]\nkind = \"gpt\"\n");
    let r = p.baton(&["check", "plan.yaml"]);
    assert_eq!(r.code(), 2, "{}", r.all());
    assert!(r.all().contains("unknown variant `gpt`"), "{}", r.all());

    config(&p, "[agents.main]\nkind = \"claude\"\n");
    let r = p.baton(&["check", "plan.yaml"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let w = r.all();
    assert!(w.contains("nobody") && w.contains("main"), "the warning should name the unknown agent and the known ones:\n{w}");
    // A slip is named.
    p.write("plan.yaml", &plan(&[("1", Some("mian"))]));
    p.repo.commit_all("a slip");
    let w = p.baton(&["check", "plan.yaml"]).all();
    assert!(w.contains("did you mean `main`?"), "{w}");
}

#[test]
fn a_command_agent_that_echoes_its_prompt_has_not_reported_anything() {
    let p = project(&plan(&[("1", None)]).replace("max_attempts_default: 2", "max_attempts_default: 1"));
    let script = p.write("tools/echo.sh", "#!/bin/sh\necho 'Received message:'\ncat\necho 'Sorry, I could not do anything'\n");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    config(&p, "[agent]\nkind = \"command\"\ncommand = [\"./tools/echo.sh\"]\n");
    let r = p.baton(&["run", "plan.yaml"]);
    let ctx = r.all();
    assert_eq!(r.code(), 1, "{ctx}");
    let t = p.plan().task("1").cloned().unwrap();
    assert_eq!(t.status, Status::Failed, "{ctx}");
    assert!(t.last_error.as_deref().unwrap_or_default().contains("the example from its prompt, echoed back"), "{:?}", t.last_error);
}

#[test]
fn a_cli_that_cannot_be_found_is_a_warning_of_check_and_the_dry_run_foresees_the_refusal() {
    let p = project(&plan(&[("1", Some("cx"))]));
    config(&p, "[agents.cx]\nkind = \"codex\"\nbinary = \"/nonexistent/codex\"\n");
    let check = p.baton(&["check", "plan.yaml"]);
    assert_eq!(check.code(), 0, "perhaps installed only where the plan runs: {}", check.all());
    assert!(check.stderr().contains("warning: baton.toml: the agent binary /nonexistent/codex (set in baton.toml [agents.cx] binary)"), "{}", check.all());
    let dry = p.baton(&["run", "plan.yaml", "--dry-run"]);
    assert_eq!(dry.code(), 2, "{}", dry.all());
    assert!(dry.stdout().contains("the run would be refused (exit 2): agent cx cannot be found"), "{}", dry.all());
    let run = p.baton(&["run", "plan.yaml"]);
    assert_eq!(run.code(), 2, "{}", run.all());
    assert!(run.stderr().contains("[agents.cx] binary"), "{}", run.all());
    assert_eq!(p.plan().task("1").unwrap().status, Status::Pending);
}

#[test]
fn reviewed_work_waits_while_no_agent_can_review_it_instead_of_being_done_again_and_again() {
    // The task runs on `other`; the reviewer runs on the default `main`, which is limited for
    // 2 hours and has no fallback.
    let p = project(&plan(&[("1", Some("other"))]));
    let main = FakeAgent::new(&p, "main", &format!(r#"{{"default": {{"limit": {}, "limit_resets_in": 7200}}}}"#, serde_json::to_string(LIMIT).unwrap()));
    let other = FakeAgent::new(&p, "other", r#"{"default": {"write": {"a.txt": "a"}, "commit": "a"}}"#);
    config(&p, &format!("[agent]\ndefault = \"main\"\n[review]\nenabled = true\n{}{}", main.table("main"), other.table("other")));
    let mut child = p.spawn(&["run", "plan.yaml"]);
    crate::support::wait_for("the wait for the reviewer's agent", || p.log().contains("waiting until"));
    // Nothing more starts while it waits: one session each, not one per second.
    std::fs::write(p.path().join(".claude/plans/.stop"), "").unwrap();
    let code = crate::support::wait_exit(&mut child);
    let log = p.log();
    assert_eq!(code, Some(4), "{log}");
    assert_eq!((other.ran().len(), main.ran().len()), (1, 1), "the work was done again while the reviewer was limited\n{log}");
    let t = p.plan().task("1").cloned().unwrap();
    assert_eq!((t.status, t.attempts), (Status::Pending, 0), "{log}");
}

#[test]
fn a_commit_of_nothing_but_baton_s_files_is_no_change() {
    // `git add -A` commits baton's edit of the plan; a force-added file under .baton/ is
    // baton's too: neither is work.
    let p = project(&plan(&[("1", None)]).replace("max_attempts_default: 2", "max_attempts_default: 1"));
    p.write("baton.toml", &format!("{FAST_CONFIG}[verify]\nrequire_changes = \"fail\"\n"));
    p.repo.commit_all("config");
    p.scenario(r#"{"tasks": {"1": [{"shell": "mkdir -p .baton && echo x > .baton/foo && git add -f .baton/foo && git add -A && git commit -qm 'nothing really'"}]}}"#);
    let r = p.baton(&["run", "plan.yaml"]);
    assert_eq!(r.code(), 1, "{}", r.all());
    let t = p.plan().task("1").cloned().unwrap();
    assert_eq!(t.status, Status::Failed, "{}", r.all());
}

#[test]
fn in_a_parallel_run_a_task_s_other_files_beside_the_plan_land_too() {
    // Not baton's files (the plan, the status file): another plan, a note. They were dropped
    // without a word.
    let p = project(&plan(&[("1", None), ("2", None)]).replace("status: pending\n", "status: pending\n    parallel_group: g\n"));
    p.write(".claude/plans/other.yaml", "meta: {name: other}\n");
    p.repo.commit_all("another plan");
    p.scenario(r#"{"tasks": {"1": [{"shell": "echo '# edited by task 1' >> .claude/plans/other.yaml && echo new > .claude/plans/notes.md && echo r > real.txt", "commit": "task 1"}]}}"#);
    let r = p.baton(&["run", "plan.yaml", "--parallel"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(p.read("real.txt"), "r\n");
    assert_eq!(p.read(".claude/plans/notes.md"), "new\n", "{}", r.all());
    assert!(p.read(".claude/plans/other.yaml").contains("# edited by task 1"), "{}", r.all());
    assert_eq!(p.repo.status_porcelain(), "", "landed and committed");
    assert!(!p.path().join(".claude/plans/task-status.json").exists());
}
