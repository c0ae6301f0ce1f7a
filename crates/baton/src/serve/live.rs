//! What changed, as it changes: one thread watches the files runs write (the plan files, the
//! logs, the run history) and tells every open page which plans changed, over server-sent
//! events (`GET /events`).
//!
//! File-system notifications make a change show at once; a poll every [`POLL`] covers what they
//! miss (a folder made after the server started, a file system that sends none): it compares
//! each plan file's size and time and the run history's `PRAGMA data_version`, which moves on
//! every commit any other process makes. A transcript that grows is its plan's change (the
//! logs folder has a folder per plan); the run history is everyone's (a page asks again and
//! finds out whether its plan moved).

use std::collections::{BTreeSet, HashMap};
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::response::sse::{Event, KeepAlive, Sse};
use notify::{RecursiveMode, Watcher};
use tokio::sync::{broadcast, watch};

use super::Site;

/// How often the plan files and the run history are looked at when nothing is notified.
pub const POLL: Duration = Duration::from_millis(500);
/// Changes come in bursts (a transcript grows line by line, a save writes and renames): one
/// message after the burst settles, so a page is told at most about every this often.
const SETTLE: Duration = Duration::from_millis(100);
/// How long a folder that could not be watched is left to the poll before it is tried again.
const RETRY_WATCH: Duration = Duration::from_secs(60);
/// The most event streams open at once: the rest of the connections stay for the pages' other
/// requests.
pub const MAX_STREAMS: usize = 192;
/// How many messages a slow page may fall behind before it is told "everything changed".
const BACKLOG: usize = 64;

/// Which plans changed (by their path from the repository root), or all of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Plans(BTreeSet<String>),
    All,
}

impl Change {
    /// `{"all":true}` or `{"plans":[".claude/plans/a.yaml"]}`.
    pub fn json(&self) -> String {
        match self {
            Change::All => r#"{"all":true}"#.to_string(),
            Change::Plans(p) => serde_json::json!({ "plans": p }).to_string(),
        }
    }
}

/// The change feed and the server's end: every `/events` stream ends when the server stops.
#[derive(Clone)]
pub struct Hub {
    changes: broadcast::Sender<Arc<Change>>,
    ending: watch::Receiver<bool>,
    streams: Arc<tokio::sync::Semaphore>,
}

impl Hub {
    /// Starts the watching thread; `ending` turns true when the server stops.
    pub fn start(site: Arc<Site>, ending: watch::Receiver<bool>) -> Hub {
        let (changes, _) = broadcast::channel(BACKLOG);
        let tx = changes.clone();
        // The first look before the server answers: a change made once a page is open is
        // never taken for the state things were in.
        let mut seen = Seen::default();
        let _ = poll(&site, &mut seen);
        let spawned = std::thread::Builder::new().name("baton-serve-watch".into()).spawn(move || watch_loop(&site, &tx, seen));
        if let Err(e) = spawned {
            crate::errln!("warning: cannot watch for changes ({e}): pages will not update by themselves");
        }
        Hub { changes, ending, streams: Arc::new(tokio::sync::Semaphore::new(MAX_STREAMS)) }
    }

    /// `GET /events`: `event: change` with [`Change::json`] each time something changed; a
    /// comment every 15 s keeps proxies from closing it. Ends when the server stops.
    pub fn events(&self) -> axum::response::Response {
        use axum::response::IntoResponse;
        let Ok(slot) = self.streams.clone().try_acquire_owned() else {
            return super::api::Refused { status: axum::http::StatusCode::SERVICE_UNAVAILABLE, message: format!("{MAX_STREAMS} pages follow this server already: close some, then reload") }.into_response();
        };
        self.stream(slot).into_response()
    }

