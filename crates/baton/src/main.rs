//! The `baton` command: parses the command line, dispatches, and maps the outcome to an exit
//! code. Nothing else lives here.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use baton::config::{Config, ConfigError};
use baton::control::Edit;
use baton::exit::{codes_help, Exit, EXIT_CODES_HELP};
use baton::plan::{PlanError, PlanFile};
use baton::report::history::{self, CostBy};
use baton::report::status;
use baton::report::style::{self, ColorChoice};
use baton::run::engine::DirtyTree;

#[derive(Parser)]
#[command(
    name = "baton",
    version,
    about = "Run a YAML plan of small tasks through a coding agent, one fresh session per task",
    long_about = "baton hands each task of a YAML plan to a coding-agent CLI (Claude Code by default) \
in a fresh session, reads back the agent's structured result, records it in the plan, commits, and \
moves on.",
    after_help = format!("Example:\n  baton run .claude/plans/feature.yaml\n\n{EXIT_CODES_HELP}"),
    propagate_version = true,
    max_term_width = 100
)]
struct Cli {
    /// When to use colour (auto: on a terminal, unless NO_COLOR is set)
    #[arg(long, global = true, value_enum, value_name = "WHEN", default_value_t = ColorChoice::Auto)]
    color: ColorChoice,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write an example plan.yaml and baton.toml, and say what running them needs
    #[command(after_help = INIT_HELP)]
    Init {
        /// Replace an existing plan.yaml or baton.toml
        #[arg(long)]
        force: bool,
    },
    /// Run the plan's tasks, one fresh agent session per attempt
    #[command(after_help = after(
        "baton run .claude/plans/feature.yaml --parallel --jobs 2",
        &[
            (Exit::Completed, "every task completed"),
            (Exit::TaskFailed, ""),
            (Exit::InvalidInput, "an error: invalid input (plan, baton.toml, flags, uncommitted changes) before anything ran, or mid-run a problem no retry fixes (e.g. the agent CLI is not logged in)"),
            (Exit::Blocked, ""),
            (Exit::Stopped, "stopped early (stop file, Ctrl+C, SIGTERM)"),
            (Exit::SmokeFailed, ""),
            (Exit::BudgetExhausted, "budget exhausted: the next attempt would cost more than the plan's budget (over all its runs) or this run's leaves; running attempts finished, none started"),
        ],
    ))]
    Run(RunArgs),
    /// Validate a plan without running anything
    #[command(after_help = after(
        "baton check .claude/plans/feature.yaml --json",
        &[(Exit::Completed, "the plan and baton.toml are valid"), (Exit::InvalidInput, "the plan or baton.toml is invalid or cannot be read; every problem is listed")],
    ))]
    Check {
        /// The plan file
        plan: PathBuf,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
    /// Show sections and tasks with status, attempts and last error
    #[command(after_help = after(
        "baton status .claude/plans/feature.yaml",
        &[(Exit::Completed, "the status was shown"), (Exit::InvalidInput, "the plan or baton.toml is invalid or cannot be read")],
    ))]
    Status {
        /// The plan file
        plan: PathBuf,
        /// Print the status as JSON (task ids stay strings)
        #[arg(long)]
        json: bool,
        /// Keep watching: redraw on a terminal as the plan and its run change (else print a new
        /// table on each change), with the run's pid and running tasks; Ctrl+C ends it
        #[arg(long, conflicts_with = "json")]
        watch: bool,
    },
    /// Put tasks back to pending so the next run does them again (attempts are kept unless
    /// --reset-attempts)
    #[command(after_help = control_help("retry", "baton retry plan.yaml --failed    # every failed task runs again on the next `baton run`"))]
    Retry {
        /// The plan file
        plan: PathBuf,
        /// The tasks to retry
        #[arg(value_name = "TASK", required_unless_present = "failed")]
        tasks: Vec<String>,
        /// Retry every failed task
        #[arg(long)]
        failed: bool,
        /// Give the tasks all their attempts again (default: keep the count, which gives a task
        /// that used them all one more attempt)
        #[arg(long)]
        reset_attempts: bool,
    },
    /// Mark a task skipped, so no run starts it
    #[command(after_help = control_help("skip", "baton skip plan.yaml 3.2 --reason \"done by hand\""))]
    Skip {
        /// The plan file
        plan: PathBuf,
        /// The task to skip
        task: String,
        /// Why (kept as the task's result_message)
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
    /// Put tasks back to pending with no attempts, as if they never ran
    #[command(after_help = control_help("reset", "baton reset plan.yaml --all"))]
    Reset {
        /// The plan file
        plan: PathBuf,
        /// The tasks to reset
        #[arg(value_name = "TASK", required_unless_present = "all", conflicts_with = "all")]
        tasks: Vec<String>,
        /// Reset every task of the plan
        #[arg(long)]
        all: bool,
    },
    /// Ask a running baton to stop gracefully: no new task starts, running tasks finish
    #[command(after_help = after(
        "baton stop .claude/plans/feature.yaml",
        &[(Exit::Completed, "the stop was asked for, or no run was active (the output says which)"), (Exit::InvalidInput, "baton.toml is invalid, or the stop file cannot be written")],
    ))]
    Stop {
        /// The plan (its repository's stop file is used); the current repository when omitted
        plan: Option<PathBuf>,
    },
    /// Print an attempt's agent transcript
    #[command(after_help = after(
        "baton logs .claude/plans/feature.yaml 1.2 --attempt 1",
        &[(Exit::Completed, "the transcript was printed"), (Exit::InvalidInput, "no such task or attempt, or the plan or baton.toml is invalid")],
    ))]
    Logs {
        /// The plan file
        plan: PathBuf,
        /// The task id
        task: String,
        /// Which attempt (default: the latest)
        #[arg(long)]
        attempt: Option<u32>,
        /// Follow a running attempt: print its events as they come, until it ends (or Ctrl+C)
        #[arg(short, long)]
        follow: bool,
        /// Print the prompt that was sent to the agent instead of the transcript
        #[arg(long, conflicts_with = "follow")]
        prompt: bool,
    },
    /// Show the recorded runs and their attempts (time, cost, model, outcome), newest first
    #[command(after_help = after(
        "baton history .claude/plans/feature.yaml --task 1.2",
        &[(Exit::Completed, "the history was shown (or none is recorded yet)"), (Exit::InvalidInput, "the run history cannot be read (a damaged .baton/baton.db), baton.toml is invalid, or --task names a task with no attempts that the plan does not have")],
    ))]
    History {
        /// The plan file; every plan of the current repository when omitted
        plan: Option<PathBuf>,
        /// One task's attempts in detail: tokens, turns, checks, verdict, transcript
        #[arg(long, value_name = "ID", requires = "plan")]
        task: Option<String>,
        /// Show at most N runs
        #[arg(long, value_name = "N", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..), conflicts_with = "task")]
        limit: u32,
        /// Print the history as JSON
        #[arg(long)]
        json: bool,
    },
    /// Add up what the agents cost, by plan, task, model or day, with the total
    #[command(after_help = after(
        "baton cost --by day --since 7d",
        &[(Exit::Completed, "the costs were shown (or none is recorded yet)"), (Exit::InvalidInput, "the run history cannot be read (a damaged .baton/baton.db), baton.toml is invalid, or --since is not a date, a time or how long ago")],
    ))]
    Cost {
        /// The plan file; every plan of the current repository when omitted
        plan: Option<PathBuf>,
        /// What to add up by (days in the local time zone) [default: plan; task when PLAN is
        /// given]
        #[arg(long, value_enum, value_name = "GROUP")]
        by: Option<CostBy>,
        /// Only attempts started since then: a date (2026-11-30, local time), an RFC 3339 time,
        /// or how long ago (7d, 24h)
        #[arg(long, value_name = "WHEN", value_parser = parse_since)]
        since: Option<jiff::Timestamp>,
        /// Print the rows and the total as JSON
        #[arg(long)]
        json: bool,
    },
    /// For agents in a parallel run: claim a file before editing it (exit 1 if another agent holds it)
    #[command(after_help = after(
        "baton claim src/lib.rs",
        &[
            (Exit::Completed, "the file is this agent's (now, or already)"),
            (Exit::TaskFailed, "another agent holds the file"),
            (Exit::InvalidInput, "no agent identity (not started by baton), or the claims cannot be read or written"),
        ],
    ))]
    Claim {
        /// The file, relative to the working directory or the repository
        file: PathBuf,
    },
    /// For agents in a parallel run: release a claimed file, or all of this agent's claims
    #[command(after_help = after(
        "baton release src/lib.rs",
        &[(Exit::Completed, "released (or nothing to release)"), (Exit::InvalidInput, "no agent identity (not started by baton), or the claims cannot be read or written")],
    ))]
    Release {
        /// The file; all of this agent's claims when omitted
        file: Option<PathBuf>,
    },
    /// For agents in a parallel run: say "still working" (silence past the idle timeout ends an agent)
    #[command(after_help = after(
        "baton heartbeat --note \"running the test suite\"",
        &[(Exit::Completed, "the heartbeat was written"), (Exit::InvalidInput, "no agent identity (not started by baton), or the heartbeat cannot be written")],
    ))]
    Heartbeat {
        /// What the agent is doing now
        #[arg(long)]
        note: Option<String>,
    },
    /// Watch the backlog folders and turn each item into a plan and run it
    #[command(after_help = after(
        "baton pipeline --once",
        &[
            (Exit::Completed, "stopped by nothing (--once: the item was done, or there was nothing to do)"),
            (Exit::TaskFailed, "--once: the item's run had a failed task"),
            (Exit::InvalidInput, ""),
            (Exit::Blocked, "--once: the item's run was blocked"),
            (Exit::Stopped, "stopped (stop file, Ctrl+C, SIGTERM)"),
            (Exit::SmokeFailed, "--once: the item's smoke tests failed"),
            (Exit::BudgetExhausted, "--once: the item's run ran out of budget"),
        ],
    ))]
    Pipeline {
        /// Process one item, then exit
        #[arg(long)]
        once: bool,
        /// Say what would be processed, start nothing
        #[arg(long)]
        dry_run: bool,
        /// Show the agents' live activity
        #[arg(short, long)]
        verbose: bool,
    },
    /// Serve a live web dashboard of the repository's plans, tasks, transcripts, history and cost (and JSON under /api/)
    #[command(after_help = SERVE_HELP.to_string() + &after(
        "baton serve --port 8421",
        &[
            (Exit::Completed, "stopped by Ctrl+C or SIGTERM"),
            (Exit::InvalidInput, "it cannot start: an address other than loopback without --token, an empty --token, the port taken, or baton.toml invalid"),
        ],
    ))]
    Serve {
        /// The address to listen on (an IP address, or `localhost`); one other than loopback
        /// (127.0.0.1, ::1) needs a token
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1", value_parser = bind_address)]
        bind: std::net::IpAddr,
        /// The port (0: any free one, said on stdout)
        #[arg(long, value_name = "N", default_value_t = baton::serve::DEFAULT_PORT)]
        port: u16,
        /// A secret every request must carry: `Authorization: Bearer TOKEN`, or `?token=TOKEN`
        /// once in a browser (a cookie keeps it). Never printed back. Also read from
        /// BATON_SERVE_TOKEN, which other users cannot see in `ps`
        #[arg(long, value_name = "TOKEN")]
        token: Option<String>,
        /// Open the dashboard in the default browser once it listens
        #[arg(long)]
        open: bool,
    },
    /// The worker's half of an attempt sent to a Ray cluster: a job's entrypoint, not run by hand
    /// (see docs/scale-out.md)
    #[command(after_help = format!("It fetches the attempt (REF holds its working copy, spec and prompt) from REMOTE \
