//! Where an edit goes: the matching ladder.
//!
//! Each step is tried only when the one before found nothing, and only a unique place is
//! accepted. A step that finds several places ends the search: every later step is looser and
//! would find at least those places again, and guessing among them is how wrong edits happen.

use std::collections::BTreeMap;

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
    fn old_text(&self) -> Option<&str> {
        match self {
            Op::Keep(t) | Op::Del(t) => Some(t),
            Op::Add(_) => None,
        }
    }
}

/// An edit to place: a hunk or a search/replace block.
#[derive(Debug)]
pub(crate) struct Edit<'a> {
    pub ops: &'a [Op],
    /// 0-based index in the current text where the header says the old lines start.
    pub stated: Option<usize>,
    /// The header had line numbers and counts that agree with the body.
    pub numbered: bool,
    /// Lines before this index are not searched: hunks of one file come in file order.
    pub from: usize,
    /// A search/replace block: its exact match is the expected case, and it has no context to
    /// trim.
    pub block: bool,
}

/// How the added lines are re-indented: the file's indentation differs from the edit's by a
/// constant prefix.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Shift {
    Zero,
    /// The file has this prefix where the edit has none.
    Add(String),
    /// The edit has this prefix where the file has none.
    Remove(String),
}

impl Shift {
    /// A description for messages: "+4 spaces", "-1 tab".
    pub fn describe(&self) -> String {
        let (sign, prefix) = match self {
            Shift::Zero => return "0".into(),
            Shift::Add(p) => ('+', p),
            Shift::Remove(p) => ('-', p),
        };
        let tabs = prefix.chars().filter(|&c| c == '\t').count();
        let spaces = prefix.chars().count() - tabs;
        let mut parts = Vec::new();
        if spaces > 0 {
            parts.push(format!("{spaces} space{}", plural(spaces)));
        }
        if tabs > 0 {
            parts.push(format!("{tabs} tab{}", plural(tabs)));
        }
        format!("{sign}{}", parts.join(" "))
    }

