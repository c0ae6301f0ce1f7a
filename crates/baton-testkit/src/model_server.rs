//! A scripted fake of Anthropic's Messages API, for driving the real Claude Code CLI offline.
//!
//! Each `POST /v1/messages` (any query string) takes the next [`Turn`] of the script and answers
//! with the SSE stream the real API sends (`message_start`, `content_block_start` /
//! `content_block_delta` / `content_block_stop` per block, `message_delta` with `stop_reason`
//! and `usage`, `message_stop`), or with JSON when the request did not ask to stream. Every
//! request is recorded. The server is a small hand-written HTTP/1.1 server on std threads
//! (one per connection, `Connection: close`), to keep the testkit free of an async runtime.
//!
//! It must not outlive its test: it stops on drop, and by itself after a deadline.

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{json, Value};

use crate::scripted::{ScriptedServer, Shared};

/// The server stops by itself after this long, even if a test forgets it.
const DEFAULT_DEADLINE: Duration = Duration::from_secs(600);
/// Per-turn usage reported to the CLI, which prices it into `total_cost_usd`.
const INPUT_TOKENS: u64 = 100;
const OUTPUT_TOKENS: u64 = 20;

/// One content block of a scripted assistant message.
#[derive(Clone, Debug, PartialEq)]
pub enum Block {
    Text(String),
    ToolUse { name: String, input: Value },
}

/// One scripted answer to one `POST /v1/messages`. Strings may contain `{cwd}`, replaced by the
/// directory the CLI names in its system prompt (`Primary working directory: <path>`).
#[derive(Clone, Debug, PartialEq)]
pub enum Turn {
    /// A final answer (`stop_reason: end_turn`).
    Text(String),
    /// One tool call (`stop_reason: tool_use`); the CLI runs it and sends the next request.
    ToolUse { name: String, input: Value },
    /// Several blocks in one message; `tool_use` if any block is a tool call, else `end_turn`.
    Blocks(Vec<Block>),
    /// An HTTP error with a JSON body and extra response headers.
    Error {
        status: u16,
        body: Value,
        headers: Vec<(String, String)>,
    },
    /// Start the stream (`message_start`, an empty text block) and then go silent until the
    /// server stops: a stalled stream, for idle-timeout tests.
    Stall,
}

impl Turn {
    pub fn text(text: impl Into<String>) -> Turn {
        Turn::Text(text.into())
    }

    pub fn tool_use(name: impl Into<String>, input: Value) -> Turn {
        Turn::ToolUse {
            name: name.into(),
            input,
        }
    }

    /// `Write` a file; use `{cwd}/rel` for `path`, the tool needs an absolute path.
    pub fn write(path: impl Into<String>, content: impl Into<String>) -> Turn {
        Turn::tool_use(
            "Write",
            json!({"file_path": path.into(), "content": content.into()}),
        )
    }

    /// `Bash` with `command` (the CLI refuses commands that start with `sleep N;`).
    pub fn bash(command: impl Into<String>) -> Turn {
        let command = command.into();
        Turn::tool_use(
            "Bash",
            json!({"command": command, "description": "run a command"}),
        )
    }

    /// An Anthropic-shaped error: `{"type":"error","error":{"type":…,"message":…}}`.
    pub fn error(status: u16, error_type: &str, message: &str) -> Turn {
        Turn::Error {
            status,
            body: json!({"type": "error", "error": {"type": error_type, "message": message}}),
            headers: Vec::new(),
        }
    }

    /// 500 Internal server error.
    pub fn server_error() -> Turn {
        Turn::error(500, "api_error", "Internal server error")
    }

    /// 529 Overloaded.
    pub fn overloaded() -> Turn {
        Turn::error(529, "overloaded_error", "Overloaded")
    }

