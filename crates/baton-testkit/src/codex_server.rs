//! A scripted fake of OpenAI's Responses API, for driving the real Codex CLI (`codex exec`)
//! offline (see docs/research/codex-and-gemini-offline.md, observed with 0.171.0).
//!
//! Each `POST /v1/responses` takes the next [`CodexTurn`] and answers with the SSE the CLI
//! needs: `response.created`, one `response.output_item.done` carrying the whole item, and
//! `response.completed` with `usage` (without it the CLI reports a disconnected stream). Any
//! other path is a 404. Every request is recorded. The HTTP server is the testkit's scripted
//! core (`scripted.rs`: std threads, `Connection: close`), as for [`crate::FakeModelServer`].
//!
//! It must not outlive its test: it stops on drop, and by itself after a deadline.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::model_server::{map_strings, path_without_query, text_of, write_json, Sse};
use crate::scripted::{ScriptedServer, Shared};
use crate::RecordedRequest;

/// The server stops by itself after this long, even if a test forgets it.
const DEFAULT_DEADLINE: Duration = Duration::from_secs(600);
/// Per-request usage reported to the CLI; `turn.completed` sums it over the turn's requests.
pub const CODEX_INPUT_TOKENS: u64 = 100;
pub const CODEX_OUTPUT_TOKENS: u64 = 20;

/// One scripted answer to one `POST /v1/responses`. Strings may contain `{cwd}`, replaced by
/// the directory the CLI names in its environment context (`<cwd>…</cwd>`).
#[derive(Clone, Debug, PartialEq)]
pub enum CodexTurn {
    /// A shell command through the CLI's `exec_command` tool (`/bin/bash -lc <cmd>` in the
    /// working directory); the CLI runs it and sends the next request.
    Shell(String),
    /// A final answer: the turn ends.
    Text(String),
    /// An HTTP error with a JSON body and extra response headers.
    Error { status: u16, body: Value, headers: Vec<(String, String)> },
    /// `response.created`, then silence until the server stops: a stalled stream.
    Stall,
}

impl CodexTurn {
    pub fn shell(command: impl Into<String>) -> CodexTurn {
        CodexTurn::Shell(command.into())
    }

    pub fn text(text: impl Into<String>) -> CodexTurn {
        CodexTurn::Text(text.into())
    }

    /// The account's usage limit: 429 `usage_limit_reached` with the reset in Unix seconds.
    /// The CLI never retries it and ends the turn with `You’ve hit your usage limit. … try
    /// again at <local time>.`
    pub fn usage_limit(resets_at_epoch_s: i64) -> CodexTurn {
        CodexTurn::error(429, json!({"error": {"type": "usage_limit_reached", "plan_type": "plus", "resets_at": resets_at_epoch_s}}))
    }

    /// A usage limit without a reset: `… Try again later.`
    pub fn usage_limit_without_reset() -> CodexTurn {
        CodexTurn::error(429, json!({"error": {"type": "usage_limit_reached"}}))
    }

    /// A 429 of another kind: throttling (`exceeded retry limit, last status: 429 Too Many
    /// Requests`, after the provider's `request_max_retries`).
    pub fn throttled() -> CodexTurn {
        CodexTurn::error(429, json!({"error": {"type": "rate_limit_exceeded", "message": "Rate limit reached"}}))
    }

    /// A 500: `We’re currently experiencing high demand, …`.
    pub fn server_error() -> CodexTurn {
        CodexTurn::error(500, json!({"error": {"type": "server_error", "message": "Internal error"}}))
    }

    pub fn error(status: u16, body: Value) -> CodexTurn {
        CodexTurn::Error { status, body, headers: Vec::new() }
    }
}

impl RecordedRequest {
    /// Whether this is a Responses API call (`POST /v1/responses`).
    pub fn is_responses_call(&self) -> bool {
        self.method == "POST" && path_without_query(&self.path) == "/v1/responses"
    }

