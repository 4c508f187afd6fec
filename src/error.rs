//! Locations in input files and the crate-level [`Error`].

use std::fmt;

/// A position in an input file: 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Location {
    /// The file name as the user gave it (`-` for stdin).
    pub file: String,
    /// 1-based line.
    pub line: u64,
    /// 1-based column.
    pub col: u64,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

/// Any error of the ciguard library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The policy could not be read or is invalid.
    #[error(transparent)]
    Policy(#[from] crate::policy::PolicyErrors),
    /// An input document could not be read.
    #[error(transparent)]
    Workload(#[from] crate::workload::WorkloadError),
    /// A document could not be rendered.
    #[error(transparent)]
    Render(#[from] crate::merge::RenderError),
}
