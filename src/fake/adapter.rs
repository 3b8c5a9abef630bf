//! The fake queue manager behind `libmqm_sys::Mqi`: C structures in, safe calls out.
//!
//! This is the only file of the fake with `unsafe`. Each verb reads the caller's structures
//! (MQCNO with its MQCD and MQCSP, MQOD, MQMD version 1 or 2, MQGMO, MQPMO, MQINQ arrays),
//! calls a safe verb ([`Verbs`]) and writes results back with the completion and reason
//! codes MQ would set. The verbs run either on an in-process [`FakeQm`] ([`FakeMqi`]) or on
//! a `mqpilot fake-qm` server over TCP (`net::RemoteMqi`): the translation is the same.
//! Verbs the fake does not implement answer MQCC_FAILED with 2298.

use std::ffi::c_void;
use std::mem::size_of;
use std::ptr;

use libmqm_sys as mq;

use super::mqi_verbs::Verbs;
use super::verbs::{Attr, ConnectRequest, GetOptions, ObjectRef, put_warning};
use super::{FakeQm, default_md};

/// One client process's MQI library (`mqi::Library`) over some [`Verbs`]: its connections
/// carry this process's client address and share channel instances only with each other.
#[derive(Clone)]
pub struct MqiAdapter<V> {
    qm: V,
    process: u64,
    client_address: String,
    default_channel: Option<String>,
}

/// The in-process fake as an MQI library. Make one with [`FakeQm::library`].
pub type FakeMqi = MqiAdapter<FakeQm>;

impl<V> std::fmt::Debug for MqiAdapter<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqiAdapter")
            .field("process", &self.process)
            .field("client_address", &self.client_address)
            .finish_non_exhaustive()
    }
}

impl<V> MqiAdapter<V> {
    pub(super) const fn new(qm: V, process: u64, client_address: String) -> Self {
        Self {
            qm,
            process,
            client_address,
            default_channel: None,
        }
    }

    /// The channel used when MQCONNX names none (like an MQSERVER default). Default: none,
    /// which makes a bindings connection that uses no channel instance.
    #[must_use]
    pub fn with_default_channel(mut self, channel: impl Into<String>) -> Self {
        self.default_channel = Some(channel.into());
        self
    }

    /// The verbs behind this library.
    #[must_use]
    pub const fn verbs(&self) -> &V {
        &self.qm
    }
}

impl MqiAdapter<FakeQm> {
    /// The queue manager behind this library.
    #[must_use]
    pub const fn queue_manager(&self) -> &FakeQm {
        &self.qm
    }
}

/// MQMD (version 2) as the bytes the network protocol carries.
pub(crate) fn md_to_bytes(md: &mq::MQMD) -> &[u8] {
    // SAFETY: MQMD is a C structure of MQLONGs and byte arrays whose sizes are multiples of
    // four, so it has no padding and every byte is initialised; the slice borrows `md`.
    unsafe { std::slice::from_raw_parts(ptr::from_ref(md).cast::<u8>(), size_of::<mq::MQMD>()) }
}

/// An MQMD from the network protocol's bytes; `None` unless exactly one MQMD long.
pub(crate) fn md_from_bytes(bytes: &[u8]) -> Option<mq::MQMD> {
    if bytes.len() != size_of::<mq::MQMD>() {
        return None;
    }
    let mut md = default_md();
    // SAFETY: the lengths match (checked above) and every bit pattern is a valid MQMD (it
    // holds only integers and byte arrays).
    unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), ptr::from_mut(&mut md).cast::<u8>(), bytes.len()) };
    Some(md)
}

impl<V: Verbs> mqi::Library for MqiAdapter<V> {
    type MQ = Self;

    fn lib(&self) -> &Self::MQ {
        self
    }
}

fn set(cc: &mut mq::MQLONG, rc: &mut mq::MQLONG, reason: i32) {
    *rc = reason;
    *cc = match reason {
        mq::MQRC_NONE => mq::MQCC_OK,
        mq::MQRC_TRUNCATED_MSG_ACCEPTED
        | mq::MQRC_TRUNCATED_MSG_FAILED
        | mq::MQRC_NO_MSG_LOCKED
        | mq::MQRC_CHAR_ATTRS_TOO_SHORT
        | mq::MQRC_INT_ATTR_COUNT_TOO_SMALL
        | mq::MQRC_SELECTOR_NOT_FOR_TYPE
        | mq::MQRC_PRIORITY_EXCEEDS_MAXIMUM => mq::MQCC_WARNING,
        _ => mq::MQCC_FAILED,
    };
}

