//! Where `pr_debug!` output goes.
//!
//! Standard error by default; [`set_sink`] replaces it, for example with the
//! `log` bridge (`LogSink`, feature `log`) or the `tracing` bridge
//! (`TracingSink`, feature `tracing`), so output lands wherever the
//! service already logs. The sink is read with an `arc-swap` load, only on
//! the enabled path.
//!
//! The `tracing` bridge emits each callsite's messages as events written at
//! that callsite (its module as target, its file and line), so subscribers
//! filter and show them like the module's other events; it says how
//! dynkey's flags and the subscriber's filter combine.

use std::fmt;
use std::io::Write;
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use dynkey_query::Flags;

/// One message from an enabled callsite.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// The module path of the callsite.
    pub module: &'a str,
    /// The file, as `file!()` recorded it.
    pub file: &'a str,
    /// The line.
    pub line: u32,
    /// The enclosing function.
    pub func: &'a str,
    /// The callsite's flags when it fired.
    pub flags: Flags,
    /// The decoration built from the flags, maybe empty.
    pub prefix: &'a str,
    /// The message.
    pub args: fmt::Arguments<'a>,
}

/// A destination for messages.
pub trait Sink: Send + Sync + 'static {
    /// Writes one message.
    fn emit(&self, record: &Record<'_>);
}

/// Writes `prefix message` lines to standard error (the default).
#[derive(Debug, Default, Clone, Copy)]
pub struct Stderr;

impl Sink for Stderr {
    fn emit(&self, r: &Record<'_>) {
        let mut line = String::with_capacity(r.prefix.len() + 64);
        line.push_str(r.prefix);
        let _ = fmt::write(&mut line, r.args);
        if !line.ends_with('\n') {
            line.push('\n');
        }
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}

/// Sends messages to the `log` crate's logger at `Debug` level, with the
/// callsite's module as target.
#[cfg(feature = "log")]
#[derive(Debug, Default, Clone, Copy)]
pub struct LogSink;

#[cfg(feature = "log")]
impl Sink for LogSink {
    fn emit(&self, r: &Record<'_>) {
        let msg = trimmed(r);
        log::logger().log(
            &log::Record::builder()
                .level(log::Level::Debug)
                .target(r.module)
                .module_path(Some(r.module))
                .file(Some(r.file))
                .line(Some(r.line))
                .args(format_args!("{}{}", r.prefix, msg))
                .build(),
        );
    }
}

/// Sends messages to `tracing` as `DEBUG` events written at the
/// callsite's own place: target and module path are the callsite's module,
/// file and line its own. So a subscriber filters them like the events of
/// that module (`RUST_LOG=my_crate::db=debug` keeps them) and shows them
/// as it shows any event (fmt: the target, and file and line when asked).
///
/// The message is the callsite's message alone. The decorations of the
/// `m`, `s` and `l` flags are already in the event's metadata (target,
/// file, line), so they are not repeated; `f` and `t`, which metadata has
/// no place for, add the fields `func` (the enclosing function) and `tid`
/// (the OS thread id).
///
/// # Two gates
///
/// A message reaches the subscriber only when both say yes, in this order:
/// the callsite's `p` flag (a NOP while off; nothing is formatted), then
/// the subscriber's filter, asked about a `DEBUG` event of the callsite's
/// module. A site turned on with `+p` under a subscriber filtering at
/// `info` prints nothing: its event is dropped by the subscriber, whose
/// filter dynkey cannot widen. Let the filter pass `debug` for the modules
/// you control with dynkey (`RUST_LOG=info,my_crate=debug`), or use
/// `dynkey-tracing`'s filter, which makes dyndbg flags the subscriber's
/// filter.
#[cfg(feature = "tracing")]
#[derive(Debug, Default, Clone, Copy)]
pub struct TracingSink;

#[cfg(feature = "tracing")]
impl Sink for TracingSink {
    fn emit(&self, r: &Record<'_>) {
        bridge::emit(r);
    }
}

/// One tracing callsite per dynkey callsite, made when it first prints.
#[cfg(feature = "tracing")]
mod bridge {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicU8, Ordering};
    use std::sync::{LazyLock, OnceLock, RwLock};

    use dynkey_query::Flags;
    use tracing::callsite::{Callsite, Identifier};
    use tracing::field::{Field, FieldSet, Value};
    use tracing::level_filters::LevelFilter;
    use tracing::metadata::Kind;
    use tracing::subscriber::Interest;
    use tracing::{Event, Level, Metadata};

    use super::Record;

    const FIELDS: &[&str] = &["message", "func", "tid"];
    const NEVER: u8 = 0;
    const SOMETIMES: u8 = 1;
    const ALWAYS: u8 = 2;

    /// The tracing callsite of one dynkey callsite.
    struct Bridge {
        meta: OnceLock<Metadata<'static>>,
        /// tracing's cached interest (`NEVER`, `SOMETIMES`, `ALWAYS`).
        interest: AtomicU8,
        fields: OnceLock<[Field; 3]>,
    }

    impl Callsite for Bridge {
        fn set_interest(&self, interest: Interest) {
            let v = if interest.is_never() {
                NEVER
            } else if interest.is_always() {
                ALWAYS
            } else {
                SOMETIMES
            };
            // Relaxed: a cache of the subscribers' answer, as tracing's own
            // callsites keep it; rebuilt by tracing under its own locks.
            self.interest.store(v, Ordering::Relaxed);
        }

