//! Conformance suite for single-ID consumers: golden OCI image fixtures,
//! each with the tree a conforming unpack must produce, and a harness that
//! runs any unpacker against them and reports per requirement.
//!
//! `conformance/cases/*.json` describe the cases; `generate` turns each
//! into `conformance/fixtures/<case>/` (an OCI layout and `expected.json`);
//! `run` unpacks every fixture with an adapter and compares.

pub mod case;
pub mod expect;
pub mod generate;
pub mod harness;
pub mod report;
pub mod spec_index;

/// The case descriptions built into the harness (see build.rs).
pub mod embedded {
    include!(concat!(env!("OUT_DIR"), "/cases.rs"));
}
