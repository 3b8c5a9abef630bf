//! MQ reason codes: names, classes and what an operator should do about each one.
//!
//! Every code mqpilot meets (MQ-REFERENCE section 2) and every code the fake queue manager
//! returns has one row in a table sorted by code; the numbers are checked against
//! `libmqm_sys` in the tests. The class tells callers what to do (carry on, retry, reconnect,
//! or stop and report); codes outside the table are treated as `config` so nobody hot-loops
//! on something mqpilot does not understand.

use std::fmt;
use std::str::FromStr;

/// An MQ reason code (`MQRC_*`), known to mqpilot's table or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Reason(pub i32);

/// What a caller should do when a call returns a reason code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReasonClass {
    /// Expected flow (for example 2033: no message); carry on.
    Normal,
    /// Back off and retry the call or the unit of work.
    Retry,
    /// The connection and all its handles are gone: build a new connection.
    Reconnect,
    /// Will not fix itself (configuration or a bug): report clearly, do not hot-loop.
    Config,
}

/// One row of the reason-code table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReasonInfo {
    /// The numeric code, e.g. 2017.
    pub code: i32,
    /// IBM's constant name, e.g. `MQRC_HANDLE_NOT_AVAILABLE`.
    pub name: &'static str,
    /// What the caller should do.
    pub class: ReasonClass,
    /// What happened, in one line.
    pub meaning: &'static str,
    /// What an operator can do about it, in one line.
    pub advice: &'static str,
    /// Whether MQ returns this code with `MQCC_WARNING` (the call did complete).
    pub warning: bool,
}

/// A reason code given as text that is neither a number nor a known `MQRC_` name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown reason code {given:?}: give a number (2017), an MQ name (MQRC_HANDLE_NOT_AVAILABLE) \
     or a short name (HANDLE_NOT_AVAILABLE)"
)]
pub struct UnknownReason {
    given: String,
}

impl UnknownReason {
    /// The text that was given.
    #[must_use]
    pub fn given(&self) -> &str {
        &self.given
    }
}

/// Defines one `Reason` constant per row and the sorted table `TABLE`.
macro_rules! reason_table {
    ($($name:ident = $code:literal, $class:ident, warning: $warning:literal,
        $meaning:literal, $advice:literal;)*) => {
        impl Reason {
            $(
                #[doc = concat!("`MQRC_", stringify!($name), "` (", stringify!($code), "): ", $meaning, ".")]
                pub const $name: Self = Self($code);
            )*
        }

        static TABLE: &[ReasonInfo] = &[$(
            ReasonInfo {
                code: $code,
                name: concat!("MQRC_", stringify!($name)),
                class: ReasonClass::$class,
                meaning: $meaning,
                advice: $advice,
                warning: $warning,
            },
        )*];
    };
}

