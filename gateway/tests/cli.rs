//! The CLI's promises that need no Redis: one-line errors and exit codes (CONTRACT.md section 1).
//! Being an integration test of this package also makes `cargo test` build the `helpline` binary
//! that the end-to-end tests in `tests/` start.

#![allow(clippy::expect_used, clippy::unwrap_used)] // Test code: a failure should stop the test.

use std::process::Command;

fn helpline(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_helpline"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("run helpline")
}

fn one_line_error(out: &std::process::Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "expected one line, got: {err}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
    err
}

#[test]
fn config_check_prints_the_effective_config_with_secrets_redacted() {
    let out = helpline(
        &["config", "check"],
        &[(
            "HELPLINE_SECURITY__MASTER_KEY",
            "Q0FOQVJZLWtleS1DQU5BUlkta2V5LUNBTkFSWS1rZXk=",
        )],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("[redacted]"));
    assert!(!text.contains("Q0FOQVJZ"), "the master key leaked: {text}");
    assert!(text.contains("offer_timeout_s = 30"));
}

#[test]
fn bad_config_gives_one_line_and_exit_2() {
    let out = helpline(
        &["config", "check"],
        &[("HELPLINE_ROUTING__ASSIGNMENT", "random")],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = one_line_error(&out);
    assert!(err.contains("routing.assignment"), "{err}");
}

#[test]
fn unknown_config_file_key_is_an_error() {
    let dir = std::env::temp_dir().join(format!("helpline-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.toml");
    std::fs::write(&file, "[routing]\noffer_timeout = 5\n").unwrap();
    let out = helpline(
        &["config", "check", "--config", file.to_str().unwrap()],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = one_line_error(&out);
    assert!(err.contains("offer_timeout"), "{err}");
}

#[test]
fn unknown_flag_is_one_line() {
    let out = helpline(&["serve", "--frobnicate"], &[]);
    assert_eq!(out.status.code(), Some(2));
    one_line_error(&out);
}

#[test]
fn serve_without_master_key_refuses() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = helpline(
        &["serve"],
        &[("HELPLINE_REDIS__URL", &format!("redis://127.0.0.1:{port}"))],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = one_line_error(&out);
    assert!(err.contains("master key"), "{err}");
}

#[test]
fn unreachable_redis_is_one_line() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://127.0.0.1:{port}");
    let out = helpline(&["user", "list"], &[("HELPLINE_REDIS__URL", &url)]);
    assert_eq!(out.status.code(), Some(1));
    let err = one_line_error(&out);
    assert!(err.contains("unreachable") && err.contains(&url), "{err}");
}
