//! `fake_claude_bin()` is how tests of other crates find fake-claude (they cannot use
//! `CARGO_BIN_EXE_*`): it builds the binary with cargo while the test binary runs.

use std::process::Command;
use std::time::Duration;

#[test]
fn fake_claude_bin_builds_and_finds_the_binary() {
    let bin = baton_testkit::fake_claude_bin();
    let out = baton_testkit::run_with_deadline(
        Command::new(&bin).arg("--version"),
        Duration::from_secs(30),
    )
    .unwrap();
    assert_eq!(out.stdout, "2.1.332 (Claude Code)\n", "{}", bin.display());
}
