//! Plans written by the original tool's later versions (claude-plan-orchestrator): a corpus of
//! realistic fixtures (`tests/fixtures/compat/*.yaml`), each put through `baton check`,
//! `baton status`, `baton run --dry-run` and a real run with the fake agent.
//!
//! What must hold for every fixture: check accepts it; status shows every task as written;
//! the dry run lists what would run in an order that respects every dependency (both
//! spellings) and changes nothing; the run runs exactly the runnable tasks, in dependency
//! order, ends with the expected exit code, and changes only the fields baton owns (on the
//! tasks that ran: `model_used` too, now the model the CLI reported) — every other key of the
//! original tool's (`agent`, `validation_findings`, `last_attempt`, …) stays byte for byte.
//!
//! Where a fixture turns `meta.validation` on, each completed attempt of a task whose agent is
//! in `run_after` is reviewed: the fake reviewer answers PASS (→ `verified`), WARN (→
//! `completed`, findings in `result_message`) or FAIL (→ the task runs again and its next
//! prompt carries the findings), as each case scripts; tasks not in `run_after` never are.
//! Every coder session of the fake writes and commits a file, so the no-op rule must not warn.
//!
//! The fixtures' own dependencies, statuses and owned-field lines are read here with the YAML
//! parser directly, not through baton, so a misreading in baton cannot hide itself.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

use saphyr_parser::{Event, Parser};

use crate::support::{FAST_CONFIG, Project};

/// The agent each fixture's project defines in `.claude/agents/`; the others it names are not.
const DEFINED_AGENT: &str = "coder";

/// Fields baton owns in a task; the only ones a run may change (plus a section's `status`).
/// `model_used` is baton's now: it writes the model the CLI reported.
const OWNED: [&str; 6] = ["status", "attempts", "last_error", "completed_at", "result_message", "model_used"];

/// The model the fake agent reports when baton passes no `--model`.
const FAKE_DEFAULT_MODEL: &str = "claude-opus-5-5";

/// The reviewer's prompt begins so (run/review.rs `DEFAULT_TEMPLATE`): how its sessions are
/// told apart from the coder's.
const REVIEW_PROMPT_START: &str = "You are reviewing";

/// The warning of the no-op rule; never expected here, since every coder session of the fake
/// writes and commits a file of its own.
const NO_OP_WARNING: &str = "was reported completed without any change";

/// What one fixture is expected to do.
struct Case {
    file: &'static str,
    /// The fake agent's coder sessions for the real run (`{"tasks": {ID: [STEP…]}}`; a task not
    /// listed completes). The test adds to each coder step a file written and committed, and
    /// puts a reviewer step after each completed one of a reviewed task (see `scenario`).
    scenario: &'static str,
    /// Per reviewed task, the reviewer's verdicts in order (`PASS` for a task not listed): a
    /// `FAIL` sends the task back to its coder.
    verdicts: &'static [(&'static str, &'static [&'static str])],
    /// Whether the project defines the plan's first validator in `.claude/agents/` (then the
    /// reviewer runs as `--agent <validator>`).
    validator_defined: bool,
    /// Exit code of `run --dry-run` (the run's code if every task it starts completes).
    dry_exit: i32,
    /// Exit code of the real run.
    run_exit: i32,
    /// Unfinished tasks that can never run (they stay as they are).
    blocked: &'static [&'static str],
    /// Tasks the scenario makes fail for good in this run.
    failed: &'static [&'static str],
    /// Text the run's output must contain (why it ended as it did).
    says: &'static [&'static str],
    /// Text a task's `result_message` holds after the run (else the fake agent's "did it").
    messages: &'static [(&'static str, &'static str)],
}

const CASES: &[Case] = &[
    Case {
        file: "01-nextjs-storefront.yaml",
        // A multi-line message with `: ` and `#` in it: baton writes it as one line, quoted.
        scenario: r##"{"tasks": {"3.1": [{"message": "Reviewed the flow end to end.\nFixed: rounding in pricing.ts # twice"}]}}"##,
        // 2.3 fails its first review and passes the second.
        verdicts: &[("2.3", &["FAIL", "PASS"])],
        validator_defined: false,
        dry_exit: 0,
        run_exit: 0,
        blocked: &[],
        failed: &[],
        says: &[],
        messages: &[("3.1", "Reviewed the flow end to end."), ("3.1", "Fixed: rounding in pricing.ts # twice")],
    },
    Case { file: "02-rust-cli.yaml", scenario: "{}", verdicts: &[], validator_defined: false, dry_exit: 0, run_exit: 0, blocked: &[], failed: &[], says: &[], messages: &[] },
    Case { file: "03-data-pipeline.yaml", scenario: "{}", verdicts: &[], validator_defined: false, dry_exit: 0, run_exit: 0, blocked: &[], failed: &[], says: &[], messages: &[] },
    Case { file: "04-docs-site.yaml", scenario: "{}", verdicts: &[], validator_defined: false, dry_exit: 0, run_exit: 0, blocked: &[], failed: &[], says: &[], messages: &[] },
    Case {
        file: "05-mobile-backend-suspended.yaml",
        scenario: "{}",
        verdicts: &[],
        validator_defined: false,
        dry_exit: 3,
        run_exit: 3,
        blocked: &["2.2", "2.3"],
        failed: &[],
        says: &["1.3: it is suspended", "2.2: waits for '1.3'", "2.3: waits for '2.2'", "blocked in"],
        messages: &[],
    },
    Case {
        file: "06-payments-validation-exhausted.yaml",
        scenario: "{}",
        verdicts: &[],
        validator_defined: false,
        dry_exit: 3,
        run_exit: 3,
        blocked: &["1.3"],
        failed: &[],
        says: &["1.3: its dependency '1.2' ran out of validation attempts", "blocked in"],
        messages: &[],
    },
    Case {
        file: "07-infra-validation-exhausted-leaf.yaml",
        scenario: "{}",
        verdicts: &[],
        validator_defined: false,
        dry_exit: 1,
        run_exit: 1,
        blocked: &[],
        failed: &[],
        says: &["finished with failures", "1 validation exhausted", "cmp-3"],
        messages: &[],
    },
    Case { file: "08-ml-training-interrupted.yaml", scenario: "{}", verdicts: &[], validator_defined: false, dry_exit: 0, run_exit: 0, blocked: &[], failed: &[], says: &[], messages: &[] },
    Case { file: "09-design-system-quoting.yaml", scenario: "{}", verdicts: &[], validator_defined: false, dry_exit: 0, run_exit: 0, blocked: &[], failed: &[], says: &[], messages: &[] },
    Case {
        file: "10-analytics-dashboard-retry.yaml",
        scenario: r#"{"tasks": {"1.1": [{"status": "failed", "message": "tests/fixtures/views/funnel.json: missing time grain"}, {}]}}"#,
        verdicts: &[],
        validator_defined: false,
        dry_exit: 0,
        run_exit: 0,
        blocked: &[],
        failed: &[],
        says: &["1.1 failed (attempt 1/3); retrying"],
        messages: &[],
    },
    Case {
        file: "11-legacy-migration-mostly-verified.yaml",
        scenario: "{}",
        // 5.3 passes with a warning; this project defines its reviewer agent.
        verdicts: &[("5.3", &["WARN"])],
        validator_defined: true,
        dry_exit: 0,
        run_exit: 0,
        blocked: &[],
        failed: &[],
        says: &[],
        messages: &[("5.3", "5.3: WARN finding from the reviewer")],
    },
    Case {
        file: "12-go-microservice-failure.yaml",
        scenario: r#"{"tasks": {"o2": [{"status": "failed", "message": "p99 was 81 ms at 500 rps"}]}}"#,
        verdicts: &[],
        validator_defined: false,
        dry_exit: 0,
        run_exit: 1,
        blocked: &[],
        failed: &["o2"],
        says: &["p99 was 81 ms at 500 rps"],
        messages: &[],
    },
];

