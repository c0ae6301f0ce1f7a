//! `baton pipeline`: watch the backlog folders, and for each item in turn make (or resume) its
//! plan and run it with the same engine as `baton run`, in this process, one plan at a time;
//! archive the item when its plan completes.
//!
//! File-system events wake the daemon at once; a periodic scan is the safety net. An item is
//! read for planning only once it is complete and stable (see `settle`): a file still being
//! written is never read half-way, and no file time is trusted to be in the past.

use std::collections::HashSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use notify::{RecursiveMode, Watcher};
use tokio::sync::watch;

use super::backlog::{self, Item};
use super::create::{Created, Planner};
use super::ledger::{Ledger, Record, State};
use super::settle::{self, Settle};
use crate::config::Config;
use crate::exit::Exit;
use crate::git;
use crate::error::Error;
use crate::report::event::{Note, PipelineNote, Reporter};
use crate::store::sink::{RunInfo, RunKind, StoreSink};
use crate::store::Store;
use crate::report::terminal::run_reporter;
use crate::run::lock::{CheckoutLock, PlanLock};
use crate::run::record::{self, Records};
use crate::run::stop::{self, Stop};
use crate::run::RunOptions;

/// How long an item must look the same (and, on Linux, be open for writing by no one) before
/// it is read for planning.
const QUIET: Duration = Duration::from_millis(300);

/// How long `--once` waits for items that are still being written before it says there is
/// nothing to do: it always returns.
const ONCE_PATIENCE: Duration = Duration::from_secs(30);

/// How long an item that keeps changing holds back the items after it in backlog order.
const ORDER_PATIENCE: Duration = Duration::from_secs(10);

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

/// The daemon; an error ends it, told in the terminal and, once there is one, the log.
async fn daemon(opts: PipelineOptions) -> Exit {
    let mut early = None;
    match start(opts, &mut early).await {
        Ok(exit) => exit,
        Err(e) => crate::error::end(early, e),
    }
}