into a mirror under $BATON_REMOTE_CACHE (default ~/.cache/baton/remote), runs the agent there under baton's \
supervisor, prints the agent's stream, and pushes what the agent left to RESULT.\n\n{}", after(
        "baton remote-attempt --remote git@host:repo.git --input refs/baton/plan/1.1/1.in --result refs/baton/plan/1.1/1",
        &[
            (Exit::Completed, "the agent ran (however it ended) and its result was sent back"),
            (Exit::TaskFailed, "the agent ran but its result could not be pushed"),
            (Exit::InvalidInput, "the attempt could not be set up on this worker (its last line says why: the remote, the agent CLI, another baton version)"),
        ],
    )))]
    RemoteAttempt {
        /// The git remote (URL or path) to fetch the attempt from and push its result to
        #[arg(long, value_name = "REMOTE")]
        remote: String,
        /// The attempt's input ref
        #[arg(long, value_name = "REF")]
        input: String,
        /// The ref the result is pushed to
        #[arg(long, value_name = "RESULT")]
        result: String,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to stdout
    #[command(after_help = after(
        "baton completions bash > ~/.local/share/bash-completion/completions/baton",
        &[(Exit::Completed, "the script was printed")],
    ))]
    Completions {
        /// The shell to complete for
        shell: clap_complete::Shell,
    },
}

