//! Property test for the YAML editor: random documents (block and flow
//! collections, every scalar style, explicit `? key` entries, nulls written
//! as `key:`, `~`, `null` or `!!null`, comments, blank lines, CRLF, BOM,
//! several documents, anchors and aliases) get random edits. Whatever is accepted must
//! apply cleanly, the result must read back as a model of the same edits
//! predicts, and no byte may change outside the regions the edits own.
//!
//! It runs 512 cases; `PROPTEST_CASES=20000 cargo test -p yamledit --test
//! props` is a long soak. A failure is not lost with the run: proptest appends
//! its seed to `proptest-regressions/props.txt` in this crate, and every later
//! run replays the seeds in that file before any new case. Commit that file
//! with the fix, so the failure stays a regression case for good.

use std::ops::Range;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::FileFailurePersistence;
use yamledit::{CollectionStyle, Document, Edits, Node, NodeKind, ScalarStyle, YamlError, parse};

const BOM: char = '\u{feff}';

/// Plain scalars that read as null (`Node::is_null`).
const NULL_WORDS: [&str; 4] = ["~", "null", "Null", "NULL"];

/// Seeds of failures found so far, replayed first on every run.
const REGRESSIONS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/proptest-regressions/props.txt"
);

// ----- the generated model

#[derive(Debug, Clone)]
enum G {
    Plain(String),
    Single(String),
    Double(String),
    /// Header (`|`, `|-`, `>`) and lines.
    Block(&'static str, Vec<String>),
    /// An implicit null (`key:`), only as a block-mapping value.
    Null,
    /// An empty node tagged `!!null`.
    TaggedNull,
    Anchored(String),
    /// A plain scalar with an explicit `!!str` tag.
    Tagged(String),
    Alias,
    Map(Vec<Entry>, bool),
    /// Items, flow, extra indentation of a block sequence under its key (0 or 2).
    Seq(Vec<Item>, bool, usize),
}

#[derive(Debug, Clone, Default)]
struct Deco {
    comment_before: Option<String>,
    blank_before: bool,
    inline: Option<String>,
}

#[derive(Debug, Clone)]
struct Entry {
    key: String,
    value: G,
    deco: Deco,
    /// `None`: `key: value`. `Some(colon)`: an explicit `? key` line, then a
    /// `: value` line; a null value gets the `:` line only if `colon`.
    explicit: Option<bool>,
}

#[derive(Debug, Clone)]
struct Item {
    value: G,
    deco: Deco,
}

impl G {
    fn value(&self) -> Option<String> {
        Some(match self {
            G::Plain(s) | G::Single(s) | G::Double(s) | G::Anchored(s) | G::Tagged(s) => s.clone(),
            G::Null | G::TaggedNull => String::new(),
            G::Block(header, lines) => match *header {
                "|" => lines.join("\n") + "\n",
                "|-" => lines.join("\n"),
                _ => lines.join(" ") + "\n",
            },
            _ => return None,
        })
    }

