//! Claude Code's `--output-format stream-json --verbose` output, read into baton's own types.
//!
//! This module owns the meaning of that stream: one line into [`StreamEvent`]s
//! ([`parse_line`]), a session's running [`StreamSummary`] (who ran, what it did, how the CLI
//! itself judged the run), the `--verbose` line for an event ([`verbose_line`]), and the search
//! for the task status object in the agent's final text ([`find_status_json`]).
//!
//! It must not do I/O or touch processes: reading lines (capped at [`MAX_LINE_BYTES`]),
//! keeping the raw transcript, timestamps, idle timeouts and signals belong to the caller.
//!
//! Parsing never fails. New CLI versions add event kinds, subtypes and fields, so an unknown
//! kind becomes [`StreamEvent::Other`], a field of an unexpected shape reads as absent, and
//! a line that is not a JSON object becomes [`StreamEvent::NotJson`]. One
//! odd line never costs baton the rest of the stream.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// The longest stream line the caller should hand to [`parse_line`].
///
/// Lines are big when a tool result carries file contents (an `Edit` result echoes the whole
/// original file), so the cap is generous; it exists so that a runaway line cannot make baton
/// buffer without bound. The line reader enforces it: a longer line is kept in the raw log
/// (cut) and skipped, not parsed. Nothing baton judges a run by (init, result, rate-limit and
/// retry events) comes near this size.
pub const MAX_LINE_BYTES: usize = 4 * 1024 * 1024;

/// How many characters of assistant text a verbose line shows (PRODUCT.md §8).
const VERBOSE_TEXT_CHARS: usize = 200;
/// How many characters of a tool's argument (a command, a pattern) a summary keeps.
const TOOL_SUMMARY_CHARS: usize = 80;
/// How many characters of assistant text the one-line live view shows.
const ACTIVITY_TEXT_CHARS: usize = 60;

/// The longest retry pause the CLI can announce that baton believes (an hour; the CLI's own
/// back-off is seconds to minutes). Callers add it to clocks: an absurd value must not overflow.
pub const MAX_RETRY_DELAY_MS: u64 = 3600 * 1000;

/// The longest session duration a result event can report (a year), for the same reason.
pub const MAX_DURATION_MS: u64 = 365 * 24 * 3600 * 1000;

/// The model name Claude Code puts on messages it writes itself (limit and API error texts).
const SYNTHETIC_MODEL: &str = "<synthetic>";

/// One thing that happened in an agent session, in baton's terms.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// The session started (`system/init`).
    Init {
        session_id: Option<String>,
        model: Option<String>,
        cwd: Option<String>,
        /// `claude_code_version`.
        version: Option<String>,
    },
    /// Text the model (or, when `synthetic`, the CLI itself: limit and API error messages)
    /// said. Blank text blocks are dropped.
    AssistantText { text: String, synthetic: bool },
    /// A thinking block: the model is working, nothing to show.
    Thinking,
    /// The model called a tool. `summary` is the argument a person wants to see (a file
    /// path, the command cut to 80 characters, the pattern…), already on one line.
    ToolUse {
        name: String,
        summary: Option<String>,
        input: Value,
    },
    /// A tool's result came back to the model.
    ToolResult { is_error: bool },
    /// The CLI refused a tool call (`system/permission_denied`).
    PermissionDenied(PermissionDenial),
    /// The CLI is retrying an API request itself (`system/api_retry`).
    ApiRetry(ApiRetry),
    /// Subscriber-mode usage-limit news (`rate_limit_event`).
    RateLimit(RateLimit),
    /// The final event of a session that ended on its own or by SIGINT.
    Result(ResultEvent),
    /// A JSON event baton does not act on; `kind` is `type`, or `type/subtype`.
    Other { kind: String },
    /// A line that is not a JSON object, kept so that the caller can show it.
    NotJson { line: String },
}

/// A retry the CLI makes on its own after an API error.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ApiRetry {
    pub attempt: u32,
    pub max_retries: u32,
    pub retry_delay_ms: u64,
    /// The HTTP status; absent when the request timed out.
    pub error_status: Option<u16>,
    /// The CLI's error class: `rate_limit`, `overloaded`, `server_error`, `unknown`, …
    pub error: Option<String>,
}

/// `rate_limit_info.status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateLimitStatus {
    Allowed,
    AllowedWarning,
    Rejected,
    Other(String),
}

impl RateLimitStatus {
    fn from_wire(status: &str) -> Self {
        match status {
            "allowed" => Self::Allowed,
            "allowed_warning" => Self::AllowedWarning,
            "rejected" => Self::Rejected,
            other => Self::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Allowed => "allowed",
            Self::AllowedWarning => "allowed_warning",
            Self::Rejected => "rejected",
            Self::Other(other) => other,
        }
    }
}

