//! The short soak CI runs on every change: the real baton, killed and restarted, with every
//! invariant checked after each interruption. A failure prints the whole report (each violation
//! with what, where and the seed); replay it with the command on its last line.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use baton_soak::design::Mode;
use baton_soak::Config;

/// Fixed, so CI runs the same plan, faults and kill schedule every time.
const SEED: u64 = 20_261_130;

fn soak(mode: Mode, tasks: usize, kills: usize) {
    // Built once for the three soaks (they run at the same time).
    static BINARIES: OnceLock<Result<(PathBuf, PathBuf), String>> = OnceLock::new();
    let (baton, fake) = match BINARIES.get_or_init(|| baton_soak::workspace_binaries().map_err(|e| e.to_string())) {
        Ok(found) => found.clone(),
        Err(e) => panic!("{e}"),
    };
    let mut cfg = Config::new(baton, fake);
    cfg.mode = mode;
    cfg.tasks = tasks;
    cfg.kills = kills;
    cfg.seed = SEED;
    cfg.kill_min = Duration::from_millis(100);
    cfg.kill_max = Duration::from_millis(1200);
    let report = match baton_soak::run(&cfg) {
        Ok(report) => report,
        Err(e) => panic!("{e}"),
    };
    let text = report.render();
    assert!(report.interrupts() > 0, "the soak interrupted nothing:\n{text}");
    assert!(report.checks > 1, "the soak checked nothing:\n{text}");
    assert!(report.violations.is_empty(), "the soak found violations:\n{text}");
}

#[test]
fn short_soak_sequential() {
    soak(Mode::Run, 40, 15);
}

#[test]
fn short_soak_parallel() {
    soak(Mode::Parallel, 40, 15);
}

#[test]
fn short_soak_pipeline() {
    soak(Mode::Pipeline, 24, 8);
}
