//! A command agent: any program as an agent (aider, opencode, a shell script, a team's own
//! tool), from `[agents.NAME] kind = "command"` (or `[agent] kind = "command"`).
//!
//! [`CommandAgent`] is the located program and its command line: `argv` with every `{prompt}`
//! replaced by the prompt and every `{model}` by the model (empty when none), then `args`; the
//! prompt on stdin when no argument has `{prompt}` (or `stdin = "prompt"`), else an empty stdin.
//! The session also has `BATON_MODEL` (set by the attempt for every agent) and the `env` of
//! its definition. [`Command`] is its [`Dialect`]: its stdout is plain text, each non-blank line
//! a text of the agent's; it has no result event, so its exit code and status file judge the
//! session (see [`Dialect::has_result_event`]), and no limit wording of its own.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::locate::{on_path, usable};
use super::event::StreamEvent;
use super::{Agent, Dialect, Invocation, Resolved, Systemic};
use crate::config::{AgentDef, StdinMode};
use crate::policy::limit::LimitWording;

/// The kernel's limit on one argument (`MAX_ARG_STRLEN`, 32 pages), its closing NUL included:
/// a longer `{prompt}` cannot be passed on the command line.
pub const MAX_ARG_BYTES: usize = 128 * 1024;
/// The most baton lets a command line and its environment hold together: Linux takes them up
/// to a quarter of the stack limit (2 MiB with the usual 8 MiB); the rest is margin (the guard's
/// own arguments, the agent's variables, a smaller stack limit).
const MAX_ARGS_TOTAL_BYTES: usize = 3 << 19;

/// A program run as an agent, located.
#[derive(Debug, Clone)]
pub struct CommandAgent {
    binary: Resolved,
    /// `argv[1..]`, then `args`, placeholders unfilled.
    args: Vec<String>,
    /// Whether stdin is the prompt (else it is empty).
    stdin: bool,
    env: Vec<(OsString, OsString)>,
    /// Its name, and where its `argv` is defined (`[agents.NAME] argv`), for messages.
    name: String,
    origin: String,
    /// `stdin = "none"` was set.
    stdin_none: bool,
}

impl CommandAgent {
    /// The program the agent `name`'s definition runs, located (the adapter's `for_def`):
    /// `binary` when set, else `argv[0]`; a bare name is looked for on PATH, a relative path
    /// with a slash is taken from the repository `root`; it must be an executable file, and is
    /// made absolute (it names the same file from a worktree). The error is a full message for a
    /// person; with `lenient` (dry runs) it is only a warning.
    pub fn for_def(name: &str, def: &AgentDef, root: &Path, lenient: bool) -> Result<Arc<dyn Agent>, String> {
        let origin = place(name, "argv");
        let agent = |binary: Resolved| {
            let args: Vec<String> = def.argv.iter().skip(1).chain(&def.args).cloned().collect();
            let stdin = match def.stdin {
                Some(StdinMode::Prompt) => true,
                Some(StdinMode::None) => false,
                None => !args.iter().any(|a| a.contains(PROMPT)),
            };
            let stdin_none = def.stdin == Some(StdinMode::None);
            let env = super::claude::env_of(def);
            Arc::new(CommandAgent { binary, args, stdin, env, name: name.to_string(), origin: origin.clone(), stdin_none }) as Arc<dyn Agent>
        };
        let program = program_of(def);
        match resolve(&program, root) {
            Ok(found) => Ok(agent(Resolved::plain(found, format!("{} (from baton.toml)", program.display())))),
            Err(why) => {
                let unfound = Unfound::new(name, def, &program, why, root);
                if lenient {
                    crate::errln!("warning: {}", unfound.message);
                    return Ok(agent(Resolved::plain(program, Resolved::NOT_FOUND.into())));
                }
                Err(format!("error: {}\n  help: {}", unfound.message, unfound.help))
            }
        }
    }
}

/// A command agent's program that cannot be run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unfound {
    /// The agent's name in baton.toml.
    pub agent: String,
    pub message: String,
    pub help: String,
    /// A bare name, not on PATH here: it may be installed where the plan runs (`baton check`
    /// only warns), where a path names a file of the repository, or of this machine.
    pub on_path: bool,
}