/// A `rate_limit_event` (subscriber mode only).
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimit {
    pub status: RateLimitStatus,
    /// The reset instant, Unix seconds: better than parsing the limit text.
    pub resets_at: Option<i64>,
    /// `rateLimitType`: `five_hour`, `seven_day`, …
    pub limit_type: Option<String>,
    /// Share of the window used, 0.0–1.0 (sent with warnings).
    pub utilization: Option<f64>,
}

/// A tool call the CLI refused to run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PermissionDenial {
    pub tool_name: String,
    pub tool_use_id: Option<String>,
    /// Why, when the CLI said so (the `result` event's list carries no reason; the live
    /// `system/permission_denied` event does, and [`StreamSummary`] joins the two).
    pub reason: Option<String>,
}

/// Token counts of the whole session, from the `result` event's `usage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TokenUsage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_creation_input_tokens: u64,
    pub cache_read_input_tokens: u64,
}

/// The `result` event: the CLI's own account of the session.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResultEvent {
    /// `success`, `error_during_execution`, `error_max_turns`, … — `success` alone does not
    /// mean success (see [`StreamSummary::outcome`]).
    pub subtype: String,
    pub is_error: bool,
    pub num_turns: u32,
    /// The final text; absent after SIGINT.
    pub result: Option<String>,
    pub total_cost_usd: Option<f64>,
    pub duration_ms: Option<u64>,
    pub usage: TokenUsage,
    /// `completed`, `api_error`, `aborted_tools`, …
    pub terminal_reason: Option<String>,
    pub api_error_status: Option<u16>,
    pub permission_denials: Vec<PermissionDenial>,
    /// The CLI's diagnostics on an error subtype (`errors`).
    pub errors: Vec<String>,
    pub session_id: Option<String>,
}

impl ResultEvent {
    /// Whether the CLI judged the session a failure. `subtype` is not enough: a rate-limited
    /// run ends with `subtype: success`, `is_error: true`, `terminal_reason: api_error`. Any
    /// `terminal_reason` but `completed` counts too (the run stopped short).
    pub fn is_failure(&self) -> bool {
        self.is_error
            || self.subtype != "success"
            || self.api_error_status.is_some()
            || self
                .terminal_reason
                .as_deref()
                .is_some_and(|reason| reason != "completed")
    }
}

/// Reads one line of the stream (the caller keeps lines under [`MAX_LINE_BYTES`]). A line
/// can carry several events (an assistant message has one per content block); a blank line
/// carries none; every other line yields at least one.
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
                RawBlock::Thinking | RawBlock::RedactedThinking => Some(StreamEvent::Thinking),
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
            }),
            _ => None,
        })
        .collect()
}

fn rate_limit(line: RawRateLimitLine) -> RateLimit {
    let info = line.rate_limit_info.0.unwrap_or_default();
    RateLimit {
        status: RateLimitStatus::from_wire(info.status.0.as_deref().unwrap_or("")),
        resets_at: info.resets_at.0.and_then(whole),
        limit_type: info.rate_limit_type.0,
        utilization: info.utilization.0,
    }
}

