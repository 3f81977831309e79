//! Lossless YAML editing: read a manifest, change a few scalar values or keys,
//! and leave every other byte of the file exactly as it was.
//!
//! `patch` rewrites users' `kustomization.yaml`, Helm values and raw manifests,
//! and the promise is that a diff shows only the values we set. Serializing a
//! parsed tree back out would lose comments, quoting, key order and blank
//! lines, so this module never serializes a document. It parses the text into a
//! small tree whose every node knows its exact *byte* span, turns each requested
//! change into a splice (byte range + replacement text), applies the splices to
//! the original text, then re-parses the result and reads the new values back.
//! If that check fails, [`Edits::apply`] returns an error instead of a broken file.
//!
//! # Parser
//!
//! The events come from `granit-parser`, the parser under `serde-saphyr` (which
//! the config loader already uses, so this adds no new crate to the build).
//! `Parser::new_from_str` gives every event a span with real UTF-8 byte offsets
//! (`Span::byte_range`), including after a BOM, CRLF line breaks and non-ASCII
//! text, plus anchor-token spans and tag spans. The alternatives were weaker:
//! `saphyr-parser` and `yaml-rust2` markers count characters, so every span
//! would have to be converted by re-walking the text (and their BOM and CRLF
//! accounting would have to be trusted too); `yaml-edit` is a lossless rowan CST
//! but brings its own non-conformant, error-recovering parser and more crates,
//! and keeps lists of known edit failures, CRLF among them. A strict,
//! test-suite-driven event parser plus byte spans is all this module needs.
//! The editing layer on top is written here because no crate offers "splice
//! only these values and prove the rest is untouched"; it is small, and the
//! re-parse check plus the property test in `tests/` keep it honest.
//!
//! # Rules for where text goes
//!
//! - Values are strings. A scalar edit replaces exactly the scalar's span
//!   (never its anchor, tag or comment). Plain stays plain, `'…'` stays
//!   single-quoted and `"…"` stays double-quoted. A plain value that would need
//!   quotes (it would read as a number, bool, null or date under YAML 1.1 or
//!   1.2, or contains `: `, ` #`, flow indicators in flow context, a leading
//!   indicator, …) is written double-quoted, so `1.10` stays a string; a
//!   single-quoted value with characters that need escapes becomes
//!   double-quoted. An empty `key:` becomes `key: value`.
//! - Block scalars (`|`, `>`) and aliases are never edited, nor anything reached
//!   through an alias or a `<<` merge key: changing it would change every other
//!   place that shares the anchor. Edit the anchored node itself instead.
//! - A new key of a block mapping goes on its own line, at the mapping's
//!   indentation, right after the line on which the mapping's last entry ends
//!   (that line's inline comment stays with it). Comment lines and blank lines
//!   after that belong to what follows, so the new line goes before them. A
//!   new sequence item follows the same rule, with the existing dash column and
//!   the spacing after the dash. In flow collections, `, key: value` follows
//!   the last entry's value.
//! - Removing a block-mapping key removes its whole line(s), inline comment
//!   included; a `- key: v` first entry of a sequence item is removed up to
//!   the next key. Removing the last key of a mapping leaves `{}` so the value
//!   stays a mapping. In flow mappings the `, key: v` part goes.
//! - New lines use the file's own line break (CRLF if the first line break is
//!   CRLF; LF for a file without one). Text added at the end of a file that
//!   does not end with a line break keeps it that way; removing such a last
//!   line leaves the line break before it in place.
//! - Edits are checked when recorded (overlaps, edits inside removed entries,
//!   removing an entry whose anchor an alias elsewhere uses) and once more
//!   after applying, by re-parsing the result: same document count, every
//!   written key and value reads back, and every new entry lands in its
//!   collection.

use std::collections::{BTreeSet, HashMap};
use std::ops::Range;
use std::sync::Arc;

use granit_parser::{Event, Parser, ScanError};

/// Everything that can go wrong reading or editing YAML. Lines and columns are
/// 1-based; columns count characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum YamlError {
    /// The input is not valid YAML (this includes tabs used for indentation).
    #[error("line {line}, column {column}: {message}")]
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
    /// The edit is refused because it cannot be made safely.
    #[error("line {line}, column {column}: cannot edit {reason}")]
    Refused {
        line: usize,
        column: usize,
        reason: String,
    },
    /// The node is not of the kind the operation needs.
    #[error("line {line}, column {column}: expected a {expected}, found a {found}")]
    WrongKind {
        line: usize,
        column: usize,
        expected: &'static str,
        found: &'static str,
    },
    /// The key is already there (or already being inserted).
    #[error("line {line}, column {column}: key `{key}` already exists")]
    KeyExists {
        line: usize,
        column: usize,
        key: String,
    },
    /// Two edits touch the same bytes.
    #[error("line {line}, column {column}: this edit overlaps another edit of the same text")]
    Overlap { line: usize, column: usize },
    /// Nodes from different texts were mixed, or `apply` got another text.
    #[error("the edits were made for a different text than the one given")]
    SourceMismatch,
    /// The edited text failed the re-parse check; nothing should be written.
    #[error(
        "the edit would produce invalid YAML (line {line}, column {column} of the result): {message}"
    )]
    Verification {
        line: usize,
        column: usize,
        message: String,
    },
}

/// How a scalar is written in the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarStyle {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    Literal,
    Folded,
}

/// Whether a mapping or sequence is written in block or flow (`{}` / `[]`) style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollectionStyle {
    Block,
    Flow,
}

/// What a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind<'a> {
    Scalar { value: &'a str, style: ScalarStyle },
    Mapping(CollectionStyle),
    Sequence(CollectionStyle),
    Alias { name: &'a str },
}

#[derive(Debug, Clone)]
enum Shape {
    Scalar {
        value: String,
        style: ScalarStyle,
    },
    Mapping {
        flow: bool,
        entries: Vec<(usize, usize)>,
    },
    Sequence {
        flow: bool,
        items: Vec<usize>,
    },
    Alias {
        name: String,
        target: usize,
    },
}

#[derive(Debug, Clone)]
struct NodeData {
    shape: Shape,
    /// Content bytes: for a block collection from its first child to the end of
    /// its last child, for a flow collection including the brackets.
    span: Range<usize>,
    /// Where the node's anchor or tag starts, if it has one before its content.
    props_start: usize,
    line: usize,
    column: usize,
    anchor: Option<String>,
    parent: Option<usize>,
    in_flow: bool,
}

/// One YAML document of a (possibly multi-document) text.
#[derive(Debug, Clone)]
pub struct Document {
    source: Arc<str>,
    index: usize,
    span: Range<usize>,
    nodes: Vec<NodeData>,
    root: usize,
}

/// A node of a [`Document`], cheap to copy.
#[derive(Debug, Clone, Copy)]
pub struct Node<'a> {
    doc: &'a Document,
    id: usize,
    /// Set when the node was reached by following an alias or a merge key:
    /// the location of that alias or `<<` key.
    via: Option<(usize, usize)>,
}

/// Parses `text` into its documents, each node with its byte span in `text`.
/// A text with no document (empty, or only comments) gives an empty list.
pub fn parse(text: &str) -> Result<Vec<Document>, YamlError> {
    parse_shared(&Arc::from(text))
}

fn syntax_error(error: &ScanError) -> YamlError {
    let marker = error.marker();
    YamlError::Syntax {
        line: marker.line(),
        column: marker.col() + 1,
        message: error.kind().to_string(),
    }
}

struct Frame {
    id: usize,
    pending_key: Option<usize>,
}

struct DocBuilder {
    start: usize,
    nodes: Vec<NodeData>,
    stack: Vec<Frame>,
    root: Option<usize>,
    anchors: HashMap<usize, usize>,
}

impl DocBuilder {
    fn add(
        &mut self,
        shape: Shape,
        span: Range<usize>,
        props_start: usize,
        at: (usize, usize),
    ) -> usize {
        let id = self.nodes.len();
        let parent = self.stack.last().map(|frame| frame.id);
        let in_flow = parent.is_some_and(|p| {
            let node = &self.nodes[p];
            node.in_flow
                || matches!(
                    node.shape,
                    Shape::Mapping { flow: true, .. } | Shape::Sequence { flow: true, .. }
                )
        });
        self.nodes.push(NodeData {
            shape,
            span,
            props_start,
            line: at.0,
            column: at.1,
            anchor: None,
            parent,
            in_flow,
        });
        match self.stack.last_mut() {
            None => self.root = Some(id),
            Some(frame) => {
                let parent_id = frame.id;
                match &mut self.nodes[parent_id].shape {
                    Shape::Mapping { entries, .. } => match frame.pending_key.take() {
                        Some(key) => entries.push((key, id)),
                        None => frame.pending_key = Some(id),
                    },
                    Shape::Sequence { items, .. } => items.push(id),
                    _ => {}
                }
            }
        }
        id
    }

    fn close(&mut self, end_span: Range<usize>) {
        let Some(frame) = self.stack.pop() else {
            return;
        };
        let last_child_end = match &self.nodes[frame.id].shape {
            Shape::Mapping { entries, .. } => entries.last().map(|&(_, v)| self.nodes[v].span.end),
            Shape::Sequence { items, .. } => items.last().map(|&i| self.nodes[i].span.end),
            _ => None,
        };
        let node = &mut self.nodes[frame.id];
        let flow = matches!(
            node.shape,
            Shape::Mapping { flow: true, .. } | Shape::Sequence { flow: true, .. }
        );
        node.span.end = if flow {
            end_span.end
        } else {
            last_child_end
                .unwrap_or(node.span.start)
                .max(node.span.start)
        };
    }
}

