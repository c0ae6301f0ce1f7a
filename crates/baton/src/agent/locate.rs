//! Where an agent CLI is: the binary its definition names, else its environment variable, else
//! its name on `PATH`, else the npm global prefix. Nothing is ever downloaded (never `npx`: that
//! would fetch an unpinned CLI at run time); the error says how to install one.

use std::path::{Path, PathBuf};

use super::Resolved;

/// One CLI baton can look for.
pub struct Cli {
    /// Its command name: `claude`.
    pub command: &'static str,
    /// Its name in messages: `Claude Code CLI`.
    pub title: &'static str,
    /// The environment variable that names the binary after baton.toml: `BATON_CLAUDE_BIN`.
    pub env: &'static str,
    /// How to install it: `npm install -g @anthropic-ai/claude-code`.
    pub install: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("the agent binary {} (set in {origin}) does not exist or is not executable", path.display())]
    Configured { path: PathBuf, origin: String },
    #[error("no {title} found; tried {}", tried.join(", "))]
    NotFound { title: &'static str, tried: Vec<String> },
}

impl Cli {
    /// Finds the CLI. A relative configured path is taken from the repository `root` (where
    /// baton.toml is); a relative environment variable's from the current directory. Either
    /// way the result is absolute, so it still names the same file when an agent runs in a
    /// worktree.
    pub fn resolve(&self, configured: Option<&Path>, root: &Path) -> Result<Resolved, ResolveError> {
        self.resolve_in(configured, root, "agent")
    }

    /// [`Cli::resolve`] for the definition in `[section]` of baton.toml (`agents.codex-main`).
    pub fn resolve_in(&self, configured: Option<&Path>, root: &Path, section: &str) -> Result<Resolved, ResolveError> {
        if let Some(p) = configured {
            let p = &if p.components().count() > 1 && p.is_relative() { root.join(p) } else { p.to_path_buf() };
            let origin = format!("baton.toml [{section}] binary");
            return usable(p)
                .map(|program| Resolved::plain(program, format!("{} (from {origin})", p.display())))
                .ok_or_else(|| ResolveError::Configured { path: p.to_path_buf(), origin });
        }
        if let Some(p) = std::env::var_os(self.env).filter(|v| !v.is_empty()) {
            let p = PathBuf::from(p);
            return usable(&p)
                .map(|program| Resolved::plain(program, format!("{} (from {})", p.display(), self.env)))
                .ok_or(ResolveError::Configured { path: p, origin: self.env.into() });
        }
        let mut tried = vec![format!("`{}` on PATH", self.command)];
        if let Some(p) = on_path(self.command) {
            return Ok(Resolved::plain(p.clone(), format!("{} (on PATH)", p.display())));
        }
        match npm_global_prefix() {
            Some(prefix) => {
                let p = prefix.join("bin").join(self.command);
                tried.push(format!("{} (npm prefix -g)", p.display()));
                if let Some(program) = usable(&p) {
                    return Ok(Resolved::plain(program, format!("{} (npm global install)", p.display())));
                }
            }
            None => tried.push("the npm global prefix (npm not found)".to_string()),
        }
        Err(ResolveError::NotFound { title: self.title, tried })
    }

    /// The CLI for an agent definition's `binary`, as a run needs it: an error (a full message
    /// for a person) when it cannot be found, or with `lenient` (dry runs) a warning and a
    /// placeholder.
    pub fn for_run(&self, def: &crate::config::AgentDef, root: &Path, lenient: bool, also: &str) -> Result<Resolved, String> {
        let section = if def.section.is_empty() { "agent" } else { def.section.as_str() };
        match self.resolve_in(def.binary.as_deref(), root, section) {
            Ok(found) => Ok(found),
            Err(e) if lenient => {
                crate::errln!("warning: {e}");
                Ok(Resolved::plain(self.command.into(), Resolved::NOT_FOUND.into()))
            }
            Err(e) => Err(format!(
                "error: {e}\n  help: install it ({}), or name the binary in baton.toml ([{section}] binary) or {}{also}",
                self.install, self.env
            )),
        }
    }
}

/// An existing, executable file (or a bare name found on PATH), as an absolute path.
pub(crate) fn usable(p: &Path) -> Option<PathBuf> {
    if p.components().count() == 1 && !p.exists() {
        return on_path(&p.to_string_lossy());
    }
    is_executable(p).then(|| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

pub(crate) fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| is_executable(p))
}

fn npm_global_prefix() -> Option<PathBuf> {
    let npm = on_path("npm")?;
    use std::os::unix::process::CommandExt;
    let out = std::process::Command::new(npm)
        .args(["prefix", "-g"])
        // Out of baton's process group: a terminal's Ctrl+C is for baton alone.
        .process_group(0)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let s = String::from_utf8(out.stdout).ok()?;
    let s = s.trim();
    (out.status.success() && !s.is_empty()).then(|| PathBuf::from(s))
}
