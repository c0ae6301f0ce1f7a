//! `baton run --junit PATH`: the run as a JUnit XML report, the format CI systems (GitLab,
//! GitHub test reporters, Jenkins) show as test results.
//!
//! The plan is `<testsuites>`, each section a `<testsuite>`, each task a `<testcase>` (name: the
//! task's id and name; classname: its section's id; time: the agent's time on it in this run). A
//! failed task has a `<failure>` with its `last_error`; a skipped, blocked or not-run task has
//! `<skipped>`. An error that ended the run (or kept it from starting) is one more suite,
//! `baton`, with an `<error>`. The file is written once, when the run ends however it ends,
//! from the summary event; it validates against Jenkins' junit-10.xsd (tests/fixtures).
//!
//! XML 1.0 cannot carry most control characters, even escaped: they become `�`.

use std::io::Write;
use std::path::PathBuf;

use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::Writer;

use super::event::{EventKind, RunEvent, Sink, Summary, TaskReport};
use super::safe::one_line;
use crate::plan::Status;

/// Collects what the report needs and writes it when the run ends.
pub struct Junit {
    path: PathBuf,
    plan: Option<String>,
    started: Option<jiff::Timestamp>,
    summary: Option<Summary>,
    errors: Vec<(String, Option<String>)>,
    written: bool,
}

impl Junit {
    pub fn new(path: PathBuf) -> Junit {
        Junit { path, plan: None, started: None, summary: None, errors: Vec::new(), written: false }
    }
}

impl Sink for Junit {
    fn event(&mut self, ev: &RunEvent) {
        self.started.get_or_insert(ev.time);
        match &ev.kind {
            EventKind::Banner { plan, .. } => self.plan = Some(plan.clone()),
            EventKind::Error { error, help } => self.errors.push((error.clone(), help.clone())),
            EventKind::Summary(s) => self.summary = Some(s.clone()),
            _ => {}
        }
    }

    fn finish(&mut self) {
        if std::mem::replace(&mut self.written, true) {
            return;
        }
        let plan = self.plan.clone().unwrap_or_else(|| self.path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default());
        let started = self.started.unwrap_or_else(jiff::Timestamp::now);
        let xml = report(&plan, started, self.summary.as_ref(), &self.errors);
        if let Err(e) = write(&self.path, xml.as_bytes()) {
            // No sink is left to tell: the run is over. stderr keeps stdout clean for JSON.
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "warning: cannot write the JUnit report {}: {e}", one_line(&self.path.display().to_string()));
        }
    }
}

fn write(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, bytes)
}

/// The report of a run of `plan` that started at `started`: the tasks from its summary (none
/// when it ended before one), and the errors that ended it.
pub fn report(plan: &str, started: jiff::Timestamp, summary: Option<&Summary>, errors: &[(String, Option<String>)]) -> String {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    // Writing into a Vec cannot fail.
    let _ = write_report(&mut w, plan, started, summary, errors);
    let mut xml = String::from_utf8(w.into_inner()).unwrap_or_default();
    xml.push('\n');
    xml
}

/// A section's suite: its name and its tasks, in plan order.
struct Suite<'a> {
    id: &'a str,
    name: String,
    tasks: Vec<&'a TaskReport>,
}

fn suites(tasks: &[TaskReport]) -> Vec<Suite<'_>> {
    let mut out: Vec<Suite<'_>> = Vec::new();
    for t in tasks {
        match out.last_mut() {
            Some(s) if s.id == t.section => s.tasks.push(t),
            _ => out.push(Suite {
                id: &t.section,
                name: match &t.section_name {
                    Some(n) => format!("{} {n}", t.section),
                    None => t.section.clone(),
                },
                tasks: vec![t],
            }),
        }
    }
    out
}

/// Seconds with milliseconds, as JUnit's `time` has them.
fn time(d: std::time::Duration) -> String {
    format!("{:.3}", d.as_secs_f64())
}

