//! The YAML editor: parse, edit, apply, re-parse. Any text either fails to
//! parse or gives documents; any edit either is refused (an `Err`) or is
//! recorded, and what `Edits` recorded must apply and read back: `apply`
//! succeeds, and its result parses into as many documents. Nothing panics.
//!
//! Input: the YAML text up to the first NUL byte, then an edit script (NUL
//! cannot appear in YAML, so a plain YAML file is a valid input, and the
//! seeds are real files). Without a script, one is made from a hash of the
//! text so that every seed is edited too. The script is read three bytes at
//! a time: the operation, the node it targets (among every node of every
//! document, in document order, aliases too), and what to write.

#![no_main]

use libfuzzer_sys::fuzz_target;
use yamledit::{Edits, Node, NodeKind, parse};

/// Values written: the ones `pipeline patch` writes, and every kind that
/// needs quoting, escaping or would read as something else.
const VALUES: &[&str] = &[
    "",
    "v2",
    "1.10",
    "true",
    "~",
    "null",
    "0x1F",
    "2001-12-14",
    "a: b",
    "x #y",
    "#c",
    "- item",
    "[a, b]",
    "{k: v}",
    "&a",
    "*a",
    "!t",
    "'",
    "\"",
    "\\",
    " lead",
    "trail ",
    "line\nbreak",
    "tab\there",
    "crlf\r\n",
    "é ü 漢",
    "\u{feff}bom",
    "---",
    "...",
    "?",
    ":",
    "-",
    "|",
    ">",
    "%",
    "@",
    "`",
    ",",
    "key:",
    "\u{85}\u{2028}\u{7f}\u{1b}\0",
    "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop/api",
    "sha256:4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b",
];

/// Keys set, removed or given a sequence: the ones Kubernetes files and
/// `pipeline patch` use, and awkward ones.
const KEYS: &[&str] = &[
    "image", "tag", "newTag", "digest", "images", "name", "newName", "a", "<<", "", "a b", "k: v",
    "#", "? x", "-", "1", "true", "~", "é", "'q'", "x\ny",
];

/// The nodes of a document in document order, not descending into aliases
/// (a merge chain can loop); the alias itself and its target are listed.
fn collect<'a>(node: Node<'a>, out: &mut Vec<Node<'a>>, depth: usize) {
    if out.len() >= 512 || depth > 64 {
        return;
    }
    out.push(node);
    match node.kind() {
        NodeKind::Alias { .. } => out.push(node.resolve()),
        NodeKind::Mapping(_) => {
            for (k, v) in node.entries() {
                collect(k, out, depth + 1);
                collect(v, out, depth + 1);
            }
        }
        NodeKind::Sequence(_) => {
            for item in node.items() {
                collect(item, out, depth + 1);
            }
        }
        NodeKind::Scalar { .. } => {}
    }
}

/// A string to write: one of `list`, or past its end one of the
/// document's own scalars (so the fuzzer can reach any string through the
/// text).
fn pick<'a>(list: &[&'a str], nodes: &[Node<'a>], b: u8) -> &'a str {
    let b = usize::from(b);
    if let Some(s) = list.get(b) {
        return s;
    }
    let scalars: Vec<&str> = nodes.iter().filter_map(|n| n.as_str()).collect();
    if scalars.is_empty() {
        list[b % list.len()]
    } else {
        scalars[b % scalars.len()]
    }
}

/// Entries of a new item: 0, 1 or 2 key/value pairs.
fn entries<'a>(nodes: &[Node<'a>], b: u8) -> Vec<(&'a str, &'a str)> {
    (0..usize::from(b % 3))
        .map(|i| {
            let k = b.wrapping_add(i as u8).wrapping_mul(7);
            (pick(KEYS, nodes, k % 40), pick(VALUES, nodes, k))
        })
        .collect()
}

fn script_of(text: &str) -> Vec<u8> {
    // FNV-1a, then a xorshift stream: stable across runs and platforms.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    (0..12)
        .map(|_| {
            h ^= h << 13;
            h ^= h >> 7;
            h ^= h << 17;
            (h >> 24) as u8
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let (yaml, script) = match data.iter().position(|&b| b == 0) {
        Some(nul) => (&data[..nul], data[nul + 1..].to_vec()),
        None => (data, Vec::new()),
    };
    let Ok(text) = std::str::from_utf8(yaml) else {
        return;
    };
    let Ok(docs) = parse(text) else {
        return;
    };
    let script = if script.is_empty() {
        script_of(text)
    } else {
        script
    };

    let mut nodes = Vec::new();
    for doc in &docs {
        collect(doc.root(), &mut nodes, 0);
    }
    if nodes.is_empty() {
        return;
    }

    let mut edits = Edits::new();
    for op in script.chunks(3).take(8) {
        let &[what, at, arg] = op else { break };
        let node = nodes[usize::from(at) % nodes.len()];
        // Refusals are expected; only a panic or an accepted edit that
        // does not apply is a bug.
        let _ = match what % 6 {
            0 => edits.set_scalar(node, pick(VALUES, &nodes, arg)),
            1 => edits.set_key(
                node,
                pick(KEYS, &nodes, arg.rotate_left(4)),
                pick(VALUES, &nodes, arg),
            ),
            2 => edits.remove_key(node, pick(KEYS, &nodes, arg)),
            3 => edits.append_item(node, &entries(&nodes, arg)),
            4 => {
                let items: Vec<Vec<(&str, &str)>> = (0..usize::from(arg % 3))
                    .map(|i| entries(&nodes, arg.wrapping_add(i as u8 * 3)))
                    .collect();
                let items: Vec<&[(&str, &str)]> = items.iter().map(Vec::as_slice).collect();
                edits.insert_key_with_sequence(node, pick(KEYS, &nodes, arg.rotate_left(4)), &items)
            }
            // Through `get`, which follows `<<` merge keys.
            _ => match node.get(pick(KEYS, &nodes, arg.rotate_left(4))) {
                Some(value) => edits.set_scalar(value, pick(VALUES, &nodes, arg)),
                None => continue,
            },
        };
    }

    let _ = edits.splices();
    let out = match edits.apply(text) {
        Ok(out) => out,
        Err(e) => panic!("recorded edits did not apply: {e}"),
    };
    match parse(&out) {
        Ok(again) => assert_eq!(again.len(), docs.len(), "document count changed:\n{out}"),
        Err(e) => panic!("the applied result does not re-parse: {e}\n{out}"),
    }
});
