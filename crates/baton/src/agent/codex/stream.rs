//! The Codex CLI's `exec --json` output (one JSON event per line), read into baton's own
//! [`StreamEvent`]s.
//!
//! Observed with 0.169.0 and 0.171.0 (docs/research/codex-and-gemini-offline.md):
//! `thread.started{thread_id}`, `turn.started`, `item.started` / `item.completed` carrying an
//! `item` (`command_execution`, `agent_message`, `reasoning`, `file_change`, `mcp_tool_call`,
//! `web_search`, `todo_list`, and `error` — a notice, not a failure), `turn.completed{usage}`;
//! a failure is `error{message}` then `turn.failed{error:{message}}`. The CLI's own retries are
//! `error` events too: `Reconnecting... 2/5 (<why>)`.
//!
//! Like Claude Code's parser it is pure and never fails: an unknown kind is
//! [`StreamEvent::Other`], a field of an unexpected shape reads as absent, a line that is not a
//! JSON object is [`StreamEvent::NotJson`]. The session's final text (the last
//! `agent_message`) is not on `turn.completed`: the [`crate::agent::StreamSummary`] fills it in.

use serde_json::{json, Value};

use crate::agent::claude::stream::tool_summary;
use crate::agent::event::{ApiRetry, ResultEvent, StreamEvent, TokenUsage};

/// Reads one line of the stream. A blank line carries no event; every other line yields at
/// least one.
pub fn parse_line(line: &str) -> Vec<StreamEvent> {
    let line = line.trim();
    if line.is_empty() {
        return Vec::new();
    }
    let value = match serde_json::from_str::<Value>(line) {
        Ok(value @ Value::Object(_)) => value,
        _ => return vec![StreamEvent::NotJson { line: line.to_owned() }],
    };
    let kind = text(&value, "type").unwrap_or("unknown");
    let events = match kind {
        "thread.started" => vec![StreamEvent::Init {
            session_id: text(&value, "thread_id").map(str::to_owned),
            model: None,
            cwd: None,
            version: None,
        }],
        "item.started" => item_started(&value["item"]),
        "item.completed" => item_completed(&value["item"]),
        "turn.completed" => vec![StreamEvent::Result(completed(&value["usage"]))],
        "turn.failed" => vec![StreamEvent::Result(failed(text(&value["error"], "message")))],
        "error" => notice(text(&value, "message")),
        _ => Vec::new(),
    };
    if events.is_empty() {
        let kind = match value["item"].get("type").and_then(Value::as_str) {
            Some(item) => format!("{kind}/{item}"),
            None => kind.to_owned(),
        };
        vec![StreamEvent::Other { kind }]
    } else {
        events
    }
}

/// A string field, when it is one and is not blank.
fn text<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str).filter(|s| !s.trim().is_empty())
}

fn item_started(item: &Value) -> Vec<StreamEvent> {
    match text(item, "type").unwrap_or_default() {
        "command_execution" => vec![command(item)],
        "mcp_tool_call" => vec![mcp_call(item)],
        "web_search" => vec![web_search(item)],
        _ => Vec::new(),
    }
}

fn item_completed(item: &Value) -> Vec<StreamEvent> {
    match text(item, "type").unwrap_or_default() {
        // Started and completed are separate events for these: the call was announced.
        "command_execution" => {
            let failed = item["exit_code"].as_i64().is_some_and(|code| code != 0) || text(item, "status") == Some("failed");
            vec![StreamEvent::ToolResult { is_error: failed, output: text(item, "aggregated_output").map(str::to_owned) }]
        }
        "mcp_tool_call" => {
            let is_error = text(item, "status") == Some("failed") || !item["error"].is_null();
            let shown = if is_error { &item["error"] } else { &item["result"] };
            let output = match shown {
                Value::Null => None,
                Value::String(s) => Some(s.clone()),
                other => Some(other.to_string()),
            };
            vec![StreamEvent::ToolResult { is_error, output }]
        }
        "web_search" => vec![StreamEvent::ToolResult { is_error: false, output: None }],
        // A patch is announced only once it is applied.
        "file_change" => vec![file_change(item), StreamEvent::ToolResult { is_error: text(item, "status") == Some("failed"), output: None }],
        "agent_message" => text(item, "text")
            .map(|t| StreamEvent::AssistantText { text: t.to_owned(), synthetic: false })
            .into_iter()
            .collect(),
        "reasoning" => vec![StreamEvent::Thinking { text: text(item, "text").map(str::to_owned) }],
        // The CLI's own notice ("Model metadata for `x` not found…"): not a failure.
        "error" => text(item, "message")
            .map(|t| StreamEvent::AssistantText { text: t.to_owned(), synthetic: true })
            .into_iter()
            .collect(),
        _ => Vec::new(),
    }
}

