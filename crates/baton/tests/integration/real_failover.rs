//! Several agents in one run with the REAL CLIs (Claude Code, Codex, Gemini; pinned in
//! package.json, `npm ci`), each pointed at its own testkit fake server through its
//! `[agents.NAME] env` in baton.toml: failover from a limited Claude to Codex, and tasks that
//! name their agents. The CLIs really run the scripted tool calls (files written, commits made,
//! the status file written), so these tests check baton's roster against the real programs.
//!
//! Each test skips, loudly, when a CLI is not installed; under `CI` it fails instead.

use std::path::{Path, PathBuf};

use baton::plan::Status;
use baton_testkit::{
    claude_env, codex_env, find_real_claude, find_real_codex, find_real_gemini, gemini_env, gemini_user_text, workspace_root,
    CodexTurn, FakeCodexServer, FakeGeminiServer, FakeModelServer, GeminiTurn, Turn,
};
use serde_json::Value;

use crate::support::{project, Project, Run, FAST_CONFIG, real_command, run_real};

const STATUS_FILE: &str = ".claude/plans/task-status.json";

/// Five hours: far beyond `failover_after_minutes`.
const FIVE_HOURS: i64 = 5 * 3600;

/// The real CLI `name` (`claude`, `codex`, `gemini`), or `None` (said loudly) to skip.
fn real(name: &str) -> Option<PathBuf> {
    let root = workspace_root();
    let found = match name {
        "claude" => find_real_claude(&root),
        "codex" => find_real_codex(&root),
        _ => find_real_gemini(&root),
    };
    if found.is_none() {
        // CI installs them (`npm ci`): there, a missing CLI is a broken set-up, not a skip.
        assert!(std::env::var_os("CI").is_none(), "CI is set but the real {name} CLI is not installed (run npm ci)");
        eprintln!("skipped: the real {name} CLI is not installed (run npm ci)");
    }
    found
}

/// A TOML basic string (JSON's escapes are TOML's).
fn toml_str(s: &str) -> String {
    serde_json::to_string(s).expect("a string")
}

/// `[agents.NAME]` of `kind`, its `binary`, an extra line, and `env`.
fn agent_table(name: &str, kind: &str, bin: &Path, extra: &str, env: &[(String, String)]) -> String {
    let env: Vec<String> = env.iter().map(|(k, v)| format!("{k} = {}", toml_str(v))).collect();
    format!("[agents.{name}]\nkind = \"{kind}\"\nbinary = {}\n{extra}env = {{ {} }}\n", toml_str(&bin.display().to_string()), env.join(", "))
}

/// The real Claude Code CLI against its own scripted Messages API, in subscriber mode (so that
/// a usage limit is a usage limit, with its reset).
struct Claude {
    bin: PathBuf,
    server: FakeModelServer,
    home: tempfile::TempDir,
}

impl Claude {
    fn new(bin: PathBuf, script: Vec<Turn>) -> Claude {
        Claude { bin, server: FakeModelServer::start(script), home: tempfile::tempdir().expect("temporary HOME") }
    }

    fn table(&self, name: &str) -> String {
        agent_table(name, "claude", &self.bin, "", &claude_env(self.home.path(), &self.server.base_url(), true))
    }

    fn describe(&self) -> String {
        let requests: Vec<String> = self.server.requests().iter().map(|r| format!("{} {}", r.method, r.path)).collect();
        format!("claude server requests: {requests:?}; turns left: {}", self.server.turns_left())
    }

    /// The prompt text of each Messages call.
    fn texts(&self) -> Vec<String> {
        self.server.messages_calls().iter().map(|c| c.user_text()).collect()
    }
}

/// The real Codex CLI against its own scripted Responses API, with its own CODEX_HOME.
struct Codex {
    bin: PathBuf,
    server: FakeCodexServer,
    home: tempfile::TempDir,
}

impl Codex {
    fn new(bin: PathBuf, script: Vec<CodexTurn>) -> Codex {
        Codex { bin, server: FakeCodexServer::start(script), home: tempfile::tempdir().expect("temporary CODEX_HOME") }
    }

    fn table(&self, name: &str) -> String {
        agent_table(name, "codex", &self.bin, "", &codex_env(self.home.path(), &self.server.base_url()))
    }

