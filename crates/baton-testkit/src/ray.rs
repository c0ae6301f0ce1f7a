//! A local Ray head node for the Ray executor's tests, shared by all tests of one test process.
//!
//! Started as `docs/research/ray.md` §2 and §9 say: its own `--temp-dir`, free ports for every
//! port whose default would collide with another head on the machine, the dashboard on
//! loopback, `--block` so `ray start` stays in the foreground. Ready only once a trivial job
//! has run to SUCCEEDED (`ray start` exiting 0 is not enough: the job agent may have failed to
//! bind). Never stopped with `ray stop`, which stops every Ray cluster on the machine.
//!
//! **The lifeline**: the head runs under a small `sh` whose stdin is a pipe this process holds
//! open for as long as it lives. When the test process ends, however it ends (`kill -9`
//! included), the kernel closes that pipe, the shell's `cat` sees end of file, and the shell
//! ends the head's process group (TERM, up to 2 s, KILL) and removes the temp dir. A head from
//! [`RayHead::start`] is ended the same way when it is dropped.
//!
//! Ray is found with [`find_ray`]; `.ci/run` installs it into `target/ray-venv`. A head costs
//! ~0.6 GB (PSS) and several seconds to start: share [`RayHead::shared`].

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::claude_cli::{is_executable, workspace_root};
use crate::process::{kill_process_group, process_alive};

/// CPUs of the shared head: tests run up to ~4 attempts at once.
pub const SHARED_NUM_CPUS: u32 = 4;
/// Custom resources of the shared head (`--resources`): account slots for
/// `entrypoint_resources`.
pub const SHARED_RESOURCES: &str = r#"{"account_a": 2}"#;
/// How many units of `account_a` the shared head has (see [`SHARED_RESOURCES`]).
pub const SHARED_ACCOUNT_A: u32 = 2;

/// How long a head may take to run its first job. Generous: ~4 s idle, far more on a loaded
/// 2-core machine.
const READY_TIMEOUT: Duration = Duration::from_secs(90);
/// How long one HTTP exchange with the dashboard may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// How often readiness and job states are polled.
const POLL: Duration = Duration::from_millis(100);
/// The readiness probe's submission id; deleted once it succeeded.
const PROBE_ID: &str = "baton-testkit-ready";
/// Lines of each log shown when the head fails to start.
const LOG_TAIL_LINES: usize = 30;

/// The variable every process of a head carries in its environment, with the head's temp dir
/// as value: Ray's daemons, its workers and the jobs' processes all inherit `ray start`'s
/// environment. It is how the lifeline finds what is not in the head's process group (Ray
/// puts each worker in a group of its own, each job driver in a session of its own) and how
/// [`RayHead::kill_job_driver`] tells this head's jobs from another's.
const MARKER: &str = "BATON_TEST_RAY_HEAD";

/// Runs the head and is its lifeline. Arguments: the temp dir, then the `ray start` command.
/// Prints the pid of `ray start` (made a session and group leader by `setsid`), then waits for
/// end of file on stdin. Then: TERM to the head's group (its daemons), up to 2 s for it to go,
/// KILL to the group and to every process carrying the head's marker (workers, job drivers and
/// whatever they started), until none is left (up to 5 s), and removes the temp dir. Traps (not
/// ignores) INT/TERM/HUP once the head is started, so that a signal to this shell alone cannot
/// orphan the head, and the head does not inherit ignored signals.
/// The marker's name is [`MARKER`], spelled out.
const LIFELINE: &str = r#"
dir=$1; shift
marker="BATON_TEST_RAY_HEAD=$dir"
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || exit 1
BATON_TEST_RAY_HEAD=$dir setsid "$@" </dev/null >"$dir/ray-start.log" 2>&1 &
pg=$!
echo "$pg"
trap : INT TERM HUP
cat >/dev/null
marked() { grep -lzxF -e "$marker" /proc/[0-9]*/environ 2>/dev/null; }
kill -TERM -"$pg" 2>/dev/null
i=0
while kill -0 -"$pg" 2>/dev/null && [ "$i" -lt 20 ]; do sleep 0.1; i=$((i+1)); done
kill -KILL -"$pg" 2>/dev/null
i=0
while [ "$i" -lt 50 ]; do
  left=$(marked)
  [ -z "$left" ] && break
  for f in $left; do p=${f#/proc/}; kill -KILL "${p%/environ}" 2>/dev/null; done
  sleep 0.1; i=$((i+1))
done
rm -rf "$dir"
"#;

/// The `ray` program: `$BATON_TEST_RAY` if set (a path to the `ray` executable), else
/// `target/ray-venv/bin/ray` under the workspace root (where `.ci/run` installs it), else `ray`
/// on `PATH`. `None` means Ray tests should skip (or fail under `CI`).
pub fn find_ray() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("BATON_TEST_RAY") {
        // Taken as given: a wrong path fails in RayHead::start with its name, never a skip.
        return Some(PathBuf::from(path));
    }
    let venv = workspace_root().join("target/ray-venv/bin/ray");
    if is_executable(&venv) {
        return Some(venv);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("ray"))
        .find(|candidate| is_executable(candidate))
}

