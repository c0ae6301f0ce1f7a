//! One attempt as a Ray job, followed by a task of its own: submit, read the job's log as it
//! grows (Ray's log stream, plain chunked HTTP, ~0.1 s behind the worker), tell the agent's
//! lines from the worker's frames and Ray's own lines, enforce the attempt's deadlines, stop the
//! job when asked, and at its end bring the result back into the working copy, delete the
//! job and the refs, and say how it ended.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::{Method, StatusCode};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::http::{self, HttpError};
use super::{data, JobInfo, Ray};
use crate::agent::Systemic;
use crate::exec::frame::{self, Frame};
use crate::exec::Event;
use crate::supervise::{Deadline, ExitInfo, Line, Stream};

/// How often the job's status is asked.
const POLL: Duration = Duration::from_millis(250);
/// How long the cluster may not answer before the run stops: it is gone.
const UNREACHABLE_FOR: Duration = Duration::from_secs(30);
/// A stop is asked again this often until the job ends (Ray defers a stop of a job that has
/// not started).
const STOP_AGAIN: Duration = Duration::from_secs(2);
/// At the end: the stream is read until it has been quiet this long (at most `DRAIN_MAX`).
const DRAIN_QUIET: Duration = Duration::from_millis(300);
const DRAIN_MAX: Duration = Duration::from_secs(3);
/// A job that waits this long for resources is told about.
const PENDING_WARN: Duration = Duration::from_secs(60);
/// A stopped job still waiting for resources after this long is given up (see `follow`).
const GIVE_UP_PENDING: Duration = Duration::from_secs(5);

/// What [`Job::follow`] needs.
pub(super) struct Follow {
    pub ray: Arc<Ray>,
    pub submission_id: String,
    pub refs: data::Refs,
    pub snapshot: String,
    pub body: serde_json::Value,
    pub cwd: PathBuf,
    pub status_file: PathBuf,
    pub total: Duration,
    pub idle: Duration,
    pub max_line: usize,
    /// The task, and what the job asks of the cluster, for messages.
    pub task: crate::plan::TaskId,
    pub asks: String,
}

/// A running remote attempt, as the attempt sees it.
pub struct Job {
    submission_id: String,
    events: mpsc::UnboundedReceiver<Event>,
    commands: mpsc::UnboundedSender<Command>,
    exit: Arc<Mutex<Option<ExitInfo>>>,
}

enum Command {
    Stop,
    Postpone(Instant),
}

impl Job {
    pub(super) fn follow(f: Follow) -> Job {
        let (tx, events) = mpsc::unbounded_channel();
        let (commands, rx) = mpsc::unbounded_channel();
        let exit = Arc::new(Mutex::new(None));
        let job = Job { submission_id: f.submission_id.clone(), events, commands, exit: Arc::clone(&exit) };
        let follower = Follower {
            splitter: Splitter::new(f.max_line),
            f,
            tx,
            rx,
            exit,
            consumed: 0,
            hello: false,
            started: None,
            idle_at: None,
            total_at: None,
            result: None,
            error: None,
            stop_asked: false,
            stop_sent: None,
            cut_by: None,
            ended_at: None,
            running_since: None,
            setup_hung: false,
            pending_since: None,
            pending_told: false,
            first_stop: None,
        };
        let ray = Arc::clone(&follower.f.ray);
        let handle = tokio::spawn(follower.run());
        ray.following(handle);
        job
    }

    pub fn submission_id(&self) -> &str {
        &self.submission_id
    }

    pub async fn next(&mut self) -> Option<Event> {
        self.events.recv().await
    }

