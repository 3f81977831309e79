//! Recording edits: [`Edits`] checks each requested change against the parsed
//! tree and records it whole or not at all. Scalar writes become splices right
//! away; removals and insertions are collected per collection (see
//! `group.rs`), because neighbours decide their exact byte ranges, and become
//! splices only when the plan is asked for.

use std::ops::Range;
use std::sync::Arc;

use crate::group::{
    Group, Line, assemble, entry_column, has_own_colon, inside_key, sequence_indent_style,
};
use crate::scalar::render_scalar;
use crate::text::{line_break, location, lone_cr, next_line_start, stray_bom};
use crate::tree::{Document, Node, NodeKind, Shape, outside_alias_into, parse_shared, subtree_end};
use crate::verify::{Check, verify};
use crate::{CollectionStyle, ScalarStyle, YamlError};

/// One byte-level change: replace `range` of the original text with `text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Splice {
    /// The bytes of the original text that are replaced (empty: an insertion).
    pub range: Range<usize>,
    /// What is written in their place.
    pub text: String,
    pub(crate) checks: Vec<(usize, Check)>,
    /// Tie-break among splices at the same position: phase (0 scalar writes,
    /// 1 placeholders, 2 removals, 3 insertions), then rank.
    pub(crate) order: (u8, usize),
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
    /// Nodes given a value, as (document, node id): an empty value's new
    /// text goes in at a point, so two writes to it need not overlap.
    written: Vec<(usize, usize)>,
    sequence: usize,
}

pub(crate) fn refused(node: &Node<'_>, reason: impl Into<String>) -> YamlError {
    YamlError::Refused {
        line: node.line(),
        column: node.column(),
        reason: reason.into(),
    }
}

pub(crate) fn wrong_kind(node: &Node<'_>, expected: &'static str) -> YamlError {
    YamlError::WrongKind {
        line: node.line(),
        column: node.column(),
        expected,
        found: node.kind_name(),
    }
}

/// The key whose value `node` is, if its parent is a mapping.
fn entry_key<'a>(node: &Node<'a>) -> Option<Node<'a>> {
    let parent = node.data().parent?;
    let Shape::Mapping { entries, .. } = &node.doc.node(parent).shape else {
        return None;
    };
    entries
        .iter()
        .find(|&&(_, v)| v == node.id)
        .map(|&(k, _)| Node { id: k, ..*node })
}

/// Refuses a node that carries a tag or an anchor before its content.
fn untagged(node: &Node<'_>, what: &str) -> Result<(), YamlError> {
    let data = node.data();
    if data.props_start == data.span.start {
        return Ok(());
    }
    let (line, column) = location(&node.doc.source, data.props_start);
    Err(YamlError::Refused {
        line,
        column,
        reason: format!("{what} with a tag or an anchor (`!!null`, `&name`)"),
    })
}

/// The `:` after which an empty value's text goes. Only an empty value
/// written right after `key:` (or `? key` + `:`) has one: an explicit
/// `? key` with no `:` line has nowhere to write (its empty span sits at the
/// next token), and `key: !!null` or `key: &a` would keep the tag or anchor.
/// An empty key (`: x`) sits at its own entry's `:` too, but is no value.
fn empty_value_colon(node: &Node<'_>) -> Result<usize, YamlError> {
    let data = node.data();
    untagged(node, "an empty value")?;
    let Some(key) = entry_key(node) else {
        return Err(refused(
            node,
            "an empty value that has no `key:` to write after",
        ));
    };
    if has_own_colon(node.doc, key.id, node.id) {
        return Ok(data.span.start);
    }
    Err(refused(
        &key,
        "the value of a key written without `:` (`? key`, or `{key}` in flow); there is nowhere to write it",
    ))
}

