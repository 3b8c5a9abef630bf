//! The fake queue manager as a network service (`mqpilot fake-qm`) and its client library.
//!
//! Several processes can then share one fake queue manager, and killing one breaks its
//! connection the way MQ sees it. The server ([`Server`]) runs the same safe verbs as the
//! in-process fake; the client ([`RemoteMqi`]) is the same `Mqi` adapter over [`RemoteVerbs`],
//! so the C-structure translation exists once.
//!
//! # Protocol (version 4)
//!
//! TCP, one MQ connection (hconn) per TCP connection; the client's IP address is what
//! MAXINSTC counts, and a token sent at MQCONNX identifies the client process whose
//! connections share channel instances (SHARECNV). Every frame is
//!
//! ```text
//! u32 length (LE, bytes after this field, 2..=100 MiB + 64 KiB) | u8 version (4) | u8 kind | body
//! ```
//!
//! Integers are little-endian; strings and byte strings are a u32 length then the bytes
//! (strings UTF-8); an optional string is a byte 0 (absent) or 1 then the string; an MQMD is
//! a byte string holding a version-2 MQMD as laid out in memory (364 bytes).
//!
//! | kind | request body | reply body after `u8 ok, i32 reason` |
//! |---|---|---|
//! | 1 MQCONNX | u64 token, qmgr (at most 48 characters), opt channel (20), u8 has-sharecnv, u32 sharecnv, u32 max message length (0: none), opt user (1024), opt password (1024), appl name (28): longer is malformed | i32 hconn, u32 read-ahead limit (0: off) |
//! | 2 MQDISC | i32 hconn | |
//! | 3 MQOPEN | i32 hconn, i32 object type, name, i32 options | i32 hobj |
//! | 4 MQCLOSE | i32 hconn, i32 hobj | |
//! | 5 MQPUT | i32 hconn, i32 hobj, i32 options, MQMD, data | MQMD |
//! | 6 MQPUT1 | i32 hconn, i32 object type, name, i32 options, MQMD, data | MQMD |
//! | 7 MQGET | i32 hconn, i32 hobj, i32 options, i32 wait, i32 match options, u32 buffer length, MQMD, u32 ahead | when ok: u64 data length, MQMD, data (at most the buffer length), u32 n, n x (MQMD, data) read ahead |
//! | 8 MQINQ | i32 hconn, i32 hobj, u32 n, n x i32 selector | u32 n, n x (u8 tag: 0 i32 / 1 text, u32 width / 2 u32 width) |
//! | 9 MQCMIT, 10 MQBACK | i32 hconn | |
//! | 11 other verb | | (reason 2298; counted under `other`. `RemoteMqi` answers 2298 itself) |
//! | 12 release | i32 hconn, u32 count | none: release the last `count` messages the latest MQGET read ahead |
//! | 32 admin | JSON request | JSON reply |
//!
//! | 130 revoke (server to client, unasked) | | none: stop handing out what the latest MQGET read ahead |
//!
//! Replies are kind 128: `ok` is 1 when the call completed (`reason` is then 0 or a
//! warning such as 2079, 2080), 0 when it failed (`reason` is the reason code). A frame the
//! server cannot accept (unknown version or kind, too long, malformed, a second MQCONNX, a
//! frame while an MQGET is in flight) gets kind 129 with a UTF-8 explanation, and the server
//! closes that connection only (so does a socket without an MQ connection that idles too
//! long, see below). Calls are strictly one at a time per connection; a
//! `release` frame, which takes no reply, only ever travels in front of a call, in the same
//! write. A `revoke` frame is the only frame the server sends unasked: after a reply that
//! read ahead, before the client's next request (or, rarely, just after that request's
//! reply); the client skips those in front of a reply.
//!
//! # Read-ahead
//!
//! An MQGET that qualifies (MQGMO_SYNCPOINT and at most MQGMO_WAIT and
//! MQGMO_FAIL_IF_QUIESCING besides, nothing to match on: see `ahead.rs`) may ask for up to
//! `ahead` more messages on the same terms. When its own message came whole (reason 0), the
//! server gets up to min(`ahead`, its limit) more into the connection's unit of work without
//! waiting, each no longer than the buffer, 1 MiB in all (MQMDs counted) and never more than
//! the reply frame holds besides the first message, never past MAXUMSGS, and returns
//! them after the first. They are uncommitted gets of that connection: out of CURDEPTH,
//! in UNCOM, hidden from every other handle. The client hands them out to its following
//! MQGETs on the same handle with the same options, one each, without a round trip (2080
//! with the length for a buffer too small, the message staying first). Before it sends any
//! other request (MQCMIT, MQBACK, MQCLOSE, MQDISC, MQPUT, MQINQ, a get on other terms) it
//! releases what it still holds: the server puts those messages back where they were,
//! visible, backout count unchanged. The client asks for what is left of the batch the
//! handle got in its previous unit of work (the first unit of work on a handle reads
//! nothing ahead). The server's limit (`Server::with_read_ahead`, `mqpilot fake-qm
//! --read-ahead`, default 64, 0 off) is announced at MQCONNX.
//!
//! Until the client's next request, a change that would make a get answer otherwise than
//! the held message (the queue they came from set GET(DISABLED); the queue manager
//! quiescing, when they were fetched with MQGMO_FAIL_IF_QUIESCING) makes the server write a
//! `revoke` frame to that client before the change returns. Before each hand-out the client
//! looks at its socket without blocking (one `recv` with MSG_PEEK, no round trip): when the
//! server sent anything unasked (`revoke`, `error`, the end of the stream), that get goes to
//! the server, with a `release` of everything held in front of it, and answers what the
//! server answers (2016, 2161, or the next message when the change was undone meanwhile).
//!
//! # Guarantees
//!
//! - A client socket that closes or fails (the process died, the network cut) has its unit
//!   of work backed out (backout count + 1), its handles and locks released and its channel
//!   instance freed; a waiting MQGET notices at once. So does a connection whose server
//!   thread panics: the client gets 2009, nothing of its connection is left behind.
//!   Messages read ahead and not yet handed out are part of that unit of work and come back
//!   with backout count + 1 too: the server cannot tell whether the application had them.
//! - Read-ahead neither loses nor duplicates a message: each one fetched ahead is handed out
//!   to exactly one MQGET or released, and MQGET answers 2024, 2080, 2016 (GET(DISABLED))
//!   and 2161 (quiescing, with MQGMO_FAIL_IF_QUIESCING) at the same call as without
//!   read-ahead: a get served from the messages held sees every GET(DISABLED) and quiesce
//!   that returned before it. It does not see a message that became visible after the
//!   read-ahead and sorts before those held (a higher priority on a MSGDLVSQ(PRIORITY)
//!   queue, another consumer's backout): the held messages come first. MQ itself does not
//!   read ahead under syncpoint; `--read-ahead 0` gives MQ's order exactly.
//! - A connection the queue manager breaks (`break`, `stop`, an injected fault) while its
//!   client may still hand out messages fetched ahead keeps exactly those hidden, got by
//!   it, until the client's next request (which answers the break's reason) or until its
//!   socket closes: then those the client released come back with their backout count
//!   unchanged, the others with backout count + 1. Its application may get them meanwhile
//!   and cannot commit them, as with any unit of work a break ends, but no other consumer
//!   has them at the same time.
//! - An MQGET holds server memory for the message it returns, not for its buffer length:
//!   a get that finds nothing or waits costs nothing, however long its buffer. A buffer
//!   longer than the channel's negotiated MAXMSGL answers 2010, as in-process. A connection
//!   frees the buffers of a frame over 1 MiB (request, reply) once it has answered it.
//! - A socket without an MQ connection (no MQCONNX yet, a failed one, after MQDISC) that
//!   sends no frame for 60 s (`Server::with_unconnected_idle`) gets an `ERROR` frame and is
//!   closed; a connected one may idle without limit, as an MQ client connection may.
//! - A call in flight when the server goes away answers 2009; a silent server answers 2009
//!   after the call's deadline (the MQGET wait plus 30 s by default; an unlimited wait has
//!   none while the socket stays open). A server that cannot
//!   be reached at MQCONNX answers 2538.

mod admin;
mod ahead;
mod client;
mod connection;
pub mod protocol;
mod server;
mod watcher;

pub use admin::{AdminMessage, AdminReply, AdminRequest, BrowsedMessage, ReasonCount, Status};
pub use ahead::DEFAULT_READ_AHEAD;
pub use client::{DEFAULT_CALL_TIMEOUT, DEFAULT_CONNECT_TIMEOUT, RemoteAdmin, RemoteMqi, RemoteVerbs};
pub use server::{DEFAULT_MAX_SOCKETS, DEFAULT_UNCONNECTED_IDLE, Server, ServerHandle};
