//! `baton run` end to end with the REAL Codex CLI (pinned in package.json; `npm ci`), with
//! baton.toml `[agent] kind = "codex"`, pointed at the testkit's scripted `FakeCodexServer`.
//! The CLI really runs the scripted shell commands (files written, commits made, the status
//! file written), so these tests check that baton understands the real CLI: its stream, its
//! tokens, its usage limit.
//!
//! Each test skips, loudly, when the CLI is not installed (and fails when `CI` is set).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::Command;

use baton::plan::Status;
use baton_testkit::{codex_env, find_real_codex, run_with_deadline, workspace_root, CodexTurn, FakeCodexServer, CODEX_INPUT_TOKENS, CODEX_OUTPUT_TOKENS, FAST_CONFIG};
use serde_json::Value;

use crate::support::{project, wait_exit, wait_for, Project, Run, real_cli, ONE_TASK, REAL_RUN_DEADLINE, STATUS_FILE, real_command, run_real};

fn real_codex() -> Option<PathBuf> {
    real_cli(find_real_codex(&workspace_root()), "Codex CLI")
}

/// The real CLI's side of the test: the server it talks to and its own CODEX_HOME.
struct Codex {
    server: FakeCodexServer,
    home: tempfile::TempDir,
}

impl Codex {
    /// The server with `script`, and the project's baton.toml naming the CLI `bin` as the agent.
    fn new(p: &Project, bin: &std::path::Path, script: Vec<CodexTurn>) -> Codex {
        let toml = format!("{FAST_CONFIG}\n[agent]\nkind = \"codex\"\nbinary = \"{}\"\n", bin.display());
        p.write("baton.toml", &toml);
        p.repo.commit_all("codex as the agent");
        Codex { server: FakeCodexServer::start(script), home: tempfile::tempdir().expect("temporary CODEX_HOME") }
    }

    /// A baton command in the project with the CLI's environment.
    fn command(&self, p: &Project, args: &[&str]) -> Command {
        let mut cmd = real_command(p, args);
        cmd.envs(codex_env(self.home.path(), &self.server.base_url()));
        cmd
    }

    fn baton(&self, p: &Project, args: &[&str]) -> Run {
        run_real(&mut self.command(p, args), args, &|| self.describe())
    }

    /// What the server saw, for failure messages.
    fn describe(&self) -> String {
        let requests: Vec<String> = self.server.requests().iter().map(|r| format!("{} {}", r.method, r.path)).collect();
        format!("codex server requests: {requests:?}; turns left: {}", self.server.turns_left())
    }
}

/// One good session of task `id`: write and commit `file`, write the status file, answer.
fn good_session(id: &str, file: &str, message: &str) -> Vec<CodexTurn> {
    let status = serde_json::json!({
        "task_id": id,
        "status": "completed",
        "message": message,
        "timestamp": "2026-01-01T12:00:00Z",
        "plan_modified": false,
    });
    vec![
        CodexTurn::shell(format!("printf '{id}\\n' > {file} && git add {file} && git commit -qm 'task {id}: {file}'")),
        CodexTurn::shell(format!("mkdir -p .claude/plans && printf '%s\\n' '{status}' > {STATUS_FILE}")),
        CodexTurn::text(format!("Task {id} is done.")),
    ]
}

fn attempt_record(p: &Project, task: &str, session: u32) -> Value {
    let path = p.record_path(task, session);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}\n{text}", path.display()))
}

