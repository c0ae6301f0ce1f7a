//! How the Gemini CLI words usage limits and throttling (0.61.0, observed against a fake API
//! with `general.maxAttempts: 1`; see docs/research/codex-and-gemini-offline.md).
//!
//! Every API 429 reads `RESOURCE_EXHAUSTED` on the wire; the CLI sorts them itself
//! (`classifyGoogleError`) and baton follows its sorting, read from its words:
//!
//! - **terminal** (the CLI does not retry): a daily quota ("You have exhausted your daily quota
//!   on this model."), a retry delay over 300 s ("…\nSuggested retry after 18000s."), a quota
//!   of `limit: 0`; stderr names the error `TerminalQuotaError`. A usage limit: baton waits for
//!   the reset.
//! - **retryable** (a per-minute quota, a 429 without details, "Suggested retry after 2s."):
//!   the CLI retries up to `maxAttempts`, then ends with the server's message
//!   ("[API Error: Resource has been exhausted (e.g. check quota).]"; stderr
//!   `RetryableQuotaError`, "Max attempts reached"). Throttling: baton backs off.
//!
//! Either way the CLI exits 173 (429 & 255) with a `result` of `status: "error"`. baton does
//! not read the exit code for this: the result's text and the stderr lines say more (which
//! kind of 429), and the limit recognisers see only the CLI's texts.
//!
//! The reset: the API gives only a delay (`RetryInfo.retryDelay`), which the CLI prints as
//! `Suggested retry after <n>s` — read against the time baton judges the attempt, a moment
//! after the CLI's `result` (the event's own `timestamp` is not among the texts a recogniser
//! sees; the difference is the time the CLI takes to exit). A daily quota prints no time: the
//! Gemini API's daily quotas reset at midnight Pacific time, which is taken as the reset.

use std::time::Duration;

use jiff::{Timestamp, ZonedDateTime};

use crate::policy::limit::LimitWording;

/// The longest retry delay the CLI retries by itself (`MAX_RETRYABLE_DELAY_SECONDS`); a longer
/// one makes the 429 terminal.
const MAX_RETRYABLE_DELAY: Duration = Duration::from_secs(300);

/// Where the Gemini API's daily quotas roll over.
const QUOTA_ZONE: &str = "America/Los_Angeles";

impl LimitWording for super::Gemini {
    fn is_usage_limit(&self, text: &str) -> bool {
        is_usage_limit(text)
    }

    fn printed_reset(&self, text: &str, now: &ZonedDateTime) -> Option<(Timestamp, Option<String>)> {
        if let Some(delay) = suggested_retry(text) {
            return Some((now.timestamp().saturating_add(delay).ok()?, None));
        }
        if text.contains(DAILY_QUOTA) {
            return next_pacific_midnight(now.timestamp()).map(|at| (at, None));
        }
        None
    }

    fn throttle_status(&self, text: &str) -> Option<Option<u16>> {
        if text.contains("RetryableQuotaError") || is_quota_wording(text) {
            return Some(Some(429));
        }
        // The API's 503 ("The model is overloaded. Please try again later.").
        if text.contains("\"code\":503") || text.contains("The model is overloaded") || text.contains("\"UNAVAILABLE\"") {
            return Some(Some(503));
        }
        None
    }
}

const DAILY_QUOTA: &str = "exhausted your daily quota";

fn is_usage_limit(text: &str) -> bool {
    text.contains(DAILY_QUOTA)
        || text.contains("TerminalQuotaError")
        || (text.contains("Quota exceeded") && text.contains("limit: 0"))
        || suggested_retry(text).is_some_and(|delay| delay > MAX_RETRYABLE_DELAY)
}

/// The wording of the API's 429s, terminal or not: the server's own messages the CLI quotes.
pub(super) fn is_quota_wording(text: &str) -> bool {
    ["Resource has been exhausted", "exceeded your current quota", "RESOURCE_EXHAUSTED", "Quota exceeded", DAILY_QUOTA]
        .iter()
        .any(|w| text.contains(w))
}

