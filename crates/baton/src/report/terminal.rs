//! The terminal view of a run.
//!
//! Calm by default: one live line per running task (on a terminal) with its latest activity,
//! elapsed time and attempt, a live line while baton waits, and one line per finished task; no
//! raw agent text. Where stdout is not a terminal (a pipe, a CI log) the view is line-based: a
//! line when an attempt starts, and the same lines for the rest. `--verbose` prints every event
//! as a time-stamped line instead. It reads the same without colour; with colour (see
//! `report::style`) a finished task's mark, a failed attempt's, the labels of warnings and
//! errors, and the summary stand out.
//!
//! With `--message-format json` stdout is the JSON events' (`report::json`): this view then
//! goes to stderr, line-based.

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use super::event::{clock, cost, human, local_time, verbose_text, EventKind, RunEvent, Sink};
pub use super::json::MessageFormat;
use super::live::Live;
use super::render;
use super::safe::{terminal_line, terminal_text};
use super::style::{self, Role, Stream};
use crate::agent::StreamSummary;
use crate::plan::{Status, TaskId};

pub struct Terminal {
    verbose: bool,
    /// Every line on stderr: stdout belongs to the JSON events.
    stderr: bool,
    /// The live lines, on a terminal in the calm view.
    live: Option<Live>,
    running: HashMap<TaskId, Running>,
    /// Tasks whose check has a live line of its own (their attempt's line was gone).
    checking: std::collections::HashSet<TaskId>,
    /// Tasks under review, and whether the view drew their live line for the review alone
    /// (the attempt's line had gone).
    reviewing: HashMap<TaskId, bool>,
    /// Whether stdout gets colour, decided once (see `report::style`).
    colour: bool,
    /// The run has more than one agent: each task's line names its own.
    several_agents: bool,
}

struct Running {
    label: String,
    /// The start of the task's live line: the task, its name cut short, the attempt.
    head: String,
    summary: StreamSummary,
}

/// A task's name in its live line is cut here, so that its activity keeps room beside it.
const LIVE_NAME_CHARS: usize = 48;

/// A wait ending this close to an attempt's start is taken as over: the engine's clock and the
/// view's differ by the moments between them.
const WAIT_SLACK: Duration = Duration::from_secs(1);

impl Terminal {
    pub fn new(verbose: bool) -> Terminal {
        let mut terminal = Terminal::with_live(verbose, if verbose { None } else { Live::stdout() });
        terminal.colour = style::enabled(Stream::Stdout);
        terminal
    }

    /// The view on stderr, without live lines.
    pub fn on_stderr(verbose: bool) -> Terminal {
        Terminal { stderr: true, colour: style::enabled(Stream::Stderr), ..Terminal::with_live(verbose, None) }
    }

    /// Without colour: for a view drawn elsewhere than on stdout (tests).
    fn with_live(verbose: bool, live: Option<Live>) -> Terminal {
        Terminal {
            verbose,
            stderr: false,
            live,
            running: HashMap::new(),
            checking: std::collections::HashSet::new(),
            reviewing: HashMap::new(),
            colour: false,
            several_agents: false,
        }
    }

    /// Prints a line (or a few). Every text printed goes through here or [`Terminal::warn`],
    /// made safe for the terminal: agents' text reaches these lines.
    fn line(&self, text: &str) {
        self.print(&terminal_text(text));
    }

    /// A line whose `mark` (one of baton's own, not outside text) is painted for `role`.
    fn marked(&self, mark: &str, role: Role, text: &str) {
        self.print(&format!("{}{}", style::paint_when(self.colour, role, mark), terminal_text(text)));
    }

    /// Prints text already made safe for the terminal (and perhaps painted).
    fn print(&self, text: &str) {
        match &self.live {
            // Above the live lines, which are then drawn again below it.
            Some(live) => live.println(text),
            None if self.stderr => warn(text),
            None => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{text}");
                let _ = out.flush();
            }
        }
    }

    /// A line on stderr, with the live lines (on the same terminal, most likely) out of its way.
    fn warn(&self, text: &str) {
        match &self.live {
            Some(live) => live.suspend(|| warn(text)),
            None => warn(text),
        }
    }
}

