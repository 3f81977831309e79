//! Bearer tokens: reading a registry's `WWW-Authenticate: Bearer` challenge,
//! and keeping the tokens it leads to, one per scope.
//!
//! The token flow is <https://distribution.github.io/distribution/spec/auth/token/>:
//! a 401 names a `realm` (the token server) and a `service`; a `GET` of the
//! realm with that service and the scope we need, with our basic
//! credentials if we have any, returns the token to send as
//! `Authorization: Bearer`. Tokens are cached per scope and per generation
//! of the credentials ([`crate::Snapshot::generation`]): after a credential
//! refresh, a token fetched with the old credentials is not used again.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::secret::Secret;

/// The parameters of the first `Bearer` challenge among `headers`
/// (`WWW-Authenticate` values), keys lower-cased; `None` when there is none.
pub(crate) fn bearer_challenge<'a>(
    headers: impl IntoIterator<Item = &'a str>,
) -> Option<HashMap<String, String>> {
    headers
        .into_iter()
        .find(|h| {
            h.get(..7)
                .is_some_and(|scheme| scheme.eq_ignore_ascii_case("bearer "))
        })
        .map(parse_challenge)
}

/// `Scheme key="value",key=value` → its parameters.
pub(crate) fn parse_challenge(header: &str) -> HashMap<String, String> {
    let rest = header.split_once(' ').map(|(_, r)| r).unwrap_or("");
    let mut out = HashMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        let key: String = chars
            .by_ref()
            .take_while(|c| *c != '=')
            .collect::<String>()
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_string();
        if key.is_empty() {
            break;
        }
        let value: String = if chars.peek() == Some(&'"') {
            chars.next();
            let v = chars.by_ref().take_while(|c| *c != '"').collect();
            while chars.peek().is_some_and(|c| *c != ',') {
                chars.next();
            }
            chars.next();
            v
        } else {
            chars.by_ref().take_while(|c| *c != ',').collect()
        };
        out.insert(key.to_ascii_lowercase(), value);
    }
    out
}

/// Bearer tokens by scope, each with the credential generation it was
/// fetched with.
#[derive(Default)]
pub(crate) struct TokenCache {
    tokens: Mutex<HashMap<String, (u64, Secret)>>,
}

impl TokenCache {
    /// The token for `scope`, if one was fetched with credentials of
    /// `generation`.
    pub(crate) fn get(&self, scope: &str, generation: u64) -> Option<Secret> {
        let tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens
            .get(scope)
            .filter(|(g, _)| *g == generation)
            .map(|(_, token)| token.clone())
    }

    pub(crate) fn insert(&self, scope: &str, generation: u64, token: Secret) {
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens.insert(scope.to_string(), (generation, token));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenges() {
        let p = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull""#,
        );
        assert_eq!(p["realm"], "https://auth.docker.io/token");
        assert_eq!(p["service"], "registry.docker.io");
        assert_eq!(p["scope"], "repository:a/b:pull");

        // Commas inside quotes, unquoted values, the scheme in any case,
        // and a Basic challenge first.
        let p = bearer_challenge([
            r#"Basic realm="x""#,
            r#"bearer Realm="https://t/token", scope="repository:a/b:pull,push",service=reg"#,
        ])
        .unwrap();
        assert_eq!(p["realm"], "https://t/token");
        assert_eq!(p["scope"], "repository:a/b:pull,push");
        assert_eq!(p["service"], "reg");
        assert!(bearer_challenge([r#"Basic realm="x""#]).is_none());
        assert!(bearer_challenge(["Bear"]).is_none());
    }

    #[test]
    fn tokens_are_kept_per_scope_and_generation() {
        let cache = TokenCache::default();
        cache.insert("repository:a:pull", 0, Secret::new("t0"));
        assert_eq!(cache.get("repository:a:pull", 0).unwrap().expose(), "t0");
        assert!(cache.get("repository:a:pull,push", 0).is_none());
        assert!(
            cache.get("repository:a:pull", 1).is_none(),
            "fetched with old credentials"
        );
    }
}