        fn metadata(&self) -> &Metadata<'_> {
            // Set before the callsite is registered, the only way tracing
            // learns of it.
            self.meta
                .get()
                .expect("metadata is set before registration")
        }
    }

    /// Bridges by line, then module and file (a few per line at most).
    static BRIDGES: LazyLock<RwLock<HashMap<u32, Vec<&'static Bridge>>>> =
        LazyLock::new(RwLock::default);

    fn find(map: &HashMap<u32, Vec<&'static Bridge>>, r: &Record<'_>) -> Option<&'static Bridge> {
        map.get(&r.line)?.iter().copied().find(|b| {
            let m = b.metadata();
            m.target() == r.module && m.file() == Some(r.file)
        })
    }

    fn bridge(r: &Record<'_>) -> &'static Bridge {
        if let Some(b) = find(&BRIDGES.read().unwrap_or_else(|e| e.into_inner()), r) {
            return b;
        }
        let mut map = BRIDGES.write().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = find(&map, r) {
            return b;
        }
        let b: &'static Bridge = Box::leak(Box::new(Bridge {
            meta: OnceLock::new(),
            interest: AtomicU8::new(NEVER),
            fields: OnceLock::new(),
        }));
        let module: &'static str = Box::leak(r.module.to_owned().into_boxed_str());
        let file: &'static str = Box::leak(r.file.to_owned().into_boxed_str());
        let name: &'static str = Box::leak(format!("event {file}:{}", r.line).into_boxed_str());
        let meta = b.meta.get_or_init(|| {
            Metadata::new(
                name,
                module,
                Level::DEBUG,
                Some(file),
                Some(r.line),
                Some(module),
                FieldSet::new(FIELDS, Identifier(b)),
                Kind::EVENT,
            )
        });
        let mut it = meta.fields().iter();
        if let (Some(m), Some(f), Some(t)) = (it.next(), it.next(), it.next()) {
            let _ = b.fields.set([m, f, t]);
        }
        // Asks every subscriber for its interest (set_interest above).
        tracing::callsite::register(b);
        map.entry(r.line).or_default().push(b);
        b
    }

    pub(super) fn emit(r: &Record<'_>) {
        if Level::DEBUG > LevelFilter::current() {
            return;
        }
        let b = bridge(r);
        // Relaxed: see `set_interest`.
        let interest = b.interest.load(Ordering::Relaxed);
        if interest == NEVER {
            return;
        }
        let (Some(meta), Some([message, func, tid])) = (b.meta.get(), b.fields.get()) else {
            return;
        };
        let tid_value = r.flags.contains(Flags::T).then(dynkey_text::os_thread_id);
        let func_value = r.flags.contains(Flags::F).then_some(r.func);
        tracing::dispatcher::get_default(|d| {
            if interest == ALWAYS || d.enabled(meta) {
                let values = [
                    (message, Some(&r.args as &dyn Value)),
                    (func, func_value.as_ref().map(|f| f as &dyn Value)),
                    (tid, tid_value.as_ref().map(|t| t as &dyn Value)),
                ];
                let values = meta.fields().value_set(&values);
                d.event(&Event::new(meta, &values));
            }
        });
    }
}

/// The message without a trailing newline (loggers add their own).
#[cfg(feature = "log")]
fn trimmed(r: &Record<'_>) -> String {
    let mut s = r.args.to_string();
    if s.ends_with('\n') {
        s.pop();
    }
    s
}

static SINK: ArcSwapOption<Box<dyn Sink>> = ArcSwapOption::const_empty();

/// Sends every later message to `sink`.
pub fn set_sink(sink: impl Sink) {
    SINK.store(Some(Arc::new(Box::new(sink))));
}

/// Restores the default sink (standard error).
pub fn reset_sink() {
    SINK.store(None);
}

pub(crate) fn emit(r: &Record<'_>) {
    match &*SINK.load() {
        Some(sink) => sink.emit(r),
        None => Stderr.emit(r),
    }
}

/// The dyndbg decoration for `flags`: `[tid] ` for `t`,
/// then `module:`, `func:`, `file:`, `line:` for `m f s l`, then one space
/// if any of those four was written; at most 128 bytes.
pub fn decoration(
    flags: Flags,
    module: &str,
    func: &str,
    file: &str,
    line: u32,
    tid: i32,
) -> String {
    use fmt::Write as _;
    let mut p = String::new();
    if flags.contains(Flags::T) {
        let _ = write!(p, "[{tid}] ");
    }
    let mut any = false;
    for (flag, text) in [(Flags::M, module), (Flags::F, func), (Flags::S, file)] {
        if flags.contains(flag) {
            p.push_str(text);
            p.push(':');
            any = true;
        }
    }
    if flags.contains(Flags::L) {
        let _ = write!(p, "{line}:");
        any = true;
    }
    if any {
        p.push(' ');
    }
    if p.len() > 128 {
        let mut cut = 128;
        while !p.is_char_boundary(cut) {
            cut -= 1;
        }
        p.truncate(cut);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(flags: &str) -> String {
        decoration(
            flags.parse().unwrap(),
            "app::net",
            "serve",
            "src/net.rs",
            42,
            777,
        )
    }

    #[test]
    fn decoration_order_is_fixed() {
        assert_eq!(d("p"), "");
        assert_eq!(d("pmfslt"), "[777] app::net:serve:src/net.rs:42: ");
        assert_eq!(
            d("ltsfm"),
            "[777] app::net:serve:src/net.rs:42: ",
            "input order does not matter"
        );
        assert_eq!(d("t"), "[777] ", "t alone adds no extra space");
        assert_eq!(d("l"), "42: ");
        assert_eq!(d("fl"), "serve:42: ");
    }

    #[test]
    fn decoration_is_capped_at_128_bytes() {
        let long = "m".repeat(300);
        let p = decoration(Flags::M, &long, "f", "x", 1, 1);
        assert_eq!(p.len(), 128);
    }
}