/// What `baton serve --help` says before its example.
const SERVE_HELP: &str = "Pages: / (every plan), /plans/PLAN (its tasks, graph, running and failed \
tasks, a Stop button), /plans/PLAN/tasks/ID (its attempts and transcripts), /history (runs and cost); \
they update by themselves as runs go on. It reads the plans in [paths] plans_dir and those the run \
history knows, while runs start and end beside it; it never writes a plan (Stop writes the stop file, \
as `baton stop` does). API: GET /api/plans, /api/plans/PLAN (as `baton status --json`), \
/api/plans/PLAN/tasks/ID (as `baton history --task ID --json`), /api/plans/PLAN/tasks/ID/attempts/N/transcript, \
/api/history, /api/cost (as `baton cost --json`), /events (server-sent events: which plans changed); \
POST /api/plans/PLAN/stop with the header `X-Baton-CSRF: stop`.\n\n";

/// `--bind`: an IP address, or `localhost` (loopback).
fn bind_address(text: &str) -> Result<std::net::IpAddr, String> {
    if text.eq_ignore_ascii_case("localhost") {
        return Ok(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
    }
    text.parse().map_err(|_| format!("`{text}` is not an IP address: give one of this machine's addresses (127.0.0.1, 0.0.0.0 for all, ::1, a LAN address) or `localhost`"))
}

/// The end of a command's `--help`: one example and the exit codes that apply to it.
fn after(example: &str, codes: &[(Exit, &str)]) -> String {
    format!("Example:\n  {example}\n\n{}", codes_help(codes))
}

/// The help after `retry`, `skip` and `reset`: what they share, the example, the exit codes.
fn control_help(verb: &str, example: &str) -> String {
    format!(
        "retry, skip and reset edit only the fields baton owns, in place (comments and layout stay) and, \
in a git repository, commit the plan (`baton: {verb} 3.2`) unless it had uncommitted changes of yours. \
They refuse while a run holds the plan: stop it first (`baton stop`).\n\n{}",
        after(
            example,
            &[
                (Exit::Completed, "done (or nothing to change)"),
                (Exit::InvalidInput, "unknown task, a task the command does not apply to, an invalid plan, or a run holds the plan; nothing was changed"),
            ],
        )
    )
}

#[derive(Args)]
struct RunArgs {
    /// The plan file
    plan: PathBuf,
    /// Print what would run, in order, and change nothing
    #[arg(long)]
    dry_run: bool,
    /// Start at this task
    #[arg(long, value_name = "ID")]
    resume_from: Option<String>,
    /// Run one task, then stop
    #[arg(long)]
    single_task: bool,
    /// Show the agents' live activity, one line per event
    #[arg(short, long)]
    verbose: bool,
    /// Run tasks of a parallel_group at the same time, each in its own git worktree
    #[arg(long)]
    parallel: bool,
    /// How many agents may run at once with --parallel (refused without --parallel)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    jobs: Option<u16>,
    /// Do not run the smoke tests after the plan
    #[arg(long)]
    skip_smoke: bool,
    /// Start even though the working tree has uncommitted changes; baton leaves them out of
    /// every commit it makes
    #[arg(long)]
    allow_dirty: bool,
    /// The agent tasks run on when they name none, instead of baton.toml's: one of its
    /// [agents.NAME], a kind (claude, codex, gemini), or simulated (every task; no model is
    /// called)
    #[arg(long, value_name = "NAME")]
    agent: Option<String>,
    /// What stdout carries: the view for people, or one JSON event per line (docs/events.md;
    /// the view then goes to stderr)
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = MessageFormat::Human, conflicts_with = "dry_run")]
    message_format: MessageFormat,
    /// Write a JUnit XML report of the run (tasks as test cases) to PATH when it ends, however
    /// it ends
    #[arg(long, value_name = "PATH", conflicts_with = "dry_run")]
    junit: Option<PathBuf>,
    /// This run's budget in US dollars: no attempt starts that it cannot pay for (exit 6);
    /// the plan's `meta.budget_usd` still counts every run
    #[arg(long, value_name = "USD", value_parser = parse_usd, allow_hyphen_values = true)]
    max_cost: Option<f64>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum MessageFormat {
    Human,
    Json,
}

