//! Library behind the `single-id` command: reads OCI image layouts and
//! checks them against the single-ID images specification
//! (`spec/single-id-images.md`).
//!
//! Data flows one way: [`reference`] → [`layout`] → [`image`] → [`rules`]
//! → [`report`] → [`render`].

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
