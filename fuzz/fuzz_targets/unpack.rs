//! `unpack` of one or two tar layers into `TMP/root/dest`, with canaries
//! beside it (`TMP/root/canary/`, a file and a directory) and at a fixed
//! absolute path (`/dev/shm/single-id-fuzz-canary/`, which inputs can name
//! in absolute symlinks and hardlinks). After every run:
//!
//! - nothing in TMP outside DEST, and nothing in the fixed canary, changed
//!   (type, content, mode, link target, inode and link count);
//! - a failed unpack left no DEST behind (this run created it);
//! - nothing in DEST is a device or has a setuid or setgid bit.
//!
//! Input: a flag byte, then (with two layers) the length of the first
//! layer as a big-endian u16, then the layer bytes.
//! - bit 0: two layers;
//! - bits 1-2: compression (none, gzip, zstd, none);
//! - bits 3-4: the id-flattening value (consent is always given);
//! - bit 5: the tars go in as they are; otherwise every header checksum is
//!   rewritten first, so that mutated headers reach the parser.
#![no_main]

use std::fs;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use libfuzzer_sys::fuzz_target;
use single_id::error::Error;
use single_id::unpack;
use single_id_fuzz::{
    Codec, ImageSpec, Layer, assert_unchanged, dump_layers, fix_checksums, reference, scratch, snapshot, value_of,
    write_image,
};

/// A canary with a file (content and mode known) and a directory.
fn plant(dir: &Path) {
    fs::create_dir_all(dir.join("dir")).expect("canary");
    fs::write(dir.join("file"), b"canary\n").expect("canary");
    fs::write(dir.join("dir/inner"), b"inner\n").expect("canary");
    fs::set_permissions(dir.join("file"), fs::Permissions::from_mode(0o644)).expect("canary");
}

/// The canary at a fixed path, shared by every fuzzing process: made once,
/// atomically (a rename), never written again.
fn fixed_canary() -> PathBuf {
    let fixed = PathBuf::from("/dev/shm/single-id-fuzz-canary");
    if !fixed.exists() {
        let temp = tempfile::Builder::new().prefix(".canary.").tempdir_in("/dev/shm").expect("canary");
        let staged = temp.path().join("c");
        plant(&staged);
        let _ = fs::rename(&staged, &fixed);
    }
    fixed
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, mut rest)) = data.split_first() else { return };
    let codec = match (flags >> 1) & 3 {
        1 => Codec::Gzip,
        2 => Codec::Zstd,
        _ => Codec::None,
    };
    let mut tars: Vec<Vec<u8>> = Vec::new();
    if flags & 1 != 0 {
        if rest.len() < 2 {
            return;
        }
        let first = usize::from(u16::from_be_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        rest = &rest[2..];
        tars.push(rest[..first].to_vec());
        tars.push(rest[first..].to_vec());
    } else {
        tars.push(rest.to_vec());
    }
    if flags & 0x20 == 0 {
        tars.iter_mut().for_each(|t| fix_checksums(t));
    }
    dump_layers(&tars.iter().map(Vec::as_slice).collect::<Vec<_>>());
    let spec = ImageSpec {
        layers: tars.iter().map(|t| Layer::of_tar(t, codec)).collect(),
        value: value_of(flags >> 3),
        user: String::new(),
    };

    let fixed = if Path::new("/dev/shm").is_dir() { Some(fixed_canary()) } else { None };
    let tmp = scratch();
    let layout = tmp.path().join("image");
    write_image(&layout, &spec);
    let root = tmp.path().join("root");
    plant(&root.join("canary"));
    fs::write(root.join("sibling"), b"sibling\n").expect("sibling");
    let dest = root.join("dest");

    let fixed_before = fixed.as_deref().map(|f| snapshot(f, &[]));
    let before = snapshot(tmp.path(), &[&dest]);
    let options = unpack::Options { confirm_flatten: true, keep_partial: false, max_examples: 5, ..Default::default() };
    let result = unpack::unpack(&reference(&layout), &dest, &options);
    let after = snapshot(tmp.path(), &[&dest]);
    assert_unchanged("the scratch directory", &before, &after);
    if let (Some(f), Some(b)) = (fixed.as_deref(), fixed_before) {
        assert_unchanged("the fixed canary", &b, &snapshot(f, &[]));
    }

    match &result {
        Ok(u) => {
            std::hint::black_box(single_id::render::unpack::render(u, "dest"));
        }
        Err(e @ (Error::Refused { .. } | Error::Usage { .. })) => {
            assert!(!dest.exists(), "a refused unpack created DEST ({e})");
        }
        Err(e) => {
            assert!(!dest.exists(), "a failed unpack left DEST behind ({e})");
            if let Error::Invalid { findings, .. } = e {
                // Refusing a broken image names what validate reports.
                assert!(!findings.is_empty(), "an invalid image without findings: {e}");
            }
        }
    }
    if let Ok(meta) = fs::symlink_metadata(&dest) {
        let mode = meta.permissions().mode() & 0o7777;
        assert_eq!(mode & 0o6000, 0, "DEST itself has a set-ID bit (mode {mode:o})");
        fs::set_permissions(&dest, fs::Permissions::from_mode(0o700)).expect("chmod DEST");
        check_dest(&dest);
    }
});

/// No devices and no set-ID bits anywhere in DEST. Directories are made
/// traversable on the way down (after their mode is read), so that the
/// scratch directory can be removed by an unprivileged fuzzer too.
fn check_dest(dir: &Path) {
    let entries = match fs::read_dir(dir) {
        Ok(d) => d,
        Err(e) => panic!("{}: cannot list DEST: {e}", dir.display()),
    };
    for entry in entries {
        let path = entry.expect("reading DEST").path();
        let meta = fs::symlink_metadata(&path).expect("lstat in DEST");
        let t = meta.file_type();
        if t.is_symlink() {
            continue;
        }
        let mode = meta.permissions().mode() & 0o7777;
        assert_eq!(mode & 0o6000, 0, "{}: set-ID bit left in DEST (mode {mode:o})", path.display());
        assert!(!t.is_char_device() && !t.is_block_device(), "{}: a device in DEST", path.display());
        if t.is_dir() {
            fs::set_permissions(&path, fs::Permissions::from_mode(0o700)).expect("chmod in DEST");
            check_dest(&path);
        }
    }
}
