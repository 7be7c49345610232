//! Callsites: `pr_debug!` and friends.
//!
//! Each callsite is a `static` [`Callsite`] placed by the macro in the
//! `dynkey_callsites_v1` linker section, so the listing shows every callsite
//! compiled into the binary, including ones that never ran. Its `p` flag is
//! a key tested by an inline site (a NOP while disabled); the decoration
//! flags `m f l t s` are plain data read only when it prints.

use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};

use dynkey_query::Flags;
use dynkey_text::{KeyStatic, RawKey};

use crate::ratelimit::{Decision, RateLimit};
use crate::sink::{self, Record};

/// The enclosing function's name: known at compile time for sites declared
/// by data, computed from a type name for compiled-in ones (Rust has no
/// `function!()`).
#[derive(Debug, Clone, Copy)]
pub enum FuncName {
    /// A name known up front.
    Static(&'static str),
    /// `type_name` of an item nested in the function, trimmed by [`func_name`].
    Lazy(fn() -> &'static str),
}

/// A debug callsite: where it is, what it prints, and its flags.
#[repr(C)]
#[derive(Debug)]
pub struct Callsite {
    /// Offset 0, so the inline site can name the callsite itself as its key.
    key: RawKey,
    /// All flags, `p` included (written under the control lock; `p` is
    /// published through `key`).
    flags: AtomicU8,
    pub(crate) module: &'static str,
    pub(crate) file: &'static str,
    pub(crate) line: u32,
    pub(crate) format: &'static str,
    pub(crate) class: Option<&'static str>,
    func: FuncName,
    ratelimit: Option<&'static RateLimit>,
}

#[allow(unsafe_code)] // the contract of KeyStatic, which inline sites rely on
// SAFETY: Callsite is repr(C) with its RawKey as the first field.
unsafe impl KeyStatic for Callsite {
    fn raw_key(&self) -> &RawKey {
        &self.key
    }
}

impl Callsite {
    #[doc(hidden)]
    #[allow(clippy::too_many_arguments)]
    pub const fn __new(
        module: &'static str,
        file: &'static str,
        line: u32,
        format: &'static str,
        class: Option<&'static str>,
        func: FuncName,
        ratelimit: Option<&'static RateLimit>,
    ) -> Callsite {
        Callsite {
            key: RawKey::new(false),
            flags: AtomicU8::new(0),
            module,
            file,
            line,
            format,
            class,
            func,
            ratelimit,
        }
    }

    /// The module path (`module_path!()`).
    pub fn module(&self) -> &'static str {
        self.module
    }
    /// The file (`file!()`).
    pub fn file(&self) -> &'static str {
        self.file
    }
    /// The line.
    pub fn line(&self) -> u32 {
        self.line
    }
    /// The format string as written.
    pub fn format(&self) -> &'static str {
        self.format
    }
    /// The class name, for class'd callsites.
    pub fn class(&self) -> Option<&'static str> {
        self.class
    }
    /// The enclosing function's name.
    pub fn func(&self) -> &'static str {
        match self.func {
            FuncName::Static(s) => s,
            FuncName::Lazy(f) => f(),
        }
    }
    /// The current flags.
    pub fn flags(&self) -> Flags {
        // Relaxed: flags are independent data, written under the control lock.
        Flags::from_bits_truncate(self.flags.load(Ordering::Relaxed))
    }
    /// Whether `p` is set (published state).
    pub fn is_enabled(&self) -> bool {
        self.key.is_enabled()
    }
    pub(crate) fn key(&'static self) -> &'static RawKey {
        &self.key
    }
    pub(crate) fn store_flags(&self, f: Flags) {
        self.flags.store(f.bits(), Ordering::Relaxed);
    }

    /// Prints a message from this callsite: called by the macros on the
    /// enabled path only (ratelimit checked here, after the enable check).
    #[doc(hidden)]
    #[cold]
    #[inline(never)]
    pub fn __emit(&self, args: fmt::Arguments<'_>) {
        if let Some(rl) = self.ratelimit {
            match rl.check() {
                Decision::Suppress => return,
                Decision::Pass { suppressed: 0 } => {}
                Decision::Pass { suppressed } => {
                    self.print(format_args!("{suppressed} callbacks suppressed"));
                }
            }
        }
        self.print(args);
    }

    fn print(&self, args: fmt::Arguments<'_>) {
        let flags = self.flags();
        let func = self.func();
        // gettid is a system call: only for the `t` flag.
        let tid = if flags.contains(Flags::T) {
            dynkey_text::os_thread_id()
        } else {
            0
        };
        let prefix = sink::decoration(flags, self.module, func, self.file, self.line, tid);
        sink::emit(&Record {
            module: self.module,
            file: self.file,
            line: self.line,
            func,
            flags,
            prefix: &prefix,
            args,
        });
    }
}

