//! `baton run` end to end with the REAL Gemini CLI (0.61.0, pinned in package.json; `npm ci`),
//! `[agent] kind = "gemini"`, pointed at the testkit's scripted `FakeGeminiServer`. The CLI
//! really runs the scripted tool calls (a file written, a commit, the status file), so these
//! tests check that baton invokes the real CLI right (prompt on stdin, trusted folder, one
//! process) and understands its stream, its tokens and its usage limits.
//!
//! Each test skips, loudly, when the CLI is not installed; under `CI` it fails instead.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use baton::plan::Status;
use baton_testkit::{find_real_gemini, gemini_env, gemini_user_text, run_with_deadline, workspace_root, FakeGeminiServer, GeminiTurn};
use serde_json::Value;

use crate::support::{project, Project, Run, FAST_CONFIG, real_cli, ONE_TASK, REAL_RUN_DEADLINE, STATUS_FILE, real_command, run_real};

fn real_gemini() -> Option<PathBuf> {
    real_cli(find_real_gemini(&workspace_root()), "Gemini CLI")
}

/// The real CLI's side of the test: the server it talks to, and its HOME and TMPDIR.
struct Gemini {
    server: FakeGeminiServer,
    dir: tempfile::TempDir,
}

impl Gemini {
    /// A server with `script`, and `p`'s baton.toml naming the Gemini CLI `bin` as its agent.
    fn new(p: &Project, bin: &Path, script: Vec<GeminiTurn>) -> Gemini {
        p.write(
            "baton.toml",
            &format!("{FAST_CONFIG}\n[agent]\nkind = \"gemini\"\nbinary = {:?}\nmodel = \"gemini-2.5-pro\"\n", bin.display().to_string()),
        );
        p.repo.commit_all("baton.toml: the Gemini CLI");
        Gemini { server: FakeGeminiServer::start(script), dir: tempfile::tempdir().expect("temporary HOME") }
    }

    /// A baton command in the project with the CLI's environment.
    fn command(&self, p: &Project, args: &[&str]) -> Command {
        let mut cmd = real_command(p, args);
        cmd.envs(gemini_env(self.dir.path(), &self.server.base_url()));
        cmd
    }

    /// Runs baton to its end; a run past the deadline fails the test.
    fn baton(&self, p: &Project, args: &[&str]) -> Run {
        run_real(&mut self.command(p, args), args, &|| self.describe())
    }

    /// What the server saw, for failure messages.
    fn describe(&self) -> String {
        let requests: Vec<String> = self.server.requests().iter().map(|r| format!("{} {}", r.method, r.path)).collect();
        format!("Gemini server requests: {requests:?}; turns left: {}", self.server.turns_left())
    }
}

/// One good session of task `id`: write `file` (shell), commit it, write the status file
/// (`write_file`), and end with a short answer.
fn good_session(id: &str, file: &str, message: &str) -> Vec<GeminiTurn> {
    let status = serde_json::json!({"task_id": id, "status": "completed", "message": message, "plan_modified": false});
    vec![
        GeminiTurn::shell(format!("printf 'one\\n' > {file}")),
        GeminiTurn::shell(format!("git add {file} && git commit -qm 'task {id}: {file}'")),
        GeminiTurn::write(format!("{{cwd}}/{STATUS_FILE}"), serde_json::to_string_pretty(&status).unwrap()),
        GeminiTurn::text(format!("Task {id} is done.")),
    ]
}

fn task_status(p: &Project, id: &str) -> (Status, u32, Option<String>) {
    let plan = p.plan();
    let t = plan.task(id).unwrap_or_else(|| panic!("no task {id}"));
    (t.status, t.attempts, t.last_error.clone())
}

fn attempt_record(p: &Project, task: &str, session: u32) -> Value {
    let path = p.record_path(task, session);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}\n{text}", path.display()))
}

