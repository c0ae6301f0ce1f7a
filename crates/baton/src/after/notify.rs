//! How a run ended, told to whoever is not watching: the [`Notice`] and its delivery to the
//! `[notify] webhook` (an HTTP POST of JSON that Slack understands through its `text` field
//! and that carries the structured fields too) and to the `[notify] command` (the same JSON
//! on its stdin).
//!
//! Owns the notice's JSON shape and one-line summary, the delivery, and keeping the webhook
//! URL's secrets (its path, query and user info) out of every message. Delivery is bounded:
//! each target gets at most its timeout (10 s), both run at once, and every problem comes back
//! as a line to report once.
//!
//! It must not decide which ending a run had, print anything itself, retry, or let a broken
//! notifier change how the run ends: [`send`] never panics and never fails.

use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

use serde::{Serialize, Serializer};

use crate::supervise::{self, CommandSpec, Ended, ExitInfo, Input, Policy, Stream};

/// How long the webhook and the command each get.
pub const NOTIFY_TIMEOUT: Duration = Duration::from_secs(10);

/// How much of a failed notify command's stderr goes into the problem.
const STDERR_BYTES: usize = 400;

/// How many task ids the summary line names before "and N more".
const IDS_IN_SUMMARY: usize = 5;

/// How a run ended: the notice's `event`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunEnding {
    Completed,
    CompletedSmokeFailed,
    SomeFailed,
    Blocked,
    BreakerTripped,
    Stopped,
    /// An error ended the run (exit 2): the message says which.
    Error,
    BudgetExhausted,
}

impl RunEnding {
    pub fn as_str(self) -> &'static str {
        match self {
            RunEnding::Completed => "plan_completed",
            RunEnding::CompletedSmokeFailed => "smoke_failed",
            RunEnding::SomeFailed => "tasks_failed",
            RunEnding::Blocked => "blocked",
            RunEnding::BreakerTripped => "circuit_breaker",
            RunEnding::Stopped => "stopped",
            RunEnding::Error => "error",
            RunEnding::BudgetExhausted => "budget_exhausted",
        }
    }
}

impl Serialize for RunEnding {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Task counts at the end of the run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Completed or verified.
    pub completed: usize,
    /// Failed, or out of validation attempts.
    pub failed: usize,
    pub skipped: usize,
    pub pending: usize,
    /// Waiting for a person (`suspended`); left out of the JSON when none.
    #[serde(skip_serializing_if = "is_zero")]
    pub suspended: usize,
    pub total: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// What is sent. Serialised as one JSON object with these field names; `text` first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notice {
    /// The one-line human summary; Slack shows this field. [`Notice::with_summary`] fills it.
    pub text: String,
    pub event: RunEnding,
    pub plan_name: String,
    pub plan_path: String,
    pub counts: Counts,
    pub duration_seconds: f64,
    pub cost_usd: f64,
    pub failed_tasks: Vec<String>,
    /// Pending tasks that can never run.
    pub blocked_tasks: Vec<String>,
    /// The smoke result in words (`SmokeOutcome::describe`), when smoke tests were considered.
    pub smoke: Option<String>,
    /// `meta.notification_email` of old plans: shown, never sent to.
    pub notification_email: Option<String>,
}

impl Notice {
    /// A notice with no task lists, smoke result or email, and its summary filled in.
    pub fn new(
        event: RunEnding,
        plan_name: impl Into<String>,
        plan_path: impl Into<String>,
        counts: Counts,
        duration_seconds: f64,
        cost_usd: f64,
    ) -> Notice {
        Notice {
            text: String::new(),
            event,
            plan_name: plan_name.into(),
            plan_path: plan_path.into(),
            counts,
            duration_seconds,
            cost_usd,
            failed_tasks: Vec::new(),
            blocked_tasks: Vec::new(),
            smoke: None,
            notification_email: None,
        }
        .with_summary()
    }

    /// Sets `text` to [`Notice::summary`]; call again after changing the other fields.
    pub fn with_summary(mut self) -> Notice {
        self.text = self.summary();
        self
    }

