//! `baton pipeline`: watch the backlog folders, and for each item in turn make (or resume) its
//! plan and run it with the same engine as `baton run`, in this process, one plan at a time;
//! archive the item when its plan completes.
//!
//! File-system events wake the daemon at once; a periodic scan is the safety net. An item is
//! read only once it has been quiet for a moment, so a file still being written is never read
//! half-way.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use notify::{RecursiveMode, Watcher};
use tokio::sync::watch;

use super::backlog::{self, Item};
use super::create::{Created, Planner};
use crate::config::Config;
use crate::exit::Exit;
use crate::git;
use crate::report::event::Reporter;
use crate::report::terminal::run_reporter;
use crate::run::lock::PlanLock;
use crate::run::record::{self, Records};
use crate::run::stop::{self, Stop};
use crate::run::RunOptions;

/// How long an item must be unchanged before it is read.
const QUIET: Duration = Duration::from_millis(300);

#[derive(Debug, Clone, Default)]
pub struct PipelineOptions {
    pub once: bool,
    pub dry_run: bool,
    pub verbose: bool,
}

pub fn run(opts: PipelineOptions) -> Exit {
    crate::exit::block_on(daemon(opts))
}

/// How processing one item ended.
enum Done {
    Completed,
    Failed(Exit),
    Stopped,
    /// The environment is broken: stop the daemon.
    Broken,
}

async fn daemon(opts: PipelineOptions) -> Exit {
    let root = crate::root::repo_root(Path::new("."));
    let config = match Config::load(&root) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}\n  help: fix or remove this setting (see README.md, \"Configuration\")");
            return Exit::InvalidInput;
        }
    };
    let folders = [config.pipeline.defect_backlog.clone(), config.pipeline.feature_backlog.clone()];
    if opts.dry_run {
        return dry_run(&root, &config);
    }
    let agent = match crate::agent::for_config(&config, &root, false) {
        Ok(a) => a,
        Err(message) => {
            eprintln!("{message}");
            return Exit::InvalidInput;
        }
    };
    let logs_dir = root.join(&config.paths.logs_dir);
    if config.paths.logs_dir.starts_with(".baton") {
        record::ignore_logs_root(&root.join(".baton"));
    }
    let _lock = match PlanLock::acquire(&logs_dir.join("locks"), &root.join("baton-pipeline")) {
        Ok(l) => l,
        Err(_) => {
            eprintln!("error: another baton pipeline is already running in {}\n  help: stop it with `baton stop`", root.display());
            return Exit::InvalidInput;
        }
    };
    let records = Records::new(&logs_dir, Path::new("pipeline"));
    let reporter = run_reporter(opts.verbose, &records.dir().join("pipeline.log"));
    let mut stop = match stop::watch_fresh(root.join(&config.paths.stop_file), &reporter) {
        Ok(s) => s,
        Err(exit) => return exit,
    };
    let guard_exe = match stop::guard_exe() {
        Ok(p) => p,
        Err(exit) => return exit,
    };

    // Wake on any change in the folders; the scan decides what it means.
    let (tx, mut events) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut watcher = match notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if res.is_ok() {
            let _ = tx.send(());
        }
    }) {
        Ok(w) => Some(w),
        Err(e) => {
            reporter.warn(format!("file-system notifications are unavailable ({e}); relying on the periodic scan"));
            None
        }
    };
    for dir in &folders {
        let abs = root.join(dir);
        if let Err(e) = std::fs::create_dir_all(&abs) {
            reporter.warn(format!("cannot create {}: {e}", abs.display()));
        }
        if let Some(w) = watcher.as_mut() {
            if let Err(e) = w.watch(&abs, RecursiveMode::NonRecursive) {
                reporter.warn(format!("cannot watch {}: {e}; relying on the periodic scan", abs.display()));
            }
        }
    }

    let mut planner = Planner {
        root: root.clone(),
        config: config.clone(),
        agent,
        reporter: reporter.clone(),
        stop: stop.clone(),
        guard_exe,
        records,
    };
    let scan_every = Duration::from_secs_f64(config.pipeline.scan_interval_seconds);
    let mut failed: HashSet<PathBuf> = HashSet::new();
    let mut idle_line = String::new();
    let exit = loop {
        if *stop.borrow() != Stop::Running {
            reporter.decision("STOP", "stop requested: the pipeline ends");
            break Exit::Stopped;
        }
        let (items, _) = backlog::scan(&root, &folders[0], &folders[1], &failed);
        let now = SystemTime::now();
        let quiet_at = |i: &Item| i.modified.map(|m| m + QUIET);
        let ready = items.iter().find(|i| quiet_at(i).is_none_or(|q| q <= now)).cloned();
        if let Some(item) = ready {
            idle_line.clear();
            match process(&root, &config, &opts, &mut planner, &reporter, &stop, &item).await {
                Done::Completed if opts.once => break Exit::Completed,
                Done::Completed => {}
                Done::Failed(code) => {
                    failed.insert(item.path.clone());
                    if opts.once {
                        break code;
                    }
                }
                Done::Stopped => break Exit::Stopped,
                Done::Broken => break Exit::InvalidInput,
            }
            continue;
        }
        if opts.once && items.is_empty() {
            reporter.decision("PIPELINE", "nothing to do: no backlog item is waiting");
            break Exit::Completed;
        }
        let line = format!("watching {} folders, {} item{} waiting", folders.len(), items.len(), if items.len() == 1 { "" } else { "s" });
        if line != idle_line {
            reporter.decision("PIPELINE", line.clone());
            idle_line = line;
        }
        // Sleep until something changes, a young item turns quiet, or the safety scan is due.
        let young = items.iter().filter_map(quiet_at).filter(|q| *q > now).min();
        let wait = young.and_then(|q| q.duration_since(now).ok()).map_or(scan_every, |d| d.min(scan_every));
        tokio::select! {
            _ = events.recv() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => {}
        }
    };
    drop(watcher);
    reporter.finish();
    exit
}

