//! Measures the context picker against history: for recent commits of a git repository, the commit
//! message is the task and the files the commit changed are the answer. Run it through
//! `scripts/bench-context`; `runner/CONTEXT.md` explains the method and keeps the results.
//!
//! ```text
//! bench_context REPO [N]             recall over the last N qualifying commits (default 200)
//! bench_context --time DIR [TASK]    time the picker on a working tree (no git needed)
//! bench_context --show DIR TASK       print the context picked for TASK
//! ```

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use pj_runner::context::{
    ContextOptions, RepoSnapshot, build_context, estimate_tokens, scan_repository, select_context,
};

/// Commits that touch more files than this are refactors or releases, not tasks.
const MAX_FILES_PER_COMMIT: usize = 20;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--time") => {
            let dir = args
                .get(1)
                .context("usage: bench_context --time DIR [TASK]")?;
            let task = args.get(2).map_or(
                "fix the error handling when the configuration file is missing",
                |t| t,
            );
            time_tree(Path::new(dir), task)
        }
        Some("--show") => {
            let (Some(dir), Some(task)) = (args.get(1), args.get(2)) else {
                bail!("usage: bench_context --show DIR TASK");
            };
            let ctx = build_context(Path::new(dir), task, &ContextOptions::default())?;
            print!("{}", ctx.render());
            for (rank, r) in ctx.ranking.iter().take(15).enumerate() {
                eprintln!("{rank:>3} {:>8.2} {}", r.score, r.path);
            }
            eprintln!("{} of {} tokens", ctx.token_estimate, ctx.token_budget);
            Ok(())
        }
        Some(repo) if !repo.starts_with('-') => {
            let n = match args.get(1) {
                Some(n) => n
                    .parse()
                    .with_context(|| format!("N must be a number, got {n}"))?,
                None => 200,
            };
            recall(Path::new(repo), n)
        }
        _ => bail!("usage: bench_context REPO [N] | --time DIR [TASK] | --show DIR TASK"),
    }
}

