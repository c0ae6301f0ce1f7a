//! A YAML node tree that remembers where every node sits in the source text.
//!
//! baton edits plan files in place: it rewrites the few bytes of the fields it owns and leaves
//! every other byte alone. That needs byte-exact spans for scalars, which the event parser
//! (saphyr-parser) only half gives: its start marks are exact, its end marks are not (a quoted
//! scalar's end runs on over a trailing comment; a block scalar starts at its content, not at its
//! `|`). So this module takes the start marks from the parser and finds each scalar's end itself,
//! by the scalar's style. It owns parsing and spans; it knows nothing about plans.

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Span};

/// A parsed node with its byte range in the source.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub kind: NodeKind,
    /// Byte offset of the node's first character (the quote, the `|`, the `{`).
    pub start: usize,
    /// Byte offset just past the node's last character (never past a comment or line break).
    pub end: usize,
    /// 1-based line and 1-based column of `start`, for messages.
    pub line: usize,
    pub col: usize,
    /// Written as an alias (`*name`): the id of the anchor it reads as (an edit of the anchored
    /// node changes it too); 0 for a node written out.
    pub alias_of: usize,
    /// The id of the anchor (`&name`) it carries, which aliases after it may repeat; 0 for none.
    pub anchor: usize,
}

#[derive(Debug, Clone)]
pub(crate) enum NodeKind {
    Scalar { value: String, style: Style },
    Mapping { entries: Vec<(Node, Node)>, flow: bool },
    Sequence { items: Vec<Node> },
    Alias,
}

/// How a scalar is written in the source; kept so that an edit can write the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    Block,
}

/// A YAML syntax error at a source position.
#[derive(Debug, Clone)]
pub(crate) struct SyntaxError {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl Node {
    pub fn as_scalar(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }

    /// True for an empty value (`key:` with nothing after it, or `~`/`null`).
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, NodeKind::Scalar { value, style: Style::Plain }
            if value.is_empty() || value == "~" || value == "null" || value == "Null" || value == "NULL")
    }

    pub fn entries(&self) -> Option<&[(Node, Node)]> {
        match &self.kind {
            NodeKind::Mapping { entries, .. } => Some(entries),
            _ => None,
        }
    }

    pub fn items(&self) -> Option<&[Node]> {
        match &self.kind {
            NodeKind::Sequence { items, .. } => Some(items),
            _ => None,
        }
    }

    /// The value under `key` in a mapping node.
    /// The value under `key`: the mapping's own, else one from a `<<` merge (YAML 1.1, which
    /// the original tool's plans may use), the first merged mapping that has it.
    /// Merged mappings are searched depth first, in order, with an explicit stack: the input
    /// decides how deep merges of merges go.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.get_entry(key).map(|((_, v), _)| v)
    }

    /// Like [`Node::get`], with the key node too and whether the value came from a merge.
    pub fn get_entry(&self, key: &str) -> Option<(&(Node, Node), bool)> {
        let mut todo: Vec<&Node> = vec![self];
        let mut merged = false;
        while let Some(map) = todo.pop() {
            if let Some(e) = map.entry(key) {
                return Some((e, merged));
            }
            merged = true;
            let Some((_, from)) = map.entry("<<") else { continue };
            match &from.kind {
                NodeKind::Mapping { .. } => todo.push(from),
                NodeKind::Sequence { items } => todo.extend(items.iter().rev()),
                _ => {}
            }
        }
        None
    }

    pub fn entry(&self, key: &str) -> Option<&(Node, Node)> {
        self.entries()?.iter().find(|(k, _)| k.as_scalar() == Some(key))
    }

    /// The ids of the anchors that aliases in this tree repeat.
    pub fn aliased_anchors(&self) -> std::collections::HashSet<usize> {
        let mut out = std::collections::HashSet::new();
        let mut todo = vec![self];
        while let Some(n) = todo.pop() {
            if n.alias_of != 0 {
                out.insert(n.alias_of);
            }
            match &n.kind {
                NodeKind::Mapping { entries, .. } => todo.extend(entries.iter().flat_map(|(k, v)| [k, v])),
                NodeKind::Sequence { items } => todo.extend(items),
                _ => {}
            }
        }
        out
    }

    pub fn kind_name(&self) -> &'static str {
        match &self.kind {
            NodeKind::Scalar { .. } if self.is_null() => "an empty value",
            NodeKind::Scalar { .. } => "a scalar",
            NodeKind::Mapping { .. } => "a mapping",
            NodeKind::Sequence { .. } => "a list",
            NodeKind::Alias => "an alias",
        }
    }
}

