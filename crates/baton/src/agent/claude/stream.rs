//! Claude Code's `--output-format stream-json --verbose` output, read into baton's own
//! [`StreamEvent`]s: the raw wire types and [`parse_line`], which also reads the session's cost
//! and token counts into the [`ResultEvent`].
//!
//! It must not do I/O or touch processes: reading lines (capped at
//! [`crate::agent::event::MAX_LINE_BYTES`]), keeping the raw transcript, timestamps, idle
//! timeouts and signals belong to the caller.
//!
//! Parsing never fails. New CLI versions add event kinds, subtypes and fields, so an unknown
//! kind becomes [`StreamEvent::Other`], a field of an unexpected shape reads as absent, and
//! a line that is not a JSON object becomes [`StreamEvent::NotJson`]. One
//! odd line never costs baton the rest of the stream.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::agent::event::{
    is_file_tool, ApiRetry, PermissionDenial, RateLimit, RateLimitStatus, ResultEvent, StreamEvent, TokenUsage,
    MAX_DURATION_MS, MAX_RETRY_DELAY_MS,
};
use crate::report::safe::{cut, one_line};

/// How many characters of a tool's argument (a command, a pattern) a summary keeps.
const TOOL_SUMMARY_CHARS: usize = 80;

/// The model name Claude Code puts on messages it writes itself (limit and API error texts).
const SYNTHETIC_MODEL: &str = "<synthetic>";

/// Reads one line of the stream (the caller keeps lines under
/// [`crate::agent::event::MAX_LINE_BYTES`]). A line can carry several events (an assistant
/// message has one per content block); a blank line carries none; every other line yields at
/// least one.
pub fn parse_line(line: &str) -> Vec<StreamEvent> {
    let line = line.trim();
    if line.is_empty() {
        return Vec::new();
    }
    let value = match serde_json::from_str::<Value>(line) {
        Ok(value @ Value::Object(_)) => value,
        _ => {
            return vec![StreamEvent::NotJson {
                line: line.to_owned(),
            }]
        }
    };
    let other = || {
        vec![StreamEvent::Other {
            kind: kind_of(&value),
        }]
    };
    // A known kind whose shape surprised serde (say, `subtype` is missing) is not worth
    // failing over either: it reads as an unknown kind.
    let Ok(raw) = RawLine::deserialize(&value) else {
        return other();
    };
    let events = match raw {
        RawLine::System(RawSystem::Init(init)) => vec![StreamEvent::Init {
            session_id: init.session_id.0,
            model: init.model.0,
            cwd: init.cwd.0,
            version: init.claude_code_version.0,
        }],
        RawLine::System(RawSystem::ApiRetry(retry)) => {
            vec![StreamEvent::ApiRetry(ApiRetry {
                attempt: retry.attempt.0.unwrap_or(0),
                max_retries: retry.max_retries.0.unwrap_or(0),
                retry_delay_ms: retry.retry_delay_ms.0.and_then(whole).map_or(0, clamp_u64).min(MAX_RETRY_DELAY_MS),
                error_status: retry.error_status.0,
                error: retry.error.0,
            })]
        }
        RawLine::System(RawSystem::PermissionDenied(denial)) => {
            vec![StreamEvent::PermissionDenied(denial.into_denial())]
        }
        RawLine::Assistant(line) => assistant_events(line),
        RawLine::User(line) => user_events(line),
        RawLine::RateLimitEvent(line) => vec![StreamEvent::RateLimit(rate_limit(line))],
        RawLine::Result(result) => vec![StreamEvent::Result(result.into_event())],
        RawLine::System(RawSystem::Unknown) | RawLine::Unknown => Vec::new(),
    };
    if events.is_empty() {
        other()
    } else {
        events
    }
}

fn kind_of(value: &Value) -> String {
    let kind = value
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("unknown");
    match value.get("subtype").and_then(Value::as_str) {
        Some(subtype) => format!("{kind}/{subtype}"),
        None => kind.to_owned(),
    }
}

fn assistant_events(line: RawMessageLine) -> Vec<StreamEvent> {
    let Some(message) = line.message.0 else {
        return Vec::new();
    };
    let synthetic = message.model.0.as_deref() == Some(SYNTHETIC_MODEL);
    let text_event = |text: String| {
        (!text.trim().is_empty()).then_some(StreamEvent::AssistantText { text, synthetic })
    };
    match message.content.0 {
        Some(RawContent::Text(text)) => text_event(text).into_iter().collect(),
        Some(RawContent::Blocks(blocks)) => blocks
            .into_iter()
            .filter_map(|block| match block.0? {
                RawBlock::Text(text) => text_event(text.text.0?),
                RawBlock::ToolUse(tool) => {
                    let name = tool.name.0.unwrap_or_default();
                    let input = tool.input.0.unwrap_or(Value::Null);
                    Some(StreamEvent::ToolUse {
                        summary: tool_summary(&name, &input),
                        name,
                        input,
                    })
                }
                RawBlock::Thinking(thinking) => Some(StreamEvent::Thinking { text: thinking.thinking.0.filter(|t| !t.trim().is_empty()) }),
                RawBlock::RedactedThinking => Some(StreamEvent::Thinking { text: None }),
                RawBlock::ToolResult(_) | RawBlock::Unknown => None,
            })
            .collect(),
        None => Vec::new(),
    }
}

