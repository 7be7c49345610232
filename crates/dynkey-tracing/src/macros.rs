//! `trace!`, `debug!`, `info!`, `warn!`, `error!`: tracing's macros as
//! dyndbg callsites.
//!
//! Each expands to a compiled-in dynkey callsite (so it is listed before it
//! runs) whose enabled arm is tracing's own macro of that level, given the
//! caller's tokens unchanged: fields, `target:`, `parent:`, `name:`, spans
//! and subscribers behave exactly as with tracing. While the site is off,
//! the whole statement is one NOP: nothing is evaluated, not even the
//! arguments.
//!
//! The listing needs two things from the tokens, found by a small scanner
//! (`__dynkey_tracing_scan!`) that skips `name:`, `parent:` and the fields:
//! the target (the row's module: `target:` when given, else the module
//! path) and the message's format literal (empty when the event has
//! fields only).

/// Like [`tracing::trace!`], as a dyndbg callsite of class `TRACE` (see the
/// [crate docs](crate)).
#[macro_export]
macro_rules! trace {
    ($($arg:tt)+) => {
        $crate::__dynkey_tracing_scan!(@scan [trace "TRACE" ($($arg)+)] [] $($arg)+)
    };
}

/// Like [`tracing::debug!`], as a dyndbg callsite of class `DEBUG` (see the
/// [crate docs](crate)).
///
/// ```
/// use dynkey_tracing::debug;
/// # let (user, id) = ("ann", 7);
/// debug!("loaded {} rows", 3);
/// debug!(user, id, "signed in");
/// debug!(target: "audit", ?user, %id, kind = "login");
/// ```
#[macro_export]
macro_rules! debug {
    ($($arg:tt)+) => {
        $crate::__dynkey_tracing_scan!(@scan [debug "DEBUG" ($($arg)+)] [] $($arg)+)
    };
}

/// Like [`tracing::info!`], as a dyndbg callsite of class `INFO` (see the
/// [crate docs](crate)).
#[macro_export]
macro_rules! info {
    ($($arg:tt)+) => {
        $crate::__dynkey_tracing_scan!(@scan [info "INFO" ($($arg)+)] [] $($arg)+)
    };
}

/// Like [`tracing::warn!`], as a dyndbg callsite of class `WARN` (see the
/// [crate docs](crate)).
#[macro_export]
macro_rules! warn {
    ($($arg:tt)+) => {
        $crate::__dynkey_tracing_scan!(@scan [warn "WARN" ($($arg)+)] [] $($arg)+)
    };
}

/// Like [`tracing::error!`], as a dyndbg callsite of class `ERROR` (see the
/// [crate docs](crate)).
#[macro_export]
macro_rules! error {
    ($($arg:tt)+) => {
        $crate::__dynkey_tracing_scan!(@scan [error "ERROR" ($($arg)+)] [] $($arg)+)
    };
}