fn outcome(cc: &mut mq::MQLONG, rc: &mut mq::MQLONG, result: Result<(), i32>) {
    set(cc, rc, result.err().unwrap_or(mq::MQRC_NONE));
}

/// MQCMIT's and MQDISC's outcome: their 2003 (the unit of work was backed out instead of
/// committed) comes with MQCC_WARNING, as MQ reports it; on MQGET or MQPUT it is a failure.
fn syncpoint_outcome(cc: &mut mq::MQLONG, rc: &mut mq::MQLONG, result: Result<(), i32>) {
    outcome(cc, rc, result);
    if *rc == mq::MQRC_BACKED_OUT {
        *cc = mq::MQCC_WARNING;
    }
}

/// A blank-padded MQCHAR field as a trimmed string.
fn text(field: &[mq::MQCHAR]) -> String {
    // MQCHAR is a C char: reinterpret each byte.
    let bytes: Vec<u8> = field.iter().map(|&c| c as u8).take_while(|&b| b != 0).collect();
    String::from_utf8_lossy(&bytes).trim_end().to_owned()
}

/// Where a structure is: at `ptr` when that is set (MQ prefers the pointer), else at
/// `base + offset`; `None` when neither is. Only a pointer: a caller may pass an older,
/// shorter version of the structure, so fields are read one by one, each only when the
/// structure's `Version` says it has it (see [`field`]).
fn linked<T>(base: *const c_void, ptr: *const c_void, offset: mq::MQLONG) -> Option<*const T> {
    if !ptr.is_null() {
        return Some(ptr.cast());
    }
    if offset == 0 {
        return None;
    }
    Some(base.cast::<u8>().wrapping_offset(offset as isize).cast())
}

/// Reads one field of a structure given by pointer.
///
/// # Safety
/// `field` must point into a structure the caller passed, within the part its `Version`
/// covers.
unsafe fn field<F: Copy>(field: *const F) -> F {
    // SAFETY: the caller's promise; structures from C need not be aligned for Rust.
    unsafe { field.read_unaligned() }
}

/// Bytes at `base + offset` (or `ptr`), `len` long.
///
/// # Safety
/// As [`linked`], for `len` bytes.
unsafe fn linked_str(base: *const c_void, ptr: *const c_void, offset: mq::MQLONG, len: mq::MQLONG) -> Option<String> {
    let len = usize::try_from(len).ok().filter(|&l| l > 0)?;
    let start: *const u8 = if ptr.is_null() {
        if offset == 0 {
            return None;
        }
        // SAFETY: the caller promises base + offset is valid for len bytes.
        unsafe { base.cast::<u8>().offset(offset as isize) }
    } else {
        ptr.cast()
    };
    // SAFETY: as above.
    let bytes = unsafe { std::slice::from_raw_parts(start, len) };
    Some(String::from_utf8_lossy(bytes).into_owned())
}

impl<V> MqiAdapter<V> {
    /// Builds the connect request from MQCNO and the structures it points at.
    ///
    /// # Safety
    /// `cno` and every structure its offsets or pointers name must be valid.
    unsafe fn connect_request(&self, qmgr: &mq::MQCHAR48, cno: &mq::MQCNO) -> ConnectRequest {
        let base = ptr::from_ref(cno).cast::<c_void>();
        let mut req = ConnectRequest {
            qmgr_name: text(qmgr),
            channel: self.default_channel.clone(),
            client_address: self.client_address.clone(),
            process: self.process,
            appl_name: if cno.Version >= mq::MQCNO_VERSION_7 {
                text(&cno.ApplName)
            } else {
                String::new()
            },
            ..ConnectRequest::default()
        };
        if cno.Version >= mq::MQCNO_VERSION_2
            && let Some(cd) = linked::<mq::MQCD>(base, cno.ClientConnPtr, cno.ClientConnOffset)
        {
            // SAFETY: mqi sets ClientConnOffset (or ClientConnPtr) to an MQCD it built; Version,
            // ChannelName and MaxMsgLength are in every version, the other fields only from the versions
            // checked before each read.
            unsafe {
                let version = field(&raw const (*cd).Version);
                req.channel = Some(text(&field(&raw const (*cd).ChannelName)));
                req.client_max_msg_length = u32::try_from(field(&raw const (*cd).MaxMsgLength)).ok();
                if version >= mq::MQCD_VERSION_10 {
                    req.client_sharecnv = u32::try_from(field(&raw const (*cd).SharingConversations)).ok();
                }
                if version >= mq::MQCD_VERSION_7 {
                    let local = text(&field(&raw const (*cd).LocalAddress));
                    if !local.is_empty() {
                        req.client_address = local;
                    }
                }
            }
        }
        if cno.Version >= mq::MQCNO_VERSION_5
            && let Some(csp) = linked::<mq::MQCSP>(base, cno.SecurityParmsPtr.cast(), cno.SecurityParmsOffset)
        {
            let csp_base = csp.cast::<c_void>();
            // SAFETY: as above, for the MQCSP: the user and password fields are in version 1;
            // their offsets are relative to the MQCSP.
            unsafe {
                req.user = linked_str(
                    csp_base,
                    field(&raw const (*csp).CSPUserIdPtr).cast_const(),
                    field(&raw const (*csp).CSPUserIdOffset),
                    field(&raw const (*csp).CSPUserIdLength),
                );
                req.password = linked_str(
                    csp_base,
                    field(&raw const (*csp).CSPPasswordPtr).cast_const(),
                    field(&raw const (*csp).CSPPasswordOffset),
                    field(&raw const (*csp).CSPPasswordLength),
                );
            }
        }
        req
    }
}