/// The argument of a tool call that a person wants to see, on one line.
fn tool_summary(name: &str, input: &Value) -> Option<String> {
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

/// Tools whose argument is a file: the live view names them "Edit src/x.ts".
fn is_file_tool(name: &str) -> bool {
    matches!(
        name,
        "Read" | "Edit" | "MultiEdit" | "Write" | "NotebookEdit"
    )
}

/// Collapses every run of whitespace, newlines included, to one space.
fn one_line(text: &str) -> String {
    terminal_line(text).split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Text from outside (an agent's output, a plan's names) made safe to print on a terminal, on
/// one line: line breaks and tabs become spaces, and every other control character (the escape
/// that starts a title change, a screen clear, a clipboard write `OSC 52`, a cursor move) and
/// every bidirectional override becomes `�`, so that what is printed is what the text says.
pub fn terminal_line(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            c if c.is_whitespace() && (c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')) => ' ',
            c if c.is_control() || is_bidi_control(c) => '\u{fffd}',
            c => c,
        })
        .collect()
}

/// Like [`terminal_line`], but line breaks (`\n`) stay: for baton's own multi-line texts
/// that quote outside text.
pub fn terminal_text(text: &str) -> String {
    text.split('\n').map(terminal_line).collect::<Vec<_>>().join("\n")
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// The first `max_chars` characters of `text`, with `…` when something was cut. Counts
/// `char`s, so it never splits a UTF-8 sequence.
fn cut(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        None => text.to_owned(),
        Some((end, _)) => format!("{}…", text[..end].trim_end()),
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

/// What baton keeps from a session's events: enough to judge the attempt, report it, and
/// show it live. Feed it every event with [`observe`](Self::observe).
#[derive(Debug, Clone, Default)]
pub struct StreamSummary {
    session_id: Option<String>,
    model: Option<String>,
    cwd: Option<String>,
    version: Option<String>,
    last_text: Option<String>,
    synthetic_texts: Vec<String>,
    tool_uses: u32,
    denials: Vec<PermissionDenial>,
    api_retries: u32,
    last_retry: Option<ApiRetry>,
    rate_limit_rejected: Option<RateLimit>,
    rate_limit_warning: Option<RateLimit>,
    result: Option<ResultEvent>,
    last_activity: Option<String>,
}

/// How the CLI itself judged the session, from its `result` event. baton's verdict on the
/// task also needs the status file; this is only the agent's side.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionOutcome {
    Success,
    /// The CLI reported an error (an API error after its own retries, SIGINT, …).
    ErrorResult {
        subtype: String,
        terminal_reason: Option<String>,
        api_error_status: Option<u16>,
        /// The best text saying what went wrong: the result text, the CLI's synthetic
        /// message, or its diagnostics.
        message: Option<String>,
    },
    /// The stream ended without a `result` event: killed (SIGTERM, SIGKILL) or it crashed.
    NoResult,
    /// The session finished, but the CLI refused some tool calls, so the work may be
    /// incomplete (e.g. the commit or the status file was never written).
    PermissionDenied {
        denials: Vec<PermissionDenial>,
    },
}

impl StreamSummary {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn observe(&mut self, ev: &StreamEvent) {
        match ev {
            StreamEvent::Init {
                session_id,
                model,
                cwd,
                version,
            } => {
                self.session_id.clone_from(session_id);
                self.model.clone_from(model);
                self.cwd.clone_from(cwd);
                self.version.clone_from(version);
                self.last_activity = Some("starting".to_owned());
            }
            StreamEvent::AssistantText { text, synthetic } => {
                if *synthetic {
                    self.synthetic_texts.push(text.clone());
                }
                self.last_text = Some(text.clone());
                self.last_activity = Some(cut(&one_line(text), ACTIVITY_TEXT_CHARS));
            }
            StreamEvent::Thinking => self.last_activity = Some("thinking".to_owned()),
            StreamEvent::ToolUse { name, summary, .. } => {
                self.tool_uses += 1;
                self.last_activity = Some(self.tool_activity(name, summary.as_deref()));
            }
            // The tool is done and the model is reading its result.
            StreamEvent::ToolResult { .. } => self.last_activity = Some("thinking".to_owned()),
            StreamEvent::PermissionDenied(denial) => {
                self.last_activity = Some(format!("permission denied: {}", denial.tool_name));
                self.denials.push(denial.clone());
            }
            StreamEvent::ApiRetry(retry) => {
                self.api_retries += 1;
                self.last_activity = Some(format!(
                    "{}, retry {}/{}",
                    api_error_label(retry.error_status, retry.error.as_deref()),
                    retry.attempt,
                    retry.max_retries
                ));
                self.last_retry = Some(retry.clone());
            }
            StreamEvent::RateLimit(limit) => match limit.status {
                RateLimitStatus::Rejected => {
                    self.rate_limit_rejected = Some(limit.clone());
                    self.last_activity = Some("rate limited".to_owned());
                }
                RateLimitStatus::AllowedWarning => self.rate_limit_warning = Some(limit.clone()),
                RateLimitStatus::Allowed | RateLimitStatus::Other(_) => {}
            },
            StreamEvent::Result(result) => {
                self.last_activity = Some(if result.is_failure() {
                    "finished with an error".to_owned()
                } else {
                    "finished".to_owned()
                });
                self.result = Some(result.clone());
            }
            StreamEvent::Other { .. } | StreamEvent::NotJson { .. } => {}
        }
    }

    /// From `system/init`, else from the `result` event.
    pub fn session_id(&self) -> Option<&str> {
        self.session_id
            .as_deref()
            .or_else(|| self.result.as_ref()?.session_id.as_deref())
    }

    /// The model the session ran with (from `system/init`).
    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    /// The working directory the CLI reported.
    pub fn cwd(&self) -> Option<&str> {
        self.cwd.as_deref()
    }

    /// `claude_code_version` from `system/init`.
    pub fn cli_version(&self) -> Option<&str> {
        self.version.as_deref()
    }

    /// The last assistant text, synthetic ones included: when a run fails it is usually the
    /// CLI's own explanation.
    pub fn last_text(&self) -> Option<&str> {
        self.last_text.as_deref()
    }

    /// Texts the CLI wrote itself (`"model": "<synthetic>"`): limit and API error messages,
    /// which the rate-limit parser reads when no `rate_limit_event` came.
    pub fn synthetic_texts(&self) -> &[String] {
        &self.synthetic_texts
    }

    pub fn tool_uses(&self) -> u32 {
        self.tool_uses
    }

    pub fn result(&self) -> Option<&ResultEvent> {
        self.result.as_ref()
    }

    /// The last `rate_limit_event` with status `rejected`.
    pub fn rate_limit_rejected(&self) -> Option<&RateLimit> {
        self.rate_limit_rejected.as_ref()
    }

    /// The last `rate_limit_event` with status `allowed_warning`.
    pub fn rate_limit_warning(&self) -> Option<&RateLimit> {
        self.rate_limit_warning.as_ref()
    }

    /// How many times the CLI retried an API request on its own.
    pub fn api_retries(&self) -> u32 {
        self.api_retries
    }

    pub fn last_retry(&self) -> Option<&ApiRetry> {
        self.last_retry.as_ref()
    }

    pub fn cost_usd(&self) -> Option<f64> {
        self.result.as_ref()?.total_cost_usd
    }

    pub fn turns(&self) -> Option<u32> {
        Some(self.result.as_ref()?.num_turns)
    }

    /// The refused tool calls: the `result` event's list (the CLI's final word) with reasons
    /// filled in from the live events; before a result, the live events alone.
    pub fn permission_denials(&self) -> Vec<PermissionDenial> {
        let Some(result) = &self.result else {
            return self.denials.clone();
        };
        result
            .permission_denials
            .iter()
            .map(|denial| {
                let mut denial = denial.clone();
                if denial.reason.is_none() {
                    denial.reason = self
                        .denials
                        .iter()
                        .find(|live| {
                            live.tool_use_id.is_some() && live.tool_use_id == denial.tool_use_id
                        })
                        .and_then(|live| live.reason.clone());
                }
                denial
            })
            .collect()
    }

    pub fn outcome(&self) -> SessionOutcome {
        let Some(result) = &self.result else {
            return SessionOutcome::NoResult;
        };
        if result.is_failure() {
            let message = result
                .result
                .clone()
                .filter(|text| !text.trim().is_empty())
                .or_else(|| self.synthetic_texts.last().cloned())
                .or_else(|| (!result.errors.is_empty()).then(|| result.errors.join("; ")));
            return SessionOutcome::ErrorResult {
                subtype: result.subtype.clone(),
                terminal_reason: result.terminal_reason.clone(),
                api_error_status: result.api_error_status,
                message,
            };
        }
        let denials = self.permission_denials();
        if denials.is_empty() {
            SessionOutcome::Success
        } else {
            SessionOutcome::PermissionDenied { denials }
        }
    }

    /// A short phrase for the live view: "Edit src/x.ts", "Bash: cargo test", "thinking".
    pub fn last_activity(&self) -> Option<String> {
        // Tool names and arguments come from the agent: safe, one line, bounded.
        self.last_activity.as_deref().map(|a| cut(&one_line(a), 2 * ACTIVITY_TEXT_CHARS))
    }

    fn tool_activity(&self, name: &str, summary: Option<&str>) -> String {
        match summary {
            None => name.to_owned(),
            Some(path) if is_file_tool(name) => {
                format!("{name} {}", relative_to(path, self.cwd.as_deref()))
            }
            Some(argument) => format!("{name}: {argument}"),
        }
    }
}

/// `path` relative to `cwd` when it lies inside it: worktree paths are long and alike.
fn relative_to<'a>(path: &'a str, cwd: Option<&str>) -> &'a str {
    cwd.map(|cwd| cwd.trim_end_matches('/'))
        .filter(|cwd| !cwd.is_empty())
        .and_then(|cwd| path.strip_prefix(cwd)?.strip_prefix('/'))
        .filter(|relative| !relative.is_empty())
        .unwrap_or(path)
}

