//! `baton remote-attempt`: the worker's half of a remote attempt (a Ray job's entrypoint).
//!
//! It fetches the attempt's input commit from the git remote into a bare mirror kept on the
//! worker (`$BATON_REMOTE_CACHE`, else `~/.cache/baton/remote`; one per remote, shared by the
//! attempts on that machine under a lock), checks the snapshot out in a worktree of its own,
//! and runs the agent there under the same supervisor as a local attempt (the guard, a process
//! group of its own, ended on SIGTERM within the job's stop grace). The agent's stdout lines go
//! to stdout as they come, untouched; everything of the worker's own is a frame
//! ([`super::frame`]). When the agent ends — on its own, or because the job was stopped — what
//! it left is committed on top of the snapshot and pushed to the result ref, and its status
//! file sent back in the result frame.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::frame::{self, Frame, Spec};
use super::ray::data::commit_tree;
use crate::git;
use crate::supervise::{CommandSpec, Input, Output, Policy, Stream, Supervised};

/// The status file is sent back whole up to this size (a local one is read capped the same).
const STATUS_CAP: u64 = 1024 * 1024;
/// The worker's own backstop beyond the attempt's total timeout (baton enforces that one).
const BACKSTOP_SLACK: Duration = Duration::from_secs(300);

pub struct Args {
    pub remote: String,
    pub input: String,
    pub result: String,
}

/// Runs the attempt; the exit code is 0 when the agent ran (however it ended) and its result
/// was sent, 2 when the attempt could not be set up (an error frame says why), 1 when its
/// result could not be sent.
pub fn main(args: Args) -> u8 {
    say(&Frame::Hello { version: frame::VERSION, host: host_name(), pid: std::process::id() });
    let mut prepared = match Prepared::new(&args) {
        Ok(p) => p,
        Err((message, help)) => {
            say(&Frame::Error { message, help });
            return 2;
        }
    };
    let code = prepared.run(&args);
    prepared.clean_up(&args);
    code
}

/// Writes one line to stdout, whole, at once (the job's log is a file others append to too).
fn out_line(text: &str) {
    let mut line = Vec::with_capacity(text.len() + 1);
    line.extend_from_slice(text.as_bytes());
    line.push(b'\n');
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(&line);
    let _ = out.flush();
}

fn say(f: &Frame) {
    out_line(&frame::encode(f));
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string()).unwrap_or_default()
}

/// The worker's mirror of the remote, its working copy for this attempt, and what to run.
struct Prepared {
    mirror: PathBuf,
    work: PathBuf,
    spec: Spec,
    prompt_file: PathBuf,
    program: PathBuf,
    /// The working copy stays: it holds work that could not be sent back.
    keep: bool,
}

type Refusal = (String, String);

