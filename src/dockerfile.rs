//! Which files of a build context a Dockerfile can read.
//!
//! A service built from a wide context (`docker build -f services/x/Dockerfile .`)
//! would otherwise hash and send the whole monorepo, so a change in `services/a`
//! would rebuild `services/b`. [`reach`] reads the Dockerfile the way the classic
//! builder (not BuildKit) does and answers which context paths its `COPY`/`ADD`
//! instructions can touch; the build step hashes and sends only those.
//!
//! Every doubt widens the answer, never narrows it: an unresolvable variable, a
//! source that is the context root or a malformed line gives [`Reach::All`] with the
//! reason; a glob we cannot mirror exactly is cut back to its directory prefix;
//! `--exclude` is ignored. Sending too much costs time, sending too little breaks the
//! build or lets a cache hit hide a change.
//!
//! Docker behaviour this relies on:
//! - Parsing follows the Dockerfile parser the daemon vendors from BuildKit: parser
//!   directives only at the very top, `#` comments only at line start, the escape
//!   character at line end continues a line, comment and blank lines inside a
//!   continuation are dropped, heredoc bodies (`RUN`/`COPY`/`ADD`, also under
//!   `ONBUILD`, not in JSON form) are not instructions.
//! - `--target` runs every stage up to and including the target, in file order, not
//!   only the stages it depends on (moby `builder/dockerfile/builder.go`:
//!   `stages = stages[:targetIx+1]`). Those stages' `COPY`s all read the context, so
//!   all of them count; later stages do not.
//! - Variables: an `ENV` of the stage (or of a stage it is built `FROM`) shadows an
//!   `ARG`; an `ARG` takes the build arg, else its own default, else the default of
//!   the global `ARG` of that name. Global `ARG`s are visible only in `FROM` unless
//!   redeclared. A variable set nowhere in the Dockerfile may come from the base
//!   image, which we cannot see, so it makes the answer [`Reach::All`].
//! - `ONBUILD` instructions run where the stage is used as a base: in a later stage
//!   of this Dockerfile (`FROM <stage>`) they count, otherwise they don't.
//! - Sources (moby `builder/dockerfile/copy.go`): one with an unescaped `*`, `?` or
//!   `[` is matched with Go's `filepath.Match` against every path of the context, and
//!   a matched directory is copied whole; any other source is a literal path.
//!
//! The matcher is hand-written rather than `globset`: globset lets `*` cross `/`
//! unless told otherwise, and knows `**`, `{a,b}` and `[!...]`, none of which Go's
//! `filepath.Match` has (it negates with `[^...]` only, `!` is literal). Nor can
//! globset answer "can anything below this directory match?", which the pruned walk
//! asks through [`Sources::may_contain`].

use std::collections::{BTreeMap, BTreeSet};

/// What a Dockerfile can read from its build context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// Everything (a source is `.`, or something could not be resolved); `why` says
    /// which instruction/line, for diagnostics.
    All { why: String },
    /// Only paths matched by these cleaned, context-relative patterns (and everything
    /// below a matched directory).
    Sources(Sources),
}

/// The context paths that `COPY`/`ADD` sources can reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sources {
    patterns: Vec<String>,
    compiled: Vec<Pattern>,
}

/// Works out what `dockerfile` can read from its context when built with
/// `build_args` up to stage `target` (the last stage when `None`).
#[must_use]
pub fn reach(
    dockerfile: &str,
    build_args: &BTreeMap<String, String>,
    target: Option<&str>,
) -> Reach {
    match context_patterns(dockerfile, build_args, target) {
        Ok(patterns) => Reach::Sources(Sources::new(patterns)),
        Err(why) => Reach::All { why },
    }
}

impl Sources {
    fn new(mut patterns: Vec<String>) -> Sources {
        patterns.sort();
        patterns.dedup();
        // A pattern below a literal one adds nothing: `libs` already brings `libs/x`.
        // Literals with `\` are left alone, as `\` means something else in a glob.
        let literals: Vec<String> = patterns
            .iter()
            .filter(|p| !contains_wildcards(p) && !p.contains('\\'))
            .cloned()
            .collect();
        patterns.retain(|p| !literals.iter().any(|l| is_below(p, l)));
        let compiled = patterns.iter().map(|p| Pattern::new(p)).collect();
        Sources { patterns, compiled }
    }

    /// The cleaned, context-relative, `/`-separated source patterns, sorted.
    #[must_use]
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// The context-relative `/`-separated path is itself matched, or lies under a
    /// matched path.
    #[must_use]
    pub fn includes(&self, path: &str) -> bool {
        let path = clean(path);
        !path.is_empty() && self.compiled.iter().any(|p| p.includes(&path))
    }

    /// Walking into directory `dir` can find something included (dir is an ancestor
    /// of, equal to, or under a match). Used to prune the walk and to keep parent
    /// directory entries.
    #[must_use]
    pub fn may_contain(&self, dir: &str) -> bool {
        let dir = clean(dir);
        if dir.is_empty() {
            return !self.compiled.is_empty();
        }
        self.compiled.iter().any(|p| p.may_contain(&dir))
    }
}

// ---------------------------------------------------------------------------
// Evaluation: stages, variables, sources.
// ---------------------------------------------------------------------------

