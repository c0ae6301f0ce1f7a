//! The Gemini CLI's `-o stream-json` output, read into baton's own [`StreamEvent`]s, with the
//! session's token counts read into the [`ResultEvent`].
//!
//! One JSON object per line (0.61.0): `init{session_id, model}`, `message{role, content,
//! delta}` (the assistant's text comes in `delta: true` chunks: the answer is their
//! concatenation, which [`crate::agent::StreamSummary`] makes), `tool_use{tool_name, tool_id,
//! parameters}`, `tool_result{tool_id, status, output?}`, `result{status, error?, stats}`.
//! The `result` line carries no text: a successful result's text is the summary's joined
//! assistant text; an error result's text is the CLI's error message (`[API Error: …]`).
//!
//! Pure and never failing, like Claude Code's parser: an unknown kind is
//! [`StreamEvent::Other`], a field of an unexpected shape reads as absent, a line that is not a
//! JSON object is [`StreamEvent::NotJson`].

use serde_json::Value;

use crate::agent::claude::stream::tool_summary;
use crate::agent::event::{ResultEvent, StreamEvent, TokenUsage, MAX_DURATION_MS};

/// Reads one line of the stream. A blank line carries no event; every other line yields one.
pub fn parse_line(line: &str) -> Vec<StreamEvent> {
    let line = line.trim();
    if line.is_empty() {
        return Vec::new();
    }
    let value = match serde_json::from_str::<Value>(line) {
        Ok(value @ Value::Object(_)) => value,
        _ => return vec![StreamEvent::NotJson { line: line.to_owned() }],
    };
    let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
    let kind = text("type").unwrap_or_else(|| "unknown".to_owned());
    let event = match kind.as_str() {
        "init" => Some(StreamEvent::Init { session_id: text("session_id"), model: text("model"), cwd: None, version: None }),
        // The user's message echoes the prompt: nothing to act on.
        "message" if text("role").as_deref() == Some("assistant") => text("content")
            .filter(|t| !t.is_empty())
            .map(|text| StreamEvent::AssistantText { text, synthetic: false }),
        "tool_use" => {
            let wire = text("tool_name").unwrap_or_default();
            let input = value.get("parameters").cloned().unwrap_or(Value::Null);
            let name = baton_name(&wire).to_owned();
            Some(StreamEvent::ToolUse { summary: tool_summary(&name, &input), name, input })
        }
        "tool_result" => Some(StreamEvent::ToolResult {
            is_error: text("status").as_deref() == Some("error"),
            output: text("output").or_else(|| value.pointer("/error/message").and_then(Value::as_str).map(str::to_owned)),
        }),
        "result" => Some(StreamEvent::Result(result(&value))),
        _ => None,
    };
    let kind = match text("role") {
        Some(role) if kind == "message" => format!("message/{role}"),
        _ => kind,
    };
    vec![event.unwrap_or(StreamEvent::Other { kind })]
}

/// The Gemini CLI's tool names in baton's vocabulary (Claude Code's), so that the live view
/// says "Edit src/x.rs" and "Bash: cargo test" whatever the agent; others keep their name.
fn baton_name(tool: &str) -> &str {
    match tool {
        "run_shell_command" => "Bash",
        "write_file" => "Write",
        "replace" => "Edit",
        "read_file" => "Read",
        "grep_search" => "Grep",
        "glob" => "Glob",
        "google_web_search" => "WebSearch",
        other => other,
    }
}

fn result(value: &Value) -> ResultEvent {
    let status = value.get("status").and_then(Value::as_str).unwrap_or_default();
    let success = status == "success";
    let message = value.pointer("/error/message").and_then(Value::as_str).map(str::to_owned);
    let stats = value.get("stats").cloned().unwrap_or(Value::Null);
    let count = |key: &str| stats.get(key).and_then(Value::as_u64);
    // `input_tokens` counts cached tokens too; `input` is the uncached part; `total_tokens`
    // includes the thinking tokens that `output_tokens` leaves out (observed with 0.61.0).
    let all_input = count("input_tokens").unwrap_or(0);
    let cached = count("cached").unwrap_or(0);
    let input = count("input").unwrap_or_else(|| all_input.saturating_sub(cached));
    let output = count("total_tokens").map_or_else(|| count("output_tokens").unwrap_or(0), |total| total.saturating_sub(all_input));
    // The CLI counts tool calls, not model turns: each call came from a turn, and a session
    // that succeeded ended with one more, its answer (calls made together in one turn count
    // apart, so this may be more than the turns there were).
    let tool_calls = count("tool_calls").map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX));
    ResultEvent {
        subtype: if success { "success" } else { "error" }.to_owned(),
        is_error: !success,
        num_turns: tool_calls.saturating_add(u32::from(success)),
        result: if success { None } else { message.clone() },
        total_cost_usd: None,
        duration_ms: count("duration_ms").map(|ms| ms.min(MAX_DURATION_MS)),
        usage: TokenUsage { input_tokens: input, output_tokens: output, cache_creation_input_tokens: 0, cache_read_input_tokens: cached },
        api_error_status: message.as_deref().and_then(api_status),
        errors: message.into_iter().collect(),
        ..ResultEvent::default()
    }
}

