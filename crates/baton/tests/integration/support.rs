//! Helpers shared by the integration tests: a temporary git repository with baton and the
//! scripted fake agent wired in.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use baton_testkit::TempRepo;

pub fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/plans").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub const BATON: &str = env!("CARGO_BIN_EXE_baton");

/// Fast policies so scenario tests do not wait for real back-offs.
pub use baton_testkit::FAST_CONFIG;

/// A project with `plan` as `plan.yaml` and the fast policies, committed.
pub fn project(plan: &str) -> Project {
    let p = Project::new();
    p.write("plan.yaml", plan);
    p.write("baton.toml", FAST_CONFIG);
    p.repo.commit_all("plan");
    p
}

/// A temporary project: a git repository with one commit.
pub struct Project {
    pub repo: TempRepo,
    state: tempfile::TempDir,
}

impl Project {
    pub fn new() -> Project {
        let p = Project {
            repo: TempRepo::new(),
            state: tempfile::tempdir().expect("state dir"),
        };
        p.scenario("{}");
        p
    }

    pub fn path(&self) -> &Path {
        self.repo.path()
    }

    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        self.repo.write(rel, text);
        self.repo.join(rel)
    }

    pub fn read(&self, rel: &str) -> String {
        self.repo.read(rel)
    }

    /// Sets the fake agent's scenario.
    pub fn scenario(&self, json: &str) {
        let _: serde_json::Value = serde_json::from_str(json).expect("scenario is JSON");
        std::fs::write(self.state.path().join("scenario.json"), json).unwrap();
    }

    /// A baton command in the project, with the fake agent and no inherited agent settings.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BATON);
        cmd.args(args)
            .current_dir(self.path())
            .env("NO_COLOR", "1")
            .env("COLUMNS", "100")
            .env("TZ", "UTC")
            .env("BATON_CLAUDE_BIN", baton_testkit::fake_claude_bin())
            .env("BATON_FAKE_SCENARIO", self.state.path().join("scenario.json"))
            .env("BATON_FAKE_STATE", self.state.path())
            .env("BATON_FAKE_MAX_HANG_SECS", "120")
            .env("IS_SANDBOX", "1")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs baton to its end (killed after a generous deadline so a hang fails the test).
    pub fn baton(&self, args: &[&str]) -> Run {
        let out = baton_testkit::run_with_deadline(&mut self.command(args), Duration::from_secs(120))
            .expect("run baton");
        assert!(!out.timed_out, "baton {args:?} did not finish:\n{}\n{}", out.stdout, out.stderr);
        Run(Output {
            status: out.status,
            stdout: out.stdout.into_bytes(),
            stderr: out.stderr.into_bytes(),
        })
    }

    /// Starts baton in the background, output captured to files (read with `log`).
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.spawn_named("baton", args)
    }

    /// Starts a second baton beside the first, its output in files of its own (`log_of(name)`).
    pub fn spawn_named(&self, name: &str, args: &[&str]) -> Child {
        let out = std::fs::File::create(self.state.path().join(format!("{name}.out"))).unwrap();
        let err = std::fs::File::create(self.state.path().join(format!("{name}.err"))).unwrap();
        self.command(args).stdout(out).stderr(err).spawn().expect("spawn baton")
    }

    /// What the baton spawned as `name` printed so far (stdout then stderr).
    pub fn log_of(&self, name: &str) -> String {
        let o = std::fs::read_to_string(self.state.path().join(format!("{name}.out"))).unwrap_or_default();
        let e = std::fs::read_to_string(self.state.path().join(format!("{name}.err"))).unwrap_or_default();
        format!("{o}{e}")
    }

    /// What a spawned baton printed so far (stdout then stderr).
    pub fn log(&self) -> String {
        self.log_of("baton")
    }

    /// How many times the fake agent was started.
    pub fn invocations(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.state.path().join("invocations.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// A path in the fake agent's state folder (outside the repository): for barrier files
    /// (`mark`/`wait_for`) and what the agent records there.
    pub fn state_path(&self, name: &str) -> PathBuf {
        self.state.path().join(name)
    }

    /// The attempt record baton wrote for `task`'s `session`-th agent run, as an absolute path
    /// (a barrier: it exists once baton has judged that run).
    pub fn record_path(&self, task: &str, session: u32) -> PathBuf {
        self.path().join(format!(".baton/logs/plan/{task}/attempt-{session}.json"))
    }

    pub fn pid_file(&self, name: &str) -> Option<u32> {
        std::fs::read_to_string(self.state.path().join(name)).ok()?.trim().parse().ok()
    }

    pub fn plan(&self) -> baton::plan::Plan {
        baton::plan::parse_plan(&self.read("plan.yaml")).expect("the plan stays valid")
    }
}

pub struct Run(pub Output);

impl Run {
    pub fn code(&self) -> i32 {
        self.0.status.code().expect("baton ended by a signal")
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout(), self.stderr())
    }
}

/// Waits for `cond` with a deadline; panics with `what` if it never holds.
pub fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    assert!(baton_testkit::wait_until(Duration::from_secs(60), &mut cond), "timed out waiting for {what}");
}

