//! The `--verbose` line of an agent's event (`[Tool] Edit: src/x.ts`, `[Result] 3 turns, $0.0024`),
//! shown by the terminal's verbose view, the run log and `baton logs`. Agent-neutral: the
//! agent's text is labelled `[Claude]` here, and the run's event line puts the running agent's
//! name in its place.

use crate::agent::event::{RateLimit, RateLimitStatus, ResultEvent, StreamEvent};
use crate::report::safe::{cut, one_line, terminal_line};

/// How many characters of assistant text a verbose line shows (PRODUCT.md §8).
const VERBOSE_TEXT_CHARS: usize = 200;

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
            retry.error_label(),
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
        StreamEvent::Thinking { .. } | StreamEvent::ToolResult { .. } | StreamEvent::Other { .. } => None,
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
        // The CLI gives epoch seconds; a person reads a time (UTC, like the run log's stamps).
        match jiff::Timestamp::from_second(resets_at) {
            Ok(t) => line.push_str(&format!(", resets at {t}")),
            Err(_) => line.push_str(&format!(", resets at {resets_at}")),
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::claude::stream::{tool, tool_summary};
    use crate::agent::event::ApiRetry;
    use crate::agent::summary::StreamSummary;
    use crate::report::safe::{is_bidi_control, terminal_text};
    use serde_json::{json, Value};

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
        [Limit] rejected, resets at 2026-11-25T23:00:00Z
        [Limit] queued (seven_day)
        [Result] 8 turns, $0.0342
        [Result] 1 turn — error: error_max_turns
        ");
    }

    #[test]
    fn events_without_a_verbose_line() {
        for event in [
            StreamEvent::ToolResult { is_error: true, output: None },
            StreamEvent::Thinking { text: None },
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
}
