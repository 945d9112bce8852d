//! Output formats: thin views over one [`Report`](crate::report::Report).

pub mod human;
pub mod inspect;
pub mod json;
pub mod sarif;
pub mod unpack;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Readable text, grouped by image.
    Human,
    /// One JSON document; see schema/validate-report.schema.json.
    Json,
    /// SARIF 2.1.0 for code scanning (validate only).
    Sarif,
}
