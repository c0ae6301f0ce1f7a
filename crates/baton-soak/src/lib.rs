//! baton-soak: runs the real `baton` on a seeded plan with a faulty fake agent, kills it at
//! seeded instants (`kill -9`, SIGTERM, a double Ctrl+C to its whole process group), restarts it
//! until the plan is done, and checks after every interruption that nothing was lost, nothing
//! was done twice, nothing outlived baton and no attempt was spent on a limit or a kill.
//!
//! Everything random comes from the seed: the same seed replays the same plan, the same faults
//! and the same kill schedule (the instants land on different work when the machine is busier,
//! so a violation found by a seed is likely, not certain, to recur with it).

pub mod check;
pub mod design;
pub mod procs;
pub mod rng;

use std::fmt::Write as _;
use std::fs::File;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use check::{finding, Checker, Finding, Phase, EXIT, PROCESS};
use design::{Design, Mode};
use rng::Rng;

/// The variable that marks every process of a soak run (inherited by everything baton starts).
pub const TOKEN_VAR: &str = "BATON_SOAK_RUN";

/// Fast policies, so waits (backoff, breaker, limits, throttling) take a fraction of a second;
/// a limit whose reset cannot be read waits half a second, not an hour.
fn config() -> String {
    format!("{}limit_fallback_seconds = 0.5\n", baton_testkit::FAST_CONFIG)
}

/// How long the run's processes may take to go after baton exited (the guard ends them
/// asynchronously; "within a few seconds" is the promise, and this machine may be loaded).
pub const SETTLE: Duration = Duration::from_secs(5);

#[derive(Clone, Debug)]
pub struct Config {
    pub tasks: usize,
    pub kills: usize,
    pub seed: u64,
    pub mode: Mode,
    pub jobs: u32,
    /// Kill instants are drawn uniformly from this range after each start.
    pub kill_min: Duration,
    pub kill_max: Duration,
    /// Give up (a violation) when the plan is not done after this many baton runs.
    pub max_runs: usize,
    /// The longest an uninterrupted run may take.
    pub run_timeout: Duration,
    /// How long baton may take to stop after SIGTERM or a double Ctrl+C.
    pub stop_timeout: Duration,
    pub baton: PathBuf,
    pub fake_claude: PathBuf,
    /// Keep the temporary folder (its path is in the report).
    pub keep: bool,
    /// Keep it when a violation was found.
    pub keep_on_violation: bool,
    /// Extra arguments for every baton run (e.g. `--allow-dirty`).
    pub extra_args: Vec<String>,
    /// Print each run and kill as it happens.
    pub verbose: bool,
}

impl Config {
    pub fn new(baton: PathBuf, fake_claude: PathBuf) -> Config {
        Config {
            tasks: 200,
            kills: 50,
            seed: 1,
            mode: Mode::Run,
            jobs: 3,
            kill_min: Duration::from_millis(100),
            kill_max: Duration::from_millis(1500),
            max_runs: 0,
            run_timeout: Duration::from_secs(900),
            stop_timeout: Duration::from_secs(60),
            baton,
            fake_claude,
            keep: false,
            keep_on_violation: false,
            extra_args: Vec::new(),
            verbose: false,
        }
    }

