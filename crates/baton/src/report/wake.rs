//! Waiting for something to show, for the commands that follow a run from beside it
//! (`status --watch`, `logs --follow`): a change in the files a run writes, a poll's interval,
//! or Ctrl+C.
//!
//! File-system notifications make a change show at once; the interval covers what they miss
//! (a folder that did not exist yet, a file system that sends none). Ctrl+C is caught so that
//! these commands end quietly with exit 0: for them it is the ordinary way out. Only for
//! read-only commands — a run has its own handling (`run::stop`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Once;
use std::time::{Duration, Instant};

use notify::{RecursiveMode, Watcher};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static HANDLER: Once = Once::new();

/// How often Ctrl+C is looked for while nothing else happens.
const TICK: Duration = Duration::from_millis(100);
/// Changes come in bursts (a transcript grows line by line): one look after the burst settles.
const SETTLE: Duration = Duration::from_millis(50);

/// What ended a wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Woke {
    /// A watched file changed, or the interval passed: look again.
    Look,
    /// Ctrl+C: end quietly.
    Interrupted,
}

pub struct Wake {
    rx: Receiver<()>,
    // Kept so that the channel never disconnects when nothing could be watched.
    _tx: Sender<()>,
    _watcher: Option<notify::RecommendedWatcher>,
}

impl Wake {
    /// Watches `paths` (folders, recursively when asked); those that do not exist, or cannot be
    /// watched, are left to the interval.
    pub fn new(paths: &[(PathBuf, bool)]) -> Wake {
        catch_interrupt();
        let (tx, rx) = mpsc::channel();
        let notify_tx = tx.clone();
        let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            if res.is_ok_and(|e| !matches!(e.kind, notify::EventKind::Access(_))) {
                let _ = notify_tx.send(());
            }
        })
        .ok();
        if let Some(w) = watcher.as_mut() {
            for (path, recursive) in paths {
                let mode = if *recursive { RecursiveMode::Recursive } else { RecursiveMode::NonRecursive };
                if path.is_dir() {
                    let _ = w.watch(path, mode);
                }
            }
        }
        Wake { rx, _tx: tx, _watcher: watcher }
    }

    /// Waits for a change, at most `interval`.
    pub fn wait(&self, interval: Duration) -> Woke {
        let deadline = Instant::now() + interval;
        loop {
            if INTERRUPTED.load(Ordering::SeqCst) {
                return Woke::Interrupted;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Woke::Look;
            }
            match self.rx.recv_timeout(left.min(TICK)) {
                Ok(()) => {
                    let settled = Instant::now() + SETTLE;
                    while let Some(left) = settled.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) {
                        if self.rx.recv_timeout(left).is_err() {
                            break;
                        }
                    }
                    return if INTERRUPTED.load(Ordering::SeqCst) { Woke::Interrupted } else { Woke::Look };
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {}
            }
        }
    }
}

/// Whether Ctrl+C has been pressed since the first [`Wake`] was made.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

fn catch_interrupt() {
    HANDLER.call_once(|| {
        // SAFETY: the action only stores to an atomic, which is async-signal-safe.
        let _ = unsafe {
            signal_hook_registry::register(libc::SIGINT, || INTERRUPTED.store(true, Ordering::SeqCst))
        };
    });
}