async fn process(
    root: &Path,
    config: &Config,
    opts: &PipelineOptions,
    planner: &mut Planner,
    reporter: &Reporter,
    stop: &watch::Receiver<Stop>,
    item: &Item,
) -> Done {
    let started = std::time::Instant::now();
    let plan_rel = item.plan_path(&config.paths.plans_dir);
    let today = jiff::Timestamp::now().to_zoned_datetime(jiff::tz::TimeZone::system()).date();
    let design_rel = item.design_path(today);
    let plan_abs = root.join(&plan_rel);
    reporter.decision("PIPELINE", format!("{} {}: picked up", item.kind.as_str(), item.path.display()));
    let book = Bookkeeping::new(root, config, item);
    if let Some(owner) = book.owner().filter(|o| *o != item.path) {
        fail(root, config, reporter, item, &format!(
            "its plan {} belongs to another backlog item, {}; rename this item so its file name differs",
            plan_rel.display(),
            owner.display()
        ));
        return Done::Failed(Exit::InvalidInput);
    }
    if plan_abs.exists() && book.planning_unfinished() {
        // The planning session was killed, stopped or rejected: its plan was never accepted.
        let aside = plan_abs.with_extension(format!("yaml.unfinished-{}", jiff::Timestamp::now().strftime("%Y%m%dT%H%M%S")));
        match std::fs::rename(&plan_abs, &aside) {
            Ok(()) => reporter.decision("PIPELINE", format!("{}: its plan was never accepted; kept it as {} and planning again", item.path.display(), aside.display())),
            Err(e) => {
                fail(root, config, reporter, item, &format!("cannot move its unaccepted plan aside: {e}"));
                return Done::Failed(Exit::InvalidInput);
            }
        }
    }
    if plan_abs.exists() {
        reporter.decision("PIPELINE", format!("{}: resuming its plan {}", item.path.display(), plan_rel.display()));
    } else {
        reporter.decision("PIPELINE", format!("{}: asking the agent for {} and {}", item.path.display(), design_rel.display(), plan_rel.display()));
        book.start_planning();
        match planner.create(item, &plan_rel, &design_rel).await {
            Created::Ok => {
                book.accept();
                reporter.decision("PIPELINE", format!("{}: plan {} written and valid", item.path.display(), plan_rel.display()))
            }
            Created::Failed(why) => {
                fail(root, config, reporter, item, &why);
                return Done::Failed(Exit::TaskFailed);
            }
            Created::Systemic(why) => {
                eprintln!("error: {why}\nThe pipeline stopped; fix this, then start it again.");
                return Done::Broken;
            }
            Created::Stopped => return Done::Stopped,
        }
    }
    let exit = crate::run::run_plan(
        RunOptions {
            plan: plan_abs.clone(),
            verbose: opts.verbose,
            parallel: config.pipeline.parallel,
            ..RunOptions::default()
        },
        Some(stop.clone()),
    )
    .await;
    match exit {
        Exit::Completed => match archive(root, item, &plan_rel, &design_rel) {
            Ok(dest) => {
                reporter.decision(
                    "PIPELINE",
                    format!("{}: done in {}; archived to {}", item.path.display(), crate::report::event::human(started.elapsed()), dest.display()),
                );
                Done::Completed
            }
            Err(e) => {
                fail(root, config, reporter, item, &format!("its plan completed, but archiving failed: {e}"));
                Done::Failed(Exit::TaskFailed)
            }
        },
        Exit::Stopped => Done::Stopped,
        other => {
            fail(root, config, reporter, item, &format!("its plan {} ended with exit code {}", plan_rel.display(), other.code()));
            Done::Failed(other)
        }
    }
}