    fn apply(&self, line: &str) -> Option<String> {
        if line.trim().is_empty() {
            return Some(line.to_string());
        }
        match self {
            Shift::Zero => Some(line.to_string()),
            Shift::Add(p) => Some(format!("{p}{line}")),
            Shift::Remove(p) => line.strip_prefix(p.as_str()).map(str::to_string),
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Where and how an edit applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Placement {
    /// 0-based index in the current text of the first old line kept after trimming.
    pub pos: usize,
    /// Leading context lines left out.
    pub lead_trim: usize,
    /// Trailing context lines left out.
    pub trail_trim: usize,
    pub shift: Shift,
    pub step: Step,
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
    /// The lines exist only before the previous hunk's end.
    OutOfOrder { at: usize },
    /// The old lines are nowhere, but the new lines are, once: the edit was applied before.
    AlreadyApplied { at: usize },
    /// The hunk begins (or ends) with added lines, so it belongs at the start (or end) of the
    /// file, but its lines are elsewhere: a context line next to the added lines is missing.
    Unanchored { at: usize },
    /// No place matches.
    NotFound { closest: Option<Closest> },
}

/// The place that resembles the old lines most, for a model to see what differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Closest {
    /// 0-based index where the old lines would start.
    pub pos: usize,
    /// Non-blank old lines that match there.
    pub matched: usize,
    /// Non-blank old lines in all.
    pub total: usize,
    /// The first differing lines.
    pub diffs: Vec<LineDiff>,
}

/// One line that differs at the closest place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LineDiff {
    /// 0-based index in the file.
    pub at: usize,
    pub expected: String,
    /// `None` past the end of the file.
    pub found: Option<String>,
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

/// Finds the one place where `edit` applies in `file`.
///
/// Past the stated line, a place counts as unique only if it is the one place where the old
/// lines occur even with all whitespace at both ends of each line ignored: otherwise a hunk
/// whose indentation drifted could match exactly at a copy of the code nested deeper, far
/// from where it belongs.
pub(crate) fn locate(file: &[Line], edit: &Edit<'_>) -> Result<Placement, Miss> {
    let hay: Vec<&str> = file.iter().map(|l| l.text.as_str()).collect();
    let old: Vec<&str> = edit.ops.iter().filter_map(Op::old_text).collect();
    let from = edit.from.min(hay.len());
    let placed = |pos: usize, shift: Shift, step: Step| Placement {
        pos,
        lead_trim: 0,
        trail_trim: 0,
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
        return if hay.is_empty() {
            Ok(placed(0, Shift::Zero, unique_step_for_empty(edit)))
        } else {
            Err(Miss::NoAnchor)
        };
    }

    if let Some(p) = edit.stated
        && p >= from
        && p + old.len() <= hay.len()
        && hay[p..p + old.len()] == old[..]
    {
        return Ok(placed(p, Shift::Zero, Step::ExactAtLine));
    }

    if !strong(&old, MIN_ANCHOR_ALNUM, MIN_ANCHOR_LINES) {
        return Err(Miss::Weak);
    }

    let anchored = |p: usize, lead: usize, trail: usize| {
        edit.block || edge_anchored(&edit.ops[lead..edit.ops.len() - trail], p, hay.len())
    };
    let hay_t: Vec<&str> = hay.iter().map(|l| l.trim_end()).collect();
    let old_t: Vec<&str> = old.iter().map(|l| l.trim_end()).collect();
    let hay_w: Vec<&str> = hay.iter().map(|l| l.trim()).collect();
    let old_w: Vec<&str> = old.iter().map(|l| l.trim()).collect();
    let everywhere = find(&hay_w, &old_w, from, |a, b| a == b);
    let unanchored = everywhere.iter().copied().find(|&p| !anchored(p, 0, 0));
    let anywhere: Vec<usize> = everywhere
        .into_iter()
        .filter(|&p| anchored(p, 0, 0))
        .collect();
    let decide = |found: Vec<(usize, Shift)>, step: Step| -> Option<Result<Placement, Miss>> {
        let mut valid: Vec<(usize, Shift)> = found
            .into_iter()
            .filter(|&(p, _)| anchored(p, 0, 0))
            .collect();
        match valid.len() {
            0 => None,
            1 if anywhere.len() <= 1 => {
                let (pos, shift) = valid.remove(0);
                Some(Ok(placed(pos, shift, step)))
            }
            _ => {
                let mut at: Vec<usize> = valid.iter().map(|(p, _)| *p).collect();
                at.extend(anywhere.iter().copied());
                at.sort_unstable();
                at.dedup();
                at.truncate(LIST_LIMIT);
                Some(Err(Miss::Ambiguous { at, step }))
            }
        }
    };
    let zero = |ps: Vec<usize>| ps.into_iter().map(|p| (p, Shift::Zero)).collect::<Vec<_>>();

    if let Some(done) = decide(zero(find(&hay, &old, from, |a, b| a == b)), unique_step) {
        return done;
    }
    if let Some(done) = decide(
        zero(find(&hay_t, &old_t, from, |a, b| a == b)),
        Step::TrailingWhitespace,
    ) {
        return done;
    }
    let adds: Vec<&str> = edit
        .ops
        .iter()
        .filter_map(|op| match op {
            Op::Add(t) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    if let Some(done) = decide(find_shifted(&hay, &old, &adds, from), Step::Indentation) {
        return done;
    }
    if !edit.block {
        let lines = Lines {
            hay: &hay,
            hay_t: &hay_t,
            hay_w: &hay_w,
        };
        if let Some(found) = trimmed(&lines, edit.ops, &adds, from, &anchored)? {
            return Ok(found);
        }
    }

    if let Some(at) = unanchored {
        return Err(Miss::Unanchored { at });
    }
    if from > 0 {
        let earlier = find(&hay_t, &old_t, 0, |a, b| a == b);
        if let Some(&at) = earlier.first() {
            return Err(Miss::OutOfOrder { at });
        }
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
        let done = find(&hay_t, &new_t, 0, |a, b| a == b);
        if let [at] = done[..] {
            return Err(Miss::AlreadyApplied { at });
        }
    }
    Err(Miss::NotFound {
        closest: closest(&hay, &old, edit.stated.unwrap_or(from)),
    })
}

/// A hunk that begins with a pure insertion has nothing before the added lines to say where
/// they go, so it belongs at the start of the file, as a clean diff has it; one that ends with
/// a pure insertion, at the end. Added lines that replace removed lines are pinned by those.
fn edge_anchored(ops: &[Op], pos: usize, file_len: usize) -> bool {
    let old_len = ops.iter().filter(|o| o.old_text().is_some()).count();
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
    let open_start = matches!(ops.first(), Some(Op::Add(_))) && pure_insertion(&mut ops.iter());
    let open_end = matches!(ops.last(), Some(Op::Add(_))) && pure_insertion(&mut ops.iter().rev());
    (!open_start || pos == 0) && (!open_end || pos + old_len == file_len)
}

fn unique_step_for_empty(edit: &Edit<'_>) -> Step {
    if edit.block {
        Step::SearchExact
    } else {
        Step::ExactAtLine
    }
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

/// Every start index at or after `from` where `needle` matches, up to [`LIST_LIMIT`].
fn find(hay: &[&str], needle: &[&str], from: usize, eq: impl Fn(&str, &str) -> bool) -> Vec<usize> {
    let mut out = Vec::new();
    if needle.is_empty() || needle.len() > hay.len() {
        return out;
    }
    for p in from..=hay.len() - needle.len() {
        if needle.iter().enumerate().all(|(j, n)| eq(hay[p + j], n)) {
            out.push(p);
            if out.len() >= LIST_LIMIT {
                break;
            }
        }
    }
    out
}

/// Every place where `needle` matches with its indentation shifted by one constant prefix (and
/// trailing whitespace ignored), where the added lines can be shifted the same way.
fn find_shifted(hay: &[&str], needle: &[&str], adds: &[&str], from: usize) -> Vec<(usize, Shift)> {
    let mut out = Vec::new();
    if needle.is_empty() || needle.len() > hay.len() {
        return out;
    }
    for p in from..=hay.len() - needle.len() {
        if let Some(shift) = shift_at(hay, needle, adds, p) {
            out.push((p, shift));
            if out.len() >= LIST_LIMIT {
                break;
            }
        }
    }
    out
}

/// The shift under which `needle` matches at `p`, if there is one (and it is not zero).
fn shift_at(hay: &[&str], needle: &[&str], adds: &[&str], p: usize) -> Option<Shift> {
    let first = needle.iter().position(|l| !l.trim().is_empty())?;
    let shift = shift_between(hay[p + first], needle[first])?;
    let fits = needle
        .iter()
        .enumerate()
        .all(|(j, n)| shifted_eq(hay[p + j], n, &shift))
        && adds.iter().all(|a| shift.apply(a).is_some());
    fits.then_some(shift)
}

fn leading_ws(s: &str) -> &str {
    &s[..s.len() - s.trim_start().len()]
}

/// The constant prefix that turns the edit's line into the file's, when their content agrees
/// and only the indentation differs.
fn shift_between(file_line: &str, edit_line: &str) -> Option<Shift> {
    let (fw, ew) = (leading_ws(file_line), leading_ws(edit_line));
    if file_line[fw.len()..].trim_end() != edit_line[ew.len()..].trim_end() {
        return None;
    }
    if fw.len() > ew.len() && fw.ends_with(ew) {
        Some(Shift::Add(fw[..fw.len() - ew.len()].to_string()))
    } else if ew.len() > fw.len() && ew.ends_with(fw) {
        Some(Shift::Remove(ew[..ew.len() - fw.len()].to_string()))
    } else {
        None
    }
}

fn shifted_eq(file_line: &str, edit_line: &str, shift: &Shift) -> bool {
    if edit_line.trim().is_empty() {
        return file_line.trim().is_empty();
    }
    match shift.apply(edit_line) {
        Some(s) => s.trim_end() == file_line.trim_end(),
        None => false,
    }
}

/// The file's lines as each step compares them: as they are, without trailing whitespace, and
/// without whitespace at either end.
struct Lines<'a> {
    hay: &'a [&'a str],
    hay_t: &'a [&'a str],
    hay_w: &'a [&'a str],
}

/// Context trimmed from the edges: the last step, for hunks whose outer context lines drifted
/// or lost a line. At each amount of trimming every split between the two edges is tried, and
/// the places found (with all whitespace ignored) are compared by where the change itself
/// lands: only one such place is accepted. An edge is trimmed away completely only when the
/// change next to it starts (or ends) with a removed line: added lines there would have nothing
/// to say on which side of a dropped context line they belong.
fn trimmed(
    lines: &Lines<'_>,
    ops: &[Op],
    adds: &[&str],
    from: usize,
    anchored: &dyn Fn(usize, usize, usize) -> bool,
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
    let old_t: Vec<&str> = old.iter().map(|l| l.trim_end()).collect();
    let old_w: Vec<&str> = old.iter().map(|l| l.trim()).collect();
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
            for p in find(lines.hay_w, &old_w[k..m - r], from, |a, b| a == b) {
                if anchored(p, k, r) {
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
            let needle = &old[k..m - r];
            let shift = if lines.hay_t[p..p + needle.len()] == old_t[k..m - r] {
                Some(Shift::Zero)
            } else {
                shift_at(lines.hay, needle, adds, p)
            };
            if let Some(shift) = shift {
                return Ok(Some(Placement {
                    pos: p,
                    lead_trim: k,
                    trail_trim: r,
                    shift,
                    step: Step::TrimmedContext,
                }));
            }
        }
    }
    Ok(None)
}

/// The place where most non-blank old lines match, ignoring whitespace at both ends; ties go
/// to the place nearest `near`.
fn closest(hay: &[&str], old: &[&str], near: usize) -> Option<Closest> {
    use std::collections::hash_map::DefaultHasher;
    use std::hash::{Hash, Hasher};
    let key = |s: &str| {
        let mut h = DefaultHasher::new();
        s.trim().hash(&mut h);
        h.finish()
    };
    if hay.is_empty() {
        return None;
    }
    let hay_k: Vec<u64> = hay.iter().map(|l| key(l)).collect();
    let old_k: Vec<u64> = old.iter().map(|l| key(l)).collect();
    let counted: Vec<bool> = old.iter().map(|l| !l.trim().is_empty()).collect();
    let total = counted.iter().filter(|&&c| c).count();
    let mut best: Option<(usize, usize)> = None;
    for p in 0..hay.len() {
        let score = (0..old.len())
            .filter(|&j| counted[j] && p + j < hay.len() && hay_k[p + j] == old_k[j])
            .count();
        let better = match best {
            None => score > 0,
            Some((bp, bs)) => score > bs || (score == bs && p.abs_diff(near) < bp.abs_diff(near)),
        };
        if better {
            best = Some((p, score));
        }
    }
    let (pos, matched) = best?;
    let diffs = old
        .iter()
        .enumerate()
        .filter(|&(j, line)| hay.get(pos + j).map(|h| h.trim()) != Some(line.trim()))
        .take(4)
        .map(|(j, line)| LineDiff {
            at: pos + j,
            expected: (*line).to_string(),
            found: hay.get(pos + j).map(|h| (*h).to_string()),
        })
        .collect();
    Some(Closest {
        pos,
        matched,
        total,
        diffs,
    })
}

/// The text after applying `ops` (already trimmed as `placement` says) at `placement.pos`.
/// Returns it with the index just past the change, for the next hunk to search from.
pub(crate) fn splice(
    text: &Text,
    placement: &Placement,
    ops: &[Op],
    old_missing_newline: bool,
    new_missing_newline: bool,
) -> (Text, usize) {
    let file = &text.lines;
    let ops = &ops[placement.lead_trim..ops.len() - placement.trail_trim];
    let mut out: Vec<Line> = Vec::with_capacity(file.len() + ops.len());
    out.extend_from_slice(&file[..placement.pos]);
    let mut i = placement.pos;
    for op in ops {
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
    (result, end)
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
            from: 0,
            block: false,
        }
    }

