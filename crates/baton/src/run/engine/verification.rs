//! The reviewer session of one attempt, as the dispatcher starts it: the prompt is filled
//! once the attempt's checks are done (it shows them) and its diff is read.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::agent::Agent;
use crate::plan::{Plan, Task};
use crate::report::event::Reporter;
use crate::run::record::ReviewRecord;
use crate::run::review::{self, ReviewJob, ReviewVars};
use crate::run::stop::Stop;
use crate::run::verify::Checked;

/// Everything the review of one attempt needs, taken when its agent reported `completed`.
pub(super) struct ReviewSetup {
    pub plan: Plan,
    pub task: Task,
    /// The user's reviewer prompt (`[review] prompt_template`), read already.
    pub template: Option<String>,
    /// What the coding agent reported.
    pub agent_message: String,
    /// What the attempt changed, read as the agent left it — on the engine's thread: a git of
    /// baton's running beside an attempt's end would be taken for an orphan and ended.
    pub diff: String,
    pub model: Option<String>,
    pub named_agent: Option<String>,
    /// Absolute, in the attempt's working copy; and as the reviewer is told it.
    pub status_file: PathBuf,
    pub status_rel: PathBuf,
    pub transcript_prefix: PathBuf,
    pub total: Duration,
    pub idle: Duration,
}

/// Where the attempt ran.
pub(super) struct Place {
    pub cwd: PathBuf,
    pub env: Vec<(OsString, OsString)>,
    pub guard_exe: PathBuf,
}

impl ReviewSetup {
    /// Reads the attempt's diff, fills the prompt and runs the reviewer (a broken one once
    /// more): its record.
    pub async fn run(self, place: Place, checked: &Checked, agent: Arc<dyn Agent>, reporter: &Reporter, stop: watch::Receiver<Stop>) -> ReviewRecord {
        let prompt = review::prompt(
            self.template.as_deref(),
            &ReviewVars {
                plan: &self.plan,
                task: &self.task,
                agent_message: &self.agent_message,
                diff: &self.diff,
                checks: &checked.records,
                status_file: &self.status_rel,
            },
        );
        let job = ReviewJob {
            task: self.task.id.clone(),
            cwd: place.cwd,
            env: place.env,
            guard_exe: place.guard_exe,
            prompt,
            model: self.model,
            named_agent: self.named_agent,
            transcript_prefix: self.transcript_prefix,
            status_file: self.status_file,
            total_timeout: self.total,
            idle_timeout: self.idle,
        };
        review::review(&job, agent, reporter, stop).await
    }
}

/// Where an attempt ran, for [`ReviewSetup::run`].
pub(super) fn place(cwd: &Path, guard_exe: &Path) -> Place {
    Place { cwd: cwd.to_path_buf(), env: Vec::new(), guard_exe: guard_exe.to_path_buf() }
}
