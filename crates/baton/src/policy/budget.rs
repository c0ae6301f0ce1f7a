//! The budget: whether another attempt may start, and the cap one session gets. Pure: the
//! dispatcher tells it what was spent; what earlier runs spent comes from the store.
//!
//! Two budgets may hold at once: the plan's over all its runs (`meta.budget_usd`, or `[budget]
//! plan_usd`) and this run's (`--max-cost`, or `[budget] run_usd`); the tighter one decides. An
//! attempt starts when what remains, less what the attempts already running are expected to
//! cost, still covers what this one is expected to cost: the median of the plan's recorded
//! attempt costs, or `[budget] attempt_estimate_usd` while there are none.

/// The smallest spending cap a session can be given (a hundredth of a cent: the cap is passed
/// with four decimals); less than this left is nothing left.
pub const MIN_CAP: f64 = 0.0001;

/// The largest budget baton takes, in US dollars: a million.
pub const MAX_USD: f64 = 1_000_000.0;

/// A budget's state.
#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    /// The plan's budget, and what its earlier runs spent.
    pub plan: Option<(f64, f64)>,
    /// This run's budget.
    pub run: Option<f64>,
    /// What this run has spent.
    pub spent_run: f64,
    /// The costs of the plan's counted attempts (earlier runs' and this run's).
    pub costs: Vec<f64>,
    /// What an attempt is expected to cost while `costs` is empty.
    pub fallback_estimate: f64,
    /// Where the plan's and the run's budgets were set (`meta.budget_usd`, `--max-cost`, …):
    /// what to raise.
    pub plan_from: &'static str,
    pub run_from: &'static str,
}

/// Why no attempt may start.
#[derive(Debug, Clone, PartialEq)]
pub struct Exhausted {
    /// `plan` or `run`: the budget that is short.
    pub scope: &'static str,
    pub budget: f64,
    pub spent: f64,
    pub remaining: f64,
    pub estimate: f64,
    /// Where the short budget was set: what to raise to go on.
    pub raise: &'static str,
    /// Where the estimate comes from, in words.
    pub estimate_from: String,
}

impl Budget {
    /// `None` when no budget is set.
    pub fn new(plan: Option<(f64, f64)>, run: Option<f64>, costs: Vec<f64>, fallback_estimate: f64) -> Option<Budget> {
        (plan.is_some() || run.is_some()).then_some(Budget {
            plan,
            run,
            spent_run: 0.0,
            costs,
            fallback_estimate,
            plan_from: "meta.budget_usd",
            run_from: "--max-cost",
        })
    }

    /// Says where the plan's and the run's budgets were set.
    pub fn set_in(mut self, plan_from: &'static str, run_from: &'static str) -> Budget {
        self.plan_from = plan_from;
        self.run_from = run_from;
        self
    }

    /// Where the estimate comes from, in words.
    fn estimate_from(&self) -> String {
        match self.costs.len() {
            0 => "[budget] attempt_estimate_usd, with no attempt cost recorded yet".into(),
            1 => "the one recorded attempt".into(),
            n => format!("the median of {n} recorded attempts"),
        }
    }

    fn exhausted(&self, scope: &'static str, budget: f64, spent: f64, remaining: f64) -> Exhausted {
        let raise = if scope == "run" { self.run_from } else { self.plan_from };
        Exhausted { scope, budget, spent, remaining: remaining.max(0.0), estimate: self.estimate(), raise, estimate_from: self.estimate_from() }
    }

    /// What the next attempt is expected to cost.
    pub fn estimate(&self) -> f64 {
        crate::store::query::median(&self.costs).unwrap_or(self.fallback_estimate).max(0.0)
    }

    /// The tighter budget: its scope, amount, what it has spent, and what remains.
    fn tightest(&self) -> (&'static str, f64, f64, f64) {
        let plan = self.plan.map(|(budget, before)| ("plan", budget, before + self.spent_run));
        let run = self.run.map(|budget| ("run", budget, self.spent_run));
        let left = |(_, b, s): &(&str, f64, f64)| b - s;
        let (scope, budget, spent) = match (plan, run) {
            (Some(p), Some(r)) => {
                if left(&r) < left(&p) {
                    r
                } else {
                    p
                }
            }
            (Some(x), None) | (None, Some(x)) => x,
            (None, None) => ("plan", f64::INFINITY, 0.0),
        };
        (scope, budget, spent, budget - spent)
    }

    /// Where the budget stands: the tighter budget, what it spent, what remains, the estimate.
    pub fn state(&self) -> Exhausted {
        let (scope, budget, spent, remaining) = self.tightest();
        self.exhausted(scope, budget, spent, remaining)
    }

