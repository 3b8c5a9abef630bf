//! Which MQI implementation mqpilot talks to: IBM's client library or the fake.
//!
//! All sit behind one `mqi::Library` ([`MqLibrary`]), so everything above this file runs
//! the same code either way; the fake is in process or a `mqpilot fake-qm` server over TCP. IBM's `libmqm_r` is loaded at run time with dlopen2; when it is
//! missing the error lists every path tried, says what is wrong with `MQ_LIB` when it is set,
//! and says how to install it. Nothing panics.

use std::sync::Arc;

use dlopen2::wrapper::Container;
use libmqm_sys as mq;
use libmqm_sys::dlopen2::{MqWrapper, MqmContainer};

use crate::Error;
use crate::fake::FakeMqi;
use crate::fake::net::{RemoteMqi, RemoteVerbs};

/// Where IBM's library is looked for after `MQ_LIB` and `MQ_INSTALLATION_PATH`: the loader's
/// search path (`LD_LIBRARY_PATH` among it), then the default installation directory.
pub const DEFAULT_IBM_LIBRARY_PATHS: [&str; 2] = ["libmqm_r.so", "/opt/mqm/lib64/libmqm_r.so"];

/// Where IBM's library is looked for, in order, with the environment read through `env`:
/// `MQ_LIB`, then `$MQ_INSTALLATION_PATH/lib64/libmqm_r.so` (the variable IBM's `setmqenv`
/// sets for an installation outside /opt/mqm), then [`DEFAULT_IBM_LIBRARY_PATHS`]. Empty
/// variables count as unset.
#[must_use]
pub fn ibm_library_candidates(env: impl Fn(&str) -> Option<String>) -> Vec<String> {
    let var = |name: &str| env(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    let mut candidates: Vec<String> = var("MQ_LIB").into_iter().collect();
    if let Some(installation) = var("MQ_INSTALLATION_PATH") {
        let path = std::path::Path::new(&installation).join("lib64").join("libmqm_r.so");
        candidates.push(path.to_string_lossy().into_owned());
    }
    for path in DEFAULT_IBM_LIBRARY_PATHS {
        if !candidates.iter().any(|c| c == path) {
            candidates.push(path.to_owned());
        }
    }
    candidates
}

/// How a candidate shows in the error: a bare name says where the loader looked for it.
fn shown_candidate(path: &str) -> String {
    if path.contains('/') {
        path.to_owned()
    } else {
        format!("{path} on LD_LIBRARY_PATH and the loader's path")
    }
}

/// How `MQ_LIB` shows in the error: with what is wrong with the path it names (no such file,
/// a directory, a file that does not load), as the loader's error alone would not say.
fn shown_mq_lib(path: &str) -> String {
    if !path.contains('/') {
        return format!("{} (MQ_LIB)", shown_candidate(path));
    }
    let why = match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "no such file".to_owned(),
        Err(e) => format!("cannot be read: {e}"),
        Ok(meta) if meta.is_dir() => format!(
            "a directory; point MQ_LIB at the library file itself, e.g. {}",
            library_in(std::path::Path::new(path))
        ),
        Ok(_) => "a file that does not load".to_owned(),
    };
    format!("{path} (MQ_LIB: {why})")
}

/// The library file in `dir` when it is an installation or its `lib64` directory, else the
/// default installation's.
fn library_in(dir: &std::path::Path) -> String {
    [dir.join("libmqm_r.so"), dir.join("lib64").join("libmqm_r.so")]
        .into_iter()
        .find(|file| file.is_file())
        .map_or_else(
            || DEFAULT_IBM_LIBRARY_PATHS[1].to_owned(),
            |file| file.to_string_lossy().into_owned(),
        )
}

/// The MQI implementation behind a connection.
pub enum Backend {
    /// IBM's client library, loaded at run time.
    Ibm(Box<MqmContainer>),
    /// The in-process fake queue manager.
    Fake(FakeMqi),
    /// A `mqpilot fake-qm` server over TCP.
    Remote(RemoteMqi),
}

/// An MQI library for `mqi`: IBM's or the fake. Cheap to clone.
#[derive(Clone)]
pub struct MqLibrary(Arc<Backend>);

