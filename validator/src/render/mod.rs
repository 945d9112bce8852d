//! Output formats: thin views over one [`Report`](crate::report::Report).

pub mod human;
pub mod inspect;
pub mod json;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Readable text, grouped by image.
    Human,
    /// One JSON document; see schema/validate-report.schema.json.
    Json,
}
