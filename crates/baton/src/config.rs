//! `baton.toml`: the project's settings, every one optional, with defaults that keep the
//! original tool's layout so a repository that used it works unchanged.
//!
//! This module reads and checks the file; command-line flags are layered on top by the caller.
//! Every problem of the file is reported at once (unknown sections and keys with the name
//! meant, values of the wrong type, values baton cannot use), each with its line, column and
//! fix.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const FILE_NAME: &str = "baton.toml";

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub paths: Paths,
    pub agent: Agent,
    /// `[agents.NAME]`: named agents a task (`agent: NAME`), `[agent] default` and `[agent]
    /// fallback` choose from.
    pub agents: std::collections::BTreeMap<String, AgentDef>,
    /// `[prices.MODEL]`: what a model's tokens cost, for CLIs that report no cost.
    pub prices: std::collections::BTreeMap<String, Price>,
    pub run: Run,
    pub smoke: Smoke,
    pub notify: Notify,
    pub pipeline: Pipeline,
    pub verify: VerifyConfig,
    pub review: Review,
    pub budget: Budget,
    /// `[executor]`: where attempts run (this machine, or a Ray cluster).
    pub executor: ExecutorConfig,
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
    /// Any program (`argv`, with `{prompt}`, or the prompt on stdin).
    Command,
    /// baton's built-in stand-in for an agent: calls no model, writes a note per task
    /// (`baton run PLAN --agent simulated`).
    Simulated,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Agent {
    /// The kind of the agent `[agent]` itself describes (used when `default` is unset).
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
    /// The `[agents.NAME]` tasks run on when they name none (unset: the agent `[agent]`
    /// describes, named after its kind).
    pub default: Option<String>,
    /// `[agents.NAME]`s a task moves to, in order, when its agent meets a usage limit that
    /// resets more than `failover_after_minutes` from now.
    pub fallback: Vec<String>,
    /// A usage limit resetting sooner than this is waited out on the same agent.
    pub failover_after_minutes: f64,
}

impl Default for Agent {
    fn default() -> Self {
        Agent {
            kind: AgentKind::default(),
            binary: None,
            model: None,
            build_command: None,
            prompt_template: None,
            command: Vec::new(),
            extra_args: Vec::new(),
            default: None,
            fallback: Vec::new(),
            failover_after_minutes: 15.0,
        }
    }
}

/// `[agents.NAME]`: one named agent.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AgentDef {
    pub kind: AgentKind,
    /// The program to run; found on PATH (and the npm global prefix) when unset.
    pub binary: Option<PathBuf>,
    /// The model, when the plan names none for a task running on this agent.
    pub model: Option<String>,
    /// A model ladder: attempt n runs with `models[n-1]` (the last one from then on).
    pub models: Vec<String>,
    /// Extra arguments, after baton's own.
    pub args: Vec<String>,
    /// Environment variables set for this agent's sessions.
    pub env: std::collections::BTreeMap<String, String>,
    /// `kind = "command"`: the program and its arguments; `{prompt}` is replaced by the prompt.
    pub argv: Vec<String>,
    /// `kind = "command"`: what the program's stdin is — `"prompt"` or `"none"` (default: the
    /// prompt when `argv` has no `{prompt}`).
    pub stdin: Option<StdinMode>,
    /// Where it is defined, for messages: `agents.codex-main`, or `agent`. Not a key.
    #[serde(skip)]
    pub section: String,
}

/// What a command agent reads on stdin.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StdinMode {
    Prompt,
    None,
}

/// `[prices.MODEL]`: US dollars per million tokens.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Price {
    pub input: f64,
    /// Input tokens read from the provider's cache (default: `input`).
    pub cached_input: Option<f64>,
    /// Output tokens (reasoning among them).
    pub output: f64,
}

impl Price {
    /// What a session's tokens cost: `input` counts every input token, `cached` those of them
    /// read from the cache.
    pub fn cost(&self, input: u64, cached: u64, output: u64) -> f64 {
        let cached = cached.min(input);
        let per = |n: u64, rate: f64| n as f64 * rate / 1_000_000.0;
        per(input - cached, self.input) + per(cached, self.cached_input.unwrap_or(self.input)) + per(output, self.output)
    }
}

impl Agent {
    /// `[agent]` itself as a named agent, the one tasks run on when `default` is unset.
    pub fn as_def(&self) -> AgentDef {
        AgentDef {
            kind: self.kind,
            binary: self.binary.clone(),
            model: self.model.clone(),
            models: Vec::new(),
            args: self.extra_args.clone(),
            env: Default::default(),
            argv: self.command.clone(),
            stdin: None,
            section: "agent".into(),
        }
    }
}

impl AgentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentKind::Claude => "claude",
            AgentKind::Codex => "codex",
            AgentKind::Gemini => "gemini",
            AgentKind::Command => "command",
            AgentKind::Simulated => "simulated",
        }
    }

    /// The kind [`as_str`](Self::as_str) names.
    pub fn named(name: &str) -> Option<AgentKind> {
        [AgentKind::Claude, AgentKind::Codex, AgentKind::Gemini, AgentKind::Command, AgentKind::Simulated].into_iter().find(|k| k.as_str() == name)
    }
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

/// `[verify]`: checks run after an agent reports a task `completed`, before baton records it.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct VerifyConfig {
    /// Shell commands run for every task, before the plan's and the task's own.
    pub commands: Vec<String>,
    /// The longest one check command may run.
    pub timeout_seconds: f64,
    /// What a `completed` report without any change in the task's checkout gets.
    pub require_changes: RequireChanges,
}

impl Default for VerifyConfig {
    fn default() -> Self {
        VerifyConfig {
            commands: Vec::new(),
            timeout_seconds: 600.0,
            require_changes: RequireChanges::Warn,
        }
    }
}

