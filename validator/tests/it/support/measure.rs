//! Running a command and measuring what it cost: CPU time (user and
//! system; elapsed time depends on what else the machine runs) and peak
//! resident memory.

use std::fs;
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::Run;

/// A finished run with its cost.
pub struct Measured {
    pub run: Run,
    pub cpu: Duration,
    /// Peak resident set size of the `single-id` process, in KiB.
    pub max_rss_kib: u64,
}

/// Runs `c` (its stdout and stderr are captured) and measures it.
pub fn measure(c: &mut Command) -> Measured {
    c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    // A binary copied just now fails exec with ETXTBSY while a child forked
    // by another test thread still holds its write descriptor. Retry.
    let mut tries = 0;
    let mut child = loop {
        match c.spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 50 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(20))
            }
            other => break other.unwrap(),
        }
    };
    let done = Arc::new(AtomicBool::new(false));
    let rss = watch_rss(child.id(), Arc::clone(&done));
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            r.read_to_end(&mut v).unwrap();
            v
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    // SAFETY: waits for our own child, writing only into the two locals;
    // wait4 rather than Child::wait, for the child's CPU time.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid, "wait4: {}", std::io::Error::last_os_error());
    done.store(true, Ordering::Relaxed);
    let time = |t: libc::timeval| Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
    let output = Output {
        status: std::process::ExitStatus::from_raw(status),
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    };
    Measured { run: Run(output), cpu: time(usage.ru_utime) + time(usage.ru_stime), max_rss_kib: rss.join().unwrap() }
}

/// The peak RSS of process `pid` once it runs `single-id`, polled from
/// `/proc` until `done`. Not wait4's figure: that counts the pages the
/// child shared with this (large) test process between fork and exec.
fn watch_rss(pid: u32, done: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut peak = 0;
        while !done.load(Ordering::Relaxed) {
            if let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) {
                if status.lines().any(|l| l == "Name:\tsingle-id") {
                    let hwm = status.lines().find_map(|l| l.strip_prefix("VmHWM:"));
                    if let Some(kib) = hwm.and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok()) {
                        peak = peak.max(kib);
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        peak
    })
}