fn context_patterns(
    dockerfile: &str,
    build_args: &BTreeMap<String, String>,
    target: Option<&str>,
) -> Result<Vec<String>, String> {
    let file = parse(dockerfile)?;
    let escape = file.escape;

    let mut global = Scope::new(build_args);
    let mut stages: Vec<Stage> = Vec::new();
    for instruction in file.instructions {
        if instruction.keyword == "from" {
            stages.push(Stage {
                from: instruction,
                body: Vec::new(),
            });
            continue;
        }
        match stages.last_mut() {
            Some(stage) => stage.body.push(instruction),
            None if instruction.keyword == "arg" => global.declare_args(&instruction, escape, None),
            // The builder rejects anything else before the first FROM.
            None => {}
        }
    }

    let count = match target {
        None => stages.len(),
        Some(target) => {
            let wanted = target.to_ascii_lowercase();
            match stages
                .iter()
                .position(|s| s.name().as_deref() == Some(wanted.as_str()))
            {
                Some(index) => index + 1,
                None => return Err(format!("target stage `{target}` is not defined")),
            }
        }
    };

    let mut built: Vec<Built> = Vec::new();
    let mut patterns = Vec::new();
    for stage in &stages[..count] {
        let (env, triggers) = match global.expand(stage.image(), escape) {
            Ok(image) => {
                let image = image.to_ascii_lowercase();
                match built
                    .iter()
                    .rev()
                    .find(|b| b.name.as_deref() == Some(image.as_str()))
                {
                    Some(base) => (base.env.clone(), base.triggers.clone()),
                    None => (BTreeMap::new(), Vec::new()),
                }
            }
            // Could be any earlier stage: run every ONBUILD seen so far.
            Err(_) => (
                BTreeMap::new(),
                built
                    .iter()
                    .flat_map(|b| b.triggers.iter().cloned())
                    .collect(),
            ),
        };

        let mut scope = Scope {
            env,
            ..Scope::new(build_args)
        };
        let mut own_triggers = Vec::new();
        for trigger in &triggers {
            scope
                .dispatch(trigger, escape, &global, &mut patterns, &mut own_triggers)
                .map_err(|why| {
                    format!(
                        "{why} (ONBUILD run by the stage at line {})",
                        stage.from.line
                    )
                })?;
        }
        for instruction in &stage.body {
            scope.dispatch(
                instruction,
                escape,
                &global,
                &mut patterns,
                &mut own_triggers,
            )?;
        }
        built.push(Built {
            name: stage.name(),
            env: scope.env,
            triggers: own_triggers,
        });
    }
    Ok(patterns)
}

/// A `FROM` and the instructions up to the next one.
struct Stage {
    from: Instruction,
    body: Vec<Instruction>,
}

impl Stage {
    fn words(&self) -> Vec<&str> {
        whitespace_words(&self.from.args)
    }

    fn image(&self) -> &str {
        self.words().first().copied().unwrap_or("")
    }

    /// `FROM image AS name`; stage names are case-insensitive.
    fn name(&self) -> Option<String> {
        match self.words()[..] {
            [_, as_, name, ..] if as_.eq_ignore_ascii_case("as") => Some(name.to_ascii_lowercase()),
            _ => None,
        }
    }
}

/// What a later stage inherits from a built one.
struct Built {
    name: Option<String>,
    env: BTreeMap<String, Val>,
    triggers: Vec<Instruction>,
}

/// A variable's value as far as the Dockerfile tells.
#[derive(Debug, Clone)]
enum Val {
    Set(String),
    /// Declared by an `ARG` without a default and not given as a build arg: the
    /// builder expands it to nothing.
    Unset,
    /// Its value cannot be known here; the string says why.
    Unknown(String),
}

/// Build args that need no `ARG` declaration.
const PROXY_ARGS: [&str; 10] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// The variables visible at one point of the Dockerfile.
struct Scope<'a> {
    env: BTreeMap<String, Val>,
    args: BTreeMap<String, Val>,
    build_args: &'a BTreeMap<String, String>,
}