/// `[review]`: a fresh agent session that judges each attempt the agent reports `completed`
/// (see `crate::run::review`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Review {
    /// Review every task (a plan's `meta.validation` can also turn reviewing on, or off).
    pub enabled: bool,
    /// The reviewer's model; unset: the agent's.
    pub model: Option<String>,
    /// A file, relative to the repository root, that replaces the built-in reviewer prompt.
    pub prompt_template: Option<PathBuf>,
    /// The named agent the reviewer session runs as (`--agent NAME`).
    pub agent: Option<String>,
    /// How many reviewer FAILs a task may get before it becomes `validation_exhausted`; a
    /// plan's `meta.validation.max_validation_attempts` overrides it.
    pub max_attempts: u32,
}

impl Default for Review {
    fn default() -> Self {
        Review {
            enabled: false,
            model: None,
            prompt_template: None,
            agent: None,
            max_attempts: 2,
        }
    }
}

/// The Ray dashboard's address when `[executor] address` is not set.
pub const DEFAULT_RAY_ADDRESS: &str = "http://127.0.0.1:8265";

/// Where attempts run.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ExecutorKind {
    /// On this machine, each agent in a process group under the guard.
    #[default]
    Local,
    /// As jobs of a Ray cluster (docs/scale-out.md).
    Ray,
}

/// `[executor]`: where attempts run, and for a cluster, how to reach it.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ExecutorConfig {
    pub kind: ExecutorKind,
    /// The Ray dashboard (its Jobs REST API), `http://host:port`.
    pub address: Option<String>,
    /// The git remote (a name, a URL or a path) every worker fetches from and pushes to;
    /// default `origin`.
    pub remote: Option<String>,
    /// The baton program on the workers (a path, or a name on their PATH); default `baton`.
    pub baton: Option<String>,
    /// Ray's `runtime_env` for every job (no credentials: the dashboard shows it).
    pub runtime_env: Option<toml::Table>,
    /// What each attempt asks of the cluster, unless its task says otherwise (`resources:`).
    pub resources: crate::exec::Resources,
    /// The cluster adds nodes for jobs that wait (an autoscaler): a task no node can run now is
    /// submitted anyway. Without it, such a task stops the run at once.
    pub wait_for_resources: bool,
}

/// `[budget]`: what runs may spend, when a plan or the command line does not say.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Budget {
    /// A plan's budget over all its runs, in US dollars, for plans without `meta.budget_usd`.
    pub plan_usd: Option<f64>,
    /// One run's budget, in US dollars, when `baton run` is not given `--max-cost`.
    pub run_usd: Option<f64>,
    /// What an attempt is expected to cost while the plan has no recorded attempt cost to take
    /// the median of; 0: an attempt starts while anything of the budget remains.
    pub attempt_estimate_usd: f64,
    /// Give each agent session that can take one a spending cap of what remains
    /// (Claude Code's `--max-budget-usd`).
    pub cap_sessions: bool,
}

impl Budget {
    /// A plan's budget over all its runs, and where it was set: its `meta.budget_usd`, else
    /// `[budget] plan_usd`.
    pub fn for_plan(&self, plan: &crate::plan::Plan) -> Option<(f64, &'static str)> {
        plan.meta.budget_usd.map(|b| (b, "meta.budget_usd")).or(self.plan_usd.map(|b| (b, "[budget] plan_usd")))
    }
}

impl Default for Budget {
    fn default() -> Self {
        Budget { plan_usd: None, run_usd: None, attempt_estimate_usd: 0.0, cap_sessions: true }
    }
}

/// What a task that reports `completed` without any change gets (`[verify] require_changes`).
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RequireChanges {
    /// Recorded and shown; the task completes.
    #[default]
    Warn,
    /// The attempt fails.
    Fail,
    /// Not looked at.
    Off,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Every problem of the file, in the order of its lines.
    #[error("{}", render(path, problems))]
    Invalid { path: PathBuf, problems: Vec<Problem> },
}

/// One problem of `baton.toml`: where (1-based; line 0 when the place is not known), what, and
/// how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub help: String,
}

impl Problem {
    fn at(text: &str, span: Option<std::ops::Range<usize>>, message: impl Into<String>, help: impl Into<String>) -> Problem {
        let (line, column) = span.map_or((0, 0), |s| line_col(text, s.start));
        Problem { line, column, message: message.into(), help: help.into() }
    }
}

/// The problems as a person reads them: each with its place and its fix, then how many.
fn render(path: &Path, problems: &[Problem]) -> String {
    let file = path.display();
    let mut out = String::new();
    for p in problems {
        if !out.is_empty() {
            out.push_str("error: ");
        }
        match (p.line, p.column) {
            (0, _) => out.push_str(&format!("{file}: {}", p.message)),
            (l, c) => out.push_str(&format!("{file}:{l}:{c}: {}", p.message)),
        }
        out.push_str(&format!("\n  help: {}\n", p.help));
    }
    let n = problems.len();
    out.push_str(&format!("error: {file} is not valid ({n} problem{}); nothing was run or changed", if n == 1 { "" } else { "s" }));
    out
}

