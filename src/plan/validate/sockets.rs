//! What a network validation needs in sockets and file descriptors, made to fit before
//! anything starts.
//!
//! Every connection of the fleet is a TCP socket of its own (the fake's client library opens
//! one per MQCONNX), so a server the run serves itself takes as many sockets as the fleet has
//! connections, plus the admin requests made while the fleet is held. The run's process holds
//! the server's side of each socket and three pipes per instance process; an instance process
//! holds its own connections' side. The soft RLIMIT_NOFILE is raised (up to the hard limit) so
//! that both fit, and the instance processes inherit it; a fleet the hard limit cannot hold is
//! refused before any process starts.

use crate::Error;
use crate::plan::report::Plan;

/// Sockets a server of the run's own takes beyond the fleet's connections and one admin
/// request per instance process (an mqpilot instance reads the status while it waits at the
/// gate): the run's own admin requests, and sockets still closing.
const SPARE_SOCKETS: u64 = 64;

/// File descriptors a `fake-qm` server holds per client socket: the socket, the server's copy
/// (to close it at shutdown), the connection's reader and writer (a waiting get's watcher
/// adds one for a moment). Measured: a held instance of 13 sockets took 52 in the server.
const SERVER_FDS_PER_SOCKET: u64 = 4;

/// File descriptors the run holds per instance process: its stdin, stdout and stderr pipes.
const RUN_FDS_PER_PROCESS: u64 = 3;

/// File descriptors an instance process holds per connection: the socket and its reader's
/// copy.
const INSTANCE_FDS_PER_CONNECTION: u64 = 2;

/// File descriptors a process holds besides those: standard streams, the listener, the async
/// runtime's, the model file, an admin request's socket.
const BASE_FDS: u64 = 64;

/// The sockets and processes of one network validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Needs {
    /// Connections of the whole fleet, each one socket.
    pub(super) connections: u64,
    /// Instance processes.
    pub(super) processes: u64,
    /// Connections of the largest instance.
    pub(super) most_per_instance: u64,
}

impl Needs {
    pub(super) fn of(plan: &Plan) -> Self {
        let per_app = || plan.model.apps.iter().zip(&plan.numbers);
        Self {
            connections: per_app()
                .map(|(a, n)| a.max_instances.saturating_mul(n.demand.connections))
                .fold(0, u64::saturating_add),
            processes: per_app().map(|(a, _)| a.max_instances).fold(0, u64::saturating_add),
            most_per_instance: per_app().map(|(_, n)| n.demand.connections).max().unwrap_or(0),
        }
    }

    /// The most sockets a server of the run's own must serve at once: every connection, an
    /// admin request per instance process, and [`SPARE_SOCKETS`].
    pub(super) fn server_sockets(&self) -> u64 {
        self.connections
            .saturating_add(self.processes)
            .saturating_add(SPARE_SOCKETS)
    }

    /// The file descriptors one process of the run needs open at once: the run's process
    /// (serving the fleet itself when `own_server`) or the largest instance's, whichever is
    /// more, since the instances inherit the run's limit. The spare sockets are counted one
    /// descriptor each: most are never opened, and those closing hold only the socket.
    pub(super) fn descriptors(&self, own_server: bool) -> u64 {
        let server = if own_server {
            (self.connections.saturating_add(self.processes))
                .saturating_mul(SERVER_FDS_PER_SOCKET)
                .saturating_add(SPARE_SOCKETS)
        } else {
            0
        };
        let run = self
            .processes
            .saturating_mul(RUN_FDS_PER_PROCESS)
            .saturating_add(server)
            .saturating_add(BASE_FDS);
        let instance = self
            .most_per_instance
            .saturating_mul(INSTANCE_FDS_PER_CONNECTION)
            .saturating_add(BASE_FDS);
        run.max(instance)
    }
}

/// The soft limit on open files to set so that `needed` fit, given the current `soft` and
/// `hard` limits: `None` when the soft limit already covers them.
///
/// # Errors
/// The hard limit is below `needed`.
pub(super) fn raised_soft_limit(needed: u64, soft: u64, hard: u64) -> Result<Option<u64>, u64> {
    if needed <= soft {
        Ok(None)
    } else if needed <= hard {
        Ok(Some(needed))
    } else {
        Err(hard)
    }
}