#[test]
fn real_gemini_completes_a_task_and_its_tokens_reach_the_history() {
    let Some(bin) = real_gemini() else { return };
    let p = project(ONE_TASK);
    let gemini = Gemini::new(&p, &bin, good_session("1.1", "one.txt", "wrote one.txt"));
    let r = gemini.baton(&p, &["run", "plan.yaml"]);
    let context = format!("{}\n{}", r.all(), gemini.describe());
    assert_eq!(r.code(), 0, "{context}");
    assert_eq!(task_status(&p, "1.1"), (Status::Completed, 1, None), "{context}");
    assert_eq!(p.plan().task("1.1").unwrap().result_message.as_deref(), Some("wrote one.txt"), "{context}");
    assert_eq!(p.read("one.txt"), "one\n");
    // The CLI says no cost and baton.toml has no [prices]: the summary does not pass it off as $0.
    assert!(r.stdout().contains("(and 1 session of unknown cost: set [prices] in baton.toml)"), "{context}");
    let cost = gemini.baton(&p, &["cost", "plan.yaml"]);
    assert!(cost.stdout().contains("1 session of unknown cost not in these figures"), "{}", cost.all());
    let cost: Value = serde_json::from_str(&gemini.baton(&p, &["cost", "plan.yaml", "--json"]).stdout()).unwrap();
    assert_eq!(cost["total"]["unknown_cost_sessions"], 1, "{cost:#}");
    let log = p.repo.log_subjects();
    assert_eq!(log[..2], ["baton: 1.1 completed — One", "task 1.1: one.txt"], "{context}");
    assert!(!p.path().join(STATUS_FILE).exists(), "the status file was left behind");
    assert_eq!(p.repo.status_porcelain(), "", "the run left files in the working tree");

    // Four model calls, no side calls: the model was named (no routing call) and the prompt
    // reached the model on stdin.
    assert_eq!(gemini.server.turns_left(), 0, "{context}");
    let calls = gemini.server.model_calls();
    assert_eq!(calls.len(), 4, "{context}");
    assert_eq!(gemini.server.requests().len(), 4, "{context}");
    assert!(calls[0].path.starts_with("/v1beta/models/gemini-2.5-pro:streamGenerateContent"), "{}", calls[0].path);
    let text = gemini_user_text(&calls[0]);
    assert!(text.contains("Task ID: 1.1\n") && text.contains(&format!("Status file: {STATUS_FILE}")), "{text}");

    let rec = attempt_record(&p, "1.1", 1);
    assert_eq!(rec["outcome"], "completed", "{rec}");
    assert!(rec["session_id"].as_str().is_some_and(|s| !s.is_empty()), "{rec}");

    // Per response 100 prompt tokens (30 cached), 20 output, 5 thinking; four responses.
    let store = baton::store::Store::open_existing(p.path()).unwrap().expect("the history was written");
    let attempts = store.task_attempts("plan.yaml", "1.1").unwrap();
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    let a = &attempts[0];
    assert_eq!((a.input_tokens, a.output_tokens, a.cache_read_tokens), (Some(280), Some(100), Some(120)), "{a:?}");
    let h = gemini.baton(&p, &["history", "--json"]);
    assert_eq!(h.code(), 0, "{}", h.all());
    let v: Value = serde_json::from_str(&h.stdout()).unwrap_or_else(|e| panic!("{e}\n{}", h.stdout()));
    let attempt = &v["runs"][0]["attempts"][0];
    assert_eq!((&attempt["outcome"], &attempt["input_tokens"], &attempt["output_tokens"]), (&"completed".into(), &280.into(), &100.into()), "{v:#}");
}

/// Starts baton in the background, stdout (JSON events) and stderr to files in `dir`.
fn spawn(gemini: &Gemini, p: &Project, args: &[&str], dir: &Path) -> Child {
    let out = std::fs::File::create(dir.join("baton.out")).unwrap();
    let err = std::fs::File::create(dir.join("baton.err")).unwrap();
    gemini.command(p, args).stdout(out).stderr(err).spawn().expect("spawn baton")
}

