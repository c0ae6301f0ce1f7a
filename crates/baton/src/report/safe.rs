//! Text from outside (an agent's output, a plan's names, a record's message) made safe to print:
//! the one home of baton's terminal sanitising. Every text that reaches a terminal or a log line
//! and may hold someone else's words passes through here.

/// [`terminal_line`], with every run of whitespace, newlines included, collapsed to one space.
pub fn one_line(text: &str) -> String {
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

/// The characters that reorder the text around them (`U+202E` shows `evil` as `live`).
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `s` as one word for a POSIX shell, for commands baton shows people or agents to run.
pub fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@%".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The first `max_chars` characters of `text`, with `…` when something was cut (so up to
/// `max_chars + 1` in all). Counts `char`s, so it never splits a UTF-8 sequence.
pub fn cut(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        None => text.to_owned(),
        Some((end, _)) => format!("{}…", text[..end].trim_end()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_text_is_shown_as_text_on_one_line() {
        assert_eq!(terminal_line("a\u{1b}[2J\tb\r\nc\u{202e}d"), "a\u{fffd}[2J b  c\u{fffd}d");
        assert_eq!(one_line("  a\n\n\tb\u{2028}c  "), "a b c");
        assert_eq!(terminal_text("a\u{7}\nb"), "a\u{fffd}\nb");
        assert_eq!(cut("héllo wörld", 6), "héllo…");
        assert_eq!(cut("héllo", 5), "héllo");
    }
}