/// Reads an MQMD of version 1 or 2 into a full MQMD.
///
/// # Safety
/// `md` must point at an MQMD1 or, when its Version is 2, an MQMD.
unsafe fn read_md(md: *const c_void) -> Result<mq::MQMD, i32> {
    if md.is_null() {
        return Err(mq::MQRC_MD_ERROR);
    }
    let mut full = default_md();
    // SAFETY: every MQMD version starts with StrucId and Version, as MQMD1.
    let head = unsafe { &*md.cast::<mq::MQMD1>() };
    if head.StrucId != full.StrucId || !(1..=2).contains(&head.Version) {
        return Err(mq::MQRC_MD_ERROR);
    }
    let len = if head.Version >= 2 {
        size_of::<mq::MQMD>()
    } else {
        size_of::<mq::MQMD1>()
    };
    // SAFETY: `len` is the caller's structure size for its version; MQMD1 is a prefix of MQMD.
    unsafe { ptr::copy_nonoverlapping(md.cast::<u8>(), ptr::from_mut(&mut full).cast::<u8>(), len) };
    Ok(full)
}

/// Writes a full MQMD back into the caller's version-1 or -2 structure, keeping its Version.
///
/// # Safety
/// As [`read_md`], and writable.
unsafe fn write_md(md: *mut c_void, value: &mq::MQMD) {
    let head = md.cast::<mq::MQMD1>();
    // SAFETY: read_md has already checked the header.
    let version = unsafe { (*head).Version };
    let len = if version >= 2 {
        size_of::<mq::MQMD>()
    } else {
        size_of::<mq::MQMD1>()
    };
    // SAFETY: `len` bytes of the caller's structure are writable, and Version sits at the
    // same place in every MQMD version.
    unsafe {
        ptr::copy_nonoverlapping(ptr::from_ref(value).cast::<u8>(), md.cast::<u8>(), len);
        (*head).Version = version;
    }
}

/// A caller's buffer as a slice (empty when zero length); a null pointer with a length is
/// 2004, as MQ answers.
///
/// # Safety
/// `buffer` must be valid for `len` bytes.
unsafe fn buffer<'a>(buffer: mq::PMQVOID, len: mq::MQLONG) -> Result<&'a mut [u8], i32> {
    let len = usize::try_from(len).map_err(|_| mq::MQRC_BUFFER_LENGTH_ERROR)?;
    if len == 0 {
        return Ok(&mut []);
    }
    if buffer.is_null() {
        return Err(mq::MQRC_BUFFER_ERROR);
    }
    // SAFETY: the caller promises `len` valid bytes.
    Ok(unsafe { std::slice::from_raw_parts_mut(buffer.cast::<u8>(), len) })
}

/// A caller's read-only buffer (MQPUT data) as a shared slice: the caller may have derived
/// the pointer from a `&[u8]`, so no `&mut` may be made over it.
///
/// # Safety
/// `buffer` must be valid for reads of `len` bytes.
unsafe fn buffer_ref<'a>(buffer: mq::PMQVOID, len: mq::MQLONG) -> Result<&'a [u8], i32> {
    let len = usize::try_from(len).map_err(|_| mq::MQRC_BUFFER_LENGTH_ERROR)?;
    if len == 0 {
        return Ok(&[]);
    }
    if buffer.is_null() {
        return Err(mq::MQRC_BUFFER_ERROR);
    }
    // SAFETY: the caller promises `len` readable bytes; the slice is only read.
    Ok(unsafe { std::slice::from_raw_parts(buffer.cast::<u8>().cast_const(), len) })
}

fn object_ref(od: &mq::MQOD) -> ObjectRef {
    ObjectRef {
        object_type: od.ObjectType,
        name: text(&od.ObjectName),
    }
}