// Sorted by code (a test checks this): `lookup` binary-searches it.
reason_table! {
    NONE = 0, Normal, warning: false,
        "the call completed successfully",
        "nothing to do";
    ALREADY_CONNECTED = 2002, Normal, warning: true,
        "this thread is already connected to the queue manager; the existing handle was returned",
        "harmless; do not disconnect the returned handle separately from the original";
    BACKED_OUT = 2003, Retry, warning: false,
        "the unit of work could not be committed and was backed out",
        "the messages are back on the queue with backout count + 1; run the unit of work again";
    BUFFER_ERROR = 2004, Config, warning: false,
        "the buffer parameter is not valid",
        "a bug in the calling code: report it with the verb and queue that failed";
    BUFFER_LENGTH_ERROR = 2005, Config, warning: false,
        "the buffer length is negative or otherwise not valid",
        "a bug in the calling code: report it with the verb and queue that failed";
    CHAR_ATTR_LENGTH_ERROR = 2006, Config, warning: false,
        "the character-attribute length is negative or too small for the selectors",
        "a bug in the calling code: size the buffer for every character selector";
    CHAR_ATTRS_TOO_SHORT = 2008, Config, warning: true,
        "the character-attribute buffer was too short; the attributes were truncated",
        "a bug in the calling code: enlarge the character-attribute buffer";
    CONNECTION_BROKEN = 2009, Reconnect, warning: false,
        "the connection was lost: all handles are invalid and uncommitted work was backed out",
        "reconnect and reopen queues (a client's last call may have completed: keep processing \
         idempotent); if frequent, check the network and the queue manager's error log";
    DATA_LENGTH_ERROR = 2010, Config, warning: false,
        "the buffer is longer than the maximum message length negotiated for the client channel",
        "raise MAXMSGL on the server-connection channel (the lower of client and server applies), or \
         keep the get buffer within it (poll's buffer_bytes, mcp's limits.max_result_bytes)";
    GET_INHIBITED = 2016, Retry, warning: false,
        "gets are disabled on the queue (GET(DISABLED))",
        "retry slowly; if unexpected, ask the MQ admin to ALTER the queue GET(ENABLED)";
    HANDLE_NOT_AVAILABLE = 2017, Config, warning: false,
        "the connection already holds MAXHANDS open object handles",
        "close handles you no longer need or raise MAXHANDS; see mqplan";
    HCONN_ERROR = 2018, Reconnect, warning: false,
        "the connection handle is not valid (disconnected, or never connected)",
        "build a new connection; if it recurs, a handle is used after disconnect (a bug)";
    HOBJ_ERROR = 2019, Retry, warning: false,
        "the object handle is not valid (closed, or lost with its connection)",
        "reopen the queue and retry; if it recurs, a handle is used after close (a bug)";
    INT_ATTR_COUNT_ERROR = 2021, Config, warning: false,
        "the integer-attribute count is negative or does not match the selectors",
        "a bug in the calling code: pass one integer slot per integer selector";
    INT_ATTR_COUNT_TOO_SMALL = 2022, Config, warning: true,
        "fewer integer-attribute slots than integer selectors; the extra values were not returned",
        "a bug in the calling code: pass one integer slot per integer selector";
    SYNCPOINT_LIMIT_REACHED = 2024, Config, warning: false,
        "the unit of work would exceed MAXUMSGS uncommitted messages",
        "commit in smaller batches or raise the queue manager's MAXUMSGS; see mqplan";
    MAX_CONNS_LIMIT_REACHED = 2025, Retry, warning: false,
        "the queue manager refused the connection: too many connections",
        "back off and retry; reduce instances x pool size or raise the connection limit; see mqplan";
    MD_ERROR = 2026, Config, warning: false,
        "the message descriptor is not valid",
        "a bug in the calling code: report it with the verb and queue that failed";
    MISSING_REPLY_TO_Q = 2027, Config, warning: false,
        "a request message was put without a reply-to queue",
        "set ReplyToQ on request messages, or send them as datagrams";
    MSG_TOO_BIG_FOR_Q = 2030, Config, warning: false,
        "the message is longer than the queue's MAXMSGL",
        "send smaller messages or raise MAXMSGL on the queue (and on the queue manager and channel)";
    MSG_TOO_BIG_FOR_Q_MGR = 2031, Config, warning: false,
        "the message is longer than the queue manager's MAXMSGL",
        "send smaller messages or raise MAXMSGL on the queue manager (and on the channel)";
    NO_MSG_AVAILABLE = 2033, Normal, warning: false,
        "no matching message: the queue is empty, the wait expired, or browse reached the end",
        "nothing to do; poll again";
    NO_MSG_UNDER_CURSOR = 2034, Normal, warning: false,
        "the message under the browse cursor is gone, locked by another handle, or not there",
        "nothing to do; browse again from the first message";
    NOT_AUTHORIZED = 2035, Config, warning: false,
        "the security check failed (user or password rejected, or no authority for the object)",
        "check user and password, CHLAUTH and CONNAUTH rules and object authorities (dspmqaut); \
         the queue manager's error log says which check failed";
    NOT_OPEN_FOR_BROWSE = 2036, Config, warning: false,
        "a browse option was used on a handle opened without MQOO_BROWSE",
        "a bug in the calling code: open the queue with MQOO_BROWSE";
    NOT_OPEN_FOR_INPUT = 2037, Config, warning: false,
        "a get was issued on a handle not opened for input",
        "a bug in the calling code: open the queue with an MQOO_INPUT_* option";
    NOT_OPEN_FOR_INQUIRE = 2038, Config, warning: false,
        "an inquire was issued on a handle opened without MQOO_INQUIRE",
        "a bug in the calling code: open the object with MQOO_INQUIRE";
    NOT_OPEN_FOR_OUTPUT = 2039, Config, warning: false,
        "a put was issued on a handle opened without MQOO_OUTPUT",
        "a bug in the calling code: open the queue with MQOO_OUTPUT";
    OBJECT_CHANGED = 2041, Retry, warning: false,
        "the object's definition changed since the handle was opened",
        "close and reopen the queue, then retry";
    OBJECT_IN_USE = 2042, Retry, warning: false,
        "the queue is open for exclusive input elsewhere, or exclusive input was refused",
        "find the other consumer (DISPLAY QSTATUS TYPE(HANDLE)); open shared or retry when it closes";
    OBJECT_TYPE_ERROR = 2043, Config, warning: false,
        "the object type in the object descriptor is not valid",
        "a bug in the calling code: report it with the object that failed";
    OD_ERROR = 2044, Config, warning: false,
        "the object descriptor is not valid",
        "a bug in the calling code: report it with the object that failed";
    OPTION_NOT_VALID_FOR_TYPE = 2045, Config, warning: false,
        "an open option does not apply to this object type (e.g. input from a remote queue)",
        "check the queue's type (DISPLAY Q(name) TYPE) and consume from the local queue instead";
    OPTIONS_ERROR = 2046, Config, warning: false,
        "the options are not valid or conflict with each other",
        "a bug in the calling code: report it with the verb that failed";
    PERSISTENCE_ERROR = 2047, Config, warning: false,
        "the message descriptor's persistence is not valid",
        "a bug in the calling code: use MQPER_PERSISTENT, NOT_PERSISTENT or AS_Q_DEF";
    PRIORITY_ERROR = 2050, Config, warning: false,
        "the message priority is not valid (below -1)",
        "a bug in the calling code: use a priority of 0 to 9 or MQPRI_PRIORITY_AS_Q_DEF";
    PUT_INHIBITED = 2051, Retry, warning: false,
        "puts are disabled on the queue (PUT(DISABLED))",
        "retry slowly; if unexpected, ask the MQ admin to ALTER the queue PUT(ENABLED)";
    Q_FULL = 2053, Retry, warning: false,
        "the queue holds MAXDEPTH messages",
        "back off and retry; speed up its consumers or raise MAXDEPTH";
    Q_SPACE_NOT_AVAILABLE = 2056, Retry, warning: false,
        "no disk space is left for the queue",
        "back off and retry; ask the MQ admin to free space on the queue manager's file system";
    Q_MGR_NAME_ERROR = 2058, Config, warning: false,
        "the queue manager name is wrong, or not the one this channel leads to",
        "check the queue manager name (case matters) and the channel's QMNAME in the CCDT";
    Q_MGR_NOT_AVAILABLE = 2059, Retry, warning: false,
        "the queue manager is not available: not running, or the client channel could not connect",
        "check the queue manager runs and its listener is reachable; retry with backoff; the \
         client's AMQERR01.LOG names the cause";
    SECURITY_ERROR = 2063, Config, warning: false,
        "the security manager returned an error",
        "check the queue manager's error log and its security setup";
    SELECTOR_COUNT_ERROR = 2065, Config, warning: false,
        "the selector count is negative or larger than 256",
        "a bug in the calling code: inquire at most 256 attributes per call";
    SELECTOR_ERROR = 2067, Config, warning: false,
        "an attribute selector is not valid",
        "a bug in the calling code: report it with the selector and object";
    SELECTOR_NOT_FOR_TYPE = 2068, Config, warning: true,
        "a selector does not apply to this object type; its value came back as not applicable",
        "inquire the attribute on the base queue rather than an alias or remote queue";
    STORAGE_NOT_AVAILABLE = 2071, Retry, warning: false,
        "not enough memory for the call",
        "back off and retry; check memory on the queue manager's host (or the client's)";
    TRUNCATED_MSG_ACCEPTED = 2079, Normal, warning: true,
        "the buffer was too small and truncation was accepted: the message was removed, its tail lost",
        "data was lost: size the buffer to MAXMSGL and stop using MQGMO_ACCEPT_TRUNCATED_MSG";
    TRUNCATED_MSG_FAILED = 2080, Retry, warning: true,
        "the buffer was too small: the message stays on the queue and its real length was returned",
        "retry with a buffer of the returned length (up to MAXMSGL)";
    UNKNOWN_OBJECT_NAME = 2085, Config, warning: false,
        "no object with that name exists on the queue manager",
        "check the queue name (case matters) or ask the MQ admin to define it";
    WAIT_INTERVAL_ERROR = 2090, Config, warning: false,
        "the wait interval is negative and not MQWI_UNLIMITED",
        "a bug in the calling code: use a wait of 0 or more milliseconds";
    OBJECT_DAMAGED = 2101, Config, warning: false,
        "the object is damaged and cannot be used",
        "ask the MQ admin to recover it (rcrmqobj) and check the queue manager's error log";
    RESOURCE_PROBLEM = 2102, Retry, warning: false,
        "not enough system resources (memory, log space, file handles) for the call",
        "back off and retry; the queue manager's error log names the resource";
    OBJECT_NAME_ERROR = 2152, Config, warning: false,
        "an object name is not valid",
        "check the name: at most 48 characters from A-Z a-z 0-9 . / _ %";
    Q_MGR_QUIESCING = 2161, Reconnect, warning: false,
        "the queue manager is quiescing and the call asked to fail if quiescing",
        "finish in-flight work, disconnect, and reconnect with backoff once it is back";
    Q_MGR_STOPPING = 2162, Reconnect, warning: false,
        "the queue manager is stopping; uncommitted work was backed out",
        "disconnect and reconnect with backoff once it is back";
    PMO_ERROR = 2173, Config, warning: false,
        "the put-message options are not valid",
        "a bug in the calling code: report it with the queue that failed";
    GMO_ERROR = 2186, Config, warning: false,
        "the get-message options are not valid",
        "a bug in the calling code: report it with the queue that failed";
    CLUSTER_RESOLUTION_ERROR = 2189, Retry, warning: false,
        "a cluster queue's name could not be resolved: no full repository answered",
        "back off and retry; check the cluster's full repositories and channels";
    UNEXPECTED_ERROR = 2195, Config, warning: false,
        "the queue manager or client hit an unexpected error",
        "check the client and queue manager error logs (AMQERR01.LOG) and FDC files";
    CONNECTION_QUIESCING = 2202, Reconnect, warning: false,
        "the connection is quiescing",
        "finish in-flight work, disconnect, and reconnect with backoff";
    CONNECTION_STOPPING = 2203, Reconnect, warning: false,
        "the connection is shutting down",
        "disconnect and reconnect with backoff";
    NO_MSG_LOCKED = 2209, Normal, warning: true,
        "an unlock was requested but no message was locked",
        "nothing to do";
    INCONSISTENT_BROWSE = 2259, Config, warning: false,
        "a browse-next changed MQGMO_LOGICAL_ORDER from the previous browse on this handle",
        "a bug in the calling code: keep browse options consistent or restart with BROWSE_FIRST";
    CHANNEL_NOT_ACTIVATED = 2296, Retry, warning: true,
        "the channel waits because MaxActiveChannels active channel instances are running",
        "raise MaxActiveChannels or reduce instances x connections / SHARECNV; see mqplan";
    FUNCTION_NOT_SUPPORTED = 2298, Config, warning: false,
        "the function is not supported by this queue manager or client",
        "check the client and queue manager versions and the platform";
    KEY_REPOSITORY_ERROR = 2381, Config, warning: false,
        "the TLS key repository is not given, not found, or cannot be opened (its password is \
         missing or wrong)",
        "give the repository's stem without .kdb (clients before 9.3 answer 2381 to key.kdb), \
         keep its stash file (key.sth) next to it, readable by this user; the client's \
         AMQERR01.LOG names the cause";
    SSL_INITIALIZATION_ERROR = 2393, Config, warning: false,
        "the client's TLS environment could not be set up for MQCONNX",
        "check the cipher spec matches the server channel's SSLCIPH, the key repository and its \
         stash file (key.sth next to key.kdb), and the certificate label; the client's \
         AMQERR01.LOG names the cause";
    JSSE_ERROR = 2397, Config, warning: false,
        "the Java TLS provider (JSSE) reported an error; IBM returns this code to Java clients only",
        "check the cipher spec matches the server channel's SSLCIPH, the key repository and the \
         certificate label; the queue manager's AMQERR01.LOG names the failure";
    CHANNEL_NOT_AVAILABLE = 2537, Retry, warning: false,
        "the server-connection channel is stopped or at an instance limit",
        "channel instance limit (MAXINST, MAXINSTC or MaxChannels) reached: raise the limit or \
         reduce instances x connections / SHARECNV; see mqplan";
    HOST_NOT_AVAILABLE = 2538, Retry, warning: false,
        "the client could not open a TCP connection to the listener",
        "check host(port) in MQSERVER or the CCDT, that the listener runs (DISPLAY LSSTATUS) and \
         firewalls; retry with backoff";
    CHANNEL_CONFIG_ERROR = 2539, Config, warning: false,
        "the client and the server could not agree the channel's attributes",
        "compare the client and SVRCONN definitions (name, MAXMSGL, SHARECNV, cipher); the \
         queue manager's error log names the mismatch";
    UNKNOWN_CHANNEL_NAME = 2540, Config, warning: false,
        "the queue manager has no server-connection channel of the name the client asked for",
        "check the channel name (case matters) in --conn, MQSERVER or the CCDT against DEFINE \
         CHANNEL(...) CHLTYPE(SVRCONN) on the queue manager, whose error log shows AMQ9520";
    RECONNECT_QMID_MISMATCH = 2546, Reconnect, warning: false,
        "automatic reconnection (MQCNO_RECONNECT_Q_MGR) reached a different queue manager from \
         the one the connection was made to: the connection is gone",
        "build a new connection; make the client's channel definitions lead to one queue manager, \
         or allow any (connection.reconnect = \"any\")";
    RECONNECT_FAILED = 2548, Reconnect, warning: false,
        "automatic reconnection could not restore the connection's handles",
        "discard the connection and build a new one, reopening every queue";
    CALL_INTERRUPTED = 2549, Retry, warning: false,
        "the connection broke during an MQPUT, MQPUT1 or MQCMIT and was reconnected; the call's \
         outcome is unknown (after MQCMIT, the unit of work may or may not have been committed)",
        "after MQCMIT count its messages as possibly delivered (they may come again); after a put, \
         back out and retry (a put may have happened: keep processing idempotent)";
    RECONNECT_TIMED_OUT = 2556, Reconnect, warning: false,
        "automatic reconnection did not succeed within the client's reconnect timeout \
         (MQReconnectTimeout in mqclient.ini): the connection is gone",
        "build a new connection with backoff; the client's AMQERR01.LOG says why reconnection failed";
}

