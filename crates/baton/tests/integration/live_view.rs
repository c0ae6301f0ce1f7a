//! The calm view on a real terminal: `baton run --parallel` under a pseudo-terminal
//! (util-linux `script`), its output replayed on a small terminal model.

use std::time::Duration;

use crate::support::project;

const WIDTH: usize = 100;

/// A terminal, enough of one for what indicatif and console send: printable characters with
/// the automatic wrap at the right margin, `\r`, `\n`, and the CSI cursor moves and erases.
/// Every row ever written is kept (the scrollback).
struct Vt {
    rows: Vec<Vec<char>>,
    row: usize,
    col: usize,
    wrap_next: bool,
    /// The screen just before each cursor move up or line erase, with which every redraw
    /// starts: whole frames (and some half-erased ones).
    frames: Vec<Vec<String>>,
}

impl Vt {
    fn replay(output: &str) -> Vt {
        let mut vt = Vt { rows: vec![Vec::new()], row: 0, col: 0, wrap_next: false, frames: Vec::new() };
        let mut chars = output.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\x1b' => {
                    if chars.next_if_eq(&'[').is_none() {
                        chars.next(); // a two-character escape: nothing indicatif sends
                        continue;
                    }
                    let mut params = String::new();
                    while let Some(p) = chars.next_if(|c| !('\x40'..='\x7e').contains(c)) {
                        params.push(p);
                    }
                    let n = params.parse::<usize>().unwrap_or(1).max(1);
                    match chars.next() {
                        Some('A') => {
                            vt.frames.push(vt.screen());
                            vt.row = vt.row.saturating_sub(n);
                        }
                        Some('B') => vt.down(n),
                        Some('C') => vt.col = (vt.col + n).min(WIDTH - 1),
                        Some('D') => vt.col = vt.col.saturating_sub(n),
                        Some('K') if params == "2" => {
                            vt.frames.push(vt.screen());
                            let row = vt.row;
                            vt.rows[row].clear();
                        }
                        _ => {}
                    }
                    vt.wrap_next = false;
                }
                '\r' => {
                    vt.col = 0;
                    vt.wrap_next = false;
                }
                '\n' => vt.down(1),
                c if c.is_control() => {}
                c => {
                    if vt.wrap_next {
                        vt.down(1);
                        vt.col = 0;
                    }
                    let (row, col) = (vt.row, vt.col);
                    if vt.rows[row].len() <= col {
                        vt.rows[row].resize(col + 1, ' ');
                    }
                    vt.rows[row][col] = c;
                    if col + 1 == WIDTH {
                        vt.wrap_next = true;
                    } else {
                        vt.col += 1;
                    }
                }
            }
        }
        vt
    }

    fn down(&mut self, n: usize) {
        self.row += n;
        if self.rows.len() <= self.row {
            self.rows.resize(self.row + 1, Vec::new());
        }
        self.wrap_next = false;
    }

    /// Every row, trailing blanks and trailing empty rows left out.
    fn screen(&self) -> Vec<String> {
        let mut rows: Vec<String> = self.rows.iter().map(|r| r.iter().collect::<String>().trim_end().to_owned()).collect();
        while rows.last().is_some_and(String::is_empty) {
            rows.pop();
        }
        rows
    }
}

/// A live task line starts with the spinner.
fn is_live(row: &str) -> bool {
    row.starts_with(|c: char| ('\u{2800}'..='\u{28ff}').contains(&c))
}