/// A running local Ray head node. Dropping one from [`RayHead::start`] ends it; the shared one
/// ends with the test process.
pub struct RayHead {
    /// The dashboard, base of the Jobs REST API: `http://127.0.0.1:<dashboard port>`.
    pub address: String,
    /// The GCS address, for `ray start --address` of a worker node: `127.0.0.1:<port>`.
    pub gcs_address: String,
    temp_dir: PathBuf,
    /// The pid of `ray start`, leader of the session and process group of the head's daemons
    /// (not of its workers, each in a group of its own, nor of the job drivers, each in a
    /// session of its own: the lifeline finds those by [`MARKER`]).
    pgid: u32,
    http: ureq::Agent,
    /// The write end of the lifeline's stdin; closing it ends the head.
    lifeline_stdin: Mutex<Option<ChildStdin>>,
    lifeline: Mutex<Child>,
}

impl std::fmt::Debug for RayHead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RayHead")
            .field("address", &self.address)
            .field("gcs_address", &self.gcs_address)
            .field("temp_dir", &self.temp_dir)
            .field("pgid", &self.pgid)
            .finish_non_exhaustive()
    }
}

impl RayHead {
    /// The head shared by every test of this process ([`SHARED_NUM_CPUS`] CPUs,
    /// [`SHARED_RESOURCES`]), started on first use. `None`, with a loud skip message, when Ray
    /// is not installed; panics when `CI` is set and Ray is missing, and (every caller) when
    /// the head failed to start.
    pub fn shared() -> Option<&'static RayHead> {
        static HEAD: OnceLock<Result<RayHead, String>> = OnceLock::new();
        if find_ray().is_none() {
            // CI installs it (`.ci/run`): there, a missing Ray is a broken set-up, not a skip.
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set but Ray is not installed: run .ci/run, or `python3 -m venv \
                 target/ray-venv && target/ray-venv/bin/pip install 'ray[default]==2.60.0'`, or \
                 set BATON_TEST_RAY to a `ray` executable"
            );
            eprintln!(
                "skipped: Ray is not installed (python3 -m venv target/ray-venv && \
                 target/ray-venv/bin/pip install 'ray[default]==2.60.0', or set BATON_TEST_RAY)"
            );
            return None;
        }
        let head = HEAD.get_or_init(|| Self::try_start(SHARED_NUM_CPUS, SHARED_RESOURCES));
        match head {
            Ok(head) => Some(head),
            Err(message) => panic!("{message}"),
        }
    }

    /// Starts a head of its own with `num_cpus` CPUs and the custom resources
    /// `resources_json` (e.g. `{"account_a": 2}`), and waits until it runs jobs. Panics, with
    /// the head's logs, when Ray is missing or the head does not become ready in time.
    pub fn start(num_cpus: u32, resources_json: &str) -> RayHead {
        match Self::try_start(num_cpus, resources_json) {
            Ok(head) => head,
            Err(message) => panic!("{message}"),
        }
    }

    fn try_start(num_cpus: u32, resources_json: &str) -> Result<RayHead, String> {
        let ray = find_ray().ok_or(
            "Ray is not installed: set BATON_TEST_RAY or install it into target/ray-venv (see .ci/run)",
        )?;
        if !is_executable(&ray) {
            return Err(format!(
                "{} is not an executable file (from BATON_TEST_RAY, target/ray-venv or PATH)",
                ray.display()
            ));
        }
        let temp_dir = next_temp_dir();
        let [gcs, dashboard, agent, client] = free_ports();
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(LIFELINE)
            .arg("baton-ray-lifeline")
            .arg(&temp_dir)
            .arg(&ray)
            .args(["start", "--head", "--block", "--disable-usage-stats"])
            .arg("--temp-dir")
            .arg(&temp_dir)
            .args(["--port", &gcs.to_string()])
            .args(["--dashboard-host", "127.0.0.1"])
            .args(["--dashboard-port", &dashboard.to_string()])
            .args(["--dashboard-agent-listen-port", &agent.to_string()])
            .args(["--ray-client-server-port", &client.to_string()])
            .args(["--num-cpus", &num_cpus.to_string()])
            .args(["--resources", resources_json])
            // A RAY_ADDRESS of the caller's would point `ray start` at some other cluster.
            .env_remove("RAY_ADDRESS")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            // Out of the test's process group: a Ctrl+C to the tests must reach the head only
            // through the lifeline.
            .process_group(0);
        let mut lifeline = cmd
            .spawn()
            .map_err(|e| format!("cannot run sh to start the Ray head: {e}"))?;
        let stdin = lifeline.stdin.take();
        let mut line = String::new();
        if let Some(stdout) = lifeline.stdout.take() {
            let _ = BufReader::new(stdout).read_line(&mut line);
        }
        let Ok(pgid) = line.trim().parse::<u32>() else {
            let _ = lifeline.kill();
            return Err(format!(
                "the Ray head's lifeline shell did not start `ray start` (printed {line:?}); \
                 could it create {}?",
                temp_dir.display()
            ));
        };
        let head = RayHead {
            address: format!("http://127.0.0.1:{dashboard}"),
            gcs_address: format!("127.0.0.1:{gcs}"),
            temp_dir,
            pgid,
            http: ureq::Agent::config_builder()
                .timeout_global(Some(HTTP_TIMEOUT))
                .http_status_as_error(false)
                .build()
                .into(),
            lifeline_stdin: Mutex::new(stdin),
            lifeline: Mutex::new(lifeline),
        };
        let started = Instant::now();
        match head.wait_ready(started + READY_TIMEOUT) {
            Ok(()) => Ok(head),
            // The logs must be read before the drop removes the temp dir.
            Err(why) => Err(format!(
                "the Ray head ({}, {}) did not become ready within {:?}: {why}\n{}",
                ray.display(),
                head.temp_dir.display(),
                started.elapsed(),
                head.log_tail()
            )),
        }
    }

    /// Submits [`PROBE_ID`] until the agent accepts it, waits for it to succeed, deletes it.
    fn wait_ready(&self, deadline: Instant) -> Result<(), String> {
        let probe = json!({"entrypoint": "true", "submission_id": PROBE_ID});
        let mut last = String::from("no answer yet");
        loop {
            self.check_alive()?;
            match self.request("POST", "/api/jobs/", Some(&probe)) {
                Ok((200, _)) => break,
                // An earlier try that timed out on our side may have been accepted.
                Ok((_, body)) if body.contains("already exists") => break,
                Ok((status, body)) => {
                    last = format!("POST /api/jobs/ → {status}: {}", last_line(&body))
                }
                Err(e) => last = format!("POST /api/jobs/: {e}"),
            }
            if Instant::now() >= deadline {
                return Err(format!("the probe job was never accepted (last: {last})"));
            }
            thread::sleep(POLL);
        }
        loop {
            self.check_alive()?;
            if let Some(job) = self.job(PROBE_ID) {
                match job["status"].as_str() {
                    Some("SUCCEEDED") => break,
                    Some("FAILED" | "STOPPED") => {
                        return Err(format!("the probe job `true` did not succeed: {job}"))
                    }
                    _ => last = format!("probe job {}", job["status"]),
                }
            }
            if Instant::now() >= deadline {
                return Err(format!("the probe job did not finish (last: {last})"));
            }
            thread::sleep(POLL);
        }
        if self.delete_job(PROBE_ID) {
            Ok(())
        } else {
            Err("DELETE of the finished probe job failed".to_owned())
        }
    }

    fn check_alive(&self) -> Result<(), String> {
        if process_alive(self.pgid) {
            Ok(())
        } else {
            Err(format!("`ray start` (pid {}) exited", self.pgid))
        }
    }

    /// The last lines of `ray start`'s output and of the dashboard's logs.
    fn log_tail(&self) -> String {
        let mut files = vec![self.temp_dir.join("ray-start.log")];
        let logs = self.temp_dir.join("session_latest/logs");
        if let Ok(entries) = fs::read_dir(&logs) {
            let mut dashboard: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("dashboard") && n.ends_with(".log"))
                })
                .collect();
            dashboard.sort();
            files.extend(dashboard);
        }
        let mut out = String::new();
        for file in files {
            let text = fs::read_to_string(&file).unwrap_or_else(|e| format!("(unreadable: {e})"));
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
            out.push_str(&format!(
                "--- {} (last {} lines) ---\n",
                file.display(),
                tail.len()
            ));
            for line in tail {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    /// The head's `--temp-dir` (sessions, sockets, logs; `session_latest/logs/` holds
    /// `job-driver-<submission id>.log`). Removed when the head ends.
    pub fn temp_dir(&self) -> &Path {
        &self.temp_dir
    }

    /// Every job the head knows (`GET /api/jobs/`), in no particular order. Panics when the
    /// head does not answer.
    pub fn jobs(&self) -> Vec<Value> {
        match self.request("GET", "/api/jobs/", None) {
            Ok((200, body)) => serde_json::from_str(&body).unwrap_or_else(|e| {
                panic!(
                    "GET {}/api/jobs/: not a JSON array ({e}): {body}",
                    self.address
                )
            }),
            Ok((status, body)) => panic!("GET {}/api/jobs/ → {status}: {body}", self.address),
            Err(e) => panic!("GET {}/api/jobs/: {e}", self.address),
        }
    }

    /// The job `submission_id` (`GET /api/jobs/<id>`), or `None` when the head does not know
    /// it (404). Panics on any other answer.
    pub fn job(&self, submission_id: &str) -> Option<Value> {
        let path = format!("/api/jobs/{submission_id}");
        match self.request("GET", &path, None) {
            Ok((200, body)) => {
                Some(serde_json::from_str(&body).unwrap_or_else(|e| {
                    panic!("GET {}{path}: not JSON ({e}): {body}", self.address)
                }))
            }
            Ok((404, _)) => None,
            Ok((status, body)) => panic!("GET {}{path} → {status}: {body}", self.address),
            Err(e) => panic!("GET {}{path}: {e}", self.address),
        }
    }

    /// Submits a job (`POST /api/jobs/` with `request`, e.g.
    /// `{"entrypoint": "echo hi", "submission_id": "t1"}`) and returns its submission id.
    /// Panics unless the head answers 200.
    pub fn submit_job(&self, request: &Value) -> String {
        match self.request("POST", "/api/jobs/", Some(request)) {
            Ok((200, body)) => {
                let reply: Value = serde_json::from_str(&body).unwrap_or_else(|e| {
                    panic!("POST {}/api/jobs/: not JSON ({e}): {body}", self.address)
                });
                reply["submission_id"]
                    .as_str()
                    .unwrap_or_else(|| {
                        panic!(
                            "POST {}/api/jobs/: no submission_id in {body}",
                            self.address
                        )
                    })
                    .to_owned()
            }
            Ok((status, body)) => panic!(
                "POST {}/api/jobs/ {request} → {status}: {body}",
                self.address
            ),
            Err(e) => panic!("POST {}/api/jobs/: {e}", self.address),
        }
    }

    /// The job's stdout and stderr so far (`GET /api/jobs/<id>/logs`), Ray's own two lines
    /// included. Panics unless the head answers 200.
    pub fn job_logs(&self, submission_id: &str) -> String {
        let path = format!("/api/jobs/{submission_id}/logs");
        match self.request("GET", &path, None) {
            Ok((200, body)) => {
                let reply: Value = serde_json::from_str(&body).unwrap_or_else(|e| {
                    panic!("GET {}{path}: not JSON ({e}): {body}", self.address)
                });
                reply["logs"].as_str().unwrap_or_default().to_owned()
            }
            Ok((status, body)) => panic!("GET {}{path} → {status}: {body}", self.address),
            Err(e) => panic!("GET {}{path}: {e}", self.address),
        }
    }

    /// Polls the job until it is SUCCEEDED, FAILED or STOPPED and returns it. Panics when it
    /// is unknown or still not terminal after `timeout`, with its last state and logs.
    pub fn wait_for_job(&self, submission_id: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let job = self
                .job(submission_id)
                .unwrap_or_else(|| panic!("the Ray head does not know job {submission_id}"));
            if matches!(
                job["status"].as_str(),
                Some("SUCCEEDED" | "FAILED" | "STOPPED")
            ) {
                return job;
            }
            if Instant::now() >= deadline {
                panic!(
                    "job {submission_id} not finished after {timeout:?}: {job}\nlogs:\n{}",
                    self.job_logs(submission_id)
                );
            }
            thread::sleep(POLL);
        }
    }

    /// Deletes a finished job (`DELETE /api/jobs/<id>`), so that later tests see a shorter
    /// job list. `false` when the head refused (a job not yet terminal) or does not know it.
    pub fn delete_job(&self, submission_id: &str) -> bool {
        matches!(
            self.request("DELETE", &format!("/api/jobs/{submission_id}"), None),
            Ok((200, _))
        )
    }

    /// Asks the head to stop a job (`POST /api/jobs/<id>/stop`); `true` when it said it would.
    pub fn stop_job(&self, submission_id: &str) -> bool {
        matches!(self.request("POST", &format!("/api/jobs/{submission_id}/stop"), None), Ok((200, _)))
    }

    /// Kills the job's driver as a lost machine would: SIGKILL to its whole process group
    /// (the driver is `/bin/sh -c <entrypoint>` in a session of its own; killing only the
    /// shell would orphan what it started, see ray.md §4). The driver is the process of this
    /// head whose environment's `RAY_JOB_CONFIG_JSON_ENV_VAR` names `submission_id`, whose
    /// parent's does not, and which leads its own process group. `false` when no such process
    /// runs.
    pub fn kill_job_driver(&self, submission_id: &str) -> bool {
        let Some(pgid) = find_job_driver(&self.temp_dir, submission_id) else {
            return false;
        };
        // Never the head's own group: that would take the whole head down.
        if pgid == self.pgid {
            return false;
        }
        kill_process_group(pgid, libc::SIGKILL);
        true
    }

    /// One HTTP exchange with the dashboard → (status, body).
    fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, String), ureq::Error> {
        let url = format!("{}{path}", self.address);
        let answer = match (method, body) {
            ("POST", Some(body)) => self
                .http
                .post(&url)
                .header("Content-Type", "application/json")
                .send(body.to_string().as_bytes()),
            ("POST", None) => self.http.post(&url).send_empty(),
            ("DELETE", _) => self.http.delete(&url).call(),
            _ => self.http.get(&url).call(),
        };
        let mut response = answer?;
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string()?;
        Ok((status, text))
    }
}