/// "API 429", or for a request that got no status, "API error (unknown)".
fn api_error_label(status: Option<u16>, error: Option<&str>) -> String {
    match (status, error) {
        (Some(status), _) => format!("API {status}"),
        (None, Some(error)) => format!("API error ({error})"),
        (None, None) => "API error".to_owned(),
    }
}

/// The `--verbose` line for an event, without the time stamp (the caller prefixes it), or
/// `None` when the event is not worth a line (tool results, kinds baton does not know).
pub fn verbose_line(ev: &StreamEvent) -> Option<String> {
    // Every part of the line may come from the agent: safe for a terminal, one line, bounded.
    raw_verbose_line(ev).map(|l| cut(&terminal_line(&l), VERBOSE_LINE_CHARS))
}

/// The longest verbose line: the text (cut at [`VERBOSE_TEXT_CHARS`]) and some labels.
const VERBOSE_LINE_CHARS: usize = 2 * VERBOSE_TEXT_CHARS;

fn raw_verbose_line(ev: &StreamEvent) -> Option<String> {
    match ev {
        StreamEvent::Init {
            session_id, model, ..
        } => Some(format!(
            "[Init] model {}, session {}",
            model.as_deref().unwrap_or("?"),
            session_id.as_deref().unwrap_or("?")
        )),
        StreamEvent::AssistantText { text, .. } => {
            let text = one_line(text);
            (!text.is_empty()).then(|| format!("[Claude] {}", cut(&text, VERBOSE_TEXT_CHARS)))
        }
        StreamEvent::ToolUse { name, summary, .. } => Some(match summary {
            Some(summary) => format!("[Tool] {name}: {summary}"),
            None => format!("[Tool] {name}"),
        }),
        StreamEvent::PermissionDenied(denial) => Some(match &denial.reason {
            Some(reason) => format!(
                "[Denied] {}: {}",
                denial.tool_name,
                cut(&one_line(reason), VERBOSE_TEXT_CHARS)
            ),
            None => format!("[Denied] {}", denial.tool_name),
        }),
        StreamEvent::ApiRetry(retry) => Some(format!(
            "[Retry] {}, attempt {}/{}, next in {:.1}s",
            api_error_label(retry.error_status, retry.error.as_deref()),
            retry.attempt,
            retry.max_retries,
            // Precision loss above 2^53 ms is of no concern for a delay.
            retry.retry_delay_ms as f64 / 1000.0
        )),
        StreamEvent::RateLimit(limit) => rate_limit_line(limit),
        StreamEvent::Result(result) => Some(result_line(result)),
        StreamEvent::NotJson { line } => Some(format!(
            "[Output] {}",
            cut(&one_line(line), VERBOSE_TEXT_CHARS)
        )),
        StreamEvent::Thinking | StreamEvent::ToolResult { .. } | StreamEvent::Other { .. } => None,
    }
}