impl Sink for Terminal {
    fn event(&mut self, ev: &RunEvent) {
        if self.verbose {
            if let Some(text) = verbose_text(&ev.kind) {
                let line = format!("[{}] {text}", clock(ev.time));
                let warning = matches!(&ev.kind, EventKind::Note(n) if render::warning(n));
                if warning || matches!(ev.kind, EventKind::Warning { .. } | EventKind::Error { .. }) {
                    self.warn(&line);
                } else {
                    self.line(&line);
                }
            }
            return;
        }
        if let Some(live) = &mut self.live {
            let slack = if matches!(ev.kind, EventKind::AttemptStarted { .. }) { WAIT_SLACK } else { Duration::ZERO };
            live.expire(ev.time, slack);
        }
        match &ev.kind {
            EventKind::Banner { plan, agent, binary, counts, parallel, commit, others } => {
                let tasks = render::banner_text(plan, counts, *parallel, *commit);
                let tasks = tasks.strip_prefix(&format!("{plan}: ")).unwrap_or(&tasks);
                let others = if others.is_empty() { String::new() } else { format!("\nother agents: {}", terminal_line(&others.join(", "))) };
                self.marked("baton", Role::Strong, &format!(" · {plan} · {tasks}\nagent: {agent} ({binary}){others}"));
                self.several_agents = !others.is_empty();
            }
            EventKind::Note(n) if render::warning(n) => self.warn(&format!("warning: {}", render::note_text(n))),
            EventKind::Note(n) if render::calm(n) => self.line(&render::note_text(n)),
            EventKind::Note(_) => {}
            EventKind::AttemptStarted { task, name, attempt, max_attempts, agent, .. } => {
                // Which agent, when the run has several.
                let on = agent.as_deref().filter(|_| self.several_agents).map(|a| format!(" · on {a}")).unwrap_or_default();
                let label = format!("{task} {name} · attempt {attempt}/{max_attempts}{on}");
                let head = terminal_line(&format!("{task} {} · attempt {attempt}/{max_attempts}{on}", super::status::cut(name, LIVE_NAME_CHARS)));
                match &mut self.live {
                    Some(live) => live.start(task, &format!("{head} · starting")),
                    None => self.line(&format!("▸ {label}")),
                }
                self.running.insert(
                    task.clone(),
                    Running {
                        label,
                        head,
                        summary: StreamSummary::new(),
                    },
                );
            }
            // The reviewer's stream: its live line keeps saying `reviewing`.
            EventKind::Agent { task, .. } if self.reviewing.contains_key(task) => {}
            EventKind::Agent { task, event, .. } => {
                if let Some(r) = self.running.get_mut(task) {
                    r.summary.observe(event);
                    if let (Some(live), Some(activity)) = (&self.live, r.summary.last_activity()) {
                        live.update(task, &format!("{} · {activity}", r.head));
                    }
                }
            }
            EventKind::AttemptEnded { task, outcome, duration, cost_usd } => {
                let r = self.running.remove(task);
                let label = r.as_ref().map_or_else(|| task.to_string(), |r| r.label.clone());
                if let Some(live) = &mut self.live {
                    live.end(task);
                }
                // A good attempt is told by its task's line; a bad one needs its own.
                if !outcome.ok() {
                    let text = format!(" {label}: {} ({}{})", terminal_line(&render::outcome_text(outcome)), human(*duration), cost(*cost_usd));
                    self.marked("  ✗", Role::Bad, &text);
                }
            }
            EventKind::CheckStarted { task, command, .. } => {
                let activity = format!("checking `{}`", super::status::cut(&terminal_line(command), LIVE_NAME_CHARS));
                match (&mut self.live, self.running.get(task)) {
                    (Some(live), Some(r)) => live.update(task, &format!("{} · {activity}", r.head)),
                    // The attempt's line is gone already: the check gets one of its own.
                    (Some(live), None) => {
                        live.start(task, &terminal_line(&format!("{task} · {activity}")));
                        self.checking.insert(task.clone());
                    }
                    (None, _) => {}
                }
            }
            EventKind::CheckEnded { task, command, passed, exit, signal, timed_out, duration } => {
                if self.checking.remove(task) {
                    if let Some(live) = &mut self.live {
                        live.end(task);
                    }
                }
                // A passed check is told quietly, by the task's line; a failed one needs its own.
                if !passed {
                    let how = render::check_end_text(*passed, *exit, *signal, *timed_out, *duration);
                    self.marked("  ✗", Role::Bad, &format!(" {task}: check `{}` {how}", terminal_line(command)));
                }
            }
            EventKind::ReviewStarted { task, .. } => {
                let head = self.running.get(task).map(|r| r.head.clone());
                let own = head.is_none();
                if let Some(live) = &mut self.live {
                    match &head {
                        Some(head) => live.update(task, &format!("{head} · reviewing")),
                        None => live.start(task, &format!("{} · reviewing", terminal_line(task.as_str()))),
                    }
                }
                self.reviewing.insert(task.clone(), own);
            }
            EventKind::ReviewEnded { task, verdict, findings, problem } => {
                if let (Some(own), Some(live)) = (self.reviewing.remove(task), &mut self.live) {
                    match self.running.get(task) {
                        Some(r) if !own => live.update(task, &r.head),
                        _ => live.end(task),
                    }
                }
                let (mark, role) = match verdict.as_deref() {
                    Some("PASS") => ("  ✓", Role::Good),
                    Some("FAIL") => ("  ✗", Role::Bad),
                    _ => ("  !", Role::Warn),
                };
                let text = render::review_text(task, verdict.as_deref(), findings, problem.as_deref());
                self.marked(mark, role, &format!(" review {text}"));
            }
            EventKind::TaskFinished { task, name, status, message, attempts } => {
                let (mark, role) = match status {
                    Status::Completed | Status::Verified => ("✓", Role::Good),
                    Status::Skipped => ("–", Role::Warn),
                    Status::Failed | Status::ValidationExhausted => ("✗", Role::Bad),
                    _ => ("·", Role::Strong),
                };
                let how = render::finished_text(*status, &super::status::cut(&terminal_line(message), 160), *attempts);
                self.marked(mark, role, &format!(" {task} {name} — {how}"));
            }
            EventKind::Waiting { reason, until } => {
                let reason = terminal_line(&render::wait_text(reason));
                match &mut self.live {
                    // Live, with the time left, until the wait is over.
                    Some(live) => live.wait(&reason, &format!("{reason}; waiting until {}", local_time(*until)), *until),
                    None => self.line(&format!("… {reason}; waiting until {}", local_time(*until))),
                }
            }
            EventKind::Warning { text } => self.warn(&format!("warning: {text}")),
            EventKind::Error { error, help } => self.warn(&render::error_text(error, help.as_deref())),
            EventKind::Summary(s) => self.print(&style::paint_when(self.colour, Role::Strong, &terminal_text(&render::summary_text(s)))),
            // The exit code is the process's own; the record is in the logs.
            EventKind::AttemptRecorded { .. } | EventKind::Exit { .. } => {}
        }
    }

