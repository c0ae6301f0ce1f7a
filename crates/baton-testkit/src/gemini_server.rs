//! A scripted fake of the Gemini API, for driving the real Gemini CLI (0.61.0) offline, and the
//! HOME and environment that point the CLI at it.
//!
//! Each `POST /v1beta/models/{model}:streamGenerateContent?alt=sse` takes the next
//! [`GeminiTurn`] and answers as the real API does (`data: <GenerateContentResponse>` chunks:
//! a function call in one chunk, a text in two, `usageMetadata` on the last). Side calls
//! (`:generateContent`, `:countTokens`) are answered harmlessly without taking a turn. Every
//! request is recorded. The HTTP server is the testkit's scripted core (`scripted.rs`): std
//! threads, one per connection, `Connection: close`; it stops on drop, and by itself after a
//! deadline.
//!
//! The shapes are those observed in docs/research/codex-and-gemini-offline.md.

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::model_server::{map_strings, path_without_query, write_json, RecordedRequest};
use crate::scripted::{ScriptedServer, Shared};

/// The server stops by itself after this long, even if a test forgets it.
const DEADLINE: Duration = Duration::from_secs(600);

/// Per-response usage: 100 prompt tokens of which 30 cached, 20 candidate tokens, 5 thinking
/// tokens. The CLI sums them over the session into `result.stats`.
pub const USAGE: (u64, u64, u64, u64) = (100, 30, 20, 5);

/// One scripted answer to one `streamGenerateContent` call. Strings may contain `{cwd}`,
/// replaced by the workspace directory the CLI names in its first message
/// (`- **Workspace Directories:**\n  - <path>`).
#[derive(Clone, Debug, PartialEq)]
pub enum GeminiTurn {
    /// A final answer, sent in two chunks (the CLI prints one `delta` message per chunk).
    Text(String),
    /// One function call; the CLI runs it and sends the next request.
    Call { name: String, args: Value },
    /// An HTTP error with a JSON body.
    Error { status: u16, body: Value },
    /// Start the stream (one empty chunk) and go silent until the server stops.
    Stall,
}

impl GeminiTurn {
    pub fn text(text: impl Into<String>) -> GeminiTurn {
        GeminiTurn::Text(text.into())
    }

    pub fn call(name: impl Into<String>, args: Value) -> GeminiTurn {
        GeminiTurn::Call { name: name.into(), args }
    }

    /// `run_shell_command`: the CLI runs `bash -c` in the workspace.
    pub fn shell(command: impl Into<String>) -> GeminiTurn {
        GeminiTurn::call("run_shell_command", json!({"command": command.into(), "description": "run a command"}))
    }

    /// `write_file`; `path` absolute (`{cwd}/rel`) or relative to the workspace.
    pub fn write(path: impl Into<String>, content: impl Into<String>) -> GeminiTurn {
        GeminiTurn::call("write_file", json!({"file_path": path.into(), "content": content.into()}))
    }

    /// A Google API error: `{"error":{"code","message","status","details"?}}`.
    pub fn api_error(status: u16, grpc_status: &str, message: &str, details: Option<Value>) -> GeminiTurn {
        let mut error = json!({"code": status, "message": message, "status": grpc_status});
        if let Some(details) = details {
            error["details"] = details;
        }
        GeminiTurn::Error { status, body: json!({ "error": error }) }
    }

    /// A 429 whose `RetryInfo.retryDelay` is `delay` (`"18000s"`). Over 300 s the CLI gives up
    /// at once and prints `Suggested retry after <delay>.` (a usage limit); up to 300 s it
    /// retries (up to `general.maxAttempts`).
    pub fn retry_after(delay: &str) -> GeminiTurn {
        GeminiTurn::api_error(
            429,
            "RESOURCE_EXHAUSTED",
            "Resource has been exhausted (e.g. check quota).",
            Some(json!([{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}])),
        )
    }

