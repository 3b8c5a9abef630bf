//! The connection flags `poll` and `mcp` share: they override the `[connection]` settings,
//! which override the environment. The password never has a flag.

use std::path::PathBuf;

use clap::Args;
use mqpilot::worker::config::ConnectionOverrides;

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
    ccdt_url: Option<String>,
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
    /// TLS key repository.
    #[arg(long, value_name = "PATH")]
    key_repository: Option<PathBuf>,
}

impl ConnectionArgs {
    /// The flags as overrides; `server` and `application_name` fill in when the flag is absent.
    pub(crate) fn overrides(&self, server: Option<String>, application_name: Option<&str>) -> ConnectionOverrides {
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
        }
    }
}