fn parse_shared(source: &Arc<str>) -> Result<Vec<Document>, YamlError> {
    let options = granit_parser::options! { emit_anchor_events: true, emit_comments: false };
    let mut docs = Vec::new();
    let mut current: Option<DocBuilder> = None;
    for next in Parser::new_from_str_with_options(source, options) {
        let (event, span) = next.map_err(|e| syntax_error(&e))?;
        // `new_from_str` always provides byte offsets; treat a missing one as a
        // parser bug rather than guessing from character indexes.
        let range = span.byte_range().ok_or_else(|| YamlError::Syntax {
            line: span.start.line(),
            column: span.start.col() + 1,
            message: "parser gave no byte offset".into(),
        })?;
        let at = (span.start.line(), span.start.col() + 1);
        let props_start = span
            .tag_span()
            .and_then(|t| t.byte_range())
            .map_or(range.start, |t| t.start.min(range.start));
        if let Event::DocumentStart(..) = event {
            current = Some(DocBuilder {
                start: range.start,
                nodes: Vec::new(),
                stack: Vec::new(),
                root: None,
                anchors: HashMap::new(),
            });
            continue;
        }
        if let Event::DocumentEnd = event {
            if let Some(mut b) = current.take() {
                let root = match b.root {
                    Some(root) => root,
                    None => b.add(
                        Shape::Scalar {
                            value: String::new(),
                            style: ScalarStyle::Plain,
                        },
                        b.start..b.start,
                        b.start,
                        at,
                    ),
                };
                docs.push(Document {
                    source: Arc::clone(source),
                    index: docs.len(),
                    span: b.start..range.end.max(b.start),
                    nodes: b.nodes,
                    root,
                });
            }
            continue;
        }
        let Some(b) = current.as_mut() else { continue };
        match event {
            Event::Scalar(value, style, anchor, _) => {
                let style = match style {
                    granit_parser::ScalarStyle::Plain => ScalarStyle::Plain,
                    granit_parser::ScalarStyle::SingleQuoted => ScalarStyle::SingleQuoted,
                    granit_parser::ScalarStyle::DoubleQuoted => ScalarStyle::DoubleQuoted,
                    granit_parser::ScalarStyle::Literal => ScalarStyle::Literal,
                    granit_parser::ScalarStyle::Folded => ScalarStyle::Folded,
                };
                // An implicit null (`key:`) is reported as `~`; it was written as nothing.
                let value = if range.is_empty() {
                    String::new()
                } else {
                    value.into_owned()
                };
                let id = b.add(Shape::Scalar { value, style }, range, props_start, at);
                if anchor != 0 {
                    b.anchors.insert(anchor, id);
                }
            }
            Event::SequenceStart(style, anchor, _) | Event::MappingStart(style, anchor, _) => {
                let flow = style == granit_parser::StructureStyle::Flow;
                let shape = if matches!(event, Event::SequenceStart(..)) {
                    Shape::Sequence {
                        flow,
                        items: Vec::new(),
                    }
                } else {
                    Shape::Mapping {
                        flow,
                        entries: Vec::new(),
                    }
                };
                let id = b.add(shape, range, props_start, at);
                if anchor != 0 {
                    b.anchors.insert(anchor, id);
                }
                b.stack.push(Frame {
                    id,
                    pending_key: None,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => b.close(range),
            Event::Anchor(anchor, name) => {
                if let Some(&id) = b.anchors.get(&anchor) {
                    let node = &mut b.nodes[id];
                    node.anchor = Some(name.into_owned());
                    node.props_start = node.props_start.min(range.start);
                }
            }
            Event::Alias(anchor) => {
                if let Some(&target) = b.anchors.get(&anchor) {
                    let name = b.nodes[target].anchor.clone().unwrap_or_default();
                    b.add(
                        Shape::Alias { name, target },
                        range.clone(),
                        range.start,
                        at,
                    );
                }
            }
            _ => {}
        }
    }
    Ok(docs)
}

impl Document {
    /// The document's root node (an empty document has an empty plain scalar).
    pub fn root(&self) -> Node<'_> {
        Node {
            doc: self,
            id: self.root,
            via: None,
        }
    }

    /// Follows `path` from the root; see [`Node::lookup`].
    pub fn lookup(&self, path: &[&str]) -> Option<Node<'_>> {
        self.root().lookup(path)
    }

    /// Position of this document in the text (0-based).
    pub fn index(&self) -> usize {
        self.index
    }

    /// Byte range of the document in the text, markers (`---`, `...`) included.
    pub fn span(&self) -> Range<usize> {
        self.span.clone()
    }

    fn node(&self, id: usize) -> &NodeData {
        &self.nodes[id]
    }
}

impl<'a> Node<'a> {
    fn data(&self) -> &'a NodeData {
        &self.doc.nodes[self.id]
    }

    fn at(&self, id: usize) -> Node<'a> {
        Node {
            doc: self.doc,
            id,
            via: self.via,
        }
    }

    /// What the node is. An alias is reported as an alias, not as its target.
    pub fn kind(&self) -> NodeKind<'a> {
        match &self.data().shape {
            Shape::Scalar { value, style } => NodeKind::Scalar {
                value,
                style: *style,
            },
            Shape::Mapping { flow, .. } => NodeKind::Mapping(collection_style(*flow)),
            Shape::Sequence { flow, .. } => NodeKind::Sequence(collection_style(*flow)),
            Shape::Alias { name, .. } => NodeKind::Alias { name },
        }
    }

    /// Byte range of the node's content in the text (no anchor, tag or comment).
    pub fn span(&self) -> Range<usize> {
        self.data().span.clone()
    }

    /// The source text of the node's content.
    pub fn source_text(&self) -> &'a str {
        &self.doc.source[self.data().span.clone()]
    }

    /// 1-based line of the node's start.
    pub fn line(&self) -> usize {
        self.data().line
    }

    /// 1-based column (in characters) of the node's start.
    pub fn column(&self) -> usize {
        self.data().column
    }

    /// The anchor defined on this node (`&name`), without `&`.
    pub fn anchor(&self) -> Option<&'a str> {
        self.data().anchor.as_deref()
    }

    /// Whether the node was reached through an alias or a `<<` merge key, which
    /// makes it read-only for [`Edits`].
    pub fn is_shared(&self) -> bool {
        self.via.is_some()
    }

    /// Follows an alias to its anchored node; any other node is returned as is.
    pub fn resolve(&self) -> Node<'a> {
        match &self.data().shape {
            Shape::Alias { target, .. } => Node {
                doc: self.doc,
                id: *target,
                via: self.via.or(Some((self.line(), self.column()))),
            },
            _ => *self,
        }
    }

    /// The node an alias or `<<` merge leads to, as the anchored node
    /// itself: editable, and an edit changes every place that shares it.
    /// For callers that know every sharer wants the same value.
    pub fn owner(&self) -> Node<'a> {
        Node {
            via: None,
            ..self.resolve()
        }
    }

    /// The decoded value of a scalar (following an alias).
    pub fn as_str(&self) -> Option<&'a str> {
        match &self.resolve().data().shape {
            Shape::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }

    /// Whether the node is a null: an empty plain scalar, `~` or `null`.
    pub fn is_null(&self) -> bool {
        matches!(
            self.resolve().kind(),
            NodeKind::Scalar {
                value: "" | "~" | "null" | "Null" | "NULL",
                style: ScalarStyle::Plain
            }
        )
    }

    /// The style of a scalar (not following aliases).
    pub fn scalar_style(&self) -> Option<ScalarStyle> {
        match &self.data().shape {
            Shape::Scalar { style, .. } => Some(*style),
            _ => None,
        }
    }

    /// The key/value pairs of a mapping (following an alias), in source order.
    /// Merge keys are listed as they are written.
    pub fn entries(&self) -> impl Iterator<Item = (Node<'a>, Node<'a>)> + 'a {
        let node = self.resolve();
        let entries: &'a [(usize, usize)] = match &node.data().shape {
            Shape::Mapping { entries, .. } => entries,
            _ => &[],
        };
        entries.iter().map(move |&(k, v)| (node.at(k), node.at(v)))
    }

    /// The items of a sequence (following an alias).
    pub fn items(&self) -> impl Iterator<Item = Node<'a>> + 'a {
        let node = self.resolve();
        let items: &'a [usize] = match &node.data().shape {
            Shape::Sequence { items, .. } => items,
            _ => &[],
        };
        items.iter().map(move |&i| node.at(i))
    }

    /// The value of `key` in a mapping (following an alias). A key written in
    /// the mapping wins; otherwise `<<` merge keys are searched in order, and a
    /// value found there is marked as shared ([`Node::is_shared`]).
    pub fn get(&self, key: &str) -> Option<Node<'a>> {
        self.get_merged(key, 0)
    }

    fn get_merged(&self, key: &str, depth: usize) -> Option<Node<'a>> {
        let node = self.resolve();
        if let Some((_, value)) = node.direct_entry(key) {
            return Some(value);
        }
        // A merge chain can loop (`&a {<<: *a}`); real files nest a few levels.
        if depth > 16 {
            return None;
        }
        for (k, v) in node.entries() {
            if k.as_str() != Some("<<") || k.scalar_style() != Some(ScalarStyle::Plain) {
                continue;
            }
            let merged = Node {
                via: node.via.or(Some((k.line(), k.column()))),
                ..v
            };
            let sources: Vec<Node<'a>> = match merged.resolve().kind() {
                NodeKind::Sequence(_) => merged.items().collect(),
                _ => vec![merged],
            };
            for source in sources {
                if let Some(found) = source.get_merged(key, depth + 1) {
                    return Some(found);
                }
            }
        }
        None
    }

    fn direct_entry(&self, key: &str) -> Option<(Node<'a>, Node<'a>)> {
        self.entries()
            .find(|(k, _)| matches!(k.kind(), NodeKind::Scalar { value, .. } if value == key))
    }

    /// Follows a path of mapping keys; a segment that is a number indexes a
    /// sequence. `lookup(&["spec", "containers", "0", "image"])`.
    pub fn lookup(&self, path: &[&str]) -> Option<Node<'a>> {
        let mut node = *self;
        for segment in path {
            node = match node.resolve().kind() {
                NodeKind::Sequence(_) => node.items().nth(segment.parse().ok()?)?,
                NodeKind::Mapping(_) => node.get(segment)?,
                _ => return None,
            };
        }
        Some(node)
    }

    fn kind_name(&self) -> &'static str {
        match self.data().shape {
            Shape::Scalar { .. } => "scalar",
            Shape::Mapping { .. } => "mapping",
            Shape::Sequence { .. } => "sequence",
            Shape::Alias { .. } => "alias",
        }
    }

    fn ancestry(&self) -> Vec<usize> {
        let mut out = vec![self.id];
        let mut cur = self.data().parent;
        while let Some(p) = cur {
            out.push(p);
            cur = self.doc.node(p).parent;
        }
        out
    }
}

/// The last node id inside `id`'s subtree (ids are assigned in document order).
fn subtree_end(doc: &Document, id: usize) -> usize {
    let last_child = match &doc.node(id).shape {
        Shape::Mapping { entries, .. } => entries.last().map(|&(_, v)| v),
        Shape::Sequence { items, .. } => items.last().copied(),
        _ => None,
    };
    last_child.map_or(id, |child| subtree_end(doc, child))
}

/// An alias outside `ids` whose anchor is inside them.
fn outside_alias_into(doc: &Document, ids: Range<usize>) -> Option<&NodeData> {
    doc.nodes
        .iter()
        .enumerate()
        .find_map(|(id, node)| match node.shape {
            Shape::Alias { target, .. } if ids.contains(&target) && !ids.contains(&id) => {
                Some(node)
            }
            _ => None,
        })
}

fn collection_style(flow: bool) -> CollectionStyle {
    if flow {
        CollectionStyle::Flow
    } else {
        CollectionStyle::Block
    }
}

// ---------------------------------------------------------------------------
// Text helpers. All positions are byte offsets into the source.

const BOM: &str = "\u{feff}";

/// Start of the line holding `pos`; a leading BOM is not part of line one.
fn line_start(src: &str, pos: usize) -> usize {
    match src[..pos].rfind('\n') {
        Some(i) => i + 1,
        None if src.starts_with(BOM) && pos >= BOM.len() => BOM.len(),
        None => 0,
    }
}

/// Start of the line after the one on which the content ending at `end`
/// (exclusive) ends, or `None` if that is the last line and has no line break.
fn next_line_start(src: &str, end: usize) -> Option<usize> {
    if end > 0 && src.as_bytes()[end - 1] == b'\n' {
        return Some(end);
    }
    src[end..].find('\n').map(|i| end + i + 1)
}

fn char_column(src: &str, pos: usize) -> usize {
    src[line_start(src, pos)..pos].chars().count()
}

fn location(src: &str, pos: usize) -> (usize, usize) {
    let pos = pos.min(src.len());
    (
        src[..pos].matches('\n').count() + 1,
        char_column(src, pos) + 1,
    )
}

fn line_break(src: &str) -> &'static str {
    match src.find('\n') {
        Some(i) if i > 0 && src.as_bytes()[i - 1] == b'\r' => "\r\n",
        _ => "\n",
    }
}

/// End of a node's content for the purpose of "the line it ends on". Block
/// scalars own their trailing blank lines only when they are content (keep
/// chomping); otherwise new lines go right after the last text line.
fn content_end(doc: &Document, id: usize) -> usize {
    let node = doc.node(id);
    match &node.shape {
        Shape::Scalar {
            value,
            style: ScalarStyle::Literal | ScalarStyle::Folded,
        } => {
            if value.ends_with("\n\n") {
                node.span.end
            } else {
                let text = &doc.source[node.span.clone()];
                node.span.start + text.trim_end().len()
            }
        }
        // An implicit null (`key:`) has an empty span at the `:`.
        Shape::Scalar { .. }
            if node.span.is_empty() && doc.source[node.span.start..].starts_with(':') =>
        {
            node.span.start + 1
        }
        Shape::Mapping {
            flow: false,
            entries,
        } => entries.last().map_or(node.span.end, |&(k, v)| {
            content_end(doc, k).max(content_end(doc, v))
        }),
        Shape::Sequence { flow: false, items } => {
            items.last().map_or(node.span.end, |&i| content_end(doc, i))
        }
        _ => node.span.end,
    }
}

