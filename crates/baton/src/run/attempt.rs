//! One attempt of one task: start a fresh agent session, follow its stream, enforce the total
//! and idle timeouts, obey an immediate stop, keep the prompt and the raw transcript, and
//! return what happened.
//!
//! The prompt goes to the agent on stdin, from a file beside the transcript
//! (`attempt-<n>.prompt`), the record of what was sent: not on the command line, where it
//! would meet the kernel's limit on one argument (128 KiB) and show in `ps` — unless the agent
//! must have it there (a command agent's `{prompt}`), which refuses a prompt too long for it
//! ([`Agent::refusal`]) before anything starts. Every session has its model in `BATON_MODEL`.
//!
//! It does not judge the result (that is `verdict`) and does not touch the plan.

use std::ffi::OsString;
use std::io::Write;
use std::sync::Arc;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::exec::{AttemptPlace, Event, Executor};
use crate::supervise::{CommandSpec, Deadline, ExitInfo, Input, Policy, SpawnError, Stream};
use super::stop::Stop;
use super::verdict::Ended;
use crate::agent::{Agent, Invocation, StreamEvent, StreamSummary, Systemic};
use crate::plan::TaskId;
use crate::report::event::{EventKind, Note, Reporter};

/// The longest retry pause announced by the CLI (`system/api_retry`) that baton adds to the
/// idle timeout: a bogus figure must not switch hang detection off.
const MAX_ANNOUNCED_PAUSE: Duration = Duration::from_secs(15 * 60);
/// The environment variable that holds the session's model (empty when none).
pub const MODEL_ENV: &str = "BATON_MODEL";
/// How much of stderr is kept in memory for messages (the log keeps all of it).
const STDERR_TAIL_BYTES: usize = 16 * 1024;

pub struct AttemptSpec {
    pub task: TaskId,
    pub agent: Arc<dyn Agent>,
    pub prompt: String,
    /// The model and the named agent, as the agent's command line passes them.
    pub invocation: Invocation,
    pub cwd: PathBuf,
    pub total_timeout: Duration,
    pub idle_timeout: Duration,
    /// Raw stdout lines go here, one per line, as the agent printed them; the prompt is
    /// written beside it (see [`prompt_path`]).
    pub transcript: PathBuf,
    /// The baton binary, which runs the guard that keeps the agent's group from outliving baton.
    pub guard_exe: PathBuf,
    /// Environment added for the agent (coordination ids in parallel runs).
    pub env: Vec<(OsString, OsString)>,
    /// A heartbeat file the agent touches: while it is fresh, silence on the stream is not a hang.
    pub heartbeat: Option<PathBuf>,
    /// Where the agent runs: here, or on a cluster.
    pub executor: Executor,
    /// What a remote executor needs to name and place the attempt.
    pub place: AttemptPlace,
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
    let mut transcript = Transcript::create(&spec.transcript);
    let prompt_file = prompt_path(&spec.transcript);
    write_prompt(&prompt_file, &spec.prompt).map_err(|source| SpawnError::Input { path: prompt_file.clone(), source })?;
    if let Some(refused) = spec.agent.refusal(&spec.invocation, &spec.prompt) {
        // Nothing was started: the verdict stops the run with the agent's own explanation.
        return Ok(AttemptRun {
            ended: Ended::Exited,
            exit: None,
            summary: StreamSummary::new(),
            stderr_tail: String::new(),
            systemic: Some(refused),
            duration: started.elapsed(),
        });
    }
    // The model, for a program that reads it from the environment (a command agent).
    let model = (OsString::from(MODEL_ENV), OsString::from(spec.invocation.model.as_deref().unwrap_or("")));
    let cmd = CommandSpec {
        program: resolved.program.clone(),
        args: spec.agent.args(&spec.invocation, &spec.prompt),
        cwd: spec.cwd.clone(),
        env: std::iter::once(model).chain(spec.agent.env()).chain(spec.env.iter().cloned()).collect(),
        stdin: if spec.agent.prompt_on_stdin() { Input::File(prompt_file) } else { Input::Null },
    };
    let policy = Policy::agent(spec.guard_exe.clone(), spec.total_timeout, spec.idle_timeout, spec.heartbeat.clone());
    let mut proc = spec.executor.start(&cmd, &policy, &spec.prompt, &spec.place).await?;
    reporter.note(Note::AgentStarted {
        task: spec.task.clone(),
        agent: spec.agent.name().to_string(),
        named_agent: spec.invocation.agent.clone(),
        pid: proc.pid().unwrap_or(0),
        group: proc.pid().unwrap_or(0),
        cwd: spec.cwd.clone(),
        job: proc.job(),
    });