/// The HTTP status of an API error, as far as the CLI's message tells it: the error JSON it
/// quotes (`{"error":{"code":500,…}}`), or the wording of the API's 429s, which it shows
/// without their code.
fn api_status(message: &str) -> Option<u16> {
    if !message.starts_with("[API Error") {
        return None;
    }
    if let Some(at) = message.find("\"code\":") {
        let digits: String = message[at + 7..].trim_start().chars().take_while(char::is_ascii_digit).collect();
        if let Ok(code) = digits.parse() {
            return Some(code);
        }
    }
    super::limits::is_quota_wording(message).then_some(429)
}

/// A transcript read into a session summary, for tests here and in [`super::limits`].
#[cfg(test)]
pub(super) fn summary_of(transcript: &str) -> crate::agent::StreamSummary {
    let mut s = crate::agent::StreamSummary::new();
    for line in transcript.lines() {
        for ev in parse_line(line) {
            s.observe(&ev);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::SessionOutcome;
    use serde_json::json;

    const HAPPY: &str = include_str!("../../../tests/fixtures/agent-transcripts/gemini-happy.stream.jsonl");
    /// 0.61.0, prompt on stdin, a `write_file` outside the workspace refused (`status: error`).
    const TOOL_ERROR: &str =
        include_str!("../../../tests/fixtures/agent-transcripts/gemini-0.61-stdin-prompt-tool-error.stream.jsonl");
    const E500: &str = include_str!("../../../tests/fixtures/agent-transcripts/gemini-0.61-e500.stream.jsonl");
    const DAILY: &str = include_str!("../../../tests/fixtures/agent-transcripts/gemini-0.61-daily.stream.jsonl");


    #[test]
    fn a_recorded_session_reads_as_baton_events() {
        let events: Vec<StreamEvent> = HAPPY.lines().flat_map(parse_line).collect();
        assert_eq!(
            events[0],
            StreamEvent::Init {
                session_id: Some("3031586c-3f26-4b5f-98f8-dfe973878e28".into()),
                model: Some("gemini-2.5-pro".into()),
                cwd: None,
                version: None
            }
        );
        assert_eq!(events[1], StreamEvent::Other { kind: "message/user".into() });
        let StreamEvent::ToolUse { name, summary, .. } = &events[2] else { panic!("{:?}", events[2]) };
        assert_eq!(name, "Bash");
        assert!(summary.as_deref().is_some_and(|s| s.starts_with("printf 'hello from fake model\\n' > hello.txt")), "{summary:?}");
        assert!(matches!(&events[3], StreamEvent::ToolResult { is_error: false, output: Some(o) } if o.ends_with("x: add hello.txt")), "{:?}", events[3]);
        assert_eq!(events[4], StreamEvent::AssistantText { text: "All done.".into(), synthetic: false });
        let StreamEvent::Result(r) = &events[5] else { panic!("{:?}", events[5]) };
        assert!(!r.is_failure(), "{r:?}");
        assert_eq!(r.usage, TokenUsage { input_tokens: 200, output_tokens: 40, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 });
        assert_eq!((r.duration_ms, r.total_cost_usd, r.num_turns), (Some(158), None, 2), "one tool call, one answer");

        let s = summary_of(HAPPY);
        assert_eq!(s.outcome(), SessionOutcome::Success);
        assert_eq!(s.session_id(), Some("3031586c-3f26-4b5f-98f8-dfe973878e28"));
        assert_eq!(s.result().and_then(|r| r.result.as_deref()), Some("All done."), "the answer is the last message's text");
    }

    #[test]
    fn file_tools_take_baton_names_and_a_refused_call_is_an_error_result() {
        let events: Vec<StreamEvent> = TOOL_ERROR.lines().flat_map(parse_line).collect();
        let tools: Vec<(&str, Option<&str>)> = events
            .iter()
            .filter_map(|e| match e {
                StreamEvent::ToolUse { name, summary, .. } => Some((name.as_str(), summary.as_deref())),
                _ => None,
            })
            .collect();
        assert_eq!(tools[2], ("Write", Some("/.claude/plans/task-status.json")));
        let results: Vec<&StreamEvent> = events.iter().filter(|e| matches!(e, StreamEvent::ToolResult { .. })).collect();
        assert_eq!(results.len(), 3);
        assert!(matches!(results[2], StreamEvent::ToolResult { is_error: true, output: Some(o) } if o.starts_with("Path not in workspace")), "{:?}", results[2]);
        let tool = |name: &str, input: Value| match &parse_line(&json!({"type": "tool_use", "tool_name": name, "parameters": input}).to_string())[0] {
            StreamEvent::ToolUse { name, summary, .. } => (name.clone(), summary.clone()),
            other => panic!("{other:?}"),
        };
        assert_eq!(tool("replace", json!({"file_path": "/w/a.rs", "old_string": "x"})), ("Edit".into(), Some("/w/a.rs".into())));
        assert_eq!(tool("read_file", json!({"file_path": "/w/b.rs"})), ("Read".into(), Some("/w/b.rs".into())));
        assert_eq!(tool("write_todos", json!({"todos": []})), ("write_todos".into(), None));
    }

    #[test]
    fn deltas_of_the_last_message_make_the_answer() {
        let s = summary_of(
            r#"{"type":"init","session_id":"s","model":"m"}
{"type":"message","role":"assistant","content":"Looking","delta":true}
{"type":"message","role":"assistant","content":" around.","delta":true}
{"type":"tool_use","tool_name":"run_shell_command","tool_id":"t","parameters":{"command":"ls"}}
{"type":"tool_result","tool_id":"t","status":"success","output":"a"}
{"type":"message","role":"assistant","content":"{\"task_id\":\"1\",","delta":true}
{"type":"message","role":"assistant","content":"\"status\":\"completed\"}","delta":true}
{"type":"result","status":"success","stats":{"total_tokens":500,"input_tokens":400,"output_tokens":80,"cached":120,"input":280,"duration_ms":5}}"#,
        );
        let r = s.result().expect("a result");
        assert_eq!(r.result.as_deref(), Some(r#"{"task_id":"1","status":"completed"}"#));
        // Thinking tokens (500 − 400 − 80) are output too; cached input is apart.
        assert_eq!(r.usage, TokenUsage { input_tokens: 280, output_tokens: 100, cache_creation_input_tokens: 0, cache_read_input_tokens: 120 });
    }

    #[test]
    fn an_api_error_is_an_error_result_with_the_cli_message_and_status() {
        let s = summary_of(E500);
        let r = s.result().expect("a result");
        assert!(r.is_failure());
        assert_eq!(r.api_error_status, Some(500));
        let SessionOutcome::ErrorResult { message: Some(m), .. } = s.outcome() else { panic!("{:?}", s.outcome()) };
        assert!(m.starts_with("[API Error: {\"error\":{\"code\":500"), "{m}");
        let r = summary_of(DAILY).result().cloned().expect("a result");
        assert_eq!(r.api_error_status, Some(429));
        assert!(r.result.as_deref().is_some_and(|t| t.contains("exhausted your daily quota")), "{r:?}");
        assert_eq!(r.errors.len(), 1);
    }

    #[test]
    fn a_session_ended_by_a_signal_has_no_result() {
        // SIGTERM and SIGINT end 0.61.0 with exit 0 and no `result` line.
        let cut: Vec<&str> = HAPPY.lines().take(4).collect();
        let s = summary_of(&cut.join("\n"));
        assert_eq!(s.outcome(), SessionOutcome::NoResult);
        assert!(s.result().is_none());
    }

    #[test]
    fn odd_lines_never_fail() {
        assert_eq!(parse_line(""), vec![]);
        assert_eq!(parse_line("Loaded cached credentials."), vec![StreamEvent::NotJson { line: "Loaded cached credentials.".into() }]);
        assert_eq!(parse_line(r#"{"type":"thought","x":1}"#), vec![StreamEvent::Other { kind: "thought".into() }]);
        assert_eq!(parse_line(r#"{"type":"tool_result","status":7}"#), vec![StreamEvent::ToolResult { is_error: false, output: None }]);
        let StreamEvent::Result(r) = &parse_line(r#"{"type":"result","status":"error","stats":"?"}"#)[0] else { panic!() };
        assert!(r.is_failure() && r.result.is_none());
    }
}
