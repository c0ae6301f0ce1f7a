//! The terminal view of a run.
//!
//! Calm by default: one live line per running task (on a terminal) with its latest activity,
//! elapsed time and attempt, and one line per finished task; no raw agent text. `--verbose`
//! prints every event as a time-stamped line instead. Output is plain text: it reads the same
//! without colour, and nothing here uses colour.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use super::event::{clock, cost, human, local_time, verbose_text, EventKind, RunEvent, Sink};
use super::render;
use super::safe::{terminal_line, terminal_text};
use crate::agent::StreamSummary;
use crate::plan::{Status, TaskId};

pub struct Terminal {
    verbose: bool,
    live: bool,
    running: HashMap<TaskId, Running>,
}

struct Running {
    bar: Option<ProgressBar>,
    label: String,
    summary: StreamSummary,
}

impl Terminal {
    pub fn new(verbose: bool) -> Terminal {
        Terminal {
            verbose,
            live: !verbose && std::io::stdout().is_terminal() && std::env::var_os("TERM").is_some_and(|t| t != "dumb"),
            running: HashMap::new(),
        }
    }

    /// Prints a line (or a few). Every text printed goes through here or [`warn`], made safe
    /// for the terminal: agents' text reaches these lines.
    fn line(&self, text: &str) {
        let text = &terminal_text(text);
        // Print above any live lines so they are not torn.
        if let Some(bar) = self.running.values().find_map(|r| r.bar.as_ref()) {
            bar.println(text);
        } else {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{text}");
            let _ = out.flush();
        }
    }
}

impl Sink for Terminal {
    fn event(&mut self, ev: &RunEvent) {
        if self.verbose {
            if let Some(text) = verbose_text(&ev.kind) {
                let line = format!("[{}] {text}", clock(ev.time));
                if matches!(ev.kind, EventKind::Warning { .. } | EventKind::Error { .. }) {
                    warn(&line);
                } else {
                    self.line(&line);
                }
            }
            return;
        }
        match &ev.kind {
            EventKind::Banner { plan, agent, binary, counts, parallel, commit } => {
                let tasks = render::banner_text(plan, counts, *parallel, *commit);
                let tasks = tasks.strip_prefix(&format!("{plan}: ")).unwrap_or(&tasks);
                self.line(&format!("baton · {plan} · {tasks}\nagent: {agent} ({binary})"));
            }
            EventKind::Note(n) if render::calm(n) => self.line(&render::note_text(n)),
            EventKind::Note(_) => {}
            EventKind::AttemptStarted { task, name, attempt, max_attempts } => {
                let label = format!("{task} {name} · attempt {attempt}/{max_attempts}");
                let bar = self.live.then(|| {
                    let bar = ProgressBar::new_spinner();
                    bar.set_style(
                        ProgressStyle::with_template("{spinner} {prefix} · {elapsed} · {wide_msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    bar.set_prefix(terminal_line(&label));
                    bar.set_message("starting");
                    bar.enable_steady_tick(Duration::from_millis(200));
                    bar
                });
                if !self.live {
                    self.line(&format!("▸ {label}"));
                }
                self.running.insert(
                    task.clone(),
                    Running {
                        bar,
                        label,
                        summary: StreamSummary::new(),
                    },
                );
            }
            EventKind::Agent { task, event, .. } => {
                if let Some(r) = self.running.get_mut(task) {
                    r.summary.observe(event);
                    if let (Some(bar), Some(activity)) = (&r.bar, r.summary.last_activity()) {
                        bar.set_message(activity);
                    }
                }
            }
            EventKind::AttemptEnded { task, outcome, duration, cost_usd } => {
                let r = self.running.remove(task);
                let label = r.as_ref().map_or_else(|| task.to_string(), |r| r.label.clone());
                if let Some(bar) = r.and_then(|r| r.bar) {
                    bar.finish_and_clear();
                }
                // A good attempt is told by its task's line; a bad one needs its own.
                if !outcome.ok() {
                    self.line(&format!("  ✗ {label}: {} ({}{})", terminal_line(&render::outcome_text(outcome)), human(*duration), cost(*cost_usd)));
                }
            }
            EventKind::TaskFinished { task, name, status, message, attempts } => {
                let message = &render::finished_text(*status, message, *attempts);
                let mark = match status {
                    Status::Completed => "✓",
                    Status::Skipped => "–",
                    Status::Failed => "✗",
                    _ => "·",
                };
                let msg = if message.is_empty() { String::new() } else { format!(": {}", super::status::cut(&terminal_line(message), 160)) };
                self.line(&format!("{mark} {task} {name} — {status}{msg}"));
            }
            EventKind::Waiting { reason, until } => {
                self.line(&format!("… {}; waiting until {}", terminal_line(&render::wait_text(reason)), local_time(*until)));
            }
            EventKind::Warning { text } => warn(&format!("warning: {text}")),
            EventKind::Error { error, help } => warn(&render::error_text(error, help.as_deref())),
            EventKind::Summary(s) => self.line(&render::summary_text(s)),
        }
    }

    fn finish(&mut self) {
        for (_, r) in self.running.drain() {
            if let Some(bar) = r.bar {
                bar.finish_and_clear();
            }
        }
    }
}

/// A line on stderr, made safe for the terminal; a closed stderr is not worth a panic.
fn warn(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{}", terminal_text(text));
}

/// Every event, time-stamped, appended to a file: the run's own log.
pub struct RunLog {
    file: std::fs::File,
}

impl RunLog {
    pub fn create(path: &std::path::Path) -> std::io::Result<RunLog> {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        Ok(RunLog { file })
    }
}

impl Sink for RunLog {
    fn event(&mut self, ev: &RunEvent) {
        if let Some(text) = verbose_text(&ev.kind) {
            let _ = writeln!(self.file, "[{}] {text}", ev.time);
        }
    }
}

/// The reporter of a run: the terminal view, and every event in `log` too (a log that cannot be
/// written costs a warning, not the run).
pub fn run_reporter(verbose: bool, log: &std::path::Path) -> super::event::Reporter {
    let reporter = super::event::Reporter::new(vec![Box::new(Terminal::new(verbose))]);
    if let Some(dir) = log.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    match RunLog::create(log) {
        Ok(l) => reporter.add(Box::new(l)),
        Err(e) => warn(&format!("warning: cannot write the run log {}: {e}", log.display())),
    }
    reporter
}

/// The reporter for an error met before a run has a log: the terminal alone.
pub fn error_reporter() -> super::event::Reporter {
    super::event::Reporter::new(vec![Box::new(Terminal::new(false))])
}
