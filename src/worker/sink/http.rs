//! The `http` sink: POSTs messages to a URL, as JSON or as raw payloads, and only 2xx is success.
//!
//! Redirects are not followed: a 3xx, like a 4xx, a 5xx, a timeout or a refused connection,
//! fails the batch, and so does a 2xx whose body cannot be read to its end (cut short, reset,
//! or not done within the timeout; a body past [`DRAIN_LIMIT_BYTES`] is not read further).
//! Header values are secrets (a bearer token): they are never logged, never in `Debug`
//! output. Error messages show the URL as scheme, host and port, each path segment as `***`:
//! webhooks carry tokens in the query and in any path segment (`/services/T0/B0/secret`,
//! `/bot<token>/sendMessage`). A URL with
//! userinfo is refused: ureq would not send it, and secrets belong in headers read from the
//! environment or a file.
//! An https server's certificate is checked against Mozilla's root CAs (built in, as ureq's
//! webpki roots), or with `ca_file` against that file's certificates only, read when the sink
//! is built. A `ca_file` for an http:// URL is refused rather than ignored.
//! ureq is blocking, so requests run on tokio's blocking pool through one shared agent.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ureq::http::{HeaderName, HeaderValue, Uri};
use ureq::tls::{PemItem, RootCerts, TlsConfig, parse_pem};

use super::{Delivery, HeaderConfig, HttpBody, Per, Sink, SinkError, message_fields, message_json};
use crate::Error;
use crate::mq::message::Message;

/// How much of a response body is read (and dropped) so its connection can be reused.
const DRAIN_LIMIT_BYTES: u64 = 64 * 1024;

/// POSTs each batch (a JSON array) or each message (a JSON object or the raw payload) to a URL.
///
/// Cheap to clone: clones share one connection pool.
#[derive(Clone)]
pub struct HttpSink {
    endpoint: Arc<Endpoint>,
}

/// The shared part: where to post, how, and the agent that holds the connections.
struct Endpoint {
    agent: ureq::Agent,
    url: String,
    /// `url` as [`check_url`] shows it, for messages.
    shown: String,
    body: HttpBody,
    per: Per,
    /// Extra headers; values are marked sensitive.
    headers: Vec<(HeaderName, HeaderValue)>,
    /// Whether `headers` sets Content-Type, which then wins over ours.
    has_content_type: bool,
    /// The CA file trusted instead of Mozilla's roots, if any.
    ca_file: Option<PathBuf>,
}

/// One request to make.
struct Request {
    body: bytes::Bytes,
    content_type: &'static str,
    /// `X-MQ-*` headers of a raw request.
    headers: Vec<(HeaderName, HeaderValue)>,
    /// Which message(s) it carries, for error messages.
    what: String,
}

impl fmt::Debug for HttpSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = &self.endpoint;
        let names: Vec<&str> = e.headers.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("HttpSink")
            .field("url", &e.shown)
            .field("body", &e.body)
            .field("per", &e.per)
            .field("headers", &names)
            .field("ca_file", &e.ca_file)
            .finish_non_exhaustive()
    }
}

impl HttpSink {
    /// A sink posting to `url` (http or https) with extra `headers` (resolved values, see
    /// [`resolve_headers`]); each request, including reading its response, is limited to
    /// `timeout`. An https server's certificate must chain to one of Mozilla's root CAs, or,
    /// with `ca_file`, to one of that PEM file's certificates (read now).
    ///
    /// # Errors
    ///
    /// [`Error::Options`] when the URL is not an http(s) URL with a host or carries credentials,
    /// when `body` is raw but `per` is batch (a raw body holds one payload), when a header
    /// name or value is not valid in HTTP (the message names the header, never its value), or
    /// when `ca_file` is given for an http URL, is not PEM or holds no certificate;
    /// [`Error::SettingFile`] when `ca_file` cannot be read.
    pub fn new(
        url: impl Into<String>,
        body: HttpBody,
        per: Per,
        headers: Vec<(String, String)>,
        timeout: Duration,
        ca_file: Option<&Path>,
    ) -> Result<Self, Error> {
        let url = url.into();
        let shown = check_url(&url)?;
        let roots = ca_file.map(|path| trusted_roots(path, Some(&shown))).transpose()?;
        if body == HttpBody::Raw && per == Per::Batch {
            return Err(options_error(
                "sink.body",
                "body = \"raw\" sends one payload per request: it needs per = \"message\"",
            ));
        }
        let headers = check_headers(headers)?;
        let has_content_type = headers.iter().any(|(name, _)| name == ureq::http::header::CONTENT_TYPE);
        let mut tls = TlsConfig::builder();
        if let Some(roots) = roots {
            tls = tls.root_certs(roots);
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(timeout))
            .user_agent(concat!("mqpilot/", env!("CARGO_PKG_VERSION")))
            .tls_config(tls.build())
            .build()
            .new_agent();
        let endpoint = Endpoint {
            agent,
            url,
            shown,
            body,
            per,
            headers,
            has_content_type,
            ca_file: ca_file.map(Path::to_path_buf),
        };
        Ok(Self {
            endpoint: Arc::new(endpoint),
        })
    }
}

