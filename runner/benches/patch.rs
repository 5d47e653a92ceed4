//! Benchmark of the patch engine on real code, beside `git apply` and GNU `patch`.
//!
//! Run by `scripts/bench-patch`, which downloads pairs of consecutive published versions of
//! well-known packages (crates, PyPI sdists, npm tarballs) and lists them in the file named by
//! `PJ_BENCH_PAIRS` (lines of `label old_dir new_dir max_files extensions`). For every source
//! file with one of the extensions that changed between the two versions (at most `max_files`
//! per language and pair, evenly spread), the clean `diff -u` is taken and model-style
//! corruptions of it are derived: most should apply, some must be refused. Each engine gets
//! each case in a fresh directory holding the old file, and the result is compared with the
//! real new version (or, for a case that must be refused, with the old one).
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

/// A kind of case: a corruption of the clean diff, and whether the result should apply.
struct Kind {
    name: &'static str,
    /// Applying it anywhere would be a guess or a wrong edit: only a refusal is right.
    must_refuse: bool,
}

const fn apply(name: &'static str) -> Kind {
    Kind {
        name,
        must_refuse: false,
    }
}

const fn refuse(name: &'static str) -> Kind {
    Kind {
        name,
        must_refuse: true,
    }
}

/// The kinds, in table order; `variants` builds them by these indexes.
const KINDS: &[Kind] = &[
    apply("clean"),
    apply("line numbers off (each hunk by ±3..30)"),
    apply("`@@ @@` (no numbers)"),
    apply("wrong counts (±1..2 each)"),
    apply("no `a/` `b/` prefixes"),
    apply("trailing whitespace drift (stripped, and added to every other context line)"),
    apply("indentation shifted (+4 spaces on every line of every hunk)"),
    apply("one context line missing (a random one of a random hunk; header unchanged)"),
    apply("prose and fences around the diff"),
    apply("CRLF target file, LF diff"),
    apply("search/replace blocks (one per hunk)"),
    apply("typical reply: no prefixes, `@@ @@`, fenced with prose"),
    apply("hunks out of order (reversed; numbers kept)"),
    apply("`---` line only (no `+++`)"),
    apply("whitespace drift in context lines (tabs/spaces, JSON re-indented, trailing spaces)"),
    apply("context elided by a bare `...` line"),
    apply("second fenced block without a file header"),
    refuse("a removed line that is not in the file"),
    refuse("every hunk's lines twice in the file, `@@ @@`"),
    refuse("a hunk repeated"),
];

const TOOLS: &[&str] = &[
    "pj-runner patch engine",
    "git apply",
    "git apply --recount --ignore-whitespace",
    "patch -p1 --fuzz=3",
];

/// Languages, by file extension, in table order.
const LANGUAGES: &[(&str, &[&str])] = &[
    ("Rust", &["rs"]),
    ("Python", &["py", "pyi"]),
    (
        "TypeScript/JavaScript",
        &["ts", "tsx", "mts", "cts", "js", "mjs", "cjs", "jsx"],
    ),
    ("JSON", &["json"]),
    ("Markdown", &["md", "markdown"]),
    ("C", &["c", "h"]),
];

fn language_of(rel: &str) -> usize {
    let ext = Path::new(rel)
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("");
    LANGUAGES
        .iter()
        .position(|(_, exts)| exts.contains(&ext))
        .unwrap_or(LANGUAGES.len() - 1)
}

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
    language: usize,
    rel: String,
    patch: String,
    old: Vec<u8>,
    /// The right result; `None` when the case must be refused.
    expected: Option<Vec<u8>>,
}

/// Verdicts of one tool, by kind and by language.
#[derive(Default)]
struct Tally {
    /// (must_refuse, verdict) -> count
    verdicts: BTreeMap<(bool, Verdict), usize>,
    by_kind: BTreeMap<usize, BTreeMap<Verdict, usize>>,
    /// (language, must_refuse) -> verdicts
    by_language: BTreeMap<(usize, bool), BTreeMap<Verdict, usize>>,
    /// (kind, language) -> verdicts
    by_kind_language: BTreeMap<(usize, usize), BTreeMap<Verdict, usize>>,
    millis: Vec<f64>,
}

