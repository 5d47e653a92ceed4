//! The place of a file that resembles an edit's old lines most, lined up with them line by
//! line, so that feedback can show the model the file's own lines and what differs.

use std::borrow::Cow;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use super::indent::{leading_ws, visible};

/// The closest place and the lines there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Closest {
    /// 0-based index of the first file line shown.
    pub pos: usize,
    /// Non-blank old lines found there, whitespace ignored.
    pub matched: usize,
    /// Non-blank old lines in all.
    pub total: usize,
    pub rows: Vec<Aligned>,
}

/// One line of the comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Aligned {
    /// The file line (0-based index) is the edit's, exactly.
    Same { at: usize, text: String },
    /// The file line and the edit's line at its place differ (maybe only in whitespace).
    Differs {
        at: usize,
        file: String,
        edit: String,
    },
    /// A file line between the edit's lines that the edit does not have.
    FileOnly { at: usize, file: String },
    /// An edit line that the file does not have here.
    EditOnly { edit: String },
}

/// How many rows feedback shows at most.
const SHOWN_ROWS: usize = 16;

/// Candidate places lined up in full: the best by a quick positional count.
const CANDIDATES: usize = 4;

/// Past this many old lines, only the quick count is used to pick the place.
const MAX_ALIGNED: usize = 400;

/// The place where most old lines occur in order (whitespace ignored), lined up with them;
/// ties go to the place nearest `near`. `None` for an empty file.
pub(crate) fn find(
    raw: &[&str],
    squashed: &[Cow<'_, str>],
    old: &[&str],
    near: usize,
) -> Option<Closest> {
    if raw.is_empty() || old.is_empty() {
        return None;
    }
    let key = |s: &str| {
        let mut h = DefaultHasher::new();
        s.hash(&mut h);
        h.finish()
    };
    let hay_k: Vec<u64> = squashed.iter().map(|l| key(l)).collect();
    let old_s: Vec<Cow<'_, str>> = old.iter().map(|l| super::indent::squash(l)).collect();
    let old_k: Vec<u64> = old_s.iter().map(|l| key(l)).collect();
    let counted: Vec<bool> = old.iter().map(|l| !l.trim().is_empty()).collect();
    let total = counted.iter().filter(|&&c| c).count();

    // Quick count: old lines at their own offset from each start.
    let mut scored: Vec<(usize, usize)> = (0..raw.len())
        .map(|p| {
            let score = (0..old.len())
                .filter(|&j| counted[j] && p + j < raw.len() && hay_k[p + j] == old_k[j])
                .count();
            (p, score)
        })
        .collect();
    scored.sort_by(|a, b| {
        b.1.cmp(&a.1)
            .then(a.0.abs_diff(near).cmp(&b.0.abs_diff(near)))
    });
    let candidates: Vec<usize> = scored.iter().take(CANDIDATES).map(|(p, _)| *p).collect();

    let mut best: Option<(usize, Vec<Aligned>, usize)> = None;
    for p in candidates {
        // A window a little wider than the old lines, so that a line left out or added on
        // either side still lines up.
        let start = p.saturating_sub(2);
        let end = (p + old.len() + 2).min(raw.len());
        let rows = if old.len() <= MAX_ALIGNED {
            align(&raw[start..end], &hay_k[start..end], old, &old_k, start)
        } else {
            positional(raw, &hay_k, old, &old_k, p)
        };
        let matched = rows
            .iter()
            .filter(|r| match r {
                Aligned::Same { text, .. } => !text.trim().is_empty(),
                Aligned::Differs { file, edit, .. } => {
                    !edit.trim().is_empty()
                        && super::indent::squash(file) == super::indent::squash(edit)
                }
                _ => false,
            })
            .count();
        let first = rows.iter().find_map(|r| match r {
            Aligned::Same { at, .. }
            | Aligned::Differs { at, .. }
            | Aligned::FileOnly { at, .. } => Some(*at),
            Aligned::EditOnly { .. } => None,
        });
        let pos = first.unwrap_or(p);
        let better = match &best {
            None => true,
            Some((bp, _, bm)) => {
                matched > *bm || (matched == *bm && pos.abs_diff(near) < bp.abs_diff(near))
            }
        };
        if better {
            best = Some((pos, rows, matched));
        }
    }
    let (pos, rows, matched) = best?;
    Some(Closest {
        pos,
        matched,
        total,
        rows,
    })
}

/// The old lines lined up with a window of the file by their longest common subsequence
/// (whitespace ignored); file lines before the first and after the last match are left out.
fn align(
    window: &[&str],
    window_k: &[u64],
    old: &[&str],
    old_k: &[u64],
    start: usize,
) -> Vec<Aligned> {
    let (n, m) = (window.len(), old.len());
    let mut table = vec![0u32; (n + 1) * (m + 1)];
    let at = |i: usize, j: usize| i * (m + 1) + j;
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            table[at(i, j)] = if window_k[i] == old_k[j] {
                table[at(i + 1, j + 1)] + 1
            } else {
                table[at(i + 1, j)].max(table[at(i, j + 1)])
            };
        }
    }
    let mut raw_rows = Vec::with_capacity(n + m);
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && window_k[i] == old_k[j] {
            raw_rows.push(if window[i] == old[j] {
                Aligned::Same {
                    at: start + i,
                    text: window[i].to_string(),
                }
            } else {
                Aligned::Differs {
                    at: start + i,
                    file: window[i].to_string(),
                    edit: old[j].to_string(),
                }
            });
            i += 1;
            j += 1;
        } else if j < m && (i == n || table[at(i, j + 1)] >= table[at(i + 1, j)]) {
            raw_rows.push(Aligned::EditOnly {
                edit: old[j].to_string(),
            });
            j += 1;
        } else {
            raw_rows.push(Aligned::FileOnly {
                at: start + i,
                file: window[i].to_string(),
            });
            i += 1;
        }
    }
    // The window's extra lines at both ends are not part of the comparison.
    while matches!(raw_rows.first(), Some(Aligned::FileOnly { .. })) {
        raw_rows.remove(0);
    }
    while matches!(raw_rows.last(), Some(Aligned::FileOnly { .. })) {
        raw_rows.pop();
    }
    pair_changes(raw_rows)
}

