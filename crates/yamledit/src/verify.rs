//! The re-parse check. After the splices are applied, the result is parsed
//! again and each splice's checks are tested against it: a written value
//! must read back where it was written, a new entry must share its parent
//! with a member that was already in the collection, and a new sequence
//! (even an empty `[]`) must be the value of its key.

use std::collections::HashMap;

use crate::YamlError;
use crate::edits::Splice;
use crate::text::location;
use crate::tree::{Shape, parse};

/// What the re-parse must find at an offset of a splice's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Check {
    /// A scalar with this value starts here.
    Value(String),
    /// The scalar starting here, `up` parents up, is the same node as the
    /// scalar at original offset `sibling`, `sibling_up` parents up.
    SameParent {
        up: usize,
        sibling: usize,
        sibling_up: usize,
    },
    /// The innermost node starting here, `up` parents up, is a sequence of
    /// `items` items, without tag or anchor, and the value of `key` in its
    /// mapping. Placed at a flow sequence's `[` (`up` 0) or at the content
    /// of a block sequence's first item.
    Sequence {
        key: String,
        items: usize,
        up: usize,
    },
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

pub(crate) fn verify(
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
    // The innermost node starting at each offset (ids grow inwards): a
    // scalar, an alias, an empty flow collection, or the collection whose
    // first child starts later (a flow collection's bracket).
    let mut innermost: HashMap<usize, (usize, usize)> = HashMap::new();
    for doc in &docs {
        for (id, node) in doc.nodes.iter().enumerate() {
            if !node.span.is_empty() {
                innermost.insert(node.span.start, (doc.index, id));
            }
        }
    }
    let ancestor = |(doc, mut id): (usize, usize), up: usize| {
        for _ in 0..up {
            id = docs[doc].nodes[id].parent?;
        }
        Some((doc, id))
    };
    let not_there = |at: usize| {
        verification(
            out,
            at,
            "a written value is not where it was written".into(),
        )
    };
    for &(at, check) in checks {
        if let Check::Sequence { key, items, up } = check {
            let node = innermost.get(&at).ok_or_else(|| not_there(at))?;
            let ok = ancestor(*node, *up).is_some_and(|(doc, id)| {
                let nodes = &docs[doc].nodes;
                let seq = &nodes[id];
                let is_value_of_key = seq.parent.is_some_and(|p| match &nodes[p].shape {
                    Shape::Mapping { entries, .. } => entries
                        .iter()
                        .any(|&(k, v)| v == id && nodes[k].shape_value() == Some(key.as_str())),
                    _ => false,
                });
                matches!(&seq.shape, Shape::Sequence { items: found, .. } if found.len() == *items)
                    && seq.props_start == seq.span.start
                    && is_value_of_key
            });
            if !ok {
                return Err(verification(
                    out,
                    at,
                    format!("the new sequence does not read back as the value of {key:?}"),
                ));
            }
            continue;
        }
        let &(doc, id) = innermost.get(&at).ok_or_else(|| not_there(at))?;
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
                let sibling_leaf = innermost.get(&sibling_at).copied();
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
            Check::Sequence { .. } => unreachable!("checked above"),
        }
    }
    Ok(())
}