/// Lays MQINQ answers out as MQ does: integers in selector order, then texts concatenated.
fn lay_out(attrs: &[Attr], ints: &mut [mq::MQLONG], chars: &mut [u8]) -> i32 {
    let (mut i, mut c, mut warning) = (0, 0, mq::MQRC_NONE);
    for attr in attrs {
        match attr {
            Attr::Int(v) if i < ints.len() => {
                ints[i] = *v;
                i += 1;
            }
            Attr::Int(_) => warning = mq::MQRC_INT_ATTR_COUNT_TOO_SMALL,
            Attr::NotApplicable(0) => {
                if i < ints.len() {
                    ints[i] = mq::MQIAV_NOT_APPLICABLE;
                    i += 1;
                }
                warning = mq::MQRC_SELECTOR_NOT_FOR_TYPE;
            }
            Attr::NotApplicable(width) => {
                let end = (c + width).min(chars.len());
                chars[c.min(end)..end].fill(b'*');
                c += width;
                warning = mq::MQRC_SELECTOR_NOT_FOR_TYPE;
            }
            Attr::Text(s, width) => {
                let bytes = s.as_bytes();
                for k in 0..*width {
                    if c + k >= chars.len() {
                        warning = mq::MQRC_CHAR_ATTRS_TOO_SHORT;
                        break;
                    }
                    chars[c + k] = bytes.get(k).copied().unwrap_or(b' ');
                }
                c += width;
            }
        }
    }
    warning
}

#[allow(non_snake_case, clippy::too_many_arguments)]
impl<V: Verbs> mq::Mqi for MqiAdapter<V> {
    unsafe fn MQBACK(&self, Hconn: mq::MQHCONN, CompCode: &mut mq::MQLONG, Reason: &mut mq::MQLONG) {
        outcome(CompCode, Reason, self.qm.backout(Hconn));
    }

    unsafe fn MQBEGIN(&self, _: mq::MQHCONN, _: Option<&mut mq::MQBO>, cc: &mut mq::MQLONG, rc: &mut mq::MQLONG) {
        set(cc, rc, self.qm.unsupported());
    }

    unsafe fn MQBUFMH(
        &self,
        _: mq::MQHCONN,
        _: mq::MQHMSG,
        _: &mq::MQBMHO,
        _: mq::PMQVOID,
        _: mq::MQLONG,
        _: mq::PMQVOID,
        _: &mut mq::MQLONG,
        cc: &mut mq::MQLONG,
        rc: &mut mq::MQLONG,
    ) {
        set(cc, rc, self.qm.unsupported());
    }

    unsafe fn MQCB(
        &self,
        _: mq::MQHCONN,
        _: mq::MQLONG,
        _: Option<&mq::MQCBD>,
        _: mq::MQHOBJ,
        _: mq::PMQVOID,
        _: Option<&mq::MQGMO>,
        cc: &mut mq::MQLONG,
        rc: &mut mq::MQLONG,
    ) {
        set(cc, rc, self.qm.unsupported());
    }

    unsafe fn MQCLOSE(
        &self,
        Hconn: mq::MQHCONN,
        Hobj: &mut mq::MQHOBJ,
        _Options: mq::MQLONG,
        CompCode: &mut mq::MQLONG,
        Reason: &mut mq::MQLONG,
    ) {
        let result = self.qm.close(Hconn, *Hobj);
        if result.is_ok() {
            *Hobj = mq::MQHO_UNUSABLE_HOBJ;
        }
        outcome(CompCode, Reason, result);
    }

    unsafe fn MQCMIT(&self, Hconn: mq::MQHCONN, CompCode: &mut mq::MQLONG, Reason: &mut mq::MQLONG) {
        syncpoint_outcome(CompCode, Reason, self.qm.commit(Hconn));
    }

    unsafe fn MQCONN(
        &self,
        QMgrName: &mq::MQCHAR48,
        Hconn: &mut mq::MQHCONN,
        CompCode: &mut mq::MQLONG,
        Reason: &mut mq::MQLONG,
    ) {
        let mut cno = libmqm_default::MQCNO_DEFAULT;
        // SAFETY: a default MQCNO names no other structure.
        unsafe { self.MQCONNX(QMgrName, &mut cno, Hconn, CompCode, Reason) };
    }

    unsafe fn MQCONNX(
        &self,
        QMgrName: &mq::MQCHAR48,
        ConnectOpts: &mut mq::MQCNO,
        Hconn: &mut mq::MQHCONN,
        CompCode: &mut mq::MQLONG,
        Reason: &mut mq::MQLONG,
    ) {
        // SAFETY: the caller (mqi) populates MQCNO with valid offsets and pointers.
        let req = unsafe { self.connect_request(QMgrName, ConnectOpts) };
        match self.qm.connect(&req) {
            Ok(h) => {
                *Hconn = h;
                set(CompCode, Reason, mq::MQRC_NONE);
            }
            Err(reason) => {
                *Hconn = mq::MQHC_UNUSABLE_HCONN;
                set(CompCode, Reason, reason);
            }
        }
    }