impl Drop for RayHead {
    /// Closes the lifeline and waits (bounded) for it to end the head and remove its temp dir.
    fn drop(&mut self) {
        drop(self.lifeline_stdin.lock().map(|mut s| s.take()));
        let Ok(mut lifeline) = self.lifeline.lock() else {
            return;
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            match lifeline.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) => thread::sleep(POLL),
            }
        }
    }
}

/// `/tmp/bt-ray-<pid>` for the first head of this process, `/tmp/bt-ray-<pid>-<n>` after: short,
/// because Ray's Unix socket paths under it must stay within the ~107-byte limit.
fn next_temp_dir() -> PathBuf {
    static COUNT: Mutex<u32> = Mutex::new(0);
    let mut count = COUNT.lock().unwrap_or_else(|p| p.into_inner());
    let n = *count;
    *count += 1;
    let pid = std::process::id();
    if n == 0 {
        PathBuf::from(format!("/tmp/bt-ray-{pid}"))
    } else {
        PathBuf::from(format!("/tmp/bt-ray-{pid}-{n}"))
    }
}

/// Four distinct ports free right now on all interfaces (Ray's GCS and agent listen on
/// 0.0.0.0). All are held until all are chosen, so they differ.
fn free_ports() -> [u16; 4] {
    let listeners: Vec<TcpListener> = (0..4)
        .map(|_| {
            TcpListener::bind("0.0.0.0:0")
                .unwrap_or_else(|e| panic!("cannot bind a free port: {e}"))
        })
        .collect();
    let mut ports = [0; 4];
    for (port, listener) in ports.iter_mut().zip(&listeners) {
        *port = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("local address of a bound port: {e}"))
            .port();
    }
    ports
}

