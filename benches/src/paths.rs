//! Where results live.
//!
//! Criterion writes to `$CRITERION_HOME`, else `$CARGO_TARGET_DIR/criterion`,
//! else the target directory cargo reports. The benches here share one
//! target directory with another engineer's builds only if told to, so
//! everything follows the same rule, with the running executable's own
//! location (`<target>/<profile>/[deps/]name`) standing in for
//! `cargo metadata`.

use std::path::{Path, PathBuf};

/// The cargo target directory this run belongs to.
pub fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    if let Ok(exe) = std::env::current_exe() {
        let mut dir = exe.parent().map(Path::to_path_buf);
        if dir.as_deref().and_then(Path::file_name) == Some("deps".as_ref()) {
            dir = dir.and_then(|d| d.parent().map(Path::to_path_buf));
        }
        // `dir` is `<target>/<profile>`.
        if let Some(target) = dir.as_deref().and_then(Path::parent) {
            return target.to_path_buf();
        }
    }
    PathBuf::from("target")
}

/// Criterion's output directory, by criterion's own rule.
pub fn criterion_dir() -> PathBuf {
    match std::env::var_os("CRITERION_HOME") {
        Some(dir) => PathBuf::from(dir),
        None => target_dir().join("criterion"),
    }
}

/// Where the benches and binaries of this package save their JSON.
pub fn results_dir() -> PathBuf {
    target_dir().join("dynkey-bench")
}

/// Writes `text` to `path`, creating its directory.
pub fn write(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, text)
}
