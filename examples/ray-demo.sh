#!/usr/bin/env bash
# Runs a small parallel plan through a Ray cluster (docs/scale-out.md): every attempt is a Ray
# job whose worker runs `baton remote-attempt`, and the work comes back through git.
#
# Needs a Ray head (RAY_DASHBOARD, default http://127.0.0.1:8265):
#   python3 -m venv ~/ray && ~/ray/bin/pip install 'ray[default]==2.60.0'
#   ~/ray/bin/ray start --head --dashboard-host 127.0.0.1 --num-cpus 4 --disable-usage-stats
#
# The agent is baton's built-in SIMULATED agent (`--agent simulated`): it calls no model — it
# writes a note per task saying so, and every line of its output is labelled `simulated`. The
# jobs run with the environment of `ray start`; a real agent needs its CLI and credentials there.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"
address="${RAY_DASHBOARD:-http://127.0.0.1:8265}"

cargo build -q --locked -p baton --bin baton
target="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
baton="$target/debug/baton"

if ! curl -sf "$address/api/version" >/dev/null 2>&1; then
  echo "error: no Ray dashboard answers at $address" >&2
  echo "  help: start one: ray start --head --dashboard-host 127.0.0.1 --num-cpus 4 --disable-usage-stats" >&2
  echo "        (or set RAY_DASHBOARD to its address)" >&2
  exit 2
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/baton-ray-demo.XXXXXX")"
git init -q --bare "$work/remote.git"
mkdir "$work/repo"
cd "$work/repo"
git init -q -b main
git config user.name "baton demo"
git config user.email "demo@baton.invalid"
{
  echo "meta:"
  echo "  name: Six tasks on Ray"
  echo "sections:"
  echo "- id: s"
  echo "  name: Notes"
  echo "  tasks:"
  for i in 1 2 3 4 5 6; do
    echo "  - id: '$i'"
    echo "    name: Note $i"
    echo "    status: pending"
    echo "    parallel_group: notes"
    echo "    description: Write notes/$i.md with one line about the number $i."
  done
} > plan.yaml
cat > baton.toml <<TOML
[executor]
kind = "ray"
address = "$address"
baton = "$baton"                 # the baton the workers run (this machine is the worker here)

[executor.resources]
num_cpus = 1
TOML
git add -A
git commit -q -m "a plan to run on Ray"
git remote add origin "$work/remote.git"
git push -q origin main

echo "== SIMULATED AGENT: no model is called; the tasks themselves are not done."
echo "== baton run plan.yaml --parallel --jobs 3 --agent simulated   (in $work/repo, on $address)"
status=0
"$baton" run plan.yaml --parallel --jobs 3 --agent simulated || status=$?
echo
echo "== git log"
git log --oneline
echo
echo "== refs/baton/* left on the remote (none expected):"
git ls-remote "$work/remote.git" 'refs/baton/*'
exit "$status"