    /// A subscriber's usage limit, as the CLI (subscriber mode, `CLAUDE_CODE_OAUTH_TOKEN`)
    /// reports it: `You've hit your limit · resets <time> (<TZ>)` plus a `rate_limit_event` with
    /// `status: rejected` and `resetsAt`; no retries.
    ///
    /// Found by experiment with 2.1.332: a 429 counts as a usage limit when it carries
    /// `anthropic-ratelimit-unified-representative-claim` or
    /// `anthropic-ratelimit-unified-overage-status`; `…-unified-reset` adds the `resets …` part
    /// (rendered in `$TZ`, UTC when unset); `…-unified-status` may be omitted on a 429.
    pub fn usage_limit(resets_at_epoch_s: i64) -> Turn {
        Turn::limit_429(resets_at_epoch_s, "five_hour", true)
    }

    /// Like [`Turn::usage_limit`] without the overage header, so the CLI names the window:
    /// `claim` `five_hour` → `You've hit your 5-hour limit · resets …`, `seven_day` →
    /// `You've hit your weekly limit · resets …`.
    pub fn window_limit(resets_at_epoch_s: i64, claim: &str) -> Turn {
        Turn::limit_429(resets_at_epoch_s, claim, false)
    }

    /// A plain 429 without unified headers: server-side throttling. Subscriber mode →
    /// `API Error: Server is temporarily limiting requests (not your usage limit) · <message>`;
    /// API-key mode → `API Error: Request rejected (429) · <message>` after the CLI's retries
    /// (set `CLAUDE_CODE_MAX_RETRIES=0`).
    pub fn throttled(message: &str) -> Turn {
        Turn::error(429, "rate_limit_error", message)
    }

    fn limit_429(resets_at_epoch_s: i64, claim: &str, overage: bool) -> Turn {
        let mut headers = vec![
            (
                "anthropic-ratelimit-unified-status".to_owned(),
                "rejected".to_owned(),
            ),
            (
                "anthropic-ratelimit-unified-reset".to_owned(),
                resets_at_epoch_s.to_string(),
            ),
            (
                "anthropic-ratelimit-unified-representative-claim".to_owned(),
                claim.to_owned(),
            ),
        ];
        if overage {
            headers.push((
                "anthropic-ratelimit-unified-overage-status".to_owned(),
                "rejected".to_owned(),
            ));
        }
        Turn::Error {
            status: 429,
            body: json!({"type": "error", "error": {"type": "rate_limit_error",
                "message": "This request would exceed your account's rate limit. Please try again later."}}),
            headers,
        }
    }
}

/// One request the server received.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: String,
    /// Path with query string, e.g. `/v1/messages?beta=true`.
    pub path: String,
    /// Header names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body parsed as JSON (`Value::Null` if empty or not JSON).
    pub body: Value,
}

impl RecordedRequest {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether this is a Messages API call (`POST /v1/messages`, any query).
    pub fn is_messages_call(&self) -> bool {
        self.method == "POST" && path_without_query(&self.path) == "/v1/messages"
    }

    /// All text of the system prompt (a string or a list of text blocks).
    pub fn system_text(&self) -> String {
        text_of(&self.body["system"])
    }

    /// All text of the user messages, in order (the prompt, tool results, reminders).
    pub fn user_text(&self) -> String {
        let mut out = String::new();
        for message in self.body["messages"].as_array().into_iter().flatten() {
            if message["role"] == "user" {
                out.push_str(&text_of(&message["content"]));
                out.push('\n');
            }
        }
        out
    }

    /// The directory the CLI names in its system prompt (`Primary working directory: <path>`).
    pub fn working_directory(&self) -> Option<String> {
        find_working_directory(&self.body)
    }
}

/// A scripted Anthropic Messages API on `127.0.0.1:<random port>`; stops on drop.
pub struct FakeModelServer {
    server: ScriptedServer<Turn>,
}

impl FakeModelServer {
    /// Starts a server that answers with `script`, one turn per Messages call. When the script
    /// runs out it answers `Text("fake model server: script exhausted")`.
    pub fn start(script: impl IntoIterator<Item = Turn>) -> FakeModelServer {
        FakeModelServer::start_with_deadline(script, DEFAULT_DEADLINE)
    }