fn user_events(line: RawMessageLine) -> Vec<StreamEvent> {
    // A user line's text blocks echo the prompt or say "[Request interrupted by user…]";
    // only tool results tell baton anything.
    let Some(RawContent::Blocks(blocks)) = line.message.0.and_then(|message| message.content.0)
    else {
        return Vec::new();
    };
    blocks
        .into_iter()
        .filter_map(|block| match block.0? {
            RawBlock::ToolResult(result) => Some(StreamEvent::ToolResult {
                is_error: result.is_error.0.unwrap_or(false),
                output: result.content.0.as_ref().and_then(result_text),
            }),
            _ => None,
        })
        .collect()
}

/// A tool result's `content`: a string, or blocks whose text blocks are joined (an image block
/// is named, not shown).
fn result_text(content: &Value) -> Option<String> {
    let text = match content {
        Value::String(text) => text.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter_map(|block| match block.get("type").and_then(Value::as_str) {
                Some("text") => block.get("text").and_then(Value::as_str).map(str::to_owned),
                Some(other) => Some(format!("[{other}]")),
                None => None,
            })
            .collect::<Vec<_>>()
            .join("\n"),
        _ => return None,
    };
    (!text.is_empty()).then_some(text)
}

fn rate_limit(line: RawRateLimitLine) -> RateLimit {
    let info = line.rate_limit_info.0.unwrap_or_default();
    RateLimit {
        status: status_from_wire(info.status.0.as_deref().unwrap_or("")),
        resets_at: info.resets_at.0.and_then(whole),
        limit_type: info.rate_limit_type.0,
        utilization: info.utilization.0,
    }
}

/// The argument of a tool call that a person wants to see, on one line.
pub(crate) fn tool_summary(name: &str, input: &Value) -> Option<String> {
    let field = |key: &str| {
        input
            .get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|text| !text.is_empty())
    };
    let argument = match name {
        // Paths are never cut: the file name is at the end.
        _ if is_file_tool(name) => {
            return field("file_path")
                .or_else(|| field("notebook_path"))
                .map(one_line)
        }
        "Bash" => field("command")?.to_owned(),
        "Grep" | "Glob" => field("pattern")?.to_owned(),
        "WebFetch" => field("url")?.to_owned(),
        "WebSearch" => field("query")?.to_owned(),
        // Called `Agent` in some CLI versions.
        "Task" | "Agent" => match (field("description"), field("subagent_type")) {
            (Some(description), Some(agent)) => format!("{description} ({agent})"),
            (Some(only), None) | (None, Some(only)) => only.to_owned(),
            (None, None) => return None,
        },
        _ => return None,
    };
    Some(cut(&one_line(&argument), TOOL_SUMMARY_CHARS))
}

/// `rate_limit_info.status` as the CLI writes it.
fn status_from_wire(status: &str) -> RateLimitStatus {
    match status {
        "allowed" => RateLimitStatus::Allowed,
        "allowed_warning" => RateLimitStatus::AllowedWarning,
        "rejected" => RateLimitStatus::Rejected,
        other => RateLimitStatus::Other(other.to_owned()),
    }
}

/// A tool-call event as the parser makes it, for tests elsewhere.
#[cfg(test)]
pub(crate) fn tool(name: &str, input: Value) -> StreamEvent {
    StreamEvent::ToolUse {
        summary: tool_summary(name, &input),
        name: name.into(),
        input,
    }
}

/// A JSON number as a whole number, when it is a finite one.
fn whole(number: f64) -> Option<i64> {
    // `as` saturates, which is the right answer for absurd values.
    number.is_finite().then_some(number.round() as i64)
}

