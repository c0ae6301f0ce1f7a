//! `fake-claude`: a scripted stand-in for the Claude Code CLI in baton's integration tests.
//!
//! It takes the real CLI's command line (`--dangerously-skip-permissions`, `-p`/`--print`,
//! `--output-format stream-json|json|text`, `--verbose`, `--model M`, `--agent NAME`,
//! `--version`; unknown flags are ignored, `--agent` only shows in the logged `argv`), prints the real CLI's stream-json shapes (one JSON object per line,
//! flushed per line), and acts out a *scenario*: per task and attempt, which files to write,
//! what to commit, what status file to leave, and how to end (normally, with a usage limit,
//! crashing, or hanging with a grandchild process).
//!
//! # The prompt
//!
//! The prompt is the first positional argument that contains `Task ID:` (else the first
//! positional); without a positional argument it is read from stdin, as the real CLI does in
//! print mode (an empty stdin is the real CLI's error). fake-claude reads three lines from it, each anywhere in the prompt, leading
//! whitespace and Markdown list markers / bold allowed:
//!
//! ```text
//! Task ID: 1.1
//! Status file: .claude/plans/task-status.json      (relative to the working directory, or absolute)
//! Plan file: plan.yaml                              (same)
//! ```
//!
//! # Environment
//!
//! - `BATON_FAKE_SCENARIO`: path of the scenario file (JSON). Unset: every attempt completes.
//! - `BATON_FAKE_STATE`: a directory (created if missing) for per-task attempt counters
//!   (`<task>.attempts`) and the invocation log `invocations.jsonl`: one JSON object per run with
//!   `argv`, `cwd`, `task_id`, `attempt`, `pid`, `pgid`, `IS_SANDBOX` (`null` if unset),
//!   `prompt`, `model`. Unset: every run is attempt 1 and nothing is logged.
//! - `BATON_FAKE_MAX_HANG_SECS`: how long a hanging run (and its grandchild) lives at most before
//!   giving up by itself (default 600), so a test that fails to kill it leaks nothing for long.
//!
//! # Scenario format
//!
//! ```json
//! {"default": [STEP, ...], "tasks": {"1.1": [STEP, STEP, ...], "2": [STEP]}}
//! ```
//!
//! Attempt *n* of a task uses STEP *n* (1-based; the last step repeats). Tasks not listed use
//! `default`; without `default` a run completes. A single STEP object may stand in for a
//! one-element list. A STEP is an object; unknown keys are an error (exit 2), to catch typos.
//! Its fields, all optional, take effect in this order:
//!
//! | field | effect |
//! |---|---|
//! | `root_refusal: true` | if `IS_SANDBOX` is not `"1"`: print the real CLI's refusal (`--dangerously-skip-permissions cannot be used with root/sudo privileges for security reasons`) to stderr and exit 1 before any output |
//! | `mark: ["/abs/path", ...]` | first create these (empty) files: with `wait_for`, a barrier between agents |
//! | `wait_for: ["/abs/path", ...]` | first wait until every path exists (polled every 10 ms), so tests order agents by conditions, not by sleeps; gives up after `BATON_FAKE_MAX_HANG_SECS` (exit 2) |
//! | `api_retry_ms: M` | a `system/api_retry` event announcing a retry in M ms (`error_status` 529), then M ms of silence, as the CLI does before retrying a request |
//! | `finish_on_sigterm: true` | wait (up to the hang limit, printing nothing) for SIGTERM, then carry on to the end of the step — as the real CLI does when SIGTERM ends one of its tools |
//! | `events: N`, `interval_ms: M` | N assistant events (alternately text and a Bash `tool_use` with its `tool_result`), M ms apart |
//! | `daemons: true` | like Bash tool calls, each shell in a process group of its own (as the real CLI runs tools), start a `setsid sh -c 'sleep N & wait'` daemon and `nohup sleep N &` (N = the hang limit below), both orphaned at once; their pids go to `$BATON_FAKE_STATE/<task>-<attempt>.setsid.pid` (the daemon's shell), `….setsid-child.pid` (its sleep) and `….nohup.pid` |
//! | `await_file: "name"` | write our pid to `….agent.pid`, then wait (up to the hang limit) until `$BATON_FAKE_STATE/name` exists |
//! | `write: {"rel/path": "content"}` | write files relative to the working directory (parents created), each shown as a `Write` tool_use with `input.file_path` (absolute) |
//! | `shell: "cmd"` | run `sh -c cmd` in the working directory (delete, rename, chmod, symlink…), shown as a `Bash` tool_use; a failing command is a tool error, not a crash |
//! | `commit: "msg"` | `git add -A` and `git commit -q -m msg`, shown as a `Bash` tool_use |
//! | `plan_append: "yaml"` | append the text to the plan file (`Edit` tool_use) |
//! | `plan_replace: ["old", "new"]` | replace every `old` with `new` in the plan file (`Edit` tool_use) |
//! | `crash: true` | print `fake-claude: crashed (scripted)` to stderr and exit 2: no status file, no result |
//! | `status: "completed"\|"failed"\|"skipped"\|"none"\|"malformed"\|"wrong_id"` | the status file: `none` writes nothing, `malformed` writes `{not json`, `wrong_id` uses task_id `"nope"`. Default `completed`, but `none` when the step has `limit`, `throttle`, `hang` or `hang_streaming` |
//! | `message: "text"` | the status file's `message` (default `did it`) |
//! | `plan_modified: bool` | the status file's `plan_modified` (default false) |
//! | `status_json: <JSON>` | the status file's content instead of the task status object: a JSON string is written as it is (garbage too), any other value as JSON — e.g. a reviewer's `{"task_id": "1", "verdict": "FAIL", "findings": ["no tests"]}`. With `status_in_result`, it goes in the final answer instead. Needs a `status` other than `none` (the default `completed` will do) |
//! | `status_in_result: true` | write no file; put the status JSON in the final `result` text instead (prose, then a ```` ```json ```` fence) |
//! | `result_text: "text"` | the final `result` text (default `Done: <message>`) |
//! | `limit: "You've hit your limit · resets 6pm (America/Toronto)"` | end like a usage limit: a synthetic assistant message (`model: "<synthetic>"`) with the text, then a result with `subtype: success`, `is_error: true`, `api_error_status: 429`, `terminal_reason: api_error`, `result` = the text; exit 1 |
//! | `limit_resets_at: epoch_s` | with `limit`: first a `rate_limit_event` (`status: rejected`, `resetsAt`) |
//! | `limit_resets_in: secs` | the same, with `resetsAt` = the moment of the limit + secs; the instant used is written to `$BATON_FAKE_STATE/<task>-<attempt>.resets_at` (epoch seconds) |
//! | `throttle: "API Error: Server is temporarily limiting requests (not your usage limit) · Rate limited"` | the same ending with that text (server-side throttling); exit 1 |
//! | `hang: true` | spawn a grandchild (`sh -c 'exec sleep N'`, same process group), write its pid to `$BATON_FAKE_STATE/<task>-<attempt>.grandchild.pid` and our own to `….agent.pid`, then print nothing more and sleep until killed |
//! | `hang_streaming: true` | the same, but print an assistant text event every 200 ms (only a total timeout ends it) |
//! | `exit: code` | exit code after a normal result (default 0; a `failed` status still exits 0, as the real CLI does) |
//! | `cost: usd` | `total_cost_usd` of the result (default 0.01) |
//! | `turns: n` | `num_turns` of the result (default: the number of tool calls + 1) |
//!
//! Task ids in file names keep `[A-Za-z0-9._-]`; other characters become `_`.
//!
//! # Signals
//!
//! SIGTERM and SIGKILL take their default action (the real CLI: 143 without a result event,
//! 137). Callers see the signal in the exit status, not an exit code.

