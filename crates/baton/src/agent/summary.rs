//! A session's running account, from its events: who ran, what it did, how the CLI itself
//! judged the run, and the phrase the live view shows. Agent-neutral: it reads only
//! [`StreamEvent`]s, whichever agent's parser made them.

use super::event::{is_file_tool, ApiRetry, PermissionDenial, RateLimit, RateLimitStatus, ResultEvent, StreamEvent};
use crate::report::safe::{cut, one_line};

/// How many characters of assistant text the one-line live view shows.
const ACTIVITY_TEXT_CHARS: usize = 60;

/// How much of the session's latest text [`StreamSummary::recent_text`] keeps.
const RECENT_TEXT_BYTES: usize = 64 * 1024;
/// The most of the model's current message kept, joined from its chunks (its end: where a
/// report is; a runaway stream must not grow it without bound).
const MESSAGE_TEXT_BYTES: usize = 4 * 1024 * 1024;

/// Keeps the last `max` bytes of `text` (at a character boundary).
fn keep_tail(text: &mut String, max: usize) {
    if text.len() > max {
        let mut cut = text.len() - max;
        while !text.is_char_boundary(cut) {
            cut += 1;
        }
        text.drain(..cut);
    }
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
    /// The model's current message: its text events since the last other event, joined (a CLI
    /// that streams its answer in chunks, like the Gemini CLI, sends one event per chunk).
    message_text: String,
    in_message: bool,
    recent_text: String,
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
        let continues_message = matches!(ev, StreamEvent::AssistantText { synthetic: false, .. } | StreamEvent::Other { .. } | StreamEvent::NotJson { .. });
        if !continues_message {
            self.in_message = false;
        }
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
                } else {
                    if !self.in_message {
                        self.message_text.clear();
                    }
                    self.message_text.push_str(text);
                    keep_tail(&mut self.message_text, MESSAGE_TEXT_BYTES);
                    self.in_message = true;
                    self.keep_recent(text);
                }
                self.last_text = Some(text.clone());
                self.last_activity = Some(cut(&one_line(text), ACTIVITY_TEXT_CHARS));
            }
            StreamEvent::Thinking { .. } => self.last_activity = Some("thinking".to_owned()),
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
                    retry.error_label(),
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
                let mut result = result.clone();
                // A CLI whose result carries no text (the Gemini CLI): the answer is the
                // model's last message.
                if result.result.is_none() && !result.is_failure() && !self.message_text.is_empty() {
                    result.result = Some(self.message_text.clone());
                }
                self.result = Some(result);
            }
            StreamEvent::Other { .. } | StreamEvent::NotJson { .. } => {}
        }
    }

    /// From the session's start ([`StreamEvent::Init`]), else from its result.
    pub fn session_id(&self) -> Option<&str> {
        self.session_id
            .as_deref()
            .or_else(|| self.result.as_ref()?.session_id.as_deref())
    }

    /// The model the session ran with (from its start).
    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    /// The working directory the CLI reported.
    pub fn cwd(&self) -> Option<&str> {
        self.cwd.as_deref()
    }

    /// The CLI's version, as it said at the session's start.
    pub fn cli_version(&self) -> Option<&str> {
        self.version.as_deref()
    }

    /// The last assistant text, synthetic ones included: when a run fails it is usually the
    /// CLI's own explanation.
    pub fn last_text(&self) -> Option<&str> {
        self.last_text.as_deref()
    }

    /// The agent's latest texts (not the CLI's synthetic ones), one after the other on lines of
    /// their own, at most the last 64 KiB: the final answer of a CLI that has no result event.
    pub fn recent_text(&self) -> &str {
        &self.recent_text
    }

    fn keep_recent(&mut self, text: &str) {
        self.recent_text.push_str(text);
        self.recent_text.push('\n');
        keep_tail(&mut self.recent_text, RECENT_TEXT_BYTES);
    }

    /// Texts the CLI wrote itself (Claude Code marks them `"model": "<synthetic>"`): limit and
    /// API error messages, which the limit verdict reads when no rate-limit event came.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::claude::stream::{parse_line, tool};
    use serde_json::json;

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
                vec![StreamEvent::ToolResult { is_error: false, output: None }],
                "thinking",
            ),
            (vec![tool("TodoWrite", json!({}))], "TodoWrite"),
            (vec![StreamEvent::Thinking { text: None }], "thinking"),
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
    fn a_result_without_text_takes_the_models_last_words() {
        let text = |t: &str, synthetic| StreamEvent::AssistantText { text: t.into(), synthetic };
        let mut summary = StreamSummary::new();
        summary.observe(&text("All done. {\"task_id\":\"1\",\"status\":\"completed\"}", false));
        summary.observe(&text("Model metadata not found", true));
        summary.observe(&StreamEvent::Result(ResultEvent { subtype: "success".into(), ..Default::default() }));
        assert_eq!(summary.result().and_then(|r| r.result.as_deref()), Some("All done. {\"task_id\":\"1\",\"status\":\"completed\"}"));
        // An error result keeps its own (absent) text.
        summary.observe(&StreamEvent::Result(ResultEvent { subtype: "error".into(), is_error: true, ..Default::default() }));
        assert_eq!(summary.result().and_then(|r| r.result.as_deref()), None);
    }
}