/// An amount of US dollars on the command line (`2.50`, `$2.50`), 0 to a million.
fn parse_usd(s: &str) -> Result<f64, String> {
    match s.trim().trim_start_matches('$').parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=baton::policy::budget::MAX_USD).contains(&v) => Ok(v),
        _ => Err(format!("`{s}` is not an amount of US dollars from 0 to 1,000,000 (e.g. `2.50`)")),
    }
}


const INIT_HELP: &str = "Writes plan.yaml and baton.toml in the repository root (the current folder outside git; baton.toml then sets `[run] commit = false`) and commits them, refusing to overwrite either unless --force. Downloads and installs nothing.

Example:
  baton init && baton run plan.yaml --agent simulated

Exit codes:
  0   written
  2   plan.yaml or baton.toml already exists (nothing written), or a file cannot be written";

fn main() -> ExitCode {
    // The agent guard is this same binary, started with a hidden first argument; it must run
    // before anything else (see supervise::guard).
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == baton::supervise::guard::GUARD_ARG) {
        baton::supervise::guard::guard_main(&args[2..]);
    }
    // So is the simulated agent (see agent::simulated).
    if args.get(1).is_some_and(|a| a == baton::agent::simulated::AGENT_ARG) {
        return ExitCode::from(baton::agent::simulated::agent_main() as u8);
    }
    // Colour is decided before clap prints anything (help, a usage error), so `--color` is
    // read ahead of the parse; the parse then checks its value.
    style::set_choice(color_flag(&args).unwrap_or_default());
    let cli = match Cli::command().color(style::for_clap()).try_get_matches_from(&args).and_then(|m| Cli::from_arg_matches(&m)) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    style::set_choice(cli.color);
    let exit = match cli.command {
        Command::Init { force } => baton::init::init(&baton::init::InitOptions { dir: PathBuf::from("."), force }),
        Command::Check { plan, json } => check(&plan, json),
        Command::Status { plan, json, watch } => show_status(&plan, json, watch),
        Command::Stop { plan } => baton::control::stop(plan.as_deref()),
        Command::Retry { plan, tasks, failed, reset_attempts } => control(&plan, Edit::Retry { tasks, failed, reset_attempts }),
        Command::Skip { plan, task, reason } => control(&plan, Edit::Skip { task, reason }),
        Command::Reset { plan, tasks, all } => control(&plan, Edit::Reset { tasks, all }),
        Command::Run(args) => run(&args),
        Command::Logs { plan, task, attempt, follow, prompt } => logs(&plan, &task, attempt, Shown::of(follow, prompt)),
        Command::History { plan, task, limit, json } => {
            let opts = history::HistoryOptions { task: task.as_deref(), limit: limit as usize, json, width: terminal_width() };
            with_history(plan.as_deref(), |place| history::history(place, &opts))
        }
        Command::Cost { plan, by, since, json } => with_history(plan.as_deref(), |place| history::cost(place, &history::CostOptions { by, since, json, width: terminal_width() })),
        Command::Claim { file } => coordinate(Coordinate::Claim(file)),
        Command::Release { file } => coordinate(Coordinate::Release(file)),
        Command::Heartbeat { note } => coordinate(Coordinate::Heartbeat(note)),
        Command::Pipeline { once, dry_run, verbose } => baton::pipeline::run(baton::pipeline::PipelineOptions { once, dry_run, verbose }),
        Command::RemoteAttempt { remote, input, result } => {
            return ExitCode::from(baton::exec::remote::main(baton::exec::remote::Args { remote, input, result }));
        }
        Command::Serve { bind, port, token, open } => {
            let root = baton::root::repo_root(&std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")));
            let token = token.or_else(|| std::env::var("BATON_SERVE_TOKEN").ok().filter(|t| !t.is_empty()));
            baton::serve::serve(&baton::serve::ServeOptions { bind, port, token, root, open })
        }
        Command::Completions { shell } => completions(shell),
    };
    ExitCode::from(exit.code() as u8)
}

