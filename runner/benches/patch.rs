//! Benchmark of the patch engine on real code, beside `git apply` and GNU `patch`.
//!
//! Run by `scripts/bench-patch`, which downloads pairs of consecutive published versions of
//! well-known crates and lists them in the file named by `PJ_BENCH_PAIRS` (lines of
//! `label old_dir new_dir max_files`). For every `.rs` file that changed between the two
//! versions, the clean `diff -u` is taken and model-style corruptions of it are derived; each
//! engine gets each case in a fresh directory holding the old file, and the result is compared
//! with the real new version.
//!
//! What is timed: for this engine, `parse` + `apply` in this process (reading and writing the
//! file included); for the other tools, the whole process run, which includes process start.
//! A benchmark rather than a test, so it is `#[ignore]`d and reached through `--ignored`.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use pj_runner::patch::{self, ApplyOptions, Step};

#[test]
#[ignore = "benchmark: run it with scripts/bench-patch"]
fn bench_patch() {
    if let Err(e) = run() {
        panic!("benchmark failed: {e}");
    }
}

/// The corruptions, in table order.
const KINDS: &[&str] = &[
    "clean",
    "line numbers off",
    "@@ @@ (no numbers)",
    "wrong counts",
    "no a/ b/ prefixes",
    "trailing whitespace drift",
    "indentation shifted",
    "one context line missing",
    "prose and fences",
    "CRLF target file",
    "search/replace blocks",
    "typical reply (no prefixes, @@ @@, fenced)",
];