    /// Like [`FakeModelServer::start`], stopping by itself after `deadline`.
    pub fn start_with_deadline(
        script: impl IntoIterator<Item = Turn>,
        deadline: Duration,
    ) -> FakeModelServer {
        FakeModelServer {
            server: ScriptedServer::start("fake model server", script, deadline, answer),
        }
    }

    /// `http://127.0.0.1:<port>`, for `ANTHROPIC_BASE_URL`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// Appends turns to the script.
    pub fn push(&self, turns: impl IntoIterator<Item = Turn>) {
        self.server.push(turns);
    }

    /// Turns not yet served.
    pub fn turns_left(&self) -> usize {
        self.server.turns_left()
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.server.requests()
    }

    /// Only the Messages API calls (each consumed one turn).
    pub fn messages_calls(&self) -> Vec<RecordedRequest> {
        self.requests()
            .into_iter()
            .filter(RecordedRequest::is_messages_call)
            .collect()
    }
}

fn answer(
    out: &mut TcpStream,
    shared: &Shared<Turn>,
    recorded: RecordedRequest,
) -> std::io::Result<()> {
    let request_id = format!("req_fake_{:012x}", shared.next_id());
    let (method, path) = (
        recorded.method.clone(),
        path_without_query(&recorded.path).to_owned(),
    );
    match (method.as_str(), path.as_str()) {
        ("POST", "/v1/messages") => {
            let turn = shared
                .next_turn(&recorded)
                .unwrap_or_else(|| Turn::text("fake model server: script exhausted"));
            answer_messages_call(out, shared, &recorded, turn, &request_id)
        }
        (method, path) => {
            shared.record(recorded);
            if method == "HEAD" {
                write_response(
                    out,
                    200,
                    &[],
                    "application/json",
                    b"",
                    &request_id,
                    false,
                )
            } else if method == "GET" && path == "/" {
                write_json(out, 200, &[], &json!({"ok": true}), &request_id)
            } else if method == "POST" && path == "/v1/messages/count_tokens" {
                write_json(
                    out,
                    200,
                    &[],
                    &json!({"input_tokens": INPUT_TOKENS}),
                    &request_id,
                )
            } else {
                let body = json!({"type": "error", "error": {"type": "not_found_error",
                    "message": format!("fake model server: no route for {method} {path}")}});
                write_json(out, 404, &[], &body, &request_id)
            }
        }
    }
}