    /// The command line that replays this soak.
    pub fn replay(&self) -> String {
        let mode = match self.mode {
            Mode::Run => String::new(),
            Mode::Parallel => format!(" --parallel --jobs {}", self.jobs),
            Mode::Pipeline => " --pipeline".into(),
        };
        format!(
            "cargo run -p baton-soak --release -- --tasks {} --kills {} --seed {}{mode}",
            self.tasks, self.kills, self.seed
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Interrupt {
    Kill,
    Term,
    DoubleInt,
}

impl Interrupt {
    fn label(self) -> &'static str {
        match self {
            Interrupt::Kill => "SIGKILL",
            Interrupt::Term => "SIGTERM",
            Interrupt::DoubleInt => "double SIGINT to the process group",
        }
    }
}

/// One broken invariant, where it was first seen.
#[derive(Clone, Debug)]
pub struct Violation {
    pub finding: Finding,
    /// The check (1-based) that first saw it, and what had just happened.
    pub check: usize,
    pub when: String,
    /// How many checks saw it.
    pub times: usize,
}

#[derive(Debug, Default)]
pub struct Report {
    pub seed: u64,
    pub replay: String,
    pub mode: String,
    pub tasks: usize,
    pub added_tasks: usize,
    pub runs: usize,
    pub planned_interrupts: usize,
    pub kills: usize,
    pub sigterms: usize,
    /// SIGTERMs or SIGINTs that ended baton before it printed anything (no handler yet).
    pub early_deaths: usize,
    pub double_sigints: usize,
    pub checks: usize,
    pub agent_runs: usize,
    pub completed: usize,
    pub failed: usize,
    pub scripted_failures: usize,
    pub faults: Vec<(String, usize)>,
    pub violations: Vec<Violation>,
    /// baton's own warnings and errors over all runs (text, count), most frequent first: often
    /// the cause of a violation.
    pub warnings: Vec<(String, usize)>,
    pub elapsed: Duration,
    pub kept: Option<PathBuf>,
}

impl Report {
    pub fn interrupts(&self) -> usize {
        self.kills + self.sigterms + self.double_sigints
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "baton-soak: seed {}, {} mode, {} tasks (+{} added by agents)",
            self.seed, self.mode, self.tasks, self.added_tasks
        );
        let faults: Vec<String> = self.faults.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let _ = writeln!(s, "  faults scripted: {}", faults.join(", "));
        let _ = writeln!(
            s,
            "  baton runs {} · restarts {} · kill -9 {} · SIGTERM {} · double SIGINT {} · invariant checks {} · agent runs {} · {:.1}s",
            self.runs,
            self.runs.saturating_sub(1),
            self.kills,
            self.sigterms,
            self.double_sigints,
            self.checks,
            self.agent_runs,
            self.elapsed.as_secs_f64()
        );
        let _ = writeln!(
            s,
            "  end state: {} completed, {} failed ({} scripted to fail for good)",
            self.completed, self.failed, self.scripted_failures
        );
        let _ = writeln!(
            s,
            "  interrupts delivered {} of {} planned{}{}",
            self.interrupts(),
            self.planned_interrupts,
            if self.interrupts() < self.planned_interrupts { " (the plan was done first)" } else { "" },
            if self.early_deaths > 0 { format!("; {} stopped baton before it printed anything", self.early_deaths) } else { String::new() }
        );
        if self.violations.is_empty() {
            let _ = writeln!(s, "violations: 0");
        } else {
            let mut kinds: Vec<(&str, usize)> = Vec::new();
            for v in &self.violations {
                match kinds.iter_mut().find(|(k, _)| *k == v.finding.kind) {
                    Some((_, n)) => *n += 1,
                    None => kinds.push((v.finding.kind, 1)),
                }
            }
            let tally: Vec<String> = kinds.iter().map(|(k, n)| format!("{k}: {n}")).collect();
            let _ = writeln!(s, "violations: {} ({})", self.violations.len(), tally.join(", "));
            for v in &self.violations {
                let _ = writeln!(
                    s,
                    "  - [{}] {}: {}\n      first at check {} ({}), seen at {} check(s); seed {}",
                    v.finding.kind, v.finding.at, v.finding.what, v.check, v.when, v.times, self.seed
                );
            }
        }
        if !self.warnings.is_empty() {
            let _ = writeln!(s, "baton's warnings and errors ({} distinct; most frequent first):", self.warnings.len());
            for (text, n) in self.warnings.iter().take(10) {
                let _ = writeln!(s, "  {n}× {text}");
            }
        }
        if let Some(dir) = &self.kept {
            let _ = writeln!(s, "kept: {}", dir.display());
        }
        let _ = writeln!(s, "replay: {}", self.replay);
        s
    }
}

#[derive(Debug)]
pub enum SoakError {
    Setup(String),
}

impl std::fmt::Display for SoakError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SoakError::Setup(m) => write!(f, "cannot set up the soak: {m}"),
        }
    }
}

impl std::error::Error for SoakError {}

fn setup(what: impl std::fmt::Display) -> SoakError {
    SoakError::Setup(what.to_string())
}

struct Soak<'a> {
    cfg: &'a Config,
    design: Design,
    repo: PathBuf,
    state: PathBuf,
    token: String,
    report: Report,
    violations: Vec<Violation>,
    /// The last run ended the plan (false until then, and when the supervisor gives up).
    finished: bool,
}