    /// A 429 of the free tier's daily quota: the CLI prints "You have exhausted your daily
    /// quota on this model." and does not retry.
    pub fn daily_quota() -> GeminiTurn {
        GeminiTurn::api_error(
            429,
            "RESOURCE_EXHAUSTED",
            "You exceeded your current quota, please check your plan and billing details.",
            Some(json!([{"@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [{"quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]}])),
        )
    }

    /// A 429 without details: retryable (throttling once the CLI's attempts run out).
    pub fn throttled() -> GeminiTurn {
        GeminiTurn::api_error(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota).", None)
    }

    /// 500 INTERNAL.
    pub fn server_error() -> GeminiTurn {
        GeminiTurn::api_error(500, "INTERNAL", "Internal error encountered.", None)
    }
}

/// A scripted Gemini API on `127.0.0.1:<random port>`; stops on drop.
pub struct FakeGeminiServer {
    server: ScriptedServer<GeminiTurn>,
}

impl FakeGeminiServer {
    /// Starts a server that answers with `script`, one turn per `streamGenerateContent` call;
    /// past its end it answers `Text("fake gemini server: script exhausted")`.
    pub fn start(script: impl IntoIterator<Item = GeminiTurn>) -> FakeGeminiServer {
        FakeGeminiServer { server: ScriptedServer::start("fake Gemini server", script, DEADLINE, answer) }
    }

    /// `http://127.0.0.1:<port>`, for `GOOGLE_GEMINI_BASE_URL` (no path: the CLI adds
    /// `/v1beta/models/…`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// Appends turns to the script.
    pub fn push(&self, turns: impl IntoIterator<Item = GeminiTurn>) {
        self.server.push(turns);
    }

    pub fn turns_left(&self) -> usize {
        self.server.turns_left()
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.server.requests()
    }

    /// Only the `streamGenerateContent` calls (each took one turn).
    pub fn model_calls(&self) -> Vec<RecordedRequest> {
        self.requests().into_iter().filter(is_stream_call).collect()
    }
}

fn is_stream_call(r: &RecordedRequest) -> bool {
    r.method == "POST" && path_without_query(&r.path).ends_with(":streamGenerateContent")
}

/// All text of the user turns of a request, in order: the session context, the prompt, tool
/// results.
pub fn gemini_user_text(request: &RecordedRequest) -> String {
    let mut out = String::new();
    for content in request.body["contents"].as_array().into_iter().flatten().filter(|c| c["role"] == "user") {
        for part in content["parts"].as_array().into_iter().flatten() {
            if let Some(text) = part["text"].as_str() {
                out.push_str(text);
                out.push('\n');
            }
            if let Some(output) = part.pointer("/functionResponse/response/output").and_then(Value::as_str) {
                out.push_str(output);
                out.push('\n');
            }
        }
    }
    out
}

const WORKSPACE_MARKER: &str = "- **Workspace Directories:**\n";

/// The first workspace directory the CLI names in its session context.
fn workspace(request: &RecordedRequest) -> Option<String> {
    let text = gemini_user_text(request);
    let rest = &text[text.find(WORKSPACE_MARKER)? + WORKSPACE_MARKER.len()..];
    let line = rest.lines().next()?.trim();
    line.strip_prefix("- ").map(|dir| dir.trim().to_owned()).filter(|dir| !dir.is_empty())
}