/// The name shown for codes that neither mqpilot nor IBM's constant list knows.
const UNKNOWN_NAME: &str = "MQRC_UNKNOWN";

/// Every reason code mqpilot knows, sorted by code.
#[must_use]
pub fn all() -> &'static [ReasonInfo] {
    TABLE
}

/// The table row for `code`, if mqpilot knows it.
#[must_use]
pub fn lookup(code: i32) -> Option<&'static ReasonInfo> {
    TABLE
        .binary_search_by_key(&code, |info| info.code)
        .ok()
        .map(|index| &TABLE[index])
}

/// Parses `2017`, `MQRC_HANDLE_NOT_AVAILABLE` or `HANDLE_NOT_AVAILABLE` (any case, surrounding
/// space ignored). Any non-negative number is accepted; a name must be in mqpilot's table or
/// IBM's list of `MQRC_` constants.
///
/// # Errors
/// [`UnknownReason`] when the text is neither.
pub fn parse_reason(s: &str) -> Result<Reason, UnknownReason> {
    let unknown = || UnknownReason { given: s.to_owned() };
    let text = s.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().map(Reason).map_err(|_| unknown());
    }
    let upper = text.to_ascii_uppercase();
    let short = upper.strip_prefix("MQRC_").unwrap_or(&upper);
    if short.is_empty() {
        return Err(unknown());
    }
    if let Some(info) = TABLE.iter().find(|info| info.name.strip_prefix("MQRC_") == Some(short)) {
        return Ok(Reason(info.code));
    }
    // IBM's list knows every MQRC_ name, including the ones mqpilot has no advice for.
    let full = format!("MQRC_{short}");
    match full.parse::<mqi::types::MQRC>() {
        Ok(rc) => Ok(Reason(rc.0)),
        Err(_) => Err(unknown()),
    }
}

