//! Where every hunk of one file goes, and the file after all of them.
//!
//! Each hunk is placed against the file as the model saw it, by its own evidence (its stated
//! line, then its lines: see `ladder`), so hunks out of order are placed as surely as hunks in
//! order, and a hunk that matches exactly at its stated line stays there. Order is evidence
//! only where the diff shows it: between the parts of one hunk around a `...` line, always;
//! between hunks, when the hunks placed by their own evidence and the stated line numbers both
//! follow the reply's order. Then a hunk whose lines occur at several places is looked for
//! only between its neighbours. Placements that overlap are refused; the rest are applied in
//! file order, each at its place shifted by the lines the ones above it added or removed.

use super::ladder::{self, Edit, Hay, Miss, Op, Placement};
use super::model::{Hunk, HunkLine};
use super::report::Step;
use super::text::Text;

/// What became of one hunk.
#[derive(Debug)]
pub(crate) enum Fate {
    /// Placed: one part, or one per stretch of lines between `...` lines.
    Placed(Vec<Part>),
    Failed(Failure),
}

/// One placed stretch of a hunk's lines.
#[derive(Debug)]
pub(crate) struct Part {
    pub placement: Placement,
    /// Its lines also occur elsewhere; the order of the diff decided.
    pub by_order: bool,
}

/// Why a hunk was not placed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The ladder found no single place; `part` is set (1-based) for a hunk split at `...`.
    Miss { miss: Miss, part: Option<usize> },
    /// Its lines overlap those of another hunk (0-based index), at these 0-based file lines.
    Overlaps { other: usize, at: usize },
    /// Its parts around `...` were found out of order or overlapping.
    PartsDisagree,
}

/// A stretch of one hunk's operations to place: the whole hunk, or the part between two
/// `...` lines.
struct Item {
    hunk: usize,
    ops: Vec<Op>,
    stated: Option<usize>,
    numbered: bool,
    elided_before: bool,
    elided_after: bool,
    last_of_hunk: bool,
    found: Result<Placement, Miss>,
    by_order: bool,
}

impl Item {
    fn edit(&self, window: std::ops::Range<usize>) -> Edit<'_> {
        Edit {
            ops: &self.ops,
            stated: self.stated,
            numbered: self.numbered,
            window,
            block: false,
            elided_before: self.elided_before,
            elided_after: self.elided_after,
        }
    }

    fn span(&self) -> Option<(usize, usize)> {
        self.found
            .as_ref()
            .ok()
            .map(|p| (p.pos, p.pos + p.span(&self.ops)))
    }
}

/// Places every hunk of a file; returns each hunk's fate and, when every hunk was placed, the
/// resulting text.
pub(crate) fn place(text: &Text, hunks: &[Hunk]) -> (Vec<Fate>, Option<Text>) {
    let hay = Hay::new(&text.lines);
    let whole = 0..hay.len();
    let mut items: Vec<Item> = Vec::new();
    for (h, hunk) in hunks.iter().enumerate() {
        let ops = hunk_ops(hunk);
        let stated = stated_index(hunk);
        let mut item = Item {
            hunk: h,
            ops,
            stated,
            numbered: hunk.header_agrees(),
            elided_before: false,
            elided_after: false,
            last_of_hunk: true,
            found: Err(Miss::NoAnchor),
            by_order: false,
        };
        item.found = ladder::locate(&hay, &item.edit(whole.clone()));
        // A `...` line is taken as written only where the file has it: matched exactly.
        let exact = item.found.as_ref().is_ok_and(|p| p.step <= Step::Recounted);
        if !exact && item.ops.iter().any(is_elision) {
            items.extend(split_at_elisions(h, &item.ops, stated, &hay));
        } else {
            items.push(item);
        }
    }

    narrow_by_order(&mut items, hunks, &hay);

    let mut fates: Vec<Option<Failure>> = (0..hunks.len()).map(|_| None).collect();
    for (i, item) in items.iter().enumerate() {
        if fates[item.hunk].is_some() {
            continue;
        }
        if let Err(miss) = &item.found {
            let split = items.iter().filter(|o| o.hunk == item.hunk).count() > 1;
            let part = items[..=i].iter().filter(|o| o.hunk == item.hunk).count();
            fates[item.hunk] = Some(Failure::Miss {
                miss: miss.clone(),
                part: split.then_some(part),
            });
        }
    }
    refuse_overlaps(&items, &mut fates);

    let all_placed = fates.iter().all(Option::is_none);
    let result = all_placed.then(|| apply_in_order(text, &items, hunks));
    let mut parts: Vec<Vec<Part>> = (0..hunks.len()).map(|_| Vec::new()).collect();
    for item in items {
        if let Ok(placement) = item.found {
            parts[item.hunk].push(Part {
                placement,
                by_order: item.by_order,
            });
        }
    }
    let fates = fates
        .into_iter()
        .zip(parts)
        .map(|(failure, parts)| match failure {
            Some(f) => Fate::Failed(f),
            None => Fate::Placed(parts),
        })
        .collect();
    (fates, result)
}

/// The 0-based index where the header says the old lines start, in the file the model saw.
fn stated_index(hunk: &Hunk) -> Option<usize> {
    hunk.old_start.map(|start| {
        // A header with an empty old side names the line after which to insert.
        if hunk.old_count == Some(0) {
            start
        } else {
            start.saturating_sub(1)
        }
    })
}

fn hunk_ops(hunk: &Hunk) -> Vec<Op> {
    hunk.lines
        .iter()
        .map(|l| match l {
            HunkLine::Context(t) => Op::Keep(t.clone()),
            HunkLine::Remove(t) => Op::Del(t.clone()),
            HunkLine::Add(t) => Op::Add(t.clone()),
        })
        .collect()
}