const TOOLS: &[&str] = &[
    "pj-runner patch engine",
    "git apply",
    "git apply --recount --ignore-whitespace",
    "patch -p1 --fuzz=3",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Verdict {
    Correct,
    Refused,
    Wrong,
    /// Reported failure but changed the file anyway (GNU patch applies hunk by hunk).
    Partial,
}

struct Case {
    kind: usize,
    rel: String,
    patch: String,
    old: Vec<u8>,
    expected: Vec<u8>,
}

#[derive(Default)]
struct Tally {
    verdicts: BTreeMap<Verdict, usize>,
    by_kind: BTreeMap<usize, BTreeMap<Verdict, usize>>,
    millis: Vec<f64>,
}

impl Tally {
    fn add(&mut self, kind: usize, verdict: Verdict, ms: f64) {
        *self.verdicts.entry(verdict).or_default() += 1;
        *self
            .by_kind
            .entry(kind)
            .or_default()
            .entry(verdict)
            .or_default() += 1;
        self.millis.push(ms);
    }

    fn count(&self, v: Verdict) -> usize {
        self.verdicts.get(&v).copied().unwrap_or(0)
    }

    fn median(&mut self) -> f64 {
        self.millis.sort_by(f64::total_cmp);
        self.millis
            .get(self.millis.len() / 2)
            .copied()
            .unwrap_or(0.0)
    }
}

fn run() -> Result<(), String> {
    let pairs_file = std::env::var("PJ_BENCH_PAIRS")
        .map_err(|_| "set PJ_BENCH_PAIRS (scripts/bench-patch does)".to_string())?;
    let pairs = fs::read_to_string(&pairs_file).map_err(|e| format!("{pairs_file}: {e}"))?;
    let mut cases = Vec::new();
    let mut files = 0;
    let mut skipped = 0;
    let mut sources = Vec::new();
    for line in pairs.lines().filter(|l| !l.trim().is_empty()) {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let [label, old_dir, new_dir, max] = parts[..] else {
            return Err(format!("bad line in {pairs_file}: {line}"));
        };
        let max: usize = max.parse().map_err(|_| format!("bad max in: {line}"))?;
        let changed = changed_files(Path::new(old_dir), Path::new(new_dir))?;
        let picked = spread(&changed, max);
        sources.push(format!(
            "{label} ({} of {} changed files)",
            picked.len(),
            changed.len()
        ));
        for rel in picked {
            let old = fs::read(Path::new(old_dir).join(&rel)).map_err(|e| e.to_string())?;
            let new = fs::read(Path::new(new_dir).join(&rel)).map_err(|e| e.to_string())?;
            if std::str::from_utf8(&old).is_err()
                || std::str::from_utf8(&new).is_err()
                || old.len() > 1 << 20
                || new.len() > 1 << 20
            {
                skipped += 1;
                continue;
            }
            let Some(diff) = unified_diff(Path::new(old_dir), Path::new(new_dir), &rel)? else {
                skipped += 1;
                continue;
            };
            files += 1;
            cases.extend(variants(files, &rel, &diff, &old, &new));
        }
    }

    let mut tallies: Vec<Tally> = TOOLS.iter().map(|_| Tally::default()).collect();
    let mut steps: BTreeMap<Step, usize> = BTreeMap::new();
    let mut wrong_examples = Vec::new();
    let scratch = tempfile::tempdir().map_err(|e| e.to_string())?;
    // PJ_BENCH_TOOLS=0,3 runs only those columns (0 is this engine), for quicker looks.
    let only: Option<Vec<usize>> = std::env::var("PJ_BENCH_TOOLS")
        .ok()
        .map(|v| v.split(',').filter_map(|t| t.trim().parse().ok()).collect());
    for (i, case) in cases.iter().enumerate() {
        for (t, tally) in tallies.iter_mut().enumerate() {
            if !only.as_ref().is_none_or(|o| o.contains(&t)) {
                continue;
            }
            let dir = scratch.path().join(format!("c{i}-{t}"));
            let target = dir.join(&case.rel);
            fs::create_dir_all(target.parent().unwrap_or(&dir)).map_err(|e| e.to_string())?;
            fs::write(&target, &case.old).map_err(|e| e.to_string())?;
            let patch_file = scratch.path().join(format!("c{i}-{t}.patch"));
            fs::write(&patch_file, &case.patch).map_err(|e| e.to_string())?;
            let (ok, ms) = match t {
                0 => {
                    let start = Instant::now();
                    let report = patch::parse(&case.patch)
                        .map(|p| patch::apply(&dir, &p, &ApplyOptions::default()));
                    let ms = start.elapsed().as_secs_f64() * 1000.0;
                    let ok = report.as_ref().is_ok_and(|r| r.applied);
                    if let Ok(r) = &report {
                        for h in &r.hunks {
                            if let Some(step) = h.step {
                                *steps.entry(step).or_default() += 1;
                            }
                        }
                    }
                    (ok, ms)
                }
                1 => tool(&dir, &scratch, "git", &["apply"], &patch_file)?,
                2 => tool(
                    &dir,
                    &scratch,
                    "git",
                    &["apply", "--recount", "--ignore-whitespace"],
                    &patch_file,
                )?,
                _ => tool(
                    &dir,
                    &scratch,
                    "patch",
                    &[
                        "-p1",
                        "--fuzz=3",
                        "--batch",
                        "--quiet",
                        "--no-backup-if-mismatch",
                        "--reject-file=-",
                        "-i",
                    ],
                    &patch_file,
                )?,
            };
            let after = fs::read(&target).ok();
            let verdict = match (ok, after.as_deref() == Some(&case.expected[..])) {
                (true, true) => Verdict::Correct,
                (true, false) => Verdict::Wrong,
                (false, _) if after.as_deref() == Some(&case.old[..]) => Verdict::Refused,
                (false, _) => Verdict::Partial,
            };
            if t == 0 && verdict == Verdict::Wrong && wrong_examples.len() < 5 {
                wrong_examples.push(format!("{} [{}]", case.rel, KINDS[case.kind]));
            }
            if t == 0
                && verdict != Verdict::Correct
                && let Ok(dump) = std::env::var("PJ_BENCH_DUMP")
            {
                // Everything needed to replay a case that did not come out right.
                let d = Path::new(&dump).join(format!("{i}-{verdict:?}"));
                fs::create_dir_all(&d).map_err(|e| e.to_string())?;
                fs::write(d.join("old"), &case.old).map_err(|e| e.to_string())?;
                fs::write(d.join("expected"), &case.expected).map_err(|e| e.to_string())?;
                fs::write(d.join("patch"), &case.patch).map_err(|e| e.to_string())?;
                fs::write(d.join("rel"), &case.rel).map_err(|e| e.to_string())?;
                if let Some(after) = &after {
                    fs::write(d.join("actual"), after).map_err(|e| e.to_string())?;
                }
            }
            tally.add(case.kind, verdict, ms);
            let _ = fs::remove_dir_all(&dir);
            let _ = fs::remove_file(&patch_file);
        }
    }

    let mut out = String::new();
    out.push_str(&format!(
        "Sources: {}.\n{} changed files ({} skipped: not UTF-8, over 1 MiB or no diff), {} cases.\n\n",
        sources.join(", "),
        files,
        skipped,
        cases.len()
    ));
    out.push_str("| engine | cases | correct | refused | wrong | partial | median ms/patch |\n");
    out.push_str("| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for (name, tally) in TOOLS.iter().zip(tallies.iter_mut()) {
        let n = tally.millis.len();
        let pct = |v: usize| 100.0 * v as f64 / n.max(1) as f64;
        let correct = tally.count(Verdict::Correct);
        out.push_str(&format!(
            "| {name} | {n} | {correct} ({:.1}%) | {} ({:.1}%) | {} | {} | {:.2} |\n",
            pct(correct),
            tally.count(Verdict::Refused),
            pct(tally.count(Verdict::Refused)),
            tally.count(Verdict::Wrong),
            tally.count(Verdict::Partial),
            tally.median()
        ));
    }
    out.push_str("\nCorrect / wrong (+ partial) per kind of case:\n\n| case kind | n |");
    for name in TOOLS {
        out.push_str(&format!(" {name} |"));
    }
    out.push_str("\n| --- | ---: |");
    for _ in TOOLS {
        out.push_str(" ---: |");
    }
    out.push('\n');
    for (k, kind) in KINDS.iter().enumerate() {
        let n: usize = tallies[0].by_kind.get(&k).map_or(0, |m| m.values().sum());
        out.push_str(&format!("| {kind} | {n} |"));
        for tally in &tallies {
            let get = |v| {
                tally
                    .by_kind
                    .get(&k)
                    .and_then(|m| m.get(&v))
                    .copied()
                    .unwrap_or(0)
            };
            out.push_str(&format!(
                " {} / {} |",
                get(Verdict::Correct),
                get(Verdict::Wrong) + get(Verdict::Partial)
            ));
        }
        out.push('\n');
    }
    out.push_str("\nLadder steps of the hunks this engine placed:");
    for (step, n) in &steps {
        out.push_str(&format!(" {} {n};", step.name()));
    }
    out.push('\n');
    if !wrong_examples.is_empty() {
        out.push_str(&format!(
            "\nWrongly applied by this engine: {}\n",
            wrong_examples.join(", ")
        ));
    }
    print!("{out}");
    if let Ok(path) = std::env::var("PJ_BENCH_OUT") {
        fs::write(&path, &out).map_err(|e| format!("{path}: {e}"))?;
    }
    Ok(())
}

/// Runs an outside tool on one case; returns whether it reported success and the wall time.
fn tool(
    dir: &Path,
    scratch: &tempfile::TempDir,
    program: &str,
    args: &[&str],
    patch_file: &Path,
) -> Result<(bool, f64), String> {
    let start = Instant::now();
    let status = Command::new(program)
        .args(args)
        .arg(patch_file)
        .current_dir(dir)
        // Keep git from finding a repository above the scratch directory.
        .env("GIT_CEILING_DIRECTORIES", scratch.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    Ok((status.success(), start.elapsed().as_secs_f64() * 1000.0))
}

/// `.rs` files present in both trees whose content differs, sorted.
fn changed_files(old: &Path, new: &Path) -> Result<Vec<String>, String> {
    let mut all = Vec::new();
    walk(old, old, &mut all)?;
    all.sort();
    Ok(all
        .into_iter()
        .filter(|rel| {
            let (a, b) = (fs::read(old.join(rel)), fs::read(new.join(rel)));
            matches!((a, b), (Ok(a), Ok(b)) if a != b)
        })
        .collect())
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), String> {
    let entries = fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| e.to_string())?;
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| e.to_string())?;
        if kind.is_dir() {
            walk(root, &path, out)?;
        } else if kind.is_file() && path.extension().is_some_and(|e| e == "rs") {
            let rel = path.strip_prefix(root).map_err(|e| e.to_string())?;
            out.push(rel.to_string_lossy().into_owned());
        }
    }
    Ok(())
}

