//! Usage limits and server-side throttling at the end of an attempt, in baton's terms.
//!
//! Owns the precedence that turns what an agent CLI reported about itself ([`LimitEvidence`],
//! filled from the agent-neutral stream summary) into a [`LimitVerdict`], applying the agent's
//! own recognisers ([`LimitWording`]: Claude Code's are in `agent::claude::limits`), and the
//! choice of when to wake up again.
//!
//! Must not read the clock, sleep, or parse JSON: `now` is passed in, and the caller has
//! already picked the relevant fields out of the stream. It must also not look at what the
//! agent *wrote*: an agent discussing rate limits in its own prose is not rate-limited. Only
//! the CLI's own error result, its synthetic messages, its `rate_limit_event` and its stderr
//! count, and none of them count when the attempt ended in success.

use std::time::Duration;

use jiff::{Timestamp, ZonedDateTime};

/// Sleep this long past the reset instant, so the provider's clock has surely rolled over.
pub const WAKE_MARGIN: Duration = Duration::from_secs(30);

/// Sleep this long when a limit was recognised but its reset time was not.
pub const WAKE_FALLBACK: Duration = Duration::from_secs(60 * 60);

/// The furthest ahead a usage limit's reset can plausibly be: the longest limit window
/// (weekly) plus a day. A reset further out, from a CLI bug or a hostile stream (year 9999), is
/// treated as unreadable: baton waits [`WAKE_FALLBACK`]-style instead of for years, and no
/// arithmetic on it can overflow.
pub const MAX_RESET_AHEAD: Duration = Duration::from_secs(8 * 24 * 3600);

/// The longest any wake-up is put off: a month (settings in seconds are capped at 30 days),
/// so that callers can add a wait to a clock without overflow.
pub const MAX_WAIT: Duration = Duration::from_secs(31 * 24 * 3600);

/// Longest message kept in a verdict; limit messages are one short line, and anything longer
/// is not one the CLI wrote for a person.
const MESSAGE_MAX_CHARS: usize = 300;

/// What the agent CLI reported about itself during one attempt, picked out of its output by the
/// caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LimitEvidence {
    /// `result.result` of the final `result` event, if there was one.
    pub result_text: Option<String>,
    /// `result.is_error`.
    pub result_is_error: bool,
    /// `result.api_error_status`.
    pub api_error_status: Option<u16>,
    /// The text of assistant messages whose model is `"<synthetic>"`: the CLI writes its own
    /// error messages that way.
    pub synthetic_texts: Vec<String>,
    /// `rate_limit_info.resetsAt` (epoch seconds) of a `rate_limit_event` whose status was
    /// `rejected`.
    pub rate_limit_rejected_resets_at: Option<i64>,
    /// The last lines the CLI wrote to stderr.
    pub stderr_tail: Option<String>,
}