    fn describe(&self) -> String {
        let requests: Vec<String> = self.server.requests().iter().map(|r| format!("{} {}", r.method, r.path)).collect();
        format!("codex server requests: {requests:?}; turns left: {}", self.server.turns_left())
    }

    fn texts(&self) -> Vec<String> {
        self.server.responses_calls().iter().map(|c| c.input_text()).collect()
    }
}

/// The real Gemini CLI against its own scripted Gemini API, with its own HOME and TMPDIR.
struct Gemini {
    bin: PathBuf,
    server: FakeGeminiServer,
    dir: tempfile::TempDir,
}

impl Gemini {
    fn new(bin: PathBuf, script: Vec<GeminiTurn>) -> Gemini {
        Gemini { bin, server: FakeGeminiServer::start(script), dir: tempfile::tempdir().expect("temporary HOME") }
    }

    /// A named model: no routing call, so every request is one of the script's.
    fn table(&self, name: &str) -> String {
        agent_table(name, "gemini", &self.bin, "model = \"gemini-2.5-pro\"\n", &gemini_env(self.dir.path(), &self.server.base_url()))
    }

    fn describe(&self) -> String {
        let requests: Vec<String> = self.server.requests().iter().map(|r| format!("{} {}", r.method, r.path)).collect();
        format!("gemini server requests: {requests:?}; turns left: {}", self.server.turns_left())
    }

    fn texts(&self) -> Vec<String> {
        self.server.model_calls().iter().map(gemini_user_text).collect()
    }
}

fn status_json(id: &str, message: &str) -> String {
    serde_json::json!({"task_id": id, "status": "completed", "message": message, "timestamp": "2026-01-01T12:00:00Z", "plan_modified": false})
        .to_string()
}

/// One good Claude session of task `id`: write and commit `file`, write the status file, answer.
fn claude_session(id: &str, file: &str) -> Vec<Turn> {
    vec![
        Turn::write(format!("{{cwd}}/{file}"), format!("{id} by claude\n")),
        Turn::bash(format!("git add {file} && git commit -qm 'task {id}: {file}'")),
        Turn::write(format!("{{cwd}}/{STATUS_FILE}"), status_json(id, &format!("claude wrote {file}"))),
        Turn::text(format!("Task {id} is done.")),
    ]
}

/// One good Codex session of task `id`.
fn codex_session(id: &str, file: &str) -> Vec<CodexTurn> {
    vec![
        CodexTurn::shell(format!("printf '{id} by codex\\n' > {file} && git add {file} && git commit -qm 'task {id}: {file}'")),
        CodexTurn::shell(format!("mkdir -p .claude/plans && printf '%s\\n' '{}' > {STATUS_FILE}", status_json(id, &format!("codex wrote {file}")))),
        CodexTurn::text(format!("Task {id} is done.")),
    ]
}

/// One good Gemini session of task `id`.
fn gemini_session(id: &str, file: &str) -> Vec<GeminiTurn> {
    vec![
        GeminiTurn::shell(format!("printf '{id} by gemini\\n' > {file}")),
        GeminiTurn::shell(format!("git add {file} && git commit -qm 'task {id}: {file}'")),
        GeminiTurn::write(format!("{{cwd}}/{STATUS_FILE}"), status_json(id, &format!("gemini wrote {file}"))),
        GeminiTurn::text(format!("Task {id} is done.")),
    ]
}

/// A plan of one section; each task `(id, file, agent)` writes its file.
fn plan(tasks: &[(&str, &str, Option<&str>)], group: Option<&str>) -> String {
    let mut s = String::from("meta:\n  name: Agents\n  max_attempts_default: 3\nsections:\n- id: s1\n  name: Work\n  tasks:\n");
    for (id, file, agent) in tasks {
        s.push_str(&format!("  - id: '{id}'\n    name: Task {id}\n    status: pending\n    description: 'Write {file}. Files: {file}'\n"));
        if let Some(a) = agent {
            s.push_str(&format!("    agent: {a}\n"));
        }
        if let Some(g) = group {
            s.push_str(&format!("    parallel_group: {g}\n"));
        }
    }
    s
}