fn clamp_u64(number: i64) -> u64 {
    u64::try_from(number).unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// The wire model. Every field is `Lenient` and every struct defaults, so that a missing,
// `null` or retyped field costs only that field.

/// A field that reads as absent when its value has an unexpected shape, so that one changed
/// field does not cost baton the whole event (losing a `result` line would misjudge the run).
struct Lenient<T>(Option<T>);

impl<T> Default for Lenient<T> {
    fn default() -> Self {
        Self(None)
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Ok(Self(serde_json::from_value(value).ok()))
    }
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum RawLine {
    System(RawSystem),
    Assistant(RawMessageLine),
    User(RawMessageLine),
    RateLimitEvent(RawRateLimitLine),
    Result(RawResult),
    #[serde(other)]
    Unknown,
}

#[derive(Deserialize)]
#[serde(tag = "subtype", rename_all = "snake_case")]
enum RawSystem {
    Init(RawInit),
    ApiRetry(RawApiRetry),
    PermissionDenied(RawDenial),
    #[serde(other)]
    Unknown,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawInit {
    session_id: Lenient<String>,
    model: Lenient<String>,
    cwd: Lenient<String>,
    claude_code_version: Lenient<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawApiRetry {
    attempt: Lenient<u32>,
    max_retries: Lenient<u32>,
    retry_delay_ms: Lenient<f64>,
    error_status: Lenient<u16>,
    error: Lenient<String>,
}

/// Both a `system/permission_denied` event (reason in `message`) and an entry of the
/// result's `permission_denials` (no reason seen so far; `reason` in case one appears).
#[derive(Deserialize, Default)]
#[serde(default)]
struct RawDenial {
    tool_name: Lenient<String>,
    tool_use_id: Lenient<String>,
    message: Lenient<String>,
    reason: Lenient<String>,
}

impl RawDenial {
    fn into_denial(self) -> PermissionDenial {
        PermissionDenial {
            tool_name: self.tool_name.0.unwrap_or_default(),
            tool_use_id: self.tool_use_id.0,
            reason: self.reason.0.or(self.message.0),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawMessageLine {
    message: Lenient<RawMessage>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawMessage {
    model: Lenient<String>,
    content: Lenient<RawContent>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawContent {
    Text(String),
    Blocks(Vec<Lenient<RawBlock>>),
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum RawBlock {
    Text(RawText),
    ToolUse(RawToolUse),
    ToolResult(RawToolResult),
    Thinking(RawThinking),
    RedactedThinking,
    #[serde(other)]
    Unknown,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawText {
    text: Lenient<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawToolUse {
    name: Lenient<String>,
    input: Lenient<Value>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawThinking {
    thinking: Lenient<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawToolResult {
    is_error: Lenient<bool>,
    content: Lenient<Value>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawRateLimitLine {
    rate_limit_info: Lenient<RawRateLimitInfo>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawRateLimitInfo {
    status: Lenient<String>,
    #[serde(rename = "resetsAt")]
    resets_at: Lenient<f64>,
    #[serde(rename = "rateLimitType")]
    rate_limit_type: Lenient<String>,
    utilization: Lenient<f64>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawResult {
    subtype: Lenient<String>,
    is_error: Lenient<bool>,
    num_turns: Lenient<u32>,
    result: Lenient<String>,
    total_cost_usd: Lenient<f64>,
    duration_ms: Lenient<f64>,
    usage: Lenient<RawUsage>,
    /// Per model, also the session's subagents: `{"claude-…": {"inputTokens": …, …}}`.
    #[serde(rename = "modelUsage")]
    model_usage: Lenient<std::collections::BTreeMap<String, Lenient<RawModelUsage>>>,
    terminal_reason: Lenient<String>,
    api_error_status: Lenient<u16>,
    permission_denials: Lenient<Vec<Lenient<RawDenial>>>,
    errors: Lenient<Vec<Value>>,
    session_id: Lenient<String>,
}

impl RawResult {
    fn into_event(self) -> ResultEvent {
        let usage = self.usage.0.unwrap_or_default();
        let count = |field: Lenient<f64>| field.0.and_then(whole).map_or(0, clamp_u64);
        let mut tokens = TokenUsage {
            input_tokens: count(usage.input_tokens),
            output_tokens: count(usage.output_tokens),
            cache_creation_input_tokens: count(usage.cache_creation_input_tokens),
            cache_read_input_tokens: count(usage.cache_read_input_tokens),
        };
        if tokens == TokenUsage::default() {
            // A session the CLI cut short (its spending cap) reports zero `usage` but counts
            // what was spent per model.
            for m in self.model_usage.0.unwrap_or_default().into_values().filter_map(|m| m.0) {
                tokens.input_tokens = tokens.input_tokens.saturating_add(count(m.input_tokens));
                tokens.output_tokens = tokens.output_tokens.saturating_add(count(m.output_tokens));
                tokens.cache_creation_input_tokens = tokens.cache_creation_input_tokens.saturating_add(count(m.cache_creation_input_tokens));
                tokens.cache_read_input_tokens = tokens.cache_read_input_tokens.saturating_add(count(m.cache_read_input_tokens));
            }
        }
        ResultEvent {
            subtype: self.subtype.0.unwrap_or_default(),
            is_error: self.is_error.0.unwrap_or(false),
            num_turns: self.num_turns.0.unwrap_or(0),
            result: self.result.0,
            total_cost_usd: self.total_cost_usd.0,
            duration_ms: self.duration_ms.0.and_then(whole).map(clamp_u64).map(|d| d.min(MAX_DURATION_MS)),
            usage: tokens,
            terminal_reason: self.terminal_reason.0,
            api_error_status: self.api_error_status.0,
            permission_denials: self
                .permission_denials
                .0
                .unwrap_or_default()
                .into_iter()
                .filter_map(|denial| denial.0.map(RawDenial::into_denial))
                .collect(),
            errors: self
                .errors
                .0
                .unwrap_or_default()
                .into_iter()
                .map(|error| match error {
                    Value::String(text) => text,
                    other => other.to_string(),
                })
                .collect(),
            session_id: self.session_id.0,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawUsage {
    input_tokens: Lenient<f64>,
    output_tokens: Lenient<f64>,
    cache_creation_input_tokens: Lenient<f64>,
    cache_read_input_tokens: Lenient<f64>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct RawModelUsage {
    input_tokens: Lenient<f64>,
    output_tokens: Lenient<f64>,
    cache_creation_input_tokens: Lenient<f64>,
    cache_read_input_tokens: Lenient<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::{SessionOutcome, StreamSummary};
    use crate::report::agent_line::verbose_line;
    use serde_json::json;

    const HAPPY: &str =
        include_str!("../../../tests/fixtures/agent-transcripts/claude-happy.stream.jsonl");
    const HAPPY_PARTIAL: &str = include_str!(
        "../../../tests/fixtures/agent-transcripts/claude-happy-partial-messages.stream.jsonl"
    );
    const ALLOWED_WARNING: &str = include_str!(
        "../../../tests/fixtures/agent-transcripts/claude-oauth-allowed-warning.stream.jsonl"
    );
    const OAUTH_HIT_LIMIT: &str = include_str!(
        "../../../tests/fixtures/agent-transcripts/claude-429-oauth-hit-your-limit.stream.jsonl"
    );
    const OAUTH_FIVE_HOUR: &str = include_str!(
        "../../../tests/fixtures/agent-transcripts/claude-429-oauth-5-hour-limit.stream.jsonl"
    );
    const OAUTH_WEEKLY: &str = include_str!(
        "../../../tests/fixtures/agent-transcripts/claude-429-oauth-weekly-limit.stream.jsonl"
    );
    const OAUTH_MIDRUN: &str =
        include_str!("../../../tests/fixtures/agent-transcripts/claude-429-oauth-midrun.stream.jsonl");
    const APIKEY_429: &str = include_str!(
        "../../../tests/fixtures/agent-transcripts/claude-429-apikey-default-10-retries.stream.jsonl"
    );
    const OVERLOADED_529: &str = include_str!(
        "../../../tests/fixtures/agent-transcripts/claude-529-default-10-retries.stream.jsonl"
    );
    const SERVER_500: &str =
        include_str!("../../../tests/fixtures/agent-transcripts/claude-500-maxretries1.stream.jsonl");
    const API_TIMEOUT: &str = include_str!(
        "../../../tests/fixtures/agent-transcripts/claude-hang-api-timeout-5s.stream.jsonl"
    );
    const PERMISSION_DENIAL: &str = include_str!(
        "../../../tests/fixtures/agent-transcripts/claude-root-acceptEdits-permission-denial.stream.jsonl"
    );
    const SIGINT: &str = include_str!(
        "../../../tests/fixtures/agent-transcripts/claude-sigint-during-bash.stream.jsonl"
    );
    const SIGTERM: &str = include_str!(
        "../../../tests/fixtures/agent-transcripts/claude-sigterm-during-bash.stream.jsonl"
    );
    const STALLED: &str = include_str!(
        "../../../tests/fixtures/agent-transcripts/claude-stalled-stream-330s-killed.stream.jsonl"
    );

    const ALL_TRANSCRIPTS: [&str; 15] = [
        HAPPY,
        HAPPY_PARTIAL,
        ALLOWED_WARNING,
        OAUTH_HIT_LIMIT,
        OAUTH_FIVE_HOUR,
        OAUTH_WEEKLY,
        OAUTH_MIDRUN,
        APIKEY_429,
        OVERLOADED_529,
        SERVER_500,
        API_TIMEOUT,
        PERMISSION_DENIAL,
        SIGINT,
        SIGTERM,
        STALLED,
    ];

    fn events(transcript: &str) -> Vec<StreamEvent> {
        transcript.lines().flat_map(parse_line).collect()
    }

    fn summarize(transcript: &str) -> StreamSummary {
        let mut summary = StreamSummary::new();
        for event in events(transcript) {
            summary.observe(&event);
        }
        summary
    }

    fn verbose(transcript: &str) -> String {
        events(transcript)
            .iter()
            .filter_map(verbose_line)
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn error_result(
        summary: &StreamSummary,
    ) -> (String, Option<String>, Option<u16>, Option<String>) {
        match summary.outcome() {
            SessionOutcome::ErrorResult {
                subtype,
                terminal_reason,
                api_error_status,
                message,
            } => (subtype, terminal_reason, api_error_status, message),
            other => panic!("expected an error result, got {other:?}"),
        }
    }

    #[test]
    fn every_transcript_line_is_an_event_and_no_line_is_not_json() {
        for transcript in ALL_TRANSCRIPTS {
            for line in transcript.lines().filter(|line| !line.trim().is_empty()) {
                let events = parse_line(line);
                assert!(!events.is_empty(), "no event for {line}");
                assert!(
                    !events
                        .iter()
                        .any(|ev| matches!(ev, StreamEvent::NotJson { .. })),
                    "not JSON: {line}"
                );
            }
            // Every recorded session starts with init and names its model.
            let summary = summarize(transcript);
            assert!(summary.session_id().is_some());
            assert!(summary
                .model()
                .is_some_and(|model| model.starts_with("claude-")));
            assert_eq!(summary.cli_version(), Some("2.1.332"));
        }
    }

    #[test]
    fn happy_run_succeeds_with_cost_and_turns() {
        let summary = summarize(HAPPY);
        assert_eq!(summary.outcome(), SessionOutcome::Success);
        assert_eq!(
            summary.session_id(),
            Some("6183a738-b77b-4a54-8332-d61c8a6b8507")
        );
        assert_eq!(summary.model(), Some("claude-opus-5-5"));
        assert_eq!(summary.cwd(), Some("/home/dev/project"));
        assert_eq!(summary.turns(), Some(3));
        let cost = summary.cost_usd().unwrap_or_default();
        assert!((cost - 0.0024).abs() < 1e-9, "cost {cost}");
        assert_eq!(summary.tool_uses(), 2);
        assert_eq!(summary.last_text(), Some("All done."));
        assert!(summary.synthetic_texts().is_empty());
        assert_eq!(summary.api_retries(), 0);
        assert!(summary.rate_limit_rejected().is_none());
        assert_eq!(summary.last_activity().as_deref(), Some("finished"));
        let result = summary.result().cloned().unwrap_or_default();
        assert_eq!(result.result.as_deref(), Some("All done."));
        assert_eq!(result.terminal_reason.as_deref(), Some("completed"));
        assert_eq!(result.duration_ms, Some(953));
        assert_eq!(
            result.usage,
            TokenUsage {
                input_tokens: 300,
                output_tokens: 60,
                cache_creation_input_tokens: 0,
                cache_read_input_tokens: 0,
            }
        );
    }

    #[test]
    fn happy_verbose_lines() {
        insta::assert_snapshot!(verbose(HAPPY), @r#"
        [Init] model claude-opus-5-5, session 6183a738-b77b-4a54-8332-d61c8a6b8507
        [Claude] I'll create the file.
        [Tool] Write: /home/dev/project/hello.txt
        [Tool] Bash: mkdir -p .claude/plans && printf '%s\n' '{"status":"done","summary":"wrote hello…
        [Claude] All done.
        [Result] 3 turns, $0.0024
        "#);
    }

    #[test]
    fn partial_messages_change_nothing_but_add_other_events() {
        let partial = events(HAPPY_PARTIAL);
        let stream_events = partial
            .iter()
            .filter(|ev| {
                **ev == StreamEvent::Other {
                    kind: "stream_event".into(),
                }
            })
            .count();
        assert_eq!(stream_events, 23);
        assert!(partial.contains(&StreamEvent::Other {
            kind: "system/status".into()
        }));
        // The complete assistant messages still come, so baton sees the same session.
        let (happy, partial) = (summarize(HAPPY), summarize(HAPPY_PARTIAL));
        assert_eq!(partial.outcome(), SessionOutcome::Success);
        assert_eq!(partial.turns(), happy.turns());
        assert_eq!(partial.cost_usd(), happy.cost_usd());
        assert_eq!(partial.tool_uses(), happy.tool_uses());
        assert_eq!(partial.last_text(), happy.last_text());
        assert_eq!(
            verbose(HAPPY_PARTIAL).lines().count(),
            verbose(HAPPY).lines().count()
        );
    }

    #[test]
    fn oauth_limit_is_a_rejected_rate_limit_and_an_error_result() {
        for (transcript, limit_type, resets_at, text) in [
            (
                OAUTH_HIT_LIMIT,
                "five_hour",
                1_795_647_600,
                "You've hit your limit · resets 6pm (America/Toronto)",
            ),
            (
                OAUTH_FIVE_HOUR,
                "five_hour",
                1_795_647_600,
                "You've hit your 5-hour limit · resets 6pm (America/Toronto)",
            ),
            (
                OAUTH_WEEKLY,
                "seven_day",
                1_795_906_800,
                "You've hit your weekly limit · resets Nov 28, 6pm (America/Toronto)",
            ),
            (
                OAUTH_MIDRUN,
                "five_hour",
                1_795_647_600,
                "You've hit your limit · resets 6pm (America/Toronto)",
            ),
        ] {
            let summary = summarize(transcript);
            let rejected = summary.rate_limit_rejected().cloned();
            assert_eq!(
                rejected,
                Some(RateLimit {
                    status: RateLimitStatus::Rejected,
                    resets_at: Some(resets_at),
                    limit_type: Some(limit_type.into()),
                    utilization: None,
                })
            );
            // The CLI calls this "success"; baton must not.
            assert_eq!(
                summary.result().map(|r| r.subtype.as_str()),
                Some("success")
            );
            assert_eq!(
                error_result(&summary),
                (
                    "success".into(),
                    Some("api_error".into()),
                    Some(429),
                    Some(text.into())
                )
            );
            assert_eq!(summary.synthetic_texts(), [text.to_owned()]);
            assert_eq!(summary.last_text(), Some(text));
        }
    }

    #[test]
    fn midrun_limit_keeps_the_work_done_before_it() {
        let summary = summarize(OAUTH_MIDRUN);
        assert_eq!(summary.tool_uses(), 1);
        assert_eq!(summary.turns(), Some(2));
        // The "allowed" event before the rejection is neither a warning nor a rejection.
        assert!(summary.rate_limit_warning().is_none());
        assert!(events(OAUTH_MIDRUN).iter().any(|ev| matches!(
            ev,
            StreamEvent::RateLimit(RateLimit {
                status: RateLimitStatus::Allowed,
                ..
            })
        )));
        insta::assert_snapshot!(verbose(OAUTH_MIDRUN), @r"
        [Init] model claude-sonnet-5-5, session bf52b715-dc0d-4fa7-bb58-debd1efc4e97
        [Claude] I'll create the file.
        [Tool] Write: /home/dev/project/hello.txt
        [Limit] rejected (five_hour), resets at 2026-11-25T23:00:00Z
        [Claude] You've hit your limit · resets 6pm (America/Toronto)
        [Result] 2 turns, $0.0004 — error: api_error (API 429)
        ");
    }

    #[test]
    fn allowed_warning_is_kept_and_the_run_succeeds() {
        let summary = summarize(ALLOWED_WARNING);
        assert_eq!(summary.outcome(), SessionOutcome::Success);
        assert!(summary.rate_limit_rejected().is_none());
        assert_eq!(
            summary.rate_limit_warning().cloned(),
            Some(RateLimit {
                status: RateLimitStatus::AllowedWarning,
                resets_at: Some(1_795_647_600),
                limit_type: Some("five_hour".into()),
                utilization: Some(0.92),
            })
        );
        let lines = verbose(ALLOWED_WARNING);
        assert!(
            lines.contains("[Limit] allowed_warning (five_hour, 92% used), resets at 2026-11-25T23:00:00Z"),
            "{lines}"
        );
    }

    #[test]
    fn api_key_429_retries_ten_times_then_errors() {
        let summary = summarize(APIKEY_429);
        assert_eq!(summary.api_retries(), 10);
        assert_eq!(
            summary.last_retry().cloned(),
            Some(ApiRetry {
                attempt: 10,
                max_retries: 10,
                retry_delay_ms: 37_754,
                error_status: Some(429),
                error: Some("rate_limit".into()),
            })
        );
        // API-key mode has no rate_limit_event: the text is all there is.
        assert!(summary.rate_limit_rejected().is_none());
        let (_, reason, status, message) = error_result(&summary);
        assert_eq!(reason.as_deref(), Some("api_error"));
        assert_eq!(status, Some(429));
        assert_eq!(
            message.as_deref(),
            Some("API Error: Request rejected (429) · Rate limited")
        );
        assert_eq!(
            summary.last_activity().as_deref(),
            Some("finished with an error")
        );
    }

    #[test]
    fn server_errors_are_error_results() {
        for (transcript, status, retries) in [(OVERLOADED_529, 529, 10), (SERVER_500, 500, 1)] {
            let summary = summarize(transcript);
            assert_eq!(summary.api_retries(), retries);
            assert_eq!(
                summary.last_retry().and_then(|r| r.error_status),
                Some(status)
            );
            let (subtype, reason, api_status, message) = error_result(&summary);
            assert_eq!(subtype, "success");
            assert_eq!(reason.as_deref(), Some("api_error"));
            assert_eq!(api_status, Some(status));
            assert!(message.is_some_and(|m| m.starts_with(&format!("API Error: {status}"))));
        }
        insta::assert_snapshot!(verbose(SERVER_500), @r"
        [Init] model claude-opus-5-5, session 4f3dd322-00ff-4ff9-b057-780b8e2d505f
        [Retry] API 500, attempt 1/1, next in 0.6s
        [Claude] API Error: 500 Internal server error. This is a server-side issue, usually temporary — try again in a moment. If it persists, check your inference gateway (127.0.0.1:44913).
        [Result] 1 turn, $0.0000 — error: api_error (API 500)
        ");
    }

    #[test]
    fn api_timeout_is_an_error_without_a_status() {
        let summary = summarize(API_TIMEOUT);
        let retry = summary.last_retry().cloned().unwrap_or_default();
        assert_eq!(retry.error_status, None);
        assert_eq!(retry.error.as_deref(), Some("unknown"));
        let (_, reason, status, message) = error_result(&summary);
        assert_eq!(reason.as_deref(), Some("api_error"));
        assert_eq!(status, None);
        assert!(message.is_some_and(|m| m.starts_with("Request timed out.")));
        assert!(
            verbose(API_TIMEOUT).contains("[Retry] API error (unknown), attempt 1/1, next in 0.6s")
        );
    }

    #[test]
    fn permission_denial_names_the_tool_and_the_reason() {
        let summary = summarize(PERMISSION_DENIAL);
        let SessionOutcome::PermissionDenied { denials } = summary.outcome() else {
            panic!("expected a permission denial, got {:?}", summary.outcome());
        };
        assert_eq!(denials.len(), 1);
        assert_eq!(denials[0].tool_name, "Bash");
        assert_eq!(
            denials[0].tool_use_id.as_deref(),
            Some("toolu_07bf4e402dad4120b61d9447")
        );
        assert!(denials[0]
            .reason
            .as_deref()
            .is_some_and(|r| r.starts_with("This Bash command contains multiple operations.")));
        assert!(events(PERMISSION_DENIAL).iter().any(|e| matches!(e, StreamEvent::ToolResult { is_error: true, output: Some(_) })));
        insta::assert_snapshot!(verbose(PERMISSION_DENIAL), @r#"
        [Init] model claude-opus-5-5, session 0c2c8059-101b-4f52-98fe-2a5a1fef3005
        [Claude] I'll create the file.
        [Tool] Write: /home/dev/project/hello.txt
        [Tool] Bash: mkdir -p .claude/plans && printf '%s\n' '{"status":"done","summary":"wrote hello…
        [Denied] Bash: This Bash command contains multiple operations. The following parts require approval: mkdir -p .claude/plans, printf '%s\n' '{"status":"done","summary":"wrote hello.txt"}', git add -A, git commit -q -…
        [Claude] All done.
        [Result] 3 turns, $0.0024
        "#);
    }

    #[test]
    fn sigint_ends_with_error_during_execution() {
        let summary = summarize(SIGINT);
        let (subtype, reason, status, message) = error_result(&summary);
        assert_eq!(subtype, "error_during_execution");
        assert_eq!(reason.as_deref(), Some("aborted_tools"));
        assert_eq!(status, None);
        // No result text after SIGINT: the CLI's diagnostics stand in.
        assert_eq!(summary.result().and_then(|r| r.result.clone()), None);
        assert!(message.is_some_and(|m| m.starts_with("[ede_diagnostic]")));
        assert!(verbose(SIGINT).ends_with("[Result] 3 turns, $0.0008 — error: aborted_tools"));
    }

    #[test]
    fn killed_sessions_have_no_result() {
        for transcript in [SIGTERM, STALLED] {
            let summary = summarize(transcript);
            assert_eq!(summary.outcome(), SessionOutcome::NoResult);
            assert_eq!(summary.turns(), None);
            assert_eq!(summary.cost_usd(), None);
        }
        assert_eq!(
            summarize(STALLED).last_activity().as_deref(),
            Some("thinking")
        );
        assert_eq!(
            summarize(SIGTERM).last_activity().as_deref(),
            Some("thinking"),
            "the killed tool's result came back"
        );
    }

    #[test]
    fn unknown_kinds_and_subtypes_are_other() {
        assert_eq!(
            parse_line(r#"{"type":"brand_new","x":1}"#),
            [StreamEvent::Other {
                kind: "brand_new".into()
            }]
        );
        assert_eq!(
            parse_line(r#"{"subtype":"later","type":"system","x":[1]}"#),
            [StreamEvent::Other {
                kind: "system/later".into()
            }]
        );
        assert_eq!(
            parse_line(r#"{"no_type":true}"#),
            [StreamEvent::Other {
                kind: "unknown".into()
            }]
        );
        // A system line without a subtype surprises serde; still not an error.
        assert_eq!(
            parse_line(r#"{"type":"system"}"#),
            [StreamEvent::Other {
                kind: "system".into()
            }]
        );
        assert_eq!(
            parse_line(r#"{"type":"assistant","message":"odd"}"#),
            [StreamEvent::Other {
                kind: "assistant".into()
            }]
        );
    }

    #[test]
    fn non_json_and_blank_lines() {
        assert_eq!(
            parse_line("Error: something broke\r\n"),
            [StreamEvent::NotJson {
                line: "Error: something broke".into()
            }]
        );
        assert_eq!(
            parse_line("[1, 2]"),
            [StreamEvent::NotJson {
                line: "[1, 2]".into()
            }]
        );
        assert_eq!(
            parse_line(r#"{"type":"result","#),
            [StreamEvent::NotJson {
                line: r#"{"type":"result","#.into()
            }]
        );
        assert!(parse_line("").is_empty());
        assert!(parse_line("  \n").is_empty());
        assert_eq!(
            verbose_line(&StreamEvent::NotJson {
                line: "Error: something broke".into()
            })
            .as_deref(),
            Some("[Output] Error: something broke")
        );
    }

    #[test]
    fn a_session_cut_short_counts_its_tokens_per_model() {
        // Claude Code 2.1.332 past --max-budget-usd: zero `usage`, the real counts per model.
        let events = parse_line(
            r#"{"type":"result","subtype":"error_max_budget_usd","is_error":true,"num_turns":1,"total_cost_usd":0.0008,
                "usage":{"input_tokens":0,"output_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0},
                "modelUsage":{"claude-opus-5-5":{"inputTokens":100,"outputTokens":20,"cacheReadInputTokens":7,"cacheCreationInputTokens":0},
                              "claude-haiku-4-5":{"inputTokens":5,"outputTokens":"x"}}}"#,
        );
        let [StreamEvent::Result(result)] = events.as_slice() else { panic!("{events:?}") };
        assert_eq!(result.usage, TokenUsage { input_tokens: 105, output_tokens: 20, cache_creation_input_tokens: 0, cache_read_input_tokens: 7 });
        // A session's own `usage` wins when it has any.
        let events = parse_line(r#"{"type":"result","subtype":"success","usage":{"input_tokens":3,"output_tokens":4},"modelUsage":{"m":{"inputTokens":100}}}"#);
        let [StreamEvent::Result(result)] = events.as_slice() else { panic!("{events:?}") };
        assert_eq!((result.usage.input_tokens, result.usage.output_tokens), (3, 4));
    }

    #[test]
    fn a_retyped_field_costs_only_that_field() {
        let events = parse_line(
            r#"{"type":"result","subtype":"success","is_error":true,"num_turns":"three",
                "total_cost_usd":"free","api_error_status":429,"usage":null,
                "permission_denials":[{"tool_name":"Bash"},42],"errors":[{"code":1}]}"#,
        );
        let [StreamEvent::Result(result)] = events.as_slice() else {
            panic!("expected one result, got {events:?}");
        };
        assert!(result.is_error);
        assert_eq!(result.num_turns, 0);
        assert_eq!(result.total_cost_usd, None);
        assert_eq!(result.api_error_status, Some(429));
        assert_eq!(result.usage, TokenUsage::default());
        assert_eq!(
            result.permission_denials,
            [PermissionDenial {
                tool_name: "Bash".into(),
                ..Default::default()
            }]
        );
        assert_eq!(result.errors, [r#"{"code":1}"#]);
    }

    #[test]
    fn one_assistant_line_yields_one_event_per_block() {
        let line = json!({
            "type": "assistant",
            "message": {
                "model": "claude-x",
                "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "s"},
                    {"type": "text", "text": "Looking."},
                    {"type": "text", "text": "  \n"},
                    {"type": "server_tool_use", "name": "web_search"},
                    {"type": "tool_use", "id": "t1", "name": "Grep", "input": {"pattern": "fn main", "path": "src"}},
                    {"type": "tool_use", "id": "t2", "name": "Read", "input": {"file_path": "/w/src/lib.rs"}},
                    "not a block"
                ]
            }
        })
        .to_string();
        assert_eq!(
            parse_line(&line),
            [
                StreamEvent::Thinking { text: Some("hmm".into()) },
                StreamEvent::AssistantText {
                    text: "Looking.".into(),
                    synthetic: false
                },
                StreamEvent::ToolUse {
                    name: "Grep".into(),
                    summary: Some("fn main".into()),
                    input: json!({"pattern": "fn main", "path": "src"}),
                },
                StreamEvent::ToolUse {
                    name: "Read".into(),
                    summary: Some("/w/src/lib.rs".into()),
                    input: json!({"file_path": "/w/src/lib.rs"}),
                },
            ]
        );
        // A plain-string content is text too.
        assert_eq!(
            parse_line(
                r#"{"type":"assistant","message":{"model":"<synthetic>","content":"Usage limit reached"}}"#
            ),
            [StreamEvent::AssistantText {
                text: "Usage limit reached".into(),
                synthetic: true
            }]
        );
    }

    #[test]
    fn absurd_numbers_from_the_cli_are_clamped() {
        let retry = parse_line(r#"{"type":"system","subtype":"api_retry","attempt":1,"max_retries":10,"retry_delay_ms":1e300,"error_status":529}"#);
        let [StreamEvent::ApiRetry(retry)] = &retry[..] else { panic!("{retry:?}") };
        assert_eq!(retry.retry_delay_ms, MAX_RETRY_DELAY_MS);
        let result = parse_line(r#"{"type":"result","subtype":"success","is_error":false,"duration_ms":1.7e308,"num_turns":1,"result":"ok"}"#);
        let [StreamEvent::Result(result)] = &result[..] else { panic!("{result:?}") };
        assert_eq!(result.duration_ms, Some(MAX_DURATION_MS));
        // Instant arithmetic on them cannot overflow.
        let _ = std::time::Instant::now() + std::time::Duration::from_millis(retry.retry_delay_ms);
        let _ = std::time::Instant::now() + std::time::Duration::from_millis(MAX_DURATION_MS);
    }

    mod props {
        use super::super::*;
        use super::{verbose_line, StreamSummary};
        use crate::run::verdict::find_status_json;
        use proptest::prelude::*;

        /// JSON values of any shape, some of them in the places the parser looks.
        fn json() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
                any::<i64>().prop_map(Value::from),
                any::<String>().prop_map(Value::from),
                prop::sample::select(vec!["assistant", "user", "system", "result", "rate_limit_event", "init", "api_retry", "text", "tool_use", "tool_result", "rejected", "success", "error"]).prop_map(Value::from),
            ];
            leaf.prop_recursive(4, 48, 6, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                    prop::collection::vec(
                        (
                            prop_oneof![
                                prop::sample::select(vec!["type", "subtype", "message", "content", "text", "name", "input", "rate_limit_info", "resetsAt", "status", "retry_delay_ms", "duration_ms", "result", "is_error", "model", "session_id", "usage", "permission_denials", "num_turns", "total_cost_usd", "api_error_status", "attempt", "max_retries", "error_status", "utilization", "rateLimitType", "command", "file_path", "tool_use_id", "id"]).prop_map(str::to_owned),
                                any::<String>(),
                            ],
                            inner,
                        ),
                        0..8,
                    )
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
                ]
            })
        }

        fn check(line: &str) {
            let mut summary = StreamSummary::new();
            for ev in parse_line(line) {
                summary.observe(&ev);
                if let Some(l) = verbose_line(&ev) {
                    assert!(!l.chars().any(char::is_control), "{l:?}");
                }
            }
            let _ = summary.outcome();
            let _ = summary.last_activity();
            let _ = find_status_json(line);
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

            #[test]
            fn any_line_parses_without_panic(line in any::<String>()) {
                check(&line);
            }

            #[test]
            fn any_json_line_parses_without_panic(v in json()) {
                check(&v.to_string());
            }

            #[test]
            fn shaped_lines_parse_without_panic(
                kind in prop::sample::select(vec!["assistant", "user", "system", "result", "rate_limit_event"]),
                v in json(),
                reset in any::<f64>(),
            ) {
                let reset = serde_json::Number::from_f64(reset).map_or(Value::Null, Value::Number);
                let line = serde_json::json!({
                    "type": kind, "subtype": "api_retry", "message": {"content": [v.clone()], "model": "<synthetic>"},
                    "rate_limit_info": {"status": "rejected", "resetsAt": reset}, "retry_delay_ms": reset,
                    "duration_ms": reset, "result": v, "is_error": true,
                });
                check(&line.to_string());
            }
        }
    }
}
