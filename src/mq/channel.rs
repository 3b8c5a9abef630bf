//! The client channel: `MQSERVER`'s `CHANNEL/TCP/HOST(PORT)` text, parsed and printed.
//!
//! A [`ClientChannel`] from [`parse_mqserver`] has a checked channel name, TCP as its
//! transport and a connection name in which every entry carries its port, so its `Display`
//! is a valid `MQSERVER` value that parses back to the same channel. The fields are public,
//! so a hand-built channel is checked when the connection options are built, by parsing its
//! `Display` again. This file only knows the text: where it comes from (a variable or a
//! flag) and how it reaches MQCONNX belong to [`super::options`], as do the MQ name and
//! length checks it borrows.

use std::fmt;

use super::options::{check_length, check_name, options_error};
use crate::error::Error;

/// Port a connection name without `(port)` uses, as in the MQ client.
pub const DEFAULT_PORT: u16 = 1414;

/// The form `MQSERVER` takes, quoted in error messages.
const MQSERVER_FORM: &str = "CHANNEL/TCP/HOST(PORT)";
/// A client channel's transport. MQ also knows LU62, NETBIOS and SPX; mqpilot speaks TCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    /// TCP/IP.
    #[default]
    Tcp,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TCP")
    }
}

/// A client-connection channel, as `MQSERVER` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientChannel {
    /// The server-connection channel's name (at most 20 characters).
    pub name: String,
    /// The transport.
    pub transport: Transport,
    /// `host(port)[,host(port)...]`, every entry with its port.
    pub conn_name: String,
}

impl fmt::Display for ClientChannel {
    /// The `MQSERVER` form: `APP.SVRCONN/TCP/host(1414)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.name, self.transport, self.conn_name)
    }
}
/// Parses `CHANNEL/TCP/HOST(PORT)` as `MQSERVER` holds it. The connection name may be a
/// comma-separated list; an entry without `(port)` gets port 1414. `source_name` (a variable
/// or a flag) starts every error message.
///
/// # Errors
/// [`Error::Options`] whose message names the bad part and quotes the whole value.
pub fn parse_mqserver(s: &str, source_name: &str) -> Result<ClientChannel, Error> {
    let text = s.trim();
    if text.is_empty() {
        return Err(options_error(
            source_name,
            format!("is empty (expected {MQSERVER_FORM})"),
        ));
    }
    let fail = |message: String| options_error(source_name, format!("{message} in {text:?}"));
    let parts: Vec<&str> = text.split('/').collect();
    let [name, transport, conn_name] = parts[..] else {
        return Err(fail(match parts.len() {
            1 => format!("transport and connection name are missing (expected {MQSERVER_FORM})"),
            2 => format!("connection name is missing (expected {MQSERVER_FORM})"),
            n => format!("has {n} parts separated by '/' (expected 3: {MQSERVER_FORM})"),
        }));
    };
    check_name(name, libmqm_sys::MQ_CHANNEL_NAME_LENGTH, "channel name").map_err(&fail)?;
    if !transport.eq_ignore_ascii_case("TCP") {
        return Err(fail(format!("transport {transport:?} is not supported (expected TCP)")));
    }
    let conn_name = parse_conn_names(conn_name).map_err(&fail)?;
    Ok(ClientChannel {
        name: name.to_owned(),
        transport: Transport::Tcp,
        conn_name,
    })
}

/// `host(port)[,host(port)...]` with every port spelled out, or what is wrong with it.
fn parse_conn_names(list: &str) -> Result<String, String> {
    if list.trim().is_empty() {
        return Err("connection name is empty".to_owned());
    }
    let entries = list
        .split(',')
        .map(|entry| parse_conn_name(entry.trim()))
        .collect::<Result<Vec<_>, _>>()?;
    let normalized = entries.join(",");
    check_length(&normalized, libmqm_sys::MQ_CONN_NAME_LENGTH, "connection name")?;
    Ok(normalized)
}

/// One `host(port)` or `host` entry.
fn parse_conn_name(entry: &str) -> Result<String, String> {
    if entry.is_empty() {
        return Err("connection name list has an empty entry".to_owned());
    }
    let (host, port) = match entry.split_once('(') {
        None => (entry, DEFAULT_PORT),
        Some((host, rest)) => {
            let port = rest
                .strip_suffix(')')
                .ok_or_else(|| format!("connection name {entry:?} is missing \")\""))?;
            (host, parse_port(port)?)
        }
    };
    if host.is_empty() {
        return Err(format!("connection name {entry:?} has no host"));
    }
    if let Some(bad) = host.chars().find(|c| c.is_whitespace() || matches!(c, '(' | ')' | '/')) {
        return Err(format!("host {host:?} contains {bad:?}"));
    }
    Ok(format!("{host}({port})"))
}