    /// Whether an attempt may start beside `running` others; when it may, the spending cap
    /// its session gets (what remains, less what the others are expected to cost).
    pub fn admit(&self, running: usize) -> Result<f64, Exhausted> {
        let (scope, budget, spent, remaining) = self.tightest();
        let estimate = self.estimate();
        let cap = remaining - running as f64 * estimate;
        // With no cost to expect (none recorded, or only free ones), what a running attempt
        // will spend is unknown: attempts then start one at a time, each capped at what remains.
        let unknown_beside_others = estimate <= 0.0 && running > 0;
        if remaining > 0.0 && cap >= MIN_CAP && cap >= estimate && !unknown_beside_others {
            return Ok(cap);
        }
        Err(self.exhausted(scope, budget, spent, remaining))
    }

    /// Money spent in this run: an agent's session, a reviewer's.
    pub fn spent(&mut self, cost: f64) {
        if cost.is_finite() && cost >= 0.0 {
            self.spent_run += cost;
        }
    }

    /// What a counted attempt cost, its reviewer's included: it joins the estimate.
    pub fn sample(&mut self, cost: f64) {
        if cost.is_finite() && cost >= 0.0 {
            self.costs.push(cost);
        }
    }

    /// The cap of a session that starts beside `others` running attempts (a reviewer's):
    /// what remains less what they hold, never below nothing.
    pub fn cap_beside(&self, others: usize) -> f64 {
        let (_, _, _, remaining) = self.tightest();
        (remaining - others as f64 * self.estimate()).max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_start_while_the_median_fits_and_stop_before_the_budget_is_overshot() {
        // The fake agent's $0.0123 an attempt, a plan budget of $0.03, nothing recorded yet.
        let mut b = Budget::new(Some((0.03, 0.0)), None, Vec::new(), 0.0).unwrap();
        assert!((b.admit(0).unwrap() - 0.03).abs() < 1e-12);
        { b.spent(0.0123); b.sample(0.0123); }
        assert!(b.admit(0).is_ok(), "0.0177 left covers a 0.0123 attempt");
        { b.spent(0.0123); b.sample(0.0123); }
        let e = b.admit(0).unwrap_err();
        assert_eq!(e.scope, "plan");
        assert!((e.remaining - 0.0054).abs() < 1e-9 && (e.estimate - 0.0123).abs() < 1e-12);
    }

    #[test]
    fn earlier_runs_count_against_the_plan_and_the_tighter_budget_decides() {
        let b = Budget::new(Some((1.0, 0.99)), Some(5.0), vec![0.02], 0.0).unwrap();
        assert_eq!(b.admit(0).unwrap_err().scope, "plan");
        let mut b = Budget::new(Some((10.0, 0.0)), Some(0.05), vec![0.02], 0.0).unwrap();
        b.spent(0.04);
        let e = b.admit(0).unwrap_err();
        assert_eq!((e.scope, e.budget), ("run", 0.05));
    }

    #[test]
    fn running_attempts_hold_their_expected_cost_and_the_cap_is_what_is_left() {
        let b = Budget::new(None, Some(1.0), vec![0.25, 0.3, 0.2], 0.0).unwrap();
        assert!((b.admit(2).unwrap() - 0.5).abs() < 1e-12);
        assert!(b.admit(3).is_ok());
        assert!(b.admit(4).is_err());
    }

    #[test]
    fn less_than_the_smallest_cap_left_is_nothing_left() {
        let b = Budget::new(Some((0.000_000_001, 0.0)), None, Vec::new(), 0.0).unwrap();
        assert!(b.admit(0).is_err(), "a cap of $0.0001 would be more than the budget");
    }

    #[test]
    fn with_no_cost_to_expect_attempts_start_one_at_a_time() {
        let b = Budget::new(Some((0.03, 0.0)), None, Vec::new(), 0.0).unwrap();
        assert!(b.admit(0).is_ok());
        assert!(b.admit(1).is_err(), "a second beside it would be capped at all that remains too");
        let free = Budget::new(Some((0.03, 0.0)), None, vec![0.0; 9], 0.0).unwrap();
        assert!(free.admit(1).is_err(), "free attempts so far say nothing of the next one");
    }

    #[test]
    fn a_zero_budget_starts_nothing_and_no_budget_is_none() {
        let b = Budget::new(Some((0.0, 0.0)), None, Vec::new(), 0.0).unwrap();
        assert!(b.admit(0).is_err());
        assert!(Budget::new(None, None, Vec::new(), 1.0).is_none());
        // With no history, the configured estimate is what an attempt must fit in.
        let b = Budget::new(None, Some(0.3), Vec::new(), 0.5).unwrap();
        assert_eq!(b.admit(0).unwrap_err().estimate, 0.5);
    }

    #[test]
    fn a_cost_that_is_not_a_number_is_not_spent() {
        let mut b = Budget::new(None, Some(1.0), Vec::new(), 0.0).unwrap();
        b.spent(f64::NAN);
        b.spent(-3.0);
        b.sample(f64::INFINITY);
        assert_eq!((b.spent_run, b.costs.len()), (0.0, 0));
    }
}