    /// All text of a Responses request's `input` items, in order (the developer prompts, the
    /// environment context, the user's prompt, tool outputs).
    pub fn input_text(&self) -> String {
        let mut out = String::new();
        for item in self.body["input"].as_array().into_iter().flatten() {
            out.push_str(&text_of(&item["content"]));
            if let Some(output) = item["output"].as_str() {
                out.push_str(output);
            }
            out.push('\n');
        }
        out
    }

    /// The working directory the Codex CLI names in its environment context (`<cwd>…</cwd>`).
    pub fn codex_cwd(&self) -> Option<String> {
        let text = self.input_text();
        let start = text.find("<cwd>")? + "<cwd>".len();
        let end = text[start..].find("</cwd>")? + start;
        Some(text[start..end].trim().to_owned()).filter(|d| !d.is_empty())
    }
}

/// A scripted Responses API on `127.0.0.1:<random port>`; stops on drop.
pub struct FakeCodexServer {
    /// The turns, each for the task it names (`None`: for any call).
    server: ScriptedServer<(Option<String>, CodexTurn)>,
}

impl FakeCodexServer {
    /// Starts a server that answers with `script`, one turn per Responses call. When the
    /// script runs out it answers `Text("fake codex server: script exhausted")`.
    pub fn start(script: impl IntoIterator<Item = CodexTurn>) -> FakeCodexServer {
        FakeCodexServer::start_with_deadline(script, DEFAULT_DEADLINE)
    }

    /// Like [`FakeCodexServer::start`], stopping by itself after `deadline`.
    pub fn start_with_deadline(script: impl IntoIterator<Item = CodexTurn>, deadline: Duration) -> FakeCodexServer {
        let script = script.into_iter().map(|t| (None, t));
        FakeCodexServer { server: ScriptedServer::start("fake codex server", script, deadline, answer) }
    }

    /// A server for sessions that run at the same time (parallel tasks): a Responses call whose
    /// input names `Task ID: <id>` takes the next turn of `<id>`'s script (the CLI resends the
    /// whole conversation, so every call of a session names its task); any other call takes
    /// the next turn of `common`.
    pub fn start_by_task(common: impl IntoIterator<Item = CodexTurn>, by_task: impl IntoIterator<Item = (String, Vec<CodexTurn>)>) -> FakeCodexServer {
        let tagged = by_task.into_iter().flat_map(|(id, turns)| turns.into_iter().map(move |t| (Some(id.clone()), t)));
        let script: Vec<_> = common.into_iter().map(|t| (None, t)).chain(tagged).collect();
        FakeCodexServer { server: ScriptedServer::start("fake codex server", script, DEFAULT_DEADLINE, answer) }
    }

    /// `http://127.0.0.1:<port>/v1`, the provider's `base_url`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.server.addr())
    }

    /// Appends turns to the script.
    pub fn push(&self, turns: impl IntoIterator<Item = CodexTurn>) {
        self.server.push(turns.into_iter().map(|t| (None, t)));
    }

    /// Turns not yet served (of every script).
    pub fn turns_left(&self) -> usize {
        self.server.turns_left()
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.server.requests()
    }

    /// Only the Responses API calls (each consumed one turn).
    pub fn responses_calls(&self) -> Vec<RecordedRequest> {
        self.requests().into_iter().filter(RecordedRequest::is_responses_call).collect()
    }
}