/// The process group of the driver of job `submission_id` of the head whose temp dir is
/// `head_dir`, found through `/proc`.
fn find_job_driver(head_dir: &Path, submission_id: &str) -> Option<u32> {
    let marker = format!("{MARKER}={}", head_dir.display());
    let entries = fs::read_dir("/proc").ok()?;
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if !runs_job(pid, &marker, submission_id) || !process_alive(pid) {
            continue;
        }
        let Some((ppid, pgid)) = parent_and_group(pid) else {
            continue;
        };
        // The driver leads its own group (Ray starts it with start_new_session) and its
        // parent, the JobSupervisor, is not itself a process of the job.
        if pgid == pid && !runs_job(ppid, &marker, submission_id) {
            return Some(pgid);
        }
    }
    None
}

/// Whether `/proc/<pid>/environ` has the head's `marker` (`NAME=value`) and a
/// `RAY_JOB_CONFIG_JSON_ENV_VAR` naming `submission_id`.
fn runs_job(pid: u32, marker: &str, submission_id: &str) -> bool {
    let Ok(environ) = fs::read(format!("/proc/{pid}/environ")) else {
        return false;
    };
    let vars = environ.split(|&b| b == 0);
    if !vars.clone().any(|var| var == marker.as_bytes()) {
        return false;
    }
    vars.filter_map(|var| var.strip_prefix(b"RAY_JOB_CONFIG_JSON_ENV_VAR=".as_slice()))
        .filter_map(|config| serde_json::from_slice::<Value>(config).ok())
        .any(|config| config["metadata"]["job_submission_id"] == submission_id)
}

