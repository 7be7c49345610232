//! `DYNKEY_QUERY` at start-up, and the embed example.

use std::process::Command;

use crate::kernel_like;
use crate::{child, role};

#[test]
fn dynkey_query_applies_before_main() {
    let out = child(
        "boot::child_boot",
        &[
            ("DYNKEY_CHILD", "boot"),
            ("DYNKEY_QUERY", "func virtnet_poll +p"),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("boot: site 3 enabled before any dynkey call"),
        "{stdout}"
    );
}

#[test]
fn bad_dynkey_query_is_reported_and_the_program_goes_on() {
    let out = child(
        "boot::child_boot",
        &[("DYNKEY_CHILD", "boot"), ("DYNKEY_QUERY", "mod x +p")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stderr.contains("DYNKEY_QUERY not applied") && stderr.contains("unknown keyword \"mod\""),
        "{stderr}"
    );
    assert!(
        stdout.contains("boot: site 3 disabled"),
        "the program went on: {stdout}"
    );
}

/// Child: runs a fixture site before touching anything else of dynkey.
#[test]
#[ignore = "run by the boot tests in a child process"]
fn child_boot() {
    if role().as_deref() != Some("boot") {
        return;
    }
    // The first dynkey-related thing this process does is run the site.
    let enabled = kernel_like::run(3);
    println!(
        "boot: site 3 {}",
        if enabled {
            "enabled before any dynkey call"
        } else {
            "disabled"
        }
    );
}

fn example(name: &str) -> std::path::PathBuf {
    // target/debug/deps/api-HASH -> target/debug/examples/NAME
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name)
}

#[test]
fn embed_example_reacts_to_dynkey_query() {
    let bin = example("embed");
    assert!(bin.exists(), "{} is built by `cargo test`", bin.display());
    let run = |query: Option<&str>| {
        let mut cmd = Command::new(&bin);
        cmd.env_remove("DYNKEY_QUERY");
        if let Some(q) = query {
            cmd.env("DYNKEY_QUERY", q);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{out:?}");
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (stdout, stderr) = run(None);
    assert!(
        stdout.starts_with("# filename:lineno [module]function flags format\n"),
        "the listing comes first: {stdout}"
    );
    assert!(stdout.contains("[embed::noisy]heartbeat =_"), "{stdout}");
    assert_eq!(stderr, "", "nothing is enabled by default");
    let (_, stderr) = run(Some("module !*::noisy +pmf"));
    assert!(
        stderr.contains("embed::orders:process: processing order"),
        "decorated lines from orders: {stderr}"
    );
    assert!(
        stderr.contains("embed:main: service starting"),
        "and from the crate root: {stderr}"
    );
    assert!(
        !stderr.contains("heartbeat"),
        "nothing from the noisy module: {stderr}"
    );
}

/// Issue 12: a typo in configuration surfaces where the user looks first.
#[test]
fn a_bad_dynkey_sites_is_returned_by_init_printed_once_and_refuses_changes() {
    let out = child(
        "boot::child_config",
        &[
            ("DYNKEY_CHILD", "config"),
            ("DYNKEY_SITES", "bogus"),
            ("DYNKEY_QUERY", "func virtnet_poll +p"),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout.contains("init: E_CONFIG configuration: invalid DYNKEY_SITES=\"bogus\""),
        "init returns the error, naming the variable: {stdout}"
    );
    assert!(
        stdout.contains("exec: E_CONFIG") && stdout.contains("enable: E_CONFIG"),
        "changes are refused with it: {stdout}"
    );
    assert_eq!(
        stderr.matches("DYNKEY_SITES").count(),
        1,
        "printed once, and not as a misleading DYNKEY_QUERY message: {stderr}"
    );
    assert!(!stderr.contains("DYNKEY_QUERY not applied"), "{stderr}");
}

dynkey::static_key!(static CONFIG_KEY: bool = false);

/// Child: what a program sees with a bad configuration.
#[test]
#[ignore = "run by the configuration test in a child process"]
fn child_config() {
    if role().as_deref() != Some("config") {
        return;
    }
    let show = |what: &str, r: Result<(), dynkey::Error>| match r {
        Ok(()) => println!("{what}: ok"),
        Err(e) => println!("{what}: {} {e}", e.category()),
    };
    show("init", dynkey::init());
    show(
        "exec",
        dynkey::control().exec("func virtnet_poll +p").map(drop),
    );
    show("enable", CONFIG_KEY.enable());
}

#[test]
fn a_class_no_map_covers_is_an_error_naming_the_site_and_the_map() {
    let bin = example("class_outside_map");
    assert!(bin.exists(), "{} is built by `cargo test`", bin.display());
    let out = Command::new(&bin)
        .env_remove("DYNKEY_QUERY")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = "crates/dynkey/examples/class_outside_map.rs:";
    assert!(
        stdout.contains("init: E_UNKNOWN_CLASS")
            && stdout.contains(line)
            && stdout.contains("uses class APP_VERBOSE")
            && stdout.contains("app.debug (modules [\"class_outside_map::covered\"])"),
        "init names the site and the map: {stdout}"
    );
    assert_eq!(
        stderr.matches(line).count(),
        1,
        "printed once at start: {stderr}"
    );
    assert!(
        stdout.contains("covered site: matched 1"),
        "the covered site works: {stdout}"
    );
}