/// Where the docs of every key are.
const SEE_DOCS: &str = "see README.md, \"Configuration\"";

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

    /// Parses and checks `text`, finding every problem at once: a syntax error ends the
    /// reading; otherwise unknown sections and keys, values of the wrong type and values baton
    /// cannot use are all reported, each at its line and column.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let invalid = |mut problems: Vec<Problem>| {
            problems.sort_by_key(|p| (p.line, p.column));
            problems.dedup();
            ConfigError::Invalid { path: path.to_path_buf(), problems }
        };
        let (doc, syntax) = toml::de::DeTable::parse_recoverable(text);
        if !syntax.is_empty() {
            let problems = syntax.iter().map(|e| Problem::at(text, e.span(), e.message().trim(), "fix the TOML syntax here")).collect();
            return Err(invalid(problems));
        }
        let span = doc.span();
        let mut table = doc.into_inner();
        let mut problems = unknown_keys(&mut table, text);
        // serde stops at the first value of the wrong type: each one found is reported and
        // taken out, and the rest read again, until the rest reads.
        let config = loop {
            let de = toml::de::Deserializer::from(toml::Spanned::new(span.clone(), table.clone()));
            match Config::deserialize(de) {
                Ok(config) => break config,
                Err(e) => {
                    let key = take_out(&mut table, e.span());
                    // A word baton does not know (`kind = "gpt"`) has the right type already.
                    let unknown_word = e.message().trim_start().starts_with("unknown variant");
                    let help = match &key {
                        Some(key) if unknown_word => format!("give {key} one of the values listed ({SEE_DOCS})"),
                        Some(key) => format!("give {key} a value of the right type ({SEE_DOCS})"),
                        None => format!("fix this value ({SEE_DOCS})"),
                    };
                    problems.push(Problem::at(text, e.span(), plain_types(e.message().trim()), help));
                    if key.is_none() {
                        return Err(invalid(problems));
                    }
                }
            }
        };
        let at = |section: &str, key: &str| key_span(&table, section, key).map(|s| line_col(text, s.start));
        problems.extend(config.check(&at));
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(invalid(problems))
        }
    }

    /// Values serde accepts but baton cannot use; `at` says where a key is set.
    fn check(&self, at: &KeyPlace<'_>) -> Vec<Problem> {
        let mut problems = self.paths.check(at);
        let (run, smoke, pipeline) = (Run::default(), Smoke::default(), Pipeline::default());
        let (verify, review) = (VerifyConfig::default(), Review::default());
        let positive = [
            ("run", "timeout_seconds", self.run.timeout_seconds, run.timeout_seconds),
            ("run", "idle_timeout_seconds", self.run.idle_timeout_seconds, run.idle_timeout_seconds),
            ("run", "backoff_initial_seconds", self.run.backoff_initial_seconds, run.backoff_initial_seconds),
            ("run", "backoff_max_seconds", self.run.backoff_max_seconds, run.backoff_max_seconds),
            ("run", "breaker_cooldown_seconds", self.run.breaker_cooldown_seconds, run.breaker_cooldown_seconds),
            ("run", "hook_timeout_seconds", self.run.hook_timeout_seconds, run.hook_timeout_seconds),
            ("run", "limit_margin_seconds", self.run.limit_margin_seconds, run.limit_margin_seconds),
            ("run", "limit_fallback_seconds", self.run.limit_fallback_seconds, run.limit_fallback_seconds),
            ("run", "throttle_initial_seconds", self.run.throttle_initial_seconds, run.throttle_initial_seconds),
            ("run", "throttle_max_seconds", self.run.throttle_max_seconds, run.throttle_max_seconds),
            ("pipeline", "scan_interval_seconds", self.pipeline.scan_interval_seconds, pipeline.scan_interval_seconds),
            ("smoke", "timeout_seconds", self.smoke.timeout_seconds, smoke.timeout_seconds),
            ("verify", "timeout_seconds", self.verify.timeout_seconds, verify.timeout_seconds),
        ];
        let counts = [
            ("run", "max_attempts", self.run.max_attempts as usize, run.max_attempts as usize),
            ("run", "breaker_threshold", self.run.breaker_threshold as usize, run.breaker_threshold as usize),
            ("run", "jobs", self.run.jobs, run.jobs),
            ("review", "max_attempts", self.review.max_attempts as usize, review.max_attempts as usize),
        ];
        let mut bad = |section: &str, key: &str, what: &str, default: String| {
            let (line, column) = at(section, key).unwrap_or((0, 0));
            problems.push(Problem {
                line,
                column,
                message: format!("`{key}` {what}"),
                help: format!("e.g. `{key} = {default}` (the default), or remove it"),
            });
        };
        for (section, key, value, default) in positive {
            if !(value > 0.0 && value <= crate::plan::MAX_SECONDS) {
                bad(section, key, "must be a number of seconds above 0 and at most 30 days", default.to_string());
            }
        }
        for (section, key, value, default) in counts {
            if value == 0 {
                bad(section, key, "must be at least 1", default.to_string());
            }
        }
        let dollars = [
            ("plan_usd", self.budget.plan_usd.unwrap_or(0.0), "10.00"),
            ("run_usd", self.budget.run_usd.unwrap_or(0.0), "5.00"),
            ("attempt_estimate_usd", self.budget.attempt_estimate_usd, "0.50"),
        ];
        for (key, value, example) in dollars {
            if !(value.is_finite() && (0.0..=crate::policy::budget::MAX_USD).contains(&value)) {
                let (line, column) = at("budget", key).unwrap_or((0, 0));
                problems.push(Problem {
                    line,
                    column,
                    message: format!("`{key}` must be an amount of US dollars, 0 to 1,000,000"),
                    help: format!("e.g. `{key} = {example}`, or remove it"),
                });
            }
        }
        problems.extend(self.check_agents(at));
        if let Some(p) = self.executor.resources.problem() {
            let (line, column) = at("executor", "resources").unwrap_or((0, 0));
            problems.push(Problem { line, column, message: format!("[executor.resources] {p}"), help: "e.g. `num_cpus = 1`, `memory = \"4GiB\"`, `custom = { claude_account = 1 }`".into() });
        }
        if let Some(address) = &self.executor.address {
            if let Err(e) = crate::exec::ray::http::Endpoint::parse(address) {
                let (line, column) = at("executor", "address").unwrap_or((0, 0));
                problems.push(Problem { line, column, message: format!("`address` {e}"), help: format!("e.g. `address = \"{DEFAULT_RAY_ADDRESS}\"` (the Ray dashboard)") });
            }
        }
        if self.verify.commands.iter().any(|c| c.trim().is_empty()) {
            let (line, column) = at("verify", "commands").unwrap_or((0, 0));
            problems.push(Problem {
                line,
                column,
                message: "`commands` has an empty command".into(),
                help: "give each check a shell command, e.g. `commands = [\"cargo test\"]`, or remove the empty one".into(),
            });
        }
        problems
    }
}

