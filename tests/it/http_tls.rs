//! The http sink over https to a server whose certificate a private CA signed: trusted with
//! `ca_file`, refused (and the message backed out) without it, and a `ca_file` that cannot be
//! used stopping the start.
//!
//! The server is rustls on loopback with the fixed certificates of `tests/data` (see its
//! README); `localhost.pem` is signed by `ca.pem`, which no public list holds.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use mqpilot::fake::FakeQm;
use mqpilot::worker::QueueTotals;
use mqpilot::worker::config::{QueueConfig, WorkerConfig};
use mqpilot::worker::prepare::prepare;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_util::sync::CancellationToken;

use crate::cli::mqpilot_env;
use crate::net_procs::Scratch;
use crate::worker::{fake, pool, run_until_empty, seed};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("data")
        .join(name)
}

/// An https server on loopback answering every request 204; the bodies it received.
fn https_server() -> (u16, mpsc::Receiver<Vec<u8>>) {
    let certs = CertificateDer::pem_file_iter(data("localhost.pem"))
        .expect("read localhost.pem")
        .collect::<Result<Vec<_>, _>>()
        .expect("parse localhost.pem");
    let key = PrivateKeyDer::from_pem_file(data("localhost.key")).expect("read localhost.key");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server certificate");
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            answer(stream, Arc::clone(&config), &tx);
        }
    });
    (port, rx)
}

/// Reads one request over TLS and answers 204. A client that refuses the certificate ends
/// the handshake, and with it the request, here.
fn answer(stream: TcpStream, config: Arc<rustls::ServerConfig>, seen: &mpsc::Sender<Vec<u8>>) {
    stream.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let connection = rustls::ServerConnection::new(config).expect("server connection");
    let mut tls = rustls::StreamOwned::new(connection, stream);
    let Some(body) = read_body(&mut tls) else { return };
    let _ = seen.send(body);
    let _ = tls.write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    tls.conn.send_close_notify();
    let _ = tls.flush();
}

fn read_body(stream: &mut impl std::io::Read) -> Option<Vec<u8>> {
    let mut reader = BufReader::new(stream);
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(body)
}

/// Queue IN (BOTHRESH 3, IN.BACKOUT) to an http sink posting to `url`, with `more` keys.
fn http_queue(url: &str, more: &str) -> String {
    format!("[[queue]]\nname = \"IN\"\nwait_ms = 50\n[queue.sink]\ntype = \"http\"\nurl = \"{url}\"\n{more}")
}

fn queues(text: &str) -> Vec<QueueConfig> {
    WorkerConfig::from_toml(text, Path::new("tls.toml"))
        .expect("valid config")
        .queues
}

fn ca_file_key(path: &Path) -> String {
    format!("ca_file = {:?}\n", path.to_str().expect("UTF-8 path"))
}

/// Drains `messages` seeded on IN through an http sink (with `more` keys) to a new https
/// server: the run's totals, the queue manager, and the bodies the server received.
async fn drain_to_https(more: &str, messages: usize) -> (QueueTotals, FakeQm, mpsc::Receiver<Vec<u8>>) {
    let (port, seen) = https_server();
    let queues = queues(&http_queue(&format!("https://localhost:{port}/hook"), more));
    let qm = fake(256);
    seed(&qm, "IN", messages);
    let pool = pool(&qm, 1);
    let runs = prepare(&pool, &queues, &CancellationToken::new())
        .await
        .expect("prepare");
    let totals = run_until_empty(&pool, runs).await.total();
    (totals, qm, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_ca_file_a_private_cas_server_gets_the_messages_and_they_are_committed() {
    let (totals, qm, seen) = drain_to_https(&ca_file_key(&data("ca.pem")), 2).await;
    assert_eq!((totals.delivered, totals.sink_failures, totals.backed_out), (2, 0, 0));
    assert_eq!((qm.depth("IN"), qm.depth("IN.BACKOUT")), (Some(0), Some(0)));
    let batch: Vec<serde_json::Value> = serde_json::from_slice(&seen.try_recv().expect("a request")).unwrap();
    let payloads: Vec<_> = batch.iter().map(|m| m["payload"].as_str().unwrap()).collect();
    assert_eq!(payloads, ["m0", "m1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_ca_file_a_private_cas_server_is_refused_and_the_message_backed_out() {
    let (totals, qm, seen) = drain_to_https("", 1).await;
    // Each failure backs the message out, its backout count raised; at BOTHRESH 3 it moves.
    assert_eq!(
        (
            totals.delivered,
            totals.sink_failures,
            totals.backed_out,
            totals.poisoned
        ),
        (0, 3, 3, 1)
    );
    assert_eq!((qm.depth("IN"), qm.depth("IN.BACKOUT")), (Some(0), Some(1)));
    assert!(seen.try_recv().is_err(), "no request gets past the handshake");
}

#[tokio::test]
async fn a_certificate_refused_says_what_the_sink_trusts() {
    let (port, _seen) = https_server();
    let url = format!("https://localhost:{port}/hook");
    let [queue] = &queues(&http_queue(&url, ""))[..] else {
        panic!("one queue")
    };
    let mqpilot::worker::poller::SinkTarget::External(sink) =
        mqpilot::worker::prepare::build_sink(&queue.sink, &[]).expect("sink")
    else {
        panic!("an external sink")
    };
    let message = mqpilot::mq::message::Message::new("IN", libmqm_default::MQMD_DEFAULT, b"m".to_vec());
    let err = sink.deliver(std::slice::from_ref(&message)).await.unwrap_err();
    assert!(err.message.contains("invalid peer certificate: UnknownIssuer"), "{err}");
    assert!(
        err.message
            .contains("Mozilla's root certificates: set ca_file to trust a private CA"),
        "{err}"
    );
}

#[test]
fn a_ca_file_that_cannot_be_used_stops_the_start_naming_the_key_and_the_file() {
    let not_pem = Scratch::new("not-pem-ca", "not a certificate\n");
    let bad_base64 = Scratch::new(
        "bad-base64-ca",
        "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
    );
    let cases = [
        (PathBuf::from("/no/such/ca.pem"), "cannot read /no/such/ca.pem: "),
        (data("localhost.key"), "holds no certificate"),
        (not_pem.0.clone(), "holds no certificate"),
        (bad_base64.0.clone(), "is not valid PEM"),
    ];
    for (path, why) in cases {
        let config = Scratch::new(
            "ca-file.toml",
            &http_queue("https://localhost:1/hook", &ca_file_key(&path)),
        );
        // Without --fake: the configuration is refused before any MQ library is loaded.
        let run = mqpilot_env(&["poll", "--config", config.arg()], &[]);
        let file = path.display().to_string();
        run.expect_code(2).stdout_empty().stderr_has(&[
            &format!("{}:7:1: queue[0].sink.ca_file: ", config.arg()),
            &file,
            why,
        ]);
    }
    let config = Scratch::new(
        "ca-file-http.toml",
        &http_queue("http://localhost:1/hook", &ca_file_key(&data("ca.pem"))),
    );
    mqpilot_env(&["poll", "--config", config.arg()], &[])
        .expect_code(2)
        .stderr_has(&["queue[0].sink.ca_file: ", "the url is http://"]);
}
