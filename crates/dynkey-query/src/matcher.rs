//! Does a query select a site? The kernel's selection (`ddebug_change` in
//! lib/dynamic_debug.c), extended with negation and Rust module paths.
//!
//! A query is a plain AND of its keywords' tests; a negated keyword inverts
//! its whole test. The per-keyword tests are public so a caller with an
//! index (sites grouped by module, say) can test each distinct module once
//! instead of once per site.
//!
//! The per-keyword rules are documented on [`Query::matches`].

use crate::query::Query;

/// A site described by plain data, so this crate needs nothing from the
/// others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SiteInfo<'a> {
    /// Rust module path, e.g. `my_crate::net::virtio` (or a kernel-style
    /// name such as `virtio_net`).
    pub module: &'a str,
    /// Source path as recorded (`file!()`).
    pub file: &'a str,
    /// Enclosing function's name.
    pub func: &'a str,
    /// Source line.
    pub line: u32,
    /// The format string's bytes.
    pub format: &'a [u8],
    /// The site's class name, `None` for an unclassed site.
    pub class: Option<&'a str>,
}

/// The crate name of a module path: its first `::` segment.
pub fn crate_name(module_path: &str) -> &str {
    module_path
        .split_once("::")
        .map_or(module_path, |(krate, _)| krate)
}

/// The basename of a path: what follows its last `/`.
pub fn basename(path: &str) -> &str {
    path.rsplit_once('/').map_or(path, |(_, base)| base)
}

impl Query {
    /// The full test: class rule, every keyword, negations.
    ///
    /// * `module`: the glob matches the full Rust module path
    ///   (`my_crate::net::virtio`) or its crate name (the first `::` segment);
    ///   negated, neither may match.
    /// * `file`: the glob matches the stored path or its basename (after the
    ///   last `/`); negated, neither may match. Paths are `file!()` strings,
    ///   already relative, so the kernel's third form (source-root relative) is
    ///   the first.
    /// * `func`: the glob matches the function name.
    /// * `format`: substring, or prefix for `^`, on bytes.
    /// * `line`: inside the range, 0 being no bound.
    /// * `class`: without `class`, only unclassed sites match (the kernel's
    ///   class protection); with it, only sites of that class. The caller must
    ///   give a site's class as a name its module knows through a class map: then
    ///   comparing names equals the kernel's per-module lookup
    ///   (`ddebug_find_valid_class`), since a module that does not know the
    ///   name has no site of that class.
    pub fn matches(&self, site: &SiteInfo<'_>) -> bool {
        self.matches_class(site.class)
            && self.matches_module(site.module)
            && self.matches_line(site.line)
            && self.matches_func(site.func)
            && self.matches_file(site.file)
            && self.matches_format(site.format)
    }

    /// The class rule alone: a query without `class` matches only
    /// unclassed sites; with it, only sites of exactly that class.
    pub fn matches_class(&self, class: Option<&str>) -> bool {
        self.class.as_deref() == class
    }

    /// The module predicate alone (true when `module` is absent): full path
    /// or crate name, inverted when negated.
    pub fn matches_module(&self, module_path: &str) -> bool {
        self.module.as_ref().is_none_or(|m| {
            let glob = &m.pattern;
            let hit = glob.matches(module_path) || {
                let krate = crate_name(module_path);
                krate.len() != module_path.len() && glob.matches(krate)
            };
            m.verdict(hit)
        })
    }

    /// The file predicate alone (true when `file` is absent): whole path or
    /// basename, inverted when negated.
    pub fn matches_file(&self, path: &str) -> bool {
        self.file.as_ref().is_none_or(|f| {
            let glob = &f.pattern;
            let hit = glob.matches(path) || {
                let base = basename(path);
                base.len() != path.len() && glob.matches(base)
            };
            f.verdict(hit)
        })
    }

    /// The function predicate alone (true when absent).
    pub fn matches_func(&self, func: &str) -> bool {
        self.func
            .as_ref()
            .is_none_or(|f| f.verdict(f.pattern.matches(func)))
    }

    /// The format predicate alone (true when absent).
    pub fn matches_format(&self, format: &[u8]) -> bool {
        self.format
            .as_ref()
            .is_none_or(|f| f.verdict(f.pattern.matches(format)))
    }

