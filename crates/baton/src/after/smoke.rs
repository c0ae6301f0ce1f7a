//! The smoke tests run after every task of a plan has completed.
//!
//! Owns choosing what to run (the configured command, or the compatibility default: the
//! Playwright spec `tests/SMOKE01-critical-paths.spec.ts` against a dev server on localhost
//! 3000–3002), running it in the repository root with a timeout, handing each output line to
//! the caller and appending it to the smoke log, and the [`SmokeOutcome`].
//!
//! It must not decide whether smoke tests run at all (`--dry-run`, `--skip-smoke` and which
//! command wins are the engine's), print anything itself, or map the outcome to an exit code.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::supervise::{self, CommandSpec, Ended, Input, Policy};

/// The spec file of the compatibility default, relative to the repository root.
pub const COMPAT_SPEC: &str = "tests/SMOKE01-critical-paths.spec.ts";

/// Where the compatibility default looks for a running dev server, in this order.
pub const COMPAT_PORTS: [u16; 3] = [3000, 3001, 3002];

/// How long a dev server may take to accept a connection before it counts as not there.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(300);

/// Between SIGTERM and SIGKILL to the smoke command's process group on timeout.
const GRACE: Duration = Duration::from_secs(5);

/// What to run and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmokeSpec {
    /// The configured command (plan `meta.smoke_command`, else `[smoke] command`), run through
    /// `sh -c`. `None`: the compatibility default.
    pub command: Option<String>,
    pub timeout: Duration,
    /// The repository root: the command's working directory.
    pub root: PathBuf,
    /// Every output line is appended here (the folder is created).
    pub log_path: PathBuf,
}

/// How the smoke tests went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmokeOutcome {
    Passed {
        duration: Duration,
    },
    /// Exited non-zero, was killed by a signal, or could not be started (then `code` and
    /// `signal` are both `None` and `tail` says why).
    Failed {
        code: Option<i32>,
        signal: Option<i32>,
        duration: Duration,
        /// The last output lines.
        tail: String,
    },
    TimedOut {
        after: Duration,
    },
    /// Nothing to run; not a failure.
    Skipped {
        reason: String,
    },
}

impl SmokeOutcome {
    /// Whether the run must end with exit code 5.
    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            SmokeOutcome::Failed { .. } | SmokeOutcome::TimedOut { .. }
        )
    }

    /// One line for a person: "smoke tests passed in 12s", "smoke tests skipped: …".
    pub fn describe(&self) -> String {
        match self {
            SmokeOutcome::Passed { duration } => {
                format!("smoke tests passed in {}", seconds(*duration))
            }
            SmokeOutcome::Failed {
                code,
                signal,
                duration,
                ..
            } => {
                let how = match (code, signal) {
                    (Some(code), _) => format!("exit {code}"),
                    (None, Some(signal)) => format!("killed by signal {signal}"),
                    (None, None) => "could not start".to_owned(),
                };
                format!("smoke tests failed ({how}) after {}", seconds(*duration))
            }
            SmokeOutcome::TimedOut { after } => {
                format!("smoke tests timed out after {}", seconds(*after))
            }
            SmokeOutcome::Skipped { reason } => format!("smoke tests skipped: {reason}"),
        }
    }
}

fn seconds(duration: Duration) -> String {
    crate::report::render::human(duration)
}

/// Runs the smoke tests of `spec` under the guard (a `kill -9` of baton ends them and what they
/// started); each output line goes to `on_line` (the caller adds the `[SMOKE]` prefix) and to
/// the smoke log. Never fails: every problem is an outcome.
pub async fn run_smoke(spec: &SmokeSpec, on_line: &mut (dyn FnMut(&str) + Send)) -> SmokeOutcome {
    let path = std::env::var_os("PATH");
    let guard = match supervise::own_binary() {
        Ok(guard) => guard,
        Err(error) => {
            let why = format!("could not find baton's own binary to guard the smoke tests: {error}");
            on_line(&why);
            return SmokeOutcome::Failed { code: None, signal: None, duration: Duration::ZERO, tail: why };
        }
    };
    run_smoke_with(spec, &COMPAT_PORTS, path.as_deref(), Some(guard), GRACE, on_line).await
}

