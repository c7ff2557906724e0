//! What `ryokan` says, as a user meets it, when there is nothing to talk
//! to or what it is given is wrong: each a clear error naming what to do,
//! and a non-zero exit status.

use std::process::{Command, Output};

fn ryokan(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_ryokan")).args(args).env_remove("RYOKAN_CONNECT").output();
    out.unwrap_or_else(|e| panic!("cannot run ryokan: {e}"))
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn no_system_listening_says_to_start_one() {
    let dir = std::env::temp_dir().join(format!("ryokan-cli-errors-{}", std::process::id()));
    let path = dir.join("none.sock");
    let path = path.to_str().unwrap_or("/nonexistent/ryokan.sock");
    for verb in [&["list"][..], &["info", "x"], &["stats"], &["pause", "x"], &["console", "x"]] {
        let mut args = vec!["--connect", path];
        args.extend_from_slice(verb);
        let o = ryokan(&args);
        let e = stderr(&o);
        assert!(!o.status.success(), "{verb:?}: succeeded");
        assert!(e.contains(&format!("no system listening on {path}")), "{verb:?}: {e}");
        assert!(e.contains("is it running? start it with `cargo xtask run`"), "{verb:?}: {e}");
    }
}

#[test]
fn a_socket_nobody_answers_on_is_not_a_hang() {
    // A path that is there but is no socket: refused at once, not waited on.
    let dir = std::env::temp_dir().join(format!("ryokan-cli-plain-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let file = dir.join("plain");
    std::fs::write(&file, b"not a socket").unwrap_or_else(|e| panic!("{e}"));
    let o = ryokan(&["--connect", file.to_str().unwrap_or("/"), "list"]);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no system listening on"), "{}", stderr(&o));
}

#[test]
fn a_bad_command_line_is_a_usage_error() {
    let o = ryokan(&["frobnicate"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("frobnicate"), "{}", stderr(&o));
    // Refused before any connection is tried, saying what a weight is.
    for bad in ["weight=lots", "weight=0", "weight=65536"] {
        let o = ryokan(&["--connect", "/nonexistent/ryokan.sock", "set", "x", bad]);
        assert_eq!(o.status.code(), Some(2), "{bad}: {}", stderr(&o));
        assert!(stderr(&o).contains("a weight is 1 to 65535"), "{bad}: {}", stderr(&o));
    }
}
