//! Where an edit goes: the matching ladder.
//!
//! Each step is tried only when the one before found nothing, and only a unique place is
//! accepted. A step that finds several places ends the search: every later step is looser and
//! would find at least those places again, and guessing among them is how wrong edits happen.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Range;

use super::closest::{self, Closest};
use super::indent::{Row, Shift, shift_for, squash};
use super::report::Step;
use super::text::{Eol, Line, Text};

/// One operation of an edit, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Op {
    Keep(String),
    Del(String),
    Add(String),
}

impl Op {
    pub fn old_text(&self) -> Option<&str> {
        match self {
            Op::Keep(t) | Op::Del(t) => Some(t),
            Op::Add(_) => None,
        }
    }
}

/// A file's lines as the steps compare them, computed once per file.
pub(crate) struct Hay<'a> {
    /// As they are.
    pub raw: Vec<&'a str>,
    /// Without trailing whitespace.
    trimmed: Vec<&'a str>,
    /// With whitespace ignored but word boundaries ([`squash`]).
    squashed: Vec<Cow<'a, str>>,
}

impl<'a> Hay<'a> {
    pub fn new(lines: &'a [Line]) -> Self {
        let raw: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
        Hay {
            trimmed: raw.iter().map(|l| l.trim_end()).collect(),
            squashed: raw.iter().map(|l| squash(l)).collect(),
            raw,
        }
    }

    pub fn len(&self) -> usize {
        self.raw.len()
    }
}

/// An edit to place: a hunk (or a part of one between `...` lines) or a search/replace block.
#[derive(Debug)]
pub(crate) struct Edit<'a> {
    pub ops: &'a [Op],
    /// 0-based index in the file where the header says the old lines start.
    pub stated: Option<usize>,
    /// The header had line numbers and counts that agree with the body.
    pub numbered: bool,
    /// Only places inside these lines are searched: the whole file, unless the order of the
    /// edits is the evidence that decides among places.
    pub window: Range<usize>,
    /// A search/replace block: its exact match is the expected case, and it has no context to
    /// trim.
    pub block: bool,
    /// A `...` line stands just before (after) these operations: added lines at that edge are
    /// pinned by it, not by the edge of the file.
    pub elided_before: bool,
    pub elided_after: bool,
}

/// Where and how an edit applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Placement {
    /// 0-based index in the file of the first old line kept after trimming.
    pub pos: usize,
    /// Leading context lines left out.
    pub lead_trim: usize,
    /// Trailing context lines left out.
    pub trail_trim: usize,
    /// The edit left out one unchanged line of the file before its old line of this index
    /// (among the old lines kept): that line is kept.
    pub gap: Option<usize>,
    pub shift: Shift,
    pub step: Step,
}

impl Placement {
    /// How many lines of the file the placed old lines cover.
    pub fn span(&self, ops: &[Op]) -> usize {
        let kept = &ops[self.lead_trim..ops.len() - self.trail_trim];
        kept.iter().filter(|o| o.old_text().is_some()).count() + usize::from(self.gap.is_some())
    }
}

/// Why an edit could not be placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Miss {
    /// The edit has no old lines and the file is not empty: nothing says where it goes.
    NoAnchor,
    /// The old lines are too little to trust anywhere but at the stated line.
    Weak,
    /// Several places match (0-based indexes), at this step.
    Ambiguous { at: Vec<usize>, step: Step },
    /// The old lines are nowhere, but the new lines are, once: the edit was applied before.
    AlreadyApplied { at: usize },
    /// The hunk begins (or ends) with added lines, so it belongs at the start (or end) of the
    /// file, but its lines are elsewhere: a context line next to the added lines is missing.
    Unanchored { at: usize },
    /// The old lines match once with whitespace ignored, but the edit's indentation does not
    /// say how to indent the added lines.
    IndentUnclear { at: usize },
    /// No place matches.
    NotFound { closest: Option<Closest> },
}

/// How many matches are worth listing in a message.
const LIST_LIMIT: usize = 8;