#[test]
fn real_codex_completes_a_task_that_commits_and_reports() {
    let Some(bin) = real_codex() else { return };
    let p = project(ONE_TASK);
    let codex = Codex::new(&p, &bin, good_session("1.1", "one.txt", "wrote one.txt"));
    // Codex reports no cost: baton prices its tokens at the model's [prices].
    let toml = p.read("baton.toml").replace("kind = \"codex\"\n", "kind = \"codex\"\nmodel = \"fake-model\"\n");
    p.write("baton.toml", &format!("{toml}\n[prices.fake-model]\ninput = 2.0\noutput = 10.0\n"));
    p.repo.commit_all("prices");
    let r = codex.baton(&p, &["run", "plan.yaml"]);
    let context = format!("{}\n{}", r.all(), codex.describe());
    assert_eq!(r.code(), 0, "{context}");

    let plan = p.plan();
    let task = plan.task("1.1").expect("task 1.1");
    assert_eq!((task.status, task.attempts, task.last_error.as_deref()), (Status::Completed, 1, None), "{context}");
    assert_eq!(task.result_message.as_deref(), Some("wrote one.txt"), "{context}");
    assert_eq!(p.read("one.txt"), "1.1\n");
    let log = p.repo.log_subjects();
    assert_eq!(log[..2], ["baton: 1.1 completed — One", "task 1.1: one.txt"], "{context}");
    assert!(!p.path().join(STATUS_FILE).exists(), "the status file was left behind");
    assert_eq!(p.repo.status_porcelain(), "", "the run left files in the working tree");

    // Three model calls, the prompt in the first; the CLI ran in the task's checkout.
    let calls = codex.server.responses_calls();
    assert_eq!(calls.len(), 3, "{context}");
    assert_eq!(codex.server.turns_left(), 0, "{context}");
    let text = calls[0].input_text();
    assert!(text.contains("Task ID: 1.1\n") && text.contains(&format!("Status file: {STATUS_FILE}")), "{text}");
    let cwd = calls[0].codex_cwd().map(PathBuf::from).and_then(|d| d.canonicalize().ok());
    assert_eq!(cwd, p.path().canonicalize().ok(), "{context}");

    // The session: its thread id, and the tokens of `turn.completed` (summed over the calls).
    let rec = attempt_record(&p, "1.1", 1);
    assert_eq!(rec["outcome"], "completed", "{rec}");
    assert!(rec["session_id"].as_str().is_some_and(|s| !s.is_empty()), "{rec}");
    let store = baton::store::Store::open_existing(p.path()).unwrap().expect("the history was written");
    let attempts = store.task_attempts("plan.yaml", "1.1").unwrap();
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    let a = &attempts[0];
    assert_eq!(a.input_tokens, Some(3 * CODEX_INPUT_TOKENS as i64), "{a:?}");
    assert_eq!(a.output_tokens, Some(3 * CODEX_OUTPUT_TOKENS as i64), "{a:?}");
    let priced = (3 * CODEX_INPUT_TOKENS) as f64 * 2.0 / 1e6 + (3 * CODEX_OUTPUT_TOKENS) as f64 * 10.0 / 1e6;
    assert!(a.cost_usd.is_some_and(|c| (c - priced).abs() < 1e-9) && a.cost_estimated, "priced at [prices.fake-model]: {a:?}");
    assert_eq!(a.model.as_deref(), Some("fake-model"), "{a:?}");
    let h = codex.baton(&p, &["history", "plan.yaml", "--task", "1.1", "--json"]);
    assert_eq!(h.code(), 0, "{}", h.all());
    let v: Value = serde_json::from_str(&h.stdout()).unwrap_or_else(|e| panic!("{e}\n{}", h.stdout()));
    assert!(v.to_string().contains(&format!("\"input_tokens\":{}", 3 * CODEX_INPUT_TOKENS)), "{v:#}");
}

