//! The test subscriber: a `tracing_subscriber` layer that records every
//! event it receives, with its metadata, its fields, the names of the spans
//! it happened in and the thread that emitted it. It is a real subscriber
//! (the registry plus a layer, as a service has), filtered by
//! `dynkey_tracing::layer()` and installed as the global default.

use std::sync::{Mutex, Once};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// One event as the subscriber saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub target: String,
    pub level: Level,
    pub module: Option<String>,
    pub file: Option<String>,
    pub line: Option<u32>,
    /// `name=value` (strings without quotes, the rest with `{:?}`).
    pub fields: Vec<String>,
    /// The span scope, outermost first.
    pub spans: Vec<String>,
    pub thread: std::thread::ThreadId,
}

impl Seen {
    /// The value of field `name`.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find_map(|f| f.strip_prefix(name)?.strip_prefix('='))
    }
}

static SEEN: Mutex<Vec<Seen>> = Mutex::new(Vec::new());

#[derive(Default)]
struct Fields(Vec<String>);

impl Visit for Fields {
    fn record_debug(&mut self, f: &Field, v: &dyn std::fmt::Debug) {
        self.0.push(format!("{}={v:?}", f.name()));
    }
    fn record_str(&mut self, f: &Field, v: &str) {
        self.0.push(format!("{}={v}", f.name()));
    }
}

/// The recording layer.
pub struct Capture;

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_event(&self, e: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        e.record(&mut fields);
        let m = e.metadata();
        let spans = ctx
            .event_scope(e)
            .map(|s| s.from_root().map(|s| s.name().to_string()).collect())
            .unwrap_or_default();
        SEEN.lock().unwrap_or_else(|e| e.into_inner()).push(Seen {
            target: m.target().to_string(),
            level: *m.level(),
            module: m.module_path().map(str::to_string),
            file: m.file().map(str::to_string),
            line: m.line(),
            fields: fields.0,
            spans,
            thread: std::thread::current().id(),
        });
    }
}

/// Installs the subscriber once: the RUST_LOG baseline as if it were unset
/// (whatever the environment says: tests must not depend on it), then
/// `registry().with(Capture.with_filter(dynkey_tracing::layer()))`.
pub fn setup() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        dynkey_tracing::init_with(None).expect("the default baseline applies");
        let subscriber =
            tracing_subscriber::registry().with(Capture.with_filter(dynkey_tracing::layer()));
        tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
    });
}

/// Removes and returns the events whose target starts with `prefix`.
pub fn take(prefix: &str) -> Vec<Seen> {
    let mut all = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    let (mine, rest): (Vec<Seen>, Vec<Seen>) =
        all.drain(..).partition(|s| s.target.starts_with(prefix));
    *all = rest;
    mine
}
