//! The MQI verbs of the fake queue manager, in safe Rust.
//!
//! Each verb checks in the order IBM MQ does: connection, options, object, limits, then
//! acts. Every outcome (success, warning or failure) is counted per verb. MQGET's single
//! attempt is in `get.rs`, MQINQ's attributes in `inquire.rs`. The `Mqi` adapter
//! (`adapter.rs`) turns C structures into these calls; a networked fake would call them too.
//!
//! Every verb takes the fake's lock once. A message to put is allocated and time-stamped
//! before the lock is taken, so connections on other threads wait less for each other.

use std::sync::MutexGuard;
use std::time::{Duration, Instant, SystemTime};

use libmqm_sys as mq;

use super::FakeQm;
use super::config::Sharing;
use super::descriptor::{copy_padded, message_id, stamp_put_time};
use super::faults::Timing;
use super::get::{Buffer, try_get};
use super::inquire::inquire;
use super::queue::{Key, Msg, MsgState};
use super::state::{Conn, Handle, Reason, State, Target, Verb, Work};

/// What a client asks for at MQCONNX.
#[derive(Debug, Clone, Default)]
pub struct ConnectRequest {
    /// Queue manager name asked for; blank means "the one there is".
    pub qmgr_name: String,
    /// Server-connection channel; `None` is a bindings connection (no channel instance).
    pub channel: Option<String>,
    /// The client's network address, counted by MAXINSTC.
    pub client_address: String,
    /// Which client process this is: only its own connections share a channel instance.
    pub process: u64,
    /// Client-side SHARECNV (default 10); the lower of client and server applies.
    pub client_sharecnv: Option<u32>,
    /// The client channel's MaxMsgLength (from its MQCD); the lower of it and the
    /// server-connection channel's MAXMSGL applies. `None` or 0: the server's alone.
    pub client_max_msg_length: Option<u32>,
    /// User id for CONNAUTH.
    pub user: Option<String>,
    /// Password for CONNAUTH.
    pub password: Option<String>,
    /// Application name, stored in PutApplName and shown by `connections()`: its first 28
    /// characters, as MQ holds it ([`ConnectRequest::mq_appl_name`]).
    pub appl_name: String,
}

/// The longest user id or password MQCSP carries (MQ 9.3 answers 2595 past it).
pub const MAX_CSP_LENGTH: usize = 1024;

impl ConnectRequest {
    /// The application name as MQ holds it: at most 28 characters (MQCNO's ApplName), the
    /// rest cut, as IBM's clients cut a longer one.
    #[must_use]
    pub fn mq_appl_name(&self) -> &str {
        match self.appl_name.char_indices().nth(mq::MQ_APPL_NAME_LENGTH) {
            Some((end, _)) => &self.appl_name[..end],
            None => &self.appl_name,
        }
    }

    /// MQ's lengths for the MQCONNX strings, which the MQI's fixed fields and MQCSP bound.
    ///
    /// # Errors
    /// 2058 for a queue manager name over 48 characters, 2059 for a channel name over 20,
    /// 2595 (MQRC_CSP_ERROR, as MQ 9.3 answers) for a user id or password over
    /// [`MAX_CSP_LENGTH`].
    pub fn check_lengths(&self) -> Result<(), Reason> {
        let over = |s: &str, max: usize| s.chars().nth(max).is_some();
        if over(&self.qmgr_name, mq::MQ_Q_MGR_NAME_LENGTH) {
            return Err(mq::MQRC_Q_MGR_NAME_ERROR);
        }
        if self
            .channel
            .as_deref()
            .is_some_and(|c| over(c, mq::MQ_CHANNEL_NAME_LENGTH))
        {
            return Err(mq::MQRC_Q_MGR_NOT_AVAILABLE);
        }
        let credential = |s: &Option<String>| s.as_deref().is_some_and(|s| over(s, MAX_CSP_LENGTH));
        if credential(&self.user) || credential(&self.password) {
            return Err(mq::MQRC_CSP_ERROR);
        }
        Ok(())
    }
}

