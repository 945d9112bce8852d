//! A request to stop, set by the signal handler the binary installs for
//! SIGINT and SIGTERM. The layer reader checks it before every entry, so
//! an interrupted unpack or flatten fails like any other and removes what
//! it wrote (CONSUMER-INCOMPLETE) instead of dying mid-tree.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// The flag a signal handler sets.
pub fn flag() -> Arc<AtomicBool> {
    Arc::clone(FLAG.get_or_init(|| Arc::new(AtomicBool::new(false))))
}

/// Whether a stop was requested.
pub fn requested() -> bool {
    FLAG.get().is_some_and(|f| f.load(Ordering::Relaxed))
}
