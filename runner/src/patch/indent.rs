//! Whitespace: how lines compare when it is ignored, and how added lines are indented when the
//! edit's unchanged lines are indented differently from the file's.
//!
//! Models retype the unchanged lines of a diff: tabs become spaces, JSON is re-indented, a
//! trailing space goes missing, or the whole hunk moves by a level. Which indentation the
//! added lines follow (the file's or the edit's) is read from the edit itself: removed lines
//! copied exactly say the changed lines follow the file; removed lines with the same drift as
//! the context say they follow the edit, and then they are translated the same way. When
//! nothing says, or the evidence disagrees, the edit is refused.

use std::borrow::Cow;

/// A line as compared with all whitespace ignored but word boundaries: trimmed, and every run
/// of spaces and tabs inside made one space.
pub(crate) fn squash(line: &str) -> Cow<'_, str> {
    let t = line.trim();
    let mut prev_space = false;
    let needs = t.chars().any(|c| {
        let bad = c == '\t' || (c == ' ' && prev_space) || (c.is_whitespace() && c != ' ');
        prev_space = c.is_whitespace();
        bad
    });
    if !needs {
        return Cow::Borrowed(t);
    }
    let mut out = String::with_capacity(t.len());
    let mut in_space = false;
    for c in t.chars() {
        if c.is_whitespace() {
            if !in_space {
                out.push(' ');
            }
            in_space = true;
        } else {
            out.push(c);
            in_space = false;
        }
    }
    Cow::Owned(out)
}

pub(crate) fn leading_ws(s: &str) -> &str {
    &s[..s.len() - s.trim_start().len()]
}

/// How the added lines are re-indented to fit the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Shift {
    /// As written.
    Zero,
    /// The file has this prefix where the edit has none.
    Add(String),
    /// The edit has this prefix where the file has none.
    Remove(String),
    /// The edit indents with other characters or widths than the file (four spaces for a
    /// tab, two for four): each added line's indentation is translated.
    Translate(IndentMap),
}

impl Shift {
    /// A description for messages: "+4 spaces", "-1 tab", "4 spaces as 1 tab".
    pub fn describe(&self) -> String {
        match self {
            Shift::Zero => "0".into(),
            Shift::Add(p) => format!("+{}", width(p)),
            Shift::Remove(p) => format!("-{}", width(p)),
            Shift::Translate(map) => map.describe(),
        }
    }

    /// The added line as it goes into the file; `None` when it cannot be indented that way.
    pub fn apply(&self, line: &str) -> Option<String> {
        if line.trim().is_empty() {
            return Some(line.to_string());
        }
        match self {
            Shift::Zero => Some(line.to_string()),
            Shift::Add(p) => Some(format!("{p}{line}")),
            Shift::Remove(p) => line.strip_prefix(p.as_str()).map(str::to_string),
            Shift::Translate(map) => {
                let lead = leading_ws(line);
                map.translate(lead)
                    .map(|new| format!("{new}{}", &line[lead.len()..]))
            }
        }
    }
}

/// "4 spaces", "1 tab", "2 spaces 1 tab".
fn width(prefix: &str) -> String {
    let tabs = prefix.chars().filter(|&c| c == '\t').count();
    let spaces = prefix.chars().count() - tabs;
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let mut parts = Vec::new();
    if spaces > 0 {
        parts.push(format!("{spaces} space{}", plural(spaces)));
    }
    if tabs > 0 {
        parts.push(format!("{tabs} tab{}", plural(tabs)));
    }
    if parts.is_empty() {
        parts.push("nothing".into());
    }
    parts.join(" ")
}

/// A translation of indentation learned from the edit's unchanged and removed lines: the
/// indentations seen, and a unit (so many of one character for so many of another) for the
/// others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IndentMap {
    seen: Vec<(String, String)>,
    unit: Option<Unit>,
    columns: Option<Columns>,
}

/// Tabs and spaces mixed, at the same columns on both sides (a tab counting `tab` columns);
/// `file_tabs`: the file indents with tabs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Columns {
    tab: usize,
    file_tabs: bool,
}

impl Columns {
    fn width(s: &str, tab: usize) -> usize {
        s.chars().map(|c| if c == '\t' { tab } else { 1 }).sum()
    }

