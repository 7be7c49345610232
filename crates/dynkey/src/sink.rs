//! Where `pr_debug!` output goes.
//!
//! Standard error by default; [`set_sink`] replaces it, for example with the
//! `log` bridge (`LogSink`, feature `log`) or the `tracing` bridge
//! (`TracingSink`, feature `tracing`), so output lands wherever the
//! service already logs. The sink is read with an `arc-swap` load, only on
//! the enabled path.

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

/// Sends messages to `tracing` as `DEBUG` events of target `dynkey`, with
/// the callsite as fields.
#[cfg(feature = "tracing")]
#[derive(Debug, Default, Clone, Copy)]
pub struct TracingSink;

#[cfg(feature = "tracing")]
impl Sink for TracingSink {
    fn emit(&self, r: &Record<'_>) {
        let msg = trimmed(r);
        tracing::event!(
            target: "dynkey",
            tracing::Level::DEBUG,
            module = r.module,
            func = r.func,
            file = r.file,
            line = r.line,
            "{}{}",
            r.prefix,
            msg
        );
    }
}

/// The message without a trailing newline (loggers add their own).
#[cfg(any(feature = "log", feature = "tracing"))]
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