    /// The agent's end, once the worker has said it.
    pub fn command_exit(&mut self) -> Option<ExitInfo> {
        *self.exit.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn postpone_idle(&mut self, until: Instant) {
        let _ = self.commands.send(Command::Postpone(until));
    }

    /// Stops the job: Ray ends the worker, which ends its agent and sends back what it left.
    pub fn stop(&mut self) {
        let _ = self.commands.send(Command::Stop);
    }
}

struct Follower {
    f: Follow,
    tx: mpsc::UnboundedSender<Event>,
    rx: mpsc::UnboundedReceiver<Command>,
    exit: Arc<Mutex<Option<ExitInfo>>>,
    splitter: Splitter,
    /// Bytes of the job's log read so far.
    consumed: u64,
    /// The worker's hello was seen: lines before it are Ray's.
    hello: bool,
    /// When the agent started (the deadlines run from here).
    started: Option<Instant>,
    idle_at: Option<Instant>,
    total_at: Option<Instant>,
    result: Option<Frame>,
    error: Option<(String, String)>,
    stop_asked: bool,
    stop_sent: Option<Instant>,
    cut_by: Option<Deadline>,
    /// When the job was seen ended.
    ended_at: Option<Instant>,
    /// When the job was first seen running (its worker setting up).
    running_since: Option<Instant>,
    /// The worker did not start the agent within the idle timeout; the job was stopped.
    setup_hung: bool,
    /// When the job was first seen waiting for resources, and whether that was told.
    pending_since: Option<Instant>,
    pending_told: bool,
    /// When a stop was first asked.
    first_stop: Option<Instant>,
}

impl Follower {
    /// The attempt ends as soon as its result is in the working copy; the job, its refs and
    /// its record go after that ([`Ray::finish`] waits for them at the end of the run).
    async fn run(mut self) {
        let end = self.follow().await;
        let _ = self.tx.send(end);
        self.cleanup().await;
    }

    fn path(&self, tail: &str) -> String {
        format!("/api/jobs/{}{tail}", self.f.submission_id)
    }