impl Unfound {
    fn new(name: &str, def: &AgentDef, program: &Path, why: &str, root: &Path) -> Unfound {
        let key = if def.binary.is_some() { place(name, "binary") } else { place(name, "argv") };
        let on_path = program.components().count() == 1 && program.is_relative();
        let help = if on_path {
            format!("install it, or give its path in baton.toml {key} (relative to the repository root, e.g. \"./tools/{}\", or absolute)", program.display())
        } else {
            format!("fix the path in baton.toml {key} (a relative path is taken from the repository root {}), or make the file executable (chmod +x)", root.display())
        };
        Unfound { agent: name.to_string(), message: format!("the command agent \"{name}\" runs {}, {why}", program.display()), help, on_path }
    }
}

/// Every command agent of `config` whose program cannot be run from `root`, as `baton check`
/// tells them (a run refuses to start on the one it runs on).
pub fn unfound_programs(config: &crate::config::Config, root: &Path) -> Vec<Unfound> {
    config
        .agent_names()
        .iter()
        .filter_map(|name| Some((name, config.agent_def(name)?)))
        .filter(|(_, def)| def.kind == crate::config::AgentKind::Command && !def.argv.is_empty())
        .filter_map(|(name, def)| {
            let program = program_of(&def);
            resolve(&program, root).err().map(|why| Unfound::new(name, &def, &program, why, root))
        })
        .collect()
}

/// The program a definition runs: `binary`, else `argv[0]`.
fn program_of(def: &AgentDef) -> PathBuf {
    def.binary.clone().or_else(|| def.argv.first().map(PathBuf::from)).unwrap_or_default()
}

/// `{prompt}` in an argument: the prompt.
const PROMPT: &str = "{prompt}";
/// `{model}` in an argument: the model, or nothing.
const MODEL: &str = "{model}";

/// Where the agent `name`'s `key` is, as a user would look for it (`[agent]` calls `argv`
/// `command`).
fn place(name: &str, key: &str) -> String {
    if name == crate::config::AgentKind::Command.as_str() {
        // `[agent] kind = "command"`, unless an [agents.command] table defines that name.
        let own = if key == "argv" { "command" } else { key };
        format!("[agent] {own} (or [agents.command] {key})")
    } else {
        format!("[agents.{name}] {key}")
    }
}

/// The program at `program`, as an absolute path, or why there is none.
fn resolve(program: &Path, root: &Path) -> Result<PathBuf, &'static str> {
    if program.as_os_str().is_empty() {
        return Err("which is empty");
    }
    if program.components().count() == 1 && program.is_relative() {
        // As a shell finds it: a bare name is looked for on PATH only.
        return on_path(&program.to_string_lossy()).ok_or("which is not on PATH");
    }
    let full = if program.is_relative() { root.join(program) } else { program.to_path_buf() };
    usable(&full).ok_or("which does not exist or is not an executable file")
}