pub fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on a pid we started.
    unsafe {
        libc::kill(child.id() as libc::pid_t, sig);
    }
}

/// Waits for a child with a deadline; its exit code.
pub fn wait_exit(child: &mut Child) -> Option<i32> {
    let mut status = None;
    wait_for("baton to exit", || {
        status = child.try_wait().ok().flatten();
        status.is_some()
    });
    status.and_then(|s| s.code())
}

/// `script` (util-linux) running `baton ARGS` under a pseudo-terminal of `cols` × 40, in the
/// project with its environment and `TERM=xterm`. `args` is shell words, quoted by the caller.
pub fn on_a_pty(p: &Project, args: &str, cols: usize) -> Command {
    let mut cmd = Command::new("script");
    let baton = format!("'{}'", BATON.replace('\'', r"'\''"));
    cmd.args(["-qfec", &format!("stty cols {cols} rows 40; exec {baton} {args}"), "/dev/null"]).current_dir(p.path());
    for (k, v) in p.command(&[]).get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.env("TERM", "xterm");
    cmd
}

/// A baton under a pseudo-terminal we type into (Ctrl+C is the terminal's SIGINT), its output
/// (escapes and all) collected as it comes.
pub struct Pty {
    pub child: Child,
    stdin: Option<std::process::ChildStdin>,
    output: std::sync::Arc<std::sync::Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Pty {
    pub fn start(p: &Project, args: &str, cols: usize) -> Pty {
        use std::io::Read;
        let mut cmd = on_a_pty(p, args, cols);
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::null());
        let mut child = cmd.spawn().expect("run util-linux `script` (needed for a pseudo-terminal)");
        let stdin = child.stdin.take();
        let mut stdout = child.stdout.take().expect("piped stdout");
        let output = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = output.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap_or_else(|e| e.into_inner()).push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Pty { child, stdin, output, reader: Some(reader) }
    }

    /// What it wrote so far.
    pub fn text(&self) -> String {
        self.output.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Types `bytes` (b"\x03" is Ctrl+C).
    pub fn type_in(&mut self, bytes: &[u8]) {
        use std::io::Write;
        let stdin = self.stdin.as_mut().expect("the terminal's input is open");
        stdin.write_all(bytes).expect("type into the terminal");
        stdin.flush().expect("type into the terminal");
    }

    /// Once it has ended: everything it wrote.
    pub fn finish(mut self) -> String {
        drop(self.stdin.take());
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        self.text()
    }
}

/// How long a run of a real agent CLI may take before the test fails (generous: a hang must
/// fail the test, not wedge the suite; a good run takes a few seconds).
pub const REAL_RUN_DEADLINE: Duration = Duration::from_secs(120);

/// The status file the agents write, as the prompt names it.
pub const STATUS_FILE: &str = ".claude/plans/task-status.json";

/// A plan of one task that writes `one.txt`.
pub const ONE_TASK: &str = "meta:
  name: One step
  max_attempts_default: 3
sections:
- id: s1
  name: First
  tasks:
  - id: '1.1'
    name: One
    status: pending
    description: 'Write one.txt. Files: one.txt'
";

/// A real agent CLI (`found`) for an end-to-end test, or `None` to skip it, loudly. CI installs
/// them (`npm ci` in `.ci/run`): there a missing CLI is a broken set-up, and the test fails.
pub fn real_cli(found: Option<PathBuf>, title: &str) -> Option<PathBuf> {
    if found.is_none() {
        assert!(std::env::var_os("CI").is_none(), "CI is set but the real {title} is not installed (run npm ci)");
        eprintln!("skipped: real {title} not installed (run npm ci)");
    }
    found
}

/// A baton command in `p` for a real agent CLI: the environment starts empty (no key or HOME of
/// the machine running the tests can leak in) but for `PATH`, a plain terminal and UTC; the
/// caller adds what the CLI needs (baton passes it through).
pub fn real_command(p: &Project, args: &[&str]) -> Command {
    let mut cmd = Command::new(BATON);
    cmd.args(args)
        .current_dir(p.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("NO_COLOR", "1")
        .env("COLUMNS", "100")
        .env("TZ", "UTC")
        .stdin(Stdio::null());
    cmd
}

/// Runs `cmd` (a `baton` with a real agent CLI) to its end; a run past [`REAL_RUN_DEADLINE`]
/// fails the test, with `context` (what the fake servers saw).
pub fn run_real(cmd: &mut Command, args: &[&str], context: &dyn Fn() -> String) -> Run {
    let started = std::time::Instant::now();
    let out = baton_testkit::run_with_deadline(cmd, REAL_RUN_DEADLINE).expect("run baton");
    assert!(!out.timed_out, "baton {args:?} did not finish:\n{}\n{}\n{}", out.stdout, out.stderr, context());
    eprintln!("baton {args:?} with a real agent CLI took {:.1} s", started.elapsed().as_secs_f64());
    Run(Output { status: out.status, stdout: out.stdout.into_bytes(), stderr: out.stderr.into_bytes() })
}
