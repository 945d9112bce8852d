//! Running the adapter: `/bin/sh -c 'CMD "$@"' adapter LAYOUT REF DEST`,
//! in its own process group, as the adapter's user, with a time limit, its
//! stdout and stderr captured.

use std::io::{self, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use serde::Serialize;

/// The environment variable that carries consent (POLICY-CAUTION).
pub const CONFIRM_VAR: &str = "SINGLE_ID_CONFIRM";

/// How much of each stream is kept in full for searching (the report
/// keeps less, see [`Captured`]).
const SEARCH_LIMIT: usize = 1 << 20;

pub struct Launch<'a> {
    pub command: &'a str,
    pub layout: &'a Path,
    pub reference: &'a str,
    pub dest: &'a Path,
    pub scratch: &'a Path,
    pub consent: bool,
    /// `Some` when the harness is root: the user and group to become.
    pub drop_to: Option<(u32, u32)>,
    pub timeout: Duration,
    /// Bytes of each stream kept in the report.
    pub max_output: usize,
}

/// One execution of the adapter, as reported.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    /// Whether `SINGLE_ID_CONFIRM=1` was set.
    pub consent: bool,
    /// The exit status, when the adapter exited (rather than being killed).
    pub exit_code: Option<i32>,
    /// The signal that ended the adapter, if one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub duration_ms: u64,
    pub stdout: Captured,
    pub stderr: Captured,
    /// stdout and stderr as far as kept for searching (not reported).
    #[serde(skip)]
    pub searchable: String,
}

impl RunRecord {
    pub fn succeeded(&self) -> bool {
        self.exit_code == Some(0) && !self.timed_out
    }

    /// "exited with status 1", "was killed by signal 9", "timed out after 300 s".
    pub fn status_text(&self) -> String {
        if self.timed_out {
            format!("timed out after {} ms and was killed", self.duration_ms)
        } else if let Some(c) = self.exit_code {
            format!("exited with status {c}")
        } else if let Some(s) = self.signal {
            format!("was killed by signal {s}")
        } else {
            "ended without a status".to_string()
        }
    }

    /// A harness failure to start the adapter at all (e.g. `/bin/sh`
    /// missing), recorded like a failed run.
    fn could_not_start(consent: bool, e: &io::Error) -> RunRecord {
        let text = format!("single-id-conformance: could not start the adapter: {e}\n");
        RunRecord {
            consent,
            exit_code: None,
            signal: None,
            timed_out: false,
            duration_ms: 0,
            stdout: Captured::default(),
            stderr: Captured { text: text.clone(), truncated: false, bytes: text.len() as u64 },
            searchable: text,
        }
    }
}

/// A captured stream: its beginning and end when it was longer than the
/// limit, with a marker line between them.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Captured {
    /// The text (invalid UTF-8 replaced), possibly shortened.
    pub text: String,
    /// Whether part of the stream was left out.
    pub truncated: bool,
    /// The stream's full length in bytes.
    pub bytes: u64,
}

/// Keeps the first and last `limit / 2` bytes of a stream, and up to
/// [`SEARCH_LIMIT`] bytes for searching.
struct Sink {
    limit: usize,
    head: Vec<u8>,
    tail: Vec<u8>,
    all: Vec<u8>,
    total: u64,
}

impl Sink {
    fn new(limit: usize) -> Sink {
        Sink { limit, head: Vec::new(), tail: Vec::new(), all: Vec::new(), total: 0 }
    }

    fn push(&mut self, mut bytes: &[u8]) {
        self.total += bytes.len() as u64;
        let room = SEARCH_LIMIT.saturating_sub(self.all.len());
        self.all.extend_from_slice(&bytes[..bytes.len().min(room)]);
        let half = self.limit / 2;
        let take = half.saturating_sub(self.head.len()).min(bytes.len());
        self.head.extend_from_slice(&bytes[..take]);
        bytes = &bytes[take..];
        if bytes.is_empty() {
            return;
        }
        let keep = self.limit - half;
        self.tail.extend_from_slice(bytes);
        if self.tail.len() > keep {
            self.tail.drain(..self.tail.len() - keep);
        }
    }

    fn finish(&self) -> Captured {
        let kept = (self.head.len() + self.tail.len()) as u64;
        let mut text = String::from_utf8_lossy(&self.head).into_owned();
        let truncated = kept < self.total;
        if truncated {
            if !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&format!("[... {} bytes left out ...]\n", self.total - kept));
        }
        text.push_str(&String::from_utf8_lossy(&self.tail));
        Captured { text, truncated, bytes: self.total }
    }
}

pub fn launch(l: &Launch) -> RunRecord {
    let mut c = Command::new("/bin/sh");
    c.arg("-c").arg(format!("{} \"$@\"", l.command)).arg("adapter").arg(l.layout).arg(l.reference).arg(l.dest);
    c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    c.env_remove(CONFIRM_VAR);
    if l.consent {
        c.env(CONFIRM_VAR, "1");
    }
    c.env("TMPDIR", l.scratch.join("tmp"));
    if let Some((uid, gid)) = l.drop_to {
        c.env("HOME", l.scratch.join("home"));
        // std clears the supplementary groups when root changes the UID.
        c.uid(uid).gid(gid);
    }
    c.process_group(0);
    let start = Instant::now();
    let mut child = match c.spawn() {
        Ok(child) => child,
        Err(e) => return RunRecord::could_not_start(l.consent, &e),
    };
    let pgid = child.id() as i32;
    let (done_tx, done_rx) = mpsc::channel();
    let sinks: Vec<Arc<Mutex<Sink>>> = (0..2).map(|_| Arc::new(Mutex::new(Sink::new(l.max_output)))).collect();
    let streams: Vec<Box<dyn Read + Send>> =
        vec![Box::new(child.stdout.take().unwrap()), Box::new(child.stderr.take().unwrap())];
    for (mut stream, sink) in streams.into_iter().zip(sinks.iter().cloned()) {
        let tx = done_tx.clone();
        thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = stream.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().push(&buf[..n]);
            }
            let _ = tx.send(());
        });
    }
    drop(done_tx);

    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if start.elapsed() >= l.timeout => {
                timed_out = true;
                kill_group(pgid);
                break child.wait().ok();
            }
            Ok(None) => thread::sleep(Duration::from_millis(5)),
            Err(_) => break None,
        }
    };
    let duration_ms = start.elapsed().as_millis() as u64;
    // Whatever the adapter left running in its group must not go on
    // changing DEST while the harness inspects it.
    kill_group(pgid);
    // The readers end when every holder of the pipes has gone; a process
    // that left the group could hold them open, so wait only a little.
    let deadline = Instant::now() + Duration::from_secs(2);
    for _ in 0..2 {
        let left = deadline.saturating_duration_since(Instant::now());
        if done_rx.recv_timeout(left).is_err() {
            break;
        }
    }
    let out = sinks[0].lock().unwrap();
    let err = sinks[1].lock().unwrap();
    let mut searchable = String::from_utf8_lossy(&out.all).into_owned();
    searchable.push('\n');
    searchable.push_str(&String::from_utf8_lossy(&err.all));
    RunRecord {
        consent: l.consent,
        exit_code: status.and_then(|s| s.code()),
        signal: status.and_then(|s| s.signal()),
        timed_out,
        duration_ms,
        stdout: out.finish(),
        stderr: err.finish(),
        searchable,
    }
}

fn kill_group(pgid: i32) {
    // A group that no longer exists gives ESRCH, which is fine.
    if let Some(pid) = rustix::process::Pid::from_raw(pgid) {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}