use std::collections::hash_map::RandomState;
use std::fs::{self, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

const VERSION: &str = "2.1.332";
const DEFAULT_MODEL: &str = "claude-opus-5-5";
const ROOT_REFUSAL: &str =
    "--dangerously-skip-permissions cannot be used with root/sudo privileges for security reasons";
const DEFAULT_MAX_HANG_SECS: u64 = 600;
const STREAMING_INTERVAL: Duration = Duration::from_millis(200);

/// Flags of the real CLI that take a value; any other `--flag` is taken as a switch.
const VALUE_FLAGS: &[&str] = &[
    "--model",
    "--agent",
    "--output-format",
    "--input-format",
    "--max-budget-usd",
    "--json-schema",
    "--fallback-model",
    "--effort",
    "--session-id",
    "--append-system-prompt",
    "--system-prompt",
    "--permission-mode",
    "--max-turns",
    "--settings",
    "--setting-sources",
    "--mcp-config",
    "--allowedTools",
    "--allowed-tools",
    "--disallowedTools",
    "--disallowed-tools",
    "--add-dir",
    "--agents",
    "--resume",
    "-r",
    "--debug-file",
    "--permission-prompt-tool",
];

fn main() -> ExitCode {
    match run() {
        Ok(code) => ExitCode::from(code),
        Err(Failure::Usage(message)) => {
            eprintln!("{message}");
            ExitCode::from(1)
        }
        Err(Failure::Harness(message)) => {
            eprintln!("fake-claude: {message}");
            ExitCode::from(2)
        }
    }
}

enum Failure {
    /// What the real CLI would also refuse (exit 1, its own wording).
    Usage(String),
    /// A broken scenario or environment: the test itself is wrong (exit 2).
    Harness(String),
}

fn harness(message: impl Into<String>) -> Failure {
    Failure::Harness(message.into())
}

#[derive(Default)]
struct Args {
    print: bool,
    verbose: bool,
    version: bool,
    output_format: Option<String>,
    model: Option<String>,
    positionals: Vec<String>,
}

fn parse_args(argv: &[String]) -> Args {
    let mut args = Args::default();
    let mut iter = argv.iter();
    while let Some(arg) = iter.next() {
        if arg == "--" {
            args.positionals.extend(iter.by_ref().cloned());
            break;
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag, Some(value.to_owned())),
            _ => (arg.as_str(), None),
        };
        if !flag.starts_with('-') || flag == "-" {
            args.positionals.push(arg.clone());
            continue;
        }
        let value = if VALUE_FLAGS.contains(&flag) {
            inline.or_else(|| iter.next().cloned())
        } else {
            None
        };
        match flag {
            "-p" | "--print" => args.print = true,
            "--verbose" => args.verbose = true,
            "-v" | "--version" => args.version = true,
            "--output-format" => args.output_format = value,
            "--model" => args.model = value,
            _ => {}
        }
    }
    args
}

/// What the prompt tells fake-claude.
struct PromptFacts {
    task_id: Option<String>,
    status_file: Option<String>,
    plan_file: Option<String>,
}

fn prompt_field(prompt: &str, label: &str) -> Option<String> {
    prompt.lines().find_map(|line| {
        let line = line.trim_start().trim_start_matches(['-', '*', '>', ' ']);
        let line = line.strip_prefix("**").unwrap_or(line);
        let rest = line.strip_prefix(label)?;
        let rest = rest.strip_prefix("**").unwrap_or(rest);
        let value = rest.trim().trim_matches('`').trim();
        (!value.is_empty()).then(|| value.to_owned())
    })
}