fn compat_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/compat")
}

fn case(file: &str) -> &'static Case {
    CASES.iter().find(|c| c.file == file).unwrap_or_else(|| panic!("no case for {file}"))
}

macro_rules! compat_tests {
    ($($name:ident => $file:literal,)*) => {
        $(
            mod $name {
                /// check, status, the dry run and a sequential run.
                #[test]
                fn sequential() {
                    super::exercise(super::case($file));
                }

                /// A run with `--parallel`: the same outcome, the same promises.
                #[test]
                fn parallel() {
                    let s = super::Setup::new(super::case($file));
                    super::real_run(&s, &["--parallel", "--jobs", "3"]);
                }
            }
        )*

        #[test]
        fn every_fixture_in_the_folder_has_a_case() {
            let listed: BTreeSet<&str> = [$($file),*].into_iter().collect();
            let cases: BTreeSet<&str> = CASES.iter().map(|c| c.file).collect();
            assert_eq!(listed, cases, "each case has a test");
            let on_disk: BTreeSet<String> = std::fs::read_dir(compat_dir())
                .expect("the compat fixtures folder")
                .map(|e| e.expect("a folder entry").file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".yaml"))
                .collect();
            let listed: BTreeSet<String> = listed.into_iter().map(String::from).collect();
            assert_eq!(on_disk, listed, "every fixture on disk is tested");
            assert!(on_disk.len() >= 12, "the corpus holds a dozen plans");
        }
    };
}

compat_tests! {
    nextjs_storefront => "01-nextjs-storefront.yaml",
    rust_cli_dependencies_spelling => "02-rust-cli.yaml",
    data_pipeline_exclusive_resource => "03-data-pipeline.yaml",
    docs_site_both_spellings => "04-docs-site.yaml",
    mobile_backend_suspended_task_blocks => "05-mobile-backend-suspended.yaml",
    payments_validation_exhausted_blocks_its_dependent => "06-payments-validation-exhausted.yaml",
    infra_validation_exhausted_leaf_is_a_failure => "07-infra-validation-exhausted-leaf.yaml",
    ml_training_interrupted_task_runs_again => "08-ml-training-interrupted.yaml",
    design_system_quoting_styles => "09-design-system-quoting.yaml",
    analytics_dashboard_retried_task => "10-analytics-dashboard-retry.yaml",
    legacy_migration_verified_tasks_stay => "11-legacy-migration-mostly-verified.yaml",
    go_microservice_failed_leaf => "12-go-microservice-failure.yaml",
}

/// A fixture committed as `.claude/plans/<file>` in a fresh repository, with what should
/// happen to it worked out from the fixture alone.
struct Setup {
    case: &'static Case,
    p: Project,
    text: String,
    fx: Fixture,
    rel: String,
    /// The tasks a run starts: pending or in progress, and not blocked.
    runnable: BTreeSet<String>,
    /// Per reviewed task, its sessions in order: `None` a coder session, `Some(verdict)` a
    /// reviewer's.
    sessions: HashMap<String, Vec<Option<&'static str>>>,
}

/// A finding the fake reviewer reports for a task with a verdict.
fn finding(id: &str, verdict: &str) -> String {
    format!("{id}: {verdict} finding from the reviewer")
}

/// The fake agent's scenario: the case's coder steps, each also writing and committing a
/// file of its own (so the no-op rule has nothing to warn about), and after each completed
/// coder step of a reviewed task a reviewer step with the case's next verdict. Returns the
/// scenario and, per reviewed task, its sessions in order.
fn scenario(case: &Case, fx: &Fixture, runnable: &BTreeSet<String>) -> (serde_json::Value, HashMap<String, Vec<Option<&'static str>>>) {
    let given: serde_json::Value = serde_json::from_str(case.scenario).expect("the case's scenario is JSON");
    for (id, _) in case.verdicts {
        assert!(fx.reviewed(id) && runnable.contains(*id), "{}: verdicts for {id}, which is not reviewed", case.file);
    }
    let mut tasks = serde_json::Map::new();
    let mut sessions = HashMap::new();
    for id in runnable {
        let coder: Vec<serde_json::Value> = match &given["tasks"][id.as_str()] {
            serde_json::Value::Null => vec![serde_json::json!({})],
            serde_json::Value::Array(steps) => steps.clone(),
            step => vec![step.clone()],
        };
        let verdicts: Vec<&'static str> = case.verdicts.iter().find(|(t, _)| t == id).map_or(vec!["PASS"], |(_, v)| v.to_vec());
        let (mut steps, mut kinds, mut next_verdict) = (Vec::new(), Vec::new(), verdicts.iter());
        for n in 0.. {
            let mut step = coder[n.min(coder.len() - 1)].clone();
            step["write"] = serde_json::json!({ format!("work/{id}.txt"): format!("{id}, coder session {}\n", n + 1) });
            step["commit"] = serde_json::json!(format!("work on {id}"));
            let completes = step.get("status").is_none_or(|s| s == "completed");
            steps.push(step);
            kinds.push(None);
            if !fx.reviewed(id) {
                if completes || n + 1 >= coder.len() {
                    break;
                }
                continue;
            }
            if !completes {
                assert!(n + 1 < coder.len(), "{}: a reviewed task that never completes", case.file);
                continue;
            }
            let verdict = *next_verdict.next().unwrap_or_else(|| panic!("{}: {id} ran out of scripted verdicts", case.file));
            let findings = if verdict == "PASS" { vec![] } else { vec![finding(id, verdict)] };
            steps.push(serde_json::json!({"status_json": {"task_id": id, "verdict": verdict, "findings": findings}}));
            kinds.push(Some(verdict));
            if verdict != "FAIL" {
                assert!(next_verdict.next().is_none(), "{}: verdicts for {id} after it passed", case.file);
                break;
            }
        }
        if fx.reviewed(id) {
            sessions.insert(id.clone(), kinds);
        }
        tasks.insert(id.clone(), serde_json::Value::Array(steps));
    }
    (serde_json::json!({ "tasks": tasks }), sessions)
}

