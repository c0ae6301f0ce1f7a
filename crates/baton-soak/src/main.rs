//! `baton-soak`: kill baton for a living and count what breaks. See the crate docs (lib.rs).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use baton_soak::design::Mode;
use baton_soak::Config;

const USAGE: &str = "usage: baton-soak [--tasks N] [--kills K] [--seed S] [--parallel] [--jobs N] [--pipeline]
                  [--kill-min-ms MS] [--kill-max-ms MS] [--max-runs N] [--run-timeout SECS]
                  [--baton PATH] [--fake-claude PATH] [--baton-arg ARG]... [--keep] [-v|--verbose]

The temporary folder is kept when a violation is found (and always with --keep).

Runs the real baton on a seeded plan of N tasks (default 200) with a faulty fake agent, interrupts
it K times (default 50: kill -9, SIGTERM, double SIGINT to its process group) at seeded instants,
restarts it until the plan is done, and checks the invariants after every interruption.
Exits 0 with no violation, 1 with any, 2 on a usage or setup error.";

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(message) => {
            eprintln!("baton-soak: {message}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<bool, String> {
    let mut args = std::env::args().skip(1);
    let mut baton: Option<PathBuf> = None;
    let mut fake: Option<PathBuf> = None;
    let mut cfg = Config::new(PathBuf::new(), PathBuf::new());
    // Whoever runs it by hand wants to look at what went wrong.
    cfg.keep_on_violation = true;
    cfg.seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_secs());
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        let number = |name: &str, v: String| v.parse::<u64>().map_err(|_| format!("{name}: {v:?} is not a number"));
        match arg.as_str() {
            "--tasks" => cfg.tasks = number("--tasks", value("--tasks")?)? as usize,
            "--kills" => cfg.kills = number("--kills", value("--kills")?)? as usize,
            "--seed" => cfg.seed = number("--seed", value("--seed")?)?,
            "--jobs" => cfg.jobs = number("--jobs", value("--jobs")?)? as u32,
            "--parallel" => cfg.mode = Mode::Parallel,
            "--pipeline" => cfg.mode = Mode::Pipeline,
            "--kill-min-ms" => cfg.kill_min = Duration::from_millis(number(&arg, value(&arg)?)?),
            "--kill-max-ms" => cfg.kill_max = Duration::from_millis(number(&arg, value(&arg)?)?),
            "--max-runs" => cfg.max_runs = number(&arg, value(&arg)?)? as usize,
            "--run-timeout" => cfg.run_timeout = Duration::from_secs(number(&arg, value(&arg)?)?),
            "--baton" => baton = Some(value(&arg)?.into()),
            "--fake-claude" => fake = Some(value(&arg)?.into()),
            "--baton-arg" => cfg.extra_args.push(value(&arg)?),
            "--keep" => cfg.keep = true,
            "-v" | "--verbose" => cfg.verbose = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(true);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let (baton, fake) = match (baton, fake) {
        (Some(b), Some(f)) => (b, f),
        (b, f) => {
            let (wb, wf) = baton_soak::workspace_binaries().map_err(|e| e.to_string())?;
            (b.unwrap_or(wb), f.unwrap_or(wf))
        }
    };
    cfg.baton = baton;
    cfg.fake_claude = fake;
    eprintln!("baton-soak: {}", cfg.replay());
    let report = baton_soak::run(&cfg).map_err(|e| e.to_string())?;
    print!("{}", report.render());
    Ok(report.violations.is_empty())
}