fn parse_port(port: &str) -> Result<u16, String> {
    if port.is_empty() {
        return Err("port is empty".to_owned());
    }
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("port {port:?} is not a number"));
    }
    match port.parse::<u16>() {
        Ok(number) if number > 0 => Ok(number),
        _ => Err(format!("port {port:?} is out of range (1-65535)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mqserver_error(input: &str) -> String {
        let error = parse_mqserver(input, "MQSERVER").expect_err(input);
        error.to_string()
    }
    #[test]
    fn mqserver_with_port() {
        let channel = parse_mqserver("APP.SVRCONN/TCP/mq.example.com(1415)", "MQSERVER").expect("valid");
        assert_eq!(channel.name, "APP.SVRCONN");
        assert_eq!(channel.transport, Transport::Tcp);
        assert_eq!(channel.conn_name, "mq.example.com(1415)");
        assert_eq!(channel.to_string(), "APP.SVRCONN/TCP/mq.example.com(1415)");
    }

    #[test]
    fn mqserver_host_without_port_gets_1414() {
        let channel = parse_mqserver(" DEV.APP.SVRCONN/tcp/localhost ", "MQSERVER").expect("valid");
        assert_eq!(channel.conn_name, "localhost(1414)");
    }

    #[test]
    fn mqserver_accepts_a_list_of_conn_names() {
        let channel = parse_mqserver("APP.SVRCONN/TCP/host1(1414), host2,10.0.0.3(1420)", "MQSERVER").expect("valid");
        assert_eq!(channel.conn_name, "host1(1414),host2(1414),10.0.0.3(1420)");
        let ipv6 = parse_mqserver("APP.SVRCONN/TCP/2001:db8::1(1414)", "MQSERVER").expect("valid");
        assert_eq!(ipv6.conn_name, "2001:db8::1(1414)");
    }

    #[test]
    fn mqserver_rejects_other_transports() {
        assert_eq!(
            mqserver_error("APP.SVRCONN/UDP/host(1414)"),
            "MQSERVER: transport \"UDP\" is not supported (expected TCP) in \"APP.SVRCONN/UDP/host(1414)\""
        );
        assert!(mqserver_error("APP.SVRCONN//host").contains("transport \"\""));
    }

    #[test]
    fn mqserver_names_the_bad_port() {
        assert!(mqserver_error("APP.SVRCONN/TCP/host(14x4)").contains("port \"14x4\" is not a number"));
        assert!(mqserver_error("APP.SVRCONN/TCP/host(70000)").contains("port \"70000\" is out of range"));
        assert!(mqserver_error("APP.SVRCONN/TCP/host(0)").contains("port \"0\" is out of range"));
        assert!(mqserver_error("APP.SVRCONN/TCP/host()").contains("port is empty"));
        assert!(mqserver_error("APP.SVRCONN/TCP/host(1414").contains("\"host(1414\" is missing \")\""));
    }

    #[test]
    fn mqserver_names_missing_parts() {
        assert!(mqserver_error("").contains("is empty (expected CHANNEL/TCP/HOST(PORT))"));
        assert!(mqserver_error("APP.SVRCONN").contains("transport and connection name are missing"));
        assert!(mqserver_error("APP.SVRCONN/TCP").contains("connection name is missing"));
        assert!(mqserver_error("APP.SVRCONN/TCP/").contains("connection name is empty"));
        assert!(mqserver_error("A/B/TCP/host").contains("has 4 parts"));
        assert!(mqserver_error("APP.SVRCONN/TCP/(1414)").contains("\"(1414)\" has no host"));
        assert!(mqserver_error("APP.SVRCONN/TCP/h1,,h2").contains("empty entry"));
    }

    #[test]
    fn mqserver_checks_the_channel_name() {
        assert!(mqserver_error("/TCP/host").contains("channel name is empty"));
        let long = "A".repeat(21);
        let message = mqserver_error(&format!("{long}/TCP/host"));
        assert!(
            message.contains(&format!("channel name \"{long}\" is 21 characters long (at most 20)")),
            "{message}"
        );
        assert!(mqserver_error("APP-SVRCONN/TCP/host").contains("channel name \"APP-SVRCONN\" contains '-'"));
    }

    #[test]
    fn mqserver_error_starts_with_the_source_name() {
        match parse_mqserver("X/UDP/h", "--server") {
            Err(Error::Options { source_name, message }) => {
                assert_eq!(source_name, "--server");
                assert!(message.ends_with("in \"X/UDP/h\""), "{message}");
            }
            other => panic!("expected Error::Options, got {other:?}"),
        }
    }
}