/// Times scan and selection on one working tree, five runs.
fn time_tree(dir: &Path, task: &str) -> Result<()> {
    let opts = ContextOptions::default();
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..5 {
        let start = Instant::now();
        let ctx = build_context(dir, task, &opts)?;
        times.push(start.elapsed());
        last = Some(ctx);
    }
    let ctx = last.context("no run")?;
    times.sort();
    println!(
        "{}: {} files, {} whole, {} outlined, {} tokens; build_context min {:.0} ms, median {:.0} ms, max {:.0} ms",
        dir.display(),
        ctx.file_count,
        ctx.files.len(),
        ctx.outline.len(),
        ctx.token_estimate,
        ms(times[0]),
        ms(times[times.len() / 2]),
        ms(times[times.len() - 1]),
    );
    println!("skipped: {:?}", ctx.skipped);
    let start = Instant::now();
    let snapshot = scan_repository(dir, &opts)?;
    let scanned = start.elapsed();
    let start = Instant::now();
    select_context(&snapshot, task, &opts);
    println!(
        "of which scan {:.0} ms, select {:.0} ms",
        ms(scanned),
        ms(start.elapsed())
    );
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One commit used as a task.
struct Case {
    commit: String,
    parent: String,
    task: String,
    answer: Vec<String>,
}

fn git(repo: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .output()
        .with_context(|| format!("running git {}", args.join(" ")))?;
    if !out.status.success() {
        bail!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The task text of a commit: its message without trailers (`Signed-off-by:`, `PR-URL:`, ...),
/// which name people and links, not code.
fn task_text(message: &str) -> String {
    message
        .lines()
        .filter(|line| {
            let key = line.split(':').next().unwrap_or("");
            let trailer = line.contains(": ")
                && !key.is_empty()
                && !key.contains(' ')
                && (key.ends_with("-by") || key.contains('-') || key == "Closes" || key == "Fixes");
            !trailer
        })
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

fn lock_file(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    matches!(
        name,
        "Cargo.lock"
            | "package-lock.json"
            | "yarn.lock"
            | "pnpm-lock.yaml"
            | "poetry.lock"
            | "go.sum"
            | "Gemfile.lock"
            | "composer.lock"
    )
}

/// The last `n` non-merge commits that changed 1 to 20 files, at least one of them a text file
/// that existed in the parent (the answer; lock files, regenerated by tools, are left out).
fn cases(repo: &Path, n: usize) -> Result<Vec<Case>> {
    let mut out = Vec::new();
    let revs = git(
        repo,
        &["rev-list", "--no-merges", "--max-count=5000", "HEAD"],
    )?;
    for commit in revs.lines() {
        if out.len() >= n {
            break;
        }
        let parents = git(repo, &["rev-list", "--parents", "-n", "1", commit])?;
        let Some(parent) = parents.split_whitespace().nth(1) else {
            continue;
        };
        let raw = git(
            repo,
            &[
                "diff-tree",
                "-r",
                "--no-renames",
                "--raw",
                "--numstat",
                "--no-commit-id",
                commit,
            ],
        )?;
        let mut status: HashMap<String, char> = HashMap::new();
        let mut text: HashSet<String> = HashSet::new();
        for line in raw.lines() {
            if let Some(rest) = line.strip_prefix(':') {
                // `:old_mode new_mode old_sha new_sha STATUS\tpath`
                let Some((meta, path)) = rest.split_once('\t') else {
                    continue;
                };
                let kind = meta
                    .split_whitespace()
                    .nth(4)
                    .and_then(|s| s.chars().next());
                if let Some(kind) = kind {
                    status.insert(path.to_string(), kind);
                }
            } else {
                let mut parts = line.splitn(3, '\t');
                let (Some(added), Some(_), Some(path)) = (parts.next(), parts.next(), parts.next())
                else {
                    continue;
                };
                if added != "-" {
                    text.insert(path.to_string());
                }
            }
        }
        if status.is_empty() || status.len() > MAX_FILES_PER_COMMIT {
            continue;
        }
        let mut answer: Vec<String> = status
            .iter()
            .filter(|(path, kind)| {
                matches!(kind, 'M' | 'D' | 'T')
                    && text.contains(*path)
                    && !lock_file(path)
                    && !path.starts_with('"')
            })
            .map(|(path, _)| path.clone())
            .collect();
        if answer.is_empty() {
            continue;
        }
        answer.sort();
        let message = git(repo, &["log", "-1", "--format=%B", commit])?;
        let task = task_text(&message);
        if task.is_empty() {
            continue;
        }
        out.push(Case {
            commit: commit.to_string(),
            parent: parent.to_string(),
            task,
            answer,
        });
    }
    Ok(out)
}

/// Replaces the contents of `dir` with the tree of `rev`, read from the object store: the user's
/// repository, index and working tree are left alone.
fn export(repo: &Path, rev: &str, dir: &Path) -> Result<()> {
    if dir.exists() {
        fs::remove_dir_all(dir).with_context(|| format!("emptying {}", dir.display()))?;
    }
    fs::create_dir_all(dir)?;
    let mut archive = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["archive", "--format=tar", rev])
        .stdout(Stdio::piped())
        .spawn()
        .context("starting git archive")?;
    let stdout = archive.stdout.take().context("git archive has no stdout")?;
    let tar = Command::new("tar")
        .arg("-x")
        .arg("-C")
        .arg(dir)
        .stdin(stdout)
        .status()
        .context("running tar")?;
    let archived = archive.wait()?;
    if !tar.success() || !archived.success() {
        bail!("exporting {rev} failed");
    }
    Ok(())
}

/// Plain BM25 over words of file contents (no path terms, no identifier splitting, no stemming,
/// no boosts), packing whole files in rank order into `budget`: what the picker is measured
/// against.
fn baseline(snapshot: &RepoSnapshot, task: &str, budget: usize) -> HashSet<String> {
    const STOP: &[&str] = &[
        "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "has", "have", "in", "is",
        "it", "its", "of", "on", "or", "that", "the", "this", "to", "was", "were", "will", "with",
    ];
    let words = |text: &str| -> Vec<String> {
        text.split(|c: char| !c.is_alphanumeric() && c != '_')
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect()
    };
    let query: HashSet<String> = words(task)
        .into_iter()
        .filter(|w| !STOP.contains(&w.as_str()))
        .collect();
    let files = snapshot.files();
    let mut lens = Vec::with_capacity(files.len());
    let mut tfs: Vec<HashMap<&str, f64>> = Vec::with_capacity(files.len());
    let mut df: HashMap<&str, f64> = HashMap::new();
    for file in files {
        let doc = words(file.text());
        lens.push(doc.len() as f64);
        let mut tf: HashMap<&str, f64> = HashMap::new();
        for w in &doc {
            if let Some(q) = query.get(w) {
                *tf.entry(q.as_str()).or_default() += 1.0;
            }
        }
        for term in tf.keys() {
            *df.entry(term).or_default() += 1.0;
        }
        tfs.push(tf);
    }
    let n = files.len().max(1) as f64;
    let avg = (lens.iter().sum::<f64>() / n).max(1.0);
    let (k1, b) = (1.2, 0.75);
    let mut scored: Vec<(f64, usize)> = tfs
        .iter()
        .enumerate()
        .map(|(i, tf)| {
            let score = tf
                .iter()
                .map(|(term, &f)| {
                    let d = df.get(term).copied().unwrap_or(0.0);
                    let idf = (1.0 + (n - d + 0.5) / (d + 0.5)).ln();
                    idf * f * (k1 + 1.0) / (f + k1 * (1.0 - b + b * lens[i] / avg))
                })
                .sum();
            (score, i)
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut used = 0;
    let mut chosen = HashSet::new();
    for (score, i) in scored {
        if score <= 0.0 {
            break;
        }
        let file = &files[i];
        let cost = estimate_tokens(&format!(
            "### {}\n\n```\n{}\n```\n\n",
            file.path(),
            file.text()
        ));
        if used + cost <= budget {
            used += cost;
            chosen.insert(file.path().to_string());
        }
    }
    chosen
}

fn display_name(repo: &Path) -> String {
    let canonical = repo.canonicalize().unwrap_or_else(|_| repo.to_path_buf());
    let mut name = canonical
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name == "repo" || name == ".git" || name.ends_with(".git") && name.len() == 4 {
        if let Some(parent) = canonical.parent().and_then(Path::file_name) {
            name = parent.to_string_lossy().into_owned();
        }
    }
    name.replace('+', "/")
}

fn recall(repo: &Path, n: usize) -> Result<()> {
    let cases = cases(repo, n)?;
    if cases.is_empty() {
        bail!("no qualifying commits in {}", repo.display());
    }
    let opts = ContextOptions::default();
    let work: PathBuf = std::env::temp_dir().join(format!("bench-context-{}", std::process::id()));
    let verbose = std::env::var_os("BENCH_VERBOSE").is_some();
    let (mut whole, mut partial, mut base) = (0.0, 0.0, 0.0);
    let mut times = Vec::new();
    let mut file_counts = 0usize;
    for (i, case) in cases.iter().enumerate() {
        export(repo, &case.parent, &work)?;
        let start = Instant::now();
        let snapshot = scan_repository(&work, &opts)?;
        let ctx = select_context(&snapshot, &case.task, &opts);
        times.push(start.elapsed());
        file_counts += ctx.file_count;
        let total = case.answer.len() as f64;
        let hit_whole = case.answer.iter().filter(|p| ctx.includes_whole(p)).count() as f64;
        let hit_outline = case
            .answer
            .iter()
            .filter(|p| ctx.includes_whole(p) || ctx.includes_outline(p))
            .count() as f64;
        let chosen = baseline(&snapshot, &case.task, opts.token_budget);
        let hit_base = case.answer.iter().filter(|p| chosen.contains(*p)).count() as f64;
        whole += hit_whole / total;
        partial += hit_outline / total;
        base += hit_base / total;
        if verbose {
            let subject = case.task.lines().next().unwrap_or("");
            eprintln!(
                "{} {:.2} {:.2} {:.2} {:>5.0}ms {subject:.70}",
                &case.commit[..10],
                hit_whole / total,
                hit_outline / total,
                hit_base / total,
                ms(start.elapsed()),
            );
            for path in &case.answer {
                let rank = ctx.ranking.iter().position(|r| &r.path == path);
                let mark = if ctx.includes_whole(path) {
                    "whole"
                } else if ctx.includes_outline(path) {
                    "outline"
                } else {
                    "missed"
                };
                eprintln!("    {mark:<7} rank {rank:?} {path}");
            }
        } else {
            eprint!("\r{}/{}", i + 1, cases.len());
        }
    }
    eprintln!();
    if work.exists() {
        fs::remove_dir_all(&work)?;
    }
    let count = cases.len() as f64;
    times.sort();
    let mean = times.iter().map(|t| ms(*t)).sum::<f64>() / count;
    let median = ms(times[times.len() / 2]);
    println!(
        "| repo | commits | mean files | picker recall (whole) | picker recall (whole + outline) | baseline recall | mean ms | median ms |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    println!(
        "| {} | {} | {:.0} | {:.3} | {:.3} | {:.3} | {:.0} | {:.0} |",
        display_name(repo),
        cases.len(),
        file_counts as f64 / count,
        whole / count,
        partial / count,
        base / count,
        mean,
        median
    );
    Ok(())
}
