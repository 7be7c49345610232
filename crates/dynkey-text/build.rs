//! Decides, once, whether this build patches code.
//!
//! Emits `cfg(dynkey_patching)` on x86-64 Linux unless the build asks for
//! the fallback with `RUSTFLAGS="--cfg dynkey_atomic_only"` (how CI checks
//! the atomic path on this machine). Every platform condition of the crate
//! is written as `cfg(dynkey_patching)`, so there is one place to change.
//! The cfgs are declared for `unexpected_cfgs`; they are not API: other
//! crates read `dynkey_text::PATCHING_COMPILED` instead.
//!
//! The `links = "dynkey_text"` key in Cargo.toml, which needs a build
//! script, is what makes cargo refuse a second copy of this crate in one
//! binary (see `records.rs`).

fn main() {
    println!("cargo::rustc-check-cfg=cfg(dynkey_patching)");
    println!("cargo::rustc-check-cfg=cfg(dynkey_atomic_only)");
    println!("cargo::rerun-if-changed=build.rs");
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    // Set by cargo from the rustc flags (RUSTFLAGS) of this build.
    let atomic_only = std::env::var_os("CARGO_CFG_DYNKEY_ATOMIC_ONLY").is_some();
    if arch == "x86_64" && os == "linux" && !atomic_only {
        println!("cargo::rustc-cfg=dynkey_patching");
    }
}