impl std::fmt::Debug for MqLibrary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &*self.0 {
            Backend::Ibm(_) => f.write_str("MqLibrary(IBM MQ client)"),
            Backend::Fake(_) => f.write_str("MqLibrary(fake queue manager)"),
            Backend::Remote(lib) => write!(f, "MqLibrary(fake queue manager at {})", lib.verbs().server()),
        }
    }
}

impl MqLibrary {
    /// The fake queue manager, as one client process sees it.
    #[must_use]
    pub fn fake(lib: FakeMqi) -> Self {
        Self(Arc::new(Backend::Fake(lib)))
    }

    /// A `mqpilot fake-qm` server at `server` (`host:port`), as one client process sees it:
    /// each connection is one TCP connection to it. Nothing connects until MQCONNX.
    #[must_use]
    pub fn remote(server: impl Into<String>) -> Self {
        Self(Arc::new(Backend::Remote(RemoteMqi::connect_to(server))))
    }

    /// A `mqpilot fake-qm` server reached through `verbs` (with their timeouts and source
    /// address), as one client process sees it.
    #[must_use]
    pub fn remote_with(verbs: RemoteVerbs) -> Self {
        Self(Arc::new(Backend::Remote(RemoteMqi::over(verbs))))
    }

    /// IBM's client library from the first of [`ibm_library_candidates`] (the environment
    /// read through `env`) that loads.
    ///
    /// # Errors
    /// [`Error::Library`] naming every path tried when none loads. When `MQ_LIB` is set, its
    /// path is shown with what is wrong with it, and its loader error is the one kept.
    pub fn ibm_from_env(env: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let mq_lib = env("MQ_LIB").map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        Self::load_first(&ibm_library_candidates(env), mq_lib.as_deref())
    }

    /// IBM's client library from the first of `candidates` that loads.
    ///
    /// # Errors
    /// [`Error::Library`] naming every candidate when none loads.
    pub fn ibm_from(candidates: &[String]) -> Result<Self, Error> {
        Self::load_first(candidates, None)
    }

    /// The first of `candidates` that loads; `mq_lib` is the one `MQ_LIB` named, if any.
    fn load_first(candidates: &[String], mq_lib: Option<&str>) -> Result<Self, Error> {
        // The error to show: MQ_LIB's, which the user chose, or else a candidate that exists
        // but does not load (a wrong library, a 32-bit build, missing symbols): either says
        // more than the ones that are simply not there.
        let mut shown: Option<(bool, dlopen2::Error)> = None;
        for path in candidates {
            // SAFETY: loading IBM's MQ client runs its initialisers; that library is built to
            // be loaded into any process. The symbols are checked against MqWrapper's
            // signatures by name only, as with any C library.
            match unsafe { Container::<MqWrapper>::load(path) } {
                Ok(container) => {
                    tracing::info!(library = %path, "loaded the IBM MQ client library");
                    return Ok(Self(Arc::new(Backend::Ibm(Box::new(container)))));
                }
                Err(e) => {
                    tracing::debug!(library = %path, error = %e, "IBM MQ client library not loaded");
                    let says_more = mq_lib == Some(path.as_str()) || std::path::Path::new(path).is_file();
                    if shown.as_ref().is_none_or(|(said_more, _)| !said_more) {
                        shown = Some((says_more, e));
                    }
                }
            }
        }
        let show = |c: &String| {
            if mq_lib == Some(c.as_str()) {
                shown_mq_lib(c)
            } else {
                shown_candidate(c)
            }
        };
        Err(Error::Library {
            tried: candidates.iter().map(show).collect(),
            source: shown.map(|(_, e)| e),
        })
    }

    /// `true` for the fake, in process or over TCP.
    #[must_use]
    pub fn is_fake(&self) -> bool {
        matches!(*self.0, Backend::Fake(_) | Backend::Remote(_))
    }
}

impl mqi::Library for MqLibrary {
    type MQ = Backend;

    fn lib(&self) -> &Self::MQ {
        &self.0
    }
}

