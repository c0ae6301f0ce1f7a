//! Claude Code's wording of its limits: which of its messages say the account's usage limit was
//! reached (`You've hit your limit · resets 6pm (America/Toronto)`), which say the API is
//! throttling (`API Error: Request rejected (429) · …`), and the reset times printed in them.
//!
//! These are the recognisers [`crate::policy::limit::classify`] applies to the CLI's own
//! messages; the precedence between them, and the choice of when to wake up, are baton's and
//! live there. Must not read the clock: `now` is passed in.

use std::time::Duration;

use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ZonedDateTime};

use crate::policy::limit::LimitWording;

/// How far in the past a printed reset time may lie and still mean "today" rather than
/// "tomorrow". The CLI prints the time shortly before baton parses it, and may round it; a
/// reset read a minute late must wake baton in 30 s, not 24 h. A real next-day reset that falls
/// inside the grace only costs a few cheap re-checks (see [`crate::policy::limit::wake_at`]'s floor).
pub const RESET_GRACE: Duration = Duration::from_secs(10 * 60);

impl LimitWording for super::Claude {
    fn is_usage_limit(&self, text: &str) -> bool {
        is_usage_limit(text)
    }

    fn printed_reset(&self, text: &str, now: &ZonedDateTime) -> Option<(Timestamp, Option<String>)> {
        parse_reset(text, now).map(|(at, zone)| (at, Some(zone)))
    }

    fn bare_reset(&self, text: &str) -> Option<Timestamp> {
        epoch_suffix(text)
    }

    fn throttle_status(&self, text: &str) -> Option<Option<u16>> {
        throttle_status(text)
    }
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
}