/// A run of the edit's lines the file lacks next to a run of file lines the edit lacks, of
/// the same length, is the same lines changed: shown side by side.
fn pair_changes(rows: Vec<Aligned>) -> Vec<Aligned> {
    let mut out: Vec<Aligned> = Vec::with_capacity(rows.len());
    let mut i = 0;
    while i < rows.len() {
        let edits = rows[i..]
            .iter()
            .take_while(|r| matches!(r, Aligned::EditOnly { .. }))
            .count();
        let files = rows[i + edits..]
            .iter()
            .take_while(|r| matches!(r, Aligned::FileOnly { .. }))
            .count();
        if edits > 0 && edits == files {
            for k in 0..edits {
                if let (Aligned::EditOnly { edit }, Aligned::FileOnly { at, file }) =
                    (&rows[i + k], &rows[i + edits + k])
                {
                    out.push(Aligned::Differs {
                        at: *at,
                        file: file.clone(),
                        edit: edit.clone(),
                    });
                }
            }
            i += 2 * edits;
        } else {
            out.push(rows[i].clone());
            i += 1;
        }
    }
    out
}

/// Old line `j` against file line `p + j`, for hunks too long to line up in full.
fn positional(raw: &[&str], hay_k: &[u64], old: &[&str], old_k: &[u64], p: usize) -> Vec<Aligned> {
    old.iter()
        .enumerate()
        .map(|(j, line)| match raw.get(p + j) {
            Some(file) if *file == *line => Aligned::Same {
                at: p + j,
                text: (*file).to_string(),
            },
            Some(file) if hay_k[p + j] == old_k[j] || !file.is_empty() => Aligned::Differs {
                at: p + j,
                file: (*file).to_string(),
                edit: (*line).to_string(),
            },
            _ => Aligned::EditOnly {
                edit: (*line).to_string(),
            },
        })
        .collect()
}

impl Closest {
    /// The file's lines at this place with the edit's differing lines under them, and what
    /// to do about the differences. `shown` turns a 0-based index into the line number the
    /// model knows; `file` is the path.
    pub fn render(&self, file: &str, shown: &dyn Fn(usize) -> isize) -> String {
        let mut s = String::new();
        let first = self
            .rows
            .iter()
            .position(|r| !matches!(r, Aligned::Same { .. }));
        // Show from a little before the first difference, so that long hunks stay short.
        let from = first.map_or(0, |f| f.saturating_sub(3));
        let rows = &self.rows[from..];
        let width = rows
            .iter()
            .filter_map(|r| match r {
                Aligned::Same { at, .. }
                | Aligned::Differs { at, .. }
                | Aligned::FileOnly { at, .. } => Some(shown(*at).to_string().len()),
                Aligned::EditOnly { .. } => None,
            })
            .max()
            .unwrap_or(1)
            .max(4);
        s.push_str(&format!(
            "{file} there (`|` a line as yours, `≠` the file's line then yours, `+` a line of \
             the file your lines leave out, `-` a line of yours the file does not have; on \
             those, `·` is a space and `→` a tab):"
        ));
        if from > 0 {
            s.push_str(&format!("\n{:>width$}   …", ""));
        }
        for row in rows.iter().take(SHOWN_ROWS) {
            match row {
                Aligned::Same { at, text } => {
                    s.push_str(&format!("\n{:>width$} | {text}", shown(*at)));
                }
                Aligned::Differs { at, file, edit } => {
                    s.push_str(&format!("\n{:>width$} ≠ {}", shown(*at), visible(file)));
                    s.push_str(&format!("\n{:>width$} ≠ {}", "yours", visible(edit)));
                }
                Aligned::FileOnly { at, file } => {
                    s.push_str(&format!("\n{:>width$} + {}", shown(*at), visible(file)));
                }
                Aligned::EditOnly { edit } => {
                    s.push_str(&format!("\n{:>width$} - {}", "yours", visible(edit)));
                }
            }
        }
        if rows.len() > SHOWN_ROWS {
            s.push_str(&format!(
                "\n{:>width$}   … ({} more)",
                "",
                rows.len() - SHOWN_ROWS
            ));
        }
        s.push('\n');
        s.push_str(&self.advice(file, shown));
        s
    }

