//! Entry points for the fuzz targets in `fuzz/` (not API).
//!
//! Each target is one line calling a function here, so the harness needs no
//! private access and the checks live next to the code they check (the
//! rustls layout). The checks go beyond "no panic": offsets stay inside the
//! body, indexes are in order, and every accepted query prints as text that
//! parses back to an equal query.

use crate::error::ErrorKind;
use crate::{MAX_BODY, parse, parse::parse_text};

/// Parses `data` and asserts the parser's contract; panics (so the fuzzer
/// reports a crash) on any violation.
pub fn parse_round_trip(data: &[u8]) {
    match parse(data) {
        Ok(queries) => {
            for (i, q) in queries.iter().enumerate() {
                assert_eq!(
                    q.index(),
                    i,
                    "query indexes count non-skipped queries in order"
                );
                assert!(
                    q.offset() < data.len(),
                    "query offset {} outside a body of {}",
                    q.offset(),
                    data.len()
                );
                let text = q.to_string();
                // The printed form may be longer than the body (escapes), so
                // it is re-parsed without the size limit.
                match parse_text(&text) {
                    Ok(again) => {
                        assert_eq!(again.len(), 1, "{text:?} must print as exactly one query");
                        assert_eq!(
                            again.first(),
                            Some(q),
                            "{text:?} must re-parse to the same query"
                        );
                        assert_eq!(
                            again.first().map(ToString::to_string).as_deref(),
                            Some(text.as_str())
                        );
                    }
                    Err(e) => panic!("printed query {text:?} does not re-parse: {e:?}"),
                }
            }
        }
        Err(errors) => {
            assert!(!errors.is_empty(), "an Err holds at least one error");
            let mut last_query = None;
            for e in &errors {
                assert_ne!(
                    e.kind,
                    ErrorKind::Tokenize,
                    "the grammar must accept every text: {e}"
                );
                assert!(
                    e.offset < data.len(),
                    "error offset {} outside a body of {}: {e}",
                    e.offset,
                    data.len()
                );
                if e.kind == ErrorKind::TooBig {
                    assert_eq!((e.query, e.offset), (0, MAX_BODY - 1));
                }
                assert!(last_query < Some(e.query), "one error per query, in order");
                last_query = Some(e.query);
                assert!(!e.message().is_empty());
            }
        }
    }
}