/// Runs one soak to its end.
pub fn run(cfg: &Config) -> Result<Report, SoakError> {
    let started = Instant::now();
    let dir = tempfile::Builder::new().prefix("baton-soak-").tempdir().map_err(setup)?;
    let repo = dir.path().join("repo");
    let state = dir.path().join("state");
    std::fs::create_dir_all(&repo).map_err(setup)?;
    std::fs::create_dir_all(&state).map_err(setup)?;
    let design = Design::generate(cfg.seed, cfg.mode, cfg.tasks);
    let token = format!(
        "{}-{}-{}",
        cfg.seed,
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
    );
    let mut soak = Soak { cfg, design, repo, state, token, report: Report::default(), violations: Vec::new(), finished: false };
    soak.prepare()?;
    soak.report.planned_interrupts = cfg.kills;
    soak.supervise();
    soak.summarize();
    soak.report.elapsed = started.elapsed();
    soak.report.violations = std::mem::take(&mut soak.violations);
    if cfg.keep || (cfg.keep_on_violation && !soak.report.violations.is_empty()) {
        soak.report.kept = Some(dir.keep());
    }
    Ok(soak.report)
}

impl Soak<'_> {
    fn prepare(&mut self) -> Result<(), SoakError> {
        let d = &self.design;
        let write = |rel: &str, text: &str| -> Result<(), SoakError> {
            let path = self.repo.join(rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(setup)?;
            }
            std::fs::write(&path, text).map_err(|e| setup(format!("{}: {e}", path.display())))
        };
        write("baton.toml", &config())?;
        write("README.md", "A throw-away repository of baton-soak.\n")?;
        for f in 0..design::SHARED_FILES {
            write(&design::shared_file(f), &d.shared_file_text())?;
        }
        for (p, spec) in d.plans.iter().enumerate() {
            match &spec.item {
                Some((item, _)) => write(item, &d.item_text(p))?,
                None => write(&spec.path, &d.plan_yaml(p))?,
            }
        }
        let scenario = serde_json::to_string_pretty(&d.scenario()).map_err(setup)?;
        std::fs::write(self.state.join("scenario.json"), scenario).map_err(setup)?;
        for args in [
            &["init", "-q"][..],
            &["config", "user.email", "soak@example.invalid"],
            &["config", "user.name", "baton-soak"],
            &["config", "commit.gpgsign", "false"],
            &["add", "-A"],
            &["commit", "-q", "-m", "soak: initial"],
        ] {
            let o = Command::new("git").args(args).current_dir(&self.repo).stdin(Stdio::null()).output().map_err(setup)?;
            if !o.status.success() {
                return Err(setup(format!("git {args:?}: {}", String::from_utf8_lossy(&o.stderr))));
            }
        }
        self.report.seed = self.cfg.seed;
        self.report.replay = self.cfg.replay();
        self.report.mode = format!("{:?}", self.cfg.mode).to_lowercase();
        self.report.tasks = d.tasks.iter().filter(|t| t.added_by.is_none()).count();
        self.report.added_tasks = d.tasks.len() - self.report.tasks;
        self.report.scripted_failures = d.tasks.iter().filter(|t| t.permanent).count();
        let mut faults: Vec<(String, usize)> = Vec::new();
        let mut bump = |k: String| match faults.iter_mut().find(|(name, _)| *name == k) {
            Some((_, n)) => *n += 1,
            None => faults.push((k, 1)),
        };
        for t in &d.tasks {
            for f in &t.faults {
                bump(format!("{f:?}").to_lowercase());
            }
            if t.permanent {
                bump("fails for good".into());
            }
            if let Some(e) = t.escape {
                bump(format!("escape {e:?}").to_lowercase());
            }
            if !t.commit {
                bump("uncommitted work".into());
            }
            if t.slot.as_ref().is_some_and(|(_, n)| *n == design::HOT_LINE) {
                bump("same-line edit".into());
            } else if t.slot.is_some() {
                bump("different-line edit".into());
            }
            if t.adds.is_some() {
                bump("plan: task added".into());
            }
            if t.revises.is_some() {
                bump("plan: description revised".into());
            }
            if (t.adds.is_some() || t.revises.is_some()) && !t.plan_modified {
                bump("plan edit unannounced".into());
            }
        }
        self.report.faults = faults;
        Ok(())
    }

    fn command(&self, log: &Path) -> Result<Command, SoakError> {
        let mut cmd = Command::new(&self.cfg.baton);
        match self.cfg.mode {
            Mode::Run => cmd.args(["run", "plan.yaml", "--skip-smoke"]),
            Mode::Parallel => {
                cmd.args(["run", "plan.yaml", "--skip-smoke", "--parallel", "--jobs"]).arg(self.cfg.jobs.to_string())
            }
            Mode::Pipeline => cmd.args(["pipeline", "--once"]),
        };
        cmd.args(&self.cfg.extra_args);
        let out = File::create(log).map_err(setup)?;
        let err = out.try_clone().map_err(setup)?;
        cmd.current_dir(&self.repo)
            .env("NO_COLOR", "1")
            .env("COLUMNS", "100")
            .env("TZ", "UTC")
            .env("IS_SANDBOX", "1")
            .env("BATON_CLAUDE_BIN", &self.cfg.fake_claude)
            .env("BATON_FAKE_SCENARIO", self.state.join("scenario.json"))
            .env("BATON_FAKE_STATE", &self.state)
            .env("BATON_FAKE_MAX_HANG_SECS", "60")
            .env(TOKEN_VAR, &self.token)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            // Its own process group, as a shell gives a foreground job: a double SIGINT goes to
            // the whole group, as a terminal's Ctrl+C does.
            .process_group(0);
        Ok(cmd)
    }

    fn violation(&mut self, finding: Finding, when: &str) {
        if let Some(v) = self.violations.iter_mut().find(|v| v.finding == finding) {
            v.times += 1;
            return;
        }
        if self.cfg.verbose {
            eprintln!("  VIOLATION {}: {} ({when})", finding.at, finding.what);
        }
        self.violations.push(Violation { finding, check: self.report.checks + 1, when: when.to_owned(), times: 1 });
    }

    fn supervise(&mut self) {
        let mut kill_rng = Rng::new(self.cfg.seed).fork(2);
        // Each interrupted run may end before it did anything; in pipeline mode each
        // `--once` takes one item at most, so every item needs a run of its own too.
        let items = self.design.plans.iter().filter(|p| p.item.is_some()).count();
        let max_runs = if self.cfg.max_runs == 0 { self.cfg.kills + items + 10 } else { self.cfg.max_runs };
        let mut interrupts = 0;
        let mut unexpected_in_a_row = 0;
        loop {
            if self.cfg.mode == Mode::Pipeline && self.items_left() == 0 {
                self.finished = true;
                break;
            }
            if self.report.runs >= max_runs {
                let finding = finding(EXIT, format!("the plan is not done after {} baton runs", self.report.runs), "supervisor");
                self.violation(finding, "end");
                break;
            }
            self.report.runs += 1;
            let run_no = self.report.runs;
            let log = self.state.join(format!("baton-{run_no}.log"));
            let mut child = match self.command(&log).and_then(|mut c| c.spawn().map_err(setup)) {
                Ok(child) => child,
                Err(e) => {
                    self.violation(finding(EXIT, format!("cannot start baton: {e}"), "supervisor"), "start");
                    break;
                }
            };
            let delay = (interrupts < self.cfg.kills).then(|| {
                let lo = self.cfg.kill_min.as_millis() as u64;
                let hi = self.cfg.kill_max.as_millis() as u64;
                Duration::from_millis(kill_rng.range(lo, hi.max(lo)))
            });
            let kind = match kill_rng.below(100) {
                0..=69 => Interrupt::Kill,
                70..=84 => Interrupt::Term,
                _ => Interrupt::DoubleInt,
            };
            let gap = Duration::from_millis(kill_rng.range(20, 400));
            let mut sent = None;
            let status = match delay.and_then(|d| wait(&mut child, d).is_none().then_some(d)) {
                Some(_) => {
                    interrupts += 1;
                    sent = Some(kind);
                    self.interrupt(&mut child, kind, gap, run_no)
                }
                None => match wait(&mut child, self.cfg.run_timeout) {
                    Some(status) => Some(status),
                    None => {
                        let finding = finding(
                            EXIT,
                            format!("baton did not finish within {}s", self.cfg.run_timeout.as_secs()),
                            format!("run {run_no}, log {}", log.display()),
                        );
                        self.violation(finding, &format!("run {run_no}"));
                        procs::kill_group(child.id(), libc::SIGKILL);
                        wait(&mut child, Duration::from_secs(30))
                    }
                },
            };
            let when = match sent {
                Some(k) => format!("after {} #{interrupts}, run {run_no}", k.label()),
                None => format!("after run {run_no} ended by itself"),
            };
            if self.cfg.verbose {
                eprintln!("run {run_no}: {when}: {}", describe(status));
            }
            self.settle(&when);
            let code = status.and_then(|s| s.code());
            let ended_by_itself = sent.is_none();
            let finished = ended_by_itself && matches!(code, Some(0 | 1 | 3));
            if ended_by_itself && !finished {
                unexpected_in_a_row += 1;
                let finding =
                    finding(EXIT, format!("baton exited {} by itself: {}", describe(status), log_tail(&log)), format!("run {run_no}"));
                self.violation(finding, &when);
            } else {
                unexpected_in_a_row = 0;
            }
            if let (Some(kind @ (Interrupt::Term | Interrupt::DoubleInt)), Some(status)) = (sent, status) {
                // Dying of the very signal before printing anything is a stop before baton's
                // handlers were installed: nothing had started.
                let early = status.signal().is_some() && log_tail(&log).is_empty();
                if early {
                    self.report.early_deaths += 1;
                }
                if !early && !matches!(status.code(), Some(0 | 1 | 3 | 4)) {
                    let finding = finding(
                        EXIT,
                        format!("after {} baton exited {} (expected 4, stopped): {}", kind.label(), describe(Some(status)), log_tail(&log)),
                        format!("run {run_no}"),
                    );
                    self.violation(finding, &when);
                }
            }
            let pipeline_more = self.cfg.mode == Mode::Pipeline && self.items_left() > 0;
            if finished && !pipeline_more {
                self.finished = true;
                break;
            }
            for f in self.checker().check(Phase::Interrupted) {
                self.violation(f, &when);
            }
            self.report.checks += 1;
            if unexpected_in_a_row >= 3 {
                break;
            }
        }
        for f in self.checker().check(Phase::Final) {
            self.violation(f, "final check");
        }
        self.report.checks += 1;
    }

    /// Delivers the interrupt and waits for baton to go.
    fn interrupt(&mut self, child: &mut Child, kind: Interrupt, gap: Duration, run_no: usize) -> Option<ExitStatus> {
        match kind {
            Interrupt::Kill => {
                self.report.kills += 1;
                procs::kill(child.id(), libc::SIGKILL);
            }
            Interrupt::Term => {
                self.report.sigterms += 1;
                procs::kill(child.id(), libc::SIGTERM);
            }
            Interrupt::DoubleInt => {
                self.report.double_sigints += 1;
                procs::kill_group(child.id(), libc::SIGINT);
                if wait(child, gap).is_none() {
                    procs::kill_group(child.id(), libc::SIGINT);
                }
            }
        }
        let status = wait(child, self.cfg.stop_timeout);
        if status.is_some() {
            return status;
        }
        let finding = finding(
            EXIT,
            format!("baton did not stop within {}s of a {}", self.cfg.stop_timeout.as_secs(), kind.label()),
            format!("run {run_no}"),
        );
        self.violation(finding, &format!("{} in run {run_no}", kind.label()));
        procs::kill(child.id(), libc::SIGKILL);
        wait(child, Duration::from_secs(30))
    }

    /// Waits for every process of the run to go; what outlives the grace time is a violation
    /// (and is killed, so that it cannot disturb the next run).
    fn settle(&mut self, when: &str) {
        let started = Instant::now();
        let mut left = procs::run_processes(&self.token, &self.repo);
        while !left.is_empty() && started.elapsed() < SETTLE {
            thread::sleep(Duration::from_millis(50));
            left = procs::run_processes(&self.token, &self.repo);
        }
        for p in &left {
            let finding = finding(
                PROCESS,
                format!("a process of the run is alive {}s after baton exited", SETTLE.as_secs()),
                format!("{} (cwd {})", what_process(&p.cmdline), p.cwd.replace(&*self.repo.to_string_lossy(), "<repo>")),
            );
            self.violation(finding, when);
            procs::kill(p.pid, libc::SIGKILL);
        }
        if !left.is_empty() {
            let gone = Instant::now();
            while !procs::run_processes(&self.token, &self.repo).is_empty() && gone.elapsed() < SETTLE {
                thread::sleep(Duration::from_millis(50));
            }
        }
    }

    fn checker(&self) -> Checker<'_> {
        Checker {
            design: &self.design,
            root: &self.repo,
            state: &self.state,
            baton: &self.cfg.baton,
            finished: self.finished,
        }
    }

    fn items_left(&self) -> usize {
        self.design
            .plans
            .iter()
            .filter_map(|p| p.item.as_ref())
            .filter(|(item, _)| self.repo.join(item).exists())
            .count()
    }

    fn summarize(&mut self) {
        let repo = self.repo.to_string_lossy().into_owned();
        let mut warnings: Vec<(String, usize)> = Vec::new();
        for n in 1..=self.report.runs {
            let log = std::fs::read_to_string(self.state.join(format!("baton-{n}.log"))).unwrap_or_default();
            for line in log.lines().filter(|l| l.starts_with("warning:") || l.starts_with("error:")) {
                let text = procs::shorten(&line.replace(&repo, "<repo>"), 220);
                match warnings.iter_mut().find(|(t, _)| *t == text) {
                    Some((_, count)) => *count += 1,
                    None => warnings.push((text, 1)),
                }
            }
        }
        warnings.sort_by_key(|w| std::cmp::Reverse(w.1));
        self.report.warnings = warnings;
        let text = std::fs::read_to_string(self.state.join("invocations.jsonl")).unwrap_or_default();
        self.report.agent_runs = text.lines().count();
        for spec in &self.design.plans {
            let Ok(text) = std::fs::read_to_string(self.repo.join(&spec.path)) else { continue };
            let Ok(plan) = baton::plan::parse_plan(&text) else { continue };
            for t in plan.sections.iter().flat_map(|s| &s.tasks) {
                match t.status {
                    baton::plan::Status::Completed => self.report.completed += 1,
                    baton::plan::Status::Failed => self.report.failed += 1,
                    _ => {}
                }
            }
        }
    }
}

