//! `baton logs PLAN TASK --follow`: the transcript of a running attempt as it grows, rendered
//! like `baton logs`, until the attempt ends (its record appears), the run goes away without
//! recording it, or Ctrl+C.
//!
//! Reads the transcript, the attempt's record and the plan's lock; writes nothing but stdout.
//! Without a running attempt there is nothing to follow: the latest attempt is printed whole.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::Duration;

use crate::agent::Dialect;
use crate::report::logs::{event_lines, head, outcome_line, pick, render, stderr_block, verification_lines};
use crate::report::wake::{Wake, Woke};
use crate::run::record::Records;

/// How often the files are looked at when no notification comes.
const POLL: Duration = Duration::from_millis(500);

/// Where a followed run keeps its files.
pub struct Place<'a> {
    pub logs_dir: &'a Path,
    /// The plans' lock folder: whether a run still holds the plan.
    pub locks_dir: &'a Path,
    pub plan: &'a Path,
}

/// Prints the attempt `session` of `task` (the latest when `None`) and, if it is still running,
/// what it adds until it ends. A closed stdout ends the process quietly (`report::out`).
pub fn follow(place: &Place<'_>, task: &str, session: Option<u32>, dialect: &dyn Dialect) -> Result<(), String> {
    let records = Records::new(place.logs_dir, place.plan);
    let (n, count) = pick(&records, task, session)?;
    let run_holds = || crate::run::lock::plan_holder(place.locks_dir, place.plan).is_some();
    if records.read(task, n).is_some() || !run_holds() {
        crate::out!("{}", render(place.logs_dir, place.plan, task, Some(n), dialect)?);
        return Ok(());
    }
    let transcript = records.transcript(task, n);
    let dialect = crate::agent::dialect_of_transcript(&transcript).unwrap_or(dialect);
    crate::out!("{}outcome: running — following until it ends (Ctrl+C stops following)\n\n", head(&records, task, n, count));
    let wake = Wake::new(&[(records.task_dir(task), false)]);
    let mut reader = Tail::default();
    loop {
        // The record is written after the transcript is complete: once it is there, one more
        // read takes the rest.
        let record = records.read(task, n);
        let gone = record.is_none() && !run_holds();
        let lines = reader.read(&transcript).map_err(|e| format!("cannot read {}: {e}", transcript.display()))?;
        for line in lines {
            crate::out!("{}", event_lines(&line, dialect));
        }
        if let Some(r) = record {
            crate::out!("{}\n{}{}", stderr_block(&transcript), outcome_line(&r), verification_lines(&r));
            return Ok(());
        }
        if gone {
            crate::out!("{}\noutcome: not recorded (the run ended before this attempt was judged)\n", stderr_block(&transcript));
            return Ok(());
        }
        if super::out::reader_gone() || wake.wait(POLL) == Woke::Interrupted {
            return Ok(());
        }
    }
}

/// The complete lines a growing file has gained since the last read; a line still being
/// written waits for its end.
#[derive(Default)]
struct Tail {
    offset: u64,
    partial: Vec<u8>,
}

impl Tail {
    fn read(&mut self, path: &Path) -> std::io::Result<Vec<String>> {
        let mut file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        file.seek(SeekFrom::Start(self.offset))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        self.offset += bytes.len() as u64;
        self.partial.extend_from_slice(&bytes);
        let Some(end) = self.partial.iter().rposition(|b| *b == b'\n') else { return Ok(Vec::new()) };
        let complete: Vec<u8> = self.partial.drain(..=end).collect();
        Ok(String::from_utf8_lossy(&complete).lines().map(str::to_string).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_line_is_read_once_and_only_when_complete() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("t.jsonl");
        let mut tail = Tail::default();
        assert!(tail.read(&path).unwrap().is_empty(), "no file yet is nothing yet");
        let mut f = std::fs::File::create(&path).unwrap();
        write!(f, "one\ntw").unwrap();
        assert_eq!(tail.read(&path).unwrap(), ["one"]);
        assert!(tail.read(&path).unwrap().is_empty());
        write!(f, "o\nthree\n").unwrap();
        assert_eq!(tail.read(&path).unwrap(), ["two", "three"]);
    }
}
