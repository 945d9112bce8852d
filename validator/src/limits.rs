//! Resource limits: every byte of an image is untrusted, so the size of what
//! is held in memory or written out is bounded, each bound with a flag that
//! raises it (spec CONSUMER-LIMITS). Hitting one is an error that names the
//! limit and its flag.

use std::fmt;

/// Limits shared by every command that reads an image.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
#[cfg_attr(feature = "cli", command(next_help_heading = "Limits"))]
pub struct Limits {
    /// Largest JSON document (index, manifest, config, oci-layout) read into memory, in bytes.
    #[cfg_attr(feature = "cli", arg(long, value_name = "BYTES", default_value_t = 4 << 20))]
    pub max_json_bytes: u64,
    /// Largest uncompressed size of one layer, in bytes.
    #[cfg_attr(feature = "cli", arg(long, value_name = "BYTES", default_value_t = 1 << 40))]
    pub max_layer_bytes: u64,
    /// A layer that expands more than this many times its compressed size
    /// is treated as a decompression bomb...
    #[cfg_attr(feature = "cli", arg(long, value_name = "N", default_value_t = 100))]
    pub max_ratio: u64,
    /// ...once it has expanded past this many bytes.
    #[cfg_attr(feature = "cli", arg(long, value_name = "BYTES", default_value_t = 8 << 20))]
    pub ratio_floor: u64,
    /// Most entries in one layer.
    #[cfg_attr(feature = "cli", arg(long, value_name = "N", default_value_t = 10_000_000))]
    pub max_entries: u64,
    /// Longest entry name or link target, in bytes.
    #[cfg_attr(feature = "cli", arg(long, value_name = "BYTES", default_value_t = 4096))]
    pub max_path_bytes: usize,
    /// Most components in an entry name; unpack also creates nothing deeper
    /// below DEST than this once symbolic links are resolved.
    #[cfg_attr(feature = "cli", arg(long, value_name = "N", default_value_t = 256))]
    pub max_path_depth: usize,
    /// Largest PAX extended header, GNU long name, PAX record value (an
    /// xattr) or sparse map read into memory, in bytes.
    #[cfg_attr(feature = "cli", arg(long, value_name = "BYTES", default_value_t = 1 << 20))]
    pub max_pax_bytes: usize,
    /// Deepest nesting of image indexes.
    #[cfg_attr(feature = "cli", arg(long, value_name = "N", default_value_t = 8))]
    pub max_index_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_json_bytes: 4 << 20,
            max_layer_bytes: 1 << 40,
            max_ratio: 100,
            ratio_floor: 8 << 20,
            max_entries: 10_000_000,
            max_path_bytes: 4096,
            max_path_depth: 256,
            max_pax_bytes: 1 << 20,
            max_index_depth: 8,
        }
    }
}

/// A limit was hit: what, and the flag that raises it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exceeded {
    /// What went over the limit, with the limit's value.
    pub what: String,
    /// The command-line flag that sets the limit.
    pub flag: &'static str,
}

impl fmt::Display for Exceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (a limit; {} raises it)", self.what, self.flag)
    }
}

impl std::error::Error for Exceeded {}

impl Limits {
    /// Checks the expansion of a layer so far.
    pub fn check_expansion(&self, compressed: u64, uncompressed: u64) -> Result<(), Exceeded> {
        if uncompressed > self.max_layer_bytes {
            return Err(Exceeded {
                what: format!("the layer expands past {} bytes", self.max_layer_bytes),
                flag: "--max-layer-bytes",
            });
        }
        if uncompressed > self.ratio_floor && uncompressed / compressed.max(1) > self.max_ratio {
            return Err(Exceeded {
                what: format!(
                    "the layer expands more than {}-fold ({uncompressed} bytes from {compressed}): a decompression bomb",
                    self.max_ratio
                ),
                flag: "--max-ratio",
            });
        }
        Ok(())
    }

    /// Checks an entry's name (raw bytes) and link target.
    pub fn check_path(&self, name: &[u8], link: Option<&[u8]>) -> Result<(), Exceeded> {
        let longest = name.len().max(link.map_or(0, <[u8]>::len));
        if longest > self.max_path_bytes {
            return Err(Exceeded {
                what: format!("a name of {longest} bytes, longer than {}", self.max_path_bytes),
                flag: "--max-path-bytes",
            });
        }
        let depth = name.split(|b| *b == b'/').filter(|c| !c.is_empty()).count();
        if depth > self.max_path_depth {
            return Err(Exceeded {
                what: format!("a name {depth} components deep, more than {}", self.max_path_depth),
                flag: "--max-path-depth",
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bombs_are_caught_past_the_floor_only() {
        let l = Limits::default();
        assert!(l.check_expansion(1, 8 << 20).is_ok(), "below the floor any ratio is fine");
        assert!(l.check_expansion(100 << 10, 9 << 20).is_ok());
        let e = l.check_expansion(50 << 10, 9 << 20).unwrap_err();
        assert_eq!(e.flag, "--max-ratio");
        assert_eq!(l.check_expansion(1 << 40, (1 << 40) + 1).unwrap_err().flag, "--max-layer-bytes");
    }

    #[test]
    fn paths() {
        let l = Limits { max_path_bytes: 8, max_path_depth: 2, ..Limits::default() };
        assert!(l.check_path(b"a/b", None).is_ok());
        assert_eq!(l.check_path(b"a/b/c", None).unwrap_err().flag, "--max-path-depth");
        assert_eq!(l.check_path(b"x", Some(b"123456789")).unwrap_err().flag, "--max-path-bytes");
    }
}