/// Parses one YAML document. An empty document is a null scalar at 1:1.
pub(crate) fn parse(src: &str) -> Result<Node, SyntaxError> {
    // The parser's own `load` recurses once per nesting level (and asserts on input it did not
    // expect); reading its events one by one keeps the input from deciding the stack depth.
    let mut raw = Vec::new();
    for item in Parser::new_from_str(src) {
        raw.push(item.map_err(|e| scan_error(&e))?);
    }
    let index = CharIndex::new(src);
    let events: Vec<(Event<'_>, usize, Span)> = raw
        .into_iter()
        .map(|(ev, span)| {
            let start = index.byte(span.start.index());
            (ev, start, span)
        })
        .collect();

    let docs = events
        .iter()
        .filter(|(ev, ..)| matches!(ev, Event::DocumentStart(_)))
        .count();
    if docs > 1 {
        let (_, _, span) = events
            .iter()
            .filter(|(ev, ..)| matches!(ev, Event::DocumentStart(_)))
            .nth(1)
            .expect("counted above");
        return Err(SyntaxError {
            line: span.start.line(),
            col: span.start.col() + 1,
            message: "the file holds more than one YAML document (a second `---`)".into(),
        });
    }
    let first = events
        .iter()
        .position(|(ev, ..)| matches!(ev, Event::DocumentStart(_)));
    let Some(first) = first else {
        return Ok(empty_node());
    };
    let mut builder = Builder {
        src,
        events: &events,
        pos: first + 1,
        anchors: std::collections::HashMap::new(),
        alias_weight: 0,
    };
    if matches!(builder.peek(), Some(Event::DocumentEnd) | None) {
        return Ok(empty_node());
    }
    builder.build()
}

fn empty_node() -> Node {
    Node {
        kind: NodeKind::Scalar {
            value: String::new(),
            style: Style::Plain,
        },
        start: 0,
        end: 0,
        line: 1,
        col: 1,
        alias_of: 0,
        anchor: 0,
    }
}

fn scan_error(e: &ScanError) -> SyntaxError {
    let m = e.marker();
    SyntaxError {
        line: m.line(),
        col: m.col() + 1,
        message: e.info().to_string(),
    }
}

/// Maps the parser's character indices to byte offsets.
struct CharIndex {
    /// Byte offset of each char, only kept when the text is not pure ASCII.
    offsets: Option<Vec<usize>>,
    len: usize,
}

impl CharIndex {
    fn new(src: &str) -> Self {
        let offsets = (!src.is_ascii()).then(|| src.char_indices().map(|(b, _)| b).collect());
        CharIndex {
            offsets,
            len: src.len(),
        }
    }

    fn byte(&self, char_index: usize) -> usize {
        match &self.offsets {
            None => char_index.min(self.len),
            Some(o) => o.get(char_index).copied().unwrap_or(self.len),
        }
    }
}

/// The most nodes aliases may add to the tree: a plan needs a few, an "alias bomb" (aliases of
/// aliases of a list, a few hundred bytes) would otherwise expand to billions. A scalar counts
/// as one node per 64 bytes of text, so one huge anchored text cannot be repeated either.
pub(crate) const MAX_ALIAS_NODES: usize = 100_000;

/// The deepest nesting of mappings and lists: a plan needs five levels. Deeper input is refused
/// before anything walks it, so no walk of the tree (building, cloning, dropping) can run out
/// of stack.
pub(crate) const MAX_DEPTH: usize = 100;

struct Builder<'a, 'i> {
    src: &'a str,
    events: &'a [(Event<'i>, usize, Span)],
    pos: usize,
    /// Anchored nodes by anchor id, for aliases, each with its weight (see [`MAX_ALIAS_NODES`]).
    anchors: std::collections::HashMap<usize, Anchored>,
    /// How much the aliases read so far have added.
    alias_weight: usize,
}

