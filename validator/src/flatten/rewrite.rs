//! The rewriting sink: each entry of an input layer, made to meet the
//! producer requirements for `flattened` images, is written to the output
//! tar stream in the order it came, or dropped and counted.

use std::collections::BTreeSet;
use std::hash::{BuildHasher, RandomState};
use std::io::{Read, Write};

use super::report::{Changes, add};
use super::tar::{Header, TarWriter};
use crate::layer::path::{Normal, escape};
use crate::layer::{Entry, Kind, Sink, SinkError};
use crate::rules::{LAYER_AMBIGUOUS, LAYER_HEADER_FIELD, LIMIT_EXCEEDED};
use crate::spec::whiteout::{self, Name};
use crate::spec::{ids, xattr};

/// The sink that writes each entry of one layer, made `flattened`, to a
/// new tar stream, counting what it changed.
pub struct Rewriter<W: Write> {
    out: TarWriter<W>,
    max: usize,
    /// Paths whose entry was dropped (devices, hardlinks to them) in this
    /// or a lower layer and not created again since: a hardlink to one
    /// would have no target in the output. Keyed hashes (8 bytes a path,
    /// whatever its length), with the keys of the whole run.
    dropped: Dropped,
    keys: RandomState,
    changes: Changes,
    /// The scan stopped because an entry's data could not be read, not
    /// because the output could not be written.
    input_failed: bool,
    newest: u64,
}

/// What a rewriter leaves when its layer is done.
pub struct Finished<W> {
    /// The writer after the end-of-archive marker, or why it failed.
    pub out: std::io::Result<W>,
    /// What was changed.
    pub changes: Changes,
    /// Paths dropped in this and lower layers, for the next layer.
    pub dropped: Dropped,
    /// Reading an entry's data failed, not writing it.
    pub input_failed: bool,
    /// The newest modification time of an entry written, in seconds.
    pub newest: u64,
}

/// Notes whether reading an entry's data failed, to tell a broken input
/// from a failed write when the copy stops.
struct Tracked<'a> {
    inner: &'a mut dyn Read,
    failed: bool,
}

impl Read for Tracked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let r = self.inner.read(buf);
        self.failed |= r.is_err();
        r
    }
}

impl<W: Write> Rewriter<W> {
    /// A rewriter writing to `out`, knowing the paths lower layers
    /// `dropped` (hashed with `keys`), keeping `max` examples a change.
    pub fn new(out: W, dropped: Dropped, keys: RandomState, max: usize) -> Self {
        Rewriter {
            out: TarWriter::new(out),
            max,
            dropped,
            keys,
            changes: Changes::default(),
            input_failed: false,
            newest: 0,
        }
    }

    /// Ends the tar stream.
    pub fn finish(self) -> Finished<W> {
        Finished {
            out: self.out.finish(),
            changes: self.changes,
            dropped: self.dropped,
            input_failed: self.input_failed,
            newest: self.newest,
        }
    }

    /// Counts `e` as dropped, for the reason `why`.
    fn drop_path(&mut self, e: &Entry, why: &str) -> Admit {
        add(&mut self.changes.paths_dropped, self.max, || e.display_path(), Some(why.to_string()));
        Admit::Dropped
    }
}

/// `raw` without its leading slashes (CONSUMER-ABSOLUTE: they mean the
/// root); `None` when nothing was stripped.
fn strip_root(raw: &[u8]) -> Option<&[u8]> {
    let start = raw.iter().position(|b| *b != b'/').unwrap_or(raw.len());
    (start > 0).then(|| &raw[start..])
}

/// Hashes of the paths dropped so far (ordered, so that a set can key the
/// reuse of a layer flattened before in the same position).
pub type Dropped = BTreeSet<u64>;

/// What becomes of one input entry.
enum Admit {
    /// Written, as a whiteout (an empty regular file) or as itself.
    Write { whiteout: bool, link: Vec<u8> },
    /// Dropped and counted.
    Dropped,
}

/// Refuses an entry whose reading readers disagree on, or one that exceeds
/// a limit: it cannot be rewritten faithfully, and the output must not
/// pick one reading.
fn refuse(e: &Entry) -> Result<(), SinkError> {
    if let Some(over) = &e.over_limit {
        return Err(SinkError::finding(&LIMIT_EXCEEDED, format!("entry {} exceeds a limit: {over}", e.display_path())));
    }
    // An entry of unknown type is dropped below whatever readers take it
    // for (consumers create nothing for it); any other disagreement has
    // no one right reading to write.
    // A disagreement about the owner is repaired: every entry is
    // written 0:0 root/root.
    let unknown = matches!(e.kind, Kind::Other(_));
    if let Some(p) = e.unappliable().filter(|_| !unknown) {
        return Err(SinkError::finding(
            &LAYER_AMBIGUOUS,
            format!(
                "entry {}: tar readers disagree about it ({}); validate reports it as layer-ambiguous",
                e.display_path(),
                p.detail
            ),
        ));
    }
    if let Some(why) = &e.malformed {
        return Err(SinkError::finding(&LAYER_HEADER_FIELD, format!("entry {}: {why}", e.display_path())));
    }
    Ok(())
}

