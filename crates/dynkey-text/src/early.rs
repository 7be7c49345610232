//! Helpers for code that runs before `main` (ELF constructors), for this
//! crate and the crates above it, which keep no `unsafe` of their own.
//!
//! A constructor must never panic and must not rely on std's view of the
//! environment being set up, so the environment is read with libc's
//! `getenv`.

use std::ffi::CStr;

/// Whether the environment variable `name` is set (to anything), read
/// with libc's `getenv`: usable in a constructor.
pub fn env_is_set(name: &CStr) -> bool {
    // SAFETY: `name` is NUL-terminated (a CStr); getenv only reads the
    // environment, and constructors run before any thread could change it.
    !unsafe { libc::getenv(name.as_ptr()) }.is_null()
}

/// Whether the process has exactly one thread (`Threads:` in
/// `/proc/self/status`, read with libc into a stack buffer: no allocation).
/// False when it cannot be read: callers use this to decide whether early
/// work is safe, and unknown is not safe.
pub fn single_threaded() -> bool {
    crate::procfs::process_status().threads == Some(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_environment_and_counts_threads() {
        assert!(env_is_set(c"PATH") || std::env::var_os("PATH").is_none());
        assert!(!env_is_set(c"DYNKEY_SURELY_NOT_SET_ANYWHERE"));
        let _t = std::thread::spawn(std::thread::park);
        assert!(
            !single_threaded(),
            "the test harness and the spawned thread"
        );
    }
}