/// `arg` with each `{prompt}` and `{model}` replaced, in one pass: text from the prompt is
/// never read for placeholders again.
fn fill(arg: &str, prompt: &str, model: &str) -> String {
    let mut out = String::with_capacity(arg.len());
    let mut rest = arg;
    while let Some(at) = rest.find('{') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        if let Some(after) = rest.strip_prefix(PROMPT) {
            out.push_str(prompt);
            rest = after;
        } else if let Some(after) = rest.strip_prefix(MODEL) {
            out.push_str(model);
            rest = after;
        } else {
            out.push('{');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    out
}

impl Agent for CommandAgent {
    fn dialect(&self) -> &'static dyn Dialect {
        &Command
    }

    fn binary(&self) -> &Resolved {
        &self.binary
    }

    fn args(&self, invocation: &Invocation, prompt: &str) -> Vec<OsString> {
        let model = invocation.model.as_deref().unwrap_or("");
        self.binary.prefix_args.iter().cloned().chain(self.args.iter().map(|a| fill(a, prompt, model))).map(OsString::from).collect()
    }

    fn prompt_on_stdin(&self) -> bool {
        self.stdin
    }

    fn env(&self) -> Vec<(OsString, OsString)> {
        self.env.clone()
    }

    /// A `{prompt}` the kernel would refuse (longer than one argument may be, or holding a NUL
    /// byte) ends the run with a message that says to pass it on stdin, instead of a failed
    /// `exec`.
    fn refusal(&self, invocation: &Invocation, prompt: &str) -> Option<Systemic> {
        if !self.args.iter().any(|a| a.contains(PROMPT)) {
            return None;
        }
        let args = self.args(invocation, prompt);
        let message = if let Some(long) = args.iter().find(|a| a.len() >= MAX_ARG_BYTES) {
            format!(
                "the prompt ({} bytes) is too long for one command-line argument, where the command agent \"{}\" takes it (`{PROMPT}`: {} bytes; the kernel takes at most {} in one)",
                prompt.len(),
                self.name,
                long.len(),
                MAX_ARG_BYTES - 1
            )
        } else if args.iter().map(|a| a.len() + 1).sum::<usize>() + environment_bytes() > MAX_ARGS_TOTAL_BYTES {
            let total: usize = args.iter().map(|a| a.len() + 1).sum();
            format!(
                "the command line of the command agent \"{}\" would be {total} bytes with the prompt in it ({} times `{PROMPT}`); the kernel takes about {} in all, with the environment",
                self.name,
                self.args.iter().map(|a| a.matches(PROMPT).count()).sum::<usize>(),
                MAX_ARGS_TOTAL_BYTES
            )
        } else if prompt.contains('\0') {
            format!("the prompt holds a NUL byte, which no command-line argument can, and the command agent \"{}\" takes it as one (`{PROMPT}`)", self.name)
        } else {
            return None;
        };
        let and_none = if self.stdin_none { " and `stdin = \"none\"`" } else { "" };
        Some(Systemic {
            message,
            help: format!("pass the prompt on stdin instead: remove `{PROMPT}`{and_none} from {} (with no `{PROMPT}`, the program reads the prompt on stdin)", self.origin),
        })
    }
}

/// What baton's environment takes of the kernel's room for a command line (`NAME=value\0`
/// each); the agent's own few variables fit in the margin.
fn environment_bytes() -> usize {
    std::env::vars_os().map(|(k, v)| k.len() + v.len() + 2).sum()
}

/// How a command agent speaks: plain text. Every non-blank line of its stdout is a text of the
/// agent's (a line that happens to be JSON too); it has no result event, no limit or throttling
/// wording and no refusals baton knows.
#[derive(Debug, Clone, Copy, Default)]
pub struct Command;

impl Dialect for Command {
    fn name(&self) -> &'static str {
        "command"
    }

    fn cli_name(&self) -> &'static str {
        "the command agent"
    }

    fn parse_line(&self, line: &str) -> Vec<StreamEvent> {
        if line.trim().is_empty() {
            return Vec::new();
        }
        vec![StreamEvent::AssistantText { text: line.to_string(), synthetic: false }]
    }

    fn systemic_failure(&self, _stderr: &str, _stdout_tail: &str) -> Option<Systemic> {
        None
    }

    fn has_result_event(&self) -> bool {
        false
    }
}

impl LimitWording for Command {
    fn is_usage_limit(&self, _text: &str) -> bool {
        false
    }

    fn printed_reset(&self, _text: &str, _now: &jiff::ZonedDateTime) -> Option<(jiff::Timestamp, Option<String>)> {
        None
    }

    fn throttle_status(&self, _text: &str) -> Option<Option<u16>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::StreamSummary;
    use std::os::unix::fs::PermissionsExt;

    fn def(argv: &[&str]) -> AgentDef {
        AgentDef { kind: crate::config::AgentKind::Command, argv: argv.iter().map(|s| s.to_string()).collect(), ..AgentDef::default() }
    }