fn configure(p: &Project, toml: &str) {
    p.write("baton.toml", &format!("{FAST_CONFIG}\n{toml}"));
    p.repo.commit_all("baton.toml: the agents");
}

/// Runs baton to its end; each agent gets its own key and HOME from baton.toml (the
/// environment starts empty). A run past the deadline fails the test (`servers` says what the
/// fake servers saw).
fn baton(p: &Project, args: &[&str], servers: &dyn Fn() -> String) -> Run {
    run_real(&mut real_command(p, args), args, servers)
}

fn task_status(p: &Project, id: &str) -> (Status, u32, Option<String>) {
    let plan = p.plan();
    let t = plan.task(id).unwrap_or_else(|| panic!("no task {id}"));
    (t.status, t.attempts, t.last_error.clone())
}

/// `baton history --json`: `(task, agent, outcome)` of every session, in order.
fn sessions(p: &Project, servers: &dyn Fn() -> String) -> Vec<(String, String, String)> {
    let h = baton(p, &["history", "plan.yaml", "--json"], servers);
    assert_eq!(h.code(), 0, "{}", h.all());
    let v: Value = serde_json::from_str(&h.stdout()).unwrap_or_else(|e| panic!("{e}\n{}", h.stdout()));
    let mut out = Vec::new();
    for run in v["runs"].as_array().unwrap_or_else(|| panic!("no runs: {v:#}")) {
        for a in run["attempts"].as_array().unwrap_or_else(|| panic!("no attempts: {v:#}")) {
            let s = |k: &str| a[k].as_str().unwrap_or_default().to_owned();
            out.push((s("task"), s("agent"), s("outcome")));
        }
    }
    out
}

/// Which task ids (of `ids`) the prompts a server received name.
fn tasks_seen(texts: &[String], ids: &[&str]) -> Vec<String> {
    let mut seen: Vec<String> = ids.iter().filter(|id| texts.iter().any(|t| t.contains(&format!("Task ID: {id}\n")))).map(|id| id.to_string()).collect();
    seen.dedup();
    seen
}

/// Tasks 1.1 and 1.2 (one.txt, two.txt); `claude-main` the default, whose first call meets a
/// usage limit that resets in five hours; `codex-main` its fallback, scripted to do both tasks.
/// Returns the project, the agents and the reset (epoch seconds).
fn limited_claude_and_codex() -> Option<(Project, Claude, Codex, i64)> {
    let (Some(claude_bin), Some(codex_bin)) = (real("claude"), real("codex")) else { return None };
    let p = project(&plan(&[("1.1", "one.txt", None), ("1.2", "two.txt", None)], None));
    let resets_at = jiff::Timestamp::now().as_second() + FIVE_HOURS;
    // Claude's first call meets the limit; anything more it were asked would be a good session
    // (so a wrong retry shows as Claude doing the work, not as a hang).
    let mut script = vec![Turn::usage_limit(resets_at)];
    script.extend(claude_session("1.1", "one.txt"));
    let claude = Claude::new(claude_bin, script);
    let mut script = codex_session("1.1", "one.txt");
    script.extend(codex_session("1.2", "two.txt"));
    let codex = Codex::new(codex_bin, script);
    configure(
        &p,
        &format!("[agent]\ndefault = \"claude-main\"\nfallback = [\"codex-main\"]\n{}{}", claude.table("claude-main"), codex.table("codex-main")),
    );
    Some((p, claude, codex, resets_at))
}