impl Config {
    /// `--agent CHOICE`: `simulated` puts every task on the simulated agent (no fallback, no
    /// named agents); a name of baton.toml makes that agent the default; another kind's name
    /// makes `[agent]` that kind.
    pub fn use_agent(&mut self, choice: &str) -> Result<(), String> {
        if choice == AgentKind::Simulated.as_str() {
            self.agent.kind = AgentKind::Simulated;
            self.agent.default = None;
            self.agent.fallback.clear();
            self.agents.clear();
            return Ok(());
        }
        if self.agent_def(choice).is_some() {
            self.agent.default = Some(choice.to_string());
            return Ok(());
        }
        let kinds = [AgentKind::Claude, AgentKind::Codex, AgentKind::Gemini];
        match kinds.into_iter().find(|k| k.as_str() == choice) {
            Some(kind) => {
                self.agent.kind = kind;
                self.agent.default = None;
                self.agent.binary = None;
                self.agent.model = None;
                Ok(())
            }
            None => Err(format!(
                "error: --agent {choice}: no such agent\n  help: name one of baton.toml's agents ({}), a kind (claude, codex, gemini), or `simulated`",
                self.agent_names().join(", ")
            )),
        }
    }

    /// The name of the agent tasks run on when they name none: `[agent] default`, else the
    /// agent `[agent]` describes, named after its kind.
    pub fn default_agent(&self) -> &str {
        self.agent.default.as_deref().unwrap_or(self.agent.kind.as_str())
    }

    /// The named agent `name`: an `[agents.NAME]` table, or `[agent]` itself under its kind's
    /// name (when no table has that name).
    pub fn agent_def(&self, name: &str) -> Option<AgentDef> {
        match self.agents.get(name) {
            Some(def) => Some(AgentDef { section: format!("agents.{name}"), ..def.clone() }),
            None if name == self.agent.kind.as_str() => Some(self.agent.as_def()),
            None => None,
        }
    }

    /// Every agent a task may name, in order: the `[agents.NAME]` tables, then `[agent]`'s own.
    pub fn agent_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.agents.keys().cloned().collect();
        if !self.agents.contains_key(self.agent.kind.as_str()) {
            names.push(self.agent.kind.as_str().to_string());
        }
        names
    }

    /// `[agent] default` and `fallback` name agents that exist, each agent can be started as
    /// configured, prices are amounts.
    fn check_agents(&self, at: &KeyPlace<'_>) -> Vec<Problem> {
        let mut problems = Vec::new();
        let mut problem = |section: &str, key: &str, message: String, help: String| {
            let (line, column) = at(section, key).unwrap_or((0, 0));
            problems.push(Problem { line, column, message, help });
        };
        let known = self.agent_names().join(", ");
        let define = |name: &str| format!("define it in an [agents.{name}] table (kind, binary, model…), or name one of: {known}");
        if let Some(name) = &self.agent.default {
            if self.agent_def(name).is_none() {
                problem("agent", "default", format!("`default` = \"{name}\" names no agent"), define(name));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for name in &self.agent.fallback {
            if self.agent_def(name).is_none() {
                problem("agent", "fallback", format!("`fallback` names \"{name}\", which is no agent"), define(name));
            } else if !seen.insert(name) {
                problem("agent", "fallback", format!("`fallback` names \"{name}\" twice"), "name each agent once".into());
            }
        }
        if !(self.agent.failover_after_minutes.is_finite() && (0.0..=crate::plan::MAX_SECONDS / 60.0).contains(&self.agent.failover_after_minutes)) {
            problem("agent", "failover_after_minutes", "`failover_after_minutes` must be a number of minutes, 0 or more".into(), "e.g. `failover_after_minutes = 15` (the default), or remove it".into());
        }
        let shadowed = self.agents.contains_key(self.agent.kind.as_str());
        let own = [("binary", self.agent.binary.is_some()), ("model", self.agent.model.is_some()), ("extra_args", !self.agent.extra_args.is_empty()), ("command", !self.agent.command.is_empty())];
        for (key, set) in own {
            if set && shadowed {
                let kind = self.agent.kind.as_str();
                problem("agent", key, format!("`{key}` in [agent] describes the agent named \"{kind}\", but [agents.{kind}] defines that name"), format!("move it into [agents.{kind}] (its keys are binary, model, models, args, env, argv, stdin)"));
            }
        }
        for (name, def) in self.agents.iter().map(|(n, d)| (n.clone(), d.clone())).chain((!shadowed).then(|| (self.agent.kind.as_str().to_string(), self.agent.as_def()))) {
            let section = if self.agents.contains_key(&name) { format!("agents.{name}") } else { "agent".to_string() };
            let argv_key = if section == "agent" { "command" } else { "argv" };
            let plain = name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !plain || !name.starts_with(|c: char| c.is_ascii_alphanumeric()) || name.len() > 64 {
                let shown: String = name.chars().take(64).flat_map(char::escape_default).collect();
                problem(&section, "kind", format!("the agent name \"{shown}\" is not a plain name"), "start with a letter or digit, then letters, digits, `-`, `_` and `.` only, at most 64 (e.g. [agents.codex-main]): a task names it in `agent:`".into());
            }
            for (key, value) in &def.env {
                if key.is_empty() || key.contains(['=', '\0']) || value.contains('\0') {
                    let shown: String = key.chars().take(64).flat_map(char::escape_default).collect();
                    problem(&section, "env", format!("`env` has the variable \"{shown}\", which cannot be set"), "a variable's name is not empty and has no `=`; neither holds a NUL character".into());
                }
            }
            if let Some(flag) = def.args.iter().find_map(|a| reserved_flag(def.kind, a)) {
                let key = if section == "agent" { "extra_args" } else { "args" };
                problem(
                    &section,
                    key,
                    format!("`{key}` has `{flag}`, which baton passes itself: the {} it reads depends on it", def.kind.as_str()),
                    "remove it (a model goes in `model`; baton chooses the output format it reads)".into(),
                );
            }
            match def.kind {
                AgentKind::Command if def.argv.first().is_none_or(|p| p.trim().is_empty()) => problem(
                    &section,
                    "kind",
                    format!("[{section}] is a command agent without a program"),
                    format!("give `{argv_key}`, e.g. `{argv_key} = [\"aider\", \"--yes\", \"--message\", \"{{prompt}}\"]`"),
                ),
                AgentKind::Command => {}
                _ if !def.argv.is_empty() || def.stdin.is_some() => {
                    let key = if def.argv.is_empty() { "stdin" } else { argv_key };
                    problem(&section, key, format!("`{key}` is for command agents; [{section}] is kind \"{}\"", def.kind.as_str()), "remove it, or set `kind = \"command\"`".into());
                }
                _ => {}
            }
            if def.kind == AgentKind::Command && def.stdin == Some(StdinMode::Prompt) && def.argv.iter().any(|a| a.contains("{prompt}")) {
                problem(&section, "stdin", "`stdin = \"prompt\"` and `{prompt}` in `argv` would give the prompt twice".into(), "keep one of them".into());
            }
        }
        for (model, price) in &self.prices {
            let amounts = [Some(price.input), price.cached_input, Some(price.output)];
            if amounts.iter().flatten().any(|v| !(v.is_finite() && (0.0..=1_000_000.0).contains(v))) {
                problem(&format!("prices.{model}"), "input", format!("[prices.\"{model}\"] must give US dollars per million tokens, 0 or more"), "e.g. `input = 1.25`, `cached_input = 0.125`, `output = 10.0`".into());
            }
        }
        problems
    }
}

/// A flag of an agent's command line that baton sets itself (its output format, its
/// non-interactive mode, the model): one in `args` would change what baton reads.
fn reserved_flag(kind: AgentKind, arg: &str) -> Option<&'static str> {
    let flag = arg.split('=').next().unwrap_or(arg);
    let reserved: &[&'static str] = match kind {
        // `--print` and `--verbose` given twice change nothing: not refused.
        AgentKind::Claude => &["--output-format", "--input-format", "--model", "--agent", "--max-budget-usd"],
        AgentKind::Codex => &["exec", "--json", "--model", "-m"],
        AgentKind::Gemini => &["--output-format", "-o", "--prompt", "-p", "--prompt-interactive", "-i", "--model", "-m"],
        AgentKind::Command | AgentKind::Simulated => &[],
    };
    // `-mo3`: a short flag with its value attached is the flag too.
    reserved.iter().copied().find(|r| *r == flag || (r.len() == 2 && !arg.starts_with("--") && arg.starts_with(*r)))
}

