//! The registry: every callsite, static key, static call and class map of
//! the process, and the indexes that let a query find its sites without
//! scanning all of them.
//!
//! A [`Registry`] is immutable. Readers (matching, listing, metrics) load the
//! current one with `arc-swap`, without locks; registering run-time sites
//! builds a new one and swaps it in (under the engine's lock, see
//! `engine.rs`). This file knows nothing of flags changing: it only answers
//! "which sites, keys, calls and maps are there, and which does this name or
//! query select".
//!
//! Compiled-in callsites are listed by file and line (link order depends on
//! how the compiler split the code); run-time sites follow in registration
//! order.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use dynkey_query::{ClassMap, Query, SiteInfo, crate_name};

use crate::callsite::Callsite;
use crate::classes::covers;
use crate::records::{CallDesc, KeyItem};

/// Stands in for the class of a site whose module knows no such class: no
/// query word can contain a newline, so no `class` query can select it.
const UNRESOLVED_CLASS: &str = "\n(unresolved)";

/// Where a site came from, which decides how its `p` flag is tested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Compiled in (`pr_debug!`): an inline site.
    Compiled,
    /// Declared by data at run time: a trampoline stub.
    Runtime,
    /// A `tracing` callsite, listed when tracing registered it
    /// (`tracing_rows.rs`): its `p` flag is read as data by a tracing
    /// filter, never patched.
    Tracing,
}

/// One callsite and what matching needs of it.
#[derive(Debug)]
pub(crate) struct Site {
    pub cs: &'static Callsite,
    pub func: &'static str,
    /// Whether the site's class (if any) is known to its module.
    pub class_known: bool,
    pub origin: Origin,
    /// Stable for a build: derived from where the site is (see [`site_ids`]).
    pub id: Box<str>,
}

impl Site {
    /// The site as queries see it.
    pub fn info(&self) -> SiteInfo<'static> {
        let class = match self.cs.class {
            Some(_) if !self.class_known => Some(UNRESOLVED_CLASS),
            c => c,
        };
        SiteInfo {
            module: self.cs.module,
            file: self.cs.file,
            func: self.func,
            line: self.cs.line,
            format: self.cs.format.as_bytes(),
            class,
        }
    }

    /// The site as the listing shows it (its class name even if unresolved).
    pub fn listing_info(&self) -> SiteInfo<'static> {
        SiteInfo {
            class: self.cs.class,
            ..self.info()
        }
    }
}

/// A class map and its param's stored value.
#[derive(Debug)]
pub(crate) struct ClassMapEntry {
    pub param: String,
    pub map: ClassMap,
    /// Modules that know the names; `*` covers every module.
    pub modules: Vec<String>,
    /// The param's stored value (written under the engine lock only).
    pub value: AtomicU64,
}

impl ClassMapEntry {
    /// Whether `module` knows `class` through this map.
    pub fn knows(&self, module: &str, class: &str) -> bool {
        self.map.names.iter().any(|n| n == class) && self.covers(module)
    }

    /// Whether this map's module list covers `module`.
    pub fn covers(&self, module: &str) -> bool {
        let modules: Vec<&str> = self.modules.iter().map(String::as_str).collect();
        covers(&modules, module)
    }
}

/// One site before indexing: the callsite, its function name, its origin.
pub(crate) type SitePart = (&'static Callsite, &'static str, Origin);

/// An immutable view of everything registered.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    pub sites: Vec<Site>,
    /// Distinct module paths, in first-seen order, with their sites.
    pub modules: Vec<(&'static str, Vec<u32>)>,
    by_path: HashMap<&'static str, u32>,
    by_crate: HashMap<&'static str, Vec<u32>>,
    by_func: HashMap<&'static str, Vec<u32>>,
    by_class: HashMap<&'static str, Vec<u32>>,
    by_id: HashMap<Box<str>, u32>,
    pub keys: Vec<&'static dyn KeyItem>,
    pub calls: Vec<&'static CallDesc>,
    pub classmaps: Vec<Arc<ClassMapEntry>>,
}