/// (parent pid, process group) from `/proc/<pid>/stat`.
fn parent_and_group(pid: u32) -> Option<(u32, u32)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the parenthesised command name (which may hold spaces): state, ppid, pgrp, …
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace().skip(1);
    let ppid = fields.next()?.parse().ok()?;
    let pgid = fields.next()?.parse().ok()?;
    Some((ppid, pgid))
}

/// The last non-empty line of an error body (Ray's are Python tracebacks).
fn last_line(body: &str) -> &str {
    body.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_distinct() {
        let ports = free_ports();
        for (i, a) in ports.iter().enumerate() {
            assert!(*a > 0);
            assert!(!ports[i + 1..].contains(a), "{ports:?}");
        }
    }

    #[test]
    fn temp_dirs_are_short_and_distinct() {
        let a = next_temp_dir();
        let b = next_temp_dir();
        assert_ne!(a, b);
        // Ray appends ~70 bytes (session_<date>_<pid>/sockets/plasma_store); sun_path is 108.
        assert!(a.as_os_str().len() <= 30, "{}", a.display());
    }

    #[test]
    fn own_process_is_no_job_driver() {
        let (ppid, pgid) = parent_and_group(std::process::id()).expect("own /proc/self/stat");
        assert!(ppid > 0 && pgid > 0);
        assert!(!runs_job(
            std::process::id(),
            "BATON_TEST_RAY_HEAD=/x",
            "nope"
        ));
        assert_eq!(
            find_job_driver(Path::new("/x"), "baton-testkit-no-such-job"),
            None
        );
    }

    #[test]
    fn last_line_of_a_traceback() {
        assert_eq!(
            last_line("Traceback:\n  x\nValueError: boom\n\n"),
            "ValueError: boom"
        );
        assert_eq!(last_line(""), "");
    }
}