/// The value of `--color` among the arguments (before a `--`), if it is one clap would take.
fn color_flag(args: &[std::ffi::OsString]) -> Option<ColorChoice> {
    use clap::ValueEnum;
    let args: Vec<&str> = args.iter().skip(1).map(|a| a.to_str().unwrap_or("")).take_while(|a| *a != "--").collect();
    let value = args.iter().enumerate().rev().find_map(|(i, a)| match a.strip_prefix("--color") {
        Some("") => args.get(i + 1).copied(),
        Some(v) => v.strip_prefix('='),
        None => None,
    })?;
    ColorChoice::from_str(value, false).ok()
}

fn completions(shell: clap_complete::Shell) -> Exit {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "baton", &mut script);
    baton::out!("{}", String::from_utf8_lossy(&script));
    Exit::Completed
}

fn load_config(plan: &Path) -> Result<Config, Exit> {
    let root = baton::root::root_for_plan(plan);
    Config::load(&root).map_err(|e| {
        tell_config_error(&e);
        Exit::InvalidInput
    })
}

fn tell_config_error(e: &ConfigError) {
    match e {
        // Each problem with its own help.
        ConfigError::Invalid { .. } => baton::errln!("error: {e}"),
        ConfigError::Read { .. } => baton::errln!("error: {}\n  help: check the file's permissions", baton::exit::render_chain(e)),
    }
}

fn load_plan(plan: &Path) -> Result<PlanFile, Exit> {
    PlanFile::load(plan).map_err(|e| {
        baton::errln!("{}", e.render());
        Exit::InvalidInput
    })
}

