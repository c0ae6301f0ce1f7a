//! A command run to its end in one call, for the short commands around a plan run (hooks, smoke
//! tests, notification commands): each output line handed to the caller as it comes, the last
//! lines kept for a failure message, the policy's total deadline enforced. Dropping the future
//! ends the command and what it started.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use super::child::{CommandSpec, Deadline, ExitInfo, Output, SpawnError, Supervised};
use super::lines::Stream;
use super::policy::Policy;

/// How many of the last output lines are kept for a failure message, and how long each may be.
const TAIL_LINES: usize = 20;
const TAIL_LINE_CHARS: usize = 400;

/// Appended to a line that was longer than the policy's `max_line`.
pub const LINE_CUT: &str = " […line cut]";

/// How the command ended.
#[derive(Debug)]
pub enum Ended {
    /// It exited (or was killed by a signal it did not get from baton).
    Exited(ExitInfo),
    /// It ran past its total deadline; it and what it started were ended.
    TimedOut,
    /// It could not be started.
    Error(SpawnError),
}

#[derive(Debug)]
pub struct Finished {
    pub ended: Ended,
    /// From the start to the end of the command.
    pub duration: Duration,
    /// The last output lines, stdout and stderr interleaved as they arrived.
    pub tail: String,
    /// Something still held the output open when baton stopped reading it.
    pub leaked: bool,
}

/// Runs `cmd` under `policy` to its end, calling `on_line` with each output line (without its
/// line ending; a cut line ends with [`LINE_CUT`]) as it comes.
pub async fn run_to_end(
    cmd: &CommandSpec,
    policy: &Policy,
    on_line: &mut dyn FnMut(Stream, &str),
) -> Finished {
    let start = Instant::now();
    let mut process = match Supervised::spawn(cmd, policy).await {
        Ok(process) => process,
        Err(error) => {
            return Finished {
                ended: Ended::Error(error),
                duration: start.elapsed(),
                tail: String::new(),
                leaked: false,
            }
        }
    };
    let mut tail = Tail::default();
    let mut timed_out = false;
    let mut duration = None;
    let exit = loop {
        match process.next().await {
            Some(Output::Line(line)) => {
                let mut text = line.text;
                if line.truncated {
                    text.push_str(LINE_CUT);
                }
                on_line(line.stream, &text);
                tail.push(text);
            }
            Some(Output::Deadline(Deadline::Total | Deadline::Idle)) => timed_out = true,
            Some(Output::Exited(exit)) => break exit,
            None => {
                break ExitInfo {
                    code: None,
                    signal: None,
                }
            }
        }
        if duration.is_none() && process.command_exit().is_some() {
            duration = Some(start.elapsed());
        }
    };
    let ended = if timed_out {
        Ended::TimedOut
    } else {
        Ended::Exited(exit)
    };
    Finished {
        ended,
        duration: duration.unwrap_or_else(|| start.elapsed()),
        tail: tail.render(),
        leaked: process.leaked(),
    }
}

#[derive(Default)]
struct Tail {
    lines: VecDeque<String>,
}

impl Tail {
    fn push(&mut self, mut line: String) {
        if let Some((cut, _)) = line.char_indices().nth(TAIL_LINE_CHARS) {
            line.truncate(cut);
            line.push('…');
        }
        if self.lines.len() == TAIL_LINES {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
    }

    fn render(&self) -> String {
        let lines: Vec<&str> = self.lines.iter().map(String::as_str).collect();
        lines.join("\n")
    }
}