/// Finds the target and the message's format in tracing's macro syntax,
/// then expands to the callsite. `@scan` is at the start of an item (a
/// prefix such as `target:`, a field, or the message); `@skip` is inside an
/// item it could not parse, up to the next comma at this level.
#[doc(hidden)]
#[macro_export]
macro_rules! __dynkey_tracing_scan {
    // The message: a literal that is no field name (not followed by `=`).
    (@scan $c:tt $t:tt $fmt:literal $(, $($rest:tt)*)?) => {
        $crate::__dynkey_tracing_site!($c $t [$fmt])
    };
    // No message.
    (@scan $c:tt $t:tt) => {
        $crate::__dynkey_tracing_site!($c $t [])
    };
    // Prefixes.
    (@scan $c:tt $t:tt target: $target:expr, $($rest:tt)+) => {
        $crate::__dynkey_tracing_scan!(@scan $c [$target] $($rest)+)
    };
    (@scan $c:tt $t:tt parent: $parent:expr, $($rest:tt)+) => {
        $crate::__dynkey_tracing_scan!(@scan $c $t $($rest)+)
    };
    (@scan $c:tt $t:tt name: $name:expr, $($rest:tt)+) => {
        $crate::__dynkey_tracing_scan!(@scan $c $t $($rest)+)
    };
    // Fields: `a.b = v`, `a = ?v`, `a = %v`, `?a`, `%a`, `a`, `"a" = v`,
    // `{ expr } = v`, and a `{ ... }` group of fields.
    (@scan $c:tt $t:tt $($k:ident).+ = ? $v:expr $(, $($rest:tt)*)?) => {
        $crate::__dynkey_tracing_scan!(@scan $c $t $($($rest)*)?)
    };
    (@scan $c:tt $t:tt $($k:ident).+ = % $v:expr $(, $($rest:tt)*)?) => {
        $crate::__dynkey_tracing_scan!(@scan $c $t $($($rest)*)?)
    };
    (@scan $c:tt $t:tt $($k:ident).+ = $v:expr $(, $($rest:tt)*)?) => {
        $crate::__dynkey_tracing_scan!(@scan $c $t $($($rest)*)?)
    };
    (@scan $c:tt $t:tt ? $($k:ident).+ $(, $($rest:tt)*)?) => {
        $crate::__dynkey_tracing_scan!(@scan $c $t $($($rest)*)?)
    };
    (@scan $c:tt $t:tt % $($k:ident).+ $(, $($rest:tt)*)?) => {
        $crate::__dynkey_tracing_scan!(@scan $c $t $($($rest)*)?)
    };
    (@scan $c:tt $t:tt $($k:ident).+ $(, $($rest:tt)*)?) => {
        $crate::__dynkey_tracing_scan!(@scan $c $t $($($rest)*)?)
    };
    (@scan $c:tt $t:tt $k:literal = ? $v:expr $(, $($rest:tt)*)?) => {
        $crate::__dynkey_tracing_scan!(@scan $c $t $($($rest)*)?)
    };
    (@scan $c:tt $t:tt $k:literal = % $v:expr $(, $($rest:tt)*)?) => {
        $crate::__dynkey_tracing_scan!(@scan $c $t $($($rest)*)?)
    };
    (@scan $c:tt $t:tt $k:literal = $v:expr $(, $($rest:tt)*)?) => {
        $crate::__dynkey_tracing_scan!(@scan $c $t $($($rest)*)?)
    };
    (@scan $c:tt $t:tt { $($k:tt)* } = ? $v:expr $(, $($rest:tt)*)?) => {
        $crate::__dynkey_tracing_scan!(@scan $c $t $($($rest)*)?)
    };
    (@scan $c:tt $t:tt { $($k:tt)* } = % $v:expr $(, $($rest:tt)*)?) => {
        $crate::__dynkey_tracing_scan!(@scan $c $t $($($rest)*)?)
    };
    (@scan $c:tt $t:tt { $($k:tt)* } = $v:expr $(, $($rest:tt)*)?) => {
        $crate::__dynkey_tracing_scan!(@scan $c $t $($($rest)*)?)
    };
    (@scan $c:tt $t:tt { $($f:tt)* } $(, $($rest:tt)*)?) => {
        $crate::__dynkey_tracing_scan!(@scan $c $t $($($rest)*)?)
    };
    // Anything else (a message built by a macro, say): up to the next comma.
    (@scan $c:tt $t:tt $first:tt $($rest:tt)*) => {
        $crate::__dynkey_tracing_scan!(@skip $c $t $($rest)*)
    };
    (@skip $c:tt $t:tt , $($rest:tt)*) => {
        $crate::__dynkey_tracing_scan!(@scan $c $t $($rest)*)
    };
    (@skip $c:tt $t:tt $first:tt $($rest:tt)*) => {
        $crate::__dynkey_tracing_scan!(@skip $c $t $($rest)*)
    };
    (@skip $c:tt $t:tt) => {
        $crate::__dynkey_tracing_site!($c $t [])
    };
}

/// The callsite: module = the target (or the module path), class = the
/// level, and tracing's macro with the caller's tokens as its enabled arm.
#[doc(hidden)]
#[macro_export]
macro_rules! __dynkey_tracing_site {
    ([$level:ident $class:literal ($($arg:tt)+)] [$($target:expr)?] [$($fmt:literal)?]) => {
        $crate::__dynkey::__guarded_callsite!(
            module = $crate::__dynkey_tracing_or!([$($target)?] ::core::module_path!()),
            class = ::core::option::Option::Some($class),
            format = $crate::__dynkey_tracing_or!([$($fmt)?] ""),
            { $crate::__tracing::$level!($($arg)+) }
        )
    };
}

/// The bracketed value if there is one, else the default.
#[doc(hidden)]
#[macro_export]
macro_rules! __dynkey_tracing_or {
    ([] $default:expr) => {
        $default
    };
    ([$value:expr] $default:expr) => {
        $value
    };
}