/// The object an MQOPEN names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    /// MQOT_Q or MQOT_Q_MGR (others get 2043).
    pub object_type: i32,
    /// Object name, blank for the queue manager.
    pub name: String,
}

/// The parts of MQGMO the fake acts on.
#[derive(Debug, Clone, Copy)]
pub struct GetOptions {
    /// MQGMO_* flags.
    pub options: i32,
    /// WaitInterval in milliseconds (MQWI_UNLIMITED = -1).
    pub wait_interval: i32,
    /// MQMO_* match options.
    pub match_options: i32,
}

impl Default for GetOptions {
    fn default() -> Self {
        Self {
            options: mq::MQGMO_NO_SYNCPOINT,
            wait_interval: 0,
            match_options: mq::MQMO_MATCH_MSG_ID | mq::MQMO_MATCH_CORREL_ID,
        }
    }
}

/// A successful or warning MQGET.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Got {
    /// The message's full length (DataLength), which may exceed what was copied.
    pub data_length: usize,
    /// 0, or a warning reason (2079, 2080, 2209).
    pub warning: i32,
}

/// One attribute returned by MQINQ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attr {
    /// An MQIA_* value.
    Int(i32),
    /// An MQCA_* value, blank-padded to `width` bytes.
    Text(String, usize),
    /// A selector valid for another type of queue (2068, a warning): MQIAV_NOT_APPLICABLE for
    /// an integer (width 0), asterisks of `width` bytes for a text. (The fake's queues are all
    /// local, so it answers none; the wire protocol still carries it.)
    NotApplicable(usize),
}