    /// The one-line summary, e.g. `baton: plan "Widget" completed — 12/12 completed, 1h 02m,
    /// $3.41; smoke tests passed in 12 s`.
    pub fn summary(&self) -> String {
        let plan = &self.plan_name;
        let head = match self.event {
            RunEnding::Completed => format!("plan \"{plan}\" completed"),
            RunEnding::CompletedSmokeFailed => {
                format!("plan \"{plan}\" completed but the smoke tests failed")
            }
            RunEnding::SomeFailed if self.failed_tasks.is_empty() => {
                format!("plan \"{plan}\" finished with failed tasks")
            }
            RunEnding::SomeFailed => {
                format!(
                    "plan \"{plan}\" finished with failed tasks: {}",
                    ids(&self.failed_tasks)
                )
            }
            RunEnding::Blocked if self.blocked_tasks.is_empty() => {
                format!("plan \"{plan}\" is blocked")
            }
            RunEnding::Blocked => {
                format!(
                    "plan \"{plan}\" is blocked: {} can never run",
                    ids(&self.blocked_tasks)
                )
            }
            RunEnding::BreakerTripped => {
                format!("plan \"{plan}\": the circuit breaker tripped after repeated failures; no task starts until its cool-down ends")
            }
            RunEnding::Stopped => format!("plan \"{plan}\" stopped early"),
            RunEnding::Error => format!("plan \"{plan}\" stopped on an error"),
            RunEnding::BudgetExhausted => format!("plan \"{plan}\" stopped: budget exhausted"),
        };
        let c = self.counts;
        let mut counts = format!("{}/{} completed", c.completed, c.total);
        for (n, what) in [
            (c.failed, "failed"),
            (c.skipped, "skipped"),
            (c.suspended, "suspended"),
            (c.pending, "pending"),
        ] {
            if n > 0 {
                counts.push_str(&format!(", {n} {what}"));
            }
        }
        let mut line = format!(
            "baton: {head} — {counts}, {}, ${:.2}",
            clock(self.duration_seconds),
            self.cost_usd
        );
        if let Some(smoke) = &self.smoke {
            line.push_str("; ");
            line.push_str(smoke);
        }
        line
    }

    /// What the console shows for this notice: the summary, and the plan's notification email
    /// if it has one.
    pub fn console_lines(&self) -> Vec<String> {
        let mut lines = vec![self.text.clone()];
        if let Some(email) = &self.notification_email {
            lines.push(format!(
                "notification email (meta.notification_email): {email} — baton sends no email; \
                 use [notify] webhook or command in baton.toml"
            ));
        }
        lines
    }

    /// The JSON sent to the webhook and the command.
    pub fn to_json(&self) -> Result<Vec<u8>, NotifyError> {
        serde_json::to_vec(self).map_err(NotifyError::Encode)
    }
}

fn ids(ids: &[String]) -> String {
    let named = ids
        .iter()
        .take(IDS_IN_SUMMARY)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    match ids.len().checked_sub(IDS_IN_SUMMARY) {
        Some(more) if more > 0 => format!("{named} and {more} more"),
        _ => named,
    }
}

/// "42s", "3m 05s", "1h 02m".
fn clock(seconds: f64) -> String {
    let total = if seconds.is_finite() && seconds > 0.0 {
        seconds.round() as u64
    } else {
        0
    };
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m {s:02}s"),
        _ => format!("{h}h {m:02}m"),
    }
}

/// Why a notification was not delivered. The messages never contain a webhook URL's path,
/// query or user info.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("notification not encoded as JSON: {0}")]
    Encode(#[source] serde_json::Error),
    #[error("webhook {target}: not an http:// or https:// URL; notification not sent")]
    WebhookUrl { target: String },
    #[error("webhook {target}: answered HTTP {status}; notification not delivered")]
    WebhookStatus { target: String, status: u16 },
    #[error("webhook {target}: no answer within {} s; notification not delivered", .timeout.as_secs_f64())]
    WebhookTimeout { target: String, timeout: Duration },
    #[error("webhook {target}: {reason}; notification not delivered")]
    WebhookUnreachable {
        target: String,
        reason: WebhookFailure,
    },
    #[error("notify command could not be started: {0}")]
    CommandStart(#[source] io::Error),
    #[error("notify command failed ({status}){}", stderr_note(.stderr))]
    CommandFailed { status: ExitStatus, stderr: String },
    #[error("notify command did not finish within {} s and was ended", .timeout.as_secs_f64())]
    CommandTimeout { timeout: Duration },
}

fn stderr_note(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!(": {stderr}")
    }
}