    /// A repository root with an executable `tools/agent.sh`.
    fn root() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("tools")).unwrap();
        let script = d.path().join("tools/agent.sh");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        d
    }

    fn agent(def: &AgentDef) -> Arc<dyn Agent> {
        let d = root();
        CommandAgent::for_def("script", def, d.path(), false).unwrap()
    }

    fn args(agent: &dyn Agent, model: Option<&str>, prompt: &str) -> Vec<String> {
        let invocation = Invocation { model: model.map(str::to_string), ..Invocation::default() };
        agent.args(&invocation, prompt).into_iter().map(|a| a.into_string().unwrap()).collect()
    }

    #[test]
    fn every_prompt_and_model_placeholder_is_filled_in_one_pass() {
        let mut d = def(&["./tools/agent.sh", "--message={prompt}", "{prompt}", "-m", "{model}", "{other} {"]);
        d.args = vec!["--extra".into(), "{model}/{prompt}".into()];
        let a = agent(&d);
        assert_eq!(
            args(a.as_ref(), Some("opus"), "fix {model} and {prompt}"),
            ["--message=fix {model} and {prompt}", "fix {model} and {prompt}", "-m", "opus", "{other} {", "--extra", "opus/fix {model} and {prompt}"]
        );
        assert_eq!(args(a.as_ref(), None, "p")[3], "", "no model: an empty argument");
        assert!(!a.prompt_on_stdin(), "the prompt is an argument");
    }

    #[test]
    fn stdin_is_the_prompt_unless_an_argument_has_it_or_it_is_switched_off() {
        assert!(agent(&def(&["./tools/agent.sh", "--yes"])).prompt_on_stdin());
        assert!(!agent(&def(&["./tools/agent.sh", "{prompt}"])).prompt_on_stdin());
        let mut none = def(&["./tools/agent.sh"]);
        none.stdin = Some(StdinMode::None);
        assert!(!agent(&none).prompt_on_stdin());
        let mut prompt = def(&["./tools/agent.sh", "-"]);
        prompt.stdin = Some(StdinMode::Prompt);
        let a = agent(&prompt);
        assert!(a.prompt_on_stdin());
        assert_eq!(args(a.as_ref(), None, "the prompt"), ["-"]);
    }

    #[test]
    fn the_program_is_found_from_the_root_on_path_or_as_binary_and_made_absolute() {
        let d = root();
        let a = CommandAgent::for_def("script", &def(&["./tools/agent.sh"]), d.path(), false).unwrap();
        assert_eq!(a.binary().program, d.path().join("tools/agent.sh"));
        assert!(a.binary().program.is_absolute());
        let a = CommandAgent::for_def("script", &def(&["tools/agent.sh"]), d.path(), false).unwrap();
        assert_eq!(a.binary().program, d.path().join("tools/agent.sh"));
        let a = CommandAgent::for_def("script", &def(&["sh", "-c", "echo"]), d.path(), false).unwrap();
        assert!(a.binary().program.is_absolute() && a.binary().program.ends_with("sh"), "{:?}", a.binary());
        let mut over = def(&["aider-that-is-not-installed", "{prompt}"]);
        over.binary = Some("./tools/agent.sh".into());
        let a = CommandAgent::for_def("script", &over, d.path(), false).unwrap();
        assert_eq!(a.binary().program, d.path().join("tools/agent.sh"));
        assert_eq!(args(a.as_ref(), None, "p"), ["p"], "binary replaces argv[0] only");
    }

    #[test]
    fn a_program_that_cannot_run_is_an_error_naming_the_agent_and_the_fix() {
        let d = root();
        let missing = CommandAgent::for_def("script", &def(&["./tools/nope.sh"]), d.path(), false).err().unwrap();
        assert!(missing.contains("\"script\"") && missing.contains("./tools/nope.sh") && missing.contains("does not exist"), "{missing}");
        assert!(missing.contains("[agents.script] argv") && missing.contains("help:"), "{missing}");
        std::fs::write(d.path().join("tools/plain.sh"), "#!/bin/sh\n").unwrap();
        let plain = CommandAgent::for_def("script", &def(&["./tools/plain.sh"]), d.path(), false).err().unwrap();
        assert!(plain.contains("not an executable file") && plain.contains("chmod +x"), "{plain}");
        let bare = CommandAgent::for_def("command", &def(&["no-such-agent-program-baton"]), d.path(), false).err().unwrap();
        assert!(bare.contains("not on PATH") && bare.contains("[agent] command") && bare.contains("install it"), "{bare}");
        let mut over = def(&["sh"]);
        over.binary = Some("./tools/nope.sh".into());
        let binary = CommandAgent::for_def("script", &over, d.path(), false).err().unwrap();
        assert!(binary.contains("./tools/nope.sh") && binary.contains("baton.toml [agents.script] binary"), "{binary}");
        // A dry run only warns.
        let lenient = CommandAgent::for_def("script", &def(&["./tools/nope.sh"]), d.path(), true).unwrap();
        assert_eq!(lenient.binary().description, "not found");
    }

    #[test]
    fn check_finds_every_command_agent_whose_program_cannot_run() {
        let d = root();
        let text = "[agent]\nkind = \"command\"\ncommand = [\"./tools/agent.sh\"]\n\n[agents.gone]\nkind = \"command\"\nargv = [\"./tools/gone.sh\", \"{prompt}\"]\n\n[agents.aider]\nkind = \"command\"\nargv = [\"no-such-agent-program-baton\"]\n\n[agents.claude]\nkind = \"claude\"\nbinary = \"./tools/no-claude\"\n";
        std::fs::write(d.path().join("baton.toml"), text).unwrap();
        let config = crate::config::Config::load(d.path()).unwrap();
        let found = unfound_programs(&config, d.path());
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].message.contains("\"aider\"") && found[0].on_path, "{found:?}");
        assert!(found[1].message.contains("./tools/gone.sh") && !found[1].on_path && found[1].help.contains("[agents.gone] argv"), "{found:?}");
    }

    #[test]
    fn a_prompt_too_long_for_an_argument_is_refused_with_the_stdin_fix() {
        let a = agent(&def(&["./tools/agent.sh", "--message", "{prompt}"]));
        let fits = "x".repeat(MAX_ARG_BYTES - 1);
        assert_eq!(a.refusal(&Invocation::default(), &fits), None);
        let long = "x".repeat(MAX_ARG_BYTES);
        let s = a.refusal(&Invocation::default(), &long).expect("refused");
        assert!(s.message.contains("too long") && s.message.contains("\"script\""), "{s:?}");
        assert!(s.help.contains("remove `{prompt}` from [agents.script] argv") && s.help.contains("on stdin"), "{s:?}");
        assert!(a.refusal(&Invocation::default(), "a\0b").is_some());
        // On stdin, any length goes.
        assert_eq!(agent(&def(&["./tools/agent.sh"])).refusal(&Invocation::default(), &long), None);
        // Many arguments each short enough, too long together (the kernel's E2BIG).
        let many: Vec<&str> = std::iter::once("./tools/agent.sh").chain(std::iter::repeat_n("{prompt}", 40)).collect();
        let s = agent(&def(&many)).refusal(&Invocation::default(), &"x".repeat(60_000)).expect("refused");
        assert!(s.message.contains("40 times `{prompt}`") && s.help.contains("on stdin"), "{s:?}");
    }

    #[test]
    fn its_output_is_plain_text_and_its_final_answer_the_last_lines() {
        assert_eq!(Command.parse_line("  "), vec![]);
        let json = r#"{"type":"result","subtype":"success","result":"done","total_cost_usd":9}"#;
        assert_eq!(Command.parse_line(json), vec![StreamEvent::AssistantText { text: json.into(), synthetic: false }]);
        let mut s = StreamSummary::new();
        for line in ["working on 1.1", "", r#"{"task_id": "1.1","#, r#" "status": "completed"}"#] {
            for ev in Command.parse_line(line) {
                s.observe(&ev);
            }
        }
        assert!(s.result().is_none(), "a JSON line is text, never a result");
        let answer = Command.final_answer(&s).unwrap();
        let found = crate::run::verdict::find_status_json(answer).expect("the status JSON over two lines");
        assert_eq!(found["status"], "completed");
        assert_eq!(Command.name(), "command");
        assert!(!Command.is_usage_limit("You've hit your usage limit") && Command.throttle_status("429 Too Many Requests").is_none());
        assert!(Command.systemic_failure("Not logged in", "Please run /login").is_none());
    }
}