    /// What the differences call for, most specific first.
    fn advice(&self, file: &str, shown: &dyn Fn(usize) -> isize) -> String {
        let mut tips = Vec::new();
        let differs: Vec<(&str, &str)> = self
            .rows
            .iter()
            .filter_map(|r| match r {
                Aligned::Differs { file, edit, .. } => Some((file.as_str(), edit.as_str())),
                _ => None,
            })
            .collect();
        let whitespace_only: Vec<&(&str, &str)> = differs
            .iter()
            .filter(|(f, e)| super::indent::squash(f) == super::indent::squash(e))
            .collect();
        if !whitespace_only.is_empty() {
            let tabs_in_file = whitespace_only
                .iter()
                .any(|(f, e)| leading_ws(f).contains('\t') && !leading_ws(e).contains('\t'));
            let spaces_in_file = whitespace_only
                .iter()
                .any(|(f, e)| !leading_ws(f).contains('\t') && leading_ws(e).contains('\t'));
            let how = if tabs_in_file {
                "the file indents with tabs where yours has spaces"
            } else if spaces_in_file {
                "the file indents with spaces where yours has tabs"
            } else if whitespace_only
                .iter()
                .any(|(f, e)| leading_ws(f) != leading_ws(e))
            {
                "the indentation differs"
            } else {
                "spaces inside or at the end of lines differ"
            };
            tips.push(format!(
                "On {} line(s) only whitespace differs: {how}; copy those lines with the file's \
                 exact whitespace.",
                whitespace_only.len()
            ));
        }
        if differs.len() > whitespace_only.len() {
            tips.push(format!(
                "{} line(s) differ in content: copy the unchanged and removed lines exactly as \
                 {file} has them now.",
                differs.len() - whitespace_only.len()
            ));
        }
        let left_out: Vec<String> = self
            .rows
            .iter()
            .filter_map(|r| match r {
                Aligned::FileOnly { at, .. } => Some(shown(*at).to_string()),
                _ => None,
            })
            .collect();
        if !left_out.is_empty() {
            tips.push(format!(
                "Your lines leave out line(s) {} of the file between them: the lines of a hunk \
                 are consecutive lines of the file, so include them (or split the hunk there).",
                left_out.join(", ")
            ));
        }
        let extra = self
            .rows
            .iter()
            .filter(|r| matches!(r, Aligned::EditOnly { .. }))
            .count();
        if extra > 0 {
            tips.push(format!(
                "{extra} line(s) of yours are not in {file} here: re-read the file and copy the \
                 lines around the change from it."
            ));
        }
        if tips.is_empty() {
            tips.push(format!(
                "Re-read {file} and copy the lines around the change from it."
            ));
        }
        tips.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patch::indent::squash;

    fn closest(file: &[&str], old: &[&str]) -> Closest {
        let squashed: Vec<Cow<'_, str>> = file.iter().map(|l| squash(l)).collect();
        find(file, &squashed, old, 0).expect("a place")
    }

    #[test]
    fn when_a_line_is_left_out_should_show_it_as_only_in_the_file() {
        let c = closest(&["a();", "b();", "c();", "d();"], &["a();", "c();", "d();"]);
        assert_eq!(c.pos, 0);
        assert_eq!(
            c.rows[1],
            Aligned::FileOnly {
                at: 1,
                file: "b();".into()
            }
        );
        assert_eq!(c.matched, 3);
    }

    #[test]
    fn when_a_line_changed_should_pair_the_file_line_with_yours() {
        let c = closest(&["a();", "b();", "c();"], &["a();", "x();", "c();"]);
        assert_eq!(
            c.rows[1],
            Aligned::Differs {
                at: 1,
                file: "b();".into(),
                edit: "x();".into()
            }
        );
        let text = c.render("f.c", &|p| p as isize + 1);
        assert!(text.contains("2 ≠ b();"), "{text}");
        assert!(text.contains("yours ≠ x();"), "{text}");
        assert!(text.contains("differ in content"), "{text}");
    }
}