impl Tally {
    fn add(&mut self, case: &Case, verdict: Verdict, ms: f64) {
        let refuse = KINDS[case.kind].must_refuse;
        *self.verdicts.entry((refuse, verdict)).or_default() += 1;
        for map in [
            self.by_kind.entry(case.kind).or_default(),
            self.by_language.entry((case.language, refuse)).or_default(),
            self.by_kind_language
                .entry((case.kind, case.language))
                .or_default(),
        ] {
            *map.entry(verdict).or_default() += 1;
        }
        self.millis.push(ms);
    }

    fn count(&self, must_refuse: bool, v: Verdict) -> usize {
        self.verdicts.get(&(must_refuse, v)).copied().unwrap_or(0)
    }

    fn total(&self, must_refuse: bool) -> usize {
        self.verdicts
            .iter()
            .filter(|((r, _), _)| *r == must_refuse)
            .map(|(_, n)| n)
            .sum()
    }

    fn median(&mut self) -> f64 {
        self.millis.sort_by(f64::total_cmp);
        self.millis
            .get(self.millis.len() / 2)
            .copied()
            .unwrap_or(0.0)
    }
}

fn get(map: Option<&BTreeMap<Verdict, usize>>, v: Verdict) -> usize {
    map.and_then(|m| m.get(&v)).copied().unwrap_or(0)
}

