//! `mqpilot fake-qm` on the command line: the admin subcommands against a server process,
//! and the server's own start-up errors.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::net_procs::{FakeQmProcess, Scratch};

const CONFIG: &str = r#"
[[channel]]
name = "APP.SVRCONN"

[[queue]]
name = "IN"
"#;

/// Runs `mqpilot args` to completion (bounded); exit code, stdout, stderr.
fn mqpilot(args: &[&str]) -> (Option<i32>, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mqpilot"))
        .args(args)
        .env_remove("MQPILOT_FAKE_QM")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mqpilot");
    let started = std::time::Instant::now();
    while child.try_wait().expect("try_wait").is_none() {
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("mqpilot {args:?} did not finish");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().expect("output");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn admin_subcommands_put_browse_depth_status_break_and_quiesce() {
    let server = FakeQmProcess::start(CONFIG);
    let s = server.addr.as_str();
    let (code, out, err) = mqpilot(&[
        "fake-qm",
        "put",
        "--server",
        s,
        "-q",
        "IN",
        "--data",
        "order {n}",
        "--count",
        "3",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.lines().count(), 3, "three message ids: {out}");
    assert!(out.lines().all(|l| l.len() == 48), "{out}");

    let (code, out, _) = mqpilot(&["fake-qm", "depth", "--server", s, "-q", "IN"]);
    assert_eq!((code, out.trim()), (Some(0), "3"));

    let (_, out, _) = mqpilot(&["fake-qm", "browse", "--server", s, "-q", "IN"]);
    let data: Vec<String> = out
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("JSON line")["data"].to_string())
        .collect();
    assert_eq!(data, [r#""order 1""#, r#""order 2""#, r#""order 3""#]);

    let (code, out, _) = mqpilot(&["fake-qm", "status", "--server", s]);
    assert_eq!(code, Some(0));
    assert!(out.contains("queue IN: depth 3"), "{out}");
    assert!(out.contains("channel APP.SVRCONN: 0 instances"), "{out}");
    let (_, out, _) = mqpilot(&["fake-qm", "status", "--server", s, "--json"]);
    let status: serde_json::Value = serde_json::from_str(&out).expect("status JSON");
    assert_eq!(status["queue_manager"], "QM1");

    let (code, out, _) = mqpilot(&["fake-qm", "break", "--server", s]);
    assert_eq!((code, out.trim()), (Some(0), "broke 0 connection(s)"));

    let (code, _, err) = mqpilot(&["fake-qm", "depth", "--server", s, "-q", "NOPE"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("unknown queue NOPE") && err.contains(s), "{err}");

    let (code, out, _) = mqpilot(&["fake-qm", "quiesce", "--server", s]);
    assert_eq!((code, out.trim()), (Some(0), "quiescing"));
    assert_eq!(server.status().state, "quiescing");
    let (code, _, _) = mqpilot(&["fake-qm", "start", "--server", s]);
    assert_eq!(code, Some(0));
    assert_eq!(server.status().state, "running");
}

#[test]
fn a_bad_config_exits_2_naming_file_and_line_and_a_busy_port_exits_3() {
    let bad = Scratch::new("bad.toml", "[[queue]]\nname = \"Q\"\ncolour = \"red\"\n");
    let (code, _, err) = mqpilot(&["fake-qm", "--listen", "127.0.0.1:0", "--config", bad.arg()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains(bad.arg()) && err.contains(":3:"), "{err}");
    let (code, _, err) = mqpilot(&["fake-qm", "--listen", "127.0.0.1:0", "--max-sockets", "0"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--max-sockets"), "{err}");

    let server = FakeQmProcess::start(CONFIG);
    let (code, _, err) = mqpilot(&["fake-qm", "--listen", &server.addr]);
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("cannot listen on"), "{err}");
    let (code, _, err) = mqpilot(&["fake-qm", "status", "--server", "127.0.0.1:1"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("cannot connect"), "{err}");
}

#[test]
fn a_value_that_is_not_host_port_or_a_count_of_0_is_a_usage_error_naming_the_flag() {
    for (args, flag) in [
        (
            &["fake-qm", "depth", "--server", "notaport", "-q", "IN"][..],
            "--server",
        ),
        (&["fake-qm", "--listen", "nohost"], "--listen"),
        (&["fake-qm", "--listen", "127.0.0.1:99999"], "--listen"),
        (
            &["fake-qm", "put", "--server", "127.0.0.1:1", "-q", "IN", "--count", "0"],
            "--count",
        ),
        (&["poll", "--fake-qm", "localhost", "--queue", "IN"], "--fake-qm"),
    ] {
        let (code, _, err) = mqpilot(args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains(&format!("for '{flag} <")), "{args:?}: {err}");
    }
    let (_, _, err) = mqpilot(&["fake-qm", "depth", "--server", "notaport", "-q", "IN"]);
    assert!(err.contains("\"notaport\" is not host:port"), "{err}");
    // The range a queue can hold (MAXDEPTH at most 999 999 999), not u64's.
    let (_, _, err) = mqpilot(&["fake-qm", "put", "--server", "127.0.0.1:1", "-q", "IN", "--count", "0"]);
    assert!(err.contains("0 is not in 1..=999999999"), "{err}");
}

/// Regression: `put --priority 1000` was put with priority 1000 although `--help` says
/// 0..=9, and `--backout-count 1000000000` reached the server, which refused it (exit 1).
/// Both are bad flag values: exit 2 naming the flag, and nothing is put.
#[test]
fn regression_put_values_outside_mqs_ranges_exit_2_naming_the_flag() {
    let server = FakeQmProcess::start(CONFIG);
    let put = ["fake-qm", "put", "--server", server.addr.as_str(), "-q", "IN"];
    for (flag, value) in [
        ("--priority", "1000"),
        ("--priority", "10"),
        ("--priority", "-1"),
        ("--backout-count", "1000000000"),
        ("--backout-count", "-1"),
    ] {
        let given = format!("{flag}={value}");
        let (code, _, err) = mqpilot(&[&put[..], &[given.as_str()]].concat());
        assert_eq!(code, Some(2), "{flag} {value}: {err}");
        assert!(err.contains(&format!("for '{flag} <")), "{flag} {value}: {err}");
    }
    assert_eq!(server.depth("IN"), 0, "nothing was put");
    // The ends of the ranges are put as given.
    let (code, _, err) = mqpilot(&[&put[..], &["--priority", "9", "--backout-count", "999999999"]].concat());
    assert_eq!(code, Some(0), "{err}");
    let browsed = server.admin().browse("IN").expect("browse");
    assert_eq!((browsed[0].priority, browsed[0].backout_count), (9, 999_999_999));
}

/// Regression: `put` sent every message in one request, so a `--count` whose messages came
/// to more than a frame carries (about 100 MiB) failed with "the connection failed before the
/// answer" after building them all in memory. Requests now carry a bounded share each.
#[test]
fn regression_a_put_past_one_frame_is_sent_in_several_requests() {
    let server =
        FakeQmProcess::start("[[channel]]\nname = \"APP.SVRCONN\"\n[[queue]]\nname = \"IN\"\nmax_depth = 5000\n");
    let data = "x".repeat(100 << 10);
    let args = ["fake-qm", "put", "--server", &server.addr, "-q", "IN", "--data", &data];
    let (code, out, err) = mqpilot(&[&args[..], &["--count", "1100"]].concat());
    assert_eq!(code, Some(0), "{err}");
    let ids: std::collections::BTreeSet<&str> = out.lines().collect();
    assert_eq!(ids.len(), 1100, "one id per message");
    assert_eq!(server.depth("IN"), 1100);
}
