//! Variables and word expansion, as the Dockerfile shell lexer does it for
//! `COPY`/`ADD`/`ENV`/`ARG`.
//!
//! - An `ENV` of the stage (or of a stage it is built `FROM`) shadows an `ARG`; an
//!   `ARG` takes the build arg, else its own default, else the default of the global
//!   `ARG` of that name. Global `ARG`s are visible only in `FROM` unless redeclared.
//! - A variable set nowhere in the Dockerfile may come from the base image, which we
//!   cannot see, so expanding it fails with the reason rather than guessing empty.

use std::collections::BTreeMap;

use crate::parse::{Instruction, split_words};

/// A variable's value as far as the Dockerfile tells.
#[derive(Debug, Clone)]
pub(crate) enum Val {
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
pub(crate) struct Scope<'a> {
    pub(crate) env: BTreeMap<String, Val>,
    pub(crate) args: BTreeMap<String, Val>,
    build_args: &'a BTreeMap<String, String>,
}

impl<'a> Scope<'a> {
    pub(crate) fn new(build_args: &'a BTreeMap<String, String>) -> Scope<'a> {
        Scope::with_env(build_args, BTreeMap::new())
    }

    /// A stage's scope, starting with the `ENV` it inherits.
    pub(crate) fn with_env(
        build_args: &'a BTreeMap<String, String>,
        env: BTreeMap<String, Val>,
    ) -> Scope<'a> {
        Scope {
            env,
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

    /// Expands one word; `Err` says which variable is unknown or what is malformed.
    pub(crate) fn expand(&self, word: &str, escape: char) -> Result<String, String> {
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

    /// Declares the variables of an `ARG`; `global` is the scope of the global
    /// `ARG`s when inside a stage.
    pub(crate) fn declare_args(
        &mut self,
        instruction: &Instruction,
        escape: char,
        global: Option<&Scope>,
    ) {
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

    pub(crate) fn set_env(&mut self, instruction: &Instruction, escape: char) {
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