/// [`run_smoke`] with the environment it depends on made explicit, for tests (which have no
/// baton binary to guard with).
async fn run_smoke_with(
    spec: &SmokeSpec,
    ports: &[u16],
    path_var: Option<&OsStr>,
    guard: Option<PathBuf>,
    grace: Duration,
    on_line: &mut (dyn FnMut(&str) + Send),
) -> SmokeOutcome {
    let job = match &spec.command {
        Some(command) => CommandSpec::shell(command, spec.root.clone()),
        None => match compat_default(&spec.root, ports, path_var).await {
            Ok(job) => job,
            Err(reason) => return SmokeOutcome::Skipped { reason },
        },
    };
    // Nothing a smoke test starts may outlive it.
    let policy = Policy::smoke(guard, spec.timeout, grace);

    let mut log = SmokeLog::open(&spec.log_path);
    let mut log_line = |line: &str, on_line: &mut (dyn FnMut(&str) + Send)| {
        if let Some(problem) = log.write(line) {
            on_line(&problem);
        }
    };
    log_line(
        &format!("# {} {}", jiff::Timestamp::now(), describe_job(&job)),
        on_line,
    );
    let finished = supervise::run_to_end(&job, &policy, &mut |_, line| {
        on_line(line);
        log_line(line, on_line);
    })
    .await;

    let outcome = match finished.ended {
        Ended::Exited(status) if status.success() => SmokeOutcome::Passed {
            duration: finished.duration,
        },
        Ended::Exited(status) => SmokeOutcome::Failed {
            code: status.code,
            signal: status.signal,
            duration: finished.duration,
            tail: finished.tail,
        },
        Ended::TimedOut => SmokeOutcome::TimedOut {
            after: spec.timeout,
        },
        Ended::Error(error) => {
            let program = job.program.to_string_lossy();
            let why = format!("could not run {program} in {}: {}", job.cwd.display(), crate::exit::render_chain(&error));
            on_line(&why);
            SmokeOutcome::Failed {
                code: None,
                signal: None,
                duration: finished.duration,
                tail: why,
            }
        }
    };
    log_line(&format!("# {}", outcome.describe()), on_line);
    outcome
}

fn describe_job(job: &CommandSpec) -> String {
    let mut words: Vec<String> = job
        .env
        .iter()
        .map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy()))
        .collect();
    if job.program.as_os_str() == "sh" {
        // The configured command as the user wrote it.
        words.extend(
            job.args
                .iter()
                .skip(1)
                .map(|a| a.to_string_lossy().into_owned()),
        );
    } else {
        words.push(job.program.to_string_lossy().into_owned());
        words.extend(job.args.iter().map(|a| a.to_string_lossy().into_owned()));
    }
    words.join(" ")
}

/// The compatibility default, or why there is nothing to run.
async fn compat_default(
    root: &Path,
    ports: &[u16],
    path_var: Option<&OsStr>,
) -> Result<CommandSpec, String> {
    if !root.join(COMPAT_SPEC).is_file() {
        return Err(format!("no smoke command configured and no {COMPAT_SPEC}"));
    }
    let candidates = ports.to_vec();
    let port = tokio::task::spawn_blocking(move || candidates.into_iter().find(|&p| answers(p)))
        .await
        .ok()
        .flatten();
    let Some(port) = port else {
        return Err(format!(
            "no server answering on localhost:{}",
            port_list(ports)
        ));
    };
    let Some(npx) = find_program("npx", path_var) else {
        return Err("npx not found".to_owned());
    };
    if !playwright_installed(root) {
        return Err(
            "Playwright is not installed (no node_modules/.bin/playwright; run npm install)"
                .to_owned(),
        );
    }
    Ok(CommandSpec {
        program: npx,
        args: [
            "playwright",
            "test",
            COMPAT_SPEC,
            "--reporter=list",
            "--project=chromium",
        ]
        .map(OsString::from)
        .to_vec(),
        cwd: root.to_path_buf(),
        env: vec![
            (
                "PLAYWRIGHT_BASE_URL".into(),
                format!("http://localhost:{port}").into(),
            ),
            ("SMOKE_SKIP_WEBSERVER".into(), "true".into()),
        ],
        stdin: Input::Null,
    })
}