    fn finish(&mut self) {
        self.running.clear();
        self.reviewing.clear();
        if let Some(live) = &mut self.live {
            live.clear();
        }
    }
}

/// A line on stderr, made safe for the terminal, its label in colour; a closed stderr is not
/// worth a panic.
fn warn(text: &str) {
    style::error_line(&terminal_text(text));
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

/// How a run shows itself, as its command line asked.
#[derive(Debug, Clone, Default)]
pub struct Output {
    pub verbose: bool,
    pub format: MessageFormat,
    /// Where to write the JUnit report when the run ends.
    pub junit: Option<std::path::PathBuf>,
}

impl Output {
    /// The sinks this output asks for: the terminal view (on stderr when stdout carries JSON),
    /// the JSON events, the JUnit report.
    fn sinks(&self) -> Vec<Box<dyn super::event::Sink>> {
        let mut sinks: Vec<Box<dyn super::event::Sink>> = Vec::new();
        match self.format {
            MessageFormat::Human => sinks.push(Box::new(Terminal::new(self.verbose))),
            MessageFormat::Json => {
                sinks.push(Box::new(Terminal::on_stderr(self.verbose)));
                sinks.push(Box::new(super::json::Json::new(self.verbose)));
            }
        }
        if let Some(path) = &self.junit {
            sinks.push(Box::new(super::junit::Junit::new(path.clone())));
        }
        sinks
    }

    /// The reporter for an error met before a run has a log: these sinks alone.
    pub fn error_reporter(&self) -> super::event::Reporter {
        super::event::Reporter::new(self.sinks())
    }
}

/// The reporter of a run: the terminal view, and every event in `log` too (a log that cannot be
/// written costs a warning, not the run).
pub fn run_reporter(verbose: bool, log: &std::path::Path) -> super::event::Reporter {
    output_reporter(&Output { verbose, ..Output::default() }, log)
}

/// [`run_reporter`] with the sinks `out` asks for.
pub fn output_reporter(out: &Output, log: &std::path::Path) -> super::event::Reporter {
    let reporter = super::event::Reporter::new(out.sinks());
    if let Some(dir) = log.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    match RunLog::create(log) {
        Ok(l) => reporter.add(Box::new(l)),
        Err(e) => {
            warn(&format!("warning: cannot write the run log {}: {e}", log.display()));
        }
    }
    reporter
}

/// The reporter for an error met before a run has a log: the terminal alone.
pub fn error_reporter() -> super::event::Reporter {
    super::event::Reporter::new(vec![Box::new(Terminal::new(false))])
}

#[cfg(test)]
mod tests {
    use super::super::live::screen::Screen;
    use super::*;
    use crate::agent::StreamEvent;
    use crate::report::event::{AttemptOutcome, Note, WaitReason};
    use crate::report::status::Counts;

    /// A calm view drawing its live lines on an in-memory terminal `width` columns wide.
    fn view(width: u16) -> (Terminal, Screen) {
        let screen = Screen::new(width);
        (Terminal::with_live(false, Some(Live::new(screen.target(), None))), screen)
    }

    fn at(time: jiff::Timestamp, kind: EventKind) -> RunEvent {
        RunEvent { time, kind }
    }

    fn now(kind: EventKind) -> RunEvent {
        at(jiff::Timestamp::now(), kind)
    }

    fn started(task: &str, name: &str, attempt: u32) -> RunEvent {
        now(EventKind::AttemptStarted { task: task.into(), name: name.into(), attempt, max_attempts: 2, session: attempt, model: None, transcript: Default::default(), max_budget_usd: None, agent: None })
    }

    fn tool(task: &str, path: &str) -> RunEvent {
        now(EventKind::Agent {
            task: task.into(),
            agent: "Claude",
            event: StreamEvent::ToolUse { name: "Read".into(), summary: Some(path.into()), input: serde_json::Value::Null },
        })
    }

    fn ended(task: &str, ok: bool) -> RunEvent {
        now(EventKind::AttemptEnded {
            task: task.into(),
            outcome: if ok {
                AttemptOutcome::Reported { status: Status::Completed, from_file: true }
            } else {
                AttemptOutcome::Failed { message: "the status file says failed".into() }
            },
            duration: Duration::from_secs(3),
            cost_usd: None,
        })
    }

    fn finished(task: &str, name: &str) -> RunEvent {
        now(EventKind::TaskFinished { task: task.into(), name: name.into(), status: Status::Completed, message: String::new(), attempts: None })
    }

    /// The rows that are live task lines: they start with the spinner.
    fn live_rows(rows: &[String]) -> Vec<&String> {
        rows.iter().filter(|r| r.starts_with(|c: char| "⠁⠂⠄⡀⢀⠠⠐⠈".contains(c))).collect()
    }

    #[test]
    fn parallel_tasks_have_one_live_line_each_redrawn_in_place_below_the_printed_lines() {
        let (mut term, screen) = view(100);
        let counts = Counts { total: 3, pending: 3, ..Counts::default() };
        term.event(&now(EventKind::Banner { plan: "p.yaml".into(), agent: "Claude".into(), binary: "claude".into(), counts, parallel: Some(3), commit: true, others: Vec::new() }));
        for (task, name) in [("T1", "one"), ("T2", "two"), ("T3", "three")] {
            term.event(&started(task, name, 1));
        }
        for round in 0..5 {
            for task in ["T1", "T2", "T3"] {
                term.event(&tool(task, &format!("src/{task}-{round}.rs")));
            }
        }
        let rows = screen.rows();
        assert_eq!(rows.len(), 5, "two printed lines and three live ones, nothing left behind: {rows:#?}");
        assert_eq!(rows[..2], ["baton · p.yaml · 0 of 3 completed · 3 pending · parallel, up to 3 at once", "agent: Claude (claude)"], "{rows:#?}");
        let live = live_rows(&rows);
        assert_eq!(live.len(), 3, "{rows:#?}");
        for (row, want) in live.iter().zip(["T1 one · attempt 1/2 · Read src/T1-4.rs", "T2 two · attempt 1/2 · Read src/T2-4.rs", "T3 three · attempt 1/2 · Read src/T3-4.rs"]) {
            assert!(row.ends_with(want), "{row:?} should end with {want:?}");
        }
        assert!(!rows.iter().any(|r| r.contains("starting")), "no frozen line: {rows:#?}");

        // A printed line goes above the live ones.
        term.event(&now(EventKind::Note(Note::TaskGone { task: "T9".into() })));
        let rows = screen.rows();
        assert_eq!(rows.len(), 6, "{rows:#?}");
        assert_eq!(rows[2], "T9 is no longer in the plan (the agent replaced it); moving on");
        assert_eq!(live_rows(&rows).len(), 3, "{rows:#?}");

        // An ended attempt's line goes; the others stay, in their order.
        term.event(&ended("T2", true));
        term.event(&finished("T2", "two"));
        term.event(&tool("T3", "src/late.rs"));
        let rows = screen.rows();
        assert_eq!(rows[3], "✓ T2 two — completed", "{rows:#?}");
        let live = live_rows(&rows);
        assert_eq!(live.len(), 2, "{rows:#?}");
        assert!(live[0].ends_with("T1 one · attempt 1/2 · Read src/T1-4.rs") && live[1].ends_with("T3 three · attempt 1/2 · Read src/late.rs"), "{rows:#?}");
        assert_eq!(rows.len(), 6, "{rows:#?}");

        term.event(&ended("T1", true));
        term.event(&finished("T1", "one"));
        term.event(&ended("T3", false));
        term.finish();
        let rows = screen.rows();
        assert!(live_rows(&rows).is_empty(), "no live line after the run: {rows:#?}");
        assert_eq!(rows[4..], ["✓ T1 one — completed", "  ✗ T3 three · attempt 1/2: failed: the status file says failed (3.0s)"], "{rows:#?}");
    }

    fn check(task: &str, command: &str, exit: Option<i32>) -> [RunEvent; 2] {
        [
            now(EventKind::CheckStarted { task: task.into(), command: command.into(), index: 1, count: 1 }),
            now(EventKind::CheckEnded {
                task: task.into(),
                command: command.into(),
                passed: exit == Some(0),
                exit,
                signal: None,
                timed_out: false,
                duration: Duration::from_secs(2),
            }),
        ]
    }

    #[test]
    fn a_running_check_shows_in_its_task_s_line_and_only_a_failed_one_is_printed() {
        let (mut term, screen) = view(100);
        term.event(&started("T1", "one", 1));
        let [start, end] = check("T1", "cargo test", Some(0));
        term.event(&start);
        let rows = screen.rows();
        let live = live_rows(&rows);
        assert_eq!(live.len(), 1, "{rows:#?}");
        assert!(live[0].ends_with("T1 one · attempt 1/2 · checking `cargo test`"), "{rows:#?}");
        term.event(&end);
        assert_eq!(live_rows(&screen.rows()).len(), 1, "the task's line stays: {:#?}", screen.rows());
        assert!(!screen.rows().iter().any(|r| r.contains("✗") || r.contains("cargo test") && !r.contains("checking")), "a passed check prints nothing: {:#?}", screen.rows());

        // After the attempt's end, a check has a live line of its own, gone when it ends.
        term.event(&ended("T1", true));
        let [start, end] = check("T1", "make lint", Some(2));
        term.event(&start);
        let rows = screen.rows();
        assert!(live_rows(&rows).iter().any(|r| r.ends_with("T1 · checking `make lint`")), "{rows:#?}");
        term.event(&end);
        let rows = screen.rows();
        assert!(live_rows(&rows).is_empty(), "{rows:#?}");
        assert!(rows.iter().any(|r| r == "  ✗ T1: check `make lint` failed (exit 2)"), "{rows:#?}");
    }

    #[test]
    fn a_review_says_reviewing_live_then_its_verdict() {
        let (mut term, screen) = view(300);
        // During the attempt: its line says reviewing, and the reviewer's tools do not show.
        term.event(&started("T1", "one", 1));
        term.event(&now(EventKind::ReviewStarted { task: "T1".into(), model: None }));
        term.event(&tool("T1", "src/reviewer-reads.rs"));
        let rows = screen.rows();
        assert!(live_rows(&rows).iter().any(|r| r.ends_with("T1 one · attempt 1/2 · reviewing")), "{rows:#?}");
        term.event(&now(EventKind::ReviewEnded {
            task: "T1".into(),
            verdict: Some("FAIL".into()),
            findings: vec!["no tests\nat all".into(), "x".repeat(300)],
            problem: None,
        }));
        let rows = screen.rows();
        assert_eq!(rows[0], "  ✗ review T1: FAIL — 2 findings:", "{rows:#?}");
        assert_eq!(rows[1], "  - no tests at all", "{rows:#?}");
        assert!(rows[2].chars().count() < 220 && rows[2].ends_with('…'), "cut: {rows:#?}");
        assert!(live_rows(&rows).iter().any(|r| r.ends_with("T1 one · attempt 1/2")), "back to the attempt's line: {rows:#?}");
        term.event(&ended("T1", true));
        // After the attempt: a line of its own, gone with the review.
        term.event(&now(EventKind::ReviewStarted { task: "T2".into(), model: Some("opus".into()) }));
        assert!(live_rows(&screen.rows()).iter().any(|r| r.ends_with("T2 · reviewing")), "{:#?}", screen.rows());
        term.event(&now(EventKind::ReviewEnded { task: "T2".into(), verdict: None, findings: vec![], problem: Some("no valid verdict from 2 reviewer sessions: crashed".into()) }));
        let rows = screen.rows();
        assert!(live_rows(&rows).is_empty(), "{rows:#?}");
        assert_eq!(
            rows.last().unwrap(),
            "  ! review T2: no valid verdict (no valid verdict from 2 reviewer sessions: crashed); completed without review",
            "{rows:#?}"
        );
    }

    #[test]
    fn a_live_line_wider_than_the_terminal_is_cut_not_wrapped() {
        let (mut term, screen) = view(40);
        term.event(&started("T1", &"a long name ".repeat(10), 1));
        term.event(&tool("T1", &format!("src/{}.rs", "deep/".repeat(30))));
        term.event(&started("T2", "short", 1));
        term.event(&tool("T2", &"x".repeat(100)));
        term.event(&tool("T1", &"y".repeat(100)));
        let rows = screen.rows();
        assert_eq!(rows.len(), 2, "one row per task: {rows:#?}");
        assert!(rows[0].contains("T1 a long name") && rows[1].contains("T2 short · attempt 1/2 · Read"), "{rows:#?}");
        assert!(rows.iter().all(|r| r.chars().count() <= 40), "{rows:#?}");
    }

    #[test]
    fn a_wait_is_a_live_line_until_the_retry_starts() {
        let (mut term, screen) = view(120);
        term.event(&started("T1", "one", 1));
        term.event(&started("T2", "two", 1));
        term.event(&ended("T1", false));
        let until = jiff::Timestamp::now() + Duration::from_secs(30);
        term.event(&now(EventKind::Waiting { reason: WaitReason::Retry { task: "T1".into(), attempt: 1, max: 2 }, until }));
        let rows = screen.rows();
        assert_eq!(rows.len(), 3, "{rows:#?}");
        assert!(rows[0].starts_with("  ✗ T1 one · attempt 1/2"), "{rows:#?}");
        assert!(rows[1].ends_with("T2 two · attempt 1/2 · starting"), "{rows:#?}");
        assert!(rows[2].starts_with('…') && rows[2].contains("T1 failed (attempt 1/2); retrying; waiting until"), "{rows:#?}");

        // Another task's activity leaves the wait alone; the retry, when it is due, ends it and
        // takes the place of a task line, above the waits.
        term.event(&tool("T2", "src/two.rs"));
        assert_eq!(screen.rows().len(), 3);
        term.event(&at(until, EventKind::AttemptStarted { task: "T1".into(), name: "one".into(), attempt: 2, max_attempts: 2, session: 2, model: None, transcript: Default::default(), max_budget_usd: None, agent: None }));
        let rows = screen.rows();
        assert_eq!(rows.len(), 3, "{rows:#?}");
        assert!(rows[1].ends_with("T2 two · attempt 1/2 · Read src/two.rs"), "{rows:#?}");
        assert!(rows[2].ends_with("T1 one · attempt 2/2 · starting"), "{rows:#?}");
        assert!(!rows.iter().any(|r| r.contains("waiting")), "{rows:#?}");
    }

    #[test]
    fn marks_are_painted_only_when_the_view_has_colour() {
        for colour in [false, true] {
            let (mut term, screen) = view(100);
            term.colour = colour;
            term.event(&finished("T1", "one"));
            let rows = screen.rows();
            assert_eq!(rows[0].contains("\u{1b}[32m✓\u{1b}[0m T1 one"), colour, "{rows:?}");
            assert_eq!(rows[0].contains('\u{1b}'), colour, "{rows:?}");
        }
    }
}
