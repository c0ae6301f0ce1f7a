//! The agents of a run, by their names in `baton.toml`: the default, the fallbacks, and those
//! the plan's tasks name (`agent: NAME`), each located once, the first time a task needs it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::Agent;
use crate::config::{AgentDef, Config};
use crate::plan::{Plan, Task};
use crate::policy::failover::Routing;

/// One agent of the run.
#[derive(Clone)]
pub struct Member {
    /// Its name in `baton.toml`.
    pub name: String,
    pub agent: Arc<dyn Agent>,
    pub def: AgentDef,
}

pub struct Roster {
    members: BTreeMap<String, Member>,
    routing: Routing,
    defs: BTreeMap<String, AgentDef>,
    root: PathBuf,
    lenient: bool,
}

impl Roster {
    /// The agents `plan` needs, located: the default, the fallbacks, and every agent a task
    /// still to do names. A missing binary is an error (with `lenient`, for dry runs, a warning). The error
    /// is a full message for a person.
    pub fn for_plan(config: &Config, plan: &Plan, root: &Path, lenient: bool) -> Result<Roster, String> {
        let names = config.agent_names();
        let defs: BTreeMap<String, AgentDef> = names.iter().filter_map(|n| config.agent_def(n).map(|d| (n.clone(), d))).collect();
        let routing = Routing {
            default: config.default_agent().to_string(),
            fallback: config.agent.fallback.clone(),
            known: names.into_iter().collect(),
            failover_after: Duration::from_secs_f64(config.agent.failover_after_minutes * 60.0),
        };
        let mut roster = Roster { members: BTreeMap::new(), routing, defs, root: root.to_path_buf(), lenient };
        for name in Roster::needed(config, plan) {
            roster.member(&name)?;
        }
        Ok(roster)
    }

    /// The agents a run of `plan` needs: the default, the fallbacks, and those its tasks still to
    /// do name (a finished task's agent may be gone).
    pub fn needed(config: &Config, plan: &Plan) -> Vec<String> {
        let known = config.agent_names();
        let mut wanted = vec![config.default_agent().to_string()];
        wanted.extend(config.agent.fallback.iter().cloned());
        wanted.extend(plan.tasks().filter(|t| !t.status.is_final()).filter_map(|t| t.agent.clone()).filter(|a| known.contains(a)));
        let mut seen = std::collections::HashSet::new();
        wanted.retain(|n| seen.insert(n.clone()));
        wanted
    }

    /// How tasks choose among these agents.
    pub fn routing(&self) -> &Routing {
        &self.routing
    }

    /// The agent named `name`, located now if it was not yet (a task added to the plan during
    /// the run may name one no task named at the start).
    pub fn member(&mut self, name: &str) -> Result<&Member, String> {
        if !self.members.contains_key(name) {
            let def = self.defs.get(name).cloned().ok_or_else(|| format!("error: no agent is named \"{name}\" in baton.toml"))?;
            let agent = super::for_def(name, &def, &self.root, self.lenient).map_err(|e| in_agent(name, e))?;
            self.members.insert(name.to_string(), Member { name: name.to_string(), agent, def });
        }
        Ok(&self.members[name])
    }

    /// The agent of tasks that name none.
    pub fn default(&self) -> &Member {
        &self.members[&self.routing.default]
    }

    /// The agents located so far, by name.
    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.members.values()
    }

    /// The model attempt `attempt` of `task` runs with on `member`. On the task's own agent, the
    /// task's model (or ladder) first; the plan's (`meta.model`, `meta.models`) only on the
    /// default agent, for which the original tool's plans name them; then the agent's own
    /// (`models` ladder, else `model`). On a fallback, the agent's own: the task's model names
    /// another vendor's.
    pub fn model_for(&self, plan: &Plan, task: &Task, attempt: u32, member: &Member) -> Option<String> {
        let own = rung(&member.def.models, attempt).or_else(|| member.def.model.clone());
        if member.name != self.routing.primary(task.agent.as_deref()) {
            return own;
        }
        if member.name == self.routing.default || !task.models.is_empty() || task.model.is_some() {
            return plan.model_for(task, attempt, own.as_deref());
        }
        own
    }
}

/// Attempt `attempt` (1-based) of a ladder: `models[min(n, len) - 1]`.
fn rung(ladder: &[String], attempt: u32) -> Option<String> {
    (!ladder.is_empty()).then(|| ladder[(attempt.max(1) as usize).min(ladder.len()) - 1].clone())
}

/// An agent's error, saying which agent it is when baton.toml has more than one.
fn in_agent(name: &str, e: String) -> String {
    match e.strip_prefix("error: ") {
        Some(rest) => format!("error: agent \"{name}\": {rest}"),
        None => format!("agent \"{name}\": {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(text: &str) -> Plan {
        crate::plan::parse_plan(text).unwrap()
    }

    const PLAN: &str = "meta:\n  name: p\n  model: sonnet\nsections:\n- id: s\n  name: s\n  tasks:\n  - id: '1'\n    name: a\n    status: pending\n  - id: '2'\n    name: b\n    status: pending\n    agent: cheap\n  - id: '3'\n    name: c\n    status: pending\n    agent: cheap\n    model: special\n";

    fn config() -> Config {
        let text = "[agent]\nkind = \"simulated\"\nfallback = [\"backup\"]\n[agents.cheap]\nkind = \"simulated\"\nmodels = [\"m1\", \"m2\"]\n[agents.backup]\nkind = \"simulated\"\nmodel = \"b\"\n";
        Config::parse(text, Path::new("baton.toml")).unwrap()
    }

    #[test]
    fn each_task_gets_its_agents_model_and_a_fallback_its_own() {
        let p = plan(PLAN);
        let r = Roster::for_plan(&config(), &p, Path::new("/"), false).unwrap();
        assert_eq!(r.members().map(|m| m.name.as_str()).collect::<Vec<_>>(), ["backup", "cheap", "simulated"]);
        let (t1, t2, t3) = (p.task("1").unwrap(), p.task("2").unwrap(), p.task("3").unwrap());
        let m = |name: &str| r.members.get(name).unwrap().clone();
        assert_eq!(r.model_for(&p, t1, 1, &m("simulated")).as_deref(), Some("sonnet"), "the plan's model on the default agent");
        assert_eq!(r.model_for(&p, t2, 1, &m("cheap")).as_deref(), Some("m1"), "not the plan's model on another agent");
        assert_eq!(r.model_for(&p, t2, 5, &m("cheap")).as_deref(), Some("m2"));
        assert_eq!(r.model_for(&p, t3, 1, &m("cheap")).as_deref(), Some("special"), "the task's own model first");
        assert_eq!(r.model_for(&p, t1, 1, &m("backup")).as_deref(), Some("b"), "a fallback's own model");
    }

    #[test]
    fn an_agent_that_cannot_be_found_is_named_in_the_error() {
        let text = "[agent]\ndefault = \"x\"\n[agents.x]\nkind = \"claude\"\nbinary = \"/nonexistent/claude\"\n";
        let e = Roster::for_plan(&Config::parse(text, Path::new("baton.toml")).unwrap(), &plan(PLAN), Path::new("/"), false).err().unwrap();
        assert!(e.starts_with("error: agent \"x\": the agent binary /nonexistent/claude"), "{e}");
    }
}
