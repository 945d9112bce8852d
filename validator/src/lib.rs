//! Library behind the `single-id` command: reads OCI images and checks,
//! inspects, flattens and unpacks them under the single-ID images
//! specification (`spec/single-id-images.md`).
//!
//! Data flows one way, the same for every job: [`reference`](mod@reference) → [`layout`]
//! (bytes, from any [`layout::BlobStore`]) → [`image`] (index, manifest,
//! config) → [`layer`] (one verified, decompressed stream of entries) →
//! a [`layer::Sink`] (the [`rules`], the unpack extractor, the flatten
//! rewriter) → [`diagnostic`] findings → a [`report`] → [`render`].
//!
//! The four jobs, each with its options and a typed result:
//! - [`validate::validate`] → [`report::Report`]: findings, each with a
//!   stable rule identifier and the spec clause it enforces;
//! - [`inspect::inspect`] → what flattening would change or lose, and the
//!   value to declare;
//! - [`unpack::unpack`] (or [`unpack::unpack_layout`] over a caller's
//!   blob store, or [`unpack::Unpacker`] one layer at a time) → the root
//!   filesystem as a single-ID consumer writes it;
//! - [`flatten::flatten`] → a new layout whose images are `flattened`.
//!
//! Every job fails with one [`error::Error`], which keeps the findings
//! that made it refuse. Progress is reported to a callback
//! ([`progress::Progress`]); the library writes nothing to the terminal.
//! The `cli` feature (on by default) adds what only the command needs:
//! argument parsing, the progress bar and signal handling. The `sources`
//! feature (on by default) reads images from registries, `docker save`
//! archives and podman's store through the installed skopeo
//! (`layout::Remote`), which brings tokio; without it a
//! [`reference::Reference`] names a layout or an OCI archive (both
//! `docker save` formats are read either way).
//!
//! ```
//! use single_id::diagnostic::Severity;
//! use single_id::reference::Reference;
//! use single_id::validate::{self, Options};
//!
//! let image = Reference::parse(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/hello"), None)?;
//! let report = validate::validate(&image, "examples/hello".into(), &Options::default())?;
//! assert_eq!(report.images[0].id_flattening.effective.as_str(), "flattened");
//! assert!(report.worst() < Some(Severity::Error));
//! # Ok::<(), single_id::error::Error>(())
//! ```

#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod annotation;
pub mod diagnostic;
pub mod digest;
pub mod error;
pub mod flatten;
pub mod image;
pub mod inspect;
pub mod interrupt;
pub mod json;
pub mod layer;
pub mod layout;
pub mod levels;
pub mod limits;
pub mod policy;
pub mod progress;
pub mod reference;
pub mod render;
pub mod report;
pub mod rules;
pub mod scan;
pub mod spec;
pub mod stats;
pub mod unpack;
pub mod validate;