impl Setup {
    fn new(case: &'static Case) -> Setup {
        let text = std::fs::read_to_string(compat_dir().join(case.file)).expect("read the fixture");
        assert!(text.starts_with("# Compat fixture: "), "{}: begins with a comment saying what it exercises", case.file);
        let fx = Fixture::read(&text);
        let rel = format!(".claude/plans/{}", case.file);
        let p = Project::new();
        p.write(&rel, &text);
        p.write("baton.toml", FAST_CONFIG);
        // The project defines one of the agents its plan names (as a Claude Code project would).
        let definition = format!("---\nname: {DEFINED_AGENT}\ndescription: Writes code.\n---\nYou write code.\n");
        p.write(&format!(".claude/agents/{DEFINED_AGENT}.md"), &definition);
        if case.validator_defined {
            let validator = fx.validation.as_ref().and_then(|(_, v)| v.clone()).expect("a validator to define");
            assert!(fx.tasks.iter().all(|t| t.agent != validator), "{}: the defined validator is no task's agent", case.file);
            p.write(&format!(".claude/agents/{validator}.md"), &format!("---\nname: {validator}\ndescription: Reviews.\n---\nYou review.\n"));
        }
        p.repo.commit_all("plan from claude-plan-orchestrator");
        let runnable: BTreeSet<String> = fx
            .tasks
            .iter()
            .filter(|t| matches!(t.status.as_str(), "pending" | "in_progress"))
            .map(|t| t.id.clone())
            .filter(|id| !case.blocked.contains(&id.as_str()))
            .collect();
        assert!(!runnable.is_empty(), "{}: something to run", case.file);
        for id in case.blocked.iter().chain(case.failed) {
            assert!(fx.task(id).is_some(), "{}: the case names an unknown task {id}", case.file);
        }
        let (scenario, sessions) = scenario(case, &fx, &runnable);
        p.scenario(&scenario.to_string());
        Setup { case, p, text, fx, rel, runnable, sessions }
    }
}

/// check, status, dry run and a real run of one fixture, each with its assertions.
fn exercise(case: &'static Case) {
    let s = Setup::new(case);
    let Setup { p, text, fx, rel, runnable, .. } = &s;
    let (text, rel) = (text.as_str(), rel.as_str());
    let what = case.file;

    // baton check: valid; it says which dependency spelling it read; no false "did you mean".
    let check = p.baton(&["check", rel]);
    assert_eq!(check.code(), 0, "{what}: check\n{}", check.all());
    assert!(!check.all().contains("did you mean"), "{what}: the original tool's keys are known\n{}", check.all());
    // It names the spelling it read, with exactly the tasks that use it.
    for (key, note, ids) in [
        ("dependencies", "`dependencies:` read as `depends_on:`", &fx.spell_dependencies),
        ("exclusive_resource", "`exclusive_resource:` read as `exclusive_resources:`", &fx.spell_exclusive_resource),
    ] {
        let noted = noted_tasks(&check.stdout(), note);
        if ids.is_empty() {
            assert!(noted.is_none(), "{what}: no task spells `{key}:`, yet check says {note}\n{}", check.all());
        } else {
            assert_eq!(noted.as_ref(), Some(ids), "{what}: check's note on `{key}:`\n{}", check.all());
        }
    }

    // check --json: valid, the same notes, and warnings only for the agents with no file.
    let r = p.baton(&["check", rel, "--json"]);
    assert_eq!(r.code(), 0, "{what}: check --json\n{}", r.all());
    let doc: serde_json::Value = serde_json::from_str(&r.stdout()).expect("check --json is JSON");
    assert_eq!(doc["valid"], true, "{what}: {doc:#}");
    assert_eq!(doc["problems"], serde_json::json!([]), "{what}: {doc:#}");
    assert_eq!(doc["tasks"], fx.tasks.len(), "{what}: {doc:#}");
    let notes: Vec<&str> = doc["notes"].as_array().expect("notes").iter().map(|n| n.as_str().expect("a note")).collect();
    for note in &notes {
        assert!(check.stdout().contains(&format!("note: {note}")), "{what}: the same note as the text: {note}\n{}", check.all());
    }
    let missing: BTreeSet<&str> = fx.tasks.iter().map(|t| t.agent.as_str()).filter(|a| *a != DEFINED_AGENT).collect();
    let mut warned = BTreeSet::new();
    for w in doc["warnings"].as_array().expect("warnings") {
        let m = w["message"].as_str().expect("a message");
        let agent = m.split("names agent '").nth(1).and_then(|r| r.split('\'').next());
        let agent = agent.unwrap_or_else(|| panic!("{what}: a warning that is not about a missing agent file: {m}"));
        assert!(m.ends_with(&format!("(.claude/agents/{agent}.md does not exist in the repository)")), "{what}: {m}");
        warned.insert(agent.to_string());
    }
    assert_eq!(warned.iter().map(String::as_str).collect::<BTreeSet<_>>(), missing, "{what}: one warning per agent with no file\n{doc:#}");

    // baton status: every task, as written (verified shown as verified), with its dependencies.
    let table = p.baton(&["status", rel]);
    assert_eq!(table.code(), 0, "{what}: status\n{}", table.all());
    let table = table.stdout();
    for t in &fx.tasks {
        // Its row: the id, the start of its name, its status as written (verified as verified).
        let row = table.lines().find(|l| l.starts_with("  ") && l.split_whitespace().next() == Some(t.id.as_str()));
        let row = row.unwrap_or_else(|| panic!("{what}: the table has a row for {}\n{table}", t.id));
        assert!(row.contains(&t.name[..t.name.len().min(16)]), "{what}: the row of {} shows its name\n{table}", t.id);
        assert!(row.split_whitespace().any(|w| w == t.status), "{what}: the row of {} shows {}\n{table}", t.id, t.status);
    }
    let json = status_json(p, rel);
    let listed = tasks_in(&json);
    assert_eq!(listed.len(), fx.tasks.len(), "{what}: status --json lists every task");
    for t in &fx.tasks {
        let j = listed.get(&t.id).unwrap_or_else(|| panic!("{what}: status --json lacks task {}", t.id));
        assert_eq!(j["status"], t.status.as_str(), "{what}: status of {}", t.id);
        let deps: BTreeSet<String> = j["depends_on"]
            .as_array()
            .expect("depends_on is a list")
            .iter()
            .map(|d| d.as_str().expect("an id").to_string())
            .collect();
        assert_eq!(deps, t.deps, "{what}: dependencies of {} (either spelling)", t.id);
    }
    let counts = &json["counts"];
    assert_eq!(counts["total"], fx.tasks.len(), "{what}: counts\n{json:#}");
    for status in ["pending", "in_progress", "completed", "verified", "failed", "skipped", "suspended", "validation_exhausted"] {
        let n = fx.tasks.iter().filter(|t| t.status == status).count();
        assert_eq!(counts[status], n, "{what}: {status} count\n{json:#}");
    }

    // baton run --dry-run: the runnable tasks, in an order that respects the dependencies;
    // nothing changes.
    let head = p.repo.git(&["rev-parse", "HEAD"]);
    let dry = p.baton(&["run", rel, "--dry-run"]);
    assert_eq!(dry.code(), case.dry_exit, "{what}: dry run exit code\n{}", dry.all());
    let order = dry_run_order(&dry.stdout());
    assert_eq!(order.iter().cloned().collect::<BTreeSet<_>>(), *runnable, "{what}: the dry run lists the runnable tasks\n{}", dry.all());
    assert_eq!(order.len(), runnable.len(), "{what}: each task once\n{}", dry.all());
    respects_dependencies(fx, &order).unwrap_or_else(|e| panic!("{what}: dry run order: {e}\n{}", dry.all()));
    assert_eq!(p.read(rel), text, "{what}: the dry run changed the plan");
    assert_eq!(p.repo.git(&["rev-parse", "HEAD"]), head, "{what}: the dry run committed");
    assert_eq!(p.repo.status_porcelain(), "", "{what}: the dry run left files");
    assert!(p.invocations().is_empty(), "{what}: the dry run started an agent");

    real_run(&s, &[]);
}

