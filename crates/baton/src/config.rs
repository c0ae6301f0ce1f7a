//! `baton.toml`: the project's settings, every one optional, with defaults that keep the
//! original tool's layout so a repository that used it works unchanged.
//!
//! This module reads and checks the file; command-line flags are layered on top by the caller.
//! An unknown key is an error naming the key, the file and the line.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const FILE_NAME: &str = "baton.toml";

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub paths: Paths,
    pub agent: Agent,
    pub run: Run,
    pub smoke: Smoke,
    pub notify: Notify,
    pub pipeline: Pipeline,
}

/// Where baton's files live, relative to the repository root.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Paths {
    /// The file an agent writes its result to, relative to the task's working copy.
    pub status_file: PathBuf,
    /// Touch this file to stop gracefully.
    pub stop_file: PathBuf,
    pub worktrees_dir: PathBuf,
    pub plans_dir: PathBuf,
    /// Where transcripts and run records are kept.
    pub logs_dir: PathBuf,
}

impl Default for Paths {
    fn default() -> Self {
        Paths {
            status_file: ".claude/plans/task-status.json".into(),
            stop_file: ".claude/plans/.stop".into(),
            worktrees_dir: ".worktrees".into(),
            plans_dir: ".claude/plans".into(),
            logs_dir: ".baton/logs".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AgentKind {
    #[default]
    Claude,
    Codex,
    Gemini,
    /// Any command, given as a template in `agent.command`.
    Command,
    /// baton's built-in stand-in for an agent: calls no model, writes a note per task
    /// (`baton run PLAN --agent simulated`).
    Simulated,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Agent {
    pub kind: AgentKind,
    /// The agent CLI to run; found on PATH (and the npm global prefix) when unset.
    pub binary: Option<PathBuf>,
    pub model: Option<String>,
    /// The project's build/test command, told to the agent in its prompt.
    pub build_command: Option<String>,
    /// A file that replaces the built-in prompt template.
    pub prompt_template: Option<PathBuf>,
    /// For `kind = "command"`: the program and arguments; `{prompt}` is replaced by the prompt.
    pub command: Vec<String>,
    /// Extra arguments passed to the agent CLI.
    pub extra_args: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Run {
    pub timeout_seconds: f64,
    pub idle_timeout_seconds: f64,
    pub max_attempts: u32,
    pub backoff_initial_seconds: f64,
    pub backoff_max_seconds: f64,
    pub breaker_threshold: u32,
    pub breaker_cooldown_seconds: f64,
    pub jobs: usize,
    /// Added to a usage limit's reset time before retrying.
    pub limit_margin_seconds: f64,
    /// How long to wait on a usage limit whose reset time cannot be read.
    pub limit_fallback_seconds: f64,
    /// First back-off after server-side throttling (it grows, with jitter, to the max).
    pub throttle_initial_seconds: f64,
    pub throttle_max_seconds: f64,
    pub before_command: Option<String>,
    pub after_command: Option<String>,
    pub hook_timeout_seconds: f64,
    /// Commit each task's work and the plan state to git (the default). `false` runs without
    /// any git at all, e.g. in a folder that is not a repository.
    pub commit: bool,
}

impl Default for Run {
    fn default() -> Self {
        Run {
            timeout_seconds: 600.0,
            idle_timeout_seconds: 300.0,
            max_attempts: 3,
            backoff_initial_seconds: 5.0,
            backoff_max_seconds: 120.0,
            breaker_threshold: 3,
            breaker_cooldown_seconds: 300.0,
            jobs: 3,
            limit_margin_seconds: 30.0,
            limit_fallback_seconds: 3600.0,
            throttle_initial_seconds: 30.0,
            throttle_max_seconds: 600.0,
            before_command: None,
            after_command: None,
            hook_timeout_seconds: 120.0,
            commit: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Smoke {
    pub command: Option<String>,
    pub timeout_seconds: f64,
}

impl Default for Smoke {
    fn default() -> Self {
        Smoke {
            command: None,
            timeout_seconds: 300.0,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Notify {
    /// A URL that receives a JSON POST (Slack-compatible `text`) when a run ends.
    pub webhook: Option<String>,
    /// A shell command that receives the same JSON on stdin.
    pub command: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Pipeline {
    pub defect_backlog: PathBuf,
    pub feature_backlog: PathBuf,
    pub scan_interval_seconds: f64,
    pub parallel: bool,
}

impl Default for Pipeline {
    fn default() -> Self {
        Pipeline {
            defect_backlog: "docs/defect-backlog".into(),
            feature_backlog: "docs/feature-backlog".into(),
            scan_interval_seconds: 60.0,
            parallel: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}:{column}: {message}", path.display())]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
}

impl Config {
    /// Reads `baton.toml` in `root`; no file means all defaults.
    pub fn load(root: &Path) -> Result<Config, ConfigError> {
        let path = root.join(FILE_NAME);
        match std::fs::read_to_string(&path) {
            Ok(text) => Config::parse(&text, &path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(source) => Err(ConfigError::Read { path, source }),
        }
    }

    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map_or((0, 0), |s| line_col(text, s.start));
            ConfigError::Invalid {
                path: path.to_path_buf(),
                line,
                column,
                message: e.message().trim().to_string(),
            }
        })?;
        config.check(text, path)?;
        Ok(config)
    }

    /// Values serde accepts but baton cannot use.
    fn check(&self, text: &str, path: &Path) -> Result<(), ConfigError> {
        self.paths.check(text, path)?;
        let positive = [
            ("timeout_seconds", self.run.timeout_seconds),
            ("idle_timeout_seconds", self.run.idle_timeout_seconds),
            ("backoff_initial_seconds", self.run.backoff_initial_seconds),
            ("backoff_max_seconds", self.run.backoff_max_seconds),
            ("breaker_cooldown_seconds", self.run.breaker_cooldown_seconds),
            ("hook_timeout_seconds", self.run.hook_timeout_seconds),
            ("limit_margin_seconds", self.run.limit_margin_seconds),
            ("limit_fallback_seconds", self.run.limit_fallback_seconds),
            ("throttle_initial_seconds", self.run.throttle_initial_seconds),
            ("throttle_max_seconds", self.run.throttle_max_seconds),
            ("scan_interval_seconds", self.pipeline.scan_interval_seconds),
            ("timeout_seconds", self.smoke.timeout_seconds),
        ];
        let counts = [
            ("max_attempts", self.run.max_attempts as usize),
            ("breaker_threshold", self.run.breaker_threshold as usize),
            ("jobs", self.run.jobs),
        ];
        let bad = positive
            .iter()
            .find(|(_, v)| !(*v > 0.0 && *v <= crate::plan::MAX_SECONDS))
            .map(|(k, _)| (*k, "must be a number of seconds above 0 and at most 30 days"))
            .or_else(|| counts.iter().find(|(_, v)| *v == 0).map(|(k, _)| (*k, "must be at least 1")));
        match bad {
            None => Ok(()),
            Some((key, what)) => {
                let (line, column) = key_line(text, key).map_or((0, 0), |l| (l, 1));
                Err(ConfigError::Invalid {
                    path: path.to_path_buf(),
                    line,
                    column,
                    message: format!("`{key}` {what}"),
                })
            }
        }
    }
}

/// Where a `[paths]` value may point.
#[derive(Clone, Copy)]
enum Place {
    /// A file or folder of baton's own, which baton writes and deletes: inside `.claude/` or
    /// `.baton/`.
    Own,
    /// A file baton deletes before each attempt or at start (status file, stop file): inside
    /// `.baton/`, or `.claude/plans/` as the original tool had it — never elsewhere in
    /// `.claude/` (Claude Code's settings, agents and commands live there), never a plan.
    OwnFile,
    /// The worktrees' folder: baton's own too, or the original tool's `.worktrees`.
    Worktrees,
    /// The user's plans: anywhere in the repository but its `.git`.
    Repository,
}

impl Paths {
    /// baton deletes its status and stop files and clears worktrees at the paths named here: a
    /// value that points outside the repository (`../x`, an absolute path) or into something
    /// that is not baton's (`.git/HEAD`, `src/main.rs`) is refused, naming the key and line.
    fn check(&self, text: &str, path: &Path) -> Result<(), ConfigError> {
        let keys = [
            ("status_file", &self.status_file, Place::OwnFile),
            ("stop_file", &self.stop_file, Place::OwnFile),
            ("logs_dir", &self.logs_dir, Place::Own),
            ("worktrees_dir", &self.worktrees_dir, Place::Worktrees),
            ("plans_dir", &self.plans_dir, Place::Repository),
        ];
        for (key, value, place) in keys {
            if let Some(why) = path_problem(value, place) {
                let (line, column) = key_line(text, key).map_or((0, 0), |l| (l, 1));
                let default = Paths::default();
                let example = match key {
                    "status_file" => default.status_file,
                    "stop_file" => default.stop_file,
                    "logs_dir" => default.logs_dir,
                    "worktrees_dir" => default.worktrees_dir,
                    _ => default.plans_dir,
                };
                return Err(ConfigError::Invalid {
                    path: path.to_path_buf(),
                    line,
                    column,
                    message: format!("`{key}` = \"{}\" {why} (e.g. `{key} = \"{}\"`)", value.display(), example.display()),
                });
            }
        }
        let normal = |p: &Path| p.components().filter(|c| !matches!(c, std::path::Component::CurDir)).collect::<PathBuf>();
        if normal(&self.status_file) == normal(&self.stop_file) {
            let line = key_line(text, "stop_file").or_else(|| key_line(text, "status_file")).unwrap_or(0);
            return Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                line,
                column: 1,
                message: format!("`status_file` and `stop_file` are both \"{}\": the agent's report would stop the run", self.stop_file.display()),
            });
        }
        Ok(())
    }
}

/// Why `value` cannot be used for a path of `place`, or `None` when it can.
fn path_problem(value: &Path, place: Place) -> Option<&'static str> {
    use std::path::Component;
    let mut parts = Vec::new();
    for c in value.components() {
        match c {
            Component::Normal(p) => parts.push(p),
            Component::CurDir => {}
            Component::ParentDir => return Some("must not use `..`: baton's files stay inside the repository"),
            Component::RootDir | Component::Prefix(_) => {
                return Some("must be relative to the repository root: baton's files stay inside the repository")
            }
        }
    }
    let first = parts.first().and_then(|p| p.to_str());
    if parts.iter().any(|p| *p == ".git") {
        return Some("must not be inside `.git`: baton would write and delete git's own files");
    }
    let second = parts.get(1).and_then(|p| p.to_str());
    let is_plan = value.extension().is_some_and(|e| e == "yaml" || e == "yml");
    match place {
        Place::OwnFile if !(first == Some(".baton") || (first == Some(".claude") && second == Some("plans"))) || parts.len() < 2 || (first == Some(".claude") && parts.len() < 3) => {
            Some("must be a file inside `.baton/` or `.claude/plans/`: baton deletes it, and the rest of `.claude/` is Claude Code's")
        }
        Place::OwnFile if is_plan => Some("must not be a `.yaml` file: plans live there, and baton deletes this file"),
        Place::Own if !matches!(first, Some(".claude" | ".baton")) || parts.len() < 2 => {
            Some("must be a path inside `.claude/` or `.baton/` of the repository, where baton keeps the files it writes and deletes")
        }
        Place::Worktrees if !matches!(first, Some(".claude" | ".baton" | ".worktrees")) || (first != Some(".worktrees") && parts.len() < 2) => {
            Some("must be `.worktrees` or a folder inside `.claude/` or `.baton/`: baton deletes worktrees it finds there")
        }
        Place::Repository if parts.is_empty() => Some("must name a folder inside the repository"),
        _ => None,
    }
}

/// The line where `key` is set (`key = …` at the start of a line, not in a comment). Of several
/// (the same key in two tables), the one whose value is wrong is not known: the first is named.
fn key_line(text: &str, key: &str) -> Option<usize> {
    text.lines().position(|l| {
        let t = l.trim_start();
        t.strip_prefix(key).is_some_and(|rest| rest.trim_start().starts_with('='))
    })
    .map(|i| i + 1)
}

fn line_col(text: &str, byte: usize) -> (usize, usize) {
    let before = &text[..byte.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_keep_the_original_layout() {
        let c = Config::default();
        assert_eq!(c.paths.status_file, PathBuf::from(".claude/plans/task-status.json"));
        assert_eq!(c.paths.stop_file, PathBuf::from(".claude/plans/.stop"));
        assert_eq!(c.paths.worktrees_dir, PathBuf::from(".worktrees"));
        assert_eq!(c.pipeline.defect_backlog, PathBuf::from("docs/defect-backlog"));
        assert_eq!(c.run.timeout_seconds, 600.0);
        assert_eq!(c.run.idle_timeout_seconds, 300.0);
        assert!(c.run.commit, "baton commits unless told not to");
    }

    #[test]
    fn commit_can_be_turned_off() {
        let c = Config::parse("[run]\ncommit = false\n", Path::new("baton.toml")).unwrap();
        assert!(!c.run.commit);
        let e = Config::parse("[run]\ncommit = \"no\"\n", Path::new("baton.toml")).unwrap_err();
        assert!(e.to_string().starts_with("baton.toml:2:"), "{e}");
    }

    #[test]
    fn every_section_parses() {
        let text = r#"
[paths]
status_file = ".baton/status.json"
[agent]
kind = "claude"
binary = "/opt/claude"
model = "opus"
build_command = "cargo test"
[run]
timeout_seconds = 900
jobs = 4
[smoke]
command = "make smoke"
[notify]
webhook = "https://hooks.example/x"
[pipeline]
defect_backlog = "bugs"
"#;
        let c = Config::parse(text, Path::new("baton.toml")).unwrap();
        assert_eq!(c.run.timeout_seconds, 900.0);
        assert_eq!(c.run.jobs, 4);
        assert_eq!(c.run.max_attempts, 3, "unset keys keep defaults");
        assert_eq!(c.agent.build_command.as_deref(), Some("cargo test"));
        assert_eq!(c.pipeline.defect_backlog, PathBuf::from("bugs"));
    }

    #[test]
    fn unknown_keys_name_the_key_and_line() {
        let e = Config::parse("[run]\njobs = 2\ntimout_seconds = 5\n", Path::new("baton.toml")).unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("baton.toml:3:"), "{msg}");
        assert!(msg.contains("timout_seconds"), "{msg}");
        let e = Config::parse("[runn]\n", Path::new("baton.toml")).unwrap_err();
        assert!(e.to_string().contains("runn"), "{e}");
    }

    #[test]
    fn a_bad_value_is_found_on_its_own_line() {
        let text = "# max_attempts = 3 is the default\n[run]\nidle_timeout_seconds = 300\ntimeout_seconds = 0\nmax_attempts = 0\n";
        let e = Config::parse(text, Path::new("baton.toml")).unwrap_err();
        assert!(e.to_string().starts_with("baton.toml:4:1: `timeout_seconds`"), "{e}");
        let e = Config::parse("# max_attempts = 3\n[run]\nmax_attempts = 0\n", Path::new("baton.toml")).unwrap_err();
        assert!(e.to_string().starts_with("baton.toml:3:1:"), "{e}");
        let e = Config::parse("[smoke]\ntimeout_seconds = -5\n", Path::new("baton.toml")).unwrap_err();
        assert!(e.to_string().contains("at most 30 days"), "{e}");
        let e = Config::parse("[run]\ntimeout_seconds = 1e300\n", Path::new("baton.toml")).unwrap_err();
        assert!(e.to_string().contains("timeout_seconds"), "{e}");
    }

    #[test]
    fn paths_stay_inside_baton_folders_of_the_repository() {
        for (key, value) in [
            ("status_file", ".git/HEAD"),
            ("status_file", "../x"),
            ("status_file", "/etc/passwd"),
            ("status_file", "src/main.rs"),
            ("stop_file", ".claude"),
            ("stop_file", "./.claude/../../x"),
            ("logs_dir", "/tmp/logs"),
            ("worktrees_dir", "."),
            ("worktrees_dir", "src"),
            ("worktrees_dir", ".claude/../.git/wt"),
            ("plans_dir", "/home/me/plans"),
            ("plans_dir", ".git/plans"),
            ("stop_file", ".claude/settings.json"),
            ("status_file", ".claude/agents/coder.md"),
            ("status_file", ".claude/plans/new.yaml"),
            ("stop_file", ".baton/plan.yml"),
        ] {
            let text = format!("# baton\n[paths]\n{key} = \"{value}\"\n");
            let e = Config::parse(&text, Path::new("baton.toml")).unwrap_err().to_string();
            assert!(e.starts_with(&format!("baton.toml:3:1: `{key}` = \"{value}\" must")), "{e}");
            assert!(e.contains("(e.g. `"), "names a value that works: {e}");
        }
        for (key, value) in [
            ("status_file", ".baton/status.json"),
            ("stop_file", "./.claude/plans/stop"),
            ("logs_dir", ".baton/logs"),
            ("worktrees_dir", ".worktrees"),
            ("worktrees_dir", ".baton/worktrees"),
            ("plans_dir", "plans"),
            ("plans_dir", "docs/plans"),
        ] {
            let text = format!("[paths]\n{key} = \"{value}\"\n");
            assert!(Config::parse(&text, Path::new("baton.toml")).is_ok(), "{key} = {value}");
        }
        let defaults = toml::to_string(&Config::default()).unwrap();
        assert!(Config::parse(&defaults, Path::new("baton.toml")).is_ok());
    }

    #[test]
    fn the_agent_kind_is_one_baton_knows() {
        let c = Config::parse("[agent]\nkind = \"simulated\"\n", Path::new("baton.toml")).unwrap();
        assert_eq!(c.agent.kind, AgentKind::Simulated);
        let e = Config::parse("# agent\n[agent]\nkind = \"gpt\"\n", Path::new("baton.toml")).unwrap_err().to_string();
        assert!(e.starts_with("baton.toml:3:"), "{e}");
        assert!(e.contains("gpt") && e.contains("`simulated`"), "names the kinds there are: {e}");
    }

    #[test]
    fn nonsense_values_are_refused() {
        let e = Config::parse("[run]\njobs = 0\n", Path::new("baton.toml")).unwrap_err();
        assert!(e.to_string().contains("baton.toml:2:1: `jobs` must be at least 1"), "{e}");
        let e = Config::parse("[run]\ntimeout_seconds = \"x\"\n", Path::new("baton.toml")).unwrap_err();
        assert!(e.to_string().starts_with("baton.toml:2:"), "{e}");
    }
}
