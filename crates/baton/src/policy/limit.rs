//! Recognising usage limits and server-side throttling at the end of an attempt.
//!
//! Owns the rules that turn what an agent CLI reported about itself ([`LimitEvidence`], filled
//! by the stream parser) into a [`LimitVerdict`], the parsing of the reset times printed in
//! Claude Code's limit messages (`You've hit your limit · resets 6pm (America/Toronto)`), and
//! the choice of when to wake up again.
//!
//! Must not read the clock, sleep, or parse JSON: `now` is passed in, and the caller has
//! already picked the relevant fields out of the stream. It must also not look at what the
//! agent *wrote*: an agent discussing rate limits in its own prose is not rate-limited. Only
//! the CLI's own error result, its synthetic messages, its `rate_limit_event` and its stderr
//! count, and none of them count when the attempt ended in success.

use std::time::Duration;

use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ZonedDateTime};

/// How far in the past a printed reset time may lie and still mean "today" rather than
/// "tomorrow". The CLI prints the time shortly before baton parses it, and may round it; a
/// reset read a minute late must wake baton in 30 s, not 24 h. A real next-day reset that falls
/// inside the grace only costs a few cheap re-checks (see [`wake_at`]'s floor).
pub const RESET_GRACE: Duration = Duration::from_secs(10 * 60);

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