fn answer(out: &mut TcpStream, shared: &Shared<GeminiTurn>, recorded: RecordedRequest) -> std::io::Result<()> {
    let id = format!("fake-{}", shared.next_id());
    if !is_stream_call(&recorded) {
        let (method, path) = (recorded.method.clone(), path_without_query(&recorded.path).to_owned());
        shared.record(recorded);
        // Side calls of long sessions (next-speaker and loop checks, compression, routing):
        // a plain answer that asks for nothing.
        return if method == "POST" && path.ends_with(":generateContent") {
            write_json(out, 200, &[], &response(vec![json!({"text": "{}"})], true, &id), &id)
        } else if method == "POST" && path.ends_with(":countTokens") {
            write_json(out, 200, &[], &json!({"totalTokens": USAGE.0}), &id)
        } else {
            let body = json!({"error": {"code": 404, "message": format!("fake gemini server: no route for {method} {path}"), "status": "NOT_FOUND"}});
            write_json(out, 404, &[], &body, &id)
        };
    }
    let turn = shared.next_turn(&recorded).unwrap_or_else(|| GeminiTurn::text("fake gemini server: script exhausted"));
    let cwd = workspace(&recorded);
    let fill = |s: &str| match &cwd {
        Some(dir) => s.replace("{cwd}", dir),
        None => s.to_owned(),
    };
    match turn {
        GeminiTurn::Error { status, body } => write_json(out, status, &[], &body, &id),
        GeminiTurn::Call { name, args } => {
            let part = json!({"functionCall": {"name": name, "args": map_strings(args, &fill)}});
            sse(out, &[response(vec![part], true, &id)])
        }
        GeminiTurn::Text(text) => {
            let text = fill(&text);
            let cut = text.char_indices().nth(text.chars().count() / 2).map_or(text.len(), |(at, _)| at);
            let (first, second) = text.split_at(cut);
            sse(out, &[response(vec![json!({"text": first})], false, &id), response(vec![json!({"text": second})], true, &id)])
        }
        GeminiTurn::Stall => {
            start_sse(out)?;
            chunk(out, &json!({"candidates": [{"content": {"role": "model", "parts": [{"text": ""}]}, "index": 0}]}))?;
            shared.wait_until_stopped();
            Ok(())
        }
    }
}

/// A `GenerateContentResponse`; the last chunk of a response carries `finishReason` and the
/// full usage.
fn response(parts: Vec<Value>, last: bool, id: &str) -> Value {
    let (prompt, cached, candidates, thoughts) = USAGE;
    let mut candidate = json!({"content": {"role": "model", "parts": parts}, "index": 0});
    let usage = if last {
        candidate["finishReason"] = json!("STOP");
        json!({"promptTokenCount": prompt, "cachedContentTokenCount": cached, "candidatesTokenCount": candidates,
            "thoughtsTokenCount": thoughts, "totalTokenCount": prompt + candidates + thoughts})
    } else {
        json!({"promptTokenCount": prompt, "totalTokenCount": prompt})
    };
    json!({"candidates": [candidate], "usageMetadata": usage, "modelVersion": "fake-gemini", "responseId": id})
}

fn start_sse(out: &mut TcpStream) -> std::io::Result<()> {
    write!(out, "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n")?;
    out.flush()
}

fn chunk(out: &mut TcpStream, data: &Value) -> std::io::Result<()> {
    let event = format!("data: {data}\r\n\r\n");
    write!(out, "{:x}\r\n{event}\r\n", event.len())?;
    out.flush()
}

fn sse(out: &mut TcpStream, responses: &[Value]) -> std::io::Result<()> {
    start_sse(out)?;
    for r in responses {
        chunk(out, r)?;
    }
    out.write_all(b"0\r\n\r\n")?;
    out.flush()
}

/// Makes `dir/home/.gemini/settings.json` (API-key auth, `general.maxAttempts: 1` so that
/// the CLI never retries by itself, no auto-update, usage statistics or telemetry: with these
/// the CLI connects to nothing but the fake) and `dir/tmp`, and returns the environment that
/// points the real CLI at `base_url`: `HOME`, `TMPDIR` (the CLI leaves error reports and shell
/// folders there), `GOOGLE_GEMINI_BASE_URL`, `GEMINI_API_KEY`.
///
/// Callers should start from an empty environment (`Command::env_clear`) plus `PATH`, so
/// that keys of the machine running the tests cannot leak in. `GEMINI_CLI_TRUST_WORKSPACE`
/// and `GEMINI_CLI_NO_RELAUNCH` are baton's to set (its Gemini adapter does), not the test's.
pub fn gemini_env(dir: &Path, base_url: &str) -> Vec<(String, String)> {
    let home = dir.join("home");
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(home.join(".gemini")).expect("create the Gemini HOME");
    std::fs::create_dir_all(&tmp).expect("create the Gemini TMPDIR");
    let settings = json!({
        "security": {"auth": {"selectedType": "gemini-api-key"}},
        "general": {"enableAutoUpdate": false, "enableAutoUpdateNotification": false, "maxAttempts": 1},
        "privacy": {"usageStatisticsEnabled": false},
        "telemetry": {"enabled": false},
    });
    std::fs::write(home.join(".gemini/settings.json"), serde_json::to_string_pretty(&settings).expect("settings JSON"))
        .expect("write .gemini/settings.json");
    vec![
        ("HOME".to_owned(), home.display().to_string()),
        ("TMPDIR".to_owned(), tmp.display().to_string()),
        ("GOOGLE_GEMINI_BASE_URL".to_owned(), base_url.to_owned()),
        ("GEMINI_API_KEY".to_owned(), "test-key".to_owned()),
    ]
}

