//! baton as the last line of defence: when a guard itself dies (an agent that kills its parent,
//! `pkill -9 baton`, the OOM killer) while baton lives, the agent dies with it (its parent-death
//! signal) but what the agent started is orphaned. baton is a child subreaper, so those orphans
//! come to baton instead of init, and [`sweep`] ends them.

use std::collections::BTreeSet;
use std::sync::Mutex;

/// Children baton supervises (guards, and the commands run without one) and has not reaped:
/// the only children baton keeps for long. Any other child found by a sweep is an orphan of a
/// command whose guard is gone.
static GUARDS: Mutex<BTreeSet<libc::pid_t>> = Mutex::new(BTreeSet::new());

/// Held (shared) by a thread between spawning a short child of its own (a git command run off
/// the engine's thread) and registering it with [`started`]; held exclusively by [`sweep`]
/// while it looks, so that such a child is never taken for an orphan.
static SPAWNING: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// See [`SPAWNING`]: hold the guard until the child is registered with [`started`].
pub(crate) fn spawning() -> std::sync::RwLockReadGuard<'static, ()> {
    SPAWNING.read().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn started(pid: libc::pid_t) {
    GUARDS.lock().unwrap_or_else(|e| e.into_inner()).insert(pid);
}

pub(crate) fn reaped(pid: libc::pid_t) {
    GUARDS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&pid);
}

/// Makes orphaned descendants of this process come back to it rather than to init.
pub fn become_subreaper() {
    // SAFETY: plain prctl on this process; failure (old kernels) leaves the default.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong) };
}

/// Ends and reaps every child of baton that is not a live guard, with all its
/// descendants; returns how many it found. Call it only where baton runs no other child
/// of its own (its git commands run synchronously on the calling thread).
pub fn sweep() -> usize {
    let me = std::process::id() as libc::pid_t;
    let mut found = 0;
    // Each round ends one generation; a process forking while it is killed leaves an
    // orphan that the next round finds. Bounded: a fork bomb is not baton's to win.
    for _ in 0..64 {
        let looking = SPAWNING.write().unwrap_or_else(|e| e.into_inner());
        let guards = GUARDS.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let tree = super::guard::process_tree();
        drop(looking);
        let orphans: Vec<libc::pid_t> = tree
            .get(&me)
            .into_iter()
            .flatten()
            .copied()
            .filter(|p| !guards.contains(p))
            .collect();
        if orphans.is_empty() {
            break;
        }
        let zombies: Vec<libc::pid_t> = orphans.iter().copied().filter(|p| is_zombie(*p)).collect();

        for orphan in &orphans {
            for pid in super::guard::descendants_in(&tree, *orphan)
                .into_iter()
                .chain([*orphan])
            {
                // SAFETY: plain syscall; ESRCH (gone already) is fine.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        for orphan in &orphans {
            let mut status = 0;
            // SAFETY: plain syscall on a child of ours that no one else waits for.
            unsafe { libc::waitpid(*orphan, &mut status, 0) };
        }
        // A process that had already exited (git's detached helpers, reparented here) was
        // only reaped: nothing was left running.
        found += orphans.iter().filter(|p| !zombies.contains(p)).count();
    }
    found
}

/// Whether `pid` has exited and waits to be reaped.
fn is_zombie(pid: libc::pid_t) -> bool {
    std::fs::read(format!("/proc/{pid}/stat")).ok().and_then(|stat| {
        // The state follows the command name, which is in parentheses and may hold any byte.
        let close = stat.iter().rposition(|b| *b == b')')?;
        stat.get(close + 2).copied()
    }) == Some(b'Z')
}