/// An anchor with fewer letters and digits than this (and fewer than three non-blank lines),
/// such as `}` or an empty line, is placed only at its stated line.
const MIN_ANCHOR_ALNUM: usize = 4;
const MIN_ANCHOR_LINES: usize = 3;

/// What must stay of the old lines after trimming, both at once: a trimmed hunk is the last
/// resort, so it needs more than a unique match of a brace or two.
const MIN_TRIMMED_ALNUM: usize = 12;
const MIN_TRIMMED_LINES: usize = 2;

/// Finds the one place where `edit` applies in `hay`.
///
/// Past the stated line, a place counts as unique only if it is the one place where the old
/// lines occur even with whitespace ignored: otherwise a hunk whose indentation drifted could
/// match exactly at a copy of the code nested deeper, far from where it belongs.
pub(crate) fn locate(hay: &Hay<'_>, edit: &Edit<'_>) -> Result<Placement, Miss> {
    let old: Vec<&str> = edit.ops.iter().filter_map(Op::old_text).collect();
    let window = edit.window.start.min(hay.len())..edit.window.end.min(hay.len());
    let placed = |pos: usize, shift: Shift, step: Step| Placement {
        pos,
        lead_trim: 0,
        trail_trim: 0,
        gap: None,
        shift,
        step,
    };
    let unique_step = if edit.block {
        Step::SearchExact
    } else if edit.numbered {
        Step::ExactElsewhere
    } else {
        Step::Recounted
    };

    if old.is_empty() {
        // Only an empty file takes lines without context: anywhere else, the stated line
        // number of a model is not enough to go by.
        return if hay.len() == 0 {
            let step = if edit.block {
                Step::SearchExact
            } else {
                Step::ExactAtLine
            };
            Ok(placed(0, Shift::Zero, step))
        } else {
            Err(Miss::NoAnchor)
        };
    }

    let anchored = |p: usize, lead: usize, trail: usize, span: usize| {
        edit.block
            || edge_anchored(
                &edit.ops[lead..edit.ops.len() - trail],
                p,
                span,
                hay.len(),
                (edit.elided_before, edit.elided_after),
            )
    };

    // The stated line is evidence: the old lines exactly there win over any other place.
    if let Some(p) = edit.stated
        && p >= window.start
        && p + old.len() <= window.end
        && hay.raw[p..p + old.len()] == old[..]
        && anchored(p, 0, 0, old.len())
    {
        return Ok(placed(p, Shift::Zero, Step::ExactAtLine));
    }

    if !strong(&old, MIN_ANCHOR_ALNUM, MIN_ANCHOR_LINES) {
        return Err(Miss::Weak);
    }
    let old_t: Vec<&str> = old.iter().map(|l| l.trim_end()).collect();
    let old_s: Vec<Cow<'_, str>> = old.iter().map(|l| squash(l)).collect();
    let m = old.len();
    let everywhere = find(&hay.squashed, &old_s, window.clone());
    let unanchored = everywhere.iter().copied().find(|&p| !anchored(p, 0, 0, m));
    let anywhere: Vec<usize> = everywhere
        .into_iter()
        .filter(|&p| anchored(p, 0, 0, m))
        .collect();
    let ambiguous = |mut at: Vec<usize>, step: Step| {
        at.sort_unstable();
        at.dedup();
        at.truncate(LIST_LIMIT);
        Err(Miss::Ambiguous { at, step })
    };
    let decide = |found: Vec<usize>, step: Step| -> Option<Result<Placement, Miss>> {
        let valid: Vec<usize> = found
            .into_iter()
            .filter(|&p| anchored(p, 0, 0, m))
            .collect();
        match valid[..] {
            [] => None,
            [pos] if anywhere.len() <= 1 => Some(Ok(placed(pos, Shift::Zero, step))),
            _ => Some(ambiguous([valid, anywhere.clone()].concat(), step)),
        }
    };

    if let Some(done) = decide(find(&hay.raw, &old, window.clone()), unique_step) {
        return done;
    }
    if let Some(done) = decide(
        find(&hay.trimmed, &old_t, window.clone()),
        Step::TrailingWhitespace,
    ) {
        return done;
    }
    match anywhere[..] {
        [] => {}
        [pos] => {
            let rows = rows(hay, edit.ops, pos, None);
            return match shift_for(&rows) {
                Some(shift) => {
                    let step = if shift == Shift::Zero {
                        Step::Whitespace
                    } else {
                        Step::Indentation
                    };
                    Ok(placed(pos, shift, step))
                }
                None => Err(Miss::IndentUnclear { at: pos }),
            };
        }
        _ => return ambiguous(anywhere, Step::Whitespace),
    }
    if !edit.block {
        if let Some(done) = with_gap(hay, edit.ops, &old_s, window.clone(), &anchored) {
            return done;
        }
        if let Some(found) = trimmed(hay, edit.ops, window.clone(), &anchored)? {
            return Ok(found);
        }
    }

    if let Some(at) = unanchored {
        return Err(Miss::Unanchored { at });
    }
    let new_t: Vec<&str> = edit
        .ops
        .iter()
        .filter_map(|op| match op {
            Op::Keep(t) | Op::Add(t) => Some(t.trim_end()),
            Op::Del(_) => None,
        })
        .collect();
    if new_t != old_t && strong(&new_t, MIN_ANCHOR_ALNUM, MIN_ANCHOR_LINES) {
        let done = find(&hay.trimmed, &new_t, 0..hay.len());
        if let [at] = done[..] {
            return Err(Miss::AlreadyApplied { at });
        }
    }
    Err(Miss::NotFound {
        closest: closest::find(
            &hay.raw,
            &hay.squashed,
            &old,
            edit.stated.unwrap_or(window.start),
        ),
    })
}

