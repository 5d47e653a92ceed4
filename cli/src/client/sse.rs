//! A parser of server-sent events (the WHATWG `text/event-stream` format) fed with the bytes of a
//! response as they come. Enough of the format for the log stream: `event`, `data` (several
//! lines joined), `id`, comments, and the three line endings; `retry` is ignored (the client
//! keeps its own backoff).

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `message` when the event named none.
    pub event: String,
    pub data: String,
    /// The `id` field of this event, when it had one.
    pub id: Option<String>,
}

/// Incremental parser; keeps a partial line across [`Parser::feed`] calls.
#[derive(Debug, Default)]
pub struct Parser {
    line: Vec<u8>,
    /// The previous chunk ended with `\r`: a `\n` starting the next one belongs to it.
    after_cr: bool,
    event: Option<String>,
    data: Option<String>,
    id: Option<String>,
}

impl Parser {
    /// Feeds bytes; returns the events completed by them.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Event> {
        let mut events = Vec::new();
        for &byte in bytes {
            if std::mem::take(&mut self.after_cr) && byte == b'\n' {
                continue;
            }
            match byte {
                b'\r' | b'\n' => {
                    self.after_cr = byte == b'\r';
                    let line = std::mem::take(&mut self.line);
                    if let Some(event) = self.line_done(&String::from_utf8_lossy(&line)) {
                        events.push(event);
                    }
                }
                _ => self.line.push(byte),
            }
        }
        events
    }

    fn line_done(&mut self, line: &str) -> Option<Event> {
        if line.is_empty() {
            let event = self.event.take();
            let id = self.id.take();
            let data = self.data.take()?;
            return Some(Event {
                event: event.unwrap_or_else(|| "message".to_owned()),
                data,
                id,
            });
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            "id" if !value.contains('\0') => self.id = Some(value.to_owned()),
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &str, data: &str, id: Option<&str>) -> Event {
        Event {
            event: name.into(),
            data: data.into(),
            id: id.map(Into::into),
        }
    }

    #[test]
    fn events_split_anywhere_come_out_whole() {
        let text = "event: log\nid: c1\ndata: {\"seq\":0}\n\n: keep-alive\n\nevent: status\r\ndata: {\"a\":\r\ndata: 1}\r\n\r\n";
        for split in 0..text.len() {
            let mut parser = Parser::default();
            let mut events = parser.feed(&text.as_bytes()[..split]);
            events.extend(parser.feed(&text.as_bytes()[split..]));
            assert_eq!(
                events,
                vec![
                    event("log", "{\"seq\":0}", Some("c1")),
                    event("status", "{\"a\":\n1}", None),
                ],
                "split at {split}"
            );
        }
    }

    #[test]
    fn a_lone_cr_ends_a_line_and_a_block_without_data_is_no_event() {
        let mut parser = Parser::default();
        let events = parser.feed(b"event: x\r\rdata:y\r\r");
        assert_eq!(events, vec![event("message", "y", None)]);
    }

    #[test]
    fn an_unfinished_event_waits_for_its_blank_line() {
        let mut parser = Parser::default();
        assert!(parser.feed(b"event: log\ndata: x\n").is_empty());
        assert_eq!(parser.feed(b"\n"), vec![event("log", "x", None)]);
    }
}
