//! fake-claude acts out its scenarios with the real CLI's shapes: these tests run the binary
//! the way baton does (own process group, stdin null, the real flags) and check what it leaves.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use baton_testkit::{
    kill_process_group, process_alive, run_with_deadline, wait_until, RunOutput, TempRepo,
};
use serde_json::{json, Value};

const FAKE: &str = env!("CARGO_BIN_EXE_fake-claude");
const DEADLINE: Duration = Duration::from_secs(30);
const STATUS_FILE: &str = ".claude/plans/task-status.json";

/// A repository with a plan, a scenario and a state directory.
struct Setup {
    repo: TempRepo,
    state: PathBuf,
    scenario: PathBuf,
}

impl Setup {
    fn new(scenario: &Value) -> Setup {
        let repo = TempRepo::new();
        repo.write("plan.yaml", "meta:\n  name: test\nsections: []\n");
        repo.commit_all("add plan");
        let state = repo.join(".fake-state");
        let scenario_path = repo.join(".fake-scenario.json");
        std::fs::write(&scenario_path, scenario.to_string()).unwrap();
        repo.write(".git/info/exclude", ".fake-state/\n.fake-scenario.json\n");
        Setup {
            repo,
            state,
            scenario: scenario_path,
        }
    }

    fn prompt(task: &str) -> String {
        format!(
            "You are one runner in a relay.\n\nTask ID: {task}\nPlan file: plan.yaml\n\
             Status file: {STATUS_FILE}\n\nDo the task."
        )
    }

    fn command(&self, task: &str) -> Command {
        let mut cmd = Command::new(FAKE);
        cmd.args([
            "--dangerously-skip-permissions",
            "--print",
            &Setup::prompt(task),
        ])
        .args([
            "--output-format",
            "stream-json",
            "--verbose",
            "--model",
            "claude-test",
        ])
        .current_dir(self.repo.path())
        .env("BATON_FAKE_SCENARIO", &self.scenario)
        .env("BATON_FAKE_STATE", &self.state)
        .env("IS_SANDBOX", "1");
        cmd
    }

    fn run(&self, task: &str) -> RunOutput {
        let out = run_with_deadline(&mut self.command(task), DEADLINE).unwrap();
        assert!(!out.timed_out, "fake-claude hung: {out:?}");
        out
    }

    fn status_file(&self) -> Option<Value> {
        let text = std::fs::read_to_string(self.repo.join(STATUS_FILE)).ok()?;
        Some(serde_json::from_str(&text).expect("status file is JSON"))
    }

