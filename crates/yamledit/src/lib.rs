//! Lossless YAML editing: read a manifest, change a few scalar values or keys,
//! and leave every other byte of the file exactly as it was.
//!
//! Made for tools that rewrite users' files: `pipeline patch` rewrites
//! `kustomization.yaml`, Helm values and raw manifests, and promises that a
//! diff shows only the values it set. Serializing a parsed tree back out would
//! lose comments, quoting, key order and blank lines, so this crate never
//! serializes a document. It parses the text into a small tree whose every
//! node knows its exact *byte* span, turns each requested change into a splice
//! (byte range + replacement text), applies the splices to the original text,
//! then re-parses the result and reads the new values back. If that check
//! fails, [`Edits::apply`] returns an error instead of a broken file.
//!
//! # Example
//!
//! ```
//! use yamledit::{Edits, YamlError, parse};
//!
//! let text = "\
//! image:
//!   repository: old/api   # set by CI
//!   tag: v1
//! replicas: 2
//! ";
//! let docs = parse(text)?;
//! let image = docs[0].lookup(&["image"]).expect("image is there");
//! let mut edits = Edits::new();
//! edits
//!     .set_key(image, "repository", "123.dkr.ecr/shop/api")?
//!     .set_key(image, "tag", "1.10")?
//!     .set_key(image, "digest", "sha256:abc")?;
//! let out = edits.apply(text)?;
//! assert_eq!(
//!     out,
//!     "\
//! image:
//!   repository: 123.dkr.ecr/shop/api   # set by CI
//!   tag: \"1.10\"
//!   digest: sha256:abc
//! replicas: 2
//! "
//! );
//!
//! // An alias shares its anchor's value, so it is not edited in place.
//! let text = "base: &img old/api\nweb: *img\n";
//! let docs = parse(text)?;
//! let web = docs[0].lookup(&["web"]).expect("web is there");
//! let err = Edits::new().set_scalar(web, "new/api").unwrap_err();
//! assert!(matches!(err, YamlError::Refused { line: 2, .. }));
//! # Ok::<(), YamlError>(())
//! ```
//!
//! # Parser
//!
//! The events come from `granit-parser`, the parser under `serde-saphyr` (which
//! `pipeline`'s config loader already uses, so this adds no crate to its build).
//! `Parser::new_from_str` gives every event a span with real UTF-8 byte offsets
//! (`Span::byte_range`), including after a BOM, CRLF line breaks and non-ASCII
//! text, plus anchor-token spans and tag spans. The alternatives were weaker:
//! `saphyr-parser` and `yaml-rust2` markers count characters, so every span
//! would have to be converted by re-walking the text (and their BOM and CRLF
//! accounting would have to be trusted too); `yaml-edit` is a lossless rowan CST
//! but brings its own non-conformant, error-recovering parser and more crates,
//! and keeps lists of known edit failures, CRLF among them. A strict,
//! test-suite-driven event parser plus byte spans is all this crate needs.
//! The editing layer on top is written here because no crate offers "splice
//! only these values and prove the rest is untouched"; it is small, and the
//! re-parse check plus the property test in `tests/props.rs` keep it honest.
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
//!   double-quoted. An empty `key:` (or `? key` + `:`) becomes `key: value`;
//!   an empty value with nowhere to write it is refused: an explicit `? key`
//!   with no `:` (its empty value has no place in the text), or a tagged or
//!   anchored one (`key: !!null`, `key: &a`, which would keep the tag or
//!   change what the alias shares).
//! - [`Edits::insert_key_with_sequence`] on a key that is already there fills
//!   a null written as an empty `key:` (block items go on the next lines) or
//!   as a plain `~` / `null` (replaced; `key: ~` loses the ` ~` and the items
//!   follow, or, if the null is not on the key's line, the sequence is
//!   written in flow style in its place). Other nulls are refused as above
//!   (an alias too); any other value is [`YamlError::KeyExists`].
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
//!   line leaves the line break before it in place. A text with a lone CR
//!   line break (old Mac style, which YAML reads as a line break) or with a
//!   byte order mark after its start is refused.
//! - Edits are checked when recorded (overlaps, edits inside removed entries,
//!   removing an entry whose anchor an alias elsewhere uses) and once more
//!   after applying, by re-parsing the result: same document count, every
//!   written key and value reads back, every new entry or item (`{}` too)
//!   lands in its collection, and every new sequence (an empty `[]` too) is
//!   the untagged value of its key with the items written. A value gets only
//!   one write per batch.

// Reading: `tree` (documents and nodes with byte spans), `text` (offsets and
// lines). Writing: `edits` records changes, `scalar` decides quoting, `group`
// places removals and insertions in a collection, `verify` re-parses the result.
mod edits;
mod error;
mod group;
mod scalar;
mod text;
mod tree;
mod verify;

pub use edits::{Edits, Splice};
pub use error::YamlError;
pub use tree::{CollectionStyle, Document, Node, NodeKind, ScalarStyle, parse};