impl<W: Write> Rewriter<W> {
    /// Decides whether `e` is written, dropped, or refused (see [`refuse`]).
    fn admit(&mut self, e: &Entry) -> Result<Admit, SinkError> {
        refuse(e)?;
        let Ok(path) = &e.path else {
            return Ok(self.drop_path(e, "name climbs above the root"));
        };
        if let Some(decided) = self.admit_by_name(e, path) {
            return Ok(decided);
        }
        let mut link = e.link.clone().unwrap_or_default();
        if e.kind == Kind::Symlink && link.is_empty() {
            return Ok(self.drop_path(e, "a symbolic link with an empty target, which no Linux consumer can create"));
        }
        if e.kind == Kind::Hardlink {
            match self.hardlink_target(e, path, link) {
                Some(target) => link = target,
                None => return Ok(Admit::Dropped),
            }
        }
        if e.kind.is_device() {
            add(&mut self.changes.devices_dropped, self.max, || e.display_path(), Some(e.kind.name().into()));
            self.dropped.insert(self.keys.hash_one(&path.0));
            return Ok(Admit::Dropped);
        }
        // Something exists at this path again.
        self.dropped.remove(&self.keys.hash_one(&path.0));
        Ok(Admit::Write { whiteout: false, link })
    }

    /// What the entry's path and type alone decide: the root that is not a
    /// directory, whiteouts, unknown types. `None` when they decide nothing.
    fn admit_by_name(&mut self, e: &Entry, path: &Normal) -> Option<Admit> {
        if path.is_root() && e.kind != Kind::Dir {
            return Some(self.drop_path(e, &format!("a {} cannot be the root", e.kind.name())));
        }
        // Whiteouts are structure, not files: an invalid one is dropped, a
        // valid one is written as the empty regular file layer.md describes,
        // whatever type, content or link the input gave it.
        if whiteout::under_whiteout(path) {
            return Some(self.drop_path(e, "a `.wh.` name used as a directory"));
        }
        match whiteout::classify(path.name()) {
            Name::Invalid(why) => return Some(self.drop_path(e, why)),
            Name::Opaque | Name::Removes(_) => return Some(Admit::Write { whiteout: true, link: Vec::new() }),
            Name::Plain => {}
        }
        if let Kind::Other(b) = e.kind {
            // Consumers skip unknown types (CONSUMER-UNKNOWN-TYPES); written
            // out, a stray `L`, `K` or `x` would rename or retarget the next
            // entry for readers that honour it.
            return Some(self.drop_path(e, &format!("entry of unknown type {:?}", b as char)));
        }
        None
    }

    /// The target the hardlink `e` (at `path`) is written with: `link`
    /// without its leading `/`. `None` when the link is dropped: its target
    /// climbs above the root or was dropped itself.
    fn hardlink_target(&mut self, e: &Entry, path: &Normal, link: Vec<u8>) -> Option<Vec<u8>> {
        let Ok(target) = Normal::parse(&link) else {
            self.drop_path(e, &format!("hardlink target {} climbs above the root", escape(&link)));
            return None;
        };
        if self.dropped.contains(&self.keys.hash_one(&target.0)) {
            let detail = Some(format!("target {} was dropped", target.display()));
            add(&mut self.changes.hardlinks_dropped, self.max, || e.display_path(), detail);
            self.dropped.insert(self.keys.hash_one(&path.0));
            return None;
        }
        if let Some(rest) = strip_root(&link) {
            let detail = Some(format!("hardlink target {}", escape(&link)));
            add(&mut self.changes.absolute_stripped, self.max, || e.display_path(), detail);
            return Some(rest.to_vec());
        }
        Some(link)
    }

    /// Counts what flattening changes about the entry's owner and mode.
    fn count_owner_changes(&mut self, e: &Entry) {
        if (e.uid, e.gid) != (0, 0) {
            self.changes.owners_replaced += 1;
        }
        if !ids::name_ok(&e.uname, 0) || !ids::name_ok(&e.gname, 0) {
            self.changes.names_replaced += 1;
        }
        if e.mode & 0o6000 != 0 {
            add(&mut self.changes.setid_cleared, self.max, || e.display_path(), Some(format!("{:o}", e.mode)));
        }
    }

    /// The attributes the output keeps: every one but those that carry
    /// owners or privilege (PRODUCER-NO-ID-XATTRS, PRODUCER-NO-OWNER-XATTRS).
    fn kept_xattrs(&mut self, e: &Entry) -> Vec<(Vec<u8>, Vec<u8>)> {
        let max = self.max;
        if e.has_acl {
            // SCHILY.acl.* records are never carried over.
            add(&mut self.changes.acls_removed, max, || e.display_path(), None);
        }
        let mut kept = Vec::with_capacity(e.xattrs.len());
        let mut acl_xattr = false;
        for (n, v) in &e.xattrs {
            match xattr::classify(n) {
                xattr::Class::Capability => add(&mut self.changes.capabilities_removed, max, || e.display_path(), None),
                xattr::Class::OwnerBearing => {
                    add(&mut self.changes.owner_xattrs_removed, max, || e.display_path(), Some(escape(n)))
                }
                xattr::Class::Acl => acl_xattr = true,
                xattr::Class::User | xattr::Class::Privileged | xattr::Class::Other => {
                    kept.push((n.clone(), v.clone()))
                }
            }
        }
        if acl_xattr && !e.has_acl {
            add(&mut self.changes.acls_removed, max, || e.display_path(), None);
        }
        kept
    }
}