/// At most `max` items, evenly spread over the list.
fn spread(items: &[String], max: usize) -> Vec<String> {
    if items.len() <= max {
        return items.to_vec();
    }
    (0..max)
        .map(|i| items[i * items.len() / max].clone())
        .collect()
}

/// A clean unified diff of one file, as hunks.
struct Diff {
    hunks: Vec<DiffHunk>,
}

struct DiffHunk {
    old_start: usize,
    old_count: usize,
    new_start: usize,
    new_count: usize,
    /// Body lines with their markers (` `, `-`, `+`, `\`).
    body: Vec<String>,
}

fn unified_diff(old_dir: &Path, new_dir: &Path, rel: &str) -> Result<Option<Diff>, String> {
    let output = Command::new("diff")
        .arg("-u")
        .arg("--label")
        .arg(format!("a/{rel}"))
        .arg("--label")
        .arg(format!("b/{rel}"))
        .arg(old_dir.join(rel))
        .arg(new_dir.join(rel))
        .output()
        .map_err(|e| format!("cannot run diff: {e}"))?;
    if output.status.code() != Some(1) {
        return Ok(None);
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut hunks: Vec<DiffHunk> = Vec::new();
    for line in text.lines().skip(2) {
        if line.starts_with("@@") {
            let nums: Vec<usize> = line
                .split(|c: char| !c.is_ascii_digit())
                .filter(|s| !s.is_empty())
                .filter_map(|s| s.parse().ok())
                .collect();
            // `diff -u` leaves a count of 1 out.
            let (os, oc, ns, nc) = match line.split_whitespace().collect::<Vec<_>>()[..] {
                [_, old, new, ..] => {
                    let count = |s: &str| if s.contains(',') { None } else { Some(1) };
                    match (count(old), count(new), &nums[..]) {
                        (None, None, [a, b, c, d, ..]) => (*a, *b, *c, *d),
                        (Some(1), None, [a, c, d, ..]) => (*a, 1, *c, *d),
                        (None, Some(1), [a, b, c, ..]) => (*a, *b, *c, 1),
                        (Some(1), Some(1), [a, c, ..]) => (*a, 1, *c, 1),
                        _ => return Err(format!("cannot read hunk header {line}")),
                    }
                }
                _ => return Err(format!("cannot read hunk header {line}")),
            };
            hunks.push(DiffHunk {
                old_start: os,
                old_count: oc,
                new_start: ns,
                new_count: nc,
                body: Vec::new(),
            });
        } else if let Some(h) = hunks.last_mut() {
            h.body.push(line.to_string());
        }
    }
    Ok(Some(Diff { hunks }))
}

/// A small deterministic generator, so that every run measures the same cases.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn header(h: &DiffHunk) -> String {
    format!(
        "@@ -{},{} +{},{} @@",
        h.old_start, h.old_count, h.new_start, h.new_count
    )
}

