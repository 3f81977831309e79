//! Where removals and insertions in one collection go. A [`Group`] gathers
//! the pending changes of one mapping or sequence and, once the whole set is
//! known, turns them into splices: whole lines in block style (at the
//! collection's own indentation and dash spacing), `, key: value` pieces in
//! flow style. Neighbours decide the ranges, which is why this waits for the
//! complete set instead of splicing per call.

use std::collections::BTreeSet;
use std::ops::Range;

use crate::edits::{Splice, refused, wrong_kind};
use crate::text::{char_column, is_value_indicator, line_start, next_line_start};
use crate::tree::{Document, Node, Shape};
use crate::verify::Check;
use crate::{ScalarStyle, YamlError};

/// One line of new text, `indent` spaces in (on top of the mapping's own
/// indentation for a new key of a block mapping), with the checks the
/// re-parse must pass at offsets of `text`.
#[derive(Debug, Clone)]
pub(crate) struct Line {
    indent: usize,
    text: String,
    pub(crate) checks: Vec<(usize, Check)>,
    /// Offset of a new key or item in `text` and how many parents lead from
    /// its first scalar to the collection; checked against a surviving member.
    pub(crate) sibling: Option<(usize, usize)>,
}

impl Line {
    pub(crate) fn new(indent: usize, text: String, checks: Vec<(usize, Check)>) -> Line {
        Line {
            indent,
            text,
            checks,
            sibling: None,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub(crate) start: usize,
    /// Where the entry starts: `start`, or the `?` of an explicit key.
    entry_start: usize,
    end: usize,
    pub(crate) line_start: usize,
    pub(crate) line_mode: bool,
    leaf: Option<(usize, usize)>,
}

/// Pending removals and insertions of one collection, turned into splices
/// only when the whole set is known (neighbours decide separators and ranges).
#[derive(Debug, Clone)]
pub(crate) struct Group {
    pub(crate) key: (usize, usize),
    pub(crate) flow: bool,
    mapping: bool,
    open_end: usize,
    pub(crate) members: Vec<Member>,
    pub(crate) indent: usize,
    /// Spaces after a block sequence's dashes.
    pub(crate) gap: usize,
    depth: usize,
    pub(crate) removed: BTreeSet<usize>,
    pub(crate) inserts: Vec<Vec<Line>>,
    pub(crate) new_keys: Vec<String>,
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
            if node.span.is_empty()
                && is_value_indicator(&doc.source, node.span.start, node.in_flow) =>
        {
            node.span.start + 1
        }
        Shape::Mapping {
            flow: false,
            entries,
        } => entries
            .last()
            .map_or(node.span.end, |&(k, v)| entry_end(doc, k, v)),
        Shape::Sequence { flow: false, items } => {
            items.last().map_or(node.span.end, |&i| content_end(doc, i))
        }
        _ => node.span.end,
    }
}

/// End of a mapping entry. A null value written as nothing at all (`? key`
/// with no `:` line) has its empty span at the next token, which belongs to
/// whatever follows, so such an entry ends with its key.
fn entry_end(doc: &Document, k: usize, v: usize) -> usize {
    let key_end = content_end(doc, k);
    let value = doc.node(v);
    // A block sequence whose only item is `-` at the end of the text, or
    // an empty block scalar, has an empty span too, but is written.
    let unwritten = matches!(
        value.shape,
        Shape::Scalar {
            style: ScalarStyle::Plain,
            ..
        }
    ) && value.span.is_empty()
        && value.props_start == value.span.start
        && !has_own_colon(doc, k, v);
    if unwritten {
        key_end
    } else {
        key_end.max(content_end(doc, v))
    }
}

/// Whether the empty value `v` of key `k` starts at its own `:`. An
/// unwritten value (`? key` with no `:` line) sits at the next token, which
/// may be the `:` of an outer entry; a block entry's own `:` is on the line
/// where its key ends (`key:`) or in the column of its `?`.
pub(crate) fn has_own_colon(doc: &Document, k: usize, v: usize) -> bool {
    let src = &doc.source;
    let value = doc.node(v);
    let at = value.span.start;
    // An empty key sits at the next token as well (`? ?` + `: x`: at the
    // outer `:`), so the `:` there cannot be told to be its own.
    let key = doc.node(k);
    let empty_key = key.span.is_empty() && key.props_start == key.span.start;
    if empty_key || !is_value_indicator(src, at, value.in_flow) {
        return false;
    }
    if value.in_flow || line_start(src, at) == line_start(src, content_end(doc, k)) {
        return true;
    }
    explicit_indicator(src, doc.node(k).props_start)
        .is_some_and(|q| char_column(src, q) == char_column(src, at))
}

/// The first scalar, alias or empty flow collection (`{}`, `[]`) inside a
/// node and how many parent steps lead from it back to the node; used to
/// check the structure after an edit.
fn first_leaf(doc: &Document, id: usize) -> Option<(usize, usize)> {
    let node = doc.node(id);
    let child = match &node.shape {
        // An empty block scalar's span is not stable: `? |-` + ` ` spans from
        // the `|`, but sits at the next token once a line follows it.
        Shape::Scalar {
            value,
            style: ScalarStyle::Literal | ScalarStyle::Folded,
        } if value.trim().is_empty() => return None,
        Shape::Scalar { .. } | Shape::Alias { .. } => None,
        Shape::Mapping { entries, .. } => entries.first().map(|&(k, _)| k),
        Shape::Sequence { items, .. } => items.first().copied(),
    };
    match child {
        Some(child) => first_leaf(doc, child).map(|(offset, up)| (offset, up + 1)),
        None => (!node.span.is_empty()).then_some((node.span.start, 0)),
    }
}

/// The `?` of an explicit key whose content starts at `start` on the same
/// line (`? key`, `- ? key`).
fn explicit_indicator(src: &str, start: usize) -> Option<usize> {
    let line = line_start(src, start);
    let before = src[line..start].trim_end_matches([' ', '\t']);
    before.ends_with('?').then(|| line + before.len() - 1)
}

/// The `?` of an explicit key whose content starts at `start` on a later
/// line (`?` alone or with a comment, blank and comment lines between).
fn explicit_indicator_above(src: &str, start: usize) -> Option<usize> {
    let mut line = line_start(src, start);
    if !src[line..start].trim_matches([' ', '\t']).is_empty() {
        return None;
    }
    // Line one starts after a BOM.
    let first_line = if src.starts_with('\u{feff}') { 3 } else { 0 };
    while line > first_line {
        let prev = line_start(src, line - 1);
        let text = &src[prev..line];
        // Up to a comment: a `#` at the start or after a space or tab.
        let body = text
            .char_indices()
            .find(|&(i, c)| c == '#' && (i == 0 || text[..i].ends_with([' ', '\t'])))
            .map_or(text, |(i, _)| &text[..i])
            .trim_end();
        if body.trim_start().is_empty() {
            line = prev;
            continue;
        }
        let indicator = body.ends_with('?')
            && (body.len() == 1 || body[..body.len() - 1].ends_with([' ', '\t', '-']));
        return indicator.then(|| prev + body.len() - 1);
    }
    None
}

/// Column where a mapping entry starts: its key's, or for an explicit key
/// its `?` indicator's (an indentless sequence value has its dashes there).
pub(crate) fn entry_column(doc: &Document, key: usize) -> usize {
    let start = doc.node(key).props_start;
    let at = explicit_indicator(&doc.source, start)
        .or_else(|| explicit_indicator_above(&doc.source, start))
        .unwrap_or(start);
    char_column(&doc.source, at)
}

/// Whether node `id` is a mapping key or lies inside one.
pub(crate) fn inside_key(doc: &Document, mut id: usize) -> bool {
    while let Some(parent) = doc.node(id).parent {
        if let Shape::Mapping { entries, .. } = &doc.node(parent).shape
            && entries.iter().any(|&(k, _)| k == id)
        {
            return true;
        }
        id = parent;
    }
    false
}

/// Column of a block sequence's dashes and the spaces after them. The parser
/// starts an indentless sequence (`key:\n- item`) at its first item, which
/// for `key:\n- - x` is the inner sequence's dash, so the dash is found from
/// an item that starts on its dash's line (all dashes share one column).
/// An empty item (`-` alone) says nothing about the spaces: its empty span
/// sits right after the dash, or wherever the parser put it.
fn block_sequence_layout(doc: &Document, id: usize) -> Option<(usize, usize)> {
    let src = &doc.source;
    let node = doc.node(id);
    let Shape::Sequence { items, .. } = &node.shape else {
        return None;
    };
    for &item in items {
        let item = doc.node(item);
        if item.span.is_empty() && item.props_start == item.span.start {
            continue;
        }
        let start = item.props_start;
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
        // Indentless: the dashes are at the entry's column.
        Shape::Mapping {
            flow: false,
            entries,
        } => entries
            .iter()
            .find(|&&(_, v)| v == id)
            .map(|&(k, _)| (entry_column(doc, k), 1)),
        _ => None,
    }
}

/// How far this document indents a block sequence under its key (kustomize
/// writes `images:\n- name: x`, others indent by two); 0 when there is none.
pub(crate) fn sequence_indent_style(doc: &Document) -> usize {
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
                    return dash_col.saturating_sub(entry_column(doc, k));
                }
            }
        }
    }
    0
}

