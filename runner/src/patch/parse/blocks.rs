//! Search/replace blocks: a path line, then `<<<<<<< SEARCH`, the lines to find, `=======`,
//! their replacement, `>>>>>>> REPLACE`; fenced or not.

use super::{ParseError, Scanner};
use crate::patch::model::{Block, Body, FilePatch, Operation};

/// `<<<<<<< SEARCH` (five to nine `<`, as models vary the count).
pub(super) fn is_search(line: &str) -> bool {
    marker(line, '<', "SEARCH")
}

fn is_divider(line: &str) -> bool {
    let t = line.trim();
    (5..=9).contains(&t.len()) && t.chars().all(|c| c == '=')
}

fn is_replace(line: &str) -> bool {
    marker(line, '>', "REPLACE")
}

fn marker(line: &str, c: char, word: &str) -> bool {
    let t = line.trim();
    let rest = t.trim_start_matches(c);
    let run = t.len() - rest.len();
    (5..=9).contains(&run) && rest.trim().eq_ignore_ascii_case(word)
}

impl Scanner<'_> {
    /// Reads the block at `self.at` and adds it to the previous section when that one edits
    /// the same file with blocks, so a file's blocks are reported together.
    pub(super) fn search_replace(&mut self) -> Result<(), ParseError> {
        let start = self.at;
        let Some(path) = self.path_above(start) else {
            return Err(ParseError::Malformed {
                line: start + 1,
                reason: "a SEARCH block without a file path: put the path alone on the line \
                         before the block (or before its opening fence)"
                    .into(),
            });
        };
        self.at += 1;
        let mut search = Vec::new();
        loop {
            let Some(line) = self.line(self.at) else {
                return Err(unterminated(start, "`=======`"));
            };
            if is_divider(line) {
                break;
            }
            if is_search(line) || is_replace(line) {
                return Err(unterminated(start, "`=======`"));
            }
            search.push(line.to_string());
            self.at += 1;
        }
        self.at += 1;
        let mut replace = Vec::new();
        loop {
            let Some(line) = self.line(self.at) else {
                return Err(unterminated(start, "`>>>>>>> REPLACE`"));
            };
            if is_replace(line) {
                break;
            }
            if is_search(line) {
                return Err(unterminated(start, "`>>>>>>> REPLACE`"));
            }
            replace.push(line.to_string());
            self.at += 1;
        }
        self.at += 1;
        let block = Block {
            search,
            replace,
            reply_line: start + 1,
        };
        if let Some(FilePatch {
            operation: Operation::Blocks { path: last },
            body: Body::Blocks(blocks),
            ..
        }) = self.out.last_mut()
            && *last == path
        {
            blocks.push(block);
            return Ok(());
        }
        self.out.push(FilePatch {
            operation: Operation::Blocks { path },
            body: Body::Blocks(vec![block]),
            new_mode: None,
            reply_line: start + 1,
        });
        Ok(())
    }
}

fn unterminated(start: usize, missing: &str) -> ParseError {
    ParseError::Malformed {
        line: start + 1,
        reason: format!("the SEARCH block has no {missing} line; end every block with it"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_marker_count_varies_should_still_recognize_it() {
        assert!(is_search("<<<<<<< SEARCH"));
        assert!(is_search("<<<<< SEARCH  "));
        assert!(is_replace(">>>>>>> REPLACE"));
        assert!(is_divider("======="));
        assert!(!is_search("<< SEARCH"));
        assert!(!is_divider("=="));
    }
}