/// Takes the sections and keys baton does not know out of `table`, a problem for each, with
/// the name meant when it is close to one.
fn unknown_keys(table: &mut toml::de::DeTable<'_>, text: &str) -> Vec<Problem> {
    let sections = field_names::<Config>();
    let mut problems = Vec::new();
    let mut unknown_sections = Vec::new();
    for (name, value) in table.iter_mut() {
        let Some(keys) = section_keys(name.get_ref()) else {
            let help = match closest(name.get_ref(), sections) {
                Some(s) => format!("did you mean `[{s}]`?"),
                None => format!("the sections are {}", sections.iter().map(|s| format!("[{s}]")).collect::<Vec<_>>().join(", ")),
            };
            problems.push(Problem::at(text, Some(name.span()), format!("unknown section `[{}]`", name.get_ref()), help));
            unknown_sections.push(name.get_ref().to_string());
            continue;
        };
        let toml::de::DeValue::Table(inner) = value.get_mut() else { continue };
        if let Some(keys) = nested_keys(name.get_ref()) {
            // `[agents.NAME]`, `[prices.MODEL]`: a table of tables, each with the keys of one.
            for (entry, value) in inner.iter_mut() {
                if let toml::de::DeValue::Table(entry_table) = value.get_mut() {
                    let section = format!("{}.{}", name.get_ref(), entry.get_ref());
                    problems.extend(unknown_in(entry_table, keys, &section, &[], text));
                }
            }
            continue;
        }
        problems.extend(unknown_in(inner, keys, name.get_ref(), sections, text));
    }
    for name in unknown_sections {
        table.remove(name.as_str());
    }
    problems
}

/// The sections whose entries are tables of their own, and the keys of each entry.
fn nested_keys(section: &str) -> Option<&'static [&'static str]> {
    match section {
        "agents" => Some(field_names::<AgentDef>()),
        "prices" => Some(field_names::<Price>()),
        _ => None,
    }
}

/// Takes the keys that `keys` does not hold out of `inner`, the table of `[section]`, a problem
/// for each (`sections`: where else a key may belong).
fn unknown_in(inner: &mut toml::de::DeTable<'_>, keys: &[&str], section: &str, sections: &[&str], text: &str) -> Vec<Problem> {
    let mut problems = Vec::new();
    {
        let mut unknown = Vec::new();
        for (key, _) in inner.iter() {
            let key_name: &str = key.get_ref();
            if keys.contains(&key_name) {
                continue;
            }
            let elsewhere = sections.iter().find(|s| section_keys(s).is_some_and(|k| k.contains(&key_name)));
            let help = match (closest(key_name, keys), elsewhere) {
                (Some(k), _) => format!("did you mean `{k}`?"),
                (None, Some(s)) => format!("`{key_name}` belongs in [{s}]"),
                (None, None) => format!("remove it; the keys of [{section}] are {}", keys.join(", ")),
            };
            problems.push(Problem::at(text, Some(key.span()), format!("unknown key `{key_name}` in [{section}]"), help));
            unknown.push(key_name.to_string());
        }
        for key in unknown {
            inner.remove(key.as_str());
        }
    }
    problems
}

/// The keys of a section of `baton.toml`.
fn section_keys(section: &str) -> Option<&'static [&'static str]> {
    Some(match section {
        "paths" => field_names::<Paths>(),
        "agent" => field_names::<Agent>(),
        "run" => field_names::<Run>(),
        "smoke" => field_names::<Smoke>(),
        "notify" => field_names::<Notify>(),
        "pipeline" => field_names::<Pipeline>(),
        "verify" => field_names::<VerifyConfig>(),
        "review" => field_names::<Review>(),
        "budget" => field_names::<Budget>(),
        "executor" => field_names::<ExecutorConfig>(),
        "agents" | "prices" => &[],
        _ => return None,
    })
}

