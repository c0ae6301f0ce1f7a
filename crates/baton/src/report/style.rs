//! Colour: the one decision whether stdout and stderr get colour, and the few styles baton
//! uses. Every coloured piece of output is painted here; what is painted reads the same
//! without colour.
//!
//! The decision, per stream: `--color always` colours and `--color never` does not (the flag
//! wins over the environment); with `auto` (the default) a stream gets colour when it is a
//! terminal, unless `NO_COLOR` is set to anything non-empty or `TERM=dumb`. clap's help and
//! usage errors are told the same (`for_clap`). Paint only text already made safe for a
//! terminal (`report::safe`): the safe pass replaces escape characters, colour's among them.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU8, Ordering};

use anstyle::{AnsiColor, Style};

/// `--color`: when to use colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorChoice {
    // No doc comments: clap would list each value on a line of its own in `--help`.
    #[default]
    Auto,
    Always,
    Never,
}

static CHOICE: AtomicU8 = AtomicU8::new(0);

/// Sets the choice for the whole process (from `--color`, once, before anything is printed).
pub fn set_choice(choice: ColorChoice) {
    CHOICE.store(choice as u8, Ordering::Relaxed);
}

fn choice() -> ColorChoice {
    match CHOICE.load(Ordering::Relaxed) {
        1 => ColorChoice::Always,
        2 => ColorChoice::Never,
        _ => ColorChoice::Auto,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// `NO_COLOR` set to anything but the empty string (<https://no-color.org>), or a dumb terminal.
fn env_says_no() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) || std::env::var_os("TERM").is_some_and(|t| t == "dumb")
}

/// Whether text written to `stream` gets colour.
pub fn enabled(stream: Stream) -> bool {
    match choice() {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            !env_says_no()
                && match stream {
                    Stream::Stdout => std::io::stdout().is_terminal(),
                    Stream::Stderr => std::io::stderr().is_terminal(),
                }
        }
    }
}

/// The same decision for clap, which prints the help on stdout and usage errors on stderr and
/// looks at the terminal itself.
pub fn for_clap() -> clap::ColorChoice {
    match choice() {
        ColorChoice::Always => clap::ColorChoice::Always,
        ColorChoice::Never => clap::ColorChoice::Never,
        ColorChoice::Auto if env_says_no() => clap::ColorChoice::Never,
        ColorChoice::Auto => clap::ColorChoice::Auto,
    }
}

/// What a piece of text is, which decides its colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Completed.
    Good,
    /// Failed, an error.
    Bad,
    /// A warning, skipped, stopping.
    Warn,
    /// A `help:` line's label.
    Help,
    /// The run's summary, the banner's name.
    Strong,
    /// The clocks of the live lines.
    Faint,
}

fn style(role: Role) -> Style {
    let color = |c: AnsiColor| Style::new().fg_color(Some(c.into()));
    match role {
        Role::Good => color(AnsiColor::Green),
        Role::Bad => color(AnsiColor::Red).bold(),
        Role::Warn => color(AnsiColor::Yellow).bold(),
        Role::Help => color(AnsiColor::Cyan).bold(),
        Role::Strong => Style::new().bold(),
        Role::Faint => Style::new().dimmed(),
    }
}

/// `text` in the colour of `role`, when `stream` gets colour; `text` as it is otherwise.
pub fn paint(stream: Stream, role: Role, text: &str) -> String {
    paint_when(enabled(stream), role, text)
}

/// `text` in the colour of `role` when `colour` (a sink that decided once, by [`enabled`]).
pub fn paint_when(colour: bool, role: Role, text: &str) -> String {
    if colour {
        paint_always(role, text)
    } else {
        text.to_owned()
    }
}

fn paint_always(role: Role, text: &str) -> String {
    let s = style(role);
    format!("{s}{text}{s:#}")
}

/// A diagnostic for stderr with its labels in colour (when stderr gets colour): `error:`,
/// `warning:` and `help:` where a line starts with them.
pub fn diagnostic(text: &str) -> String {
    if !enabled(Stream::Stderr) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 32);
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&label_line(line));
    }
    out
}

fn label_line(line: &str) -> String {
    let body = line.trim_start();
    let indent = &line[..line.len() - body.len()];
    for (label, role) in [("error:", Role::Bad), ("warning:", Role::Warn), ("help:", Role::Help)] {
        if let Some(rest) = body.strip_prefix(label) {
            return format!("{indent}{}{rest}", paint_always(role, label));
        }
    }
    line.to_owned()
}

/// Writes a diagnostic line (or a few) to stderr, labels in colour (see [`diagnostic`]); a
/// closed stderr is not worth a panic.
pub fn error_line(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{}", diagnostic(text));
}

/// `eprintln!` for diagnostics: `error:`, `warning:` and `help:` labels in colour when stderr
/// gets colour (see [`diagnostic`]).
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => { $crate::report::style::error_line(&format!($($arg)*)) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_painted_at_a_line_start_only() {
        let (help, bad) = (style(Role::Help), style(Role::Bad));
        assert_eq!(label_line("  help: run `baton check`"), format!("  {help}help:{help:#} run `baton check`"));
        assert_eq!(label_line("error: x"), format!("{bad}error:{bad:#} x"));
        assert_eq!(label_line("the error: stays"), "the error: stays");
        assert!(paint_always(Role::Good, "ok").starts_with('\u{1b}'));
    }
}