fn answer(out: &mut TcpStream, shared: &Shared<(Option<String>, CodexTurn)>, recorded: RecordedRequest) -> std::io::Result<()> {
    let request_id = format!("req_fake_{:012x}", shared.next_id());
    if !recorded.is_responses_call() {
        let body = json!({"error": {"type": "not_found", "message": format!("fake codex server: no route for {} {}", recorded.method, recorded.path)}});
        shared.record(recorded);
        return write_json(out, 404, &[], &body, &request_id);
    }
    // The first turn of the task the call names, else the first turn for any call.
    let text = recorded.input_text();
    let names = |id: &str| text.contains(&format!("Task ID: {id}\n"));
    let turn = shared.take_turn(&recorded, |script| {
        script.iter().position(|(id, _)| id.as_deref().is_some_and(names)).or_else(|| script.iter().position(|(id, _)| id.is_none()))
    });
    let turn = turn.map_or_else(|| CodexTurn::text("fake codex server: script exhausted"), |(_, t)| t);
    let cwd = recorded.codex_cwd();
    let fill = |s: &str| match &cwd {
        Some(dir) => s.replace("{cwd}", dir),
        None => s.to_owned(),
    };
    let n = shared.next_id();
    let item = match turn {
        CodexTurn::Shell(command) => {
            let arguments = map_strings(json!({"cmd": command, "yield_time_ms": 30000}), &fill);
            json!({"type": "function_call", "id": format!("fc_{n}"), "call_id": format!("call_{n}"),
                "name": "exec_command", "arguments": arguments.to_string(), "status": "completed"})
        }
        CodexTurn::Text(text) => json!({"type": "message", "id": format!("msg_{n}"), "role": "assistant", "status": "completed",
            "content": [{"type": "output_text", "text": fill(&text), "annotations": []}]}),
        CodexTurn::Error { status, body, headers } => return write_json(out, status, &headers, &body, &request_id),
        CodexTurn::Stall => {
            let mut sse = Sse::start(out, &request_id)?;
            sse.event("response.created", &created(n))?;
            shared.wait_until_stopped();
            return Ok(());
        }
    };
    let mut sse = Sse::start(out, &request_id)?;
    sse.event("response.created", &created(n))?;
    sse.event("response.output_item.done", &json!({"type": "response.output_item.done", "output_index": 0, "item": item}))?;
    let usage = json!({"input_tokens": CODEX_INPUT_TOKENS, "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": CODEX_OUTPUT_TOKENS, "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": CODEX_INPUT_TOKENS + CODEX_OUTPUT_TOKENS});
    sse.event(
        "response.completed",
        &json!({"type": "response.completed", "response": {"id": format!("resp_{n}"), "object": "response", "status": "completed", "usage": usage}}),
    )?;
    sse.finish()
}

fn created(n: u64) -> Value {
    json!({"type": "response.created", "response": {"id": format!("resp_{n}"), "object": "response", "status": "in_progress"}})
}

/// The variable naming the fake key, in the written config's provider.
const KEY_ENV: &str = "FAKE_API_KEY";

/// Writes `home/config.toml` for a Codex CLI that talks only to `base_url` (a
/// [`FakeCodexServer`]): a `fake` provider on the Responses wire with no retries, analytics
/// and the features that reach the network off. Returns the environment for the CLI
/// (`CODEX_HOME`, the fake key). Callers should start from an empty environment plus `PATH`.
pub fn codex_env(home: &Path, base_url: &str) -> Vec<(String, String)> {
    let config = format!(
        "model = \"fake-model\"\nmodel_provider = \"fake\"\n\n\
         [model_providers.fake]\nname = \"fake\"\nbase_url = \"{base_url}\"\nwire_api = \"responses\"\n\
         env_key = \"{KEY_ENV}\"\nrequest_max_retries = 0\nstream_max_retries = 0\n\n\
         [analytics]\nenabled = false\n\n\
         [features]\nplugins = false\napps = false\nremote_plugin = false\nin_app_updates = false\n"
    );
    std::fs::create_dir_all(home).unwrap_or_else(|e| panic!("{}: {e}", home.display()));
    let file = home.join("config.toml");
    std::fs::write(&file, config).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    vec![("CODEX_HOME".to_owned(), home.display().to_string()), (KEY_ENV.to_owned(), "sk-test".to_owned())]
}

