//! The read side: [`parse`] turns a text into [`Document`]s whose every node
//! knows its exact byte span, style, anchor and parent. A document keeps its
//! nodes in one vector, ids in document order, so a subtree is a range of ids
//! and the edit planner can walk from any node up through its parents.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use granit_parser::{Event, Parser, ScanError};

use crate::YamlError;

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
pub(crate) enum Shape {
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
pub(crate) struct NodeData {
    pub(crate) shape: Shape,
    /// Content bytes: for a block collection from its first child to the end of
    /// its last child, for a flow collection including the brackets.
    pub(crate) span: Range<usize>,
    /// Where the node's anchor or tag starts, if it has one before its content.
    pub(crate) props_start: usize,
    pub(crate) line: usize,
    pub(crate) column: usize,
    anchor: Option<String>,
    pub(crate) parent: Option<usize>,
    pub(crate) in_flow: bool,
}

/// One YAML document of a (possibly multi-document) text.
#[derive(Debug, Clone)]
pub struct Document {
    pub(crate) source: Arc<str>,
    pub(crate) index: usize,
    span: Range<usize>,
    pub(crate) nodes: Vec<NodeData>,
    root: usize,
}

/// A node of a [`Document`], cheap to copy.
#[derive(Debug, Clone, Copy)]
pub struct Node<'a> {
    pub(crate) doc: &'a Document,
    pub(crate) id: usize,
    /// Set when the node was reached by following an alias or a merge key:
    /// the location of that alias or `<<` key.
    pub(crate) via: Option<(usize, usize)>,
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

pub(crate) fn parse_shared(source: &Arc<str>) -> Result<Vec<Document>, YamlError> {
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

    pub(crate) fn node(&self, id: usize) -> &NodeData {
        &self.nodes[id]
    }
}

impl<'a> Node<'a> {
    pub(crate) fn data(&self) -> &'a NodeData {
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
    /// makes it read-only for [`Edits`](crate::Edits).
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

    pub(crate) fn direct_entry(&self, key: &str) -> Option<(Node<'a>, Node<'a>)> {
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

    pub(crate) fn kind_name(&self) -> &'static str {
        match self.data().shape {
            Shape::Scalar { .. } => "scalar",
            Shape::Mapping { .. } => "mapping",
            Shape::Sequence { .. } => "sequence",
            Shape::Alias { .. } => "alias",
        }
    }

    pub(crate) fn ancestry(&self) -> Vec<usize> {
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
pub(crate) fn subtree_end(doc: &Document, id: usize) -> usize {
    let last_child = match &doc.node(id).shape {
        Shape::Mapping { entries, .. } => entries.last().map(|&(_, v)| v),
        Shape::Sequence { items, .. } => items.last().copied(),
        _ => None,
    };
    last_child.map_or(id, |child| subtree_end(doc, child))
}

/// An alias outside `ids` whose anchor is inside them.
pub(crate) fn outside_alias_into(doc: &Document, ids: Range<usize>) -> Option<&NodeData> {
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

impl NodeData {
    pub(crate) fn shape_value(&self) -> Option<&str> {
        match &self.shape {
            Shape::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn recursive_merge_does_not_loop() {
        let docs = parse("a: &x\n  b: 1\n  <<: *x\n").unwrap();
        let a = docs[0].lookup(&["a"]).unwrap();
        assert_eq!(a.get("b").unwrap().as_str(), Some("1"));
        assert!(a.get("missing").is_none());
    }
}
