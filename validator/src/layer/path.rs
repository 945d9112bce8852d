//! Path normalisation of entry names and link targets (spec section "Path
//! normalisation"), and escaping of raw names for reports.

/// The normalised form of a tar path: components joined by `/`, no leading
/// or trailing slash, no `.`, `..` resolved. Empty means the root.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Normal(pub Vec<u8>);

/// Why a path has no normal form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Climbs;

impl Normal {
    /// Normalises a raw entry name or link target; fails when `..` climbs
    /// above the root.
    pub fn parse(raw: &[u8]) -> Result<Normal, Climbs> {
        let mut parts: Vec<&[u8]> = Vec::new();
        for c in raw.split(|b| *b == b'/') {
            match c {
                b"" | b"." => {}
                b".." => {
                    parts.pop().ok_or(Climbs)?;
                }
                c => parts.push(c),
            }
        }
        Ok(Normal(parts.join(&b'/')))
    }

    /// The path is the root (what `.`, `/` or an empty name normalise to).
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The last component (empty for the root).
    pub fn name(&self) -> &[u8] {
        self.0.rsplit(|b| *b == b'/').next().unwrap_or_default()
    }

    /// The parent directory (the root for a top-level name).
    pub fn parent(&self) -> Normal {
        match self.0.iter().rposition(|b| *b == b'/') {
            Some(i) => Normal(self.0[..i].to_vec()),
            None => Normal(Vec::new()),
        }
    }

    /// Every proper ancestor, from the top down, excluding the root.
    pub fn ancestors(&self) -> impl Iterator<Item = &[u8]> {
        self.0.iter().enumerate().filter(|(_, b)| **b == b'/').map(|(i, _)| &self.0[..i])
    }

    /// Each component, from the top down (none for the root).
    pub fn components(&self) -> impl Iterator<Item = &[u8]> {
        self.0.split(|b| *b == b'/').filter(|c| !c.is_empty())
    }

    /// This path with `name` appended below it (`name` is taken as it is,
    /// not normalised).
    pub fn join(&self, name: &[u8]) -> Normal {
        if self.is_root() {
            return Normal(name.to_vec());
        }
        let mut v = self.0.clone();
        v.push(b'/');
        v.extend_from_slice(name);
        Normal(v)
    }

    /// The path, escaped for a report.
    pub fn display(&self) -> String {
        escape(&self.0)
    }
}

/// A raw name for a report: UTF-8 is kept, other bytes and control
/// characters become `\xNN`, so nothing an image says can rewrite a terminal.
pub fn escape(raw: &[u8]) -> String {
    let mut out = String::with_capacity(raw.len());
    for chunk in raw.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() || c == '\\' {
                if c == '\\' {
                    out.push_str("\\\\");
                } else {
                    for b in c.to_string().bytes() {
                        out.push_str(&format!("\\x{b:02x}"));
                    }
                }
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Result<String, Climbs> {
        Normal::parse(s.as_bytes()).map(|n| n.display())
    }

    #[test]
    fn normalisation_follows_the_spec() {
        assert_eq!(n("./etc//passwd/"), Ok("etc/passwd".into()));
        assert_eq!(n("/etc/passwd"), Ok("etc/passwd".into()));
        assert_eq!(n("a/../b"), Ok("b".into()));
        assert_eq!(n("a/.."), Ok("".into()));
        assert_eq!(n("../x"), Err(Climbs));
        assert_eq!(n("a/../../x"), Err(Climbs));
        assert_eq!(n("/"), Ok("".into()));
    }

    #[test]
    fn parts() {
        let p = Normal::parse(b"a/b/c").unwrap();
        assert_eq!(p.name(), b"c");
        assert_eq!(p.parent().display(), "a/b");
        assert_eq!(p.ancestors().collect::<Vec<_>>(), [&b"a"[..], b"a/b"]);
        assert_eq!(Normal::parse(b"x").unwrap().parent(), Normal(Vec::new()));
    }

    #[test]
    fn escaping() {
        assert_eq!(escape(b"plain/\xc3\xa9"), "plain/é");
        assert_eq!(escape(b"bad\xff\x1b[31m"), "bad\\xff\\x1b[31m");
        assert_eq!(escape(b"a\\b"), "a\\\\b");
    }
}