impl<'a> Scope<'a> {
    fn new(build_args: &'a BTreeMap<String, String>) -> Scope<'a> {
        Scope {
            env: BTreeMap::new(),
            args: BTreeMap::new(),
            build_args,
        }
    }

    fn lookup(&self, name: &str) -> Val {
        // ENV first: the builder puts the image config's Env before the build args,
        // and the first match wins.
        if let Some(value) = self.env.get(name).or_else(|| self.args.get(name)) {
            return value.clone();
        }
        if PROXY_ARGS.contains(&name)
            && let Some(value) = self.build_args.get(name)
        {
            return Val::Set(value.clone());
        }
        Val::Unknown(format!(
            "`{name}` is set by no ARG, build arg or ENV of this stage \
             (an ENV of the base image cannot be seen)"
        ))
    }

    fn expand(&self, word: &str, escape: char) -> Result<String, String> {
        let mut lexer = Lexer {
            chars: word.chars().collect(),
            pos: 0,
            escape,
            scope: self,
            unresolved: None,
        };
        let expanded = lexer
            .until(None)
            .map_err(|why| format!("cannot expand `{word}`: {why}"))?;
        match lexer.unresolved {
            Some(why) => Err(why),
            None => Ok(expanded),
        }
    }

    fn dispatch(
        &mut self,
        instruction: &Instruction,
        escape: char,
        global: &Scope,
        patterns: &mut Vec<String>,
        triggers: &mut Vec<Instruction>,
    ) -> Result<(), String> {
        match instruction.keyword.as_str() {
            "arg" => self.declare_args(instruction, escape, Some(global)),
            "env" => self.set_env(instruction, escape),
            "copy" | "add" => self.context_sources(instruction, escape, patterns)?,
            "onbuild" => triggers.extend(instruction.trigger.as_deref().cloned()),
            _ => {}
        }
        Ok(())
    }

    fn declare_args(&mut self, instruction: &Instruction, escape: char, global: Option<&Scope>) {
        for word in split_words(&instruction.args, escape) {
            let (name, default) = match word.split_once('=') {
                Some((name, default)) => (name.to_string(), Some(default)),
                None => (word.clone(), None),
            };
            let value = if let Some(given) = self.build_args.get(&name) {
                Val::Set(given.clone())
            } else if let Some(default) = default {
                match self.expand(default, escape) {
                    Ok(value) => Val::Set(value),
                    Err(why) => Val::Unknown(format!(
                        "ARG {name} (line {}) is unresolved: {why}",
                        instruction.line
                    )),
                }
            } else if let Some(value) = global.and_then(|g| g.args.get(&name)) {
                value.clone()
            } else {
                Val::Unset
            };
            self.args.insert(name, value);
        }
    }

    fn set_env(&mut self, instruction: &Instruction, escape: char) {
        // All values see the variables from before this instruction.
        let values: Vec<(String, Val)> = env_pairs(&instruction.args, escape)
            .into_iter()
            .map(|(key, raw)| {
                let value = match self.expand(&raw, escape) {
                    Ok(value) => Val::Set(value),
                    Err(why) => Val::Unknown(format!(
                        "ENV {key} (line {}) is unresolved: {why}",
                        instruction.line
                    )),
                };
                (key, value)
            })
            .collect();
        self.env.extend(values);
    }

    /// Adds the context patterns of one `COPY`/`ADD`.
    fn context_sources(
        &self,
        instruction: &Instruction,
        escape: char,
        out: &mut Vec<String>,
    ) -> Result<(), String> {
        let here = |why: String| {
            format!(
                "line {}: `{}`: {why}",
                instruction.line,
                instruction.short()
            )
        };
        if let Some(from) = instruction.flag("from") {
            // Another stage or an image. An empty or unresolvable name might mean the
            // context, so those keep their sources.
            if self.expand(from, escape).is_ok_and(|from| !from.is_empty()) {
                return Ok(());
            }
        }
        let (words, json) = match json_array(&instruction.args) {
            Some(words) => (words, true),
            None => (
                whitespace_words(&instruction.args)
                    .into_iter()
                    .map(String::from)
                    .collect(),
                false,
            ),
        };
        let Some((_destination, sources)) = words.split_last() else {
            return Ok(());
        };
        for source in sources {
            if !json && heredoc_word(source).is_some() {
                continue;
            }
            let path = self.expand(source, escape).map_err(here)?;
            if instruction.keyword == "add" && is_remote(&path) {
                continue;
            }
            match context_pattern(&path) {
                Some(pattern) => out.push(pattern),
                None => return Err(here(format!("source `{path}` is the whole build context"))),
            }
        }
        Ok(())
    }
}

/// `ENV k=v k2="v 2"` or the legacy `ENV k some value`.
fn env_pairs(args: &str, escape: char) -> Vec<(String, String)> {
    let words = split_words(args, escape);
    match words.first() {
        None => Vec::new(),
        Some(first) if !first.contains('=') => {
            let args = args.trim();
            match args.find(char::is_whitespace) {
                Some(at) => vec![(args[..at].to_string(), args[at..].trim_start().to_string())],
                None => Vec::new(),
            }
        }
        Some(_) => words
            .iter()
            .filter_map(|w| w.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

/// `ADD` sources the builder fetches instead of reading the context.
fn is_remote(source: &str) -> bool {
    ["http://", "https://", "git://", "ssh://", "git@"]
        .iter()
        .any(|scheme| source.starts_with(scheme))
}

/// The context pattern for an expanded source; `None` when it is the whole context.
fn context_pattern(source: &str) -> Option<String> {
    let cleaned = clean(source);
    if cleaned.is_empty() {
        return None;
    }
    if !contains_wildcards(&cleaned) {
        return Some(cleaned);
    }
    // Cut at the first segment we cannot mirror: `**` (Go reads it as `*`, but with
    // `--parents` BuildKit gives it its recursive meaning) or a malformed glob
    // (Go's Match then fails, the build fails, and guessing small is not worth it).
    let segments: Vec<&str> = cleaned.split('/').collect();
    let keep = segments
        .iter()
        .position(|s| s.contains("**") || parse_glob(s).is_none())
        .unwrap_or(segments.len());
    let mut pattern = segments[..keep].join("/");
    if keep < segments.len() && !contains_wildcards(&pattern) {
        // What is left was part of a glob, where `\x` means `x`.
        pattern = unescape(&pattern);
    }
    // A lone `*` matches every top-level entry: that is the whole context.
    if pattern.is_empty() || pattern.chars().all(|c| c == '*') {
        return None;
    }
    Some(pattern)
}

/// Cleans a path rooted at the context, as Go's `filepath.Clean("/" + p)` would,
/// without the leading `/`: `..` cannot climb out, `.` and empty segments go.
fn clean(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            segment => segments.push(segment),
        }
    }
    segments.join("/")
}

fn is_below(path: &str, dir: &str) -> bool {
    path.len() > dir.len() && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/'
}

fn unescape(pattern: &str) -> String {
    let mut out = String::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Word expansion, as the Dockerfile shell lexer does it for COPY/ADD/ENV/ARG.
// ---------------------------------------------------------------------------

struct Lexer<'s> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    scope: &'s Scope<'s>,
    /// The first variable that could not be resolved. Expansion goes on so that
    /// syntax errors still surface, and a `${X:-word}` whose word is not used does
    /// not count.
    unresolved: Option<String>,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        self.pos += usize::from(c.is_some());
        c
    }

    fn note(&mut self, why: String) {
        self.unresolved.get_or_insert(why);
    }

    /// Expands up to `stop` (consumed) or the end; `Err` is a syntax error.
    fn until(&mut self, stop: Option<char>) -> Result<String, String> {
        let mut out = String::new();
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                self.pos += 1;
                return Ok(out);
            }
            match c {
                '\'' => out.push_str(&self.single_quoted()?),
                '"' => out.push_str(&self.double_quoted()?),
                '$' => out.push_str(&self.dollar()?),
                c if c == self.escape => {
                    self.pos += 1;
                    out.extend(self.next());
                }
                c => {
                    self.pos += 1;
                    out.push(c);
                }
            }
        }
        match stop {
            Some(stop) => Err(format!("missing `{stop}`")),
            None => Ok(out),
        }
    }

    fn single_quoted(&mut self) -> Result<String, String> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.next() {
                None => return Err("missing closing `'`".into()),
                Some('\'') => return Ok(out),
                Some(c) => out.push(c),
            }
        }
    }

    fn double_quoted(&mut self) -> Result<String, String> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return Err("missing closing `\"`".into()),
                Some('"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some('$') => out.push_str(&self.dollar()?),
                Some(c) => {
                    self.pos += 1;
                    // Inside "", the escape only escapes `"`, `$` and itself.
                    if c == self.escape {
                        match self.peek() {
                            None => continue,
                            Some(n) if n == '"' || n == '$' || n == self.escape => {
                                self.pos += 1;
                                out.push(n);
                                continue;
                            }
                            Some(_) => {}
                        }
                    }
                    out.push(c);
                }
            }
        }
    }

    fn dollar(&mut self) -> Result<String, String> {
        self.pos += 1;
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(self.value(&name));
        }
        self.pos += 1;
        match self.peek() {
            None => return Err("missing `}`".into()),
            Some('{' | '}' | ':') => return Err("bad substitution".into()),
            Some(_) => {}
        }
        let name = self.name();
        match self.next() {
            Some('}') => Ok(self.value(&name)),
            Some(':') => match self.next() {
                Some(m @ ('-' | '+' | '?')) => self.modifier(&name, m, true),
                other => Err(format!(
                    "unsupported substitution `${{{name}:{}`",
                    other.map(String::from).unwrap_or_default()
                )),
            },
            Some(m @ ('-' | '+' | '?')) => self.modifier(&name, m, false),
            Some(other) => Err(format!("unsupported substitution `${{{name}{other}`")),
            None => Err("missing `}`".into()),
        }
    }

    /// `${name:-word}`, `${name-word}`, `${name:+word}`, `${name+word}`,
    /// `${name:?word}`, `${name?word}`.
    fn modifier(&mut self, name: &str, modifier: char, colon: bool) -> Result<String, String> {
        let outer = self.unresolved.take();
        let word = self.until(Some('}'))?;
        let word_unresolved = std::mem::replace(&mut self.unresolved, outer);
        let (present, value) = match self.scope.lookup(name) {
            Val::Unknown(why) => {
                self.note(why);
                return Ok(String::new());
            }
            Val::Set(value) => (!colon || !value.is_empty(), value),
            Val::Unset => (false, String::new()),
        };
        let use_word = match modifier {
            '-' => !present,
            '+' => present,
            _ if present => false,
            _ => return Err(format!("`{name}` is required: {word}")),
        };
        match (use_word, modifier) {
            (true, _) => {
                if let Some(why) = word_unresolved {
                    self.note(why);
                }
                Ok(word)
            }
            (false, '+') => Ok(String::new()),
            (false, _) => Ok(value),
        }
    }

    fn value(&mut self, name: &str) -> String {
        match self.scope.lookup(name) {
            Val::Set(value) => value,
            Val::Unset => String::new(),
            Val::Unknown(why) => {
                self.note(why);
                String::new()
            }
        }
    }

    /// A variable name: letters, digits and `_`; or digits; or one special parameter.
    fn name(&mut self) -> String {
        let mut name = String::new();
        match self.peek() {
            Some(c) if c.is_ascii_digit() => {
                while let Some(c) = self.peek().filter(char::is_ascii_digit) {
                    self.pos += 1;
                    name.push(c);
                }
            }
            Some(c) if "@*#?-$!".contains(c) => {
                self.pos += 1;
                name.push(c);
            }
            _ => {
                while let Some(c) = self.peek().filter(|c| c.is_alphanumeric() || *c == '_') {
                    self.pos += 1;
                    name.push(c);
                }
            }
        }
        name
    }
}

