//! Credentials in types that cannot be printed by accident: `Debug` and
//! `Display` of a [`Secret`] show `<redacted>`, and so do those of the
//! [`Credentials`] that hold one; the value is only reachable through
//! [`Secret::expose`], at the one place that sends it.

use std::fmt;

use base64::Engine as _;

/// A password or token. Printing it shows `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A registry login: user name and password (for ECR, `AWS` and the token).
/// `Display` shows `user:<redacted>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: Secret,
}

impl Credentials {
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials {
            username: username.into(),
            password: Secret::new(password),
        }
    }
}

impl fmt::Display for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.username, self.password)
    }
}

/// Decodes a base64 `user:password` pair, as ECR tokens and Docker config
/// `auth` fields are written. `None` when it is not one.
pub fn decode_basic(encoded: &str) -> Option<Credentials> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (user, password) = text.split_once(':')?;
    Some(Credentials::new(user, password))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_printed() {
        let c = Credentials::new("AWS", "hunter2");
        assert!(!format!("{c:?}").contains("hunter2"));
        assert!(!format!("{c}").contains("hunter2"));
        assert_eq!(format!("{c}"), "AWS:<redacted>");
        assert!(!format!("{}", c.password).contains("hunter2"));
        assert_eq!(c.password.expose(), "hunter2");
    }

    #[test]
    fn basic_pairs() {
        let c = decode_basic("dTpwYXNz\n").unwrap();
        assert_eq!((c.username.as_str(), c.password.expose()), ("u", "pass"));
        // The password may itself hold colons; only the first one splits.
        let c = decode_basic("QVdTOmE6Yg==").unwrap();
        assert_eq!((c.username.as_str(), c.password.expose()), ("AWS", "a:b"));
        assert!(decode_basic("not base64!").is_none());
        assert!(decode_basic("bm9jb2xvbg==").is_none(), "no colon");
    }
}
