//! Where the worker connects: the file's `[connection]` settings, the flags over them, and
//! the connect options both become.
//!
//! Layering happens only when connecting, in [`ConnectionSettings::connect_options`]: each flag
//! that is set wins over the file, which wins over the environment. Each file setting is also
//! checked up front against the same builder rules, so a bad value is reported with its line
//! rather than at connect time. The file never holds a password, only its path; the password
//! file is read when connecting, not here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{DEFAULT_APPLICATION_NAME, Invalid, invalid};
use crate::Error;
use crate::mq::options::{
    CcdtUrl, ClientChannel, ConnectOptions, ConnectOptionsBuilder, Reconnect, Tls, Transport, parse_mqserver,
};

/// Connection settings from the file (`[connection]`), checked against MQ's limits.
/// Each is optional: flags override it, and the environment fills what neither sets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectionSettings {
    /// Queue manager name. Default: the client's default queue manager.
    pub queue_manager: Option<String>,
    /// Client channel (`server`, MQSERVER syntax). Not together with `ccdt_url`.
    pub server: Option<ClientChannel>,
    /// Client channel definition table URL (its `Debug` hides credentials).
    pub ccdt_url: Option<CcdtUrl>,
    /// Application name. Default [`DEFAULT_APPLICATION_NAME`].
    pub application_name: Option<String>,
    /// User to authenticate as.
    pub user: Option<String>,
    /// File holding the password (read when connecting).
    pub password_file: Option<PathBuf>,
    /// Client reconnect behaviour. Default [`Reconnect::Default`].
    pub reconnect: Reconnect,
    /// TLS for the client channel.
    pub tls: Option<Tls>,
    /// The client channel's SHARECNV (needs a channel). Default: the MQ client's (10).
    pub sharecnv: Option<u32>,
    /// Where the file sets each key, for errors found only when connecting (a password
    /// file that cannot be read, SHARECNV without a channel): dotted key to
    /// `w.toml:7:1: connection.sharecnv`. Empty for settings from no file.
    pub keys_at: BTreeMap<String, String>,
}

/// Connection settings given as command-line flags; each one set wins over the file.
#[derive(Debug, Clone, Default)]
pub struct ConnectionOverrides {
    /// `--queue-manager`.
    pub queue_manager: Option<String>,
    /// `--conn`, MQSERVER syntax.
    pub server: Option<String>,
    /// `--ccdt-url` (its `Debug` hides credentials).
    pub ccdt_url: Option<CcdtUrl>,
    /// `--user`.
    pub user: Option<String>,
    /// `--password-file`.
    pub password_file: Option<PathBuf>,
    /// `--application-name`.
    pub application_name: Option<String>,
    /// `--cipher-spec`.
    pub cipher_spec: Option<String>,
    /// `--key-repository`.
    pub key_repository: Option<PathBuf>,
    /// `--cert-label`.
    pub cert_label: Option<String>,
}