/// Why the webhook could not be reached, in words that cannot carry the URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookFailure {
    #[error("host not found")]
    HostNotFound,
    #[error("connection failed ({0})")]
    Connection(io::ErrorKind),
    #[error("TLS failed")]
    Tls,
    #[error("redirected, which a webhook must not be")]
    Redirect,
    #[error("HTTP protocol error")]
    Protocol,
    #[error("request failed")]
    Other,
}

/// Sends `notice` to the webhook and the command, each if configured, at the same time, each
/// within [`NOTIFY_TIMEOUT`]. Returns the problems, one line each, to report once.
pub fn send(
    notice: &Notice,
    webhook: Option<&str>,
    command: Option<&str>,
    root: &Path,
) -> Vec<String> {
    send_within(notice, webhook, command, root, NOTIFY_TIMEOUT)
}

/// [`send`] with another timeout per target.
pub fn send_within(
    notice: &Notice,
    webhook: Option<&str>,
    command: Option<&str>,
    root: &Path,
    timeout: Duration,
) -> Vec<String> {
    let guard = match command.map(|_| supervise::own_binary()) {
        Some(Err(error)) => {
            return vec![format!("notify command not run: cannot find baton's own binary to guard it: {error}")]
        }
        Some(Ok(guard)) => Some(guard),
        None => None,
    };
    deliver(notice, webhook, command, root, timeout, guard)
}

/// [`send_within`] with the command's guard made explicit: tests have no baton binary.
fn deliver(
    notice: &Notice,
    webhook: Option<&str>,
    command: Option<&str>,
    root: &Path,
    timeout: Duration,
    guard: Option<PathBuf>,
) -> Vec<String> {
    if webhook.is_none() && command.is_none() {
        return Vec::new();
    }
    let json = match notice.to_json() {
        Ok(json) => json,
        Err(error) => return vec![error.to_string()],
    };
    let (posted, ran) = std::thread::scope(|scope| {
        let posted = webhook.map(|url| scope.spawn(|| post(url, &json, timeout)));
        let ran = command.map(|command| run_command(command, &json, root, timeout, guard));
        (posted.map(|handle| handle.join()), ran)
    });
    let mut problems = Vec::new();
    match posted {
        Some(Ok(Err(error))) => problems.push(error.to_string()),
        Some(Err(_)) => problems.push(format!(
            "webhook {}: the sender failed; notification not delivered",
            webhook.map(redact).unwrap_or_default()
        )),
        Some(Ok(Ok(()))) | None => {}
    }
    if let Some(Err(error)) = ran {
        problems.push(error.to_string());
    }
    problems
}

/// POSTs `json` to `url`; the whole exchange within `timeout`.
fn post(url: &str, json: &[u8], timeout: Duration) -> Result<(), NotifyError> {
    let target = redact(url);
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return Err(NotifyError::WebhookUrl { target });
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent(concat!("baton/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let answer = agent
        .post(url)
        .header("Content-Type", "application/json")
        .send(json);
    match answer {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) => Err(NotifyError::WebhookStatus {
            target,
            status: response.status().as_u16(),
        }),
        Err(ureq::Error::Timeout(_)) => Err(NotifyError::WebhookTimeout { target, timeout }),
        Err(ureq::Error::Io(error)) if error.kind() == io::ErrorKind::TimedOut => {
            Err(NotifyError::WebhookTimeout { target, timeout })
        }
        Err(error) => {
            let reason = match error {
                ureq::Error::HostNotFound => WebhookFailure::HostNotFound,
                ureq::Error::Io(error) => WebhookFailure::Connection(error.kind()),
                ureq::Error::ConnectionFailed => {
                    WebhookFailure::Connection(io::ErrorKind::ConnectionRefused)
                }
                ureq::Error::Tls(_) | ureq::Error::Rustls(_) | ureq::Error::TlsRequired => {
                    WebhookFailure::Tls
                }
                ureq::Error::RedirectFailed | ureq::Error::TooManyRedirects => {
                    WebhookFailure::Redirect
                }
                ureq::Error::Protocol(_) => WebhookFailure::Protocol,
                _ => WebhookFailure::Other,
            };
            Err(NotifyError::WebhookUnreachable { target, reason })
        }
    }
}

/// `scheme://host[:port] (url redacted)`: enough to recognise the target, nothing of its
/// path, query or user info (Slack's webhook secret is its path).
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(url redacted)".to_owned();
    };
    if scheme.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    {
        return "(url redacted)".to_owned();
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    if host.is_empty() {
        return "(url redacted)".to_owned();
    }
    format!("{scheme}://{host} (url redacted)")
}

