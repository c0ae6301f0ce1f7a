//! What happened in an agent session, in baton's terms: the events every agent's stream parser
//! produces, whatever the CLI. Each agent kind reads its own output into these (Claude Code's
//! `stream-json` in [`super::claude::stream`]); the summary, the verdict and the views read only
//! these.
//!
//! The vocabulary follows Claude Code's, the first agent: a tool is named as Claude Code names
//! it (`Edit`, `Bash`), a result's `subtype` and `terminal_reason` say `success` and
//! `completed` for a clean end. Another CLI's parser maps its own words onto these.

use serde_json::Value;

/// The longest stream line the caller should hand to an agent's stream parser.
///
/// Lines are big when a tool result carries file contents (an `Edit` result echoes the whole
/// original file), so the cap is generous; it exists so that a runaway line cannot make baton
/// buffer without bound. The line reader enforces it: a longer line is kept in the raw log
/// (cut) and skipped, not parsed. Nothing baton judges a run by (init, result, rate-limit and
/// retry events) comes near this size.
pub const MAX_LINE_BYTES: usize = 4 * 1024 * 1024;

/// The longest retry pause the CLI can announce that baton believes (an hour; the CLI's own
/// back-off is seconds to minutes). Callers add it to clocks: an absurd value must not overflow.
pub const MAX_RETRY_DELAY_MS: u64 = 3600 * 1000;

/// The longest session duration a result event can report (a year), for the same reason.
pub const MAX_DURATION_MS: u64 = 365 * 24 * 3600 * 1000;

/// One thing that happened in an agent session, in baton's terms.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// The session started (Claude Code's `system/init`).
    Init {
        session_id: Option<String>,
        model: Option<String>,
        cwd: Option<String>,
        /// The CLI's version (Claude Code's `claude_code_version`).
        version: Option<String>,
    },
    /// Text the model (or, when `synthetic`, the CLI itself: limit and API error messages)
    /// said. Blank text blocks are dropped.
    AssistantText { text: String, synthetic: bool },
    /// A thinking block: the model is working. `text` is its reasoning when the CLI shows it
    /// (only a view of the whole transcript shows it: the dashboard's).
    Thinking { text: Option<String> },
    /// The model called a tool. `summary` is the argument a person wants to see (a file
    /// path, the command cut to 80 characters, the pattern…), already on one line.
    ToolUse {
        name: String,
        summary: Option<String>,
        input: Value,
    },
    /// A tool's result came back to the model. `output` is what the tool printed or returned,
    /// when the CLI shows it (only a view of the whole transcript shows it: the dashboard's).
    ToolResult { is_error: bool, output: Option<String> },
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

impl ApiRetry {
    /// "API 429", or for a request that got no status, "API error (unknown)".
    pub fn error_label(&self) -> String {
        match (self.error_status, self.error.as_deref()) {
            (Some(status), _) => format!("API {status}"),
            (None, Some(error)) => format!("API error ({error})"),
            (None, None) => "API error".to_owned(),
        }
    }
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


/// Tools whose argument is a file: the live view names them "Edit src/x.ts".
pub fn is_file_tool(name: &str) -> bool {
    matches!(
        name,
        "Read" | "Edit" | "MultiEdit" | "Write" | "NotebookEdit"
    )
}
