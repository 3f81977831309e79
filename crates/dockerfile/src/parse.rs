//! Lines to instructions, the way the Dockerfile parser the daemon vendors from
//! BuildKit (`frontend/dockerfile/parser`) reads them.
//!
//! - Parser directives (`# syntax=`, `# escape=`, `# check=`) only at the very top:
//!   the first line that is not one ends them, and each may appear once.
//! - `#` starts a comment only at the start of a line. The escape character at the
//!   end of a line continues the instruction; comment and blank lines inside a
//!   continuation are dropped.
//! - Heredoc bodies (`RUN <<EOF`, also `COPY`/`ADD` and under `ONBUILD`, never in
//!   JSON form) are not instructions. An instruction's line range covers its
//!   continuation lines and heredoc bodies, as BuildKit's source ranges do.
//!
//! Stricter checks of the builder (an unknown instruction, anything but `ARG`
//! before the first `FROM`, a file without instructions) are not errors here: this
//! reader answers questions about a file, the build reports those.

/// A Dockerfile read into parser directives, global `ARG`s and build stages.
#[derive(Debug, Clone)]
pub struct Dockerfile {
    pub(crate) escape: char,
    pub(crate) directives: Vec<Directive>,
    /// Instructions before the first `FROM` (the builder accepts only `ARG` there).
    pub(crate) global: Vec<Instruction>,
    pub(crate) stages: Vec<Stage>,
}

/// A parser directive from the top of the file, such as `# syntax=docker/dockerfile:1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    name: String,
    value: String,
    line: usize,
}

/// A `FROM` and the instructions up to the next one.
#[derive(Debug, Clone)]
pub struct Stage {
    pub(crate) index: usize,
    pub(crate) from: Instruction,
    pub(crate) body: Vec<Instruction>,
}

/// One instruction: continuation lines joined, heredoc bodies set apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// 1-based line where it starts.
    pub(crate) line: usize,
    /// 1-based last line, continuation lines and heredoc bodies included.
    pub(crate) end_line: usize,
    /// Lower-cased: `copy`, `from`, ...
    pub(crate) keyword: String,
    /// Leading `--name[=value]` words, quotes removed.
    pub(crate) flags: Vec<Flag>,
    /// What follows the flags, unprocessed.
    pub(crate) args: String,
    pub(crate) heredocs: Vec<Heredoc>,
    /// The instruction of an `ONBUILD`.
    pub(crate) trigger: Option<Box<Instruction>>,
    /// The joined text, as written.
    pub(crate) text: String,
}

/// A `--name` or `--name=value` flag of an instruction (`--mount=type=cache,...`,
/// `--from=build`, `--link`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    name: String,
    value: Option<String>,
}

/// A here-document (`RUN <<EOF` ... `EOF`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    name: String,
    /// `<<-`: leading tabs are stripped, also before the terminator.
    chomp: bool,
    /// `<<"EOF"` or `<<'EOF'`: the body is taken literally, no variable expansion.
    quoted: bool,
    body: String,
}

/// Why a Dockerfile cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    #[error("line {line}: only one `{name}` parser directive is allowed")]
    DuplicateDirective { line: usize, name: String },
    #[error("line {line}: invalid escape character `{value}`")]
    InvalidEscape { line: usize, value: String },
    #[error("line {line}: heredoc `{name}` is never terminated")]
    UnterminatedHeredoc { line: usize, name: String },
}

impl ParseError {
    /// The 1-based line the error is about.
    #[must_use]
    pub fn line(&self) -> usize {
        match self {
            ParseError::DuplicateDirective { line, .. }
            | ParseError::InvalidEscape { line, .. }
            | ParseError::UnterminatedHeredoc { line, .. } => *line,
        }
    }
}