/// Runs `sh -c command` in `root` with `json` on its stdin, under the supervisor (`guard`:
/// see [`Policy::guard`]): it and what it started are ended after `timeout`, and when baton
/// dies. Blocks the calling thread (a thread of its own, beside the webhook's).
fn run_command(
    command: &str,
    json: &[u8],
    root: &Path,
    timeout: Duration,
    guard: Option<PathBuf>,
) -> Result<(), NotifyError> {
    let spec = CommandSpec {
        stdin: Input::Bytes(json.to_vec()),
        ..CommandSpec::shell(command, root.to_path_buf())
    };
    let policy = Policy::notify(guard, timeout);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(NotifyError::CommandStart)?;
    let mut stderr = Vec::new();
    let finished = runtime.block_on(supervise::run_to_end(&spec, &policy, &mut |stream, line| {
        if stream == Stream::Stderr {
            stderr.extend_from_slice(line.as_bytes());
            stderr.push(b'\n');
            // Keep the end: that is where the reason is.
            if stderr.len() > 2 * STDERR_BYTES {
                stderr.drain(..stderr.len() - STDERR_BYTES);
            }
        }
    }));
    match finished.ended {
        Ended::Exited(exit) if exit.success() => Ok(()),
        Ended::Exited(exit) => Err(NotifyError::CommandFailed {
            status: exit_status(exit),
            stderr: stderr_text(&stderr),
        }),
        Ended::TimedOut => Err(NotifyError::CommandTimeout { timeout }),
        Ended::Error(error) => Err(NotifyError::CommandStart(io::Error::other(
            crate::exit::render_chain(&error),
        ))),
    }
}

/// The wait status `exit` stands for, so that a failure reads as the shell's would.
fn exit_status(exit: ExitInfo) -> ExitStatus {
    use std::os::unix::process::ExitStatusExt;
    match (exit.code, exit.signal) {
        (Some(code), _) => ExitStatus::from_raw((code & 0xff) << 8),
        (None, Some(signo)) => ExitStatus::from_raw(signo & 0x7f),
        (None, None) => ExitStatus::from_raw(0xff << 8),
    }
}

