//! Benchmark (not a test) of pooled worktrees against fresh ones, per task, on a repository of
//! 20k small files.
//!
//! A sequence of tasks runs one after another; each gets a worktree, changes a file and adds
//! one, and "lands" (the same files written into the main checkout and committed, so HEAD
//! moves as in a run). Measured per task, three ways:
//! - plain git: `git worktree add -b` (the reference), then `git worktree remove --force` +
//!   `git branch -D`;
//! - fresh: baton's `worktree::create` (stale-place checks, exclude, `worktree add`), then
//!   `worktree::remove` once the work landed;
//! - pooled: `Pool::take` (move a landed worktree, `checkout -f -B`, `clean -ffdx`), then
//!   `Pool::give_back` once the work landed. The pool's first take makes a fresh worktree; the
//!   figures are for the takes that reuse one.
//!
//! The check that the work landed (`check_landed`, copy-back's `unlanded`) runs before the
//! removal and before the give-back alike, so it is timed in neither.
//!
//! `cargo bench -p baton --bench worktree_pool`
//!
//! It never asserts on timings; it fails loudly only when a worktree is not what it should be.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use baton::git::worktree::{self, Origin, Pool, Worktree};
use baton_testkit::TempRepo;

const SMALL_FILES: usize = 20_000;
/// Tasks with a fresh worktree each (plain git, then baton's create): a checkout of 20k files
/// can take seconds.
const FRESH_TASKS: usize = 5;
/// Tasks through the pool: the first makes its worktree, the others reuse it.
const TASKS: usize = 12;
const STATUS: &str = ".claude/plans/task-status.json";
const TARGET: f64 = 0.20;

fn main() {
    let t = Instant::now();
    let repo = big_repo(SMALL_FILES);
    let files = repo.git(&["ls-files"]).lines().count();
    println!("worktree pool bench: a repository of {files} files in one commit (made in {:.1} s), {FRESH_TASKS} tasks with fresh worktrees per way, {TASKS} through the pool", t.elapsed().as_secs_f64());
    // Warm the caches once (the first checkout of a fresh repository reads every blob).
    repo.git(&["worktree", "add", "-q", "-b", "bench/warm", ".bench-wt/warm", "HEAD"]);
    repo.git(&["worktree", "remove", "--force", ".bench-wt/warm"]);
    repo.git(&["branch", "-q", "-D", "bench/warm"]);

    let mut git_add = Vec::new();
    let mut git_rm = Vec::new();
    for i in 0..FRESH_TASKS {
        let (branch, dir) = (format!("bench/{i}"), format!(".bench-wt/{i}"));
        let t = Instant::now();
        repo.git(&["worktree", "add", "-q", "-b", &branch, &dir, "HEAD"]);
        git_add.push(ms(t.elapsed()));
        let wt = repo.join(&dir);
        work(&wt, &format!("git{i}"));
        land(&repo, &wt, &format!("git{i}"));
        let t = Instant::now();
        repo.git(&["worktree", "remove", "--force", &dir]);
        repo.git(&["branch", "-q", "-D", &branch]);
        git_rm.push(ms(t.elapsed()));
    }

    let mut create = Vec::new();
    let mut remove = Vec::new();
    for i in 0..FRESH_TASKS {
        let id = format!("fresh{i}");
        let t = Instant::now();
        let made = worktree::create(repo.path(), &place(&id), &worktree::branch_name(&id), Path::new(STATUS), &[]).expect("create");
        create.push(ms(t.elapsed()));
        assert_eq!(made.origin, Origin::Fresh);
        work(&made.worktree.path, &id);
        land(&repo, &made.worktree.path, &id);
        let landed = landed(&repo, made.worktree.clone());
        let t = Instant::now();
        worktree::remove(repo.path(), landed.worktree()).expect("remove");
        remove.push(ms(t.elapsed()));
    }

    let mut pool = Pool::new(repo.path(), Path::new(STATUS), &[], 1);
    let mut take = Vec::new();
    let mut give = Vec::new();
    let mut first_take = 0.0;
    for i in 0..TASKS {
        let id = format!("pooled{i}");
        let t = Instant::now();
        let made = pool.take(&place(&id), &worktree::branch_name(&id), "HEAD").expect("take");
        let took = ms(t.elapsed());
        match (&made.origin, i) {
            (Origin::Fresh, 0) => first_take = took,
            (Origin::Reused { .. }, _) if i > 0 => take.push(took),
            (origin, _) => panic!("task {i}: unexpected origin {origin:?}"),
        }
        check_clean(&repo, &made.worktree);
        work(&made.worktree.path, &id);
        land(&repo, &made.worktree.path, &id);
        let landed = landed(&repo, made.worktree.clone());
        let t = Instant::now();
        pool.give_back(landed).expect("give back");
        give.push(ms(t.elapsed()));
    }
    pool.close().expect("close the pool");
    assert_eq!(repo.git(&["worktree", "list", "--porcelain"]).matches("worktree ").count(), 1, "worktrees left behind");
    assert_eq!(repo.git(&["status", "--porcelain"]), "", "the main checkout is not clean");

    println!();
    println!("per task, ms: median (min–max)");
    let row = |name: &str, v: &[f64]| println!("  {name:<48} {:>8.1} ({:.1}–{:.1})", median(v), min(v), max(v));
    row("git worktree add", &git_add);
    row("git worktree remove --force + branch -D", &git_rm);
    row("fresh: worktree::create", &create);
    row("fresh: worktree::remove", &remove);
    row("pooled: Pool::take (reusing)", &take);
    row("pooled: Pool::give_back", &give);
    println!("  {:<48} {:>8.1}", "pooled: the first take (empty pool: fresh)", first_take);
    let pooled: Vec<f64> = take.iter().zip(&give[1..]).map(|(t, g)| t + g).collect();
    let fresh: Vec<f64> = create.iter().zip(&remove).map(|(c, r)| c + r).collect();
    row("pooled per task: take + give back", &pooled);
    row("fresh per task: create + remove", &fresh);
    println!();
    let ratio = median(&pooled) / median(&git_add);
    println!(
        "pooled per task / git worktree add: {:.1} % (target ≤ {:.0} %) — {}",
        ratio * 100.0,
        TARGET * 100.0,
        if ratio <= TARGET { "within the target" } else { "ABOVE the target" }
    );
    println!("pooled per task / fresh per task (create + remove): {:.1} %", median(&pooled) / median(&fresh) * 100.0);
}

