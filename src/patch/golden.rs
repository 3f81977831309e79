//! Golden corpus for the patch stage (`tests/golden/`): real-world-shaped
//! kustomizations, Helm values files and raw manifests, each with a reviewed
//! expected output.
//!
//! For every case:
//! 1. the patched text equals the expected file byte for byte;
//! 2. an independent line diff of input and output shows only lines that
//!    carry a pinned value (URI, digest, tag), a removed `newTag`, or (for
//!    kustomize) an appended `images:` entry of a pinned service — so an
//!    expected file cannot quietly bless an unrelated change;
//! 3. patching the output again changes nothing;
//! 4. the meaning is checked without our YAML code: kustomize overlays are
//!    rendered with `kubectl kustomize` before and after, Helm values and raw
//!    manifests are read with `serde-saphyr` and compared with the input plus
//!    exactly the values the SPEC says to set.
//!
//! To create or refresh an expected file run with `GOLDEN_BLESS=1`, then read
//! its diff against the input before committing it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::config::Pin;
use crate::patch::{self, Pinned};
use serde_json::Value;

const SERVICES: [(&str, &str); 5] = [
    (
        "orders",
        "sha256:0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9",
    ),
    (
        "gateway",
        "sha256:1f2e3d4c5b6a79880716253443526170f1e2d3c4b5a6978807162534435261a0",
    ),
    (
        "payments",
        "sha256:2b4d6f8103579bdf2468ace013579bdf2468ace013579bdf2468ace01357b2c4",
    ),
    (
        "frontend",
        "sha256:3c5e7092b4d6f81a3c5e7092b4d6f81a3c5e7092b4d6f81a3c5e7092b4d6f8c3",
    ),
    (
        "adservice",
        "sha256:4d6f8a0c2e4f6a8c0e2d4f6a8c0e2d4f6a8c0e2d4f6a8c0e2d4f6a8c0e2d4fd4",
    ),
];
const REGISTRY: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
const TAG: &str = "1a2b3c4";

const D: Pin = Pin::Digest;
const TD: Pin = Pin::TagAndDigest;
const ALL: Option<&[&str]> = None;

/// Kustomize overlays: folder under `golden/kustomize`, pin mode, the
/// services pinned (all when `None`).
const KUSTOMIZE: &[(&str, Pin, Option<&[&str]>)] = &[
    ("plain-list", D, ALL),
    ("newtag-removed", D, ALL),
    ("flow-mapping-entries", D, ALL),
    ("flow-sequence", D, ALL),
    ("no-images-key", D, ALL),
    ("images-empty", D, ALL),
    ("comments-everywhere", D, ALL),
    ("blank-lines", D, ALL),
    ("crlf", D, ALL),
    ("bom", D, ALL),
    ("non-ascii-comments", D, ALL),
    ("foreign-registry", D, ALL),
    ("unrelated-entries", D, ALL),
    ("quoted-values", D, ALL),
    ("prod-overlay", D, ALL),
    ("tag-digest", TD, ALL),
    ("tag-digest-append", TD, ALL),
    ("tag-digest-flow", TD, ALL),
    ("subset-pins", D, Some(&["orders", "gateway"])),
    ("already-pinned", D, ALL),
    ("no-trailing-newline", D, ALL),
    ("images-in-middle", D, ALL),
    ("indentless-sequence", D, ALL),
    ("component-and-patch", D, ALL),
    ("nested-overlay", D, ALL),
    ("remote-base", D, ALL),
    ("registry-component", D, ALL),
    ("renaming-base", D, ALL),
];

/// Cases `kubectl kustomize` cannot render here: a remote base would be
/// fetched, and there is no network. Their other checks still run.
const NOT_RENDERED: &[&str] = &["remote-base"];

/// Helm values: file stem under `golden/helm`, `image_path`, the `services:`
/// of the `manifests.helm` entry (which are also the services pinned), pin.
const HELM: &[(&str, &str, &[&str], Pin)] = &[
    (
        "nested",
        "{service}.image",
        &["orders", "gateway", "payments"],
        D,
    ),
    (
        "string-image",
        "{service}.image",
        &["orders", "gateway", "frontend"],
        D,
    ),
    ("flow-mapping", "{service}.image", &["orders", "gateway"], D),
    ("comments", "{service}.image", &["orders", "frontend"], D),
    ("crlf", "{service}.image", &["orders", "payments"], D),
    (
        "deep-path",
        "services.{service}.image",
        &["orders", "adservice", "frontend"],
        D,
    ),
    ("anchors", "{service}.image", &["orders", "gateway"], D),
    (
        "tag-digest-string",
        "{service}.image",
        &["orders", "gateway"],
        TD,
    ),
    (
        "subchart",
        "{service}.deployment.image",
        &["orders", "payments"],
        D,
    ),
];

