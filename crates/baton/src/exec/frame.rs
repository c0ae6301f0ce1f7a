//! What baton and `baton remote-attempt` say to each other.
//!
//! Going out: the attempt's [`Spec`] (and its prompt) travel as files of the input commit that
//! baton pushes to the git remote — never in the job's entrypoint, environment or metadata, which
//! anyone who can reach the cluster's dashboard reads. Coming back: the worker prints the
//! agent's stdout lines untouched, and its own words as [`Frame`] lines — one JSON object under
//! the key `baton_remote` — so that the follower can tell them apart from the agent's and from
//! the lines Ray adds to a job's log.

use serde::{Deserialize, Serialize};

/// How every frame line begins.
pub const PREFIX: &str = "{\"baton_remote\":";
/// The version of the spec and the frames; a worker refuses another one.
pub const VERSION: u32 = 1;
/// The files of the input commit.
pub const SPEC_FILE: &str = "spec.json";
pub const PROMPT_FILE: &str = "prompt";

/// One attempt, as the worker runs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    pub version: u32,
    pub plan: String,
    pub task: String,
    pub session: u32,
    /// The agent's program as baton runs it on its own machine.
    pub program: String,
    /// Its file name: looked up on the worker's `PATH` when `program` is not on the worker.
    pub program_name: String,
    /// The program is baton itself (the simulated agent): the worker uses its own.
    pub own_program: bool,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// The prompt is the agent's stdin (else stdin is empty).
    pub stdin_prompt: bool,
    /// The status file, relative to the working copy: sent back in the result, not committed.
    pub status_file: String,
    /// The worker's own backstop: baton enforces the attempt's deadlines from the stream.
    pub total_timeout_secs: f64,
    /// How long the agent's group has between SIGTERM and SIGKILL when the job is stopped.
    pub grace_secs: f64,
}

/// A line of the worker's own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Frame {
    /// The worker began: everything in the job's log before this is Ray's.
    Hello { version: u32, host: String, pid: u32 },
    /// The agent's program started (the attempt's deadlines run from here: fetching the
    /// repository on a cold worker is not the agent being idle).
    Started { pid: i32 },
    /// A line the agent wrote to stderr.
    Stderr { line: String },
    /// A line the agent wrote to stdout that begins as a frame does: sent as a frame, so
    /// that nothing the agent prints is ever taken for the worker's own words.
    Stdout { line: String },
    /// The agent ended; what it left is committed as `commit` (pushed to the result ref) and
    /// its status file, if it wrote one, is here. (Work that cannot be pushed is an `Error`.)
    Result {
        exit_code: Option<i32>,
        signal: Option<i32>,
        commit: Option<String>,
        status_file: Option<String>,
    },
    /// The attempt could not be set up on the worker; no retry fixes it.
    Error { message: String, help: String },
}

#[derive(Serialize, Deserialize)]
struct Wrapped {
    baton_remote: Frame,
}

/// The frame as one line (no newline).
pub fn encode(frame: &Frame) -> String {
    serde_json::to_string(&Wrapped { baton_remote: frame.clone() }).unwrap_or_default()
}

/// The frame a line holds, if it is one.
pub fn decode(line: &str) -> Option<Frame> {
    if !line.starts_with(PREFIX) {
        return None;
    }
    serde_json::from_str::<Wrapped>(line.trim_end()).ok().map(|w| w.baton_remote)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_read_back_and_agent_lines_are_not_frames() {
        for f in [
            Frame::Hello { version: VERSION, host: "w1".into(), pid: 7 },
            Frame::Started { pid: 42 },
            Frame::Stderr { line: "warning: \"x\"\n".into() },
            Frame::Stdout { line: format!("{PREFIX}{{\"result\":{{}}}}") },
            Frame::Result { exit_code: Some(0), signal: None, commit: Some("ab".into()), status_file: Some("{}".into()) },
            Frame::Error { message: "m".into(), help: "h".into() },
        ] {
            let line = encode(&f);
            assert!(!line.contains('\n'));
            assert_eq!(decode(&line), Some(f));
        }
        assert_eq!(decode(r#"{"type":"assistant","message":{}}"#), None);
        assert_eq!(decode(r#"{"baton_remote": "spaced, not ours"}"#), None);
        assert_eq!(decode(r#"{"baton_remote":{"unknown":{}}}"#), None);
    }
}
