//! The dyndbg query language (placeholder; see issue 4).
#![forbid(unsafe_code)]