/// `command_execution`: the CLI runs `/bin/bash -lc "<cmd>"`; the summary shows `<cmd>`.
fn command(item: &Value) -> StreamEvent {
    let command = text(item, "command").map(shell_payload).unwrap_or_default();
    let input = json!({ "command": command });
    StreamEvent::ToolUse { summary: tool_summary("Bash", &input), name: "Bash".into(), input }
}

/// `file_change`: `changes: [{path, kind: add|delete|update}]`; named `Edit` with the first path.
fn file_change(item: &Value) -> StreamEvent {
    let changes = item["changes"].clone();
    let path = changes.as_array().and_then(|c| c.iter().find_map(|c| text(c, "path"))).unwrap_or_default();
    let input = json!({ "file_path": path, "changes": changes });
    StreamEvent::ToolUse { summary: tool_summary("Edit", &input), name: "Edit".into(), input }
}

fn mcp_call(item: &Value) -> StreamEvent {
    let name = format!("mcp__{}__{}", text(item, "server").unwrap_or("?"), text(item, "tool").unwrap_or("?"));
    StreamEvent::ToolUse { name, summary: None, input: item["arguments"].clone() }
}

fn web_search(item: &Value) -> StreamEvent {
    let input = json!({ "query": text(item, "query").unwrap_or_default() });
    StreamEvent::ToolUse { summary: tool_summary("WebSearch", &input), name: "WebSearch".into(), input }
}

/// The command inside the CLI's `/bin/bash -lc "<cmd>"` (or `'<cmd>'`), unquoted; any other
/// command as it is.
fn shell_payload(command: &str) -> String {
    let Some(rest) = ["/bin/bash -lc ", "bash -lc ", "/bin/zsh -lc ", "zsh -lc ", "/bin/sh -c ", "sh -c "]
        .iter()
        .find_map(|prefix| command.strip_prefix(prefix))
    else {
        return command.to_owned();
    };
    if let Some(inner) = rest.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        // Inside double quotes the shell drops the backslash before these four.
        let mut out = String::with_capacity(inner.len());
        let mut chars = inner.chars().peekable();
        while let Some(c) = chars.next() {
            match (c, chars.peek()) {
                ('\\', Some(&next @ ('"' | '\\' | '$' | '`'))) => {
                    out.push(next);
                    chars.next();
                }
                _ => out.push(c),
            }
        }
        return out;
    }
    if let Some(inner) = rest.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
        return inner.replace("'\\''", "'");
    }
    rest.to_owned()
}

/// A top-level `error`: the CLI retrying (`Reconnecting... 2/5 (<why>)`, `Reconnecting...
/// waiting for network (<why>)`), or the CLI's own message (a synthetic text; `turn.failed`
/// follows with the same words when it ends the turn).
fn notice(message: Option<&str>) -> Vec<StreamEvent> {
    let Some(message) = message else { return Vec::new() };
    let Some(rest) = message.strip_prefix("Reconnecting...") else {
        return vec![StreamEvent::AssistantText { text: message.to_owned(), synthetic: true }];
    };
    let rest = rest.trim_start();
    let (counts, why) = match rest.split_once(" (") {
        Some((counts, why)) => (counts, why.strip_suffix(')').unwrap_or(why)),
        None => (rest, ""),
    };
    let (attempt, max_retries) = counts
        .split_once('/')
        .and_then(|(a, m)| Some((a.trim().parse().ok()?, m.trim().parse().ok()?)))
        .unwrap_or((0, 0));
    vec![StreamEvent::ApiRetry(ApiRetry {
        attempt,
        max_retries,
        retry_delay_ms: 0,
        error_status: http_status(why),
        error: Some(why.to_owned()).filter(|w| !w.is_empty()),
    })]
}