/// The edit's lines lined up with the file at `pos`: each old line beside the file line it
/// matched, and the added lines between.
fn rows<'a>(hay: &'a Hay<'_>, ops: &'a [Op], pos: usize, gap: Option<usize>) -> Vec<Row<'a>> {
    let mut j = 0;
    ops.iter()
        .map(|op| match op {
            Op::Add(t) => Row::Added(t),
            Op::Keep(t) | Op::Del(t) => {
                let at = pos + j + usize::from(gap.is_some_and(|g| j >= g));
                j += 1;
                Row::Old {
                    edit: t,
                    file: hay.raw[at],
                    removed: matches!(op, Op::Del(_)),
                }
            }
        })
        .collect()
}

/// A hunk that begins with a pure insertion has nothing before the added lines to say where
/// they go, so it belongs at the start of the file, as a clean diff has it; one that ends with
/// a pure insertion, at the end. Added lines that replace removed lines are pinned by those,
/// and added lines next to a `...` line by the elided lines.
fn edge_anchored(
    ops: &[Op],
    pos: usize,
    span: usize,
    file_len: usize,
    (elided_before, elided_after): (bool, bool),
) -> bool {
    let pure_insertion = |group: &mut dyn Iterator<Item = &Op>| {
        let mut adds = false;
        for op in group {
            match op {
                Op::Keep(_) => break,
                Op::Del(_) => return false,
                Op::Add(_) => adds = true,
            }
        }
        adds
    };
    let open_start = !elided_before
        && matches!(ops.first(), Some(Op::Add(_)))
        && pure_insertion(&mut ops.iter());
    let open_end = !elided_after
        && matches!(ops.last(), Some(Op::Add(_)))
        && pure_insertion(&mut ops.iter().rev());
    (!open_start || pos == 0) && (!open_end || pos + span == file_len)
}

/// Whether old lines are enough of an anchor to be searched for: enough letters and digits,
/// or enough non-blank lines.
fn strong(old: &[&str], min_alnum: usize, min_lines: usize) -> bool {
    let (alnum, lines) = anchor_size(old);
    alnum >= min_alnum || lines >= min_lines
}

/// Letters and digits, and non-blank lines, of some old lines.
fn anchor_size(old: &[&str]) -> (usize, usize) {
    let alnum = old
        .iter()
        .map(|l| l.chars().filter(|c| c.is_alphanumeric()).count())
        .sum();
    let lines = old.iter().filter(|l| !l.trim().is_empty()).count();
    (alnum, lines)
}