    /// The line predicate alone (true when no range was given).
    pub fn matches_line(&self, line: u32) -> bool {
        self.lines.contains(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse;

    fn q(text: &str) -> Query {
        let mut v = parse(text.as_bytes()).unwrap_or_else(|e| panic!("{text:?}: {e:?}"));
        assert_eq!(v.len(), 1);
        v.remove(0)
    }

    const NET: SiteInfo<'static> = SiteInfo {
        module: "my_crate::net::virtio",
        file: "src/net/virtio.rs",
        func: "probe",
        line: 120,
        format: b"probe start\n",
        class: None,
    };

    #[test]
    fn module_matches_full_path_or_crate_name() {
        assert!(q("module my_crate +p").matches(&NET));
        assert!(q("module my_crate::net::virtio +p").matches(&NET));
        assert!(q("module my_crate::net::* +p").matches(&NET));
        assert!(
            !q("module net +p").matches(&NET),
            "a middle segment is not the crate name"
        );
        assert!(!q("module virtio +p").matches(&NET), "nor is the last");
        assert!(
            !q("module !my_crate +p").matches(&NET),
            "negation is NOT(full OR crate)"
        );
        assert!(!q("module !my_crate::net::virtio +p").matches(&NET));
        assert!(q("module !other +p").matches(&NET));
        assert!(
            q("module ! +p").matches(&NET),
            "empty negated pattern selects every module"
        );
        assert!(!q("module \"\" +p").matches(&NET));
    }

    #[test]
    fn file_matches_path_or_basename() {
        assert!(q("file virtio.rs +p").matches(&NET));
        assert!(q("file src/net/virtio.rs +p").matches(&NET));
        assert!(
            !q("file net/virtio.rs +p").matches(&NET),
            "no partial directory suffix"
        );
        assert!(q("file *net/virtio.rs +p").matches(&NET));
        assert!(
            !q("file !virtio.rs +p").matches(&NET),
            "negated: no form may match"
        );
        assert!(!q("file !src/* +p").matches(&NET));
        assert!(q("file !other.rs +p").matches(&NET));
    }

    #[test]
    fn file_tail_sets_func_or_lines() {
        assert!(q("file virtio.rs:pro* +p").matches(&NET));
        assert!(!q("file virtio.rs:other +p").matches(&NET));
        assert!(q("file virtio.rs:100-200 +p").matches(&NET));
        assert!(!q("file virtio.rs:121- +p").matches(&NET));
        assert!(
            q("file virtio.rs: +p").matches(&NET),
            "empty tail: no constraint"
        );
    }

    #[test]
    fn func_format_line() {
        assert!(q("func probe +p").matches(&NET));
        assert!(!q("func !probe +p").matches(&NET));
        assert!(q("format start +p").matches(&NET));
        assert!(q("format ^probe +p").matches(&NET));
        assert!(!q("format ^start +p").matches(&NET));
        assert!(!q("format !^probe +p").matches(&NET), "! first, then ^");
        assert!(!q("format ! +p").matches(&NET), "format ! matches nothing");
        assert!(q("format '' +p").matches(&NET), "empty format matches all");
        assert!(q("line 120 +p").matches(&NET) && !q("line 121 +p").matches(&NET));
        assert!(q("line 0 +p").matches(&NET));
    }

    #[test]
    fn class_protection() {
        let classed = SiteInfo {
            class: Some("DRM_UT_KMS"),
            ..NET
        };
        assert!(
            !q("+p").matches(&classed),
            "a classless query never touches a class'd site"
        );
        assert!(
            !q("module !virtio* +p").matches(&classed),
            "negation does not lift protection"
        );
        assert!(q("class DRM_UT_KMS +p").matches(&classed));
        assert!(!q("class DRM_UT_CORE +p").matches(&classed));
        assert!(
            !q("class DRM_UT_KMS +p").matches(&NET),
            "a class query never touches unclassed sites"
        );
    }

    #[test]
    fn helpers() {
        assert_eq!(crate_name("a::b::c"), "a");
        assert_eq!(crate_name("virtio_net"), "virtio_net");
        assert_eq!(basename("a/b/c.rs"), "c.rs");
        assert_eq!(basename("c.rs"), "c.rs");
        assert_eq!(basename("a/"), "");
    }
}