// ---------------------------------------------------------------------------
// Parsing: lines to instructions.
// ---------------------------------------------------------------------------

struct Dockerfile {
    escape: char,
    instructions: Vec<Instruction>,
}

/// One instruction, continuation lines joined, heredoc bodies dropped.
#[derive(Debug, Clone)]
struct Instruction {
    /// 1-based line where it starts.
    line: usize,
    /// Lower-cased: `copy`, `from`, ...
    keyword: String,
    /// Leading `--name[=value]` words, quotes removed.
    flags: Vec<String>,
    /// What follows the flags, unprocessed.
    args: String,
    /// The instruction of an `ONBUILD`.
    trigger: Option<Box<Instruction>>,
    /// The joined text, for diagnostics.
    text: String,
}

struct Heredoc {
    name: String,
    /// `<<-`: leading tabs are stripped, also before the terminator.
    chomp: bool,
}

fn parse(source: &str) -> Result<Dockerfile, String> {
    let source = source.strip_prefix('\u{feff}').unwrap_or(source);
    let lines: Vec<&str> = source.lines().collect();
    let mut escape = '\\';
    let mut directives_done = false;
    let mut seen = BTreeSet::new();
    let mut instructions = Vec::new();

    let mut next = 0;
    while next < lines.len() {
        let number = next + 1;
        let first = lines[next].trim_start();
        next += 1;
        if !directives_done {
            directives_done = !directive(first, number, &mut seen, &mut escape)?;
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

        let instruction = Instruction::parse(&text, number);
        for heredoc in instruction.heredocs() {
            loop {
                let Some(line) = lines.get(next) else {
                    return Err(format!(
                        "line {number}: heredoc `{}` is never terminated",
                        heredoc.name
                    ));
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
            }
        }
        instructions.push(instruction);
    }
    Ok(Dockerfile {
        escape,
        instructions,
    })
}

/// Reads `# key=value` at the top of the file. Returns whether the line was a
/// directive; the first line that is not ends the directives.
fn directive(
    line: &str,
    number: usize,
    seen: &mut BTreeSet<String>,
    escape: &mut char,
) -> Result<bool, String> {
    let Some((key, value)) = line.strip_prefix('#').and_then(|l| l.split_once('=')) else {
        return Ok(false);
    };
    let (key, value) = (key.trim(), value.trim());
    let well_formed = key.starts_with(|c: char| c.is_ascii_alphabetic())
        && key.chars().all(|c| c.is_ascii_alphanumeric())
        && !value.is_empty();
    let key = key.to_ascii_lowercase();
    if !well_formed || !matches!(key.as_str(), "escape" | "syntax" | "check") {
        return Ok(false);
    }
    if !seen.insert(key.clone()) {
        return Err(format!(
            "line {number}: only one `{key}` parser directive is allowed"
        ));
    }
    if key == "escape" {
        *escape = match value {
            "\\" => '\\',
            "`" => '`',
            other => return Err(format!("line {number}: invalid escape character `{other}`")),
        };
    }
    Ok(true)
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

impl Instruction {
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
            keyword,
            flags,
            args: args.trim().to_string(),
            trigger,
            text: text.to_string(),
        }
    }

    /// The value of `--name=value`.
    fn flag(&self, name: &str) -> Option<&str> {
        self.flags
            .iter()
            .find_map(|f| f.strip_prefix("--")?.strip_prefix(name)?.strip_prefix('='))
    }

    /// The heredocs whose bodies follow this instruction, in order.
    fn heredocs(&self) -> Vec<Heredoc> {
        let target = self.trigger.as_deref().unwrap_or(self);
        if !matches!(target.keyword.as_str(), "run" | "copy" | "add")
            || json_array(&target.args).is_some()
        {
            return Vec::new();
        }
        split_words(&self.text, '\\')
            .iter()
            .filter_map(|w| heredoc_word(w))
            .collect()
    }

    fn short(&self) -> String {
        const MAX: usize = 100;
        match self.text.char_indices().nth(MAX) {
            Some((at, _)) => format!("{}…", &self.text[..at]),
            None => self.text.clone(),
        }
    }
}

/// `<<EOF`, `<<-EOF`, `<<"EOF"`, `2<<EOF`: a word that opens a heredoc.
fn heredoc_word(word: &str) -> Option<Heredoc> {
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
    (!name.is_empty()).then_some(Heredoc { name, chomp })
}

/// Removes shell quotes and `\` escapes, leaving `$` alone.
fn unquote(word: &str) -> String {
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

/// Splits the leading `--flag[=value]` words off; a lone `--` ends them.
fn split_flags(rest: &str) -> (Vec<String>, &str) {
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
        flags.push(word);
    }
}

/// `["a b", "c"]`: the JSON form of COPY/ADD/RUN.
fn json_array(args: &str) -> Option<Vec<String>> {
    let args = args.trim_start();
    if !args.starts_with('[') {
        return None;
    }
    serde_json::from_str(args).ok()
}

/// Shell-form COPY/ADD/FROM arguments: split on blanks, nothing else.
fn whitespace_words(args: &str) -> Vec<&str> {
    args.split([' ', '\t', '\u{b}', '\u{c}', '\r'])
        .filter(|w| !w.is_empty())
        .collect()
}

/// Splits on blanks outside quotes, keeping quotes and escapes in the words (the
/// lexer removes them later). Used for ARG, ENV and heredoc detection.
fn split_words(text: &str, escape: char) -> Vec<String> {
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

// ---------------------------------------------------------------------------
// Matching: Go's filepath.Match, plus "can anything below this match?".
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    Literal(String),
    Glob(Vec<Token>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Char(char),
    /// `?`: one character but `/`.
    AnyChar,
    /// `*`: any run of characters without `/`.
    Star,
    /// `[a-z]`, `[^a-z]`. Go lets a class match `/`.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl Pattern {
    fn new(pattern: &str) -> Pattern {
        match contains_wildcards(pattern)
            .then(|| parse_glob(pattern))
            .flatten()
        {
            Some(tokens) => Pattern::Glob(tokens),
            None => Pattern::Literal(pattern.to_string()),
        }
    }

    /// `path` or one of its ancestors matches (the builder copies a matched
    /// directory whole).
    fn includes(&self, path: &str) -> bool {
        match self {
            Pattern::Literal(literal) => path == literal || is_below(path, literal),
            Pattern::Glob(tokens) => {
                let chars: Vec<char> = path.chars().collect();
                (0..chars.len())
                    .filter(|&i| chars[i] == '/')
                    .chain([chars.len()])
                    .any(|end| glob_match(tokens, &chars[..end]))
            }
        }
    }

    fn may_contain(&self, dir: &str) -> bool {
        if self.includes(dir) {
            return true;
        }
        match self {
            Pattern::Literal(literal) => is_below(literal, dir),
            Pattern::Glob(tokens) => {
                let chars: Vec<char> = dir.chars().chain(['/']).collect();
                glob_could_extend(tokens, &chars)
            }
        }
    }
}

impl Token {
    fn matches(&self, c: char) -> bool {
        match self {
            Token::Char(x) => *x == c,
            Token::AnyChar => c != '/',
            Token::Star => false,
            Token::Class { negated, ranges } => {
                ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
            }
        }
    }
}

/// The builder's test for a glob source (moby `containsWildcards`): an unescaped
/// `*`, `?` or `[`.
fn contains_wildcards(source: &str) -> bool {
    let mut chars = source.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '*' | '?' | '[' => return true,
            _ => {}
        }
    }
    false
}