fn read_prompt(prompt: &str) -> PromptFacts {
    PromptFacts {
        task_id: prompt_field(prompt, "Task ID:"),
        status_file: prompt_field(prompt, "Status file:"),
        plan_file: prompt_field(prompt, "Plan file:"),
    }
}

#[derive(Clone, Debug, Default)]
struct Step {
    root_refusal: bool,
    events: u64,
    interval_ms: u64,
    write: Vec<(String, String)>,
    shell: Option<String>,
    commit: Option<String>,
    plan_append: Option<String>,
    plan_replace: Option<(String, String)>,
    crash: bool,
    status: Option<String>,
    message: Option<String>,
    plan_modified: bool,
    status_in_result: bool,
    status_json: Option<String>,
    result_text: Option<String>,
    limit: Option<String>,
    limit_resets_at: Option<i64>,
    limit_resets_in: Option<u64>,
    api_retry_ms: Option<u64>,
    finish_on_sigterm: bool,
    wait_for: Vec<PathBuf>,
    mark: Vec<PathBuf>,
    throttle: Option<String>,
    hang: bool,
    hang_streaming: bool,
    daemons: bool,
    await_file: Option<String>,
    exit: u8,
    cost: Option<f64>,
    turns: Option<u64>,
}

fn parse_step(value: &Value, at: &str) -> Result<Step, Failure> {
    let object = value
        .as_object()
        .ok_or_else(|| harness(format!("{at}: a step must be an object")))?;
    let mut step = Step::default();
    let text = |key: &str, v: &Value| {
        v.as_str()
            .map(str::to_owned)
            .ok_or_else(|| harness(format!("{at}.{key}: expected a string")))
    };
    let flag = |key: &str, v: &Value| {
        v.as_bool()
            .ok_or_else(|| harness(format!("{at}.{key}: expected true or false")))
    };
    let number = |key: &str, v: &Value| {
        v.as_u64()
            .ok_or_else(|| harness(format!("{at}.{key}: expected a non-negative integer")))
    };
    for (key, v) in object {
        match key.as_str() {
            "root_refusal" => step.root_refusal = flag(key, v)?,
            "events" => step.events = number(key, v)?,
            "interval_ms" => step.interval_ms = number(key, v)?,
            "write" => {
                let files = v.as_object().ok_or_else(|| {
                    harness(format!("{at}.write: expected {{\"path\": \"content\"}}"))
                })?;
                for (path, content) in files {
                    step.write
                        .push((path.clone(), text(&format!("write.{path}"), content)?));
                }
            }
            "shell" => step.shell = Some(text(key, v)?),
            "commit" => step.commit = Some(text(key, v)?),
            "plan_append" => step.plan_append = Some(text(key, v)?),
            "plan_replace" => {
                let pair = v.as_array().filter(|a| a.len() == 2).ok_or_else(|| {
                    harness(format!("{at}.plan_replace: expected [\"old\", \"new\"]"))
                })?;
                step.plan_replace = Some((text(key, &pair[0])?, text(key, &pair[1])?));
            }
            "crash" => step.crash = flag(key, v)?,
            "status" => {
                let status = text(key, v)?;
                const KNOWN: &[&str] = &[
                    "completed",
                    "failed",
                    "skipped",
                    "none",
                    "malformed",
                    "wrong_id",
                ];
                if !KNOWN.contains(&status.as_str()) {
                    return Err(harness(format!(
                        "{at}.status: {status:?} is not one of {KNOWN:?}"
                    )));
                }
                step.status = Some(status);
            }
            "message" => step.message = Some(text(key, v)?),
            "plan_modified" => step.plan_modified = flag(key, v)?,
            "status_in_result" => step.status_in_result = flag(key, v)?,
            // Any JSON: a string is written as it is (garbage included), anything else as JSON.
            "status_json" => step.status_json = Some(v.as_str().map_or_else(|| v.to_string(), str::to_owned)),
            "result_text" => step.result_text = Some(text(key, v)?),
            "limit" => step.limit = Some(text(key, v)?),
            "limit_resets_at" => {
                step.limit_resets_at = Some(v.as_i64().ok_or_else(|| {
                    harness(format!("{at}.limit_resets_at: expected epoch seconds"))
                })?);
            }
            "limit_resets_in" => step.limit_resets_in = Some(number(key, v)?),
            "api_retry_ms" => step.api_retry_ms = Some(number(key, v)?),
            "finish_on_sigterm" => step.finish_on_sigterm = flag(key, v)?,
            "wait_for" => step.wait_for = absolute_paths(at, key, v)?,
            "mark" => step.mark = absolute_paths(at, key, v)?,
            "throttle" => step.throttle = Some(text(key, v)?),
            "hang" => step.hang = flag(key, v)?,
            "hang_streaming" => step.hang_streaming = flag(key, v)?,
            "daemons" => step.daemons = flag(key, v)?,
            "await_file" => step.await_file = Some(text(key, v)?),
            "exit" => {
                step.exit = u8::try_from(number(key, v)?)
                    .map_err(|_| harness(format!("{at}.exit: expected 0..=255")))?;
            }
            "cost" => {
                step.cost = Some(
                    v.as_f64()
                        .ok_or_else(|| harness(format!("{at}.cost: expected a number")))?,
                );
            }
            "turns" => step.turns = Some(number(key, v)?),
            other => return Err(harness(format!("{at}: unknown key {other:?}"))),
        }
    }
    Ok(step)
}

fn absolute_paths(at: &str, key: &str, v: &Value) -> Result<Vec<PathBuf>, Failure> {
    let list = v
        .as_array()
        .ok_or_else(|| harness(format!("{at}.{key}: expected a list of absolute paths")))?;
    let mut paths = Vec::with_capacity(list.len());
    for path in list {
        let path = path
            .as_str()
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .ok_or_else(|| harness(format!("{at}.{key}: {path} is not an absolute path")))?;
        paths.push(path);
    }
    Ok(paths)
}

