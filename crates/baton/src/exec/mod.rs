//! Where an attempt's agent runs: the executor seam.
//!
//! An attempt is started from a spec (the agent's command, its policy, its prompt), its output
//! is read as lines, it can be stopped, and it ends with how the agent ended — whoever ran it.
//! [`Executor::Local`] is a process group under the guard on this machine (the supervisor);
//! [`Executor::Ray`] is a job on a Ray cluster, whose worker runs `baton remote-attempt` with the
//! same supervisor there and sends the agent's stream back (`ray`, `remote`, `frame`). The
//! dispatcher, the verdict, the checks, landing and the store do not know which one ran it:
//! a remote attempt's result is in the task's working copy when it ends, as a local one's is.
//!
//! The one outcome only a remote executor has is [`Event::Lost`]: the cluster lost the job
//! (its node died, it never started, its driver was killed): the task goes back without
//! spending an attempt.

pub mod frame;
pub mod ray;
pub mod remote;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::agent::Systemic;
use crate::supervise::{CommandSpec, Deadline, ExitInfo, Line, Output, Policy, SpawnError, Supervised};

/// Where attempts run (`[executor]` in baton.toml).
#[derive(Clone, Default)]
pub enum Executor {
    /// A process group under the guard, on this machine.
    #[default]
    Local,
    /// A job on a Ray cluster.
    Ray(Arc<ray::Ray>),
}

/// What one attempt is, besides its command: what a remote executor needs to name, place and
/// bring back its work.
pub struct AttemptPlace {
    pub task: crate::plan::TaskId,
    /// The agent session's number (unique per task in the plan's logs).
    pub session: u32,
    /// The agent's status file, relative to its working copy.
    pub status_file: PathBuf,
    /// What the task asks of a cluster (`resources:`), over `[executor.resources]`.
    pub resources: Option<Resources>,
}

impl AttemptPlace {
    /// A session that always runs here (a reviewer's, a planning session).
    pub fn here(task: crate::plan::TaskId) -> AttemptPlace {
        AttemptPlace { task, session: 0, status_file: PathBuf::new(), resources: None }
    }
}

/// A running attempt.
#[allow(clippy::large_enum_variant, reason = "one per running attempt; the local one is not boxed")]
pub enum Execution {
    Local(Supervised),
    Ray(ray::Job),
}

/// What an execution yields: lines as they come, a deadline that passed, then one end.
#[derive(Debug)]
pub enum Event {
    Line(Line),
    Deadline(Deadline),
    /// The agent ended (on its own, or ended by a deadline or a stop).
    Exited(ExitInfo),
    /// The executor lost the attempt before its agent ended; nothing of it is known.
    Lost(String),
    /// The attempt could not be set up where it was sent (the agent's program is not on the
    /// worker, the worker cannot reach the repository): no retry fixes it.
    Refused(Systemic),
}

impl Executor {
    /// Starts the agent's command `cmd` under `policy`; `prompt` is what its stdin file holds.
    pub async fn start(&self, cmd: &CommandSpec, policy: &Policy, prompt: &str, place: &AttemptPlace) -> Result<Execution, SpawnError> {
        match self {
            Executor::Local => Ok(Execution::Local(Supervised::spawn(cmd, policy).await?)),
            Executor::Ray(ray) => Ok(Execution::Ray(ray.start(cmd, policy, prompt, place).await?)),
        }
    }

    pub fn is_local(&self) -> bool {
        matches!(self, Executor::Local)
    }

    /// The run is over: nothing of it stays on a cluster.
    pub async fn finish(&self) {
        if let Executor::Ray(ray) = self {
            ray.finish().await;
        }
    }
}

impl Execution {
    /// The agent's process group on this machine, when it runs here.
    pub fn pid(&self) -> Option<i32> {
        match self {
            Execution::Local(p) => Some(p.pid()),
            Execution::Ray(_) => None,
        }
    }

    /// The job that runs it on a cluster, when it runs there.
    pub fn job(&self) -> Option<String> {
        match self {
            Execution::Local(_) => None,
            Execution::Ray(j) => Some(j.submission_id().to_string()),
        }
    }

    /// The next line, deadline or end; `None` after the end. Cancel-safe.
    pub async fn next(&mut self) -> Option<Event> {
        match self {
            Execution::Local(p) => p.next().await.map(|o| match o {
                Output::Line(l) => Event::Line(l),
                Output::Deadline(d) => Event::Deadline(d),
                Output::Exited(x) => Event::Exited(x),
            }),
            Execution::Ray(j) => j.next().await,
        }
    }

    /// How the agent ended, as soon as that is known, even while output is still coming.
    pub fn command_exit(&mut self) -> Option<ExitInfo> {
        match self {
            Execution::Local(p) => p.command_exit(),
            Execution::Ray(j) => j.command_exit(),
        }
    }

    /// Whether reading was cut off while something still held the agent's output open.
    pub fn leaked(&self) -> bool {
        match self {
            Execution::Local(p) => p.leaked(),
            Execution::Ray(_) => false,
        }
    }

    /// The agent announced a silent pause: the idle deadline moves to `until` if later.
    pub fn postpone_idle(&mut self, until: Instant) {
        match self {
            Execution::Local(p) => p.postpone_idle(until),
            Execution::Ray(j) => j.postpone_idle(until),
        }
    }