impl ConnectionSettings {
    /// The options to connect with: each flag in `overrides` that is set wins over the file,
    /// which wins over the environment read through `env` (`MQSERVER`, `MQCCDTURL`,
    /// `MQ_PASSWORD`, `MQ_PASSWORD_FILE`; see [`ConnectOptions::from_env`]). The application
    /// name defaults to [`DEFAULT_APPLICATION_NAME`]. Reads the password file.
    ///
    /// # Errors
    /// [`Error::Options`] naming the flag or variable that is wrong, or the setting that
    /// breaks an MQ limit; [`Error::SettingFile`] naming the flag, variable or file key when
    /// the password file cannot be read.
    pub fn connect_options(
        &self,
        env: impl Fn(&str) -> Option<String>,
        overrides: &ConnectionOverrides,
    ) -> Result<ConnectOptions, Error> {
        // A variable that the file or a flag overrides is not read at all: a stale MQSERVER
        // in the environment must not fail a run that names its channel itself.
        let has_channel = self.server.is_some()
            || self.ccdt_url.is_some()
            || overrides.server.is_some()
            || overrides.ccdt_url.is_some();
        let has_password = self.password_file.is_some() || overrides.password_file.is_some();
        let env = |name: &str| match name {
            "MQSERVER" | "MQCCDTURL" if has_channel => None,
            "MQ_PASSWORD" | "MQ_PASSWORD_FILE" if has_password => None,
            _ => env(name),
        };
        let builder = ConnectOptions::from_env(env)?.with_reconnect(self.reconnect);
        let password_file_key = self.named("connection.password_file");
        let mut builder = layer(
            builder,
            self.queue_manager.as_deref(),
            self.server.clone(),
            self.ccdt_url.as_deref(),
            self.user.as_deref(),
            self.password_file
                .as_deref()
                .map(|path| (path, password_file_key.as_str())),
        );
        let application_name = (overrides.application_name.as_deref())
            .or(self.application_name.as_deref())
            .unwrap_or(DEFAULT_APPLICATION_NAME);
        builder = overrides.apply(builder)?.with_application_name(application_name);
        if let Some(tls) = self.tls_with(overrides)? {
            builder = builder.with_tls(tls);
        }
        if let Some(n) = self.sharecnv {
            builder = builder.with_sharecnv(n);
        }
        builder.build().map_err(|e| self.naming_the_setting(e, overrides))
    }

    /// How errors name dotted `key` of the file: with file, line and column when the file
    /// was read, else the key alone.
    fn named(&self, key: &str) -> String {
        self.keys_at.get(key).cloned().unwrap_or_else(|| key.to_owned())
    }

    /// A builder error named after the flag or the file's key that set the value, where the
    /// builder knows only the setting (`queue manager`, `TLS`).
    fn naming_the_setting(&self, e: Error, overrides: &ConnectionOverrides) -> Error {
        let Error::Options { source_name, message } = e else {
            return e;
        };
        let source_name = match source_name.as_str() {
            "queue manager" if overrides.queue_manager.is_some() => "--qmgr".to_owned(),
            "application name" if overrides.application_name.is_some() => "--application-name".to_owned(),
            "SHARECNV" if self.sharecnv.is_some() => self.named("connection.sharecnv"),
            "user" if overrides.user.is_some() => "--user".to_owned(),
            "user" if self.user.is_some() => self.named("connection.user"),
            "CCDT URL" if overrides.ccdt_url.is_some() => "--ccdt-url".to_owned(),
            "CCDT URL" if self.ccdt_url.is_some() => self.named("connection.ccdt_url"),
            "TLS" if message.starts_with("key repository") && overrides.key_repository.is_some() => {
                "--key-repository".to_owned()
            }
            "TLS" if message.starts_with("certificate label") && overrides.cert_label.is_some() => {
                "--cert-label".to_owned()
            }
            "TLS" if overrides.cipher_spec.is_some() => "--cipher-spec".to_owned(),
            "TLS" if self.tls.is_some() => self.named("connection.tls.cipher_spec"),
            _ => source_name,
        };
        Error::Options { source_name, message }
    }

    /// The file's TLS settings with the flags' on top, field by field.
    fn tls_with(&self, overrides: &ConnectionOverrides) -> Result<Option<Tls>, Error> {
        let file = self.tls.as_ref();
        let cipher_spec = (overrides.cipher_spec.clone()).or_else(|| file.map(|tls| tls.cipher_spec.clone()));
        let key_repository =
            (overrides.key_repository.clone()).or_else(|| file.and_then(|tls| tls.key_repository.clone()));
        let cert_label = (overrides.cert_label.clone()).or_else(|| file.and_then(|tls| tls.cert_label.clone()));
        match (cipher_spec, key_repository, cert_label) {
            (Some(cipher_spec), key_repository, cert_label) => Ok(Some(Tls {
                cipher_spec,
                key_repository,
                cert_label,
            })),
            (None, Some(_), _) => Err(Error::Options {
                source_name: "--key-repository".to_owned(),
                message: "needs a cipher spec: set --cipher-spec or connection.tls.cipher_spec".to_owned(),
            }),
            (None, None, Some(_)) => Err(Error::Options {
                source_name: "--cert-label".to_owned(),
                message: "needs a cipher spec: set --cipher-spec or connection.tls.cipher_spec".to_owned(),
            }),
            (None, None, None) => Ok(None),
        }
    }

