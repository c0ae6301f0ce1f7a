//! `baton run` end to end with the REAL Claude Code CLI (pinned in package.json; `npm ci`),
//! pointed at the testkit's scripted `FakeModelServer`. The CLI really runs the scripted tool
//! calls (files written, commits made, the status file written), so these tests check that
//! baton understands the real CLI: its stream, its cost, its API errors, limits and throttling.
//!
//! Each test skips, loudly, when the CLI is not installed.

use std::path::PathBuf;
use std::process::Command;

use baton::plan::Status;
use baton_testkit::{claude_env, find_real_claude, workspace_root, FakeModelServer, Turn};
use serde_json::Value;

use crate::support::{Project, Run, project, real_cli, ONE_TASK, STATUS_FILE, real_command, run_real};

const TWO: &str = "meta:
  name: Two steps
  max_attempts_default: 3
sections:
- id: s1
  name: First
  tasks:
  - id: '1.1'
    name: One
    status: pending
    description: 'Write one.txt. Files: one.txt'
  - id: '1.2'
    name: Two
    status: pending
    description: 'Write two.txt. Files: two.txt'
    depends_on: ['1.1']
";

fn real_claude() -> Option<PathBuf> {
    real_cli(find_real_claude(&workspace_root()), "Claude Code CLI")
}

/// The real CLI's side of the test: the binary, the server it talks to, its own HOME.
struct Claude {
    bin: PathBuf,
    server: FakeModelServer,
    home: tempfile::TempDir,
    subscriber: bool,
    extra_env: Vec<(String, String)>,
}

impl Claude {
    fn new(bin: PathBuf, script: Vec<Turn>, subscriber: bool) -> Claude {
        Claude {
            bin,
            server: FakeModelServer::start(script),
            home: tempfile::tempdir().expect("temporary HOME"),
            subscriber,
            extra_env: Vec::new(),
        }
    }

