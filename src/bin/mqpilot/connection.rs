//! The flags `poll` and `mcp` share: which queue manager (embedded fake, `fake-qm` server or
//! IBM's library), and the connection settings that override the `[connection]` table, which
//! overrides the environment. The password never has a flag.

use std::path::PathBuf;

use clap::Args;
use mqpilot::fake::{FakeConfig, FakeQm};
use mqpilot::mq::MqLibrary;
use mqpilot::mq::options::ConnectOptions;
use mqpilot::worker::config::ConnectionOverrides;
use mqpilot::worker::demo::{DEMO_CHANNEL, demo_queue_manager};

use crate::{Failure, usage};

#[derive(Args, Debug)]
pub(crate) struct ConnectionArgs {
    /// Queue manager name.
    #[arg(long = "qmgr", value_name = "NAME")]
    queue_manager: Option<String>,
    /// Client channel, MQSERVER syntax: CHANNEL/TCP/host(port). Default: $MQSERVER.
    #[arg(long = "conn", value_name = "CHANNEL/TCP/HOST(PORT)")]
    server: Option<String>,
    /// CCDT URL. Default: $MQCCDTURL.
    #[arg(long, value_name = "URL")]
    ccdt_url: Option<mqpilot::mq::options::CcdtUrl>,
    /// User id; the password comes from $MQ_PASSWORD or --password-file, never a flag.
    #[arg(long)]
    user: Option<String>,
    /// File holding the MQ password.
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// Application name shown in DISPLAY CONN.
    #[arg(long)]
    application_name: Option<String>,
    /// TLS cipher spec (needs --conn).
    #[arg(long)]
    cipher_spec: Option<String>,
    /// TLS key repository, its stem without .kdb (a .kdb given is stripped).
    #[arg(long, value_name = "PATH")]
    key_repository: Option<PathBuf>,
    /// Label of this client's certificate in the key repository (needs --cipher-spec).
    #[arg(long, value_name = "LABEL")]
    cert_label: Option<String>,
}

impl ConnectionArgs {
    /// The flags as overrides; `server` and `application_name` fill in when the flag is absent
    /// (`server` only when --ccdt-url is absent too: the CCDT names the channel).
    pub(crate) fn overrides(&self, server: Option<String>, application_name: Option<&str>) -> ConnectionOverrides {
        let server = server.filter(|_| self.ccdt_url.is_none());
        ConnectionOverrides {
            queue_manager: self.queue_manager.clone(),
            server: self.server.clone().or(server),
            ccdt_url: self.ccdt_url.clone(),
            user: self.user.clone(),
            password_file: self.password_file.clone(),
            application_name: self
                .application_name
                .clone()
                .or_else(|| application_name.map(str::to_owned)),
            cipher_spec: self.cipher_spec.clone(),
            key_repository: self.key_repository.clone(),
            cert_label: self.cert_label.clone(),
        }
    }
}

/// Which queue manager `poll` and `mcp` talk to: an embedded fake, a `mqpilot fake-qm`
/// server, or (by default) a real one through IBM's library.
#[derive(Args, Debug)]
pub(crate) struct BackendArgs {
    /// Run on an embedded fake queue manager seeded with DEMO.IN (1,000 messages).
    #[arg(long)]
    pub(crate) fake: bool,
    /// Define the embedded fake queue manager from this file instead of the demo.
    #[arg(long, value_name = "FILE", requires = "fake")]
    fake_config: Option<PathBuf>,
    /// Use the `mqpilot fake-qm` server at this address (host:port) instead of a real queue
    /// manager. --conn names the channel; without it connections use no channel instance.
    #[arg(long, value_name = "ADDR", conflicts_with = "fake", value_parser = host_port)]
    fake_qm: Option<String>,
}

/// A `host:port` address (a name or an IP address, IPv6 in brackets), as a flag value; the
/// host is resolved when it is used. A value that is not of this form is the flag's error.
pub(crate) fn host_port(text: &str) -> Result<String, String> {
    let not = || format!("{text:?} is not host:port");
    let (host, port) = text.rsplit_once(':').ok_or_else(not)?;
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(ipv6) => ipv6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => !host.is_empty() && !host.contains(['[', ']', '/', ' ']),
    };
    if !host_ok {
        return Err(not());
    }
    port.parse::<u16>()
        .map_err(|_| format!("{text:?} is not host:port: {port:?} is not a port"))?;
    Ok(text.to_owned())
}

/// The queue manager chosen, for what a subcommand shows or lists beside the MQ calls.
pub(crate) enum Backend {
    Fake(FakeQm),
    Server(String),
    Ibm,
}

impl BackendArgs {
    /// Whether this is the embedded demo queue manager (DEMO.IN and its channel).
    pub(crate) fn is_demo(&self) -> bool {
        self.fake && self.fake_config.is_none()
    }

    /// The demo connects over its channel; a fake from --fake-config without --conn gets a
    /// bindings connection, which needs no channel definition.
    pub(crate) fn default_server(&self) -> Option<String> {
        self.is_demo().then(|| format!("{DEMO_CHANNEL}/TCP/localhost(1414)"))
    }

    /// `options` with the fake as what connect errors name: a `fake-qm` server's address or
    /// the embedded fake is what is reached, not --conn's host(port).
    pub(crate) fn route(&self, options: ConnectOptions) -> ConnectOptions {
        match &self.fake_qm {
            Some(addr) => options.dialling(format!("the mqpilot fake-qm server at {addr} (--fake-qm)")),
            None if self.fake => options.dialling("the embedded fake queue manager (--fake)"),
            None => options,
        }
    }

    /// The MQ library to connect through, and the queue manager it reaches.
    pub(crate) fn open(&self) -> Result<(MqLibrary, Backend), Failure> {
        let fake_config = self.fake_config()?;
        self.open_with(fake_config)
    }

    /// The embedded fake's definition from --fake-config, read and checked, so that a mistake
    /// in it is reported before what follows from it (no queue to poll).
    pub(crate) fn fake_config(&self) -> Result<Option<FakeConfig>, Failure> {
        (self.fake_config.as_deref())
            .map(|path| FakeConfig::from_file(path).map_err(usage))
            .transpose()
    }

    /// As [`open`](Self::open), with the definition [`fake_config`](Self::fake_config) read.
    pub(crate) fn open_with(&self, fake_config: Option<FakeConfig>) -> Result<(MqLibrary, Backend), Failure> {
        if self.fake {
            let qm = fake_config.map_or_else(demo_queue_manager, FakeQm::new);
            Ok((MqLibrary::fake(qm.library("127.0.0.1")), Backend::Fake(qm)))
        } else if let Some(addr) = &self.fake_qm {
            Ok((MqLibrary::remote(addr.clone()), Backend::Server(addr.clone())))
        } else {
            let lib = MqLibrary::ibm_from_env(|k| std::env::var(k).ok()).map_err(|e| Failure(3, e.into()))?;
            Ok((lib, Backend::Ibm))
        }
    }
}