/// An anchored node with what repeating it costs.
struct Anchored {
    node: Node,
    /// See [`MAX_ALIAS_NODES`].
    weight: usize,
    /// Levels of nesting, the node's own included.
    height: usize,
}

/// A mapping or list whose end event has not come yet.
struct Open {
    mapping: bool,
    flow: bool,
    /// Whether the children are in flow context (this collection or one around it is flow).
    in_flow: bool,
    anchor: usize,
    start: usize,
    line: usize,
    col: usize,
    entries: Vec<(Node, Node)>,
    key: Option<Node>,
    items: Vec<Node>,
    weight: usize,
    /// The greatest height of a child so far.
    child_height: usize,
}

fn too_deep(line: usize, col: usize) -> SyntaxError {
    SyntaxError {
        line,
        col,
        message: format!("the YAML nests lists and mappings more than {MAX_DEPTH} levels deep (counting what aliases repeat); a plan needs a few"),
    }
}

/// How much a node costs when an alias repeats it.
fn scalar_weight(value: &str) -> usize {
    1 + value.len() / 64
}

impl Builder<'_, '_> {
    fn peek(&self) -> Option<&Event<'_>> {
        self.events.get(self.pos).map(|(ev, ..)| ev)
    }

    /// Byte offset where the event after the current one starts: the limit a scalar's text
    /// cannot run past.
    fn next_start(&self) -> usize {
        self.events
            .get(self.pos)
            .map(|(_, start, _)| *start)
            .unwrap_or(self.src.len())
    }

    /// Builds the document's root node. An explicit stack of open collections instead of
    /// recursion: the input decides the nesting.
    fn build(&mut self) -> Result<Node, SyntaxError> {
        let mut stack: Vec<Open> = Vec::new();
        loop {
            let in_flow = stack.last().is_some_and(|o| o.in_flow);
            let Some((ev, start, span)) = self.events.get(self.pos) else {
                return Err(self.unexpected_end());
            };
            let (start, line, col) = (*start, span.start.line(), span.start.col() + 1);
            self.pos += 1;
            let (node, weight, height) = match ev {
                Event::Scalar(value, style, anchor, _) => {
                    let limit = self.next_start();
                    let (real_start, end, style) = scalar_bounds(self.src, start, limit, *style, in_flow);
                    // Only a block scalar's start moves (to its `|`); recounting lines for every
                    // scalar would make parsing quadratic in the file's size.
                    let (line, col) = if real_start == start { (line, col) } else { moved_line_col(self.src, real_start, start, line) };
                    let weight = scalar_weight(value);
                    let node = Node {
                        kind: NodeKind::Scalar { value: value.to_string(), style },
                        start: real_start,
                        end,
                        line,
                        col,
                        alias_of: 0,
                        anchor: *anchor,
                    };
                    if *anchor != 0 {
                        self.anchors.insert(*anchor, Anchored { node: node.clone(), weight, height: 1 });
                    }
                    (node, weight, 1)
                }
                Event::Alias(a) => {
                    let end = self.src[start..]
                        .find(|c: char| c.is_whitespace() || ",]}".contains(c))
                        .map_or(self.src.len(), |n| start + n);
                    // The alias reads as the anchored node; its own span is where the alias stands.
                    match self.anchors.get(a) {
                        Some(Anchored { node: target, weight, height }) => {
                            // What an alias repeats nests as deep as its anchor did: count it, so
                            // aliases of aliases cannot build a tree deeper than the limit.
                            if stack.len() + height > MAX_DEPTH {
                                return Err(too_deep(line, col));
                            }
                            self.alias_weight = self.alias_weight.saturating_add(*weight);
                            if self.alias_weight > MAX_ALIAS_NODES {
                                return Err(SyntaxError {
                                    line,
                                    col,
                                    message: format!(
                                        "the aliases (`*name`) expand to more than {MAX_ALIAS_NODES} nodes; a plan never needs that many, and expanding them would exhaust memory"
                                    ),
                                });
                            }
                            let node = Node { start, end, line, col, alias_of: *a, ..target.clone() };
                            (node, *weight, *height)
                        }
                        None => {
                            let node = Node { kind: NodeKind::Alias, start, end, line, col, alias_of: *a, anchor: 0 };
                            (node, 1, 1)
                        }
                    }
                }
                Event::MappingStart(anchor, _) | Event::SequenceStart(anchor, _) => {
                    if stack.len() >= MAX_DEPTH {
                        return Err(too_deep(line, col));
                    }
                    let mapping = matches!(ev, Event::MappingStart(..));
                    // The mark points at an anchor or tag, if there is one; the bracket follows it.
                    let start = skip_properties(self.src.as_bytes(), start);
                    let flow = self.src[start..].starts_with(if mapping { '{' } else { '[' });
                    stack.push(Open {
                        mapping,
                        flow,
                        in_flow: in_flow || flow,
                        anchor: *anchor,
                        start,
                        line,
                        col,
                        entries: Vec::new(),
                        key: None,
                        items: Vec::new(),
                        weight: 1,
                        child_height: 0,
                    });
                    continue;
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    let Some(open) = stack.pop() else {
                        return Err(SyntaxError { line, col, message: format!("unexpected YAML event {ev:?}") });
                    };
                    // A flow collection ends just past its closing bracket, where the end event
                    // starts; a block one at the end of its last child.
                    let closing = (start + 1).min(self.src.len());
                    let (kind, node_start, end) = if open.mapping {
                        let end = if open.flow { closing } else { open.entries.last().map_or(open.start, |(_, v)| v.end) };
                        let node_start = open.entries.first().filter(|_| !open.flow).map_or(open.start, |(k, _)| k.start);
                        (NodeKind::Mapping { entries: open.entries, flow: open.flow }, node_start, end)
                    } else {
                        let end = if open.flow { closing } else { open.items.last().map_or(open.start, |v| v.end) };
                        (NodeKind::Sequence { items: open.items }, open.start, end)
                    };
                    let node = Node {
                        kind,
                        start: node_start,
                        end,
                        line: open.line,
                        col: open.col,
                        alias_of: 0,
                        anchor: open.anchor,
                    };
                    let height = open.child_height + 1;
                    if open.anchor != 0 {
                        self.anchors.insert(open.anchor, Anchored { node: node.clone(), weight: open.weight, height });
                    }
                    (node, open.weight, height)
                }
                other => {
                    return Err(SyntaxError {
                        line,
                        col,
                        message: format!("unexpected YAML event {other:?}"),
                    })
                }
            };
            match stack.last_mut() {
                None => return Ok(node),
                Some(open) => {
                    open.weight = open.weight.saturating_add(weight);
                    open.child_height = open.child_height.max(height);
                    if !open.mapping {
                        open.items.push(node);
                    } else if let Some(key) = open.key.take() {
                        open.entries.push((key, node));
                    } else {
                        open.key = Some(node);
                    }
                }
            }
        }
    }

    fn unexpected_end(&self) -> SyntaxError {
        SyntaxError {
            line: self.src.lines().count().max(1),
            col: 1,
            message: "unexpected end of the YAML document".into(),
        }
    }
}

