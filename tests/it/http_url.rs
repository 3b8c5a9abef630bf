//! An http sink's URL from the environment or a file (`url_env`, `url_file`): a webhook URL
//! that carries a token stays out of the configuration text and out of the logs.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use crate::cli::{Run, mqpilot_env};
use crate::net_procs::Scratch;

/// A loopback server answering every request 200; the request lines it saw.
fn answering_200() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let lines = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut request_line = String::new();
            let _ = reader.read_line(&mut request_line);
            let mut length = 0;
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                    break;
                }
                if let Some(v) = header.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            lines.lock().unwrap().push(request_line.trim_end().to_owned());
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (base, seen)
}

/// `mqpilot poll --fake` with `config` and `env`, ending after five messages.
fn five_with(config: &Scratch, env: &[(&str, &str)]) -> Run {
    let args = [
        "poll",
        "--fake",
        "--config",
        config.arg(),
        "--max-messages",
        "5",
        "--wait-ms",
        "50",
    ];
    mqpilot_env(&args, env)
}

fn http_sink(source: &str) -> Scratch {
    Scratch::new(
        "http-url.toml",
        &format!("[[queue]]\nname = \"DEMO.IN\"\nbatch = 5\n[queue.sink]\ntype = \"http\"\n{source}\n"),
    )
}

#[test]
fn the_url_comes_from_url_file_or_url_env_and_its_token_is_never_logged() {
    let (base, seen) = answering_200();
    let url = format!("{base}/hooks/T0K3N-{}", std::process::id());
    let file = Scratch::new("hook-url", &format!("{url}\n"));
    let from_file = http_sink(&format!("url_file = {:?}", file.arg()));
    let from_env = http_sink("url_env = \"MQPILOT_TEST_HOOK_URL\"");
    for (config, env) in [
        (&from_file, vec![]),
        (&from_env, vec![("MQPILOT_TEST_HOOK_URL", url.as_str())]),
    ] {
        let run = five_with(config, &[&env[..], &[("RUST_LOG", "debug")]].concat());
        run.expect_code(0);
        assert!(!run.stderr.contains("T0K3N"), "{}", run.stderr);
    }
    let path = format!("POST /hooks/T0K3N-{} HTTP/1.1", std::process::id());
    assert_eq!(*seen.lock().unwrap(), [path.clone(), path], "one batch of 5 per run");
}

#[test]
fn a_url_source_that_cannot_be_used_is_named_and_nothing_runs() {
    let both = http_sink("url = \"http://127.0.0.1:1/in\"\nurl_env = \"MQPILOT_TEST_HOOK_URL\"");
    let run = mqpilot_env(&["poll", "--fake", "--config", both.arg()], &[]);
    run.expect_code(2)
        .stderr_has(&["queue[0].sink.url: set exactly one of url, url_env and url_file"]);
    let unset = http_sink("url_env = \"MQPILOT_TEST_HOOK_URL_UNSET\"");
    let run = mqpilot_env(&["poll", "--fake", "--config", unset.arg()], &[]);
    run.expect_code(3)
        .stderr_has(&["queue DEMO.IN", "url_env MQPILOT_TEST_HOOK_URL_UNSET is not set"]);
    let bad = Scratch::new("bad-url", "ftp://x/secret-path\n");
    let from_file = http_sink(&format!("url_file = {:?}", bad.arg()));
    let run = mqpilot_env(&["poll", "--fake", "--config", from_file.arg()], &[]);
    run.expect_code(3).stderr_has(&["must be an http:// or https:// URL"]);
    assert!(!run.stderr.contains("secret-path"), "{}", run.stderr);
}

#[test]
fn an_exec_command_does_not_inherit_the_variable_an_http_sink_takes_its_url_from() {
    let dump = Scratch::new("exec-env", "");
    let config = Scratch::new(
        "exec-and-http.toml",
        &format!(
            "[[queue]]\nname = \"DEMO.IN\"\nbatch = 5\n[queue.sink]\ntype = \"exec\"\n\
             command = [\"sh\", \"-c\", \"cat > /dev/null; env > {}\"]\n\
             [[queue]]\nname = \"DEMO.OUT\"\n[queue.sink]\ntype = \"http\"\nurl_env = \"MQPILOT_TEST_HOOK_URL\"\n",
            dump.arg()
        ),
    );
    let env = [
        ("MQPILOT_TEST_HOOK_URL", "http://127.0.0.1:1/hooks/T0K3N"),
        ("SEEN_BY_EXEC", "yes"),
    ];
    five_with(&config, &env).expect_code(0);
    let seen = dump.read();
    assert!(seen.contains("SEEN_BY_EXEC=yes"), "{seen}");
    assert!(!seen.contains("MQPILOT_TEST_HOOK_URL"), "{seen}");
}