fn write_report(
    w: &mut Writer<Vec<u8>>,
    plan: &str,
    started: jiff::Timestamp,
    summary: Option<&Summary>,
    errors: &[(String, Option<String>)],
) -> std::io::Result<()> {
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    let tasks = summary.map(|s| s.tasks.as_slice()).unwrap_or_default();
    let suites = suites(tasks);
    let failures = tasks.iter().filter(|t| t.status.is_failure()).count();
    let errored = usize::from(!errors.is_empty());
    let elapsed = summary.map(|s| s.elapsed).unwrap_or_default();
    // Without a zone, as the Ant format has it; UTC.
    let timestamp = started.strftime("%Y-%m-%dT%H:%M:%S").to_string();
    w.create_element("testsuites")
        .with_attributes([
            ("name", xml_text(plan).as_str()),
            ("tests", (tasks.len() + errored).to_string().as_str()),
            ("failures", failures.to_string().as_str()),
            ("errors", errored.to_string().as_str()),
            ("time", time(elapsed).as_str()),
        ])
        .write_inner_content(|w| {
            for suite in &suites {
                write_suite(w, suite, &timestamp)?;
            }
            if !errors.is_empty() {
                write_errors(w, errors, &timestamp)?;
            }
            Ok(())
        })?;
    Ok(())
}

fn write_suite(w: &mut Writer<Vec<u8>>, suite: &Suite<'_>, timestamp: &str) -> std::io::Result<()> {
    let failures = suite.tasks.iter().filter(|t| t.status.is_failure()).count();
    let skipped = suite.tasks.iter().filter(|t| !t.status.is_failure() && !t.status.is_done()).count();
    let total: std::time::Duration = suite.tasks.iter().map(|t| t.agent_time).sum();
    w.create_element("testsuite")
        .with_attributes([
            ("name", xml_text(&suite.name).as_str()),
            ("tests", suite.tasks.len().to_string().as_str()),
            ("failures", failures.to_string().as_str()),
            ("errors", "0"),
            ("skipped", skipped.to_string().as_str()),
            ("time", time(total).as_str()),
            ("timestamp", timestamp),
        ])
        .write_inner_content(|w| {
            for t in &suite.tasks {
                write_case(w, t)?;
            }
            Ok(())
        })?;
    Ok(())
}

fn write_case(w: &mut Writer<Vec<u8>>, t: &TaskReport) -> std::io::Result<()> {
    let case = w.create_element("testcase").with_attributes([
        ("name", xml_text(&format!("{} {}", t.id, t.name)).as_str()),
        ("classname", xml_text(&t.section).as_str()),
        ("time", time(t.agent_time).as_str()),
    ]);
    match t.status {
        Status::Completed | Status::Verified => match t.result_message.as_deref().filter(|m| !m.is_empty()) {
            Some(m) => case.write_inner_content(|w| {
                w.create_element("system-out").write_text_content(BytesText::new(&xml_text(m)))?;
                Ok(())
            })?,
            None => case.write_empty()?,
        },
        Status::Failed | Status::ValidationExhausted => {
            let error = t.last_error.as_deref().filter(|e| !e.is_empty()).unwrap_or(t.status.as_str());
            let body = format!(
                "failed after {} attempt{}\nlast error: {error}",
                t.attempts,
                if t.attempts == 1 { "" } else { "s" }
            );
            case.write_inner_content(|w| {
                w.create_element("failure")
                    .with_attributes([("message", xml_text(&one_line(error)).as_str()), ("type", t.status.as_str())])
                    .write_text_content(BytesText::new(&xml_text(&body)))?;
                Ok(())
            })?
        }
        _ => {
            let why = match (t.status, &t.blocked) {
                (Status::Skipped, _) => match t.result_message.as_deref().filter(|m| !m.is_empty()) {
                    Some(m) => format!("skipped: {m}"),
                    None => "skipped".to_string(),
                },
                (_, Some(why)) => format!("blocked: {why}"),
                (status, None) => format!("not run ({status})"),
            };
            case.write_inner_content(|w| {
                w.create_element("skipped").with_attribute(("message", xml_text(&one_line(&why)).as_str())).write_empty()?;
                Ok(())
            })?
        }
    };
    Ok(())
}