/// Joins lines with `eol`, indenting each; `prefix` puts a line break first
/// (insertion at the end of a file without a final line break), `trailing`
/// ends the last line with one.
pub(crate) fn assemble(
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
    pub(crate) fn new(node: Node<'_>) -> Result<Group, YamlError> {
        let doc = node.doc;
        let src = &doc.source;
        let data = node.data();
        let (flow, mapping, members): (bool, bool, Vec<Member>) = match &data.shape {
            Shape::Mapping { flow, entries } => {
                let members = entries
                    .iter()
                    .map(|&(k, v)| {
                        let start = doc.node(k).props_start;
                        let end = entry_end(doc, k, v);
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
        let empty_key = |&(k, _): &(usize, usize)| {
            let key = doc.node(k);
            key.span.is_empty() && key.props_start == key.span.start
        };
        if !flow
            && matches!(&data.shape, Shape::Mapping { entries, .. } if entries.iter().any(empty_key))
        {
            // An empty key's span sits at the next token, not where its
            // entry is written (`?` alone, `: x`).
            return Err(refused(&node, "a block mapping with an empty key"));
        }
        let awkward_key = |&(k, _): &(usize, usize)| {
            let key = doc.node(k);
            // A block scalar key's span starts at its content, below `? |`;
            // a block collection key may start below its `?` as well, and
            // an indentless one starts at its first item, past its `- `.
            let block = matches!(
                key.shape,
                Shape::Scalar {
                    style: ScalarStyle::Literal | ScalarStyle::Folded,
                    ..
                } | Shape::Mapping { flow: false, .. }
                    | Shape::Sequence { flow: false, .. }
            );
            block || explicit_indicator_above(src, key.props_start).is_some()
        };
        if !flow
            && matches!(&data.shape, Shape::Mapping { entries, .. } if entries.iter().any(awkward_key))
        {
            // The entry's lines start above or before where its key's span
            // says, and the lines are planned from the key.
            return Err(refused(
                &node,
                "a block mapping whose key is a block node or is written below its `?`",
            ));
        }
        if flow && mapping && !src[data.span.start..].starts_with('{') {
            // `[a: 1]`: the pair has no braces, so `, b: 2` would be a new
            // item of the sequence, and removing `a` would remove the item.
            return Err(refused(
                &node,
                "a single-pair mapping in a flow sequence (`[a: 1]`)",
            ));
        }
        if !flow && inside_key(doc, node.id) {
            // `? a: 1` starts the key's lines at the parent's `?`, so the
            // indentation read off them is the parent's.
            return Err(refused(
                &node,
                "a block collection inside a mapping key (`? a: 1`)",
            ));
        }
        let indent = if flow {
            0
        } else if mapping {
            // Mapping indentation: the first key's column (past any `- ` of
            // a compact sequence item, or `: ` of an explicit entry's compact
            // value), but at its own `? ` explicit-key indicator.
            char_column(src, members[0].entry_start)
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

    pub(crate) fn plan(&self, src: &str, eol: &str, out: &mut Vec<Splice>) {
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
                    .map(|j| self.members[j].entry_start);
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
                self.members[0].entry_start..self.members[j + 1].entry_start
            } else {
                self.members[0].entry_start..self.members[j].end
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
    let entry_start = explicit_indicator(src, start).unwrap_or(start);
    Member {
        start,
        entry_start,
        end,
        line_start,
        line_mode,
        leaf,
    }
}