    fn is_collection(&self) -> bool {
        matches!(self, G::Map(..) | G::Seq(..))
    }
}

/// Makes the model writable as YAML: flow collections hold only flow content,
/// empty collections are flow, keys are unique, nulls sit in block mappings.
fn normalize(g: G, in_flow: bool, in_block_map: bool) -> G {
    match g {
        G::Block(..) | G::Null | G::Anchored(_) | G::Alias if in_flow => {
            G::Double(g.value().unwrap_or_default())
        }
        G::Null if !in_block_map => G::Double(String::new()),
        G::Map(entries, flow) => {
            let flow = flow || in_flow || entries.is_empty();
            let entries = entries
                .into_iter()
                .enumerate()
                .map(|(i, e)| Entry {
                    key: format!("{}{i}", e.key),
                    value: normalize(e.value, flow, !flow),
                    deco: e.deco,
                    explicit: e.explicit.filter(|_| !flow),
                })
                .collect();
            G::Map(entries, flow)
        }
        G::Seq(items, flow, extra) => {
            let flow = flow || in_flow || items.is_empty();
            let items = items
                .into_iter()
                .map(|i| Item {
                    value: normalize(i.value, flow, false),
                    deco: i.deco,
                })
                .collect();
            G::Seq(items, flow, extra)
        }
        other => other,
    }
}

// ----- rendering

fn quote_single(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn quote_double(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out + "\""
}

fn inline_scalar(g: &G) -> String {
    match g {
        G::Plain(s) => s.clone(),
        G::Single(s) => quote_single(s),
        G::Double(s) => quote_double(s),
        G::Anchored(s) => format!("&anc {s}"),
        G::Tagged(s) => format!("!!str {s}"),
        G::Alias => "*anc".into(),
        G::Null => String::new(),
        G::TaggedNull => "!!null".into(),
        G::Block(..) => unreachable!("block scalars are not inline"),
        G::Map(entries, _) => {
            let inner: Vec<String> = entries
                .iter()
                .map(|e| format!("{}: {}", e.key, inline_scalar(&e.value)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
        G::Seq(items, ..) => {
            let inner: Vec<String> = items.iter().map(|i| inline_scalar(&i.value)).collect();
            format!("[{}]", inner.join(", "))
        }
    }
}

fn pad(n: usize) -> String {
    " ".repeat(n)
}

fn deco_before(lines: &mut Vec<String>, deco: &Deco, indent: usize) {
    if deco.blank_before {
        lines.push(String::new());
    }
    if let Some(c) = &deco.comment_before {
        lines.push(format!("{}# {c}", pad(indent)));
    }
}

fn inline_comment(deco: &Deco) -> String {
    deco.inline
        .as_ref()
        .map_or(String::new(), |c| format!(" # {c}"))
}

/// Lines of a block node whose first line is `head` (`key:` or `-`) at `indent`.
fn render_value(lines: &mut Vec<String>, head: String, value: &G, deco: &Deco, indent: usize) {
    match value {
        G::Block(header, content) => {
            lines.push(format!("{head} {header}{}", inline_comment(deco)));
            lines.extend(content.iter().map(|l| format!("{}{l}", pad(indent + 2))));
        }
        G::Map(entries, false) if head.ends_with('-') => {
            let mut inner = Vec::new();
            render_map(&mut inner, entries, indent + 2, true);
            inner[0] = format!("{head} {}", &inner[0][indent + 2..]);
            lines.extend(inner);
        }
        G::Seq(items, false, _) if head.ends_with('-') => {
            let mut inner = Vec::new();
            render_seq(&mut inner, items, indent + 2, true);
            inner[0] = format!("{head} {}", &inner[0][indent + 2..]);
            lines.extend(inner);
        }
        G::Map(entries, false) => {
            lines.push(format!("{head}{}", inline_comment(deco)));
            render_map(lines, entries, indent + 2, false);
        }
        G::Seq(items, false, extra) => {
            lines.push(format!("{head}{}", inline_comment(deco)));
            render_seq(lines, items, indent + extra, false);
        }
        G::Null => lines.push(format!("{head}{}", inline_comment(deco))),
        scalar => lines.push(format!(
            "{head} {}{}",
            inline_scalar(scalar),
            inline_comment(deco)
        )),
    }
}

fn render_map(lines: &mut Vec<String>, entries: &[Entry], indent: usize, compact: bool) {
    for (i, e) in entries.iter().enumerate() {
        if !(compact && i == 0) {
            deco_before(lines, &e.deco, indent);
        }
        match e.explicit {
            None => render_value(
                lines,
                format!("{}{}:", pad(indent), e.key),
                &e.value,
                &e.deco,
                indent,
            ),
            Some(false) if matches!(e.value, G::Null) => lines.push(format!(
                "{}? {}{}",
                pad(indent),
                e.key,
                inline_comment(&e.deco)
            )),
            Some(_) => {
                lines.push(format!("{}? {}", pad(indent), e.key));
                render_value(
                    lines,
                    format!("{}:", pad(indent)),
                    &e.value,
                    &e.deco,
                    indent,
                );
            }
        }
    }
}

fn render_seq(lines: &mut Vec<String>, items: &[Item], indent: usize, compact: bool) {
    for (i, item) in items.iter().enumerate() {
        if !(compact && i == 0) {
            deco_before(lines, &item.deco, indent);
        }
        render_value(
            lines,
            format!("{}-", pad(indent)),
            &item.value,
            &item.deco,
            indent,
        );
    }
}

#[derive(Debug, Clone)]
struct DocGen {
    root: G,
    explicit_start: bool,
    end_marker: bool,
    header_comment: Option<String>,
    trailing_comment: Option<String>,
}

#[derive(Debug, Clone)]
struct FileGen {
    docs: Vec<DocGen>,
    bom: bool,
    crlf: bool,
    directive: bool,
    final_newline: bool,
}

fn render_file(file: &FileGen) -> String {
    let mut lines = Vec::new();
    if file.directive {
        lines.push("%YAML 1.2".to_owned());
    }
    for (i, doc) in file.docs.iter().enumerate() {
        if let Some(c) = &doc.header_comment {
            lines.push(format!("# {c}"));
        }
        if doc.explicit_start || i > 0 || file.directive {
            lines.push("---".into());
        }
        match &doc.root {
            G::Map(entries, false) => render_map(&mut lines, entries, 0, false),
            G::Seq(items, false, _) => render_seq(&mut lines, items, 0, false),
            other => lines.push(inline_scalar(other)),
        }
        if let Some(c) = &doc.trailing_comment {
            lines.push(format!("# {c}"));
        }
        if doc.end_marker {
            lines.push("...".into());
        }
    }
    let eol = if file.crlf { "\r\n" } else { "\n" };
    let mut text = lines.join(eol);
    if file.final_newline {
        text.push_str(eol);
    }
    if file.bom {
        text.insert(0, '\u{feff}');
    }
    text
}

// ----- strategies

fn word() -> impl Strategy<Value = String> {
    "[a-zé][a-z0-9./_é-]{0,6}"
}

fn comment() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 éü🦀:#'\"-]{0,10}"
}

fn deco() -> impl Strategy<Value = Deco> {
    (
        proptest::option::weighted(0.25, comment()),
        proptest::bool::weighted(0.2),
        proptest::option::weighted(0.25, comment()),
    )
        .prop_map(|(comment_before, blank_before, inline)| Deco {
            comment_before,
            blank_before,
            inline,
        })
}

fn scalar() -> impl Strategy<Value = G> {
    prop_oneof![
        4 => word().prop_map(G::Plain),
        1 => word().prop_map(G::Tagged),
        1 => prop::sample::select(NULL_WORDS.to_vec()).prop_map(|s| G::Plain(s.to_owned())),
        1 => Just(G::TaggedNull),
        2 => "[a-z :#'\"\\\\é-]{0,8}".prop_map(G::Single),
        2 => "[a-z :#'\"\\\\é\n\t-]{0,8}".prop_map(G::Double),
        1 => (prop::sample::select(vec!["|", "|-", ">"]), prop::collection::vec("[a-z][a-z ]{0,5}[a-z]", 1..3))
            .prop_map(|(h, lines)| G::Block(h, lines)),
        2 => Just(G::Null),
    ]
}

fn tree() -> impl Strategy<Value = G> {
    scalar().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            (
                prop::collection::vec(
                    (
                        word(),
                        inner.clone(),
                        deco(),
                        proptest::option::weighted(0.3, any::<bool>())
                    ),
                    0..4
                ),
                proptest::bool::weighted(0.25)
            )
                .prop_map(|(entries, flow)| {
                    let entries = entries
                        .into_iter()
                        .map(|(key, value, deco, explicit)| Entry {
                            key,
                            value,
                            deco,
                            explicit,
                        })
                        .collect();
                    G::Map(entries, flow)
                }),
            (
                prop::collection::vec((inner, deco()), 0..4),
                proptest::bool::weighted(0.25),
                prop::sample::select(vec![0, 2])
            )
                .prop_map(|(items, flow, extra)| {
                    G::Seq(
                        items
                            .into_iter()
                            .map(|(value, deco)| Item { value, deco })
                            .collect(),
                        flow,
                        extra,
                    )
                }),
        ]
    })
}

fn doc_gen() -> impl Strategy<Value = DocGen> {
    (
        tree(),
        any::<bool>(),
        proptest::bool::weighted(0.2),
        proptest::option::weighted(0.3, comment()),
        proptest::option::weighted(0.3, comment()),
        proptest::bool::weighted(0.3),
    )
        .prop_map(
            |(root, explicit_start, end_marker, header_comment, trailing_comment, anchors)| {
                let mut root = match root {
                    G::Map(..) | G::Seq(..) => root,
                    // An empty document.
                    G::Null => {
                        return DocGen {
                            root: G::Null,
                            explicit_start: true,
                            end_marker,
                            header_comment,
                            trailing_comment,
                        };
                    }
                    scalar => G::Map(
                        vec![Entry {
                            key: "k".into(),
                            value: scalar,
                            deco: Deco::default(),
                            explicit: None,
                        }],
                        false,
                    ),
                };
                if anchors && let G::Map(entries, false) = &mut root {
                    entries.insert(
                        0,
                        Entry {
                            key: "anc".into(),
                            value: G::Anchored("shared".into()),
                            deco: Deco::default(),
                            explicit: None,
                        },
                    );
                    entries.push(Entry {
                        key: "ali".into(),
                        value: G::Alias,
                        deco: Deco::default(),
                        explicit: None,
                    });
                }
                DocGen {
                    root: normalize(root, false, false),
                    explicit_start,
                    end_marker,
                    header_comment,
                    trailing_comment,
                }
            },
        )
}

fn file_gen() -> impl Strategy<Value = FileGen> {
    (
        prop::collection::vec(doc_gen(), 1..3),
        any::<bool>(),
        any::<bool>(),
        proptest::bool::weighted(0.2),
        proptest::bool::weighted(0.8),
    )
        .prop_map(|(docs, bom, crlf, directive, final_newline)| FileGen {
            docs,
            bom,
            crlf,
            directive,
            final_newline,
        })
}

fn new_value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z0-9@:/._-]{1,12}",
        2 => "[ -~]{0,10}",
        2 => "\\PC{0,6}",
        1 => prop::sample::select(vec![
            "", "1.0", "true", "~", "- x", "a: b", "x #y", "[x]", "{a}", "'q'", "\"q\"", "a\nb", "x\ty", "\u{85}", "\u{2028}",
            "---", "...", "&a", "*a", "!t", "%x", "@x", "`x", "? x", ": x", "-", "é: #",
        ])
        .prop_map(str::to_owned),
    ]
}