    #[test]
    fn when_text_is_at_stated_line_should_place_it_there_even_if_it_repeats() {
        let file = text("a\nb\nc\na\nb\nc\n");
        let o = ops(&[" a", "-b", "+x", " c"]);
        let found = locate(&file.lines, &edit(&o, Some(3))).expect("placed");
        assert_eq!((found.pos, found.step), (3, Step::ExactAtLine));
    }

    #[test]
    fn when_stated_line_is_off_should_find_the_unique_place() {
        let file = text("zero\none\nfn alpha() {\n    body();\n}\n");
        let o = ops(&[" fn alpha() {", "-    body();", "+    other();", " }"]);
        let found = locate(&file.lines, &edit(&o, Some(0))).expect("placed");
        assert_eq!((found.pos, found.step), (2, Step::ExactElsewhere));
    }

    #[test]
    fn when_anchor_matches_twice_should_refuse() {
        let file = text("let total = 1;\nlet other = 2;\nlet total = 1;\n");
        let o = ops(&["-let total = 1;", "+let total = 3;"]);
        let miss = locate(&file.lines, &edit(&o, None)).expect_err("ambiguous");
        assert!(matches!(miss, Miss::Ambiguous { ref at, .. } if at == &vec![0, 2]));
    }

    #[test]
    fn when_anchor_is_a_lone_brace_should_refuse_unless_at_stated_line() {
        let file = text("fn a() {\n}\n");
        let o = ops(&[" }", "+// end"]);
        assert_eq!(
            locate(&file.lines, &edit(&o, None)).expect_err("weak"),
            Miss::Weak
        );
        let found = locate(&file.lines, &edit(&o, Some(1))).expect("at line");
        assert_eq!(found.step, Step::ExactAtLine);
    }