fn check(plan: &Path, json: bool) -> Exit {
    let config = Config::load(&baton::root::root_for_plan(plan));
    let loaded = PlanFile::load(plan);
    if json {
        let mut problems: Vec<serde_json::Value> = match &loaded {
            Ok(_) => Vec::new(),
            Err(PlanError::Invalid { diagnostics, .. }) => diagnostics.iter().filter_map(|d| serde_json::to_value(d).ok()).collect(),
            Err(other) => vec![serde_json::json!({"line": 0, "column": 0, "message": other.render(), "help": "check the path"})],
        };
        match &config {
            Err(ConfigError::Invalid { path, problems: found }) => problems.extend(found.iter().map(|p| {
                serde_json::json!({
                    "file": path.display().to_string(), "line": p.line, "column": p.column, "message": p.message, "help": p.help,
                })
            })),
            Err(e @ ConfigError::Read { .. }) => problems.push(serde_json::json!({
                "line": 0, "column": 0, "message": baton::exit::render_chain(e), "help": "check the file's permissions",
            })),
            Ok(config) => {
                if let Ok(f) = &loaded {
                    let (errors, _) = agent_problems(config, f.plan(), &baton::root::root_for_plan(plan));
                    problems.extend(errors.into_iter().map(|(message, help)| serde_json::json!({"file": "baton.toml", "line": 0, "column": 0, "message": message, "help": help})));
                }
            }
        }
        let advice = match &loaded {
            Ok(f) => baton::plan::advice(f.plan(), &baton::root::root_for_plan(plan), &config.as_ref().map(Config::agent_names).unwrap_or_default()),
            Err(_) => baton::plan::Advice { warnings: warnings_of_broken(plan), notes: Vec::new() },
        };
        let mut doc = serde_json::json!({
            "valid": problems.is_empty(),
            "path": plan.display().to_string(),
            "problems": problems,
            "warnings": advice.warnings,
            "notes": advice.notes,
        });
        if let Ok(f) = &loaded {
            doc["sections"] = f.plan().sections.len().into();
            doc["tasks"] = f.plan().tasks().count().into();
        }
        baton::outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return if doc["valid"] == true { Exit::Completed } else { Exit::InvalidInput };
    }
    if let Err(e) = &config {
        tell_config_error(e);
    }
    let file = match loaded {
        Ok(f) => f,
        Err(e) => {
            // Warnings too: they are problems as well, only not fatal ones.
            let shown = plan.display().to_string();
            for w in warnings_of_broken(plan) {
                baton::errln!("warning: {}", w.render(&shown));
            }
            baton::errln!("{}", e.render());
            return Exit::InvalidInput;
        }
    };
    let Ok(config) = config else { return Exit::InvalidInput };
    // The agents the plan needs must be there, as `baton run` will ask; the others are told.
    let (errors, warnings) = agent_problems(&config, file.plan(), &baton::root::root_for_plan(plan));
    for (message, help) in &warnings {
        baton::errln!("warning: baton.toml: {message}\n  help: {help}");
    }
    for (message, help) in &errors {
        baton::errln!("error: baton.toml: {message}\n  help: {help}");
    }
    if !errors.is_empty() {
        return Exit::InvalidInput;
    }
    let p = file.plan();
    let advice = baton::plan::advice(p, &baton::root::root_for_plan(plan), &config.agent_names());
    let shown = plan.display().to_string();
    for w in &advice.warnings {
        baton::errln!("warning: {}", w.render(&shown));
    }
    let warned = match advice.warnings.len() {
        0 => String::new(),
        n => format!("; {n} warning{}", plural(n)),
    };
    baton::outln!(
        "{}: valid — {} section{}, {} task{} ({}){warned}",
        shown,
        p.sections.len(),
        plural(p.sections.len()),
        p.tasks().count(),
        plural(p.tasks().count()),
        status::Counts::of(p).sentence()
    );
    for note in &advice.notes {
        baton::outln!("  note: {}", baton::report::safe::terminal_line(note));
    }
    Exit::Completed
}

/// A problem as `check` says it: what, and how to fix it.
type Said = (String, String);

/// The agents a run of `plan` needs, looked for as `baton run` will: a command agent whose
/// program is a path that cannot run is an error (a file of the project); a CLI or a program
/// not on this machine's PATH is a warning (it may be installed only where the plan runs); so
/// is a command agent no task needs that cannot run. `(message, help)` each.
fn agent_problems(config: &Config, plan: &baton::plan::Plan, root: &Path) -> (Vec<Said>, Vec<Said>) {
    let split = |e: &str| {
        let e = e.strip_prefix("error: ").unwrap_or(e);
        match e.split_once("\n  help: ") {
            Some((m, h)) => (m.to_string(), h.to_string()),
            None => (e.to_string(), "see README.md, \"Agents\"".to_string()),
        }
    };
    let needed = baton::agent::Roster::needed(config, plan);
    let unfound = baton::agent::command::unfound_programs(config, root);
    let (mut errors, mut warnings) = (Vec::new(), Vec::new());
    for name in &needed {
        let Some(def) = config.agent_def(name) else { continue };
        if let Some(u) = unfound.iter().find(|u| &u.agent == name) {
            if u.on_path { &mut warnings } else { &mut errors }.push((u.message.clone(), u.help.clone()));
        } else if def.kind != baton::config::AgentKind::Command {
            if let Err(e) = baton::agent::for_def(name, &def, root, false) {
                warnings.push(split(&e));
            }
        }
    }
    warnings.extend(unfound.into_iter().filter(|u| !needed.contains(&u.agent)).map(|u| (u.message, u.help)));
    (errors, warnings)
}

/// The warnings of a plan that has errors too (read again: the load gave up on it).
fn warnings_of_broken(plan: &Path) -> Vec<baton::plan::Diagnostic> {
    std::fs::read_to_string(plan).map(|t| baton::plan::warnings_in(&t)).unwrap_or_default()
}

