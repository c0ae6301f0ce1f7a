//! The exit codes baton documents, one per way a command can end.

/// How a baton command ended. The numbers are part of the interface: scripts depend on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Every task completed (or the command did what was asked).
    Completed = 0,
    /// Some task failed.
    TaskFailed = 1,
    /// An error: invalid input (plan, config, flags, the working tree) before anything ran, or
    /// mid-run a problem no retry can fix (the agent CLI is not logged in, the plan cannot be
    /// saved). The message and the run's summary say which.
    InvalidInput = 2,
    /// Pending tasks remain that can never run.
    Blocked = 3,
    /// Stopped early: the stop file, Ctrl+C.
    Stopped = 4,
    /// Every task completed but the smoke tests failed.
    SmokeFailed = 5,
    /// The budget (the plan's over all its runs, or this run's) cannot pay for another
    /// attempt: none started, the running ones finished.
    BudgetExhausted = 6,
}

impl Exit {
    pub fn code(self) -> i32 {
        self as i32
    }

    /// What the code means in general, as `--help` says it.
    pub fn meaning(self) -> &'static str {
        match self {
            Exit::Completed => "everything completed",
            Exit::TaskFailed => "some task failed",
            Exit::InvalidInput => "an error (invalid input before anything ran, or a problem no retry fixes); the message says which",
            Exit::Blocked => "blocked: pending tasks remain that can never run",
            Exit::Stopped => "stopped early (stop file, Ctrl+C)",
            Exit::SmokeFailed => "all tasks completed but the smoke tests failed",
            Exit::BudgetExhausted => "budget exhausted: the next attempt would cost more than the budget leaves",
        }
    }
}

/// The `Exit codes:` part of one command's `--help`: the codes that command ends with, each
/// with what it means for that command (an empty text: [`Exit::meaning`]).
pub fn codes_help(codes: &[(Exit, &str)]) -> String {
    // Wrapped here with a hanging indent: clap would wrap a long line to the margin.
    const WIDTH: usize = 92;
    let mut out = String::from("Exit codes:");
    for (exit, text) in codes {
        let text = if text.is_empty() { exit.meaning() } else { text };
        let mut line = format!("  {:<3}", exit.code());
        for word in text.split(' ') {
            if line.len() + 1 + word.len() > WIDTH && line.len() > 6 {
                out.push('\n');
                out.push_str(&line);
                line = String::from("     ");
            }
            line.push(' ');
            line.push_str(word);
        }
        out.push('\n');
        out.push_str(&line);
    }
    out
}

/// The table of every code, printed in `baton --help` and README.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0   everything completed
  1   some task failed
  2   an error: invalid input (plan, config, flags, uncommitted changes) before
      anything ran, or mid-run a problem no retry fixes (e.g. the agent CLI is not
      logged in); the message says which
  3   blocked: pending tasks remain that can never run
  4   stopped early (stop file, Ctrl+C)
  5   all tasks completed but the smoke tests failed
  6   budget exhausted: the next attempt would cost more than the budget leaves";

/// An error and its causes on one line, for a person: `cannot read x: No such file`.
pub fn render_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        out.push_str(&format!(": {s}"));
        src = s.source();
    }
    out
}

/// Runs the async part of a command on a single-threaded runtime.
pub fn block_on(f: impl std::future::Future<Output = Exit>) -> Exit {
    match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt.block_on(f),
        Err(e) => {
            crate::errln!("error: cannot start baton's runtime: {e}");
            Exit::InvalidInput
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_code_lines_wrap_under_their_text() {
        let help = codes_help(&[(Exit::Completed, ""), (Exit::InvalidInput, &"word ".repeat(30))]);
        let lines: Vec<&str> = help.lines().collect();
        assert_eq!(lines[..2], ["Exit codes:", "  0   everything completed"]);
        assert!(lines[2].starts_with("  2   word word"), "{help}");
        assert!(lines[3].starts_with("      word"), "{help}");
        assert!(lines.iter().all(|l| l.len() <= 92), "{help}");
    }
}