    fn learn(pairs: &[(&str, &str)]) -> Option<Columns> {
        [4, 8].into_iter().find_map(|tab| {
            pairs
                .iter()
                .all(|(e, f)| Self::width(e, tab) == Self::width(f, tab))
                .then(|| Columns {
                    tab,
                    file_tabs: pairs.iter().any(|(_, f)| f.contains('\t')),
                })
        })
    }

    fn translate(&self, lead: &str) -> String {
        let width = Self::width(lead, self.tab);
        if self.file_tabs {
            format!(
                "{}{}",
                "\t".repeat(width / self.tab),
                " ".repeat(width % self.tab)
            )
        } else {
            " ".repeat(width)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Unit {
    from: char,
    from_n: usize,
    to: char,
    to_n: usize,
}

impl IndentMap {
    fn translate(&self, lead: &str) -> Option<String> {
        if let Some((_, to)) = self.seen.iter().find(|(from, _)| from == lead) {
            return Some(to.clone());
        }
        if lead.is_empty() {
            return Some(String::new());
        }
        if let Some(columns) = self.columns {
            return Some(columns.translate(lead));
        }
        let unit = self.unit?;
        let n = lead.chars().count();
        (lead.chars().all(|c| c == unit.from) && n % unit.from_n == 0)
            .then(|| unit.to.to_string().repeat(n / unit.from_n * unit.to_n))
    }

    fn describe(&self) -> String {
        if let Some(c) = self.columns {
            return format!("tabs of {} columns as spaces", c.tab);
        }
        match self.unit {
            Some(u) => format!(
                "{} as {}",
                width(&u.from.to_string().repeat(u.from_n)),
                width(&u.to.to_string().repeat(u.to_n))
            ),
            None => "the file's indentation".into(),
        }
    }

    /// The map explaining every pair (edit indentation, file indentation), if a systematic
    /// one does: one width for another (`Unit`), or tabs for spaces at the same columns.
    fn learn(pairs: &[(&str, &str)]) -> Option<IndentMap> {
        let mut seen: Vec<(String, String)> = Vec::new();
        for &(from, to) in pairs {
            match seen.iter().find(|(f, _)| f == from) {
                Some((_, t)) if t != to => return None,
                Some(_) => {}
                None => seen.push((from.to_string(), to.to_string())),
            }
        }
        let unit = Unit::learn(pairs);
        let columns = if unit.is_some() {
            None
        } else {
            Columns::learn(pairs)
        };
        (unit.is_some() || columns.is_some()).then_some(IndentMap {
            seen,
            unit,
            columns,
        })
    }
}

impl Unit {
    /// One character on each side and one ratio for every pair, or none.
    fn learn(pairs: &[(&str, &str)]) -> Option<Unit> {
        let kind = |s: &str| -> Option<Option<char>> {
            let mut chars = s.chars();
            match chars.next() {
                None => Some(None),
                Some(c) => chars.all(|d| d == c).then_some(Some(c)),
            }
        };
        let (mut from, mut to) = (None, None);
        let mut ratio: Option<(usize, usize)> = None;
        for &(f, t) in pairs {
            let (fk, tk) = (kind(f)?, kind(t)?);
            let (fl, tl) = (f.chars().count(), t.chars().count());
            if (fl == 0) != (tl == 0) {
                return None;
            }
            if fl == 0 {
                continue;
            }
            if from.get_or_insert(fk?) != &fk? || to.get_or_insert(tk?) != &tk? {
                return None;
            }
            let g = gcd(fl, tl);
            let r = (fl / g, tl / g);
            if *ratio.get_or_insert(r) != r {
                return None;
            }
        }
        let (from_n, to_n) = ratio?;
        Some(Unit {
            from: from?,
            from_n,
            to: to?,
            to_n,
        })
    }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Which indentation the added lines follow, as the edit shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Follows {
    File,
    Edit,
}

/// One line of an edit lined up with the file: the edit's text and the file's, or an added
/// line.
pub(crate) enum Row<'a> {
    Old {
        edit: &'a str,
        file: &'a str,
        removed: bool,
    },
    Added(&'a str),
}

/// How to indent the added lines of an edit placed where its old lines match the file with
/// whitespace ignored. `None`: the edit does not say (or contradicts itself), so it is refused.
///
/// Drift is a consistent translation: the same indentation in the edit is the same in the file
/// on every line, or the place is not the edit's (a `}` matched against a nested `    }`).
/// Removed lines decide how the added lines are indented: copied exactly, the added lines stay
/// as written; drifted like the context, they are translated the same way. Without removed
/// lines, a hunk moved as a whole by a constant prefix moves its added lines too, unless every
/// added line beside an unchanged one is indented as the file has it there (then nothing can
/// tell the two apart, and the edit is refused); any other drift keeps the added lines as
/// written only when they are indented as the file's lines beside them.
pub(crate) fn shift_for(rows: &[Row<'_>]) -> Option<Shift> {
    let pairs_of = |removed_too: bool| -> Vec<(&str, &str)> {
        rows.iter()
            .filter_map(|r| match r {
                Row::Old {
                    edit,
                    file,
                    removed,
                } if !edit.trim().is_empty() && (removed_too || !removed) => {
                    Some((leading_ws(edit), leading_ws(file)))
                }
                _ => None,
            })
            .collect()
    };
    let (all, context) = (pairs_of(true), pairs_of(false));
    if all.iter().all(|(e, f)| e == f) {
        return Some(Shift::Zero);
    }
    let added: Vec<&str> = rows
        .iter()
        .filter_map(|r| match r {
            Row::Added(t) => Some(*t),
            Row::Old { .. } => None,
        })
        .collect();
    let systematic = |pairs: &[(&str, &str)]| {
        pairs.iter().all(|(e, f)| e == f)
            || constant(pairs).is_some()
            || IndentMap::learn(pairs).is_some()
    };
    let fits = |shift: Shift| {
        added
            .iter()
            .all(|a| shift.apply(a).is_some())
            .then_some(shift)
    };
    let edit_style = |pairs: &[(&str, &str)]| {
        constant(pairs)
            .or_else(|| IndentMap::learn(pairs).map(Shift::Translate))
            .and_then(fits)
    };
    let unindented = added
        .iter()
        .all(|a| leading_ws(a).is_empty() || a.trim().is_empty());
    match removed_votes(rows) {
        Some(Ok(Follows::File)) => systematic(&context).then_some(Shift::Zero),
        Some(Ok(Follows::Edit)) => edit_style(&all),
        Some(Err(())) => None,
        None if !systematic(&all) => None,
        None if unindented => Some(Shift::Zero),
        None => match (constant(&all), neighbour_votes(rows)) {
            (Some(_), Some(Ok(Follows::File))) => None,
            (Some(shift), _) => fits(shift),
            (None, Some(Ok(Follows::File))) => Some(Shift::Zero),
            (None, _) => None,
        },
    }
}

/// The one prefix added to or removed from every pair, if there is one.
fn constant(pairs: &[(&str, &str)]) -> Option<Shift> {
    let &(e, f) = pairs.iter().find(|(e, f)| e != f)?;
    let shift = if f.len() > e.len() && f.ends_with(e) {
        Shift::Add(f[..f.len() - e.len()].to_string())
    } else if e.len() > f.len() && e.ends_with(f) {
        Shift::Remove(e[..e.len() - f.len()].to_string())
    } else {
        return None;
    };
    pairs
        .iter()
        .all(|&(e, f)| shift.apply(&format!("{e}x")).as_deref() == Some(&format!("{f}x")))
        .then_some(shift)
}

/// Removed lines with indentation: copied exactly (the changed lines follow the file) or
/// drifted (they follow the edit). `Some(Err)` when they disagree; `None` when there are none.
fn removed_votes(rows: &[Row<'_>]) -> Option<Result<Follows, ()>> {
    let votes = rows.iter().filter_map(|r| match r {
        Row::Old {
            edit,
            file,
            removed: true,
        } => {
            let (e, f) = (leading_ws(edit), leading_ws(file));
            // A blank or unindented line is the same in every style: it says nothing.
            let says = !(edit.trim().is_empty() || (e.is_empty() && f.is_empty()));
            let follows = if e == f { Follows::File } else { Follows::Edit };
            says.then_some(follows)
        }
        _ => None,
    });
    unanimous(votes)
}

/// Added lines beside an unchanged line that drifted: indented as that line is in the file,
/// or as it is in the edit.
fn neighbour_votes(rows: &[Row<'_>]) -> Option<Result<Follows, ()>> {
    let mut votes = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let Row::Added(a) = r else { continue };
        if a.trim().is_empty() {
            continue;
        }
        let neighbours = [i.checked_sub(1).and_then(|j| rows.get(j)), rows.get(i + 1)];
        for n in neighbours.into_iter().flatten() {
            let Row::Old { edit, file, .. } = n else {
                continue;
            };
            let (e, f, lead) = (leading_ws(edit), leading_ws(file), leading_ws(a));
            if edit.trim().is_empty() || e == f {
                continue;
            }
            if lead == f {
                votes.push(Follows::File);
            } else if lead == e {
                votes.push(Follows::Edit);
            }
        }
    }
    unanimous(votes.into_iter())
}

fn unanimous(mut votes: impl Iterator<Item = Follows>) -> Option<Result<Follows, ()>> {
    let first = votes.next()?;
    Some(if votes.all(|v| v == first) {
        Ok(first)
    } else {
        Err(())
    })
}

/// A line with its whitespace made visible, for feedback: `·` a space, `→` a tab.
pub(crate) fn visible(line: &str) -> String {
    line.chars()
        .map(|c| match c {
            ' ' => '·',
            '\t' => '→',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn old<'a>(edit: &'a str, file: &'a str) -> Row<'a> {
        Row::Old {
            edit,
            file,
            removed: false,
        }
    }

    fn removed<'a>(edit: &'a str, file: &'a str) -> Row<'a> {
        Row::Old {
            edit,
            file,
            removed: true,
        }
    }

    #[test]
    fn when_whitespace_runs_differ_squash_should_make_them_equal() {
        assert_eq!(squash("  a\t=  b "), "a = b");
        assert_eq!(squash("a = b"), "a = b");
        assert_ne!(squash("a=b"), squash("a = b"));
    }

    #[test]
    fn when_removed_lines_are_exact_added_lines_should_stay_as_written() {
        let rows = [
            old("    if x {", "\tif x {"),
            removed("\t\ty();", "\t\ty();"),
            Row::Added("\t\tz();"),
        ];
        assert_eq!(shift_for(&rows), Some(Shift::Zero));
    }

    #[test]
    fn when_removed_lines_drift_like_the_context_added_lines_should_be_translated() {
        let rows = [
            old("    if x {", "\tif x {"),
            removed("        y();", "\t\ty();"),
            Row::Added("        z();"),
            Row::Added("            w();"),
        ];
        let shift = shift_for(&rows).expect("decided");
        assert_eq!(shift.apply("        z();").as_deref(), Some("\t\tz();"));
        assert_eq!(
            shift.apply("            w();").as_deref(),
            Some("\t\t\tw();")
        );
    }

    #[test]
    fn when_a_pure_insertion_is_indented_like_its_neighbour_in_the_file_it_should_stay() {
        // JSON re-indented from 2 to 4 spaces in the context only.
        let rows = [
            old("    \"scripts\": {", "  \"scripts\": {"),
            old("        \"build\": \"tsc\",", "    \"build\": \"tsc\","),
            Row::Added("    \"lint\": \"eslint\","),
            old("        \"test\": \"jest\"", "    \"test\": \"jest\""),
        ];
        assert_eq!(shift_for(&rows), Some(Shift::Zero));
    }

    #[test]
    fn when_one_line_matches_only_with_other_indentation_than_the_rest_should_refuse() {
        // `}` against a nested `    }`, while other unindented lines stay unindented.
        let rows = [
            old("    x();", "    x();"),
            old("}", "    }"),
            Row::Added("    y();"),
            old("fn z() {", "fn z() {"),
        ];
        assert_eq!(shift_for(&rows), None);
    }

    #[test]
    fn when_a_whole_hunk_is_shifted_its_added_lines_should_shift_too() {
        let rows = [
            old("        if x {", "    if x {"),
            Row::Added("            y();"),
            old("        }", "    }"),
        ];
        assert_eq!(shift_for(&rows), Some(Shift::Remove("    ".into())));
    }

    #[test]
    fn when_nothing_says_how_added_lines_are_indented_should_refuse() {
        let rows = [
            old("    a();", "\ta();"),
            Row::Added("            deeper();"),
            old("b();", "b();"),
        ];
        assert_eq!(shift_for(&rows), None);
    }

    #[test]
    fn when_removed_lines_disagree_should_refuse() {
        let rows = [
            removed("    a();", "\ta();"),
            removed("\tb();", "\tb();"),
            Row::Added("\tc();"),
        ];
        assert_eq!(shift_for(&rows), None);
    }

    #[test]
    fn when_whitespace_is_made_visible_spaces_and_tabs_should_show() {
        assert_eq!(visible("\t a "), "→·a·");
    }
}