fn rate_limit_line(limit: &RateLimit) -> Option<String> {
    // "allowed" is the all-clear the CLI sends with ordinary turns.
    if limit.status == RateLimitStatus::Allowed {
        return None;
    }
    let mut details = Vec::new();
    if let Some(limit_type) = &limit.limit_type {
        details.push(limit_type.clone());
    }
    if let Some(utilization) = limit.utilization {
        details.push(format!("{:.0}% used", utilization * 100.0));
    }
    let mut line = format!("[Limit] {}", limit.status.as_str());
    if !details.is_empty() {
        line.push_str(&format!(" ({})", details.join(", ")));
    }
    if let Some(resets_at) = limit.resets_at {
        line.push_str(&format!(", resets at {resets_at}"));
    }
    Some(line)
}

fn result_line(result: &ResultEvent) -> String {
    let turns = match result.num_turns {
        1 => "1 turn".to_owned(),
        n => format!("{n} turns"),
    };
    let mut line = match result.total_cost_usd {
        Some(cost) => format!("[Result] {turns}, ${cost:.4}"),
        None => format!("[Result] {turns}"),
    };
    if result.is_failure() {
        let reason = result
            .terminal_reason
            .as_deref()
            .unwrap_or(result.subtype.as_str());
        line.push_str(&format!(" — error: {reason}"));
        if let Some(status) = result.api_error_status {
            line.push_str(&format!(" (API {status})"));
        }
    }
    line
}

/// Finds the task status object (PRODUCT.md §2) in the agent's final text: the last JSON
/// object with both a `task_id` and a `status` key, wherever it stands — in a ```json fence,
/// amid prose, next to other braces. Its values are not checked here.
///
/// An object nested inside a matching one is part of it, not a separate candidate.
pub fn find_status_json(text: &str) -> Option<Value> {
    let mut found = None;
    let mut from = 0;
    while let Some(offset) = text[from..].find('{') {
        let start = from + offset;
        // Objects delimit themselves, so the stream reader stops right after the first value,
        // whatever prose follows it.
        let mut values = serde_json::Deserializer::from_str(&text[start..]).into_iter::<Value>();
        match values.next() {
            Some(Ok(value)) if is_status_object(&value) => {
                from = start + values.byte_offset();
                found = Some(value);
            }
            // Not JSON from here, or another object: a status object may still start at the
            // next brace, inside it or after it. `{` is one byte, so this is a char boundary.
            _ => from = start + 1,
        }
    }
    found
}

