//! How far a job has got, reported to a callback the caller supplies (the
//! command draws a bar with it; a runtime can log or ignore it). The
//! library itself never writes to a terminal.

use std::fmt;
use std::sync::Arc;

/// One report of progress. Amounts are compressed layer bytes read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The job will read `total` bytes of layers; `job` names it
    /// (`"reading layers"`, `"unpacking layers"`, `"flattening layers"`).
    Start {
        /// Sum of the sizes of the distinct layers to read.
        total: u64,
        /// A short name of what is being done.
        job: &'static str,
    },
    /// `bytes` more were read (reported from any of the job's threads).
    Advance {
        /// Bytes read since the previous report.
        bytes: u64,
    },
    /// The job has read all it will read.
    Finish,
}

/// A progress callback, or none. Cheap to clone; callable from every
/// thread a job uses.
#[derive(Clone, Default)]
pub struct Progress(Option<Arc<dyn Fn(Event) + Send + Sync>>);

impl Progress {
    /// Reports every [`Event`] to `callback`.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use std::sync::Arc;
    /// use single_id::progress::{Event, Progress};
    ///
    /// let read = Arc::new(AtomicU64::new(0));
    /// let seen = Arc::clone(&read);
    /// let progress = Progress::new(move |e| {
    ///     if let Event::Advance { bytes } = e {
    ///         seen.fetch_add(bytes, Ordering::Relaxed);
    ///     }
    /// });
    /// # progress.advance(3);
    /// # assert_eq!(read.load(Ordering::Relaxed), 3);
    /// ```
    pub fn new(callback: impl Fn(Event) + Send + Sync + 'static) -> Self {
        Progress(Some(Arc::new(callback)))
    }

    /// Reports nothing.
    pub fn none() -> Self {
        Progress(None)
    }

    /// Sends [`Event::Start`].
    pub fn start(&self, total: u64, job: &'static str) {
        self.send(Event::Start { total, job });
    }

    /// Sends [`Event::Advance`].
    pub fn advance(&self, bytes: u64) {
        self.send(Event::Advance { bytes });
    }

    /// Sends [`Event::Finish`].
    pub fn finish(&self) {
        self.send(Event::Finish);
    }

    fn send(&self, event: Event) {
        if let Some(f) = &self.0 {
            f(event);
        }
    }
}

impl fmt::Debug for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() { "Progress(callback)" } else { "Progress(none)" })
    }
}
