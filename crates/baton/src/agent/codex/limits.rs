//! The Codex CLI's wording of its limits (0.171.0, from its strings and observed runs).
//!
//! A usage limit (HTTP 429 `usage_limit_reached`, never retried by the CLI) ends the turn with
//! `You’ve hit your usage limit. … try again at 6:36 AM.` — or `… try again at Dec 3rd, 2026
//! 11:36 AM.` when the reset is not today, or `… Try again later.` when the server sent no
//! reset. The time is the machine's local time (`TZ`) with no zone printed: the CLI runs with
//! baton's environment, so it is read in the zone of baton's `now`. Throttling reads
//! `exceeded retry limit, last status: 429 Too Many Requests` (a 429 of another kind, after the
//! CLI's retries) and `We’re currently experiencing high demand, …` (a 5xx).
//!
//! Must not read the clock: `now` is passed in.

use jiff::civil::{Date, DateTime, Time};
use jiff::{Timestamp, ZonedDateTime};

use crate::agent::claude::limits::RESET_GRACE;
use crate::policy::limit::LimitWording;

impl LimitWording for super::Codex {
    fn is_usage_limit(&self, text: &str) -> bool {
        let line = normalized_first_line(text);
        ["you've hit your usage limit", "you have hit your usage limit"].iter().any(|p| line.starts_with(p))
    }

    /// The end of the printed minute: the CLI drops the seconds of the server's reset, so the
    /// limit has surely lifted only then.
    fn printed_reset(&self, text: &str, now: &ZonedDateTime) -> Option<(Timestamp, Option<String>)> {
        let at = parse_reset(text, now)?;
        Some((at.checked_add(jiff::SignedDuration::from_secs(60)).unwrap_or(at), None))
    }

    fn throttle_status(&self, text: &str) -> Option<Option<u16>> {
        let line = normalized_first_line(text);
        if let Some(rest) = line.strip_prefix("exceeded retry limit") {
            return match super::stream::http_status(rest) {
                Some(code @ (429 | 503 | 529)) => Some(Some(code)),
                _ => None,
            };
        }
        let overloaded = ["we're currently experiencing high demand", "codex is currently experiencing high load", "selected model is at capacity"];
        overloaded.iter().any(|p| line.starts_with(p)).then_some(None)
    }
}