impl Registry {
    /// Builds the indexes over `sites` (in order).
    pub fn new(
        sites: Vec<SitePart>,
        keys: Vec<&'static dyn KeyItem>,
        calls: Vec<&'static CallDesc>,
        classmaps: Vec<Arc<ClassMapEntry>>,
    ) -> Registry {
        let mut r = Registry {
            keys,
            calls,
            classmaps,
            ..Registry::default()
        };
        let ids = site_ids(&sites);
        for (i, ((cs, func, origin), id)) in sites.into_iter().zip(ids).enumerate() {
            let i = i as u32;
            let class_known = cs
                .class
                .is_none_or(|c| r.classmaps.iter().any(|m| m.knows(cs.module, c)));
            let m = *r.by_path.entry(cs.module).or_insert_with(|| {
                r.modules.push((cs.module, Vec::new()));
                let m = (r.modules.len() - 1) as u32;
                r.by_crate.entry(crate_name(cs.module)).or_default().push(m);
                m
            });
            r.modules[m as usize].1.push(i);
            r.by_func.entry(func).or_default().push(i);
            if let Some(c) = cs.class {
                r.by_class.entry(c).or_default().push(i);
            }
            r.by_id.insert(id.clone(), i);
            r.sites.push(Site {
                cs,
                func,
                class_known,
                origin,
                id,
            });
        }
        r
    }

    /// The sites `q` selects, in registration order, using the smallest
    /// index the query allows (a literal module, class or function name)
    /// and testing each distinct module once otherwise.
    pub fn matching(&self, q: &Query, out: &mut Vec<u32>) {
        let module_literal = q
            .module()
            .filter(|m| !m.negated)
            .and_then(|m| m.pattern.literal());
        let func_literal = q
            .func()
            .filter(|f| !f.negated)
            .and_then(|f| f.pattern.literal());
        // Every index that applies, as a sorted candidate list; the
        // shortest is tested site by site.
        let mut best: Option<Vec<u32>> = None;
        fn offer(best: &mut Option<Vec<u32>>, c: Vec<u32>) {
            if best.as_ref().is_none_or(|b| c.len() < b.len()) {
                *best = Some(c);
            }
        }
        if let Some(f) = func_literal {
            offer(&mut best, self.by_func.get(f).cloned().unwrap_or_default());
        }
        if let Some(c) = q.class() {
            offer(&mut best, self.by_class.get(c).cloned().unwrap_or_default());
        }
        if let Some(lit) = module_literal {
            let mut mods: Vec<u32> = self.by_path.get(lit).copied().into_iter().collect();
            mods.extend(self.by_crate.get(lit).into_iter().flatten().copied());
            mods.sort_unstable();
            mods.dedup();
            let mut c: Vec<u32> = mods
                .iter()
                .flat_map(|&m| self.modules[m as usize].1.iter().copied())
                .collect();
            c.sort_unstable();
            offer(&mut best, c);
        } else if best.is_none() && q.module().is_some() {
            let mut c = Vec::new();
            for (path, sites) in &self.modules {
                if q.matches_module(path) {
                    c.extend(sites.iter().copied());
                }
            }
            c.sort_unstable();
            offer(&mut best, c);
        }
        match best {
            Some(candidates) => out.extend(
                candidates
                    .into_iter()
                    .filter(|&i| q.matches(&self.sites[i as usize].info())),
            ),
            None => out.extend(
                (0..self.sites.len() as u32).filter(|&i| q.matches(&self.sites[i as usize].info())),
            ),
        }
    }

    /// How many class'd sites `q` would select if it named their class: the
    /// sites the kernel's class protection keeps a classless query from
    /// touching. 0 for a query that names a class.
    pub fn protected(&self, q: &Query) -> usize {
        if q.class().is_some() {
            return 0;
        }
        self.by_class
            .values()
            .flatten()
            .filter(|&&i| {
                let mut info = self.sites[i as usize].info();
                info.class = None;
                q.matches(&info)
            })
            .count()
    }