impl Dockerfile {
    /// Reads a Dockerfile. Fails only where the builder's parser fails before
    /// looking at instructions: a repeated or invalid parser directive, or a heredoc
    /// that never ends.
    pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
        let (escape, directives, instructions) = parse_lines(text)?;
        let mut global = Vec::new();
        let mut stages: Vec<Stage> = Vec::new();
        for instruction in instructions {
            if instruction.keyword == "from" {
                stages.push(Stage {
                    index: stages.len(),
                    from: instruction,
                    body: Vec::new(),
                });
                continue;
            }
            match stages.last_mut() {
                Some(stage) => stage.body.push(instruction),
                None => global.push(instruction),
            }
        }
        Ok(Dockerfile {
            escape,
            directives,
            global,
            stages,
        })
    }

    /// The escape character: `\`, or `` ` `` after `# escape=``.
    #[must_use]
    pub fn escape(&self) -> char {
        self.escape
    }

    /// The parser directives, in file order.
    #[must_use]
    pub fn directives(&self) -> &[Directive] {
        &self.directives
    }

    /// The value of `# syntax=`: the frontend image BuildKit is asked to use.
    #[must_use]
    pub fn syntax(&self) -> Option<&str> {
        self.directives
            .iter()
            .find(|d| d.name == "syntax")
            .map(|d| d.value.as_str())
    }

    /// The instructions before the first `FROM` (global `ARG`s).
    #[must_use]
    pub fn global_args(&self) -> &[Instruction] {
        &self.global
    }

    /// The build stages, in file order.
    #[must_use]
    pub fn stages(&self) -> &[Stage] {
        &self.stages
    }

    /// The stage named `name` (case-insensitive, as stage names are).
    #[must_use]
    pub fn stage(&self, name: &str) -> Option<&Stage> {
        let name = name.to_ascii_lowercase();
        self.stages
            .iter()
            .find(|s| s.name().as_deref() == Some(name.as_str()))
    }

    /// Every instruction in file order: global `ARG`s, then each stage's `FROM` and
    /// body.
    pub fn instructions(&self) -> impl Iterator<Item = &Instruction> {
        self.global
            .iter()
            .chain(self.stages.iter().flat_map(Stage::instructions))
    }

    /// The instruction whose lines (continuations and heredoc bodies included)
    /// contain the 1-based `line`, for naming a step the builder reports by line.
    #[must_use]
    pub fn instruction_at(&self, line: usize) -> Option<&Instruction> {
        self.instructions()
            .find(|i| (i.line..=i.end_line).contains(&line))
    }
}

impl Directive {
    /// Lower-cased: `syntax`, `escape` or `check`.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value, trimmed.
    #[must_use]
    pub fn value(&self) -> &str {
        &self.value
    }

    /// 1-based line.
    #[must_use]
    pub fn line(&self) -> usize {
        self.line
    }
}

impl Stage {
    /// 0-based position in the file (what `COPY --from=0` refers to).
    #[must_use]
    pub fn index(&self) -> usize {
        self.index
    }

    /// `FROM image AS name`, lower-cased (stage names are case-insensitive).
    #[must_use]
    pub fn name(&self) -> Option<String> {
        match self.words()[..] {
            [_, as_, name, ..] if as_.eq_ignore_ascii_case("as") => Some(name.to_ascii_lowercase()),
            _ => None,
        }
    }

    /// The base as written: an image reference, an earlier stage's name, or a
    /// variable to expand.
    #[must_use]
    pub fn base(&self) -> &str {
        self.words().first().copied().unwrap_or("")
    }

    /// The `--platform` of the `FROM`, as written.
    #[must_use]
    pub fn platform(&self) -> Option<&str> {
        self.from.flag("platform")
    }

    /// The `FROM` instruction.
    #[must_use]
    pub fn from(&self) -> &Instruction {
        &self.from
    }

    /// The instructions after the `FROM`.
    #[must_use]
    pub fn body(&self) -> &[Instruction] {
        &self.body
    }

    /// The `FROM`, then the body.
    pub fn instructions(&self) -> impl Iterator<Item = &Instruction> {
        std::iter::once(&self.from).chain(&self.body)
    }

    fn words(&self) -> Vec<&str> {
        whitespace_words(&self.from.args)
    }
}

impl Instruction {
    /// 1-based line where it starts.
    #[must_use]
    pub fn line(&self) -> usize {
        self.line
    }

    /// 1-based last line: the same as [`line`](Self::line) unless the instruction
    /// continues over several lines or has heredoc bodies.
    #[must_use]
    pub fn end_line(&self) -> usize {
        self.end_line
    }

    /// Lower-cased: `run`, `copy`, `from`, ...
    #[must_use]
    pub fn keyword(&self) -> &str {
        &self.keyword
    }