    fn invocations(&self) -> Vec<Value> {
        std::fs::read_to_string(self.state.join("invocations.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[test]
fn a_complete_run_writes_commits_and_reports_like_the_real_cli() {
    let setup = Setup::new(&json!({"tasks": {"1.1": [{
        "write": {"src/lib.rs": "pub fn f() {}\n"}, "commit": "feat: add f",
        "message": "added f", "cost": 0.25, "events": 2}]}}));
    let out = setup.run("1.1");
    assert!(out.status.success(), "{out:?}");

    let events = out.events();
    assert_eq!(
        events.len(),
        out.stdout.lines().count(),
        "every line is JSON"
    );
    assert_eq!(events[0]["type"], "system");
    assert_eq!(events[0]["subtype"], "init");
    assert_eq!(events[0]["model"], "claude-test");
    assert_eq!(events[0]["claude_code_version"], "2.1.332");
    let write = events
        .iter()
        .find(|e| e["type"] == "assistant" && e["message"]["content"][0]["name"] == "Write")
        .expect("a Write tool_use");
    assert_eq!(
        write["message"]["content"][0]["input"]["file_path"],
        json!(setup.repo.join("src/lib.rs"))
    );
    assert!(events
        .iter()
        .any(|e| e["type"] == "user" && e["message"]["content"][0]["type"] == "tool_result"));
    let result = out.result_event().unwrap();
    assert_eq!(result["subtype"], "success");
    assert_eq!(result["is_error"], false);
    assert_eq!(result["terminal_reason"], "completed");
    assert_eq!(result["total_cost_usd"], 0.25);
    assert_eq!(result["result"], "Done: added f");
    assert!(result["num_turns"].as_u64().unwrap() >= 3);

    assert_eq!(setup.repo.read("src/lib.rs"), "pub fn f() {}\n");
    assert_eq!(setup.repo.log_subjects()[0], "feat: add f");
    let status = setup.status_file().expect("status file");
    assert_eq!(status["task_id"], "1.1");
    assert_eq!(status["status"], "completed");
    assert_eq!(status["message"], "added f");
    assert_eq!(status["plan_modified"], false);

    let log = setup.invocations();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["task_id"], "1.1");
    assert_eq!(log[0]["attempt"], 1);
    assert_eq!(log[0]["IS_SANDBOX"], "1");
    assert_eq!(
        log[0]["pid"], log[0]["pgid"],
        "run_with_deadline gives it its own group"
    );
}

#[test]
fn attempts_walk_the_steps_and_the_last_step_repeats() {
    let setup = Setup::new(&json!({
        "default": [{"status": "malformed"}],
        "tasks": {"2": [{"status": "failed", "message": "tests fail"}, {"status": "completed"}]}}));
    let first = setup.run("2");
    assert!(first.status.success(), "a failed status still exits 0");
    assert_eq!(setup.status_file().unwrap()["status"], "failed");
    for _ in 0..2 {
        std::fs::remove_file(setup.repo.join(STATUS_FILE)).unwrap();
        setup.run("2");
        assert_eq!(setup.status_file().unwrap()["status"], "completed");
    }
    setup.run("3");
    assert_eq!(setup.repo.read(STATUS_FILE), "{not json");
    let attempts: Vec<(String, u64)> = setup
        .invocations()
        .iter()
        .map(|i| {
            (
                i["task_id"].as_str().unwrap().to_owned(),
                i["attempt"].as_u64().unwrap(),
            )
        })
        .collect();
    let expected = [("2", 1), ("2", 2), ("2", 3), ("3", 1)].map(|(t, a)| (t.to_owned(), a));
    assert_eq!(attempts, expected);
}

#[test]
fn status_in_result_puts_the_json_in_the_result_text_only() {
    let setup =
        Setup::new(&json!({"default": [{"status_in_result": true, "plan_modified": true}]}));
    let out = setup.run("1.2");
    assert!(setup.status_file().is_none());
    let result = out.result_event().unwrap();
    let text = result["result"].as_str().unwrap();
    let fenced = text
        .split("```json\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```").next())
        .expect("a json fence");
    let status: Value = serde_json::from_str(fenced).unwrap();
    assert_eq!(status["task_id"], "1.2");
    assert_eq!(status["status"], "completed");
    assert_eq!(status["plan_modified"], true);
}

#[test]
fn plan_edits_append_and_replace() {
    let setup = Setup::new(&json!({"default": [{
        "plan_replace": ["name: test", "name: renamed"],
        "plan_append": "extra: {added: true}\n", "plan_modified": true}]}));
    setup.run("1");
    assert_eq!(
        setup.repo.read("plan.yaml"),
        "meta:\n  name: renamed\nsections: []\nextra: {added: true}\n"
    );
    assert_eq!(setup.status_file().unwrap()["plan_modified"], true);
}

#[test]
fn a_usage_limit_ends_like_the_real_cli() {
    let text = "You've hit your limit · resets 6pm (America/Toronto)";
    let setup =
        Setup::new(&json!({"default": [{"limit": text, "limit_resets_at": 1_795_647_600}]}));
    let out = setup.run("1");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        setup.status_file().is_none(),
        "a limited run writes no status"
    );
    let events = out.events();
    let limit = events
        .iter()
        .find(|e| e["type"] == "rate_limit_event")
        .unwrap();
    assert_eq!(limit["rate_limit_info"]["status"], "rejected");
    assert_eq!(limit["rate_limit_info"]["resetsAt"], 1_795_647_600);
    let synthetic = events
        .iter()
        .find(|e| e["type"] == "assistant" && e["message"]["model"] == "<synthetic>")
        .unwrap();
    assert_eq!(synthetic["message"]["content"][0]["text"], text);
    let result = out.result_event().unwrap();
    assert_eq!(result["subtype"], "success");
    assert_eq!(result["is_error"], true);
    assert_eq!(result["api_error_status"], 429);
    assert_eq!(result["terminal_reason"], "api_error");
    assert_eq!(result["result"], text);
}

#[test]
fn throttling_has_no_rate_limit_event() {
    let text =
        "API Error: Server is temporarily limiting requests (not your usage limit) · Rate limited";
    let setup = Setup::new(&json!({"default": [{"throttle": text}]}));
    let out = setup.run("1");
    assert_eq!(out.status.code(), Some(1));
    assert!(!out.events().iter().any(|e| e["type"] == "rate_limit_event"));
    assert_eq!(out.result_event().unwrap()["result"], text);
}

#[test]
fn root_refusal_needs_is_sandbox() {
    let setup = Setup::new(&json!({"default": [{"root_refusal": true}]}));
    let refused = run_with_deadline(setup.command("1").env_remove("IS_SANDBOX"), DEADLINE).unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(refused.stdout.is_empty());
    assert!(
        refused
            .stderr
            .contains("cannot be used with root/sudo privileges"),
        "{refused:?}"
    );
    let allowed = setup.run("1");
    assert!(allowed.status.success());
    assert_eq!(setup.invocations()[0]["IS_SANDBOX"], Value::Null);
}

#[test]
fn crash_exits_2_without_status_or_result() {
    let setup = Setup::new(&json!({"default": [{"crash": true, "write": {"half.txt": "x"}}]}));
    let out = setup.run("1");
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stderr.contains("crashed"));
    assert!(out.result_event().is_none());
    assert!(setup.status_file().is_none());
    assert!(setup.repo.join("half.txt").exists());
}