/// The real run with the fake agent (`baton run PLAN EXTRA…`) and what must hold after it.
fn real_run(s: &Setup, extra: &[&str]) {
    let Setup { case, p, text, fx, rel, runnable, sessions } = s;
    let (text, rel) = (text.as_str(), rel.as_str());
    let what = format!("{}{}", case.file, if extra.is_empty() { String::new() } else { format!(" ({})", extra.join(" ")) });
    let mut args = vec!["run", rel];
    args.extend_from_slice(extra);
    let run = p.baton(&args);
    assert_eq!(run.code(), case.run_exit, "{what}: run exit code\n{}", run.all());
    for s in case.says {
        assert!(run.all().contains(s), "{what}: the run says {s:?}\n{}", run.all());
    }
    // Every coder session commits a file: the no-op rule never warns here.
    assert!(!run.all().contains(NO_OP_WARNING), "{what}: a no-op warning, yet every attempt committed\n{}", run.all());
    let invocations = p.invocations();
    let started: Vec<String> = invocations
        .iter()
        .map(|i| i["task_id"].as_str().expect("the fake agent records the task id").to_string())
        .collect();
    let is_review = |inv: &serde_json::Value| inv["prompt"].as_str().expect("the prompt").starts_with(REVIEW_PROMPT_START);
    // Coder sessions: `agent: coder` runs as `--agent coder` (its definition exists), other
    // names without. Reviewer sessions: `--agent <first validator>` when its definition
    // exists, else none; only for tasks whose agent is in `run_after`.
    let validator = fx.validation.as_ref().and_then(|(_, v)| v.as_deref());
    for (inv, id) in invocations.iter().zip(&started) {
        let argv: Vec<&str> = inv["argv"].as_array().expect("argv").iter().map(|a| a.as_str().expect("an argument")).collect();
        let named = argv.iter().position(|a| *a == "--agent").map(|i| argv.get(i + 1).copied().unwrap_or(""));
        let agent = &fx.task(id).expect("a task").agent;
        let expected = if is_review(inv) {
            assert!(fx.reviewed(id), "{what}: task {id} (agent: {agent}) was reviewed, though not in run_after");
            validator.filter(|_| case.validator_defined)
        } else {
            (agent == DEFINED_AGENT).then_some(DEFINED_AGENT)
        };
        assert_eq!(named, expected, "{what}: task {id} (agent: {agent}, review: {}) ran with {argv:?}", is_review(inv));
    }
    // Each reviewed task's sessions, in order: coder, verdict, (coder, verdict after a FAIL).
    for id in runnable {
        let kinds: Vec<bool> = invocations.iter().zip(&started).filter(|(_, s)| *s == id).map(|(i, _)| is_review(i)).collect();
        match sessions.get(id) {
            Some(expected) => {
                let expected: Vec<bool> = expected.iter().map(Option::is_some).collect();
                assert_eq!(kinds, expected, "{what}: the sessions of {id} (true: a review)");
            }
            None => assert!(kinds.iter().all(|r| !r), "{what}: {id} is not reviewed, yet had a review session"),
        }
    }
    // After a FAIL, the next coder session is told the reviewer's findings.
    for (id, kinds) in sessions {
        let prompts: Vec<&str> = invocations.iter().zip(&started).filter(|(_, s)| *s == id).map(|(i, _)| i["prompt"].as_str().expect("a prompt")).collect();
        for (k, kind) in kinds.iter().enumerate() {
            if *kind == Some("FAIL") {
                let next = prompts.get(k + 1).unwrap_or_else(|| panic!("{what}: {id} ran again after a FAIL"));
                assert!(next.contains(&finding(id, "FAIL")), "{what}: the retry of {id} hears the findings:\n{next}");
            }
        }
    }
    // Start order, from the coder sessions.
    let coder_started: Vec<&String> = invocations.iter().zip(&started).filter(|(i, _)| !is_review(i)).map(|(_, id)| id).collect();
    let mut first_starts: Vec<String> = Vec::new();
    for id in coder_started {
        if !first_starts.contains(id) {
            first_starts.push(id.clone());
        }
    }
    assert_eq!(
        first_starts.iter().cloned().collect::<BTreeSet<_>>(),
        *runnable,
        "{what}: the run started exactly the runnable tasks (verified and completed ones never)\n{}",
        run.all()
    );
    respects_dependencies(fx, &first_starts).unwrap_or_else(|e| panic!("{what}: run order: {e}\n{}", run.all()));
    // A task's attempts all come before any task that depends on it starts, and (by the
    // attempt records' times) have ended by then: in parallel runs too.
    for (i, id) in started.iter().enumerate() {
        for dep in &fx.task(id).expect("a task of the plan").deps {
            assert!(!started[i..].contains(dep), "{what}: {dep} ran again after {id}, which depends on it");
        }
    }
    let times = attempt_times(p, rel);
    for id in runnable {
        let (first_start, _) = times.get(id).unwrap_or_else(|| panic!("{what}: no attempt record for {id}"));
        for dep in &fx.task(id).expect("a task").deps {
            if let Some((_, dep_end)) = times.get(dep) {
                assert!(dep_end <= first_start, "{what}: {id} started at {first_start} before its dependency {dep} ended at {dep_end}");
            }
        }
    }

    // Every task ends as expected; nothing else changed status.
    let json = status_json(p, rel);
    let listed = tasks_in(&json);
    for t in &fx.tasks {
        let verdict = sessions.get(&t.id).and_then(|k| k.last().copied().flatten());
        let expected = if case.failed.contains(&t.id.as_str()) {
            "failed"
        } else if verdict == Some("PASS") {
            "verified"
        } else if runnable.contains(&t.id) {
            // Not reviewed, or a WARN (its findings go in the result message).
            "completed"
        } else {
            t.status.as_str()
        };
        assert_eq!(listed[&t.id]["status"], expected, "{what}: {} after the run\n{}", t.id, run.all());
    }
    // Attempts count on from the original tool's; the message and the time are written.
    let plan = baton::plan::parse_plan(&p.read(rel)).unwrap_or_else(|e| panic!("{what}: the plan stays valid: {e:?}"));
    for id in runnable.iter() {
        let t = plan.task(id).expect("a task of the plan");
        // A review is part of its attempt: attempts count the coder sessions.
        let coder_runs: Vec<&serde_json::Value> = invocations.iter().zip(&started).filter(|(i, s)| *s == id && !is_review(i)).map(|(i, _)| i).collect();
        assert_eq!(t.attempts, fx.task(id).expect("a task").attempts + coder_runs.len() as u32, "{what}: attempts of {id}");
        // model_used: the model the CLI reported in the last coder session (what baton asked
        // for with `--model`, else the fake's own default).
        let last = coder_runs.last().expect("a coder session");
        let reported = last["model"].as_str().unwrap_or(FAKE_DEFAULT_MODEL);
        assert_eq!(t.model_used.as_deref(), Some(reported), "{what}: model_used of {id}");
        if case.failed.contains(&id.as_str()) {
            assert!(t.last_error.is_some(), "{what}: {id} failed and says why");
            continue;
        }
        assert!(t.completed_at.is_some(), "{what}: {id} has its completed_at");
        let message = t.result_message.as_deref().unwrap_or("");
        let expected: Vec<&str> = case.messages.iter().filter(|(m, _)| *m == id.as_str()).map(|(_, text)| *text).collect();
        for text in if expected.is_empty() { vec!["did it"] } else { expected } {
            assert!(message.contains(text), "{what}: the result_message of {id} holds {text:?}: {message:?}");
        }
    }
    assert_eq!(p.repo.status_porcelain(), "", "{what}: the run left uncommitted changes");
    let subjects = p.repo.log_subjects();
    for id in runnable.iter().filter(|id| !case.failed.contains(&id.as_str())) {
        // `baton: 1.2 completed — Name` in a sequential run, `baton: plan state after 1.2, 2.1`
        // for a parallel group.
        let completed = format!("baton: {id} {}", listed[id]["status"].as_str().expect("a status"));
        let names = |s: &str| s.strip_prefix("baton: plan state after ").is_some_and(|ids| ids.split(", ").any(|i| i == id));
        assert!(subjects.iter().any(|s| s.starts_with(&completed) || names(s)), "{what}: a commit for {id}: {subjects:?}");
    }

    // Only owned fields changed, and only on tasks that ran.
    let after = p.read(rel);
    owned_changes_only(text, &after, runnable).unwrap_or_else(|e| panic!("{what}: {e}\n--- after the run ---\n{after}"));
    assert!(after.starts_with("# Compat fixture: "), "{what}: the header comment stays");
}

