//! The subagent context for the prompt of a parallel task: who the agent is, where it works, who
//! works beside it, and the claim protocol. Text only; must not read or write files.

use std::fmt::Write;
use std::path::Path;

/// The protocol section of a parallel task's prompt. `baton_exe` is the command the agent runs
/// (the path of this baton binary); it is quoted for a POSIX shell where needed.
pub fn protocol_text(
    agent_id: &str,
    task_id: &str,
    worktree: &Path,
    group: &str,
    siblings: &[String],
    baton_exe: &str,
) -> String {
    let baton = crate::report::safe::shell_quote(baton_exe);
    let siblings = if siblings.is_empty() { "none".to_string() } else { siblings.join(", ") };
    let mut t = String::new();
    // Writing to a String cannot fail.
    let _ = write!(
        t,
        "## Working in parallel

You are agent `{agent_id}`, working on task {task_id} in your own git worktree:
{worktree}
Other agents work at the same time on the other tasks of parallel group `{group}`: {siblings}.
They have their own worktrees; baton brings every worktree's changes back together afterwards.

Before you edit or create a file, claim it:

    {baton} claim <file>

The path is relative to your current folder or to the repository root. The command answers
`granted` or `already yours` (go ahead), or names the agent and task that hold the file. Never
edit a file another agent holds: work on another part of your task and claim it again later,
or wait a minute and retry. When you are done with a file, release it:

    {baton} release <file>

(`{baton} release` with no file releases all your claims.) During long work, report that you are
alive every few minutes:

    {baton} heartbeat

These commands already know who you are (BATON_AGENT_ID, BATON_TASK_ID) and where the main
checkout is (BATON_MAIN_ROOT); run them from your worktree. Files under `.claude/` (claims,
heartbeats, task status) are coordination files: do not edit them by hand and never commit them.
",
        worktree = worktree.display(),
    );
    t
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_names_the_agent_its_siblings_and_the_commands() {
        let t = protocol_text(
            "agent-8.1",
            "8.1",
            Path::new("/repo/.worktrees/plan-8.1"),
            "api",
            &["8.2".to_string(), "8.3".to_string()],
            "/opt/my tools/baton",
        );
        for needle in [
            "You are agent `agent-8.1`, working on task 8.1",
            "/repo/.worktrees/plan-8.1",
            "parallel group `api`: 8.2, 8.3.",
            "    '/opt/my tools/baton' claim <file>",
            "    '/opt/my tools/baton' release <file>",
            "    '/opt/my tools/baton' heartbeat",
            "Never\nedit a file another agent holds",
            "never commit them",
            "`.claude/`",
        ] {
            assert!(t.contains(needle), "missing {needle:?} in:\n{t}");
        }
        let alone = protocol_text("a", "1", Path::new("/w"), "g", &[], "baton");
        assert!(alone.contains("parallel group `g`: none."), "{alone}");
        assert!(alone.contains("    baton claim <file>"), "{alone}");
    }

    #[test]
    fn shell_quoting_survives_quotes() {
        assert_eq!(crate::report::safe::shell_quote("/usr/bin/baton"), "/usr/bin/baton");
        assert_eq!(crate::report::safe::shell_quote("it's"), r"'it'\''s'");
        assert_eq!(crate::report::safe::shell_quote(""), "''");
    }
}