/// Refuses a key that cannot be written as `key: value`: YAML allows an
/// implicit key at most 1024 characters (spec 1.2.2, section 7.4.2).
fn short_key(node: &Node<'_>, key: &str) -> Result<(), YamlError> {
    if render_scalar(key, ScalarStyle::Plain, true).chars().count() > 1024 {
        return Err(refused(
            node,
            "with a new key longer than 1024 characters, YAML's limit for `key: value`",
        ));
    }
    Ok(())
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
            short_key(&mapping, key)?;
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
            for (key, _) in entries {
                short_key(&sequence, key)?;
            }
            let group = edits.group(sequence)?;
            let up = if entries.is_empty() { 1 } else { 2 };
            // The new item's first key, or its `{}`, must share the
            // sequence with a member that was there.
            let lines = if style == CollectionStyle::Flow {
                let (text, checks) = flow_mapping_text(entries);
                let mut line = Line::new(0, text, checks);
                line.sibling = Some((up - 1, up));
                vec![line]
            } else {
                let mut lines = item_lines(group.indent, group.gap, entries);
                lines[0].sibling = Some((1 + group.gap, up));
                lines
            };
            group.inserts.push(lines);
            edits.claim(sequence.doc, sequence.ancestry(), None)
        })
    }

    /// Adds `key` holding a sequence of mappings (one per element of `items`)
    /// at the end of a mapping.
    ///
    /// A key that is already there with a null value gets the sequence as
    /// its value if the null is written as nothing right after `key:` (also
    /// `? key` + `:`), or as a plain `~`, `null`, `Null` or `NULL` (replaced).
    /// Other nulls are [`YamlError::Refused`]: an explicit `? key` with no `:`
    /// (nowhere to write), a tagged or anchored null (`key: !!null`,
    /// `key: &a`), an alias. A key with any other value is
    /// [`YamlError::KeyExists`].
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
            for (key, _) in items.iter().copied().flatten() {
                short_key(&mapping, key)?;
            }
            if let Some(value) = edits.live_value(mapping, key)? {
                return edits.record_sequence_for_null(value, key, items, in_flow);
            }
            short_key(&mapping, key)?;
            let key_text = render_scalar(key, ScalarStyle::Plain, in_flow);
            let mut first_checks = vec![(0, Check::Value(key.to_owned()))];
            if flow || items.is_empty() {
                let mut text = format!("{key_text}: ");
                let (seq, checks) = flow_sequence_text(key, items);
                first_checks.extend(checks.into_iter().map(|(o, c)| (o + text.len(), c)));
                text.push_str(&seq);
                return edits.record_insert(mapping, key, vec![Line::new(0, text, first_checks)]);
            }
            let offset = sequence_indent_style(mapping.doc);
            let mut lines = vec![Line::new(0, format!("{key_text}:"), first_checks)];
            lines.extend(block_sequence_lines(offset, key, items));
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
                let odd = [
                    (
                        lone_cr(&doc.source),
                        "a lone CR line break (`\\r` without `\\n`)",
                    ),
                    (stray_bom(&doc.source), "a byte order mark after its start"),
                ];
                if let Some((Some(at), what)) = odd.into_iter().find(|(at, _)| at.is_some()) {
                    let (line, column) = location(&doc.source, at);
                    return Err(YamlError::Refused {
                        line,
                        column,
                        reason: format!("a text with {what}"),
                    });
                }
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
        let is_key = data.parent.is_some_and(|p| {
            matches!(&node.doc.node(p).shape, Shape::Mapping { entries, .. }
                if entries.iter().any(|&(k, _)| k == node.id))
        });
        if is_key {
            short_key(&node, value)?;
        }
        let rendered = render_scalar(value, *style, data.in_flow);
        let (range, text, offset) = if data.span.is_empty() {
            // An implicit null: `key:` becomes `key: value`.
            let at = empty_value_colon(&node)? + 1;
            let text = format!(
                " {}",
                render_scalar(value, ScalarStyle::Plain, data.in_flow)
            );
            (at..at, text, 1)
        } else {
            (data.span.clone(), rendered, 0)
        };
        self.mark_written(&node)?;
        let order = (0, self.next_order());
        self.replacements.push(Splice {
            range,
            text,
            checks: vec![(offset, Check::Value(value.to_owned()))],
            order,
        });
        self.claim(node.doc, node.ancestry(), None)
    }

    /// Notes that `node` gets a value; a second write to it is an overlap.
    fn mark_written(&mut self, node: &Node<'_>) -> Result<(), YamlError> {
        let id = (node.doc.index, node.id);
        if self.written.contains(&id) {
            return Err(YamlError::Overlap {
                line: node.line(),
                column: node.column(),
            });
        }
        self.written.push(id);
        Ok(())
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

    /// `insert_key_with_sequence` for a key that is already there: a null
    /// value gets the sequence, anything else is `KeyExists`.
    fn record_sequence_for_null(
        &mut self,
        value: Node<'_>,
        key: &str,
        items: &[&[(&str, &str)]],
        in_flow: bool,
    ) -> Result<(), YamlError> {
        let doc = value.doc;
        let src = &doc.source;
        let k = entry_key(&value).expect("a live value has its key");
        if !value.is_null() {
            return Err(YamlError::KeyExists {
                line: k.line(),
                column: k.column(),
                key: key.into(),
            });
        }
        // An alias of a null; the null is shared.
        writable(&value)?;
        if inside_key(doc, value.id) {
            // Block items would start at the column of the key's `?`.
            return Err(refused(&k, "a key inside a mapping key (`? a:`)"));
        }
        let data = value.data();
        // An empty value: the `:` to write after. A `~` / `null` is replaced.
        let colon = if data.span.is_empty() {
            Some(empty_value_colon(&value)?)
        } else {
            untagged(&value, "a null")?;
            None
        };
        self.mark_written(&value)?;
        // The sequence is checked as the value of `key`, so the key is not
        // renamed in the same batch (nor filled after a rename).
        self.mark_written(&k)?;
        // Block items go on the lines after `key:`, which needs the key's
        // `:` and the null on one line; otherwise the sequence is written in
        // flow style where the null is.
        let block_colon = if in_flow || items.is_empty() {
            None
        } else if colon.is_some() {
            colon
        } else {
            let between = &src[k.span().end..data.span.start];
            (between.trim_matches([' ', '\t']) == ":")
                .then(|| k.span().end + between.find(':').expect("a `:`"))
        };
        let Some(colon) = block_colon else {
            let (seq, checks) = flow_sequence_text(key, items);
            let splice = match colon {
                Some(colon) => Splice {
                    range: colon + 1..colon + 1,
                    text: format!(" {seq}"),
                    checks: checks.into_iter().map(|(o, c)| (o + 1, c)).collect(),
                    order: (0, self.next_order()),
                },
                None => Splice {
                    range: data.span.clone(),
                    text: seq,
                    checks,
                    order: (0, self.next_order()),
                },
            };
            self.replacements.push(splice);
            return self.claim(doc, value.ancestry(), None);
        };
        if !data.span.is_empty() {
            // `key: ~ # c` becomes `key: # c`.
            let order = (0, self.next_order());
            self.replacements.push(Splice {
                range: colon + 1..data.span.end,
                text: String::new(),
                checks: Vec::new(),
                order,
            });
        }
        let indent = entry_column(doc, k.id) + sequence_indent_style(doc);
        let lines = block_sequence_lines(indent, key, items);
        let eol = line_break(src);
        let (at, prefix) = match next_line_start(src, data.span.end.max(colon + 1)) {
            Some(at) => (at, false),
            None => (src.len(), true),
        };
        let (text, checks) = assemble(&lines, None, eol, prefix, !prefix);
        let order = (0, self.next_order());
        self.replacements.push(Splice {
            range: at..at,
            text,
            checks,
            order,
        });
        self.claim(doc, value.ancestry(), None)
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

/// The check that a new sequence of `items` items reads back as `key`'s value.
fn sequence_check(key: &str, items: usize, up: usize) -> Check {
    Check::Sequence {
        key: key.to_owned(),
        items,
        up,
    }
}

/// `[{…}, {…}]` (or `[]`) with readback checks relative to its start.
fn flow_sequence_text(key: &str, items: &[&[(&str, &str)]]) -> (String, Vec<(usize, Check)>) {
    let mut text = String::from("[");
    let mut checks = vec![(0, sequence_check(key, items.len(), 0))];
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            text.push_str(", ");
        }
        let (item_text, item_checks) = flow_mapping_text(item);
        checks.extend(item_checks.into_iter().map(|(o, c)| (o + text.len(), c)));
        text.push_str(&item_text);
    }
    text.push(']');
    (text, checks)
}

/// The lines of a block sequence (dashes at `dash`) that is `key`'s value;
/// the first item's line also checks the sequence as a whole.
fn block_sequence_lines(dash: usize, key: &str, items: &[&[(&str, &str)]]) -> Vec<Line> {
    let mut lines: Vec<Line> = items
        .iter()
        .flat_map(|item| item_lines(dash, 1, item))
        .collect();
    if let (Some(first), Some(first_item)) = (lines.first_mut(), items.first()) {
        // From the first item's first key (or its `{}`) up to the sequence.
        let up = if first_item.is_empty() { 1 } else { 2 };
        first.checks.push((2, sequence_check(key, items.len(), up)));
    }
    lines
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

#[cfg(test)]
mod tests;