impl Endpoint {
    /// The requests a batch needs, in order.
    fn requests(&self, batch: &[Message]) -> Result<Vec<Request>, SinkError> {
        match (self.body, self.per) {
            (HttpBody::Json, Per::Batch) => {
                let array: Vec<_> = batch.iter().map(message_json).collect();
                Ok(vec![Request {
                    body: serde_json::to_vec(&array).expect("serialising JSON into memory").into(),
                    content_type: "application/json",
                    headers: Vec::new(),
                    what: format!("a batch of {}", batch.len()),
                }])
            }
            (HttpBody::Json, Per::Message) => Ok(batch
                .iter()
                .map(|m| Request {
                    body: serde_json::to_vec(&message_json(m))
                        .expect("serialising JSON into memory")
                        .into(),
                    content_type: "application/json",
                    headers: Vec::new(),
                    what: format!("message {}", m.msg_id_hex()),
                })
                .collect()),
            // `new` rejects raw per batch, so raw is always one message per request.
            (HttpBody::Raw, _) => batch.iter().map(raw_request).collect(),
        }
    }

    /// Makes one request; only a 2xx answer is success.
    fn post(&self, request: &Request) -> Result<(), SinkError> {
        let mut builder = self.agent.post(&self.url);
        for (name, value) in self.headers.iter().chain(&request.headers) {
            builder = builder.header(name.clone(), value.clone());
        }
        if !self.has_content_type {
            builder = builder.content_type(request.content_type);
        }
        let what = &request.what;
        let mut response = builder.send(&request.body[..]).map_err(|e| {
            let why = describe(&e);
            let trusted = self.trusted(&why);
            fail(format!("POST {} failed for {what}: {why}{trusted}", self.shown))
        })?;
        let status = response.status();
        if !status.is_success() {
            return Err(fail(format!("POST {} returned {status} for {what}", self.shown)));
        }
        // The content does not matter, but a 2xx is only an answer once all of it came: a
        // body cut short may be a proxy or server failing after its status line. Past the
        // limit it is not read further (the connection is then not reused).
        match response.body_mut().with_config().limit(DRAIN_LIMIT_BYTES).read_to_vec() {
            Ok(_) | Err(ureq::Error::BodyExceedsLimit(_)) => Ok(()),
            Err(e) => Err(fail(format!(
                "POST {} returned {status} for {what}, but reading its body failed: {}",
                self.shown,
                describe(&e)
            ))),
        }
    }

    /// What the sink trusts, to add to `why` when the server's certificate was refused: the
    /// fix is a `ca_file` (or another one), which the bare TLS error does not say.
    fn trusted(&self, why: &str) -> String {
        // Only a certificate no trusted CA issued: a wrong name or a date is not fixed by
        // trusting another CA.
        if !why.contains("UnknownIssuer") {
            return String::new();
        }
        match &self.ca_file {
            None => " (the sink trusts Mozilla's root certificates: set ca_file to trust a private CA)".to_owned(),
            Some(path) => format!(" (the sink trusts only the certificates in ca_file {})", path.display()),
        }
    }
}

/// A raw request: the payload as it is, MQMD fields as `X-MQ-*` headers.
fn raw_request(m: &Message) -> Result<Request, SinkError> {
    let headers = message_fields(m)
        .into_iter()
        .map(|(suffix, value)| {
            let name = format!("x-mq-{}", suffix.to_ascii_lowercase().replace('_', "-"));
            let name = HeaderName::from_bytes(name.as_bytes()).expect("field names are valid header names");
            // MQ text fields are printable in practice; one that is not fails this message,
            // which after enough backouts goes to the backout queue like any poison message.
            let value = HeaderValue::from_str(&value).map_err(|_| {
                fail(format!(
                    "message {}: {suffix} cannot be sent as an HTTP header",
                    m.msg_id_hex()
                ))
            })?;
            Ok((name, value))
        })
        .collect::<Result<_, _>>()?;
    Ok(Request {
        body: m.data.clone(),
        content_type: "application/octet-stream",
        headers,
        what: format!("message {}", m.msg_id_hex()),
    })
}