/// The real Gemini CLI: `node_modules/.bin/gemini` under `repo_root` (pinned in package.json),
/// else `gemini` on `PATH`. `None` means the end-to-end tests should skip.
pub fn find_real_gemini(repo_root: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    // metadata() follows the node_modules/.bin symlink, so a dangling link is "not installed".
    let executable = |p: &Path| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    let pinned = repo_root.join("node_modules/.bin/gemini");
    if executable(&pinned) {
        return Some(pinned);
    }
    std::env::split_paths(&std::env::var_os("PATH")?).map(|dir| dir.join("gemini")).find(|p| executable(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn post(base: &str, path: &str, body: &Value) -> (u16, String) {
        let addr = base.trim_start_matches("http://");
        let mut s = TcpStream::connect(addr).unwrap();
        let body = body.to_string();
        write!(s, "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}", body.len()).unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        let status = answer.split_whitespace().nth(1).unwrap().parse().unwrap();
        (status, answer)
    }

    #[test]
    fn turns_are_served_in_order_with_the_workspace_filled_in() {
        let server = FakeGeminiServer::start([GeminiTurn::write("{cwd}/a.txt", "x"), GeminiTurn::text("All done."), GeminiTurn::retry_after("18000s")]);
        let first = json!({"contents": [{"role": "user", "parts": [{"text": "<session_context>\n- **Workspace Directories:**\n  - /w/repo\n</session_context>"}, {"text": "do it"}]}]});
        let path = "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse";
        let (status, answer) = post(&server.base_url(), path, &first);
        assert_eq!(status, 200);
        assert!(answer.contains(r#""functionCall":{"args":{"content":"x","file_path":"/w/repo/a.txt"},"name":"write_file"}"#), "{answer}");
        // A side call takes no turn.
        let (status, _) = post(&server.base_url(), "/v1beta/models/gemini-2.5-flash:generateContent", &first);
        assert_eq!(status, 200);
        let (_, answer) = post(&server.base_url(), path, &first);
        assert!(answer.contains(r#"{"text":"All "}"#) && answer.contains(r#"{"text":"done."}"#) && answer.contains(r#""finishReason":"STOP""#), "{answer}");
        let (status, answer) = post(&server.base_url(), path, &first);
        assert_eq!(status, 429);
        assert!(answer.contains(r#""retryDelay":"18000s""#) && answer.contains("RESOURCE_EXHAUSTED"), "{answer}");
        assert_eq!(server.model_calls().len(), 3);
        assert_eq!(server.requests().len(), 4);
        assert!(gemini_user_text(&server.model_calls()[0]).contains("do it"));
        assert_eq!(server.turns_left(), 0);
    }

    #[test]
    fn the_environment_has_its_own_home_and_no_retries() {
        let d = tempfile::tempdir().unwrap();
        let env = gemini_env(d.path(), "http://127.0.0.1:1");
        let settings: Value = serde_json::from_str(&std::fs::read_to_string(d.path().join("home/.gemini/settings.json")).unwrap()).unwrap();
        assert_eq!(settings["general"]["maxAttempts"], 1);
        assert!(d.path().join("tmp").is_dir());
        assert!(env.contains(&("GOOGLE_GEMINI_BASE_URL".to_owned(), "http://127.0.0.1:1".to_owned())));
    }
}
