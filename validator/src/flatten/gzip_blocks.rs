//! gzip output compressed on several threads with bytes that do not depend
//! on how many: the stream is cut into fixed blocks, each deflated on its
//! own with the 32 KiB before it as the dictionary (the scheme pigz uses),
//! and the pieces are written in order as one gzip member.
//!
//! Why the bytes are stable: where a block starts, what its dictionary is
//! and how it ends (a sync flush, the last one a finish) depend only on the
//! input. Threads decide only which block is compressed when.

use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Mutex, PoisonError};
use std::thread;

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

/// Input bytes per block. pigz uses 128 KiB; twice that halves the cost of
/// priming each block with its dictionary and of the sync markers, and is
/// still far below what the channels hold in flight.
pub(super) const BLOCK: usize = 256 << 10;

/// Deflate's window: the most a block can refer back into the one before.
const WINDOW: usize = 32 << 10;

/// A gzip header with no name, no comment, mtime 0, XFL 0 and OS "unknown"
/// (255), so nothing of the machine or the moment ends up in the blob.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

/// One block to deflate.
struct Job {
    /// The last WINDOW bytes before `data`, empty for the first block.
    dictionary: Vec<u8>,
    data: Vec<u8>,
    last: bool,
    /// Where the result goes; the writer waits on these in block order.
    done: SyncSender<io::Result<Deflated>>,
}

/// A block, deflated.
struct Deflated {
    bytes: Vec<u8>,
    /// The block's CRC-32 and length.
    crc: Crc,
}

/// Compresses everything `chunks` yields into one gzip member written to
/// `out` at `level`, on `workers` threads (at least one); returns `out`.
/// The bytes are the same for every number of workers.
pub(super) fn compress<W: Write + Send>(
    chunks: impl IntoIterator<Item = Vec<u8>>,
    mut out: W,
    workers: usize,
    level: Compression,
) -> io::Result<W> {
    out.write_all(&HEADER)?;
    let workers = workers.max(1);
    let (job_tx, job_rx) = mpsc::sync_channel::<Job>(workers);
    let job_rx = Mutex::new(job_rx);
    // Results in block order; its depth bounds the blocks in flight.
    let (order_tx, order_rx) = mpsc::sync_channel::<Receiver<io::Result<Deflated>>>(2 * workers);
    thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| deflate_jobs(&job_rx, level));
        }
        let writer = s.spawn(move || write_in_order(order_rx, out));
        let mut blocks = Blocks { job_tx, order_tx, pending: Vec::with_capacity(BLOCK), dictionary: Vec::new() };
        // Stops early only when the writer or a worker is gone; the
        // writer's result says why.
        let _ = blocks.feed(chunks);
        // Hanging up ends the writer's loop and, once the queue is empty,
        // the workers'.
        drop(blocks);
        match writer.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Cuts the input into blocks and hands them out.
struct Blocks {
    job_tx: SyncSender<Job>,
    order_tx: SyncSender<Receiver<io::Result<Deflated>>>,
    /// The block being filled. A full one waits for more input, since only
    /// then is it known not to be the last.
    pending: Vec<u8>,
    dictionary: Vec<u8>,
}

/// The writer or every worker stopped.
struct Gone;

impl Blocks {
    fn feed(&mut self, chunks: impl IntoIterator<Item = Vec<u8>>) -> Result<(), Gone> {
        for chunk in chunks {
            let mut rest = &chunk[..];
            while !rest.is_empty() {
                if self.pending.len() == BLOCK {
                    self.send(false)?;
                }
                let take = rest.len().min(BLOCK - self.pending.len());
                self.pending.extend_from_slice(&rest[..take]);
                rest = &rest[take..];
            }
        }
        self.send(true)
    }

    fn send(&mut self, last: bool) -> Result<(), Gone> {
        let data = std::mem::replace(&mut self.pending, if last { Vec::new() } else { Vec::with_capacity(BLOCK) });
        let next = data[data.len().saturating_sub(WINDOW)..].to_vec();
        let dictionary = std::mem::replace(&mut self.dictionary, next);
        let (done, result) = mpsc::sync_channel(1);
        self.order_tx.send(result).map_err(|_| Gone)?;
        self.job_tx.send(Job { dictionary, data, last, done }).map_err(|_| Gone)
    }
}

/// A worker: deflates jobs until there are none.
fn deflate_jobs(jobs: &Mutex<Receiver<Job>>, level: Compression) {
    loop {
        let job = match jobs.lock().unwrap_or_else(PoisonError::into_inner).recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        // A fresh state for every block: zlib-rs's `reset` leaves something
        // behind that changes a few blocks' bytes (5 of 39 on the
        // benchmark's layer), so a reused one would make the output depend
        // on which blocks a thread happened to compress before.
        let result = deflate(&mut Compress::new(level, false), &job);
        // The writer hangs up only when it failed; it reports that.
        let _ = job.done.send(result);
    }
}

