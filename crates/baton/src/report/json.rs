//! `baton run --message-format json`: every run event as one JSON object per line on stdout,
//! for scripts and CI. The format is documented in docs/events.md and versioned by `"v"`.
//!
//! The shape of each event is the serde form of [`EventKind`] (its attributes in `event`); this
//! module adds the envelope (`v`, `time`), the event's words for people (`text`), and the
//! serializers for the fields that have no plain JSON form (durations, paths, times). It never
//! writes anything but JSON lines to stdout.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::ser::{SerializeMap, SerializeSeq};
use serde::Serializer;

use super::event::{EventKind, PipelineNote, RunEvent, Sink};
use super::render::verbose_text;
use crate::agent::StreamEvent;
use crate::plan::graph::Wait;
use crate::plan::TaskId;

/// The version of the event format. Adding an event type, a note or a field keeps it; removing
/// or renaming one, or changing a field's meaning, raises it.
pub const VERSION: u32 = 1;

/// What `baton run` prints on stdout.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MessageFormat {
    /// The calm (or `--verbose`) view, for people.
    #[default]
    Human,
    /// One JSON object per event; the human view goes to stderr.
    Json,
}

/// The JSON line of an event: `{"v":1,"time":"…","type":"…",…,"text":"…"}`, without a line break.
pub fn line(ev: &RunEvent) -> String {
    let time = serde_json::to_string(&ev.time.to_string()).unwrap_or_else(|_| "null".into());
    // An event whose own data is a `text` (a warning, a hook's end) says itself in words: a
    // second `text` would make the object's keys repeat.
    let own_text = serde_json::to_value(&ev.kind).is_ok_and(|k| k.get("text").is_some());
    let text = verbose_text(&ev.kind).filter(|_| !own_text).map(|t| serde_json::to_string(&t).unwrap_or_else(|_| "null".into()));
    let text = text.map(|t| format!(",\"text\":{t}")).unwrap_or_default();
    match serde_json::to_string(&ev.kind) {
        // An object that starts with its `type`: the envelope goes in front, the text behind.
        Ok(kind) if kind.starts_with('{') && kind.ends_with('}') && kind.len() > 2 => {
            format!("{{\"v\":{VERSION},\"time\":{time},{}{text}}}", &kind[1..kind.len() - 1])
        }
        // Nothing baton reports should fail to serialize; if something does, the line still
        // says what happened, in words.
        _ => format!("{{\"v\":{VERSION},\"time\":{time},\"type\":\"unserializable\"{text}}}"),
    }
}

/// Prints every event as a JSON line on stdout. Agent events (a line per tool call or text) are
/// left out unless the run is `--verbose`.
pub struct Json {
    verbose: bool,
}

impl Json {
    pub fn new(verbose: bool) -> Json {
        Json { verbose }
    }
}

impl Sink for Json {
    fn event(&mut self, ev: &RunEvent) {
        if matches!(ev.kind, EventKind::Agent { .. }) && !self.verbose {
            return;
        }
        let mut out = std::io::stdout().lock();
        // A closed pipe (`| head`) is the reader's business; the run goes on.
        let _ = writeln!(out, "{}", line(ev));
        let _ = out.flush();
    }
}

/// A duration as seconds, with milliseconds.
pub(super) fn secs<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1000.0).round() / 1000.0)
}

/// A time as RFC 3339 in UTC (`2026-12-01T02:50:10.123Z`).
pub(super) fn timestamp<S: Serializer>(t: &jiff::Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_string())
}

/// A path as text (a name that is not UTF-8 is shown with `�`, never an error).
pub(super) fn path_text<S: Serializer>(p: &Path, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&p.to_string_lossy())
}

pub(super) fn paths_text<S: Serializer>(p: &[PathBuf], s: S) -> Result<S::Ok, S::Error> {
    let mut seq = s.serialize_seq(Some(p.len()))?;
    for p in p {
        seq.serialize_element(&p.to_string_lossy())?;
    }
    seq.end()
}

/// Blocked tasks as `[{"task": "2.1", "why": "its dependency '1.1' failed"}]`.
pub(super) fn blocked_tasks<S: Serializer>(tasks: &[(TaskId, Wait)], s: S) -> Result<S::Ok, S::Error> {
    let mut seq = s.serialize_seq(Some(tasks.len()))?;
    for (task, why) in tasks {
        seq.serialize_element(&serde_json::json!({ "task": task, "why": why.to_string() }))?;
    }
    seq.end()
}