#[derive(Debug, Clone)]
enum OpGen {
    SetScalar(Index, Index, String),
    SetKey(Index, Index, Option<Index>, String, String),
    RemoveKey(Index, Index, Option<Index>),
    Append(Index, Index, Vec<(String, String)>),
    /// Document, mapping, existing key (if any; `true`: a null one if there
    /// is one), new key, items.
    InsertSeq(
        Index,
        Index,
        Option<(bool, Index)>,
        String,
        Vec<Vec<(String, String)>>,
    ),
}

fn op_gen() -> impl Strategy<Value = OpGen> {
    let pairs = || {
        prop::collection::vec(("[a-z]{1,4}|\\PC{1,3}", new_value()), 0..3).prop_map(|mut v| {
            let mut seen = std::collections::HashSet::new();
            v.retain(|(k, _)| seen.insert(k.clone()));
            v
        })
    };
    prop_oneof![
        3 => (any::<Index>(), any::<Index>(), new_value()).prop_map(|(d, t, v)| OpGen::SetScalar(d, t, v)),
        3 => (any::<Index>(), any::<Index>(), proptest::option::of(any::<Index>()), "[a-z]{1,5}|\\PC{1,4}", new_value())
            .prop_map(|(d, t, k, nk, v)| OpGen::SetKey(d, t, k, format!("new{nk}"), v)),
        2 => (any::<Index>(), any::<Index>(), proptest::option::weighted(0.9, any::<Index>()))
            .prop_map(|(d, t, k)| OpGen::RemoveKey(d, t, k)),
        2 => (any::<Index>(), any::<Index>(), pairs()).prop_map(|(d, t, e)| OpGen::Append(d, t, e)),
        2 => (any::<Index>(), any::<Index>(), proptest::option::of((any::<bool>(), any::<Index>())), "[a-z]{1,5}", prop::collection::vec(pairs(), 0..3))
            .prop_map(|(d, t, e, k, items)| OpGen::InsertSeq(d, t, e, format!("seq{k}"), items)),
    ]
}