/// `Suggested retry after 18000s.` (also `1.5s`, `250ms`). Not the stderr line of a retry in
/// progress ("…Suggested retry after 2s.. Retrying after 5520ms..."): that one is news, not
/// the end.
fn suggested_retry(text: &str) -> Option<Duration> {
    const MARK: &str = "Suggested retry after ";
    if text.contains("Retrying after") {
        return None;
    }
    let rest = &text[text.find(MARK)? + MARK.len()..];
    let number: String = rest.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
    let value: f64 = number.parse().ok().filter(|v: &f64| v.is_finite() && *v >= 0.0)?;
    let unit = &rest[number.len()..];
    let seconds = if unit.starts_with("ms") {
        value / 1000.0
    } else if unit.starts_with('s') {
        value
    } else {
        return None;
    };
    // Beyond a year is nonsense; the caller's plausibility check turns it into "unknown".
    Some(Duration::from_secs_f64(seconds.min(365.0 * 24.0 * 3600.0)))
}

/// The next midnight in Pacific time after `now`; `None` when the time-zone database is missing.
fn next_pacific_midnight(now: Timestamp) -> Option<Timestamp> {
    let tz = jiff::tz::TimeZone::get(QUOTA_ZONE).ok()?;
    let tomorrow = tz.to_datetime(now).date().tomorrow().ok()?;
    tz.to_ambiguous_timestamp(tomorrow.to_datetime(jiff::civil::Time::midnight())).compatible().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::gemini::Gemini;
    use crate::policy::limit::{classify, LimitEvidence, LimitVerdict};

    const DAILY: &str = include_str!("../../../tests/fixtures/agent-transcripts/gemini-0.61-daily.stream.jsonl");
    const RETRY_5H: &str = include_str!("../../../tests/fixtures/agent-transcripts/gemini-0.61-retry5h.stream.jsonl");
    const RETRY_5H_ERR: &str = include_str!("../../../tests/fixtures/agent-transcripts/gemini-0.61-retry5h.stderr.txt");
    const PLAIN_429: &str = include_str!("../../../tests/fixtures/agent-transcripts/gemini-0.61-plain429.stream.jsonl");
    const PLAIN_429_ERR: &str = include_str!("../../../tests/fixtures/agent-transcripts/gemini-0.61-plain429.stderr.txt");
    const PER_MINUTE: &str = include_str!("../../../tests/fixtures/agent-transcripts/gemini-0.61-permin.stream.jsonl");
    const LIMIT_0: &str = include_str!("../../../tests/fixtures/agent-transcripts/gemini-0.61-limit0.stream.jsonl");
    const E500: &str = include_str!("../../../tests/fixtures/agent-transcripts/gemini-0.61-e500.stream.jsonl");
    /// 0.61.0 with the default 10 attempts (agents.md).
    const OLD_429_ERR: &str = include_str!("../../../tests/fixtures/agent-transcripts/gemini-429.stderr.txt");

    fn now() -> ZonedDateTime {
        "2026-12-01T11:46:40Z[UTC]".parse().expect("test instant")
    }

    /// The verdict on a session that ended with `transcript` on stdout and `stderr`, as
    /// `run::verdict` gathers the evidence.
    fn verdict(transcript: &str, stderr: &str) -> LimitVerdict {
        let s = super::super::stream::summary_of(transcript);
        let r = s.result();
        let evidence = LimitEvidence {
            result_text: r.and_then(|r| r.result.clone()),
            result_is_error: r.is_some_and(|r| r.is_error),
            api_error_status: r.and_then(|r| r.api_error_status),
            synthetic_texts: s.synthetic_texts().to_vec(),
            rate_limit_rejected_resets_at: None,
            stderr_tail: Some(stderr.to_owned()).filter(|s| !s.is_empty()),
        };
        classify(&evidence, &Gemini, &now())
    }

    #[test]
    fn a_retry_delay_over_five_minutes_is_a_usage_limit_with_its_reset() {
        let LimitVerdict::Usage(u) = verdict(RETRY_5H, RETRY_5H_ERR) else { panic!("{:?}", verdict(RETRY_5H, RETRY_5H_ERR)) };
        assert_eq!(u.resets_at, Some("2026-12-01T16:46:40Z".parse().unwrap()), "now + 18000 s");
        assert_eq!(u.message, "[API Error: Resource has been exhausted (e.g. check quota).");
        assert_eq!(verdict(RETRY_5H, ""), LimitVerdict::Usage(u), "stdout alone is enough");
    }

    #[test]
    fn a_daily_quota_resets_at_midnight_pacific() {
        let LimitVerdict::Usage(u) = verdict(DAILY, "") else { panic!("{:?}", verdict(DAILY, "")) };
        // 11:46 UTC is 03:46 PST: the next Pacific midnight is 08:00 UTC on the 2nd.
        assert_eq!(u.resets_at, Some("2026-12-02T08:00:00Z".parse().unwrap()));
        assert!(u.message.contains("exhausted your daily quota"), "{u:?}");
        // In summer (PDT) midnight is 07:00 UTC; just before midnight it is the next one.
        let summer: ZonedDateTime = "2026-07-01T06:59:00Z[UTC]".parse().unwrap();
        let (at, zone) = Gemini.printed_reset("[API Error: You have exhausted your daily quota on this model.]", &summer).unwrap();
        assert_eq!((at.to_string(), zone), ("2026-07-01T07:00:00Z".to_owned(), None));
    }

    #[test]
    fn a_quota_of_zero_is_a_usage_limit_of_unknown_reset() {
        let LimitVerdict::Usage(u) = verdict(LIMIT_0, "") else { panic!("{:?}", verdict(LIMIT_0, "")) };
        assert_eq!(u.resets_at, None);
    }

    #[test]
    fn a_retryable_429_after_the_cli_gave_up_is_throttling() {
        for (stdout, stderr) in [(PLAIN_429, PLAIN_429_ERR), (PLAIN_429, ""), (PER_MINUTE, "")] {
            let v = verdict(stdout, stderr);
            let LimitVerdict::Throttled(t) = &v else { panic!("{v:?}") };
            assert_eq!(t.status, Some(429), "{v:?}");
            assert!(t.message.starts_with("[API Error: "), "{v:?}");
        }
        // The stderr of a run with the CLI's own retries, alone.
        assert!(matches!(verdict("", OLD_429_ERR), LimitVerdict::Throttled(_)), "{:?}", verdict("", OLD_429_ERR));
    }

    #[test]
    fn a_server_error_is_an_ordinary_failure_and_the_agents_words_count_for_nothing() {
        assert_eq!(verdict(E500, ""), LimitVerdict::None);
        // A session that succeeded is never limited, whatever it said.
        let said = r#"{"type":"message","role":"assistant","content":"You have exhausted your daily quota","delta":true}
{"type":"result","status":"success","stats":{}}"#;
        assert_eq!(verdict(said, ""), LimitVerdict::None);
    }

    #[test]
    fn retry_delays_read_as_printed() {
        assert_eq!(suggested_retry("x\nSuggested retry after 18000s.]"), Some(Duration::from_secs(18000)));
        assert_eq!(suggested_retry("Suggested retry after 1.5s."), Some(Duration::from_millis(1500)));
        assert_eq!(suggested_retry("Suggested retry after 250ms."), Some(Duration::from_millis(250)));
        assert_eq!(suggested_retry("Suggested retry after 2s.. Retrying after 5520ms..."), None);
        assert_eq!(suggested_retry("Suggested retry after soon"), None);
        assert!(!is_usage_limit("Suggested retry after 300s."), "the CLI retries up to 300 s itself");
        assert!(is_usage_limit("Suggested retry after 301s."));
        assert!(!Gemini.is_usage_limit("Resource has been exhausted (e.g. check quota)."));
    }
}
