//! Packing ranked files into the token budget.
//!
//! Order of precedence: the overview (what the repository is made of, its tree), the instruction
//! files, a README excerpt, then whole files in rank order while they fit (a file too large for
//! what is left is passed over for smaller ones), then outlines of the next files until the budget
//! is spent. Every part is priced by rendering it; the sum of the parts bounds the whole (see
//! [`super::tokens`]), so the rendered context never exceeds the budget.

use std::collections::{BTreeMap, HashSet};

use super::lang::{is_instruction_file, is_manifest, is_root_readme, language_of};
use super::outline::outline;
use super::rank::{Query, Ranked, rank};
use super::render;
use super::scan::{RepoSnapshot, SourceFile};
use super::tokens::estimate_tokens;
use super::{
    ContextOptions, Excerpt, FileContent, FileOutline, LanguageStat, RankedPath, RepoContext,
};

/// A README ranked this high is about to be included whole, so no excerpt is made of it.
const README_WHOLE_RANK: usize = 3;
/// Whole files are looked for among this many best-ranked files.
const WHOLE_CANDIDATES: usize = 500;
/// Outlines are made for at most this many files past the whole ones.
const OUTLINE_CANDIDATES: usize = 200;
/// Ranked paths kept in [`RepoContext::ranking`].
const RANKING_KEPT: usize = 50;
/// Below this many tokens left, no outline is worth starting.
const MIN_OUTLINE_TOKENS: usize = 8;

/// Tokens still free in the budget.
struct Budget {
    limit: usize,
    used: usize,
}

impl Budget {
    fn left(&self) -> usize {
        self.limit.saturating_sub(self.used)
    }

    /// Takes `cost` tokens if they fit under `ceiling` (at most the limit); says whether they did.
    fn take_under(&mut self, cost: usize, ceiling: usize) -> bool {
        let fits = self.used + cost <= ceiling.min(self.limit);
        if fits {
            self.used += cost;
        }
        fits
    }

    fn take(&mut self, cost: usize) -> bool {
        self.take_under(cost, self.limit)
    }
}

/// Ranks the files of `snapshot` for `task` and packs the best into `opts.token_budget`.
pub fn select_context(snapshot: &RepoSnapshot, task: &str, opts: &ContextOptions) -> RepoContext {
    let files = snapshot.files();
    let budget_tokens = opts.token_budget;
    let mut budget = Budget {
        limit: budget_tokens,
        used: 0,
    };
    let query = Query::parse(task);
    let ranking = rank(files, &query);

    let languages = language_stats(files);
    let manifests: Vec<String> = files
        .iter()
        .map(SourceFile::path)
        .filter(|p| is_manifest(p))
        .map(str::to_string)
        .collect();
    let paths: Vec<&str> = files.iter().map(SourceFile::path).collect();

    let mut ctx = RepoContext {
        file_count: files.len(),
        languages,
        manifests,
        tree: render::tree_summary(&paths, opts.tree_tokens.min(budget_tokens / 8)),
        instructions: Vec::new(),
        readme: None,
        files: Vec::new(),
        outline: Vec::new(),
        ranking: ranking
            .iter()
            .take(RANKING_KEPT)
            .map(|r| RankedPath {
                path: files[r.index].path().to_string(),
                score: r.score,
            })
            .collect(),
        skipped: snapshot.skipped().clone(),
        token_budget: budget_tokens,
        token_estimate: 0,
        overview_shown: false,
    };

    // Overview: with the tree if it fits, else without, else not at all.
    for with_tree in [true, false] {
        if !with_tree {
            ctx.tree.clear();
        }
        let text = render::overview(ctx.file_count, &ctx.languages, &ctx.manifests, &ctx.tree);
        if budget.take(estimate_tokens(&text)) {
            ctx.overview_shown = true;
            break;
        }
    }
    if !ctx.overview_shown {
        ctx.tree.clear();
    }

    let mut taken: HashSet<usize> = HashSet::new();
    add_instructions(files, opts, &mut budget, &mut ctx, &mut taken);

    let readme_ranks_high = ranking
        .iter()
        .take(README_WHOLE_RANK)
        .any(|r| r.score > 0.0 && is_root_readme(files[r.index].path()));
    if !readme_ranks_high {
        add_readme(files, opts, &mut budget, &mut ctx, &mut taken);
    }

    let whole_ceiling = budget_tokens - budget_tokens * opts.outline_reserve_percent.min(100) / 100;
    let share_cap = budget_tokens * opts.max_file_share_percent.min(100) / 100;
    let relevant: Vec<&Ranked> = ranking.iter().filter(|r| r.score > 0.0).collect();
    let mut heading_paid = false;
    for (position, r) in relevant.iter().take(WHOLE_CANDIDATES).enumerate() {
        if taken.contains(&r.index) {
            continue;
        }
        let file = &files[r.index];
        let content = FileContent {
            path: file.path().to_string(),
            content: file.text().to_string(),
        };
        let heading = if heading_paid {
            0
        } else {
            estimate_tokens(render::FILES_HEADING)
        };
        let cost = heading + estimate_tokens(&render::file(&content));
        // The best-ranked file is most often the one to change: it may take the whole budget
        // like a file the task names.
        let favoured = r.named || position == 0;
        if !favoured && cost > share_cap {
            continue;
        }
        let ceiling = if favoured {
            budget_tokens
        } else {
            whole_ceiling
        };
        if budget.take_under(cost, ceiling) {
            heading_paid = true;
            taken.insert(r.index);
            ctx.files.push(content);
        }
    }

    add_outlines(files, &relevant, opts, &mut budget, &mut ctx, &taken);

    ctx.token_estimate = estimate_tokens(&ctx.render());
    debug_assert!(ctx.token_estimate <= budget_tokens);
    ctx
}