// ----- model paths and edits

type Path = Vec<String>;

fn walk(g: &G, path: &mut Path, out: &mut Vec<(Path, G)>) {
    out.push((path.clone(), g.clone()));
    match g {
        G::Map(entries, _) => {
            for e in entries {
                path.push(e.key.clone());
                walk(&e.value, path, out);
                path.pop();
            }
        }
        G::Seq(items, ..) => {
            for (i, item) in items.iter().enumerate() {
                path.push(i.to_string());
                walk(&item.value, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

fn try_at_mut<'a>(g: &'a mut G, path: &[String]) -> Option<&'a mut G> {
    let Some((first, rest)) = path.split_first() else {
        return Some(g);
    };
    match g {
        G::Map(entries, _) => try_at_mut(
            &mut entries.iter_mut().find(|e| &e.key == first)?.value,
            rest,
        ),
        G::Seq(items, ..) => try_at_mut(
            &mut items.get_mut(first.parse::<usize>().ok()?)?.value,
            rest,
        ),
        _ => None,
    }
}

fn at_mut<'a>(g: &'a mut G, path: &[String]) -> &'a mut G {
    try_at_mut(g, path).unwrap_or_else(|| panic!("model path {path:?} gone after an accepted edit"))
}

/// The entry of the model's mapping that holds the node at `path`, if any.
fn entry_at<'a>(g: &'a G, path: &[String]) -> Option<&'a Entry> {
    let (key, parent) = path.split_last()?;
    let mut g = g;
    for segment in parent {
        g = match g {
            G::Map(entries, _) => &entries.iter().find(|e| &e.key == segment)?.value,
            G::Seq(items, ..) => &items.get(segment.parse::<usize>().ok()?)?.value,
            _ => return None,
        };
    }
    match g {
        G::Map(entries, _) => entries.iter().find(|e| &e.key == key),
        _ => None,
    }
}