/// The first scalar or alias inside a node and how many parent steps lead
/// from it back to the node; used to check the structure after an edit.
fn first_leaf(doc: &Document, id: usize) -> Option<(usize, usize)> {
    let node = doc.node(id);
    let child = match &node.shape {
        Shape::Scalar { .. } | Shape::Alias { .. } => {
            return (!node.span.is_empty()).then_some((node.span.start, 0));
        }
        Shape::Mapping { entries, .. } => entries.first().map(|&(k, _)| k)?,
        Shape::Sequence { items, .. } => items.first().copied()?,
    };
    first_leaf(doc, child).map(|(offset, up)| (offset, up + 1))
}

// ---------------------------------------------------------------------------
// Scalar rendering.

/// Characters that YAML cannot show literally (or that would start a new line).
fn needs_escape(c: char) -> bool {
    c < ' '
        || ('\u{7f}'..='\u{9f}').contains(&c)
        || matches!(
            c,
            '\u{feff}' | '\u{2028}' | '\u{2029}' | '\u{fffe}' | '\u{ffff}'
        )
}

/// Whether a plain scalar would be read as something other than this string
/// by a YAML 1.1 or 1.2 reader (Kubernetes tooling still speaks 1.1).
fn looks_typed(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "~" | "null" | "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "<<" | "="
    ) {
        return true;
    }
    let unsigned = lower.trim_start_matches(['+', '-']);
    if matches!(unsigned, ".inf" | ".nan") {
        return true;
    }
    // Numbers in any base, dates, sexagesimal: quote anything that starts like a
    // number and uses only number-ish characters. Overly careful is harmless.
    unsigned.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        && unsigned.chars().all(|c| {
            c.is_ascii_hexdigit()
                || matches!(
                    c,
                    '_' | '.' | ':' | '+' | '-' | 'x' | 'o' | 'b' | 't' | 'z' | ' '
                )
        })
}

fn plain_ok(value: &str, in_flow: bool) -> bool {
    const INDICATORS: &str = "-?:,[]{}#&*!|>'\"%@`";
    const FLOW: &str = ",[]{}";
    let Some(first) = value.chars().next() else {
        return false;
    };
    let second = value.chars().nth(1);
    if value.chars().any(|c| needs_escape(c) || c == '\t')
        || value.starts_with(' ')
        || value.ends_with(' ')
        || value.ends_with(':')
        || value.contains(": ")
        || value.contains(" #")
        || value.starts_with("---")
        || value.starts_with("...")
        || (in_flow && value.contains(|c| FLOW.contains(c)))
        || looks_typed(value)
    {
        return false;
    }
    if INDICATORS.contains(first) {
        // `-`, `?` and `:` may start a plain scalar when followed by a
        // non-space character that is safe in this context.
        let safe_next = second.is_some_and(|c| c != ' ' && !(in_flow && FLOW.contains(c)));
        return matches!(first, '-' | '?' | ':') && safe_next;
    }
    true
}

fn double_quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c if needs_escape(c) => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Writes `value` in `style` if that style can hold it, else in the least
/// surprising quoting that can.
fn render_scalar(value: &str, style: ScalarStyle, in_flow: bool) -> String {
    match style {
        ScalarStyle::Plain if plain_ok(value, in_flow) => value.to_owned(),
        ScalarStyle::SingleQuoted if !value.chars().any(needs_escape) => {
            format!("'{}'", value.replace('\'', "''"))
        }
        _ => double_quoted(value),
    }
}

// ---------------------------------------------------------------------------
// Edits.

/// One byte-level change: replace `range` of the original text with `text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Splice {
    pub range: Range<usize>,
    pub text: String,
    checks: Vec<(usize, Check)>,
    /// Tie-break among splices at the same position: phase (0 scalar writes,
    /// 1 placeholders, 2 removals, 3 insertions), then rank.
    order: (u8, usize),
}

/// What the re-parse must find at an offset of a splice's text.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Check {
    /// A scalar with this value starts here.
    Value(String),
    /// The scalar starting here, `up` parents up, is the same node as the
    /// scalar at original offset `sibling`, `sibling_up` parents up.
    SameParent {
        up: usize,
        sibling: usize,
        sibling_up: usize,
    },
}

#[derive(Debug, Clone)]
struct Line {
    indent: usize,
    text: String,
    checks: Vec<(usize, Check)>,
    /// Offset of a new key or item in `text` and how many parents lead from
    /// its first scalar to the collection; checked against a surviving member.
    sibling: Option<(usize, usize)>,
}

impl Line {
    fn new(indent: usize, text: String, checks: Vec<(usize, Check)>) -> Line {
        Line {
            indent,
            text,
            checks,
            sibling: None,
        }
    }
}

#[derive(Debug, Clone)]
struct Member {
    start: usize,
    end: usize,
    line_start: usize,
    line_mode: bool,
    leaf: Option<(usize, usize)>,
}

/// Pending removals and insertions of one collection, turned into splices
/// only when the whole set is known (neighbours decide separators and ranges).
#[derive(Debug, Clone)]
struct Group {
    key: (usize, usize),
    flow: bool,
    mapping: bool,
    open_end: usize,
    members: Vec<Member>,
    indent: usize,
    /// Spaces after a block sequence's dashes.
    gap: usize,
    depth: usize,
    removed: BTreeSet<usize>,
    inserts: Vec<Vec<Line>>,
    new_keys: Vec<String>,
}

#[derive(Debug, Clone)]
struct Claim {
    doc: usize,
    ancestry: Vec<usize>,
    removes: Option<(usize, usize)>,
}

/// A set of changes to one text, applied together by [`Edits::apply`].
/// Each method checks its change and either records it whole or returns an
/// error and records nothing.
#[derive(Debug, Clone, Default)]
pub struct Edits {
    source: Option<Arc<str>>,
    documents: usize,
    replacements: Vec<Splice>,
    groups: Vec<Group>,
    claims: Vec<Claim>,
    sequence: usize,
}

fn refused(node: &Node<'_>, reason: impl Into<String>) -> YamlError {
    YamlError::Refused {
        line: node.line(),
        column: node.column(),
        reason: reason.into(),
    }
}

fn wrong_kind(node: &Node<'_>, expected: &'static str) -> YamlError {
    YamlError::WrongKind {
        line: node.line(),
        column: node.column(),
        expected,
        found: node.kind_name(),
    }
}

fn writable(node: &Node<'_>) -> Result<(), YamlError> {
    if let Some((line, column)) = node.via {
        return Err(refused(
            node,
            format!(
                "a node reached through the alias or merge key at line {line}, column {column}; edit the anchored node instead"
            ),
        ));
    }
    if let Shape::Alias { name, target } = &node.data().shape {
        let (line, column) = location(&node.doc.source, node.doc.node(*target).props_start);
        return Err(refused(
            node,
            format!(
                "the alias `*{name}`; edit the anchor `&{name}` at line {line}, column {column} instead"
            ),
        ));
    }
    Ok(())
}

impl Edits {
    /// No edits yet; the first edit ties the set to its node's text.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether no change has been recorded.
    pub fn is_empty(&self) -> bool {
        self.replacements.is_empty()
            && self
                .groups
                .iter()
                .all(|g| g.removed.is_empty() && g.inserts.is_empty())
    }

    /// Sets a scalar's value, keeping its quoting style where it can.
    pub fn set_scalar(&mut self, node: Node<'_>, value: &str) -> Result<&mut Self, YamlError> {
        self.transaction(node.doc, |edits| edits.record_scalar(node, value))
    }

    /// Sets `key` in a mapping: the existing value is replaced like
    /// [`Edits::set_scalar`]; a missing key is added after the last entry.
    pub fn set_key(
        &mut self,
        mapping: Node<'_>,
        key: &str,
        value: &str,
    ) -> Result<&mut Self, YamlError> {
        self.transaction(mapping.doc, |edits| {
            if let Some(existing) = edits.live_value(mapping, key)? {
                return edits.record_scalar(existing, value);
            }
            let in_flow = mapping.data().in_flow || is_flow(&mapping);
            let key_text = render_scalar(key, ScalarStyle::Plain, in_flow);
            let value_text = render_scalar(value, ScalarStyle::Plain, in_flow);
            let text = format!("{key_text}: {value_text}");
            let checks = vec![
                (0, Check::Value(key.to_owned())),
                (key_text.len() + 2, Check::Value(value.to_owned())),
            ];
            edits.record_insert(mapping, key, vec![Line::new(0, text, checks)])
        })
    }

    /// Removes `key` and its value from a mapping (its whole line(s) in block
    /// style). A missing key is not an error: the key is then already absent.
    /// A key added earlier in the same `Edits` is taken out of the batch.
    pub fn remove_key(&mut self, mapping: Node<'_>, key: &str) -> Result<&mut Self, YamlError> {
        self.transaction(mapping.doc, |edits| {
            writable(&mapping)?;
            if !matches!(mapping.kind(), NodeKind::Mapping(_)) {
                return Err(wrong_kind(&mapping, "mapping"));
            }
            // A key added earlier in this batch: drop that addition.
            let group_key = (mapping.doc.index, mapping.id);
            if let Some(group) = edits.groups.iter_mut().find(|g| g.key == group_key)
                && let Some(pos) = group.new_keys.iter().position(|k| k == key)
            {
                group.new_keys.remove(pos);
                group.inserts.remove(pos);
                return Ok(());
            }
            let Some(index) = mapping
                .entries()
                .position(|(k, _)| k.as_str() == Some(key) && k.scalar_style().is_some())
            else {
                return Ok(());
            };
            let (k, v) = mapping.entries().nth(index).expect("entry exists");
            if let Some(alias) = outside_alias_into(mapping.doc, k.id..subtree_end(mapping.doc, v.id) + 1) {
                return Err(refused(
                    &k,
                    format!(
                        "this entry: it defines an anchor that the alias at line {}, column {} uses",
                        alias.line, alias.column
                    ),
                ));
            }
            let group = edits.group(mapping)?;
            let member = &group.members[index];
            if !group.flow && !member.line_mode {
                let prefix = &mapping.doc.source[member.line_start..member.start];
                if index != 0 || !prefix.chars().all(|c| c == ' ' || c == '-') {
                    return Err(refused(
                        &k,
                        "a key that does not start its line (explicit `? ` key?)",
                    ));
                }
            }
            if !group.removed.insert(index) {
                return Ok(());
            }
            edits.claim(mapping.doc, mapping.ancestry(), Some((k.id, v.id)))
        })
    }

    /// Appends a mapping item built from `entries` to a sequence.
    pub fn append_item(
        &mut self,
        sequence: Node<'_>,
        entries: &[(&str, &str)],
    ) -> Result<&mut Self, YamlError> {
        self.transaction(sequence.doc, |edits| {
            writable(&sequence)?;
            let NodeKind::Sequence(style) = sequence.kind() else {
                return Err(wrong_kind(&sequence, "sequence"));
            };
            let group = edits.group(sequence)?;
            let up = if entries.is_empty() { 1 } else { 2 };
            let lines = if style == CollectionStyle::Flow {
                let (text, checks) = flow_mapping_text(entries);
                let mut line = Line::new(0, text, checks);
                line.sibling = (!entries.is_empty()).then_some((1, up));
                vec![line]
            } else {
                let mut lines = item_lines(group.indent, group.gap, entries);
                if !entries.is_empty() {
                    lines[0].sibling = Some((1 + group.gap, up));
                }
                lines
            };
            group.inserts.push(lines);
            edits.claim(sequence.doc, sequence.ancestry(), None)
        })
    }