impl Sink for HttpSink {
    fn deliver<'a>(&'a self, batch: &'a [Message]) -> Delivery<'a> {
        let requests = self.endpoint.requests(batch);
        let endpoint = Arc::clone(&self.endpoint);
        Box::pin(async move {
            let requests = requests?;
            tokio::task::spawn_blocking(move || requests.iter().try_for_each(|r| endpoint.post(r)))
                .await
                .map_err(|e| fail(format!("the HTTP task failed: {e}")))?
        })
    }

    fn name(&self) -> &'static str {
        "http"
    }
}

/// Reads each header's value from where its config says: `value`, `value_env` or `value_file`
/// (trailing newline trimmed). Exactly one of the three must be set.
///
/// # Errors
///
/// [`Error::Options`] naming the header when none or several sources are set, the variable is
/// unset or not UTF-8, or the variable or file is empty; [`Error::SettingFile`] naming the
/// header when the file cannot be read.
pub fn resolve_headers(headers: &[HeaderConfig]) -> Result<Vec<(String, String)>, Error> {
    headers.iter().map(resolve_header).collect()
}

fn resolve_header(h: &HeaderConfig) -> Result<(String, String), Error> {
    let source = format!("header {}", h.name);
    let value = setting_value(
        &source,
        "value",
        h.value.as_deref(),
        h.value_env.as_deref(),
        h.value_file.as_deref(),
    )?;
    Ok((h.name.clone(), value))
}

/// The URL of an http sink from `url`, `url_env` or `url_file` (exactly one), read when the
/// sink is built. Errors name the variable or the file, never the URL.
///
/// # Errors
/// [`Error::Options`] for a variable that is not set or empty, or not exactly one source;
/// [`Error::SettingFile`] for a file that cannot be read.
pub fn resolve_url(
    url: Option<&str>,
    url_env: Option<&str>,
    url_file: Option<&std::path::Path>,
) -> Result<String, Error> {
    setting_value("sink", "url", url, url_env, url_file)
}

/// A value given as `KEY`, or read from the variable `KEY_env` or the file `KEY_file`
/// (exactly one; a file's trailing newline is trimmed; empty is refused). Errors name the
/// variable or the file, never the value: it may be a secret.
fn setting_value(
    source: &str,
    key: &str,
    value: Option<&str>,
    env: Option<&str>,
    file: Option<&std::path::Path>,
) -> Result<String, Error> {
    Ok(match (value, env, file) {
        (Some(value), None, None) => value.to_owned(),
        (None, Some(var), None) => {
            let value = std::env::var(var).map_err(|e| {
                // Never echo the variable: a value that is not Unicode would be printed.
                let why = match e {
                    std::env::VarError::NotPresent => "is not set",
                    std::env::VarError::NotUnicode(_) => "is not valid Unicode",
                };
                options_error(source, format!("{key}_env {var} {why}"))
            })?;
            if value.is_empty() {
                return Err(options_error(source, format!("{key}_env {var} is empty")));
            }
            value
        }
        (None, None, Some(path)) => {
            let text = std::fs::read_to_string(path).map_err(|e| Error::SettingFile {
                setting: format!("{source}: {key}_file"),
                path: path.to_owned(),
                source: e,
            })?;
            let value = text.strip_suffix('\n').unwrap_or(&text);
            let value = value.strip_suffix('\r').unwrap_or(value);
            if value.is_empty() {
                return Err(options_error(source, format!("{key}_file {} is empty", path.display())));
            }
            value.to_owned()
        }
        _ => {
            return Err(options_error(
                source,
                format!("set exactly one of {key}, {key}_env and {key}_file"),
            ));
        }
    })
}