    /// Sites of class `class` known to the modules of `map`.
    pub fn class_sites<'a>(
        &'a self,
        map: &'a ClassMapEntry,
        class: &'a str,
    ) -> impl Iterator<Item = u32> + 'a {
        self.by_class
            .get(class)
            .into_iter()
            .flatten()
            .copied()
            .filter(move |&i| {
                let s = &self.sites[i as usize];
                s.class_known && map.knows(s.cs.module, class)
            })
    }

    /// The class map whose param is `param`, with its index.
    pub fn classmap(&self, param: &str) -> Option<(usize, &Arc<ClassMapEntry>)> {
        self.classmaps
            .iter()
            .enumerate()
            .find(|(_, m)| m.param == param)
    }

    /// The site with this id.
    pub fn site_by_id(&self, id: &str) -> Option<u32> {
        self.by_id.get(id).copied()
    }

    /// The static keys named `name`: an exact `module::NAME` path first,
    /// else every key whose bare name it is.
    pub fn keys_named(&self, name: &str) -> Vec<&'static dyn KeyItem> {
        let exact: Vec<_> = self
            .keys
            .iter()
            .copied()
            .filter(|k| k.path() == name)
            .collect();
        if !exact.is_empty() {
            return exact;
        }
        self.keys
            .iter()
            .copied()
            .filter(|k| k.name() == name)
            .collect()
    }

    /// The static call named `name`.
    pub fn call_named(&self, name: &str) -> Option<&'static CallDesc> {
        self.calls.iter().copied().find(|c| c.name == name)
    }

    /// The parts the registry was built from, to rebuild it with more.
    pub fn parts(&self) -> Vec<SitePart> {
        self.sites
            .iter()
            .map(|s| (s.cs, s.func, s.origin))
            .collect()
    }
}

/// Ids for sites, stable for a build: 16 hex digits of a 64-bit FNV-1a hash
/// of module, file, function, line and format, with `-2`, `-3`... appended
/// to repeats (sites that agree on all five), in registration order.
fn site_ids(sites: &[SitePart]) -> Vec<Box<str>> {
    let mut seen: HashMap<u64, u32> = HashMap::with_capacity(sites.len());
    sites
        .iter()
        .map(|(cs, func, _)| {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            let line = cs.line.to_le_bytes();
            for part in [
                cs.module.as_bytes(),
                cs.file.as_bytes(),
                func.as_bytes(),
                &line[..],
                cs.format.as_bytes(),
            ] {
                for &b in part.iter().chain([&0xffu8]) {
                    h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
                }
            }
            let n = seen.entry(h).or_insert(0);
            *n += 1;
            match *n {
                1 => format!("{h:016x}").into(),
                n => format!("{h:016x}-{n}").into(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callsite::FuncName;

    fn leak(module: &'static str, line: u32) -> &'static Callsite {
        Box::leak(Box::new(Callsite::__new(
            module,
            "src/a.rs",
            line,
            "msg",
            None,
            FuncName::Static("f"),
            None,
        )))
    }

    #[test]
    fn ids_are_stable_and_distinct() {
        let (a, b) = (leak("m", 1), leak("m", 2));
        let parts = vec![
            (a, "f", Origin::Runtime),
            (b, "f", Origin::Runtime),
            (a, "f", Origin::Runtime),
        ];
        let ids = site_ids(&parts);
        assert_eq!(ids, site_ids(&parts), "the same sites get the same ids");
        assert_ne!(ids[0], ids[1], "a different line is a different id");
        assert_eq!(&*ids[2], &format!("{}-2", ids[0]), "a repeat gets a suffix");
        let r = Registry::new(parts, vec![], vec![], vec![]);
        assert_eq!(r.site_by_id(&ids[1]), Some(1));
        assert_eq!(r.site_by_id("nope"), None);
    }
}
