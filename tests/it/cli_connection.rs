//! The binary's connection errors name the flag, variable or file key that needs changing.

use std::process::{Command, Output};

use crate::cli::MACHINE_VARS;

/// Runs `mqpilot args` with the machine's MQ variables removed and `env` added.
fn mqpilot(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mqpilot"));
    command.args(args).stdin(std::process::Stdio::null());
    for var in MACHINE_VARS {
        command.env_remove(var);
    }
    command.envs(env.iter().copied());
    command.output().expect("run mqpilot")
}

/// The run's exit code and stderr.
fn failed(output: &Output) -> (Option<i32>, String) {
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

const DEMO: [&str; 5] = ["poll", "--fake", "--until-empty", "--wait-ms", "50"];

/// A worker config file under the temp dir, removed when dropped.
struct ConfigFile(std::path::PathBuf);

impl ConfigFile {
    fn new(name: &str, text: &str) -> Self {
        let path = std::env::temp_dir().join(format!("mqpilot-cli-connection-{}-{name}", std::process::id()));
        std::fs::write(&path, text).expect("write config");
        Self(path)
    }

    fn arg(&self) -> &str {
        self.0.to_str().expect("utf-8 temp dir")
    }
}

impl Drop for ConfigFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn regression_a_user_without_a_password_names_the_user_flag_and_where_a_password_goes() {
    let (code, stderr) = failed(&mqpilot(&[&DEMO[..], &["--user", "app"]].concat(), &[]));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.starts_with("mqpilot: --user: user \"app\" is set but no password"),
        "{stderr}"
    );
    assert!(
        stderr.contains("--password-file") && stderr.contains("MQ_PASSWORD"),
        "{stderr}"
    );

    let config = ConfigFile::new(
        "user.toml",
        "[connection]\nuser = \"app\"\n[[queue]]\nname = \"DEMO.IN\"\n",
    );
    let (code, stderr) = failed(&mqpilot(&[&DEMO[..], &["--config", config.arg()]].concat(), &[]));
    assert_eq!(code, Some(2), "{stderr}");
    let expected = format!(
        "mqpilot: {}:2:1: connection.user: user \"app\" is set but no password",
        config.arg()
    );
    assert!(stderr.starts_with(&expected), "{stderr}");
    assert!(stderr.contains("connection.password_file"), "{stderr}");
}

#[test]
fn regression_a_ccdt_url_without_a_scheme_is_refused_naming_where_it_came_from() {
    let (code, stderr) = failed(&mqpilot(&["poll", "--ccdt-url", "/etc/ccdt.json", "--queue", "Q"], &[]));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.starts_with("mqpilot: --ccdt-url: \"/etc/ccdt.json\" is not a URL"),
        "{stderr}"
    );
    assert!(stderr.contains("file:///etc/ccdt.json"), "{stderr}");

    let (code, stderr) = failed(&mqpilot(&["poll", "--queue", "Q"], &[("MQCCDTURL", "/etc/ccdt.json")]));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.starts_with("mqpilot: MQCCDTURL: \"/etc/ccdt.json\" is not a URL"),
        "{stderr}"
    );

    let config = ConfigFile::new(
        "ccdt.toml",
        "[connection]\nccdt_url = \"ccdt.json\"\n[[queue]]\nname = \"Q\"\n",
    );
    let (code, stderr) = failed(&mqpilot(&["poll", "--config", config.arg()], &[]));
    assert_eq!(code, Some(2), "{stderr}");
    let expected = format!(
        "mqpilot: {}:2:1: connection.ccdt_url: \"ccdt.json\" is not a URL",
        config.arg()
    );
    assert!(stderr.starts_with(&expected), "{stderr}");
}

#[test]
fn a_certificate_label_flag_needs_a_cipher_spec_and_is_checked() {
    let (code, stderr) = failed(&mqpilot(&[&DEMO[..], &["--cert-label", "app"]].concat(), &[]));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.starts_with("mqpilot: --cert-label: needs a cipher spec"),
        "{stderr}"
    );
    let long = "l".repeat(65);
    let args = [&DEMO[..], &["--cipher-spec", "ANY_TLS13", "--cert-label", &long]].concat();
    let (code, stderr) = failed(&mqpilot(&args, &[]));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.starts_with("mqpilot: --cert-label: certificate label"),
        "{stderr}"
    );
    let (code, stderr) = failed(&mqpilot(&["mcp", "--help"], &[]));
    assert_eq!(code, Some(0), "{stderr}");
    let help = String::from_utf8_lossy(&mqpilot(&["mcp", "--help"], &[]).stdout).into_owned();
    assert!(help.contains("--cert-label <LABEL>"), "{help}");
}