impl FakeQm {
    /// Locks the state for one call, after the configured latency; returns a failure
    /// planned for `verb` instead, when there is one, leaving the connection as that
    /// failure would (`faults.rs`).
    fn begin(&self, verb: Verb, hconn: Option<i32>) -> Result<MutexGuard<'_, State>, Reason> {
        let latency = self.latency();
        if !latency.is_zero() {
            std::thread::sleep(latency);
        }
        let mut st = self.lock();
        if let Some(reason) = st.faults.take(verb, Timing::Instead) {
            if let Some(hconn) = hconn {
                st.apply_failure(verb, hconn, reason);
            }
            return Err(st.record::<()>(verb, Err(reason), 0).unwrap_err());
        }
        Ok(st)
    }

    /// MQCONNX: connects, starting or sharing a channel instance.
    ///
    /// # Errors
    /// 2161 while quiescing, 2059 when stopped, 2540 for a channel it does not define, 2058
    /// for another queue manager's name, 2035 for bad credentials, 2025 past the connection
    /// limit, 2537 past MAXINST, MAXINSTC or MaxChannels; 2058, 2059 and 2595 for names and
    /// credentials longer than MQ's ([`ConnectRequest::check_lengths`]).
    pub fn connect(&self, req: &ConnectRequest) -> Result<i32, Reason> {
        let mut st = self.begin(Verb::Connx, None)?;
        let result = connect(&mut st, req);
        st.finish(Verb::Connx, result.ok(), result, 0)
    }

    /// MQDISC: commits the unit of work, closes every handle, ends the conversation. The
    /// connection ends whatever the answer.
    ///
    /// # Errors
    /// 2018 for an unknown connection; a broken one is removed and reports why it broke;
    /// 2003 (a warning, as MQ's) when the unit of work could not be committed and was backed
    /// out instead.
    pub fn disconnect(&self, hconn: i32) -> Result<(), Reason> {
        let mut st = self.begin(Verb::Disc, Some(hconn))?;
        let result = match st.conns.get(&hconn).map(|c| (c.broken, c.backout_only)) {
            None => Err(mq::MQRC_HCONN_ERROR),
            // What the break kept for a network client's read-ahead comes back now.
            Some((Some(reason), _)) => Err(reason),
            // The implicit commit fails: the unit of work is backed out.
            Some((None, true)) => Err(mq::MQRC_BACKED_OUT),
            Some((None, false)) => {
                st.commit_uow(hconn);
                Ok(())
            }
        };
        st.end_conn(hconn);
        st.finish(Verb::Disc, Some(hconn), result, 0)
    }

    /// MQOPEN.
    ///
    /// # Errors
    /// 2046 bad options, 2085 unknown queue, 2043/2045 wrong object type, 2017 when the
    /// connection already holds MAXHANDS handles, 2042 input-sharing conflict, 2161.
    pub fn open(&self, hconn: i32, object: &ObjectRef, options: i32) -> Result<i32, Reason> {
        let mut st = self.begin(Verb::Open, Some(hconn))?;
        let result = open(&mut st, hconn, object, options);
        st.finish(Verb::Open, Some(hconn), result, 0)
    }

    /// MQCLOSE: releases the handle's lock and open counts.
    ///
    /// # Errors
    /// 2019 for an unknown handle; connection errors.
    pub fn close(&self, hconn: i32, hobj: i32) -> Result<(), Reason> {
        let mut st = self.begin(Verb::Close, Some(hconn))?;
        let result = st
            .live(hconn)
            .and_then(|c| c.handles.contains_key(&hobj).then_some(()).ok_or(mq::MQRC_HOBJ_ERROR))
            .map(|()| {
                st.close_handle(hconn, hobj);
            });
        st.finish(Verb::Close, Some(hconn), result, 0)
    }

    /// MQPUT on an open handle; fills MsgId, PutDate and PutTime in `md`. A Priority above
    /// MaxPriority is kept in `md` and the message queued at MaxPriority: the caller reports
    /// warning 2049 ([`put_warning`]).
    ///
    /// # Errors
    /// 2039 not open for output, 2051, 2030, 2031, 2053, 2024, 2046, 2003 when the unit of
    /// work can only back out, connection errors.
    pub fn put(&self, hconn: i32, hobj: i32, md: &mut mq::MQMD, options: i32, data: &[u8]) -> Result<(), Reason> {
        let new = NewMsg::new(md, data);
        let mut st = self.begin(Verb::Put, Some(hconn))?;
        let result = st.live(hconn).and_then(|conn| {
            conn.check_buffer(data.len())?;
            let handle = conn.handles.get(&hobj).ok_or(mq::MQRC_HOBJ_ERROR)?;
            match handle.target {
                Target::Queue(q) if handle.options & mq::MQOO_OUTPUT != 0 => Ok(q),
                _ => Err(mq::MQRC_NOT_OPEN_FOR_OUTPUT),
            }
        });
        let result = result.and_then(|q| put_on(&mut st, hconn, q, md, options, new).map(drop));
        let warning = result.map_or(0, |()| put_warning(md));
        st.finish(Verb::Put, Some(hconn), result, warning)
    }

    /// MQPUT1: open, put and close in one call. The handle counts against MAXHANDS while the
    /// call runs.
    ///
    /// # Errors
    /// As [`FakeQm::open`] and [`FakeQm::put`].
    pub fn put1(
        &self,
        hconn: i32,
        object: &ObjectRef,
        md: &mut mq::MQMD,
        options: i32,
        data: &[u8],
    ) -> Result<(), Reason> {
        let new = NewMsg::new(md, data);
        let mut st = self.begin(Verb::Put1, Some(hconn))?;
        let result = put1(&mut st, hconn, object, md, options, new);
        let warning = result.map_or(0, |()| put_warning(md));
        st.finish(Verb::Put1, Some(hconn), result, warning)
    }

    /// MQGET, waiting up to the wait interval without holding the state lock.
    ///
    /// # Errors
    /// 2033 nothing to get, 2034 nothing under the cursor, 2016 get inhibited, 2024, 2036,
    /// 2037, 2046, 2090, 2161, and connection errors (2009, 2162) that also cancel a wait.
    pub fn get(
        &self,
        hconn: i32,
        hobj: i32,
        md: &mut mq::MQMD,
        gmo: &GetOptions,
        buffer: &mut [u8],
    ) -> Result<Got, Reason> {
        self.get_into(hconn, hobj, md, gmo, buffer)
    }

    /// [`FakeQm::get`] into any [`Buffer`] (the network server's grows to the message).
    pub(crate) fn get_into<B: Buffer + ?Sized>(
        &self,
        hconn: i32,
        hobj: i32,
        md: &mut mq::MQMD,
        gmo: &GetOptions,
        buffer: &mut B,
    ) -> Result<Got, Reason> {
        let mut st = self.begin(Verb::Get, Some(hconn))?;
        let wait = gmo.options & mq::MQGMO_WAIT != 0;
        let deadline = (wait && gmo.wait_interval >= 0)
            .then(|| Instant::now() + Duration::from_millis(gmo.wait_interval.unsigned_abs().into()));
        let result = loop {
            let (q, outcome) = match try_get(&mut st, hconn, hobj, md, gmo, buffer) {
                Ok((_, Some(got))) => break Ok(got),
                Ok((q, None)) => (q, mq::MQRC_NO_MSG_AVAILABLE),
                Err(reason) => break Err(reason),
            };
            let remaining = match deadline {
                _ if !wait => break Err(outcome),
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(r) if !r.is_zero() => r,
                    _ => break Err(outcome),
                },
                None => Duration::from_secs(3600),
            };
            let cv = std::sync::Arc::clone(&st.queues[q].cv);
            st.queues[q].waiters += 1;
            st = cv
                .wait_timeout(st, remaining)
                .map_or_else(|p| p.into_inner().0, |(g, _)| g);
            st.queues[q].waiters -= 1;
        };
        let warning = result.map_or(0, |g| g.warning);
        st.finish(Verb::Get, Some(hconn), result, warning)
    }

    /// MQINQ.
    ///
    /// # Errors
    /// 2038 not open for inquire, 2067 a selector that is not one of the object's attributes.
    pub fn inquire(&self, hconn: i32, hobj: i32, selectors: &[i32]) -> Result<Vec<Attr>, Reason> {
        let mut st = self.begin(Verb::Inq, Some(hconn))?;
        let result = inquire(&mut st, hconn, hobj, selectors);
        st.finish(Verb::Inq, Some(hconn), result, 0)
    }

    /// MQCMIT: got messages are removed, put messages become visible.
    ///
    /// # Errors
    /// Connection errors; 2003 (which the adapter reports as a warning, as MQ does) when
    /// the unit of work could not be committed and was backed out instead.
    pub fn commit(&self, hconn: i32) -> Result<(), Reason> {
        let mut st = self.begin(Verb::Cmit, Some(hconn))?;
        let result = st.live(hconn).map(|c| c.backout_only).and_then(|backout_only| {
            if backout_only {
                st.backout_uow(hconn);
                Err(mq::MQRC_BACKED_OUT)
            } else {
                st.commit_uow(hconn);
                Ok(())
            }
        });
        st.finish(Verb::Cmit, Some(hconn), result, 0)
    }

    /// MQBACK: got messages return with BackoutCount + 1, put messages vanish.
    ///
    /// # Errors
    /// Connection errors.
    pub fn backout(&self, hconn: i32) -> Result<(), Reason> {
        let mut st = self.begin(Verb::Back, Some(hconn))?;
        let result = st.live(hconn).map(|_| ());
        if result.is_ok() {
            st.backout_uow(hconn);
        }
        st.finish(Verb::Back, Some(hconn), result, 0)
    }

    /// Any verb the fake does not implement: 2298, counted.
    pub fn unsupported(&self) -> Reason {
        let mut st = self.lock();
        st.record::<()>(Verb::Other, Err(mq::MQRC_FUNCTION_NOT_SUPPORTED), 0)
            .unwrap_err()
    }
}

