//! How a runtime with its own content store unpacks an image through the
//! library: the blobs live in memory (loaded here from a layout directory,
//! as a runtime would fetch them from its store), the library reads them
//! through the `BlobStore` trait, verifies every digest, applies the
//! policy and writes DEST as a single-ID consumer.
//!
//! Usage: `in_memory_store LAYOUT_DIR DEST`. Exit status 0 unpacked,
//! 1 refused or failed (the rules at fault are listed), 2 bad arguments.
//! Run by cargo (`cargo run --example`, or `cargo test --all-targets`,
//! which runs examples with whatever test filter it was given) without
//! those two arguments, it unpacks the bundled `examples/hello` into a
//! temporary directory and removes it again.

use std::collections::HashMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use single_id::error::Error;
use single_id::layout::{BlobStore, Layout, Member, OpenError};
use single_id::limits::Limits;
use single_id::unpack::{self, Options};

/// Every file of a layout, by layout-relative name.
struct MemoryStore {
    name: PathBuf,
    files: HashMap<String, Arc<[u8]>>,
}

impl BlobStore for MemoryStore {
    fn open(&self, name: &str) -> Result<Member, OpenError> {
        let bytes = self.files.get(name).ok_or(OpenError::Missing)?;
        // Each reader gets its own cursor over shared bytes: the library
        // reads independent layers on several threads.
        Ok(Member { len: bytes.len() as u64, reader: Box::new(Cursor::new(Arc::clone(bytes))) })
    }

    fn location(&self) -> &Path {
        &self.name
    }
}

/// Loads `oci-layout`, `index.json` and `blobs/*/*` of a layout directory.
fn load(dir: &Path) -> std::io::Result<MemoryStore> {
    let mut files = HashMap::new();
    for name in ["oci-layout", "index.json"] {
        files.insert(name.to_string(), std::fs::read(dir.join(name))?.into());
    }
    for algorithm in std::fs::read_dir(dir.join("blobs"))? {
        let algorithm = algorithm?;
        for blob in std::fs::read_dir(algorithm.path())? {
            let blob = blob?;
            let name =
                format!("blobs/{}/{}", algorithm.file_name().to_string_lossy(), blob.file_name().to_string_lossy());
            files.insert(name, std::fs::read(blob.path())?.into());
        }
    }
    Ok(MemoryStore { name: PathBuf::from(format!("memory:{}", dir.display())), files })
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().collect();
    let demo = args.len() != 3 && std::env::var_os("CARGO_MANIFEST_DIR").is_some();
    if demo {
        args.truncate(1);
        let hello = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/hello");
        let dest = std::env::temp_dir().join(format!("in_memory_store-{}", std::process::id()));
        args.extend([hello.to_string(), dest.to_string_lossy().into_owned()]);
    }
    let [_, layout_dir, dest] = args.as_slice() else {
        eprintln!("usage: in_memory_store LAYOUT_DIR DEST");
        return ExitCode::from(2);
    };
    let code = run(layout_dir, dest);
    if demo {
        let _ = std::fs::remove_dir_all(dest);
    }
    code
}

fn run(layout_dir: &str, dest: &str) -> ExitCode {
    let store = match load(Path::new(layout_dir)) {
        Ok(store) => store,
        Err(e) => {
            eprintln!("{layout_dir}: {e}");
            return ExitCode::from(2);
        }
    };
    let layout = Layout::new(store, Limits::default());
    match unpack::unpack_layout(&layout, None, Path::new(dest), &Options::default()) {
        Ok(done) => {
            let s = &done.summary;
            println!(
                "unpacked {} ({}): {} files, {} directories, {} symlinks; set-ID bits cleared on {}",
                done.image,
                done.value.as_str(),
                s.files,
                s.directories,
                s.symlinks,
                s.setid_cleared.count
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            for finding in e.findings() {
                eprintln!("  {} ({}): {}", finding.rule.id, finding.clause, finding.message);
            }
            ExitCode::from(if matches!(e, Error::Usage { .. }) { 2 } else { 1 })
        }
    }
}