    unsafe fn MQCRTMH(
        &self,
        _: mq::MQHCONN,
        _: &mq::MQCMHO,
        _: &mut mq::MQHMSG,
        cc: &mut mq::MQLONG,
        rc: &mut mq::MQLONG,
    ) {
        set(cc, rc, self.qm.unsupported());
    }

    unsafe fn MQCTL(&self, _: mq::MQHCONN, _: mq::MQLONG, _: &mq::MQCTLO, cc: &mut mq::MQLONG, rc: &mut mq::MQLONG) {
        set(cc, rc, self.qm.unsupported());
    }

    unsafe fn MQDISC(&self, Hconn: &mut mq::MQHCONN, CompCode: &mut mq::MQLONG, Reason: &mut mq::MQLONG) {
        // The connection ends whatever MQDISC answers.
        let result = self.qm.disconnect(*Hconn);
        *Hconn = mq::MQHC_UNUSABLE_HCONN;
        syncpoint_outcome(CompCode, Reason, result);
    }

    unsafe fn MQDLTMH(
        &self,
        _: mq::MQHCONN,
        _: &mut mq::MQHMSG,
        _: &mq::MQDMHO,
        cc: &mut mq::MQLONG,
        rc: &mut mq::MQLONG,
    ) {
        set(cc, rc, self.qm.unsupported());
    }

    unsafe fn MQDLTMP(
        &self,
        _: mq::MQHCONN,
        _: mq::MQHMSG,
        _: &mq::MQDMPO,
        _: &mq::MQCHARV,
        cc: &mut mq::MQLONG,
        rc: &mut mq::MQLONG,
    ) {
        set(cc, rc, self.qm.unsupported());
    }

    unsafe fn MQGET(
        &self,
        Hconn: mq::MQHCONN,
        Hobj: mq::MQHOBJ,
        MsgDesc: mq::PMQVOID,
        GetMsgOpts: &mut mq::MQGMO,
        BufferLength: mq::MQLONG,
        Buffer: mq::PMQVOID,
        DataLength: &mut mq::MQLONG,
        CompCode: &mut mq::MQLONG,
        Reason: &mut mq::MQLONG,
    ) {
        // SAFETY: the caller passes an MQMD of the version it declares.
        let md = unsafe { read_md(MsgDesc) };
        // SAFETY: the caller passes a buffer of BufferLength bytes.
        let buf = unsafe { buffer(Buffer, BufferLength) };
        let (mut md, buf) = match (md, buf) {
            (Ok(md), Ok(buf)) => (md, buf),
            (Err(reason), _) | (_, Err(reason)) => return set(CompCode, Reason, reason),
        };
        let gmo = GetOptions {
            options: GetMsgOpts.Options,
            wait_interval: GetMsgOpts.WaitInterval,
            match_options: if GetMsgOpts.Version >= mq::MQGMO_VERSION_2 {
                GetMsgOpts.MatchOptions
            } else {
                mq::MQMO_MATCH_MSG_ID | mq::MQMO_MATCH_CORREL_ID
            },
        };
        let buffer_len = buf.len();
        match self.qm.get(Hconn, Hobj, &mut md, &gmo, buf) {
            Ok(got) => {
                if got.data_length > 0 || got.warning != mq::MQRC_NO_MSG_LOCKED {
                    // SAFETY: checked by read_md above.
                    unsafe { write_md(MsgDesc, &md) };
                }
                *DataLength = mq::MQLONG::try_from(got.data_length).unwrap_or(mq::MQLONG::MAX);
                if GetMsgOpts.Version >= mq::MQGMO_VERSION_3 {
                    GetMsgOpts.ReturnedLength =
                        mq::MQLONG::try_from(got.data_length.min(buffer_len)).unwrap_or(mq::MQLONG::MAX);
                }
                set(CompCode, Reason, got.warning);
            }
            Err(reason) => {
                *DataLength = 0;
                set(CompCode, Reason, reason);
            }
        }
    }