/// A repository of `n` small files in 200-file folders and a `.gitignore`, one commit.
fn big_repo(n: usize) -> TempRepo {
    let repo = TempRepo::new();
    for i in 0..n {
        let dir = repo.path().join(format!("src/d{:03}", i / 200));
        if i % 200 == 0 {
            std::fs::create_dir_all(&dir).expect("mkdir");
        }
        std::fs::write(dir.join(format!("f{i:05}.txt")), format!("file {i}\nsome content\n")).expect("write file");
    }
    // Build output and the plain-git worktrees are not the main checkout's files.
    repo.write(".gitignore", "target/\n/.bench-wt/\n");
    repo.commit_all("many small files");
    repo
}

fn place(id: &str) -> PathBuf {
    PathBuf::from(".worktrees").join(format!("bench-{id}"))
}

/// A task's work: one existing file changed, one added, a build artefact git ignores.
fn work(wt: &Path, id: &str) {
    std::fs::write(wt.join("src/d000/f00000.txt"), format!("changed by {id}\n")).expect("edit");
    std::fs::write(wt.join(format!("added-{id}.txt")), "new\n").expect("add");
    std::fs::create_dir_all(wt.join("target")).expect("mkdir target");
    std::fs::write(wt.join("target/artefact.o"), "built\n").expect("artefact");
}

/// The task's files into the main checkout, committed (what copy-back does, without its checks).
fn land(repo: &TempRepo, wt: &Path, id: &str) {
    for rel in ["src/d000/f00000.txt".to_string(), format!("added-{id}.txt")] {
        std::fs::copy(wt.join(&rel), repo.join(&rel)).expect("copy back");
    }
    repo.commit_all(&format!("land {id}"));
}

fn landed(repo: &TempRepo, wt: Worktree) -> worktree::Landed {
    // `target/` is ignored, so only the two files count.
    match worktree::check_landed(repo.path(), wt, &[], &HashSet::new()).expect("check landed") {
        Ok(landed) => landed,
        Err(left) => panic!("not landed: {left:?}"),
    }
}

/// A taken worktree is main's HEAD, exactly: nothing of the task before.
fn check_clean(repo: &TempRepo, wt: &Worktree) {
    let head = repo.git(&["rev-parse", "HEAD"]);
    let out = std::process::Command::new("git")
        .args(["status", "--porcelain", "--ignored", "--untracked-files=all"])
        .current_dir(&wt.path)
        .output()
        .expect("git status");
    assert!(out.status.success() && out.stdout.is_empty(), "{} is not clean: {}", wt.path.display(), String::from_utf8_lossy(&out.stdout));
    assert_eq!(wt.fork, head.trim(), "not at main's HEAD");
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn min(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(0.0, f64::max)
}