#[test]
fn a_five_hour_claude_limit_moves_the_plan_to_codex_without_spending_attempts() {
    let Some((p, claude, codex, resets_at)) = limited_claude_and_codex() else { return };
    let servers = || format!("{}\n{}", claude.describe(), codex.describe());

    let r = baton(&p, &["run", "plan.yaml"], &servers);
    let context = format!("{}\n{}", r.all(), servers());
    assert_eq!(r.code(), 0, "{context}");
    assert!(r.all().contains("claude-main hit its usage limit") && r.all().contains("run on codex-main"), "the failover was not told\n{context}");

    // Both tasks done by Codex, one attempt each: the limit spent none.
    for (id, file) in [("1.1", "one.txt"), ("1.2", "two.txt")] {
        assert_eq!(task_status(&p, id), (Status::Completed, 1, None), "{id}\n{context}");
        assert_eq!(p.plan().task(id).unwrap().result_message.as_deref(), Some(format!("codex wrote {file}").as_str()), "{context}");
        assert_eq!(p.read(file), format!("{id} by codex\n"), "{context}");
    }
    let log = p.repo.log_subjects();
    assert_eq!(log[..4], ["baton: 1.2 completed — Task 1.2", "task 1.2: two.txt", "baton: 1.1 completed — Task 1.1", "task 1.1: one.txt"], "{context}");
    assert_eq!(p.repo.status_porcelain(), "", "the run left files in the working tree\n{context}");
    assert!(!p.path().join(STATUS_FILE).exists(), "the status file was left behind");

    // Claude was asked once (the call that met the limit), about 1.1; Codex did both tasks.
    let claude_calls = claude.texts();
    assert_eq!(claude_calls.len(), 1, "{context}");
    assert!(claude_calls[0].contains("Task ID: 1.1\n"), "{}", claude_calls[0]);
    assert_eq!(codex.server.turns_left(), 0, "{context}");
    let codex_calls = codex.texts();
    assert_eq!(codex_calls.len(), 6, "{context}");
    assert!(codex_calls[0].contains("Task ID: 1.1\n") && !codex_calls[0].contains("Task ID: 1.2"), "{}", codex_calls[0]);
    assert!(codex_calls[3].contains("Task ID: 1.2\n") && !codex_calls[3].contains("Task ID: 1.1"), "{}", codex_calls[3]);

    // `status` shows Claude limited until its reset, within a minute of what the server said.
    let s = baton(&p, &["status", "plan.yaml", "--json"], &servers);
    assert_eq!(s.code(), 0, "{}", s.all());
    let j: Value = serde_json::from_str(&s.stdout()).unwrap_or_else(|e| panic!("{e}\n{}", s.stdout()));
    let limits = j["agent_limits"].as_array().unwrap_or_else(|| panic!("no agent_limits: {j:#}"));
    assert_eq!(limits.len(), 1, "{j:#}");
    assert_eq!(limits[0]["agent"], "claude-main", "{j:#}");
    let until: jiff::Timestamp = limits[0]["until"].as_str().expect("until").parse().expect("an instant");
    let late = until.as_second() - resets_at;
    assert!((0..=60).contains(&late), "limited until {until}, the server's reset is {resets_at}\n{j:#}");
    let s = baton(&p, &["status", "plan.yaml"], &servers);
    let line = s
        .stdout()
        .lines()
        .find(|l| l.contains("claude-main: usage limit until "))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no limit line\n{}", s.all()));
    let hhmm = until.to_zoned_datetime(jiff::tz::TimeZone::UTC).strftime("%H:%M UTC").to_string();
    assert!(line.contains(&hhmm), "{line}: expected {hhmm}");

    // The history: Claude's session limited (no attempt), then Codex's sessions completed.
    let got = sessions(&p, &servers);
    let want = [("1.1", "claude-main", "limited"), ("1.1", "codex-main", "completed"), ("1.2", "codex-main", "completed")];
    let want: Vec<(String, String, String)> = want.iter().map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())).collect();
    let mut sorted = got.clone();
    sorted.sort_by_key(|(task, agent, _)| (task.clone(), agent != "claude-main"));
    assert_eq!(sorted, want, "history: {got:?}");

    // A later run, before the reset, sends Claude's tasks to Codex from the start.
    let mut text = p.read("plan.yaml");
    text.push_str("  - id: '1.3'\n    name: Task 1.3\n    status: pending\n    description: 'Write three.txt. Files: three.txt'\n");
    p.write("plan.yaml", &text);
    p.repo.commit_all("task 1.3");
    codex.server.push(codex_session("1.3", "three.txt"));
    let r = baton(&p, &["run", "plan.yaml"], &servers);
    let context = format!("{}\n{}", r.all(), servers());
    assert_eq!(r.code(), 0, "{context}");
    assert!(r.all().contains("claude-main is under a usage limit an earlier run met"), "{context}");
    assert_eq!(task_status(&p, "1.3"), (Status::Completed, 1, None), "{context}");
    assert_eq!(p.read("three.txt"), "1.3 by codex\n", "{context}");
    assert_eq!(claude.texts().len(), 1, "the limited agent was asked again\n{context}");
    assert_eq!(codex.server.turns_left(), 0, "{context}");
}