fn is_status_object(value: &Value) -> bool {
    value
        .as_object()
        .is_some_and(|object| object.contains_key("task_id") && object.contains_key("status"))
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
    Thinking,
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
struct RawToolResult {
    is_error: Lenient<bool>,
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
        ResultEvent {
            subtype: self.subtype.0.unwrap_or_default(),
            is_error: self.is_error.0.unwrap_or(false),
            num_turns: self.num_turns.0.unwrap_or(0),
            result: self.result.0,
            total_cost_usd: self.total_cost_usd.0,
            duration_ms: self.duration_ms.0.and_then(whole).map(clamp_u64).map(|d| d.min(MAX_DURATION_MS)),
            usage: TokenUsage {
                input_tokens: count(usage.input_tokens),
                output_tokens: count(usage.output_tokens),
                cache_creation_input_tokens: count(usage.cache_creation_input_tokens),
                cache_read_input_tokens: count(usage.cache_read_input_tokens),
            },
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const HAPPY: &str =
        include_str!("../../tests/fixtures/agent-transcripts/claude-happy.stream.jsonl");
    const HAPPY_PARTIAL: &str = include_str!(
        "../../tests/fixtures/agent-transcripts/claude-happy-partial-messages.stream.jsonl"
    );
    const ALLOWED_WARNING: &str = include_str!(
        "../../tests/fixtures/agent-transcripts/claude-oauth-allowed-warning.stream.jsonl"
    );
    const OAUTH_HIT_LIMIT: &str = include_str!(
        "../../tests/fixtures/agent-transcripts/claude-429-oauth-hit-your-limit.stream.jsonl"
    );
    const OAUTH_FIVE_HOUR: &str = include_str!(
        "../../tests/fixtures/agent-transcripts/claude-429-oauth-5-hour-limit.stream.jsonl"
    );
    const OAUTH_WEEKLY: &str = include_str!(
        "../../tests/fixtures/agent-transcripts/claude-429-oauth-weekly-limit.stream.jsonl"
    );
    const OAUTH_MIDRUN: &str =
        include_str!("../../tests/fixtures/agent-transcripts/claude-429-oauth-midrun.stream.jsonl");
    const APIKEY_429: &str = include_str!(
        "../../tests/fixtures/agent-transcripts/claude-429-apikey-default-10-retries.stream.jsonl"
    );
    const OVERLOADED_529: &str = include_str!(
        "../../tests/fixtures/agent-transcripts/claude-529-default-10-retries.stream.jsonl"
    );
    const SERVER_500: &str =
        include_str!("../../tests/fixtures/agent-transcripts/claude-500-maxretries1.stream.jsonl");
    const API_TIMEOUT: &str = include_str!(
        "../../tests/fixtures/agent-transcripts/claude-hang-api-timeout-5s.stream.jsonl"
    );
    const PERMISSION_DENIAL: &str = include_str!(
        "../../tests/fixtures/agent-transcripts/claude-root-acceptEdits-permission-denial.stream.jsonl"
    );
    const SIGINT: &str = include_str!(
        "../../tests/fixtures/agent-transcripts/claude-sigint-during-bash.stream.jsonl"
    );
    const SIGTERM: &str = include_str!(
        "../../tests/fixtures/agent-transcripts/claude-sigterm-during-bash.stream.jsonl"
    );
    const STALLED: &str = include_str!(
        "../../tests/fixtures/agent-transcripts/claude-stalled-stream-330s-killed.stream.jsonl"
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
        [Limit] rejected (five_hour), resets at 1795647600
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
            lines.contains("[Limit] allowed_warning (five_hour, 92% used), resets at 1795647600"),
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
        assert!(events(PERMISSION_DENIAL).contains(&StreamEvent::ToolResult { is_error: true }));
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
                StreamEvent::Thinking,
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

    fn tool(name: &str, input: Value) -> StreamEvent {
        StreamEvent::ToolUse {
            summary: tool_summary(name, &input),
            name: name.into(),
            input,
        }
    }

    #[test]
    fn verbose_tool_lines() {
        let long_command = format!("cargo test --workspace -- {}", "x".repeat(100));
        let lines = [
            tool(
                "Edit",
                json!({"file_path": "src/x.ts", "old_string": "a", "new_string": "b"}),
            ),
            tool("NotebookEdit", json!({"notebook_path": "/w/a.ipynb"})),
            tool("Bash", json!({"command": "cargo build &&\n  cargo test"})),
            tool("Bash", json!({"command": long_command})),
            tool("Glob", json!({"pattern": "**/*.rs"})),
            tool(
                "WebFetch",
                json!({"url": "https://example.invalid/doc", "prompt": "p"}),
            ),
            tool("WebSearch", json!({"query": "serde internally tagged"})),
            tool(
                "Task",
                json!({"description": "Find callers", "subagent_type": "Explore", "prompt": "…"}),
            ),
            tool("TodoWrite", json!({"todos": []})),
            tool("Bash", json!({"command": 42})),
        ]
        .iter()
        .filter_map(verbose_line)
        .collect::<Vec<_>>()
        .join("\n");
        insta::assert_snapshot!(lines, @r"
        [Tool] Edit: src/x.ts
        [Tool] NotebookEdit: /w/a.ipynb
        [Tool] Bash: cargo build && cargo test
        [Tool] Bash: cargo test --workspace -- xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…
        [Tool] Glob: **/*.rs
        [Tool] WebFetch: https://example.invalid/doc
        [Tool] WebSearch: serde internally tagged
        [Tool] Task: Find callers (Explore)
        [Tool] TodoWrite
        [Tool] Bash
        ");
    }

    #[test]
    fn verbose_retry_limit_and_result_lines() {
        let lines = [
            StreamEvent::ApiRetry(ApiRetry {
                attempt: 1,
                max_retries: 10,
                retry_delay_ms: 5_230,
                error_status: Some(429),
                error: Some("rate_limit".into()),
            }),
            StreamEvent::RateLimit(RateLimit {
                status: RateLimitStatus::Rejected,
                resets_at: Some(1_795_647_600),
                limit_type: None,
                utilization: None,
            }),
            StreamEvent::RateLimit(RateLimit {
                status: RateLimitStatus::Other("queued".into()),
                resets_at: None,
                limit_type: Some("seven_day".into()),
                utilization: None,
            }),
            StreamEvent::Result(ResultEvent {
                subtype: "success".into(),
                num_turns: 8,
                total_cost_usd: Some(0.03421),
                terminal_reason: Some("completed".into()),
                ..Default::default()
            }),
            StreamEvent::Result(ResultEvent {
                subtype: "error_max_turns".into(),
                is_error: true,
                num_turns: 1,
                ..Default::default()
            }),
        ]
        .iter()
        .filter_map(verbose_line)
        .collect::<Vec<_>>()
        .join("\n");
        insta::assert_snapshot!(lines, @r"
        [Retry] API 429, attempt 1/10, next in 5.2s
        [Limit] rejected, resets at 1795647600
        [Limit] queued (seven_day)
        [Result] 8 turns, $0.0342
        [Result] 1 turn — error: error_max_turns
        ");
    }

    #[test]
    fn events_without_a_verbose_line() {
        for event in [
            StreamEvent::ToolResult { is_error: true },
            StreamEvent::Thinking,
            StreamEvent::Other {
                kind: "stream_event".into(),
            },
            StreamEvent::AssistantText {
                text: " \n ".into(),
                synthetic: false,
            },
            StreamEvent::RateLimit(RateLimit {
                status: RateLimitStatus::Allowed,
                resets_at: None,
                limit_type: None,
                utilization: None,
            }),
        ] {
            assert_eq!(verbose_line(&event), None, "{event:?}");
        }
    }

    #[test]
    fn text_is_cut_on_char_boundaries() {
        // 'é' is two bytes, '🦀' four: a byte-based cut would panic or split them.
        let text = format!("{}\n\n{}", "é".repeat(150), "🦀".repeat(100));
        let line = verbose_line(&StreamEvent::AssistantText {
            text,
            synthetic: false,
        })
        .unwrap_or_default();
        let shown = line.strip_prefix("[Claude] ").unwrap_or_default();
        assert_eq!(shown.chars().count(), 201);
        assert!(shown.starts_with(&format!("{} 🦀", "é".repeat(150))));
        assert!(shown.ends_with("🦀…"));
        // At the limit nothing is cut.
        let exact = "ü".repeat(200);
        assert_eq!(
            verbose_line(&StreamEvent::AssistantText {
                text: exact.clone(),
                synthetic: false
            }),
            Some(format!("[Claude] {exact}"))
        );
        assert_eq!(cut("ab", 0), "…");
        assert_eq!(cut("", 3), "");
        let command = "ä".repeat(81);
        assert_eq!(
            tool_summary("Bash", &json!({ "command": command })),
            Some(format!("{}…", "ä".repeat(80)))
        );
    }

    #[test]
    fn live_activity_phrases() {
        let mut summary = StreamSummary::new();
        assert_eq!(summary.last_activity(), None);
        let init = parse_line(
            r#"{"type":"system","subtype":"init","session_id":"s","model":"m","cwd":"/w/task-1/"}"#,
        );
        let steps = [
            (init, "starting"),
            (
                vec![tool("Edit", json!({"file_path": "/w/task-1/src/x.ts"}))],
                "Edit src/x.ts",
            ),
            (
                vec![tool("Read", json!({"file_path": "/elsewhere/y.rs"}))],
                "Read /elsewhere/y.rs",
            ),
            (
                vec![tool("Bash", json!({"command": "cargo test"}))],
                "Bash: cargo test",
            ),
            (
                vec![StreamEvent::ToolResult { is_error: false }],
                "thinking",
            ),
            (vec![tool("TodoWrite", json!({}))], "TodoWrite"),
            (vec![StreamEvent::Thinking], "thinking"),
            (
                vec![StreamEvent::AssistantText {
                    text: "Now\nlet me check the tests.".into(),
                    synthetic: false,
                }],
                "Now let me check the tests.",
            ),
            (
                vec![StreamEvent::Other {
                    kind: "system/status".into(),
                }],
                "Now let me check the tests.",
            ),
        ];
        for (events, expected) in steps {
            for event in &events {
                summary.observe(event);
            }
            assert_eq!(summary.last_activity().as_deref(), Some(expected));
        }
        summary.observe(&StreamEvent::ApiRetry(ApiRetry {
            attempt: 3,
            max_retries: 10,
            error_status: Some(529),
            ..Default::default()
        }));
        assert_eq!(
            summary.last_activity().as_deref(),
            Some("API 529, retry 3/10")
        );
    }

    #[test]
    fn a_clean_looking_result_that_did_not_complete_is_an_error() {
        let mut summary = StreamSummary::new();
        summary.observe(&StreamEvent::Result(ResultEvent {
            subtype: "success".into(),
            terminal_reason: Some("max_turns".into()),
            result: Some("  ".into()),
            ..Default::default()
        }));
        assert_eq!(
            summary.outcome(),
            SessionOutcome::ErrorResult {
                subtype: "success".into(),
                terminal_reason: Some("max_turns".into()),
                api_error_status: None,
                message: None,
            }
        );
        // With no init, the result's session id serves.
        let mut summary = StreamSummary::new();
        summary.observe(&StreamEvent::Result(ResultEvent {
            subtype: "success".into(),
            session_id: Some("from-result".into()),
            ..Default::default()
        }));
        assert_eq!(summary.outcome(), SessionOutcome::Success);
        assert_eq!(summary.session_id(), Some("from-result"));
    }

    #[test]
    fn status_json_in_a_fence_amid_prose() {
        let text = "Done. I could not write the file, so here it is:\n\n```json\n{\"task_id\": \"1.2\", \"status\": \"completed\", \"message\": \"added {braces} and \\\"quotes\\\" }\", \"plan_modified\": false}\n```\n\nLet me know {if anything} else is needed.";
        assert_eq!(
            find_status_json(text),
            Some(json!({
                "task_id": "1.2",
                "status": "completed",
                "message": "added {braces} and \"quotes\" }",
                "plan_modified": false
            }))
        );
    }

    #[test]
    fn status_json_bare_and_among_other_objects() {
        assert_eq!(
            find_status_json(r#"{"task_id":"3","status":"failed"}"#),
            Some(json!({"task_id": "3", "status": "failed"}))
        );
        // The last one wins; objects without both keys do not count.
        let text = r#"first {"task_id":"1","status":"failed"} then fn main() { } and
            {"task_id":"1","status":"completed","details":{"task_id":"sub","status":"ok"}}
            and finally {"status":"ok"} {"task_id":"9"}"#;
        assert_eq!(
            find_status_json(text),
            Some(json!({
                "task_id": "1",
                "status": "completed",
                "details": {"task_id": "sub", "status": "ok"}
            }))
        );
        // Nested in an object that is not a status object itself.
        assert_eq!(
            find_status_json(r#"{"file": {"task_id": "2", "status": "skipped"}}"#),
            Some(json!({"task_id": "2", "status": "skipped"}))
        );
    }

    #[test]
    fn status_json_absent() {
        for text in [
            "",
            "All done.",
            "{",
            "} {",
            r#"{"status":"completed","message":"no id"}"#,
            r#"{"task_id":"1","state":"completed"}"#,
            r#"["task_id", "status"]"#,
            r#"{'task_id': '1', 'status': 'completed'}"#,
            "{\"task_id\": \"1\", \"status\": \"completed\"",
        ] {
            assert_eq!(find_status_json(text), None, "{text}");
        }
    }

    #[test]
    fn agent_text_reaches_a_terminal_as_text() {
        let hostile = "title\u{1b}]0;pwned\u{7} clear\u{1b}[2J\u{1b}[H clip\u{1b}]52;c;aGk=\u{7} cursor\u{1b}[10A\rover\nnext \u{202e}evil\u{9b}31m";
        let events = [
            StreamEvent::AssistantText { text: hostile.to_owned(), synthetic: false },
            StreamEvent::ToolUse { name: format!("Bash{hostile}"), summary: Some(hostile.to_owned()), input: Value::Null },
            StreamEvent::NotJson { line: hostile.to_owned() },
            StreamEvent::Init { session_id: Some(hostile.to_owned()), model: Some(hostile.to_owned()), cwd: None, version: None },
        ];
        let mut summary = StreamSummary::new();
        for ev in &events {
            let line = verbose_line(ev).expect("a line");
            summary.observe(ev);
            let activity = summary.last_activity().expect("an activity");
            for shown in [&line, &activity] {
                assert!(!shown.chars().any(|c| c.is_control() || is_bidi_control(c)), "{shown:?}");
            }
            assert!(line.contains('\u{fffd}'), "the escapes are shown as replaced: {line:?}");
            assert!(line.chars().count() <= VERBOSE_LINE_CHARS + 1, "{line:?}");
        }
        assert_eq!(terminal_text("a\u{1b}[2J\nb\tc"), "a\u{fffd}[2J\nb c");
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