fn render(
    rel: &str,
    prefixes: bool,
    hunks: &[DiffHunk],
    head: &dyn Fn(&DiffHunk) -> String,
) -> String {
    let mut s = if prefixes {
        format!("--- a/{rel}\n+++ b/{rel}\n")
    } else {
        format!("--- {rel}\n+++ {rel}\n")
    };
    for h in hunks {
        s.push_str(&head(h));
        s.push('\n');
        for line in &h.body {
            s.push_str(line);
            s.push('\n');
        }
    }
    s
}

fn map_body(diff: &Diff, f: &dyn Fn(usize, &str) -> String) -> Vec<DiffHunk> {
    diff.hunks
        .iter()
        .map(|h| DiffHunk {
            body: h.body.iter().enumerate().map(|(i, l)| f(i, l)).collect(),
            ..*h
        })
        .collect()
}

impl Clone for DiffHunk {
    fn clone(&self) -> Self {
        DiffHunk {
            body: self.body.clone(),
            ..*self
        }
    }
}

fn crlf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 20);
    for &b in bytes {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

fn variants(seed: usize, rel: &str, diff: &Diff, old: &[u8], new: &[u8]) -> Vec<Case> {
    let mut rng = Rng::new(seed as u64 + 1);
    let clean = render(rel, true, &diff.hunks, &header);
    let case = |kind: usize, patch: String| Case {
        kind,
        rel: rel.to_string(),
        patch,
        old: old.to_vec(),
        expected: new.to_vec(),
    };
    let mut out = vec![case(0, clean.clone())];

    let shifted: Vec<DiffHunk> = diff
        .hunks
        .iter()
        .map(|h| {
            let delta = (3 + rng.below(28)) as isize * if rng.below(2) == 0 { 1 } else { -1 };
            let at = |s: usize| (s as isize + delta).max(1) as usize;
            DiffHunk {
                old_start: at(h.old_start),
                new_start: at(h.new_start),
                ..h.clone()
            }
        })
        .collect();
    out.push(case(1, render(rel, true, &shifted, &header)));

    out.push(case(2, render(rel, true, &diff.hunks, &|_| "@@ @@".into())));

    let recounted: Vec<DiffHunk> = diff
        .hunks
        .iter()
        .map(|h| {
            let mut off = || [-2isize, -1, 1, 2][rng.below(4)];
            let (a, b) = (off(), off());
            DiffHunk {
                old_count: (h.old_count as isize + a).max(0) as usize,
                new_count: (h.new_count as isize + b).max(0) as usize,
                ..h.clone()
            }
        })
        .collect();
    out.push(case(3, render(rel, true, &recounted, &header)));

    out.push(case(4, render(rel, false, &diff.hunks, &header)));

    let drift = map_body(diff, &|i, l| match l.chars().next() {
        Some(' ') if i % 2 == 1 => format!("{} ", l.trim_end()),
        Some(' ') | Some('-') => {
            let t = l.trim_end();
            if t.is_empty() { " ".into() } else { t.into() }
        }
        _ => l.to_string(),
    });
    out.push(case(5, render(rel, true, &drift, &header)));

    let indented = map_body(diff, &|_, l| match l.split_at_checked(1) {
        Some((m @ (" " | "-" | "+"), rest)) if !rest.trim().is_empty() => {
            format!("{m}    {rest}")
        }
        _ => l.to_string(),
    });
    out.push(case(6, render(rel, true, &indented, &header)));

    let with_context: Vec<usize> = diff
        .hunks
        .iter()
        .enumerate()
        .filter(|(_, h)| h.body.iter().any(|l| l.starts_with(' ')))
        .map(|(i, _)| i)
        .collect();
    if !with_context.is_empty() {
        let pick = with_context[rng.below(with_context.len())];
        let mut hunks: Vec<DiffHunk> = diff.hunks.to_vec();
        let ctx: Vec<usize> = hunks[pick]
            .body
            .iter()
            .enumerate()
            .filter(|(_, l)| l.starts_with(' '))
            .map(|(i, _)| i)
            .collect();
        let drop = ctx[rng.below(ctx.len())];
        hunks[pick].body.remove(drop);
        out.push(case(7, render(rel, true, &hunks, &header)));
    }

    out.push(case(
        8,
        format!(
            "Here is the change to `{rel}`:\n\n```diff\n{clean}```\n\nThis updates the code as \
             requested; let me know if anything else is needed.\n"
        ),
    ));

    if !old.windows(2).any(|w| w == b"\r\n") {
        out.push(Case {
            kind: 9,
            rel: rel.to_string(),
            patch: clean.clone(),
            old: crlf(old),
            expected: crlf(new),
        });
    }

    // Blocks cannot say "no newline at end of file", so such diffs have no block form.
    if !diff
        .hunks
        .iter()
        .any(|h| h.body.iter().any(|l| l.starts_with('\\')))
    {
        let mut s = String::from("I'll make these edits.\n\n");
        for h in &diff.hunks {
            s.push_str(&format!("{rel}\n```rust\n<<<<<<< SEARCH\n"));
            for l in h.body.iter().filter(|l| !l.starts_with('+')) {
                s.push_str(l.get(1..).unwrap_or(""));
                s.push('\n');
            }
            s.push_str("=======\n");
            for l in h.body.iter().filter(|l| !l.starts_with('-')) {
                s.push_str(l.get(1..).unwrap_or(""));
                s.push('\n');
            }
            s.push_str(">>>>>>> REPLACE\n```\n\n");
        }
        out.push(case(10, s));
    }

    out.push(case(
        11,
        format!(
            "Sure! Update `{rel}` like this:\n\n```diff\n{}```\n",
            render(rel, false, &diff.hunks, &|_| "@@ @@".into())
        ),
    ));
    out
}