// The session that met the limit did not wait: baton failed over at once. Its record, the
// task's usage in `status --json` and `baton logs` say no wait (they said ~5 h once).
#[test]
fn a_failover_records_no_wait_for_the_limited_session() {
    let Some((p, claude, codex, _)) = limited_claude_and_codex() else { return };
    let servers = || format!("{}\n{}", claude.describe(), codex.describe());
    let r = baton(&p, &["run", "plan.yaml"], &servers);
    assert_eq!(r.code(), 0, "{}\n{}", r.all(), servers());
    let s = baton(&p, &["status", "plan.yaml", "--json"], &servers);
    let j: Value = serde_json::from_str(&s.stdout()).unwrap_or_else(|e| panic!("{e}\n{}", s.stdout()));
    let task = &j["sections"][0]["tasks"][0];
    assert_eq!(task["id"], "1.1", "{j:#}");
    let waited = task["usage"]["waited_seconds"].as_f64().unwrap_or(0.0);
    assert!(waited < 60.0, "task 1.1 ran on codex-main at once, yet its usage says it waited {waited} s:\n{task:#}");
    let logs = baton(&p, &["logs", "plan.yaml", "1.1", "--attempt", "1"], &servers);
    assert_eq!(logs.code(), 0, "{}", logs.all());
    assert!(!logs.stdout().contains("baton then waited"), "{}", logs.all());
}

// The banner says which table of baton.toml named each agent's binary, and the default agent
// by its name.
#[test]
fn the_banner_says_which_table_named_each_agents_binary() {
    let Some((p, claude, codex, _)) = limited_claude_and_codex() else { return };
    let servers = || format!("{}\n{}", claude.describe(), codex.describe());
    let r = baton(&p, &["run", "plan.yaml"], &servers);
    let out = r.stdout();
    let banner: Vec<&str> = out.lines().take_while(|l| !l.starts_with('▸')).collect();
    let banner = banner.join("\n");
    assert!(!banner.contains("[agent] binary"), "no binary came from [agent]:\n{banner}");
    assert!(banner.contains("[agents.claude-main]") && banner.contains("[agents.codex-main]"), "{banner}");
}

#[test]
fn tasks_that_name_claude_codex_and_gemini_each_run_on_their_own_real_cli() {
    let (Some(claude_bin), Some(codex_bin), Some(gemini_bin)) = (real("claude"), real("codex"), real("gemini")) else { return };
    let ids = ["1.1", "1.2", "1.3"];
    let p = project(&plan(&[("1.1", "one.txt", Some("cc")), ("1.2", "two.txt", Some("cx")), ("1.3", "three.txt", Some("gm"))], None));
    let claude = Claude::new(claude_bin, claude_session("1.1", "one.txt"));
    let codex = Codex::new(codex_bin, codex_session("1.2", "two.txt"));
    let gemini = Gemini::new(gemini_bin, gemini_session("1.3", "three.txt"));
    // The default is Claude; each task names its agent.
    configure(&p, &format!("[agent]\ndefault = \"cc\"\n{}{}{}", claude.table("cc"), codex.table("cx"), gemini.table("gm")));
    let servers = || format!("{}\n{}\n{}", claude.describe(), codex.describe(), gemini.describe());

    let r = baton(&p, &["run", "plan.yaml"], &servers);
    let context = format!("{}\n{}", r.all(), servers());
    assert_eq!(r.code(), 0, "{context}");
    for (id, file, by) in [("1.1", "one.txt", "claude"), ("1.2", "two.txt", "codex"), ("1.3", "three.txt", "gemini")] {
        assert_eq!(task_status(&p, id), (Status::Completed, 1, None), "{id}\n{context}");
        assert_eq!(p.read(file), format!("{id} by {by}\n"), "{context}");
        assert_eq!(p.plan().task(id).unwrap().result_message.as_deref(), Some(format!("{by} wrote {file}").as_str()), "{context}");
    }
    assert_eq!(p.repo.status_porcelain(), "", "the run left files in the working tree\n{context}");

    // Each server heard of its own task only, and served its whole script.
    assert_eq!(tasks_seen(&claude.texts(), &ids), ["1.1"], "{context}");
    assert_eq!(tasks_seen(&codex.texts(), &ids), ["1.2"], "{context}");
    assert_eq!(tasks_seen(&gemini.texts(), &ids), ["1.3"], "{context}");
    assert_eq!((claude.server.turns_left(), codex.server.turns_left(), gemini.server.turns_left()), (0, 0, 0), "{context}");
    assert_eq!((claude.texts().len(), codex.texts().len(), gemini.texts().len()), (4, 3, 4), "{context}");

    let mut got = sessions(&p, &servers);
    got.sort();
    let want: Vec<(String, String, String)> =
        [("1.1", "cc"), ("1.2", "cx"), ("1.3", "gm")].iter().map(|(t, a)| (t.to_string(), a.to_string(), "completed".to_string())).collect();
    assert_eq!(got, want, "{context}");
}