/// Runs the plan until baton announces its wait for `limit` (the first and only model call),
/// then stops it: the `waiting` event, and the instants between which the CLI met the limit.
fn wait_event_of(limit: GeminiTurn) -> (Project, Value, jiff::Timestamp, jiff::Timestamp, String) {
    let bin = real_gemini().expect("checked by the caller");
    let p = project(ONE_TASK);
    let gemini = Gemini::new(&p, &bin, vec![limit]);
    let logs = tempfile::tempdir().unwrap();
    let before = jiff::Timestamp::now();
    let mut child = spawn(&gemini, &p, &["run", "plan.yaml", "--message-format", "json"], logs.path());
    let read = || std::fs::read_to_string(logs.path().join("baton.out")).unwrap_or_default();
    let waiting = || -> Option<Value> {
        read().lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).find(|e| e["type"] == "waiting")
    };
    let found = baton_testkit::wait_until(REAL_RUN_DEADLINE, || waiting().is_some());
    let after = jiff::Timestamp::now();
    let stop = gemini.baton(&p, &["stop", "plan.yaml"]);
    let mut status = None;
    baton_testkit::wait_until(REAL_RUN_DEADLINE, || {
        status = child.try_wait().ok().flatten();
        status.is_some()
    });
    if status.is_none() {
        let _ = child.kill();
    }
    let err = std::fs::read_to_string(logs.path().join("baton.err")).unwrap_or_default();
    let context = format!("{}\n{err}\n{}\nstop: {}", read(), gemini.describe(), stop.all());
    assert!(found, "no waiting event\n{context}");
    assert!(status.is_some(), "baton did not stop\n{context}");
    assert_eq!(gemini.server.model_calls().len(), 1, "the CLI retried a terminal limit\n{context}");
    // The limit spent no attempt; the record says it was a limit.
    let (task, attempts, _) = task_status(&p, "1.1");
    assert_eq!((task, attempts), (Status::Pending, 0), "{context}");
    let limited = attempt_record(&p, "1.1", 1);
    assert_eq!((&limited["outcome"], &limited["attempt"]), (&"limited".into(), &Value::Null), "{limited}");
    let event = waiting().unwrap();
    assert_eq!((&event["reason"]["kind"], &event["reason"]["known"]), (&"usage_limit".into(), &true.into()), "{event}");
    (p, event, before, after, context)
}

#[test]
fn real_gemini_usage_limit_is_waited_for_until_its_reset_and_spends_no_attempt() {
    if real_gemini().is_none() {
        return;
    }
    // RetryInfo 18000 s: over the CLI's 300 s, so it gives up at once and prints the delay.
    let (_p, event, before, after, context) = wait_event_of(GeminiTurn::retry_after("18000s"));
    assert!(event["reason"]["message"].as_str().is_some_and(|m| m.contains("Resource has been exhausted")), "{event}");
    // The reset is 18000 s after the CLI's answer, which came between `before` and `after`
    // (baton adds its margin of 0.1 s).
    let until: jiff::Timestamp = event["until"].as_str().expect("until").parse().expect("an instant");
    let five_hours = jiff::SignedDuration::from_secs(18000);
    assert!(
        until >= before + five_hours && until <= after + five_hours + jiff::SignedDuration::from_secs(1),
        "waiting until {until}, not 5 h after the limit ({before} … {after})\n{context}"
    );
}

#[test]
fn real_gemini_daily_quota_is_waited_for_until_midnight_pacific() {
    if real_gemini().is_none() {
        return;
    }
    let (_p, event, before, after, context) = wait_event_of(GeminiTurn::daily_quota());
    assert!(event["reason"]["message"].as_str().is_some_and(|m| m.contains("exhausted your daily quota")), "{event}");
    let until: jiff::Timestamp = event["until"].as_str().expect("until").parse().expect("an instant");
    let midnight = |t: jiff::Timestamp| {
        let tz = jiff::tz::TimeZone::get("America/Los_Angeles").expect("the time-zone database");
        let next_day = tz.to_datetime(t).date().tomorrow().unwrap();
        tz.to_ambiguous_timestamp(next_day.to_datetime(jiff::civil::Time::midnight())).compatible().unwrap()
    };
    // Both ends of the run agree on the day, save in the instant around midnight.
    let reset = midnight(before);
    if reset == midnight(after) {
        let margin = until.duration_since(reset);
        assert!(margin >= jiff::SignedDuration::ZERO && margin <= jiff::SignedDuration::from_secs(1), "waiting until {until}, not {reset}\n{context}");
    }
}