    /// Adds `key` holding a sequence of mappings (one per element of `items`)
    /// at the end of a mapping. A key present with an empty value (`images:`)
    /// gets the sequence as its value.
    pub fn insert_key_with_sequence(
        &mut self,
        mapping: Node<'_>,
        key: &str,
        items: &[&[(&str, &str)]],
    ) -> Result<&mut Self, YamlError> {
        self.transaction(mapping.doc, |edits| {
            writable(&mapping)?;
            if !matches!(mapping.kind(), NodeKind::Mapping(_)) {
                return Err(wrong_kind(&mapping, "mapping"));
            }
            let flow = is_flow(&mapping);
            let in_flow = mapping.data().in_flow || flow;
            let existing = edits.live_value(mapping, key)?;
            if let Some(value) = existing {
                let empty =
                    value.span().is_empty() && matches!(value.kind(), NodeKind::Scalar { .. });
                if !empty {
                    let (k, _) = mapping.direct_entry(key).expect("live key");
                    return Err(YamlError::KeyExists {
                        line: k.line(),
                        column: k.column(),
                        key: key.into(),
                    });
                }
                return edits.record_sequence_for_null(mapping, value, items, in_flow);
            }
            let key_text = render_scalar(key, ScalarStyle::Plain, in_flow);
            let mut first_checks = vec![(0, Check::Value(key.to_owned()))];
            if flow {
                let mut text = format!("{key_text}: [");
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        text.push_str(", ");
                    }
                    let (item_text, checks) = flow_mapping_text(item);
                    first_checks.extend(checks.into_iter().map(|(o, c)| (o + text.len(), c)));
                    text.push_str(&item_text);
                }
                text.push(']');
                return edits.record_insert(mapping, key, vec![Line::new(0, text, first_checks)]);
            }
            if items.is_empty() {
                let text = format!("{key_text}: []");
                return edits.record_insert(mapping, key, vec![Line::new(0, text, first_checks)]);
            }
            let offset = sequence_indent_style(mapping.doc);
            let mut lines = vec![Line::new(0, format!("{key_text}:"), first_checks)];
            for item in items {
                lines.extend(item_lines(offset, 1, item));
            }
            edits.record_insert(mapping, key, lines)
        })
    }

    /// The byte-level plan: every splice, sorted, as [`Edits::apply`] will use it.
    pub fn splices(&self) -> Result<Vec<Splice>, YamlError> {
        let Some(src) = &self.source else {
            return Ok(Vec::new());
        };
        let eol = line_break(src);
        let mut splices = self.replacements.clone();
        for group in &self.groups {
            group.plan(src, eol, &mut splices);
        }
        splices.sort_by_key(|s| (s.range.start, s.range.end, s.order));
        for pair in splices.windows(2) {
            // Two values written into the same empty node also collide.
            let same_empty_node = pair[0].range.is_empty()
                && pair[0].range == pair[1].range
                && pair[0].order.0 == 0
                && pair[1].order.0 == 0;
            if pair[0].range.end > pair[1].range.start || same_empty_node {
                let (line, column) = location(src, pair[1].range.start);
                return Err(YamlError::Overlap { line, column });
            }
        }
        Ok(splices)
    }

    /// Applies the edits to `text` (the text that was parsed), re-parses the
    /// result and checks that every written value reads back as set.
    pub fn apply(&self, text: &str) -> Result<String, YamlError> {
        let Some(src) = &self.source else {
            return Ok(text.to_owned());
        };
        if **src != *text {
            return Err(YamlError::SourceMismatch);
        }
        let splices = self.splices()?;
        let mut out = String::with_capacity(text.len() + 256);
        let mut last = 0;
        let mut checks = Vec::new();
        for splice in &splices {
            out.push_str(&text[last..splice.range.start]);
            let at = out.len();
            checks.extend(
                splice
                    .checks
                    .iter()
                    .map(|(offset, check)| (at + offset, check)),
            );
            out.push_str(&splice.text);
            last = splice.range.end;
        }
        out.push_str(&text[last..]);
        verify(&out, self.documents, &splices, &checks)?;
        Ok(out)
    }

    fn transaction(
        &mut self,
        doc: &Document,
        change: impl FnOnce(&mut Edits) -> Result<(), YamlError>,
    ) -> Result<&mut Self, YamlError> {
        let mut next = self.clone();
        match &next.source {
            None => {
                next.source = Some(Arc::clone(&doc.source));
                next.documents = parse_shared(&doc.source)?.len();
            }
            Some(src) if Arc::ptr_eq(src, &doc.source) || **src == *doc.source => {}
            Some(_) => return Err(YamlError::SourceMismatch),
        }
        change(&mut next)?;
        next.splices()?;
        *self = next;
        Ok(self)
    }

    fn next_order(&mut self) -> usize {
        self.sequence += 1;
        self.sequence
    }

    fn claim(
        &mut self,
        doc: &Document,
        ancestry: Vec<usize>,
        removes: Option<(usize, usize)>,
    ) -> Result<(), YamlError> {
        let conflict = self.claims.iter().any(|c| {
            c.doc == doc.index
                && (c
                    .removes
                    .is_some_and(|(k, v)| ancestry.contains(&k) || ancestry.contains(&v))
                    || removes
                        .is_some_and(|(k, v)| c.ancestry.contains(&k) || c.ancestry.contains(&v)))
        });
        if conflict {
            let node = doc.node(removes.map_or(ancestry[0], |(k, _)| k));
            return Err(YamlError::Overlap {
                line: node.line,
                column: node.column,
            });
        }
        self.claims.push(Claim {
            doc: doc.index,
            ancestry,
            removes,
        });
        Ok(())
    }

    /// The value of a key that is written in this mapping and not being removed.
    fn live_value<'a>(
        &mut self,
        mapping: Node<'a>,
        key: &str,
    ) -> Result<Option<Node<'a>>, YamlError> {
        writable(&mapping)?;
        if !matches!(mapping.kind(), NodeKind::Mapping(_)) {
            return Err(wrong_kind(&mapping, "mapping"));
        }
        let Some(index) = mapping
            .entries()
            .position(|(k, _)| k.as_str() == Some(key) && k.scalar_style().is_some())
        else {
            return Ok(None);
        };
        let removed = self
            .groups
            .iter()
            .any(|g| g.key == (mapping.doc.index, mapping.id) && g.removed.contains(&index));
        Ok((!removed).then(|| mapping.entries().nth(index).expect("entry exists").1))
    }

    fn record_scalar(&mut self, node: Node<'_>, value: &str) -> Result<(), YamlError> {
        writable(&node)?;
        let data = node.data();
        let Shape::Scalar { style, .. } = &data.shape else {
            return Err(wrong_kind(&node, "scalar"));
        };
        if matches!(style, ScalarStyle::Literal | ScalarStyle::Folded) {
            return Err(refused(&node, "a block scalar (`|` or `>`)"));
        }
        let src = &node.doc.source;
        let rendered = render_scalar(value, *style, data.in_flow);
        let (range, text, offset) = if data.span.is_empty() {
            // An implicit null: `key:` becomes `key: value`.
            if !src[data.span.start..].starts_with(':') {
                return Err(refused(
                    &node,
                    "an empty value that has no `key:` to write after",
                ));
            }
            let at = data.span.start + 1;
            let text = format!(
                " {}",
                render_scalar(value, ScalarStyle::Plain, data.in_flow)
            );
            (at..at, text, 1)
        } else {
            (data.span.clone(), rendered, 0)
        };
        let order = (0, self.next_order());
        self.replacements.push(Splice {
            range,
            text,
            checks: vec![(offset, Check::Value(value.to_owned()))],
            order,
        });
        self.claim(node.doc, node.ancestry(), None)
    }

    fn record_insert(
        &mut self,
        mapping: Node<'_>,
        key: &str,
        lines: Vec<Line>,
    ) -> Result<(), YamlError> {
        let group = self.group(mapping)?;
        if group.new_keys.iter().any(|k| k == key) {
            return Err(YamlError::KeyExists {
                line: mapping.line(),
                column: mapping.column(),
                key: key.into(),
            });
        }
        let mut lines = lines;
        lines[0].sibling = Some((0, 1));
        group.new_keys.push(key.to_owned());
        group.inserts.push(lines);
        self.claim(mapping.doc, mapping.ancestry(), None)
    }

    /// `key:` with an empty value: put the sequence after the `:`.
    fn record_sequence_for_null(
        &mut self,
        mapping: Node<'_>,
        value: Node<'_>,
        items: &[&[(&str, &str)]],
        in_flow: bool,
    ) -> Result<(), YamlError> {
        let src = &mapping.doc.source;
        let colon = value.span().start;
        let order = (0, self.next_order());
        let splice = if in_flow || items.is_empty() {
            let mut text = String::from(" [");
            let mut checks = Vec::new();
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    text.push_str(", ");
                }
                let (item_text, item_checks) = flow_mapping_text(item);
                checks.extend(item_checks.into_iter().map(|(o, c)| (o + text.len(), c)));
                text.push_str(&item_text);
            }
            text.push(']');
            Splice {
                range: colon + 1..colon + 1,
                text,
                checks,
                order,
            }
        } else {
            let (key, _) = mapping
                .entries()
                .find(|(_, v)| v.id == value.id)
                .expect("entry exists");
            let indent =
                char_column(src, key.data().props_start) + sequence_indent_style(mapping.doc);
            let lines: Vec<Line> = items
                .iter()
                .flat_map(|item| item_lines(indent, 1, item))
                .collect();
            let eol = line_break(src);
            let (at, prefix) = match next_line_start(src, colon) {
                Some(at) => (at, false),
                None => (src.len(), true),
            };
            let (text, checks) = assemble(&lines, None, eol, prefix, !prefix);
            Splice {
                range: at..at,
                text,
                checks,
                order,
            }
        };
        self.replacements.push(splice);
        self.claim(mapping.doc, value.ancestry(), None)
    }

    fn group(&mut self, node: Node<'_>) -> Result<&mut Group, YamlError> {
        let key = (node.doc.index, node.id);
        if let Some(i) = self.groups.iter().position(|g| g.key == key) {
            return Ok(&mut self.groups[i]);
        }
        let group = Group::new(node)?;
        self.groups.push(group);
        Ok(self.groups.last_mut().expect("just pushed"))
    }
}

fn is_flow(node: &Node<'_>) -> bool {
    matches!(
        node.kind(),
        NodeKind::Mapping(CollectionStyle::Flow) | NodeKind::Sequence(CollectionStyle::Flow)
    )
}

/// `{k: v, k2: v2}` with readback checks relative to its start.
fn flow_mapping_text(entries: &[(&str, &str)]) -> (String, Vec<(usize, Check)>) {
    let mut text = String::from("{");
    let mut checks = Vec::new();
    for (i, (key, value)) in entries.iter().enumerate() {
        if i > 0 {
            text.push_str(", ");
        }
        checks.push((text.len(), Check::Value((*key).to_owned())));
        text.push_str(&render_scalar(key, ScalarStyle::Plain, true));
        text.push_str(": ");
        checks.push((text.len(), Check::Value((*value).to_owned())));
        text.push_str(&render_scalar(value, ScalarStyle::Plain, true));
    }
    text.push('}');
    (text, checks)
}

/// Lines of one block sequence item `- k: v` / `  k2: v2` with the dash at
/// `dash` and `gap` spaces after it.
fn item_lines(dash: usize, gap: usize, entries: &[(&str, &str)]) -> Vec<Line> {
    if entries.is_empty() {
        return vec![Line::new(
            dash,
            format!("-{}{{}}", " ".repeat(gap)),
            Vec::new(),
        )];
    }
    let mut lines = Vec::new();
    for (i, (key, value)) in entries.iter().enumerate() {
        let key_text = render_scalar(key, ScalarStyle::Plain, false);
        let value_text = render_scalar(value, ScalarStyle::Plain, false);
        let lead = if i == 0 {
            format!("-{}", " ".repeat(gap))
        } else {
            String::new()
        };
        let indent = if i == 0 { dash } else { dash + 1 + gap };
        let checks = vec![
            (lead.len(), Check::Value((*key).to_owned())),
            (
                lead.len() + key_text.len() + 2,
                Check::Value((*value).to_owned()),
            ),
        ];
        lines.push(Line::new(
            indent,
            format!("{lead}{key_text}: {value_text}"),
            checks,
        ));
    }
    lines
}