    /// Ends the agent: asked politely, then forced after `grace`.
    pub fn begin_terminate(&mut self, grace: Duration) {
        match self {
            Execution::Local(p) => p.begin_terminate(grace),
            Execution::Ray(j) => j.stop(),
        }
    }

    /// Ends whatever the agent left running, now, without waiting for its output.
    pub fn kill_now(&mut self) {
        match self {
            Execution::Local(p) => p.kill_now(),
            Execution::Ray(j) => j.stop(),
        }
    }
}

/// What an attempt asks of a cluster: CPUs, GPUs, memory and custom resources (an account slot).
/// `[executor.resources]` gives the defaults; a task's `resources:` overrides them key by key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Resources {
    pub num_cpus: Option<f64>,
    pub num_gpus: Option<f64>,
    /// Bytes, or a size such as `"4GiB"`, `"512MB"`.
    pub memory: Option<Memory>,
    /// Custom resources by name (`claude_account = 1`).
    pub custom: BTreeMap<String, f64>,
}

/// An amount of memory as written: a number of bytes or a size with a unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Memory {
    Bytes(u64),
    Size(String),
}

impl Memory {
    /// The number of bytes, or `None` when the text is not a size.
    pub fn bytes(&self) -> Option<u64> {
        match self {
            Memory::Bytes(b) => Some(*b),
            Memory::Size(s) => parse_size(s),
        }
    }
}

impl Resources {
    /// These resources with `over`'s keys taking precedence.
    pub fn overridden_by(&self, over: Option<&Resources>) -> Resources {
        let Some(o) = over else { return self.clone() };
        let mut custom = self.custom.clone();
        custom.extend(o.custom.iter().map(|(k, v)| (k.clone(), *v)));
        Resources {
            num_cpus: o.num_cpus.or(self.num_cpus),
            num_gpus: o.num_gpus.or(self.num_gpus),
            memory: o.memory.clone().or_else(|| self.memory.clone()),
            custom,
        }
    }

    /// What is wrong with them, for a message: a negative or non-finite amount, a memory
    /// size that is not one.
    pub fn problem(&self) -> Option<String> {
        let amounts = [("num_cpus", self.num_cpus), ("num_gpus", self.num_gpus)];
        for (key, v) in amounts {
            if let Some(v) = v {
                if !(v.is_finite() && v >= 0.0) {
                    return Some(format!("`{key}` must be a number of 0 or more, found {v}"));
                }
            }
        }
        if let Some(m) = &self.memory {
            if m.bytes().is_none() {
                return Some(format!("`memory` must be a number of bytes or a size such as \"4GiB\", found {m:?}"));
            }
        }
        for (name, v) in &self.custom {
            if name.trim().is_empty() {
                return Some("a custom resource has an empty name".into());
            }
            if !(v.is_finite() && *v >= 0.0) {
                return Some(format!("custom resource `{name}` must be a number of 0 or more, found {v}"));
            }
        }
        None
    }
}

/// `4GiB`, `512 MB`, `1.5G`, `1024`: bytes (K/M/G/T are powers of 1000, Ki/Mi/Gi/Ti of 1024).
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number.parse().ok()?;
    let unit = unit.trim().to_ascii_lowercase();
    let factor: f64 = match unit.trim_end_matches('b') {
        "" => 1.0,
        "k" => 1e3,
        "m" => 1e6,
        "g" => 1e9,
        "t" => 1e12,
        "ki" => 1024.0,
        "mi" => 1024.0 * 1024.0,
        "gi" => 1024.0 * 1024.0 * 1024.0,
        "ti" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    if unit.len() > 3 || (unit.ends_with('b') && unit.matches('b').count() > 1) {
        return None;
    }
    let bytes = number * factor;
    (0.0..1.8e19).contains(&bytes).then_some(bytes.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(parse_size("4GiB"), Some(4 * 1024 * 1024 * 1024));
        assert_eq!(parse_size("512 MB"), Some(512_000_000));
        assert_eq!(parse_size("1.5G"), Some(1_500_000_000));
        assert_eq!(parse_size("1024"), Some(1024));
        assert_eq!(parse_size("2kib"), Some(2048));
        for bad in ["", "GiB", "4 parsecs", "4GiBB", "-1", "1e400"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_tasks_resources_override_the_defaults_key_by_key() {
        let defaults = Resources { num_cpus: Some(1.0), memory: Some(Memory::Size("4GiB".into())), custom: [("acct".to_string(), 1.0)].into(), ..Default::default() };
        let task = Resources { num_cpus: Some(2.0), custom: [("gpu_box".to_string(), 1.0)].into(), ..Default::default() };
        let r = defaults.overridden_by(Some(&task));
        assert_eq!(r.num_cpus, Some(2.0));
        assert_eq!(r.memory, Some(Memory::Size("4GiB".into())));
        assert_eq!(r.custom.len(), 2);
        assert!(Resources { num_cpus: Some(-1.0), ..Default::default() }.problem().is_some());
        assert!(Resources { memory: Some(Memory::Size("lots".into())), ..Default::default() }.problem().is_some());
        assert!(r.problem().is_none());
    }
}