/// Files per language, most first, ties by name.
fn language_stats(files: &[SourceFile]) -> Vec<LanguageStat> {
    let mut stats: BTreeMap<&'static str, (usize, u64)> = BTreeMap::new();
    for file in files {
        if let Some(language) = language_of(file.path()) {
            let entry = stats.entry(language.name).or_default();
            entry.0 += 1;
            entry.1 += file.text().len() as u64;
        }
    }
    let mut out: Vec<LanguageStat> = stats
        .into_iter()
        .map(|(name, (files, bytes))| LanguageStat {
            name: name.to_string(),
            files,
            bytes,
        })
        .collect();
    out.sort_by(|a, b| b.files.cmp(&a.files).then_with(|| a.name.cmp(&b.name)));
    out
}

/// The longest run of whole lines from the start of `text` for which `price(excerpt)` stays
/// within `max_tokens`; `None` when not even an empty excerpt fits.
fn excerpt_within(
    path: &str,
    text: &str,
    max_tokens: usize,
    price: impl Fn(&Excerpt) -> usize,
) -> Option<Excerpt> {
    let whole = Excerpt {
        path: path.to_string(),
        text: text.to_string(),
        truncated: false,
    };
    if price(&whole) <= max_tokens {
        return Some(whole);
    }
    let empty = Excerpt {
        path: path.to_string(),
        text: String::new(),
        truncated: true,
    };
    let frame = price(&empty);
    if frame >= max_tokens {
        return None;
    }
    // Lines are priced one by one (the estimate is additive over lines, so the sum bounds the
    // excerpt), then the excerpt is priced once more as rendered.
    let room = max_tokens - frame;
    let mut used = 0;
    let mut end = 0;
    for line in text.split_inclusive('\n') {
        let cost = estimate_tokens(line) + usize::from(!line.ends_with('\n'));
        if used + cost > room {
            break;
        }
        used += cost;
        end += line.len();
    }
    let excerpt = Excerpt {
        path: path.to_string(),
        text: text[..end].to_string(),
        truncated: true,
    };
    (price(&excerpt) <= max_tokens && end > 0).then_some(excerpt)
}

