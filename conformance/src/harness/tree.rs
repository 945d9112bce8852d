//! A snapshot of a directory tree taken with `lstat`: what the comparison
//! and the containment check look at. Nothing is followed: symbolic links
//! are read as links, FIFOs and devices are never opened.
//!
//! When the harness is not root, an adapter may have left directories it
//! cannot list (mode 0000, 0300) and files it cannot read (0000). The owner
//! may change those modes, so the walk raises the owner bits it needs for a
//! moment and puts the recorded mode back; the mode in the snapshot is
//! always the one found before any change.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::Digest as _;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Fifo,
    CharDevice,
    BlockDevice,
    Socket,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Dir => "dir",
            Kind::Symlink => "symlink",
            Kind::Fifo => "fifo",
            Kind::CharDevice => "char-device",
            Kind::BlockDevice => "block-device",
            Kind::Socket => "socket",
        }
    }

    fn of(meta: &fs::Metadata) -> Kind {
        let t = meta.file_type();
        if t.is_dir() {
            Kind::Dir
        } else if t.is_symlink() {
            Kind::Symlink
        } else if t.is_fifo() {
            Kind::Fifo
        } else if t.is_char_device() {
            Kind::CharDevice
        } else if t.is_block_device() {
            Kind::BlockDevice
        } else if t.is_socket() {
            Kind::Socket
        } else {
            Kind::File
        }
    }
}

/// One object, as `lstat` and friends saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub kind: Kind,
    /// Permission, sticky and set-ID bits (mask 07777).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime: i64,
    /// `sha256:HEX` of a regular file's content; `None` when it could not be read.
    pub sha256: Option<String>,
    /// A symbolic link's target, byte for byte.
    pub target: Option<Vec<u8>>,
    /// Every extended attribute the harness could read.
    pub xattrs: BTreeMap<String, Vec<u8>>,
    /// Why part of this object could not be read, if so.
    pub unreadable: Option<String>,
}

impl Node {
    /// A one-line description for difference reports.
    pub fn describe(&self) -> String {
        let mut s = match self.kind {
            Kind::Symlink => format!("symlink -> {}", escape_bytes(self.target.as_deref().unwrap_or(b"?"))),
            Kind::File => format!("file {:04o}, {} bytes", self.mode, self.size),
            k => format!("{} {:04o}", k.name(), self.mode),
        };
        s.push_str(&format!(", {}:{}", self.uid, self.gid));
        s
    }
}

/// Every object under a root (relative paths, the root itself at `""`).
#[derive(Clone, Debug, Default)]
pub struct Tree {
    pub nodes: BTreeMap<PathBuf, Node>,
}

impl Tree {
    pub fn get(&self, rel: &Path) -> Option<&Node> {
        self.nodes.get(rel)
    }

    pub fn root(&self) -> Option<&Node> {
        self.nodes.get(Path::new(""))
    }
}

/// Walks `root` (not following it if it is a symlink). Paths in `exclude`
/// (absolute, as joined onto `root`) are recorded themselves but not
/// entered, and their own attributes are not read beyond `lstat`.
pub fn snapshot(root: &Path, exclude: &[PathBuf]) -> io::Result<Tree> {
    let mut tree = Tree::default();
    let privileged = is_root();
    visit(root, Path::new(""), exclude, privileged, &mut tree)?;
    Ok(tree)
}

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn visit(abs: &Path, rel: &Path, exclude: &[PathBuf], privileged: bool, tree: &mut Tree) -> io::Result<()> {
    let meta = fs::symlink_metadata(abs)?;
    let kind = Kind::of(&meta);
    let mode = meta.mode() & 0o7777;
    let mut node = Node {
        kind,
        mode,
        uid: meta.uid(),
        gid: meta.gid(),
        dev: meta.dev(),
        ino: meta.ino(),
        size: meta.size(),
        mtime: meta.mtime(),
        sha256: None,
        target: None,
        xattrs: BTreeMap::new(),
        unreadable: None,
    };
    if exclude.iter().any(|e| e == abs) {
        tree.nodes.insert(rel.to_path_buf(), node);
        return Ok(());
    }
    match kind {
        Kind::Symlink => {
            node.target = Some(fs::read_link(abs)?.into_os_string().as_bytes().to_vec());
            node.xattrs = read_xattrs(abs);
            tree.nodes.insert(rel.to_path_buf(), node);
        }
        Kind::File => {
            let raised = raise(abs, mode, 0o400, privileged, meta.uid());
            match hash_file(abs) {
                Ok(h) => node.sha256 = Some(h),
                Err(e) => node.unreadable = Some(format!("content: {e}")),
            }
            node.xattrs = read_xattrs(abs);
            restore(abs, mode, raised);
            tree.nodes.insert(rel.to_path_buf(), node);
        }
        Kind::Dir => {
            let raised = raise(abs, mode, 0o500, privileged, meta.uid());
            node.xattrs = read_xattrs(abs);
            let listing =
                fs::read_dir(abs).and_then(|it| it.map(|e| e.map(|e| e.file_name())).collect::<Result<Vec<_>, _>>());
            let result = match listing {
                Ok(mut names) => {
                    names.sort();
                    tree.nodes.insert(rel.to_path_buf(), node);
                    names.iter().try_for_each(|name| visit(&abs.join(name), &rel.join(name), exclude, privileged, tree))
                }
                Err(e) => {
                    node.unreadable = Some(format!("listing: {e}"));
                    tree.nodes.insert(rel.to_path_buf(), node);
                    Ok(())
                }
            };
            restore(abs, mode, raised);
            result?;
        }
        _ => {
            node.xattrs = read_xattrs(abs);
            tree.nodes.insert(rel.to_path_buf(), node);
        }
    }
    Ok(())
}

/// Adds `bits` to the owner bits when the harness is the unprivileged owner
/// and lacks them; returns whether it did.
fn raise(abs: &Path, mode: u32, bits: u32, privileged: bool, owner: u32) -> bool {
    if privileged || mode & bits == bits || owner != rustix::process::geteuid().as_raw() {
        return false;
    }
    fs::set_permissions(abs, fs::Permissions::from_mode(mode | bits)).is_ok()
}

fn restore(abs: &Path, mode: u32, raised: bool) {
    if raised {
        let _ = fs::set_permissions(abs, fs::Permissions::from_mode(mode));
    }
}

fn hash_file(abs: &Path) -> io::Result<String> {
    let mut f = fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(abs)?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("sha256:{}", hex(&h.finalize())))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every attribute `llistxattr` names, with its value; empty when the
/// filesystem has none or does not support them.
fn read_xattrs(abs: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut list = vec![0u8; 64 * 1024];
    let Ok(n) = rustix::fs::llistxattr(abs, &mut list[..]) else { return out };
    let mut value = vec![0u8; 64 * 1024];
    for name in list[..n].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let name = OsStr::from_bytes(name);
        if let Ok(len) = rustix::fs::lgetxattr(abs, name, &mut value[..]) {
            out.insert(name.to_string_lossy().into_owned(), value[..len].to_vec());
        }
    }
    out
}

/// Bytes as text: UTF-8 kept, anything else and control characters as `\xNN`.
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() {
                for b in c.to_string().bytes() {
                    out.push_str(&format!("\\x{b:02x}"));
                }
            } else if c == '\\' {
                out.push_str("\\\\");
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

/// A relative path as text, escaped like [`escape_bytes`].
pub fn display_path(rel: &Path) -> String {
    escape_bytes(rel.as_os_str().as_bytes())
}