/// Column of a block sequence's dashes and the spaces after them. The parser
/// starts an indentless sequence (`key:\n- item`) at its first item, which
/// for `key:\n- - x` is the inner sequence's dash, so the dash is found from
/// an item that starts on its dash's line (all dashes share one column).
fn block_sequence_layout(doc: &Document, id: usize) -> Option<(usize, usize)> {
    let src = &doc.source;
    let node = doc.node(id);
    let Shape::Sequence { items, .. } = &node.shape else {
        return None;
    };
    for &item in items {
        let start = doc.node(item).props_start;
        let line = line_start(src, start);
        let before = src[line..start].trim_end_matches(' ');
        if before.ends_with('-') {
            let dash = line + before.len() - 1;
            return Some((char_column(src, dash), start - dash - 1));
        }
    }
    // No item starts on its dash's line (block scalars, items on the next line).
    if src[node.span.start..].starts_with('-') {
        return Some((char_column(src, node.span.start), 1));
    }
    let parent = doc.node(node.parent?);
    match &parent.shape {
        // Indentless: the dashes are at the key's column.
        Shape::Mapping {
            flow: false,
            entries,
        } => entries
            .iter()
            .find(|&&(_, v)| v == id)
            .map(|&(k, _)| (char_column(src, doc.node(k).props_start), 1)),
        _ => None,
    }
}

/// How far this document indents a block sequence under its key (kustomize
/// writes `images:\n- name: x`, others indent by two); 0 when there is none.
fn sequence_indent_style(doc: &Document) -> usize {
    for node in &doc.nodes {
        if let Shape::Mapping {
            flow: false,
            entries,
        } = &node.shape
        {
            for &(k, v) in entries {
                if let Shape::Sequence { flow: false, .. } = doc.node(v).shape
                    && let Some((dash_col, _)) = block_sequence_layout(doc, v)
                {
                    let key_col = char_column(&doc.source, doc.node(k).props_start);
                    return dash_col.saturating_sub(key_col);
                }
            }
        }
    }
    0
}

/// Joins lines with `eol`, indenting each; `prefix` puts a line break first
/// (insertion at the end of a file without a final line break), `trailing`
/// ends the last line with one.
fn assemble(
    lines: &[Line],
    sibling: Option<(usize, usize)>,
    eol: &str,
    prefix: bool,
    trailing: bool,
) -> (String, Vec<(usize, Check)>) {
    let mut text = String::new();
    let mut checks = Vec::new();
    if prefix {
        text.push_str(eol);
    }
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            text.push_str(eol);
        }
        text.push_str(&" ".repeat(line.indent));
        checks.extend(line_checks(line, sibling).map(|(o, c)| (text.len() + o, c)));
        text.push_str(&line.text);
    }
    if trailing && !lines.is_empty() {
        text.push_str(eol);
    }
    (text, checks)
}

impl Group {
    fn new(node: Node<'_>) -> Result<Group, YamlError> {
        let doc = node.doc;
        let src = &doc.source;
        let data = node.data();
        let (flow, mapping, members): (bool, bool, Vec<Member>) = match &data.shape {
            Shape::Mapping { flow, entries } => {
                let members = entries
                    .iter()
                    .map(|&(k, v)| {
                        let start = doc.node(k).props_start;
                        let end = content_end(doc, k).max(content_end(doc, v));
                        let leaf = first_leaf(doc, k).map(|(o, up)| (o, up + 1));
                        member(src, start, end, leaf)
                    })
                    .collect();
                (*flow, true, members)
            }
            Shape::Sequence { flow, items } => {
                let members = items
                    .iter()
                    .map(|&i| {
                        let leaf = first_leaf(doc, i).map(|(o, up)| (o, up + 1));
                        member(src, doc.node(i).props_start, content_end(doc, i), leaf)
                    })
                    .collect();
                (*flow, false, members)
            }
            _ => return Err(wrong_kind(&node, "collection")),
        };
        let mut gap = 1;
        if members.is_empty() && !flow {
            return Err(refused(&node, "an empty block collection"));
        }
        let indent = if flow {
            0
        } else if mapping {
            // Mapping indentation: past any `- ` of a compact sequence item,
            // but at a `? ` explicit-key indicator.
            let first = &members[0];
            let prefix = &src[first.line_start..first.start];
            let skipped = prefix.len() - prefix.trim_start_matches([' ', '-']).len();
            char_column(src, first.line_start + skipped)
        } else {
            let Some((column, spaces)) = block_sequence_layout(doc, node.id) else {
                return Err(refused(
                    &node,
                    "a block sequence whose dashes were not found",
                ));
            };
            gap = spaces;
            column
        };
        Ok(Group {
            key: (doc.index, node.id),
            flow,
            mapping,
            open_end: data.span.start + 1,
            members,
            indent,
            gap,
            depth: node.ancestry().len(),
            removed: BTreeSet::new(),
            inserts: Vec::new(),
            new_keys: Vec::new(),
        })
    }

    /// The first scalar of a member that stays, to check new members against.
    fn surviving_leaf(&self) -> Option<(usize, usize)> {
        self.members
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.removed.contains(i))
            .find_map(|(_, m)| m.leaf)
    }

    /// New lines with absolute indentation (a mapping's are relative to it).
    fn indented_inserts(&self) -> Vec<Line> {
        let base = if self.mapping { self.indent } else { 0 };
        let lines = self.inserts.iter().flatten();
        lines
            .map(|l| Line {
                indent: l.indent + base,
                ..l.clone()
            })
            .collect()
    }

    fn plan(&self, src: &str, eol: &str, out: &mut Vec<Splice>) {
        // Deeper collections insert first where two insert at the same place:
        // their new lines belong above the outer collection's new lines.
        let order = |phase: u8| (phase, usize::MAX - self.depth);
        let sibling = self.surviving_leaf();
        if self.flow {
            self.plan_flow(sibling, out);
            return;
        }
        let n = self.members.len();
        let survivors = n - self.removed.len();
        let last_end = self.members.last().map_or(self.open_end, |m| m.end);
        let (at, at_eof) = match next_line_start(src, last_end) {
            Some(at) => (at, false),
            None => (src.len(), true),
        };
        let mut removals: Vec<Range<usize>> = Vec::new();
        if survivors == 0 && self.mapping && !self.members[0].line_mode {
            // `- a: 1` losing all its keys: write the replacement where `a` was.
            let first = &self.members[0];
            if self.inserts.is_empty() {
                out.push(Splice {
                    range: first.start..last_end,
                    text: "{}".into(),
                    checks: Vec::new(),
                    order: order(1),
                });
            } else {
                let mut lines = self.indented_inserts();
                // The first new key takes the removed first key's place after `- `.
                lines[0].indent = 0;
                let (text, checks) = assemble(&lines, None, eol, false, !at_eof);
                out.push(Splice {
                    range: first.start..at,
                    text,
                    checks,
                    order: order(1),
                });
            }
            return;
        }
        for &i in &self.removed {
            let m = &self.members[i];
            if m.line_mode {
                // The line break before a last line without one stays: other
                // edits may insert lines right there.
                removals.push(m.line_start..next_line_start(src, m.end).unwrap_or(src.len()));
            } else {
                let next = (i + 1..n)
                    .find(|j| !self.removed.contains(j))
                    .map(|j| self.members[j].start);
                removals.push(m.start..next.unwrap_or(m.end));
            }
        }
        removals.sort_by_key(|r| (r.start, r.end));
        let mut merged: Vec<Range<usize>> = Vec::new();
        for r in removals {
            match merged.last_mut() {
                Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
                _ => merged.push(r),
            }
        }
        for r in &merged {
            out.push(Splice {
                range: r.clone(),
                text: String::new(),
                checks: Vec::new(),
                order: order(2),
            });
        }
        if survivors == 0 && self.inserts.is_empty() && self.mapping {
            let first = &self.members[0];
            let text = format!("{}{{}}{eol}", " ".repeat(self.indent));
            let at = first.line_start;
            out.push(Splice {
                range: at..at,
                text,
                checks: Vec::new(),
                order: order(1),
            });
        }
        if !self.inserts.is_empty() {
            let lines = self.indented_inserts();
            // If the last line (without a line break) is removed, the new lines
            // take its place and the file still ends without a line break.
            let last_removed = self.removed.contains(&(n - 1)) && self.members[n - 1].line_mode;
            let (at, prefix) = if at_eof && last_removed {
                let at = self.members[n - 1].line_start;
                // Never inside a removal that swallowed the lines before it.
                let inside = merged.iter().find(|r| r.start < at && at < r.end);
                (inside.map_or(at, |r| r.start), false)
            } else {
                (at, at_eof)
            };
            let (text, checks) = assemble(&lines, sibling, eol, prefix, !at_eof);
            out.push(Splice {
                range: at..at,
                text,
                checks,
                order: order(3),
            });
        }
    }

    fn plan_flow(&self, sibling: Option<(usize, usize)>, out: &mut Vec<Splice>) {
        let n = self.members.len();
        let order = |phase: u8| (phase, usize::MAX - self.depth);
        let mut i = 0;
        while i < n {
            if !self.removed.contains(&i) {
                i += 1;
                continue;
            }
            let mut j = i;
            while j + 1 < n && self.removed.contains(&(j + 1)) {
                j += 1;
            }
            let range = if i > 0 {
                self.members[i - 1].end..self.members[j].end
            } else if j + 1 < n {
                self.members[0].start..self.members[j + 1].start
            } else {
                self.members[0].start..self.members[j].end
            };
            out.push(Splice {
                range,
                text: String::new(),
                checks: Vec::new(),
                order: order(2),
            });
            i = j + 1;
        }
        if self.inserts.is_empty() {
            return;
        }
        let at = self.members.last().map_or(self.open_end, |m| m.end);
        let mut need_comma = self.removed.len() < n;
        let mut text = String::new();
        let mut checks = Vec::new();
        for line in self.inserts.iter().flatten() {
            if need_comma {
                text.push_str(", ");
            }
            need_comma = true;
            checks.extend(line_checks(line, sibling).map(|(o, c)| (text.len() + o, c)));
            text.push_str(&line.text);
        }
        out.push(Splice {
            range: at..at,
            text,
            checks,
            order: order(3),
        });
    }
}

/// A line's checks, plus the structure check against `sibling` if it has one.
fn line_checks(
    line: &Line,
    sibling: Option<(usize, usize)>,
) -> impl Iterator<Item = (usize, Check)> + '_ {
    let same_parent = line
        .sibling
        .zip(sibling)
        .map(|((offset, up), (sibling, sibling_up))| {
            (
                offset,
                Check::SameParent {
                    up,
                    sibling,
                    sibling_up,
                },
            )
        });
    line.checks.iter().cloned().chain(same_parent)
}

fn member(src: &str, start: usize, end: usize, leaf: Option<(usize, usize)>) -> Member {
    let line_start = line_start(src, start);
    let line_mode = src[line_start..start].bytes().all(|b| b == b' ');
    Member {
        start,
        end,
        line_start,
        line_mode,
        leaf,
    }
}

/// Maps an offset of the original text to the output. An offset inside
/// replaced bytes has no image, except the start of a rewritten scalar.
fn map_offset(splices: &[Splice], offset: usize) -> Option<usize> {
    let mut shift: isize = 0;
    for s in splices {
        if s.range.is_empty() {
            if s.range.start <= offset {
                shift += s.text.len() as isize;
            }
        } else if s.range.end <= offset {
            shift += s.text.len() as isize - s.range.len() as isize;
        } else if s.range.start < offset || (s.range.start == offset && s.order.0 != 0) {
            return None;
        }
    }
    offset.checked_add_signed(shift)
}

fn verification(out: &str, at: usize, message: String) -> YamlError {
    let (line, column) = location(out, at);
    YamlError::Verification {
        line,
        column,
        message,
    }
}