    async fn follow(&mut self) -> Event {
        let ray = Arc::clone(&self.f.ray);
        let body = serde_json::to_vec(&self.f.body).unwrap_or_default();
        match ray.endpoint.call(Method::POST, "/api/jobs/", Some(body)).await {
            Ok((s, _)) if s.is_success() => {}
            Ok((s, body)) => return Event::Lost(format!("the Ray cluster did not take the job ({s}): {}", http::last_line(&body))),
            Err(e @ HttpError::Unreachable { .. }) => return unreachable(&ray, &e),
            Err(e) => return Event::Lost(format!("submitting the job failed: {e}")),
        }
        let mut stream: Option<hyper::body::Incoming> = None;
        let mut silent_since: Option<Instant> = None;
        let mut commands_open = true;
        let mut poll = tokio::time::interval(POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let info = loop {
            tokio::select! {
                chunk = next_chunk(&mut stream), if stream.is_some() => match chunk {
                    Some(bytes) => self.take(&bytes),
                    None => stream = None,
                },
                cmd = self.rx.recv(), if commands_open => match cmd {
                    Some(Command::Stop) => {
                        self.stop_asked = true;
                        self.stop_now().await;
                    }
                    Some(Command::Postpone(until)) => {
                        if let Some(i) = &mut self.idle_at {
                            *i = (*i).max(until);
                        }
                    }
                    // The attempt is gone (its future was dropped): the job must not outlive it.
                    None => {
                        commands_open = false;
                        self.stop_asked = true;
                        self.stop_now().await;
                    }
                },
                _ = poll.tick() => {
                    let info = match ray.info(&self.f.submission_id).await {
                        Ok(Some(info)) => {
                            silent_since = None;
                            info
                        }
                        Ok(None) => return Event::Lost("the Ray cluster no longer knows the job (its head restarted?)".into()),
                        Err(e) => {
                            let since = *silent_since.get_or_insert_with(Instant::now);
                            if since.elapsed() > UNREACHABLE_FOR {
                                return unreachable(&ray, &e);
                            }
                            continue;
                        }
                    };
                    if info.terminal() {
                        self.ended_at = Some(Instant::now());
                        break info;
                    }
                    if info.status == "RUNNING" && self.running_since.is_none() {
                        self.running_since = Some(Instant::now());
                    }
                    // A worker that never starts the agent (a fetch that hangs) is a lost job.
                    if self.started.is_none() && !self.stop_asked && self.running_since.is_some_and(|t| t.elapsed() > self.f.idle) {
                        self.stop_asked = true;
                        self.stop_now().await;
                        self.setup_hung = true;
                    }
                    if stream.is_none() && info.status == "RUNNING" {
                        if let Some(node) = &info.driver_node_id {
                            stream = self.open_stream(node).await;
                        }
                    }
                    self.deadlines().await;
                    if self.stop_asked && self.stop_sent.is_none_or(|t| t.elapsed() >= STOP_AGAIN) {
                        self.stop_now().await;
                    }
                    if info.status == "PENDING" {
                        let since = *self.pending_since.get_or_insert_with(Instant::now);
                        if since.elapsed() >= PENDING_WARN && !self.pending_told {
                            self.pending_told = true;
                            ray.reporter.warn(format!(
                                "{}: the Ray job {} has waited {} s for the resources it asks for ({}); Ray gives up on it after RAY_JOB_START_TIMEOUT_SECONDS (900 s by default), and the attempt is then lost",
                                self.f.task, self.f.submission_id, PENDING_WARN.as_secs(), self.f.asks
                            ));
                        }
                        // Ray cannot cancel a job that waits for resources (a stop is deferred until
                        // it starts): its input goes from the remote, so that once it starts its
                        // worker finds nothing to run, and the attempt ends here.
                        if self.stop_asked && self.first_stop.is_some_and(|t| t.elapsed() >= GIVE_UP_PENDING) {
                            let (root, remote, refs) = (ray.root.clone(), ray.remote.clone(), self.f.refs.clone());
                            let _ = tokio::task::spawn_blocking(move || data::delete_remote(&root, &remote, &refs)).await;
                            ray.reporter.warn(format!(
                                "{}: the Ray job {} was still waiting for resources when it was stopped; its input is deleted, so it runs nothing when Ray starts it (the next run deletes the job)",
                                self.f.task, self.f.submission_id
                            ));
                            return Event::Exited(ExitInfo { code: None, signal: None });
                        }
                    }
                }
            }
        };
        // The end: what the stream still holds, then the rest of the log from the whole of it.
        let drain_until = Instant::now() + DRAIN_MAX;
        while stream.is_some() && Instant::now() < drain_until {
            match tokio::time::timeout(DRAIN_QUIET, next_chunk(&mut stream)).await {
                Ok(Some(bytes)) => self.take(&bytes),
                _ => break,
            }
        }
        drop(stream);
        if let Ok((s, body)) = ray.endpoint.call(Method::GET, &self.path("/logs"), None).await {
            if s.is_success() {
                let logs: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let all = logs.get("logs").and_then(|l| l.as_str()).unwrap_or("").as_bytes();
                if let Some(rest) = all.get(self.consumed as usize..) {
                    let rest = rest.to_vec();
                    self.take(&rest);
                }
            }
        }
        for line in self.splitter.finish() {
            self.line(line);
        }
        self.ended(info).await
    }

    /// The job is over: what it means.
    async fn ended(&mut self, info: JobInfo) -> Event {
        if let Some((message, help)) = self.error.take() {
            return Event::Refused(Systemic { message, help });
        }
        if let Some(Frame::Result { exit_code, signal, commit, status_file }) = self.result.clone() {
            if let Some(commit) = commit {
                let (root, cwd, remote, refs, snapshot) = (self.f.ray.root.clone(), self.f.cwd.clone(), self.f.ray.remote.clone(), self.f.refs.clone(), self.f.snapshot.clone());
                let back = tokio::task::spawn_blocking(move || data::bring_back(&root, &cwd, &remote, &refs, &snapshot, &commit)).await.unwrap_or_else(|e| Err(e.to_string()));
                if let Err(e) = back {
                    return Event::Lost(format!("the agent's work could not be brought back from the worker: {e}"));
                }
            }
            if let Some(text) = status_file {
                let path = self.f.cwd.join(&self.f.status_file);
                if let Some(dir) = path.parent() {
                    let _ = std::fs::create_dir_all(dir);
                }
                if let Err(e) = crate::plan::write_atomic(&path, text.as_bytes()) {
                    self.f.ray.reporter.warn(format!("cannot write the status file the worker sent back to {}: {e}", path.display()));
                }
            }
            return Event::Exited(ExitInfo { code: exit_code, signal });
        }
        if self.setup_hung {
            return Event::Lost(format!("the worker did not start the agent within {} s of the job's start (fetching the repository?)", self.f.idle.as_secs()));
        }
        if self.stop_asked || self.cut_by.is_some() {
            // Ended before it could send anything back, as asked.
            return Event::Exited(ExitInfo { code: None, signal: None });
        }
        if !self.hello && info.status == "FAILED" && matches!(info.driver_exit_code, Some(126 | 127)) {
            // The entrypoint's shell could not run baton: the same on every try.
            // The shell's own line (`…: baton: not found`), not Ray's echo of the entrypoint.
            let said = info
                .message
                .as_deref()
                .and_then(|m| m.lines().rev().find(|l| !l.trim().is_empty() && !l.starts_with("Running entrypoint for job ")))
                .unwrap_or("")
                .trim()
                .to_string();
            return Event::Refused(Systemic {
                message: format!("the Ray workers cannot run baton as `{}` ([executor] baton): {}", self.f.ray.baton, crate::report::safe::cut(&said, 200)),
                help: "set [executor] baton to the path of baton on the workers, or start `ray start` from a shell where baton is on the PATH (a job runs with the environment of `ray start`)".into(),
            });
        }
        let how = match (info.status.as_str(), info.driver_exit_code) {
            ("FAILED", Some(code)) if code < 0 => format!("its worker was killed by signal {}", -code),
            _ => info.message.as_deref().map(crate::report::safe::one_line).unwrap_or_else(|| info.status.to_lowercase()),
        };
        let kind = info.error_type.as_deref().map(|t| format!(" ({t})")).unwrap_or_default();
        Event::Lost(format!("the Ray job {} ended without a result{kind}: {}", self.f.submission_id, crate::report::safe::cut(&how, 300)))
    }

    /// The deadlines of the attempt, from the agent's start.
    async fn deadlines(&mut self) {
        if self.cut_by.is_some() || self.stop_asked {
            return;
        }
        let now = Instant::now();
        let passed = if self.total_at.is_some_and(|t| now >= t) {
            Some(Deadline::Total)
        } else if self.idle_at.is_some_and(|t| now >= t) {
            Some(Deadline::Idle)
        } else {
            None
        };
        if let Some(d) = passed {
            self.cut_by = Some(d);
            let _ = self.tx.send(Event::Deadline(d));
            self.stop_asked = true;
            self.stop_now().await;
        }
    }

    async fn stop_now(&mut self) {
        self.stop_sent = Some(Instant::now());
        self.first_stop.get_or_insert_with(Instant::now);
        self.f.ray.ask_stop(&self.f.submission_id).await;
    }

    async fn open_stream(&mut self, node: &str) -> Option<hyper::body::Incoming> {
        let path = format!(
            "/api/v0/logs/stream?node_id={}&filename=job-driver-{}.log&lines=-1&interval=0.1",
            url_escape(node),
            url_escape(&self.f.submission_id)
        );
        match self.f.ray.endpoint.stream(&path).await {
            Ok((s, mut body)) if s == StatusCode::OK => {
                // A stream opened again starts at the file's start: skip what was read.
                let mut skip = self.consumed;
                while skip > 0 {
                    let chunk = tokio::time::timeout(Duration::from_secs(5), http::next_chunk(&mut body)).await.ok().flatten()?;
                    let n = chunk.len() as u64;
                    if n <= skip {
                        skip -= n;
                    } else {
                        let rest = chunk.slice(skip as usize..);
                        skip = 0;
                        self.take(&rest);
                    }
                }
                Some(body)
            }
            // Not there yet (the file appears when the driver starts): the next poll tries again.
            _ => None,
        }
    }

    fn take(&mut self, bytes: &[u8]) {
        self.consumed += bytes.len() as u64;
        for line in self.splitter.push(bytes) {
            self.line(line);
        }
    }

    /// One line of the job's log.
    fn line(&mut self, (text, truncated): (String, bool)) {
        let framed = frame::decode(&text);
        if !self.hello {
            if matches!(framed, Some(Frame::Hello { .. })) {
                self.hello = true;
            }
            return;
        }
        if text.starts_with("Running entrypoint for job ") && text.contains(&self.f.submission_id) {
            return;
        }
        match framed {
            Some(Frame::Started { .. }) => {
                let now = Instant::now();
                self.started = Some(now);
                self.total_at = Some(now + self.f.total);
                self.idle_at = Some(now + self.f.idle);
            }
            Some(Frame::Stderr { line }) => {
                let _ = self.tx.send(Event::Line(Line { stream: Stream::Stderr, text: line, truncated: false }));
            }
            Some(Frame::Stdout { line }) => self.agent_line(line, truncated),
            Some(f @ Frame::Result { .. }) => {
                if let Frame::Result { exit_code, signal, .. } = &f {
                    *self.exit.lock().unwrap_or_else(|e| e.into_inner()) = Some(ExitInfo { code: *exit_code, signal: *signal });
                }
                self.result = Some(f);
            }
            Some(Frame::Error { message, help }) => self.error = Some((message, help)),
            Some(Frame::Hello { .. }) => {}
            None => self.agent_line(text, truncated),
        }
    }

    /// A line of the agent's stdout.
    fn agent_line(&mut self, text: String, truncated: bool) {
        if self.started.is_some() {
            self.idle_at = Some(Instant::now() + self.f.idle);
        }
        let _ = self.tx.send(Event::Line(Line { stream: Stream::Stdout, text, truncated }));
    }

    /// The job is over: it goes from the cluster, its refs from the remote, its record from
    /// the logs.
    async fn cleanup(&mut self) {
        let ray = Arc::clone(&self.f.ray);
        // A job that is not over yet (lost contact, an error of baton's) is stopped first.
        // Its record stays for the next start to finish with it.
        match ray.info(&self.f.submission_id).await {
            Ok(Some(info)) if !info.terminal() => {
                ray.ask_stop(&self.f.submission_id).await;
                return;
            }
            Err(_) => return,
            _ => {}
        }
        // Ray writes the status of a job deleted the moment it ended once more as its
        // supervisor exits: a moment later the delete holds.
        if let Some(t) = self.ended_at {
            tokio::time::sleep_until(t + Duration::from_secs(1)).await;
        }
        ray.delete_job(&self.f.submission_id).await;
        let (root, remote, refs) = (ray.root.clone(), ray.remote.clone(), self.f.refs.clone());
        let deleted = tokio::task::spawn_blocking(move || data::delete_remote(&root, &remote, &refs)).await.unwrap_or_else(|e| Err(e.to_string()));
        match deleted {
            Ok(()) => ray.remove_record(&self.f.submission_id),
            Err(e) => ray.reporter.warn(format!("{e} (the next run deletes them)")),
        }
    }
}

async fn next_chunk(stream: &mut Option<hyper::body::Incoming>) -> Option<hyper::body::Bytes> {
    match stream {
        Some(body) => http::next_chunk(body).await,
        None => std::future::pending().await,
    }
}

fn unreachable(ray: &Ray, e: &HttpError) -> Event {
    Event::Refused(Systemic {
        message: format!("the Ray cluster at {} stopped answering: {e}", ray.address()),
        help: "start the cluster again (or fix [executor] address), then run baton again: the tasks it was running go back to pending".into(),
    })
}

fn url_escape(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

/// Bytes into lines, each at most `max` bytes kept (the rest of a longer line is dropped and
/// the line marked truncated).
struct Splitter {
    max: usize,
    partial: Vec<u8>,
    truncated: bool,
}

impl Splitter {
    fn new(max: usize) -> Splitter {
        Splitter { max, partial: Vec::new(), truncated: false }
    }

    fn push(&mut self, bytes: &[u8]) -> Vec<(String, bool)> {
        let mut lines = Vec::new();
        for piece in bytes.split_inclusive(|b| *b == b'\n') {
            let (body, ends) = match piece.strip_suffix(b"\n") {
                Some(b) => (b, true),
                None => (piece, false),
            };
            let room = self.max.saturating_sub(self.partial.len());
            if body.len() > room {
                self.truncated = true;
            }
            self.partial.extend_from_slice(&body[..body.len().min(room)]);
            if ends {
                lines.push(self.take());
            }
        }
        lines
    }

    fn take(&mut self) -> (String, bool) {
        let mut bytes = std::mem::take(&mut self.partial);
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        let t = std::mem::take(&mut self.truncated);
        (String::from_utf8_lossy(&bytes).into_owned(), t)
    }

    fn finish(&mut self) -> Vec<(String, bool)> {
        if self.partial.is_empty() && !self.truncated {
            return Vec::new();
        }
        vec![self.take()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_across_chunks_are_joined_and_long_ones_cut() {
        let mut s = Splitter::new(8);
        assert_eq!(s.push(b"ab"), vec![]);
        assert_eq!(s.push(b"c\nde"), vec![("abc".to_string(), false)]);
        assert_eq!(s.push(b"f\r\n0123456789abc\nz"), vec![("def".to_string(), false), ("01234567".to_string(), true)]);
        assert_eq!(s.finish(), vec![("z".to_string(), false)]);
        assert_eq!(s.finish(), vec![]);
    }

    #[test]
    fn query_values_are_escaped() {
        assert_eq!(url_escape("ab-1_2.3"), "ab-1_2.3");
        assert_eq!(url_escape("a b&c"), "a%20b%26c");
    }
}