/// The known name closest to `name`, when it is close enough to be a slip.
pub(crate) fn closest<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (edit_distance(name, k), *k))
        .filter(|(d, k)| *d <= (k.len() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Edit distance by characters, a swap of two neighbours counting as one edit (optimal string
/// alignment): `agnet` is one slip from `agent`.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// serde's message with Rust's type names in words.
fn plain_types(message: &str) -> String {
    let mut out = message.to_owned();
    for (rust, words) in [("expected u32", "expected a whole number"), ("expected usize", "expected a whole number"), ("expected f64", "expected a number")] {
        out = out.replace(rust, words);
    }
    out
}

/// Takes out of `table` the key or section whose name or value holds `span` (where serde
/// found a problem); its name as the file would say it, or `None` when none does.
fn take_out(table: &mut toml::de::DeTable<'_>, span: Option<std::ops::Range<usize>>) -> Option<String> {
    let at = span?.start;
    let holds = |s: std::ops::Range<usize>| s.contains(&at) || s.start == at;
    // A key inside a section first: a `[section]`'s own span is its header, not its keys.
    let mut found = None;
    for (section, value) in table.iter_mut() {
        if let toml::de::DeValue::Table(inner) = value.get_mut() {
            if nested_keys(section.get_ref()).is_some() {
                // `[agents.NAME]`: a key of an entry (whose own span may be only its header).
                for (entry, entry_value) in inner.iter_mut() {
                    if let toml::de::DeValue::Table(entry_table) = entry_value.get_mut() {
                        let inside = entry_table.iter().find(|(k, v)| holds(k.span()) || holds(v.span())).map(|(k, _)| k.get_ref().to_string());
                        if let Some(inside) = inside {
                            entry_table.remove(inside.as_str());
                            return Some(format!("`{inside}` in [{}.{}]", section.get_ref(), entry.get_ref()));
                        }
                    }
                }
            }
            let key = inner.iter().find(|(k, v)| holds(k.span()) || holds(v.span())).map(|(k, _)| k.get_ref().to_string());
            if let Some(key) = key {
                inner.remove(key.as_str());
                found = Some(format!("{key}` in [{}]", section.get_ref()));
                break;
            }
        }
    }
    if found.is_some() {
        return found.map(|f| format!("`{f}"));
    }
    let section = table.iter().find(|(k, v)| holds(k.span()) || holds(v.span())).map(|(k, _)| k.get_ref().to_string())?;
    table.remove(section.as_str());
    Some(format!("`{section}`"))
}

/// Where `key` of `section` is set.
fn key_span(table: &toml::de::DeTable<'_>, section: &str, key: &str) -> Option<std::ops::Range<usize>> {
    if let Some((outer, entry)) = section.split_once('.').filter(|(outer, _)| nested_keys(outer).is_some()) {
        // `[agents.NAME]`: the key inside the entry, else the entry's name.
        let toml::de::DeValue::Table(inner) = table.get(outer)?.get_ref() else { return None };
        let (name, value) = inner.get_key_value(entry)?;
        return match value.get_ref() {
            toml::de::DeValue::Table(entry_table) => Some(entry_table.get_key_value(key).map_or(name.span(), |(k, _)| k.span())),
            _ => Some(name.span()),
        };
    }
    match table.get(section)?.get_ref() {
        toml::de::DeValue::Table(inner) => inner.get_key_value(key).map(|(k, _)| k.span()),
        _ => None,
    }
}

/// The field names a struct of this module deserializes, as its derive tells serde.
fn field_names<T: serde::de::DeserializeOwned>() -> &'static [&'static str] {
    let mut names: &'static [&'static str] = &[];
    let _ = T::deserialize(FieldNames(&mut names));
    names
}

/// A deserializer that only records the field names a struct asks for.
struct FieldNames<'a>(&'a mut &'static [&'static str]);

