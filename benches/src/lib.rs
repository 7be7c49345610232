//! Shared helpers for dynkey's benchmarks.