/// The step for attempt `attempt` (1-based) of `task_id`.
fn select_step(scenario: &Value, task_id: &str, attempt: u64) -> Result<Step, Failure> {
    let (steps, at) = match scenario["tasks"].get(task_id) {
        Some(steps) => (steps, format!("tasks.{task_id}")),
        None => match scenario.get("default") {
            Some(steps) => (steps, "default".to_owned()),
            None => return Ok(Step::default()),
        },
    };
    match steps {
        Value::Array(list) if list.is_empty() => Ok(Step::default()),
        Value::Array(list) => {
            let index = usize::try_from(attempt.saturating_sub(1))
                .unwrap_or(usize::MAX)
                .min(list.len() - 1);
            parse_step(&list[index], &format!("{at}[{index}]"))
        }
        single => parse_step(single, &at),
    }
}

fn load_scenario() -> Result<Value, Failure> {
    let Some(path) = std::env::var_os("BATON_FAKE_SCENARIO") else {
        return Ok(json!({}));
    };
    let path = PathBuf::from(path);
    let text = fs::read_to_string(&path)
        .map_err(|e| harness(format!("cannot read scenario {}: {e}", path.display())))?;
    let scenario: Value = serde_json::from_str(&text)
        .map_err(|e| harness(format!("scenario {} is not JSON: {e}", path.display())))?;
    if !scenario.is_object() || !(scenario["tasks"].is_null() || scenario["tasks"].is_object()) {
        return Err(harness(format!(
            "scenario {}: expected {{\"default\": [...], \"tasks\": {{...}}}}",
            path.display()
        )));
    }
    Ok(scenario)
}

fn file_safe(task_id: &str) -> String {
    task_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Increments and returns the task's attempt counter (1 without a state directory).
fn next_attempt(state: Option<&Path>, task: &str) -> Result<u64, Failure> {
    let Some(state) = state else { return Ok(1) };
    let path = state.join(format!("{}.attempts", file_safe(task)));
    let previous = match fs::read_to_string(&path) {
        Ok(text) => text.trim().parse::<u64>().unwrap_or(0),
        Err(_) => 0,
    };
    let attempt = previous + 1;
    write_atomically(&path, &attempt.to_string())?;
    Ok(attempt)
}

fn write_atomically(path: &Path, content: &str) -> Result<(), Failure> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    fs::write(&tmp, content)
        .and_then(|()| fs::rename(&tmp, path))
        .map_err(|e| harness(format!("cannot write {}: {e}", path.display())))
}

/// Process group id, from /proc (std has no getpgid).
fn own_pgid() -> Option<u64> {
    let stat = fs::read_to_string("/proc/self/stat").ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    // Fields after the name: state, ppid, pgrp, …
    after_name.split_whitespace().nth(2)?.parse().ok()
}

fn random_u64() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.write_u32(std::process::id());
    hasher.finish()
}

fn uuid() -> String {
    let (a, b) = (random_u64(), random_u64());
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        b >> 52,
        b & 0xffff_ffff_ffff
    )
}

/// Now as RFC 3339 UTC with milliseconds, e.g. `2026-02-01T17:30:00.123Z`.
fn timestamp() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_millis()
    )
}

#[derive(Clone, Copy, PartialEq)]
enum Format {
    StreamJson,
    Json,
    Text,
}

/// Prints events the way the real CLI does for the chosen output format.
struct Out {
    format: Format,
    session_id: String,
    model: String,
    cwd: PathBuf,
    tool_calls: u64,
    started: Instant,
}

impl Out {
    fn emit(&self, event: &Value) {
        if self.format == Format::StreamJson {
            self.line(&event.to_string());
        }
    }

    fn line(&self, line: &str) {
        let mut stdout = std::io::stdout().lock();
        // A closed pipe means the reader is gone; the scenario goes on regardless.
        let _ = writeln!(stdout, "{line}");
        let _ = stdout.flush();
    }

    fn init(&self) {
        self.emit(&json!({
            "type": "system", "subtype": "init", "cwd": self.cwd, "session_id": self.session_id,
            "tools": ["Task", "Bash", "Edit", "Read", "Write", "WebFetch", "WebSearch"],
            "mcp_servers": [], "model": self.model, "permissionMode": "bypassPermissions",
            "slash_commands": [], "apiKeySource": "ANTHROPIC_API_KEY",
            "claude_code_version": VERSION, "output_style": "default", "agents": [], "skills": [],
            "plugins": [], "uuid": uuid(),
        }));
    }

    fn assistant(&self, block: Value) {
        self.emit(&json!({
            "type": "assistant",
            "message": {
                "id": format!("msg_fake_{:016x}", random_u64()), "type": "message",
                "role": "assistant", "model": self.model, "content": [block],
                "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": 100, "output_tokens": 1,
                    "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
                "context_management": null,
            },
            "parent_tool_use_id": null, "session_id": self.session_id, "uuid": uuid(),
            "timestamp": timestamp(), "request_id": format!("req_fake_{:012x}", random_u64() >> 16),
        }));
    }

    fn text(&self, text: &str) {
        self.assistant(json!({"type": "text", "text": text}));
    }

    /// A tool call and its result, as two events.
    fn tool(&mut self, name: &str, input: Value, result: &str, is_error: bool) {
        self.tool_calls += 1;
        let id = format!("toolu_fake_{:014x}", random_u64() >> 8);
        self.assistant(json!({"type": "tool_use", "id": id, "name": name, "input": input}));
        self.emit(&json!({
            "type": "user",
            "message": {"role": "user", "content": [{"tool_use_id": id, "type": "tool_result",
                "content": result, "is_error": is_error}]},
            "parent_tool_use_id": null, "session_id": self.session_id, "uuid": uuid(),
            "timestamp": timestamp(),
        }));
    }