impl<W: Write> Rewriter<W> {
    /// A PAX global header is dropped: the entries already carry everything
    /// they need. Readers disagree on whether one applies, so one that sets
    /// more than owners changes the entries for some readers: no one output
    /// says what they all read.
    fn global_header(&mut self, e: &Entry) -> Result<(), SinkError> {
        if let Some(p) = e.unappliable() {
            return Err(SinkError::finding(
                &LAYER_AMBIGUOUS,
                format!(
                    "a PAX global header: tar readers disagree about the entries after it ({}); validate reports it as layer-ambiguous",
                    p.detail
                ),
            ));
        }
        self.changes.global_headers_dropped += 1;
        Ok(())
    }

    /// The name `e` is written under: without leading slashes, and for a
    /// whiteout without trailing ones.
    fn output_name(&mut self, e: &Entry, whiteout: bool) -> Vec<u8> {
        let mut name = e.raw_path.clone();
        if let Some(rest) = strip_root(&e.raw_path) {
            add(&mut self.changes.absolute_stripped, self.max, || e.display_path(), None);
            name = if rest.is_empty() { b"./".to_vec() } else { rest.to_vec() };
        }
        if whiteout {
            // Written as a regular file, it must not keep a directory's
            // trailing slash (readers disagree on what that makes it).
            while name.len() > 1 && name.ends_with(b"/") {
                name.pop();
            }
        }
        name
    }

    /// Writes `header` and, when `data` is given, the entry's content. A
    /// failure says whether reading the input or writing the output broke.
    fn write_entry(&mut self, e: &Entry, header: &Header<'_>, data: Option<&mut dyn Read>) -> Result<(), SinkError> {
        let mut tracked = data.map(|inner| Tracked { inner, failed: false });
        let result = self.out.entry(header, tracked.as_mut().map(|t| t as &mut dyn Read));
        if let Err(err) = result {
            // A short read is the input's fault too (the writer checks the length).
            if tracked.is_some_and(|t| t.failed) || err.kind() == std::io::ErrorKind::UnexpectedEof {
                self.input_failed = true;
                return Err(SinkError::other(format!("reading {}: {err}", e.display_path())));
            }
            return Err(SinkError::other(format!("writing {}: {err}", e.display_path())));
        }
        self.changes.written += 1;
        self.newest = self.newest.max(e.mtime);
        Ok(())
    }
}

/// The typeflag `kind` is written with, and whether its data follows.
/// `None` for the kinds `admit` drops.
fn typeflag(kind: Kind, whiteout: bool) -> Option<(u8, bool)> {
    Some(match kind {
        _ if whiteout => (b'0', false),
        Kind::File => (b'0', true),
        Kind::Hardlink => (b'1', false),
        Kind::Symlink => (b'2', false),
        Kind::Dir => (b'5', false),
        Kind::Fifo => (b'6', false),
        Kind::Char | Kind::Block | Kind::Global | Kind::Other(_) => return None,
    })
}

impl<W: Write> Sink for Rewriter<W> {
    fn entry(&mut self, e: &Entry, data: &mut dyn Read) -> Result<(), SinkError> {
        if e.kind == Kind::Global {
            return self.global_header(e);
        }
        self.changes.entries += 1;
        let (whiteout, link) = match self.admit(e)? {
            Admit::Write { whiteout, link } => (whiteout, link),
            Admit::Dropped => return Ok(()),
        };
        let name = self.output_name(e, whiteout);
        self.count_owner_changes(e);
        if e.sparse {
            // Written dense: every reader reads a regular file alike.
            add(&mut self.changes.sparse_expanded, self.max, || e.display_path(), Some(format!("{} bytes", e.size)));
        }
        let xattrs = self.kept_xattrs(e);
        // Dropped in `admit`; never written.
        let Some((typeflag, with_data)) = typeflag(e.kind, whiteout) else { return Ok(()) };
        let header = Header {
            name: &name,
            typeflag,
            mode: e.mode & !0o6000,
            mtime: e.mtime,
            pax_mtime: e.pax_mtime.as_deref(),
            size: if with_data { e.size } else { 0 },
            // Symlink targets are kept byte for byte (CONSUMER-SYMLINK-TARGET).
            link: if matches!(e.kind, Kind::Hardlink | Kind::Symlink) && !whiteout { &link } else { b"" },
            owner_name: ids::ROOT,
            xattrs: &xattrs,
        };
        self.write_entry(e, &header, with_data.then_some(data))
    }
}