/// A context line that is only `...` (or `…`): the model left out unchanged lines there.
/// Tried only when the hunk does not apply as written, since a file may hold such a line.
fn is_elision(op: &Op) -> bool {
    matches!(op, Op::Keep(t) if matches!(t.trim(), "..." | "…"))
}

/// The stretches between `...` lines, each placed by its own evidence; the first keeps the
/// stated line when the hunk does not start with `...`.
fn split_at_elisions(hunk: usize, ops: &[Op], stated: Option<usize>, hay: &Hay<'_>) -> Vec<Item> {
    let mut items = Vec::new();
    let mut start = 0;
    let mut parts: Vec<(usize, usize)> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        if is_elision(op) {
            if i > start {
                parts.push((start, i));
            }
            start = i + 1;
        }
    }
    if start < ops.len() {
        parts.push((start, ops.len()));
    }
    let count = parts.len();
    for (k, (from, to)) in parts.into_iter().enumerate() {
        let mut item = Item {
            hunk,
            ops: ops[from..to].to_vec(),
            stated: if from == 0 { stated } else { None },
            numbered: false,
            elided_before: from > 0,
            elided_after: to < ops.len(),
            last_of_hunk: k + 1 == count,
            found: Err(Miss::NoAnchor),
            by_order: false,
        };
        item.found = ladder::locate(hay, &item.edit(0..hay.len()));
        items.push(item);
    }
    items
}

/// Hunks (and parts of hunks) whose lines occur at several places are looked for again
/// between the nearest placed neighbours that order allows: always those of the same hunk,
/// and those of other hunks when the diff is in file order. Repeats while that places more.
fn narrow_by_order(items: &mut [Item], hunks: &[Hunk], hay: &Hay<'_>) {
    let in_order = diff_in_order(items, hunks);
    loop {
        let mut progress = false;
        for i in 0..items.len() {
            if !matches!(items[i].found, Err(Miss::Ambiguous { .. })) {
                continue;
            }
            let hunk = items[i].hunk;
            let counts = |o: &Item| o.found.is_ok() && (o.hunk == hunk || in_order);
            let lo = items[..i]
                .iter()
                .rev()
                .find(|o| counts(o))
                .and_then(Item::span)
                .map_or(0, |(_, end)| end);
            let hi = items[i + 1..]
                .iter()
                .find(|o| counts(o))
                .and_then(Item::span)
                .map_or(hay.len(), |(start, _)| start);
            if (lo == 0 && hi == hay.len()) || lo > hi {
                continue;
            }
            let found = ladder::locate(hay, &items[i].edit(lo..hi));
            if found.is_ok() {
                items[i].found = found;
                items[i].by_order = true;
                progress = true;
            }
        }
        if !progress {
            break;
        }
    }
}

/// Whether the reply's order of hunks is evidence of file order: the hunks placed by their
/// own evidence are in reply order, and so are the stated line numbers.
fn diff_in_order(items: &[Item], hunks: &[Hunk]) -> bool {
    let placed: Vec<usize> = items
        .iter()
        .filter_map(|o| o.found.as_ref().ok().map(|p| p.pos))
        .collect();
    let stated: Vec<usize> = hunks.iter().filter_map(|h| h.old_start).collect();
    placed.windows(2).all(|w| w[0] <= w[1]) && stated.windows(2).all(|w| w[0] <= w[1])
}

/// Two placements that share file lines cannot both apply: the later hunk in the reply is
/// refused (for a hunk's own parts, the hunk).
fn refuse_overlaps(items: &[Item], fates: &mut [Option<Failure>]) {
    // Parts of one hunk must follow each other.
    for pair in items.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if a.hunk == b.hunk
            && let (Some((_, a_end)), Some((b_start, _))) = (a.span(), b.span())
            && b_start < a_end
            && fates[a.hunk].is_none()
        {
            fates[a.hunk] = Some(Failure::PartsDisagree);
        }
    }
    let mut spans: Vec<(usize, usize, usize)> = items
        .iter()
        .filter(|o| fates[o.hunk].is_none())
        .filter_map(|o| o.span().map(|(s, e)| (s, e, o.hunk)))
        .collect();
    spans.sort_unstable();
    for pair in spans.windows(2) {
        let ((_, a_end, a), (b_start, _, b)) = (pair[0], pair[1]);
        if a != b && b_start < a_end {
            let (first, later) = (a.min(b), a.max(b));
            if fates[later].is_none() {
                fates[later] = Some(Failure::Overlaps {
                    other: first,
                    at: b_start,
                });
            }
        }
    }
}

/// The text with every placed item applied, in file order, each at its place shifted by the
/// lines the ones above it added or removed.
fn apply_in_order(text: &Text, items: &[Item], hunks: &[Hunk]) -> Text {
    let mut order: Vec<&Item> = items.iter().filter(|o| o.found.is_ok()).collect();
    order.sort_by_key(|o| o.span().map(|(s, _)| s));
    let mut current = text.clone();
    let mut delta: isize = 0;
    for item in order {
        let Ok(placement) = &item.found else { continue };
        let mut shifted = placement.clone();
        shifted.pos = (placement.pos as isize + delta).max(0) as usize;
        let hunk = &hunks[item.hunk];
        let (old_nl, new_nl) = if item.last_of_hunk {
            (hunk.old_missing_newline, hunk.new_missing_newline)
        } else {
            (false, false)
        };
        let next = ladder::splice(&current, &shifted, &item.ops, old_nl, new_nl);
        delta += next.lines.len() as isize - current.lines.len() as isize;
        current = next;
    }
    current
}