    /// The leading `--` flags, in order.
    #[must_use]
    pub fn flags(&self) -> &[Flag] {
        &self.flags
    }

    /// The value of the first `--name=value` flag.
    #[must_use]
    pub fn flag(&self, name: &str) -> Option<&str> {
        self.flags
            .iter()
            .filter(|f| f.name == name)
            .find_map(|f| f.value.as_deref())
    }

    /// Whether a `--name` flag is present, with or without a value.
    #[must_use]
    pub fn has_flag(&self, name: &str) -> bool {
        self.flags.iter().any(|f| f.name == name)
    }

    /// What follows the flags, unprocessed (quotes, variables and the `AS name` of
    /// a `FROM` kept).
    #[must_use]
    pub fn args(&self) -> &str {
        &self.args
    }

    /// The arguments of the JSON (exec) form, `["a", "b"]`, if it is that form.
    #[must_use]
    pub fn json_args(&self) -> Option<Vec<String>> {
        json_array(&self.args)
    }

    /// The here-documents whose bodies follow the instruction, in order.
    #[must_use]
    pub fn heredocs(&self) -> &[Heredoc] {
        &self.heredocs
    }

    /// The instruction an `ONBUILD` registers.
    #[must_use]
    pub fn trigger(&self) -> Option<&Instruction> {
        self.trigger.as_deref()
    }

    /// The instruction as the Dockerfile wrote it, continuation lines joined
    /// (heredoc bodies not included).
    #[must_use]
    pub fn text(&self) -> &str {
        &self.text
    }

    fn parse(text: &str, line: usize) -> Instruction {
        let text = text.trim();
        let (keyword, rest) = match text.find(char::is_whitespace) {
            Some(at) => (&text[..at], text[at..].trim_start()),
            None => (text, ""),
        };
        let keyword = keyword.to_ascii_lowercase();
        let (flags, args) = split_flags(rest);
        let trigger = (keyword == "onbuild").then(|| Box::new(Instruction::parse(args, line)));
        Instruction {
            line,
            end_line: line,
            keyword,
            flags,
            args: args.trim().to_string(),
            heredocs: Vec::new(),
            trigger,
            text: text.to_string(),
        }
    }

    /// The heredocs this instruction opens (bodies still empty), in order.
    fn opened_heredocs(&self) -> Vec<Heredoc> {
        let target = self.trigger.as_deref().unwrap_or(self);
        if !matches!(target.keyword.as_str(), "run" | "copy" | "add")
            || json_array(&target.args).is_some()
        {
            return Vec::new();
        }
        // BuildKit finds heredocs with a `\`-escaped shell lexer whatever the escape
        // directive says (`heredocsFromLine`).
        split_words(&self.text, '\\')
            .iter()
            .filter_map(|w| heredoc_word(w))
            .collect()
    }
}

impl Flag {
    /// The name without the leading `--`.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What follows `=`; `None` for a bare `--link`.
    #[must_use]
    pub fn value(&self) -> Option<&str> {
        self.value.as_deref()
    }

    fn new(word: &str) -> Flag {
        let word = word.strip_prefix("--").unwrap_or(word);
        match word.split_once('=') {
            Some((name, value)) => Flag {
                name: name.to_string(),
                value: Some(value.to_string()),
            },
            None => Flag {
                name: word.to_string(),
                value: None,
            },
        }
    }
}

impl Heredoc {
    /// The delimiter, quotes removed.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `<<-EOF`: leading tabs are stripped from the body and the terminator.
    #[must_use]
    pub fn chomp(&self) -> bool {
        self.chomp
    }

    /// `<<"EOF"` or `<<'EOF'`: the body is not expanded.
    #[must_use]
    pub fn quoted(&self) -> bool {
        self.quoted
    }

    /// The body lines as written, each ending in `\n`, terminator excluded.
    #[must_use]
    pub fn body(&self) -> &str {
        &self.body
    }
}

type Parsed = (char, Vec<Directive>, Vec<Instruction>);

