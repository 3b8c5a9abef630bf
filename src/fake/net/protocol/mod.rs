//! The frames `mqpilot fake-qm` and its clients exchange (the format is described in the
//! `net` module's documentation): the envelope and its values (`frame.rs`), the requests
//! (`request.rs`).

mod frame;
mod request;

pub use frame::{
    Decoder, Encoder, FrameError, MAX_FRAME_BYTES, MD_BYTES, VERSION, decode_md, encode_md, is_timeout, kind,
    kind_name, read_frame, read_frame_idle, write_frame,
};
pub use request::{Request, WireConnect, decode_attrs, encode_attrs};
