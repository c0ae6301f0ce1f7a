//! Finding the processes of a soak run: every process whose environment carries the run's token
//! (baton, its git helpers, the guard, the agents and whatever they started) or whose working
//! directory is inside the soak's temporary folder.

use std::path::Path;

#[derive(Clone, Debug)]
pub struct Proc {
    pub pid: u32,
    pub cmdline: String,
    pub cwd: String,
}

/// Live (non-zombie) processes of the run, other than this one.
pub fn run_processes(token: &str, root: &Path) -> Vec<Proc> {
    let me = std::process::id();
    let needle = format!("{}={token}", crate::TOKEN_VAR);
    let root = root.to_string_lossy().into_owned();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me || !alive(pid) {
            continue;
        }
        let dir = entry.path();
        let env = std::fs::read(dir.join("environ")).unwrap_or_default();
        let in_env = env.split(|b| *b == 0).any(|var| var == needle.as_bytes());
        let cwd = std::fs::read_link(dir.join("cwd"))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let in_root = cwd == root || cwd.starts_with(&format!("{root}/"));
        if in_env || in_root {
            let cmdline = std::fs::read(dir.join("cmdline"))
                .map(|raw| {
                    raw.split(|b| *b == 0)
                        .filter(|a| !a.is_empty())
                        .map(|a| String::from_utf8_lossy(a).into_owned())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default();
            found.push(Proc { pid, cmdline: shorten(&cmdline, 160), cwd });
        }
    }
    found
}

/// Whether `pid` runs (a zombie does not: it runs no code any more).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => match stat.rfind(')') {
            Some(end) => !matches!(stat[end + 1..].trim_start().chars().next(), Some('Z' | 'X')),
            None => true,
        },
        Err(_) => false,
    }
}

pub fn kill(pid: u32, signal: i32) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        if pid > 1 {
            // SAFETY: kill(2) has no memory-safety preconditions.
            unsafe {
                libc::kill(pid, signal);
            }
        }
    }
}

pub fn kill_group(pgid: u32, signal: i32) {
    if let Ok(pgid) = libc::pid_t::try_from(pgid) {
        if pgid > 1 {
            // SAFETY: killpg(2) has no memory-safety preconditions.
            unsafe {
                libc::killpg(pgid, signal);
            }
        }
    }
}

pub fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let cut: String = text.chars().take(max).collect();
        format!("{cut}…")
    }
}