fn parse_lines(source: &str) -> Result<Parsed, ParseError> {
    let source = source.strip_prefix('\u{feff}').unwrap_or(source);
    let lines: Vec<&str> = source.lines().collect();
    let mut escape = '\\';
    let mut directives_done = false;
    let mut directives: Vec<Directive> = Vec::new();
    let mut instructions = Vec::new();

    let mut next = 0;
    while next < lines.len() {
        let number = next + 1;
        let first = lines[next].trim_start();
        next += 1;
        if !directives_done {
            match directive(first, number)? {
                Some(found) => {
                    if directives.iter().any(|d| d.name == found.name) {
                        return Err(ParseError::DuplicateDirective {
                            line: number,
                            name: found.name,
                        });
                    }
                    if found.name == "escape" {
                        escape = match found.value.as_str() {
                            "\\" => '\\',
                            "`" => '`',
                            other => {
                                return Err(ParseError::InvalidEscape {
                                    line: number,
                                    value: other.to_string(),
                                });
                            }
                        };
                    }
                    directives.push(found);
                }
                None => directives_done = true,
            }
        }
        // Directives are comments too.
        if first.is_empty() || first.starts_with('#') {
            continue;
        }

        let (text, mut continued) = split_continuation(first, escape);
        let mut text = text.to_string();
        while continued && next < lines.len() {
            let line = lines[next];
            next += 1;
            let trimmed = line.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let (part, more) = split_continuation(line, escape);
            text.push_str(part);
            continued = more;
        }
        if text.trim().is_empty() {
            continue;
        }

        let mut instruction = Instruction::parse(&text, number);
        for mut heredoc in instruction.opened_heredocs() {
            loop {
                let Some(line) = lines.get(next) else {
                    return Err(ParseError::UnterminatedHeredoc {
                        line: number,
                        name: heredoc.name,
                    });
                };
                next += 1;
                let candidate = if heredoc.chomp {
                    line.trim_start_matches('\t')
                } else {
                    line
                };
                if candidate == heredoc.name {
                    break;
                }
                heredoc.body.push_str(line);
                heredoc.body.push('\n');
            }
            instruction.heredocs.push(heredoc);
        }
        instruction.end_line = next;
        instructions.push(instruction);
    }
    Ok((escape, directives, instructions))
}

/// Reads `# key=value` at the top of the file; `None` when the line is not a
/// directive, which ends the directives.
fn directive(line: &str, number: usize) -> Result<Option<Directive>, ParseError> {
    let Some((key, value)) = line.strip_prefix('#').and_then(|l| l.split_once('=')) else {
        return Ok(None);
    };
    let (key, value) = (key.trim(), value.trim());
    let well_formed = key.starts_with(|c: char| c.is_ascii_alphabetic())
        && key.chars().all(|c| c.is_ascii_alphanumeric())
        && !value.is_empty();
    let name = key.to_ascii_lowercase();
    if !well_formed || !matches!(name.as_str(), "escape" | "syntax" | "check") {
        return Ok(None);
    }
    Ok(Some(Directive {
        name,
        value: value.to_string(),
        line: number,
    }))
}

/// Strips a trailing escape character (and blanks after it). An escaped escape
/// character does not continue the line.
fn split_continuation(line: &str, escape: char) -> (&str, bool) {
    let trimmed = line.trim_end_matches([' ', '\t']);
    match trimmed.strip_suffix(escape) {
        Some(rest) if rest.is_empty() || !rest.ends_with(escape) => (rest, true),
        _ => (line, false),
    }
}

/// `<<EOF`, `<<-EOF`, `<<"EOF"`, `2<<EOF`: a word that opens a heredoc.
pub(crate) fn heredoc_word(word: &str) -> Option<Heredoc> {
    let rest = word
        .trim_start_matches(|c: char| c.is_ascii_digit())
        .strip_prefix("<<")?;
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, rest),
    };
    if rest.contains('<') {
        return None;
    }
    let name = unquote(rest);
    (!name.is_empty()).then(|| Heredoc {
        name,
        chomp,
        quoted: rest.contains(['"', '\'']),
        body: String::new(),
    })
}

/// Removes shell quotes and `\` escapes, leaving `$` alone.
pub(crate) fn unquote(word: &str) -> String {
    let mut out = String::new();
    let mut quote = None;
    let mut chars = word.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"') | None, '\\') => out.extend(chars.next()),
            (None, '\'' | '"') => quote = Some(c),
            (_, c) => out.push(c),
        }
    }
    out
}