    /// Each setting against the rules the connection builder applies, so a bad value in the
    /// file is reported with its line rather than when connecting.
    pub(super) fn check(&self) -> Result<(), Invalid> {
        let builder = ConnectOptions::builder;
        if self.server.is_some() && self.ccdt_url.is_some() {
            return Err(invalid(
                "connection.ccdt_url",
                "server is set as well: set only one of them",
            ));
        }
        if let Some(name) = &self.queue_manager {
            check_setting("connection.queue_manager", builder().with_queue_manager(name))?;
        }
        if let Some(channel) = &self.server {
            check_setting("connection.server", builder().with_channel(channel.clone()))?;
        }
        if let Some(url) = &self.ccdt_url {
            check_setting("connection.ccdt_url", builder().with_ccdt_url(&**url))?;
        }
        if let Some(name) = &self.application_name {
            check_setting("connection.application_name", builder().with_application_name(name))?;
        }
        if self.user.as_deref().is_some_and(|user| user.trim().is_empty()) {
            return Err(invalid("connection.user", "is empty"));
        }
        if self
            .password_file
            .as_ref()
            .is_some_and(|path| path.as_os_str().is_empty())
        {
            return Err(invalid("connection.password_file", "is empty"));
        }
        // TLS and SHARECNV need a channel, which a flag or MQSERVER may still supply: check
        // the values themselves against a stand-in.
        let channel = self.server.clone().unwrap_or_else(|| ClientChannel {
            name: "CHECK".to_owned(),
            transport: Transport::Tcp,
            conn_name: "localhost(1414)".to_owned(),
        });
        if let Some(n) = self.sharecnv {
            check_setting(
                "connection.sharecnv",
                builder().with_channel(channel.clone()).with_sharecnv(n),
            )?;
        }
        if let Some(tls) = &self.tls {
            let cipher_only = Tls::cipher(tls.cipher_spec.clone());
            let with_channel = || builder().with_channel(channel.clone());
            check_setting(
                "connection.tls.cipher_spec",
                with_channel().with_tls(cipher_only.clone()),
            )?;
            let repository_only = Tls {
                key_repository: tls.key_repository.clone(),
                ..cipher_only
            };
            check_setting(
                "connection.tls.key_repository",
                with_channel().with_tls(repository_only),
            )?;
            check_setting("connection.tls.cert_label", with_channel().with_tls(tls.clone()))?;
        }
        Ok(())
    }
}

impl ConnectionOverrides {
    /// Applies every flag that is set to `builder`.
    fn apply(&self, builder: ConnectOptionsBuilder) -> Result<ConnectOptionsBuilder, Error> {
        if self.server.is_some() && self.ccdt_url.is_some() {
            return Err(Error::Options {
                source_name: "--ccdt-url".to_owned(),
                message: "--conn is set as well: set only one of them".to_owned(),
            });
        }
        let server = self
            .server
            .as_deref()
            .map(|server| parse_mqserver(server, "--conn"))
            .transpose()?;
        Ok(layer(
            builder,
            self.queue_manager.as_deref(),
            server,
            self.ccdt_url.as_deref(),
            self.user.as_deref(),
            self.password_file.as_deref().map(|path| (path, "--password-file")),
        ))
    }
}

/// Sets on `builder` each of one layer's settings that is there, so it wins over the layers
/// applied before.
fn layer(
    mut builder: ConnectOptionsBuilder,
    queue_manager: Option<&str>,
    channel: Option<ClientChannel>,
    ccdt_url: Option<&str>,
    user: Option<&str>,
    password_file: Option<(&Path, &str)>,
) -> ConnectOptionsBuilder {
    if let Some(name) = queue_manager {
        builder = builder.with_queue_manager(name);
    }
    if let Some(channel) = channel {
        builder = builder.with_channel(channel);
    }
    if let Some(url) = ccdt_url {
        builder = builder.with_ccdt_url(url);
    }
    if let Some(user) = user {
        builder = builder.with_user(user);
    }
    if let Some((path, setting)) = password_file {
        builder = builder.with_password_file_from(path, setting);
    }
    builder
}