/// A null with no `key:` to write after: `? key` without a `:` line, or a
/// tagged empty node. Writing to it is refused.
fn unwritable_null(value: &G, entry: Option<&Entry>) -> bool {
    matches!(value, G::TaggedNull)
        || (matches!(value, G::Null) && entry.is_some_and(|e| e.explicit == Some(false)))
}

/// A null that `insert_key_with_sequence` fills: an empty `key:` (also
/// `? key` + `:`) or a plain `~` / `null`.
fn fillable_null(e: &Entry) -> bool {
    match &e.value {
        G::Null => e.explicit != Some(false),
        G::Plain(s) => NULL_WORDS.contains(&s.as_str()),
        _ => false,
    }
}

fn related(a: &[String], b: &[String]) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

fn map_of(pairs: &[(String, String)]) -> G {
    G::Map(
        pairs
            .iter()
            .map(|(k, v)| Entry {
                key: k.clone(),
                value: G::Double(v.clone()),
                deco: Deco::default(),
                explicit: None,
            })
            .collect(),
        false,
    )
}

fn lookup<'a>(doc: &'a Document, path: &[String]) -> Node<'a> {
    let segments: Vec<&str> = path.iter().map(String::as_str).collect();
    doc.lookup(&segments)
        .unwrap_or_else(|| panic!("path {path:?} not found"))
}

/// Compares a parsed node with the model, following aliases.
fn same(node: Node<'_>, g: &G, anchored: &str) -> Result<(), String> {
    let node = node.resolve();
    match g {
        G::Map(entries, _) => {
            if !matches!(node.kind(), NodeKind::Mapping(_)) {
                return Err(format!(
                    "line {}: {:?}, model a mapping",
                    node.line(),
                    node.kind()
                ));
            }
            let got: Vec<_> = node.entries().collect();
            if got.len() != entries.len() {
                return Err(format!(
                    "mapping at line {} has {} entries, model {}",
                    node.line(),
                    got.len(),
                    entries.len()
                ));
            }
            for ((k, v), e) in got.iter().zip(entries) {
                if k.as_str() != Some(e.key.as_str()) {
                    return Err(format!(
                        "key {:?} at line {}, model {:?}",
                        k.as_str(),
                        k.line(),
                        e.key
                    ));
                }
                same(*v, &e.value, anchored)?;
            }
            Ok(())
        }
        G::Seq(items, ..) => {
            if !matches!(node.kind(), NodeKind::Sequence(_)) {
                return Err(format!(
                    "line {}: {:?}, model a sequence",
                    node.line(),
                    node.kind()
                ));
            }
            let got: Vec<_> = node.items().collect();
            if got.len() != items.len() {
                return Err(format!(
                    "sequence at line {} has {} items, model {}",
                    node.line(),
                    got.len(),
                    items.len()
                ));
            }
            got.iter()
                .zip(items)
                .try_for_each(|(n, i)| same(*n, &i.value, anchored))
        }
        G::Alias => (node.as_str() == Some(anchored))
            .then_some(())
            .ok_or_else(|| "alias value".to_owned()),
        scalar => {
            let want = scalar.value().expect("scalar");
            match node.kind() {
                NodeKind::Scalar { value, .. } if value == want => Ok(()),
                other => Err(format!("line {}: {other:?}, model {want:?}", node.line())),
            }
        }
    }
}

/// The byte region an accepted operation may rewrite (besides pure insertions).
fn owned_region(doc: &Document, text: &str, op: &Applied) -> Range<usize> {
    match op {
        Applied::Value(path) => {
            let node = lookup(doc, path);
            let span = node.span();
            // An empty value is written after its `:`.
            span.start..span.end.max(span.start + 1)
        }
        Applied::Filled(path) => {
            // A `~` / `null` filled with a sequence may take the spaces after
            // its `:` with it.
            let span = lookup(doc, path).span();
            let before = text[..span.start].trim_end_matches([' ', '\t']);
            let start = if before.ends_with(':') {
                before.len()
            } else {
                span.start
            };
            start..span.end.max(span.start + 1)
        }
        Applied::Removed(path, key) => {
            let map = lookup(doc, path);
            let entries: Vec<_> = map.entries().collect();
            let flow = matches!(map.kind(), NodeKind::Mapping(CollectionStyle::Flow));
            let i = entries
                .iter()
                .position(|(k, _)| k.as_str() == Some(key))
                .expect("removed key");
            let start = if i == 0 {
                let s = map.span().start;
                text[..s]
                    .rfind('\n')
                    .map_or(0, |p| p + 1)
                    .min(entries[0].0.span().start)
            } else {
                let key = entries[i].0.span().start;
                let prev = entries[i - 1].1.span().end.min(key);
                if flow {
                    prev
                } else {
                    // Block entries go with their line.
                    prev.min(text[..key].rfind('\n').map_or(0, |p| p + 1))
                }
            };
            let end = match entries.get(i + 1) {
                Some((k, _)) => k.span().start,
                None if flow => map.span().end - 1,
                None => text[map.span().end..]
                    .find('\n')
                    .map_or(text.len(), |p| map.span().end + p + 1),
            };
            start.saturating_sub(2)..end
        }
    }
}