impl Prepared {
    fn new(args: &Args) -> Result<Prepared, Refusal> {
        let cache = match std::env::var_os("BATON_REMOTE_CACHE") {
            Some(d) if !d.is_empty() => PathBuf::from(d),
            _ => match std::env::var_os("HOME") {
                Some(h) => Path::new(&h).join(".cache/baton/remote"),
                None => std::env::temp_dir().join("baton-remote"),
            },
        };
        let key = crate::git::worktree::ref_component(&format!("{:016x}", fnv64(args.remote.as_bytes())));
        let mirror = cache.join(format!("{key}.git"));
        let work = cache.join("work").join(format!("{}-{}", std::process::id(), jiff::Timestamp::now().as_millisecond()));
        let setup = |what: &str, e: String| (format!("{what}: {e}"), format!("check that this worker can reach the git remote {} and write {}", args.remote, cache.display()));
        std::fs::create_dir_all(cache.join("work")).map_err(|e| setup("cannot make the cache folder", e.to_string()))?;
        let lock = lock_mirror(&cache.join(format!("{key}.lock"))).map_err(|e| setup("cannot lock the mirror", e.to_string()))?;
        if !mirror.join("HEAD").exists() {
            git::git(&cache, &["init", "--quiet", "--bare", &mirror.to_string_lossy()]).map_err(|e| setup("cannot make the mirror", crate::exit::render_chain(&e)))?;
        }
        clear_dead_work(&mirror, &cache.join("work"));
        let spec_ref = format!("+{}:{}", args.input, args.input);
        git::git(&mirror, &["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", &args.remote, &spec_ref])
            .map_err(|e| setup(&format!("cannot fetch {}", args.input), crate::exit::render_chain(&e)))?;
        let _ = std::fs::write(work.with_extension("ref"), format!("{}\n", args.input));
        let snapshot = format!("{}^", args.input);
        git::git(&mirror, &["worktree", "add", "--quiet", "--detach", "--force", &work.to_string_lossy(), &snapshot])
            .map_err(|e| setup("cannot check the snapshot out", crate::exit::render_chain(&e)))?;
        drop(lock);
        let read = |name: &str| git::git_bytes(&mirror, &["cat-file", "blob", &format!("{}:{name}", args.input)], &[], None);
        let spec: Spec = read(frame::SPEC_FILE)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| (format!("{} holds no attempt spec this baton can read", args.input), "run the same baton version on the workers as on the machine that runs the plan".to_string()))?;
        if spec.version != frame::VERSION {
            return Err((
                format!("the attempt was sent by another version of baton (spec version {}, this worker reads {})", spec.version, frame::VERSION),
                "install the same baton on the workers as on the machine that runs the plan".into(),
            ));
        }
        let prompt = read(frame::PROMPT_FILE).map_err(|e| setup("cannot read the prompt", crate::exit::render_chain(&e)))?;
        let prompt_file = work.with_extension("prompt");
        std::fs::write(&prompt_file, &prompt).map_err(|e| setup("cannot write the prompt", e.to_string()))?;
        let program = find_program(&spec).map_err(|m| (m, "install the agent CLI on every Ray worker (on the PATH of `ray start`), or set the agent's `binary` to a path that exists on the workers (see docs/scale-out.md)".to_string()))?;
        Ok(Prepared { mirror, work, spec, prompt_file, program, keep: false })
    }

    /// Runs the agent and sends its result; the exit code.
    fn run(&mut self, args: &Args) -> u8 {
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => rt,
            Err(e) => {
                say(&Frame::Error { message: format!("cannot start baton's runtime: {e}"), help: String::new() });
                return 2;
            }
        };
        let exit = match runtime.block_on(self.agent()) {
            Ok(exit) => exit,
            Err((message, help)) => {
                say(&Frame::Error { message, help });
                return 2;
            }
        };
        let status = self.work.join(&self.spec.status_file);
        let status_text = crate::fsx::read_regular_text(&status, STATUS_CAP).ok();
        let _ = std::fs::remove_file(&status);
        match self.send_back(args) {
            Ok(commit) => {
                say(&Frame::Result { exit_code: exit.code, signal: exit.signal, commit: Some(commit), status_file: status_text });
                0
            }
            Err(e) => {
                // The agent's work stays on this worker, where the message says.
                if let Some(text) = &status_text {
                    let _ = std::fs::write(self.work.join(&self.spec.status_file), text);
                }
                self.keep = true;
                let _ = std::fs::write(self.work.with_extension("kept"), format!("{}\n", args.result));
                say(&Frame::Error {
                    message: format!("the worker {} could not send the agent's work back: {e}; the work is kept there in {}", host_name(), self.work.display()),
                    help: format!("make {} accept pushes to refs/baton/* from the workers (or set [executor] remote to one that does)", args.remote),
                });
                1
            }
        }
    }

    async fn agent(&self) -> Result<crate::supervise::ExitInfo, Refusal> {
        let cmd = CommandSpec {
            program: self.program.clone(),
            args: self.spec.args.iter().map(Into::into).collect(),
            cwd: self.work.clone(),
            env: self.spec.env.iter().map(|(k, v)| (k.into(), v.into())).collect(),
            stdin: if self.spec.stdin_prompt { Input::File(self.prompt_file.clone()) } else { Input::Null },
        };
        let guard = crate::supervise::own_binary().map_err(|e| (format!("cannot find this baton: {e}"), String::new()))?;
        let total = Duration::from_secs_f64(self.spec.total_timeout_secs.max(1.0)) + BACKSTOP_SLACK;
        let mut policy = Policy::agent(guard, total, total, None);
        policy.grace = Duration::from_secs_f64(self.spec.grace_secs.clamp(0.5, 60.0));
        let mut proc = Supervised::spawn(&cmd, &policy).await.map_err(|e| (crate::exit::render_chain(&e), "check the agent CLI on this worker".to_string()))?;
        say(&Frame::Started { pid: proc.pid() });
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok();
        let mut ending = false;
        loop {
            tokio::select! {
                out = proc.next() => match out {
                    Some(Output::Line(l)) => match l.stream {
                        Stream::Stdout if l.text.starts_with(frame::PREFIX) => say(&Frame::Stdout { line: l.text }),
                        Stream::Stdout => out_line(&l.text),
                        Stream::Stderr => say(&Frame::Stderr { line: l.text }),
                    },
                    Some(Output::Deadline(_)) => {}
                    Some(Output::Exited(info)) => return Ok(info),
                    None => return Ok(crate::supervise::ExitInfo { code: None, signal: None }),
                },
                _ = recv(&mut term), if !ending => {
                    ending = true;
                    proc.begin_terminate(policy.grace);
                }
                _ = recv(&mut int), if !ending => {
                    ending = true;
                    proc.begin_terminate(policy.grace);
                }
            }
        }
    }

    /// Commits what the agent left on top of where it is (its own commits kept) and pushes
    /// that to the result ref; the commit.
    fn send_back(&self, args: &Args) -> Result<String, String> {
        fn e(what: &str) -> impl Fn(git::GitError) -> String + '_ {
            move |err| format!("{what}: {}", crate::exit::render_chain(&err))
        }
        git::git(&self.work, &["add", "-A", "--", ":/"]).map_err(e("cannot add the agent's files"))?;
        let tree = git::git(&self.work, &["write-tree"]).map_err(e("cannot write the tree"))?;
        let head = git::git(&self.work, &["rev-parse", "HEAD"]).map_err(e("cannot read HEAD"))?;
        let message = format!("baton: what {} session {} left", self.spec.task, self.spec.session);
        let commit = commit_tree(&self.work, tree.trim(), &[head.trim()], &message).map_err(e("cannot commit"))?;
        let refspec = format!("+{commit}:{}", args.result);
        git::git(&self.work, &["push", "--quiet", "--no-verify", &args.remote, &refspec]).map_err(e(&format!("cannot push to {}", args.remote)))?;
        Ok(commit)
    }

    /// The working copy and the fetched input go; the mirror's objects stay for the next one.
    fn clean_up(&self, args: &Args) {
        let _ = std::fs::remove_file(&self.prompt_file);
        let _ = std::fs::remove_file(self.work.with_extension("ref"));
        if self.keep {
            return;
        }
        let _held = lock_mirror(&self.mirror.with_extension("lock"));
        let _ = git::git(&self.mirror, &["worktree", "remove", "--force", &self.work.to_string_lossy()]);
        let _ = std::fs::remove_dir_all(&self.work);
        let _ = git::git(&self.mirror, &["update-ref", "-d", &args.input]);
        let _ = git::git(&self.mirror, &["worktree", "prune"]);
        // The mirror grows by every attempt's objects: git packs and prunes it when worth it.
        let _ = git::git(&self.mirror, &["-c", "gc.auto=6700", "gc", "--auto", "--quiet"]);
    }
}