fn answer_messages_call(
    out: &mut TcpStream,
    shared: &Shared<Turn>,
    request: &RecordedRequest,
    turn: Turn,
    request_id: &str,
) -> std::io::Result<()> {
    let cwd = request.working_directory();
    let fill = |s: &str| match &cwd {
        Some(dir) => s.replace("{cwd}", dir),
        None => s.to_owned(),
    };
    let blocks = match turn {
        Turn::Text(text) => vec![Block::Text(text)],
        Turn::ToolUse { name, input } => vec![Block::ToolUse { name, input }],
        Turn::Blocks(blocks) => blocks,
        Turn::Error {
            status,
            body,
            headers,
        } => {
            return write_json(out, status, &headers, &body, request_id);
        }
        Turn::Stall => return stall(out, shared, request, request_id),
    };
    let blocks: Vec<Block> = blocks
        .into_iter()
        .map(|block| match block {
            Block::Text(text) => Block::Text(fill(&text)),
            Block::ToolUse { name, input } => Block::ToolUse {
                name,
                input: map_strings(input, &fill),
            },
        })
        .collect();
    let stop_reason = if blocks.iter().any(|b| matches!(b, Block::ToolUse { .. })) {
        "tool_use"
    } else {
        "end_turn"
    };
    let model = request.body["model"]
        .as_str()
        .unwrap_or("claude-sonnet-4-5")
        .to_owned();
    let message_id = format!("msg_fake_{:016x}", shared.next_id());
    let content: Vec<Value> = blocks
        .iter()
        .map(|block| match block {
            Block::Text(text) => json!({"type": "text", "text": text}),
            Block::ToolUse { name, input } => json!({"type": "tool_use",
                "id": format!("toolu_fake_{:014x}", shared.next_id()), "name": name, "input": input}),
        })
        .collect();

    if request.body["stream"] != Value::Bool(true) {
        let message = json!({
            "id": message_id, "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": stop_reason, "stop_sequence": null,
            "usage": {"input_tokens": INPUT_TOKENS, "output_tokens": OUTPUT_TOKENS,
                "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
        });
        return write_json(out, 200, &[], &message, request_id);
    }

    let mut sse = Sse::start(out, request_id)?;
    sse.event("message_start", &message_start(&message_id, &model))?;
    for (index, block) in content.iter().enumerate() {
        if block["type"] == "text" {
            sse.event(
                "content_block_start",
                &json!({"type": "content_block_start", "index": index,
                "content_block": {"type": "text", "text": ""}}),
            )?;
            let text = block["text"].as_str().unwrap_or_default();
            for piece in split_in_pieces(text, 3) {
                sse.event(
                    "content_block_delta",
                    &json!({"type": "content_block_delta",
                    "index": index, "delta": {"type": "text_delta", "text": piece}}),
                )?;
            }
        } else {
            sse.event(
                "content_block_start",
                &json!({"type": "content_block_start", "index": index,
                "content_block": {"type": "tool_use", "id": block["id"], "name": block["name"],
                    "input": {}}}),
            )?;
            let input = block["input"].to_string();
            for piece in split_in_pieces(&input, 3) {
                sse.event(
                    "content_block_delta",
                    &json!({"type": "content_block_delta",
                    "index": index, "delta": {"type": "input_json_delta", "partial_json": piece}}),
                )?;
            }
        }
        sse.event(
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": index}),
        )?;
    }
    sse.event(
        "message_delta",
        &json!({"type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": null},
        "usage": {"output_tokens": OUTPUT_TOKENS}}),
    )?;
    sse.event("message_stop", &json!({"type": "message_stop"}))?;
    sse.finish()
}

fn stall(
    out: &mut TcpStream,
    shared: &Shared<Turn>,
    request: &RecordedRequest,
    request_id: &str,
) -> std::io::Result<()> {
    let model = request.body["model"]
        .as_str()
        .unwrap_or("claude-sonnet-4-5")
        .to_owned();
    let message_id = format!("msg_fake_{:016x}", shared.next_id());
    let mut sse = Sse::start(out, request_id)?;
    sse.event("message_start", &message_start(&message_id, &model))?;
    sse.event(
        "content_block_start",
        &json!({"type": "content_block_start", "index": 0,
        "content_block": {"type": "text", "text": ""}}),
    )?;
    shared.wait_until_stopped();
    Ok(())
}