    unsafe fn MQINQ(
        &self,
        Hconn: mq::MQHCONN,
        Hobj: mq::MQHOBJ,
        SelectorCount: mq::MQLONG,
        Selectors: mq::PMQLONG,
        IntAttrCount: mq::MQLONG,
        IntAttrs: mq::PMQLONG,
        CharAttrLength: mq::MQLONG,
        CharAttrs: mq::PMQCHAR,
        CompCode: &mut mq::MQLONG,
        Reason: &mut mq::MQLONG,
    ) {
        // Each count has its own reason code; the selector count is bounded before the
        // selectors are read, so a count larger than the caller's array is never followed.
        let n = match usize::try_from(SelectorCount) {
            Ok(n) if n <= super::inquire::MAX_SELECTORS => n,
            _ => return set(CompCode, Reason, mq::MQRC_SELECTOR_COUNT_ERROR),
        };
        let Ok(ni) = usize::try_from(IntAttrCount) else {
            return set(CompCode, Reason, mq::MQRC_INT_ATTR_COUNT_ERROR);
        };
        let Ok(nc) = usize::try_from(CharAttrLength) else {
            return set(CompCode, Reason, mq::MQRC_CHAR_ATTR_LENGTH_ERROR);
        };
        let slice = |p: *mut mq::MQLONG, len: usize| -> &mut [mq::MQLONG] {
            if p.is_null() || len == 0 {
                &mut []
            } else {
                // SAFETY: the caller passes arrays of the counts it declares.
                unsafe { std::slice::from_raw_parts_mut(p, len) }
            }
        };
        let selectors = if Selectors.is_null() || n == 0 {
            Vec::new()
        } else {
            // SAFETY: the caller passes SelectorCount readable selectors; they are only read
            // (the caller may have derived the pointer from a shared slice).
            unsafe { std::slice::from_raw_parts(Selectors.cast_const(), n) }.to_vec()
        };
        let ints = slice(IntAttrs, ni);
        let chars: &mut [u8] = if CharAttrs.is_null() || nc == 0 {
            &mut []
        } else {
            // SAFETY: the caller passes CharAttrLength bytes.
            unsafe { std::slice::from_raw_parts_mut(CharAttrs.cast::<u8>(), nc) }
        };
        match self.qm.inquire(Hconn, Hobj, &selectors) {
            Ok(attrs) => set(CompCode, Reason, lay_out(&attrs, ints, chars)),
            Err(reason) => set(CompCode, Reason, reason),
        }
    }

    unsafe fn MQINQMP(
        &self,
        _: mq::MQHCONN,
        _: mq::MQHMSG,
        _: &mut mq::MQIMPO,
        _: &mq::MQCHARV,
        _: &mut mq::MQPD,
        _: &mut mq::MQLONG,
        _: mq::MQLONG,
        _: mq::PMQVOID,
        _: &mut mq::MQLONG,
        cc: &mut mq::MQLONG,
        rc: &mut mq::MQLONG,
    ) {
        set(cc, rc, self.qm.unsupported());
    }

    unsafe fn MQMHBUF(
        &self,
        _: mq::MQHCONN,
        _: mq::MQHMSG,
        _: &mq::MQMHBO,
        _: &mq::MQCHARV,
        _: mq::PMQVOID,
        _: mq::MQLONG,
        _: mq::PMQVOID,
        _: &mut mq::MQLONG,
        cc: &mut mq::MQLONG,
        rc: &mut mq::MQLONG,
    ) {
        set(cc, rc, self.qm.unsupported());
    }

    unsafe fn MQOPEN(
        &self,
        Hconn: mq::MQHCONN,
        ObjDesc: &mut mq::MQOD,
        Options: mq::MQLONG,
        Hobj: &mut mq::MQHOBJ,
        CompCode: &mut mq::MQLONG,
        Reason: &mut mq::MQLONG,
    ) {
        match self.qm.open(Hconn, &object_ref(ObjDesc), Options) {
            Ok(h) => {
                *Hobj = h;
                set(CompCode, Reason, mq::MQRC_NONE);
            }
            Err(reason) => {
                *Hobj = mq::MQHO_UNUSABLE_HOBJ;
                set(CompCode, Reason, reason);
            }
        }
    }

    unsafe fn MQPUT(
        &self,
        Hconn: mq::MQHCONN,
        Hobj: mq::MQHOBJ,
        MsgDesc: mq::PMQVOID,
        PutMsgOpts: &mut mq::MQPMO,
        BufferLength: mq::MQLONG,
        Buffer: mq::PMQVOID,
        CompCode: &mut mq::MQLONG,
        Reason: &mut mq::MQLONG,
    ) {
        // SAFETY: as in MQGET.
        let (md, buf) = unsafe { (read_md(MsgDesc), buffer_ref(Buffer, BufferLength)) };
        let result = md.and_then(|mut md| {
            self.qm.put(Hconn, Hobj, &mut md, PutMsgOpts.Options, buf?)?;
            // SAFETY: checked by read_md.
            unsafe { write_md(MsgDesc, &md) };
            Ok(put_warning(&md))
        });
        set(CompCode, Reason, result.unwrap_or_else(|reason| reason));
    }