    fn usage(input: u64, output: u64) -> Value {
        json!({"input_tokens": input, "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0, "output_tokens": output,
            "server_tool_use": {"web_search_requests": 0, "web_fetch_requests": 0},
            "service_tier": "standard"})
    }

    /// The closing `result` event (and, for `json`/`text` output, the only thing printed).
    fn result(&self, fields: Map<String, Value>) {
        let mut event = json!({
            "type": "result", "subtype": "success", "is_error": false,
            "duration_ms": u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "duration_api_ms": 0, "num_turns": self.tool_calls + 1, "result": "",
            "stop_reason": "end_turn", "session_id": self.session_id, "total_cost_usd": 0.01,
            "usage": Out::usage(100 * (self.tool_calls + 1), 20 * (self.tool_calls + 1)),
            "modelUsage": {}, "permission_denials": [], "terminal_reason": "completed",
            "api_error_status": null, "uuid": uuid(),
        });
        if let Some(object) = event.as_object_mut() {
            object.extend(fields);
        }
        match self.format {
            Format::StreamJson | Format::Json => self.line(&event.to_string()),
            Format::Text => self.line(event["result"].as_str().unwrap_or_default()),
        }
    }

    /// The real CLI's ending on an API error it gives up on (usage limit, throttling).
    fn api_error_end(&self, text: &str, api_error: Option<&str>) {
        let message = json!({
            "id": uuid(), "container": null, "model": "<synthetic>", "role": "assistant",
            "stop_reason": "stop_sequence", "stop_sequence": "", "type": "message",
            "usage": Out::usage(0, 0), "content": [{"type": "text", "text": text}],
            "context_management": null,
        });
        let mut event = json!({
            "type": "assistant", "message": message, "parent_tool_use_id": null,
            "session_id": self.session_id, "uuid": uuid(), "timestamp": timestamp(),
            "error": "rate_limit", "request_id": format!("req_fake_{:012x}", random_u64() >> 16),
            "is_api_error_message": true, "api_error_status": 429,
            "api_error_type": "rate_limit_error",
        });
        if let Some(api_error) = api_error {
            event["api_error"] = json!(api_error);
        }
        self.emit(&event);
        let mut fields = Map::new();
        fields.insert("is_error".into(), json!(true));
        fields.insert("api_error_status".into(), json!(429));
        fields.insert("api_error_type".into(), json!("rate_limit_error"));
        fields.insert("terminal_reason".into(), json!("api_error"));
        fields.insert("stop_reason".into(), json!("stop_sequence"));
        fields.insert("total_cost_usd".into(), json!(0));
        fields.insert("result".into(), json!(text));
        if let Some(api_error) = api_error {
            fields.insert("api_error".into(), json!(api_error));
        }
        self.result(fields);
    }
}