/// Runs the connection builder's checks on one setting, keeping only its message.
fn check_setting(field: &str, builder: ConnectOptionsBuilder) -> Result<(), Invalid> {
    match builder.build() {
        Ok(_) => Ok(()),
        Err(Error::Options { message, .. }) => Err(invalid(field, message)),
        Err(other) => Err(invalid(field, other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::worker::config::WorkerConfig;
    use crate::worker::config::tests::assert_error_starts;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        move |name| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    /// A password file under the temp dir, removed when dropped.
    struct PasswordFile(PathBuf);

    impl PasswordFile {
        fn new(name: &str, password: &str) -> Self {
            let path = std::env::temp_dir().join(format!("mqpilot-worker-config-{}-{name}", std::process::id()));
            std::fs::write(&path, format!("{password}\n")).expect("write temp file");
            Self(path)
        }
    }

    impl Drop for PasswordFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn a_bad_server_names_the_connection_field() {
        let text = "[connection]\nserver = \"APP/UDP/host\"\n[[queue]]\nname = \"A\"\n";
        assert_error_starts(
            text,
            "w.toml:2:1: connection.server: transport \"UDP\" is not supported",
        );
        let text = "[connection]\nserver = \"APP/TCP/host\"\nccdt_url = \"file:///c.json\"\n[[queue]]\nname = \"A\"\n";
        assert_error_starts(text, "w.toml:3:1: connection.ccdt_url: server is set as well");
    }

    #[test]
    fn debug_output_never_shows_ccdt_credentials() {
        let text = "[connection]\nccdt_url = \"ftp://app:s3cret@host/ccdt.json\"\n[[queue]]\nname = \"A\"\n";
        let config = WorkerConfig::from_toml(text, Path::new("w.toml")).unwrap();
        let flags = ConnectionOverrides {
            ccdt_url: Some("ftp://app:s3cret@host/ccdt.json".into()),
            ..ConnectionOverrides::default()
        };
        for shown in [format!("{config:?}"), format!("{flags:?}")] {
            assert!(!shown.contains("s3cret"), "{shown}");
            assert!(shown.contains("ftp://***@host/ccdt.json"), "{shown}");
        }
    }

    #[test]
    fn variables_a_flag_or_the_file_overrides_are_not_read() {
        let password = PasswordFile::new("override", "pw");
        let config = WorkerConfig::from_toml("[[queue]]\nname = \"A\"\n", Path::new("w.toml")).unwrap();
        let stale = env(&[
            ("MQSERVER", "APP-SVRCONN/LU62/box99"),
            ("MQ_PASSWORD", "x"),
            ("MQ_PASSWORD_FILE", "/nonexistent"),
        ]);
        let flags = ConnectionOverrides {
            server: Some("APP.SVRCONN/TCP/mq1(1414)".to_owned()),
            user: Some("app".to_owned()),
            password_file: Some(password.0.clone()),
            ..ConnectionOverrides::default()
        };
        let options = config.connection.connect_options(&stale, &flags).unwrap();
        assert_eq!(options.channel().map(|c| c.name.as_str()), Some("APP.SVRCONN"));
        // Without the flags, the same environment is an error naming the variable.
        let e = config
            .connection
            .connect_options(&stale, &ConnectionOverrides::default())
            .unwrap_err();
        assert!(
            e.to_string().starts_with("MQSERVER:") || e.to_string().starts_with("MQ_PASSWORD_FILE:"),
            "{e}"
        );
    }

    #[test]
    fn flags_win_over_the_file_which_wins_over_the_environment() {
        let file_password = PasswordFile::new("file", "file-pw");
        let flag_password = PasswordFile::new("flag", "flag-pw");
        let text = format!(
            "[connection]\nqueue_manager = \"FILEQM\"\nserver = \"FILE.SVRCONN/TCP/filehost\"\nuser = \"fileuser\"\n\
             password_file = {:?}\n[[queue]]\nname = \"A\"\n",
            file_password.0
        );
        let config = WorkerConfig::from_toml(&text, Path::new("w.toml")).unwrap();
        let vars = env(&[("MQSERVER", "ENV.SVRCONN/TCP/envhost"), ("MQ_PASSWORD", "env-pw")]);
        let password = |options: &ConnectOptions| options.password().map(|p| p.expose().to_owned());

        let from_file = config
            .connection
            .connect_options(&vars, &ConnectionOverrides::default())
            .unwrap();
        assert_eq!(from_file.channel().map(|c| c.name.as_str()), Some("FILE.SVRCONN"));
        assert_eq!(
            (from_file.queue_manager(), from_file.user()),
            (Some("FILEQM"), Some("fileuser"))
        );
        assert_eq!(password(&from_file).as_deref(), Some("file-pw"));
        assert_eq!(from_file.application_name(), Some(DEFAULT_APPLICATION_NAME));

        let flags = ConnectionOverrides {
            queue_manager: Some("FLAGQM".to_owned()),
            server: Some("FLAG.SVRCONN/TCP/flaghost".to_owned()),
            user: Some("flaguser".to_owned()),
            password_file: Some(flag_password.0.clone()),
            application_name: Some("flag-app".to_owned()),
            ..ConnectionOverrides::default()
        };
        let from_flags = config.connection.connect_options(&vars, &flags).unwrap();
        assert_eq!(from_flags.channel().map(|c| c.name.as_str()), Some("FLAG.SVRCONN"));
        assert_eq!(
            (from_flags.queue_manager(), from_flags.user()),
            (Some("FLAGQM"), Some("flaguser"))
        );
        assert_eq!(password(&from_flags).as_deref(), Some("flag-pw"));
        assert_eq!(from_flags.application_name(), Some("flag-app"));

        let ccdt = ConnectionOverrides {
            ccdt_url: Some("file:///ccdt.json".into()),
            ..ConnectionOverrides::default()
        };
        let from_ccdt = config.connection.connect_options(&vars, &ccdt).unwrap();
        assert!(from_ccdt.channel().is_none());
        assert_eq!(from_ccdt.ccdt_url(), Some("file:///ccdt.json"));

        let user_only = ConnectionOverrides {
            user: Some("flaguser".to_owned()),
            ..ConnectionOverrides::default()
        };
        let from_env = ConnectionSettings::default()
            .connect_options(&vars, &user_only)
            .unwrap();
        assert_eq!(from_env.channel().map(|c| c.name.as_str()), Some("ENV.SVRCONN"));
        assert_eq!(password(&from_env).as_deref(), Some("env-pw"));
    }

    #[test]
    fn an_unreadable_password_file_is_named_by_the_setting_that_named_it() {
        let text = "[connection]\nuser = \"app\"\npassword_file = \"/no/such/pw\"\n[[queue]]\nname = \"A\"\n";
        let config = WorkerConfig::from_toml(text, Path::new("w.toml")).unwrap();
        let none = ConnectionOverrides::default();
        let error = config.connection.connect_options(env(&[]), &none).unwrap_err();
        let shown = error.to_string();
        assert_eq!(shown, "w.toml:3:1: connection.password_file: cannot read /no/such/pw");
        let from_env = env(&[("MQ_PASSWORD_FILE", "/no/such/pw")]);
        let user = ConnectionOverrides {
            user: Some("app".to_owned()),
            ..ConnectionOverrides::default()
        };
        let error = ConnectionSettings::default()
            .connect_options(from_env, &user)
            .unwrap_err();
        assert_eq!(error.to_string(), "MQ_PASSWORD_FILE: cannot read /no/such/pw");
    }

    #[test]
    fn a_flag_that_breaks_a_limit_is_named() {
        let flags = [
            ConnectionOverrides {
                queue_manager: Some("Q".repeat(49)),
                ..ConnectionOverrides::default()
            },
            ConnectionOverrides {
                application_name: Some("a".repeat(29)),
                ..ConnectionOverrides::default()
            },
            ConnectionOverrides {
                cipher_spec: Some("ANY_TLS13".to_owned()),
                ..ConnectionOverrides::default()
            },
        ];
        let names: Vec<String> = flags
            .iter()
            .map(|f| {
                let e = ConnectionSettings::default().connect_options(env(&[]), f).unwrap_err();
                e.to_string().split(':').next().unwrap_or_default().to_owned()
            })
            .collect();
        assert_eq!(names, ["--qmgr", "--application-name", "--cipher-spec"]);
    }

    #[test]
    fn a_certificate_label_comes_from_the_file_or_the_flag_and_a_bad_one_names_its_key() {
        let text = "[connection]\nserver = \"APP.SVRCONN/TCP/host\"\n[connection.tls]\ncipher_spec = \"ANY_TLS13\"\n\
                    key_repository = \"/ssl/key.kdb\"\ncert_label = \"file-label\"\n[[queue]]\nname = \"A\"\n";
        let config = WorkerConfig::from_toml(text, Path::new("w.toml")).unwrap();
        let none = ConnectionOverrides::default();
        let options = config.connection.connect_options(env(&[]), &none).unwrap();
        let tls = options.tls().unwrap();
        assert_eq!(tls.cert_label.as_deref(), Some("file-label"));
        assert_eq!(
            tls.key_repository.as_deref(),
            Some(Path::new("/ssl/key")),
            ".kdb stripped"
        );
        let flag = ConnectionOverrides {
            cert_label: Some("flag-label".to_owned()),
            ..ConnectionOverrides::default()
        };
        let options = config.connection.connect_options(env(&[]), &flag).unwrap();
        assert_eq!(options.tls().unwrap().cert_label.as_deref(), Some("flag-label"));

        let long = "l".repeat(65);
        let text = format!(
            "[connection]\n[connection.tls]\ncipher_spec = \"ANY_TLS13\"\ncert_label = \"{long}\"\n[[queue]]\nname = \"A\"\n"
        );
        assert_error_starts(&text, "w.toml:4:1: connection.tls.cert_label: certificate label");
    }

    #[test]
    fn a_user_without_a_password_is_named_by_the_flag_or_the_file_key() {
        let text = "[connection]\nserver = \"APP.SVRCONN/TCP/host\"\nuser = \"app\"\n[[queue]]\nname = \"A\"\n";
        let config = WorkerConfig::from_toml(text, Path::new("w.toml")).unwrap();
        let none = ConnectionOverrides::default();
        let e = config
            .connection
            .connect_options(env(&[]), &none)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("w.toml:3:1: connection.user: user \"app\" is set but no password"),
            "{e}"
        );
        let flag = ConnectionOverrides {
            user: Some("app".to_owned()),
            ..ConnectionOverrides::default()
        };
        let e = ConnectionSettings::default()
            .connect_options(env(&[]), &flag)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("--user: user \"app\" is set but no password"), "{e}");
        assert!(e.contains("--password-file"), "{e}");
    }

    #[test]
    fn tls_flags_override_the_file_field_by_field() {
        let text = "[connection]\nserver = \"APP.SVRCONN/TCP/host\"\n[connection.tls]\ncipher_spec = \"ANY_TLS13\"\n\
                    [[queue]]\nname = \"A\"\n";
        let config = WorkerConfig::from_toml(text, Path::new("w.toml")).unwrap();
        let flags = ConnectionOverrides {
            key_repository: Some(PathBuf::from("/flag/key")),
            ..ConnectionOverrides::default()
        };
        let options = config.connection.connect_options(env(&[]), &flags).unwrap();
        let tls = options.tls().unwrap();
        assert_eq!(tls.cipher_spec, "ANY_TLS13");
        assert_eq!(tls.key_repository.as_deref(), Some(Path::new("/flag/key")));
        let error = ConnectionSettings::default()
            .connect_options(env(&[]), &flags)
            .unwrap_err();
        assert!(
            error.to_string().starts_with("--key-repository: needs a cipher spec"),
            "{error}"
        );
    }
}
