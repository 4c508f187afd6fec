//! `--help` of the command and of every subcommand, as users read it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_macros
)]

fn help(args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ciguard"))
        .args(args)
        .arg("--help")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn help_of_every_command() {
    insta::assert_snapshot!("help", help(&[]));
    for cmd in [
        &["render"][..],
        &["check"],
        &["audit"],
        &["lint"],
        &["import"],
        &["import", "gitlab"],
        &["import", "woodpecker"],
        &["schema"],
        &["serve"],
        &["webhook-config"],
    ] {
        insta::assert_snapshot!(format!("help_{}", cmd.join("_")), help(cmd));
    }
}
