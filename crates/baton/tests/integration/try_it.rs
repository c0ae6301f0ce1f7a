//! Trying baton in a minute: `baton init`, then `baton run plan.yaml --agent simulated`, on a
//! machine with no agent CLI and no credentials — and what baton says when the real agent is
//! asked for and missing.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::support::{Run, BATON};

/// A machine with nothing but git: a PATH holding only `git` (no `claude`, no `npm`; a fake
/// `npx` that records being called, so a download attempt would show), a fresh HOME, and no
/// credentials in the environment.
struct Bare {
    bin: tempfile::TempDir,
    home: tempfile::TempDir,
}

impl Bare {
    fn new() -> Bare {
        let bin = tempfile::tempdir().unwrap();
        let git = ["/usr/local/bin/git", "/usr/bin/git", "/bin/git"].into_iter().find(|p| Path::new(p).exists()).expect("git installed");
        std::os::unix::fs::symlink(git, bin.path().join("git")).unwrap();
        let npx = bin.path().join("npx");
        std::fs::write(&npx, format!("#!/bin/sh\ntouch '{}'\nexit 1\n", bin.path().join("npx-was-called").display())).unwrap();
        std::fs::set_permissions(&npx, std::fs::Permissions::from_mode(0o755)).unwrap();
        Bare { bin, home: tempfile::tempdir().unwrap() }
    }

    /// `program args` in `dir`, with only this machine's environment.
    fn command(&self, program: &str, dir: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .current_dir(dir)
            .env_clear()
            .env("PATH", self.bin.path())
            .env("HOME", self.home.path())
            .env("NO_COLOR", "1")
            .env("TZ", "UTC")
            .stdin(Stdio::null());
        cmd
    }

    fn baton(&self, dir: &Path, args: &[&str]) -> Run {
        let out = baton_testkit::run_with_deadline(&mut self.command(BATON, dir, args), Duration::from_secs(120)).expect("run baton");
        assert!(!out.timed_out, "baton {args:?} did not finish:\n{}\n{}", out.stdout, out.stderr);
        Run(std::process::Output { status: out.status, stdout: out.stdout.into_bytes(), stderr: out.stderr.into_bytes() })
    }