    let mut summary = StreamSummary::new();
    let mut stderr_tail = String::new();
    let mut stdout_tail = String::new();
    let mut ended = Ended::Exited;
    let mut refused = None;
    let mut ending = false;
    // The supervisor enforces the total and idle deadlines (a fresh heartbeat file counts as
    // activity), also while the output drains; this loop reads the stream and obeys a stop.
    let exit = loop {
        tokio::select! {
            out = proc.next() => match out {
                Some(Event::Line(line)) => {
                    match line.stream {
                        Stream::Stdout => {
                            transcript.write(&line.text);
                            for ev in spec.agent.dialect().parse_line(&line.text) {
                                // Only what the CLI printed outside its JSON stream can be its
                                // own complaint; the stream holds the agent's words, which may
                                // quote anything.
                                if let StreamEvent::NotJson { line } = &ev {
                                    keep_tail(&mut stdout_tail, line);
                                }
                                if let StreamEvent::ApiRetry(retry) = &ev {
                                    // The CLI announced a silent pause of its own before its next
                                    // request: quiet until then is waiting, not hanging.
                                    let pause = Duration::from_millis(retry.retry_delay_ms).min(MAX_ANNOUNCED_PAUSE);
                                    proc.postpone_idle(Instant::now() + pause + spec.idle_timeout);
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
                Some(Event::Deadline(deadline)) => {
                    ending = true;
                    ended = match deadline {
                        Deadline::Total => Ended::TotalTimeout { seconds: spec.total_timeout.as_secs() },
                        Deadline::Idle => Ended::IdleTimeout { seconds: spec.idle_timeout.as_secs() },
                    };
                    reporter.note(match deadline {
                        Deadline::Total => Note::Deadline { task: spec.task.clone(), total: Some(spec.total_timeout.as_secs()), idle: None },
                        Deadline::Idle => Note::Deadline { task: spec.task.clone(), total: None, idle: Some(spec.idle_timeout.as_secs()) },
                    });
                }
                Some(Event::Exited(info)) => break Some(info),
                Some(Event::Lost(message)) => {
                    ended = Ended::Lost { message };
                    break None;
                }
                Some(Event::Refused(systemic)) => {
                    refused = Some(systemic);
                    break None;
                }
                None => break None,
            },
            changed = stop.changed(), if !ending => {
                if changed.is_err() || *stop.borrow() == Stop::Now {
                    ending = true;
                    if proc.command_exit().is_some() {
                        // The agent finished on its own: judge it on that, and end whatever
                        // it left running without waiting for the rest of its output.
                        proc.kill_now();
                        continue;
                    }
                    reporter.note(Note::StoppingAgent { task: spec.task.clone() });
                    ended = Ended::Interrupted;
                    proc.begin_terminate(policy.grace);
                }
            },
        }
    };
    transcript.flush();
    if proc.leaked() {
        reporter.warn(format!(
            "{}: a process the agent started still held its output open {} s after the agent ended; baton stopped reading it",
            spec.task,
            policy.leak_timeout.as_secs()
        ));
    }
    let dialect = spec.agent.dialect();
    let systemic = refused.or_else(|| dialect.systemic_failure(&stderr_tail, &stdout_tail)).or_else(|| dialect.systemic_in_session(&summary));
    Ok(AttemptRun {
        ended,
        exit,
        summary,
        stderr_tail,
        systemic,
        duration: started.elapsed(),
    })
}

/// Where the prompt of the attempt whose transcript is `transcript` is kept.
pub fn prompt_path(transcript: &Path) -> PathBuf {
    transcript.with_extension("prompt")
}

/// Writes the prompt to a new file at `path`. Whatever was there is removed first and the file
/// is created afresh, so that nothing put in its place (a FIFO, a symlink) is written through.
fn write_prompt(path: &Path, prompt: &str) -> std::io::Result<()> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d)?;
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(path)?;
    file.write_all(prompt.as_bytes())?;
    file.flush()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prompt_is_kept_beside_the_transcript() {
        assert_eq!(prompt_path(Path::new("/l/p/1.1/attempt-3.jsonl")), Path::new("/l/p/1.1/attempt-3.prompt"));
    }

    #[test]
    fn the_prompt_file_is_made_afresh_whatever_was_in_its_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t/attempt-1.prompt");
        write_prompt(&path, "first").unwrap();
        write_prompt(&path, "second").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "second");

        // A symlink in its place is replaced, not written through.
        let elsewhere = dir.path().join("elsewhere");
        std::fs::write(&elsewhere, "keep").unwrap();
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &path).unwrap();
        write_prompt(&path, "third").unwrap();
        assert_eq!(std::fs::read_to_string(&elsewhere).unwrap(), "keep");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "third");
    }
}