/// Parses Go `filepath.Match` syntax; `None` where Go reports `ErrBadPattern`.
fn parse_glob(pattern: &str) -> Option<Vec<Token>> {
    let mut tokens = Vec::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        let token = match c {
            '*' if tokens.last() == Some(&Token::Star) => continue,
            '*' => Token::Star,
            '?' => Token::AnyChar,
            '\\' => Token::Char(chars.next()?),
            '[' => {
                let negated = chars.next_if_eq(&'^').is_some();
                let mut ranges = Vec::new();
                loop {
                    if !ranges.is_empty() && chars.next_if_eq(&']').is_some() {
                        break;
                    }
                    let lo = class_char(&mut chars)?;
                    let hi = match chars.next_if_eq(&'-') {
                        Some(_) => class_char(&mut chars)?,
                        None => lo,
                    };
                    ranges.push((lo, hi));
                }
                Token::Class { negated, ranges }
            }
            c => Token::Char(c),
        };
        tokens.push(token);
    }
    Some(tokens)
}

/// One possibly escaped character of a class; a bare `-` or `]` is malformed.
fn class_char(chars: &mut impl Iterator<Item = char>) -> Option<char> {
    match chars.next()? {
        '-' | ']' => None,
        '\\' => chars.next(),
        c => Some(c),
    }
}

/// Whole-name match. This explores every way to place the stars, where Go's Match
/// commits to the first place a chunk fits, so it matches at least what Go does.
fn glob_match(tokens: &[Token], name: &[char]) -> bool {
    glob_states(tokens, name)[tokens.len()]
}

/// Whether some name starting with `prefix` can match: the prefix leaves the
/// pattern in some live state, and the rest of the pattern is taken to match
/// something.
fn glob_could_extend(tokens: &[Token], prefix: &[char]) -> bool {
    glob_states(tokens, prefix).contains(&true)
}