#[test]
fn parallel_tasks_share_the_live_lines_and_leave_none_behind() {
    let mut plan = String::from("meta:\n  name: Live\nsections:\n- id: s1\n  name: Group\n  tasks:\n");
    for id in ["1", "2", "3"] {
        // Task 3's line is wider than the terminal: it must be cut, as a wrapped line is not
        // redrawn in place.
        let name = if id == "3" { format!("Task 3{}", " with a long name".repeat(5)) } else { format!("Task {id}") };
        plan.push_str(&format!("  - id: '{id}'\n    name: {name}\n    status: pending\n    parallel_group: g\n    description: d\n"));
    }
    let p = project(&plan);
    // All three agents run at once (a barrier), then keep talking for a while.
    let marks: Vec<String> = ["1", "2", "3"].iter().map(|t| p.state_path(&format!("{t}.running")).display().to_string()).collect();
    let steps: Vec<String> = marks
        .iter()
        .map(|m| format!(r#"[{{"mark": ["{m}"], "wait_for": {}, "events": 6, "interval_ms": 250}}]"#, serde_json::json!(marks)))
        .collect();
    p.scenario(&format!(r#"{{"tasks": {{"1": {}, "2": {}, "3": {}}}}}"#, steps[0], steps[1], steps[2]));

    // baton under a pseudo-terminal of a known size, its output (escapes and all) on stdout.
    let mut cmd = crate::support::on_a_pty(&p, "run plan.yaml --parallel --jobs 3", WIDTH);
    let out = baton_testkit::run_with_deadline(&mut cmd, Duration::from_secs(120)).expect("run util-linux `script` (needed for a pseudo-terminal)");
    assert!(!out.timed_out && out.status.success(), "{:?}\n{}\n{}", out.status, out.stdout, out.stderr);

    let vt = Vt::replay(&out.stdout);
    let shown = || format!("{:#?}\n{}", vt.screen(), out.stdout.escape_debug());
    let live_counts: Vec<usize> = vt.frames.iter().map(|f| f.iter().filter(|r| is_live(r)).count()).collect();
    assert_eq!(live_counts.iter().max(), Some(&3), "one live line per running task, at most three at once: {live_counts:?}\n{}", shown());
    for frame in &vt.frames {
        // The live lines are the last rows, below everything printed, one row each.
        let first_live = frame.iter().position(|r| is_live(r)).unwrap_or(frame.len());
        assert!(frame[first_live..].iter().all(|r| is_live(r) || r.is_empty()), "a printed or wrapped line among the live ones: {frame:#?}");
    }
    let screen = vt.screen();
    assert!(!screen.iter().any(|r| is_live(r)), "a live line was left behind: {}", shown());
    assert!(vt.frames.iter().flatten().any(|r| is_live(r) && r.contains("3 Task 3 with a long")), "{}", shown());
    for t in ["1", "2", "3"] {
        let done = if t == "3" { "✓ 3 Task 3 with a long".to_owned() } else { format!("✓ {t} Task {t} — completed") };
        assert_eq!(screen.iter().filter(|r| r.starts_with(&done)).count(), 1, "{done:?} once: {}", shown());
    }
}

#[test]
fn a_ctrl_c_echoed_by_the_terminal_leaves_no_live_line_behind() {
    let plan = "meta:\n  name: Echo\nsections:\n- id: s1\n  name: One\n  tasks:\n  - id: '1'\n    name: Task 1\n    status: pending\n    description: d\n";
    let p = project(plan);
    // The agent says it runs, then waits for the test: the Ctrl+C comes while its line is live.
    let running = p.state_path("1.running");
    let go = p.state_path("1.go");
    p.scenario(&format!(r#"{{"tasks": {{"1": [{{"mark": [{}], "wait_for": [{}], "events": 2, "interval_ms": 100}}]}}}}"#, serde_json::json!(running), serde_json::json!(go)));

    // baton under a pseudo-terminal whose input we type into: the terminal echoes a Ctrl+C as
    // `^C` where the cursor is, as a real one does, and sends baton SIGINT.
    let mut pty = crate::support::Pty::start(&p, "run plan.yaml", WIDTH);
    let seen = |pty: &crate::support::Pty, s: &str| pty.text().contains(s);
    assert!(baton_testkit::wait_until(Duration::from_secs(60), || running.exists() && seen(&pty, "starting")), "the agent never ran");
    pty.type_in(b"\x03");
    assert!(baton_testkit::wait_until(Duration::from_secs(60), || seen(&pty, "stopping gracefully")), "Ctrl+C was not seen");
    std::fs::write(&go, "").expect("let the agent finish");
    assert!(baton_testkit::wait_until(Duration::from_secs(60), || pty.child.try_wait().ok().flatten().is_some()), "baton did not end");
    let out = pty.finish();

    assert!(out.contains("^C"), "the terminal did not echo the Ctrl+C: {}", out.escape_debug());
    let vt = Vt::replay(&out);
    let screen = vt.screen();
    assert!(!screen.iter().any(|r| is_live(r)), "a live line was left behind: {screen:#?}\n{}", out.escape_debug());
    assert_eq!(screen.iter().filter(|r| r.starts_with("✓ 1 Task 1 — completed")).count(), 1, "{screen:#?}");
}