fn verify(
    out: &str,
    documents: usize,
    splices: &[Splice],
    checks: &[(usize, &Check)],
) -> Result<(), YamlError> {
    let docs = parse(out).map_err(|e| match e {
        YamlError::Syntax {
            line,
            column,
            message,
        } => YamlError::Verification {
            line,
            column,
            message,
        },
        other => other,
    })?;
    if docs.len() != documents {
        return Err(verification(
            out,
            0,
            format!("expected {documents} documents, found {}", docs.len()),
        ));
    }
    let mut leaves: HashMap<usize, (usize, usize)> = HashMap::new();
    for doc in &docs {
        for (id, node) in doc.nodes.iter().enumerate() {
            if matches!(node.shape, Shape::Scalar { .. } | Shape::Alias { .. })
                && !node.span.is_empty()
            {
                leaves.insert(node.span.start, (doc.index, id));
            }
        }
    }
    let ancestor = |(doc, mut id): (usize, usize), up: usize| {
        for _ in 0..up {
            id = docs[doc].nodes[id].parent?;
        }
        Some((doc, id))
    };
    for &(at, check) in checks {
        let Some(&(doc, id)) = leaves.get(&at) else {
            return Err(verification(
                out,
                at,
                "a written value is not where it was written".into(),
            ));
        };
        match check {
            Check::Value(expected) => {
                if docs[doc].nodes[id].shape_value() != Some(expected.as_str()) {
                    return Err(verification(
                        out,
                        at,
                        format!("value does not read back as {expected:?}"),
                    ));
                }
            }
            Check::SameParent {
                up,
                sibling,
                sibling_up,
            } => {
                // A sibling whose first scalar was itself removed cannot be checked.
                let Some(sibling_at) = map_offset(splices, *sibling) else {
                    continue;
                };
                let sibling_leaf = leaves.get(&sibling_at).copied();
                let ok = sibling_leaf.is_some_and(|s| {
                    ancestor((doc, id), *up).is_some()
                        && ancestor((doc, id), *up) == ancestor(s, *sibling_up)
                });
                if !ok {
                    return Err(verification(
                        out,
                        at,
                        "a new entry did not land in its collection".into(),
                    ));
                }
            }
        }
    }
    Ok(())
}