/// Makes sure this process, and the instance processes it starts (which inherit its limits),
/// may open `needs`' file descriptors: raises the soft RLIMIT_NOFILE toward the hard limit
/// when it is short.
///
/// # Errors
/// [`Error::Options`] when the hard limit is too low, or the limit cannot be read or raised,
/// saying how many the fleet needs.
pub(super) fn fit_descriptors(needs: &Needs, own_server: bool) -> Result<(), Error> {
    let needed = needs.descriptors(own_server);
    let refuse = |why: String| Error::Options {
        source_name: "validate --fake-qm".into(),
        message: format!(
            "the fleet's {} connections (each a socket) and {} instance processes need about {needed} open files \
             in one process, {why}: raise the limit (`ulimit -n`; the hard one as root), or validate a smaller fleet of \
             the same shape",
            needs.connections, needs.processes
        ),
    };
    let (soft, hard) = open_files_limit().map_err(|e| refuse(format!("and the limit cannot be read: {e}")))?;
    match raised_soft_limit(needed, soft, hard) {
        Ok(None) => Ok(()),
        Ok(Some(soft)) => set_open_files_limit(soft, hard)
            .map_err(|e| refuse(format!("above the soft limit {soft}, which cannot be raised: {e}"))),
        Err(hard) => Err(refuse(format!("more than this process's hard limit of {hard}"))),
    }
}

/// The soft and hard RLIMIT_NOFILE.
#[cfg(unix)]
fn open_files_limit() -> std::io::Result<(u64, u64)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given, which lives through the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut limit) } == -1 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((limit.rlim_cur, limit.rlim_max))
}

#[cfg(unix)]
fn set_open_files_limit(soft: u64, hard: u64) -> std::io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: setrlimit reads the struct it is given, which lives through the call.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raw const limit) } == -1 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Elsewhere there is no such limit to read: the fleet is taken to fit.
#[cfg(not(unix))]
fn open_files_limit() -> std::io::Result<(u64, u64)> {
    Ok((u64::MAX, u64::MAX))
}

#[cfg(not(unix))]
fn set_open_files_limit(_soft: u64, _hard: u64) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_of_the_runs_own_takes_every_connection_and_the_admin_requests() {
        let needs = Needs {
            connections: 1044,
            processes: 118,
            most_per_instance: 10,
        };
        assert_eq!(needs.server_sockets(), 1044 + 118 + SPARE_SOCKETS);
        assert!(needs.server_sockets() > 1024, "past the default --max-sockets");
        // Measured (/proc/PID/fd): 1,040 connections in 2 processes peaked at 4,178 open files
        // in the run's process. The estimate must cover that, without refusing fleets that fit.
        let measured = Needs {
            connections: 1040,
            processes: 2,
            most_per_instance: 520,
        };
        let estimate = measured.descriptors(true);
        assert!((4178..=4178 * 11 / 10).contains(&estimate), "{estimate}");
        // Against a running server it holds only the pipes; an instance of 1,000 connections
        // then needs more.
        let wide = Needs {
            connections: 1000,
            processes: 1,
            most_per_instance: 1000,
        };
        assert_eq!(wide.descriptors(false), 1000 * 2 + 64);
    }

    /// Regression: the shipped models were refused under the common limit of 1,024 open
    /// files (the estimate said about 1,096 for the mixed fleet), although the run peaks at
    /// about 540.
    #[test]
    fn regression_the_shipped_models_fit_1024_open_files() {
        for (name, text) in [
            ("mixed-fleet.toml", include_str!("../../../models/mixed-fleet.toml")),
            (
                "logicapps-standard.toml",
                include_str!("../../../models/logicapps-standard.toml"),
            ),
        ] {
            let model = crate::plan::model::Model::from_toml(text, std::path::Path::new(name)).expect("valid");
            let needs = Needs::of(&Plan::new(model));
            assert!(
                needs.descriptors(true) <= 1024,
                "{name}: {needs:?} need {}",
                needs.descriptors(true)
            );
        }
    }

    #[test]
    fn the_soft_limit_is_raised_only_when_short_and_never_past_the_hard_one() {
        assert_eq!(raised_soft_limit(900, 1024, 4096), Ok(None));
        assert_eq!(raised_soft_limit(3000, 1024, 4096), Ok(Some(3000)));
        assert_eq!(raised_soft_limit(5000, 1024, 4096), Err(4096));
    }

    #[test]
    fn a_fleet_past_the_hard_limit_is_refused_naming_what_it_needs() {
        let (_, hard) = open_files_limit().expect("the limit");
        // Unlimited (RLIM_INFINITY): no fleet is past it.
        if hard < u64::MAX / 8 {
            let vast = Needs {
                connections: hard,
                processes: 1,
                most_per_instance: hard,
            };
            let err = fit_descriptors(&vast, true)
                .expect_err("past the hard limit")
                .to_string();
            assert!(err.starts_with("validate --fake-qm: the fleet's "), "{err}");
            assert!(err.contains(&format!("hard limit of {hard}")), "{err}");
        }
        // A small fleet fits as the limit is.
        let small = Needs {
            connections: 10,
            processes: 2,
            most_per_instance: 5,
        };
        fit_descriptors(&small, true).expect("a small fleet fits");
    }
}