/// Checks that `url` is an http(s) URL with a host and no userinfo; returns it as shown in
/// messages: `scheme://host[:port]`, each path segment shown as `***`, no query or fragment
/// (`https://hooks.example/***/***/***/***`).
pub(crate) fn check_url(url: &str) -> Result<String, Error> {
    let uri: Uri = url
        .parse()
        .map_err(|e| options_error("sink.url", format!("not a valid URL: {e}")))?;
    let scheme = uri.scheme_str().unwrap_or_default();
    let authority = uri.authority().filter(|a| !a.host().is_empty());
    let (true, Some(authority)) = (matches!(scheme, "http" | "https"), authority) else {
        return Err(options_error(
            "sink.url",
            "must be an http:// or https:// URL with a host",
        ));
    };
    if authority.as_str().contains('@') {
        // ureq would not send them, and a secret does not belong in the config text.
        return Err(options_error(
            "sink.url",
            "credentials in the URL are not sent: use an Authorization header with value_env or value_file",
        ));
    }
    Ok(format!("{scheme}://{authority}{}", redacted_path(uri.path())))
}

/// The certificates of the PEM file `path` (`ca_file`), as the roots an https server's
/// certificate must chain to, instead of Mozilla's. `shown_url` is the URL as [`check_url`]
/// shows it, when known: an http:// one is refused, as no certificate is checked there.
///
/// # Errors
/// [`Error::SettingFile`] (`sink.ca_file`) when the file cannot be read; [`Error::Options`]
/// (`sink.ca_file`) for an http URL, a file that is not valid PEM or holds no certificate.
pub(crate) fn trusted_roots(path: &Path, shown_url: Option<&str>) -> Result<RootCerts, Error> {
    if shown_url.is_some_and(|url| url.starts_with("http://")) {
        return Err(options_error(
            CA_FILE,
            "is for https:// URLs, but the url is http://, where no certificate is checked: use \
             https://, or drop ca_file",
        ));
    }
    let pem = std::fs::read(path).map_err(|source| Error::SettingFile {
        setting: CA_FILE.to_owned(),
        path: path.to_owned(),
        source,
    })?;
    let certs = certificates_in(&pem).map_err(|why| options_error(CA_FILE, format!("{} {why}", path.display())))?;
    Ok(RootCerts::new_with_certs(&certs))
}

/// The key that names an http sink's CA file, in errors.
const CA_FILE: &str = "sink.ca_file";

/// The certificates of PEM text; other sections (a private key) are skipped. The error says
/// what is wrong with the text, to follow its file's name.
fn certificates_in(pem: &[u8]) -> Result<Vec<ureq::tls::Certificate<'static>>, String> {
    let mut certs = Vec::new();
    for item in parse_pem(pem) {
        match item {
            Ok(PemItem::Certificate(cert)) => certs.push(cert),
            Ok(_) => {}
            // ureq shows the PEM error with `Debug`; its own `Display` reads better, except for
            // a missing end marker, which it names as a list of bytes.
            Err(ureq::Error::Pem(e)) if e.to_string().starts_with("missing section end marker") => {
                return Err("is not valid PEM: a section has no -----END line (cut short?)".to_owned());
            }
            Err(ureq::Error::Pem(e)) => return Err(format!("is not valid PEM: {e}")),
            Err(e) => return Err(format!("is not valid PEM: {e}")),
        }
    }
    if certs.is_empty() {
        return Err("holds no certificate (no -----BEGIN CERTIFICATE----- section)".to_owned());
    }
    // The TLS library drops a certificate it cannot read as a trust anchor without a word,
    // which would leave the sink trusting nothing: refuse the file instead.
    let mut store = rustls::RootCertStore::empty();
    for (i, cert) in certs.iter().enumerate() {
        let der = rustls::pki_types::CertificateDer::from(cert.der().to_vec());
        if let Err(e) = store.add(der) {
            return Err(format!(
                "holds a certificate that cannot be used (number {} of {}): {e}",
                i + 1,
                certs.len()
            ));
        }
    }
    Ok(certs)
}

/// `path` with every segment replaced by `***`: a token can be any of them (`/services/T/B/X`
/// webhooks, Telegram's `/bot<token>/sendMessage`, `https://host/<token>`).
fn redacted_path(path: &str) -> String {
    let mut shown = String::new();
    for segment in path.split('/').skip(1) {
        shown.push('/');
        if !segment.is_empty() {
            shown.push_str("***");
        }
    }
    shown
}

/// Checks header names and values; marks the values sensitive. Errors name the header only.
fn check_headers(headers: Vec<(String, String)>) -> Result<Vec<(HeaderName, HeaderValue)>, Error> {
    headers
        .into_iter()
        .map(|(name, value)| {
            let source = format!("header {name}");
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| options_error(&source, "is not a valid HTTP header name"))?;
            let mut value = HeaderValue::from_str(&value)
                .map_err(|_| options_error(&source, "value is not valid in an HTTP header"))?;
            value.set_sensitive(true);
            Ok((header, value))
        })
        .collect()
}