/// Instruction files: the root ones first (`.pithy/instructions.md`, `AGENTS.md`, `CLAUDE.md`),
/// then nested ones by path, each cut to what is left of the instructions' share.
fn add_instructions(
    files: &[SourceFile],
    opts: &ContextOptions,
    budget: &mut Budget,
    ctx: &mut RepoContext,
    taken: &mut HashSet<usize>,
) {
    let mut found: Vec<usize> = (0..files.len())
        .filter(|&i| is_instruction_file(files[i].path()))
        .collect();
    let root_order = |path: &str| match path {
        ".pithy/instructions.md" => 0,
        "AGENTS.md" => 1,
        "CLAUDE.md" => 2,
        _ => 3,
    };
    found.sort_by_key(|&i| (root_order(files[i].path()), files[i].path().to_string()));
    let share = opts.instruction_tokens.min(ctx.token_budget / 4);
    let mut spent = 0;
    for i in found {
        let heading = if ctx.instructions.is_empty() {
            estimate_tokens(render::INSTRUCTIONS_HEADING)
        } else {
            0
        };
        let room = share.saturating_sub(spent).min(budget.left());
        let file = &files[i];
        let Some(excerpt) = excerpt_within(file.path(), file.text(), room, |e| {
            heading + estimate_tokens(&render::instruction(e))
        }) else {
            continue;
        };
        let cost = heading + estimate_tokens(&render::instruction(&excerpt));
        if budget.take(cost) {
            spent += cost;
            taken.insert(i);
            ctx.instructions.push(excerpt);
        }
    }
}

/// The beginning of the root README.
fn add_readme(
    files: &[SourceFile],
    opts: &ContextOptions,
    budget: &mut Budget,
    ctx: &mut RepoContext,
    taken: &mut HashSet<usize>,
) {
    let Some(i) = (0..files.len()).find(|&i| is_root_readme(files[i].path())) else {
        return;
    };
    if taken.contains(&i) {
        return;
    }
    let room = opts
        .readme_tokens
        .min(ctx.token_budget / 10)
        .min(budget.left());
    let file = &files[i];
    let Some(excerpt) = excerpt_within(file.path(), file.text(), room, |e| {
        estimate_tokens(&render::readme(e))
    }) else {
        return;
    };
    if budget.take(estimate_tokens(&render::readme(&excerpt))) {
        // A README cut short may still be outlined; only a whole one is done with.
        if !excerpt.truncated {
            taken.insert(i);
        }
        ctx.readme = Some(excerpt);
    }
}

/// Outlines of relevant files not included whole, in rank order, each cut to what is left.
fn add_outlines(
    files: &[SourceFile],
    relevant: &[&Ranked],
    opts: &ContextOptions,
    budget: &mut Budget,
    ctx: &mut RepoContext,
    taken: &HashSet<usize>,
) {
    let heading_cost = estimate_tokens(render::OUTLINE_HEADING);
    let candidates = relevant
        .iter()
        .filter(|r| !taken.contains(&r.index))
        .take(OUTLINE_CANDIDATES);
    for r in candidates {
        if budget.left() < MIN_OUTLINE_TOKENS {
            break;
        }
        let file = &files[r.index];
        let signatures = outline(file.path(), file.text());
        if signatures.is_empty() {
            continue;
        }
        let heading = if ctx.outline.is_empty() {
            heading_cost
        } else {
            0
        };
        let total = signatures.len();
        let mut shown = signatures;
        shown.truncate(opts.max_outline_lines);
        // Fewer lines until it fits; at least one line or nothing.
        while !shown.is_empty() {
            let candidate = FileOutline {
                path: file.path().to_string(),
                omitted: total - shown.len(),
                signatures: shown.clone(),
            };
            let cost = heading + estimate_tokens(&render::outline(&candidate));
            if budget.take(cost) {
                ctx.outline.push(candidate);
                break;
            }
            let over = (budget.used + cost).saturating_sub(budget.limit);
            // Drop roughly as many lines as the overshoot needs (about 12 tokens a line), at
            // least one, so a long outline shrinks in a few steps rather than one line at a time.
            let drop = (over / 12).max(1).min(shown.len());
            shown.truncate(shown.len() - drop);
        }
    }
}