fn connect(st: &mut State, req: &ConnectRequest) -> Result<i32, Reason> {
    match st.status {
        super::QmgrStatus::Quiescing => return Err(mq::MQRC_Q_MGR_QUIESCING),
        super::QmgrStatus::Stopped => return Err(mq::MQRC_Q_MGR_NOT_AVAILABLE),
        super::QmgrStatus::Running => {}
    }
    req.check_lengths()?;
    let name = req.qmgr_name.trim();
    if !name.is_empty() && name != st.def.name && !name.starts_with('*') {
        return Err(mq::MQRC_Q_MGR_NAME_ERROR);
    }
    // The channel instance starts (or a conversation joins one) before the connection is
    // authenticated, as in MQ: an unknown or full channel answers 2540 or 2537 whatever the
    // credentials, and a refused connection ends its conversation again.
    let channel = match &req.channel {
        Some(name) => {
            let instance = st.join_channel(
                name,
                req.process,
                &req.client_address,
                req.client_sharecnv.unwrap_or(10),
            )?;
            Some((name.clone(), instance))
        }
        None => None,
    };
    if let Err(reason) = admit(st, req) {
        if let Some((name, instance)) = &channel {
            st.leave_channel(name, *instance);
        }
        return Err(reason);
    }
    let max_msg_length = channel
        .as_ref()
        .map(|(name, _)| negotiated_max_msg_length(st, name, req));
    let hconn = next_free(&mut st.next_hconn, |h| st.conns.contains_key(&h));
    st.conns.insert(
        hconn,
        Conn {
            process: req.process,
            client_address: req.client_address.clone(),
            appl_name: req.mq_appl_name().to_owned(),
            channel,
            max_msg_length,
            handles: rustc_hash::FxHashMap::default(),
            next_hobj: 1,
            peak_handles: 0,
            uow: Vec::new(),
            ahead: Vec::new(),
            broken: None,
            backout_only: false,
        },
    );
    st.peak_connections = st.peak_connections.max(st.live_count());
    Ok(hconn)
}