/// Per task, from its attempt records (`.baton/logs/<plan>/<task>/attempt-N.json`): when its
/// first attempt started and its last one ended.
fn attempt_times(p: &Project, rel: &str) -> HashMap<String, (jiff::Timestamp, jiff::Timestamp)> {
    let stem = Path::new(rel).file_stem().expect("a plan file name").to_string_lossy().into_owned();
    let dir = p.path().join(".baton/logs").join(stem);
    let mut out: HashMap<String, (jiff::Timestamp, jiff::Timestamp)> = HashMap::new();
    let Ok(tasks) = std::fs::read_dir(&dir) else { return out };
    for task in tasks.map(|e| e.expect("a folder entry").path()).filter(|p| p.is_dir()) {
        for file in std::fs::read_dir(&task).expect("a task's log folder") {
            let path = file.expect("a folder entry").path();
            let name = path.file_name().expect("a name").to_string_lossy().into_owned();
            if !(name.starts_with("attempt-") && name.ends_with(".json")) {
                continue;
            }
            let record: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("read a record")).expect("a record is JSON");
            let time = |k: &str| -> jiff::Timestamp {
                record[k].as_str().unwrap_or_else(|| panic!("{}: {k}", path.display())).parse().expect("an RFC 3339 time")
            };
            let (start, end) = (time("started_at"), time("ended_at"));
            let id = record["task"].as_str().expect("the record's task").to_string();
            let e = out.entry(id).or_insert((start, end));
            e.0 = e.0.min(start);
            e.1 = e.1.max(end);
        }
    }
    out
}

fn status_json(p: &Project, rel: &str) -> serde_json::Value {
    let r = p.baton(&["status", rel, "--json"]);
    assert_eq!(r.code(), 0, "status --json\n{}", r.all());
    serde_json::from_str(&r.stdout()).unwrap_or_else(|e| panic!("status --json is JSON ({e}):\n{}", r.stdout()))
}

fn tasks_in(json: &serde_json::Value) -> HashMap<String, serde_json::Value> {
    let mut out = HashMap::new();
    for s in json["sections"].as_array().expect("sections") {
        for t in s["tasks"].as_array().expect("tasks") {
            out.insert(t["id"].as_str().expect("an id").to_string(), t.clone());
        }
    }
    out
}