#[test]
fn a_parallel_run_whose_default_is_limited_runs_every_task_on_the_fallback() {
    let (Some(claude_bin), Some(codex_bin)) = (real("claude"), real("codex")) else { return };
    let ids = ["a", "b"];
    let p = project(&plan(&[("a", "a.txt", None), ("b", "b.txt", None)], Some("g")));
    let resets_at = jiff::Timestamp::now().as_second() + FIVE_HOURS;
    // Both tasks may start on Claude before either hears of the limit: each meets it.
    let claude = Claude::new(claude_bin, vec![Turn::usage_limit(resets_at), Turn::usage_limit(resets_at)]);
    // The two Codex sessions run at once: each call is answered from its task's script.
    let codex = Codex {
        bin: codex_bin,
        server: FakeCodexServer::start_by_task([], ids.iter().map(|id| (id.to_string(), codex_session(id, &format!("{id}.txt"))))),
        home: tempfile::tempdir().expect("temporary CODEX_HOME"),
    };
    configure(
        &p,
        &format!("[agent]\ndefault = \"claude-main\"\nfallback = [\"codex-main\"]\n{}{}", claude.table("claude-main"), codex.table("codex-main")),
    );
    let servers = || format!("{}\n{}", claude.describe(), codex.describe());

    let r = baton(&p, &["run", "plan.yaml", "--parallel", "--jobs", "2"], &servers);
    let context = format!("{}\n{}", r.all(), servers());
    assert_eq!(r.code(), 0, "{context}");
    assert!(r.all().contains("claude-main hit its usage limit"), "the failover was not told\n{context}");
    for id in ids {
        assert_eq!(task_status(&p, id), (Status::Completed, 1, None), "{id}: the limit spent an attempt\n{context}");
        assert_eq!(p.read(&format!("{id}.txt")), format!("{id} by codex\n"), "{context}");
    }
    assert_eq!(p.repo.status_porcelain(), "", "the run left files in the working tree\n{context}");

    // Claude met the limit once or twice (once per task that started on it), never more.
    let claude_calls = claude.texts();
    assert!((1..=2).contains(&claude_calls.len()), "{context}");
    // Codex did both tasks, each in its own worktree, its calls naming only its own task.
    assert_eq!(codex.server.turns_left(), 0, "{context}");
    let calls = codex.server.responses_calls();
    assert_eq!(calls.len(), 6, "{context}");
    let mut cwds = Vec::new();
    for call in &calls {
        let seen = tasks_seen(&[call.input_text()], &ids);
        assert_eq!(seen.len(), 1, "a call named {seen:?}\n{context}");
        cwds.push((seen[0].clone(), call.codex_cwd().unwrap_or_default()));
    }
    cwds.sort();
    cwds.dedup();
    assert_eq!(cwds.len(), 2, "each task in one working copy: {cwds:?}");
    assert_ne!(cwds[0].1, cwds[1].1, "the tasks shared a working copy: {cwds:?}");

    // The history: Claude's sessions limited, Codex's completed, one per task.
    let got = sessions(&p, &servers);
    let limited: Vec<_> = got.iter().filter(|(_, agent, _)| agent == "claude-main").collect();
    assert_eq!(limited.len(), claude_calls.len(), "history: {got:?}");
    assert!(limited.iter().all(|(_, _, outcome)| outcome == "limited"), "history: {got:?}");
    let mut done: Vec<_> = got.iter().filter(|(_, agent, _)| agent != "claude-main").cloned().collect();
    done.sort();
    let want: Vec<(String, String, String)> = ids.iter().map(|id| (id.to_string(), "codex-main".to_string(), "completed".to_string())).collect();
    assert_eq!(done, want, "history: {got:?}");
    let s = baton(&p, &["status", "plan.yaml"], &servers);
    assert!(s.stdout().contains("claude-main: usage limit until "), "{}", s.all());
}