impl NodeData {
    fn shape_value(&self) -> Option<&str> {
        match &self.shape {
            Shape::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `text`, lets `change` record edits, applies them.
    fn edit(
        text: &str,
        change: impl FnOnce(&[Document], &mut Edits) -> Result<(), YamlError>,
    ) -> Result<String, YamlError> {
        let docs = parse(text)?;
        let mut edits = Edits::new();
        change(&docs, &mut edits)?;
        edits.apply(text)
    }

    fn ok(
        text: &str,
        change: impl FnOnce(&[Document], &mut Edits) -> Result<(), YamlError>,
    ) -> String {
        edit(text, change).unwrap_or_else(|e| panic!("edit failed: {e}"))
    }

    fn set(
        path: &'static [&'static str],
        value: &'static str,
    ) -> impl FnOnce(&[Document], &mut Edits) -> Result<(), YamlError> {
        move |docs, edits| {
            let node = docs[0].lookup(path).expect("path exists");
            edits.set_scalar(node, value)?;
            Ok(())
        }
    }

    // ----- reading

    #[test]
    fn spans_are_bytes_with_bom_crlf_and_non_ascii() {
        let text = "\u{feff}# café ünïcødé 🦀\r\nnäme: \"wört\" # ✓\r\nimage: 'repo/ä:v1'\r\n";
        let docs = parse(text).unwrap();
        let root = docs[0].root();
        let name = root.get("näme").unwrap();
        assert_eq!(name.as_str(), Some("wört"));
        assert_eq!(&text[name.span()], "\"wört\"");
        assert_eq!(name.scalar_style(), Some(ScalarStyle::DoubleQuoted));
        let image = root.get("image").unwrap();
        assert_eq!(&text[image.span()], "'repo/ä:v1'");
        assert_eq!((image.line(), image.column()), (3, 8));
        let (key, _) = root.entries().next().unwrap();
        assert_eq!(&text[key.span()], "näme");
        assert_eq!((key.line(), key.column()), (2, 1));
    }

    #[test]
    fn kinds_styles_anchors_and_lookup() {
        let text = "a: plain\nb: 'single'\nc: \"double\"\nd: |\n  lit\ne: >\n  fold\n\
                    f: {x: 1, y: [2, 3]}\ng:\n  - &anc one\n  - *anc\n";
        let docs = parse(text).unwrap();
        let doc = &docs[0];
        let style = |k: &str| doc.root().get(k).unwrap().scalar_style().unwrap();
        assert_eq!(style("a"), ScalarStyle::Plain);
        assert_eq!(style("b"), ScalarStyle::SingleQuoted);
        assert_eq!(style("c"), ScalarStyle::DoubleQuoted);
        assert_eq!(style("d"), ScalarStyle::Literal);
        assert_eq!(style("e"), ScalarStyle::Folded);
        assert_eq!(doc.lookup(&["d"]).unwrap().as_str(), Some("lit\n"));
        let f = doc.lookup(&["f"]).unwrap();
        assert_eq!(f.kind(), NodeKind::Mapping(CollectionStyle::Flow));
        assert_eq!(&text[f.span()], "{x: 1, y: [2, 3]}");
        assert_eq!(doc.lookup(&["f", "y", "1"]).unwrap().as_str(), Some("3"));
        let items: Vec<_> = doc.lookup(&["g"]).unwrap().items().collect();
        assert_eq!(items[0].anchor(), Some("anc"));
        assert_eq!(items[1].kind(), NodeKind::Alias { name: "anc" });
        assert_eq!(items[1].as_str(), Some("one"));
        assert!(items[1].resolve().is_shared());
        assert_eq!(
            doc.lookup(&["g"]).unwrap().kind(),
            NodeKind::Sequence(CollectionStyle::Block)
        );
        assert!(doc.lookup(&["nope"]).is_none());
        assert!(doc.lookup(&["g", "7"]).is_none());
    }

    #[test]
    fn merge_keys_are_read_but_marked_shared() {
        let text = "base: &b\n  image: x\nd:\n  <<: *b\n  own: y\n";
        let docs = parse(text).unwrap();
        let d = docs[0].lookup(&["d"]).unwrap();
        let image = d.get("image").unwrap();
        assert_eq!(image.as_str(), Some("x"));
        assert!(image.is_shared());
        assert!(!d.get("own").unwrap().is_shared());
    }

    #[test]
    fn multi_document_directives_end_markers_and_empty_documents() {
        let text = "%YAML 1.2\n---\na: 1\n...\n---\n---\n# only a comment\n...\nb: 2\n";
        let docs = parse(text).unwrap();
        assert_eq!(docs.len(), 4);
        assert_eq!(docs[0].lookup(&["a"]).unwrap().as_str(), Some("1"));
        assert_eq!(docs[1].root().as_str(), Some(""));
        assert!(docs[1].root().is_null() && docs[2].root().is_null());
        assert_eq!(docs[3].lookup(&["b"]).unwrap().as_str(), Some("2"));
        assert_eq!(docs[3].index(), 3);
        assert!(parse("").unwrap().is_empty());
        assert!(parse("# nothing\n").unwrap().is_empty());
    }

    #[test]
    fn syntax_errors_have_line_and_column() {
        let err = parse("a:\n\tb: 1\n").unwrap_err();
        let YamlError::Syntax {
            line,
            column,
            message,
        } = &err
        else {
            panic!("{err:?}")
        };
        assert_eq!((*line, *column), (2, 2));
        assert!(message.contains("tab"), "{message}");
        assert!(err.to_string().starts_with("line 2, column 2: "), "{err}");

        let err = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(matches!(err, YamlError::Syntax { line: 2, .. }), "{err:?}");
        let err = parse("a: 1\n b: 2\n").unwrap_err();
        assert!(matches!(err, YamlError::Syntax { line: 2, .. }), "{err:?}");
        let err = parse("x: *nothing\n").unwrap_err();
        assert!(
            matches!(
                err,
                YamlError::Syntax {
                    line: 1,
                    column: 4,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    // ----- set_scalar

    #[test]
    fn set_scalar_keeps_style() {
        let text = "a: old # keep\nb: 'old'\nc: \"old\"\n";
        assert_eq!(
            ok(text, set(&["a"], "new")),
            "a: new # keep\nb: 'old'\nc: \"old\"\n"
        );
        assert_eq!(
            ok(text, set(&["b"], "it's")),
            "a: old # keep\nb: 'it''s'\nc: \"old\"\n"
        );
        assert_eq!(
            ok(text, set(&["c"], "q\"\\")),
            "a: old # keep\nb: 'old'\nc: \"q\\\"\\\\\"\n"
        );
    }

    #[test]
    fn set_scalar_quotes_plain_values_that_need_it() {
        let text = "tag: v1\n";
        for (value, expected) in [
            ("1.10", "tag: \"1.10\"\n"),
            ("true", "tag: \"true\"\n"),
            ("null", "tag: \"null\"\n"),
            ("", "tag: \"\"\n"),
            ("a: b", "tag: \"a: b\"\n"),
            ("x #y", "tag: \"x #y\"\n"),
            ("*x", "tag: \"*x\"\n"),
            ("- x", "tag: \"- x\"\n"),
            ("line\nbreak", "tag: \"line\\nbreak\"\n"),
            ("repo@sha256:abc", "tag: repo@sha256:abc\n"),
            ("a,b[c]", "tag: a,b[c]\n"),
            ("-x", "tag: -x\n"),
        ] {
            assert_eq!(ok(text, set(&["tag"], value)), expected, "{value:?}");
        }
        // In flow context the flow indicators need quotes too.
        assert_eq!(
            ok("m: {tag: v1}\n", set(&["m", "tag"], "a,b")),
            "m: {tag: \"a,b\"}\n"
        );
        assert_eq!(
            ok("m: [v1, v2]\n", set(&["m", "0"], "x]")),
            "m: [\"x]\", v2]\n"
        );
        // Single quotes cannot escape control characters.
        assert_eq!(ok("t: 'v'\n", set(&["t"], "a\tb")), "t: \"a\\tb\"\n");
    }

    #[test]
    fn set_scalar_on_empty_value_and_multiline_scalars() {
        assert_eq!(ok("a:\nb: 2\n", set(&["a"], "x")), "a: x\nb: 2\n");
        assert_eq!(ok("a: # c\nb: 2\n", set(&["a"], "x")), "a: x # c\nb: 2\n");
        assert_eq!(
            ok("a: \"one\n  two\"\nb: 2\n", set(&["a"], "x")),
            "a: \"x\"\nb: 2\n"
        );
        assert_eq!(
            ok("a: one\n  two\nb: 2\n", set(&["a"], "x")),
            "a: x\nb: 2\n"
        );
    }

    #[test]
    fn set_scalar_refuses_block_scalars_aliases_and_merged_values() {
        let text = "lit: |\n  x\nbase: &img repo:v1\nuse: *img\nm: &m\n  image: a\nn:\n  <<: *m\n";
        let docs = parse(text).unwrap();
        let mut edits = Edits::new();
        let err = edits
            .set_scalar(docs[0].lookup(&["lit"]).unwrap(), "y")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 2, column 3: cannot edit a block scalar (`|` or `>`)"
        );
        let err = edits
            .set_scalar(docs[0].lookup(&["use"]).unwrap(), "y")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 4, column 6: cannot edit the alias `*img`; edit the anchor `&img` at line 3, column 7 instead"
        );
        let err = edits
            .set_scalar(docs[0].lookup(&["n", "image"]).unwrap(), "y")
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("reached through the alias or merge key at line 8, column 3"),
            "{err}"
        );
        let err = edits
            .set_key(docs[0].lookup(&["use"]).unwrap(), "k", "v")
            .unwrap_err();
        assert!(
            matches!(
                err,
                YamlError::Refused {
                    line: 4,
                    column: 6,
                    ..
                }
            ),
            "{err:?}"
        );
        let err = edits
            .set_scalar(docs[0].lookup(&["n"]).unwrap(), "v")
            .unwrap_err();
        assert!(matches!(
            err,
            YamlError::WrongKind {
                expected: "scalar",
                found: "mapping",
                ..
            }
        ));
        assert!(edits.is_empty());
        // The anchored value itself may be edited.
        assert_eq!(
            ok(text, set(&["base"], "repo:v2")),
            text.replace("&img repo:v1", "&img repo:v2")
        );
    }

    #[test]
    fn recursive_merge_does_not_loop() {
        let docs = parse("a: &x\n  b: 1\n  <<: *x\n").unwrap();
        let a = docs[0].lookup(&["a"]).unwrap();
        assert_eq!(a.get("b").unwrap().as_str(), Some("1"));
        assert!(a.get("missing").is_none());
    }

    #[test]
    fn helm_values_image_mapping_and_string() {
        let text = "\
# Default values for shop.
defaults: &defaults
  pullPolicy: IfNotPresent
api:
  image:
    repository: old/api   # set by CI
    tag: \"1.0\"
  <<: *defaults
worker:
  image: 'old/worker:1.0'
";
        let out = ok(text, |d, e| {
            let image = d[0].lookup(&["api", "image"]).unwrap();
            e.set_key(image, "repository", "123.dkr.ecr/shop/api")?;
            e.set_key(image, "tag", "in-abc")?;
            e.set_key(image, "digest", "sha256:1")?;
            let worker = d[0].lookup(&["worker", "image"]).unwrap();
            e.set_scalar(worker, "123.dkr.ecr/shop/worker@sha256:2")?;
            Ok(())
        });
        assert_eq!(
            out,
            "\
# Default values for shop.
defaults: &defaults
  pullPolicy: IfNotPresent
api:
  image:
    repository: 123.dkr.ecr/shop/api   # set by CI
    tag: \"in-abc\"
    digest: sha256:1
  <<: *defaults
worker:
  image: '123.dkr.ecr/shop/worker@sha256:2'
"
        );
        // A value that only exists through the merge key is read-only.
        let docs = parse(text).unwrap();
        let merged = docs[0].lookup(&["api", "pullPolicy"]).unwrap();
        assert_eq!(merged.as_str(), Some("IfNotPresent"));
        let err = Edits::new().set_scalar(merged, "Always").unwrap_err();
        assert!(
            matches!(
                err,
                YamlError::Refused {
                    line: 3,
                    column: 15,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn raw_multi_document_manifest() {
        let text = "\
apiVersion: apps/v1
kind: Deployment
spec:
  template:
    spec:
      containers:
        - name: api
          image: \"old/api:1.0\"
        - {name: sidecar, image: envoy:1.29}
---
# a Service has no image
apiVersion: v1
kind: Service
";
        let docs = parse(text).unwrap();
        let mut edits = Edits::new();
        for doc in &docs {
            let Some(containers) = doc.lookup(&["spec", "template", "spec", "containers"]) else {
                continue;
            };
            for container in containers.items() {
                let image = container.get("image").unwrap();
                if image.as_str() == Some("old/api:1.0") {
                    edits.set_scalar(image, "new/api@sha256:abc").unwrap();
                }
            }
        }
        let out = edits.apply(text).unwrap();
        assert_eq!(
            out,
            text.replace("\"old/api:1.0\"", "\"new/api@sha256:abc\"")
        );
    }

    // ----- set_key / remove_key in block mappings

    const KUSTOMIZATION: &str = "\
# Production overlay — édition spéciale
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../base   # the base

images:
  # the API
  - name: api
    newTag: \"1.0\"   # pinned by hand

  # the worker
  - name: worker
    newName: old/worker

# trailing comment
";

    #[test]
    fn kustomize_patch_changes_only_the_values() {
        let out = ok(KUSTOMIZATION, |docs, edits| {
            let images: Vec<_> = docs[0].lookup(&["images"]).unwrap().items().collect();
            edits.set_key(images[0], "newName", "123.dkr.ecr/shop/api")?;
            edits.set_key(images[0], "digest", "sha256:aaa")?;
            edits.remove_key(images[0], "newTag")?;
            edits.set_key(images[1], "newName", "123.dkr.ecr/shop/worker")?;
            edits.set_key(images[1], "digest", "sha256:bbb")?;
            let images = docs[0].lookup(&["images"]).unwrap();
            edits.append_item(
                images,
                &[
                    ("name", "web"),
                    ("newName", "123.dkr.ecr/shop/web"),
                    ("digest", "sha256:ccc"),
                ],
            )?;
            Ok(())
        });
        assert_eq!(
            out,
            "\
# Production overlay — édition spéciale
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../base   # the base

images:
  # the API
  - name: api
    newName: 123.dkr.ecr/shop/api
    digest: sha256:aaa

  # the worker
  - name: worker
    newName: 123.dkr.ecr/shop/worker
    digest: sha256:bbb
  - name: web
    newName: 123.dkr.ecr/shop/web
    digest: sha256:ccc

# trailing comment
"
        );
    }

    #[test]
    fn set_key_inserts_after_last_entry_before_trailing_comments() {
        let text = "a: 1 # one\n\n# about b\nb:\n  c: 2 # two\n  d:\n    - x\n    - y # last\n  # end of b\n\n# end\n";
        let out = ok(text, |docs, edits| {
            edits.set_key(docs[0].lookup(&["b"]).unwrap(), "e", "three")?;
            edits.set_key(docs[0].root(), "f", "4")?;
            Ok(())
        });
        assert_eq!(
            out,
            "a: 1 # one\n\n# about b\nb:\n  c: 2 # two\n  d:\n    - x\n    - y # last\n  e: three\nf: \"4\"\n  # end of b\n\n# end\n"
        );
    }

    #[test]
    fn set_key_existing_key_and_duplicate_insert() {
        let text = "a: 1\n";
        assert_eq!(
            ok(text, |d, e| e.set_key(d[0].root(), "a", "two").map(drop)),
            "a: two\n"
        );
        let docs = parse(text).unwrap();
        let mut edits = Edits::new();
        edits.set_key(docs[0].root(), "b", "one").unwrap();
        let err = edits.set_key(docs[0].root(), "b", "two").unwrap_err();
        assert!(matches!(err, YamlError::KeyExists { .. }), "{err:?}");
        assert_eq!(edits.apply(text).unwrap(), "a: 1\nb: one\n");
    }

    #[test]
    fn set_key_after_block_scalars() {
        let text = "a:\n  s: |\n    text\n\n\nb: 1\n";
        let out = ok(text, |d, e| {
            e.set_key(d[0].lookup(&["a"]).unwrap(), "k", "v").map(drop)
        });
        assert_eq!(out, "a:\n  s: |\n    text\n  k: v\n\n\nb: 1\n");
        // With keep chomping the blank lines are content and stay with the scalar.
        let text = "a:\n  s: |+\n    text\n\nb: 1\n";
        let out = ok(text, |d, e| {
            e.set_key(d[0].lookup(&["a"]).unwrap(), "k", "v").map(drop)
        });
        assert_eq!(out, "a:\n  s: |+\n    text\n\n  k: v\nb: 1\n");
    }

    #[test]
    fn set_key_in_compact_sequence_items_and_nested_sequences() {
        let text = "- name: a\n- - name: b\n    tag: c\n-   name: d\n";
        let out = ok(text, |d, e| {
            let root = d[0].root();
            e.set_key(root.lookup(&["0"]).unwrap(), "x", "p")?;
            e.set_key(root.lookup(&["1", "0"]).unwrap(), "x", "q")?;
            e.set_key(root.lookup(&["2"]).unwrap(), "x", "r")?;
            Ok(())
        });
        assert_eq!(
            out,
            "- name: a\n  x: p\n- - name: b\n    tag: c\n    x: q\n-   name: d\n    x: r\n"
        );
    }

    #[test]
    fn remove_key_removes_whole_lines() {
        let text = "a: 1\nb: 2 # gone too\nc:\n  d: 3\n\n  e: [4,\n     5]\nf: 6\n";
        let out = ok(text, |d, e| {
            e.remove_key(d[0].root(), "b")?;
            e.remove_key(d[0].root(), "c")?;
            e.remove_key(d[0].root(), "missing")?;
            Ok(())
        });
        assert_eq!(out, "a: 1\nf: 6\n");
    }

    #[test]
    fn remove_key_first_key_of_a_sequence_item() {
        let text = "- newTag: v1 # old\n  name: api\n";
        let out = ok(text, |d, e| {
            e.remove_key(d[0].lookup(&["0"]).unwrap(), "newTag")
                .map(drop)
        });
        assert_eq!(out, "- name: api\n");
        let out = ok(text, |d, e| {
            let item = d[0].lookup(&["0"]).unwrap();
            e.remove_key(item, "newTag")?;
            e.remove_key(item, "name")?;
            Ok(())
        });
        assert_eq!(out, "- {}\n");
        let out = ok(text, |d, e| {
            let item = d[0].lookup(&["0"]).unwrap();
            e.remove_key(item, "newTag")?;
            e.remove_key(item, "name")?;
            e.set_key(item, "digest", "sha256:1")?;
            Ok(())
        });
        assert_eq!(out, "- digest: sha256:1\n");
    }

    #[test]
    fn remove_last_key_keeps_a_mapping() {
        assert_eq!(
            ok("a:\n  b: 1\nc: 2\n", |d, e| e
                .remove_key(d[0].lookup(&["a"]).unwrap(), "b")
                .map(drop)),
            "a:\n  {}\nc: 2\n"
        );
        let out = ok("a:\n  b: 1\nc: 2\n", |d, e| {
            let a = d[0].lookup(&["a"]).unwrap();
            e.remove_key(a, "b")?;
            e.set_key(a, "z", "zz")?;
            Ok(())
        });
        assert_eq!(out, "a:\n  z: zz\nc: 2\n");
    }

    #[test]
    fn remove_then_set_same_key_moves_it_to_the_end() {
        let out = ok("a: 1\nb: 2\n", |d, e| {
            e.remove_key(d[0].root(), "a")?;
            e.set_key(d[0].root(), "a", "again")?;
            Ok(())
        });
        assert_eq!(out, "b: 2\na: again\n");
    }

    #[test]
    fn remove_key_refuses_entries_whose_anchor_is_used() {
        let text = "a: &x 1\nb:\n  c: &y 2\nd: *y\ne: *x\n";
        let docs = parse(text).unwrap();
        let err = Edits::new().remove_key(docs[0].root(), "b").unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 2, column 1: cannot edit this entry: it defines an anchor that the alias at line 4, column 4 uses"
        );
        // Removing the aliases, or an alias together with nothing else, is fine.
        let out = ok(text, |d, e| {
            e.remove_key(d[0].root(), "d")?;
            e.remove_key(d[0].root(), "e")?;
            Ok(())
        });
        assert_eq!(out, "a: &x 1\nb:\n  c: &y 2\n");
    }

    #[test]
    fn remove_key_refuses_explicit_keys() {
        let docs = parse("a: 1\n? b\n: 2\n").unwrap();
        let err = Edits::new().remove_key(docs[0].root(), "b").unwrap_err();
        assert!(
            matches!(
                err,
                YamlError::Refused {
                    line: 2,
                    column: 3,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    // ----- flow collections

    #[test]
    fn flow_mapping_set_insert_remove() {
        let text = "images: [{name: x, newTag: y}]\n";
        let out = ok(text, |d, e| {
            let m = d[0].lookup(&["images", "0"]).unwrap();
            e.set_key(m, "digest", "sha256:1")?;
            Ok(())
        });
        assert_eq!(out, "images: [{name: x, newTag: y, digest: sha256:1}]\n");
        let out = ok(text, |d, e| {
            let m = d[0].lookup(&["images", "0"]).unwrap();
            e.remove_key(m, "newTag")?;
            e.set_key(m, "digest", "sha256:1")?;
            Ok(())
        });
        assert_eq!(out, "images: [{name: x, digest: sha256:1}]\n");
        let text = "m: { a: 1, b: 2, c: 3 }\n";
        let rm = |keys: &'static [&'static str]| {
            move |d: &[Document], e: &mut Edits| {
                for k in keys {
                    e.remove_key(d[0].lookup(&["m"]).unwrap(), k)?;
                }
                Ok(())
            }
        };
        assert_eq!(ok(text, rm(&["a"])), "m: { b: 2, c: 3 }\n");
        assert_eq!(ok(text, rm(&["b"])), "m: { a: 1, c: 3 }\n");
        assert_eq!(ok(text, rm(&["c"])), "m: { a: 1, b: 2 }\n");
        assert_eq!(ok(text, rm(&["a", "b"])), "m: { c: 3 }\n");
        assert_eq!(ok(text, rm(&["c", "a"])), "m: { b: 2 }\n");
        assert_eq!(ok(text, rm(&["a", "b", "c"])), "m: {  }\n");
    }

    #[test]
    fn flow_mapping_insert_into_empty_and_multiple() {
        let out = ok("m: {}\n", |d, e| {
            let m = d[0].lookup(&["m"]).unwrap();
            e.set_key(m, "a", "one")?;
            e.set_key(m, "b", "x,y")?;
            Ok(())
        });
        assert_eq!(out, "m: {a: one, b: \"x,y\"}\n");
        let out = ok("m: {a: 1, b: 2}\n", |d, e| {
            let m = d[0].lookup(&["m"]).unwrap();
            e.remove_key(m, "a")?;
            e.remove_key(m, "b")?;
            e.set_key(m, "c", "three")?;
            Ok(())
        });
        assert_eq!(out, "m: {c: three}\n");
        // An empty value in a flow mapping is filled after its colon.
        let out = ok("m: {a: , b: 2}\n", |d, e| {
            let m = d[0].lookup(&["m"]).unwrap();
            e.set_key(m, "a", "one")?;
            Ok(())
        });
        assert_eq!(out, "m: {a: one , b: 2}\n");
    }

    #[test]
    fn append_item_to_flow_and_block_sequences() {
        assert_eq!(
            ok("s: [a, b]\n", |d, e| e
                .append_item(d[0].lookup(&["s"]).unwrap(), &[("name", "x"), ("v", "1.0")])
                .map(drop)),
            "s: [a, b, {name: x, v: \"1.0\"}]\n"
        );
        assert_eq!(
            ok("s: []\n", |d, e| e
                .append_item(d[0].lookup(&["s"]).unwrap(), &[("name", "x")])
                .map(drop)),
            "s: [{name: x}]\n"
        );
        let text = "s:\n-   name: a # c\n    tag: b\n# between\n-   name: c\n\n# after\nt: 1\n";
        assert_eq!(
            ok(text, |d, e| e
                .append_item(
                    d[0].lookup(&["s"]).unwrap(),
                    &[("name", "x"), ("tag", "yy")]
                )
                .map(drop)),
            "s:\n-   name: a # c\n    tag: b\n# between\n-   name: c\n-   name: x\n    tag: yy\n\n# after\nt: 1\n"
        );
        let text = "s:\n  - a\n  - b\n";
        assert_eq!(
            ok(text, |d, e| e
                .append_item(d[0].lookup(&["s"]).unwrap(), &[])
                .map(drop)),
            "s:\n  - a\n  - b\n  - {}\n"
        );
    }

    #[test]
    fn append_twice_and_insert_into_last_item() {
        let text = "images:\n- name: a\n";
        let out = ok(text, |d, e| {
            let images = d[0].lookup(&["images"]).unwrap();
            e.set_key(images.lookup(&["0"]).unwrap(), "digest", "sha256:0")?;
            e.append_item(images, &[("name", "b")])?;
            e.append_item(images, &[("name", "c")])?;
            e.set_key(d[0].root(), "z", "end")?;
            Ok(())
        });
        assert_eq!(
            out,
            "images:\n- name: a\n  digest: sha256:0\n- name: b\n- name: c\nz: end\n"
        );
    }

    #[test]
    fn append_to_indentless_sequence_of_sequences() {
        let text = "a:\n- - x\n  - y\nb: 1\n";
        let out = ok(text, |d, e| {
            e.append_item(d[0].lookup(&["a"]).unwrap(), &[("k", "v")])?;
            e.append_item(d[0].lookup(&["a", "0"]).unwrap(), &[])?;
            Ok(())
        });
        assert_eq!(out, "a:\n- - x\n  - y\n  - {}\n- k: v\nb: 1\n");
    }

    // ----- insert_key_with_sequence

    #[test]
    fn insert_images_key() {
        let text = "resources:\n- base\n# end\n";
        let out = ok(text, |d, e| {
            e.insert_key_with_sequence(
                d[0].root(),
                "images",
                &[&[("name", "api"), ("digest", "sha256:1")]],
            )
            .map(drop)
        });
        assert_eq!(
            out,
            "resources:\n- base\nimages:\n- name: api\n  digest: sha256:1\n# end\n"
        );
        let text = "resources:\n  - base\n";
        let out = ok(text, |d, e| {
            e.insert_key_with_sequence(d[0].root(), "images", &[&[("name", "a")], &[("name", "b")]])
                .map(drop)
        });
        assert_eq!(
            out,
            "resources:\n  - base\nimages:\n  - name: a\n  - name: b\n"
        );
        let text = "kind: Kustomization\nimages:   # none yet\nnamePrefix: x-\n";
        let out = ok(text, |d, e| {
            e.insert_key_with_sequence(d[0].root(), "images", &[&[("name", "a")]])
                .map(drop)
        });
        assert_eq!(
            out,
            "kind: Kustomization\nimages:   # none yet\n- name: a\nnamePrefix: x-\n"
        );
        let out = ok("{kind: K}\n", |d, e| {
            e.insert_key_with_sequence(d[0].root(), "images", &[&[("name", "a"), ("digest", "d")]])
                .map(drop)
        });
        assert_eq!(out, "{kind: K, images: [{name: a, digest: d}]}\n");
        let out = ok("a: 1\nimages:\n", |d, e| {
            e.insert_key_with_sequence(d[0].root(), "images", &[])
                .map(drop)
        });
        assert_eq!(out, "a: 1\nimages: []\n");
        let out = ok("a: 1\n", |d, e| {
            e.insert_key_with_sequence(d[0].root(), "images", &[])
                .map(drop)
        });
        assert_eq!(out, "a: 1\nimages: []\n");
        let docs = parse("images:\n- name: a\n").unwrap();
        let err = Edits::new()
            .insert_key_with_sequence(docs[0].root(), "images", &[])
            .unwrap_err();
        assert!(
            matches!(
                err,
                YamlError::KeyExists {
                    line: 1,
                    column: 1,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    // ----- line endings, BOM, end of file

    #[test]
    fn crlf_and_bom_are_kept() {
        let text = "\u{feff}a: 1\r\nb:\r\n  - name: x\r\n";
        let out = ok(text, |d, e| {
            e.set_key(d[0].root(), "c", "cc")?;
            e.append_item(
                d[0].lookup(&["b"]).unwrap(),
                &[("name", "yy"), ("tag", "z")],
            )?;
            e.set_key(d[0].lookup(&["b", "0"]).unwrap(), "tag", "t")?;
            Ok(())
        });
        assert_eq!(
            out,
            "\u{feff}a: 1\r\nb:\r\n  - name: x\r\n    tag: t\r\n  - name: yy\r\n    tag: z\r\nc: cc\r\n"
        );
        // A BOM does not count as indentation.
        let out = ok("\u{feff}a: 1\n", |d, e| {
            e.set_key(d[0].root(), "b", "bb").map(drop)
        });
        assert_eq!(out, "\u{feff}a: 1\nb: bb\n");
        let out = ok("\u{feff}a: 1\n", |d, e| {
            e.remove_key(d[0].root(), "a").map(drop)
        });
        assert_eq!(out, "\u{feff}{}\n");
    }

    #[test]
    fn file_without_final_line_break() {
        assert_eq!(
            ok("a: 1", |d, e| e.set_key(d[0].root(), "b", "bb").map(drop)),
            "a: 1\nb: bb"
        );
        assert_eq!(
            ok("a: 1\r\nb: 2", |d, e| e
                .set_key(d[0].root(), "c", "cc")
                .map(drop)),
            "a: 1\r\nb: 2\r\nc: cc"
        );
        assert_eq!(
            ok("a: 1\nb: 2", |d, e| e
                .remove_key(d[0].root(), "b")
                .map(drop)),
            "a: 1\n"
        );
        let out = ok("a: 1\nb: 2", |d, e| {
            e.remove_key(d[0].root(), "b")?;
            e.set_key(d[0].root(), "c", "cc")?;
            Ok(())
        });
        assert_eq!(out, "a: 1\nc: cc");
    }

    #[test]
    fn multi_document_edits_touch_only_their_document() {
        let text = "%YAML 1.2\n---\nkind: A\nimage: a:1\n...\n---\n# second\nkind: B\nspec:\n  image: b:1\n...\n";
        let out = ok(text, |d, e| {
            e.set_scalar(d[1].lookup(&["spec", "image"]).unwrap(), "b@sha256:2")?;
            e.set_key(d[0].root(), "digest", "x")?;
            Ok(())
        });
        assert_eq!(
            out,
            "%YAML 1.2\n---\nkind: A\nimage: a:1\ndigest: x\n...\n---\n# second\nkind: B\nspec:\n  image: b@sha256:2\n...\n"
        );
    }

    // ----- safety

    #[test]
    fn overlapping_edits_are_refused_and_not_recorded() {
        let text = "a:\n  b: 1\nc: 2\n";
        let docs = parse(text).unwrap();
        let mut edits = Edits::new();
        edits
            .set_scalar(docs[0].lookup(&["c"]).unwrap(), "three")
            .unwrap();
        let err = edits
            .set_scalar(docs[0].lookup(&["c"]).unwrap(), "4")
            .unwrap_err();
        assert!(
            matches!(err, YamlError::Overlap { line: 3, column: 4 }),
            "{err:?}"
        );
        edits.remove_key(docs[0].root(), "a").unwrap();
        let err = edits
            .set_scalar(docs[0].lookup(&["a", "b"]).unwrap(), "5")
            .unwrap_err();
        assert!(matches!(err, YamlError::Overlap { .. }), "{err:?}");
        let err = edits
            .set_key(docs[0].lookup(&["a"]).unwrap(), "x", "5")
            .unwrap_err();
        assert!(matches!(err, YamlError::Overlap { .. }), "{err:?}");
        assert_eq!(edits.apply(text).unwrap(), "c: three\n");
    }

    #[test]
    fn apply_checks_the_text() {
        let docs = parse("a: 1\n").unwrap();
        let mut edits = Edits::new();
        edits
            .set_scalar(docs[0].lookup(&["a"]).unwrap(), "2")
            .unwrap();
        assert_eq!(
            edits.apply("a: 9\n").unwrap_err(),
            YamlError::SourceMismatch
        );
        let other = parse("b: 1\n").unwrap();
        let err = edits
            .set_scalar(other[0].lookup(&["b"]).unwrap(), "2")
            .unwrap_err();
        assert_eq!(err, YamlError::SourceMismatch);
        assert_eq!(Edits::new().apply("x: [").unwrap(), "x: [");
    }

    #[test]
    fn verification_rejects_broken_output() {
        let text = "a: 1\nb: 2\n";
        let docs = parse(text).unwrap();
        let mut edits = Edits::new();
        edits
            .set_scalar(docs[0].lookup(&["a"]).unwrap(), "x")
            .unwrap();
        // Corrupt the plan behind the API's back: the re-parse must catch it.
        edits.replacements[0].text = "[x".into();
        let err = edits.apply(text).unwrap_err();
        assert!(matches!(err, YamlError::Verification { .. }), "{err:?}");
        edits.replacements[0].text = "y".into();
        let err = edits.apply(text).unwrap_err();
        assert!(
            err.to_string().contains("does not read back as \"x\""),
            "{err}"
        );
    }

    #[test]
    fn render_rules() {
        assert!(
            looks_typed("0x1F")
                && looks_typed("1e3")
                && looks_typed("-.inf")
                && looks_typed("2024-01-02")
        );
        assert!(looks_typed("Yes") && looks_typed("~") && looks_typed("12:30"));
        assert!(!looks_typed("v1.2") && !looks_typed("latest") && !looks_typed("sha256:ab"));
        assert_eq!(double_quoted("a\u{85}b\u{feff}"), "\"a\\u0085b\\uFEFF\"");
        assert_eq!(
            render_scalar("x'y", ScalarStyle::SingleQuoted, false),
            "'x''y'"
        );
        assert_eq!(render_scalar(" x", ScalarStyle::Plain, false), "\" x\"");
        assert_eq!(render_scalar("a:b", ScalarStyle::Plain, true), "a:b");
        assert_eq!(render_scalar(":b", ScalarStyle::Plain, false), ":b");
        assert_eq!(render_scalar("---x", ScalarStyle::Plain, false), "\"---x\"");
    }
}