enum Applied {
    Value(Path),
    /// A null value given a sequence by `insert_key_with_sequence`.
    Filled(Path),
    Removed(Path, String),
}

fn check(file: FileGen, ops: Vec<OpGen>) -> Result<(), TestCaseError> {
    let text = render_file(&file);
    let docs = parse(&text)
        .map_err(|e| TestCaseError::fail(format!("generated YAML does not parse: {e}\n{text}")))?;
    prop_assert_eq!(docs.len(), file.docs.len());
    for (doc, gen_doc) in docs.iter().zip(&file.docs) {
        same(doc.root(), &gen_doc.root, "shared")
            .map_err(|e| TestCaseError::fail(format!("parse differs: {e}\n{text}")))?;
    }

    let mut model: Vec<G> = file.docs.iter().map(|d| d.root.clone()).collect();
    let mut anchored: Vec<String> = vec!["shared".into(); docs.len()];
    let mut touched: Vec<(usize, Path)> = Vec::new();
    let mut applied: Vec<(usize, Applied)> = Vec::new();
    let mut edits = Edits::new();

    for op in ops {
        let before = edits.splices().expect("plan");
        let d = match &op {
            OpGen::SetScalar(d, ..)
            | OpGen::SetKey(d, ..)
            | OpGen::RemoveKey(d, ..)
            | OpGen::Append(d, ..)
            | OpGen::InsertSeq(d, ..) => d.index(docs.len()),
        };
        let mut nodes = Vec::new();
        walk(&file.docs[d].root, &mut Vec::new(), &mut nodes);
        let maps: Vec<&(Path, G)> = nodes
            .iter()
            .filter(|(_, g)| matches!(g, G::Map(..)))
            .collect();
        let seqs: Vec<&(Path, G)> = nodes
            .iter()
            .filter(|(_, g)| matches!(g, G::Seq(..)))
            .collect();
        let scalars: Vec<&(Path, G)> = nodes
            .iter()
            .filter(|(p, g)| !p.is_empty() && !g.is_collection())
            .collect();
        // Whether the key an op names is already there is the one thing
        // `KeyExists` may be about besides an earlier edit of the same path.
        let mut exists = false;
        // What the op touches, whether it must be refused, and the model change.
        let (result, path, refuse): (Result<(), YamlError>, Path, bool) = match &op {
            OpGen::SetScalar(_, t, value) if !scalars.is_empty() => {
                let (path, g) = scalars[t.index(scalars.len())].clone();
                let res = edits.set_scalar(lookup(&docs[d], &path), value).map(drop);
                let refuse = matches!(g, G::Block(..) | G::Alias)
                    || unwritable_null(&g, entry_at(&file.docs[d].root, &path));
                if res.is_ok() {
                    *at_mut(&mut model[d], &path) = G::Double(value.clone());
                    if matches!(g, G::Anchored(_)) {
                        anchored[d] = value.clone();
                    }
                    applied.push((d, Applied::Value(path.clone())));
                }
                (res, path, refuse)
            }
            OpGen::SetKey(_, t, existing, new_key, value) if !maps.is_empty() => {
                let (path, g) = maps[t.index(maps.len())].clone();
                let G::Map(entries, _) = &g else {
                    unreachable!()
                };
                let key = match existing {
                    Some(i) if !entries.is_empty() => entries[i.index(entries.len())].key.clone(),
                    _ => new_key.clone(),
                };
                let res = edits
                    .set_key(lookup(&docs[d], &path), &key, value)
                    .map(drop);
                let Some(G::Map(current, _)) = try_at_mut(&mut model[d], &path) else {
                    prop_assert!(res.is_err(), "set_key into a removed mapping was accepted");
                    continue;
                };
                let existing = current.iter().position(|e| e.key == key);
                let refuse = existing.is_some_and(|i| {
                    matches!(current[i].value, G::Block(..) | G::Alias)
                        || unwritable_null(&current[i].value, Some(&current[i]))
                });
                if res.is_ok() {
                    match existing {
                        Some(i) => {
                            prop_assert!(
                                !current[i].value.is_collection(),
                                "set_key replaced a collection"
                            );
                            if matches!(current[i].value, G::Anchored(_)) {
                                anchored[d] = value.clone();
                            }
                            current[i].value = G::Double(value.clone());
                            let mut p = path.clone();
                            p.push(key.clone());
                            applied.push((d, Applied::Value(p)));
                        }
                        None => current.push(Entry {
                            key: key.clone(),
                            value: G::Double(value.clone()),
                            deco: Deco::default(),
                            explicit: None,
                        }),
                    }
                }
                let mut p = path;
                p.push(key);
                (res, p, refuse)
            }
            OpGen::RemoveKey(_, t, k) if !maps.is_empty() => {
                let (path, g) = maps[t.index(maps.len())].clone();
                let G::Map(entries, _) = &g else {
                    unreachable!()
                };
                let key = match k {
                    Some(i) if !entries.is_empty() => entries[i.index(entries.len())].key.clone(),
                    _ => "absent".to_owned(),
                };
                let res = edits.remove_key(lookup(&docs[d], &path), &key).map(drop);
                // The anchor's entry may not go while its alias stays, and
                // an explicit `? key` entry is not removed.
                let refuse = key == "anc0"
                    || key == "anc"
                    || entries.iter().any(|e| e.key == key && e.explicit.is_some());
                let Some(G::Map(current, _)) = try_at_mut(&mut model[d], &path) else {
                    // Only removing a key that is not there anyway is a harmless no-op.
                    let absent = !entries.iter().any(|e| e.key == key);
                    prop_assert!(
                        res.is_err() || absent,
                        "remove_key in a removed mapping was accepted"
                    );
                    continue;
                };
                if res.is_ok()
                    && let Some(i) = current.iter().position(|e| e.key == key)
                {
                    current.remove(i);
                    if entries.iter().any(|e| e.key == key) {
                        applied.push((d, Applied::Removed(path.clone(), key.clone())));
                    }
                }
                let mut p = path;
                p.push(key);
                (res, p, refuse)
            }
            OpGen::Append(_, t, pairs) if !seqs.is_empty() => {
                let (path, _) = seqs[t.index(seqs.len())].clone();
                let borrowed: Vec<(&str, &str)> = pairs
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                let res = edits
                    .append_item(lookup(&docs[d], &path), &borrowed)
                    .map(drop);
                if res.is_ok() {
                    let G::Seq(items, ..) = at_mut(&mut model[d], &path) else {
                        unreachable!()
                    };
                    items.push(Item {
                        value: map_of(pairs),
                        deco: Deco::default(),
                    });
                }
                (res, path, false)
            }
            OpGen::InsertSeq(_, t, existing, new_key, items) if !maps.is_empty() => {
                let (path, g) = maps[t.index(maps.len())].clone();
                let G::Map(entries, _) = &g else {
                    unreachable!()
                };
                let nulls: Vec<&Entry> = entries
                    .iter()
                    .filter(|e| fillable_null(e) || unwritable_null(&e.value, Some(e)))
                    .collect();
                let key = match existing {
                    Some((true, i)) if !nulls.is_empty() => nulls[i.index(nulls.len())].key.clone(),
                    Some((_, i)) if !entries.is_empty() => {
                        entries[i.index(entries.len())].key.clone()
                    }
                    _ => new_key.clone(),
                };
                let borrowed: Vec<Vec<(&str, &str)>> = items
                    .iter()
                    .map(|i| i.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect())
                    .collect();
                let slices: Vec<&[(&str, &str)]> = borrowed.iter().map(Vec::as_slice).collect();
                let res = edits
                    .insert_key_with_sequence(lookup(&docs[d], &path), &key, &slices)
                    .map(drop);
                let Some(G::Map(current, _)) = try_at_mut(&mut model[d], &path) else {
                    prop_assert!(
                        res.is_err(),
                        "insert_key_with_sequence into a removed mapping was accepted"
                    );
                    continue;
                };
                // A key that is there: a fillable null gets the sequence, a
                // null with no `key:` to write after is refused, any other
                // value is `KeyExists`.
                let present = current.iter().position(|e| e.key == key);
                let fill = present.filter(|&i| fillable_null(&current[i]));
                let refuse =
                    present.is_some_and(|i| unwritable_null(&current[i].value, Some(&current[i])));
                exists = present.is_some() && fill.is_none() && !refuse;
                if res.is_ok() {
                    prop_assert!(!exists, "insert_key_with_sequence replaced a value");
                    let seq = G::Seq(
                        items
                            .iter()
                            .map(|i| Item {
                                value: map_of(i),
                                deco: Deco::default(),
                            })
                            .collect(),
                        false,
                        0,
                    );
                    let mut p = path.clone();
                    p.push(key.clone());
                    match fill {
                        Some(i) => {
                            current[i].value = seq;
                            applied.push((d, Applied::Filled(p)));
                        }
                        None => current.push(Entry {
                            key: key.clone(),
                            value: seq,
                            deco: Deco::default(),
                            explicit: None,
                        }),
                    }
                }
                let mut p = path;
                p.push(key);
                (res, p, refuse)
            }
            _ => continue,
        };
        match result {
            Ok(()) => {
                prop_assert!(!refuse, "{op:?} should have been refused");
                touched.push((d, path));
            }
            Err(e) => {
                prop_assert_eq!(
                    edits.splices().expect("plan"),
                    before,
                    "a failed edit changed the plan"
                );
                match e {
                    YamlError::Refused { .. } => {
                        prop_assert!(refuse, "{:?} refused: {}\n{}", op, e, text)
                    }
                    YamlError::KeyExists { .. } if exists => {}
                    YamlError::Overlap { .. } | YamlError::KeyExists { .. } => prop_assert!(
                        touched
                            .iter()
                            .any(|(td, tp)| *td == d && related(tp, &path)),
                        "{:?} conflicted with nothing: {}\n{}",
                        op,
                        e,
                        text
                    ),
                    YamlError::WrongKind { .. } => {}
                    other => {
                        return Err(TestCaseError::fail(format!(
                            "{op:?}: unexpected error {other}\n{text}"
                        )));
                    }
                }
            }
        }
    }

    let out = edits
        .apply(&text)
        .map_err(|e| TestCaseError::fail(format!("apply failed: {e}\n{text:?}")))?;

    // The output is the input with exactly the planned splices, and every
    // splice that rewrites bytes stays inside a region an edit owns.
    let splices = edits.splices().expect("plan");
    let mut rebuilt = String::new();
    let mut last = 0;
    for s in &splices {
        rebuilt.push_str(&text[last..s.range.start]);
        rebuilt.push_str(&s.text);
        last = s.range.end;
    }
    rebuilt.push_str(&text[last..]);
    prop_assert_eq!(&rebuilt, &out);
    let mut owned: Vec<Range<usize>> = applied
        .iter()
        .map(|(d, a)| owned_region(&docs[*d], &text, a))
        .collect();
    owned.sort_by_key(|r| r.start);
    let mut regions: Vec<Range<usize>> = Vec::new();
    for r in owned {
        match regions.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => regions.push(r),
        }
    }
    for s in splices.iter().filter(|s| !s.range.is_empty()) {
        prop_assert!(
            regions
                .iter()
                .any(|r| r.start <= s.range.start && s.range.end <= r.end),
            "splice {:?} ({:?}) rewrites bytes no edit owns\n{:?}",
            s.range,
            &text[s.range.clone()],
            text
        );
    }
    if file.bom {
        prop_assert!(out.starts_with(BOM), "BOM lost");
    }
    if !file.crlf {
        prop_assert!(!out.contains('\r'));
    } else if text.contains("\r\n") {
        prop_assert_eq!(
            out.matches('\n').count(),
            out.matches("\r\n").count(),
            "mixed line breaks"
        );
    }

    // The result reads back as the model says.
    let new_docs = parse(&out)
        .map_err(|e| TestCaseError::fail(format!("output does not parse: {e}\n{out}")))?;
    prop_assert_eq!(new_docs.len(), model.len());
    for (i, (doc, g)) in new_docs.iter().zip(&model).enumerate() {
        same(doc.root(), g, &anchored[i]).map_err(|e| {
            TestCaseError::fail(format!("document {i}: {e}\n--- in\n{text}\n--- out\n{out}"))
        })?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        // Enough to keep `cargo test` quick; proptest lets PROPTEST_CASES override it.
        cases: 512,
        // The default location is derived from `src/lib.rs` and does not fit
        // an integration test, so the file is named here (proptest creates it).
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(REGRESSIONS))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_edits_keep_every_other_byte(file in file_gen(), ops in prop::collection::vec(op_gen(), 1..8)) {
        check(file, ops)?;
    }
}

#[test]
fn parser_reports_quoting_styles() {
    // The model relies on the parser telling the quoting styles apart.
    let docs = parse("a: 'x'\nb: \"y\"\nc: z\n").unwrap();
    assert_eq!(
        docs[0].lookup(&["a"]).unwrap().scalar_style(),
        Some(ScalarStyle::SingleQuoted)
    );
}