impl<'de> serde::Deserializer<'de> for FieldNames<'_> {
    type Error = serde::de::value::Error;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(serde::de::Error::custom("field names only"))
    }

    fn deserialize_struct<V: serde::de::Visitor<'de>>(self, _: &'static str, fields: &'static [&'static str], _: V) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(serde::de::Error::custom("field names only"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
        unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

/// Where a key of a section is set: its line and column.
type KeyPlace<'a> = dyn Fn(&str, &str) -> Option<(usize, usize)> + 'a;

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
    fn check(&self, at: &KeyPlace<'_>) -> Vec<Problem> {
        let default = Paths::default();
        let keys = [
            ("status_file", &self.status_file, Place::OwnFile, &default.status_file),
            ("stop_file", &self.stop_file, Place::OwnFile, &default.stop_file),
            ("logs_dir", &self.logs_dir, Place::Own, &default.logs_dir),
            ("worktrees_dir", &self.worktrees_dir, Place::Worktrees, &default.worktrees_dir),
            ("plans_dir", &self.plans_dir, Place::Repository, &default.plans_dir),
        ];
        let mut problems = Vec::new();
        for (key, value, place, example) in keys {
            if let Some(why) = path_problem(value, place) {
                let (line, column) = at("paths", key).unwrap_or((0, 0));
                problems.push(Problem {
                    line,
                    column,
                    message: format!("`{key}` = \"{}\" {why} (e.g. `{key} = \"{}\"`)", value.display(), example.display()),
                    help: format!("use a path like `{}` (the default), or remove it", example.display()),
                });
            }
        }
        let normal = |p: &Path| p.components().filter(|c| !matches!(c, std::path::Component::CurDir)).collect::<PathBuf>();
        if normal(&self.status_file) == normal(&self.stop_file) {
            let (line, column) = at("paths", "stop_file").or_else(|| at("paths", "status_file")).unwrap_or((0, 0));
            problems.push(Problem {
                line,
                column,
                message: format!("`status_file` and `stop_file` are both \"{}\": the agent's report would stop the run", self.stop_file.display()),
                help: "give them different files".into(),
            });
        }
        problems
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

    #[test]
    fn every_problem_is_reported_at_once_with_its_place_and_fix() {
        let text = "\
[run]
jobs = 0
timout_seconds = 5
max_attempts = \"three\"
[agent]
kind = \"gpt\"
jobs = 3
[smoke]
timeout_seconds = -1
[runn]
x = 1
";
        let e = Config::parse(text, Path::new("baton.toml")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "\
baton.toml:2:1: `jobs` must be at least 1
  help: e.g. `jobs = 3` (the default), or remove it
error: baton.toml:3:1: unknown key `timout_seconds` in [run]
  help: did you mean `timeout_seconds`?
error: baton.toml:4:16: invalid type: string \"three\", expected a whole number
  help: give `max_attempts` in [run] a value of the right type (see README.md, \"Configuration\")
error: baton.toml:6:8: unknown variant `gpt`, expected one of `claude`, `codex`, `gemini`, `command`, `simulated`
  help: give `kind` in [agent] one of the values listed (see README.md, \"Configuration\")
error: baton.toml:7:1: unknown key `jobs` in [agent]
  help: `jobs` belongs in [run]
error: baton.toml:9:1: `timeout_seconds` must be a number of seconds above 0 and at most 30 days
  help: e.g. `timeout_seconds = 300` (the default), or remove it
error: baton.toml:10:2: unknown section `[runn]`
  help: did you mean `[run]`?
error: baton.toml is not valid (7 problems); nothing was run or changed"
        );
    }

    #[test]
    fn a_value_is_placed_in_its_own_section() {
        // `timeout_seconds` is in [run] and [smoke]: the bad one is named, not the first.
        let e = Config::parse("[run]\ntimeout_seconds = 60\n[smoke]\ntimeout_seconds = 0\n", Path::new("baton.toml")).unwrap_err();
        assert!(e.to_string().starts_with("baton.toml:4:1: `timeout_seconds`"), "{e}");
    }

    #[test]
    fn verify_has_its_keys_types_and_values_checked() {
        let c = Config::default();
        assert!(c.verify.commands.is_empty());
        assert_eq!(c.verify.timeout_seconds, 600.0);
        assert_eq!(c.verify.require_changes, RequireChanges::Warn);
        let text = "[verify]\ncommands = [\"cargo test\", \"cargo clippy\"]\ntimeout_seconds = 120\nrequire_changes = \"fail\"\n";
        let c = Config::parse(text, Path::new("baton.toml")).unwrap();
        assert_eq!(c.verify.commands, ["cargo test", "cargo clippy"]);
        assert_eq!(c.verify.timeout_seconds, 120.0);
        assert_eq!(c.verify.require_changes, RequireChanges::Fail);
        let c = Config::parse("[verify]\nrequire_changes = \"off\"\n", Path::new("baton.toml")).unwrap();
        assert_eq!(c.verify.require_changes, RequireChanges::Off);

        let e = Config::parse("[verify]\ncommand = [\"make\"]\n", Path::new("baton.toml")).unwrap_err().to_string();
        assert!(e.starts_with("baton.toml:2:1: unknown key `command` in [verify]"), "{e}");
        assert!(e.contains("did you mean `commands`?"), "{e}");
        let e = Config::parse("[verify]\ncommands = \"make\"\n", Path::new("baton.toml")).unwrap_err().to_string();
        assert!(e.starts_with("baton.toml:2:"), "{e}");
        assert!(e.contains("give `commands` in [verify] a value of the right type"), "{e}");
        let e = Config::parse("# checks\n[verify]\nrequire_changes = \"always\"\n", Path::new("baton.toml")).unwrap_err().to_string();
        assert!(e.starts_with("baton.toml:3:"), "{e}");
        assert!(e.contains("`warn`, `fail`, `off`"), "names the values there are: {e}");
        let e = Config::parse("[verify]\ntimeout_seconds = 0\n", Path::new("baton.toml")).unwrap_err().to_string();
        assert!(e.starts_with("baton.toml:2:1: `timeout_seconds` must be a number of seconds above 0"), "{e}");
        assert!(e.contains("`timeout_seconds = 600`"), "{e}");
        let e = Config::parse("[verify]\ncommands = [\"make\", \" \"]\n", Path::new("baton.toml")).unwrap_err().to_string();
        assert!(e.starts_with("baton.toml:2:1: `commands` has an empty command"), "{e}");
        let e = Config::parse("[verfy]\n", Path::new("baton.toml")).unwrap_err().to_string();
        assert!(e.contains("did you mean `[verify]`?"), "{e}");
    }

    #[test]
    fn a_syntax_error_is_placed_too() {
        let e = Config::parse("[run\njobs = 1\n", Path::new("baton.toml")).unwrap_err();
        assert!(e.to_string().starts_with("baton.toml:1:5: "), "{e}");
        assert!(e.to_string().contains("help: fix the TOML syntax here"), "{e}");
    }

    #[test]
    fn named_agents_are_read_and_every_problem_of_theirs_is_told_at_once() {
        let text = "[run]\ntimeout_seconds = \"10\"\n[agents.a]\nkind = \"command\"\nargv = \"x\"\n[agents.b]\nkind = \"gpt\"\nenv = \"FOO=1\"\n[agent]\ndefault = \"a\"\n";
        let e = Config::parse(text, Path::new("baton.toml")).unwrap_err().to_string();
        for (at, what) in [("baton.toml:2:", "timeout_seconds"), ("baton.toml:5:", "argv"), ("baton.toml:7:", "gpt"), ("baton.toml:8:", "env")] {
            assert!(e.lines().any(|l| l.contains(at) && l.contains(what) || l.contains(at)), "no problem at {at} ({what}):\n{e}");
        }
        assert!(e.contains("`argv` in [agents.a]") && e.contains("`env` in [agents.b]"), "{e}");
        let ok = Config::parse("[agent]\ndefault = \"cx\"\nfallback = [\"gm\"]\n[agents.cx]\nkind = \"codex\"\nmodel = \"gpt-5.5\"\nenv = { CODEX_HOME = \"/h\" }\n[agents.gm]\nkind = \"gemini\"\nmodels = [\"a\", \"b\"]\n", Path::new("baton.toml")).unwrap();
        assert_eq!(ok.default_agent(), "cx");
        assert_eq!(ok.agent_names(), ["cx", "gm", "claude"]);
        assert_eq!(ok.agent_def("cx").unwrap().section, "agents.cx");
        assert_eq!(ok.agent_def("claude").unwrap().section, "agent");
        assert!(ok.agent_def("nobody").is_none());
    }

    #[test]
    fn an_agent_s_name_env_and_args_are_refused_when_baton_cannot_use_them() {
        let text = "[agents.\"..\"]\nkind = \"claude\"\n[agents.ok]\nkind = \"claude\"\nargs = [\"--output-format=text\"]\nenv = { \"A=B\" = \"x\", \"\" = \"y\" }\n[agents.cx]\nkind = \"codex\"\nargs = [\"-m\", \"o3\"]\n";
        let e = Config::parse(text, Path::new("baton.toml")).unwrap_err().to_string();
        assert!(e.contains("the agent name \"..\" is not a plain name"), "{e}");
        assert!(e.contains("`args` has `--output-format`, which baton passes itself"), "{e}");
        assert!(e.contains("`args` has `-m`"), "{e}");
        assert!(Config::parse("[agents.gm]\nkind = \"gemini\"\nargs = [\"-ojson\"]\n", Path::new("baton.toml")).is_err(), "an attached value");
        assert!(e.contains("`env` has the variable \"A=B\"") && e.contains("`env` has the variable \"\""), "{e}");
        let long = format!("[agents.{}]\nkind = \"claude\"\n", "a".repeat(65));
        assert!(Config::parse(&long, Path::new("baton.toml")).is_err());
        assert!(Config::parse("[agents.ok]\nkind = \"claude\"\nargs = [\"--fallback-model\", \"sonnet\"]\n", Path::new("baton.toml")).is_ok());
    }

    #[test]
    fn every_section_has_its_keys_known() {
        for section in field_names::<Config>() {
            let keys = nested_keys(section).or(section_keys(section));
            assert!(keys.is_some_and(|k| !k.is_empty()), "{section}");
        }
        assert!(field_names::<Run>().contains(&"timeout_seconds"));
    }

    #[test]
    fn budget_is_unset_by_default_reads_every_key_and_refuses_what_is_not_money() {
        let b = Config::default().budget;
        assert_eq!((b.plan_usd, b.run_usd, b.attempt_estimate_usd, b.cap_sessions), (None, None, 0.0, true));
        let text = "[budget]\nplan_usd = 25\nrun_usd = 5.5\nattempt_estimate_usd = 0.4\ncap_sessions = false\n";
        let b = Config::parse(text, Path::new("baton.toml")).unwrap().budget;
        assert_eq!((b.plan_usd, b.run_usd, b.attempt_estimate_usd, b.cap_sessions), (Some(25.0), Some(5.5), 0.4, false));
        let e = Config::parse("[budget]\nrun_usd = -1\nplan_usd = nan\n", Path::new("baton.toml")).unwrap_err().to_string();
        assert!(e.contains("baton.toml:2:1: `run_usd` must be an amount of US dollars, 0 to 1,000,000"), "{e}");
        assert!(e.contains("baton.toml:3:1: `plan_usd` must be an amount of US dollars"), "{e}");
        let e = Config::parse("[budget]\nmax_usd = 3\n", Path::new("baton.toml")).unwrap_err().to_string();
        assert!(e.contains("unknown key `max_usd` in [budget]"), "{e}");
    }

    #[test]
    fn review_is_off_by_default_and_reads_every_key() {
        let r = Config::default().review;
        assert_eq!((r.enabled, r.max_attempts, r.model, r.agent, r.prompt_template), (false, 2, None, None, None));
        let text = "[review]\nenabled = true\nmodel = \"opus\"\nprompt_template = \"prompts/review.md\"\nagent = \"code-reviewer\"\nmax_attempts = 4\n";
        let r = Config::parse(text, Path::new("baton.toml")).unwrap().review;
        assert!(r.enabled);
        assert_eq!(r.model.as_deref(), Some("opus"));
        assert_eq!(r.prompt_template, Some(PathBuf::from("prompts/review.md")));
        assert_eq!(r.agent.as_deref(), Some("code-reviewer"));
        assert_eq!(r.max_attempts, 4);
    }

    #[test]
    fn review_problems_are_placed_with_their_fix() {
        let e = Config::parse("[review]\nenabeld = true\n", Path::new("baton.toml")).unwrap_err().to_string();
        assert!(e.starts_with("baton.toml:2:1: unknown key `enabeld` in [review]"), "{e}");
        assert!(e.contains("did you mean `enabled`?"), "{e}");
        let e = Config::parse("[review]\nenabled = \"yes\"\n", Path::new("baton.toml")).unwrap_err().to_string();
        assert!(e.starts_with("baton.toml:2:11: invalid type: string \"yes\""), "{e}");
        assert!(e.contains("give `enabled` in [review] a value of the right type"), "{e}");
        let e = Config::parse("[review]\nmax_attempts = 0\n", Path::new("baton.toml")).unwrap_err().to_string();
        assert!(e.starts_with("baton.toml:2:1: `max_attempts` must be at least 1"), "{e}");
        assert!(e.contains("e.g. `max_attempts = 2` (the default)"), "{e}");
        let e = Config::parse("[review]\nmodel = 3\n", Path::new("baton.toml")).unwrap_err().to_string();
        assert!(e.starts_with("baton.toml:2:9:"), "{e}");
        let e = Config::parse("[reveiw]\n", Path::new("baton.toml")).unwrap_err().to_string();
        assert!(e.contains("did you mean `[review]`?"), "{e}");
        let e = Config::parse("[run]\nmodel = \"x\"\n", Path::new("baton.toml")).unwrap_err().to_string();
        assert!(e.contains("unknown key `model` in [run]"), "{e}");
    }

    #[test]
    fn close_names_are_suggested_and_far_ones_are_not() {
        assert_eq!(closest("timout_seconds", field_names::<Run>()), Some("timeout_seconds"));
        assert_eq!(closest("job", field_names::<Run>()), Some("jobs"));
        assert_eq!(closest("colour", field_names::<Run>()), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(closest("agnet", field_names::<Config>()), Some("agent"));
    }
}