/// Trims the `type_name` of an item nested in a function down to the
/// function's name: `app::net::serve::{{closure}}::__dynkey_here` -> `serve`.
pub fn func_name(type_name: &'static str) -> &'static str {
    let mut s = type_name
        .strip_suffix("::__dynkey_here")
        .unwrap_or(type_name);
    while let Some(rest) = s.strip_suffix("::{{closure}}") {
        s = rest;
    }
    // The last path segment, ignoring `::` inside generic arguments.
    let mut depth = 0usize;
    let bytes = s.as_bytes();
    let mut start = 0;
    for i in 0..bytes.len() {
        match bytes[i] {
            b'<' => depth += 1,
            b'>' => depth = depth.saturating_sub(1),
            b':' if depth == 0 && i + 1 < bytes.len() && bytes[i + 1] == b':' => start = i + 2,
            _ => {}
        }
    }
    &s[start..]
}

/// A debug message, printed when the callsite is enabled (`p`), decorated
/// by its flags.
///
/// ```
/// dynkey::pr_debug!("connected to {}", "db1");
/// dynkey::pr_debug!(class: DRM_UT_KMS, "modeset on pipe {}", 'A');
/// # dynkey::class_map!(static DRM = disjoint_bits(param = "drm.debug", base = 0, modules = ["rust_out"]) { DRM_UT_KMS });
/// ```
#[macro_export]
macro_rules! pr_debug {
    (class: $class:path, $fmt:literal $($args:tt)*) => {
        $crate::__callsite!(::core::option::Option::Some($class.name()), ::core::option::Option::None, $fmt $($args)*)
    };
    ($fmt:literal $($args:tt)*) => {
        $crate::__callsite!(::core::option::Option::None, ::core::option::Option::None, $fmt $($args)*)
    };
}

/// Like [`pr_debug!`], with at most 10 messages per 5 s per callsite (the
/// suppressed count is reported when a new window opens).
#[macro_export]
macro_rules! pr_debug_ratelimited {
    (class: $class:path, $fmt:literal $($args:tt)*) => {{
        static __DYNKEY_RATELIMIT: $crate::RateLimit = $crate::RateLimit::new();
        $crate::__callsite!(::core::option::Option::Some($class.name()), ::core::option::Option::Some(&__DYNKEY_RATELIMIT), $fmt $($args)*)
    }};
    ($fmt:literal $($args:tt)*) => {{
        static __DYNKEY_RATELIMIT: $crate::RateLimit = $crate::RateLimit::new();
        $crate::__callsite!(::core::option::Option::None, ::core::option::Option::Some(&__DYNKEY_RATELIMIT), $fmt $($args)*)
    }};
}

#[doc(hidden)]
#[macro_export]
macro_rules! __callsite {
    ($class:expr, $ratelimit:expr, $fmt:literal $($args:tt)*) => {{
        fn __dynkey_here() {}
        #[unsafe(link_section = "dynkey_callsites_v1")]
        #[used]
        static __DYNKEY_CALLSITE: $crate::Callsite = $crate::Callsite::__new(
            ::core::module_path!(),
            ::core::file!(),
            ::core::line!(),
            $fmt,
            $class,
            $crate::FuncName::Lazy(|| $crate::__private::func_name(::core::any::type_name_of_val(&__dynkey_here))),
            $ratelimit,
        );
        if $crate::__private::dynkey_text::branch_unlikely!(__DYNKEY_CALLSITE) {
            __DYNKEY_CALLSITE.__emit(::core::format_args!($fmt $($args)*));
        }
    }};
}

/// A compiled-in callsite with given metadata instead of `module_path!()`
/// and friends (tests reproduce kernel-like site tables with it). Evaluates
/// to whether the site is enabled (and printed).
#[doc(hidden)]
#[macro_export]
macro_rules! __pr_debug_described {
    (module = $module:expr, file = $file:expr, func = $func:expr, line = $line:expr, class = $class:expr, $fmt:literal $($args:tt)*) => {{
        #[unsafe(link_section = "dynkey_callsites_v1")]
        #[used]
        static __DYNKEY_CALLSITE: $crate::Callsite =
            $crate::Callsite::__new($module, $file, $line, $fmt, $class, $crate::FuncName::Static($func), ::core::option::Option::None);
        if $crate::__private::dynkey_text::branch_unlikely!(__DYNKEY_CALLSITE) {
            __DYNKEY_CALLSITE.__emit(::core::format_args!($fmt $($args)*));
            true
        } else {
            false
        }
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn func_names_are_trimmed() {
        assert_eq!(func_name("app::net::serve::__dynkey_here"), "serve");
        assert_eq!(
            func_name("app::net::serve::{{closure}}::{{closure}}::__dynkey_here"),
            "serve"
        );
        assert_eq!(
            func_name("app::Conn<alloc::string::String>::send::__dynkey_here"),
            "send"
        );
        assert_eq!(func_name("main::__dynkey_here"), "main");
        assert_eq!(func_name("plain"), "plain");
    }
}