fn message_start(message_id: &str, model: &str) -> Value {
    json!({"type": "message_start", "message": {
        "id": message_id, "type": "message", "role": "assistant", "model": model,
        "content": [], "stop_reason": null, "stop_sequence": null,
        "usage": {"input_tokens": INPUT_TOKENS, "output_tokens": 1,
            "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}})
}

/// A chunked `text/event-stream` response.
pub(crate) struct Sse<'a> {
    out: &'a mut TcpStream,
}

impl<'a> Sse<'a> {
    pub(crate) fn start(out: &'a mut TcpStream, request_id: &str) -> std::io::Result<Sse<'a>> {
        write!(
            out,
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n\
             cache-control: no-cache\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\
             request-id: {request_id}\r\n\r\n"
        )?;
        out.flush()?;
        Ok(Sse { out })
    }

    pub(crate) fn event(&mut self, name: &str, data: &Value) -> std::io::Result<()> {
        let chunk = format!("event: {name}\ndata: {data}\n\n");
        write!(self.out, "{:x}\r\n{chunk}\r\n", chunk.len())?;
        self.out.flush()
    }

    pub(crate) fn finish(self) -> std::io::Result<()> {
        self.out.write_all(b"0\r\n\r\n")?;
        self.out.flush()
    }
}

pub(crate) fn write_json(
    out: &mut TcpStream,
    status: u16,
    headers: &[(String, String)],
    body: &Value,
    request_id: &str,
) -> std::io::Result<()> {
    let body = body.to_string();
    write_response(
        out,
        status,
        headers,
        "application/json",
        body.as_bytes(),
        request_id,
        true,
    )
}

fn write_response(
    out: &mut TcpStream,
    status: u16,
    headers: &[(String, String)],
    content_type: &str,
    body: &[u8],
    request_id: &str,
    with_body: bool,
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\
         connection: close\r\nrequest-id: {request_id}\r\n",
        reason_phrase(status),
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    if with_body {
        out.write_all(body)?;
    }
    out.flush()
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        529 => "Overloaded",
        _ => "Status",
    }
}

pub(crate) fn path_without_query(path: &str) -> &str {
    path.split('?').next().unwrap_or(path)
}

/// Concatenated text of a string, a list of content blocks, or nested tool results.
pub(crate) fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(text_of).collect::<Vec<_>>().join("\n"),
        Value::Object(map) => match (map.get("text"), map.get("content")) {
            (Some(text), _) => text_of(text),
            (None, Some(content)) => text_of(content),
            _ => String::new(),
        },
        _ => String::new(),
    }
}

const WORKING_DIRECTORY_MARKER: &str = "Primary working directory: ";

/// Looks in the system prompt first, then anywhere in the request.
fn find_working_directory(body: &Value) -> Option<String> {
    fn search(value: &Value) -> Option<String> {
        match value {
            Value::String(s) => s.find(WORKING_DIRECTORY_MARKER).map(|at| {
                let rest = &s[at + WORKING_DIRECTORY_MARKER.len()..];
                rest.lines().next().unwrap_or_default().trim().to_owned()
            }),
            Value::Array(items) => items.iter().find_map(search),
            Value::Object(map) => map.values().find_map(search),
            _ => None,
        }
    }
    search(&body["system"])
        .or_else(|| search(body))
        .filter(|dir| !dir.is_empty())
}

pub(crate) fn map_strings(value: Value, f: &impl Fn(&str) -> String) -> Value {
    match value {
        Value::String(s) => Value::String(f(&s)),
        Value::Array(items) => Value::Array(items.into_iter().map(|v| map_strings(v, f)).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, map_strings(v, f)))
                .collect(),
        ),
        other => other,
    }
}

