//! tracing's levels as the classes of one class map, `tracing.level`.
//!
//! The map is `level_num` (a value N turns on the first N classes) and
//! covers every module (`"*"`), so `PUT /params/tracing.level 4` is the
//! process-wide `RUST_LOG=debug` in one commit, and each site's level is a
//! class a query can name: `module my_service::db class DEBUG +p`.

use tracing::Level;
use tracing::level_filters::LevelFilter;

dynkey::class_map!(
    /// The class map of tracing's levels: class 0 is `ERROR`, then `WARN`,
    /// `INFO`, `DEBUG`, `TRACE`; param `tracing.level` (0 = off, 5 = trace).
    pub static TRACING_LEVEL = level_num(param = "tracing.level", base = 0, modules = ["*"]) {
        ERROR, WARN, INFO, DEBUG, TRACE,
    }
);

/// The param of [`TRACING_LEVEL`].
pub const PARAM: &str = "tracing.level";

/// The class names, in class order (the param's value N turns on the
/// first N).
pub const CLASSES: [&str; 5] = ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"];

/// The class of a level.
pub fn class(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "ERROR",
        Level::WARN => "WARN",
        Level::INFO => "INFO",
        Level::DEBUG => "DEBUG",
        _ => "TRACE",
    }
}

/// The param value of a level filter: how many classes it turns on
/// (`off` 0, `error` 1, ... `trace` 5).
pub fn param_value(filter: LevelFilter) -> u8 {
    match filter.into_level() {
        None => 0,
        Some(Level::ERROR) => 1,
        Some(Level::WARN) => 2,
        Some(Level::INFO) => 3,
        Some(Level::DEBUG) => 4,
        Some(_) => 5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_classes_agree() {
        for (i, l) in [
            Level::ERROR,
            Level::WARN,
            Level::INFO,
            Level::DEBUG,
            Level::TRACE,
        ]
        .iter()
        .enumerate()
        {
            assert_eq!(class(l), CLASSES[i]);
            assert_eq!(param_value(LevelFilter::from_level(*l)) as usize, i + 1);
        }
        assert_eq!(param_value(LevelFilter::OFF), 0);
        assert_eq!(
            [ERROR, WARN, INFO, DEBUG, TRACE].map(|c| c.name()),
            CLASSES,
            "the class map's constants are the classes"
        );
    }
}