impl Reason {
    /// This code's table row, if mqpilot knows it.
    #[must_use]
    pub fn info(self) -> Option<&'static ReasonInfo> {
        lookup(self.0)
    }

    /// What a caller should do; codes mqpilot does not know are [`ReasonClass::Config`].
    #[must_use]
    pub fn class(self) -> ReasonClass {
        self.info().map_or(ReasonClass::Config, |info| info.class)
    }

    /// IBM's name, e.g. `MQRC_HANDLE_NOT_AVAILABLE`; `MQRC_UNKNOWN` for codes not in the table.
    #[must_use]
    pub fn name(self) -> &'static str {
        self.info().map_or(UNKNOWN_NAME, |info| info.name)
    }

    /// Whether MQ returns this code with `MQCC_WARNING`; `false` for codes not in the table.
    #[must_use]
    pub fn is_warning(self) -> bool {
        self.info().is_some_and(|info| info.warning)
    }

    /// A multi-line explanation for people: code and name, class, meaning and advice.
    #[must_use]
    pub fn explain(self) -> String {
        let Some(info) = self.info() else {
            let url = mqi::types::MQRC(self.0).ibm_reference_url("en", None);
            let docs = url.map_or_else(String::new, |url| format!("\nsee: {url}"));
            return format!(
                "{self}\nclass: {}\nmeaning: mqpilot has no entry for this code\nadvice: treat \
                 it as a configuration problem and look it up in IBM's documentation{docs}",
                ReasonClass::Config
            );
        };
        let completion = match (info.code, info.warning) {
            (0, _) => "MQCC_OK",
            (_, true) => "MQCC_WARNING",
            (_, false) => "MQCC_FAILED",
        };
        format!(
            "{self}\nclass: {}\ncompletion: {completion}\nmeaning: {}\nadvice: {}",
            info.class, info.meaning, info.advice
        )
    }

    /// IBM's name for a code outside mqpilot's table, from the constants `mqi` carries.
    fn ibm_name(self) -> Option<String> {
        let name = mqi::types::MQRC(self.0).to_string();
        name.starts_with("MQRC_").then_some(name)
    }
}