/// Whether an attempt ran into a limit, and which kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum LimitVerdict {
    /// No limit: the attempt's outcome stands as it is.
    #[default]
    None,
    /// The account's usage limit: wait for the reset, then retry without spending an attempt.
    Usage(UsageLimit),
    /// The API is pushing back on everyone (throttling, overload): back off with jitter, run
    /// fewer agents at once, retry without spending an attempt.
    Throttled(Throttling),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageLimit {
    /// When the limit lifts, if it could be told.
    pub resets_at: Option<Timestamp>,
    /// The IANA time zone named in the CLI's message, as printed (for showing the wake-up time
    /// the way the user's CLI does).
    pub zone: Option<String>,
    /// The CLI's own message, for the user.
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Throttling {
    /// The CLI's own message, for the user.
    pub message: String,
    /// The HTTP status, when known (429, 529).
    pub status: Option<u16>,
}

/// How one agent CLI words its limits: the recognisers [`classify`] applies to the CLI's own
/// messages (never to the agent's prose). Each agent kind's dialect supplies one.
pub trait LimitWording {
    /// Whether `text` says the account's usage limit was reached.
    fn is_usage_limit(&self, text: &str) -> bool;
    /// The reset instant printed in a usage-limit message, read against `now`, with the time
    /// zone's name when the message names one (a CLI that prints local time names none).
    fn printed_reset(&self, text: &str, now: &ZonedDateTime) -> Option<(Timestamp, Option<String>)>;
    /// A reset instant written without a zone (an epoch suffix), for CLIs that have such a form.
    fn bare_reset(&self, _text: &str) -> Option<Timestamp> {
        None
    }
    /// If `text` says the API is throttling, the HTTP status it names (if any).
    fn throttle_status(&self, text: &str) -> Option<Option<u16>>;
}

/// Decides whether an attempt ran into a usage limit or server-side throttling.
///
/// Precedence: an attempt that ended in success is never limited, whatever was said on the
/// way. Otherwise a rejected `rate_limit_event` or a usage-limit message makes it a usage
/// limit (the event's `resetsAt` preferred, else the time parsed from the message against
/// `now`); a throttling message, or an error result with API status 429/529, makes it
/// throttling; anything else (a plain 500, a crash) is an ordinary failure.
pub fn classify<W: LimitWording + ?Sized>(evidence: &LimitEvidence, wording: &W, now: &ZonedDateTime) -> LimitVerdict {
    let ended_in_success = !evidence.result_is_error && evidence.result_text.is_some();
    if ended_in_success {
        return LimitVerdict::None;
    }
    let texts = cli_texts(evidence);

    let usage_texts: Vec<&str> = texts
        .iter()
        .copied()
        .filter(|t| wording.is_usage_limit(t))
        .collect();
    if evidence.rate_limit_rejected_resets_at.is_some() || !usage_texts.is_empty() {
        let plausible = |at: &Timestamp| plausible_reset(*at, now.timestamp());
        let printed = usage_texts.iter().find_map(|t| wording.printed_reset(t, now)).filter(|(at, _)| plausible(at));
        let from_event = evidence
            .rate_limit_rejected_resets_at
            .and_then(|s| Timestamp::from_second(s).ok())
            .filter(plausible);
        let resets_at = from_event
            .or(printed.as_ref().map(|(at, _)| *at))
            .or_else(|| usage_texts.iter().find_map(|t| wording.bare_reset(t)).filter(plausible));
        let message = match usage_texts.first() {
            Some(text) => first_line(text),
            None => "usage limit reached (the agent CLI reported a rejected rate limit)".to_owned(),
        };
        return LimitVerdict::Usage(UsageLimit {
            resets_at,
            zone: printed.and_then(|(_, zone)| zone),
            message,
        });
    }

    if let Some((text, status)) = texts
        .iter()
        .find_map(|t| wording.throttle_status(t).map(|s| (*t, s)))
    {
        return LimitVerdict::Throttled(Throttling {
            message: first_line(text),
            status: status.or(evidence.api_error_status),
        });
    }

    match evidence.api_error_status {
        Some(status @ (429 | 529)) if evidence.result_is_error => {
            let message = match evidence.result_text.as_deref() {
                Some(text) if !text.trim().is_empty() => first_line(text),
                _ => format!("API error {status}"),
            };
            LimitVerdict::Throttled(Throttling {
                message,
                status: Some(status),
            })
        }
        _ => LimitVerdict::None,
    }
}

/// When to try again after a usage limit: the reset plus `margin`, or `now` plus `fallback`
/// when the reset is unknown. Never earlier than `now + margin`, so a reset already past (a
/// skewed clock, a stale message) cannot make baton hammer the API in a tight loop.
pub fn wake_at(
    verdict_reset: Option<Timestamp>,
    now: Timestamp,
    margin: Duration,
    fallback: Duration,
) -> Timestamp {
    let after = |t: Timestamp, d: Duration| t.saturating_add(d).unwrap_or(Timestamp::MAX);
    let wake = match verdict_reset.filter(|r| plausible_reset(*r, now)) {
        Some(reset) => after(reset.max(now), margin.min(MAX_WAIT)),
        None => after(now, fallback.min(MAX_WAIT)),
    };
    wake.min(after(now, MAX_WAIT))
}

/// Whether a reset instant is close enough to `now` to be believed (see [`MAX_RESET_AHEAD`]).
/// A reset in the past is plausible: it means "now".
fn plausible_reset(reset: Timestamp, now: Timestamp) -> bool {
    now.saturating_add(MAX_RESET_AHEAD).map_or(true, |limit| reset <= limit)
}

/// The CLI's own messages, most authoritative first. Each stderr line is a message of its own,
/// since other output surrounds them there.
fn cli_texts(evidence: &LimitEvidence) -> Vec<&str> {
    let mut texts = Vec::new();
    if evidence.result_is_error {
        texts.extend(evidence.result_text.as_deref());
    }
    texts.extend(evidence.synthetic_texts.iter().map(String::as_str));
    if let Some(stderr) = &evidence.stderr_tail {
        texts.extend(stderr.lines());
    }
    texts
}

/// The message's first line, trimmed and of bounded length, for showing to a person.
fn first_line(text: &str) -> String {
    crate::report::safe::cut(text.trim_start().lines().next().unwrap_or_default().trim_end(), MESSAGE_MAX_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::claude::limits::parse_reset;
    use crate::agent::claude::Claude;

    /// [`classify`] with Claude Code's wording, whose messages these tests quote.
    fn classify(evidence: &LimitEvidence, now: &ZonedDateTime) -> LimitVerdict {
        super::classify(evidence, &Claude, now)
    }

    fn zoned(s: &str) -> ZonedDateTime {
        s.parse().expect("test instant")
    }


    // ---- wake_at ----

    #[test]
    fn wake_at_is_reset_plus_margin_or_now_plus_fallback() {
        let now: Timestamp = "2026-11-25T13:42:33Z".parse().expect("test instant");
        let reset: Timestamp = "2026-11-25T23:00:00Z".parse().expect("test instant");
        let woke = wake_at(Some(reset), now, WAKE_MARGIN, WAKE_FALLBACK);
        assert_eq!(woke.to_string(), "2026-11-25T23:00:30Z");
        let woke = wake_at(None, now, WAKE_MARGIN, WAKE_FALLBACK);
        assert_eq!(woke.to_string(), "2026-11-25T14:42:33Z");
    }

    #[test]
    fn wake_at_never_earlier_than_now_plus_margin() {
        let now: Timestamp = "2026-11-25T13:42:33Z".parse().expect("test instant");
        let stale: Timestamp = "2026-11-25T13:00:00Z".parse().expect("test instant");
        let woke = wake_at(Some(stale), now, WAKE_MARGIN, WAKE_FALLBACK);
        assert_eq!(woke.to_string(), "2026-11-25T13:43:03Z");
    }

    #[test]
    fn wake_at_is_never_far_off() {
        let now: Timestamp = "2026-11-25T13:42:33Z".parse().expect("test instant");
        let fallback = now.saturating_add(WAKE_FALLBACK).expect("in range");
        // A reset years away is not believed: the fallback wait applies.
        assert_eq!(wake_at(Some(Timestamp::MAX), now, WAKE_MARGIN, WAKE_FALLBACK), fallback);
        let far: Timestamp = "9999-12-30T00:00:00Z".parse().expect("test instant");
        assert_eq!(wake_at(Some(far), now, WAKE_MARGIN, WAKE_FALLBACK), fallback);
        // A weekly reset is believed.
        let week = now.saturating_add(Duration::from_secs(7 * 24 * 3600)).expect("in range");
        assert_eq!(wake_at(Some(week), now, WAKE_MARGIN, WAKE_FALLBACK), week.saturating_add(WAKE_MARGIN).expect("in range"));
        // Absurd waits are capped.
        let cap = now.saturating_add(MAX_WAIT).expect("in range");
        assert_eq!(wake_at(None, now, WAKE_MARGIN, Duration::MAX), cap);
        assert_eq!(wake_at(Some(now), now, Duration::MAX, WAKE_FALLBACK), cap);
        // Whatever the clock says, nothing overflows.
        assert!(wake_at(Some(Timestamp::MIN), Timestamp::MAX, Duration::MAX, Duration::MAX) <= Timestamp::MAX);
    }

    #[test]
    fn a_reset_in_year_9999_is_treated_as_unreadable() {
        let now = zoned("2026-11-25T13:42:33+00:00[UTC]");
        let evidence = LimitEvidence {
            rate_limit_rejected_resets_at: Some(253_402_000_000),
            ..LimitEvidence::default()
        };
        let LimitVerdict::Usage(limit) = classify(&evidence, &now) else { panic!("a usage limit") };
        assert_eq!(limit.resets_at, None);
        let evidence = LimitEvidence { rate_limit_rejected_resets_at: Some(i64::MAX), ..LimitEvidence::default() };
        let LimitVerdict::Usage(limit) = classify(&evidence, &now) else { panic!("a usage limit") };
        assert_eq!(limit.resets_at, None);
    }

    // ---- classify: the real transcripts ----

    /// Builds the evidence the stream parser would, from a recorded `stream-json` transcript.
    fn evidence_from_transcript(name: &str) -> LimitEvidence {
        let path = format!(
            "{}/tests/fixtures/agent-transcripts/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let stream = std::fs::read_to_string(&path).expect("fixture transcript");
        let mut evidence = LimitEvidence::default();
        for line in stream.lines() {
            let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            match event["type"].as_str() {
                Some("result") => {
                    evidence.result_text = event["result"].as_str().map(str::to_owned);
                    evidence.result_is_error = event["is_error"].as_bool().unwrap_or(false);
                    evidence.api_error_status = event["api_error_status"]
                        .as_u64()
                        .and_then(|s| u16::try_from(s).ok());
                }
                Some("assistant") if event["message"]["model"] == "<synthetic>" => {
                    let blocks = event["message"]["content"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default();
                    evidence.synthetic_texts.extend(
                        blocks
                            .iter()
                            .filter_map(|b| b["text"].as_str())
                            .map(str::to_owned),
                    );
                }
                Some("rate_limit_event") if event["rate_limit_info"]["status"] == "rejected" => {
                    evidence.rate_limit_rejected_resets_at =
                        event["rate_limit_info"]["resetsAt"].as_i64();
                }
                _ => {}
            }
        }
        evidence
    }

    /// When the transcripts were recorded.
    fn recorded_now() -> ZonedDateTime {
        zoned("2026-11-25T13:42:33Z[UTC]")
    }

    fn usage(verdict: LimitVerdict) -> UsageLimit {
        match verdict {
            LimitVerdict::Usage(limit) => limit,
            other => panic!("expected a usage limit, got {other:?}"),
        }
    }

    fn throttled(verdict: LimitVerdict) -> Throttling {
        match verdict {
            LimitVerdict::Throttled(throttling) => throttling,
            other => panic!("expected throttling, got {other:?}"),
        }
    }

    #[test]
    fn transcripts_of_usage_limits() {
        let cases = [
            (
                "claude-429-oauth-hit-your-limit.stream.jsonl",
                "You've hit your limit · resets 6pm (America/Toronto)",
                "2026-11-25T23:00:00Z",
            ),
            (
                "claude-429-oauth-5-hour-limit.stream.jsonl",
                "You've hit your 5-hour limit · resets 6pm (America/Toronto)",
                "2026-11-25T23:00:00Z",
            ),
            (
                "claude-429-oauth-midrun.stream.jsonl",
                "You've hit your limit · resets 6pm (America/Toronto)",
                "2026-11-25T23:00:00Z",
            ),
            (
                "claude-429-oauth-weekly-limit.stream.jsonl",
                "You've hit your weekly limit · resets Nov 28, 6pm (America/Toronto)",
                "2026-11-28T23:00:00Z",
            ),
        ];
        for (name, message, reset) in cases {
            let mut evidence = evidence_from_transcript(name);
            assert!(evidence.rate_limit_rejected_resets_at.is_some(), "{name}");
            let limit = usage(classify(&evidence, &recorded_now()));
            assert_eq!(limit.message, message, "{name}");
            assert_eq!(limit.zone.as_deref(), Some("America/Toronto"), "{name}");
            assert_eq!(
                limit.resets_at.map(|t| t.to_string()).as_deref(),
                Some(reset),
                "{name}"
            );

            // Without the event (API-key mode, older CLIs) the printed time gives the same
            // instant.
            evidence.rate_limit_rejected_resets_at = None;
            let limit = usage(classify(&evidence, &recorded_now()));
            assert_eq!(
                limit.resets_at.map(|t| t.to_string()).as_deref(),
                Some(reset),
                "{name}"
            );
        }
    }

    #[test]
    fn event_reset_wins_over_the_printed_time() {
        let mut evidence = evidence_from_transcript("claude-429-oauth-hit-your-limit.stream.jsonl");
        evidence.rate_limit_rejected_resets_at = Some(1_795_650_000);
        let limit = usage(classify(&evidence, &recorded_now()));
        assert_eq!(limit.resets_at, Timestamp::from_second(1_795_650_000).ok());
        assert_eq!(limit.zone.as_deref(), Some("America/Toronto"));
    }

    #[test]
    fn transcript_of_api_key_429_is_throttling() {
        let evidence =
            evidence_from_transcript("claude-429-apikey-default-10-retries.stream.jsonl");
        let throttling = throttled(classify(&evidence, &recorded_now()));
        assert_eq!(throttling.status, Some(429));
        assert_eq!(
            throttling.message,
            "API Error: Request rejected (429) · Rate limited"
        );
    }

    #[test]
    fn transcript_of_529_is_throttling() {
        let evidence = evidence_from_transcript("claude-529-default-10-retries.stream.jsonl");
        let throttling = throttled(classify(&evidence, &recorded_now()));
        assert_eq!(throttling.status, Some(529));
        assert!(throttling.message.starts_with("API Error: 529 Overloaded."));
    }

    #[test]
    fn transcripts_without_a_limit() {
        for name in [
            "claude-500-maxretries1.stream.jsonl",
            "claude-oauth-allowed-warning.stream.jsonl",
            "claude-happy.stream.jsonl",
            "claude-happy-partial-messages.stream.jsonl",
            "claude-sigint-during-bash.stream.jsonl",
            "claude-sigterm-during-bash.stream.jsonl",
            "claude-root-acceptEdits-permission-denial.stream.jsonl",
        ] {
            let evidence = evidence_from_transcript(name);
            assert_eq!(
                classify(&evidence, &recorded_now()),
                LimitVerdict::None,
                "{name}"
            );
        }
    }

    // ---- classify: what must not count ----

    fn error_result(text: &str, status: Option<u16>) -> LimitEvidence {
        LimitEvidence {
            result_text: Some(text.to_owned()),
            result_is_error: true,
            api_error_status: status,
            ..LimitEvidence::default()
        }
    }

    #[test]
    fn successful_result_mentioning_a_limit_is_no_limit() {
        let evidence = LimitEvidence {
            result_text: Some("You've hit your limit · resets 6pm (America/Toronto)".to_owned()),
            result_is_error: false,
            ..LimitEvidence::default()
        };
        assert_eq!(classify(&evidence, &recorded_now()), LimitVerdict::None);
    }

    #[test]
    fn success_outweighs_everything_said_on_the_way() {
        let evidence = LimitEvidence {
            result_text: Some("All done.".to_owned()),
            result_is_error: false,
            api_error_status: Some(429),
            synthetic_texts: vec!["You've hit your limit · resets 6pm (America/Toronto)".to_owned()],
            rate_limit_rejected_resets_at: Some(1_795_647_600),
            stderr_tail: Some("API Error: 529 Overloaded".to_owned()),
        };
        assert_eq!(classify(&evidence, &recorded_now()), LimitVerdict::None);
    }

    #[test]
    fn agent_prose_about_limits_in_an_error_result_is_no_limit() {
        for text in [
            "The API said: You've hit your limit · resets 6pm (America/Toronto)",
            "I checked the docs: the server returns API Error: 529 Overloaded when busy.",
            "Rate limit reached for requests",
            "Interrupted while writing the rate limiter.",
        ] {
            let evidence = error_result(text, None);
            assert_eq!(
                classify(&evidence, &recorded_now()),
                LimitVerdict::None,
                "{text}"
            );
        }
    }

    #[test]
    fn ordinary_api_errors_are_no_limit() {
        for (text, status) in [
            ("API Error: 500 Internal server error.", Some(500)),
            ("API Error: 401 Invalid API key", Some(401)),
            ("API Error: 400 prompt is too long", None),
            ("API Error: Connection error.", None),
        ] {
            let evidence = error_result(text, status);
            assert_eq!(
                classify(&evidence, &recorded_now()),
                LimitVerdict::None,
                "{text}"
            );
        }
        assert_eq!(
            classify(&LimitEvidence::default(), &recorded_now()),
            LimitVerdict::None
        );
    }

    // ---- classify: usage limits in their other shapes ----

    #[test]
    fn usage_limit_without_a_time() {
        let limit = usage(classify(
            &error_result("Usage limit reached", Some(429)),
            &recorded_now(),
        ));
        assert_eq!(
            limit,
            UsageLimit {
                resets_at: None,
                zone: None,
                message: "Usage limit reached".to_owned(),
            }
        );
        let limit = usage(classify(
            &error_result("5-hour limit reached ∙ resets 2am", None),
            &recorded_now(),
        ));
        assert_eq!(limit.resets_at, None);
        let limit = usage(classify(
            &error_result("You’ve hit your usage limit.", None),
            &recorded_now(),
        ));
        assert_eq!(limit.resets_at, None);
    }

    #[test]
    fn usage_limit_with_an_epoch_suffix() {
        let evidence = error_result("Claude AI usage limit reached|1795647600", None);
        let limit = usage(classify(&evidence, &recorded_now()));
        assert_eq!(limit.resets_at, Timestamp::from_second(1_795_647_600).ok());
        assert_eq!(limit.zone, None);
    }

    #[test]
    fn rejected_event_alone_is_a_usage_limit() {
        let evidence = LimitEvidence {
            rate_limit_rejected_resets_at: Some(1_795_647_600),
            ..LimitEvidence::default()
        };
        let limit = usage(classify(&evidence, &recorded_now()));
        assert_eq!(limit.resets_at, Timestamp::from_second(1_795_647_600).ok());
        assert_eq!(limit.zone, None);
        assert!(limit.message.contains("usage limit"));
    }

    #[test]
    fn rejected_event_wins_over_a_throttling_text() {
        let evidence = LimitEvidence {
            rate_limit_rejected_resets_at: Some(1_795_647_600),
            ..error_result(
                "API Error: Request rejected (429) · Rate limited",
                Some(429),
            )
        };
        usage(classify(&evidence, &recorded_now()));
    }

    #[test]
    fn synthetic_message_counts_when_the_cli_died_before_its_result() {
        let evidence = LimitEvidence {
            synthetic_texts: vec!["You've hit your limit · resets 6pm (America/Toronto)".to_owned()],
            ..LimitEvidence::default()
        };
        let limit = usage(classify(&evidence, &recorded_now()));
        assert_eq!(
            limit.resets_at.map(|t| t.to_string()).as_deref(),
            Some("2026-11-25T23:00:00Z")
        );
    }

    #[test]
    fn stderr_line_counts_when_there_is_no_successful_result() {
        let evidence = LimitEvidence {
            stderr_tail: Some(
                "some warning\nYou've hit your limit · resets 6pm (America/Toronto)\n".to_owned(),
            ),
            ..LimitEvidence::default()
        };
        let limit = usage(classify(&evidence, &recorded_now()));
        assert_eq!(
            limit.message,
            "You've hit your limit · resets 6pm (America/Toronto)"
        );
        let evidence = LimitEvidence {
            stderr_tail: Some("warning: retrying\nAPI Error: 529 Overloaded\n".to_owned()),
            ..LimitEvidence::default()
        };
        assert_eq!(
            throttled(classify(&evidence, &recorded_now())).status,
            Some(529)
        );
    }

    #[test]
    fn unparseable_reset_still_a_usage_limit() {
        let evidence = error_result(
            "You've hit your limit · resets 6pm (Nowhere/Land)",
            Some(429),
        );
        let limit = usage(classify(&evidence, &recorded_now()));
        assert_eq!(limit.resets_at, None);
        assert_eq!(limit.zone, None);
    }

    // ---- classify: throttling in its other shapes ----

    #[test]
    fn throttling_texts() {
        let cases = [
            (
                "API Error: Server is temporarily limiting requests (not your usage limit) · Rate limited",
                Some(429),
                Some(429),
            ),
            (
                "API Error: Server is temporarily limiting requests (not your usage limit) · busy",
                None,
                None,
            ),
            ("API Error: Request rejected (429) · Rate limited", None, Some(429)),
            (
                r#"API Error: 429 {"type":"error","error":{"type":"rate_limit_error"}}"#,
                None,
                Some(429),
            ),
            ("API Error: 529 Overloaded.", None, Some(529)),
            (
                r#"API Error: 529 {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
                None,
                Some(529),
            ),
            ("API Error: Repeated 529 Overloaded errors", None, Some(529)),
            ("api error: overloaded_error", None, Some(529)),
        ];
        for (text, api_status, expected) in cases {
            let throttling = throttled(classify(&error_result(text, api_status), &recorded_now()));
            assert_eq!(throttling.status, expected, "{text}");
            assert_eq!(throttling.message, text);
        }
    }

    #[test]
    fn error_result_with_status_429_or_529_is_throttling() {
        for status in [429, 529] {
            let evidence = error_result("something unexpected", Some(status));
            let throttling = throttled(classify(&evidence, &recorded_now()));
            assert_eq!(throttling.status, Some(status));
            assert_eq!(throttling.message, "something unexpected");
            let evidence = LimitEvidence {
                result_is_error: true,
                api_error_status: Some(status),
                ..LimitEvidence::default()
            };
            assert_eq!(
                throttled(classify(&evidence, &recorded_now())).message,
                format!("API error {status}")
            );
        }
        // The status of a success says nothing.
        let evidence = LimitEvidence {
            result_text: Some("done".to_owned()),
            api_error_status: Some(429),
            ..LimitEvidence::default()
        };
        assert_eq!(classify(&evidence, &recorded_now()), LimitVerdict::None);
    }

    #[test]
    fn long_messages_are_cut_to_one_short_line() {
        let text = format!(
            "API Error: 529 Overloaded {}\nsecond line",
            "x".repeat(1000)
        );
        let throttling = throttled(classify(&error_result(&text, None), &recorded_now()));
        assert_eq!(throttling.message.chars().count(), MESSAGE_MAX_CHARS + 1);
        assert!(throttling.message.ends_with('…'));
        assert!(!throttling.message.contains('\n'));
    }

    mod props {
        use super::super::*;
        use super::{classify, parse_reset};
        use jiff::tz::TimeZone;
        use proptest::prelude::*;

        /// Any instant jiff can hold, in one of a few zones (with odd offsets and DST).
        fn clock() -> impl Strategy<Value = ZonedDateTime> {
            let zones = prop::sample::select(vec!["UTC", "America/Toronto", "Asia/Kolkata", "Pacific/Kiritimati", "America/St_Johns", "Pacific/Pago_Pago"]);
            let seconds = prop_oneof![
                Timestamp::MIN.as_second()..=Timestamp::MAX.as_second(),
                Just(Timestamp::MIN.as_second()),
                Just(Timestamp::MAX.as_second()),
                1_700_000_000i64..1_900_000_000,
            ];
            (seconds, zones).prop_map(|(s, z)| {
                let tz = TimeZone::get(z).expect("a known zone");
                Timestamp::from_second(s).expect("in range").to_zoned_datetime(tz)
            })
        }

        /// Limit messages close to the real ones, with any numbers and words in them.
        fn text() -> impl Strategy<Value = String> {
            let word = prop_oneof![
                Just("Feb".to_string()), Just("sept".to_string()), Just("December".to_string()),
                "[a-z]{0,9}", "[0-9]{0,12}", Just("at".to_string()), Just("pm".to_string()), Just("am".to_string()),
            ];
            let zone = prop_oneof![
                Just("America/Toronto".to_string()), Just("UTC".to_string()), "[A-Za-z/_+-]{0,20}",
            ];
            prop_oneof![
                any::<String>(),
                (word.clone(), "-?[0-9]{0,20}", "[0-9:]{0,8}", word.clone(), zone.clone())
                    .prop_map(|(w, d, t, ap, z)| format!("You've hit your limit · resets {w} {d}, {t}{ap} ({z})")),
                (0u32..100, 0u32..100, zone).prop_map(|(h, m, z)| format!("limit reached · will reset at {h}:{m:02} ({z})")),
                "[0-9]{0,14}".prop_map(|d| format!("Claude AI usage limit reached|{d}")),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

            #[test]
            fn parse_reset_never_panics(text in text(), now in clock()) {
                let _ = parse_reset(&text, &now);
            }

            #[test]
            fn classify_and_wake_never_panic_and_stay_bounded(
                text in text(),
                now in clock(),
                resets in prop::option::of(prop_oneof![any::<i64>(), Timestamp::MIN.as_second()..=Timestamp::MAX.as_second()]),
                status in prop::option::of(any::<u16>()),
                error in any::<bool>(),
            ) {
                let evidence = LimitEvidence {
                    result_text: Some(text.clone()),
                    result_is_error: error,
                    api_error_status: status,
                    synthetic_texts: vec![text],
                    rate_limit_rejected_resets_at: resets,
                    stderr_tail: None,
                };
                if let LimitVerdict::Usage(limit) = classify(&evidence, &now) {
                    let t = now.timestamp();
                    let wake = wake_at(limit.resets_at, t, WAKE_MARGIN, WAKE_FALLBACK);
                    // A caller adds this to its clocks: it must be a bounded wait.
                    let wait = wake.duration_since(t).unsigned_abs();
                    prop_assert!(wait <= MAX_WAIT, "{wait:?}");
                }
            }
        }
    }
}