/// "3000-3002" for consecutive ports, else "3000, 8080".
fn port_list(ports: &[u16]) -> String {
    let consecutive = ports.windows(2).all(|w| w[0].checked_add(1) == Some(w[1]));
    match (ports.first(), ports.last()) {
        (Some(first), Some(last)) if consecutive && ports.len() > 1 => format!("{first}-{last}"),
        _ => ports
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// Whether something accepts TCP connections on `port` of localhost (IPv4 or IPv6: dev servers
/// on recent Node listen on `::1` only).
fn answers(port: u16) -> bool {
    [
        SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        SocketAddr::from((Ipv6Addr::LOCALHOST, port)),
    ]
    .iter()
    .any(|addr| TcpStream::connect_timeout(addr, CONNECT_TIMEOUT).is_ok())
}

/// `name` as an executable file in one of the folders of `path_var`.
fn find_program(name: &str, path_var: Option<&OsStr>) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(path_var?)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(name))
        .find(|candidate| {
            fs::metadata(candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Whether `npx playwright` would find Playwright in the project (in `root` or a parent, as
/// Node resolves it) rather than try to download it.
fn playwright_installed(root: &Path) -> bool {
    root.ancestors()
        .any(|dir| dir.join("node_modules/.bin/playwright").exists())
}

/// The smoke log, appended to line by line. A log that cannot be written is said once (as an
/// output line) and does not fail the smoke tests.
struct SmokeLog {
    file: Result<File, ()>,
    path: PathBuf,
    /// Why the file could not be opened, until it has been said.
    unsaid: Option<std::io::Error>,
}

impl SmokeLog {
    fn open(path: &Path) -> SmokeLog {
        let opened = path
            .parent()
            .map_or(Ok(()), fs::create_dir_all)
            .and_then(|()| OpenOptions::new().create(true).append(true).open(path));
        match opened {
            Ok(file) => SmokeLog {
                file: Ok(file),
                path: path.to_path_buf(),
                unsaid: None,
            },
            Err(error) => SmokeLog {
                file: Err(()),
                path: path.to_path_buf(),
                unsaid: Some(error),
            },
        }
    }

    /// Appends `line`; returns a problem to show the first time the log cannot be written.
    fn write(&mut self, line: &str) -> Option<String> {
        if let Ok(file) = self.file.as_mut() {
            if let Err(error) = writeln!(file, "{line}") {
                self.file = Err(());
                self.unsaid = Some(error);
            }
        }
        let error = self.unsaid.take()?;
        Some(format!(
            "baton: smoke log {} not written: {error}",
            self.path.display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn spec(root: &Path, command: Option<&str>, timeout: Duration) -> SmokeSpec {
        SmokeSpec {
            command: command.map(str::to_owned),
            timeout,
            root: root.to_path_buf(),
            log_path: root.join(".baton/logs/plan/smoke.log"),
        }
    }

    async fn smoke(
        spec: &SmokeSpec,
        ports: &[u16],
        path_var: Option<&OsStr>,
    ) -> (SmokeOutcome, Vec<String>) {
        let mut lines = Vec::new();
        let outcome = run_smoke_with(
            spec,
            ports,
            path_var,
            None,
            Duration::from_millis(300),
            &mut |l| lines.push(l.to_owned()),
        )
        .await;
        (outcome, lines)
    }

    /// A port on 127.0.0.1 that nothing listens on (bound, then released).
    fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    fn write_executable(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// A repository with the compatibility spec, Playwright "installed", and a bin folder with
    /// a fake `npx` that prints its arguments and the two variables, then exits with `code`.
    fn compat_repo(code: i32) -> (tempfile::TempDir, OsString) {
        let root = tempfile::tempdir().unwrap();
        write_executable(&root.path().join(COMPAT_SPEC), "test('home', () => {});\n");
        write_executable(
            &root.path().join("node_modules/.bin/playwright"),
            "#!/bin/sh\n",
        );
        let bin = root.path().join("fake-bin");
        write_executable(
            &bin.join("npx"),
            &format!(
                "#!/bin/sh\necho \"npx $*\"\necho \"in $(pwd)\"\n\
                 echo \"base=$PLAYWRIGHT_BASE_URL skip=$SMOKE_SKIP_WEBSERVER\" >&2\nexit {code}\n"
            ),
        );
        (root, bin.into_os_string())
    }

    #[tokio::test]
    async fn a_passing_command_runs_in_the_root_and_is_logged() {
        let root = tempfile::tempdir().unwrap();
        let spec = spec(
            root.path(),
            Some("pwd; echo ok >&2"),
            Duration::from_secs(30),
        );
        let (outcome, lines) = smoke(&spec, &[], None).await;
        assert!(
            matches!(outcome, SmokeOutcome::Passed { .. }),
            "{outcome:?}"
        );
        assert!(!outcome.is_failure());
        let pwd = fs::canonicalize(root.path()).unwrap();
        assert!(lines.contains(&pwd.display().to_string()), "{lines:?}");
        assert!(lines.contains(&"ok".to_owned()));
        let log = fs::read_to_string(&spec.log_path).unwrap();
        let log: Vec<&str> = log.lines().collect();
        assert_eq!(log.len(), 4, "{log:?}");
        assert!(
            log[0].starts_with("# ") && log[0].ends_with(" pwd; echo ok >&2"),
            "{}",
            log[0]
        );
        assert!(log.contains(&"ok"));
        assert!(log[3].starts_with("# smoke tests passed in "), "{}", log[3]);
    }

    #[tokio::test]
    async fn a_failing_command_is_a_failure_with_its_tail() {
        let root = tempfile::tempdir().unwrap();
        let spec = spec(
            root.path(),
            Some("echo 1 passed; echo 1 failed; exit 2"),
            Duration::from_secs(30),
        );
        let (outcome, _) = smoke(&spec, &[], None).await;
        let SmokeOutcome::Failed {
            code, signal, tail, ..
        } = &outcome
        else {
            panic!("{outcome:?}")
        };
        assert_eq!((*code, *signal), (Some(2), None));
        assert_eq!(tail, "1 passed\n1 failed");
        assert!(outcome.is_failure());
        assert!(outcome
            .describe()
            .starts_with("smoke tests failed (exit 2) after "));
    }

    #[tokio::test]
    async fn a_slow_command_times_out() {
        let root = tempfile::tempdir().unwrap();
        let spec = spec(root.path(), Some("sleep 30"), Duration::from_millis(300));
        let (outcome, _) = smoke(&spec, &[], None).await;
        assert_eq!(
            outcome,
            SmokeOutcome::TimedOut {
                after: Duration::from_millis(300)
            }
        );
        assert!(outcome.is_failure());
        let log = fs::read_to_string(&spec.log_path).unwrap();
        assert!(
            log.ends_with("# smoke tests timed out after 0.3s\n"),
            "{log}"
        );
    }

    #[tokio::test]
    async fn a_log_that_cannot_be_written_is_said_once_and_does_not_fail() {
        let root = tempfile::tempdir().unwrap();
        fs::write(root.path().join("file"), "").unwrap();
        let mut spec = spec(root.path(), Some("echo a; echo b"), Duration::from_secs(30));
        spec.log_path = root.path().join("file/smoke.log");
        let (outcome, lines) = smoke(&spec, &[], None).await;
        assert!(
            matches!(outcome, SmokeOutcome::Passed { .. }),
            "{outcome:?}"
        );
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(lines[0].starts_with("baton: smoke log ") && lines[0].contains("not written"));
        assert_eq!(&lines[1..], ["a", "b"]);
    }

    #[tokio::test]
    async fn without_a_command_or_the_spec_file_it_is_skipped() {
        let root = tempfile::tempdir().unwrap();
        let (outcome, lines) =
            smoke(&spec(root.path(), None, Duration::from_secs(30)), &[], None).await;
        assert_eq!(
            outcome,
            SmokeOutcome::Skipped {
                reason: "no smoke command configured and no tests/SMOKE01-critical-paths.spec.ts"
                    .into()
            }
        );
        assert!(lines.is_empty());
        assert_eq!(
            outcome.describe(),
            "smoke tests skipped: no smoke command configured and no \
             tests/SMOKE01-critical-paths.spec.ts"
        );
    }

    #[tokio::test]
    async fn the_default_is_skipped_when_no_server_answers() {
        let (root, bin) = compat_repo(0);
        let port = free_port();
        let (outcome, _) = smoke(
            &spec(root.path(), None, Duration::from_secs(30)),
            &[port],
            Some(&bin),
        )
        .await;
        assert_eq!(
            outcome,
            SmokeOutcome::Skipped {
                reason: format!("no server answering on localhost:{port}")
            }
        );
        assert!(
            !root.path().join(".baton").exists(),
            "a skipped smoke run writes no log"
        );
    }

    #[tokio::test]
    async fn the_default_is_skipped_without_npx_or_playwright() {
        let (root, bin) = compat_repo(0);
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = server.local_addr().unwrap().port();
        let spec = spec(root.path(), None, Duration::from_secs(30));
        let empty = root.path().join("empty-bin");
        fs::create_dir(&empty).unwrap();
        let (outcome, _) = smoke(&spec, &[port], Some(empty.as_os_str())).await;
        assert_eq!(
            outcome,
            SmokeOutcome::Skipped {
                reason: "npx not found".into()
            }
        );
        let (outcome, _) = smoke(&spec, &[port], None).await;
        assert_eq!(
            outcome,
            SmokeOutcome::Skipped {
                reason: "npx not found".into()
            }
        );

        fs::remove_dir_all(root.path().join("node_modules")).unwrap();
        let (outcome, _) = smoke(&spec, &[port], Some(&bin)).await;
        let SmokeOutcome::Skipped { reason } = outcome else {
            panic!("{outcome:?}")
        };
        assert!(
            reason.starts_with("Playwright is not installed"),
            "{reason}"
        );
    }

    #[tokio::test]
    async fn the_default_runs_playwright_against_the_first_port_that_answers() {
        let (root, bin) = compat_repo(0);
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = server.local_addr().unwrap().port();
        let ports = [free_port(), port];
        let spec = spec(root.path(), None, Duration::from_secs(30));
        let (outcome, lines) = smoke(&spec, &ports, Some(&bin)).await;
        assert!(
            matches!(outcome, SmokeOutcome::Passed { .. }),
            "{outcome:?} {lines:?}"
        );
        assert!(lines.contains(
            &"npx playwright test tests/SMOKE01-critical-paths.spec.ts --reporter=list --project=chromium"
                .to_owned()
        ), "{lines:?}");
        let pwd = fs::canonicalize(root.path()).unwrap();
        assert!(
            lines.contains(&format!("in {}", pwd.display())),
            "{lines:?}"
        );
        assert!(
            lines.contains(&format!("base=http://localhost:{port} skip=true")),
            "{lines:?}"
        );
        let log = fs::read_to_string(&spec.log_path).unwrap();
        assert!(
            log.lines().next().unwrap().contains(&format!(
                "PLAYWRIGHT_BASE_URL=http://localhost:{port} SMOKE_SKIP_WEBSERVER=true "
            )),
            "{log}"
        );
    }

    #[tokio::test]
    async fn a_failing_default_run_is_a_failure() {
        let (root, bin) = compat_repo(1);
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = server.local_addr().unwrap().port();
        let (outcome, _) = smoke(
            &spec(root.path(), None, Duration::from_secs(30)),
            &[port],
            Some(&bin),
        )
        .await;
        assert!(
            matches!(outcome, SmokeOutcome::Failed { code: Some(1), .. }),
            "{outcome:?}"
        );
    }

    #[test]
    fn the_real_ports_read_as_a_range() {
        assert_eq!(port_list(&COMPAT_PORTS), "3000-3002");
        assert_eq!(port_list(&[3000, 8080]), "3000, 8080");
        assert_eq!(port_list(&[4000]), "4000");
    }

    #[test]
    fn describes_every_outcome() {
        let d = Duration::from_millis(12_400);
        assert_eq!(
            SmokeOutcome::Passed { duration: d }.describe(),
            "smoke tests passed in 12s"
        );
        let killed = SmokeOutcome::Failed {
            code: None,
            signal: Some(9),
            duration: d,
            tail: String::new(),
        };
        assert_eq!(
            killed.describe(),
            "smoke tests failed (killed by signal 9) after 12s"
        );
        let unstarted = SmokeOutcome::Failed {
            code: None,
            signal: None,
            duration: d,
            tail: "x".into(),
        };
        assert_eq!(
            unstarted.describe(),
            "smoke tests failed (could not start) after 12s"
        );
        assert_eq!(
            SmokeOutcome::TimedOut {
                after: Duration::from_secs(300)
            }
            .describe(),
            "smoke tests timed out after 5m 00s"
        );
    }
}
