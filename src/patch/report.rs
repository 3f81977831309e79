//! What a patch did to one manifest file, and what it could not do: the
//! services pinned there and how, the services the file does not deploy,
//! and warnings (an image that looks like a service's but belongs to none, a
//! chart that never reads the digest, `global.imageRegistry`, a remote
//! kustomize base). Nothing is silent: every patch ends with this report,
//! and the results file keeps it.

use std::collections::BTreeMap;

use serde::Serialize;

/// How a service's image is pinned in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum How {
    /// `repository@digest`.
    Digest,
    /// `repository:tag@digest`.
    TagAndDigest,
    /// `repository:<content tag>`: the chart never reads the digest, so
    /// the tag that names exactly these inputs pins it.
    ContentTag,
}

impl How {
    pub(crate) fn words(self) -> &'static str {
        match self {
            How::Digest => "digest",
            How::TagAndDigest => "tag+digest",
            How::ContentTag => "content tag",
        }
    }
}

/// The report of one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FileReport {
    /// Each service pinned here, and how.
    pub(crate) pinned: BTreeMap<String, How>,
    /// Services whose images this file does not hold.
    pub(crate) not_deployed: Vec<String>,
    pub(crate) warnings: Vec<String>,
}

impl FileReport {
    pub(crate) fn pin(&mut self, service: &str, how: How) {
        self.pinned.insert(service.to_string(), how);
    }

    pub(crate) fn warn(&mut self, warning: impl Into<String>) {
        let warning = warning.into();
        if !self.warnings.contains(&warning) {
            self.warnings.push(warning);
        }
    }

    /// The report in one line: `pinned a, b (digest); c (content tag); not
    /// deployed here: d, e`.
    pub(crate) fn summary(&self) -> String {
        let mut by_how: Vec<(How, Vec<&str>)> = Vec::new();
        for (service, how) in &self.pinned {
            match by_how.iter_mut().find(|(h, _)| h == how) {
                Some((_, names)) => names.push(service),
                None => by_how.push((*how, vec![service])),
            }
        }
        let mut parts: Vec<String> = Vec::new();
        if by_how.is_empty() {
            parts.push("no service pinned".into());
        } else {
            parts.push(format!(
                "pinned {}",
                by_how
                    .iter()
                    .map(|(how, names)| format!("{} ({})", names.join(", "), how.words()))
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
        if !self.not_deployed.is_empty() {
            let shown: Vec<&str> = self
                .not_deployed
                .iter()
                .take(8)
                .map(String::as_str)
                .collect();
            let more = match self.not_deployed.len() {
                n if n > shown.len() => format!(" (+{} more)", n - shown.len()),
                _ => String::new(),
            };
            parts.push(format!("not deployed here: {}{more}", shown.join(", ")));
        }
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_groups_by_how_and_shortens_long_lists() {
        let mut r = FileReport::default();
        r.pin("orders", How::Digest);
        r.pin("gateway", How::Digest);
        r.pin("web", How::ContentTag);
        r.not_deployed = (0..10).map(|i| format!("s{i}")).collect();
        assert_eq!(
            r.summary(),
            "pinned gateway, orders (digest); web (content tag); not deployed here: s0, s1, s2, s3, s4, s5, s6, s7 (+2 more)"
        );
        assert_eq!(FileReport::default().summary(), "no service pinned");
        r.warn("w");
        r.warn("w");
        assert_eq!(r.warnings, ["w"]);
    }
}