#[test]
fn real_codex_usage_limit_is_recognised_with_its_reset_and_spends_no_attempt() {
    let Some(bin) = real_codex() else { return };
    let p = project(ONE_TASK);
    let now = jiff::Timestamp::now().as_second();
    let resets_at = now + 5 * 3600;
    let codex = Codex::new(&p, &bin, vec![CodexTurn::usage_limit(resets_at)]);
    let events_path = p.path().join(".git/baton-events.jsonl");
    let out = std::fs::File::create(&events_path).unwrap();
    let err = std::fs::File::create(p.path().join(".git/baton-events.err")).unwrap();
    let mut run = codex.command(&p, &["run", "plan.yaml", "--message-format", "json"]).stdout(out).stderr(err).spawn().expect("spawn baton");

    let read_events = || -> Vec<Value> {
        let file = std::fs::File::open(&events_path).unwrap();
        BufReader::new(file).lines().map_while(Result::ok).filter_map(|l| serde_json::from_str(&l).ok()).collect()
    };
    let is_limit_wait = |e: &Value| e["type"] == "waiting" && e["reason"]["kind"] == "usage_limit";
    let mut ended = None;
    wait_for("the usage-limit wait", || {
        ended = run.try_wait().ok().flatten();
        read_events().iter().any(is_limit_wait) || ended.is_some()
    });
    assert!(ended.is_none(), "baton ended without waiting for the limit: {ended:?}\n{:#?}\n{}", read_events(), codex.describe());
    let stop = codex.baton(&p, &["stop", "plan.yaml"]);
    assert_eq!(stop.code(), 0, "{}", stop.all());
    let code = wait_exit(&mut run);
    let events = read_events();
    let context = format!("{events:#?}\n{}", codex.describe());

    let wait = events.iter().find(|e| is_limit_wait(e)).expect("a usage-limit wait");
    assert_eq!(wait["reason"]["known"], true, "{wait}");
    assert!(wait["reason"]["message"].as_str().is_some_and(|m| m.contains("hit your usage limit")), "{wait}");
    // The CLI prints the reset without its seconds, in local time (TZ=UTC here): baton wakes
    // at the end of that minute plus its small margin — after the server's reset, within a
    // minute of it.
    let until: jiff::Timestamp = wait["until"].as_str().expect("until").parse().expect("an instant");
    let late = until.as_second() - resets_at;
    assert!((0..=60).contains(&late), "woke at {until}, the reset is {resets_at}\n{context}");

    let rec = attempt_record(&p, "1.1", 1);
    assert_eq!(rec["outcome"], "limited", "{rec}");
    assert_eq!(rec["attempt"], Value::Null, "{rec}");
    let plan = p.plan();
    let task = plan.task("1.1").expect("task 1.1");
    assert_eq!((task.status, task.attempts), (Status::Pending, 0), "the limit spent an attempt\n{context}");
    assert_eq!(codex.server.responses_calls().len(), 1, "the CLI does not retry a usage limit\n{context}");
    assert!(code.is_some(), "baton ended by a signal\n{context}");
}

#[test]
fn real_codex_server_error_is_throttling_and_the_retry_completes() {
    let Some(bin) = real_codex() else { return };
    let p = project(ONE_TASK);
    let mut script = vec![CodexTurn::server_error()];
    script.extend(good_session("1.1", "one.txt", "wrote one.txt"));
    let codex = Codex::new(&p, &bin, script);
    let r = codex.baton(&p, &["run", "plan.yaml"]);
    let context = format!("{}\n{}", r.all(), codex.describe());
    assert_eq!(r.code(), 0, "{context}");
    let plan = p.plan();
    let task = plan.task("1.1").expect("task 1.1");
    assert_eq!((task.status, task.attempts), (Status::Completed, 1), "the throttling spent an attempt\n{context}");
    let throttled = attempt_record(&p, "1.1", 1);
    assert_eq!(throttled["outcome"], "throttled", "{throttled}");
    assert_eq!(throttled["attempt"], Value::Null, "{throttled}");
    assert!(throttled["message"].as_str().unwrap_or("").contains("high demand"), "{throttled}");
    assert_eq!(attempt_record(&p, "1.1", 2)["outcome"], "completed");
    assert!(!r.all().contains("usage limit:"), "throttling was taken for a usage limit\n{context}");
    assert_eq!(codex.server.turns_left(), 0, "{context}");
}

#[test]
fn real_codex_without_a_usable_key_stops_the_run_and_spends_no_attempt() {
    let Some(bin) = real_codex() else { return };
    let refused = serde_json::json!({"error": {"message": "Incorrect API key provided: sk-test.", "type": "invalid_request_error", "code": "invalid_api_key"}});
    for (case, script, unset_key, said) in [
        ("the key variable unset", vec![], true, "FAKE_API_KEY"),
        ("the key refused", vec![CodexTurn::error(401, refused)], false, "not logged in, or its API key was refused"),
    ] {
        let p = project(ONE_TASK);
        let codex = Codex::new(&p, &bin, script);
        let mut cmd = codex.command(&p, &["run", "plan.yaml"]);
        if unset_key {
            cmd.env_remove("FAKE_API_KEY");
        }
        let out = run_with_deadline(&mut cmd, REAL_RUN_DEADLINE).expect("run baton");
        let context = format!("{case}:\n{}\n{}\n{}", out.stdout, out.stderr, codex.describe());
        assert!(!out.timed_out, "{context}");
        assert_eq!(out.status.code(), Some(2), "{context}");
        assert!(out.stderr.contains(said), "{context}");
        let plan = p.plan();
        let task = plan.task("1.1").expect("task 1.1");
        assert_eq!((task.status, task.attempts), (Status::Pending, 0), "the attempt was spent\n{context}");
        assert!(codex.server.responses_calls().len() <= 1, "baton retried a systemic failure\n{context}");
    }
}