/// An agent's event by its kind alone (`tool_use`, `text`, …): its words are in `text`, and its
/// raw form in the attempt's transcript.
pub(super) fn stream_kind<S: Serializer>(ev: &StreamEvent, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(match ev {
        StreamEvent::Init { .. } => "init",
        StreamEvent::AssistantText { .. } => "text",
        StreamEvent::Thinking { .. } => "thinking",
        StreamEvent::ToolUse { .. } => "tool_use",
        StreamEvent::ToolResult { .. } => "tool_result",
        StreamEvent::PermissionDenied(_) => "permission_denied",
        StreamEvent::ApiRetry(_) => "api_retry",
        StreamEvent::RateLimit(_) => "rate_limit",
        StreamEvent::Result(_) => "result",
        StreamEvent::Other { .. } => "other",
        StreamEvent::NotJson { .. } => "not_json",
    })
}

/// A pipeline note by its kind alone (`{"pipeline": "archived"}`).
pub(super) fn pipeline_kind<S: Serializer>(p: &PipelineNote, s: S) -> Result<S::Ok, S::Error> {
    let kind = match p {
        PipelineNote::Stopping => "stopping",
        PipelineNote::Idle => "idle",
        PipelineNote::BeingWritten { .. } => "being_written",
        PipelineNote::StillBeingWritten { .. } => "still_being_written",
        PipelineNote::Watching { .. } => "watching",
        PipelineNote::KeptAside { .. } => "kept_aside",
        PipelineNote::Archived { .. } => "archived",
        PipelineNote::PickedUp { .. } => "picked_up",
        PipelineNote::Planning { .. } => "planning",
        PipelineNote::Resuming { .. } => "resuming",
        PipelineNote::Replanning { .. } => "replanning",
        PipelineNote::Asking { .. } => "asking",
        PipelineNote::AskingAgain { .. } => "asking_again",
        PipelineNote::PlanWritten { .. } => "plan_written",
        PipelineNote::ItemFailed { .. } => "item_failed",
        PipelineNote::Other { .. } => "other",
    };
    let mut map = s.serialize_map(Some(1))?;
    map.serialize_entry("pipeline", kind)?;
    map.end()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Status;
    use crate::report::event::{AttemptOutcome, Ending, Note, Summary, TaskReport, WaitReason};
    use crate::report::status::Counts;

    fn at(kind: EventKind) -> RunEvent {
        RunEvent { time: "2026-12-01T02:50:10.5Z".parse().expect("test time"), kind }
    }

    fn parsed(kind: EventKind) -> serde_json::Value {
        let l = line(&at(kind));
        assert!(!l.contains('\n'), "one line: {l}");
        serde_json::from_str(&l).unwrap_or_else(|e| panic!("{e}: {l}"))
    }

    #[test]
    fn every_event_is_one_object_with_version_time_type_and_its_fields() {
        let v = parsed(EventKind::AttemptStarted { task: "1.1".into(), name: "One".into(), attempt: 1, max_attempts: 3, session: 1, model: None, transcript: ".baton/logs/plan/1.1/attempt-1.jsonl".into(), max_budget_usd: None, agent: None });
        assert_eq!(v["v"], 1);
        assert_eq!(v["time"], "2026-12-01T02:50:10.5Z");
        assert_eq!(v["type"], "attempt_started");
        assert_eq!(v["task"], "1.1");
        assert_eq!(v["max_attempts"], 3);
        assert_eq!(v["text"], "[EXEC] 1.1 One — attempt 1/3");
        let l = line(&at(EventKind::Warning { text: "w".into() }));
        assert!(l.starts_with(r#"{"v":1,"time":"2026-12-01T02:50:10.5Z","type":"warning","#), "{l}");
        // Its own `text` is its words: no second `text` key.
        assert_eq!(l.matches("\"text\":").count(), 1, "{l}");
        assert_eq!(parsed(EventKind::Warning { text: "w".into() })["text"], "w");

        let v = parsed(EventKind::AttemptEnded {
            task: "1.1".into(),
            outcome: AttemptOutcome::Failed { message: "red \u{1b}[2J tests\n".into() },
            duration: Duration::from_millis(2500),
            cost_usd: Some(0.25),
        });
        assert_eq!(v["outcome"], serde_json::json!({"kind": "failed", "message": "red \u{1b}[2J tests\n"}));
        assert_eq!(v["duration_secs"], 2.5);
        assert_eq!(v["cost_usd"], 0.25);

        let v = parsed(EventKind::CheckStarted { task: "1.2".into(), command: "cargo test".into(), index: 1, count: 2 });
        assert_eq!((&v["type"], &v["task"], &v["command"]), (&"check_started".into(), &"1.2".into(), &"cargo test".into()));
        assert_eq!((&v["index"], &v["count"]), (&1.into(), &2.into()));
        let v = parsed(EventKind::CheckEnded {
            task: "1.2".into(),
            command: "cargo test".into(),
            passed: false,
            exit: Some(101),
            signal: None,
            timed_out: false,
            duration: Duration::from_millis(12_300),
        });
        assert_eq!(v["type"], "check_ended");
        assert_eq!((&v["passed"], &v["exit"], &v["signal"], &v["timed_out"]), (&false.into(), &101.into(), &serde_json::Value::Null, &false.into()));
        assert_eq!(v["duration_secs"], 12.3);
        assert_eq!(v["text"], "[CHECK] 1.2: cargo test — failed (exit 101)");
        let v = parsed(EventKind::ReviewEnded { task: "1.2".into(), verdict: Some("WARN".into()), findings: vec!["a".into()], problem: None });
        assert_eq!(v["type"], "review_ended");
        assert_eq!((&v["task"], &v["verdict"], &v["findings"], &v["problem"]), (&"1.2".into(), &"WARN".into(), &serde_json::json!(["a"]), &serde_json::Value::Null));
        assert_eq!(v["text"], "[REVIEW] 1.2: WARN — 1 finding:\n  - a");
        let v = parsed(EventKind::ReviewStarted { task: "1.2".into(), model: Some("opus".into()) });
        assert_eq!((&v["type"], &v["model"], &v["text"]), (&"review_started".into(), &"opus".into(), &"[REVIEW] 1.2: reviewing (model opus)".into()));

        let v = parsed(EventKind::Note(Note::Blocked { tasks: vec![("2".into(), Wait::FailedDependency("1".into()))] }));
        assert_eq!((&v["type"], &v["note"]), (&"note".into(), &"blocked".into()));
        assert_eq!(v["tasks"], serde_json::json!([{"task": "2", "why": "its dependency '1' failed"}]));

        let v = parsed(EventKind::Note(Note::Pipeline(PipelineNote::Idle)));
        assert_eq!((&v["note"], &v["pipeline"]), (&"pipeline".into(), &"idle".into()));

        let until = "2026-12-01T03:00:00Z".parse().expect("test time");
        let v = parsed(EventKind::Waiting { reason: WaitReason::Breaker { failures: 3, remaining: Duration::from_secs(300) }, until });
        assert_eq!(v["reason"], serde_json::json!({"kind": "breaker", "failures": 3, "remaining_secs": 300.0}));
        assert_eq!(v["until"], "2026-12-01T03:00:00Z");

        let v = parsed(EventKind::Agent {
            task: "1.1".into(),
            agent: "Claude",
            event: StreamEvent::ToolUse { name: "Read".into(), summary: Some("a.rs".into()), input: serde_json::json!({"big": "x"}) },
        });
        assert_eq!((&v["event"], &v["text"]), (&"tool_use".into(), &"[1.1] [Tool] Read: a.rs".into()));
        assert!(v.get("input").is_none());
    }

    #[test]
    fn the_summary_carries_every_task() {
        let task = TaskReport {
            id: "1.1".into(),
            name: "One".into(),
            section: "s1".into(),
            section_name: Some("First".into()),
            status: Status::Failed,
            attempts: 2,
            sessions: 2,
            agent_time: Duration::from_millis(1500),
            cost: 0.5,
            last_error: Some("red".into()),
            result_message: None,
            blocked: None,
        };
        let counts = Counts { total: 1, failed: 1, ..Counts::default() };
        let v = parsed(EventKind::Summary(Summary {
            how: Ending::FinishedWithFailures,
            elapsed: Duration::from_secs(2),
            counts,
            cost: 0.5,
            unpriced_sessions: 0,
            tasks: vec![task],
        }));
        assert_eq!(v["type"], "summary");
        assert_eq!(v["how"], serde_json::json!({"kind": "finished_with_failures"}));
        assert_eq!(v["counts"]["failed"], 1);
        assert_eq!(v["tasks"][0]["agent_secs"], 1.5);
        assert_eq!(v["tasks"][0]["last_error"], "red");
        assert_eq!(v["tasks"][0]["status"], "failed");
    }
}