    fn stream(&self, slot: tokio::sync::OwnedSemaphorePermit) -> Sse<impl futures_util::Stream<Item = Result<Event, Infallible>> + use<>> {
        let rx = self.changes.subscribe();
        let ending = self.ending.clone();
        // A first message says the stream is open (a page that reconnects looks again).
        let hello = Event::default().event("hello").data("{}");
        // The slot is the stream's: given back when the page goes away.
        let stream = futures_util::stream::unfold((Some(hello), rx, ending, slot), |(first, mut rx, mut ending, slot)| async move {
            if let Some(e) = first {
                return Some((Ok(e), (None, rx, ending, slot)));
            }
            if *ending.borrow() {
                return None;
            }
            let change = tokio::select! {
                got = rx.recv() => match got {
                    Ok(c) => c,
                    Err(broadcast::error::RecvError::Lagged(_)) => Arc::new(Change::All),
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                _ = ending.changed() => return None,
            };
            Some((Ok(Event::default().event("change").data(change.json())), (None, rx, ending, slot)))
        });
        Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
    }
}

/// What the poll compares: each plan file's size and time, and the history's data version.
#[derive(Default)]
struct Seen {
    plans: HashMap<PathBuf, (u64, Option<SystemTime>)>,
    /// The plan files the run history knows of, looked up again when it changes.
    recorded: Vec<PathBuf>,
    looked_up: bool,
    /// Whether the stop file was there.
    stop_asked: bool,
    data_version: Option<i64>,
    history: Option<rusqlite::Connection>,
}

fn watch_loop(site: &Site, tx: &broadcast::Sender<Arc<Change>>, mut seen: Seen) {
    let plans_dir = site.root.join(&site.config.paths.plans_dir);
    let store_dir = crate::store::path(&site.root).parent().map(Path::to_path_buf).unwrap_or_else(|| site.root.join(".baton"));
    let (ntx, nrx) = mpsc::channel::<PathBuf>();
    // Links are not followed: a link in the logs to `/usr` (or `/`) must not make the server
    // watch a whole file system.
    let config = notify::Config::default().with_follow_symlinks(false);
    let mut watcher = notify::RecommendedWatcher::new(move |res: notify::Result<notify::Event>| {
        if let Ok(e) = res {
            if !matches!(e.kind, notify::EventKind::Access(_)) {
                for p in e.paths {
                    let _ = ntx.send(p);
                }
            }
        }
    }, config)
    .ok();
    let mut watched: BTreeSet<PathBuf> = BTreeSet::new();
    let mut tried: HashMap<PathBuf, std::time::Instant> = HashMap::new();
    loop {
        // Folders made after the start are watched once they are there; one that cannot be
        // watched is tried again now and then, not on every look (the poll covers it).
        if let Some(w) = watcher.as_mut() {
            for (dir, mode) in [(&plans_dir, RecursiveMode::NonRecursive), (&site.root, RecursiveMode::NonRecursive), (&site.logs_dir, RecursiveMode::Recursive), (&store_dir, RecursiveMode::NonRecursive)] {
                if watched.contains(dir) || !dir.is_dir() || tried.get(dir).is_some_and(|at| at.elapsed() < RETRY_WATCH) {
                    continue;
                }
                if w.watch(dir, mode).is_ok() {
                    watched.insert(dir.clone());
                } else {
                    let _ = w.unwatch(dir);
                    tried.insert(dir.clone(), std::time::Instant::now());
                }
            }
        }
        let mut paths = Vec::new();
        match nrx.recv_timeout(POLL) {
            Ok(p) => {
                paths.push(p);
                std::thread::sleep(SETTLE);
                paths.extend(nrx.try_iter());
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => std::thread::sleep(POLL),
        }
        let mut change = poll(site, &mut seen);
        if change != Some(Change::All) {
            let mut known = None;
            for p in &paths {
                if let Some(c) = of_path(site, &plans_dir, p, &mut known) {
                    change = Some(merge(change, c));
                }
            }
        }
        if let Some(c) = change {
            if tx.receiver_count() > 0 {
                let _ = tx.send(Arc::new(c));
            }
        }
    }
}

fn merge(a: Option<Change>, b: Change) -> Change {
    match (a, b) {
        (Some(Change::All), _) | (_, Change::All) => Change::All,
        (Some(Change::Plans(mut x)), Change::Plans(y)) => {
            x.extend(y);
            Change::Plans(x)
        }
        (None, b) => b,
    }
}

/// The plans a changed file belongs to: a plan file itself, or a file in a plan's logs folder.
fn of_path(site: &Site, plans_dir: &Path, path: &Path, known: &mut Option<Vec<super::plans::Known>>) -> Option<Change> {
    // A stop asked (or cleared) is the checkout's run's: every plan it may hold.
    if path == site.root.join(&site.config.paths.stop_file) {
        return Some(Change::All);
    }
    if path.parent() == Some(plans_dir) || path.parent() == Some(site.root.as_path()) {
        let name = path.file_name()?.to_string_lossy();
        if name.starts_with('.') || !(name.ends_with(".yaml") || name.ends_with(".yml")) {
            return None;
        }
        return Some(Change::Plans([crate::store::plan_key(&site.root, path)].into()));
    }
    let inside = path.strip_prefix(&site.logs_dir).ok()?;
    let folder = inside.components().next()?.as_os_str().to_string_lossy().into_owned();
    // The logs folder's own files (locks, the pipeline's) are no plan's.
    if known.is_none() {
        *known = Some(super::plans::known(site).ok()?);
    }
    let plans: BTreeSet<String> = known
        .iter()
        .flatten()
        .filter(|k| crate::run::record::Records::new(&site.logs_dir, &k.file_path(&site.root)).dir() == site.logs_dir.join(&folder))
        .map(|k| k.path.clone())
        .collect();
    (!plans.is_empty()).then_some(Change::Plans(plans))
}

/// What changed since the last look: a plan file's size or time (a plan added or removed
/// changes the list: everything), or the history's data version (everything; the history
/// appearing too).
fn poll(site: &Site, seen: &mut Seen) -> Option<Change> {
    let mut change: Option<Change> = None;
    if seen.history.is_none() {
        let file = crate::store::path(&site.root);
        if file.is_file() {
            seen.history = rusqlite::Connection::open_with_flags(&file, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX).ok();
            if let Some(c) = &seen.history {
                let _ = c.busy_timeout(Duration::from_millis(250));
                change = Some(Change::All);
            }
        }
    }
    if let Some(c) = &seen.history {
        match c.query_row("PRAGMA data_version", [], |r| r.get::<_, i64>(0)) {
            Ok(v) => {
                if seen.data_version.is_some_and(|old| old != v) {
                    change = Some(Change::All);
                }
                seen.data_version = Some(v);
            }
            // A history replaced under it (deleted, made again): open it afresh next time.
            Err(_) => {
                seen.history = None;
                seen.data_version = None;
                change = Some(Change::All);
            }
        }
    }
    if change.is_some() || !seen.looked_up {
        seen.looked_up = true;
        seen.recorded = super::plans::known(site).map(|k| k.iter().filter(|k| k.recorded && k.file).map(|k| k.file_path(&site.root)).collect()).unwrap_or_default();
    }
    let mut now: HashMap<PathBuf, (u64, Option<SystemTime>)> = HashMap::new();
    for path in super::plans::plan_files(site).into_iter().chain(seen.recorded.iter().cloned()) {
        if let Ok(meta) = std::fs::metadata(&path) {
            now.insert(path, (meta.len(), meta.modified().ok()));
        }
    }
    if now.len() != seen.plans.len() || now.keys().any(|k| !seen.plans.contains_key(k)) {
        change = Some(Change::All);
    } else if change.is_none() {
        let moved: BTreeSet<String> = now.iter().filter(|(k, v)| seen.plans.get(*k) != Some(v)).map(|(k, _)| crate::store::plan_key(&site.root, k)).collect();
        if !moved.is_empty() {
            change = Some(Change::Plans(moved));
        }
    }
    seen.plans = now;
    let stop_asked = site.root.join(&site.config.paths.stop_file).exists();
    if stop_asked != seen.stop_asked {
        seen.stop_asked = stop_asked;
        change = Some(Change::All);
    }
    change
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_merge_into_everything_when_one_is_everything() {
        let a = Change::Plans(["a".to_string()].into());
        let b = Change::Plans(["b".to_string()].into());
        assert_eq!(merge(Some(a.clone()), b), Change::Plans(["a".to_string(), "b".to_string()].into()));
        assert_eq!(merge(Some(a), Change::All), Change::All);
        assert_eq!(merge(Some(Change::All), Change::Plans(BTreeSet::new())), Change::All);
        assert_eq!(Change::Plans(["x/\"y".to_string()].into()).json(), r#"{"plans":["x/\"y"]}"#);
    }
}