/// What the daemon remembers about an item's plan, beside its transcripts: which item the
/// plan belongs to, and whether a planning session for it is unfinished.
struct Bookkeeping {
    dir: PathBuf,
    item: PathBuf,
}

impl Bookkeeping {
    fn new(root: &Path, config: &Config, item: &Item) -> Bookkeeping {
        Bookkeeping {
            dir: root.join(&config.paths.logs_dir).join("pipeline").join(format!("plan-{}", item.slug)),
            item: item.path.clone(),
        }
    }

    /// The item whose plan this is, once a plan was accepted for one.
    fn owner(&self) -> Option<PathBuf> {
        let text = std::fs::read_to_string(self.dir.join("item")).ok()?;
        let owner = PathBuf::from(text.trim());
        // An archived item still owns its plan under its new name.
        let archived = self.item.parent().map(|p| p.join("completed")).zip(self.item.file_name()).map(|(d, n)| d.join(n));
        if archived.as_ref() == Some(&owner) {
            return Some(self.item.clone());
        }
        Some(owner)
    }

    fn planning_unfinished(&self) -> bool {
        self.dir.join("planning").exists()
    }

    fn start_planning(&self) {
        let _ = std::fs::create_dir_all(&self.dir);
        let _ = std::fs::write(self.dir.join("planning"), self.item.display().to_string());
    }

    fn accept(&self) {
        let _ = std::fs::write(self.dir.join("item"), self.item.display().to_string());
        let _ = std::fs::remove_file(self.dir.join("planning"));
    }
}

/// Tells and records why an item failed; it stays where it is.
fn fail(root: &Path, config: &Config, reporter: &Reporter, item: &Item, why: &str) {
    reporter.warn(format!("{} failed: {why}; it stays in the backlog and is not retried until the pipeline restarts", item.path.display()));
    let log = root.join(&config.paths.logs_dir).join("pipeline").join("failures.log");
    if let Some(d) = log.parent() {
        let _ = std::fs::create_dir_all(d);
    }
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(&log) {
        use std::io::Write;
        let _ = writeln!(f, "{} {}: {}", jiff::Timestamp::now(), item.path.display(), why.replace('\n', " "));
    }
}

/// Moves the item to `completed/` in its folder, marks it completed, and commits.
fn archive(root: &Path, item: &Item, plan_rel: &Path, design_rel: &Path) -> Result<PathBuf, String> {
    let name = item.path.file_name().ok_or("the item has no file name")?;
    let dest = item.path.parent().unwrap_or(Path::new("")).join("completed").join(name);
    std::fs::create_dir_all(root.join(dest.parent().unwrap_or(Path::new("")))).map_err(|e| e.to_string())?;
    // A plain move: the commit below records it as a rename (tracked or not, staged or not).
    std::fs::rename(root.join(&item.path), root.join(&dest)).map_err(|e| format!("cannot move {}: {e}", item.path.display()))?;
    let mut text = std::fs::read_to_string(root.join(&dest)).map_err(|e| e.to_string())?;
    if !text.ends_with('\n') {
        text.push('\n');
    }
    let today = jiff::Timestamp::now().to_zoned_datetime(jiff::tz::TimeZone::system()).date();
    text.push_str(&format!("\n## Status: Completed ({})\n", today.strftime("%Y-%m-%d")));
    std::fs::write(root.join(&dest), text).map_err(|e| e.to_string())?;
    if git::is_repo(root) {
        let mut paths = vec![root.join(&item.path), root.join(&dest), root.join(plan_rel)];
        if root.join(design_rel).exists() {
            paths.push(root.join(design_rel));
        }
        git::commit_paths(root, &paths, &format!("pipeline: {} completed", item.path.display())).map_err(|e| e.to_string())?;
    }
    Ok(dest)
}

/// `--dry-run`: what would be processed, in order, with plan paths; nothing starts.
fn dry_run(root: &Path, config: &Config) -> Exit {
    let (items, skipped) = backlog::scan(
        root,
        &config.pipeline.defect_backlog,
        &config.pipeline.feature_backlog,
        &HashSet::new(),
    );
    crate::outln!("dry run of the pipeline in {} — nothing will be started or changed", root.display());
    if items.is_empty() {
        crate::outln!("no backlog item is waiting");
    }
    for (n, item) in items.iter().enumerate() {
        let plan = item.plan_path(&config.paths.plans_dir);
        let what = if root.join(&plan).exists() { "resume" } else { "create" };
        crate::outln!("{:>3}. {} {} → {what} {}", n + 1, item.kind.as_str(), item.path.display(), plan.display());
    }
    for s in skipped {
        crate::outln!("  skipped: {} ({})", s.path.display(), s.why);
    }
    Exit::Completed
}