    unsafe fn MQPUT1(
        &self,
        Hconn: mq::MQHCONN,
        ObjDesc: &mut mq::MQOD,
        MsgDesc: mq::PMQVOID,
        PutMsgOpts: &mut mq::MQPMO,
        BufferLength: mq::MQLONG,
        Buffer: mq::PMQVOID,
        CompCode: &mut mq::MQLONG,
        Reason: &mut mq::MQLONG,
    ) {
        // SAFETY: as in MQGET.
        let (md, buf) = unsafe { (read_md(MsgDesc), buffer_ref(Buffer, BufferLength)) };
        let object = object_ref(ObjDesc);
        let result = md.and_then(|mut md| {
            self.qm.put1(Hconn, &object, &mut md, PutMsgOpts.Options, buf?)?;
            // SAFETY: checked by read_md.
            unsafe { write_md(MsgDesc, &md) };
            Ok(put_warning(&md))
        });
        set(CompCode, Reason, result.unwrap_or_else(|reason| reason));
    }

    unsafe fn MQSET(
        &self,
        _: mq::MQHCONN,
        _: mq::MQHOBJ,
        _: mq::MQLONG,
        _: mq::PMQLONG,
        _: mq::MQLONG,
        _: mq::PMQLONG,
        _: mq::MQLONG,
        _: mq::PMQCHAR,
        cc: &mut mq::MQLONG,
        rc: &mut mq::MQLONG,
    ) {
        set(cc, rc, self.qm.unsupported());
    }

    unsafe fn MQSETMP(
        &self,
        _: mq::MQHCONN,
        _: mq::MQHMSG,
        _: &mq::MQSMPO,
        _: &mq::MQCHARV,
        _: &mut mq::MQPD,
        _: mq::MQLONG,
        _: mq::MQLONG,
        _: mq::PMQVOID,
        cc: &mut mq::MQLONG,
        rc: &mut mq::MQLONG,
    ) {
        set(cc, rc, self.qm.unsupported());
    }

    unsafe fn MQSTAT(
        &self,
        _: mq::MQHCONN,
        _: mq::MQLONG,
        _: &mut mq::MQSTS,
        cc: &mut mq::MQLONG,
        rc: &mut mq::MQLONG,
    ) {
        set(cc, rc, self.qm.unsupported());
    }

    unsafe fn MQSUB(
        &self,
        _: mq::MQHCONN,
        _: &mut mq::MQSD,
        _: Option<&mut mq::MQHOBJ>,
        _: &mut mq::MQHOBJ,
        cc: &mut mq::MQLONG,
        rc: &mut mq::MQLONG,
    ) {
        set(cc, rc, self.qm.unsupported());
    }

    unsafe fn MQSUBRQ(
        &self,
        _: mq::MQHCONN,
        _: mq::MQHOBJ,
        _: mq::MQLONG,
        _: Option<&mut mq::MQSRO>,
        cc: &mut mq::MQLONG,
        rc: &mut mq::MQLONG,
    ) {
        set(cc, rc, self.qm.unsupported());
    }

