//! The control listing: the kernel's header and one row per site
//! (`ddebug_proc_show` in lib/dynamic_debug.c).
//!
//! A row is `<file>:<line> [<module>]<func> =<flags> "<format>"`, plus
//! ` class:NAME` for a class'd site. In the format, newline, tab and CR are
//! shown as `\n`, `\t`, `\r`, and a double quote as `\"` (a deliberate
//! deviation: mainline prints it raw, which makes the row ambiguous);
//! backslashes and every other character are printed as they are.
//!
//! A format that is not UTF-8 is printed lossily: each invalid sequence
//! becomes U+FFFD. The listing is text (HTTP `text/plain`), so raw bytes
//! could not be carried anyway; formats recorded from Rust string literals
//! are always UTF-8.

use std::fmt::{self, Write};

use crate::flags::Flags;
use crate::matcher::SiteInfo;

/// The first line of the listing, byte for byte the kernel's.
pub const LISTING_HEADER: &str = "# filename:lineno [module]function flags format";

/// Writes one listing row for `site` with `flags`, without a line end.
///
/// # Examples
///
/// ```
/// use dynkey_query::{Flags, SiteInfo, write_row};
/// let site = SiteInfo {
///     module: "params", file: "kernel/params.c", func: "parse_args", line: 160,
///     format: b"doing %s\n", class: None,
/// };
/// let mut row = String::new();
/// write_row(&mut row, &site, Flags::P | Flags::T).unwrap();
/// assert_eq!(row, r#"kernel/params.c:160 [params]parse_args =pt "doing %s\n""#);
/// ```
pub fn write_row<W: Write + ?Sized>(out: &mut W, site: &SiteInfo<'_>, flags: Flags) -> fmt::Result {
    write!(
        out,
        "{}:{} [{}]{} ={} \"",
        site.file, site.line, site.module, site.func, flags
    )?;
    for chunk in site.format.utf8_chunks() {
        write_escaped(out, chunk.valid())?;
        if !chunk.invalid().is_empty() {
            out.write_char(char::REPLACEMENT_CHARACTER)?;
        }
    }
    out.write_char('"')?;
    if let Some(class) = site.class {
        write!(out, " class:{class}")?;
    }
    Ok(())
}

/// [`write_row`] into a new `String`.
pub fn row(site: &SiteInfo<'_>, flags: Flags) -> String {
    let mut out = String::with_capacity(site.file.len() + site.func.len() + site.format.len() + 48);
    // Writing to a String cannot fail.
    let _ = write_row(&mut out, site, flags);
    out
}

fn write_escaped<W: Write + ?Sized>(out: &mut W, text: &str) -> fmt::Result {
    let mut rest = text;
    while let Some(at) = rest.find(['\n', '\t', '\r', '"']) {
        let (plain, tail) = rest.split_at(at);
        out.write_str(plain)?;
        let mut chars = tail.chars();
        out.write_str(match chars.next() {
            Some('\n') => "\\n",
            Some('\t') => "\\t",
            Some('\r') => "\\r",
            _ => "\\\"",
        })?;
        rest = chars.as_str();
    }
    out.write_str(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SITE: SiteInfo<'static> = SiteInfo {
        module: "drm",
        file: "drivers/gpu/drm/drm_drv.c",
        func: "drm_dev_register",
        line: 1050,
        format: b"registered \"%s\" minor %d\n",
        class: None,
    };

    #[test]
    fn row_escapes_quotes_and_controls() {
        assert_eq!(
            row(&SITE, Flags::EMPTY),
            r#"drivers/gpu/drm/drm_drv.c:1050 [drm]drm_dev_register =_ "registered \"%s\" minor %d\n""#
        );
        let site = SiteInfo {
            format: b"\ta\\b\r\x0b\x0c",
            ..SITE
        };
        assert_eq!(
            row(&site, Flags::P),
            "drivers/gpu/drm/drm_drv.c:1050 [drm]drm_dev_register =p \"\\ta\\b\\r\x0b\x0c\""
        );
    }

    #[test]
    fn class_suffix() {
        let site = SiteInfo {
            class: Some("DRM_UT_CORE"),
            ..SITE
        };
        assert!(row(&site, Flags::EMPTY).ends_with("\" class:DRM_UT_CORE"));
    }

    #[test]
    fn invalid_utf8_is_lossy() {
        let site = SiteInfo {
            format: b"a\xffb",
            ..SITE
        };
        assert!(row(&site, Flags::EMPTY).ends_with("\"a\u{fffd}b\""));
    }
}