/// Every start index inside `window` where `needle` matches, up to [`LIST_LIMIT`].
fn find<H: AsRef<str>, N: AsRef<str>>(hay: &[H], needle: &[N], window: Range<usize>) -> Vec<usize> {
    let mut out = Vec::new();
    let end = window.end.min(hay.len());
    if needle.is_empty() || window.start + needle.len() > end {
        return out;
    }
    for p in window.start..=end - needle.len() {
        if needle
            .iter()
            .enumerate()
            .all(|(j, n)| hay[p + j].as_ref() == n.as_ref())
        {
            out.push(p);
            if out.len() >= LIST_LIMIT {
                break;
            }
        }
    }
    out
}

/// The old lines with one line of the file between two of them that the edit left out: a
/// context line a model dropped from the middle of a hunk. The left-out line is kept, so it
/// may only stand where no added line is next to it (whether the added lines go before or after
/// it, the diff would not say) and not between two removed lines (whether it goes too, neither).
fn with_gap(
    hay: &Hay<'_>,
    ops: &[Op],
    old_s: &[Cow<'_, str>],
    window: Range<usize>,
    anchored: &dyn Fn(usize, usize, usize, usize) -> bool,
) -> Option<Result<Placement, Miss>> {
    let m = old_s.len();
    if m < 2 || window.start + m + 1 > window.end {
        return None;
    }
    // `allowed[k]`: the gap may stand before old line k.
    let mut allowed = vec![false; m];
    let mut prev: Option<&Op> = None;
    let mut k = 0;
    let mut op_of_old = Vec::with_capacity(m);
    for (i, op) in ops.iter().enumerate() {
        match op {
            Op::Add(_) => prev = Some(op),
            Op::Keep(_) | Op::Del(_) => {
                if k > 0 {
                    allowed[k] = match prev {
                        Some(Op::Keep(_)) => true,
                        Some(Op::Del(_)) => matches!(op, Op::Keep(_)),
                        _ => false,
                    };
                }
                op_of_old.push(i);
                prev = Some(op);
                k += 1;
            }
        }
    }
    let mut found: BTreeMap<usize, usize> = BTreeMap::new();
    for p in window.start..=window.end - (m + 1) {
        let a = (0..m)
            .take_while(|&j| hay.squashed[p + j] == old_s[j])
            .count();
        if a == 0 {
            continue;
        }
        let b = (0..m)
            .take_while(|&t| hay.squashed[p + m - t] == old_s[m - 1 - t])
            .count();
        let lo = 1.max(m.saturating_sub(b));
        let hi = a.min(m - 1);
        let ks: Vec<usize> = (lo..=hi).filter(|&k| allowed[k]).collect();
        let (Some(&first), Some(&last)) = (ks.first(), ks.last()) else {
            continue;
        };
        if !anchored(p, 0, 0, m + 1) {
            continue;
        }
        // Several gaps at one place give one result only when nothing but unchanged lines
        // lies between them.
        let same = ops[op_of_old[first - 1] + 1..op_of_old[last]]
            .iter()
            .all(|o| matches!(o, Op::Keep(_)));
        found.insert(p, if same { first } else { usize::MAX });
        if found.len() >= LIST_LIMIT {
            break;
        }
    }
    let mut places = found.into_iter();
    match (places.next(), places.next()) {
        (None, _) => None,
        (Some((pos, gap)), None) if gap != usize::MAX => {
            let rows = rows(hay, ops, pos, Some(gap));
            Some(match shift_for(&rows) {
                Some(shift) => Ok(Placement {
                    pos,
                    lead_trim: 0,
                    trail_trim: 0,
                    gap: Some(gap),
                    shift,
                    step: Step::MissingLine,
                }),
                None => Err(Miss::IndentUnclear { at: pos }),
            })
        }
        (Some((first, _)), second) => {
            let mut at = vec![first];
            at.extend(second.map(|(p, _)| p));
            at.extend(places.map(|(p, _)| p));
            Some(Err(Miss::Ambiguous {
                at,
                step: Step::MissingLine,
            }))
        }
    }
}

/// Context trimmed from the edges: the last step, for hunks whose outer context lines drifted
/// or lost a line. At each amount of trimming every split between the two edges is tried, and
/// the places found (with whitespace ignored) are compared by where the change itself lands:
/// only one such place is accepted. An edge is trimmed away completely only when the change
/// next to it starts (or ends) with a removed line: added lines there would have nothing to
/// say on which side of a dropped context line they belong.
fn trimmed(
    hay: &Hay<'_>,
    ops: &[Op],
    window: Range<usize>,
    anchored: &dyn Fn(usize, usize, usize, usize) -> bool,
) -> Result<Option<Placement>, Miss> {
    let lead = ops.iter().take_while(|o| matches!(o, Op::Keep(_))).count();
    if lead == ops.len() {
        return Ok(None);
    }
    let trail = ops
        .iter()
        .rev()
        .take_while(|o| matches!(o, Op::Keep(_)))
        .count();
    let lead_max = if matches!(ops[lead], Op::Del(_)) {
        lead
    } else {
        lead.saturating_sub(1)
    };
    let trail_max = if matches!(ops[ops.len() - trail - 1], Op::Del(_)) {
        trail
    } else {
        trail.saturating_sub(1)
    };
    let old: Vec<&str> = ops.iter().filter_map(Op::old_text).collect();
    let old_s: Vec<Cow<'_, str>> = old.iter().map(|l| squash(l)).collect();
    let m = old.len();

    for t in 1..=lead_max + trail_max {
        // Keyed by where the first line after the leading context lands.
        let mut places: BTreeMap<usize, Vec<(usize, usize, usize)>> = BTreeMap::new();
        for k in t.saturating_sub(trail_max)..=t.min(lead_max) {
            let r = t - k;
            let (alnum, nonblank) = anchor_size(&old[k..m - r]);
            if alnum < MIN_TRIMMED_ALNUM || nonblank < MIN_TRIMMED_LINES {
                continue;
            }
            for p in find(&hay.squashed, &old_s[k..m - r], window.clone()) {
                if anchored(p, k, r, m - k - r) {
                    places.entry(p + lead - k).or_default().push((k, r, p));
                }
            }
        }
        match places.len() {
            0 => continue,
            1 => {}
            _ => {
                let mut at: Vec<usize> = places.into_keys().collect();
                at.truncate(LIST_LIMIT);
                return Err(Miss::Ambiguous {
                    at,
                    step: Step::TrimmedContext,
                });
            }
        }
        for (k, r, p) in places.into_values().flatten() {
            let rows = rows(hay, &ops[k..ops.len() - r], p, None);
            if let Some(shift) = shift_for(&rows) {
                return Ok(Some(Placement {
                    pos: p,
                    lead_trim: k,
                    trail_trim: r,
                    gap: None,
                    shift,
                    step: Step::TrimmedContext,
                }));
            }
        }
    }
    Ok(None)
}

/// The text after applying `ops` (already trimmed as `placement` says) at `placement.pos`.
pub(crate) fn splice(
    text: &Text,
    placement: &Placement,
    ops: &[Op],
    old_missing_newline: bool,
    new_missing_newline: bool,
) -> Text {
    let file = &text.lines;
    let ops = &ops[placement.lead_trim..ops.len() - placement.trail_trim];
    let mut out: Vec<Line> = Vec::with_capacity(file.len() + ops.len());
    out.extend_from_slice(&file[..placement.pos]);
    let mut i = placement.pos;
    let mut j = 0;
    for op in ops {
        if op.old_text().is_some() {
            if placement.gap == Some(j) {
                out.push(file[i].clone());
                i += 1;
            }
            j += 1;
        }
        match op {
            Op::Keep(_) => {
                out.push(file[i].clone());
                i += 1;
            }
            Op::Del(_) => i += 1,
            Op::Add(t) => out.push(Line {
                text: placement.shift.apply(t).unwrap_or_else(|| t.clone()),
                eol: text.eol,
            }),
        }
    }
    let end = out.len();
    let produced = end > placement.pos;
    let reached_end = i == file.len();
    let had_final_newline = file.last().is_none_or(|l| l.eol != Eol::None);
    out.extend_from_slice(&file[i..]);
    if reached_end && (produced || new_missing_newline) {
        if let Some(last) = out.last_mut() {
            // The diff's `\ No newline` markers decide; without them the file keeps what it had.
            last.eol = if new_missing_newline {
                Eol::None
            } else if old_missing_newline || had_final_newline {
                if last.eol == Eol::None {
                    text.eol
                } else {
                    last.eol
                }
            } else {
                Eol::None
            };
        }
    }
    let mut result = Text {
        lines: out,
        bom: text.bom,
        eol: text.eol,
    };
    result.close_inner_lines();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Text {
        Text::parse(s.as_bytes()).expect("text")
    }

    fn ops(spec: &[&str]) -> Vec<Op> {
        spec.iter()
            .map(|l| match l.split_at(1) {
                ("+", t) => Op::Add(t.into()),
                ("-", t) => Op::Del(t.into()),
                (_, t) => Op::Keep(t.into()),
            })
            .collect()
    }

    fn edit(ops: &[Op], stated: Option<usize>) -> Edit<'_> {
        Edit {
            ops,
            stated,
            numbered: stated.is_some(),
            window: 0..usize::MAX,
            block: false,
            elided_before: false,
            elided_after: false,
        }
    }

    fn locate_in(file: &Text, edit: &Edit<'_>) -> Result<Placement, Miss> {
        locate(&Hay::new(&file.lines), edit)
    }

    #[test]
    fn when_text_is_at_stated_line_should_place_it_there_even_if_it_repeats() {
        let file = text("a\nb\nc\na\nb\nc\n");
        let o = ops(&[" a", "-b", "+x", " c"]);
        let found = locate_in(&file, &edit(&o, Some(3))).expect("placed");
        assert_eq!((found.pos, found.step), (3, Step::ExactAtLine));
    }

    #[test]
    fn when_stated_line_is_off_should_find_the_unique_place() {
        let file = text("zero\none\nfn alpha() {\n    body();\n}\n");
        let o = ops(&[" fn alpha() {", "-    body();", "+    other();", " }"]);
        let found = locate_in(&file, &edit(&o, Some(0))).expect("placed");
        assert_eq!((found.pos, found.step), (2, Step::ExactElsewhere));
    }

    #[test]
    fn when_anchor_matches_twice_should_refuse() {
        let file = text("let total = 1;\nlet other = 2;\nlet total = 1;\n");
        let o = ops(&["-let total = 1;", "+let total = 3;"]);
        let miss = locate_in(&file, &edit(&o, None)).expect_err("ambiguous");
        assert!(matches!(miss, Miss::Ambiguous { ref at, .. } if at == &vec![0, 2]));
    }

    #[test]
    fn when_anchor_is_a_lone_brace_should_refuse_unless_at_stated_line() {
        let file = text("fn a() {\n}\n");
        let o = ops(&[" }", "+// end"]);
        assert_eq!(
            locate_in(&file, &edit(&o, None)).expect_err("weak"),
            Miss::Weak
        );
        let found = locate_in(&file, &edit(&o, Some(1))).expect("at line");
        assert_eq!(found.step, Step::ExactAtLine);
    }

    #[test]
    fn when_indentation_is_shifted_should_reindent_added_lines() {
        let file = text("impl A {\n    fn f() {\n        one();\n    }\n}\n");
        // The removed line has the context's indentation: the added lines follow it too.
        let o = ops(&[
            " fn f() {",
            "-    one();",
            "+    two();",
            "+    three();",
            " }",
        ]);
        let found = locate_in(&file, &edit(&o, None)).expect("placed");
        assert_eq!(found.step, Step::Indentation);
        assert_eq!(found.shift, Shift::Add("    ".into()));
        let out = splice(&file, &found, &o, false, false);
        assert_eq!(
            String::from_utf8(out.to_bytes()).expect("utf8"),
            "impl A {\n    fn f() {\n        two();\n        three();\n    }\n}\n"
        );
    }

    #[test]
    fn when_context_line_next_to_pure_insertion_is_missing_should_refuse() {
        // Is `new` before or after `third_line`? The diff cannot say.
        let file =
            text("first_line();\nsecond_line();\nthird_line();\nfourth_line();\nfifth_line();\n");
        let o = ops(&[
            " first_line();",
            " second_line();",
            "+new();",
            " fourth_line();",
            " fifth_line();",
        ]);
        assert!(locate_in(&file, &edit(&o, None)).is_err());
    }

    #[test]
    fn when_outer_context_line_differs_should_trim_and_apply() {
        let file =
            text("first_line();\nsecond_line();\nthird_line();\nfourth_line();\nfifth_line();\n");
        let o = ops(&[
            " first_line_as_misremembered();",
            " second_line();",
            " third_line();",
            "+new();",
            " fourth_line();",
            " fifth_line();",
        ]);
        let found = locate_in(&file, &edit(&o, None)).expect("placed");
        assert_eq!(found.step, Step::TrimmedContext);
        let out = splice(&file, &found, &o, false, false);
        assert_eq!(
            String::from_utf8(out.to_bytes()).expect("utf8"),
            "first_line();\nsecond_line();\nthird_line();\nnew();\nfourth_line();\nfifth_line();\n"
        );
    }

    #[test]
    fn when_file_lacks_final_newline_and_diff_says_nothing_should_keep_it_missing() {
        let file = text("a\nb");
        let o = ops(&[" a", " b", "+c"]);
        let found = locate_in(&file, &edit(&o, Some(0))).expect("placed");
        let out = splice(&file, &found, &o, false, false);
        assert_eq!(out.to_bytes(), b"a\nb\nc".to_vec());
        let out = splice(&file, &found, &o, true, false);
        assert_eq!(out.to_bytes(), b"a\nb\nc\n".to_vec());
    }

    #[test]
    fn when_shift_is_described_should_count_spaces_and_tabs() {
        assert_eq!(Shift::Add("    ".into()).describe(), "+4 spaces");
        assert_eq!(Shift::Remove("\t".into()).describe(), "-1 tab");
    }

    #[test]
    fn when_an_inner_context_line_is_missing_should_keep_it_and_apply() {
        let file = text("fn a() {\n    one();\n    two();\n    three();\n}\n");
        let o = ops(&[" fn a() {", "     one();", "     three();", "-}", "+} // a"]);
        let found = locate_in(&file, &edit(&o, None)).expect("placed");
        assert_eq!((found.step, found.gap), (Step::MissingLine, Some(2)));
        let out = splice(&file, &found, &o, false, false);
        assert_eq!(
            String::from_utf8(out.to_bytes()).expect("utf8"),
            "fn a() {\n    one();\n    two();\n    three();\n} // a\n"
        );
    }

    #[test]
    fn when_the_missing_line_was_next_to_added_lines_should_refuse() {
        // Does `new();` go before or after `two();`? The diff cannot say.
        let file = text("fn a() {\n    one();\n    two();\n    three();\n}\n");
        let o = ops(&[
            " fn a() {",
            "     one();",
            "+    new();",
            "     three();",
            " }",
        ]);
        assert!(locate_in(&file, &edit(&o, None)).is_err());
    }

    #[test]
    fn when_lines_occur_twice_a_window_should_decide_between_them() {
        let file = text("alpha();\nbeta();\ngamma();\nalpha();\nbeta();\ngamma();\n");
        let o = ops(&[" alpha();", "-beta();", "+BETA();", " gamma();"]);
        assert!(matches!(
            locate_in(&file, &edit(&o, None)),
            Err(Miss::Ambiguous { .. })
        ));
        let mut later = edit(&o, None);
        later.window = 3..6;
        assert_eq!(locate_in(&file, &later).expect("placed").pos, 3);
    }
}
