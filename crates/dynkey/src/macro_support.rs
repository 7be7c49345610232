//! Support for the macros of other crates that declare dyndbg callsites
//! (`dynkey-tracing`'s `debug!` and friends): what they expand to, so that
//! they depend on this module rather than on dynkey's private internals.
//! Not a stable API.

pub use crate::callsite::func_name;
pub use dynkey_text::branch_unlikely;

/// A compiled-in callsite (listed before it runs, like `pr_debug!`'s) with
/// the given module, class and format, whose body runs when its `p` flag
/// is on: the body is the enabled arm of an inline site (a NOP while off).
/// File, line and function are those of the outermost macro invocation.
#[doc(hidden)]
#[macro_export]
macro_rules! __guarded_callsite {
    (module = $module:expr, class = $class:expr, format = $fmt:expr, $body:block) => {{
        fn __dynkey_here() {}
        #[unsafe(link_section = "dynkey_callsites_v1")]
        #[used]
        static __DYNKEY_CALLSITE: $crate::Callsite = $crate::Callsite::__new(
            $module,
            ::core::file!(),
            ::core::line!(),
            $fmt,
            $class,
            $crate::FuncName::Lazy(|| {
                $crate::macro_support::func_name(::core::any::type_name_of_val(&__dynkey_here))
            }),
            ::core::option::Option::None,
        );
        // No `cold_path()` in the body: it would make LLVM treat the calls
        // of the body (tracing's dispatch) as cold and not inline them (an
        // enabled `dynkey_tracing::debug!` measured 1.4x tracing's own
        // with it, 1.0x without; the disabled path is the same NOP either
        // way, the body being the target of the site's jump).
        if $crate::macro_support::branch_unlikely!(__DYNKEY_CALLSITE) $body
    }};
}