#[test]
fn limits_of_codex_then_gemini_pass_the_plan_down_the_fallback_list_to_claude() {
    let (Some(claude_bin), Some(codex_bin), Some(gemini_bin)) = (real("claude"), real("codex"), real("gemini")) else { return };
    let ids = ["1.1", "1.2"];
    let p = project(&plan(&[("1.1", "one.txt", None), ("1.2", "two.txt", None)], None));
    let before = jiff::Timestamp::now().as_second();
    let codex_resets_at = before + FIVE_HOURS;
    // The default (Codex) meets its usage limit; the first fallback (Gemini) its quota, retry in
    // five hours; the second fallback (Claude) does both tasks. Each limited server would do the
    // work if asked again, so a wrong retry shows as that agent doing it.
    let mut script = vec![CodexTurn::usage_limit(codex_resets_at)];
    script.extend(codex_session("1.1", "one.txt"));
    let codex = Codex::new(codex_bin, script);
    let mut script = vec![GeminiTurn::retry_after("18000s")];
    script.extend(gemini_session("1.1", "one.txt"));
    let gemini = Gemini::new(gemini_bin, script);
    let mut script = claude_session("1.1", "one.txt");
    script.extend(claude_session("1.2", "two.txt"));
    let claude = Claude::new(claude_bin, script);
    configure(
        &p,
        &format!("[agent]\ndefault = \"cx\"\nfallback = [\"gm\", \"cc\"]\n{}{}{}", codex.table("cx"), gemini.table("gm"), claude.table("cc")),
    );
    let servers = || format!("{}\n{}\n{}", codex.describe(), gemini.describe(), claude.describe());

    let r = baton(&p, &["run", "plan.yaml", "--message-format", "json"], &servers);
    let after = jiff::Timestamp::now().as_second();
    let context = format!("{}\n{}", r.all(), servers());
    assert_eq!(r.code(), 0, "{context}");
    // The events: 1.1 fails over from cx to gm, then from gm to cc; every attempt names its agent.
    let events: Vec<Value> = r.stdout().lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let of = |e: &Value, k: &str| e[k].as_str().unwrap_or_default().to_owned();
    let failovers: Vec<(String, String, String)> =
        events.iter().filter(|e| e["note"] == "failover").map(|e| (of(e, "task"), of(e, "from"), of(e, "to"))).collect();
    let want: Vec<(String, String, String)> =
        [("1.1", "cx", "gm"), ("1.1", "gm", "cc")].iter().map(|(t, f, to)| (t.to_string(), f.to_string(), to.to_string())).collect();
    assert_eq!(failovers, want, "{context}");
    for e in events.iter().filter(|e| e["note"] == "failover") {
        assert_eq!(e["reason"]["kind"], "usage_limit", "{e}");
    }
    let started: Vec<(String, String)> = events.iter().filter(|e| e["type"] == "attempt_started").map(|e| (of(e, "task"), of(e, "agent"))).collect();
    let want: Vec<(String, String)> = [("1.1", "cx"), ("1.1", "gm"), ("1.1", "cc"), ("1.2", "cc")].iter().map(|(t, a)| (t.to_string(), a.to_string())).collect();
    assert_eq!(started, want, "{context}");
    for (id, file) in [("1.1", "one.txt"), ("1.2", "two.txt")] {
        assert_eq!(task_status(&p, id), (Status::Completed, 1, None), "{id}: a limit spent an attempt\n{context}");
        assert_eq!(p.read(file), format!("{id} by claude\n"), "{context}");
    }
    // Codex and Gemini were each asked once, about 1.1; Claude did both tasks.
    assert_eq!(codex.texts().len(), 1, "{context}");
    assert_eq!(tasks_seen(&codex.texts(), &ids), ["1.1"], "{context}");
    assert_eq!(gemini.texts().len(), 1, "{context}");
    assert_eq!(tasks_seen(&gemini.texts(), &ids), ["1.1"], "{context}");
    assert_eq!(claude.server.turns_left(), 0, "{context}");
    assert_eq!(tasks_seen(&claude.texts(), &ids), ["1.1", "1.2"], "{context}");

    // Both limits are known, each with its own reset.
    let s = baton(&p, &["status", "plan.yaml", "--json"], &servers);
    let j: Value = serde_json::from_str(&s.stdout()).unwrap_or_else(|e| panic!("{e}\n{}", s.stdout()));
    let limits = j["agent_limits"].as_array().unwrap_or_else(|| panic!("no agent_limits: {j:#}"));
    let until = |agent: &str| -> i64 {
        let l = limits.iter().find(|l| l["agent"] == agent).unwrap_or_else(|| panic!("{agent} is not limited: {j:#}"));
        l["until"].as_str().expect("until").parse::<jiff::Timestamp>().expect("an instant").as_second()
    };
    assert_eq!(limits.len(), 2, "{j:#}");
    let late = until("cx") - codex_resets_at;
    assert!((0..=60).contains(&late), "cx limited until {}, its server said {codex_resets_at}\n{j:#}", until("cx"));
    let gm = until("gm");
    assert!((before + FIVE_HOURS..=after + FIVE_HOURS + 60).contains(&gm), "gm limited until {gm}: not five hours after its answer\n{j:#}");

    let mut got = sessions(&p, &servers);
    got.sort();
    let want: Vec<(String, String, String)> = [("1.1", "cc", "completed"), ("1.1", "cx", "limited"), ("1.1", "gm", "limited"), ("1.2", "cc", "completed")]
        .iter()
        .map(|(t, a, o)| (t.to_string(), a.to_string(), o.to_string()))
        .collect();
    assert_eq!(got, want, "{context}");
}