/// Line and column (both 1-based) of `at`, a block scalar's indicator a few lines before its
/// content at `from` (which is on line `from_line`). Counts only the text between the two, so
/// that files with many block scalars do not make parsing quadratic.
fn moved_line_col(src: &str, at: usize, from: usize, from_line: usize) -> (usize, usize) {
    let (lo, hi) = (at.min(from), at.max(from));
    let between = src[lo..hi].matches('\n').count();
    let line = if at <= from { from_line.saturating_sub(between) } else { from_line + between };
    let line_start = src[..at].rfind('\n').map_or(0, |n| n + 1);
    (line.max(1), src[line_start..at].chars().count() + 1)
}

/// Finds where a scalar really starts and ends. `start` is the parser's start mark, `limit` the
/// start of the next event.
fn scalar_bounds(
    src: &str,
    start: usize,
    limit: usize,
    style: ScalarStyle,
    in_flow: bool,
) -> (usize, usize, Style) {
    let bytes = src.as_bytes();
    // An anchor or tag before the scalar: the parser's mark points at it. Skip it so the span
    // covers the value only (an edit then keeps the anchor or tag).
    let s = skip_properties(bytes, start);
    match style {
        ScalarStyle::SingleQuoted => (s, single_quoted_end(bytes, s), Style::SingleQuoted),
        ScalarStyle::DoubleQuoted => (s, double_quoted_end(bytes, s), Style::DoubleQuoted),
        ScalarStyle::Literal | ScalarStyle::Folded => {
            let (h, e) = if matches!(bytes.get(s), Some(b'|' | b'>')) {
                // With an anchor or tag the mark is on the header line, not in the content.
                block_scalar_from_header(src, s, limit)
            } else {
                block_scalar_bounds(src, start, limit)
            };
            (h, e, Style::Block)
        }
        _ => (s, plain_end(bytes, s, limit.max(s), in_flow), Style::Plain),
    }
}