const INPUT_OPTIONS: i32 = mq::MQOO_INPUT_AS_Q_DEF | mq::MQOO_INPUT_SHARED | mq::MQOO_INPUT_EXCLUSIVE;
const ACCESS_OPTIONS: i32 = INPUT_OPTIONS | mq::MQOO_BROWSE | mq::MQOO_OUTPUT | mq::MQOO_INQUIRE | mq::MQOO_SET;

/// Resolves the object an open or put1 names.
/// The next handle number from `next` that is not in use, going round to 1 after
/// `i32::MAX`: a long-lived process opens more than 2^31 times, and MQ reuses handle values
/// too (0 and the negative ones are MQ's special values, never handed out).
fn next_free(next: &mut i32, in_use: impl Fn(i32) -> bool) -> i32 {
    loop {
        let candidate = *next;
        *next = if candidate == i32::MAX { 1 } else { candidate + 1 };
        if !in_use(candidate) {
            return candidate;
        }
    }
}

/// CONNAUTH and the connection limit: 2035, 2025.
fn admit(st: &State, req: &ConnectRequest) -> Result<(), Reason> {
    if !st.def.users.is_empty() {
        let ok = st.def.users.iter().any(|u| {
            Some(u.name.as_str()) == req.user.as_deref() && Some(u.password.as_str()) == req.password.as_deref()
        });
        if !ok {
            return Err(mq::MQRC_NOT_AUTHORIZED);
        }
    }
    if st
        .def
        .max_connections
        .is_some_and(|max| st.live_count() >= max as usize)
    {
        return Err(mq::MQRC_MAX_CONNS_LIMIT_REACHED);
    }
    Ok(())
}