/// The last line-ish part of a command's stderr, on one line.
fn stderr_text(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match joined
        .char_indices()
        .rev()
        .nth(STDERR_BYTES.saturating_sub(1))
    {
        Some((cut, _)) if cut > 0 => format!("…{}", &joined[cut..]),
        _ => joined,
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::mpsc;
    use std::thread;
    use std::time::Instant;

    use serde_json::{json, Value};

    use super::*;

    /// [`super::send`] without a guard: a test binary is not a baton binary.
    fn send(notice: &Notice, webhook: Option<&str>, command: Option<&str>, root: &Path) -> Vec<String> {
        deliver(notice, webhook, command, root, NOTIFY_TIMEOUT, None)
    }

    /// [`super::send_within`] without a guard.
    fn send_within(
        notice: &Notice,
        webhook: Option<&str>,
        command: Option<&str>,
        root: &Path,
        timeout: Duration,
    ) -> Vec<String> {
        deliver(notice, webhook, command, root, timeout, None)
    }

    const SECRET_PATH: &str = "/services/T0000/B0000/XXXXSECRETXXXX?token=hush";

    fn notice() -> Notice {
        let counts = Counts {
            completed: 9,
            failed: 2,
            skipped: 0,
            pending: 1,
            suspended: 0,
            total: 12,
        };
        let mut notice = Notice::new(
            RunEnding::SomeFailed,
            "Donation Widget",
            ".claude/plans/w.yaml",
            counts,
            3725.4,
            3.4149,
        );
        notice.failed_tasks = vec!["1.3".into(), "2.1".into()];
        notice.blocked_tasks = vec!["3.1".into()];
        notice.notification_email = Some("ops@example.com".into());
        notice.with_summary()
    }

    /// One HTTP request as the test server saw it.
    struct Request {
        head: String,
        body: Vec<u8>,
    }

    fn read_request(stream: &mut TcpStream) -> Request {
        let mut reader = BufReader::new(stream);
        let mut head = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                break;
            }
            head.push_str(&line);
        }
        let length = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse::<usize>().unwrap())
            })
            .unwrap_or(0);
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        Request { head, body }
    }

    /// A one-request server on 127.0.0.1 answering `status_line`; returns its base URL and the
    /// request it got.
    fn server(status_line: &'static str) -> (String, thread::JoinHandle<Request>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let handle = thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let request = read_request(&mut stream);
            let answer = format!(
                "HTTP/1.1 {status_line}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
            );
            stream.write_all(answer.as_bytes()).unwrap();
            request
        });
        (url, handle)
    }

    fn assert_no_secret(problem: &str) {
        for secret in ["services", "SECRET", "token", "hush", "user", "pass"] {
            assert!(!problem.contains(secret), "{secret:?} leaked: {problem}");
        }
    }

    #[test]
    fn the_webhook_gets_json_with_text_and_the_structured_fields() {
        let (url, request) = server("200 OK");
        let root = tempfile::tempdir().unwrap();
        let problems = send(
            &notice(),
            Some(&format!("{url}{SECRET_PATH}")),
            None,
            root.path(),
        );
        assert_eq!(problems, Vec::<String>::new());
        let request = request.join().unwrap();
        assert!(
            request
                .head
                .starts_with(&format!("POST {SECRET_PATH} HTTP/1.1\r\n")),
            "{}",
            request.head
        );
        assert!(request
            .head
            .to_ascii_lowercase()
            .contains("content-type: application/json\r\n"));
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(
            body,
            json!({
                "text": "baton: plan \"Donation Widget\" finished with failed tasks: 1.3, 2.1 — \
                         9/12 completed, 2 failed, 1 pending, 1h 02m, $3.41",
                "event": "tasks_failed",
                "plan_name": "Donation Widget",
                "plan_path": ".claude/plans/w.yaml",
                "counts": {"completed": 9, "failed": 2, "skipped": 0, "pending": 1, "total": 12},
                "duration_seconds": 3725.4,
                "cost_usd": 3.4149,
                "failed_tasks": ["1.3", "2.1"],
                "blocked_tasks": ["3.1"],
                "smoke": null,
                "notification_email": "ops@example.com",
            })
        );
        let raw = String::from_utf8(request.body).unwrap();
        assert!(
            raw.starts_with("{\"text\":"),
            "Slack's field comes first: {raw}"
        );
    }

    #[test]
    fn a_non_2xx_answer_is_one_problem_without_the_secrets() {
        let (url, request) = server("500 Internal Server Error");
        let root = tempfile::tempdir().unwrap();
        let secret_url = url.replace("http://", "http://user:pass@") + SECRET_PATH;
        let problems = send(&notice(), Some(&secret_url), None, root.path());
        request.join().unwrap();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(
            problems[0],
            format!("webhook {url} (url redacted): answered HTTP 500; notification not delivered")
        );
        assert_no_secret(&problems[0]);
    }

    #[test]
    fn a_redirect_is_not_followed() {
        let (url, request) = server("302 Found\r\nLocation: http://127.0.0.1:9/elsewhere");
        let problems = send(
            &notice(),
            Some(&format!("{url}{SECRET_PATH}")),
            None,
            Path::new("/"),
        );
        request.join().unwrap();
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("answered HTTP 302"), "{}", problems[0]);
    }

    #[test]
    fn a_webhook_that_never_answers_is_given_up_after_the_timeout() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}{SECRET_PATH}", listener.local_addr().unwrap());
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let holder = thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let _ = read_request(&mut stream);
            // Hold the connection open, silent, until the test is done.
            let _ = release_rx.recv_timeout(Duration::from_secs(10));
        });
        let started = Instant::now();
        let problems = send_within(
            &notice(),
            Some(&url),
            None,
            Path::new("/"),
            Duration::from_secs(1),
        );
        let took = started.elapsed();
        drop(release_tx);
        holder.join().unwrap();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("no answer within 1 s"),
            "{}",
            problems[0]
        );
        assert_no_secret(&problems[0]);
        assert!(
            took >= Duration::from_secs(1) && took < Duration::from_secs(5),
            "{took:?}"
        );
    }

    #[test]
    fn a_dead_webhook_is_a_problem_and_a_working_command_still_runs() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}{SECRET_PATH}");
        let root = tempfile::tempdir().unwrap();
        let problems = send(&notice(), Some(&url), Some("cat > got.json"), root.path());
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with(&format!(
                "webhook http://127.0.0.1:{port} (url redacted): connection failed"
            )),
            "{}",
            problems[0]
        );
        assert_no_secret(&problems[0]);
        assert!(root.path().join("got.json").exists());
    }

    #[test]
    fn a_url_that_is_not_http_is_refused_without_being_shown() {
        let problems = send(
            &notice(),
            Some("hooks.slack.com/services/SECRET"),
            None,
            Path::new("/"),
        );
        assert_eq!(
            problems,
            ["webhook (url redacted): not an http:// or https:// URL; notification not sent"]
        );
    }

    #[test]
    fn the_command_gets_the_json_on_stdin_in_the_root() {
        let root = tempfile::tempdir().unwrap();
        let problems = send(&notice(), None, Some("cat > got.json"), root.path());
        assert_eq!(problems, Vec::<String>::new());
        let got: Value = serde_json::from_slice(&fs_read(&root.path().join("got.json"))).unwrap();
        assert_eq!(got, serde_json::to_value(notice()).unwrap());
        assert_eq!(got["event"], "tasks_failed");
        assert_eq!(got["counts"]["total"], 12);
    }

    fn fs_read(path: &Path) -> Vec<u8> {
        std::fs::read(path).unwrap()
    }

    #[test]
    fn a_failing_command_is_a_problem_with_its_stderr() {
        let root = tempfile::tempdir().unwrap();
        let problems = send(
            &notice(),
            None,
            Some("cat >/dev/null; echo 'no route to pager' >&2; exit 3"),
            root.path(),
        );
        assert_eq!(
            problems,
            ["notify command failed (exit status: 3): no route to pager"]
        );
    }

    #[test]
    fn a_command_that_ignores_stdin_and_succeeds_is_fine() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(
            send(&notice(), None, Some("true"), root.path()),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_hanging_command_is_ended_after_the_timeout_with_what_it_started() {
        let root = tempfile::tempdir().unwrap();
        let started = Instant::now();
        let problems = send_within(
            &notice(),
            None,
            Some("sleep 60 & echo $! > bg.pid; wait"),
            root.path(),
            Duration::from_secs(1),
        );
        let took = started.elapsed();
        assert_eq!(
            problems,
            ["notify command did not finish within 1 s and was ended"]
        );
        assert!(took < Duration::from_secs(5), "{took:?}");
        let pid: libc::pid_t = std::fs::read_to_string(root.path().join("bg.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        // The background sleep was in the group: it is gone (or a zombie awaiting its reaper).
        loop {
            // SAFETY: signal 0 only checks for existence.
            let alive = unsafe { libc::kill(pid, 0) } == 0;
            let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                s.rsplit(')')
                    .next()
                    .is_some_and(|s| s.trim_start().starts_with('Z'))
            });
            if !alive || zombie {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "background process {pid} survived"
            );
            thread::yield_now();
        }
    }

    #[test]
    fn a_missing_root_is_a_problem_not_a_panic() {
        let problems = send(
            &notice(),
            None,
            Some("true"),
            Path::new("/nonexistent/baton-root"),
        );
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].starts_with("notify command could not be started: "),
            "{}",
            problems[0]
        );
    }

    #[test]
    fn nothing_configured_sends_nothing() {
        assert!(send(&notice(), None, None, Path::new("/")).is_empty());
    }

    #[test]
    fn redaction_keeps_only_scheme_host_and_port() {
        assert_eq!(
            redact("https://hooks.slack.com/services/T0/B0/SECRET"),
            "https://hooks.slack.com (url redacted)"
        );
        assert_eq!(
            redact("http://u:p@[::1]:8080?k=v"),
            "http://[::1]:8080 (url redacted)"
        );
        assert_eq!(
            redact("https://h.example#frag"),
            "https://h.example (url redacted)"
        );
        assert_eq!(redact("hooks.slack.com/services/SECRET"), "(url redacted)");
        assert_eq!(redact("https:///path"), "(url redacted)");
        assert_eq!(redact("ht/tp://host/path"), "(url redacted)");
    }

    #[test]
    fn every_ending_has_its_event_name_and_summary() {
        let counts = Counts {
            completed: 12,
            failed: 0,
            skipped: 0,
            pending: 0,
            suspended: 0,
            total: 12,
        };
        let with = |event, smoke: Option<&str>| {
            let mut n = Notice::new(event, "W", "w.yaml", counts, 42.0, 0.5);
            n.smoke = smoke.map(str::to_owned);
            n.with_summary()
        };
        let cases = [
            (RunEnding::Completed, "plan_completed", Some("smoke tests passed in 3 s"),
             "baton: plan \"W\" completed — 12/12 completed, 42s, $0.50; smoke tests passed in 3 s"),
            (RunEnding::CompletedSmokeFailed, "smoke_failed", Some("smoke tests failed (exit 1) after 3 s"),
             "baton: plan \"W\" completed but the smoke tests failed — 12/12 completed, 42s, $0.50; \
              smoke tests failed (exit 1) after 3 s"),
            (RunEnding::SomeFailed, "tasks_failed", None,
             "baton: plan \"W\" finished with failed tasks — 12/12 completed, 42s, $0.50"),
            (RunEnding::Blocked, "blocked", None, "baton: plan \"W\" is blocked — 12/12 completed, 42s, $0.50"),
            (RunEnding::BreakerTripped, "circuit_breaker", None,
             "baton: plan \"W\": the circuit breaker tripped after repeated failures; no task starts until its cool-down ends — 12/12 completed, 42s, $0.50"),
            (RunEnding::Stopped, "stopped", None, "baton: plan \"W\" stopped early — 12/12 completed, 42s, $0.50"),
            (RunEnding::BudgetExhausted, "budget_exhausted", None,
             "baton: plan \"W\" stopped: budget exhausted — 12/12 completed, 42s, $0.50"),
        ];
        for (event, name, smoke, text) in cases {
            assert_eq!(event.as_str(), name);
            let notice = with(event, smoke);
            assert_eq!(notice.text, text);
            assert_eq!(serde_json::to_value(&notice).unwrap()["event"], name);
        }
    }

    #[test]
    fn long_id_lists_are_shortened_and_durations_read_as_a_clock() {
        let mut n = notice();
        n.event = RunEnding::Blocked;
        n.blocked_tasks = (1..=8).map(|i| format!("4.{i}")).collect();
        assert!(n
            .summary()
            .contains("is blocked: 4.1, 4.2, 4.3, 4.4, 4.5 and 3 more can never run"));
        assert_eq!(clock(0.0), "0s");
        assert_eq!(clock(f64::NAN), "0s");
        assert_eq!(clock(185.0), "3m 05s");
        assert_eq!(clock(3725.4), "1h 02m");
    }

    #[test]
    fn the_console_shows_the_plan_email_without_sending_to_it() {
        let lines = notice().console_lines();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0], notice().text);
        assert!(lines[1].contains("ops@example.com") && lines[1].contains("baton sends no email"));
        let mut without = notice();
        without.notification_email = None;
        assert_eq!(without.console_lines().len(), 1);
    }

    #[test]
    fn long_stderr_keeps_its_end() {
        let text = stderr_text(format!("{}\nTHE END", "x".repeat(1000)).as_bytes());
        assert!(
            text.starts_with('…') && text.ends_with("x THE END"),
            "{text}"
        );
        assert_eq!(text.chars().count(), STDERR_BYTES + 1);
    }
}