/// Skips an anchor (`&a`) and a tag (`!!str`, `!t`) and the blanks after them.
fn skip_properties(bytes: &[u8], start: usize) -> usize {
    let mut s = start;
    while s < bytes.len() && (bytes[s] == b'&' || bytes[s] == b'!') {
        while s < bytes.len() && !bytes[s].is_ascii_whitespace() {
            s += 1;
        }
        while s < bytes.len() && (bytes[s] == b' ' || bytes[s] == b'\t') {
            s += 1;
        }
    }
    s
}

/// A block scalar whose indicator is at `indicator`: its content is the following lines at
/// least as indented as the first content line, up to `limit`.
fn block_scalar_from_header(src: &str, indicator: usize, limit: usize) -> (usize, usize) {
    let limit = limit.min(src.len());
    let Some(nl) = src[indicator..].find('\n').map(|n| indicator + n) else {
        return (indicator, src.len().min(indicator + 1).max(indicator));
    };
    let header_end = if src[..nl].ends_with('\r') { nl - 1 } else { nl };
    let mut end = header_end;
    let mut indent: Option<usize> = None;
    let mut pos = nl + 1;
    while pos < limit {
        let line_end = src[pos..].find('\n').map_or(src.len(), |n| pos + n);
        let line = src[pos..line_end].trim_end_matches('\r');
        if !line.trim().is_empty() {
            let this = line.len() - line.trim_start_matches(' ').len();
            let need = *indent.get_or_insert(this);
            if this < need || this == 0 {
                break;
            }
            end = (pos + line.len()).min(limit);
        }
        pos = line_end + 1;
    }
    (indicator, end)
}

