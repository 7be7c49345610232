//! What an enabled callsite prints: decoration order, sinks, ratelimit.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dynkey::sink::{Record, Sink};
use dynkey::{control, pr_debug, pr_debug_ratelimited};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<String>>>);

impl Sink for Capture {
    fn emit(&self, r: &Record<'_>) {
        if r.module == module_path!() {
            self.0
                .lock()
                .unwrap()
                .push(format!("{}{}", r.prefix, r.args));
        }
    }
}

impl Capture {
    fn install() -> Capture {
        let c = Capture::default();
        dynkey::sink::set_sink(c.clone());
        c
    }
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

fn decorated_site(n: u32) {
    pr_debug!("value {}", n);
}

fn line_of(func: &str) -> u32 {
    control()
        .sites()
        .into_iter()
        .find(|s| s.func == func)
        .expect("site registered")
        .line
}

#[test]
fn decoration_follows_the_flags_in_a_fixed_order() {
    let _g = crate::global();
    let cap = Capture::install();
    decorated_site(0);
    assert_eq!(
        cap.take(),
        Vec::<String>::new(),
        "a disabled site prints nothing"
    );
    control().exec("func decorated_site =ptslfm").unwrap();
    decorated_site(7);
    let tid = dynkey_text_tid();
    let line = line_of("decorated_site");
    assert_eq!(
        cap.take(),
        vec![format!(
            "[{tid}] api::output:decorated_site:crates/dynkey/tests/api/output.rs:{line}: value 7"
        )]
    );
    control().exec("func decorated_site =pl").unwrap();
    decorated_site(8);
    assert_eq!(cap.take(), vec![format!("{line}: value 8")]);
    control().exec("func decorated_site =p").unwrap();
    decorated_site(9);
    assert_eq!(cap.take(), vec!["value 9".to_string()]);
    control().exec("func decorated_site -p").unwrap();
    decorated_site(10);
    assert_eq!(cap.take(), Vec::<String>::new());
    dynkey::sink::reset_sink();
}

fn dynkey_text_tid() -> i32 {
    // The OS thread id, which the `t` flag shows.
    std::fs::read_link("/proc/thread-self")
        .unwrap()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

static NOW_SECS: AtomicU64 = AtomicU64::new(0);

fn fake_now() -> Duration {
    Duration::from_secs(NOW_SECS.load(Ordering::Relaxed))
}

fn limited(i: u32) {
    pr_debug_ratelimited!("burst {}", i);
}

#[test]
fn ratelimit_allows_a_burst_per_window_and_reports_suppressed() {
    let _g = crate::global();
    let cap = Capture::install();
    dynkey::testing::set_ratelimit_clock(Some(fake_now));
    NOW_SECS.store(1000, Ordering::Relaxed);
    for i in 0..50 {
        limited(i); // disabled: consults no ratelimiter
    }
    control().exec("func limited +p").unwrap();
    for i in 0..15 {
        limited(i);
    }
    assert_eq!(
        cap.take(),
        (0..10).map(|i| format!("burst {i}")).collect::<Vec<_>>(),
        "10 per window; disabled calls spent nothing"
    );
    NOW_SECS.store(1004, Ordering::Relaxed);
    limited(99);
    assert_eq!(cap.take(), Vec::<String>::new(), "same window");
    NOW_SECS.store(1005, Ordering::Relaxed);
    limited(100);
    assert_eq!(
        cap.take(),
        vec![
            "6 callbacks suppressed".to_string(),
            "burst 100".to_string()
        ]
    );
    control().exec("func limited -p").unwrap();
    dynkey::testing::set_ratelimit_clock(None);
    dynkey::sink::reset_sink();
}

#[cfg(any(feature = "log", feature = "tracing"))]
fn bridged(n: u32) {
    pr_debug!("bridged {}", n);
}

/// The `log` bridge: messages reach the installed logger at Debug level,
/// with the callsite's module as target and no trailing newline.
#[cfg(feature = "log")]
#[test]
fn log_bridge_forwards_records() {
    struct Logger(Mutex<Vec<(log::Level, String, String)>>);
    impl log::Log for Logger {
        fn enabled(&self, _: &log::Metadata<'_>) -> bool {
            true
        }
        fn log(&self, r: &log::Record<'_>) {
            self.0
                .lock()
                .unwrap()
                .push((r.level(), r.target().to_string(), r.args().to_string()));
        }
        fn flush(&self) {}
    }
    static LOGGER: Logger = Logger(Mutex::new(Vec::new()));
    let _g = crate::global();
    log::set_logger(&LOGGER).unwrap();
    log::set_max_level(log::LevelFilter::Trace);
    dynkey::sink::set_sink(dynkey::sink::LogSink);
    control().exec("func bridged =pf").unwrap();
    bridged(5);
    control().exec("func bridged -p").unwrap();
    dynkey::sink::reset_sink();
    let got = LOGGER.0.lock().unwrap().clone();
    assert_eq!(
        got,
        vec![(
            log::Level::Debug,
            "api::output".to_string(),
            "bridged: bridged 5".to_string()
        )]
    );
}

/// The `tracing` bridge: messages become DEBUG events written at the
/// callsite (its module as target and module path, its file and line), so
/// a subscriber filtering by target keeps them; the decorations in the
/// metadata are not repeated in the message, `f` adds the field `func`.
#[cfg(feature = "tracing")]
#[test]
fn tracing_bridge_emits_events_at_the_callsite() {
    use tracing::field::{Field, Visit};
    #[derive(Default)]
    struct Fields(Vec<String>);
    impl Visit for Fields {
        fn record_debug(&mut self, f: &Field, v: &dyn std::fmt::Debug) {
            self.0.push(format!("{}={:?}", f.name(), v));
        }
        fn record_str(&mut self, f: &Field, v: &str) {
            self.0.push(format!("{}={}", f.name(), v));
        }
    }
    /// Keeps DEBUG events of target `api::output` only (what
    /// `RUST_LOG=api::output=debug` keeps).
    struct Collect(Arc<Mutex<Vec<String>>>);
    impl tracing::Subscriber for Collect {
        fn enabled(&self, m: &tracing::Metadata<'_>) -> bool {
            m.target() == "api::output"
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, e: &tracing::Event<'_>) {
            let mut f = Fields::default();
            e.record(&mut f);
            let m = e.metadata();
            self.0.lock().unwrap().push(format!(
                "{} {:?} {}:{} {} {}",
                m.target(),
                m.module_path(),
                m.file().unwrap_or("?").rsplit('/').next().unwrap_or("?"),
                m.line().is_some_and(|l| l > 0),
                m.level(),
                f.0.join(" ")
            ));
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }
    let _g = crate::global();
    let events = Arc::new(Mutex::new(Vec::new()));
    let dispatch = tracing::Dispatch::new(Collect(events.clone()));
    dynkey::sink::set_sink(dynkey::sink::TracingSink);
    tracing::dispatcher::with_default(&dispatch, || {
        control().exec("func bridged =pmsl").unwrap();
        bridged(6);
        control().exec("func bridged =pf").unwrap();
        bridged(7);
        control().exec("func bridged -p").unwrap();
        bridged(8);
    });
    dynkey::sink::reset_sink();
    let got = events.lock().unwrap().clone();
    assert_eq!(
        got,
        vec![
            "api::output Some(\"api::output\") output.rs:true DEBUG message=bridged 6".to_string(),
            "api::output Some(\"api::output\") output.rs:true DEBUG message=bridged 7 func=bridged"
                .to_string(),
        ],
        "target, module and file of the callsite; no decoration in the message"
    );
}