    unsafe fn MQXCNVC(
        &self,
        _: mq::MQHCONN,
        _: mq::MQLONG,
        _: mq::MQLONG,
        _: mq::MQLONG,
        _: mq::PMQCHAR,
        _: mq::MQLONG,
        _: mq::MQLONG,
        _: mq::PMQCHAR,
        _: &mut mq::MQLONG,
        cc: &mut mq::MQLONG,
        rc: &mut mq::MQLONG,
    ) {
        set(cc, rc, self.qm.unsupported());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libmqm_sys::Mqi as _;

    /// An MQCD of `version` holding only that version's `length` bytes, as a C caller may
    /// pass it: nothing past them is read.
    fn short_cd(version: mq::MQLONG, length: usize, sharecnv: mq::MQLONG) -> Vec<u8> {
        let mut cd = libmqm_default::MQCD_CLIENT_CONN_DEFAULT;
        cd.Version = version;
        cd.ChannelName[..11].copy_from_slice(&b"OLD.SVRCONN".map(|b| b as mq::MQCHAR));
        cd.SharingConversations = sharecnv;
        // SAFETY: reading the MQCD's own bytes.
        let bytes = unsafe { std::slice::from_raw_parts(ptr::from_ref(&cd).cast::<u8>(), length) };
        bytes.to_vec()
    }

    fn request_with(cd: &[u8]) -> ConnectRequest {
        let adapter = MqiAdapter::new((), 1, "127.0.0.1".into());
        let mut cno = libmqm_default::MQCNO_DEFAULT;
        cno.Version = mq::MQCNO_VERSION_2;
        cno.ClientConnPtr = cd.as_ptr().cast_mut().cast();
        // SAFETY: the MQCNO and the MQCD it points at live for the call.
        unsafe { adapter.connect_request(&[0; 48], &cno) }
    }

    #[test]
    fn an_older_mqcd_gives_its_channel_and_no_field_it_does_not_have() {
        let old = request_with(&short_cd(mq::MQCD_VERSION_1, mq::MQCD_LENGTH_1, 3));
        assert_eq!(old.channel.as_deref(), Some("OLD.SVRCONN"));
        assert_eq!(old.client_sharecnv, None, "SharingConversations is a version 10 field");
        assert_eq!(old.client_address, "127.0.0.1");
        let current = request_with(&short_cd(mq::MQCD_VERSION_11, std::mem::size_of::<mq::MQCD>(), 3));
        assert_eq!(current.client_sharecnv, Some(3));
        assert_eq!(
            old.client_max_msg_length,
            Some(4_194_304),
            "MaxMsgLength is a version 1 field"
        );
    }

    /// QM1 with queue Q, a bindings connection and Q open for output and inquire.
    fn connected() -> (crate::fake::FakeQm, FakeMqi, mq::MQHCONN, mq::MQHOBJ) {
        let mut config = crate::fake::FakeConfig::default();
        config.queues.push(crate::fake::QueueDef::new("Q"));
        let qm = crate::fake::FakeQm::new(config);
        let hconn = qm.connect(&ConnectRequest::default()).expect("connect");
        let object = ObjectRef {
            object_type: mq::MQOT_Q,
            name: "Q".into(),
        };
        let hobj = qm
            .open(hconn, &object, mq::MQOO_OUTPUT | mq::MQOO_INQUIRE)
            .expect("open");
        let lib = qm.library("10.0.0.1");
        (qm, lib, hconn, hobj)
    }

    #[test]
    fn a_null_buffer_with_a_length_is_2004_and_puts_nothing() {
        let (qm, lib, hconn, hobj) = connected();
        let put_null = |len| {
            let mut md = libmqm_default::MQMD_DEFAULT;
            let mut pmo = libmqm_default::MQPMO_DEFAULT;
            pmo.Options = mq::MQPMO_NO_SYNCPOINT;
            let (mut cc, mut rc) = (0, 0);
            let md = ptr::from_mut(&mut md).cast();
            // SAFETY: the MQMD and MQPMO are valid; the buffer is null on purpose.
            unsafe { lib.MQPUT(hconn, hobj, md, &mut pmo, len, ptr::null_mut(), &mut cc, &mut rc) };
            (cc, rc)
        };
        assert_eq!(put_null(100), (mq::MQCC_FAILED, mq::MQRC_BUFFER_ERROR));
        assert_eq!(qm.depth("Q"), Some(0));
        // A zero length needs no buffer: an empty message.
        assert_eq!(put_null(0), (mq::MQCC_OK, mq::MQRC_NONE));
        assert_eq!(qm.depth("Q"), Some(1));
    }

    #[test]
    fn mqinq_counts_out_of_range_have_their_own_reason_codes() {
        let (_qm, lib, hconn, hobj) = connected();
        let selectors = [mq::MQIA_CURRENT_Q_DEPTH];
        let (mut ints, mut chars) = ([0; 1], [0; 48]);
        let mut inq = |selector_count, int_count, char_length| {
            let (mut cc, mut rc) = (0, 0);
            // SAFETY: the arrays hold what the counts that are not negative say, and a
            // selector count past them is refused before any selector is read.
            unsafe {
                lib.MQINQ(
                    hconn,
                    hobj,
                    selector_count,
                    selectors.as_ptr().cast_mut(),
                    int_count,
                    ints.as_mut_ptr(),
                    char_length,
                    chars.as_mut_ptr(),
                    &mut cc,
                    &mut rc,
                );
            }
            rc
        };
        assert_eq!(inq(1, 1, 48), mq::MQRC_NONE);
        assert_eq!(inq(1, -1, 0), mq::MQRC_INT_ATTR_COUNT_ERROR);
        assert_eq!(inq(1, 1, -1), mq::MQRC_CHAR_ATTR_LENGTH_ERROR);
        assert_eq!(inq(-1, 1, 0), mq::MQRC_SELECTOR_COUNT_ERROR);
        assert_eq!(inq(257, 1, 0), mq::MQRC_SELECTOR_COUNT_ERROR);
    }
}
