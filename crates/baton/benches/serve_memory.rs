//! Benchmark (not a test) of `baton serve`'s memory: the real binary serving a repository of 3
//! plans (40 tasks each, every one run by baton's simulated agent, so the run history and the
//! logs hold 120 attempts with transcripts), after every page and API answer was asked for
//! (each plan, each task, each transcript as HTML and as JSON lines, history, cost, the
//! overview, the assets) three times over, with one `/events` stream open all along. Prints the server's
//! resident memory (`VmRSS`) and its peak (`VmHWM`) from `/proc/PID/status` at the start, after
//! the first round and after the last. The budget is 30 MB with 3 plans open.
//!
//! `cargo bench -p baton --bench serve_memory` (the release binary: the figure that matters)
//!
//! It never asserts on memory; it fails loudly when an answer is not a 200.

#[path = "support/serve.rs"]
mod serve;

use std::io::Write;
use std::net::TcpStream;
use std::process::{Command, Stdio};

use serve::{get, memory};

const PLANS: usize = 3;
const TASKS: usize = 40;
const ROUNDS: usize = 3;
const BATON: &str = env!("CARGO_BIN_EXE_baton");

fn main() {
    let repo = baton_testkit::TempRepo::new();
    repo.write("baton.toml", baton_testkit::FAST_CONFIG);
    for n in 1..=PLANS {
        let mut plan = format!("meta:\n  name: Plan {n}\nsections:\n- id: s\n  tasks:\n");
        for t in 1..=TASKS {
            plan.push_str(&format!("  - id: '{n}.{t}'\n    name: Task {t} of plan {n}\n"));
        }
        repo.write(&format!(".claude/plans/p{n}.yaml"), &plan);
    }
    repo.commit_all("plans");
    for n in 1..=PLANS {
        let out = baton(repo.path(), &["run", &format!(".claude/plans/p{n}.yaml"), "--agent", "simulated"]);
        assert!(out.status.success(), "baton run p{n}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    }

    let mut cmd = Command::new(BATON);
    cmd.current_dir(repo.path()).env("NO_COLOR", "1");
    let (server, port) = serve::start(cmd);
    let pid = server.pid();

    println!("baton serve: {PLANS} plans × {TASKS} tasks, every task run once by the simulated agent ({})", if cfg!(debug_assertions) { "debug build" } else { "release build" });
    println!("  {:<40} {}", "started", memory(pid));
    let mut paths = vec!["/".to_string(), "/history".to_string(), "/assets/app.css".to_string(), "/assets/app.js".to_string(), "/api/plans".to_string(), "/api/history".to_string(), "/api/cost".to_string(), "/api/cost?by=day".to_string()];
    for n in 1..=PLANS {
        paths.push(format!("/plans/p{n}"));
        paths.push(format!("/api/plans/p{n}"));
        paths.push(format!("/api/history?plan=p{n}"));
        for t in 1..=TASKS {
            paths.push(format!("/plans/p{n}/tasks/{n}.{t}"));
            paths.push(format!("/plans/p{n}/tasks/{n}.{t}/attempts/1/transcript"));
            paths.push(format!("/api/plans/p{n}/tasks/{n}.{t}"));
            paths.push(format!("/api/plans/p{n}/tasks/{n}.{t}/attempts/1/transcript"));
        }
    }
    // An open page's change feed, held open through the rounds.
    let mut events = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(events, "GET /events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").unwrap();
    let mut bytes = 0usize;
    for round in 1..=ROUNDS {
        let started = std::time::Instant::now();
        for p in &paths {
            bytes += get(port, p);
        }
        println!("  {:<40} {}  ({} requests in {:.2} s)", format!("after round {round}"), memory(pid), paths.len(), started.elapsed().as_secs_f64());
    }
    println!("  answered {:.1} MB in all", bytes as f64 / 1e6);
    drop(events);
    serve::stop(server);
}

fn baton(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(BATON).args(args).current_dir(dir).env("NO_COLOR", "1").stdin(Stdio::null()).output().expect("run baton")
}