    fn env(mut self, key: &str, value: &str) -> Claude {
        self.extra_env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// A baton command in the project with the CLI's environment.
    fn command(&self, p: &Project, args: &[&str]) -> Command {
        let mut cmd = real_command(p, args);
        cmd.env("BATON_CLAUDE_BIN", &self.bin)
            .envs(claude_env(self.home.path(), &self.server.base_url(), self.subscriber))
            .envs(self.extra_env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        cmd
    }

    /// Runs baton to its end; a run past the deadline fails the test.
    fn baton(&self, p: &Project, args: &[&str]) -> Run {
        run_real(&mut self.command(p, args), args, &|| self.describe())
    }

    /// What the model server saw, for failure messages.
    fn describe(&self) -> String {
        let requests: Vec<String> = self.server.requests().iter().map(|r| format!("{} {}", r.method, r.path)).collect();
        format!("model server requests: {requests:?}; turns left: {}", self.server.turns_left())
    }
}

/// The turns of one good session of task `id`: write `file`, commit it, write the status file
/// with the Write tool, and end with a short answer.
fn good_session(id: &str, file: &str, content: &str, message: &str) -> Vec<Turn> {
    let status = serde_json::json!({
        "task_id": id,
        "status": "completed",
        "message": message,
        "timestamp": "2026-01-01T12:00:00Z",
        "plan_modified": false,
    });
    vec![
        Turn::write(format!("{{cwd}}/{file}"), content),
        Turn::bash(format!("git add {file} && git commit -qm 'task {id}: {file}'")),
        Turn::write(format!("{{cwd}}/{STATUS_FILE}"), serde_json::to_string_pretty(&status).unwrap()),
        Turn::text(format!("Task {id} is done.")),
    ]
}

fn task_status(p: &Project, id: &str) -> (Status, u32, Option<String>) {
    let plan = p.plan();
    let t = plan.task(id).unwrap_or_else(|| panic!("no task {id}"));
    (t.status, t.attempts, t.last_error.clone())
}

/// `.baton/logs/plan/<task>/attempt-<session>.json`.
fn attempt_record(p: &Project, task: &str, session: u32) -> Value {
    let path = p.path().join(format!(".baton/logs/plan/{task}/attempt-{session}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}\n{text}", path.display()))
}

fn now_epoch_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[test]
fn real_cli_runs_a_two_task_plan_to_completion() {
    let Some(bin) = real_claude() else { return };
    let p = project(TWO);
    let mut script = good_session("1.1", "one.txt", "one\n", "wrote one.txt");
    script.extend(good_session("1.2", "two.txt", "two\n", "wrote two.txt"));
    let claude = Claude::new(bin, script, false);
    let r = claude.baton(&p, &["run", "plan.yaml"]);
    let context = format!("{}\n{}", r.all(), claude.describe());
    assert_eq!(r.code(), 0, "{context}");

    for (id, message) in [("1.1", "wrote one.txt"), ("1.2", "wrote two.txt")] {
        assert_eq!(task_status(&p, id), (Status::Completed, 1, None), "{id}: {context}");
        let plan = p.plan();
        assert_eq!(plan.task(id).unwrap().result_message.as_deref(), Some(message), "{context}");
    }
    assert_eq!(p.read("one.txt"), "one\n");
    assert_eq!(p.read("two.txt"), "two\n");
    // The agent's commits, each followed by baton's.
    let log = p.repo.log_subjects();
    assert_eq!(
        log[..4],
        ["baton: 1.2 completed — Two", "task 1.2: two.txt", "baton: 1.1 completed — One", "task 1.1: one.txt"],
        "{context}"
    );
    let tracked = p.repo.git(&["ls-files", "one.txt", "two.txt"]);
    assert_eq!(tracked.lines().count(), 2, "{tracked}");
    assert!(r.stdout().contains("2 of 2 completed"), "{context}");
    // Every scripted turn was used: four model calls per session, nothing else.
    assert_eq!(claude.server.turns_left(), 0, "{context}");
    assert_eq!(claude.server.messages_calls().len(), 8, "{context}");

    // The prompt reached the model: the task id and where to report.
    let calls = claude.server.messages_calls();
    for id in ["1.1", "1.2"] {
        let want = format!("Task ID: {id}\n");
        let call = calls
            .iter()
            .find(|c| c.user_text().contains(&want))
            .unwrap_or_else(|| panic!("no model request carried {want:?}\n{context}"));
        let text = call.user_text();
        assert!(text.contains(&format!("Status file: {STATUS_FILE}")), "{text}");
        assert!(text.contains("Plan file: plan.yaml"), "{text}");
    }
    // The first session's calls name task 1.1, the second's 1.2: a fresh session per task.
    assert!(calls[3].user_text().contains("Task ID: 1.1\n") && !calls[3].user_text().contains("Task ID: 1.2"));
    assert!(calls[4].user_text().contains("Task ID: 1.2\n") && !calls[4].user_text().contains("Task ID: 1.1"));

    // The cost comes from the real CLI's result event.
    let s = claude.baton(&p, &["status", "plan.yaml", "--json"]);
    assert_eq!(s.code(), 0, "{}", s.all());
    let v: Value = serde_json::from_str(&s.stdout()).unwrap_or_else(|e| panic!("{e}\n{}", s.stdout()));
    for t in v["sections"][0]["tasks"].as_array().expect("tasks") {
        // `usage.cost_usd` (older builds: a top-level `cost_usd`).
        let cost = t["usage"]["cost_usd"].as_f64().or_else(|| t["cost_usd"].as_f64()).unwrap_or(0.0);
        assert!(cost > 0.0, "no cost read from the real stream: {t}");
        assert_eq!(t["attempts"], 1, "{t}");
    }
    let rec = attempt_record(&p, "1.1", 1);
    assert_eq!(rec["outcome"], "completed", "{rec}");
    assert!(rec["session_id"].as_str().is_some_and(|s| !s.is_empty()), "{rec}");
    assert!(rec["cost_usd"].as_f64().is_some_and(|c| c > 0.0), "{rec}");
    // baton consumed the status file; nothing of the run is left to commit.
    assert!(!p.path().join(STATUS_FILE).exists(), "the status file was left behind");
    assert_eq!(p.repo.status_porcelain(), "", "the run left files in the working tree");
}

#[test]
fn real_cli_server_error_costs_an_attempt_and_the_retry_completes() {
    let Some(bin) = real_claude() else { return };
    let p = project(ONE_TASK);
    let mut script = vec![Turn::server_error()];
    script.extend(good_session("1.1", "one.txt", "one\n", "wrote one.txt"));
    let claude = Claude::new(bin, script, false).env("CLAUDE_CODE_MAX_RETRIES", "0");
    let r = claude.baton(&p, &["run", "plan.yaml"]);
    let context = format!("{}\n{}", r.all(), claude.describe());
    assert_eq!(r.code(), 0, "{context}");
    let (status, attempts, last_error) = task_status(&p, "1.1");
    assert_eq!((status, attempts), (Status::Completed, 2), "{context}");
    let last_error = last_error.unwrap_or_default();
    assert!(last_error.contains("API Error") && last_error.contains("500"), "last_error: {last_error}\n{context}");
    assert!(r.stdout().contains("1.1 failed (attempt 1/3); retrying"), "{context}");
    let first = attempt_record(&p, "1.1", 1);
    assert_eq!(first["outcome"], "failed", "{first}");
    assert_eq!(first["attempt"], 1, "{first}");
    assert!(first["message"].as_str().unwrap_or("").contains("500"), "{first}");
    assert_eq!(attempt_record(&p, "1.1", 2)["outcome"], "completed");
    assert_eq!(p.read("one.txt"), "one\n");
    assert_eq!(claude.server.turns_left(), 0, "{context}");
}

#[test]
fn real_cli_usage_limit_waits_for_the_reset_and_spends_no_attempt() {
    let Some(bin) = real_claude() else { return };
    let p = project(ONE_TASK);
    let resets_at = now_epoch_s() + 2;
    let mut script = vec![Turn::usage_limit(resets_at)];
    script.extend(good_session("1.1", "one.txt", "one\n", "wrote one.txt"));
    // Subscriber mode: the CLI reads the unified rate-limit headers. No CLAUDE_CODE_MAX_RETRIES:
    // the CLI does not retry a usage limit by itself.
    let claude = Claude::new(bin, script, true);
    let r = claude.baton(&p, &["run", "plan.yaml"]);
    let context = format!("{}\n{}", r.all(), claude.describe());
    assert_eq!(r.code(), 0, "{context}");
    assert_eq!(task_status(&p, "1.1"), (Status::Completed, 1, None), "the limit spent an attempt\n{context}");
    assert!(r.all().contains("usage limit"), "{context}");

    let limited = attempt_record(&p, "1.1", 1);
    assert_eq!(limited["outcome"], "limited", "{limited}");
    assert_eq!(limited["attempt"], Value::Null, "{limited}");
    assert!(limited["message"].as_str().unwrap_or("").contains("hit your limit"), "{limited}");
    let done = attempt_record(&p, "1.1", 2);
    assert_eq!(done["outcome"], "completed", "{done}");
    assert_eq!(done["attempt"], 1, "{done}");
    // The second session started only after the reset.
    let second_start: jiff::Timestamp = done["started_at"].as_str().unwrap().parse().unwrap();
    assert!(second_start.as_second() >= resets_at, "retried at {second_start}, before the reset at {resets_at}");
    assert_eq!(claude.server.turns_left(), 0, "{context}");
}

#[test]
fn real_cli_throttling_in_api_key_mode_backs_off_and_spends_no_attempt() {
    let Some(bin) = real_claude() else { return };
    let p = project(ONE_TASK);
    let mut script = vec![Turn::throttled("Rate limited")];
    script.extend(good_session("1.1", "one.txt", "one\n", "wrote one.txt"));
    let claude = Claude::new(bin, script, false).env("CLAUDE_CODE_MAX_RETRIES", "0");
    let r = claude.baton(&p, &["run", "plan.yaml"]);
    let context = format!("{}\n{}", r.all(), claude.describe());
    assert_eq!(r.code(), 0, "{context}");
    assert_eq!(task_status(&p, "1.1"), (Status::Completed, 1, None), "the throttling spent an attempt\n{context}");
    let throttled = attempt_record(&p, "1.1", 1);
    assert_eq!(throttled["outcome"], "throttled", "{throttled}");
    assert_eq!(throttled["attempt"], Value::Null, "{throttled}");
    assert!(throttled["message"].as_str().unwrap_or("").contains("429"), "{throttled}");
    assert!(throttled["waited_seconds"].as_f64().is_some_and(|w| w > 0.0), "{throttled}");
    assert_eq!(attempt_record(&p, "1.1", 2)["outcome"], "completed");
    assert!(!r.all().contains("usage limit:"), "throttling was taken for a usage limit\n{context}");
    assert_eq!(claude.server.turns_left(), 0, "{context}");
}

#[test]
fn real_cli_verbose_shows_tool_calls_and_the_result() {
    let Some(bin) = real_claude() else { return };
    let p = project(ONE_TASK);
    let claude = Claude::new(bin, good_session("1.1", "one.txt", "one\n", "wrote one.txt"), false);
    let r = claude.baton(&p, &["run", "plan.yaml", "--verbose"]);
    let context = format!("{}\n{}", r.all(), claude.describe());
    assert_eq!(r.code(), 0, "{context}");
    let out = r.stdout();
    let write = out
        .lines()
        .find(|l| l.contains("[Tool] Write: "))
        .unwrap_or_else(|| panic!("no [Tool] Write line\n{context}"));
    assert!(write.contains("one.txt"), "{write}");
    assert!(out.contains("[Tool] Bash: "), "{context}");
    assert!(out.contains("[Result] "), "{context}");
    assert!(out.contains("[Init] "), "{context}");
}

#[test]
fn real_cli_runs_a_task_as_its_named_agent() {
    let Some(bin) = real_claude() else { return };
    let p = project(&format!("{ONE_TASK}    agent: coder\n"));
    let sentence = "You are the coder of the Zanzibar ledger project; answer in plain words.";
    p.write(".claude/agents/coder.md", &format!("---\nname: coder\ndescription: Writes the code of one task.\n---\n{sentence}\n"));
    p.repo.commit_all("the coder agent");
    let claude = Claude::new(bin, good_session("1.1", "one.txt", "one\n", "wrote one.txt"), false);
    let r = claude.baton(&p, &["run", "plan.yaml", "--verbose"]);
    let context = format!("{}\n{}", r.all(), claude.describe());
    assert_eq!(r.code(), 0, "{context}");
    assert_eq!(task_status(&p, "1.1"), (Status::Completed, 1, None), "{context}");
    assert!(r.stdout().contains("Claude started as agent 'coder'"), "{context}");
    assert_eq!(attempt_record(&p, "1.1", 1)["named_agent"], "coder");
    // The CLI took the agent's definition as the session's own: its body is in the system
    // prompt of every call the session made.
    let calls = claude.server.messages_calls();
    assert!(!calls.is_empty(), "{context}");
    for call in &calls {
        assert!(call.system_text().contains(sentence), "the agent's prompt did not reach the model:\n{}\n{context}", call.system_text());
    }
    assert_eq!(claude.server.turns_left(), 0, "{context}");
}

/// The task's check: exit 3 with one line of output until `done.txt` is there.
const CHECK: &str = "test -f done.txt || { echo no done.txt yet; exit 3; }";

#[test]
fn real_cli_a_failing_check_sends_its_output_to_the_next_attempt_which_passes() {
    let Some(bin) = real_claude() else { return };
    let p = project(&format!(
        "meta:
  name: Checked
  max_attempts_default: 3
sections:
- id: s1
  name: First
  tasks:
  - id: '1.1'
    name: Done file
    status: pending
    description: 'Write done.txt. Files: done.txt'
    verify: '{CHECK}'
"
    ));
    assert_eq!(p.plan().task("1.1").unwrap().verify, [CHECK], "the plan did not parse as meant");
    // Session 1 reports completed without writing done.txt: the check fails. Session 2 writes
    // and commits done.txt, then reports: the check passes.
    let premature = serde_json::json!({
        "task_id": "1.1",
        "status": "completed",
        "message": "nothing to do",
        "timestamp": "2026-01-01T12:00:00Z",
        "plan_modified": false,
    });
    let mut script = vec![
        Turn::write(format!("{{cwd}}/{STATUS_FILE}"), serde_json::to_string_pretty(&premature).unwrap()),
        Turn::text("Task 1.1 is done."),
    ];
    let first_session_calls = script.len();
    script.extend(good_session("1.1", "done.txt", "done\n", "wrote done.txt"));
    let claude = Claude::new(bin, script, false);
    let r = claude.baton(&p, &["run", "plan.yaml"]);
    let context = format!("{}\n{}", r.all(), claude.describe());
    assert_eq!(r.code(), 0, "{context}");

    // The plan: completed on the second attempt; last_error still tells why the first failed.
    let (status, attempts, last_error) = task_status(&p, "1.1");
    assert_eq!((status, attempts), (Status::Completed, 2), "{context}");
    let last_error = last_error.unwrap_or_default();
    assert!(
        last_error.contains(CHECK) && last_error.contains("exit 3") && last_error.contains("no done.txt yet"),
        "last_error: {last_error}\n{context}"
    );
    assert_eq!(p.plan().task("1.1").unwrap().result_message.as_deref(), Some("wrote done.txt"), "{context}");
    assert_eq!(p.read("done.txt"), "done\n");

    // The attempt records: the check failed after attempt 1 and passed after attempt 2.
    let first = attempt_record(&p, "1.1", 1);
    assert_eq!(first["outcome"], "failed", "{first}");
    assert_eq!(first["attempt"], 1, "{first}");
    assert_eq!(first["checks"][0]["command"], CHECK, "{first}");
    assert_eq!(first["checks"][0]["passed"], false, "{first}");
    assert_eq!(first["checks"][0]["exit"], 3, "{first}");
    assert_eq!(first["checks"][0]["tail"], "no done.txt yet", "{first}");
    assert!(first["message"].as_str().unwrap_or("").contains("no done.txt yet"), "{first}");
    // baton saw that the first session changed nothing and the second committed.
    assert_eq!(first["changed"], false, "{first}");
    let second = attempt_record(&p, "1.1", 2);
    assert_eq!(second["outcome"], "completed", "{second}");
    assert_eq!(second["attempt"], 2, "{second}");
    assert_eq!(second["checks"][0]["passed"], true, "{second}");
    assert_eq!(second["checks"][0]["exit"], 0, "{second}");
    assert_eq!(second["changed"], true, "{second}");

    // The second prompt carries the failure: in baton's prompt file and in what the model got.
    let prompt_path = p.path().join(".baton/logs/plan/1.1/attempt-2.prompt");
    let prompt = std::fs::read_to_string(&prompt_path).unwrap_or_else(|e| panic!("{}: {e}", prompt_path.display()));
    assert!(prompt.contains("## What the last attempt left to fix"), "{prompt}");
    assert!(prompt.contains(CHECK) && prompt.contains("no done.txt yet"), "{prompt}");
    let first_prompt = std::fs::read_to_string(p.path().join(".baton/logs/plan/1.1/attempt-1.prompt")).unwrap_or_default();
    assert!(!first_prompt.contains("What the last attempt left to fix"), "{first_prompt}");

    let calls = claude.server.messages_calls();
    assert_eq!(claude.server.turns_left(), 0, "{context}");
    assert_eq!(calls.len(), first_session_calls + 4, "{context}");
    for call in &calls[..first_session_calls] {
        assert!(!call.user_text().contains("What the last attempt left to fix"), "{}", call.user_text());
    }
    // Every call of the second session (the CLI resends the whole conversation) starts from
    // the prompt with the failure in it.
    for call in &calls[first_session_calls..] {
        let text = call.user_text();
        assert!(text.contains("## What the last attempt left to fix"), "{text}");
        assert!(text.contains(CHECK) && text.contains("no done.txt yet"), "{text}");
    }
    assert!(!p.path().join(STATUS_FILE).exists(), "the status file was left behind");
    assert_eq!(p.repo.status_porcelain(), "", "the run left files in the working tree");
}

#[test]
fn real_cli_takes_the_spending_cap_and_its_cost_and_tokens_reach_the_history() {
    let Some(bin) = real_claude() else { return };
    let p = project(&ONE_TASK.replace("meta:\n", "meta:\n  budget_usd: 5\n"));
    let claude = Claude::new(bin, good_session("1.1", "one.txt", "one\n", "wrote one.txt"), false);
    let r = claude.baton(&p, &["run", "plan.yaml"]);
    let context = format!("{}\n{}", r.all(), claude.describe());
    assert_eq!(r.code(), 0, "the real CLI accepts --max-budget-usd: {context}");
    assert_eq!(task_status(&p, "1.1"), (Status::Completed, 1, None), "{context}");
    let store = baton::store::Store::open_existing(p.path()).unwrap().expect("the history was written");
    let attempts = store.task_attempts("plan.yaml", "1.1").unwrap();
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    let a = &attempts[0];
    assert!(a.cost_usd.is_some_and(|c| c > 0.0), "{a:?}");
    assert!(a.input_tokens.is_some_and(|n| n > 0) && a.output_tokens.is_some_and(|n| n > 0), "{a:?}");
    assert!(a.turns.is_some_and(|n| n > 0), "{a:?}");
    let s = claude.baton(&p, &["status", "plan.yaml"]);
    assert!(s.stdout().contains("of the $5.0000 budget"), "{}", s.stdout());
}

#[test]
fn real_cli_ends_a_session_at_its_spending_cap_which_spends_no_attempt_and_ends_the_run() {
    let Some(bin) = real_claude() else { return };
    // A cap far below what one model call costs: the CLI stops after its first call.
    let p = project(ONE_TASK);
    let claude = Claude::new(bin, good_session("1.1", "one.txt", "one\n", "wrote one.txt"), false);
    let r = claude.baton(&p, &["run", "plan.yaml", "--max-cost", "0.0001"]);
    let context = format!("{}\n{}", r.all(), claude.describe());
    assert_eq!(r.code(), 6, "{context}");
    assert_eq!(claude.server.messages_calls().len(), 1, "the CLI stopped at its cap: {context}");
    assert!(r.stdout().contains("stopped at its spending cap"), "{context}");
    assert!(r.stdout().contains("budget exhausted: spent $0.0"), "{context}");
    // Not the agent's failure: no attempt spent, the task waits for more budget.
    assert_eq!(task_status(&p, "1.1"), (Status::Pending, 0, None), "{context}");
    let rec = attempt_record(&p, "1.1", 1);
    assert_eq!((rec["outcome"].as_str(), rec["attempt"].as_u64()), (Some("capped"), None), "{rec}");
    assert!(rec["message"].as_str().is_some_and(|m| m.contains("Reached maximum budget")), "{rec}");
    assert!(rec["input_tokens"].as_u64().is_some_and(|n| n > 0), "tokens of a session cut short: {rec}");
}