/// The same kind of process (e.g. `sleep 15`) is one violation, not one per pid.
fn what_process(cmdline: &str) -> String {
    if cmdline.is_empty() {
        "a process".into()
    } else {
        format!("`{cmdline}`")
    }
}

fn wait(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
            _ => return None,
        }
    }
}

fn describe(status: Option<ExitStatus>) -> String {
    match status {
        Some(s) => match (s.code(), s.signal()) {
            (Some(c), _) => format!("with code {c}"),
            (None, Some(sig)) => format!("by signal {sig}"),
            _ => "somehow".into(),
        },
        None => "(not reaped)".into(),
    }
}

/// The last lines baton printed, on one line.
fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(3)..].join(" | ");
    procs::shorten(&tail, 400)
}

/// `baton` and `fake-claude` of this workspace, built for the profile this program was built
/// with (`cargo run -p baton-soak` builds only this crate).
pub fn workspace_binaries() -> Result<(PathBuf, PathBuf), SoakError> {
    let exe = std::env::current_exe().map_err(setup)?;
    let mut dir = exe.parent().ok_or_else(|| setup("no executable folder"))?.to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let target = dir.parent().ok_or_else(|| setup("no target folder"))?;
    // Canonical: cargo keys its fingerprints on the path, and a `..` in it rebuilds everything.
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .map_err(|e| setup(format!("the workspace folder: {e}")))?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet", "-p", "baton", "-p", "baton-testkit", "--bin", "baton", "--bin", "fake-claude"])
        .arg("--target-dir")
        .arg(target)
        .current_dir(&workspace)
        .stdin(Stdio::null());
    if dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    // Under `cargo test` or `cargo run` the environment carries the outer build's variables
    // (`LD_LIBRARY_PATH` with build-script folders, `CARGO_PKG_*`…); some build scripts watch
    // them, and a different value rebuilds baton from scratch every time.
    for (key, _) in std::env::vars_os() {
        let key_text = key.to_string_lossy();
        let outer = (key_text.starts_with("CARGO_") && key_text != "CARGO_HOME")
            || matches!(&*key_text, "LD_LIBRARY_PATH" | "OUT_DIR" | "RUST_RECURSION_COUNT");
        if outer {
            cmd.env_remove(&key);
        }
    }
    let out = cmd.output().map_err(|e| setup(format!("cannot run cargo: {e}")))?;
    if !out.status.success() {
        return Err(setup(format!("cargo build failed: {}", String::from_utf8_lossy(&out.stderr).trim())));
    }
    Ok((dir.join("baton"), dir.join("fake-claude")))
}
