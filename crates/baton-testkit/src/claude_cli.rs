//! Locating agent binaries for tests: the real Claude Code CLI (pinned in the workspace's
//! `package.json`, installed by `npm ci`) and this crate's `fake-claude`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The workspace root (where `Cargo.toml`, `package.json` and `node_modules/` live).
pub fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .ancestors()
        .nth(2)
        .unwrap_or(manifest_dir)
        .to_path_buf()
}

/// The real Claude Code CLI: `node_modules/.bin/claude` under `repo_root`, else `claude` on
/// `PATH`. `None` means the end-to-end tests should skip.
pub fn find_real_claude(repo_root: &Path) -> Option<PathBuf> {
    let pinned = repo_root.join("node_modules/.bin/claude");
    if is_executable(&pinned) {
        return Some(pinned);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("claude"))
        .find(|candidate| is_executable(candidate))
}

pub(crate) fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    // metadata() follows the node_modules/.bin symlink, so a dangling link is "not installed".
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The environment that points the real Claude Code CLI at a local [`FakeModelServer`]
/// (see `agents.md`): a fresh `HOME`, the base URL, a fake key (`subscriber`: an OAuth token,
/// which makes the CLI read `anthropic-ratelimit-unified-*` headers and emit
/// `rate_limit_event`s), no telemetry or other traffic, and `IS_SANDBOX=1` so that
/// `--dangerously-skip-permissions` is accepted as root.
///
/// Callers should start from an empty environment (`Command::env_clear`) plus `PATH`, so that
/// keys of the machine running the tests cannot leak in.
///
/// [`FakeModelServer`]: crate::FakeModelServer
pub fn claude_env(home: &Path, base_url: &str, subscriber: bool) -> Vec<(String, String)> {
    let mut env = vec![
        ("HOME".to_owned(), home.display().to_string()),
        ("ANTHROPIC_BASE_URL".to_owned(), base_url.to_owned()),
    ];
    if subscriber {
        env.push((
            "CLAUDE_CODE_OAUTH_TOKEN".to_owned(),
            "sk-ant-oat01-x".to_owned(),
        ));
    } else {
        env.push(("ANTHROPIC_API_KEY".to_owned(), "sk-test".to_owned()));
    }
    for (key, value) in [
        ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1"),
        ("DISABLE_TELEMETRY", "1"),
        ("IS_SANDBOX", "1"),
    ] {
        env.push((key.to_owned(), value.to_owned()));
    }
    env
}

/// Path of the `fake-claude` binary, for tests outside this crate (inside it, use
/// `env!("CARGO_BIN_EXE_fake-claude")`).
///
/// Order: `$BATON_FAKE_CLAUDE` if set; else `cargo build -p baton-testkit --bin fake-claude`
/// (once per test process, so the binary is never stale) and the binary beside the running test
/// executable's `deps/` folder. Panics with instructions when neither works.
pub fn fake_claude_bin() -> PathBuf {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let found = BIN.get_or_init(|| {
        if let Some(path) = std::env::var_os("BATON_FAKE_CLAUDE") {
            return Ok(PathBuf::from(path));
        }
        let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
        // target/<profile>/deps/<test-binary> → target/<profile>/fake-claude
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .ok_or_else(|| format!("unexpected test executable path {}", exe.display()))?;
        let candidate = profile_dir.join("fake-claude");
        let build = build_fake_claude(profile_dir);
        if is_executable(&candidate) {
            Ok(candidate)
        } else {
            Err(format!(
                "fake-claude not found at {} ({build}); run `cargo build -p baton-testkit --bin \
                 fake-claude` or set BATON_FAKE_CLAUDE",
                candidate.display()
            ))
        }
    });
    match found {
        Ok(path) => path.clone(),
        Err(e) => panic!("{e}"),
    }
}

/// Builds fake-claude into the same target directory and profile as the running tests.
/// Returns a note for the error message; the caller checks the binary itself.
fn build_fake_claude(profile_dir: &Path) -> String {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let Some(target_dir) = profile_dir.parent() else {
        return "no target directory".to_owned();
    };
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "--quiet",
        "-p",
        "baton-testkit",
        "--bin",
        "fake-claude",
    ])
    .arg("--target-dir")
    .arg(target_dir)
    .current_dir(workspace_root())
    .stdin(Stdio::null());
    if profile_dir
        .file_name()
        .is_some_and(|name| name == "release")
    {
        cmd.arg("--release");
    }
    match cmd.output() {
        Ok(out) if out.status.success() => "built".to_owned(),
        Ok(out) => format!(
            "cargo build failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => format!("cannot run cargo: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claude_env_names_one_credential() {
        let env = claude_env(Path::new("/h"), "http://127.0.0.1:1", true);
        let keys: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
        assert!(keys.contains(&"CLAUDE_CODE_OAUTH_TOKEN"));
        assert!(!keys.contains(&"ANTHROPIC_API_KEY"));
        assert!(env.contains(&("IS_SANDBOX".to_owned(), "1".to_owned())));
        let env = claude_env(Path::new("/h"), "http://127.0.0.1:1", false);
        assert!(env.contains(&("ANTHROPIC_API_KEY".to_owned(), "sk-test".to_owned())));
    }

    #[test]
    fn workspace_root_holds_the_workspace_manifest() {
        assert!(workspace_root()
            .join("crates/baton-testkit/Cargo.toml")
            .is_file());
    }
}
