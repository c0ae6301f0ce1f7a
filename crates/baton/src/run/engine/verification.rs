//! The reviewer session of one attempt, as the dispatcher starts it: the prompt is filled
//! once the attempt's checks are done (it shows them).

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::watch;

use crate::agent::Agent;
use crate::plan::{Plan, Task};
use crate::report::event::Reporter;
use crate::run::record::ReviewRecord;
use crate::run::review::{self, ReviewJob, ReviewVars};
use crate::run::stop::Stop;
use crate::run::verify::Checked;

/// Everything the review of one attempt needs, taken when its agent reported `completed`: the
/// reviewer's session (its prompt still to fill) and what goes into the prompt.
pub(super) struct ReviewSetup {
    /// The session to run; its `prompt` is filled by [`ReviewSetup::run`].
    pub job: ReviewJob,
    pub plan: Plan,
    pub task: Task,
    /// The user's reviewer prompt (`[review] prompt_template`), read already.
    pub template: Option<String>,
    /// What the coding agent reported.
    pub agent_message: String,
    /// What the attempt changed, read as the agent left it — on the engine's thread: a git of
    /// baton's running beside an attempt's end would be taken for an orphan and ended.
    pub diff: String,
    /// The status file as the reviewer is told it (relative to its working directory).
    pub status_rel: PathBuf,
}

impl ReviewSetup {
    /// Fills the prompt with the checks' results and runs the reviewer (a broken one once
    /// more): its record.
    pub async fn run(mut self, checked: &Checked, agent: Arc<dyn Agent>, reporter: &Reporter, stop: watch::Receiver<Stop>) -> ReviewRecord {
        self.job.prompt = review::prompt(
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
        review::review(&self.job, agent, reporter, stop).await
    }
}