/// The lower of the server-connection channel's MAXMSGL (0: the queue manager's) and the
/// client's MaxMsgLength (0 or absent: no lower).
fn negotiated_max_msg_length(st: &State, channel: &str, req: &ConnectRequest) -> usize {
    let server = st
        .channels
        .iter()
        .find(|c| c.def.name == channel)
        .map_or(0, |c| c.def.max_msg_length);
    let server = if server > 0 { server } else { st.def.max_msg_length };
    let server = usize::try_from(server).unwrap_or(0);
    match req.client_max_msg_length.filter(|&n| n > 0) {
        Some(client) => server.min(client as usize),
        None => server,
    }
}

fn resolve(st: &State, object: &ObjectRef, options: i32) -> Result<Target, Reason> {
    let name = object.name.trim();
    match object.object_type {
        mq::MQOT_Q => st
            .queue_index
            .get(name)
            .map(|&q| Target::Queue(q))
            .ok_or(mq::MQRC_UNKNOWN_OBJECT_NAME),
        mq::MQOT_Q_MGR if !name.is_empty() && name != st.def.name => Err(mq::MQRC_UNKNOWN_OBJECT_NAME),
        mq::MQOT_Q_MGR if options & (INPUT_OPTIONS | mq::MQOO_BROWSE | mq::MQOO_OUTPUT) != 0 => {
            Err(mq::MQRC_OPTION_NOT_VALID_FOR_TYPE)
        }
        mq::MQOT_Q_MGR => Ok(Target::QueueManager),
        _ => Err(mq::MQRC_OBJECT_TYPE_ERROR),
    }
}

fn open(st: &mut State, hconn: i32, object: &ObjectRef, options: i32) -> Result<i32, Reason> {
    st.live(hconn)?;
    st.check_quiescing(options & mq::MQOO_FAIL_IF_QUIESCING != 0)?;
    if (options & INPUT_OPTIONS).count_ones() > 1 || options & ACCESS_OPTIONS == 0 {
        return Err(mq::MQRC_OPTIONS_ERROR);
    }
    let target = resolve(st, object, options)?;
    if matches!(target, Target::QueueManager) && options & mq::MQOO_INQUIRE != 0 && !st.def.qmgr_inquire {
        return Err(mq::MQRC_NOT_AUTHORIZED);
    }
    let max_handles = usize::try_from(st.def.max_handles).unwrap_or(0);
    if st.conns[&hconn].handles.len() >= max_handles {
        return Err(mq::MQRC_HANDLE_NOT_AVAILABLE);
    }
    let mut input = None;
    if let Target::Queue(q) = target {
        let queue = &mut st.queues[q];
        if options & INPUT_OPTIONS != 0 {
            let asked = if options & mq::MQOO_INPUT_SHARED != 0 {
                Sharing::Shared
            } else if options & mq::MQOO_INPUT_EXCLUSIVE != 0 {
                Sharing::Exclusive
            } else {
                queue.def.default_share
            };
            let mode = if queue.def.share == Sharing::Exclusive {
                Sharing::Exclusive
            } else {
                asked
            };
            let conflict = match mode {
                Sharing::Shared => queue.exclusive_inputs > 0,
                Sharing::Exclusive => queue.ipprocs > 0,
            };
            if conflict {
                return Err(mq::MQRC_OBJECT_IN_USE);
            }
            queue.ipprocs += 1;
            if mode == Sharing::Exclusive {
                queue.exclusive_inputs += 1;
            }
            input = Some(mode);
        }
        if options & mq::MQOO_OUTPUT != 0 {
            queue.opprocs += 1;
        }
    }
    let conn = st.conns.get_mut(&hconn).expect("checked live above");
    let hobj = next_free(&mut conn.next_hobj, |h| conn.handles.contains_key(&h));
    conn.handles.insert(
        hobj,
        Handle {
            target,
            options,
            input,
            cursor: None,
            locked: None,
        },
    );
    conn.peak_handles = conn.peak_handles.max(conn.handles.len());
    Ok(hobj)
}