/// The real Codex CLI: `node_modules/.bin/codex` under `repo_root` (pinned in package.json),
/// else `codex` on `PATH`. `None` means the end-to-end tests should skip.
pub fn find_real_codex(repo_root: &Path) -> Option<PathBuf> {
    let pinned = repo_root.join("node_modules/.bin/codex");
    if crate::claude_cli::is_executable(&pinned) {
        return Some(pinned);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join("codex")).find(|c| crate::claude_cli::is_executable(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn post(server: &FakeCodexServer, path: &str, body: &Value) -> String {
        let addr = server.base_url().trim_start_matches("http://").trim_end_matches("/v1").to_owned();
        let mut s = TcpStream::connect(addr).unwrap();
        let body = body.to_string();
        write!(s, "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}", body.len()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    fn request(cwd: &str) -> Value {
        json!({"model": "fake-model", "stream": true, "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": format!("<environment_context>\n  <cwd>{cwd}</cwd>\n</environment_context>")}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "do it"}]},
        ]})
    }

    #[test]
    fn turns_are_served_in_order_with_the_cwd_filled_in() {
        let server = FakeCodexServer::start([CodexTurn::shell("touch {cwd}/x"), CodexTurn::text("done in {cwd}"), CodexTurn::usage_limit(1_800_000_000)]);
        let first = post(&server, "/v1/responses", &request("/w/repo"));
        assert!(first.starts_with("HTTP/1.1 200"), "{first}");
        assert!(first.contains(r#"\"cmd\":\"touch /w/repo/x\""#) && first.contains("\"name\":\"exec_command\""), "{first}");
        assert!(first.contains("event: response.completed") && first.contains("\"input_tokens\":100"), "{first}");
        let second = post(&server, "/v1/responses", &request("/w/repo"));
        assert!(second.contains("\"text\":\"done in /w/repo\""), "{second}");
        let third = post(&server, "/v1/responses", &request("/w/repo"));
        assert!(third.starts_with("HTTP/1.1 429") && third.contains("\"resets_at\":1800000000"), "{third}");
        assert!(post(&server, "/v1/models", &json!({})).starts_with("HTTP/1.1 404"));
        assert_eq!(server.turns_left(), 0);
        let calls = server.responses_calls();
        assert_eq!(calls.len(), 3);
        assert_eq!(calls[0].codex_cwd().as_deref(), Some("/w/repo"));
        assert!(calls[0].input_text().contains("do it"));
        assert_eq!(server.requests().len(), 4);
    }

    #[test]
    fn calls_naming_a_task_take_that_tasks_turns_and_others_the_common_ones() {
        let server = FakeCodexServer::start_by_task(
            [CodexTurn::text("common")],
            [("1".to_owned(), vec![CodexTurn::text("one")]), ("11".to_owned(), vec![CodexTurn::text("eleven")])],
        );
        let naming = |id: &str| json!({"input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": format!("Task ID: {id}\nDo it.")}]}]});
        assert!(post(&server, "/v1/responses", &naming("11")).contains("\"text\":\"eleven\""));
        assert!(post(&server, "/v1/responses", &request("/w")).contains("\"text\":\"common\""));
        assert!(post(&server, "/v1/responses", &naming("1")).contains("\"text\":\"one\""));
        assert_eq!(server.turns_left(), 0);
        assert!(post(&server, "/v1/responses", &naming("1")).contains("script exhausted"));
    }

    #[test]
    fn the_config_points_at_the_server() {
        let d = tempfile::tempdir().unwrap();
        let env = codex_env(&d.path().join("home"), "http://127.0.0.1:9/v1");
        let config = std::fs::read_to_string(d.path().join("home/config.toml")).unwrap();
        assert!(config.contains("base_url = \"http://127.0.0.1:9/v1\"") && config.contains("request_max_retries = 0"), "{config}");
        assert!(env.iter().any(|(k, v)| k == "FAKE_API_KEY" && v == "sk-test"));
        assert!(env.iter().any(|(k, _)| k == "CODEX_HOME"));
    }
}