fn show_status(plan: &Path, json: bool, watch: bool) -> Exit {
    let config = match load_config(plan) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let file = match load_plan(plan) {
        Ok(f) => f,
        Err(e) => return e,
    };
    let path = plan.display().to_string();
    let root = baton::root::root_for_plan(plan);
    let place = baton::report::watch::Place { root: &root, plan, config: &config };
    if watch {
        return baton::report::watch::watch(&place, terminal_width());
    }
    if json {
        let (text, warning) = status::json_of(&place, file.plan(), &path);
        warn_history(warning.as_ref());
        baton::outln!("{text}");
        return Exit::Completed;
    }
    let records = baton::run::record::Records::new(&root.join(&config.paths.logs_dir), plan);
    let got = status::gather(&place, file.plan(), &records);
    warn_history(got.warning.as_ref());
    baton::out!("{}", status::table(file.plan(), &path, config.run.max_attempts, terminal_width(), &got.totals, got.spending.as_ref()));
    // A run going on says so; no run is the ordinary case and goes unsaid.
    if let Some(run) = baton::report::watch::run_view(&place, file.plan()) {
        baton::out!("{}", baton::report::watch::run_text(Some(&run), Some(jiff::Timestamp::now())));
    }
    Exit::Completed
}

/// The run history could not be read: said as a warning (the attempt records were read instead).
fn warn_history(warning: Option<&baton::store::StoreError>) {
    if let Some(e) = warning {
        baton::errln!("warning: {e}; time and cost are read from the attempt records\n  help: {}", e.help());
    }
}

/// `--since`, read in the local time zone.
fn parse_since(s: &str) -> Result<jiff::Timestamp, String> {
    history::parse_since(s, &jiff::ZonedDateTime::now())
}