#[test]
fn real_gemini_throttling_backs_off_and_the_retry_completes_without_spending_an_attempt() {
    let Some(bin) = real_gemini() else { return };
    let p = project(ONE_TASK);
    // A 429 without details: the CLI would retry it; with `maxAttempts: 1` it gives up at once.
    let mut script = vec![GeminiTurn::throttled()];
    script.extend(good_session("1.1", "one.txt", "wrote one.txt"));
    let gemini = Gemini::new(&p, &bin, script);
    let r = gemini.baton(&p, &["run", "plan.yaml"]);
    let context = format!("{}\n{}", r.all(), gemini.describe());
    assert_eq!(r.code(), 0, "{context}");
    assert_eq!(task_status(&p, "1.1"), (Status::Completed, 1, None), "the throttling spent an attempt\n{context}");
    let throttled = attempt_record(&p, "1.1", 1);
    assert_eq!(throttled["outcome"], "throttled", "{throttled}");
    assert_eq!(throttled["attempt"], Value::Null, "{throttled}");
    assert!(throttled["message"].as_str().unwrap_or("").contains("Resource has been exhausted"), "{throttled}");
    assert_eq!(attempt_record(&p, "1.1", 2)["outcome"], "completed");
    assert!(!r.all().contains("usage limit"), "throttling was taken for a usage limit\n{context}");
    assert_eq!(gemini.server.turns_left(), 0, "{context}");
}

#[test]
fn real_gemini_server_error_costs_an_attempt_and_the_retry_completes() {
    let Some(bin) = real_gemini() else { return };
    let p = project(ONE_TASK);
    let mut script = vec![GeminiTurn::server_error()];
    script.extend(good_session("1.1", "one.txt", "wrote one.txt"));
    let gemini = Gemini::new(&p, &bin, script);
    let r = gemini.baton(&p, &["run", "plan.yaml"]);
    let context = format!("{}\n{}", r.all(), gemini.describe());
    assert_eq!(r.code(), 0, "{context}");
    let (status, attempts, last_error) = task_status(&p, "1.1");
    assert_eq!((status, attempts), (Status::Completed, 2), "{context}");
    let last_error = last_error.unwrap_or_default();
    assert!(last_error.contains("Gemini CLI reported an error") && last_error.contains("500"), "last_error: {last_error}\n{context}");
    let first = attempt_record(&p, "1.1", 1);
    assert_eq!(first["outcome"], "failed", "{first}");
    // The CLI's exit status (500 & 255) is part of the story.
    assert!(first["message"].as_str().unwrap_or("").contains("244"), "{first}");
}

#[test]
fn real_gemini_ended_by_sigterm_goes_back_to_pending_and_its_tool_process_is_gone() {
    let Some(bin) = real_gemini() else { return };
    let p = project(ONE_TASK);
    let marks = tempfile::tempdir().unwrap();
    let pid_file = marks.path().join("tool.pid");
    // The CLI runs the command in a process group of its own, which outlives the CLI's SIGTERM
    // unless baton ends it too.
    let command = format!("sh -c 'echo $$ > {}; exec sleep 300'", pid_file.display());
    let gemini = Gemini::new(&p, &bin, vec![GeminiTurn::shell(command)]);
    let mut child = spawn(&gemini, &p, &["run", "plan.yaml"], marks.path());
    let tool_pid = || std::fs::read_to_string(&pid_file).ok()?.trim().parse::<u32>().ok();
    assert!(baton_testkit::wait_until(REAL_RUN_DEADLINE, || tool_pid().is_some()), "the tool never ran\n{}", gemini.describe());
    let tool = tool_pid().unwrap();
    crate::support::signal(&child, libc::SIGTERM);
    let log = || std::fs::read_to_string(marks.path().join("baton.out")).unwrap_or_default() + &std::fs::read_to_string(marks.path().join("baton.err")).unwrap_or_default();
    assert_eq!(crate::support::wait_exit(&mut child), Some(4), "{}", log());
    crate::support::wait_for("the tool's process to be gone", || !baton_testkit::process_alive(tool));
    assert_eq!(task_status(&p, "1.1"), (Status::Pending, 0, None), "{}", log());
}