/// Raw manifests: file stem under `golden/raw`, pin mode (all services pinned).
const RAW: &[(&str, Pin)] = &[
    ("deployment", D),
    ("statefulset", D),
    ("daemonset", D),
    ("replicaset", D),
    ("job", D),
    ("cronjob", D),
    ("pod-ephemeral", D),
    ("multi-document", D),
    ("list", D),
    ("no-service-images", D),
    ("anchors", D),
    ("block-scalars", D),
    ("crlf", D),
    ("tag-digest", TD),
    ("already-pinned", D),
];

fn golden() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn pins(only: Option<&[&str]>) -> Vec<Pinned> {
    SERVICES
        .iter()
        .filter(|(s, _)| only.is_none_or(|o| o.contains(s)))
        .map(|(service, digest)| Pinned {
            service: service.to_string(),
            repository: format!("shop/{service}"),
            uri: format!("{REGISTRY}/shop/{service}"),
            digest: digest.to_string(),
            tag: TAG.into(),
            content_tag: format!("in-{service}"),
        })
        .collect()
}

/// The Helm patch of `text` for an entry with `image_path` and `services`,
/// with no chart beside it.
fn helm(
    text: &str,
    image_path: &str,
    services: Option<&[String]>,
    pins: &[Pinned],
    pin: Pin,
    rel: &str,
) -> Result<String, patch::PatchError> {
    let at = |value: &str| crate::config::At {
        value: value.to_string(),
        loc: Default::default(),
    };
    let target = crate::config::HelmTarget {
        values: at(rel),
        image_path: at(image_path),
        services: services.map(|s| s.iter().map(|v| at(v)).collect()),
    };
    let all: Vec<&str> = SERVICES.iter().map(|(s, _)| *s).collect();
    patch::helm::patch(text, &target, pins, pin, rel, None, &all).map(|(text, _)| text)
}

fn reference(p: &Pinned, pin: Pin) -> String {
    match pin {
        Pin::Digest => format!("{}@{}", p.uri, p.digest),
        Pin::TagAndDigest => format!("{}:{}@{}", p.uri, p.tag, p.digest),
    }
}

/// Ownership per SPEC.md, written again here rather than calling
/// `Pinned::owns`: the image name (tag and digest stripped) is the service,
/// its repository or URI, or ends in `/<last component of the repository>`.
fn owner<'a>(pins: &'a [Pinned], image: &str) -> Option<&'a Pinned> {
    let no_digest = image.split('@').next().unwrap();
    let last_slash = no_digest.rfind('/').map_or(0, |i| i + 1);
    let name = match no_digest[last_slash..].find(':') {
        Some(i) => &no_digest[..last_slash + i],
        None => no_digest,
    };
    pins.iter().find(|p| {
        let last = p.repository.rsplit('/').next().unwrap();
        name == p.service
            || name == p.repository
            || name == p.uri
            || name.ends_with(&format!("/{last}"))
    })
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Compares with the expected file, or writes it with `GOLDEN_BLESS=1`.
fn check_expected(path: &Path, actual: &str, failures: &mut Vec<String>) {
    if std::env::var_os("GOLDEN_BLESS").is_some() {
        std::fs::write(path, actual).unwrap();
        return;
    }
    match std::fs::read_to_string(path) {
        Ok(expected) if expected == actual => {}
        Ok(expected) => failures.push(format!(
            "{}: output differs from the expected file\n{}",
            path.display(),
            show_diff(&expected, actual)
        )),
        Err(e) => failures.push(format!(
            "{}: {e} (create it with GOLDEN_BLESS=1 and review it)",
            path.display()
        )),
    }
}

// ---------------------------------------------------------------------------
// Line diff (LCS), independent of the crate's own diff.

enum Op<'a> {
    Keep,
    Remove(&'a str),
    Add(&'a str),
}

fn line_diff<'a>(before: &'a str, after: &'a str) -> Vec<Op<'a>> {
    let a: Vec<&str> = before.split_inclusive('\n').collect();
    let b: Vec<&str> = after.split_inclusive('\n').collect();
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut ops) = (0, 0, Vec::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            ops.push(Op::Keep);
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            ops.push(Op::Add(b[j]));
            j += 1;
        } else {
            ops.push(Op::Remove(a[i]));
            i += 1;
        }
    }
    ops
}

