//! The validator's integration tests, one module per area, in one test
//! binary so that `support/` is compiled once rather than once per file.
//!
//! Run one area with a filter: `cargo test -p single-id --test it adversarial::`.

mod support;

mod adversarial;
mod ci_controls;
mod differential;
mod flatten;
mod inspect;
mod json_readers;
mod layers;
mod library;
mod limits;
mod memory;
mod producers;
mod properties;
mod real_tools;
mod recommend;
mod regressions;
mod schemas;
mod shipping;
mod signals;
mod sources;
mod spec;
mod unpack;
mod unpack_tree;
mod validate;
