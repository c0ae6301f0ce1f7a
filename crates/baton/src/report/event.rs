//! The one event type of a run, and the reporter that hands each event to every sink.
//!
//! The scheduler emits; sinks (the terminal view, the run log) only listen and never reach
//! back into the scheduler.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::agent::StreamEvent;
use crate::plan::{Status, TaskId};

#[derive(Debug, Clone)]
pub struct RunEvent {
    pub time: jiff::Timestamp,
    pub kind: EventKind,
}

#[derive(Debug, Clone)]
pub enum EventKind {
    /// Which plan, which agent, found where.
    Banner { plan: String, agent: String, binary: String, tasks: String },
    /// One of baton's own decisions, with a tag such as `FIND`, `DEPS`, `EXEC`, `CLEANUP`.
    Decision { tag: &'static str, text: String },
    AttemptStarted { task: TaskId, name: String, attempt: u32, max_attempts: u32 },
    /// A line of the agent's live stream.
    Agent { task: TaskId, agent: &'static str, event: StreamEvent },
    /// An attempt ended; `outcome` says how in a few words.
    AttemptEnded { task: TaskId, ok: bool, outcome: String, duration: Duration, cost_usd: Option<f64> },
    /// A task reached a state the run will not change again.
    TaskFinished { task: TaskId, name: String, status: Status, message: String },
    /// baton is waiting (backoff, limit, breaker) until `until`.
    Waiting { reason: String, until: jiff::Timestamp },
    Warning { text: String },
    Summary { text: String },
}

/// Something that shows or stores events.
pub trait Sink: Send {
    fn event(&mut self, ev: &RunEvent);
    /// Called once at the end of the run.
    fn finish(&mut self) {}
}

/// Fans events out to every sink. Cloning gives another handle to the same sinks, so that
/// attempts running at the same time can all report; a sink sees one event at a time.
#[derive(Clone, Default)]
pub struct Reporter {
    sinks: Arc<Mutex<Vec<Box<dyn Sink>>>>,
}

impl Reporter {
    pub fn new(sinks: Vec<Box<dyn Sink>>) -> Reporter {
        Reporter {
            sinks: Arc::new(Mutex::new(sinks)),
        }
    }

    fn with_sinks(&self, f: impl FnOnce(&mut Vec<Box<dyn Sink>>)) {
        // A sink that panicked poisons the lock; reporting must go on regardless.
        let mut guard = self.sinks.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard);
    }

    pub fn add(&self, sink: Box<dyn Sink>) {
        self.with_sinks(|s| s.push(sink));
    }

    pub fn emit(&self, kind: EventKind) {
        let ev = RunEvent {
            time: jiff::Timestamp::now(),
            kind,
        };
        self.with_sinks(|sinks| {
            for s in sinks.iter_mut() {
                s.event(&ev);
            }
        });
    }

    pub fn decision(&self, tag: &'static str, text: impl Into<String>) {
        self.emit(EventKind::Decision { tag, text: text.into() });
    }

    pub fn warn(&self, text: impl Into<String>) {
        self.emit(EventKind::Warning { text: text.into() });
    }

    pub fn finish(&self) {
        self.with_sinks(|sinks| {
            for s in sinks.iter_mut() {
                s.finish();
            }
        });
    }
}

/// The line an event shows as in verbose output and in the run log (without the time).
/// Safe for a terminal: agents' text reaches these lines (see
/// [`crate::report::safe::terminal_line`]); only
/// baton's own multi-line texts keep their line breaks.
pub fn verbose_text(kind: &EventKind) -> Option<String> {
    let text = raw_verbose_text(kind)?;
    Some(match kind {
        EventKind::Banner { .. } | EventKind::Summary { .. } | EventKind::Warning { .. } | EventKind::Decision { .. } => {
            crate::report::safe::terminal_text(&text)
        }
        _ => crate::report::safe::terminal_line(&text),
    })
}

fn raw_verbose_text(kind: &EventKind) -> Option<String> {
    Some(match kind {
        EventKind::Banner { plan, agent, binary, tasks } => {
            format!("[START] {plan}: {tasks}; agent {agent} at {binary}")
        }
        EventKind::Decision { tag, text } => format!("[{tag}] {text}"),
        EventKind::AttemptStarted { task, name, attempt, max_attempts } => {
            format!("[EXEC] {task} {name} — attempt {attempt}/{max_attempts}")
        }
        EventKind::Agent { event, agent, .. } => {
            let line = super::agent_line::verbose_line(event)?;
            match line.strip_prefix("[Claude]") {
                Some(rest) if *agent != "Claude" => format!("[{agent}]{rest}"),
                _ => line,
            }
        }
        EventKind::AttemptEnded { task, outcome, duration, cost_usd, .. } => {
            format!("[DONE] {task}: {outcome} in {}{}", human(*duration), cost(*cost_usd))
        }
        EventKind::TaskFinished { task, status, message, .. } => {
            format!("[TASK] {task} {status}{}", if message.is_empty() { String::new() } else { format!(": {message}") })
        }
        EventKind::Waiting { reason, until } => format!("[WAIT] {reason} until {}", local_time(*until)),
        EventKind::Warning { text } => format!("[WARN] {text}"),
        EventKind::Summary { text } => format!("[SUMMARY] {text}"),
    })
}

pub fn cost(c: Option<f64>) -> String {
    match c {
        Some(c) if c > 0.0 => format!(", ${c:.4}"),
        _ => String::new(),
    }
}

/// `2m 05s`, `41s`, `1h 02m`.
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h {:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else if d.as_millis() < 10_000 && s < 10 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{s}s")
    }
}

/// [`human`] for a number of seconds read from a file (nonsense reads as 0).
pub fn human_secs(secs: f64) -> String {
    human(Duration::try_from_secs_f64(secs).unwrap_or_default())
}

/// `14:30:05` in the machine's time zone.
pub fn clock(t: jiff::Timestamp) -> String {
    t.to_zoned_datetime(jiff::tz::TimeZone::system()).strftime("%H:%M:%S").to_string()
}

/// `2026-11-25 18:30:30 EST` in the machine's time zone.
pub fn local_time(t: jiff::Timestamp) -> String {
    t.to_zoned_datetime(jiff::tz::TimeZone::system()).strftime("%Y-%m-%d %H:%M:%S %Z").to_string()
}
