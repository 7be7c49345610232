//! Class maps: named debug categories (like DRM's `DRM_UT_*`) controlled
//! together through one numeric param (`drm.debug=0x1ff`).
//!
//! A class map lists class names (name *i* has id `base + i` and is bit *i*
//! of the param), its type, the modules that use the names, and the flag
//! characters the param toggles. Writing the param changes only those flag
//! characters, only on the classes whose bit changed, and applies all of
//! them as **one** commit (the kernel pays one sync per bit).

use dynkey_query::ClassMapKind;

/// A class name, as `pr_debug!(class: NAME, ...)` takes it. Declared by
/// [`class_map!`](crate::class_map).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Class {
    name: &'static str,
}

impl Class {
    /// A class called `name`.
    pub const fn new(name: &'static str) -> Class {
        Class { name }
    }
    /// Its name.
    pub const fn name(&self) -> &'static str {
        self.name
    }
}

/// A compiled-in class map (see [`class_map!`](crate::class_map)).
#[derive(Debug)]
pub struct ClassMapDesc {
    pub(crate) param: &'static str,
    pub(crate) kind: ClassMapKind,
    pub(crate) base: u8,
    pub(crate) classes: &'static [&'static str],
    pub(crate) modules: &'static [&'static str],
    pub(crate) flags: &'static str,
}

impl ClassMapDesc {
    #[doc(hidden)]
    pub const fn __new(
        param: &'static str,
        kind: ClassMapKind,
        base: u8,
        classes: &'static [&'static str],
        modules: &'static [&'static str],
        flags: &'static str,
    ) -> Self {
        ClassMapDesc {
            param,
            kind,
            base,
            classes,
            modules,
            flags,
        }
    }
}

/// A class map declared at run time (from data, e.g. `dynkeyd --sites`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassMapSpec {
    /// The param name, e.g. `drm.debug`.
    pub param: String,
    /// `disjoint_bits` or `level_num`.
    pub kind: ClassMapKind,
    /// Class id of the first name.
    pub base: u8,
    /// Class names, in bit order.
    pub classes: Vec<String>,
    /// Modules (crate names or module paths) that know these names.
    pub modules: Vec<String>,
    /// Flag characters the param toggles (usually `p`).
    pub flags: String,
}

/// Declares a class map with its param, and one [`Class`] constant per name.
///
/// ```
/// dynkey::class_map!(pub static DRM_DEBUG = disjoint_bits(param = "drm.debug", base = 0, modules = ["drm", "i915"]) {
///     DRM_UT_CORE, DRM_UT_DRIVER, DRM_UT_KMS,
/// });
/// assert_eq!(DRM_UT_KMS.name(), "DRM_UT_KMS");
/// ```
///
/// The type is `disjoint_bits` (one bit per class) or `level_num` (a level
/// N turns on the first N classes). `flags = "pmf"` may follow `modules` to
/// toggle more than `p`. A module listed covers itself and every module
/// below it (`"my_crate"` covers `my_crate::gpu`); `"*"` covers every module
/// (a map of levels that every module uses).
#[macro_export]
macro_rules! class_map {
    ($(#[$m:meta])* $vis:vis static $name:ident = $kind:ident(param = $param:literal, base = $base:literal, modules = [$($module:literal),* $(,)?] $(, flags = $flags:literal)? $(,)?) { $($class:ident),+ $(,)? } $(;)?) => {
        $(#[$m])*
        #[unsafe(link_section = "dynkey_classmaps_v1")]
        #[used]
        $vis static $name: $crate::ClassMapDesc = $crate::ClassMapDesc::__new(
            $param,
            $crate::__class_map_kind!($kind),
            $base,
            &[$(::core::stringify!($class)),+],
            &[$($module),*],
            $crate::__class_map_flags!($($flags)?),
        );
        $(
            #[allow(missing_docs)]
            $vis const $class: $crate::Class = $crate::Class::new(::core::stringify!($class));
        )+
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __class_map_kind {
    (disjoint_bits) => {
        $crate::__private::dynkey_query::ClassMapKind::DisjointBits
    };
    (level_num) => {
        $crate::__private::dynkey_query::ClassMapKind::LevelNum
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __class_map_flags {
    () => {
        "p"
    };
    ($flags:literal) => {
        $flags
    };
}

/// Whether the module list `modules` covers `module`: `*` (every module),
/// equal, or a parent module path of it.
pub(crate) fn covers(modules: &[&str], module: &str) -> bool {
    modules.iter().any(|m| {
        *m == "*"
            || module == *m
            || module
                .strip_prefix(m)
                .is_some_and(|rest| rest.starts_with("::"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_lists_cover_submodules_on_path_boundaries() {
        assert!(covers(&["drm"], "drm"));
        assert!(covers(&["drm"], "drm::kms"));
        assert!(
            !covers(&["drm"], "drm_helper"),
            "a prefix that is not a path boundary"
        );
        assert!(!covers(&["drm"], "i915"));
        assert!(covers(&["drm", "i915"], "i915::display"));
        assert!(
            covers(&["*"], "anything::at::all"),
            "a map may cover every module"
        );
    }
}