#[test]
fn real_gemini_stalled_stream_is_ended_by_the_idle_timeout_and_its_exit_0_is_a_failure() {
    let Some(bin) = real_gemini() else { return };
    // Long enough for a loaded machine to start the next session's node before it says a word.
    let p = project(&ONE_TASK.replace("max_attempts_default: 3", "max_attempts_default: 3\n  idle_timeout_seconds: 10"));
    // The CLI waits on the stalled stream; baton's SIGTERM makes it exit 0 with no result.
    let mut script = vec![GeminiTurn::Stall];
    script.extend(good_session("1.1", "one.txt", "wrote one.txt"));
    let gemini = Gemini::new(&p, &bin, script);
    let r = gemini.baton(&p, &["run", "plan.yaml"]);
    let context = format!("{}\n{}", r.all(), gemini.describe());
    assert_eq!(r.code(), 0, "{context}");
    let (status, attempts, last_error) = task_status(&p, "1.1");
    assert_eq!((status, attempts), (Status::Completed, 2), "{context}");
    assert!(last_error.unwrap_or_default().contains("idle timeout"), "{context}");
    let first = attempt_record(&p, "1.1", 1);
    assert_eq!(first["outcome"], "failed", "{first}");
    assert_eq!(attempt_record(&p, "1.1", 2)["outcome"], "completed");
}

#[test]
fn real_gemini_verbose_shows_tool_calls_and_the_result() {
    let Some(bin) = real_gemini() else { return };
    let p = project(ONE_TASK);
    let gemini = Gemini::new(&p, &bin, good_session("1.1", "one.txt", "wrote one.txt"));
    let r = gemini.baton(&p, &["run", "plan.yaml", "--verbose"]);
    let context = format!("{}\n{}", r.all(), gemini.describe());
    assert_eq!(r.code(), 0, "{context}");
    let out = r.stdout();
    let write = out.lines().find(|l| l.contains("[Tool] Write: ")).unwrap_or_else(|| panic!("no [Tool] Write line\n{context}"));
    assert!(write.contains("task-status.json"), "{write}");
    assert!(out.contains("[Tool] Bash: printf 'one\\n' > one.txt"), "{context}");
    assert!(out.contains("[Init] "), "{context}");
    assert!(out.contains("[Result] 4 turns"), "three tool calls and the answer\n{context}");
}

#[test]
fn real_gemini_without_an_api_key_stops_the_run_at_once_and_says_how_to_fix_it() {
    let Some(bin) = real_gemini() else { return };
    let p = project(ONE_TASK);
    let gemini = Gemini::new(&p, &bin, good_session("1.1", "one.txt", "wrote one.txt"));
    let out = run_with_deadline(gemini.command(&p, &["run", "plan.yaml"]).env_remove("GEMINI_API_KEY"), REAL_RUN_DEADLINE).expect("run baton");
    assert!(!out.timed_out, "{}\n{}", out.stdout, out.stderr);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert_ne!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("the Gemini CLI has no credentials") && all.contains("set GEMINI_API_KEY"), "{all}");
    assert_eq!(task_status(&p, "1.1"), (Status::Pending, 0, None), "a broken set-up spends no attempt\n{all}");
    assert!(gemini.server.requests().is_empty(), "{}", gemini.describe());
}