    fn git(&self, dir: &Path, args: &[&str]) -> String {
        let out = self.command("git", dir, args).output().expect("run git");
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A fresh `git init` with no commit at all, and an identity.
    fn fresh_repo(&self) -> tempfile::TempDir {
        let dir = tempfile::Builder::new().prefix("baton-try-").tempdir().unwrap();
        self.git(dir.path(), &["init", "-q", "-b", "main"]);
        for (k, v) in [("user.name", "Try It"), ("user.email", "try@example.invalid"), ("commit.gpgsign", "false"), ("core.hooksPath", "/dev/null")] {
            self.git(dir.path(), &["config", k, v]);
        }
        dir
    }

    fn npx_called(&self) -> bool {
        self.bin.path().join("npx-was-called").exists()
    }
}

fn plan(dir: &Path) -> baton::plan::Plan {
    baton::plan::parse_plan(&std::fs::read_to_string(dir.join("plan.yaml")).unwrap()).expect("the plan stays valid")
}

fn note(dir: &Path, task: &str) -> String {
    let path: PathBuf = dir.join("baton-simulated").join(format!("{task}.md"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn init_then_a_simulated_run_completes_with_no_agent_cli_and_no_credentials() {
    let bare = Bare::new();
    let repo = bare.fresh_repo();
    let dir = repo.path();

    let init = bare.baton(dir, &["init"]);
    assert_eq!(init.code(), 0, "{}", init.all());
    let said = init.stdout();
    assert!(said.contains("Claude Code CLI: missing") && said.contains("npm install -g @anthropic-ai/claude-code"), "{said}");
    assert!(said.contains("credentials: missing") && said.contains("ANTHROPIC_API_KEY"), "{said}");
    assert!(said.contains("next: baton run plan.yaml --agent simulated"), "{said}");
    let check = bare.baton(dir, &["check", "plan.yaml"]);
    assert_eq!(check.code(), 0, "the plan init wrote passes check: {}", check.all());

    let run = bare.baton(dir, &["run", "plan.yaml", "--agent", "simulated"]);
    assert_eq!(run.code(), 0, "{}", run.all());
    let out = run.stdout();
    assert!(out.contains("agent: simulated (no model is called)"), "{out}");
    let p = plan(dir);
    assert!(p.tasks().count() >= 2);
    for task in p.tasks() {
        assert_eq!(task.status, baton::plan::Status::Completed, "{}: {out}", task.id);
        assert!(out.contains(&format!("✓ {} {} — completed: simulated: wrote", task.id, task.name)), "{}: {out}", task.id);
        let n = note(dir, task.id.as_str());
        assert!(n.contains("This is a simulation") && n.contains("no model was called"), "{n}");
        // The note quotes the task it stands in for.
        let first_words: String = task.description.as_deref().unwrap_or_default().chars().take(20).collect();
        assert!(n.contains(&first_words), "{n} lacks {first_words:?}");
    }
    // Everything committed: the init files, each note, each task's plan state.
    assert_eq!(bare.git(dir, &["status", "--porcelain"]), "", "a clean tree after the run");
    let log = bare.git(dir, &["log", "--format=%s"]);
    assert!(log.contains("baton init:") && log.contains("simulated note (no model was called)"), "{log}");
    assert!(!bare.npx_called(), "nothing is ever downloaded");
}

#[test]
fn the_simulated_agent_from_baton_toml_labels_every_line_it_causes() {
    let bare = Bare::new();
    let repo = bare.fresh_repo();
    let dir = repo.path();
    assert_eq!(bare.baton(dir, &["init"]).code(), 0);
    // `[agent] kind = "simulated"` instead of the flag, in the commented file init wrote.
    let toml = std::fs::read_to_string(dir.join("baton.toml")).unwrap();
    std::fs::write(dir.join("baton.toml"), toml.replace("# kind = \"claude\"", "kind = \"simulated\"")).unwrap();
    bare.git(dir, &["commit", "-q", "-am", "simulated agent"]);

    let run = bare.baton(dir, &["run", "plan.yaml", "--verbose"]);
    assert_eq!(run.code(), 0, "{}", run.all());
    let out = run.stdout();
    assert!(out.contains("agent: simulated (no model is called)"), "{out}");
    let task_lines: Vec<&str> = out.lines().filter(|l| ["[1.1]", "[1.2]", "[2.1]"].iter().any(|t| l.contains(&format!("] {t} ")))).collect();
    assert!(task_lines.len() >= 9, "the agent's events are shown: {out}");
    for l in &task_lines {
        assert!(l.contains("[simulated]"), "an agent line without the label: {l}\n{out}");
    }
    assert!(out.contains("[Init] model simulated,"), "{out}");
    assert!(plan(dir).tasks().all(|t| t.status == baton::plan::Status::Completed), "{out}");
}

#[test]
fn init_refuses_to_overwrite_unless_forced() {
    let bare = Bare::new();
    let repo = bare.fresh_repo();
    let dir = repo.path();
    std::fs::write(dir.join("plan.yaml"), "mine\n").unwrap();
    let refused = bare.baton(dir, &["init"]);
    assert_eq!(refused.code(), 2, "{}", refused.all());
    let err = refused.stderr();
    assert!(err.contains("plan.yaml already exists") && err.contains("--force") && err.contains("Nothing was written"), "{err}");
    assert_eq!(std::fs::read_to_string(dir.join("plan.yaml")).unwrap(), "mine\n", "left as it was");
    assert!(!dir.join("baton.toml").exists(), "nothing written: not even the file that did not exist");

    let forced = bare.baton(dir, &["init", "--force"]);
    assert_eq!(forced.code(), 0, "{}", forced.all());
    assert!(std::fs::read_to_string(dir.join("plan.yaml")).unwrap().contains("baton init"));
    // Now both exist: a second init refuses, naming both.
    let again = bare.baton(dir, &["init"]);
    assert_eq!(again.code(), 2);
    assert!(again.stderr().contains("plan.yaml and") && again.stderr().contains("baton.toml already exist"), "{}", again.stderr());
}

#[test]
fn init_outside_git_writes_here_and_the_run_uses_no_git() {
    let bare = Bare::new();
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("project");
    std::fs::create_dir(&sub).unwrap();
    let init = bare.baton(&sub, &["init"]);
    assert_eq!(init.code(), 0, "{}", init.all());
    assert!(init.stdout().contains("not a git repository") && init.stdout().contains("commit = false"), "{}", init.stdout());
    assert!(sub.join("plan.yaml").is_file() && sub.join("baton.toml").is_file(), "written in the current folder");
    let run = bare.baton(&sub, &["run", "plan.yaml", "--agent", "simulated"]);
    assert_eq!(run.code(), 0, "{}", run.all());
    assert!(run.stdout().contains("no git: nothing is committed"), "{}", run.stdout());
    assert!(plan(&sub).tasks().all(|t| t.status == baton::plan::Status::Completed));
    assert!(note(&sub, "1.1").contains("This is a simulation"));
    assert!(!sub.join(".git").exists(), "no repository made");
}

#[test]
fn a_missing_claude_code_cli_is_explained_never_downloaded() {
    let bare = Bare::new();
    let repo = bare.fresh_repo();
    let dir = repo.path();
    assert_eq!(bare.baton(dir, &["init"]).code(), 0);
    let before = std::fs::read_to_string(dir.join("plan.yaml")).unwrap();
    let run = bare.baton(dir, &["run", "plan.yaml"]);
    assert_eq!(run.code(), 2, "{}", run.all());
    let err = run.stderr();
    assert!(err.contains("no Claude Code CLI found"), "{err}");
    assert!(err.contains("npm install -g @anthropic-ai/claude-code") && err.contains("--agent simulated"), "{err}");
    assert!(!bare.npx_called(), "no `npx @anthropic-ai/claude-code`: {err}");
    assert_eq!(std::fs::read_to_string(dir.join("plan.yaml")).unwrap(), before, "nothing ran");
}

#[test]
fn an_unknown_agent_kind_is_a_config_error_naming_the_line() {
    let bare = Bare::new();
    let repo = bare.fresh_repo();
    let dir = repo.path();
    assert_eq!(bare.baton(dir, &["init"]).code(), 0);
    std::fs::write(dir.join("baton.toml"), "# settings\n[agent]\nkind = \"gpt\"\n").unwrap();
    for args in [&["run", "plan.yaml"][..], &["check", "plan.yaml"][..]] {
        let run = bare.baton(dir, args);
        assert_eq!(run.code(), 2, "{args:?}: {}", run.all());
        let err = run.stderr();
        assert!(err.contains("baton.toml:3:") && err.contains("gpt") && err.contains("simulated"), "{args:?}: {err}");
    }
}

#[test]
fn init_in_a_bare_repository_writes_nothing_into_its_git_folder() {
    let bare = Bare::new();
    let dir = tempfile::Builder::new().prefix("baton-bare-").tempdir().unwrap();
    bare.git(dir.path(), &["init", "-q", "--bare"]);
    let init = bare.baton(dir.path(), &["init"]);
    assert_eq!(init.code(), 2, "{}", init.all());
    assert!(init.stderr().contains("bare"), "{}", init.all());
    assert!(!dir.path().join("plan.yaml").exists() && !dir.path().join("baton.toml").exists(), "{}", init.all());
}