fn single_quoted_end(b: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < b.len() {
        if b[i] == b'\'' {
            if b.get(i + 1) == Some(&b'\'') {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    b.len()
}

fn double_quoted_end(b: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    b.len()
}

/// A plain scalar ends at a comment (` #`), at a `: ` that makes it a key, in flow context at
/// `,`/`]`/`}`, and otherwise at the next event; trailing blanks are not part of it.
fn plain_end(b: &[u8], start: usize, limit: usize, in_flow: bool) -> usize {
    let limit = limit.min(b.len());
    let mut i = start;
    while i < limit {
        let c = b[i];
        if c == b'#' && i > start && b[i - 1].is_ascii_whitespace() {
            break;
        }
        if c == b':' && (i + 1 >= b.len() || b[i + 1].is_ascii_whitespace()) {
            break;
        }
        if in_flow && matches!(c, b',' | b']' | b'}' | b'[' | b'{') {
            break;
        }
        i += 1;
    }
    while i > start && b[i - 1].is_ascii_whitespace() {
        i -= 1;
    }
    i
}

/// A block scalar (`|` or `>`): from its indicator to the end of its last content line.
/// `content` is the parser's start mark, which points into the content, not at the indicator.
fn block_scalar_bounds(src: &str, content: usize, limit: usize) -> (usize, usize) {
    let content_line_start = src[..content].rfind('\n').map_or(0, |n| n + 1);
    // The header is on the last line before the content that is not blank.
    let mut header_end = content_line_start;
    let mut header_start;
    loop {
        if header_end == 0 {
            return (content, content);
        }
        let prev_end = header_end - 1; // the '\n'
        header_start = src[..prev_end].rfind('\n').map_or(0, |n| n + 1);
        if src[header_start..prev_end].trim().is_empty() {
            header_end = header_start;
            continue;
        }
        header_end = prev_end;
        break;
    }
    let header = &src[header_start..header_end];
    let indicator = header
        .char_indices()
        .rev()
        .filter(|(_, c)| *c == '|' || *c == '>')
        .find(|(i, _)| {
            let rest = header[i + 1..].trim_start_matches(['+', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
            let rest = rest.trim_start();
            rest.is_empty() || rest.starts_with('#') || rest == "\r"
        })
        .map(|(i, _)| header_start + i);
    let Some(indicator) = indicator else {
        return (content, content);
    };
    let indent = content - content_line_start;
    let limit = limit.min(src.len());
    let mut end = header_end.min(limit);
    // Trim the '\r' of a CRLF header so the end never splits a line break.
    if src[..end].ends_with('\r') {
        end -= 1;
    }
    let mut pos = content_line_start;
    while pos < limit {
        let line_end = src[pos..].find('\n').map_or(src.len(), |n| pos + n);
        let line = src[pos..line_end].trim_end_matches('\r');
        let blank = line.trim().is_empty();
        let line_indent = line.len() - line.trim_start_matches(' ').len();
        if !blank {
            if line_indent < indent {
                break;
            }
            end = (pos + line.len()).min(limit);
        }
        pos = line_end + 1;
    }
    (indicator, end.max(indicator + 1))
}

/// How to write a string as a YAML scalar.
pub(crate) fn render_string(s: &str, prefer: Style) -> String {
    match prefer {
        Style::Plain if plain_safe(s) => s.to_string(),
        Style::SingleQuoted if !s.chars().any(needs_escape) => {
            format!("'{}'", s.replace('\'', "''"))
        }
        _ => double_quoted(s),
    }
}

/// A string YAML reads back as the same string when written without quotes.
pub(crate) fn plain_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    // A leading digit may read as a number, a date or a time (YAML 1.1 readers, PyYAML).
    if "-?:,[]{}#&*!|>'\"%@`~ ".contains(first) || first.is_ascii_digit() || s.ends_with(' ') {
        return false;
    }
    // Flow indicators anywhere: inside `{…}` or `[…]` they would end the value, and the same
    // text must be safe wherever the field stands.
    if s.chars().any(|c| needs_escape(c) || matches!(c, ',' | '[' | ']' | '{' | '}'))
        || s.contains(": ")
        || s.contains(" #")
        || s.ends_with(':')
        || s.trim() != s
    {
        return false;
    }
    // Words YAML would read as something other than a string.
    let lower = s.to_ascii_lowercase();
    if matches!(lower.as_str(), "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "y" | "n")
    {
        return false;
    }
    let numeric = s
        .trim_start_matches(['+', '-'])
        .chars()
        .all(|c| c.is_ascii_digit() || c == '.' || c == '_' || c == 'e' || c == 'E');
    !(numeric && s.chars().any(|c| c.is_ascii_digit()))
}

/// A character YAML does not take as written in a scalar (not printable in YAML's sense, or
/// a line or byte-order mark some readers treat specially).
fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{feff}' | '\u{2028}' | '\u{2029}' | '\u{fffe}' | '\u{ffff}')
}

/// A double-quoted YAML scalar on one line, with every control character escaped.
pub(crate) fn double_quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => {
                let n = c as u32;
                if n <= 0xff {
                    out.push_str(&format!("\\x{n:02x}"));
                } else {
                    out.push_str(&format!("\\u{n:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text<'a>(src: &'a str, n: &Node) -> &'a str {
        &src[n.start..n.end]
    }

    #[test]
    fn scalar_spans_are_exact_in_every_style() {
        let src = "a: 'x y'  # c\nb: \"q\\\"\"\nc: plain words # c\nd: |\n  one\n  two\n\ne: >-\n  f\nf: [1.10, 'x']\ng: {k: v}\nh:\ni: multi\n  line\n";
        let root = parse(src).unwrap();
        let get = |k: &str| text(src, root.get(k).unwrap());
        assert_eq!(get("a"), "'x y'");
        assert_eq!(get("b"), "\"q\\\"\"");
        assert_eq!(get("c"), "plain words");
        assert_eq!(get("d"), "|\n  one\n  two");
        assert_eq!(get("e"), ">-\n  f");
        assert_eq!(get("f"), "[1.10, 'x']");
        assert_eq!(get("g"), "{k: v}");
        assert_eq!(get("h"), "");
        assert_eq!(get("i"), "multi\n  line");
        let f = root.get("f").unwrap().items().unwrap();
        assert_eq!(text(src, &f[0]), "1.10");
        assert_eq!(text(src, &f[1]), "'x'");
        let g = root.get("g").unwrap();
        assert_eq!(text(src, g.get("k").unwrap()), "v");
    }

    #[test]
    fn anchors_and_tags_do_not_hide_a_node() {
        let src = "a: &t {k: v}\nb: !!seq [1, 2]\nc: &e |\n  old\n  text\nd: !!str >\n  folded\ne: x\n";
        let root = parse(src).unwrap();
        assert_eq!(text(src, root.get("a").unwrap()), "{k: v}");
        assert!(matches!(root.get("a").unwrap().kind, NodeKind::Mapping { flow: true, .. }));
        assert_eq!(text(src, root.get("b").unwrap()), "[1, 2]");
        assert_eq!(text(src, root.get("c").unwrap()), "|\n  old\n  text");
        assert_eq!(text(src, root.get("d").unwrap()), ">\n  folded");
        assert_eq!(text(src, root.get("e").unwrap()), "x");
    }

    #[test]
    fn aliases_and_merge_keys_read_as_their_anchors() {
        let src = "d: &d {max_attempts: 7, parallel_group: g}\nn: &n hello\nt:\n  <<: *d\n  name: *n\n  max_attempts: 2\n";
        let root = parse(src).unwrap();
        let t = root.get("t").unwrap();
        assert_eq!(t.get("name").unwrap().as_scalar(), Some("hello"));
        assert_eq!(t.get("parallel_group").unwrap().as_scalar(), Some("g"));
        assert_eq!(t.get("max_attempts").unwrap().as_scalar(), Some("2"), "the mapping's own key wins");
        assert_eq!(text(src, t.get("name").unwrap()), "*n");
    }

    #[test]
    fn block_scalars_start_at_their_indicator_line() {
        let src = "a: 1\nb: &x |\n  one\n  two\nc:\n  d: >-\n\n    folded\n";
        let root = parse(src).unwrap();
        let b = root.get("b").unwrap();
        assert_eq!((b.line, b.col), (2, 7));
        let d = root.get("c").unwrap().get("d").unwrap();
        assert_eq!((d.line, d.col), (6, 6));
    }

    #[test]
    fn spans_are_bytes_not_chars() {
        let src = "a: 'héllo wörld'  # ü\nb: ünïcode\n";
        let root = parse(src).unwrap();
        assert_eq!(text(src, root.get("a").unwrap()), "'héllo wörld'");
        assert_eq!(text(src, root.get("b").unwrap()), "ünïcode");
    }

    #[test]
    fn crlf_is_not_part_of_a_value() {
        let src = "a: x\r\nb: |\r\n  y\r\nc: 'z'\r\n";
        let root = parse(src).unwrap();
        assert_eq!(text(src, root.get("a").unwrap()), "x");
        assert_eq!(text(src, root.get("b").unwrap()), "|\r\n  y");
        assert_eq!(text(src, root.get("c").unwrap()), "'z'");
    }

    #[test]
    fn syntax_errors_have_positions() {
        let e = parse("a:\n\tb: 1\n").unwrap_err();
        assert_eq!(e.line, 2);
        let e = parse("a: [1,\n").unwrap_err();
        assert_eq!(e.line, 2, "{e:?}");
        let e = parse("a: 1\n---\nb: 2\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("more than one"));
    }

    #[test]
    fn rendered_strings_read_back_unchanged() {
        for s in [
            "plain",
            "it's \"quoted\"",
            "a: b",
            "- dash",
            "multi\nline\ttab",
            "true",
            "1.10",
            "",
            "ünï",
            "bell\u{7}",
            "# hash",
        ] {
            // Words and numbers YAML would read as something else must never be written bare.
            if ["true", "1.10", "", "- dash", "# hash", "a: b"].contains(&s) {
                let written = render_string(s, Style::Plain);
                assert!(written.starts_with('"') || written.starts_with('\''), "{s:?} written bare: {written}");
            }
            for style in [Style::Plain, Style::SingleQuoted, Style::DoubleQuoted] {
                let doc = format!("k: {}\n", render_string(s, style));
                let root = parse(&doc).unwrap_or_else(|e| panic!("{doc:?}: {e:?}"));
                assert_eq!(root.get("k").unwrap().as_scalar(), Some(s), "{doc:?}");
            }
        }
    }
}