/// `baton history|cost`: the repository of the plan (or of the current folder) and its
/// settings, for `show`.
fn with_history(plan: Option<&Path>, show: impl FnOnce(&history::Place<'_>) -> Exit) -> Exit {
    let root = match plan {
        Some(p) => baton::root::root_for_plan(p),
        None => baton::root::repo_root(&std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."))),
    };
    let config = match Config::load(&root) {
        Ok(c) => c,
        Err(e) => {
            tell_config_error(&e);
            return Exit::InvalidInput;
        }
    };
    show(&history::Place { root: &root, plan, logs_dir: &root.join(&config.paths.logs_dir) })
}

/// `baton retry|skip|reset`: an edit of the plan's owned fields (see baton::control).
fn control(plan: &Path, edit: Edit) -> Exit {
    baton::control::edit(plan, &edit)
}

fn run(args: &RunArgs) -> Exit {
    if let (Some(n), false) = (args.jobs, args.parallel) {
        baton::errln!(
            "error: --jobs {n} needs --parallel: without it tasks run one at a time\n  help: add --parallel (`baton run {} --parallel --jobs {n}`), or leave out --jobs",
            args.plan.display()
        );
        return Exit::InvalidInput;
    }
    if let Some(why) = args.junit.as_deref().and_then(junit_refused) {
        baton::errln!(
            "error: --junit {} {why}; baton will not overwrite it\n  help: name a new file for the report, e.g. `--junit target/baton-junit.xml`; nothing was run or changed",
            args.junit.as_deref().unwrap_or(Path::new("")).display()
        );
        return Exit::InvalidInput;
    }
    baton::run::run(baton::run::RunOptions {
        plan: args.plan.clone(),
        dry_run: args.dry_run,
        resume_from: args.resume_from.clone(),
        single_task: args.single_task,
        verbose: args.verbose,
        parallel: args.parallel,
        jobs: args.jobs.map(usize::from),
        skip_smoke: args.skip_smoke,
        dirty: if args.allow_dirty { DirtyTree::Protect } else { DirtyTree::Refuse },
        checkout_held: false,
        agent: args.agent.clone(),
        format: match args.message_format {
            MessageFormat::Human => baton::report::json::MessageFormat::Human,
            MessageFormat::Json => baton::report::json::MessageFormat::Json,
        },
        junit: args.junit.clone(),
        max_cost: args.max_cost,
    })
}

/// Why `--junit PATH` must not be written: a folder, or a file that is not an XML report (the
/// plan, `baton.toml`, a source file). A missing file, or a report of an earlier run, is fine.
fn junit_refused(path: &Path) -> Option<&'static str> {
    use std::io::Read as _;
    let meta = std::fs::metadata(path).ok()?;
    if meta.is_dir() {
        return Some("is a folder");
    }
    let mut head = [0u8; 64];
    let n = std::fs::File::open(path).and_then(|mut f| f.read(&mut head)).unwrap_or(0);
    let text = String::from_utf8_lossy(&head[..n]);
    let text = text.trim_start_matches('\u{feff}').trim_start();
    (meta.len() > 0 && !text.starts_with('<')).then_some("is an existing file that is not an XML report")
}

/// What `baton logs` prints.
enum Shown {
    Transcript,
    Follow,
    Prompt,
}

impl Shown {
    fn of(follow: bool, prompt: bool) -> Shown {
        match (follow, prompt) {
            (true, _) => Shown::Follow,
            (_, true) => Shown::Prompt,
            _ => Shown::Transcript,
        }
    }
}

fn logs(plan: &Path, task: &str, attempt: Option<u32>, shown: Shown) -> Exit {
    let config = match load_config(plan) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let file = match load_plan(plan) {
        Ok(f) => f,
        Err(e) => return e,
    };
    if file.plan().task(task).is_none() {
        baton::errln!("error: no task '{task}' in {}\n  help: `baton status {}` lists the task ids", plan.display(), plan.display());
        return Exit::InvalidInput;
    }
    // Each transcript is read in the dialect of the agent that wrote it (its kind file); one
    // written before those files existed, in the default agent's.
    let kind = config.agent_def(config.default_agent()).map_or(config.agent.kind, |d| d.kind);
    let dialect = baton::agent::dialect_for(kind);
    let root = baton::root::root_for_plan(plan);
    let logs_dir = root.join(&config.paths.logs_dir);
    let printed = match shown {
        Shown::Transcript => baton::report::logs::render(&logs_dir, plan, task, attempt, dialect),
        Shown::Prompt => baton::report::logs::prompt(&logs_dir, plan, task, attempt),
        Shown::Follow => {
            let place = baton::report::follow::Place { logs_dir: &logs_dir, locks_dir: &logs_dir.join("locks"), plan };
            baton::report::follow::follow(&place, task, attempt, dialect).map(|()| String::new())
        }
    };
    match printed {
        Ok(text) => {
            baton::out!("{text}");
            Exit::Completed
        }
        Err(e) => {
            baton::errln!("error: {e}");
            Exit::InvalidInput
        }
    }
}

enum Coordinate {
    Claim(PathBuf),
    Release(Option<PathBuf>),
    Heartbeat(Option<String>),
}

/// `baton claim|release|heartbeat`, run by agents from their worktrees.
fn coordinate(op: Coordinate) -> Exit {
    use baton::coord::{self, claims, heartbeat, ClaimOutcome, Claimant};
    let fail = |e: &dyn std::fmt::Display| {
        baton::errln!("error: {e}");
        Exit::InvalidInput
    };
    let cwd = match std::env::current_dir() {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let Some((agent_id, task_id)) = coord::identity_from_env() else {
        baton::errln!(
            "error: no agent identity: {} and {} are not set\n  help: these commands are for agents that baton started in a parallel run",
            coord::ENV_AGENT_ID,
            coord::ENV_TASK_ID
        );
        return Exit::InvalidInput;
    };
    let main = match coord::main_checkout(&cwd) {
        Ok(m) => m,
        Err(e) => return fail(&e),
    };
    let worktree = coord::worktree_root(&cwd).unwrap_or_else(|_| cwd.clone());
    let key = |file: &Path| coord::repo_path(file, &cwd, &[&main, &worktree]);
    match op {
        Coordinate::Claim(file) => {
            let key = match key(&file) {
                Ok(k) => k,
                Err(e) => return fail(&e),
            };
            let who = Claimant { agent_id, task_id, worktree };
            match claims::claim(&main, &who, &key) {
                Ok(outcome @ (ClaimOutcome::Granted | ClaimOutcome::AlreadyYours)) => {
                    baton::outln!("{key}: {outcome}");
                    Exit::Completed
                }
                Ok(held) => {
                    baton::outln!("{key}: {held}");
                    Exit::TaskFailed
                }
                Err(e) => fail(&e),
            }
        }
        Coordinate::Release(file) => {
            let key = match file.as_deref().map(key).transpose() {
                Ok(k) => k,
                Err(e) => return fail(&e),
            };
            match claims::release(&main, &agent_id, key.as_deref()) {
                Ok(released) if released.is_empty() => {
                    baton::outln!("nothing to release");
                    Exit::Completed
                }
                Ok(released) => {
                    baton::outln!("released: {}", released.join(", "));
                    Exit::Completed
                }
                Err(e) => fail(&e),
            }
        }
        Coordinate::Heartbeat(note) => match heartbeat::beat(&main, &agent_id, &task_id, None, note.as_deref()) {
            Ok(()) => Exit::Completed,
            Err(e) => fail(&e),
        },
    }
}


fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// The width tables are laid out for: `COLUMNS`, else the terminal's own width when stdout is
/// one, else 100.
fn terminal_width() -> usize {
    if let Some(c) = std::env::var("COLUMNS").ok().and_then(|c| c.trim().parse::<usize>().ok()).filter(|c| *c > 0) {
        return c;
    }
    let mut size = libc::winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCGWINSZ fills the winsize it is given; a stdout that is not a terminal fails it.
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
    if ok && size.ws_col > 0 {
        usize::from(size.ws_col)
    } else {
        100
    }
}