/// Runs the pattern as an automaton over `name`: `states[i]` says whether the first
/// `i` tokens can have consumed all of it. Linear in pattern times name length.
fn glob_states(tokens: &[Token], name: &[char]) -> Vec<bool> {
    // A star can match nothing, so reaching it also reaches what follows.
    let skip_stars = |states: &mut Vec<bool>| {
        for (i, token) in tokens.iter().enumerate() {
            if states[i] && *token == Token::Star {
                states[i + 1] = true;
            }
        }
    };
    let mut states = vec![false; tokens.len() + 1];
    states[0] = true;
    skip_stars(&mut states);
    for &c in name {
        let mut next = vec![false; tokens.len() + 1];
        for (i, token) in tokens.iter().enumerate().filter(|&(i, _)| states[i]) {
            match token {
                Token::Star if c != '/' => next[i] = true,
                Token::Star => {}
                token if token.matches(c) => next[i + 1] = true,
                _ => {}
            }
        }
        skip_stars(&mut next);
        states = next;
    }
    states
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn sources_of(dockerfile: &str, build_args: &[(&str, &str)], target: Option<&str>) -> Sources {
        match reach(dockerfile, &args(build_args), target) {
            Reach::Sources(sources) => sources,
            Reach::All { why } => panic!("expected sources, got All: {why}"),
        }
    }

    fn sources(dockerfile: &str) -> Sources {
        sources_of(dockerfile, &[], None)
    }

    fn patterns(dockerfile: &str) -> Vec<String> {
        sources(dockerfile).patterns().to_vec()
    }

    fn whole_context(dockerfile: &str) -> String {
        whole_context_with(dockerfile, &[], None)
    }

    fn whole_context_with(
        dockerfile: &str,
        build_args: &[(&str, &str)],
        target: Option<&str>,
    ) -> String {
        match reach(dockerfile, &args(build_args), target) {
            Reach::All { why } => why,
            Reach::Sources(sources) => panic!("expected All, got {:?}", sources.patterns()),
        }
    }

    #[test]
    fn realistic_monorepo_service_reaches_only_its_own_files() {
        let dockerfile = "\
# syntax=docker/dockerfile:1
FROM rust:1.80 AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY libs/common /src/libs/common
COPY services/payments/ /src/
RUN cargo build --release

FROM debian:bookworm-slim
COPY --from=build /src/target/release/payments /usr/local/bin/
CMD [\"payments\"]
";
        let s = sources(dockerfile);
        assert_eq!(
            s.patterns(),
            [
                "Cargo.lock",
                "Cargo.toml",
                "libs/common",
                "services/payments"
            ]
        );
        assert!(s.includes("services/payments/src/main.rs"));
        assert!(s.includes("libs/common"));
        assert!(s.includes("Cargo.toml"));
        assert!(!s.includes("services/orders/src/main.rs"));
        assert!(!s.includes("libs/commonx/lib.rs"));
        assert!(!s.includes("libs"));
        assert!(!s.includes("README.md"));
        assert!(s.may_contain(""));
        assert!(s.may_contain("libs"));
        assert!(s.may_contain("services"));
        assert!(s.may_contain("services/payments/src"));
        assert!(!s.may_contain("services/orders"));
        assert!(!s.may_contain("docs"));
    }

    #[test]
    fn copy_from_another_stage_or_image_is_not_the_context() {
        let dockerfile = "\
FROM golang:1.22 AS build
COPY go.mod go.sum /src/
FROM alpine
ARG STAGE=build
COPY --from=build /out/app /app
COPY --from=nginx:1.27 /etc/nginx/nginx.conf /etc/nginx/
COPY --from=0 /src/go.mod /tmp/
COPY --chown=1:1 --from=${STAGE} /out/x /x
COPY config.yaml /etc/app/
";
        assert_eq!(patterns(dockerfile), ["config.yaml", "go.mod", "go.sum"]);
    }

    #[test]
    fn every_stage_counts_without_a_target() {
        let dockerfile = "\
FROM node:20 AS web
COPY web/ /web/
FROM golang:1.22 AS api
COPY api/ /api/
FROM alpine AS test
COPY tests/ /tests/
";
        assert_eq!(patterns(dockerfile), ["api", "tests", "web"]);
    }

    #[test]
    fn a_target_counts_every_stage_up_to_it_in_file_order() {
        // The classic builder runs stages[..=target]: `web` runs although `api`
        // does not depend on it; `test` does not run.
        let dockerfile = "\
FROM node:20 AS web
COPY web/ /web/
FROM golang:1.22 AS API
COPY api/ /api/
FROM alpine AS test
COPY tests/ /tests/
";
        let s = sources_of(dockerfile, &[], Some("api"));
        assert_eq!(s.patterns(), ["api", "web"]);
        let s = sources_of(dockerfile, &[], Some("Web"));
        assert_eq!(s.patterns(), ["web"]);
        let why = whole_context_with(dockerfile, &[], Some("lint"));
        assert!(why.contains("`lint`"), "{why}");
    }

    #[test]
    fn heredoc_bodies_are_not_instructions_and_heredoc_sources_not_files() {
        let dockerfile = "\
FROM alpine
RUN <<EOF
COPY . /everything
echo hi
EOF
COPY <<EOF /etc/config
FROM scratch
ADD . /
EOF
COPY <<-\"EOT\" app.conf /etc/
\tCOPY . /
\tEOT
RUN <<A cat - && sh <<'B'
COPY . /a
A
COPY . /b
B
ADD <<EOF1 <<EOF2 /dst/
ADD . /c
EOF1
ADD . /d
EOF2
COPY real.txt /real
";
        assert_eq!(patterns(dockerfile), ["app.conf", "real.txt"]);
    }

    #[test]
    fn an_unterminated_heredoc_reaches_everything() {
        let why = whole_context("FROM alpine\nRUN <<EOF\necho hi\n");
        assert!(why.contains("line 2") && why.contains("EOF"), "{why}");
    }

    #[test]
    fn json_form_keeps_spaces_and_flags() {
        let dockerfile = r#"
FROM alpine
COPY ["my dir/a b.txt", "./docs/", "/dst/"]
COPY --chown=1:1 [ "x y" , "/z" ]
ADD ["<<EOF", "/literal/"]
"#;
        assert_eq!(
            patterns(dockerfile),
            ["<<EOF", "docs", "my dir/a b.txt", "x y"]
        );
    }

    #[test]
    fn escape_directive_switches_continuation_to_backtick() {
        let dockerfile = "\
# escape=`
FROM alpine
COPY services/a `
     libs/x /app/
COPY back\\slash /b/
";
        assert_eq!(
            patterns(dockerfile),
            ["back\\slash", "libs/x", "services/a"]
        );
    }

    #[test]
    fn directives_after_a_comment_are_plain_comments() {
        let dockerfile = "\
# a comment first
# escape=`
FROM alpine
COPY a `
  b /c/
";
        // `\` is still the escape: the backtick line is complete, `b /c/` is an
        // unknown instruction.
        assert_eq!(patterns(dockerfile), ["a"]);
    }

    #[test]
    fn syntax_and_escape_directives_in_any_order() {
        let dockerfile =
            "# syntax=docker/dockerfile:1\n# ESCAPE = `\nFROM alpine\nCOPY a `\n b /c/\n";
        assert_eq!(patterns(dockerfile), ["a", "b"]);
        let why = whole_context("# escape=`\n# escape=\\\nFROM alpine\n");
        assert!(why.contains("only one"), "{why}");
    }

    #[test]
    fn continuations_skip_comment_and_blank_lines() {
        let dockerfile = "\
FROM alpine
# COPY . /ignored
   # indented comment COPY . /
COPY \\
    # a comment inside the continuation
    libs/one \\

    libs/two \\
    /dst/
RUN echo done \\\\
COPY libs/three /x
";
        // `\\` at the end is an escaped escape, not a continuation.
        assert_eq!(patterns(dockerfile), ["libs/one", "libs/three", "libs/two"]);
    }

    #[test]
    fn crlf_and_byte_order_mark() {
        let dockerfile = "\u{feff}FROM alpine\r\nCOPY a \\\r\n b /c/\r\n";
        assert_eq!(patterns(dockerfile), ["a", "b"]);
    }

    #[test]
    fn flags_other_than_from_are_ignored_and_exclude_widens() {
        let dockerfile = "\
FROM alpine
COPY --chown=app:app --chmod=755 --link --parents --exclude=*.md src/ /app/
ADD --checksum=sha256:0123 --keep-git-dir=true vendor.tar /v/
COPY --exclude=node_modules --link=false web /web
COPY -- --weird /w/
";
        assert_eq!(
            patterns(dockerfile),
            ["--weird", "src", "vendor.tar", "web"]
        );
    }

    #[test]
    fn add_of_a_url_or_git_remote_is_not_the_context() {
        let dockerfile = "\
FROM alpine
ADD https://example.com/a.tgz /a
ADD http://example.com/b /b
ADD git@github.com:org/repo.git /repo
ADD git://example.com/repo.git /r
ADD https://github.com/org/repo.git#v1.0 /r2
ADD local.tgz https://example.com/c.tgz /dst/
";
        assert_eq!(patterns(dockerfile), ["local.tgz"]);
    }

    #[test]
    fn onbuild_copy_runs_in_child_builds_not_this_one() {
        let dockerfile = "\
FROM alpine
ONBUILD COPY . /app
ONBUILD ADD src /src
COPY a /a
";
        assert_eq!(patterns(dockerfile), ["a"]);
    }

    #[test]
    fn onbuild_runs_in_a_later_stage_built_from_this_one() {
        let dockerfile = "\
FROM alpine AS base
ENV PART=child
ONBUILD COPY ${PART}-src /app
FROM base
COPY x /x
";
        assert_eq!(patterns(dockerfile), ["child-src", "x"]);
        let why = whole_context("FROM alpine AS base\nONBUILD COPY . /app\nFROM base\n");
        assert!(why.contains("ONBUILD"), "{why}");
    }

    #[test]
    fn arg_default_drives_the_path_and_a_build_arg_overrides_it() {
        let dockerfile = "\
FROM alpine
ARG SERVICE=orders
COPY services/${SERVICE} .
";
        assert_eq!(patterns(dockerfile), ["services/orders"]);
        let s = sources_of(dockerfile, &[("SERVICE", "payments")], None);
        assert_eq!(s.patterns(), ["services/payments"]);
        assert!(s.includes("services/payments/main.go"));
        assert!(!s.includes("services/orders/main.go"));
    }

    #[test]
    fn global_arg_needs_redeclaring_inside_the_stage() {
        let redeclared = "\
ARG SERVICE=orders
FROM alpine
ARG SERVICE
COPY services/$SERVICE/ /app/
";
        assert_eq!(patterns(redeclared), ["services/orders"]);
        let s = sources_of(redeclared, &[("SERVICE", "billing")], None);
        assert_eq!(s.patterns(), ["services/billing"]);

        let not_redeclared = "ARG SERVICE=orders\nFROM alpine\nCOPY services/$SERVICE/ /app/\n";
        let why = whole_context(not_redeclared);
        assert!(why.contains("line 3") && why.contains("SERVICE"), "{why}");
    }

    #[test]
    fn global_args_resolve_from_and_each_other() {
        let dockerfile = "\
ARG ROOT=services
ARG SVC=${ROOT}/api
ARG BASE=builder
FROM alpine AS builder
ENV OUT=dist
FROM ${BASE}
ARG SVC
COPY $SVC/$OUT /app/
";
        assert_eq!(patterns(dockerfile), ["services/api/dist"]);
    }

    #[test]
    fn default_and_alternative_substitutions() {
        let dockerfile = "\
FROM alpine
ARG UNSET
ARG EMPTY=
ARG SET=x
COPY ${UNSET:-fallback} ${SET:+alt} ${UNSET:+never}z ${EMPTY-kept}e ${EMPTY:-dflt} /d/
COPY ${SET:-$NOT_NEEDED} /e/
";
        assert_eq!(
            patterns(dockerfile),
            ["alt", "dflt", "e", "fallback", "x", "z"]
        );
        let why = whole_context("FROM alpine\nARG UNSET\nCOPY ${UNSET:-$NOWHERE} /d/\n");
        assert!(why.contains("NOWHERE"), "{why}");
    }

    #[test]
    fn env_resolves_shadows_arg_and_is_inherited_by_child_stages() {
        let dockerfile = "\
FROM alpine AS base
ARG X=from-arg
ENV X=from-env APP_DIR=apps/web
ENV LEGACY some/dir
COPY $X $APP_DIR/package.json $LEGACY /d/
FROM base
COPY ${APP_DIR}/src /src
";
        assert_eq!(
            patterns(dockerfile),
            [
                "apps/web/package.json",
                "apps/web/src",
                "from-env",
                "some/dir"
            ]
        );
    }

    #[test]
    fn an_unresolvable_variable_reaches_everything() {
        let why = whole_context("FROM golang\nCOPY ${GOPATH}/src/app /app\n");
        assert!(why.contains("line 2") && why.contains("GOPATH"), "{why}");
        let why = whole_context("FROM alpine\nENV D=$HOME/x\nCOPY $D /d\n");
        assert!(why.contains("HOME"), "{why}");
        let why = whole_context("FROM alpine\nARG X=a\nCOPY ${X#a} /d\n");
        assert!(why.contains("unsupported"), "{why}");
    }

    #[test]
    fn quotes_and_escapes_in_sources() {
        let dockerfile = "\
FROM alpine
ARG SVC=api
COPY \"services/$SVC\" 'lit$X' \\$HOME /d/
";
        assert_eq!(patterns(dockerfile), ["$HOME", "lit$X", "services/api"]);
    }

    #[test]
    fn sources_are_cleaned_within_the_context() {
        let dockerfile = "\
FROM alpine
COPY /abs/path ./rel/path ../../escape a/./b/../c dir/ dir2/. /dst/
";
        assert_eq!(
            patterns(dockerfile),
            ["a/c", "abs/path", "dir", "dir2", "escape", "rel/path"]
        );
    }

    #[test]
    fn a_source_that_is_the_context_root_reaches_everything() {
        for source in [".", "./", "/", "..", "a/..", "../.", "*", "**", "**/*.go"] {
            let why = whole_context(&format!("FROM alpine\nCOPY {source} /app/\n"));
            assert!(why.contains("line 2"), "{source}: {why}");
        }
    }

    #[test]
    fn star_and_question_mark_do_not_cross_slashes() {
        let s = sources("FROM alpine\nCOPY services/*/package.json *.txt file?.cfg /x/\n");
        assert!(s.includes("services/a/package.json"));
        assert!(!s.includes("services/a/b/package.json"));
        assert!(!s.includes("services/package.json"));
        assert!(s.includes("a.txt"));
        assert!(!s.includes("dir/a.txt"));
        assert!(s.includes("file1.cfg"));
        assert!(!s.includes("file10.cfg"));
        assert!(!s.includes("file/.cfg"));
        assert!(s.may_contain("services"));
        assert!(s.may_contain("services/a"));
        assert!(!s.may_contain("services/a/b"));
        assert!(!s.may_contain("dir"));
    }

    #[test]
    fn character_classes_follow_go() {
        let s = sources("FROM alpine\nCOPY conf[0-9].yml [^.]*.lock file[!a].txt /x/\n");
        assert!(s.includes("conf3.yml"));
        assert!(!s.includes("confa.yml"));
        assert!(s.includes("yarn.lock"));
        assert!(!s.includes(".lock"));
        // Go negates with `^` only: `[!a]` is the set {!, a}.
        assert!(s.includes("file!.txt"));
        assert!(s.includes("filea.txt"));
        assert!(!s.includes("fileb.txt"));
    }

    #[test]
    fn backslash_escapes_a_wildcard_in_a_glob() {
        // The Dockerfile lexer turns `\\` into `\`, which filepath.Match then reads
        // as an escape.
        let s = sources("FROM alpine\nCOPY weird\\\\*name* /x/\n");
        assert_eq!(s.patterns(), ["weird\\*name*"]);
        assert!(s.includes("weird*name1"));
        assert!(!s.includes("weirdXname1"));
    }

    #[test]
    fn a_matched_directory_brings_everything_below_it() {
        let s = sources("FROM alpine\nCOPY lib? /l/\n");
        assert!(s.includes("lib1"));
        assert!(s.includes("lib1/deep/file.rs"));
        assert!(s.may_contain("lib1/deep"));
        assert!(!s.includes("lib12/file.rs"));
        assert!(!s.may_contain("lib12"));
    }

    #[test]
    fn globs_we_cannot_mirror_are_cut_to_their_directory() {
        let s = sources("FROM alpine\nCOPY --parents src/**/*.go conf/[abc /app/\n");
        assert_eq!(s.patterns(), ["conf", "src"]);
        assert!(s.includes("src/a/b/c.go"));
        assert!(s.includes("conf/x"));
    }

    #[test]
    fn nested_literals_and_path_normalisation() {
        let s = sources("FROM alpine\nCOPY libs/common/src /x\n");
        assert!(s.may_contain("libs"));
        assert!(s.may_contain("libs/common"));
        assert!(s.may_contain("./libs/common/"));
        assert!(!s.may_contain("libs/other"));
        assert!(!s.may_contain("libs/commonx"));
        assert!(!s.includes("libs/common"));
        assert!(s.includes("libs/common/src"));
        assert!(s.includes("./libs/common/src/"));
        assert!(s.includes("libs/common/src/a/b.rs"));
        assert!(s.may_contain("libs/common/src/a"));
    }

    #[test]
    fn redundant_patterns_are_dropped() {
        let s = sources("FROM alpine\nCOPY libs /a\nCOPY libs/common libs/*/x libsx /b/\n");
        assert_eq!(s.patterns(), ["libs", "libsx"]);
    }

    #[test]
    fn nothing_copied_means_nothing_reached() {
        let s = sources("FROM alpine\nRUN echo hi\nCOPY --from=alpine /etc/hosts /h\n");
        assert!(s.patterns().is_empty());
        assert!(!s.includes("anything"));
        assert!(!s.may_contain(""));
    }

    #[test]
    fn go_match_semantics() {
        let glob = |p: &str, name: &str| {
            let tokens = parse_glob(p).expect("valid pattern");
            glob_match(&tokens, &name.chars().collect::<Vec<_>>())
        };
        assert!(glob("a*b*c", "axxbyyc"));
        assert!(!glob("a*c", "ab/c"));
        assert!(glob("a[/]b", "a/b"));
        assert!(glob("[a-c]x", "bx"));
        assert!(glob("[\\]]", "]"));
        assert!(glob("\\[x", "[x"));
        // Many stars against a long name stay linear.
        let long = format!("{}c", "a".repeat(500));
        assert!(!glob(&"*a".repeat(20), &long));
        let extend = |p: &str, prefix: &str| {
            let tokens = parse_glob(p).expect("valid pattern");
            glob_could_extend(&tokens, &prefix.chars().collect::<Vec<_>>())
        };
        assert!(extend("src/*/x", "src/"));
        assert!(extend("src/*/x", "src/lib/"));
        assert!(!extend("src/*/x", "src/lib/y/"));
        assert!(!extend("src/*/x", "docs/"));
        for bad in ["[", "[]", "[^]", "[a-]", "[-a]", "a\\", "[a"] {
            assert!(parse_glob(bad).is_none(), "{bad}");
        }
    }
    #[test]
    fn heredocs_under_onbuild_and_not_in_json_form() {
        let dockerfile = "\
FROM alpine
ONBUILD RUN <<EOF
COPY . /
EOF
RUN [\"sh\", \"-c\", \"cat <<EOF\"]
COPY b /b
";
        assert_eq!(patterns(dockerfile), ["b"]);
    }

    #[test]
    fn an_env_that_cannot_be_resolved_shadows_a_known_arg() {
        let why = whole_context("FROM alpine\nARG D=ok\nENV D=$HOME\nCOPY $D /d\n");
        assert!(why.contains("ENV D (line 3)"), "{why}");
    }
}
