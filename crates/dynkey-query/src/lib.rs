//! The Linux dynamic-debug ("dyndbg") query language, with negation.
//!
//! Users change flags by writing queries such as
//! `module !virtio* +p; func e1000_open =pmf`. This crate turns a request
//! body into [`Query`] values, tests them against sites described by plain
//! data ([`SiteInfo`]), prints the control listing ([`write_row`]) and turns
//! class param writes into flag changes ([`ClassMap::apply`]). It is pure:
//! no unsafe, no I/O, no global state, so the `dynkey` crate can call it
//! from anywhere and the fuzzer can hammer it.
//!
//! # Why the kernel's rules, and which ones differ
//!
//! The behaviour follows the kernel's `lib/dynamic_debug.c` (documented in
//! `Documentation/admin-guide/dynamic-debug-howto.rst`) down to the order of
//! checks, so a bad query reports the category the kernel would. It differs
//! on purpose in these points:
//!
//! * a body is all-or-nothing: [`parse`] returns every query or every error
//!   (one per bad query, with its index and byte offset);
//! * up to [`MAX_WORDS`] (15) words per query, bodies below [`MAX_BODY`]
//!   bytes, UTF-8 only;
//! * whitespace is SP, `\t`, `\n`, `\v`, `\f`, `\r` (not 0xA0); `%` and `,`
//!   are ordinary characters;
//! * `module`, `file`, `func` and `format` values may start with one `!`
//!   (negation of that keyword's whole test); `!` on `line` or `class`, a
//!   double `!!`, and a negated `file` with a `:` tail are `E_BAD_NEGATION`;
//! * `module` patterns match a Rust module path or its crate name;
//! * the listing escapes `"` as `\"`.
//!
//! # Points the kernel does not settle, decided here
//!
//! * Error offsets: see the table in [`QueryError`]'s docs (the
//!   offending word's first byte; the flags word for an unknown flag; the
//!   keyword for repeats; the value for negation and line errors).
//!   `E_BAD_ENCODING` is query 0 at the first invalid byte.
//! * A `file` `:tail` is a function glob when its first character is
//!   alphabetic (Unicode, which for U+00C0-U+00FF is exactly the kernel's
//!   Latin-1 `isalpha`), `*` or `?`; otherwise a line range. An empty tail
//!   adds no bound but, as in the kernel, still counts as a range for the
//!   repeat check (`line 5 file x.c:` is `E_DUP_LINE`).
//! * `?` and the glob's backtracking step move by one character (Unicode
//!   scalar), where the kernel moves by one byte: identical for ASCII.
//! * A NUL byte is an ordinary character (in words and in unescaped formats;
//!   the kernel's C strings would end there).
//! * Non-UTF-8 format bytes are listed lossily (U+FFFD).
//!
//! # Example
//!
//! ```
//! use dynkey_query::{Flags, SiteInfo, parse};
//!
//! let site = SiteInfo {
//!     module: "my_app::net::http", file: "src/net/http.rs", func: "serve",
//!     line: 42, format: b"request %s\n", class: None,
//! };
//! let queries = parse(b"module !virtio* +p").unwrap();
//! let mut flags = Flags::EMPTY;
//! for q in &queries {
//!     if q.matches(&site) {
//!         flags = q.op().apply(flags);
//!     }
//! }
//! assert_eq!(flags, Flags::P);
//! ```
#![forbid(unsafe_code)]

mod classmap;
mod error;
mod escape;
mod flags;
mod glob;
mod lexer;
mod lines;
mod listing;
mod matcher;
mod parse;
mod query;

#[doc(hidden)]
pub mod fuzzing;

pub use classmap::{ClassMap, ClassMapKind, ParamChange, format_param_value, parse_param_value};
pub use error::{ErrorKind, ParamError, QueryError};
pub use flags::{FlagOp, Flags};
pub use glob::Glob;
pub use lines::LineRange;
pub use listing::{LISTING_HEADER, row, write_row};
pub use matcher::{SiteInfo, basename, crate_name};
pub use parse::parse;
pub use query::{FormatPattern, Negatable, Query};

/// Bodies of this many bytes or more are refused whole (`E_TOO_BIG`, HTTP
/// 413), as the kernel refuses writes of 4096 bytes or more.
pub const MAX_BODY: usize = 4096;

/// Most words in one query, flags word included (the 2026 proposal's 15,
/// enough for all six keywords; mainline has 9).
pub const MAX_WORDS: usize = 15;
