//! Stopping: the stop file, Ctrl+C and SIGTERM, turned into one level everyone can watch.
//!
//! First Ctrl+C or the stop file: graceful (no new task starts, running tasks finish). A second
//! Ctrl+C, or SIGTERM: now (running agents are ended and their tasks go back to pending).
//!
//! A stop by signal is told once per level, here, however many signals arrive (a terminal
//! sends Ctrl+C's SIGINT to the whole foreground process group; a user presses it again): the
//! first says what happens and how to stop at once, the one that makes it immediate says so,
//! and later ones say nothing. A stop by the stop file is told by the engine, which knows how
//! many tasks are still running.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stop {
    Running,
    Graceful,
    Now,
}

/// How often the stop file is looked at. It is one `stat`; frequent enough that a stop is
/// noticed within a blink, rare enough to cost nothing.
const STOP_FILE_POLL: Duration = Duration::from_millis(200);

/// Signals counted by plain handlers the moment they arrive, beside tokio's: tokio hands a
/// signal to the watcher task only when the runtime next polls its driver, and merges two
/// quick Ctrl+C into one. The counts let the dispatcher see a stop that baton's own blocking
/// work (a git call) hid from the watcher, and let a double Ctrl+C count as two.
static INTERRUPTS: AtomicUsize = AtomicUsize::new(0);
static TERMINATIONS: AtomicUsize = AtomicUsize::new(0);
/// The counts when the current watcher started (a pipeline starts one per plan).
static BASE_INTERRUPTS: AtomicUsize = AtomicUsize::new(0);
static BASE_TERMINATIONS: AtomicUsize = AtomicUsize::new(0);
static COUNTERS: Once = Once::new();

fn count_signals() -> std::io::Result<()> {
    let mut result = Ok(());
    COUNTERS.call_once(|| {
        for (signo, counter) in [(libc::SIGINT, &INTERRUPTS), (libc::SIGTERM, &TERMINATIONS), (libc::SIGHUP, &TERMINATIONS)] {
            // SAFETY: the action only increments an atomic, which is async-signal-safe.
            let registered = unsafe {
                signal_hook_registry::register(signo, move || {
                    counter.fetch_add(1, Ordering::SeqCst);
                })
            };
            if let Err(e) = registered {
                result = Err(e);
            }
        }
    });
    result
}

/// The level the signals counted since the watcher started call for.
fn signalled() -> Stop {
    let int = INTERRUPTS.load(Ordering::SeqCst).saturating_sub(BASE_INTERRUPTS.load(Ordering::SeqCst));
    let term = TERMINATIONS.load(Ordering::SeqCst).saturating_sub(BASE_TERMINATIONS.load(Ordering::SeqCst));
    match (int, term) {
        (_, 1..) | (2.., _) => Stop::Now,
        (1, _) => Stop::Graceful,
        _ => Stop::Running,
    }
}

/// Whether a signal (Ctrl+C, SIGTERM, SIGHUP) asked for the stop: the watcher has told it.
pub fn by_signal() -> bool {
    signalled() != Stop::Running
}

/// The stop level, counting signals that arrived but that the watcher has not taken yet.
pub fn level(rx: &watch::Receiver<Stop>) -> Stop {
    (*rx.borrow()).max(signalled())
}

/// Waits until the watcher has taken every signal that has arrived, so that a decision made
/// next (start a task?) sees it. Returns at once when nothing is pending.
pub async fn caught_up(rx: &watch::Receiver<Stop>) {
    // The watcher runs as soon as this task yields; the bound only guards against a watcher
    // that is gone.
    for _ in 0..1000 {
        if signalled() <= *rx.borrow() {
            return;
        }
        tokio::task::yield_now().await;
    }
}

/// Watches signals and the stop file; the level only rises.
pub fn watch(stop_file: PathBuf, reporter: crate::report::event::Reporter) -> std::io::Result<watch::Receiver<Stop>> {
    count_signals()?;
    BASE_INTERRUPTS.store(INTERRUPTS.load(Ordering::SeqCst), Ordering::SeqCst);
    BASE_TERMINATIONS.store(TERMINATIONS.load(Ordering::SeqCst), Ordering::SeqCst);
    let (tx, rx) = watch::channel(Stop::Running);
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        // Raises the level; a signal's stop is told when it raises it, and only then.
        let raise = |level: Stop, tell: bool| {
            let raised = tx.send_if_modified(|cur| {
                if level > *cur {
                    *cur = level;
                    true
                } else {
                    false
                }
            });
            if raised && tell {
                reporter.note(crate::report::event::Note::Interrupted { now: level == Stop::Now });
            }
        };
        let mut tick = tokio::time::interval(STOP_FILE_POLL);
        loop {
            tokio::select! {
                _ = int.recv() => {
                    // tokio may hand over two quick Ctrl+C as one; the count tells them apart.
                    let level = if *tx.borrow() == Stop::Running { signalled().max(Stop::Graceful) } else { Stop::Now };
                    raise(level, true);
                }
                _ = term.recv() => raise(Stop::Now, true),
                _ = hup.recv() => raise(Stop::Now, true),
                _ = tick.tick() => {
                    if *tx.borrow() == Stop::Running && stop_file.exists() {
                        raise(Stop::Graceful, false);
                    }
                }
            }
            if *tx.borrow() == Stop::Now {
                break;
            }
        }
        // Keep the sender alive so receivers do not see a closed channel as a stop.
        std::future::pending::<()>().await;
    });
    Ok(rx)
}

/// Clears a stop file left from before (a stop request is for the run that was going then),
/// then watches. A failure is told to the person and becomes exit 2.
pub fn watch_fresh(stop_file: PathBuf, reporter: &crate::report::event::Reporter) -> Result<watch::Receiver<Stop>, crate::error::Error> {
    if stop_file.exists() {
        let _ = std::fs::remove_file(&stop_file);
        reporter.note(crate::report::event::Note::StaleStopFileRemoved { path: stop_file.clone() });
    }
    watch(stop_file, reporter.clone()).map_err(|e| crate::error::Error::Setup(format!("cannot watch for Ctrl+C: {e}")))
}

/// baton's own binary, which runs the guard of every agent. A failure is told and becomes exit 2.
pub fn guard_exe() -> Result<PathBuf, crate::error::Error> {
    std::env::current_exe().map_err(|e| crate::error::Error::Setup(format!("cannot find baton's own binary (needed to guard agent processes): {e}")))
}

/// Sleeps until `until`, or returns early when a stop is requested. Returns true when woken
/// by a stop.
pub async fn sleep_or_stop(dur: Duration, stop: &mut watch::Receiver<Stop>) -> bool {
    if *stop.borrow() != Stop::Running {
        return true;
    }
    let sleep = tokio::time::sleep(dur);
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            _ = &mut sleep => return false,
            r = stop.changed() => {
                if r.is_err() || *stop.borrow() != Stop::Running {
                    return true;
                }
            }
        }
    }
}
