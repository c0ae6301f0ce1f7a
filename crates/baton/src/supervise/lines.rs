//! Output as lines: each pipe read into bounded lines (a longer line keeps its beginning and
//! says it was cut), invalid UTF-8 replaced, CRLF read as a line ending.

use std::io;

use tokio::io::{AsyncBufRead, AsyncBufReadExt};
use tokio::sync::mpsc;

/// Which pipe a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One line of output, without its line ending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub stream: Stream,
    /// Invalid UTF-8 is replaced by U+FFFD.
    pub text: String,
    /// The line was longer than the policy's `max_line`: `text` is its beginning, the rest is
    /// lost.
    pub truncated: bool,
}

/// Reads `reader` line by line into `tx`, each line cut at `max` bytes.
pub(super) async fn read_lines<R: AsyncBufRead + Unpin>(
    mut reader: R,
    stream: Stream,
    max: usize,
    tx: mpsc::Sender<Line>,
) {
    let mut line = LineBuffer::new(max);
    loop {
        let chunk = match reader.fill_buf().await {
            Ok(chunk) => chunk,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // A read error on a pipe means it is unusable; treat it as the end.
            Err(_) => break,
        };
        if chunk.is_empty() {
            break;
        }
        let (used, complete) = line.push(chunk);
        reader.consume(used);
        if let Some((text, truncated)) = complete {
            if tx
                .send(Line {
                    stream,
                    text,
                    truncated,
                })
                .await
                .is_err()
            {
                return;
            }
        }
    }
    if let Some((text, truncated)) = line.finish() {
        let _ = tx
            .send(Line {
                stream,
                text,
                truncated,
            })
            .await;
    }
}

/// A line being assembled, never holding more than `max` bytes.
struct LineBuffer {
    bytes: Vec<u8>,
    max: usize,
    truncated: bool,
    /// Whether any byte (kept or dropped) was seen since the last line ended.
    started: bool,
}

impl LineBuffer {
    fn new(max: usize) -> LineBuffer {
        LineBuffer {
            bytes: Vec::new(),
            max,
            truncated: false,
            started: false,
        }
    }

    /// Takes bytes from `chunk` up to and including the first newline. Returns how many bytes
    /// were used and, if a line ended, that line.
    fn push(&mut self, chunk: &[u8]) -> (usize, Option<(String, bool)>) {
        let (body, used, ended) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (&chunk[..i], i + 1, true),
            None => (chunk, chunk.len(), false),
        };
        self.started = true;
        if !self.truncated {
            let room = self.max - self.bytes.len();
            if body.len() > room {
                self.bytes.extend_from_slice(&body[..room]);
                self.truncated = true;
            } else {
                self.bytes.extend_from_slice(body);
            }
        }
        let line = if ended { self.take() } else { None };
        (used, line)
    }

    /// The last line, if the output did not end with a newline.
    fn finish(&mut self) -> Option<(String, bool)> {
        if self.started {
            self.take()
        } else {
            None
        }
    }

    fn take(&mut self) -> Option<(String, bool)> {
        let mut bytes = std::mem::take(&mut self.bytes);
        let truncated = std::mem::replace(&mut self.truncated, false);
        self.started = false;
        if !truncated && bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        let text = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        };
        Some((text, truncated))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(input: &[&[u8]], max: usize) -> Vec<(String, bool)> {
        let mut buffer = LineBuffer::new(max);
        let mut out = Vec::new();
        for chunk in input {
            let mut chunk: &[u8] = chunk;
            while !chunk.is_empty() {
                let (used, line) = buffer.push(chunk);
                chunk = &chunk[used..];
                out.extend(line);
            }
        }
        out.extend(buffer.finish());
        out
    }

    fn owned(lines: &[(&str, bool)]) -> Vec<(String, bool)> {
        lines.iter().map(|(t, c)| (t.to_string(), *c)).collect()
    }

    #[test]
    fn splits_lines_across_chunks() {
        assert_eq!(
            lines_of(&[b"ab", b"c\nde", b"\r\n\nf"], 100),
            owned(&[("abc", false), ("de", false), ("", false), ("f", false)])
        );
    }

    #[test]
    fn no_trailing_line_after_final_newline() {
        assert_eq!(lines_of(&[b"a\n"], 100), owned(&[("a", false)]));
        assert_eq!(lines_of(&[], 100), owned(&[]));
    }

    #[test]
    fn cuts_long_lines_and_discards_the_rest() {
        assert_eq!(
            lines_of(&[b"abcd", b"efgh\nij", b"klmnop"], 5),
            owned(&[("abcde", true), ("ijklm", true)])
        );
        // Exactly the maximum is not truncated.
        assert_eq!(lines_of(&[b"abcde\n"], 5), owned(&[("abcde", false)]));
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        assert_eq!(
            lines_of(&[b"a\xffb\n"], 100),
            owned(&[("a\u{fffd}b", false)])
        );
    }
}