#[test]
fn the_fallback_runs_with_its_own_model_not_the_plans() {
    let (Some(claude_bin), Some(codex_bin)) = (real("claude"), real("codex")) else { return };
    let p = project(&plan(&[("1.1", "one.txt", None)], None).replace("  max_attempts_default: 3\n", "  max_attempts_default: 3\n  model: opus\n"));
    assert_eq!(p.plan().meta.model.as_deref(), Some("opus"), "the plan did not parse as meant");
    let claude = Claude::new(claude_bin, vec![Turn::usage_limit(jiff::Timestamp::now().as_second() + FIVE_HOURS)]);
    let codex = Codex::new(codex_bin, codex_session("1.1", "one.txt"));
    let codex_table = codex.table("codex-main").replace("kind = \"codex\"\n", "kind = \"codex\"\nmodel = \"gpt-fallback\"\n");
    configure(&p, &format!("[agent]\ndefault = \"claude-main\"\nfallback = [\"codex-main\"]\n{}{codex_table}", claude.table("claude-main")));
    let servers = || format!("{}\n{}", claude.describe(), codex.describe());

    let r = baton(&p, &["run", "plan.yaml"], &servers);
    let context = format!("{}\n{}", r.all(), servers());
    assert_eq!(r.code(), 0, "{context}");
    assert_eq!(task_status(&p, "1.1"), (Status::Completed, 1, None), "{context}");
    // Claude was asked with the plan's model; Codex with its own.
    let claude_calls = claude.server.messages_calls();
    assert_eq!(claude_calls.len(), 1, "{context}");
    let asked = claude_calls[0].body["model"].as_str().unwrap_or_default().to_owned();
    assert!(asked.contains("opus"), "Claude was asked for {asked:?}, not the plan's opus\n{context}");
    let models: Vec<String> = codex.server.responses_calls().iter().map(|c| c.body["model"].as_str().unwrap_or_default().to_owned()).collect();
    assert_eq!(models, ["gpt-fallback"; 3], "{context}");
}