    #[test]
    fn when_indentation_is_shifted_should_reindent_added_lines() {
        let file = text("impl A {\n    fn f() {\n        one();\n    }\n}\n");
        let o = ops(&[" fn f() {", "     one();", "+    two();", " }"]);
        let found = locate(&file.lines, &edit(&o, None)).expect("placed");
        assert_eq!(found.step, Step::Indentation);
        assert_eq!(found.shift, Shift::Add("    ".into()));
        let (out, _) = splice(&file, &found, &o, false, false);
        assert_eq!(
            String::from_utf8(out.to_bytes()).expect("utf8"),
            "impl A {\n    fn f() {\n        one();\n        two();\n    }\n}\n"
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
        assert!(locate(&file.lines, &edit(&o, None)).is_err());
    }

    #[test]
    fn when_outer_context_line_is_missing_should_trim_and_apply() {
        let file =
            text("first_line();\nsecond_line();\nthird_line();\nfourth_line();\nfifth_line();\n");
        let o = ops(&[
            " first_line();",
            " third_line();",
            "+new();",
            " fourth_line();",
            " fifth_line();",
        ]);
        let found = locate(&file.lines, &edit(&o, None)).expect("placed");
        assert_eq!(found.step, Step::TrimmedContext);
        let (out, _) = splice(&file, &found, &o, false, false);
        assert_eq!(
            String::from_utf8(out.to_bytes()).expect("utf8"),
            "first_line();\nsecond_line();\nthird_line();\nnew();\nfourth_line();\nfifth_line();\n"
        );
    }

    #[test]
    fn when_file_lacks_final_newline_and_diff_says_nothing_should_keep_it_missing() {
        let file = text("a\nb");
        let o = ops(&[" a", " b", "+c"]);
        let found = locate(&file.lines, &edit(&o, Some(0))).expect("placed");
        let (out, _) = splice(&file, &found, &o, false, false);
        assert_eq!(out.to_bytes(), b"a\nb\nc".to_vec());
        let (out, _) = splice(&file, &found, &o, true, false);
        assert_eq!(out.to_bytes(), b"a\nb\nc\n".to_vec());
    }

    #[test]
    fn when_shift_is_described_should_count_spaces_and_tabs() {
        assert_eq!(Shift::Add("    ".into()).describe(), "+4 spaces");
        assert_eq!(Shift::Remove("\t".into()).describe(), "-1 tab");
    }
}
