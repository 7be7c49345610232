//! The crate's error.

use crate::rust_log::DirectiveError;

/// What [`init`](crate::init) could not do.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Directives of `RUST_LOG` that were skipped; the others apply.
    #[error("RUST_LOG: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Directives(Vec<DirectiveError>),
    /// dynkey refused the baseline (a bad `DYNKEY_*` configuration refuses
    /// every change, say); nothing of it applies.
    #[error("the RUST_LOG baseline was not applied: {0}")]
    Baseline(dynkey::Error),
}