/// The HTTP status in one of the CLI's messages: `last status: 429 Too Many Requests`,
/// `unexpected status 401 Unauthorized: …`.
pub(crate) fn http_status(message: &str) -> Option<u16> {
    ["last status: ", "unexpected status "].iter().find_map(|marker| {
        let at = message.find(marker)? + marker.len();
        let digits: String = message[at..].chars().take_while(char::is_ascii_digit).collect();
        (digits.len() == 3).then(|| digits.parse().ok()).flatten()
    })
}

/// `turn.completed`: a clean end. `usage.input_tokens` includes the cached ones.
fn completed(usage: &Value) -> ResultEvent {
    let count = |key: &str| usage.get(key).and_then(Value::as_u64).unwrap_or(0);
    let cached = count("cached_input_tokens");
    ResultEvent {
        subtype: "success".into(),
        is_error: false,
        usage: TokenUsage {
            input_tokens: count("input_tokens").saturating_sub(cached),
            output_tokens: count("output_tokens"),
            cache_creation_input_tokens: 0,
            cache_read_input_tokens: cached,
        },
        terminal_reason: Some("completed".into()),
        ..ResultEvent::default()
    }
}

/// `turn.failed`: the CLI's message is the result's text and its one diagnostic.
fn failed(message: Option<&str>) -> ResultEvent {
    let message = message.unwrap_or("the Codex CLI reported a failed turn without a message");
    ResultEvent {
        subtype: "error".into(),
        is_error: true,
        result: Some(message.to_owned()),
        terminal_reason: Some("error".into()),
        api_error_status: http_status(message),
        errors: vec![message.to_owned()],
        ..ResultEvent::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::{SessionOutcome, StreamSummary};
    use crate::report::agent_line::verbose_line;

    const HAPPY: &str = include_str!("../../../tests/fixtures/agent-transcripts/codex-happy.jsonl");
    const FAILED_COMMAND: &str = include_str!("../../../tests/fixtures/agent-transcripts/codex-0.171-failed-command.jsonl");
    const USAGE_LIMIT: &str = include_str!("../../../tests/fixtures/agent-transcripts/codex-429-usage_limit_reached.jsonl");
    const PLAIN_429: &str = include_str!("../../../tests/fixtures/agent-transcripts/codex-429-plain.jsonl");
    const SERVER_500: &str = include_str!("../../../tests/fixtures/agent-transcripts/codex-500.jsonl");

    fn events(transcript: &str) -> Vec<StreamEvent> {
        transcript.lines().flat_map(parse_line).collect()
    }

    fn summarize(transcript: &str) -> StreamSummary {
        let mut summary = StreamSummary::new();
        for ev in events(transcript) {
            summary.observe(&ev);
        }
        summary
    }

    fn verbose(transcript: &str) -> String {
        events(transcript).iter().filter_map(verbose_line).collect::<Vec<_>>().join("\n")
    }

    #[test]
    fn a_good_session_succeeds_with_its_last_message_and_tokens() {
        let summary = summarize(HAPPY);
        assert_eq!(summary.outcome(), SessionOutcome::Success);
        assert_eq!(summary.session_id(), Some("01a212f7-44e1-7083-bab9-16d34a89e763"));
        assert_eq!(summary.tool_uses(), 1);
        let result = summary.result().expect("a result");
        assert_eq!(result.result.as_deref(), Some("All done."), "the final text reaches the status-JSON fallback");
        assert_eq!(result.usage, TokenUsage { input_tokens: 200, output_tokens: 40, ..TokenUsage::default() });
        assert_eq!(result.total_cost_usd, None);
        assert!(!result.is_failure());
        // The fallback-metadata notice is the CLI's, not the model's, and no failure.
        assert_eq!(summary.synthetic_texts().len(), 1);
    }

    #[test]
    fn the_command_is_shown_without_the_shell_wrapper_and_a_failed_one_is_an_error() {
        let evs = events(FAILED_COMMAND);
        let commands: Vec<&str> = evs
            .iter()
            .filter_map(|e| match e {
                StreamEvent::ToolUse { name, input, .. } if name == "Bash" => input["command"].as_str(),
                _ => None,
            })
            .collect();
        assert_eq!(commands[0], r"printf 'hello from fake model\n' > hello.txt");
        assert_eq!(commands[1], "git add hello.txt && git commit -q -m 'x: add hello.txt' && git log --oneline -1");
        assert!(commands[2].ends_with(r#"'{"task_id":"1","status":"completed","message":"ok"}' > .claude/plans/task-status.json"#), "{}", commands[2]);
        let results: Vec<bool> = evs
            .iter()
            .filter_map(|e| match e {
                StreamEvent::ToolResult { is_error, .. } => Some(*is_error),
                _ => None,
            })
            .collect();
        assert_eq!(results, [false, true, false], "git commit exited 128");
        insta::assert_snapshot!(verbose(FAILED_COMMAND), @r#"
        [Init] model ?, session 01a2316d-1f9f-7e72-91a2-7b3d16fa8fa4
        [Claude] Model metadata for `fake-model` not found. Defaulting to fallback metadata; this can degrade performance and cause issues.
        [Tool] Bash: printf 'hello from fake model\n' > hello.txt
        [Tool] Bash: git add hello.txt && git commit -q -m 'x: add hello.txt' && git log --oneline -1
        [Tool] Bash: mkdir -p .claude/plans && printf '%s\n' '{"task_id":"1","status":"completed","me…
        [Claude] All done.
        [Result] 0 turns
        "#);
        assert_eq!(summarize(FAILED_COMMAND).result().and_then(|r| r.result.as_deref()), Some("All done."));
    }

    #[test]
    fn a_failed_turn_is_an_error_result_with_the_clis_message() {
        let summary = summarize(USAGE_LIMIT);
        let SessionOutcome::ErrorResult { subtype, message, api_error_status, .. } = summary.outcome() else {
            panic!("{:?}", summary.outcome())
        };
        assert_eq!(subtype, "error");
        assert_eq!(api_error_status, None);
        assert!(message.is_some_and(|m| m.starts_with("You’ve hit your usage limit.") && m.ends_with("try again at 11:00 PM.")));
        // The `error` event before `turn.failed` is the CLI's own word too.
        assert!(summary.synthetic_texts().iter().any(|t| t.starts_with("You’ve hit your usage limit")));

        let plain = summarize(PLAIN_429);
        assert_eq!(plain.result().and_then(|r| r.api_error_status), Some(429));
        assert!(plain.result().is_some_and(|r| r.is_failure() && r.result.is_some()));
    }

    #[test]
    fn the_clis_own_retries_are_retries() {
        let summary = summarize(SERVER_500);
        assert_eq!(summary.api_retries(), 1);
        let retry = summary.last_retry().cloned().unwrap_or_default();
        assert_eq!((retry.attempt, retry.max_retries), (1, 1));
        assert_eq!(retry.error.as_deref(), Some("We’re currently experiencing high demand, which may cause temporary errors."));
        let [StreamEvent::ApiRetry(r)] = &parse_line(r#"{"type":"error","message":"Reconnecting... 2/5 (exceeded retry limit, last status: 429 Too Many Requests)"}"#)[..] else {
            panic!()
        };
        assert_eq!((r.attempt, r.max_retries, r.error_status), (2, 5, Some(429)));
        let [StreamEvent::ApiRetry(r)] = &parse_line(r#"{"type":"error","message":"Reconnecting... waiting for network (Connection failed: error sending request)"}"#)[..] else {
            panic!()
        };
        assert_eq!((r.attempt, r.error.as_deref()), (0, Some("Connection failed: error sending request")));
    }

    #[test]
    fn other_items_are_mapped() {
        let patch = parse_line(r#"{"type":"item.completed","item":{"id":"i","type":"file_change","changes":[{"path":"/w/src/x.rs","kind":"update"}],"status":"completed"}}"#);
        assert!(matches!(&patch[..], [StreamEvent::ToolUse { name, summary: Some(path), .. }, StreamEvent::ToolResult { is_error: false, .. }] if name == "Edit" && path == "/w/src/x.rs"), "{patch:?}");
        assert_eq!(parse_line(r#"{"type":"item.completed","item":{"id":"i","type":"reasoning","text":"hmm"}}"#), [StreamEvent::Thinking { text: Some("hmm".into()) }]);
        let mcp = parse_line(r#"{"type":"item.started","item":{"id":"i","type":"mcp_tool_call","server":"docs","tool":"search","arguments":{"q":1},"status":"in_progress"}}"#);
        assert!(matches!(&mcp[..], [StreamEvent::ToolUse { name, .. }] if name == "mcp__docs__search"), "{mcp:?}");
        let web = parse_line(r#"{"type":"item.started","item":{"id":"i","type":"web_search","query":"rust jiff"}}"#);
        assert!(matches!(&web[..], [StreamEvent::ToolUse { name, summary: Some(q), .. }] if name == "WebSearch" && q == "rust jiff"), "{web:?}");
        assert_eq!(parse_line(r#"{"type":"item.started","item":{"type":"todo_list","items":[]}}"#), [StreamEvent::Other { kind: "item.started/todo_list".into() }]);
        assert_eq!(parse_line(r#"{"type":"turn.started"}"#), [StreamEvent::Other { kind: "turn.started".into() }]);
        assert_eq!(parse_line("not json"), [StreamEvent::NotJson { line: "not json".into() }]);
        assert!(parse_line("  ").is_empty());
    }

    #[test]
    fn cached_input_is_counted_apart_and_odd_shapes_cost_only_their_field() {
        let [StreamEvent::Result(r)] = &parse_line(r#"{"type":"turn.completed","usage":{"input_tokens":400,"cached_input_tokens":120,"output_tokens":80,"reasoning_output_tokens":20}}"#)[..] else {
            panic!()
        };
        assert_eq!(r.usage, TokenUsage { input_tokens: 280, cache_read_input_tokens: 120, output_tokens: 80, cache_creation_input_tokens: 0 });
        let [StreamEvent::Result(r)] = &parse_line(r#"{"type":"turn.completed","usage":{"input_tokens":"x","cached_input_tokens":9}}"#)[..] else {
            panic!()
        };
        assert_eq!(r.usage.input_tokens, 0);
        assert!(!r.is_failure());
        let [StreamEvent::Result(r)] = &parse_line(r#"{"type":"turn.failed","error":"odd"}"#)[..] else { panic!() };
        assert!(r.is_failure() && r.result.is_some());
        assert_eq!(parse_line(r#"{"type":"item.completed","item":"odd"}"#), [StreamEvent::Other { kind: "item.completed".into() }]);
    }

    #[test]
    fn shell_payloads() {
        assert_eq!(shell_payload(r#"/bin/bash -lc "echo \"hi\" \$HOME \\n""#), r#"echo "hi" $HOME \n"#);
        assert_eq!(shell_payload(r"/bin/bash -lc 'echo it'\''s'"), "echo it's");
        assert_eq!(shell_payload("/bin/bash -lc ls"), "ls");
        assert_eq!(shell_payload("cargo test"), "cargo test");
    }
}