async fn start(opts: PipelineOptions, reporter_out: &mut Option<Reporter>) -> Result<Exit, Error> {
    let root = crate::root::repo_root(Path::new("."));
    let config = Config::load(&root)?;
    // The pipeline commits every finished item; outside git it would create folders and then
    // report work it cannot record. Checked before anything is created. `[run] commit = false`
    // says the user wants no git: then nothing is committed (the plans run the same way).
    if crate::root::git_use(&root, &config).is_err() {
        return Err(Error::PipelineNeedsGit(root));
    }
    let folders = [config.pipeline.defect_backlog.clone(), config.pipeline.feature_backlog.clone()];
    let ledger = Ledger::new(&root, &config.paths.logs_dir, &config.paths.plans_dir);
    if opts.dry_run {
        return Ok(dry_run(&root, &config, &ledger));
    }
    let agent = crate::agent::for_config(&config, &root, false).map_err(Error::Agent)?;
    let logs_dir = root.join(&config.paths.logs_dir);
    if config.paths.logs_dir.starts_with(".baton") {
        record::ignore_logs_root(&root.join(".baton"));
    }
    let _lock = PlanLock::acquire(&logs_dir.join("locks"), &root.join("baton-pipeline")).map_err(|_| Error::PipelineRunning(root.clone()))?;
    // The daemon's agents (planning sessions, then the plan's tasks) work in this checkout: no
    // `baton run` may work in it meanwhile, nor the daemon start beside one.
    let _checkout = CheckoutLock::acquire(&root, Path::new("(the backlog pipeline)")).map_err(|e| Error::CheckoutLocked(e.to_string()))?;
    // Holding the locks, no other pipeline can be writing its records: a temp file is a crash's.
    ledger.remove_stale_temps();
    crate::run::process::orphans::become_subreaper();
    let records = Records::new(&logs_dir, Path::new("pipeline"));
    let reporter = run_reporter(opts.verbose, &records.dir().join("pipeline.log"));
    *reporter_out = Some(reporter.clone());
    // The history: its items and planning sessions (the plans it runs record their own runs).
    let info = RunInfo { kind: RunKind::Pipeline, root: root.clone(), plan: String::new(), command: crate::store::command_line() };
    match Store::open(&root).and_then(|store| StoreSink::open(store, info, None)) {
        Ok(sink) => reporter.add(Box::new(sink)),
        Err(e) => reporter.warn(format!("{e}; the pipeline's items and planning sessions are not recorded in the history ({})", e.help())),
    }
    let mut stop = stop::watch_fresh(root.join(&config.paths.stop_file), &reporter)?;
    let guard_exe = stop::guard_exe()?;

    // Wake on any change in the folders; the scan decides what it means.
    let (tx, mut events) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut watcher = match notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if res.is_ok_and(|e| wakes(&e.kind)) {
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
    let ctx = Context { root: root.clone(), config: config.clone(), opts: opts.clone(), reporter: reporter.clone(), ledger };
    let scan_every = Duration::from_secs_f64(config.pipeline.scan_interval_seconds);
    // Items that failed, also in earlier lives of the daemon (each `--once` is one): not
    // retried until their content changes, so that one broken item never blocks the others.
    let failed_list = root.join(&config.paths.logs_dir).join("pipeline").join(FAILED_LIST);
    let mut failed = load_failed(&failed_list);
    let mut settle = Settle::new(QUIET);
    let once_until = Instant::now() + ONCE_PATIENCE;
    let mut idle_line: Option<(usize, usize)> = None;
    let exit = loop {
        for n in crate::git::take_notices() {
            reporter.warn(n);
        }
        if *stop.borrow() != Stop::Running {
            // A stop by signal was told by the stop watcher already.
            if !stop::by_signal() {
                reporter.note(Note::Pipeline(PipelineNote::Stopping));
            }
            break Exit::Stopped;
        }
        let (items, _) = backlog::scan(&root, &folders[0], &folders[1], &failed);
        settle.keep_only(&items);
        let (ready, look_again) = pick(&root, &items, &mut settle, &reporter);
        if let Some(item) = ready {
            idle_line = None;
            match process(&ctx, &mut planner, &stop, &item).await {
                Done::Completed if opts.once => break Exit::Completed,
                Done::Completed => {}
                Done::Failed(code) => {
                    // Not retried in this daemon's life, unless its content is changed.
                    remember_failed(&failed_list, &mut failed, &item.path, &item.digest);
                    if let Ok((_, digest, _)) = backlog::read_item(&root, &item.path) {
                        remember_failed(&failed_list, &mut failed, &item.path, &digest);
                    }
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
            reporter.note(Note::Pipeline(PipelineNote::Idle));
            break Exit::Completed;
        }
        if opts.once && Instant::now() >= once_until {
            let items = items.iter().map(|i| i.path.clone()).collect();
            reporter.note(Note::Pipeline(PipelineNote::StillBeingWritten { items, waited: ONCE_PATIENCE }));
            break Exit::Completed;
        }
        let line = (folders.len(), items.len());
        if Some(line) != idle_line {
            reporter.note(Note::Pipeline(PipelineNote::Watching { folders: line.0, waiting: line.1 }));
            idle_line = Some(line);
        }
        // Sleep until something changes, an item may have settled, or the safety scan is due.
        let wait = look_again.map_or(scan_every, |d| d.min(scan_every));
        // Without a watcher the channel is closed: its branch is then disabled, not ready.
        tokio::select! {
            Some(()) = events.recv() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => {}
        }
        // One scan answers every change so far.
        while events.try_recv().is_ok() {}
    };
    drop(watcher);
    reporter.emit(crate::report::event::EventKind::Exit { code: exit.code() });
    reporter.finish();
    Ok(exit)
}

/// Whether a file-system event may mean an item changed. Opening and reading do not: the scan
/// itself reads every item, and waking on that would make the daemon spin.
fn wakes(kind: &notify::EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode, EventKind};
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

/// The first item (in backlog order) that is complete and stable, and otherwise how soon to
/// look again. An item that has not settled yet holds back the items after it for a while, so
/// that the order (defects first, then features, alphabetically) does not depend on which file
/// happened to be written last; one held open by a writer, or changing for longer than
/// [`ORDER_PATIENCE`], lets the others go first.
fn pick(root: &Path, items: &[Item], settle: &mut Settle, reporter: &Reporter) -> (Option<Item>, Option<Duration>) {
    let now = Instant::now();
    let mut look_again: Option<Duration> = None;
    let mut quiet = Vec::new();
    for item in items {
        match settle.look(item, now) {
            None => quiet.push(item),
            Some(d) => look_again = Some(look_again.map_or(d, |l| l.min(d))),
        }
    }
    let paths: Vec<PathBuf> = quiet.iter().map(|i| root.join(&i.path)).collect();
    let writers = settle::open_for_writing(&paths);
    for item in items {
        if !quiet.iter().any(|q| q.path == item.path) {
            if settle.waiting_for(&item.path, now) < ORDER_PATIENCE {
                return (None, look_again);
            }
            continue;
        }
        match writers.get(&root.join(&item.path)) {
            None => return (Some(item.clone()), None),
            Some(w) => {
                if settle.still_written(&item.path, w.pid, now) {
                    reporter.note(Note::Pipeline(PipelineNote::BeingWritten { item: item.path.clone(), pid: w.pid, by: w.name.clone() }));
                }
                look_again = Some(look_again.map_or(QUIET, |l| l.min(QUIET)));
            }
        }
    }
    (None, look_again)
}

/// What processing an item needs besides the planner.
struct Context {
    root: PathBuf,
    config: Config,
    opts: PipelineOptions,
    reporter: Reporter,
    ledger: Ledger,
}

async fn process(ctx: &Context, planner: &mut Planner, stop: &watch::Receiver<Stop>, item: &Item) -> Done {
    let Context { root, config, opts, reporter, ledger } = ctx;
    let started = Instant::now();
    let today = jiff::Timestamp::now().to_zoned_datetime(jiff::tz::TimeZone::system()).date();
    reporter.note(Note::Pipeline(PipelineNote::PickedUp { kind: item.kind.as_str().to_string(), item: item.path.clone() }));
    let assignment = ledger.assign(item, today);
    let item = &Item { slug: assignment.slug.clone(), ..item.clone() };
    let (plan_rel, design_rel) = (assignment.plan.clone(), assignment.design.clone());
    let plan_abs = root.join(&plan_rel);
    if let Some(why) = &assignment.passed_over {
        reporter.note(Note::Pipeline(PipelineNote::Planning { item: item.path.clone(), plan: plan_rel.clone(), why: why.to_string() }));
    }
    let mut record = match assignment.record {
        Some(r) if r.state == State::Accepted && plan_abs.exists() => {
            reporter.note(Note::Pipeline(PipelineNote::Resuming { item: item.path.clone(), plan: plan_rel.clone() }));
            r
        }
        earlier => {
            match &earlier {
                Some(r) if r.state == State::Planning && plan_abs.exists() => {
                    // The planning session was killed, stopped or rejected: its plan was never accepted.
                    let aside = plan_abs.with_extension(format!("yaml.unfinished-{}", jiff::Timestamp::now().strftime("%Y%m%dT%H%M%S")));
                    match std::fs::rename(&plan_abs, &aside) {
                        Ok(()) => reporter.note(Note::Pipeline(PipelineNote::KeptAside { item: item.path.clone(), aside: aside.clone() })),
                        Err(e) => {
                            fail(root, config, reporter, item, &format!("cannot move its unaccepted plan aside: {e}"));
                            return Done::Failed(Exit::InvalidInput);
                        }
                    }
                }
                Some(r) if r.state == State::Accepted => {
                    reporter.note(Note::Pipeline(PipelineNote::Replanning { item: item.path.clone(), plan: plan_rel.clone() }));
                }
                _ => {}
            }
            let mut record = Record {
                item: item.path.clone(),
                // A plan made again for an accepted record (its plan was deleted) is still the
                // plan of every content the record knew; a new planning session is of this one.
                sha256: match earlier {
                    Some(r) if r.state == State::Accepted => r.sha256,
                    _ => vec![item.digest.clone()],
                },
                plan: plan_rel.clone(),
                design: design_rel.clone(),
                state: State::Planning,
                archived_to: None,
            };
            // Recorded before the session starts: a plan the records do not give to this item
            // is never run as its plan, so an unrecorded session would be wasted.
            if let Err(e) = ledger.write(&item.slug, &record) {
                fail(root, config, reporter, item, &crate::exit::render_chain(&e));
                return Done::Failed(Exit::InvalidInput);
            }
            reporter.note(Note::Pipeline(PipelineNote::Asking { item: item.path.clone(), design: design_rel.clone(), plan: plan_rel.clone() }));
            match planner.create(item, &plan_rel, &design_rel).await {
                Created::Ok => {
                    record.state = State::Accepted;
                    note_changes(root, item, &mut record);
                    if let Err(e) = ledger.write(&item.slug, &record) {
                        fail(root, config, reporter, item, &crate::exit::render_chain(&e));
                        return Done::Failed(Exit::InvalidInput);
                    }
                    reporter.note(Note::Pipeline(PipelineNote::PlanWritten { item: item.path.clone(), plan: plan_rel.clone() }));
                }
                Created::Failed(why) => {
                    fail(root, config, reporter, item, &why);
                    return Done::Failed(Exit::TaskFailed);
                }
                Created::Systemic { message, help } => {
                    reporter.error(&Error::PipelineSystemic { message, help });
                    return Done::Broken;
                }
                Created::Stopped => return Done::Stopped,
            }
            record
        }
    };
    let exit = crate::run::run_plan(
        RunOptions {
            plan: plan_abs.clone(),
            verbose: opts.verbose,
            parallel: config.pipeline.parallel,
            checkout_held: true,
            ..RunOptions::default()
        },
        Some(stop.clone()),
    )
    .await;
    if note_changes(root, item, &mut record) {
        if let Err(e) = ledger.write(&item.slug, &record) {
            reporter.warn(crate::exit::render_chain(&e));
        }
    }
    match exit {
        Exit::Completed => match archive(root, item, &plan_rel, &design_rel, config.run.commit) {
            Ok(dest) => {
                record.state = State::Archived;
                record.archived_to = Some(dest.clone());
                if let Err(e) = ledger.write(&item.slug, &record) {
                    reporter.warn(crate::exit::render_chain(&e));
                }
                reporter.note(Note::Pipeline(PipelineNote::Archived { item: item.path.clone(), elapsed: started.elapsed(), dest: dest.clone() }));
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

/// Content the item was given while the pipeline worked on it (by the agents, or by its
/// author) stays this item's: its digest joins the record. True when the record changed.
fn note_changes(root: &Path, item: &Item, record: &mut Record) -> bool {
    match backlog::read_item(root, &item.path) {
        Ok((_, digest, _)) if !record.sha256.contains(&digest) => {
            record.sha256.push(digest);
            true
        }
        _ => false,
    }
}

/// The items that failed (path and content digest), one JSON object a line, under the
/// pipeline's logs.
const FAILED_LIST: &str = "failed.jsonl";

fn load_failed(list: &Path) -> HashSet<(PathBuf, String)> {
    // In the working copy: a pipe or a huge file there is no list.
    let text = crate::fsx::read_regular_text(list, 64 << 20).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| Some((PathBuf::from(v["path"].as_str()?), v["digest"].as_str()?.to_string())))
        .collect()
}

fn remember_failed(list: &Path, failed: &mut HashSet<(PathBuf, String)>, path: &Path, digest: &str) {
    if !failed.insert((path.to_path_buf(), digest.to_string())) {
        return;
    }
    if let Some(d) = list.parent() {
        let _ = std::fs::create_dir_all(d);
    }
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(list) {
        use std::io::Write;
        let _ = writeln!(f, "{}", serde_json::json!({"path": path, "digest": digest}));
    }
}

/// Tells and records why an item failed; it stays where it is.
fn fail(root: &Path, config: &Config, reporter: &Reporter, item: &Item, why: &str) {
    reporter.note(Note::Pipeline(PipelineNote::ItemFailed { item: item.path.clone(), why: why.to_string() }));
    let log = root.join(&config.paths.logs_dir).join("pipeline").join("failures.log");
    if let Some(d) = log.parent() {
        let _ = std::fs::create_dir_all(d);
    }
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(&log) {
        use std::io::Write;
        let _ = writeln!(f, "{} {}: {}", jiff::Timestamp::now(), item.path.display(), why.replace('\n', " "));
    }
}

/// Moves the item to `completed/` in its folder (under a free name: an earlier item of the same
/// name stays as it was), marks it completed, and commits.
fn archive(root: &Path, item: &Item, plan_rel: &Path, design_rel: &Path, commit: bool) -> Result<PathBuf, ArchiveError> {
    let io = |what: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| ArchiveError::Io { what, path, source }
    };
    let name = item.path.file_name().ok_or(ArchiveError::NoName)?;
    let dir = item.path.parent().unwrap_or(Path::new("")).join("completed");
    std::fs::create_dir_all(root.join(&dir)).map_err(io("create", &dir))?;
    let dest = dir.join(free_name(&root.join(&dir), Path::new(name)));
    // A plain move: the commit below records it as a rename (tracked or not, staged or not).
    // Only this daemon (one per checkout) writes to `completed/`, so the name stays free.
    std::fs::rename(root.join(&item.path), root.join(&dest)).map_err(io("move", &item.path))?;
    let mut text = std::fs::read_to_string(root.join(&dest)).map_err(io("read", &dest))?;
    if !text.ends_with('\n') {
        text.push('\n');
    }
    let today = jiff::Timestamp::now().to_zoned_datetime(jiff::tz::TimeZone::system()).date();
    text.push_str(&format!("\n## Status: Completed ({})\n", today.strftime("%Y-%m-%d")));
    std::fs::write(root.join(&dest), text).map_err(io("write", &dest))?;
    if commit && git::is_repo(root) {
        let mut paths = vec![root.join(&item.path), root.join(&dest), root.join(plan_rel)];
        if root.join(design_rel).exists() {
            paths.push(root.join(design_rel));
        }
        git::commit_paths(root, &paths, &format!("pipeline: {} completed", item.path.display()))?;
    }
    Ok(dest)
}

/// Why a finished item could not be archived.
#[derive(Debug, thiserror::Error)]
enum ArchiveError {
    #[error("the item has no file name")]
    NoName,
    #[error("cannot {what} {}: {source}", path.display())]
    Io { what: &'static str, path: PathBuf, source: std::io::Error },
    #[error("cannot commit it: {0}")]
    Git(#[from] git::GitError),
}

/// `name` if nothing in `dir` has it, else `<stem>-2.<ext>`, `<stem>-3.<ext>`, ….
fn free_name(dir: &Path, name: &Path) -> PathBuf {
    let stem = name.file_stem().unwrap_or(name.as_os_str());
    let mut n: u64 = 1;
    loop {
        let candidate = if n == 1 {
            name.to_path_buf()
        } else {
            let mut s = OsString::from(stem);
            s.push(format!("-{n}"));
            if let Some(ext) = name.extension() {
                s.push(".");
                s.push(ext);
            }
            PathBuf::from(s)
        };
        if dir.join(&candidate).symlink_metadata().is_err() {
            return candidate;
        }
        n += 1;
    }
}

/// The backlog items waiting, in the order the daemon takes them (those that failed are left
/// until their content changes), and those it passes over with why. Reads only.
pub fn waiting(root: &Path, config: &Config) -> (Vec<backlog::Item>, Vec<backlog::Skipped>) {
    let failed = load_failed(&root.join(&config.paths.logs_dir).join("pipeline").join(FAILED_LIST));
    backlog::scan(root, &config.pipeline.defect_backlog, &config.pipeline.feature_backlog, &failed)
}

/// `--dry-run`: what would be processed, in order, with plan paths; nothing starts.
fn dry_run(root: &Path, config: &Config, ledger: &Ledger) -> Exit {
    let (items, skipped) = waiting(root, config);
    crate::outln!("dry run of the pipeline in {} — nothing will be started or changed", root.display());
    if items.is_empty() {
        crate::outln!("no backlog item is waiting");
    }
    let today = jiff::Timestamp::now().to_zoned_datetime(jiff::tz::TimeZone::system()).date();
    for (n, item) in items.iter().enumerate() {
        let a = ledger.assign(item, today);
        let resume = a.record.as_ref().is_some_and(|r| r.state == State::Accepted) && root.join(&a.plan).exists();
        let what = if resume { "resume" } else { "create" };
        crate::outln!("{:>3}. {} {} → {what} {}", n + 1, item.kind.as_str(), item.path.display(), a.plan.display());
        if let Some(why) = a.passed_over {
            crate::outln!("     ({why})");
        }
    }
    for s in skipped {
        crate::outln!("  skipped: {} ({})", s.path.display(), s.why);
    }
    Exit::Completed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_an_item_does_not_wake_the_daemon_but_closing_a_written_one_does() {
        use notify::event::{AccessKind, AccessMode, CreateKind, EventKind, ModifyKind};
        assert!(!wakes(&EventKind::Access(AccessKind::Open(AccessMode::Any))));
        assert!(!wakes(&EventKind::Access(AccessKind::Close(AccessMode::Read))));
        assert!(wakes(&EventKind::Access(AccessKind::Close(AccessMode::Write))));
        assert!(wakes(&EventKind::Create(CreateKind::File)));
        assert!(wakes(&EventKind::Modify(ModifyKind::Any)));
    }

    #[test]
    fn archive_names_never_replace_an_earlier_item() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(free_name(d.path(), Path::new("x.md")), PathBuf::from("x.md"));
        std::fs::write(d.path().join("x.md"), "").unwrap();
        assert_eq!(free_name(d.path(), Path::new("x.md")), PathBuf::from("x-2.md"));
        std::fs::write(d.path().join("x-2.md"), "").unwrap();
        assert_eq!(free_name(d.path(), Path::new("x.md")), PathBuf::from("x-3.md"));
        // A dangling symlink is a name in use too.
        std::os::unix::fs::symlink("nowhere", d.path().join("y.md")).unwrap();
        assert_eq!(free_name(d.path(), Path::new("y.md")), PathBuf::from("y-2.md"));
    }
}