/// The first line, trimmed, lower-cased, typographic apostrophes made plain.
fn normalized_first_line(text: &str) -> String {
    let line = text.trim_start().lines().next().unwrap_or_default().trim_end();
    line.chars()
        .map(|c| match c {
            '\u{2019}' | '\u{2018}' | '\u{02BC}' => '\'',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

/// The instant after `try again at` (any case): `6:36 AM` is its next occurrence in `now`'s
/// zone (allowing [`RESET_GRACE`] of lateness: the CLI drops the seconds), `Dec 3rd, 2026
/// 11:36 AM` that day. `None` for `Try again later.` or anything malformed.
pub fn parse_reset(text: &str, now: &ZonedDateTime) -> Option<Timestamp> {
    const KEY: &str = "try again at ";
    let lower = text.to_ascii_lowercase();
    let at = lower.find(KEY)? + KEY.len();
    let words: Vec<&str> = text[at..].split_whitespace().take(5).collect();
    let (date, clock) = match words.as_slice() {
        [month, day, year, clock, meridiem, ..] if month.chars().all(|c| c.is_ascii_alphabetic()) => {
            let day: i8 = day.trim_end_matches(',').trim_end_matches(|c: char| c.is_ascii_alphabetic()).parse().ok()?;
            let date = Date::new(year.parse().ok()?, month_number(month)?, day).ok()?;
            (Some(date), time_of_day(clock, meridiem)?)
        }
        [clock, meridiem, ..] => (None, time_of_day(clock, meridiem)?),
        _ => return None,
    };
    let tz = now.time_zone();
    let instant = |date: Date| tz.to_ambiguous_timestamp(DateTime::from_parts(date, clock)).compatible().ok();
    match date {
        Some(date) => instant(date),
        None => {
            let earliest = now.timestamp().saturating_sub(RESET_GRACE).ok()?;
            let today = now.date();
            instant(today).filter(|at| *at >= earliest).or_else(|| instant(today.tomorrow().ok()?))
        }
    }
}

/// `6:36` + `AM.` → 06:36.
fn time_of_day(clock: &str, meridiem: &str) -> Option<Time> {
    let (hour, minute) = clock.split_once(':')?;
    let (hour, minute): (i8, i8) = (hour.parse().ok()?, minute.parse().ok()?);
    let pm = match meridiem.trim_end_matches(['.', ',']).to_ascii_lowercase().as_str() {
        "am" => false,
        "pm" => true,
        _ => return None,
    };
    if !(1..=12).contains(&hour) || !(0..=59).contains(&minute) || minute_digits(clock) != 2 {
        return None;
    }
    Time::new(hour % 12 + if pm { 12 } else { 0 }, minute, 0, 0).ok()
}

fn minute_digits(clock: &str) -> usize {
    clock.split_once(':').map_or(0, |(_, m)| m.len())
}

fn month_number(word: &str) -> Option<i8> {
    const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
    let word = word.to_ascii_lowercase();
    let index = MONTHS.iter().position(|m| word.len() >= 3 && word.starts_with(m))?;
    i8::try_from(index + 1).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::codex::Codex;
    use crate::policy::limit::{classify, LimitEvidence, LimitVerdict};

    fn zoned(s: &str) -> ZonedDateTime {
        s.parse().expect("test instant")
    }

    const PLUS: &str = "You’ve hit your usage limit. Upgrade to Pro (https://chatgpt.com/explore/pro), visit https://chatgpt.com/settings/usage to purchase more credits or try again at 6:36 AM.";

    #[test]
    fn the_reset_is_read_in_the_local_zone() {
        let now = zoned("2026-12-01T01:10:00[America/Toronto]");
        assert_eq!(parse_reset(PLUS, &now), Some("2026-12-01T11:36:00Z".parse().unwrap()));
        // Past by more than the grace: tomorrow.
        let later = zoned("2026-12-01T07:00:00[America/Toronto]");
        assert_eq!(parse_reset(PLUS, &later), Some("2026-12-02T11:36:00Z".parse().unwrap()));
        // Past by less than the grace (the CLI dropped the seconds): today.
        let just = zoned("2026-12-01T06:36:40[America/Toronto]");
        assert_eq!(parse_reset(PLUS, &just), Some("2026-12-01T11:36:00Z".parse().unwrap()));
        let pm = "You’ve hit your usage limit. To get more access now, send a request to your admin or try again at 11:00 PM.";
        assert_eq!(parse_reset(pm, &zoned("2026-12-01T12:00:00[UTC]")), Some("2026-12-01T23:00:00Z".parse().unwrap()));
        let noon = "You've hit your usage limit. Try again at 12:05 PM.";
        assert_eq!(parse_reset(noon, &zoned("2026-12-01T08:00:00[UTC]")), Some("2026-12-01T12:05:00Z".parse().unwrap()));
    }

    #[test]
    fn a_reset_on_another_day_carries_its_date() {
        let pro = "You’ve hit your usage limit. Visit https://chatgpt.com/settings/usage to purchase more credits or try again at Dec 3rd, 2026 11:36 AM.";
        assert_eq!(parse_reset(pro, &zoned("2026-12-01T10:00:00[UTC]")), Some("2026-12-03T11:36:00Z".parse().unwrap()));
        let first = "You've hit your usage limit. Try again at Jan 1st, 2027 12:30 AM.";
        assert_eq!(parse_reset(first, &zoned("2026-12-31T22:00:00[UTC]")), Some("2027-01-01T00:30:00Z".parse().unwrap()));
    }

    #[test]
    fn no_time_or_a_malformed_one_is_no_reset() {
        let now = zoned("2026-12-01T10:00:00[UTC]");
        for text in [
            "You’ve hit your usage limit. Try again later.",
            "You’ve hit your usage limit. Try again at 13:00 PM.",
            "You’ve hit your usage limit. Try again at 6:61 AM.",
            "You’ve hit your usage limit. Try again at Foo 3rd, 2026 1:00 AM.",
            "You’ve hit your usage limit. Try again at 6:36",
        ] {
            assert_eq!(parse_reset(text, &now), None, "{text}");
        }
    }

    fn verdict(text: &str, now: &ZonedDateTime) -> LimitVerdict {
        let evidence = LimitEvidence { result_text: Some(text.into()), result_is_error: true, ..LimitEvidence::default() };
        classify(&evidence, &Codex, now)
    }

    #[test]
    fn usage_limits_and_throttling_are_told_apart() {
        let now = zoned("2026-12-01T01:10:00[America/Toronto]");
        let LimitVerdict::Usage(u) = verdict(PLUS, &now) else { panic!() };
        assert_eq!(u.resets_at, Some("2026-12-01T11:37:00Z".parse().unwrap()), "the end of the printed minute");
        assert!(u.message.starts_with("You’ve hit your usage limit"));
        let LimitVerdict::Usage(u) = verdict("You've hit your usage limit for GPT-6 Sol. Switch to another model now, or try again at 9:00 AM.", &now) else { panic!() };
        assert!(u.resets_at.is_some());
        let LimitVerdict::Usage(u) = verdict("You’ve hit your usage limit. Try again later.", &now) else { panic!() };
        assert_eq!(u.resets_at, None);

        let LimitVerdict::Throttled(t) = verdict("exceeded retry limit, last status: 429 Too Many Requests", &now) else { panic!() };
        assert_eq!(t.status, Some(429));
        let LimitVerdict::Throttled(t) = verdict("We’re currently experiencing high demand, which may cause temporary errors.", &now) else { panic!() };
        assert_eq!(t.status, None);
        assert_eq!(verdict("exceeded retry limit, last status: 401 Unauthorized", &now), LimitVerdict::None);
        assert_eq!(verdict("Missing environment variable: `FAKE_API_KEY`.", &now), LimitVerdict::None);
        // The agent quoting the message in prose is not a limit.
        assert_eq!(verdict("I fixed the banner that says You’ve hit your usage limit", &now), LimitVerdict::None);
    }
}
