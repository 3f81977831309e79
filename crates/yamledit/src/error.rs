//! The crate's one error type. Every variant that points into a text carries
//! a 1-based line and column, so a caller can say where a file went wrong.

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
