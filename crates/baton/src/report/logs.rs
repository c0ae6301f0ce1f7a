//! `baton logs PLAN TASK`: an attempt's transcript, readable — the verbose line of every event,
//! then the agent's stderr.

use std::path::Path;

use crate::agent::Dialect;
use crate::report::agent_line::verbose_line;
use crate::report::safe::{terminal_line, terminal_text};
use crate::run::record::Records;

/// The text to print, or what is missing. `dialect` reads the transcript: the agent's own.
pub fn render(logs_dir: &Path, plan: &Path, task: &str, session: Option<u32>, dialect: &dyn Dialect) -> Result<String, String> {
    let records = Records::new(logs_dir, plan);
    let sessions = records.sessions(task);
    let Some(&last) = sessions.last() else {
        return Err(format!(
            "no recorded attempts for task '{task}' (looked in {})",
            records.task_dir(task).display()
        ));
    };
    let n = session.unwrap_or(last);
    if !sessions.contains(&n) {
        let list: Vec<String> = sessions.iter().map(u32::to_string).collect();
        return Err(format!("task '{task}' has no attempt {n}; recorded: {}", list.join(", ")));
    }
    let mut out = String::new();
    let transcript = records.transcript(task, n);
    out.push_str(&format!("task {task} · attempt {n} of {} recorded · {}\n", sessions.len(), transcript.display()));
    if let Some(r) = records.read(task, n) {
        out.push_str(&format!(
            "outcome: {}{} · {:.1}s{}{}\n",
            r.outcome,
            if r.message.is_empty() { String::new() } else { format!(" — {}", terminal_line(&r.message)) },
            r.duration_seconds,
            r.cost_usd.map(|c| format!(" · ${c:.4}")).unwrap_or_default(),
            r.waited_seconds.map(|w| format!(" · baton then waited {}", crate::report::event::human_secs(w))).unwrap_or_default()
        ));
    } else {
        out.push_str("outcome: not recorded (the attempt was interrupted, or is still running)\n");
    }
    out.push('\n');
    let text = std::fs::read_to_string(&transcript).map_err(|e| format!("cannot read {}: {e}", transcript.display()))?;
    for line in text.lines() {
        for ev in dialect.parse_line(line) {
            if let Some(l) = verbose_line(&ev) {
                out.push_str(&l);
                out.push('\n');
            }
        }
    }
    let stderr = std::fs::read_to_string(transcript.with_extension("stderr")).unwrap_or_default();
    if !stderr.trim().is_empty() {
        out.push_str("\n--- stderr ---\n");
        // The agent's own stderr: printed as text, never as terminal commands.
        out.push_str(&terminal_text(&stderr));
        if !stderr.ends_with('\n') {
            out.push('\n');
        }
    }
    Ok(out)
}