fn put1(
    st: &mut State,
    hconn: i32,
    object: &ObjectRef,
    md: &mut mq::MQMD,
    options: i32,
    new: NewMsg,
) -> Result<(), Reason> {
    st.live(hconn)?.check_buffer(new.len())?;
    st.check_quiescing(options & mq::MQPMO_FAIL_IF_QUIESCING != 0)?;
    let target = resolve(st, object, mq::MQOO_OUTPUT)?;
    let max_handles = usize::try_from(st.def.max_handles).unwrap_or(0);
    let conn = st.conns.get_mut(&hconn).expect("checked live above");
    if conn.handles.len() >= max_handles {
        return Err(mq::MQRC_HANDLE_NOT_AVAILABLE);
    }
    conn.peak_handles = conn.peak_handles.max(conn.handles.len() + 1);
    let Target::Queue(q) = target else {
        return Err(mq::MQRC_OBJECT_TYPE_ERROR);
    };
    put_on(st, hconn, q, md, options, new).map(drop)
}

/// MQ's MaxPriority (MQIA_MAX_PRIORITY) on every platform but z/OS.
pub(crate) const MAX_PRIORITY: i32 = 9;

/// The warning of a put that succeeded with descriptor `md` (as MQPUT returns it): 2049
/// when its Priority exceeds MaxPriority, else 0.
pub(crate) const fn put_warning(md: &mq::MQMD) -> Reason {
    if md.Priority > MAX_PRIORITY {
        mq::MQRC_PRIORITY_EXCEEDS_MAXIMUM
    } else {
        mq::MQRC_NONE
    }
}

/// A message to put, allocated (descriptor and payload copied) and time-stamped before the
/// lock is taken, so that a put holds the lock only to check, number and insert it. Its
/// PutDate and PutTime are read a moment before the lock, as a real queue manager reads them
/// at some point of the call.
pub(super) struct NewMsg(Box<Msg>);

impl NewMsg {
    pub(super) fn new(md: &mq::MQMD, data: &[u8]) -> Self {
        let now = SystemTime::now();
        let mut md = *md;
        stamp_put_time(&mut md, now);
        Self(Box::new(Msg {
            md,
            data: data.to_vec(),
            state: MsgState::Visible,
            arrived: now,
        }))
    }

    /// The payload's length.
    pub(super) fn len(&self) -> usize {
        self.0.data.len()
    }
}

