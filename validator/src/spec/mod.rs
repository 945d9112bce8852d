//! Definitions of `spec/single-id-images.md` that several commands apply
//! alike: what a whiteout name is, which extended attributes carry owners
//! or privilege, which IDs and names count as root, and which media types
//! make an image. Validate, inspect, unpack and flatten all call these, so
//! the profile is written down once in code.

pub mod ids;
pub mod media_type;
pub mod whiteout;
pub mod xattr;