/// Deflates one block as raw deflate: primed with its dictionary, ended
/// with a sync flush (byte-aligned, so the next block's bytes follow), or
/// with the final block when it is the last.
fn deflate(z: &mut Compress, job: &Job) -> io::Result<Deflated> {
    if !job.dictionary.is_empty() {
        z.set_dictionary(&job.dictionary).map_err(io::Error::other)?;
    }
    let flush = if job.last { FlushCompress::Finish } else { FlushCompress::Sync };
    let mut bytes = Vec::with_capacity(job.data.len() + job.data.len() / 8 + 64);
    let mut used = 0;
    loop {
        let before = z.total_in();
        let status = z.compress_vec(&job.data[used..], &mut bytes, flush).map_err(io::Error::other)?;
        used += usize::try_from(z.total_in() - before).map_err(io::Error::other)?;
        // A flush is complete once deflate leaves output space unused.
        let flushed = used == job.data.len() && bytes.len() < bytes.capacity();
        if status == Status::StreamEnd || (!job.last && flushed) {
            break;
        }
        bytes.reserve(64 << 10);
    }
    let mut crc = Crc::new();
    crc.update(&job.data);
    Ok(Deflated { bytes, crc })
}

/// Writes each block as it comes due, then the trailer (CRC-32 and length
/// modulo 2^32 of the whole input).
fn write_in_order<W: Write>(order: Receiver<Receiver<io::Result<Deflated>>>, mut out: W) -> io::Result<W> {
    let mut crc = Crc::new();
    for result in order {
        let block = result.recv().map_err(|_| io::Error::other("a compressing thread stopped"))??;
        out.write_all(&block.bytes)?;
        crc.combine(&block.crc);
    }
    // `amount` is already the length modulo 2^32, as gzip stores it.
    out.write_all(&crc.sum().to_le_bytes())?;
    out.write_all(&crc.amount().to_le_bytes())?;
    Ok(out)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::io::Read;

    /// Bytes that compress somewhat, as a tar of text and binaries does
    /// (the zstd tests use them too).
    pub(in crate::flatten) fn sample(len: usize) -> Vec<u8> {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        (0..len)
            .map(|i| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                if i % 7 < 4 { b"single-id layer "[i % 16] } else { (state % 40) as u8 }
            })
            .collect()
    }

    fn gzip(data: &[u8], chunk: usize, workers: usize) -> Vec<u8> {
        let chunks: Vec<Vec<u8>> = data.chunks(chunk.max(1)).map(<[u8]>::to_vec).collect();
        compress(chunks, Vec::new(), workers, Compression::default()).unwrap()
    }

    fn gunzip(gz: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(gz).read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn same_bytes_for_any_number_of_workers_and_any_chunking() {
        let data = sample(5 * BLOCK + 12345);
        let one = gzip(&data, 65536, 1);
        for (chunk, workers) in [(BLOCK, 2), (1000, 3), (7 * BLOCK, 8), (BLOCK + 1, 1)] {
            assert!(one == gzip(&data, chunk, workers), "chunks of {chunk}, {workers} workers");
        }
        assert_eq!(gunzip(&one), data);
    }

    /// Threads take blocks in whatever order they come free: run after run,
    /// the bytes must not change (a compressor state reused across blocks
    /// made them change).
    #[test]
    fn same_bytes_however_the_blocks_fall_to_threads() {
        // Real bytes (this test's own executable): the synthetic sample
        // does not show the difference a reused state made.
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let data = exe[..exe.len().min(24 * BLOCK)].to_vec();
        assert!(data.len() > 8 * BLOCK, "{} bytes", data.len());
        let first = gzip(&data, BLOCK, 3);
        for run in 0..6 {
            assert!(first == gzip(&data, BLOCK / 3, 2 + run % 3), "run {run}");
        }
    }

    #[test]
    fn round_trips_at_block_edges() {
        for len in [0, 1, WINDOW - 1, BLOCK - 1, BLOCK, BLOCK + 1, 2 * BLOCK, 3 * BLOCK + 7] {
            let data = sample(len);
            let gz = gzip(&data, 4096, 2);
            assert_eq!(gunzip(&gz), data, "{len} bytes");
            // gzip(1) and Go read one member: no second header inside.
            assert_eq!(&gz[..10], &HEADER);
        }
    }

    #[test]
    fn dictionaries_keep_the_ratio_of_one_stream() {
        let data = sample(8 * BLOCK);
        let ours = gzip(&data, BLOCK, 2).len() as f64;
        let mut one = flate2::write::GzEncoder::new(Vec::new(), Compression::default());
        one.write_all(&data).unwrap();
        let whole = one.finish().unwrap().len() as f64;
        assert!(ours <= whole * 1.01, "{ours} bytes against {whole} in one stream");
    }

    #[test]
    fn a_failing_writer_is_an_error_not_a_hang() {
        /// Takes 100 KB, then fails: mid-stream, with blocks in flight.
        struct Full(usize);
        impl Write for Full {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                if self.0 + buf.len() > 100_000 {
                    return Err(io::Error::other("disk full"));
                }
                self.0 += buf.len();
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let data = sample(40 * BLOCK);
        let chunks: Vec<Vec<u8>> = data.chunks(BLOCK).map(<[u8]>::to_vec).collect();
        let e = compress(chunks, Full(0), 2, Compression::default()).err().expect("fails");
        assert_eq!(e.to_string(), "disk full");
    }
}