fn run() -> Result<u8, Failure> {
    let argv: Vec<String> = std::env::args().collect();
    let args = parse_args(argv.get(1..).unwrap_or_default());
    if args.version {
        println!("{VERSION} (Claude Code)");
        return Ok(0);
    }
    if !args.print {
        return Err(harness("only print mode (-p/--print) is scripted"));
    }
    let format = match args.output_format.as_deref() {
        None | Some("text") => Format::Text,
        Some("json") => Format::Json,
        Some("stream-json") => Format::StreamJson,
        Some(other) => {
            return Err(Failure::Usage(format!(
                "error: option '--output-format <format>' argument '{other}' is invalid. Allowed \
                 choices are text, json, stream-json."
            )))
        }
    };
    if format == Format::StreamJson && !args.verbose {
        return Err(Failure::Usage(
            "Error: When using --print, --output-format=stream-json requires --verbose".into(),
        ));
    }
    let prompt = match args
        .positionals
        .iter()
        .find(|p| p.contains("Task ID:"))
        .or_else(|| args.positionals.first())
    {
        Some(prompt) => prompt.clone(),
        None => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .map_err(|e| harness(format!("cannot read the prompt from stdin: {e}")))?;
            String::from_utf8_lossy(&bytes).into_owned()
        }
    };
    if prompt.trim().is_empty() {
        return Err(Failure::Usage(
            "Error: Input must be provided either through stdin or as a prompt argument \
             when using --print"
                .into(),
        ));
    }
    let facts = read_prompt(&prompt);
    let task_id = facts
        .task_id
        .clone()
        .unwrap_or_else(|| "unknown".to_owned());
    let cwd = std::env::current_dir().map_err(|e| harness(format!("no working directory: {e}")))?;
    let model = args
        .model
        .clone()
        .unwrap_or_else(|| DEFAULT_MODEL.to_owned());

    let scenario = load_scenario()?;
    let state = std::env::var_os("BATON_FAKE_STATE").map(PathBuf::from);
    if let Some(state) = &state {
        fs::create_dir_all(state)
            .map_err(|e| harness(format!("cannot create {}: {e}", state.display())))?;
    }
    let attempt = next_attempt(state.as_deref(), &task_id)?;
    let is_sandbox = std::env::var("IS_SANDBOX").ok();
    if let Some(state) = &state {
        let record = json!({
            "argv": argv, "cwd": cwd, "task_id": facts.task_id, "attempt": attempt,
            "pid": std::process::id(), "pgid": own_pgid(), "IS_SANDBOX": is_sandbox,
            "prompt": prompt, "model": args.model, "time": timestamp(),
        });
        append_line(&state.join("invocations.jsonl"), &record.to_string())?;
    }
    let step = select_step(&scenario, &task_id, attempt)?;

    if step.root_refusal && is_sandbox.as_deref() != Some("1") {
        eprintln!("{ROOT_REFUSAL}");
        return Ok(1);
    }

    let mut out = Out {
        format,
        session_id: uuid(),
        model,
        cwd: cwd.clone(),
        tool_calls: 0,
        started: Instant::now(),
    };
    out.init();

    for path in &step.mark {
        fs::write(path, "")
            .map_err(|e| harness(format!("cannot mark {}: {e}", path.display())))?;
    }
    wait_for(&step.wait_for)?;

    if step.finish_on_sigterm {
        wait_for_sigterm()?;
    }

    if let Some(ms) = step.api_retry_ms {
        out.emit(&json!({
            "type": "system", "subtype": "api_retry", "attempt": 1, "max_retries": 10,
            "retry_delay_ms": ms, "error_status": 529, "error": "overloaded",
            "uuid": uuid(), "session_id": out.session_id,
        }));
        thread::sleep(Duration::from_millis(ms));
    }

    for i in 1..=step.events {
        thread::sleep(Duration::from_millis(step.interval_ms));
        if i % 2 == 1 {
            out.text(&format!(
                "Working on task {task_id}, step {i} of {}.",
                step.events
            ));
        } else {
            out.tool(
                "Bash",
                json!({"command": format!("echo step {i}"), "description": "progress"}),
                &format!("step {i}"),
                false,
            );
        }
    }

    if step.daemons {
        start_daemons(&mut out, state.as_deref(), &task_id, attempt)?;
    }
    if let Some(name) = &step.await_file {
        await_file(state.as_deref(), &task_id, attempt, name)?;
    }

    for (rel, content) in &step.write {
        let path = cwd.join(rel);
        let written = path
            .parent()
            .map_or(Ok(()), fs::create_dir_all)
            .and_then(|()| fs::write(&path, content));
        let (result, is_error) = match written {
            Ok(()) => (
                format!("File created successfully at: {}", path.display()),
                false,
            ),
            Err(e) => (format!("Error writing {}: {e}", path.display()), true),
        };
        out.tool(
            "Write",
            json!({"file_path": path, "content": content}),
            &result,
            is_error,
        );
    }

    if let Some(command) = &step.shell {
        let (result, ok) = match std::process::Command::new("sh")
            .args(["-c", command])
            .current_dir(&cwd)
            .stdin(std::process::Stdio::null())
            .output()
        {
            Ok(o) => (
                format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)),
                o.status.success(),
            ),
            Err(e) => (format!("cannot run sh: {e}"), false),
        };
        out.tool("Bash", json!({"command": command}), &result, !ok);
    }

    if let Some(message) = &step.commit {
        let (result, ok) = commit(&cwd, message);
        let command = format!("git add -A && git commit -q -m {}", shell_quote(message));
        out.tool(
            "Bash",
            json!({"command": command, "description": "Commit the work"}),
            &result,
            !ok,
        );
    }

    if step.plan_append.is_some() || step.plan_replace.is_some() {
        let plan_path = facts
            .plan_file
            .as_deref()
            .map(|p| cwd.join(p))
            .ok_or_else(|| {
                harness("the step edits the plan but the prompt has no 'Plan file:' line")
            })?;
        let mut plan = fs::read_to_string(&plan_path)
            .map_err(|e| harness(format!("cannot read plan {}: {e}", plan_path.display())))?;
        let original = plan.clone();
        if let Some(text) = &step.plan_append {
            if !plan.is_empty() && !plan.ends_with('\n') {
                plan.push('\n');
            }
            plan.push_str(text);
        }
        if let Some((old, new)) = &step.plan_replace {
            if !plan.contains(old.as_str()) {
                return Err(harness(format!(
                    "plan_replace: {old:?} not found in {}",
                    plan_path.display()
                )));
            }
            plan = plan.replace(old.as_str(), new);
        }
        fs::write(&plan_path, &plan)
            .map_err(|e| harness(format!("cannot write plan {}: {e}", plan_path.display())))?;
        out.tool(
            "Edit",
            json!({"file_path": plan_path, "old_string": original, "new_string": plan}),
            &format!("The file {} has been updated.", plan_path.display()),
            false,
        );
    }

    if step.crash {
        eprintln!("fake-claude: crashed (scripted)");
        return Ok(2);
    }

    let ends_abnormally =
        step.limit.is_some() || step.throttle.is_some() || step.hang || step.hang_streaming;
    let status = step
        .status
        .clone()
        .unwrap_or_else(|| if ends_abnormally { "none" } else { "completed" }.to_owned());
    let message = step.message.clone().unwrap_or_else(|| "did it".to_owned());
    let status_json = json!({
        "task_id": if status == "wrong_id" { "nope" } else { task_id.as_str() },
        "status": if status == "wrong_id" { "completed" } else { status.as_str() },
        "message": message, "timestamp": timestamp(), "plan_modified": step.plan_modified,
    });
    let status_json = match &step.status_json {
        Some(verbatim) => Value::String(verbatim.clone()),
        None => status_json,
    };
    let body_of = |json: &Value| match json {
        Value::String(verbatim) => verbatim.clone(),
        other => other.to_string(),
    };
    let mut result_text = step
        .result_text
        .clone()
        .unwrap_or_else(|| format!("Done: {message}"));
    if step.status_in_result {
        if status != "none" {
            let body = if status == "malformed" {
                "{not json".to_owned()
            } else {
                body_of(&status_json)
            };
            result_text = format!(
                "I could not write the status file, so here is the status.\n\n```json\n{body}\n```"
            );
        }
    } else if status != "none" {
        let rel = facts.status_file.as_deref().ok_or_else(|| {
            harness("the step writes a status file but the prompt has no 'Status file:' line")
        })?;
        let path = cwd.join(rel);
        let body = if status == "malformed" {
            "{not json".to_owned()
        } else {
            body_of(&status_json)
        };
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .map_err(|e| harness(format!("cannot create {}: {e}", parent.display())))?;
        }
        fs::write(&path, &body)
            .map_err(|e| harness(format!("cannot write status file {}: {e}", path.display())))?;
        out.tool(
            "Write",
            json!({"file_path": path, "content": body}),
            &format!("File created successfully at: {}", path.display()),
            false,
        );
    }

    if let Some(text) = &step.limit {
        let resets_at = match step.limit_resets_in {
            Some(secs) => {
                let at = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs())
                    .saturating_add(secs) as i64;
                if let Some(state) = &state {
                    let name = format!("{}-{attempt}.resets_at", file_safe(&task_id));
                    write_atomically(&state.join(name), &at.to_string())?;
                }
                Some(at)
            }
            None => step.limit_resets_at,
        };
        if let Some(resets_at) = resets_at {
            out.emit(&json!({
                "type": "rate_limit_event",
                "rate_limit_info": {"status": "rejected", "resetsAt": resets_at,
                    "rateLimitType": "five_hour", "overageStatus": "rejected", "isUsingOverage": false},
                "uuid": uuid(), "session_id": out.session_id,
            }));
        }
        out.api_error_end(text, Some("usage_limit_reached"));
        return Ok(1);
    }
    if let Some(text) = &step.throttle {
        out.api_error_end(text, None);
        return Ok(1);
    }
    if step.hang || step.hang_streaming {
        return hang(
            &out,
            state.as_deref(),
            &task_id,
            attempt,
            step.hang_streaming,
        );
    }

    out.text(&result_text);
    let mut fields = Map::new();
    fields.insert("result".into(), json!(result_text));
    fields.insert("total_cost_usd".into(), json!(step.cost.unwrap_or(0.01)));
    if let Some(turns) = step.turns {
        fields.insert("num_turns".into(), json!(turns));
    }
    out.result(fields);
    Ok(step.exit)
}