#[test]
fn bad_command_lines_fail_like_the_real_cli() {
    let setup = Setup::new(&json!({}));
    let out = run_with_deadline(
        Command::new(FAKE).args(["-p", &Setup::prompt("1"), "--output-format", "stream-json"]),
        DEADLINE,
    )
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stderr.contains("requires --verbose"));
    let out = run_with_deadline(Command::new(FAKE).arg("--version"), DEADLINE).unwrap();
    assert_eq!(out.stdout, "2.1.332 (Claude Code)\n");
    let out = run_with_deadline(
        Command::new(FAKE)
            .args(["-p", "{"])
            .current_dir(setup.repo.path())
            .env("BATON_FAKE_SCENARIO", setup.repo.join("plan.yaml")),
        DEADLINE,
    )
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "a broken scenario is the test's fault: {out:?}"
    );
}

/// The case baton's process handling exists for: the agent hangs while a tool it started runs.
/// Killing the agent's process group must take the grandchild with it.
#[test]
fn a_hung_agent_and_its_grandchild_die_with_their_process_group() {
    let setup = Setup::new(&json!({"default": [{"hang": true}]}));
    let mut child = setup
        .command("4.2")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let agent_pid_file = setup.state.join("4.2-1.agent.pid");
    assert!(
        wait_until(DEADLINE, || agent_pid_file.exists()),
        "no agent pid file"
    );
    let grandchild = read_pid(&setup.state.join("4.2-1.grandchild.pid")).unwrap();
    assert_eq!(read_pid(&agent_pid_file), Some(child.id()));
    assert!(process_alive(grandchild));
    assert!(
        setup.status_file().is_none(),
        "a hang writes no status by default"
    );

    kill_process_group(child.id(), libc::SIGKILL);
    let status = child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL)
    );
    assert!(
        wait_until(DEADLINE, || !process_alive(grandchild)),
        "grandchild {grandchild} survived the group kill"
    );
}

#[test]
fn hang_streaming_keeps_talking_until_killed() {
    let setup = Setup::new(&json!({"default": [{"hang_streaming": true}]}));
    let mut child = setup
        .command("5")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        // Init plus a few heartbeats prove it keeps emitting.
        std::io::BufReader::new(stdout).lines().take(4).count()
    });
    let agent_pid_file = setup.state.join("5-1.agent.pid");
    assert!(wait_until(DEADLINE, || agent_pid_file.exists()));
    assert!(wait_until(DEADLINE, || reader.is_finished()));
    assert_eq!(reader.join().unwrap(), 4);
    let grandchild = read_pid(&setup.state.join("5-1.grandchild.pid")).unwrap();
    kill_process_group(child.id(), libc::SIGTERM);
    child.wait().unwrap();
    assert!(wait_until(DEADLINE, || !process_alive(grandchild)));
}
