//! Running a consumer the way it runs in the field: as an ordinary user.
//! When the tests run as root (CI does), the child drops to 65534:65534,
//! on a directory that user owns.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use super::{Run, TestDir};

/// The user the consumer runs as: ourselves, or nobody when we are root.
pub fn user() -> (u32, u32) {
    // SAFETY: geteuid/getegid cannot fail and touch no memory.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    if uid == 0 { (65534, 65534) } else { (uid, gid) }
}

/// A test directory the unpacking user owns (everyone may traverse it),
/// holding the binary, as a hard link when possible: the checkout may sit
/// where that user cannot reach (a root-only home directory, say).
pub fn user_dir() -> TestDir {
    let t = TestDir::new();
    let (uid, gid) = user();
    fs::set_permissions(t.path(), fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(t.path(), Some(uid), Some(gid)).unwrap();
    install(&t, Path::new(env!("CARGO_BIN_EXE_single-id")), "single-id");
    t
}

/// Puts the program `exe` into the test directory as `name`.
pub fn install(t: &TestDir, exe: &Path, name: &str) {
    if fs::hard_link(exe, t.join(name)).is_err() {
        fs::copy(exe, t.join(name)).unwrap_or_else(|e| panic!("{}: {e}", exe.display()));
        fs::set_permissions(t.join(name), fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// Runs `single-id ARGS` as the unpacking user, from the test directory.
pub fn run_as_user(t: &TestDir, args: &[&str]) -> Run {
    run_installed_as_user(t, "single-id", args)
}

/// Runs the program [`install`]ed as `name` as the unpacking user.
pub fn run_installed_as_user(t: &TestDir, name: &str, args: &[&str]) -> Run {
    let (uid, gid) = user();
    let mut c = Command::new(t.join(name));
    c.args(args).current_dir(t.path());
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        c.uid(uid).gid(gid);
    }
    // A copy just written fails exec with ETXTBSY while a child forked by
    // another test thread still holds its write descriptor. Retry.
    for _ in 0..50 {
        match c.output() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            other => return Run(other.unwrap()),
        }
    }
    panic!("{} stayed busy", t.join(name).display());
}