/// Forwards every `Mqi` verb to the backend unchanged.
macro_rules! forward {
    ($( fn $name:ident ( $($arg:ident : $ty:ty),* $(,)? ); )*) => {
        #[allow(non_snake_case, clippy::too_many_arguments)]
        impl mq::Mqi for Backend {
            $(
                unsafe fn $name(&self, $($arg: $ty),*) {
                    // SAFETY: the arguments are passed on unchanged, so the caller's
                    // guarantees for this verb hold for the backend too.
                    unsafe {
                        match self {
                            Self::Ibm(lib) => <MqmContainer as mq::Mqi>::$name(lib.as_ref(), $($arg),*),
                            Self::Fake(lib) => <FakeMqi as mq::Mqi>::$name(lib, $($arg),*),
                            Self::Remote(lib) => <RemoteMqi as mq::Mqi>::$name(lib, $($arg),*),
                        }
                    }
                }
            )*
        }
    };
}

forward! {
    fn MQBACK(hconn: mq::MQHCONN, cc: &mut mq::MQLONG, rc: &mut mq::MQLONG);
    fn MQBEGIN(hconn: mq::MQHCONN, bo: Option<&mut mq::MQBO>, cc: &mut mq::MQLONG, rc: &mut mq::MQLONG);
    fn MQBUFMH(hconn: mq::MQHCONN, hmsg: mq::MQHMSG, bmho: &mq::MQBMHO, md: mq::PMQVOID, len: mq::MQLONG,
        buf: mq::PMQVOID, data_len: &mut mq::MQLONG, cc: &mut mq::MQLONG, rc: &mut mq::MQLONG);
    fn MQCB(hconn: mq::MQHCONN, op: mq::MQLONG, cbd: Option<&mq::MQCBD>, hobj: mq::MQHOBJ, md: mq::PMQVOID,
        gmo: Option<&mq::MQGMO>, cc: &mut mq::MQLONG, rc: &mut mq::MQLONG);
    fn MQCLOSE(hconn: mq::MQHCONN, hobj: &mut mq::MQHOBJ, options: mq::MQLONG, cc: &mut mq::MQLONG,
        rc: &mut mq::MQLONG);
    fn MQCMIT(hconn: mq::MQHCONN, cc: &mut mq::MQLONG, rc: &mut mq::MQLONG);
    fn MQCONN(qmgr: &mq::MQCHAR48, hconn: &mut mq::MQHCONN, cc: &mut mq::MQLONG, rc: &mut mq::MQLONG);
    fn MQCONNX(qmgr: &mq::MQCHAR48, cno: &mut mq::MQCNO, hconn: &mut mq::MQHCONN, cc: &mut mq::MQLONG,
        rc: &mut mq::MQLONG);
    fn MQCRTMH(hconn: mq::MQHCONN, cmho: &mq::MQCMHO, hmsg: &mut mq::MQHMSG, cc: &mut mq::MQLONG,
        rc: &mut mq::MQLONG);
    fn MQCTL(hconn: mq::MQHCONN, op: mq::MQLONG, ctlo: &mq::MQCTLO, cc: &mut mq::MQLONG, rc: &mut mq::MQLONG);
    fn MQDISC(hconn: &mut mq::MQHCONN, cc: &mut mq::MQLONG, rc: &mut mq::MQLONG);
    fn MQDLTMH(hconn: mq::MQHCONN, hmsg: &mut mq::MQHMSG, dmho: &mq::MQDMHO, cc: &mut mq::MQLONG,
        rc: &mut mq::MQLONG);
    fn MQDLTMP(hconn: mq::MQHCONN, hmsg: mq::MQHMSG, dmpo: &mq::MQDMPO, name: &mq::MQCHARV,
        cc: &mut mq::MQLONG, rc: &mut mq::MQLONG);
    fn MQGET(hconn: mq::MQHCONN, hobj: mq::MQHOBJ, md: mq::PMQVOID, gmo: &mut mq::MQGMO, len: mq::MQLONG,
        buf: mq::PMQVOID, data_len: &mut mq::MQLONG, cc: &mut mq::MQLONG, rc: &mut mq::MQLONG);
    fn MQINQ(hconn: mq::MQHCONN, hobj: mq::MQHOBJ, count: mq::MQLONG, selectors: mq::PMQLONG,
        int_count: mq::MQLONG, ints: mq::PMQLONG, char_len: mq::MQLONG, chars: mq::PMQCHAR,
        cc: &mut mq::MQLONG, rc: &mut mq::MQLONG);
    fn MQINQMP(hconn: mq::MQHCONN, hmsg: mq::MQHMSG, impo: &mut mq::MQIMPO, name: &mq::MQCHARV,
        pd: &mut mq::MQPD, typ: &mut mq::MQLONG, len: mq::MQLONG, value: mq::PMQVOID,
        data_len: &mut mq::MQLONG, cc: &mut mq::MQLONG, rc: &mut mq::MQLONG);
    fn MQMHBUF(hconn: mq::MQHCONN, hmsg: mq::MQHMSG, mhbo: &mq::MQMHBO, name: &mq::MQCHARV, md: mq::PMQVOID,
        len: mq::MQLONG, buf: mq::PMQVOID, data_len: &mut mq::MQLONG, cc: &mut mq::MQLONG,
        rc: &mut mq::MQLONG);
    fn MQOPEN(hconn: mq::MQHCONN, od: &mut mq::MQOD, options: mq::MQLONG, hobj: &mut mq::MQHOBJ,
        cc: &mut mq::MQLONG, rc: &mut mq::MQLONG);
    fn MQPUT(hconn: mq::MQHCONN, hobj: mq::MQHOBJ, md: mq::PMQVOID, pmo: &mut mq::MQPMO, len: mq::MQLONG,
        buf: mq::PMQVOID, cc: &mut mq::MQLONG, rc: &mut mq::MQLONG);
    fn MQPUT1(hconn: mq::MQHCONN, od: &mut mq::MQOD, md: mq::PMQVOID, pmo: &mut mq::MQPMO, len: mq::MQLONG,
        buf: mq::PMQVOID, cc: &mut mq::MQLONG, rc: &mut mq::MQLONG);
    fn MQSET(hconn: mq::MQHCONN, hobj: mq::MQHOBJ, count: mq::MQLONG, selectors: mq::PMQLONG,
        int_count: mq::MQLONG, ints: mq::PMQLONG, char_len: mq::MQLONG, chars: mq::PMQCHAR,
        cc: &mut mq::MQLONG, rc: &mut mq::MQLONG);
    fn MQSETMP(hconn: mq::MQHCONN, hmsg: mq::MQHMSG, smpo: &mq::MQSMPO, name: &mq::MQCHARV, pd: &mut mq::MQPD,
        typ: mq::MQLONG, len: mq::MQLONG, value: mq::PMQVOID, cc: &mut mq::MQLONG, rc: &mut mq::MQLONG);
    fn MQSTAT(hconn: mq::MQHCONN, typ: mq::MQLONG, sts: &mut mq::MQSTS, cc: &mut mq::MQLONG, rc: &mut mq::MQLONG);
    fn MQSUB(hconn: mq::MQHCONN, sd: &mut mq::MQSD, hobj: Option<&mut mq::MQHOBJ>, hsub: &mut mq::MQHOBJ,
        cc: &mut mq::MQLONG, rc: &mut mq::MQLONG);
    fn MQSUBRQ(hconn: mq::MQHCONN, hsub: mq::MQHOBJ, action: mq::MQLONG, sro: Option<&mut mq::MQSRO>,
        cc: &mut mq::MQLONG, rc: &mut mq::MQLONG);
    fn MQXCNVC(hconn: mq::MQHCONN, options: mq::MQLONG, src_ccsid: mq::MQLONG, src_len: mq::MQLONG,
        src: mq::PMQCHAR, dst_ccsid: mq::MQLONG, dst_len: mq::MQLONG, dst: mq::PMQCHAR,
        data_len: &mut mq::MQLONG, cc: &mut mq::MQLONG, rc: &mut mq::MQLONG);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_ibm_library_names_every_path_tried() {
        let env = |k: &str| (k == "MQ_LIB").then(|| "/nonexistent/libmqm_r.so".to_owned());
        let err = MqLibrary::ibm_from_env(env).unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(err, Error::Library { ref tried, .. } if tried.len() == 3),
            "{text}"
        );
        assert!(text.contains("/nonexistent/libmqm_r.so"), "{text}");
        assert!(text.contains("/opt/mqm/lib64/libmqm_r.so"), "{text}");
        assert!(text.contains("install the IBM MQ redistributable client"), "{text}");
        assert!(std::error::Error::source(&err).is_some());
    }

    #[test]
    fn regression_mq_installation_path_is_searched_and_the_error_names_ld_library_path() {
        let env = |k: &str| match k {
            "MQ_LIB" => Some("/custom/libmqm_r.so".to_owned()),
            "MQ_INSTALLATION_PATH" => Some("/opt/ibm/mq93".to_owned()),
            _ => None,
        };
        assert_eq!(
            ibm_library_candidates(env),
            [
                "/custom/libmqm_r.so",
                "/opt/ibm/mq93/lib64/libmqm_r.so",
                "libmqm_r.so",
                "/opt/mqm/lib64/libmqm_r.so"
            ]
        );
        let at_default = |k: &str| (k == "MQ_INSTALLATION_PATH").then(|| "/opt/mqm".to_owned());
        assert_eq!(
            ibm_library_candidates(at_default),
            ["/opt/mqm/lib64/libmqm_r.so", "libmqm_r.so"],
            "the default directory is tried once"
        );
        assert_eq!(
            ibm_library_candidates(|_| Some(" ".to_owned())),
            DEFAULT_IBM_LIBRARY_PATHS
        );
        let env = |k: &str| (k == "MQ_INSTALLATION_PATH").then(|| "/nonexistent/mq".to_owned());
        let text = MqLibrary::ibm_from_env(env).unwrap_err().to_string();
        assert!(text.contains("/nonexistent/mq/lib64/libmqm_r.so"), "{text}");
        assert!(text.contains("libmqm_r.so on LD_LIBRARY_PATH"), "{text}");
    }

    /// The first path tried and the loader's error shown, for `MQ_LIB` set to `mq_lib`.
    fn failure_with_mq_lib(mq_lib: &str) -> (String, String) {
        let env = |k: &str| (k == "MQ_LIB").then(|| mq_lib.to_owned());
        let Err(Error::Library { tried, source }) = MqLibrary::ibm_from_env(env) else {
            panic!("{mq_lib} loaded as the IBM MQ library");
        };
        (tried[0].clone(), source.expect("a loader error").to_string())
    }

    #[test]
    fn regression_an_mq_lib_that_is_a_directory_points_at_the_library_file_in_it() {
        let dir = std::env::temp_dir().join(format!("mqpilot-mq-lib-{}", std::process::id()));
        let install = dir.to_str().unwrap().to_owned();
        std::fs::create_dir_all(dir.join("lib64")).unwrap();
        let (tried, shown) = failure_with_mq_lib(&install);
        assert_eq!(
            tried,
            format!(
                "{install} (MQ_LIB: a directory; point MQ_LIB at the library file itself, e.g. \
                 /opt/mqm/lib64/libmqm_r.so)"
            )
        );
        assert!(shown.contains(&install), "MQ_LIB's own error is the one shown: {shown}");
        // An installation directory, or its lib64: the file in it is named.
        std::fs::write(dir.join("lib64").join("libmqm_r.so"), b"").unwrap();
        let (tried, _) = failure_with_mq_lib(&install);
        let lib64 = format!("{install}/lib64");
        let (tried_lib64, _) = failure_with_mq_lib(&lib64);
        let _ = std::fs::remove_dir_all(&dir);
        let file = format!("{install}/lib64/libmqm_r.so");
        assert!(tried.ends_with(&format!("e.g. {file})")), "{tried}");
        assert!(tried_lib64.ends_with(&format!("e.g. {file})")), "{tried_lib64}");
    }

    #[test]
    fn regression_an_mq_lib_that_is_missing_or_does_not_load_says_which_and_shows_its_own_error() {
        let (tried, shown) = failure_with_mq_lib("/nonexistent/libmqm_r.so");
        assert_eq!(tried, "/nonexistent/libmqm_r.so (MQ_LIB: no such file)");
        assert!(shown.contains("/nonexistent/libmqm_r.so"), "{shown}");
        let not_a_library = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
        let (tried, shown) = failure_with_mq_lib(not_a_library);
        assert_eq!(tried, format!("{not_a_library} (MQ_LIB: a file that does not load)"));
        assert!(shown.contains(not_a_library), "{shown}");
    }
}