fn run() -> Result<(), String> {
    let pairs_file = std::env::var("PJ_BENCH_PAIRS")
        .map_err(|_| "set PJ_BENCH_PAIRS (scripts/bench-patch does)".to_string())?;
    let pairs = fs::read_to_string(&pairs_file).map_err(|e| format!("{pairs_file}: {e}"))?;
    let mut cases = Vec::new();
    let mut files = 0;
    let mut files_by_language: BTreeMap<usize, usize> = BTreeMap::new();
    let mut skipped = 0;
    let mut sources = Vec::new();
    for line in pairs.lines().filter(|l| !l.trim().is_empty()) {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let [label, old_dir, new_dir, max, exts] = parts[..] else {
            return Err(format!("bad line in {pairs_file}: {line}"));
        };
        let max: usize = max.parse().map_err(|_| format!("bad max in: {line}"))?;
        let exts: Vec<&str> = exts.split(',').collect();
        let changed = changed_files(Path::new(old_dir), Path::new(new_dir), &exts)?;
        let picked = spread_by_language(&changed, max);
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
            *files_by_language.entry(language_of(&rel)).or_default() += 1;
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
    let ran: Vec<usize> = (0..TOOLS.len())
        .filter(|t| only.as_ref().is_none_or(|o| o.contains(t)))
        .collect();
    for (i, case) in cases.iter().enumerate() {
        for &t in &ran {
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
            let unchanged = after.as_deref() == Some(&case.old[..]);
            let verdict = match (&case.expected, ok) {
                (Some(expected), true) if after.as_deref() == Some(&expected[..]) => {
                    Verdict::Correct
                }
                (_, true) => Verdict::Wrong,
                (Some(_), false) if unchanged => Verdict::Refused,
                // A case that must be refused is right when refused: counted as correct.
                (None, false) if unchanged => Verdict::Correct,
                (_, false) => Verdict::Partial,
            };
            if t == 0
                && matches!(verdict, Verdict::Wrong | Verdict::Partial)
                && wrong_examples.len() < 8
            {
                wrong_examples.push(format!("{} [{}]", case.rel, KINDS[case.kind].name));
            }
            if t == 0
                && verdict != Verdict::Correct
                && let Ok(dump) = std::env::var("PJ_BENCH_DUMP")
            {
                // Everything needed to replay a case that did not come out right.
                let d = Path::new(&dump).join(format!("{i}-{verdict:?}-k{}", case.kind));
                fs::create_dir_all(&d).map_err(|e| e.to_string())?;
                fs::write(d.join("old"), &case.old).map_err(|e| e.to_string())?;
                if let Some(expected) = &case.expected {
                    fs::write(d.join("expected"), expected).map_err(|e| e.to_string())?;
                }
                fs::write(d.join("patch"), &case.patch).map_err(|e| e.to_string())?;
                fs::write(d.join("rel"), &case.rel).map_err(|e| e.to_string())?;
                if let Some(after) = &after {
                    fs::write(d.join("actual"), after).map_err(|e| e.to_string())?;
                }
            }
            tallies[t].add(case, verdict, ms);
            let _ = fs::remove_dir_all(&dir);
            let _ = fs::remove_file(&patch_file);
        }
    }

    let out = tables(
        &sources,
        files,
        &files_by_language,
        skipped,
        &cases,
        &ran,
        &mut tallies,
        &steps,
        &wrong_examples,
    );
    print!("{out}");
    if let Ok(path) = std::env::var("PJ_BENCH_OUT") {
        fs::write(&path, &out).map_err(|e| format!("{path}: {e}"))?;
    }
    Ok(())
}

/// The result as Markdown: by engine, by language, by kind, and this engine by kind and
/// language.
#[allow(clippy::too_many_arguments)]
fn tables(
    sources: &[String],
    files: usize,
    files_by_language: &BTreeMap<usize, usize>,
    skipped: usize,
    cases: &[Case],
    ran: &[usize],
    tallies: &mut [Tally],
    steps: &BTreeMap<Step, usize>,
    wrong_examples: &[String],
) -> String {
    let mut out = String::new();
    let must = cases.iter().filter(|c| KINDS[c.kind].must_refuse).count();
    out.push_str(&format!(
        "Sources: {}.\n{} changed files ({} skipped: not UTF-8, over 1 MiB or no diff), {} cases: \
         {} that should apply and {} that must be refused.\n\n",
        sources.join(", "),
        files,
        skipped,
        cases.len(),
        cases.len() - must,
        must
    ));
    out.push_str(
        "| engine | should apply | correct | refused | wrong | partial | must refuse | refused | \
         wrong | partial | median ms/patch |\n",
    );
    out.push_str("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for &t in ran {
        let tally = &mut tallies[t];
        let n = tally.total(false);
        let pct = |v: usize| 100.0 * v as f64 / n.max(1) as f64;
        let correct = tally.count(false, Verdict::Correct);
        let refused = tally.count(false, Verdict::Refused);
        out.push_str(&format!(
            "| {} | {n} | {correct} ({:.1}%) | {refused} ({:.1}%) | {} | {} | {} | {} | {} | {} | \
             {:.2} |\n",
            TOOLS[t],
            pct(correct),
            pct(refused),
            tally.count(false, Verdict::Wrong),
            tally.count(false, Verdict::Partial),
            tally.total(true),
            tally.count(true, Verdict::Correct),
            tally.count(true, Verdict::Wrong),
            tally.count(true, Verdict::Partial),
            tally.median()
        ));
    }

    let cell = |map: Option<&BTreeMap<Verdict, usize>>| {
        format!(
            "{} / {}",
            get(map, Verdict::Correct),
            get(map, Verdict::Wrong) + get(map, Verdict::Partial)
        )
    };
    let header = |out: &mut String, first: &str| {
        out.push_str(&format!("| {first} | files | cases |"));
        for &t in ran {
            out.push_str(&format!(" {} |", TOOLS[t]));
        }
        out.push_str("\n| --- | ---: | ---: |");
        for _ in ran {
            out.push_str(" ---: |");
        }
        out.push('\n');
    };

    out.push_str(
        "\nBy language: correct / wrong (+ partial) of the cases that should apply, then of those \
         that must be refused (correct there means refused):\n\n",
    );
    header(&mut out, "language");
    for (l, (name, _)) in LANGUAGES.iter().enumerate() {
        for refuse in [false, true] {
            let n: usize = tallies[ran[0]]
                .by_language
                .get(&(l, refuse))
                .map_or(0, |m| m.values().sum());
            if n == 0 {
                continue;
            }
            let label = if refuse {
                format!("{name}, must refuse")
            } else {
                (*name).to_string()
            };
            let files = if refuse {
                String::new()
            } else {
                files_by_language.get(&l).copied().unwrap_or(0).to_string()
            };
            out.push_str(&format!("| {label} | {files} | {n} |"));
            for &t in ran {
                let map = tallies[t].by_language.get(&(l, refuse));
                let correct = get(map, Verdict::Correct);
                out.push_str(&format!(
                    " {} ({:.1}%) |",
                    cell(map),
                    100.0 * correct as f64 / n as f64
                ));
            }
            out.push('\n');
        }
    }

    out.push_str(
        "\nBy kind of case: correct / wrong (+ partial); for a case that must be refused, \
         correct means refused:\n\n",
    );
    header(&mut out, "case kind");
    for (k, kind) in KINDS.iter().enumerate() {
        let n: usize = tallies[ran[0]]
            .by_kind
            .get(&k)
            .map_or(0, |m| m.values().sum());
        let name = if kind.must_refuse {
            format!("must refuse: {}", kind.name)
        } else {
            kind.name.to_string()
        };
        out.push_str(&format!("| {name} | | {n} |"));
        for &t in ran {
            out.push_str(&format!(" {} |", cell(tallies[t].by_kind.get(&k))));
        }
        out.push('\n');
    }

    out.push_str(&format!(
        "\n{}, correct of cases, by kind and language:\n\n| case kind |",
        TOOLS[ran[0]]
    ));
    for (name, _) in LANGUAGES {
        out.push_str(&format!(" {name} |"));
    }
    out.push_str("\n| --- |");
    for _ in LANGUAGES {
        out.push_str(" ---: |");
    }
    out.push('\n');
    for (k, kind) in KINDS.iter().enumerate() {
        out.push_str(&format!("| {} |", kind.name));
        for l in 0..LANGUAGES.len() {
            let map = tallies[ran[0]].by_kind_language.get(&(k, l));
            let n: usize = map.map_or(0, |m| m.values().sum());
            let wrong = get(map, Verdict::Wrong) + get(map, Verdict::Partial);
            let mut c = format!("{}/{n}", get(map, Verdict::Correct));
            if wrong > 0 {
                c.push_str(&format!(" ({wrong} wrong)"));
            }
            out.push_str(&format!(" {c} |"));
        }
        out.push('\n');
    }

    out.push_str("\nLadder steps of the hunks this engine placed:");
    for (step, n) in steps {
        out.push_str(&format!(" {} {n};", step.name()));
    }
    out.push('\n');
    if !wrong_examples.is_empty() {
        out.push_str(&format!(
            "\nWrongly applied by this engine: {}\n",
            wrong_examples.join(", ")
        ));
    }
    out
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

/// Files with one of `exts` present in both trees whose content differs, sorted. Bundled and
/// minified builds (`dist/`, `.min.`) are left out: they repeat the sources' changes.
fn changed_files(old: &Path, new: &Path, exts: &[&str]) -> Result<Vec<String>, String> {
    let mut all = Vec::new();
    walk(old, old, exts, &mut all)?;
    all.sort();
    Ok(all
        .into_iter()
        .filter(|rel| {
            let (a, b) = (fs::read(old.join(rel)), fs::read(new.join(rel)));
            matches!((a, b), (Ok(a), Ok(b)) if a != b)
        })
        .collect())
}

fn walk(root: &Path, dir: &Path, exts: &[&str], out: &mut Vec<String>) -> Result<(), String> {
    let entries = fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| e.to_string())?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind = entry.file_type().map_err(|e| e.to_string())?;
        if kind.is_dir() {
            if name != "dist" && name != "node_modules" {
                walk(root, &path, exts, out)?;
            }
        } else if kind.is_file()
            && !name.contains(".min.")
            && path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| exts.contains(&e))
        {
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

/// At most `max` files of each language, evenly spread over each language's files, in path
/// order: a release that touched 60 Python files and 3 C files keeps its C files.
fn spread_by_language(items: &[String], max: usize) -> Vec<String> {
    let mut groups: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for item in items {
        groups
            .entry(language_of(item))
            .or_default()
            .push(item.clone());
    }
    let mut out: Vec<String> = groups.values().flat_map(|g| spread(g, max)).collect();
    out.sort();
    out
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
    let language = language_of(rel);
    let clean = render(rel, true, &diff.hunks, &header);
    let case = |kind: usize, patch: String| Case {
        kind,
        language,
        rel: rel.to_string(),
        patch,
        old: old.to_vec(),
        expected: (!KINDS[kind].must_refuse).then(|| new.to_vec()),
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
        // A line dropped from between removed and added lines leaves another valid edit (the
        // removed lines replaced by the added ones) that no tool can tell from the meant one:
        // such a case is left out rather than counted against anyone.
        let body = &hunks[pick].body;
        let marker = |i: Option<usize>| i.and_then(|i| body.get(i)).and_then(|l| l.chars().next());
        let between = matches!(
            (marker(drop.checked_sub(1)), marker(Some(drop + 1))),
            (Some('-'), Some('+')) | (Some('+'), Some('-'))
        );
        if !between {
            hunks[pick].body.remove(drop);
            out.push(case(7, render(rel, true, &hunks, &header)));
        }
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
            language,
            rel: rel.to_string(),
            patch: clean.clone(),
            old: crlf(old),
            expected: Some(crlf(new)),
        });
    }

    // Blocks cannot say "no newline at end of file", so such diffs have no block form.
    let no_newline_marker = diff
        .hunks
        .iter()
        .any(|h| h.body.iter().any(|l| l.starts_with('\\')));
    if !no_newline_marker {
        let fence = fence_language(rel);
        let mut s = String::from("I'll make these edits.\n\n");
        for h in &diff.hunks {
            s.push_str(&format!("{rel}\n```{fence}\n<<<<<<< SEARCH\n"));
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

    // Kinds 0-11 are the first benchmark's; the new ones follow, so that a kind's cases (and
    // the generator's draws for the old kinds) stay the same.
    if diff.hunks.len() >= 2 {
        let reversed: Vec<DiffHunk> = diff.hunks.iter().rev().cloned().collect();
        out.push(case(12, render(rel, true, &reversed, &header)));
    }

    let without_plus: String = clean
        .lines()
        .enumerate()
        .filter(|&(i, _)| i != 1)
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    out.push(case(13, without_plus));

    out.push(case(
        14,
        render(rel, true, &context_drift(rel, diff), &header),
    ));

    if let Some(elided) = elide(diff, &mut rng) {
        out.push(case(15, render(rel, true, &elided, &header)));
    }

    if diff.hunks.len() >= 2 {
        let half = diff.hunks.len().div_ceil(2);
        let first = render(rel, true, &diff.hunks[..half], &header);
        let rest: String = render(rel, true, &diff.hunks[half..], &header)
            .lines()
            .skip(2)
            .map(|l| format!("{l}\n"))
            .collect();
        out.push(case(
            16,
            format!(
                "First, in `{rel}`:\n\n```diff\n{first}```\n\nThen, further down in the same \
                 file:\n\n```diff\n{rest}```\n"
            ),
        ));
    }

    let removed: Vec<(usize, usize)> = diff
        .hunks
        .iter()
        .enumerate()
        .flat_map(|(h, hunk)| {
            hunk.body
                .iter()
                .enumerate()
                .filter(|(_, l)| l.starts_with('-') && l.chars().any(char::is_alphanumeric))
                .map(move |(i, _)| (h, i))
        })
        .collect();
    if !removed.is_empty() {
        let (h, i) = removed[rng.below(removed.len())];
        let mut hunks = diff.hunks.to_vec();
        let line = &hunks[h].body[i];
        let at = line
            .char_indices()
            .find(|(_, c)| c.is_alphanumeric())
            .map_or(1, |(at, c)| at + c.len_utf8());
        hunks[h].body[i] = format!("{}zq{}", &line[..at], &line[at..]);
        out.push(case(17, render(rel, true, &hunks, &header)));
    }

    let open_edge = diff.hunks.iter().any(|h| {
        h.body.first().is_some_and(|l| l.starts_with('+'))
            || h.body.last().is_some_and(|l| l.starts_with('+'))
    });
    if !no_newline_marker && !open_edge {
        // A copy of every hunk's old lines at the end of the file: without line numbers,
        // nothing says which copy is meant. (A hunk that starts or ends with added lines
        // belongs at the file's start or end, which does say; such diffs are left out.)
        let mut doubled = old.to_vec();
        if !doubled.is_empty() && !doubled.ends_with(b"\n") {
            doubled.push(b'\n');
        }
        for h in &diff.hunks {
            for l in h.body.iter().filter(|l| !l.starts_with('+')) {
                doubled.extend_from_slice(l.get(1..).unwrap_or("").as_bytes());
                doubled.push(b'\n');
            }
        }
        out.push(Case {
            kind: 18,
            language,
            rel: rel.to_string(),
            patch: render(rel, true, &diff.hunks, &|_| "@@ @@".into()),
            old: doubled,
            expected: None,
        });
    }

    let twice = rng.below(diff.hunks.len());
    let mut repeated = diff.hunks.to_vec();
    repeated.insert(twice + 1, diff.hunks[twice].clone());
    out.push(case(19, render(rel, true, &repeated, &header)));
    out
}

/// The info string of a fence around code of this file.
fn fence_language(rel: &str) -> &'static str {
    match Path::new(rel).extension().and_then(|e| e.to_str()) {
        Some("rs") => "rust",
        Some("py") => "python",
        Some("ts" | "tsx" | "mts" | "cts") => "typescript",
        Some("js" | "mjs" | "cjs" | "jsx") => "javascript",
        Some("json") => "json",
        Some("md") => "markdown",
        Some("c" | "h") => "c",
        _ => "",
    }
}

/// Context lines retyped with other whitespace, as a model does, while removed and added lines
/// stay right: JSON re-indented (every leading space doubled), tab indentation written as four
/// spaces, space indentation as tabs (four spaces each), and trailing spaces on unindented
/// lines.
fn context_drift(rel: &str, diff: &Diff) -> Vec<DiffHunk> {
    let json = rel.ends_with(".json");
    map_body(diff, &|_, l| {
        let Some(rest) = l.strip_prefix(' ') else {
            return l.to_string();
        };
        if rest.trim().is_empty() {
            return l.to_string();
        }
        let body = rest.trim_start();
        let indent = &rest[..rest.len() - body.len()];
        if indent.is_empty() {
            format!(" {rest}  ")
        } else if json && !indent.contains('\t') {
            format!(" {indent}{indent}{body}")
        } else if indent.contains('\t') {
            format!(" {}{body}", indent.replace('\t', "    "))
        } else {
            let tabs = indent.len() / 4;
            format!(" {}{}{body}", "\t".repeat(tabs), &indent[tabs * 4..])
        }
    })
}

/// One run of context lines of one hunk replaced by a bare `...` line, as models elide what
/// they do not change: the middle of a run between two changes (its first and last lines
/// kept), or the far part of the leading or trailing context (the line next to the change
/// kept). `None` when no hunk has such a run.
fn elide(diff: &Diff, rng: &mut Rng) -> Option<Vec<DiffHunk>> {
    // (hunk, first elided body index, end of elided range)
    let mut spots: Vec<(usize, usize, usize)> = Vec::new();
    for (h, hunk) in diff.hunks.iter().enumerate() {
        let body = &hunk.body;
        let mut i = 0;
        while i < body.len() {
            if !body[i].starts_with(' ') && !body[i].is_empty() {
                i += 1;
                continue;
            }
            let start = i;
            while i < body.len() && (body[i].starts_with(' ') || body[i].is_empty()) {
                i += 1;
            }
            let (len, leading, trailing) = (i - start, start == 0, i == body.len());
            if leading && trailing {
                continue;
            }
            if leading && len >= 2 {
                spots.push((h, start, i - 1));
            } else if trailing && len >= 2 {
                spots.push((h, start + 1, i));
            } else if !leading && !trailing && len >= 3 {
                spots.push((h, start + 1, i - 1));
            }
        }
    }
    if spots.is_empty() {
        return None;
    }
    let (h, from, to) = spots[rng.below(spots.len())];
    let mut hunks = diff.hunks.to_vec();
    hunks[h].body.splice(from..to, ["...".to_string()]);
    Some(hunks)
}