/// The tasks `check` names in its note line ending with `note` (`note: tasks 1, 2: NOTE`).
fn noted_tasks(out: &str, note: &str) -> Option<BTreeSet<String>> {
    let line = out.lines().find(|l| l.trim_end().ends_with(note))?;
    let list = line.trim_start().strip_prefix("note: ")?.strip_suffix(note)?.trim_end().strip_suffix(':')?;
    let list = list.strip_prefix("tasks ").or_else(|| list.strip_prefix("task "))?;
    Some(list.split(", ").map(String::from).collect())
}

/// The ids of the dry run's numbered lines (`  3. 1.2 Name …`), in order.
fn dry_run_order(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| {
            let (n, rest) = l.trim_start().split_once(". ")?;
            if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            rest.split_whitespace().next().map(String::from)
        })
        .collect()
}

/// Every task in `order` comes after each of its dependencies that had to run first.
fn respects_dependencies(fx: &Fixture, order: &[String]) -> Result<(), String> {
    for (i, id) in order.iter().enumerate() {
        let t = fx.task(id).ok_or_else(|| format!("{id} is not a task of the plan"))?;
        for dep in &t.deps {
            let d = fx.task(dep).ok_or_else(|| format!("{id} depends on an unknown {dep}"))?;
            let done_before = matches!(d.status.as_str(), "completed" | "verified");
            let ran_before = order[..i].contains(dep);
            if !done_before && !ran_before {
                return Err(format!("{id} came before its dependency {dep} ({order:?})"));
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The fixture, read with the YAML parser (not baton).

struct FixtureTask {
    id: String,
    name: String,
    status: String,
    /// `agent:` (every fixture task has one).
    agent: String,
    attempts: u32,
    /// `depends_on` and `dependencies` together.
    deps: BTreeSet<String>,
}

struct Fixture {
    tasks: Vec<FixtureTask>,
    /// `meta.validation` when `enabled: true`: the agents in `run_after` and the first validator.
    validation: Option<(BTreeSet<String>, Option<String>)>,
    /// The tasks that spell their dependencies `dependencies:` (and not also `depends_on:`).
    spell_dependencies: BTreeSet<String>,
    /// The tasks with the single-string `exclusive_resource:`.
    spell_exclusive_resource: BTreeSet<String>,
}

impl Fixture {
    fn read(text: &str) -> Fixture {
        let root = Y::parse(text);
        let validation = root.get("meta").and_then(|m| m.get("validation")).filter(|v| v.get("enabled").and_then(Y::scalar) == Some("true"));
        let validation = validation.map(|v| {
            let names = |k: &str| -> Vec<String> {
                v.get(k).and_then(Y::items).unwrap_or(&[]).iter().map(|a| a.scalar().expect("an agent name").to_string()).collect()
            };
            (names("run_after").into_iter().collect(), names("validators").into_iter().next())
        });
        let mut fx = Fixture { tasks: Vec::new(), validation, spell_dependencies: BTreeSet::new(), spell_exclusive_resource: BTreeSet::new() };
        for section in root.get("sections").and_then(Y::items).expect("sections") {
            for task in section.get("tasks").and_then(Y::items).unwrap_or(&[]) {
                let mut deps = BTreeSet::new();
                for key in ["depends_on", "dependencies"] {
                    if let Some(list) = task.get(key) {
                        deps.extend(list.items().expect("a list of ids").iter().map(|d| d.scalar().expect("an id").to_string()));
                    }
                }
                let field = |k: &str| task.get(k).and_then(Y::scalar).unwrap_or_else(|| panic!("a task's {k}")).to_string();
                let id = field("id");
                if task.get("dependencies").is_some() && task.get("depends_on").is_none() {
                    fx.spell_dependencies.insert(id.clone());
                }
                if task.get("exclusive_resource").is_some() {
                    fx.spell_exclusive_resource.insert(id.clone());
                }
                let attempts = task.get("attempts").and_then(Y::scalar).map_or(0, |a| a.parse().expect("attempts is a number"));
                fx.tasks.push(FixtureTask { id, name: field("name"), status: field("status"), agent: field("agent"), attempts, deps });
            }
        }
        fx
    }

    fn task(&self, id: &str) -> Option<&FixtureTask> {
        self.tasks.iter().find(|t| t.id == id)
    }

    /// Whether a completed attempt of the task is reviewed: validation is on and its agent is
    /// in `run_after`.
    fn reviewed(&self, id: &str) -> bool {
        let agent = &self.task(id).expect("a task of the plan").agent;
        self.validation.as_ref().is_some_and(|(run_after, _)| run_after.contains(agent))
    }
}

/// A YAML node with where it starts (line 1-based, column 0-based).
enum Y {
    Scalar { value: String, line: usize, col: usize },
    Map { entries: Vec<(Y, Y)>, flow: bool },
    Seq { items: Vec<Y> },
}

impl Y {
    fn parse(text: &str) -> Y {
        let chars: Vec<char> = text.chars().collect();
        let events: Vec<_> = Parser::new_from_str(text).map(|e| e.expect("the fixture is valid YAML")).collect();
        let mut pos = events.iter().position(|(e, _)| matches!(e, Event::DocumentStart(_))).expect("a document") + 1;
        Y::build(&events, &mut pos, &chars)
    }

    fn build(events: &[(Event<'_>, saphyr_parser::Span)], pos: &mut usize, chars: &[char]) -> Y {
        let (ev, span) = &events[*pos];
        *pos += 1;
        let (line, col) = (span.start.line(), span.start.col());
        match ev {
            Event::Scalar(v, ..) => Y::Scalar { value: v.to_string(), line, col },
            Event::MappingStart(..) => {
                let flow = chars.get(span.start.index()) == Some(&'{');
                let mut entries = Vec::new();
                while !matches!(events[*pos].0, Event::MappingEnd) {
                    let k = Y::build(events, pos, chars);
                    let v = Y::build(events, pos, chars);
                    entries.push((k, v));
                }
                *pos += 1;
                Y::Map { entries, flow }
            }
            Event::SequenceStart(..) => {
                let mut items = Vec::new();
                while !matches!(events[*pos].0, Event::SequenceEnd) {
                    items.push(Y::build(events, pos, chars));
                }
                *pos += 1;
                Y::Seq { items }
            }
            other => panic!("the fixtures use no {other:?}"),
        }
    }

    fn scalar(&self) -> Option<&str> {
        match self {
            Y::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }

    fn items(&self) -> Option<&[Y]> {
        match self {
            Y::Seq { items } => Some(items),
            _ => None,
        }
    }

    fn get(&self, key: &str) -> Option<&Y> {
        match self {
            Y::Map { entries, .. } => entries.iter().find(|(k, _)| k.scalar() == Some(key)).map(|(_, v)| v),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The owned-fields check.

/// Whose owned field a line holds: a task's (by id) or a section's status.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Owner {
    Task(String),
    Section(String),
}

/// The lines of `text` that hold owned fields: block lines (the key's line and its value's
/// continuation lines), and flow-mapping task lines (checked with their owned entries masked).
struct OwnedLines {
    block: HashMap<usize, Owner>,
    flow: HashMap<usize, Owner>,
}

impl OwnedLines {
    fn of(text: &str) -> OwnedLines {
        let lines: Vec<&str> = text.split('\n').collect();
        let root = Y::parse(text);
        let mut out = OwnedLines { block: HashMap::new(), flow: HashMap::new() };
        let Some(sections) = root.get("sections").and_then(Y::items) else {
            return out;
        };
        for section in sections {
            let Y::Map { entries, flow } = section else { continue };
            let sid = section.get("id").and_then(Y::scalar).unwrap_or("").to_string();
            for (k, _) in entries {
                if k.scalar() == Some("status") {
                    out.mark(&lines, k, *flow, Owner::Section(sid.clone()));
                }
            }
            for task in section.get("tasks").and_then(Y::items).unwrap_or(&[]) {
                let Y::Map { entries, flow } = task else { continue };
                let tid = task.get("id").and_then(Y::scalar).unwrap_or("").to_string();
                for (k, _) in entries {
                    if k.scalar().is_some_and(|k| OWNED.contains(&k)) {
                        out.mark(&lines, k, *flow, Owner::Task(tid.clone()));
                    }
                }
            }
        }
        out
    }

    fn mark(&mut self, lines: &[&str], key: &Y, flow: bool, owner: Owner) {
        let Y::Scalar { line, col, .. } = key else { return };
        let i = line - 1;
        if flow {
            self.flow.insert(i, owner);
            return;
        }
        self.block.insert(i, owner.clone());
        // The value's continuation lines: indented deeper than the key (blank lines inside a
        // block scalar included, trailing blank lines not).
        let mut last = i;
        let mut j = i + 1;
        while j < lines.len() {
            let l = lines[j];
            if l.trim().is_empty() {
                j += 1;
                continue;
            }
            if l.len() - l.trim_start().len() <= *col {
                break;
            }
            last = j;
            j += 1;
        }
        for k in i + 1..=last {
            self.block.insert(k, owner.clone());
        }
    }
}

/// A flow mapping line with its owned `key: value` entries left out.
fn mask_flow(line: &str) -> String {
    let (Some(open), Some(close)) = (line.find('{'), line.rfind('}')) else {
        return line.to_string();
    };
    let inner = &line[open + 1..close];
    let mut items = Vec::new();
    let (mut depth, mut quote, mut escaped, mut start) = (0i32, None::<char>, false, 0);
    for (i, c) in inner.char_indices() {
        match quote {
            Some('"') if escaped => escaped = false,
            Some('"') if c == '\\' => escaped = true,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '\'' | '"' => quote = Some(c),
                '[' | '{' => depth += 1,
                ']' | '}' => depth -= 1,
                ',' if depth == 0 => {
                    items.push(&inner[start..i]);
                    start = i + 1;
                }
                _ => {}
            },
        }
    }
    items.push(&inner[start..]);
    let kept: Vec<&str> = items
        .into_iter()
        .filter(|item| {
            let key = item.trim().split(':').next().unwrap_or("").trim();
            !OWNED.contains(&key)
        })
        .collect();
    format!("{}{{{}}}{}", &line[..open], kept.join(","), &line[close + 1..])
}

/// `after` differs from `before` only in owned fields: task fields of the tasks in `may_change`
/// and sections' statuses. Every other byte (unknown keys, comments, layout) is the same.
fn owned_changes_only(before: &str, after: &str, may_change: &BTreeSet<String>) -> Result<(), String> {
    let (a, b): (Vec<&str>, Vec<&str>) = (before.split('\n').collect(), after.split('\n').collect());
    let (oa, ob) = (OwnedLines::of(before), OwnedLines::of(after));
    let allowed = |o: &Owner| match o {
        Owner::Task(id) => may_change.contains(id),
        Owner::Section(_) => true,
    };
    let mut problems = Vec::new();
    for hunk in diff_hunks(&a, &b) {
        let (mut flow_a, mut flow_b) = (Vec::new(), Vec::new());
        for &i in &hunk.removed {
            match (oa.flow.get(&i), oa.block.get(&i)) {
                (Some(o), _) => flow_a.push((i, o)),
                (None, Some(o)) if allowed(o) => {}
                (None, Some(o)) => problems.push(format!("line {} of {o:?}, which must not change, changed: {:?}", i + 1, a[i])),
                (None, None) => problems.push(format!("line {} (not an owned field) removed or changed: {:?}", i + 1, a[i])),
            }
        }
        for &j in &hunk.added {
            match (ob.flow.get(&j), ob.block.get(&j)) {
                (Some(o), _) => flow_b.push((j, o)),
                (None, Some(o)) if allowed(o) => {}
                (None, Some(o)) => problems.push(format!("new line {} in {o:?}, which must not change: {:?}", j + 1, b[j])),
                (None, None) => problems.push(format!("new line {} is not an owned field: {:?}", j + 1, b[j])),
            }
        }
        if flow_a.len() != flow_b.len() {
            problems.push(format!("flow lines {flow_a:?} became {flow_b:?}"));
            continue;
        }
        for ((i, oi), (j, oj)) in flow_a.into_iter().zip(flow_b) {
            if oi != oj || !allowed(oi) || mask_flow(a[i]) != mask_flow(b[j]) {
                problems.push(format!("flow line {} changed beyond its owned fields: {:?} → {:?}", i + 1, a[i], b[j]));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("the plan changed outside the fields baton owns:\n  {}", problems.join("\n  ")))
    }
}

/// A run of lines removed from `a` and added in `b` between equal lines (0-based indices).
#[derive(Debug, Default)]
struct Hunk {
    removed: Vec<usize>,
    added: Vec<usize>,
}

/// A longest-common-subsequence line diff (plans are a few hundred lines).
fn diff_hunks(a: &[&str], b: &[&str]) -> Vec<Hunk> {
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut hunks = Vec::new();
    let mut cur = Hunk::default();
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            if !cur.removed.is_empty() || !cur.added.is_empty() {
                hunks.push(std::mem::take(&mut cur));
            }
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            cur.added.push(j);
            j += 1;
        } else {
            cur.removed.push(i);
            i += 1;
        }
    }
    if !cur.removed.is_empty() || !cur.added.is_empty() {
        hunks.push(cur);
    }
    hunks
}

// ---------------------------------------------------------------------------------------------
// The checker itself must be able to fail.

fn fixture_text(file: &str) -> String {
    std::fs::read_to_string(compat_dir().join(file)).expect("read the fixture")
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

#[test]
fn the_owned_fields_check_accepts_what_baton_may_write() {
    let before = fixture_text("01-nextjs-storefront.yaml");
    let after = before
        .replacen("    name: Checkout pages\n    status: pending", "    name: Checkout pages\n    status: in_progress", 1)
        .replacen(
            "      - id: '2.1'\n        name: Cart page with server actions\n        agent: frontend-coder\n        status: pending",
            "      - id: '2.1'\n        name: Cart page with server actions\n        agent: frontend-coder\n        status: completed",
            1,
        )
        .replacen(
            "          src/styles/tokens.css; no new colours.\n        attempts: 0",
            "          src/styles/tokens.css; no new colours.\n        attempts: 1\n        completed_at: '2026-03-03T10:00:00Z'\n        result_message: 'did it: twice # really'",
            1,
        );
    assert_ne!(before, after);
    owned_changes_only(&before, &after, &set(&["2.1"])).expect("owned fields may change");

    // A multi-line owned value replaced by one line, on a task allowed to change.
    let before = fixture_text("11-legacy-migration-mostly-verified.yaml");
    let after = before.replacen(
        "    result_message: |\n      Skipped: the shims were removed in the Python 3.11 upgrade\n      (commit 9f2c1e0, March 2026).\n",
        "    result_message: skipped again\n",
        1,
    );
    assert_ne!(before, after);
    owned_changes_only(&before, &after, &set(&["4.3"])).expect("a block result_message may become one line");

    // A flow-mapping task: owned entries changed and added, the rest the same.
    let before = fixture_text("09-design-system-quoting.yaml");
    let after = before.replacen(
        "status: pending, depends_on: [1.2], description: 'packages/react/src/Button/Button.tsx uses tokens only', attempts: 0}",
        "status: completed, depends_on: [1.2], description: 'packages/react/src/Button/Button.tsx uses tokens only', attempts: 1, completed_at: '2026-08-02T00:00:00Z', result_message: 'a, b'}",
        1,
    );
    assert_ne!(before, after);
    owned_changes_only(&before, &after, &set(&["2.1"])).expect("owned entries of a flow task may change");
}

#[test]
fn the_owned_fields_check_allows_model_used_only_on_tasks_that_ran() {
    let before = fixture_text("01-nextjs-storefront.yaml");
    let after = before.replacen("        model_used: claude-sonnet-4-5\n        last_attempt: '2026-03-02T10:14:09Z'", "        model_used: claude-opus-4-1\n        last_attempt: '2026-03-02T10:14:09Z'", 1);
    assert_ne!(before, after);
    // model_used is baton's now, but only on a task that ran: 1.1 (verified) did not.
    let err = owned_changes_only(&before, &after, &set(&["2.1"])).expect_err("1.1 did not run");
    assert!(err.contains("model_used: claude-sonnet-4-5"), "{err}");
    owned_changes_only(&before, &after, &set(&["1.1", "2.1"])).expect("model_used may change on a task that ran");
}

#[test]
fn the_owned_fields_check_catches_other_changes() {
    let cases: &[(&str, &str, &str, &[&str])] = &[
        // A finding dropped from a list.
        ("06-payments-validation-exhausted.yaml", "    - 'FAIL: post.go compares amounts as float64'\n", "", &["1.2", "1.3"]),
        // A comment lost.
        ("04-docs-site.yaml", "    depends_on: ['1']               # written before the tool learned `dependencies`\n", "    depends_on: ['1']\n", &["3"]),
        // An agent renamed, right next to an owned field of a task that may change.
        ("02-rust-cli.yaml", "        agent: code-reviewer\n        status: pending", "        agent: reviewer\n        status: completed", &["2.3"]),
        // An owned field of a task that must not change (a verified task downgraded).
        ("11-legacy-migration-mostly-verified.yaml", "    agent: frontend-coder\n    status: verified", "    agent: frontend-coder\n    status: completed", &["5.3", "5.4"]),
        // A non-owned entry of a flow task.
        ("09-design-system-quoting.yaml", "{id: 2.1, name: Button, agent: frontend-coder, status: pending", "{id: 2.1, name: Button, agent: coder, status: completed", &["2.1"]),
        // Text inside a verified task's multi-line result, though result_message is owned.
        ("01-nextjs-storefront.yaml", "          14 unit tests, all green", "          15 unit tests, all green", &["2.1", "2.2"]),
        // A line appended after the last task.
        ("12-go-microservice-failure.yaml", "    description: docs/runbooks/inventory-grpc.md (ports, health checks, rollbacks).\n    attempts: 0\n", "    description: docs/runbooks/inventory-grpc.md (ports, health checks, rollbacks).\n    attempts: 0\n    worker_pid: 7\n", &["o3"]),
    ];
    for (file, from, to, may) in cases {
        let before = fixture_text(file);
        assert!(before.contains(from), "{file}: {from:?}");
        let after = before.replacen(from, to, 1);
        let r = owned_changes_only(&before, &after, &set(may));
        assert!(r.is_err(), "{file}: {from:?} → {to:?} must be caught");
    }
}

#[test]
fn mask_flow_keeps_all_but_owned_entries() {
    assert_eq!(
        mask_flow("  - {id: '1', status: pending, note: 'a, b: c', tags: [x, y], attempts: 0}  # c"),
        "  - {id: '1', note: 'a, b: c', tags: [x, y]}  # c"
    );
    assert_eq!(mask_flow(r#"- {name: "say \"hi\", then", result_message: "x, y"}"#), r#"- {name: "say \"hi\", then"}"#);
}

#[test]
fn the_fixtures_read_both_dependency_spellings() {
    let fx = Fixture::read(&fixture_text("04-docs-site.yaml"));
    assert_eq!(fx.spell_dependencies, set(&["4", "6", "8"]), "5 spells both");
    assert_eq!(fx.task("8").expect("task 8").deps, set(&["7", "3"]));
    assert_eq!(fx.task("7").expect("task 7").deps, set(&["6"]));
    assert!(respects_dependencies(&fx, &["3".into(), "4".into(), "5".into(), "6".into(), "7".into(), "8".into()]).is_ok());
    assert!(respects_dependencies(&fx, &["3".into(), "5".into(), "6".into(), "4".into()]).is_err(), "6 needs 4");
    let lines: HashSet<usize> = OwnedLines::of(&fixture_text("04-docs-site.yaml")).block.keys().copied().collect();
    assert!(!lines.is_empty());
}