fn show_diff(before: &str, after: &str) -> String {
    let mut out = String::new();
    for op in line_diff(before, after) {
        match op {
            Op::Keep => {}
            Op::Remove(l) => writeln!(out, "-{}", l.trim_end_matches('\n')).unwrap(),
            Op::Add(l) => writeln!(out, "+{}", l.trim_end_matches('\n')).unwrap(),
        }
    }
    out
}

/// The part of a line that says what it is: indentation and key (`    newTag`,
/// `  - name`), or everything before a flow collection (`  - `).
fn line_key(line: &str) -> &str {
    let end = [
        line.find(": "),
        line.find(":\r"),
        line.find(":\n"),
        line.find('{'),
        line.find('['),
    ]
    .into_iter()
    .flatten()
    .min()
    .unwrap_or(line.len());
    &line[..end]
}

/// The tokens of a line: runs between whitespace, `,{}[]"'` and a `:` that
/// ends a key; as (start, end, text).
fn tokens(line: &str) -> Vec<(usize, usize, &str)> {
    let b = line.as_bytes();
    let delimiter = |i: usize| {
        b" \t\r\n,{}[]\"'".contains(&b[i])
            || (b[i] == b':' && b.get(i + 1).is_none_or(|c| c.is_ascii_whitespace()))
    };
    let mut out = Vec::new();
    let mut start = None;
    for i in 0..=b.len() {
        match (i == b.len() || delimiter(i), start) {
            (true, Some(s)) => {
                out.push((s, i, &line[s..i]));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    out
}

const VALUE_KEYS: [&str; 7] = [
    "newName",
    "newTag",
    "digest",
    "repository",
    "tag",
    "image",
    "registry",
];

/// Whether line `r` rewritten as `a` changes only pinned values: outside the
/// common prefix and suffix, `a` holds only pinned values, their keys, tokens
/// it re-writes from `r` and (kustomize) new entries for pinned services'
/// images; `r` loses only values of image keys, `newTag`, and no comment.
fn rewrite_ok(r: &str, a: &str, pins: &[Pinned], kustomize: bool) -> Result<(), String> {
    let prefix = r.bytes().zip(a.bytes()).take_while(|(x, y)| x == y).count();
    let suffix = r[prefix..]
        .bytes()
        .rev()
        .zip(a[prefix..].bytes().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let in_change = |line: &str, (s, e, _): (usize, usize, &str)| {
        let (lo, hi) = (prefix, line.len() - suffix);
        s < hi.max(lo + 1) && e > lo
    };
    let old: Vec<(usize, &str)> = tokens(r)
        .into_iter()
        .enumerate()
        .filter(|(_, t)| in_change(r, *t))
        .map(|(i, t)| (i, t.2))
        .collect();
    let new: Vec<&str> = tokens(a)
        .into_iter()
        .filter(|t| in_change(a, *t))
        .map(|t| t.2)
        .collect();
    let r_tokens = tokens(r);
    let pinned = |t: &str| {
        pins.iter().any(|p| {
            t == p.uri
                || t == p.digest
                || t == p.tag
                // The Bitnami convention splits the URI; a chart that
                // never reads the digest gets the content tag.
                || t == p.host()
                || t == p.repository
                || t == p.content_tag
                || t == format!("{}@{}", p.uri, p.digest)
                || t == format!("{}:{}@{}", p.uri, p.tag, p.digest)
        })
    };
    let old_words: Vec<&str> = old.iter().map(|o| o.1).collect();
    for t in &new {
        let ok = pinned(t)
            || VALUE_KEYS[..5].contains(t)
            || old_words.contains(t)
            || (kustomize && (*t == "name" || owner(pins, t).is_some()));
        if !ok {
            return Err(format!("`{t}` is not a pinned value"));
        }
    }
    for &(i, t) in &old {
        let ok = new.contains(&t)
            || (kustomize && t == "newTag")
            || (i > 0 && VALUE_KEYS.contains(&r_tokens[i - 1].2));
        if !ok {
            return Err(format!("`{t}` is lost"));
        }
    }
    // A value keeps its quoting; plain may become double-quoted (a value
    // that would otherwise read as a number).
    fn quoting(line: &str) -> Vec<(&str, Option<char>)> {
        let t = tokens(line);
        (1..t.len())
            .filter(|&i| VALUE_KEYS.contains(&t[i - 1].2))
            .map(|i| (t[i - 1].2, line[..t[i].0].chars().last()))
            .collect()
    }
    let after_quoting = quoting(a);
    for (key, q) in quoting(r) {
        if let Some(&(_, q2)) = after_quoting.iter().find(|(k, _)| *k == key)
            && q != q2
            && !(q == Some(' ') && q2 == Some('"'))
        {
            return Err(format!("the quoting of `{key}` changes"));
        }
    }
    let (lo, hi) = (prefix, r.len() - suffix);
    if lo < hi && r[lo..hi].contains('#') {
        return Err("a comment is changed".into());
    }
    Ok(())
}

/// Checks the changed lines, hunk by hunk. Every added line carries a pinned
/// value (URI, digest, tag), or is an added `images:` key or `- name:` of a
/// pinned service's image (kustomize). Every removed line is a `newTag` line
/// (kustomize), or is rewritten by an added line with the same key, where the
/// rewritten part holds nothing but pinned values and the keys and punctuation
/// around them, and the replaced part holds no comment.
fn check_line_diff(
    label: &str,
    before: &str,
    after: &str,
    pins: &[Pinned],
    kustomize: bool,
    failures: &mut Vec<String>,
) {
    let carries_pin = |line: &str| {
        pins.iter().any(|p| {
            line.contains(&p.uri)
                || line.contains(&p.digest)
                || line.contains(&p.tag)
                || line.contains(p.host())
                || line.contains(&format!(" {}", p.repository))
                || line.contains(&p.content_tag)
        })
    };
    let ops = line_diff(before, after);
    let mut i = 0;
    while i < ops.len() {
        if matches!(ops[i], Op::Keep) {
            i += 1;
            continue;
        }
        let mut removed = Vec::new();
        let mut added = Vec::new();
        while let Some(op) = ops.get(i) {
            match op {
                Op::Keep => break,
                Op::Remove(l) => removed.push(*l),
                Op::Add(l) => added.push(*l),
            }
            i += 1;
        }
        let mut paired = vec![false; added.len()];
        for r in removed {
            if kustomize && r.trim_start_matches([' ', '-']).starts_with("newTag:") {
                continue;
            }
            let partner =
                (0..added.len()).find(|&j| !paired[j] && line_key(added[j]) == line_key(r));
            let Some(j) = partner else {
                failures.push(format!("{label}: removed line {r:?} is not rewritten"));
                continue;
            };
            paired[j] = true;
            let a = added[j];
            if !carries_pin(a) {
                failures.push(format!(
                    "{label}: line {r:?} became {a:?}, which has no pinned value"
                ));
            } else if let Err(why) = rewrite_ok(r, a, pins, kustomize) {
                failures.push(format!("{label}: line {r:?} became {a:?}: {why}"));
            }
        }
        for (j, a) in added.iter().enumerate() {
            let t = a.trim();
            let ok = paired[j]
                || carries_pin(a)
                || (kustomize && t == "images:")
                || (kustomize
                    && t.strip_prefix("- name: ")
                        .is_some_and(|n| owner(pins, n).is_some()));
            if !ok {
                failures.push(format!("{label}: unexpected added line {a:?}"));
            }
        }
    }
    // New lines use the file's own line break.
    if before.contains("\r\n") {
        let bare = after.matches('\n').count() - after.matches("\r\n").count();
        if bare > 0 {
            failures.push(format!(
                "{label}: CRLF file got {bare} bare LF line break(s)"
            ));
        }
    }
    if before.starts_with('\u{feff}') != after.starts_with('\u{feff}') {
        failures.push(format!("{label}: the BOM was added or lost"));
    }
    if before.ends_with('\n') != after.ends_with('\n') {
        failures.push(format!("{label}: the final line break was added or lost"));
    }
}

fn report(kind: &str, cases: usize, failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "{} of the {cases} {kind} golden checks failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

// ---------------------------------------------------------------------------
// Independent reading with serde-saphyr.

fn documents(label: &str, text: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(text)
        .unwrap_or_else(|e| panic!("{label}: serde-saphyr cannot read it: {e}"))
}

fn pod_spec(object: &mut Value) -> Option<&mut Value> {
    let path = super::raw::pod_spec_path(object.get("kind")?.as_str()?)?;
    path.iter().try_fold(object, |v, k| v.get_mut(*k))
}

/// Calls `f` on every container `image` value of a workload (or of each item
/// of a `…List`).
fn for_each_image(object: &mut Value, f: &mut dyn FnMut(&mut Value)) {
    if object
        .get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| k.ends_with("List"))
    {
        if let Some(Value::Array(items)) = object.get_mut("items") {
            for item in items {
                for_each_image(item, f);
            }
        }
        return;
    }
    let Some(spec) = pod_spec(object) else {
        return;
    };
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        if let Some(Value::Array(containers)) = spec.get_mut(list) {
            for c in containers {
                if let Some(image) = c.get_mut("image") {
                    f(image);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Kustomize.

fn kubectl_kustomize(dir: &Path) -> String {
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `kubectl kustomize` ({e}): kubectl must be on PATH for the golden kustomize tests"
            )
        });
    assert!(
        out.status.success(),
        "`kubectl kustomize {}` failed:\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `kind/name/list/container` → image, for every container kubectl renders.
fn rendered_images(label: &str, yaml: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for mut doc in documents(label, yaml) {
        let id = format!(
            "{}/{}",
            doc["kind"].as_str().unwrap_or("?"),
            doc["metadata"]["name"].as_str().unwrap_or("?")
        );
        let Some(spec) = pod_spec(&mut doc) else {
            continue;
        };
        for list in ["initContainers", "containers", "ephemeralContainers"] {
            for c in spec[list].as_array().into_iter().flatten() {
                let key = format!("{id}/{list}/{}", c["name"].as_str().unwrap_or("?"));
                out.insert(key, c["image"].as_str().unwrap_or("").to_string());
            }
        }
    }
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn check_render(
    name: &str,
    case: &Path,
    patched: &str,
    pins: &[Pinned],
    deployed: &[&str],
    pin: Pin,
    failures: &mut Vec<String>,
) {
    let tmp = std::env::temp_dir().join(format!("pipeline-golden-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    copy_dir(&golden().join("kustomize/base"), &tmp.join("base"));
    copy_dir(case, &tmp.join(name));
    std::fs::write(tmp.join(name).join("kustomization.yaml"), patched).unwrap();
    let before = rendered_images(name, &kubectl_kustomize(case));
    let after = rendered_images(name, &kubectl_kustomize(&tmp.join(name)));
    std::fs::remove_dir_all(&tmp).unwrap();

    let label = format!("kustomize/{name} (kubectl kustomize)");
    if before.keys().ne(after.keys()) {
        failures.push(format!("{label}: the rendered containers differ"));
        return;
    }
    for (container, old) in &before {
        let new = &after[container];
        let wanted = owner(pins, old).map_or(old.clone(), |p| reference(p, pin));
        if *new != wanted {
            failures.push(format!(
                "{label}: {container}: rendered {new}, want {wanted} (was {old})"
            ));
        }
    }
    // Every service the report calls pinned renders pinned somewhere; the
    // others are not deployed by this overlay at all.
    for p in pins {
        let want = reference(p, pin);
        let renders = after.values().any(|i| *i == want);
        match (deployed.contains(&p.service.as_str()), renders) {
            (true, false) => failures.push(format!("{label}: no container renders {want}")),
            (false, _)
                if after
                    .values()
                    .any(|i| owner(pins, i).is_some_and(|o| o.service == p.service)) =>
            {
                failures.push(format!(
                    "{label}: {} is reported as not deployed, but a container renders its image",
                    p.service
                ))
            }
            _ => {}
        }
    }
}

#[test]
fn kustomize_golden() {
    let mut failures = Vec::new();
    for &(name, pin, only) in KUSTOMIZE {
        let dir = golden().join("kustomize").join(name);
        let label = format!("kustomize/{name}");
        let pins = pins(only);
        let input = read(&dir.join("kustomization.yaml"));
        let used = patch::kustomize::inputs(&dir, &dir).unwrap();
        let (out, file_report) = match patch::kustomize::patch(&input, &pins, pin, &used) {
            Ok(out) => out,
            Err(e) => {
                failures.push(format!("{label}: patch failed: {e}"));
                continue;
            }
        };
        check_expected(&dir.join("expected.yaml"), &out, &mut failures);
        check_line_diff(&label, &input, &out, &pins, true, &mut failures);
        match patch::kustomize::patch(&out, &pins, pin, &used).map(|(t, _)| t) {
            Ok(again) if again == out => {}
            Ok(again) => failures.push(format!(
                "{label}: a second patch changes the output\n{}",
                show_diff(&out, &again)
            )),
            Err(e) => failures.push(format!("{label}: second patch failed: {e}")),
        }
        let deployed: Vec<&str> = file_report.pinned.keys().map(String::as_str).collect();
        if !NOT_RENDERED.contains(&name) {
            check_render(name, &dir, &out, &pins, &deployed, pin, &mut failures);
        }
    }
    report("kustomize", KUSTOMIZE.len(), failures);
}

// ---------------------------------------------------------------------------
// Helm.

/// The input with, at `image_path` of each service, `repository`, `tag` and
/// `digest` set, or a string replaced by the whole reference.
fn helm_meaning(mut doc: Value, image_path: &str, pins: &[Pinned], pin: Pin) -> Value {
    for p in pins {
        let path = image_path.replace("{service}", &p.service);
        let node = path
            .split('.')
            .try_fold(&mut doc, |v, k| v.get_mut(k))
            .unwrap_or_else(|| panic!("no {path} in the input"));
        match node {
            Value::Object(m) => {
                m.insert("repository".into(), p.uri.clone().into());
                m.insert("tag".into(), p.tag.clone().into());
                m.insert("digest".into(), p.digest.clone().into());
            }
            Value::String(_) => *node = reference(p, pin).into(),
            other => panic!("{path} is {other}"),
        }
    }
    doc
}

#[test]
fn helm_golden() {
    let mut failures = Vec::new();
    for &(name, image_path, services, pin) in HELM {
        let dir = golden().join("helm");
        let label = format!("helm/{name}");
        let rel = format!("tests/golden/helm/{name}.yaml");
        let pins = pins(Some(services));
        let services: Vec<String> = services.iter().map(|s| s.to_string()).collect();
        let input = read(&dir.join(format!("{name}.yaml")));
        let out = match helm(&input, image_path, Some(&services), &pins, pin, &rel) {
            Ok(out) => out,
            Err(e) => {
                failures.push(format!("{label}: patch failed: {e}"));
                continue;
            }
        };
        check_expected(
            &dir.join(format!("{name}.expected.yaml")),
            &out,
            &mut failures,
        );
        check_line_diff(&label, &input, &out, &pins, false, &mut failures);
        match helm(&out, image_path, Some(&services), &pins, pin, &rel) {
            Ok(again) if again == out => {}
            Ok(again) => failures.push(format!(
                "{label}: a second patch changes the output\n{}",
                show_diff(&out, &again)
            )),
            Err(e) => failures.push(format!("{label}: second patch failed: {e}")),
        }
        let before = documents(&label, &input);
        let after = documents(&label, &out);
        let want = helm_meaning(before[0].clone(), image_path, &pins, pin);
        if after.len() != before.len() || after[0] != want {
            failures.push(format!(
                "{label}: serde-saphyr reads\n{}\nwant\n{}",
                serde_json::to_string_pretty(&after).unwrap(),
                serde_json::to_string_pretty(&want).unwrap()
            ));
        }
    }
    report("helm", HELM.len(), failures);
}

#[test]
fn helm_missing_path_is_an_error_naming_file_and_path() {
    // `nested.yaml` has no `frontend.image`.
    let err = helm(
        &read(&golden().join("helm/nested.yaml")),
        "{service}.image",
        Some(&["orders".to_string(), "frontend".to_string()]),
        &pins(Some(&["orders", "frontend"])),
        Pin::Digest,
        "charts/shop/values.yaml",
    )
    .expect_err("frontend.image is missing")
    .to_string();
    assert!(
        err.contains("charts/shop/values.yaml") && err.contains("frontend.image"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------
// Raw.

#[test]
fn raw_golden() {
    let mut failures = Vec::new();
    let pins = pins(None);
    for &(name, pin) in RAW {
        let dir = golden().join("raw");
        let label = format!("raw/{name}");
        let input = read(&dir.join(format!("{name}.yaml")));
        let out = match patch::raw::patch(&input, &pins, pin).map(|(t, _)| t) {
            Ok(out) => out,
            Err(e) => {
                failures.push(format!("{label}: patch failed: {e}"));
                continue;
            }
        };
        check_expected(
            &dir.join(format!("{name}.expected.yaml")),
            &out,
            &mut failures,
        );
        check_line_diff(&label, &input, &out, &pins, false, &mut failures);
        match patch::raw::patch(&out, &pins, pin).map(|(t, _)| t) {
            Ok(again) if again == out => {}
            Ok(again) => failures.push(format!(
                "{label}: a second patch changes the output\n{}",
                show_diff(&out, &again)
            )),
            Err(e) => failures.push(format!("{label}: second patch failed: {e}")),
        }
        let mut want = documents(&label, &input);
        for doc in &mut want {
            for_each_image(doc, &mut |image| {
                if let Some(p) = image.as_str().and_then(|i| owner(&pins, i)) {
                    *image = reference(p, pin).into();
                }
            });
        }
        let after = documents(&label, &out);
        if after != want {
            failures.push(format!(
                "{label}: serde-saphyr reads\n{}\nwant\n{}",
                serde_json::to_string_pretty(&after).unwrap(),
                serde_json::to_string_pretty(&want).unwrap()
            ));
        }
    }
    report("raw", RAW.len(), failures);
}

// ---------------------------------------------------------------------------

/// Every input in the corpus is listed in a table above, and every expected
/// file has its input.
#[test]
fn every_corpus_file_is_a_case() {
    let mut problems = Vec::new();
    for entry in std::fs::read_dir(golden().join("kustomize")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name != "base" && !KUSTOMIZE.iter().any(|c| c.0 == name) {
            problems.push(format!("kustomize/{name} is not in KUSTOMIZE"));
        }
    }
    for (kind, names) in [
        ("helm", HELM.iter().map(|c| c.0).collect::<Vec<_>>()),
        ("raw", RAW.iter().map(|c| c.0).collect()),
    ] {
        for entry in std::fs::read_dir(golden().join(kind)).unwrap() {
            let file = entry.unwrap().file_name().into_string().unwrap();
            let stem = file
                .strip_suffix(".expected.yaml")
                .or_else(|| file.strip_suffix(".yaml"))
                .unwrap_or(&file);
            if !names.contains(&stem) {
                problems.push(format!("{kind}/{file} is not in {}", kind.to_uppercase()));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ---------------------------------------------------------------------------
// Helm charts: the values file beside its chart, rendered by a small
// renderer of the two image helpers the cases use (no `helm` binary can be
// installed here): the Bitnami-style helper and `helm create`'s template.

/// Chart folder under `golden/charts`, `image_path`, `services:` of the
/// entry, pin. Each folder has `values-production.yaml` (patched) and
/// `values-production.expected.yaml`.
const CHARTS: &[(&str, &str, Option<&[&str]>, Pin)] = &[
    ("bitnami", "{service}.image", None, D),
    ("bitnami-global", "{service}.image", None, D),
    ("helm-create", "image", Some(&["orders"]), D),
];

/// Helm's merge of a values file over the chart's `values.yaml`.
fn merged(defaults: Value, over: Value) -> Value {
    match (defaults, over) {
        (Value::Object(mut d), Value::Object(o)) => {
            for (k, v) in o {
                let merged = match d.remove(&k) {
                    Some(dv) => merged(dv, v),
                    None => v,
                };
                d.insert(k, merged);
            }
            Value::Object(d)
        }
        (_, over) => over,
    }
}

/// The Bitnami-style helper (`templates/_images.tpl` of the case, as
/// Bitnami's `common.images.image` writes it): a non-empty global registry
/// comes before the image's own, and a digest replaces the tag.
fn render_bitnami(image: &Value, global: &Value) -> String {
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    let global = s(global);
    let registry = if global.is_empty() {
        s(&image["registry"])
    } else {
        global
    };
    let (separator, termination) = match s(&image["digest"]) {
        d if d.is_empty() => (":", s(&image["tag"])),
        d => ("@", d),
    };
    let repository = s(&image["repository"]);
    match registry.is_empty() {
        true => format!("{repository}{separator}{termination}"),
        false => format!("{registry}/{repository}{separator}{termination}"),
    }
}

/// `helm create`'s `"{{ .Values.image.repository }}:{{ .Values.image.tag |
/// default .Chart.AppVersion }}"`.
fn render_helm_create(image: &Value, app_version: &str) -> String {
    let tag = image["tag"]
        .as_str()
        .filter(|t| !t.is_empty())
        .unwrap_or(app_version);
    format!("{}:{tag}", image["repository"].as_str().unwrap_or(""))
}

#[test]
fn helm_chart_golden() {
    let mut failures = Vec::new();
    let all: Vec<&str> = SERVICES.iter().map(|(s, _)| *s).collect();
    for &(name, image_path, services, pin) in CHARTS {
        let dir = golden().join("charts").join(name);
        let label = format!("charts/{name}");
        let values = dir.join("values-production.yaml");
        let rel = format!("charts/{name}/values-production.yaml");
        let at = |value: &str| crate::config::At {
            value: value.to_string(),
            loc: Default::default(),
        };
        let target = crate::config::HelmTarget {
            values: at(&rel),
            image_path: at(image_path),
            services: services.map(|s| s.iter().map(|v| at(v)).collect()),
        };
        let pins = pins(Some(services.unwrap_or(&["orders", "gateway"])));
        let chart = patch::helm::chart(&golden(), &values);
        let input = read(&values);
        let (out, file_report) =
            match patch::helm::patch(&input, &target, &pins, pin, &rel, chart.as_ref(), &all) {
                Ok(out) => out,
                Err(e) => {
                    failures.push(format!("{label}: patch failed: {e}"));
                    continue;
                }
            };
        check_expected(
            &dir.join("values-production.expected.yaml"),
            &out,
            &mut failures,
        );
        check_line_diff(&label, &input, &out, &pins, false, &mut failures);
        match patch::helm::patch(&out, &target, &pins, pin, &rel, chart.as_ref(), &all) {
            Ok((again, _)) if again == out => {}
            Ok((again, _)) => failures.push(format!(
                "{label}: a second patch changes the output\n{}",
                show_diff(&out, &again)
            )),
            Err(e) => failures.push(format!("{label}: second patch failed: {e}")),
        }
        let defaults = documents(&label, &read(&dir.join("values.yaml"))).remove(0);
        let values = merged(defaults, documents(&label, &out).remove(0));
        for p in &pins {
            let (rendered, want) = match name {
                "helm-create" => (
                    render_helm_create(&values["image"], "1.16.0"),
                    format!("{}:{}", p.uri, p.content_tag),
                ),
                _ => (
                    render_bitnami(
                        &values[&p.service]["image"],
                        &values["global"]["imageRegistry"],
                    ),
                    reference(p, pin),
                ),
            };
            match name {
                // The mirror comes first: the report must say what renders.
                "bitnami-global" => {
                    let named = file_report
                        .warnings
                        .iter()
                        .any(|w| w.contains(&format!("renders as `{rendered}`")));
                    if rendered == want || !named {
                        failures.push(format!(
                            "{label}: {} renders {rendered}; the report must name it: {:?}",
                            p.service, file_report.warnings
                        ));
                    }
                }
                _ if rendered != want => failures.push(format!(
                    "{label}: {} renders {rendered}, want {want}",
                    p.service
                )),
                _ => {}
            }
        }
        if name == "helm-create" {
            let by_tag = file_report.warnings.iter().any(|w| {
                w.contains("deploys by tag")
                    && w.contains("charts/helm-create/templates/deployment.yaml")
            });
            if !by_tag || out.contains("digest") {
                failures.push(format!(
                    "{label}: the report names the template, and no unused digest is added: {:?}\n{out}",
                    file_report.warnings
                ));
            }
        }
    }
    report("charts", CHARTS.len(), failures);
}

#[test]
fn reports_of_the_new_kustomize_cases() {
    let pins = pins(None);
    let patch = |name: &str| {
        let dir = golden().join("kustomize").join(name);
        let inputs = patch::kustomize::inputs(&dir, &dir).unwrap();
        patch::kustomize::patch(&read(&dir.join("kustomization.yaml")), &pins, D, &inputs)
            .unwrap()
            .1
    };
    let r = patch("component-and-patch");
    assert_eq!(r.pinned.keys().collect::<Vec<_>>(), ["adservice", "orders"]);
    assert_eq!(r.not_deployed, ["gateway", "payments", "frontend"]);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    // Every service renders, some under a name a component or base gave it.
    for name in ["registry-component", "renaming-base"] {
        let r = patch(name);
        assert_eq!(r.pinned.len(), SERVICES.len(), "{name}: {:?}", r.pinned);
        assert!(r.not_deployed.is_empty(), "{name}: {:?}", r.not_deployed);
        assert!(r.warnings.is_empty(), "{name}: {:?}", r.warnings);
    }
    let r = patch("remote-base");
    assert!(r.not_deployed.is_empty());
    assert_eq!(r.warnings.len(), 1);
    assert!(
        r.warnings[0]
            .contains("github.com/acme/platform//deploy/base?ref=v1.2.0 (in kustomization.yaml)")
            && r.warnings[0]
                .contains("entries were appended for orders, payments, frontend, adservice"),
        "{:?}",
        r.warnings
    );
}