static GOT_SIGTERM: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_sigterm(_: libc::c_int) {
    GOT_SIGTERM.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// Catches SIGTERM and waits for it (bounded like a hang); the step then goes on.
fn wait_for_sigterm() -> Result<(), Failure> {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe { libc::signal(libc::SIGTERM, on_sigterm as *const () as libc::sighandler_t) };
    let deadline = Instant::now() + max_hang();
    while !GOT_SIGTERM.load(std::sync::atomic::Ordering::SeqCst) {
        if Instant::now() >= deadline {
            return Err(harness("finish_on_sigterm: no SIGTERM came"));
        }
        thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// Waits until every path exists; a test's ordering barrier. Bounded like a hang, so a test
/// whose barrier never opens fails instead of leaking a process.
fn wait_for(paths: &[PathBuf]) -> Result<(), Failure> {
    if paths.is_empty() {
        return Ok(());
    }
    let deadline = Instant::now() + max_hang();
    while let Some(missing) = paths.iter().find(|p| !p.exists()) {
        if Instant::now() >= deadline {
            return Err(harness(format!(
                "wait_for: {} never appeared",
                missing.display()
            )));
        }
        thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

fn append_line(path: &Path, line: &str) -> Result<(), Failure> {
    // One write of the whole line with O_APPEND: concurrent runs (parallel tasks) do not interleave.
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut file| file.write_all(format!("{line}\n").as_bytes()))
        .map_err(|e| harness(format!("cannot append to {}: {e}", path.display())))
}

fn commit(cwd: &Path, message: &str) -> (String, bool) {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .output()
    };
    let mut transcript = String::new();
    for args in [&["add", "-A"][..], &["commit", "-q", "-m", message][..]] {
        match git(args) {
            Ok(out) => {
                transcript.push_str(&String::from_utf8_lossy(&out.stdout));
                transcript.push_str(&String::from_utf8_lossy(&out.stderr));
                if !out.status.success() {
                    return (
                        format!(
                            "Exit code {}\n{transcript}",
                            out.status.code().unwrap_or(-1)
                        ),
                        false,
                    );
                }
            }
            Err(e) => return (format!("cannot run git: {e}"), false),
        }
    }
    (transcript, true)
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// How long a hang or a barrier lasts at most (`BATON_FAKE_MAX_HANG_SECS`).
fn max_hang() -> Duration {
    let secs = std::env::var("BATON_FAKE_MAX_HANG_SECS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(DEFAULT_MAX_HANG_SECS);
    Duration::from_secs(secs)
}

/// Starts a `setsid` daemon and a `nohup … &` child the way tool calls of the real CLI do: each
/// from a shell in a process group of its own, which exits at once and leaves them orphaned.
fn start_daemons(out: &mut Out, state: Option<&Path>, task: &str, attempt: u64) -> Result<(), Failure> {
    use std::os::unix::process::CommandExt;
    let state = state.ok_or_else(|| harness("daemons: needs BATON_FAKE_STATE for the pid files"))?;
    let secs = max_hang().as_secs();
    let stem = format!("{}-{attempt}", file_safe(task));
    // The daemon is a shell that has a child of its own (recorded by the daemon itself, written
    // atomically), so that a descendant that is not an orphan, in another session, is there too.
    let child_file = state.join(format!("{stem}.setsid-child.pid"));
    let daemon = format!(
        "setsid sh -c 'sleep {secs} & echo $! > \"$1.tmp\" && mv \"$1.tmp\" \"$1\"; wait' sh {} \
         </dev/null >/dev/null 2>&1 & echo $!",
        shell_quote(&child_file.display().to_string())
    );
    let nohup = format!("nohup sleep {secs} </dev/null >/dev/null 2>&1 & echo $!");
    for (kind, command) in [("setsid", daemon), ("nohup", nohup)] {
        let output = Command::new("sh")
            .args(["-c", &command])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .output()
            .map_err(|e| harness(format!("cannot start the {kind} child: {e}")))?;
        let pid = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        if pid.parse::<u32>().is_err() {
            return Err(harness(format!("the {kind} child gave no pid: {pid:?}")));
        }
        write_atomically(&state.join(format!("{stem}.{kind}.pid")), &pid)?;
        out.tool(
            "Bash",
            json!({"command": command, "run_in_background": true}),
            &pid,
            false,
        );
    }
    wait_for(&[child_file])
}

/// Records our pid, then waits until the test creates `name` in the state directory.
fn await_file(state: Option<&Path>, task: &str, attempt: u64, name: &str) -> Result<(), Failure> {
    let state = state.ok_or_else(|| harness("await_file: needs BATON_FAKE_STATE"))?;
    let stem = format!("{}-{attempt}", file_safe(task));
    write_atomically(
        &state.join(format!("{stem}.agent.pid")),
        &std::process::id().to_string(),
    )?;
    wait_for(&[state.join(name)])
}

/// Starts a grandchild in our process group, records both pids, and waits to be killed.
fn hang(
    out: &Out,
    state: Option<&Path>,
    task: &str,
    attempt: u64,
    streaming: bool,
) -> Result<u8, Failure> {
    let max_secs = max_hang().as_secs();
    // Like a Bash tool call still running; `exec` makes the recorded pid the sleeping process.
    let grandchild = Command::new("sh")
        .args(["-c", &format!("exec sleep {max_secs}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| harness(format!("cannot start the grandchild: {e}")))?;
    if let Some(state) = state {
        let stem = format!("{}-{attempt}", file_safe(task));
        // The agent pid last: a test that sees it knows the grandchild's pid file is there too.
        write_atomically(
            &state.join(format!("{stem}.grandchild.pid")),
            &grandchild.id().to_string(),
        )?;
        write_atomically(
            &state.join(format!("{stem}.agent.pid")),
            &std::process::id().to_string(),
        )?;
    }
    let deadline = Instant::now() + Duration::from_secs(max_secs);
    let mut beat = 0u64;
    while Instant::now() < deadline {
        if streaming {
            beat += 1;
            out.text(&format!("Still working ({beat})…"));
            thread::sleep(STREAMING_INTERVAL);
        } else {
            thread::sleep(
                deadline
                    .saturating_duration_since(Instant::now())
                    .min(Duration::from_secs(1)),
            );
        }
    }
    eprintln!("fake-claude: hung for {max_secs}s without being killed; giving up");
    Ok(124)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn parses_the_real_cli_command_line() {
        let args = parse_args(&strings(&[
            "--dangerously-skip-permissions",
            "--print",
            "Task ID: 1.1",
            "--output-format",
            "stream-json",
            "--verbose",
            "--model",
            "opus",
            "--unknown-switch",
        ]));
        assert!(args.print && args.verbose);
        assert_eq!(args.output_format.as_deref(), Some("stream-json"));
        assert_eq!(args.model.as_deref(), Some("opus"));
        assert_eq!(args.positionals, vec!["Task ID: 1.1"]);

        let args = parse_args(&strings(&[
            "-p",
            "--model=m",
            "--output-format=json",
            "hello",
        ]));
        assert_eq!(args.model.as_deref(), Some("m"));
        assert_eq!(args.output_format.as_deref(), Some("json"));
        assert_eq!(args.positionals, vec!["hello"]);
    }

    #[test]
    fn reads_the_prompt_lines() {
        let facts = read_prompt(
            "You are working on a task.\n\nTask ID: 2.1a\n- **Status file:** `.claude/plans/task-status.json`\n  Plan file: plans/p.yaml\n",
        );
        assert_eq!(facts.task_id.as_deref(), Some("2.1a"));
        assert_eq!(
            facts.status_file.as_deref(),
            Some(".claude/plans/task-status.json")
        );
        assert_eq!(facts.plan_file.as_deref(), Some("plans/p.yaml"));
        assert!(read_prompt("nothing here").task_id.is_none());
    }

    #[test]
    fn the_last_step_repeats_and_unlisted_tasks_use_default() {
        let scenario = json!({"default": [{"status": "failed"}],
            "tasks": {"1.1": [{"status": "failed"}, {"message": "second"}]}});
        assert_eq!(
            select_step(&scenario, "1.1", 1)
                .ok()
                .unwrap()
                .status
                .as_deref(),
            Some("failed")
        );
        assert_eq!(
            select_step(&scenario, "1.1", 7)
                .ok()
                .unwrap()
                .message
                .as_deref(),
            Some("second")
        );
        assert_eq!(
            select_step(&scenario, "9", 1)
                .ok()
                .unwrap()
                .status
                .as_deref(),
            Some("failed")
        );
        assert!(select_step(&json!({}), "9", 1)
            .ok()
            .unwrap()
            .status
            .is_none());
        assert!(select_step(&json!({"default": {"stauts": "x"}}), "9", 1).is_err());
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let ts = timestamp();
        assert_eq!(ts.len(), "2026-02-01T17:30:00.123Z".len(), "{ts}");
        assert!(ts.ends_with('Z') && ts.as_bytes()[10] == b'T', "{ts}");
        assert!(ts.as_str() > "2024-01-01");
    }

    #[test]
    fn task_ids_become_safe_file_names() {
        assert_eq!(file_safe("1.1"), "1.1");
        assert_eq!(file_safe("a/b c"), "a_b_c");
    }
}