/// Splits `text` into at most `n` non-empty pieces on char boundaries, so that clients see a
/// block arrive in several deltas as they do from the real API.
fn split_in_pieces(text: &str, n: usize) -> Vec<&str> {
    if text.is_empty() {
        return vec![""];
    }
    let step = text.len().div_ceil(n).max(1);
    let mut pieces = Vec::new();
    let mut start = 0;
    while start < text.len() {
        let mut end = (start + step).min(text.len());
        while !text.is_char_boundary(end) {
            end += 1;
        }
        pieces.push(&text[start..end]);
        start = end;
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::thread;

    fn post(base_url: &str, path: &str, body: &Value) -> (String, String) {
        let addr = base_url.trim_start_matches("http://");
        let mut stream = TcpStream::connect(addr).unwrap();
        let body = body.to_string();
        write!(
            stream,
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
             X-Api-Key: sk-test\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        (head.to_owned(), body.to_owned())
    }

    /// The `data:` payloads of a chunked SSE body (chunk framing is skipped by line shape).
    fn sse_data(body: &str) -> Vec<Value> {
        body.lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .map(|d| serde_json::from_str(d).unwrap())
            .collect()
    }

    fn request_with_cwd(dir: &str) -> Value {
        json!({"model": "claude-test", "stream": true,
            "system": [{"type": "text", "text": "You are Claude Code."},
                       {"type": "text", "text": format!("<env>\nPrimary working directory: {dir}\nIs a git repo: true\n</env>")}],
            "messages": [{"role": "user", "content": [{"type": "text", "text": "do it"}]}]})
    }

    #[test]
    fn streams_a_tool_use_with_cwd_filled_in_then_text() {
        let server = FakeModelServer::start([
            Turn::write("{cwd}/hello.txt", "hi\n"),
            Turn::text("done in {cwd}"),
        ]);
        let (head, body) = post(
            &server.base_url(),
            "/v1/messages?beta=true",
            &request_with_cwd("/tmp/x y"),
        );
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(head.contains("text/event-stream"));
        let events = sse_data(&body);
        let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(kinds.first(), Some(&"message_start"));
        assert_eq!(kinds.last(), Some(&"message_stop"));
        let partial: String = events
            .iter()
            .filter(|e| e["delta"]["type"] == "input_json_delta")
            .map(|e| e["delta"]["partial_json"].as_str().unwrap())
            .collect();
        let input: Value = serde_json::from_str(&partial).unwrap();
        assert_eq!(input["file_path"], "/tmp/x y/hello.txt");
        let delta = events
            .iter()
            .find(|e| e["type"] == "message_delta")
            .unwrap();
        assert_eq!(delta["delta"]["stop_reason"], "tool_use");
        assert_eq!(events[0]["message"]["model"], "claude-test");

        let (_, body) = post(&server.base_url(), "/v1/messages", &request_with_cwd("/w"));
        let events = sse_data(&body);
        let text: String = events
            .iter()
            .filter(|e| e["delta"]["type"] == "text_delta")
            .map(|e| e["delta"]["text"].as_str().unwrap())
            .collect();
        assert_eq!(text, "done in /w");
        let delta = events
            .iter()
            .find(|e| e["type"] == "message_delta")
            .unwrap();
        assert_eq!(delta["delta"]["stop_reason"], "end_turn");

        let calls = server.messages_calls();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].path, "/v1/messages?beta=true");
        assert_eq!(calls[0].header("x-api-key"), Some("sk-test"));
        assert_eq!(calls[0].working_directory().as_deref(), Some("/tmp/x y"));
        assert_eq!(calls[0].user_text().trim(), "do it");
        assert_eq!(server.turns_left(), 0);
    }

    #[test]
    fn errors_carry_status_headers_and_body() {
        let server = FakeModelServer::start([Turn::usage_limit(1_795_647_600)]);
        let (head, body) = post(&server.base_url(), "/v1/messages", &request_with_cwd("/w"));
        assert!(head.starts_with("HTTP/1.1 429"), "{head}");
        assert!(head.contains("anthropic-ratelimit-unified-reset: 1795647600"));
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["error"]["type"], "rate_limit_error");
    }

    #[test]
    fn unknown_paths_get_404_and_an_exhausted_script_still_answers() {
        let server = FakeModelServer::start([]);
        let (head, _) = post(&server.base_url(), "/v1/complete", &json!({}));
        assert!(head.starts_with("HTTP/1.1 404"), "{head}");
        let mut request = request_with_cwd("/w");
        request["stream"] = json!(false);
        let (head, body) = post(&server.base_url(), "/v1/messages", &request);
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            body["content"][0]["text"],
            "fake model server: script exhausted"
        );
        assert_eq!(server.requests().len(), 2);
    }

    #[test]
    fn a_stalled_stream_ends_when_the_server_stops() {
        let server = FakeModelServer::start([Turn::Stall]);
        let url = server.base_url();
        let client = thread::spawn(move || post(&url, "/v1/messages", &request_with_cwd("/w")));
        assert!(crate::wait_until(Duration::from_secs(5), || server
            .turns_left()
            == 0));
        drop(server);
        let (head, body) = client.join().unwrap();
        assert!(head.starts_with("HTTP/1.1 200"));
        assert!(!body.contains("message_stop"));
    }

    #[test]
    fn pieces_rejoin_and_respect_char_boundaries() {
        let text = "héllo wörld ✓";
        assert_eq!(split_in_pieces(text, 3).concat(), text);
        assert_eq!(split_in_pieces("", 3), vec![""]);
        assert_eq!(split_in_pieces("ab", 5).concat(), "ab");
    }
}