/// A ureq error in words; the variants that could quote the URL are replaced by fixed text.
fn describe(e: &ureq::Error) -> String {
    match e {
        ureq::Error::BadUri(_) => "invalid URL".to_owned(),
        ureq::Error::RequireHttpsOnly(_) => "https is required".to_owned(),
        ureq::Error::Timeout(t) => format!("timed out ({t})"),
        other => other.to_string(),
    }
}

fn options_error(source_name: &str, message: impl Into<String>) -> Error {
    Error::Options {
        source_name: source_name.to_owned(),
        message: message.into(),
    }
}

fn fail(message: String) -> SinkError {
    SinkError::retry("http", message)
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead as _, BufReader, Read as _, Write as _};
    use std::net::TcpListener;
    use std::sync::mpsc;

    use super::*;

    /// A request as the test server saw it; header names lower-cased.
    #[derive(Debug)]
    struct Seen {
        request_line: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    impl Seen {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
        }
    }

    /// A loopback HTTP server answering one request per connection with the next scripted
    /// status, then stopping. Each request is reported before it is answered, so once the
    /// client has its answer the request is in the channel.
    fn serve(statuses: &[u16]) -> (String, mpsc::Receiver<Seen>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = mpsc::channel();
        let statuses = statuses.to_vec();
        std::thread::spawn(move || {
            for status in statuses {
                let Ok((mut stream, _)) = listener.accept() else { return };
                stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let Some(seen) = read_request(&mut stream) else { return };
                let _ = tx.send(seen);
                let location = if (300..400).contains(&status) {
                    "Location: /elsewhere\r\n"
                } else {
                    ""
                };
                let answer =
                    format!("HTTP/1.1 {status} Scripted\r\n{location}Content-Length: 0\r\nConnection: close\r\n\r\n");
                let _ = stream.write_all(answer.as_bytes());
            }
        });
        (base, rx)
    }

    fn read_request(stream: &mut std::net::TcpStream) -> Option<Seen> {
        let mut reader = BufReader::new(stream);
        let mut request_line = String::new();
        reader.read_line(&mut request_line).ok()?;
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).ok()?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':')?;
            headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
        }
        let length = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .map_or(0, |(_, v)| v.parse().unwrap());
        let mut body = vec![0; length];
        reader.read_exact(&mut body).ok()?;
        Some(Seen {
            request_line: request_line.trim_end().to_owned(),
            headers,
            body,
        })
    }

    fn message(data: &[u8], msg_id: u8) -> Message {
        let mut md = libmqm_default::MQMD_DEFAULT;
        md.MsgId[0] = msg_id;
        md.BackoutCount = 2;
        Message::new("IN.Q", md, data.to_vec())
    }

    fn sink(url: &str, body: HttpBody, per: Per) -> HttpSink {
        let headers = vec![("Authorization".to_owned(), "Bearer s3cret".to_owned())];
        HttpSink::new(url, body, per, headers, Duration::from_secs(5), None).unwrap()
    }

    #[tokio::test]
    async fn json_per_batch_posts_one_array_with_the_extra_headers() {
        let (base, seen) = serve(&[204]);
        let sink = sink(&format!("{base}/hook?tenant=a"), HttpBody::Json, Per::Batch);
        sink.deliver(&[message(b"one", 1), message(b"two", 2)]).await.unwrap();

        let request = seen.recv().unwrap();
        assert_eq!(request.request_line, "POST /hook?tenant=a HTTP/1.1");
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert_eq!(request.header("authorization"), Some("Bearer s3cret"));
        let array: Vec<serde_json::Value> = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(array.len(), 2);
        assert_eq!(array[0]["payload"], "one");
        assert_eq!(array[1]["payload"], "two");
        assert_eq!(array[1]["backout_count"], 2);
    }

    #[tokio::test]
    async fn json_per_message_posts_one_object_each_in_order() {
        let (base, seen) = serve(&[200, 201]);
        let sink = sink(&format!("{base}/each"), HttpBody::Json, Per::Message);
        sink.deliver(&[message(b"one", 1), message(b"two", 2)]).await.unwrap();

        for payload in ["one", "two"] {
            let request = seen.recv().unwrap();
            let object: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
            assert_eq!(object["payload"], payload);
        }
    }

    #[tokio::test]
    async fn raw_sends_the_payload_and_mqmd_headers() {
        let (base, seen) = serve(&[202]);
        let sink = sink(&format!("{base}/raw"), HttpBody::Raw, Per::Message);
        let m = message(&[0xff, 0x00, 0x10], 0xab);
        sink.deliver(std::slice::from_ref(&m)).await.unwrap();

        let request = seen.recv().unwrap();
        assert_eq!(request.body, [0xff, 0x00, 0x10]);
        assert_eq!(request.header("content-type"), Some("application/octet-stream"));
        assert_eq!(request.header("x-mq-msg-id"), Some(m.msg_id_hex().as_str()));
        assert_eq!(request.header("x-mq-backout-count"), Some("2"));
        assert_eq!(request.header("x-mq-queue"), Some("IN.Q"));
        assert!(request.header("x-mq-reply-to-q").is_some());
    }

    #[tokio::test]
    async fn a_500_fails_the_batch_at_that_message_naming_url_and_status_but_no_secrets() {
        let (base, seen) = serve(&[204, 500, 204]);
        let url = format!("{base}/hook?token=t0ken");
        let sink = sink(&url, HttpBody::Json, Per::Message);
        let batch = [message(b"a", 1), message(b"b", 2), message(b"c", 3)];
        let err = sink.deliver(&batch).await.unwrap_err();

        assert_eq!(err.sink, "http");
        assert!(err.message.contains(&format!("POST {base}/*** returned 500")), "{err}");
        assert!(err.message.contains(&batch[1].msg_id_hex()), "{err}");
        for secret in ["t0ken", "s3cret"] {
            assert!(!err.to_string().contains(secret), "{err}");
        }
        assert_eq!(seen.try_iter().count(), 2, "the third message must not be sent");
    }

    #[tokio::test]
    async fn a_path_token_never_appears_in_errors() {
        let (base, _seen) = serve(&[500]);
        let url = format!("{base}/services/T0ABC/B0DEF/pathS3cret");
        let err = sink(&url, HttpBody::Json, Per::Batch)
            .deliver(&[message(b"a", 1)])
            .await
            .unwrap_err();
        assert!(
            err.message
                .contains(&format!("POST {base}/***/***/***/*** returned 500")),
            "{err}"
        );
        for secret in ["T0ABC", "B0DEF", "pathS3cret"] {
            assert!(!err.to_string().contains(secret), "{err}");
        }
    }

    #[test]
    fn urls_are_shown_with_their_host_and_port_only() {
        let shown = |url: &str| check_url(url).unwrap();
        assert_eq!(shown("https://h/"), "https://h/");
        assert_eq!(shown("https://h"), "https://h/");
        assert_eq!(shown("https://h:8443/hook?k=v#f"), "https://h:8443/***");
        assert_eq!(shown("https://h/a/b/c/"), "https://h/***/***/***/");
        assert_eq!(
            shown("https://api.example/bot123456:AAHsecret/sendMessage"),
            "https://api.example/***/***"
        );
    }

    /// A loopback server that answers one request with `head` and then `then` does to the
    /// connection: the whole request is read first.
    fn answer_once(head: &'static str, then: fn(std::net::TcpStream)) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let Ok((mut stream, _)) = listener.accept() else { return };
            stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            if read_request(&mut stream).is_some() && stream.write_all(head.as_bytes()).is_ok() {
                then(stream);
            }
        });
        url
    }

    /// 200 with a body of 1000 bytes announced, 7 sent.
    const CUT_SHORT: &str = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial";

    async fn deliver_to(url: &str, timeout: Duration) -> Result<(), SinkError> {
        HttpSink::new(url, HttpBody::Json, Per::Batch, Vec::new(), timeout, None)
            .unwrap()
            .deliver(&[message(b"a", 1)])
            .await
    }

    #[tokio::test]
    async fn a_2xx_whose_body_is_cut_short_fails() {
        let url = answer_once(CUT_SHORT, drop);
        let err = deliver_to(&url, Duration::from_secs(5)).await.unwrap_err();
        assert!(err.message.contains("reading its body failed"), "{err}");
    }

    #[tokio::test]
    async fn a_2xx_whose_connection_is_reset_mid_body_fails() {
        let url = answer_once(CUT_SHORT, |stream| {
            // Linger 0: close sends RST instead of FIN.
            socket2::SockRef::from(&stream)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
            drop(stream);
        });
        let err = deliver_to(&url, Duration::from_secs(5)).await.unwrap_err();
        assert!(err.message.contains("reading its body failed"), "{err}");
    }

    #[tokio::test]
    async fn a_2xx_whose_body_stalls_fails_at_the_timeout() {
        let url = answer_once(CUT_SHORT, |stream| {
            std::thread::sleep(Duration::from_secs(5));
            drop(stream);
        });
        let err = deliver_to(&url, Duration::from_millis(300)).await.unwrap_err();
        assert!(err.message.contains("reading its body failed"), "{err}");
        assert!(err.message.contains("timed out"), "{err}");
    }

    #[tokio::test]
    async fn a_2xx_with_a_body_past_the_drain_limit_succeeds() {
        let url = answer_once("HTTP/1.1 200 OK\r\nContent-Length: 200000\r\n\r\n", |mut stream| {
            let _ = stream.write_all(&vec![b'x'; 200_000]);
        });
        let result = deliver_to(&url, Duration::from_secs(5)).await;
        assert!(result.is_ok(), "{result:?}");
    }

    #[tokio::test]
    async fn a_redirect_is_not_followed_and_fails() {
        let (base, _seen) = serve(&[302]);
        let err = sink(&base, HttpBody::Json, Per::Batch)
            .deliver(&[message(b"a", 1)])
            .await
            .unwrap_err();
        assert!(err.message.contains("returned 302"), "{err}");
    }

    #[tokio::test]
    async fn a_refused_connection_fails() {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = format!("http://127.0.0.1:{port}/hook");
        let err = sink(&url, HttpBody::Json, Per::Batch)
            .deliver(&[message(b"a", 1)])
            .await
            .unwrap_err();
        assert!(
            err.message
                .contains(&format!("POST http://127.0.0.1:{port}/*** failed")),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_server_that_never_answers_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/slow", listener.local_addr().unwrap());
        // Accept and hold the connection without answering, for longer than the timeout.
        std::thread::spawn(move || {
            let held = listener.accept();
            std::thread::sleep(Duration::from_secs(3));
            drop(held);
        });
        let sink = HttpSink::new(
            &url,
            HttpBody::Json,
            Per::Batch,
            Vec::new(),
            Duration::from_millis(200),
            None,
        )
        .unwrap();
        let err = sink.deliver(&[message(b"a", 1)]).await.unwrap_err();
        assert!(err.message.contains("timed out"), "{err}");
    }

    #[test]
    fn raw_per_batch_bad_urls_and_bad_headers_are_rejected() {
        let new = |url: &str, body, per| HttpSink::new(url, body, per, Vec::new(), Duration::from_secs(1), None);
        let err = new("http://h/x", HttpBody::Raw, Per::Batch).unwrap_err();
        assert!(err.to_string().contains("per = \"message\""), "{err}");
        assert!(new("ftp://h/x", HttpBody::Json, Per::Batch).is_err());
        assert!(new("/only/a/path", HttpBody::Json, Per::Batch).is_err());
        let err = new("https://user:pa55@h/x", HttpBody::Json, Per::Batch).unwrap_err();
        assert!(!err.to_string().contains("pa55"), "{err}");
        assert!(new("https://h:8443/x", HttpBody::Json, Per::Batch).is_ok());
        let bad_value = vec![("X-Token".to_owned(), "a\nb".to_owned())];
        let err = HttpSink::new(
            "http://h/",
            HttpBody::Json,
            Per::Batch,
            bad_value,
            Duration::from_secs(1),
            None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("header X-Token"), "{err}");
    }

    fn test_data(name: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(name)
    }

    #[test]
    fn a_ca_file_needs_an_https_url_and_a_readable_pem_certificate() {
        let new = |url: &str, ca: &std::path::Path| {
            HttpSink::new(
                url,
                HttpBody::Json,
                Per::Batch,
                Vec::new(),
                Duration::from_secs(1),
                Some(ca),
            )
        };
        let ca = test_data("ca.pem");
        for url in ["http://h/x", "HTTP://h/x"] {
            let err = new(url, &ca).unwrap_err();
            assert!(
                matches!(&err, Error::Options { source_name, .. } if source_name == "sink.ca_file"),
                "{err}"
            );
            assert!(err.to_string().contains("the url is http://"), "{err}");
        }
        let sink = new("HTTPS://h/x", &ca).unwrap();
        assert!(format!("{sink:?}").contains("ca.pem"), "{sink:?}");
        let err = new("https://h/x", &test_data("localhost.key")).unwrap_err();
        assert!(err.to_string().contains("localhost.key holds no certificate"), "{err}");
        let missing = std::path::Path::new("/no/such/ca.pem");
        let err = new("https://h/x", missing).unwrap_err();
        assert!(
            matches!(&err, Error::SettingFile { setting, path, .. } if setting == "sink.ca_file" && path == missing),
            "{err}"
        );
    }

    /// Regression: a certificate damaged inside valid PEM (a base64 line lost in a copy) was
    /// taken, then dropped by the TLS library, so the sink trusted nothing and every message
    /// went to the backout queue.
    #[test]
    fn regression_a_ca_file_with_a_damaged_certificate_is_refused() {
        let pem = std::fs::read_to_string(test_data("ca.pem")).expect("ca.pem");
        let damaged: String = pem
            .lines()
            .enumerate()
            .filter(|(i, _)| *i != 3)
            .map(|(_, l)| format!("{l}\n"))
            .collect();
        let err = certificates_in(damaged.as_bytes()).unwrap_err();
        assert!(
            err.starts_with("holds a certificate that cannot be used (number 1 of 1)"),
            "{err}"
        );
        assert_eq!(certificates_in(pem.as_bytes()).map(|c| c.len()), Ok(1));
    }

    /// Regression: a certificate refused for its name (or dates) was said to want a ca_file.
    #[test]
    fn regression_only_an_unknown_issuer_is_said_to_want_a_ca_file() {
        let endpoint = sink("https://h/x", HttpBody::Json, Per::Batch).endpoint;
        let name = "io: invalid peer certificate: certificate not valid for name \"localhost\"";
        assert_eq!(endpoint.trusted(name), "");
        let issuer = endpoint.trusted("io: invalid peer certificate: UnknownIssuer");
        assert!(issuer.contains("set ca_file to trust a private CA"), "{issuer}");
    }

    #[test]
    fn debug_shows_header_names_but_not_values_or_the_query() {
        let s = sink("https://h/x?key=k3y", HttpBody::Json, Per::Batch);
        let debug = format!("{s:?}");
        assert!(debug.contains("authorization"), "{debug}");
        assert!(debug.contains("https://h/***"), "{debug}");
        for secret in ["s3cret", "k3y", "/x"] {
            assert!(!debug.contains(secret), "{debug}");
        }
    }

    fn header(value: Option<&str>, env: Option<&str>, file: Option<&std::path::Path>) -> HeaderConfig {
        HeaderConfig {
            name: "Authorization".to_owned(),
            value: value.map(str::to_owned),
            value_env: env.map(str::to_owned),
            value_file: file.map(std::path::Path::to_path_buf),
        }
    }

    #[test]
    fn headers_resolve_from_value_env_or_file() {
        let file = std::env::temp_dir().join(format!("mqpilot-http-header-{}", std::process::id()));
        std::fs::write(&file, "Bearer from-file\n").unwrap();
        let path = std::env::var("PATH").unwrap();
        let configs = [
            header(Some("Bearer literal"), None, None),
            header(None, Some("PATH"), None),
            header(None, None, Some(&file)),
        ];
        let resolved = resolve_headers(&configs).unwrap();
        let _ = std::fs::remove_file(&file);
        let values: Vec<&str> = resolved.iter().map(|(_, v)| v.as_str()).collect();
        assert_eq!(values, ["Bearer literal", path.as_str(), "Bearer from-file"]);
        assert!(resolved.iter().all(|(n, _)| n == "Authorization"));
    }

    #[test]
    fn a_header_needs_exactly_one_readable_source() {
        let unset = "MQPILOT_TEST_UNSET_VARIABLE_7F3A";
        for config in [
            header(None, None, None),
            header(Some("a"), Some("PATH"), None),
            header(None, Some(unset), None),
        ] {
            let err = resolve_headers(&[config]).unwrap_err();
            assert!(err.to_string().starts_with("header Authorization: "), "{err}");
        }
        let missing = std::path::Path::new("/nonexistent/mqpilot/token");
        let err = resolve_headers(&[header(None, None, Some(missing))]).unwrap_err();
        assert!(
            matches!(err, Error::SettingFile { ref path, .. } if path == missing),
            "{err}"
        );
        assert!(
            err.to_string()
                .starts_with("header Authorization: value_file: cannot read"),
            "{err}"
        );
    }
}
