//! dynkeyd's command line as a user meets it: `--help` documents every
//! option and every environment variable, bad arguments exit with code 2.
//! (The parser itself is unit-tested in `src/cli.rs`.)

use std::process::{Command, Output};

fn dynkeyd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dynkeyd"))
        .args(args)
        .env_remove("DYNKEY_TOKEN")
        .output()
        .expect("run dynkeyd")
}

#[test]
fn help_lists_every_option_and_environment_variable() {
    let out = dynkeyd(&["--help"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let help = String::from_utf8_lossy(&out.stdout);
    for option in [
        "--listen",
        "--sites",
        "--token-file",
        "--insecure",
        "--workers",
        "--help",
        "--version",
    ] {
        assert!(help.contains(option), "{option} in:\n{help}");
    }
    // Every variable dynkeyd or the libraries it runs read.
    for var in [
        "DYNKEY_QUERY",
        "DYNKEY_TOKEN",
        "DYNKEY_SITES",
        "DYNKEY_RENDEZVOUS",
        "DYNKEY_QUEUE",
        "DYNKEY_SIGNAL",
        "DYNKEY_SIGNAL_TIMEOUT_MS",
        "DYNKEY_PERF_MAP",
        "DYNKEY_REGISTER_EARLY",
    ] {
        let line = help
            .lines()
            .find(|l| l.split_whitespace().next() == Some(var))
            .unwrap_or_else(|| panic!("no line for {var} in:\n{help}"));
        assert!(
            line.split_whitespace().count() > 2,
            "{var} has a meaning: {line:?}"
        );
    }
    let out = dynkeyd(&["--version"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("dynkeyd "));
}

#[test]
fn bad_arguments_exit_with_code_2_and_say_why() {
    for (args, named) in [
        (&["--bogus"][..], "--bogus"),
        (&["--workers", "two"][..], "two"),
        (&["--listen", "nowhere"][..], "nowhere"),
        (&["--listen"][..], "--listen"),
    ] {
        let out = dynkeyd(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(named), "{args:?} names {named}: {stderr}");
        assert!(out.stdout.is_empty(), "nothing on stdout for {args:?}");
    }
}
