//! One attempt of one task: start a fresh agent session, follow its stream, enforce the total
//! and idle timeouts, obey an immediate stop, keep the raw transcript, and return what happened.
//!
//! It does not judge the result (that is `verdict`) and does not touch the plan.

use std::ffi::OsString;
use std::io::Write;
use std::sync::Arc;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::process::{AgentCommand, AgentProcess, ExitInfo, Output, SpawnError, Stream};
use super::stop::Stop;
use super::verdict::Ended;
use crate::agent::stream::{self, StreamEvent, StreamSummary};
use crate::agent::{Agent, Systemic};
use crate::plan::TaskId;
use crate::report::event::{EventKind, Reporter};

/// How long an ended agent gets between SIGTERM and SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(5);
/// How much of stderr is kept in memory for messages (the log keeps all of it).
const STDERR_TAIL_BYTES: usize = 16 * 1024;

pub struct AttemptSpec {
    pub task: TaskId,
    pub agent: Arc<dyn Agent>,
    pub prompt: String,
    pub model: Option<String>,
    pub cwd: PathBuf,
    pub total_timeout: Duration,
    pub idle_timeout: Duration,
    /// Raw stdout lines go here, one per line, as the agent printed them.
    pub transcript: PathBuf,
    /// The baton binary, which runs the guard that keeps the agent's group from outliving baton.
    pub guard_exe: PathBuf,
    /// Environment added for the agent (coordination ids in parallel runs).
    pub env: Vec<(OsString, OsString)>,
    /// A heartbeat file the agent touches: while it is fresh, silence on the stream is not a hang.
    pub heartbeat: Option<PathBuf>,
}

pub struct AttemptRun {
    pub ended: Ended,
    pub exit: Option<ExitInfo>,
    pub summary: StreamSummary,
    pub stderr_tail: String,
    pub systemic: Option<Systemic>,
    pub duration: Duration,
}

pub async fn run(spec: AttemptSpec, reporter: Reporter, mut stop: watch::Receiver<Stop>) -> Result<AttemptRun, SpawnError> {
    let started = Instant::now();
    let resolved = spec.agent.binary();
    let cmd = AgentCommand {
        program: resolved.program.clone(),
        args: spec.agent.args(&spec.prompt, spec.model.as_deref()),
        cwd: spec.cwd.clone(),
        env: spec.env.clone(),
    };
    let mut transcript = Transcript::create(&spec.transcript);
    let mut proc = AgentProcess::spawn(&cmd, &spec.guard_exe).await?;
    reporter.decision(
        "EXEC",
        format!("{} started (pid {}, group {}) in {}", spec.agent.name(), proc.agent_pid(), proc.pgid(), spec.cwd.display()),
    );

    let deadline = started + spec.total_timeout;
    let mut idle_deadline = started + spec.idle_timeout;
    let mut summary = StreamSummary::new();
    let mut stderr_tail = String::new();
    let mut stdout_tail = String::new();
    let mut ended = Ended::Exited;
    let mut ending = false;
    let exit = loop {
        let wake = if ending { None } else { Some(deadline.min(idle_deadline)) };
        tokio::select! {
            out = proc.next() => match out {
                Some(Output::Line(line)) => {
                    match line.stream {
                        Stream::Stdout => {
                            transcript.write(&line.text);
                            idle_deadline = Instant::now() + spec.idle_timeout;
                            for ev in stream::parse_line(&line.text) {
                                // Only what the CLI printed outside its JSON stream can be its
                                // own complaint; the stream holds the agent's words, which may
                                // quote anything.
                                if let StreamEvent::NotJson { line } = &ev {
                                    keep_tail(&mut stdout_tail, line);
                                }
                                summary.observe(&ev);
                                reporter.emit(EventKind::Agent { task: spec.task.clone(), agent: spec.agent.name(), event: ev });
                            }
                        }
                        Stream::Stderr => {
                            transcript.write_stderr(&line.text);
                            keep_tail(&mut stderr_tail, &line.text);
                        }
                    }
                }
                Some(Output::Exited(info)) => break Some(info),
                None => break None,
            },
            _ = sleep_until(wake) => {
                let now = Instant::now();
                if now < deadline {
                    if let Some(fresh) = heartbeat_age(spec.heartbeat.as_deref()).filter(|age| *age < spec.idle_timeout) {
                        // Quiet stream, live heartbeat: the agent is working, not hung.
                        idle_deadline = now + (spec.idle_timeout - fresh);
                        continue;
                    }
                }
                ended = if now >= deadline {
                    Ended::TotalTimeout { seconds: spec.total_timeout.as_secs() }
                } else {
                    Ended::IdleTimeout { seconds: spec.idle_timeout.as_secs() }
                };
                reporter.decision("EXEC", format!("{}: {}; ending the agent's process group", spec.task, match ended {
                    Ended::TotalTimeout { seconds } => format!("total timeout of {seconds} s reached"),
                    _ => format!("no output for {} s (idle timeout)", spec.idle_timeout.as_secs()),
                }));
                proc.begin_terminate(TERM_GRACE);
                ending = true;
            },
            changed = stop.changed(), if !ending => {
                if changed.is_err() || *stop.borrow() == Stop::Now {
                    reporter.decision("STOP", format!("{}: ending the agent now", spec.task));
                    ended = Ended::Interrupted;
                    proc.begin_terminate(TERM_GRACE);
                    ending = true;
                }
            },
        }
    };
    transcript.flush();
    let systemic = spec.agent.systemic_failure(&stderr_tail, &stdout_tail).or_else(|| spec.agent.systemic_in_session(&summary));
    Ok(AttemptRun {
        ended,
        exit,
        summary,
        stderr_tail,
        systemic,
        duration: started.elapsed(),
    })
}

/// How long ago the heartbeat file was touched.
fn heartbeat_age(path: Option<&Path>) -> Option<Duration> {
    let modified = std::fs::metadata(path?).ok()?.modified().ok()?;
    std::time::SystemTime::now().duration_since(modified).ok()
}

async fn sleep_until(when: Option<Instant>) {
    match when {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

fn keep_tail(tail: &mut String, line: &str) {
    tail.push_str(line);
    tail.push('\n');
    if tail.len() > STDERR_TAIL_BYTES {
        let mut cut = tail.len() - STDERR_TAIL_BYTES;
        while !tail.is_char_boundary(cut) {
            cut += 1;
        }
        tail.drain(..cut);
    }
}

/// The attempt's raw output on disk. Written line by line, so a crash keeps all but the line
/// being written; a file that cannot be written costs the log, never the attempt.
struct Transcript {
    out: Option<std::fs::File>,
    err: Option<std::fs::File>,
}

impl Transcript {
    fn create(path: &Path) -> Transcript {
        let open = |p: &Path| {
            if let Some(d) = p.parent() {
                let _ = std::fs::create_dir_all(d);
            }
            std::fs::File::create(p).ok()
        };
        Transcript {
            out: open(path),
            err: open(&path.with_extension("stderr")),
        }
    }

    fn write(&mut self, line: &str) {
        if let Some(f) = &mut self.out {
            let _ = writeln!(f, "{line}");
        }
    }

    fn write_stderr(&mut self, line: &str) {
        if let Some(f) = &mut self.err {
            let _ = writeln!(f, "{line}");
        }
    }

    fn flush(&mut self) {
        for f in [&mut self.out, &mut self.err].into_iter().flatten() {
            let _ = f.sync_data();
        }
    }
}