async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
    match s {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}

/// The agent's program on this worker: baton itself for the simulated agent, the path baton
/// runs it at when that is here, else its name on `PATH`.
fn find_program(spec: &Spec) -> Result<PathBuf, String> {
    if spec.own_program {
        return crate::supervise::own_binary().map_err(|e| format!("cannot find this baton: {e}"));
    }
    let exact = Path::new(&spec.program);
    if exact.is_absolute() && is_executable(exact) {
        return Ok(exact.to_path_buf());
    }
    let name = Path::new(&spec.program_name);
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let candidate = dir.join(name);
            if is_executable(&candidate) {
                return Ok(candidate);
            }
        }
    }
    Err(format!("the agent program `{}` is not on this worker ({} does not exist here and `{}` is not on PATH)", spec.program_name, spec.program, spec.program_name))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Working copies of attempts whose worker is gone (killed with its job): removed.
fn clear_dead_work(mirror: &Path, work: &Path) {
    let Ok(entries) = std::fs::read_dir(work) else { return };
    let mut removed = false;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        // Work that could not be sent back (`<name>.kept` beside it) stays for a person.
        if name.ends_with(".kept") || work.join(format!("{name}.kept")).exists() {
            continue;
        }
        let Some(pid) = name.split('-').next().and_then(|p| p.parse::<i32>().ok()) else { continue };
        // SAFETY: signal 0 only asks whether the process exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
        if !alive {
            // Its working copy, and its prompt and input ref (`<name>.prompt`, `<name>.ref`).
            let path = e.path();
            if path.extension().is_some_and(|x| x == "ref") {
                if let Ok(input) = std::fs::read_to_string(&path) {
                    let _ = git::git(mirror, &["update-ref", "-d", input.trim()]);
                }
            }
            let _ = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
            removed = true;
        }
    }
    if removed {
        let _ = git::git(mirror, &["worktree", "prune"]);
    }
}

/// The mirror's lock (fetches and worktree changes of the attempts on this node take turns):
/// another attempt's fetch of a large repository may hold it a while, not forever.
fn lock_mirror(path: &Path) -> Result<crate::coord::fsio::FileLock, crate::coord::CoordError> {
    crate::coord::fsio::lock_exclusive(path, Duration::from_secs(30 * 60))
}

fn fnv64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}