/// Splits the leading `--flag[=value]` words off; a lone `--` ends them. Quotes
/// and `\` are removed from flag words (BuildKit's `extractBuilderFlags`).
fn split_flags(rest: &str) -> (Vec<Flag>, &str) {
    let mut flags = Vec::new();
    let mut chars = rest.char_indices().peekable();
    loop {
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let Some(&(start, _)) = chars.peek() else {
            return (flags, "");
        };
        if !rest[start..].starts_with("--") {
            return (flags, &rest[start..]);
        }
        let mut word = String::new();
        let mut quote = None;
        let mut end = rest.len();
        while let Some((at, c)) = chars.next() {
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) if c == '\\' => word.extend(chars.next().map(|(_, c)| c)),
                Some(_) => word.push(c),
                None if c.is_whitespace() => {
                    end = at;
                    break;
                }
                None if c == '\'' || c == '"' => quote = Some(c),
                None if c == '\\' => word.extend(chars.next().map(|(_, c)| c)),
                None => word.push(c),
            }
        }
        if word == "--" {
            return (flags, rest[end..].trim_start());
        }
        flags.push(Flag::new(&word));
    }
}

/// `["a b", "c"]`: the JSON form of COPY/ADD/RUN.
pub(crate) fn json_array(args: &str) -> Option<Vec<String>> {
    let args = args.trim_start();
    if !args.starts_with('[') {
        return None;
    }
    serde_json::from_str(args).ok()
}

/// Shell-form COPY/ADD/FROM arguments: split on blanks, nothing else.
pub(crate) fn whitespace_words(args: &str) -> Vec<&str> {
    args.split([' ', '\t', '\u{b}', '\u{c}', '\r'])
        .filter(|w| !w.is_empty())
        .collect()
}