/// Puts `new` on queue `q` for connection `hconn` (or the admin API when 0); `out` gets its
/// descriptor as MQPUT returns it (MsgId, PutDate, PutTime, resolved priority and persistence).
/// Returns where the message sits in its queue.
pub(super) fn put_on(
    st: &mut State,
    hconn: i32,
    q: usize,
    out: &mut mq::MQMD,
    options: i32,
    new: NewMsg,
) -> Result<Key, Reason> {
    let NewMsg(mut msg) = new;
    let data_len = msg.data.len();
    let md = &mut msg.md;
    if hconn != 0 {
        st.check_quiescing(options & mq::MQPMO_FAIL_IF_QUIESCING != 0)?;
    }
    let syncpoint = options & mq::MQPMO_SYNCPOINT != 0;
    if syncpoint && options & mq::MQPMO_NO_SYNCPOINT != 0 {
        return Err(mq::MQRC_OPTIONS_ERROR);
    }
    if syncpoint && st.conns.get(&hconn).is_some_and(|c| c.backout_only) {
        return Err(mq::MQRC_BACKED_OUT);
    }
    let queue = &st.queues[q];
    if !queue.def.put_enabled {
        return Err(mq::MQRC_PUT_INHIBITED);
    }
    let len = i64::try_from(data_len).unwrap_or(i64::MAX);
    if len > i64::from(queue.def.max_msg_length) {
        return Err(mq::MQRC_MSG_TOO_BIG_FOR_Q);
    }
    if len > i64::from(st.def.max_msg_length) {
        return Err(mq::MQRC_MSG_TOO_BIG_FOR_Q_MGR);
    }
    if queue.depth() >= queue.def.max_depth {
        return Err(mq::MQRC_Q_FULL);
    }
    if syncpoint && st.conns[&hconn].uow.len() >= usize::try_from(st.def.max_uncommitted).unwrap_or(0) {
        return Err(mq::MQRC_SYNCPOINT_LIMIT_REACHED);
    }
    // Above MaxPriority the message is queued at it (`Queue::key_for`) and keeps the
    // Priority asked for, as in MQ.
    md.Priority = match md.Priority {
        mq::MQPRI_PRIORITY_AS_Q_DEF => queue.def.default_priority,
        p if p < 0 => return Err(mq::MQRC_PRIORITY_ERROR),
        p => p,
    };
    md.Persistence = match md.Persistence {
        mq::MQPER_PERSISTENCE_AS_Q_DEF => i32::from(queue.def.default_persistent),
        p @ (mq::MQPER_NOT_PERSISTENT | mq::MQPER_PERSISTENT) => p,
        _ => return Err(mq::MQRC_PERSISTENCE_ERROR),
    };
    let seq = st.next_seq;
    st.next_seq += 1;
    let unique = st.msg_id_base.wrapping_add(seq);
    if options & mq::MQPMO_NEW_MSG_ID != 0 || md.MsgId == [0; 24] {
        md.MsgId = message_id(&st.def.name, unique);
    }
    if options & mq::MQPMO_NEW_CORREL_ID != 0 {
        md.CorrelId = message_id(&st.def.name, unique);
    }
    md.BackoutCount = 0;
    if let Some(conn) = st.conns.get(&hconn) {
        copy_padded(&mut md.PutApplName, &conn.appl_name);
    }
    let queue = &mut st.queues[q];
    let key = queue.key_for(md.Priority, seq);
    *out = *md;
    if syncpoint {
        msg.state = MsgState::PutPending(hconn);
    }
    queue.insert(key, msg);
    if syncpoint {
        queue.uncommitted += 1;
        st.conns
            .get_mut(&hconn)
            .expect("checked live")
            .uow
            .push(Work::Put(q, key));
    } else {
        queue.wake();
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::{FakeConfig, QueueDef};

    #[test]
    fn handle_numbers_go_round_to_1_and_skip_those_in_use() {
        let mut config = FakeConfig::default();
        config.queues.push(QueueDef::new("Q"));
        let qm = FakeQm::new(config);
        let hconn = qm.connect(&ConnectRequest::default()).expect("connect");
        let q = ObjectRef {
            object_type: mq::MQOT_Q,
            name: "Q".into(),
        };
        let first = qm.open(hconn, &q, mq::MQOO_OUTPUT).expect("open");
        assert_eq!(first, 1);
        qm.lock().conns.get_mut(&hconn).expect("conn").next_hobj = i32::MAX;
        assert_eq!(qm.open(hconn, &q, mq::MQOO_OUTPUT), Ok(i32::MAX));
        assert_eq!(qm.open(hconn, &q, mq::MQOO_OUTPUT), Ok(2), "1 is still open");
        qm.close(hconn, first).expect("close");
        qm.lock().conns.get_mut(&hconn).expect("conn").next_hobj = i32::MAX;
        assert_eq!(
            qm.open(hconn, &q, mq::MQOO_OUTPUT),
            Ok(1),
            "i32::MAX is open, 1 is free again"
        );
        qm.lock().next_hconn = i32::MAX;
        assert_eq!(qm.connect(&ConnectRequest::default()), Ok(i32::MAX));
        let next = qm.connect(&ConnectRequest::default()).expect("connect");
        assert!(next > 0 && next != hconn, "{next}");
    }
}
