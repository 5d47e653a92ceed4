//! A text file as lines that each keep their own ending, so that a patch changes only the
//! lines it means to: a CRLF file stays CRLF, a missing final newline stays missing.

/// A line ending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Eol {
    Lf,
    CrLf,
    /// The last line of a file without a final newline.
    None,
}

impl Eol {
    fn as_str(self) -> &'static str {
        match self {
            Eol::Lf => "\n",
            Eol::CrLf => "\r\n",
            Eol::None => "",
        }
    }
}

/// One line without its ending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Line {
    pub text: String,
    pub eol: Eol,
}

/// Why a file cannot be patched as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotText {
    /// It holds NUL bytes.
    Binary,
    /// It is not UTF-8.
    NotUtf8,
}

/// A whole file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Text {
    pub lines: Vec<Line>,
    /// The file starts with a UTF-8 byte order mark, kept out of the first line so that it
    /// matches.
    pub bom: bool,
    /// The ending new lines get: the file's majority ending.
    pub eol: Eol,
}

const BOM: &str = "\u{feff}";

impl Text {
    /// An empty file.
    pub fn empty() -> Self {
        Text {
            lines: Vec::new(),
            bom: false,
            eol: Eol::Lf,
        }
    }

    /// Reads file bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, NotText> {
        if bytes.contains(&0) {
            return Err(NotText::Binary);
        }
        let s = std::str::from_utf8(bytes).map_err(|_| NotText::NotUtf8)?;
        let (s, bom) = match s.strip_prefix(BOM) {
            Some(rest) => (rest, true),
            None => (s, false),
        };
        let mut lines = Vec::new();
        let (mut lf, mut crlf) = (0usize, 0usize);
        let mut rest = s;
        while !rest.is_empty() {
            match rest.find('\n') {
                Some(at) => {
                    let raw = &rest[..at];
                    let (text, eol) = match raw.strip_suffix('\r') {
                        Some(t) => {
                            crlf += 1;
                            (t, Eol::CrLf)
                        }
                        None => {
                            lf += 1;
                            (raw, Eol::Lf)
                        }
                    };
                    lines.push(Line {
                        text: text.to_string(),
                        eol,
                    });
                    rest = &rest[at + 1..];
                }
                None => {
                    lines.push(Line {
                        text: rest.to_string(),
                        eol: Eol::None,
                    });
                    rest = "";
                }
            }
        }
        let eol = if crlf > lf { Eol::CrLf } else { Eol::Lf };
        Ok(Text { lines, bom, eol })
    }

    /// A new file from lines, each ended with a newline unless `missing_final_newline`.
    pub fn from_lines<'a>(
        lines: impl IntoIterator<Item = &'a str>,
        missing_final_newline: bool,
    ) -> Self {
        let mut text = Text::empty();
        text.lines = lines
            .into_iter()
            .map(|l| Line {
                text: l.to_string(),
                eol: Eol::Lf,
            })
            .collect();
        if missing_final_newline && let Some(last) = text.lines.last_mut() {
            last.eol = Eol::None;
        }
        text
    }

    /// The file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = String::with_capacity(self.byte_len());
        if self.bom {
            out.push_str(BOM);
        }
        for line in &self.lines {
            out.push_str(&line.text);
            out.push_str(line.eol.as_str());
        }
        out.into_bytes()
    }

    /// The size of [`Text::to_bytes`] without building it.
    pub fn byte_len(&self) -> usize {
        let bom = if self.bom { BOM.len() } else { 0 };
        bom + self
            .lines
            .iter()
            .map(|l| l.text.len() + l.eol.as_str().len())
            .sum::<usize>()
    }

    /// Gives every line but the last an ending: lines added after a last line without a
    /// newline make it an inner line.
    pub fn close_inner_lines(&mut self) {
        let eol = self.eol;
        let n = self.lines.len();
        for line in self.lines.iter_mut().take(n.saturating_sub(1)) {
            if line.eol == Eol::None {
                line.eol = eol;
            }
        }
    }

    /// Whether the file has no content at all, which is what deleting it by a diff must leave.
    pub fn is_blank(&self) -> bool {
        self.lines.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_file_is_crlf_should_round_trip_and_prefer_crlf() {
        let bytes = b"a\r\nb\r\nc";
        let text = Text::parse(bytes).expect("text");
        assert_eq!(text.eol, Eol::CrLf);
        assert_eq!(text.lines.len(), 3);
        assert_eq!(text.lines[2].eol, Eol::None);
        assert_eq!(text.to_bytes(), bytes.to_vec());
    }

    #[test]
    fn when_file_has_bom_should_keep_it_out_of_the_first_line() {
        let bytes = "\u{feff}fn main() {}\n".as_bytes();
        let text = Text::parse(bytes).expect("text");
        assert_eq!(text.lines[0].text, "fn main() {}");
        assert_eq!(text.to_bytes(), bytes.to_vec());
        assert_eq!(text.byte_len(), bytes.len());
    }

    #[test]
    fn when_file_has_nul_should_be_binary() {
        assert_eq!(Text::parse(b"a\0b"), Err(NotText::Binary));
        assert_eq!(Text::parse(&[0xff, 0xfe, b'a']), Err(NotText::NotUtf8));
    }
}