/// Splits on blanks outside quotes, keeping quotes and escapes in the words (the
/// lexer removes them later). Used for ARG, ENV and heredoc detection.
pub(crate) fn split_words(text: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                word.push(c);
                if c == q {
                    quote = None;
                } else if c == escape && q != '\'' {
                    word.extend(chars.next());
                }
            }
            None if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            None => {
                in_word = true;
                if c == escape {
                    // An escape at the very end is dropped.
                    if let Some(n) = chars.next() {
                        word.push(c);
                        word.push(n);
                    }
                    continue;
                }
                word.push(c);
                if c == '\'' || c == '"' {
                    quote = Some(c);
                }
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Dockerfile {
        Dockerfile::parse(text).expect("parses")
    }

    #[test]
    fn stages_names_and_global_args() {
        let file = parse(
            "# syntax=docker/dockerfile:1.4\nARG BASE=alpine\nFROM --platform=$BUILDPLATFORM golang:1.22 AS Build\nRUN go build\nFROM ${BASE}\nCOPY --from=build /out /out\n",
        );
        assert_eq!(file.syntax(), Some("docker/dockerfile:1.4"));
        assert_eq!(file.escape(), '\\');
        assert_eq!(file.global_args().len(), 1);
        assert_eq!(file.global_args()[0].keyword(), "arg");
        let stages = file.stages();
        assert_eq!(stages.len(), 2);
        assert_eq!(stages[0].name().as_deref(), Some("build"));
        assert_eq!(stages[0].base(), "golang:1.22");
        assert_eq!(stages[0].platform(), Some("$BUILDPLATFORM"));
        assert_eq!(stages[0].from().line(), 3);
        assert_eq!(stages[0].body()[0].text(), "RUN go build");
        assert_eq!(stages[1].name(), None);
        assert_eq!(stages[1].base(), "${BASE}");
        assert_eq!(stages[1].index(), 1);
        assert_eq!(file.stage("BUILD").map(Stage::index), Some(0));
        assert!(file.stage("nope").is_none());
        assert_eq!(file.instructions().count(), 5);
    }

    #[test]
    fn flags_with_and_without_values() {
        let file = parse(
            "FROM alpine\nCOPY --link --chmod=755 --chown=\"app:app\" --from=build src/ /dst/\nRUN --mount=type=cache,target=/root/.cache --network=none make\n",
        );
        let copy = &file.stages()[0].body()[0];
        let names: Vec<_> = copy.flags().iter().map(Flag::name).collect();
        assert_eq!(names, ["link", "chmod", "chown", "from"]);
        assert_eq!(copy.flags()[0].value(), None);
        assert!(copy.has_flag("link"));
        assert_eq!(copy.flag("link"), None);
        assert_eq!(copy.flag("chmod"), Some("755"));
        assert_eq!(copy.flag("chown"), Some("app:app"));
        assert_eq!(copy.args(), "src/ /dst/");
        let run = &file.stages()[0].body()[1];
        assert_eq!(run.flag("mount"), Some("type=cache,target=/root/.cache"));
        assert_eq!(run.flag("network"), Some("none"));
        assert_eq!(run.args(), "make");
    }

    #[test]
    fn line_ranges_cover_continuations_and_heredocs() {
        let text = "\
FROM alpine
RUN apk add \\
    # a comment
    curl \\
    jq
RUN <<EOF
echo hi
EOF
COPY <<-\"A\" /a
\tbody $X
\tA
CMD [\"sh\"]
";
        let file = parse(text);
        let body = file.stages()[0].body();
        assert_eq!((body[0].line(), body[0].end_line()), (2, 5));
        assert_eq!(body[0].text(), "RUN apk add     curl     jq");
        assert!(body[0].heredocs().is_empty());
        assert_eq!((body[1].line(), body[1].end_line()), (6, 8));
        assert_eq!(body[1].heredocs()[0].name(), "EOF");
        assert_eq!(body[1].heredocs()[0].body(), "echo hi\n");
        assert!(!body[1].heredocs()[0].quoted());
        let copy = &body[2].heredocs()[0];
        assert_eq!(
            (copy.name(), copy.chomp(), copy.quoted()),
            ("A", true, true)
        );
        assert_eq!(copy.body(), "\tbody $X\n");
        assert_eq!((body[3].line(), body[3].end_line()), (12, 12));
        assert_eq!(body[3].json_args(), Some(vec!["sh".to_string()]));
        assert_eq!(file.instruction_at(4).map(Instruction::line), Some(2));
        assert_eq!(
            file.instruction_at(7).map(Instruction::keyword),
            Some("run")
        );
        assert_eq!(file.instruction_at(10).map(Instruction::line), Some(9));
        assert!(file.instruction_at(13).is_none());
    }

    #[test]
    fn onbuild_has_a_trigger_and_its_heredocs() {
        let file = parse("FROM alpine\nONBUILD RUN --mount=type=secret,id=x <<EOF\ncat\nEOF\n");
        let onbuild = &file.stages()[0].body()[0];
        assert_eq!(onbuild.keyword(), "onbuild");
        let trigger = onbuild.trigger().expect("trigger");
        assert_eq!(trigger.keyword(), "run");
        assert_eq!(trigger.flag("mount"), Some("type=secret,id=x"));
        assert_eq!(onbuild.heredocs().len(), 1);
        assert_eq!(onbuild.end_line(), 4);
    }

    #[test]
    fn directives_and_their_errors() {
        let file = parse("# syntax = docker/dockerfile:1\n# ESCAPE=`\n# check=skip=all\nFROM x\n");
        let names: Vec<_> = file.directives().iter().map(Directive::name).collect();
        assert_eq!(names, ["syntax", "escape", "check"]);
        assert_eq!(file.directives()[1].line(), 2);
        assert_eq!(file.directives()[0].value(), "docker/dockerfile:1");
        assert_eq!(file.escape(), '`');
        let err = Dockerfile::parse("# escape=`\n# escape=\\\n").unwrap_err();
        assert_eq!(
            err,
            ParseError::DuplicateDirective {
                line: 2,
                name: "escape".into()
            }
        );
        assert_eq!(err.line(), 2);
        let err = Dockerfile::parse("# escape=x\nFROM a\n").unwrap_err();
        assert_eq!(err.to_string(), "line 1: invalid escape character `x`");
        let err = Dockerfile::parse("FROM a\nRUN <<EOF\n").unwrap_err();
        assert_eq!(err.line(), 2);
        assert!(err.to_string().contains("`EOF`"));
    }

    #[test]
    fn a_lone_double_dash_ends_the_flags() {
        let file = parse("FROM a\nCOPY --chown=1 -- --weird /w/\n");
        let copy = &file.stages()[0].body()[0];
        assert_eq!(copy.flags().len(), 1);
        assert_eq!(copy.args(), "--weird /w/");
    }
}