/// The errors that ended the run, as a suite of their own: CI shows the run as broken.
fn write_errors(w: &mut Writer<Vec<u8>>, errors: &[(String, Option<String>)], timestamp: &str) -> std::io::Result<()> {
    w.create_element("testsuite")
        .with_attributes([("name", "baton"), ("tests", "1"), ("failures", "0"), ("errors", "1"), ("skipped", "0"), ("time", "0.000"), ("timestamp", timestamp)])
        .write_inner_content(|w| {
            w.create_element("testcase")
                .with_attributes([("name", "run"), ("classname", "baton"), ("time", "0.000")])
                .write_inner_content(|w| {
                    for (error, help) in errors {
                        let body = super::render::error_text(error, help.as_deref());
                        w.create_element("error")
                            .with_attributes([("message", xml_text(&one_line(error)).as_str()), ("type", "error")])
                            .write_text_content(BytesText::new(&xml_text(&body)))?;
                    }
                    Ok(())
                })?;
            Ok(())
        })?;
    Ok(())
}

/// `text` with every character XML 1.0 forbids (most C0 controls, U+FFFE, U+FFFF) replaced by
/// `�`; quick-xml escapes the rest.
fn xml_text(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' | '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..='\u{10ffff}' => c,
            _ => '\u{fffd}',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::report::event::Ending;
    use crate::report::status::Counts;

    fn task(id: &str, section: &str, status: Status) -> TaskReport {
        TaskReport {
            id: id.into(),
            name: format!("task {id}"),
            section: section.into(),
            section_name: Some(format!("Section {section}")),
            status,
            attempts: 1,
            sessions: 1,
            agent_time: Duration::from_millis(1234),
            cost: 0.0,
            last_error: None,
            result_message: None,
            blocked: None,
        }
    }

    #[test]
    fn sections_are_suites_and_tasks_are_cases_with_their_outcome() {
        let mut failed = task("1.2", "s1", Status::Failed);
        failed.attempts = 2;
        failed.last_error = Some("tests <red> & \"broken\"\u{1b}[31m\u{0}\nsecond line".into());
        let mut blocked = task("2.1", "s2", Status::Pending);
        blocked.blocked = Some("its dependency '1.2' failed".into());
        blocked.agent_time = Duration::ZERO;
        let tasks = vec![task("1.1", "s1", Status::Completed), failed, blocked];
        let summary = Summary {
            how: Ending::FinishedWithFailures,
            elapsed: Duration::from_secs(3),
            counts: Counts::default(),
            cost: 0.0,
            unpriced_sessions: 0,
            tasks,
        };
        let started = "2026-12-01T02:50:10Z".parse().expect("time");
        let xml = report("Plan \u{7} & co", started, Some(&summary), &[]);
        insta::assert_snapshot!(xml, @r#"
        <?xml version="1.0" encoding="UTF-8"?>
        <testsuites name="Plan � &amp; co" tests="3" failures="1" errors="0" time="3.000">
          <testsuite name="s1 Section s1" tests="2" failures="1" errors="0" skipped="0" time="2.468" timestamp="2026-12-01T02:50:10">
            <testcase name="1.1 task 1.1" classname="s1" time="1.234"/>
            <testcase name="1.2 task 1.2" classname="s1" time="1.234">
              <failure message="tests &lt;red&gt; &amp; &quot;broken&quot;�[31m� second line" type="failed">failed after 2 attempts
        last error: tests &lt;red&gt; &amp; &quot;broken&quot;�[31m�
        second line</failure>
            </testcase>
          </testsuite>
          <testsuite name="s2 Section s2" tests="1" failures="0" errors="0" skipped="1" time="0.000" timestamp="2026-12-01T02:50:10">
            <testcase name="2.1 task 2.1" classname="s2" time="0.000">
              <skipped message="blocked: its dependency &apos;1.2&apos; failed"/>
            </testcase>
          </testsuite>
        </testsuites>
        "#);
    }

    #[test]
    fn a_run_that_ended_before_its_summary_reports_its_error() {
        let started = "2026-12-01T02:50:10Z".parse().expect("time");
        let xml = report("plan", started, None, &[("the plan is invalid".into(), Some("fix line 3".into()))]);
        assert!(xml.contains(r#"<testsuites name="plan" tests="1" failures="0" errors="1" time="0.000">"#), "{xml}");
        assert!(xml.contains(r#"<error message="the plan is invalid" type="error">error: the plan is invalid"#), "{xml}");
    }
}