/// Decides whether an attempt ran into a usage limit or server-side throttling.
///
/// Precedence: an attempt that ended in success is never limited, whatever was said on the
/// way. Otherwise a rejected `rate_limit_event` or a usage-limit message makes it a usage
/// limit (the event's `resetsAt` preferred, else the time parsed from the message against
/// `now`); a throttling message, or an error result with API status 429/529, makes it
/// throttling; anything else (a plain 500, a crash) is an ordinary failure.
pub fn classify(evidence: &LimitEvidence, now: &ZonedDateTime) -> LimitVerdict {
    let ended_in_success = !evidence.result_is_error && evidence.result_text.is_some();
    if ended_in_success {
        return LimitVerdict::None;
    }
    let texts = cli_texts(evidence);

    let usage_texts: Vec<&str> = texts
        .iter()
        .copied()
        .filter(|t| is_usage_limit(t))
        .collect();
    if evidence.rate_limit_rejected_resets_at.is_some() || !usage_texts.is_empty() {
        let plausible = |at: &Timestamp| plausible_reset(*at, now.timestamp());
        let printed = usage_texts.iter().find_map(|t| parse_reset(t, now)).filter(|(at, _)| plausible(at));
        let from_event = evidence
            .rate_limit_rejected_resets_at
            .and_then(|s| Timestamp::from_second(s).ok())
            .filter(plausible);
        let resets_at = from_event
            .or(printed.as_ref().map(|(at, _)| *at))
            .or_else(|| usage_texts.iter().find_map(|t| epoch_suffix(t)).filter(plausible));
        let message = match usage_texts.first() {
            Some(text) => one_line(text),
            None => "usage limit reached (the agent CLI reported a rejected rate limit)".to_owned(),
        };
        return LimitVerdict::Usage(UsageLimit {
            resets_at,
            zone: printed.map(|(_, zone)| zone),
            message,
        });
    }

    if let Some((text, status)) = texts
        .iter()
        .find_map(|t| throttle_status(t).map(|s| (*t, s)))
    {
        return LimitVerdict::Throttled(Throttling {
            message: one_line(text),
            status: status.or(evidence.api_error_status),
        });
    }

    match evidence.api_error_status {
        Some(status @ (429 | 529)) if evidence.result_is_error => {
            let message = match evidence.result_text.as_deref() {
                Some(text) if !text.trim().is_empty() => one_line(text),
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

/// Finds the reset time in a limit message (`… resets 6pm (America/Toronto)`,
/// `… resets Nov 28, 6pm (…)`, `… resets Feb 9 at 6:30pm (…)`, `… resets 18:00 (…)`,
/// `… will reset at 7pm (…)`) and returns it as an instant with the zone name as printed.
///
/// The time is read in the named IANA zone. Without a date it is the next occurrence of that
/// time of day; with one, the next occurrence of that date (so `Jan 1` read on Dec 31 is next
/// year). "Next" allows [`RESET_GRACE`] of lateness. A time that does not exist that day (a
/// DST gap) is read as the instant the clocks show it after the jump; one that occurs twice (a
/// fold) as the first of the two that is not past. `None` when there is no such phrase, the
/// time is malformed, or the zone is unknown.
pub fn parse_reset(text: &str, now: &ZonedDateTime) -> Option<(Timestamp, String)> {
    keyword_ends(text).find_map(|start| {
        let printed = PrintedReset::parse(&text[start..])?;
        let at = printed.next_occurrence(now)?;
        Some((at, printed.zone.to_owned()))
    })
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

/// The first line of `text`, trimmed, lower-cased, with typographic apostrophes made plain
/// (the CLIs print both `You've` and `You’ve`).
fn normalized_first_line(text: &str) -> String {
    let line = text
        .trim_start()
        .lines()
        .next()
        .unwrap_or_default()
        .trim_end();
    line.chars()
        .map(|c| match c {
            '\u{2019}' | '\u{2018}' | '\u{02BC}' => '\'',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

/// Whether `text` is a usage-limit message. Only a message that *starts* with the CLI's
/// wording counts: the CLI's messages are exactly that line, while an agent quoting one does
/// so inside other prose.
fn is_usage_limit(text: &str) -> bool {
    let line = normalized_first_line(text);
    let hit_your = ["you've hit your ", "you have hit your "]
        .iter()
        .any(|prefix| line.starts_with(prefix));
    if hit_your {
        return line.contains("limit");
    }
    // `Usage limit reached`, `Claude AI usage limit reached|1750000000`, `5-hour limit
    // reached ∙ resets 2am`, `Weekly limit reached`: a few words naming the kind of limit.
    // The kind matters: "Rate limit reached" is throttling, not a usage limit.
    let Some(at) = line.find("limit reached") else {
        return false;
    };
    let kind = line[..at].trim_end();
    let short_plain_prefix = kind.len() <= 40
        && kind
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '-');
    let names_a_usage_window = kind.is_empty()
        || ["usage", "-hour", "daily", "weekly", "monthly"]
            .iter()
            .any(|word| kind.ends_with(word));
    short_plain_prefix && names_a_usage_window
}

/// If `text` is a throttling message, the HTTP status it names (if any).
///
/// Claude Code writes these as `API Error: …`: `Server is temporarily limiting requests (not
/// your usage limit) · …`, `Request rejected (429) · …`, `529 Overloaded…`, `Repeated 529
/// Overloaded errors`, `529 {"type":"error","error":{"type":"overloaded_error",…}}`. Other API
/// errors (a 500) are ordinary failures.
fn throttle_status(text: &str) -> Option<Option<u16>> {
    let line = normalized_first_line(text);
    let rest = line
        .strip_prefix("api error")?
        .trim_start_matches([':', ' ']);
    if rest.contains("temporarily limiting requests") {
        return Some(None);
    }
    let status = leading_status(rest).or_else(|| {
        ["(429)", "(529)"]
            .iter()
            .find(|code| rest.contains(*code))
            .and_then(|code| code[1..4].parse().ok())
    });
    match status {
        Some(code @ (429 | 529)) => Some(Some(code)),
        Some(_) => None,
        None if rest.contains("overloaded") => Some(Some(529)),
        None => None,
    }
}

/// A three-digit status at the very start of `text` (`529 Overloaded`).
fn leading_status(text: &str) -> Option<u16> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits != 3 {
        return None;
    }
    text[..3].parse().ok()
}

/// The reset instant of the old `Claude AI usage limit reached|1750000000` form.
fn epoch_suffix(text: &str) -> Option<Timestamp> {
    let line = text.trim().lines().next()?;
    let (_, tail) = line.split_once("reached|")?;
    let digits: &str = &tail[..tail.bytes().take_while(u8::is_ascii_digit).count()];
    // Epoch seconds of any plausible reset have 10 digits; anything else is not this form.
    if digits.len() != 10 {
        return None;
    }
    Timestamp::from_second(digits.parse().ok()?).ok()
}

/// The message as one trimmed line of bounded length, for showing to a person.
fn one_line(text: &str) -> String {
    let line = text
        .trim_start()
        .lines()
        .next()
        .unwrap_or_default()
        .trim_end();
    match line.char_indices().nth(MESSAGE_MAX_CHARS) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_owned(),
    }
}

/// Byte offsets just past each `resets` / `reset at` keyword in `text` (ASCII
/// case-insensitive, at a word start), where a printed reset time may follow.
fn keyword_ends(text: &str) -> impl Iterator<Item = usize> + '_ {
    let bytes = text.as_bytes();
    (0..bytes.len()).filter_map(move |i| {
        let starts_word = i == 0 || !bytes[i - 1].is_ascii_alphanumeric();
        if !starts_word || !starts_with_ci(&bytes[i..], b"reset") {
            return None;
        }
        let mut cursor = Cursor {
            text,
            pos: i + "reset".len(),
        };
        if cursor.eat_ci("s") {
            return Some(cursor.pos);
        }
        // Plain `reset` only before `at` (`Your limit will reset at 7pm (…)`); elsewhere it is
        // just the verb.
        (cursor.eat_ws() && cursor.eat_word_ci("at")).then_some(cursor.pos)
    })
}

fn starts_with_ci(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.len() >= needle.len() && haystack[..needle.len()].eq_ignore_ascii_case(needle)
}

/// A reset time as the CLI printed it: an optional month and day, a time of day, and a zone
/// name. Not yet an instant: that needs `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PrintedReset<'a> {
    month_day: Option<(i8, i8)>,
    hour: i8,
    minute: i8,
    zone: &'a str,
}

impl<'a> PrintedReset<'a> {
    /// Parses `[at|on] [Mon DD(,| at )] H[:MM][am|pm] (Zone/Name)` from the start of `text`
    /// (after the keyword). A 24-hour time must have minutes: a bare `18` is too ambiguous to
    /// sleep on.
    fn parse(text: &'a str) -> Option<Self> {
        let mut cursor = Cursor { text, pos: 0 };
        cursor.eat_ws();
        if cursor.eat_word_ci("at") || cursor.eat_word_ci("on") {
            cursor.eat_ws();
        }

        let month_day = if cursor.peek().is_some_and(|c| c.is_ascii_alphabetic()) {
            let month = month_number(cursor.alphabetic())?;
            cursor.eat_ci(".");
            if !cursor.eat_ws() {
                return None;
            }
            let day = cursor.number(2)?;
            if !(1..=31).contains(&day) {
                return None;
            }
            for suffix in ["st", "nd", "rd", "th"] {
                if cursor.eat_ci(suffix) {
                    break;
                }
            }
            // `Nov 28, 6pm`, `Feb 9 at 6pm`, `Nov 28 6pm`: something must separate day and time.
            let spaced = cursor.eat_ws();
            let comma = cursor.eat_ci(",");
            if !(spaced || comma) {
                return None;
            }
            cursor.eat_ws();
            if cursor.eat_word_ci("at") && !cursor.eat_ws() {
                return None;
            }
            Some((month, i8::try_from(day).ok()?))
        } else {
            None
        };

        let hour = cursor.number(2)?;
        let minute = if cursor.eat_ci(":") {
            Some(cursor.exact_number(2)?)
        } else {
            None
        };
        cursor.eat_ws();
        let pm = if cursor.eat_ci("am") || cursor.eat_ci("a.m.") {
            Some(false)
        } else if cursor.eat_ci("pm") || cursor.eat_ci("p.m.") {
            Some(true)
        } else {
            None
        };
        if cursor.peek().is_some_and(|c| c.is_ascii_alphanumeric()) {
            return None;
        }
        let hour = match pm {
            Some(pm) if (1..=12).contains(&hour) => hour % 12 + if pm { 12 } else { 0 },
            Some(_) => return None,
            None if minute.is_some() && hour <= 23 => hour,
            None => return None,
        };
        let minute = minute.unwrap_or(0);
        if minute > 59 {
            return None;
        }

        cursor.eat_ws();
        if !cursor.eat_ci("(") {
            return None;
        }
        let zone = cursor.take_while(|c| c.is_ascii_alphanumeric() || "/_+-".contains(c));
        if zone.is_empty() || !cursor.eat_ci(")") {
            return None;
        }
        Some(PrintedReset {
            month_day,
            hour: i8::try_from(hour).ok()?,
            minute: i8::try_from(minute).ok()?,
            zone,
        })
    }

    /// The first instant at or after `now − RESET_GRACE` that matches the printed time.
    fn next_occurrence(&self, now: &ZonedDateTime) -> Option<Timestamp> {
        let tz = TimeZone::get(self.zone).ok()?;
        let now = now.timestamp();
        let earliest = now.saturating_sub(RESET_GRACE).unwrap_or(now);
        let today = tz.to_datetime(now).date();
        let time = Time::new(self.hour, self.minute, 0, 0).ok()?;
        let first_not_past = |date: Date| {
            let local = tz.to_ambiguous_timestamp(date.to_datetime(time));
            // `compatible` is the earlier instant of a fold and the post-jump one of a gap;
            // `later` adds the fold's second instant, which is "next" when the first is past.
            let compatible = local.compatible().ok();
            let later = local.later().ok();
            [compatible, later]
                .into_iter()
                .flatten()
                .find(|at| *at >= earliest)
        };
        match self.month_day {
            None => first_not_past(today).or_else(|| first_not_past(today.tomorrow().ok()?)),
            Some((month, day)) => {
                // Last year's date counts too, for a Dec 31 reset read in the first minutes of
                // Jan 1 (within the grace). Feb 29 may be years away; beyond that nothing
                // plausible is meant.
                (-1..=8).find_map(|years| {
                    let year = today.year().checked_add(years)?;
                    first_not_past(Date::new(year, month, day).ok()?)
                })
            }
        }
    }
}

fn month_number(word: &str) -> Option<i8> {
    const MONTHS: [&str; 12] = [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ];
    let word = word.to_ascii_lowercase();
    if word == "sept" {
        return Some(9);
    }
    let index = MONTHS
        .iter()
        .position(|name| word.len() >= 3 && name.starts_with(word.as_str()))?;
    i8::try_from(index + 1).ok()
}

/// A position in a short piece of text, moving forward as tokens are recognised. All matching
/// is on ASCII, so every position it stops at is a char boundary.
struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    /// Skips whitespace; whether there was any.
    fn eat_ws(&mut self) -> bool {
        let skipped = self.take_while(char::is_whitespace);
        !skipped.is_empty()
    }

    /// Consumes `token` (ASCII, any case) if the text continues with it.
    fn eat_ci(&mut self, token: &str) -> bool {
        if starts_with_ci(self.rest().as_bytes(), token.as_bytes()) {
            self.pos += token.len();
            true
        } else {
            false
        }
    }

    /// Like [`Cursor::eat_ci`], but only a whole word: `at` does not match the start of `aug`.
    fn eat_word_ci(&mut self, word: &str) -> bool {
        let rest = self.rest().as_bytes();
        let whole = starts_with_ci(rest, word.as_bytes())
            && rest
                .get(word.len())
                .is_none_or(|b| !b.is_ascii_alphanumeric());
        if whole {
            self.pos += word.len();
        }
        whole
    }

    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> &'a str {
        let rest = self.rest();
        let len = rest.find(|c: char| !keep(c)).unwrap_or(rest.len());
        self.pos += len;
        &rest[..len]
    }

    fn alphabetic(&mut self) -> &'a str {
        self.take_while(|c| c.is_ascii_alphabetic())
    }

    /// One to `max` ASCII digits; `None` if there are none or more than `max` (`123pm` is not
    /// a time).
    fn number(&mut self, max: usize) -> Option<u32> {
        let digits = self.take_while(|c| c.is_ascii_digit());
        if digits.is_empty() || digits.len() > max {
            return None;
        }
        digits.parse().ok()
    }

    /// Exactly `len` ASCII digits.
    fn exact_number(&mut self, len: usize) -> Option<u32> {
        let digits = self.take_while(|c| c.is_ascii_digit());
        if digits.len() != len {
            return None;
        }
        digits.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zoned(s: &str) -> ZonedDateTime {
        s.parse().expect("test instant")
    }

    /// The reset `parse_reset` finds, shown in the printed zone so the table reads like a clock.
    fn reset_in_zone(text: &str, now: &str) -> Option<String> {
        let (at, zone) = parse_reset(text, &zoned(now))?;
        let tz = TimeZone::get(&zone).expect("parse_reset returned a known zone");
        Some(at.to_zoned_datetime(tz).to_string())
    }

    #[track_caller]
    fn check_table(now: &str, rows: &[(&str, Option<&str>)]) {
        let mut failures = Vec::new();
        for (text, expected) in rows {
            let got = reset_in_zone(text, now);
            if got.as_deref() != *expected {
                failures.push(format!("{text:?}: expected {expected:?}, got {got:?}"));
            }
        }
        assert!(failures.is_empty(), "now = {now}\n{}", failures.join("\n"));
    }

    #[test]
    fn parses_every_printed_form() {
        // 08:42 in Toronto, 14:42 in Berlin.
        let now = "2026-11-25T08:42:33-05:00[America/Toronto]";
        check_table(
            now,
            &[
                (
                    "You've hit your limit · resets 6pm (America/Toronto)",
                    Some("2026-11-25T18:00:00-05:00[America/Toronto]"),
                ),
                (
                    "You've hit your 5-hour limit · resets 6pm (America/Toronto)",
                    Some("2026-11-25T18:00:00-05:00[America/Toronto]"),
                ),
                (
                    "You've hit your weekly limit · resets Nov 28, 6pm (America/Toronto)",
                    Some("2026-11-28T18:00:00-05:00[America/Toronto]"),
                ),
                (
                    "You've hit your limit · resets 6:30pm (America/Toronto)",
                    Some("2026-11-25T18:30:00-05:00[America/Toronto]"),
                ),
                (
                    "You've hit your limit · resets 11pm (UTC)",
                    Some("2026-11-25T23:00:00+00:00[UTC]"),
                ),
                // Already past this year: next year's.
                (
                    "You've hit your limit - resets Feb 9 at 6pm (America/Toronto)",
                    Some("2027-02-09T18:00:00-05:00[America/Toronto]"),
                ),
                (
                    "You\u{2019}ve hit your limit · resets 18:00 (Europe/Berlin)",
                    Some("2026-11-25T18:00:00+01:00[Europe/Berlin]"),
                ),
                (
                    "resets 6 PM (America/Toronto)",
                    Some("2026-11-25T18:00:00-05:00[America/Toronto]"),
                ),
                // Already past today: tomorrow's.
                (
                    "resets 6:05 a.m. (America/Toronto)",
                    Some("2026-11-26T06:05:00-05:00[America/Toronto]"),
                ),
                (
                    "resets 12am (America/Toronto)",
                    Some("2026-11-26T00:00:00-05:00[America/Toronto]"),
                ),
                (
                    "resets 12pm (America/Toronto)",
                    Some("2026-11-25T12:00:00-05:00[America/Toronto]"),
                ),
                (
                    "RESETS AT 9AM (America/Toronto)",
                    Some("2026-11-25T09:00:00-05:00[America/Toronto]"),
                ),
                (
                    "Claude usage limit reached. Your limit will reset at 7pm (America/New_York).",
                    Some("2026-11-25T19:00:00-05:00[America/New_York]"),
                ),
                (
                    "resets November 28 at 6pm (America/Toronto)",
                    Some("2026-11-28T18:00:00-05:00[America/Toronto]"),
                ),
                (
                    "resets Nov. 28 6pm (America/Toronto)",
                    Some("2026-11-28T18:00:00-05:00[America/Toronto]"),
                ),
                (
                    "resets on Nov 28th, 6pm (America/Toronto)",
                    Some("2026-11-28T18:00:00-05:00[America/Toronto]"),
                ),
                (
                    "resets Sept 3, 07:15 (Asia/Kolkata)",
                    Some("2027-09-03T07:15:00+05:30[Asia/Kolkata]"),
                ),
                (
                    // Already 03:42 on Nov 26 at +14: midnight there is past.
                    "resets 00:00 (Etc/GMT-14)",
                    Some("2026-11-27T00:00:00+14:00[Etc/GMT-14]"),
                ),
                // Feb 29 does not exist in 2027: the next one is in 2028.
                (
                    "resets Feb 29, 6pm (UTC)",
                    Some("2028-02-29T18:00:00+00:00[UTC]"),
                ),
                // Trailing text after the zone is fine.
                (
                    "resets 6pm (America/Toronto). Upgrade for more.",
                    Some("2026-11-25T18:00:00-05:00[America/Toronto]"),
                ),
            ],
        );
    }

    #[test]
    fn rejects_nonsense_and_near_misses() {
        let now = "2026-11-25T08:42:33-05:00[America/Toronto]";
        let rows: Vec<(&str, Option<&str>)> = [
            "",
            "You've hit your limit",
            "Usage limit reached",
            "resets",
            "resets 6 (America/Toronto)",
            "resets 18 (Europe/Berlin)",
            "resets 13pm (America/Toronto)",
            "resets 0am (America/Toronto)",
            "resets 6:60pm (America/Toronto)",
            "resets 6:5pm (America/Toronto)",
            "resets 6:055pm (America/Toronto)",
            "resets 24:00 (Europe/Berlin)",
            "resets 123pm (America/Toronto)",
            "resets 6pmish (America/Toronto)",
            "resets 6pm (Mars/Olympus_Mons)",
            "resets 6pm",
            "resets 6pm ()",
            "resets 6pm (America/Toronto",
            "resets 6pm America/Toronto",
            "resets Foo 28, 6pm (America/Toronto)",
            "resets Nov28, 6pm (America/Toronto)",
            "resets Nov 28,, 6pm (America/Toronto)",
            "resets Nov 0, 6pm (America/Toronto)",
            "resets Nov 32, 6pm (America/Toronto)",
            "resets Nov 31, 6pm (America/Toronto)",
            "resets Nov 28 at6pm (America/Toronto)",
            "resets in 2 hours (America/Toronto)",
            "presets 6pm (America/Toronto)",
            "reset 6pm (America/Toronto)",
            "resetsAt\":1795647600",
            "resets \u{ff16}pm (America/Toronto)",
            "resets 6pm (America/Toronto\u{00e9})",
        ]
        .into_iter()
        .map(|text| (text, None))
        .collect();
        check_table(now, &rows);
    }

    #[test]
    fn zone_of_now_does_not_matter_only_its_instant() {
        // 17:30 in Toronto, written as Berlin time.
        check_table(
            "2026-11-25T23:30:00+01:00[Europe/Berlin]",
            &[(
                "resets 6pm (America/Toronto)",
                Some("2026-11-25T18:00:00-05:00[America/Toronto]"),
            )],
        );
    }

    #[test]
    fn around_midnight() {
        check_table(
            "2026-11-25T23:50:00-05:00[America/Toronto]",
            &[
                (
                    "resets 12am (America/Toronto)",
                    Some("2026-11-26T00:00:00-05:00[America/Toronto]"),
                ),
                (
                    "resets 11:55pm (America/Toronto)",
                    Some("2026-11-25T23:55:00-05:00[America/Toronto]"),
                ),
                // 04:50 in UTC already: 11pm is today there.
                ("resets 11pm (UTC)", Some("2026-11-26T23:00:00+00:00[UTC]")),
            ],
        );
        // A reset printed just before midnight and read just after is today's, already past.
        check_table(
            "2026-11-26T00:05:00-05:00[America/Toronto]",
            &[
                (
                    "resets 12am (America/Toronto)",
                    Some("2026-11-26T00:00:00-05:00[America/Toronto]"),
                ),
                (
                    "resets 11:58pm (America/Toronto)",
                    Some("2026-11-26T23:58:00-05:00[America/Toronto]"),
                ),
                (
                    "resets 11pm (America/Toronto)",
                    Some("2026-11-26T23:00:00-05:00[America/Toronto]"),
                ),
            ],
        );
        // Past the grace it is tomorrow's.
        check_table(
            "2026-11-26T00:20:00-05:00[America/Toronto]",
            &[(
                "resets 12am (America/Toronto)",
                Some("2026-11-27T00:00:00-05:00[America/Toronto]"),
            )],
        );
    }

    #[test]
    fn reset_exactly_at_and_just_past_the_grace() {
        let at_edge = "2026-11-25T18:10:00-05:00[America/Toronto]";
        check_table(
            at_edge,
            &[(
                "resets 6pm (America/Toronto)",
                Some("2026-11-25T18:00:00-05:00[America/Toronto]"),
            )],
        );
        let past_edge = "2026-11-25T18:10:01-05:00[America/Toronto]";
        check_table(
            past_edge,
            &[(
                "resets 6pm (America/Toronto)",
                Some("2026-11-26T18:00:00-05:00[America/Toronto]"),
            )],
        );
    }

    #[test]
    fn new_year_rollover() {
        check_table(
            "2026-12-31T22:00:00-05:00[America/Toronto]",
            &[
                (
                    "resets Jan 1, 6pm (America/Toronto)",
                    Some("2027-01-01T18:00:00-05:00[America/Toronto]"),
                ),
                (
                    "resets Dec 31, 11pm (America/Toronto)",
                    Some("2026-12-31T23:00:00-05:00[America/Toronto]"),
                ),
                (
                    "resets 1am (America/Toronto)",
                    Some("2027-01-01T01:00:00-05:00[America/Toronto]"),
                ),
                // Already Jan 1 in UTC: the year is the printed zone's, not ours.
                (
                    "resets Jan 1, 6am (UTC)",
                    Some("2027-01-01T06:00:00+00:00[UTC]"),
                ),
                (
                    "resets Dec 31, 6am (UTC)",
                    Some("2027-12-31T06:00:00+00:00[UTC]"),
                ),
            ],
        );
        // Read just after midnight, a Dec 31 reset a few minutes ago is still last year's.
        check_table(
            "2027-01-01T00:03:00-05:00[America/Toronto]",
            &[(
                "resets Dec 31, 11:59pm (America/Toronto)",
                Some("2026-12-31T23:59:00-05:00[America/Toronto]"),
            )],
        );
    }

    #[test]
    fn toronto_spring_forward_2026_03_08() {
        check_table(
            "2026-03-08T01:30:00-05:00[America/Toronto]",
            &[
                // 2:30 does not exist that night: the clocks show 3:30 an hour in.
                (
                    "resets 2:30am (America/Toronto)",
                    Some("2026-03-08T03:30:00-04:00[America/Toronto]"),
                ),
                (
                    "resets 3am (America/Toronto)",
                    Some("2026-03-08T03:00:00-04:00[America/Toronto]"),
                ),
                (
                    "resets 1:45am (America/Toronto)",
                    Some("2026-03-08T01:45:00-05:00[America/Toronto]"),
                ),
            ],
        );
        check_table(
            "2026-03-07T23:00:00-05:00[America/Toronto]",
            &[
                (
                    "resets 6pm (America/Toronto)",
                    Some("2026-03-08T18:00:00-04:00[America/Toronto]"),
                ),
                (
                    "resets 11:30pm (America/Toronto)",
                    Some("2026-03-07T23:30:00-05:00[America/Toronto]"),
                ),
            ],
        );
    }

    #[test]
    fn toronto_fall_back_2026_11_01() {
        // 1:30 happens twice: first at -04:00, then at -05:00. The next one not past wins.
        check_table(
            "2026-11-01T00:30:00-04:00[America/Toronto]",
            &[(
                "resets 1:30am (America/Toronto)",
                Some("2026-11-01T01:30:00-04:00[America/Toronto]"),
            )],
        );
        check_table(
            "2026-11-01T01:50:00-04:00[America/Toronto]",
            &[(
                "resets 1:30am (America/Toronto)",
                Some("2026-11-01T01:30:00-05:00[America/Toronto]"),
            )],
        );
        check_table(
            "2026-11-01T01:10:00-05:00[America/Toronto]",
            &[(
                "resets 1:30am (America/Toronto)",
                Some("2026-11-01T01:30:00-05:00[America/Toronto]"),
            )],
        );
        check_table(
            "2026-11-01T01:45:00-05:00[America/Toronto]",
            &[(
                "resets 1:30am (America/Toronto)",
                Some("2026-11-02T01:30:00-05:00[America/Toronto]"),
            )],
        );
        check_table(
            "2026-10-31T20:00:00-04:00[America/Toronto]",
            &[(
                "resets 6pm (America/Toronto)",
                Some("2026-11-01T18:00:00-05:00[America/Toronto]"),
            )],
        );
    }

    #[test]
    fn berlin_spring_forward_2026_03_29() {
        check_table(
            "2026-03-29T01:00:00+01:00[Europe/Berlin]",
            &[(
                "resets 02:30 (Europe/Berlin)",
                Some("2026-03-29T03:30:00+02:00[Europe/Berlin]"),
            )],
        );
        check_table(
            "2026-03-28T22:00:00+01:00[Europe/Berlin]",
            &[(
                "resets 18:00 (Europe/Berlin)",
                Some("2026-03-29T18:00:00+02:00[Europe/Berlin]"),
            )],
        );
    }

    #[test]
    fn berlin_fall_back_2026_10_25() {
        check_table(
            "2026-10-25T01:00:00+02:00[Europe/Berlin]",
            &[(
                "resets 2:30am (Europe/Berlin)",
                Some("2026-10-25T02:30:00+02:00[Europe/Berlin]"),
            )],
        );
        check_table(
            "2026-10-25T02:45:00+02:00[Europe/Berlin]",
            &[(
                "resets 02:30 (Europe/Berlin)",
                Some("2026-10-25T02:30:00+01:00[Europe/Berlin]"),
            )],
        );
        check_table(
            "2026-10-24T20:00:00+02:00[Europe/Berlin]",
            &[(
                "resets 18:00 (Europe/Berlin)",
                Some("2026-10-25T18:00:00+01:00[Europe/Berlin]"),
            )],
        );
    }

    #[test]
    fn zone_is_returned_as_printed() {
        let now = zoned("2026-11-25T08:42:33-05:00[America/Toronto]");
        let (_, zone) = parse_reset("resets 6pm (America/Toronto)", &now).expect("parses");
        assert_eq!(zone, "America/Toronto");
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