impl fmt::Display for Reason {
    /// `2017 MQRC_HANDLE_NOT_AVAILABLE`; `9999 MQRC_UNKNOWN` when no name is known.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.info() {
            Some(info) => write!(f, "{} {}", self.0, info.name),
            None => match self.ibm_name() {
                Some(name) => write!(f, "{} {name}", self.0),
                None => write!(f, "{} {UNKNOWN_NAME}", self.0),
            },
        }
    }
}

impl fmt::Display for ReasonClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Normal => "normal",
            Self::Retry => "retry",
            Self::Reconnect => "reconnect",
            Self::Config => "config",
        })
    }
}

impl FromStr for Reason {
    type Err = UnknownReason;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_reason(s)
    }
}

impl From<mqi::types::MQRC> for Reason {
    fn from(rc: mqi::types::MQRC) -> Self {
        Self(rc.0)
    }
}

impl From<&mqi::result::Error> for Reason {
    fn from(error: &mqi::result::Error) -> Self {
        Self(error.2.0)
    }
}

impl From<mqi::result::Error> for Reason {
    fn from(error: mqi::result::Error) -> Self {
        Self::from(&error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `("MQRC_X", libmqm_sys::MQRC_X)` for each name.
    macro_rules! sys {
        ($($name:ident),* $(,)?) => {
            &[$((stringify!($name), libmqm_sys::$name)),*]
        };
    }

    /// IBM's numbers, from the C headers via `libmqm_sys`: the table must agree with them.
    const SYS: &[(&str, i32)] = sys![
        MQRC_NONE,
        MQRC_ALREADY_CONNECTED,
        MQRC_BACKED_OUT,
        MQRC_BUFFER_ERROR,
        MQRC_BUFFER_LENGTH_ERROR,
        MQRC_CHAR_ATTR_LENGTH_ERROR,
        MQRC_CHAR_ATTRS_TOO_SHORT,
        MQRC_CONNECTION_BROKEN,
        MQRC_DATA_LENGTH_ERROR,
        MQRC_GET_INHIBITED,
        MQRC_HANDLE_NOT_AVAILABLE,
        MQRC_HCONN_ERROR,
        MQRC_HOBJ_ERROR,
        MQRC_INT_ATTR_COUNT_ERROR,
        MQRC_INT_ATTR_COUNT_TOO_SMALL,
        MQRC_SYNCPOINT_LIMIT_REACHED,
        MQRC_MAX_CONNS_LIMIT_REACHED,
        MQRC_MD_ERROR,
        MQRC_MISSING_REPLY_TO_Q,
        MQRC_MSG_TOO_BIG_FOR_Q,
        MQRC_MSG_TOO_BIG_FOR_Q_MGR,
        MQRC_NO_MSG_AVAILABLE,
        MQRC_NO_MSG_UNDER_CURSOR,
        MQRC_NOT_AUTHORIZED,
        MQRC_NOT_OPEN_FOR_BROWSE,
        MQRC_NOT_OPEN_FOR_INPUT,
        MQRC_NOT_OPEN_FOR_INQUIRE,
        MQRC_NOT_OPEN_FOR_OUTPUT,
        MQRC_OBJECT_CHANGED,
        MQRC_OBJECT_IN_USE,
        MQRC_OBJECT_TYPE_ERROR,
        MQRC_OD_ERROR,
        MQRC_OPTION_NOT_VALID_FOR_TYPE,
        MQRC_OPTIONS_ERROR,
        MQRC_PERSISTENCE_ERROR,
        MQRC_PRIORITY_ERROR,
        MQRC_PUT_INHIBITED,
        MQRC_Q_FULL,
        MQRC_Q_SPACE_NOT_AVAILABLE,
        MQRC_Q_MGR_NAME_ERROR,
        MQRC_Q_MGR_NOT_AVAILABLE,
        MQRC_SECURITY_ERROR,
        MQRC_SELECTOR_COUNT_ERROR,
        MQRC_SELECTOR_ERROR,
        MQRC_SELECTOR_NOT_FOR_TYPE,
        MQRC_STORAGE_NOT_AVAILABLE,
        MQRC_TRUNCATED_MSG_ACCEPTED,
        MQRC_TRUNCATED_MSG_FAILED,
        MQRC_UNKNOWN_OBJECT_NAME,
        MQRC_WAIT_INTERVAL_ERROR,
        MQRC_OBJECT_DAMAGED,
        MQRC_RESOURCE_PROBLEM,
        MQRC_OBJECT_NAME_ERROR,
        MQRC_Q_MGR_QUIESCING,
        MQRC_Q_MGR_STOPPING,
        MQRC_PMO_ERROR,
        MQRC_GMO_ERROR,
        MQRC_CLUSTER_RESOLUTION_ERROR,
        MQRC_UNEXPECTED_ERROR,
        MQRC_CONNECTION_QUIESCING,
        MQRC_CONNECTION_STOPPING,
        MQRC_NO_MSG_LOCKED,
        MQRC_INCONSISTENT_BROWSE,
        MQRC_CHANNEL_NOT_ACTIVATED,
        MQRC_FUNCTION_NOT_SUPPORTED,
        MQRC_KEY_REPOSITORY_ERROR,
        MQRC_SSL_INITIALIZATION_ERROR,
        MQRC_JSSE_ERROR,
        MQRC_CHANNEL_NOT_AVAILABLE,
        MQRC_HOST_NOT_AVAILABLE,
        MQRC_CHANNEL_CONFIG_ERROR,
        MQRC_UNKNOWN_CHANNEL_NAME,
        MQRC_RECONNECT_QMID_MISMATCH,
        MQRC_RECONNECT_FAILED,
        MQRC_CALL_INTERRUPTED,
        MQRC_RECONNECT_TIMED_OUT,
    ];

    /// MQ-REFERENCE.md section 2, with the class it gives each code.
    const REFERENCE: &[(i32, ReasonClass)] = &[
        (2003, ReasonClass::Retry),
        (2009, ReasonClass::Reconnect),
        (2010, ReasonClass::Config),
        (2016, ReasonClass::Retry),
        (2017, ReasonClass::Config),
        (2018, ReasonClass::Reconnect),
        (2019, ReasonClass::Retry),
        (2024, ReasonClass::Config),
        (2025, ReasonClass::Retry),
        (2030, ReasonClass::Config),
        (2031, ReasonClass::Config),
        (2033, ReasonClass::Normal),
        (2034, ReasonClass::Normal),
        (2035, ReasonClass::Config),
        (2036, ReasonClass::Config),
        (2042, ReasonClass::Retry),
        (2051, ReasonClass::Retry),
        (2053, ReasonClass::Retry),
        (2058, ReasonClass::Config),
        (2059, ReasonClass::Retry),
        (2079, ReasonClass::Normal),
        (2080, ReasonClass::Retry),
        (2085, ReasonClass::Config),
        (2090, ReasonClass::Config),
        (2161, ReasonClass::Reconnect),
        (2162, ReasonClass::Reconnect),
        (2202, ReasonClass::Reconnect),
        (2203, ReasonClass::Reconnect),
        (2209, ReasonClass::Normal),
        (2537, ReasonClass::Retry),
        (2538, ReasonClass::Retry),
        (2539, ReasonClass::Config),
        (2548, ReasonClass::Reconnect),
    ];

    #[test]
    fn table_numbers_match_libmqm_sys() {
        assert_eq!(TABLE.len(), SYS.len(), "every row needs a libmqm_sys check");
        for info in TABLE {
            let sys = SYS.iter().find(|(name, _)| *name == info.name);
            assert_eq!(sys.map(|(_, code)| *code), Some(info.code), "{}", info.name);
        }
    }

    #[test]
    fn table_is_sorted_and_unique() {
        assert!(TABLE.windows(2).all(|pair| pair[0].code < pair[1].code));
    }

    #[test]
    fn every_row_has_meaning_and_advice() {
        for info in TABLE {
            assert!(!info.meaning.is_empty() && !info.advice.is_empty(), "{}", info.name);
            assert!(!info.advice.contains("  "), "{} advice has a double space", info.name);
        }
    }

    #[test]
    fn every_reference_code_is_present_with_its_class() {
        for &(code, class) in REFERENCE {
            let info = lookup(code).unwrap_or_else(|| panic!("{code} missing"));
            assert_eq!(info.class, class, "{}", info.name);
        }
    }

    #[test]
    fn warnings_are_the_mqcc_warning_codes() {
        let warnings: Vec<i32> = TABLE.iter().filter(|i| i.warning).map(|i| i.code).collect();
        assert_eq!(warnings, [2002, 2008, 2022, 2068, 2079, 2080, 2209, 2296]);
        assert!(Reason::TRUNCATED_MSG_FAILED.is_warning());
        assert!(!Reason::CONNECTION_BROKEN.is_warning());
        assert!(!Reason(9999).is_warning());
    }

    #[test]
    fn parse_accepts_number_full_name_and_short_name() {
        for text in ["2017", "MQRC_HANDLE_NOT_AVAILABLE", "HANDLE_NOT_AVAILABLE"] {
            assert_eq!(parse_reason(text), Ok(Reason::HANDLE_NOT_AVAILABLE), "{text}");
        }
    }

    #[test]
    fn parse_ignores_case_and_surrounding_space() {
        assert_eq!(" mqrc_handle_not_available\n".parse(), Ok(Reason(2017)));
        assert_eq!("\tNo_Msg_Available ".parse(), Ok(Reason::NO_MSG_AVAILABLE));
        assert_eq!(" 2033 ".parse(), Ok(Reason(2033)));
    }

    #[test]
    fn parse_knows_ibm_names_outside_the_table() {
        assert_eq!(parse_reason("MQRC_ENVIRONMENT_ERROR"), Ok(Reason(2012)));
        assert_eq!(parse_reason("9999"), Ok(Reason(9999)));
    }

    #[test]
    fn parse_rejects_unknown_text_and_names_it() {
        for text in ["", "  ", "MQRC_", "NO_SUCH_REASON", "20x7", "-2017", "99999999999"] {
            let error = parse_reason(text).expect_err(text);
            assert_eq!(error.given(), text);
            let message = error.to_string();
            assert!(message.contains(&format!("{text:?}")), "{message}");
            assert!(message.contains("MQRC_HANDLE_NOT_AVAILABLE"), "{message}");
        }
    }

    #[test]
    fn display_is_code_then_name() {
        assert_eq!(
            Reason::HANDLE_NOT_AVAILABLE.to_string(),
            "2017 MQRC_HANDLE_NOT_AVAILABLE"
        );
        assert_eq!(Reason::NONE.to_string(), "0 MQRC_NONE");
        assert_eq!(Reason(9999).to_string(), "9999 MQRC_UNKNOWN");
        assert_eq!(Reason(2012).to_string(), "2012 MQRC_ENVIRONMENT_ERROR");
    }

    #[test]
    fn classes_of_the_codes_callers_branch_on() {
        assert_eq!(Reason::CONNECTION_BROKEN.class(), ReasonClass::Reconnect);
        assert_eq!(Reason::NO_MSG_AVAILABLE.class(), ReasonClass::Normal);
        assert_eq!(Reason::HANDLE_NOT_AVAILABLE.class(), ReasonClass::Config);
        assert_eq!(Reason::CHANNEL_NOT_AVAILABLE.class(), ReasonClass::Retry);
        // A channel the queue manager does not define will not appear by retrying.
        assert_eq!(Reason::UNKNOWN_CHANNEL_NAME.class(), ReasonClass::Config);
        // Transient shortages and a call cut by client reconnection: retry, never stop.
        for transient in [2056, 2071, 2102, 2189, 2549] {
            assert_eq!(Reason(transient).class(), ReasonClass::Retry, "{transient}");
        }
        assert_eq!(Reason(9999).class(), ReasonClass::Config);
        assert_eq!(ReasonClass::Reconnect.to_string(), "reconnect");
    }

    #[test]
    fn client_reconnection_failures_are_reconnect_class() {
        // A reconnectable client that reached another queue manager (2546) or gave up
        // reconnecting (2556) has lost the connection: build a new one, never stop.
        for (code, name) in [
            (2546, "MQRC_RECONNECT_QMID_MISMATCH"),
            (2548, "MQRC_RECONNECT_FAILED"),
            (2556, "MQRC_RECONNECT_TIMED_OUT"),
        ] {
            assert_eq!(Reason(code).class(), ReasonClass::Reconnect, "{code}");
            assert_eq!(Reason(code).name(), name);
        }
    }

    #[test]
    fn name_of_unknown_code_is_mqrc_unknown() {
        assert_eq!(Reason::Q_FULL.name(), "MQRC_Q_FULL");
        assert_eq!(Reason(9999).name(), "MQRC_UNKNOWN");
        assert!(Reason(9999).info().is_none());
    }

    #[test]
    fn explain_gives_class_meaning_and_advice() {
        let text = Reason::CHANNEL_NOT_AVAILABLE.explain();
        assert!(text.starts_with("2537 MQRC_CHANNEL_NOT_AVAILABLE\n"), "{text}");
        assert!(text.contains("class: retry"), "{text}");
        assert!(text.contains("MAXINSTC"), "{text}");
        assert!(text.lines().count() >= 4, "{text}");
        let unknown = Reason(2012).explain();
        assert!(unknown.contains("class: config"), "{unknown}");
        assert!(unknown.contains("ibm.com"), "{unknown}");
    }

    #[test]
    fn converts_from_mqi_reason_and_error() {
        let rc = mqi::types::MQRC(libmqm_sys::MQRC_Q_FULL);
        assert_eq!(Reason::from(rc), Reason::Q_FULL);
        let error = mqi::result::Error(mqi::constants::MQCC_FAILED, "MQPUT", rc);
        assert_eq!(Reason::from(&error), Reason::Q_FULL);
    }
}
