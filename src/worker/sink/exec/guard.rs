//! The guard an `exec` command runs under on Linux, so that the command and whatever it
//! starts in its process group die with mqpilot however mqpilot ends.
//!
//! The guard is the process mqpilot spawns: forked again before exec, it leads the process
//! group, runs the command in it and waits; mqpilot's death (its parent-death signal) makes
//! it kill the group. All of it runs between fork and exec, so it makes only
//! async-signal-safe calls and allocates nothing.

#[cfg(target_os = "linux")]
use std::io;

use tokio::process::Command;

/// Makes the command, and whatever it starts in its process group, die when mqpilot does,
/// however mqpilot ends (SIGKILL, the OOM killer, a crash).
///
/// A parent-death signal reaches only the process that asked for it, not the processes it
/// starts, so the process mqpilot starts is a guard, not the command: it leads the process
/// group, starts the command in it, and waits. mqpilot's death signals the guard (SIGTERM),
/// whose handler kills the whole group with SIGKILL; otherwise the guard ends as the command
/// ended, with its exit status or by its signal, so mqpilot judges the command as before.
/// The guard holds none of mqpilot's file descriptors: the command's pipes, sockets and the
/// other commands' pipes close when mqpilot closes them. It is a copy of mqpilot that never
/// runs another program, named `mqpilot-exec` (as `top` and `ps -o comm` show it).
///
/// The parent-death signal fires when the thread that started the guard ends; the command is
/// started on the thread that waits for it, so that thread outlives it. If mqpilot died
/// before the guard asked for the signal, the guard would never get it: it then does not
/// start the command.
#[cfg(target_os = "linux")]
pub(super) fn die_with_parent(command: &mut Command) {
    let parent = libc::pid_t::try_from(std::process::id()).unwrap_or(0);
    // SAFETY: the closure runs in the forked child before exec, and `guard` makes only
    // async-signal-safe calls and allocates nothing.
    unsafe {
        command.pre_exec(move || guard(parent));
    }
}

/// The guard of [`die_with_parent`], in the forked child before exec: returns in the command's
/// process, which goes on to exec; the guard itself never returns.
///
/// # Safety
/// Only in a child just forked from `parent`, as a `pre_exec` closure runs.
#[cfg(target_os = "linux")]
unsafe fn guard(parent: libc::pid_t) -> io::Result<()> {
    // SAFETY: each call is an async-signal-safe system call on memory this function owns.
    unsafe {
        let mut on_death: libc::sigaction = std::mem::zeroed();
        on_death.sa_sigaction = kill_own_group as *const () as libc::sighandler_t;
        let mut term_before: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(libc::SIGTERM, &raw const on_death, &raw mut term_before) == -1 {
            return Err(io::Error::last_os_error());
        }
        // The mask comes from the thread that spawned: SIGTERM must get through to the guard.
        let mut term: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&raw mut term);
        libc::sigaddset(&raw mut term, libc::SIGTERM);
        let mut mask_before: libc::sigset_t = std::mem::zeroed();
        libc::sigprocmask(libc::SIG_UNBLOCK, &raw const term, &raw mut mask_before);
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
            return Err(io::Error::last_os_error());
        }
        if libc::getppid() != parent {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        let command = libc::fork();
        if command == -1 {
            return Err(io::Error::last_os_error());
        }
        if command == 0 {
            // The command: SIGTERM and the mask as mqpilot left them; exec resets the rest.
            libc::sigaction(libc::SIGTERM, &raw const term_before, std::ptr::null_mut());
            libc::sigprocmask(libc::SIG_SETMASK, &raw const mask_before, std::ptr::null_mut());
            return Ok(());
        }
        close_every_descriptor();
        libc::prctl(libc::PR_SET_NAME, c"mqpilot-exec".as_ptr());
        default_handlers();
        let mut status = 0;
        while libc::waitpid(command, &raw mut status, 0) == -1 {
            if *libc::__errno_location() != libc::EINTR {
                libc::_exit(127);
            }
        }
        end_as(status)
    }
}

/// The guard's parent-death handler: SIGKILL to its whole process group, itself included.
#[cfg(target_os = "linux")]
extern "C" fn kill_own_group(_signal: libc::c_int) {
    // SAFETY: kill(2) is async-signal-safe; pid 0 names the caller's process group.
    unsafe {
        libc::kill(0, libc::SIGKILL);
    }
}

/// Closes every file descriptor of the guard, which needs none.
///
/// # Safety
/// Only in the guard, which uses no descriptor after this.
#[cfg(target_os = "linux")]
unsafe fn close_every_descriptor() {
    // SAFETY: close_range(2) and close(2) are async-signal-safe system calls.
    unsafe {
        if libc::syscall(libc::SYS_close_range, 0_u32, u32::MAX, 0_u32) == 0 {
            return;
        }
        // Before Linux 5.9: one at a time.
        let open_max = libc::c_int::try_from(libc::sysconf(libc::_SC_OPEN_MAX)).unwrap_or(1 << 20);
        for fd in 0..open_max.max(1024) {
            libc::close(fd);
        }
    }
}

/// Puts back the default action of every signal the guard inherited a handler for (mqpilot's
/// signal watcher, the runtime's SIGCHLD), as an exec would, leaving the SIGTERM handler.
///
/// # Safety
/// Only in the guard.
#[cfg(target_os = "linux")]
unsafe fn default_handlers() {
    // SAFETY: sigaction(2) is async-signal-safe; the structs are owned here.
    unsafe {
        // The standard signals: the real-time ones above are the C library's or unused.
        for signal in 1..32 {
            if matches!(signal, libc::SIGKILL | libc::SIGSTOP | libc::SIGTERM) {
                continue;
            }
            let mut current: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(signal, std::ptr::null(), &raw mut current) == 0
                && current.sa_sigaction != libc::SIG_DFL
                && current.sa_sigaction != libc::SIG_IGN
            {
                let default: libc::sigaction = std::mem::zeroed();
                libc::sigaction(signal, &raw const default, std::ptr::null_mut());
            }
        }
    }
}

/// Ends the guard as the command ended (`status` from waitpid): with its exit status, or by
/// its signal, without a core dump (the guard is a copy of mqpilot's memory).
///
/// # Safety
/// Only in the guard.
#[cfg(target_os = "linux")]
unsafe fn end_as(status: libc::c_int) -> ! {
    // SAFETY: async-signal-safe system calls on memory owned here.
    unsafe {
        if libc::WIFEXITED(status) {
            libc::_exit(libc::WEXITSTATUS(status));
        }
        if libc::WIFSIGNALED(status) {
            let signal = libc::WTERMSIG(status);
            libc::prctl(libc::PR_SET_DUMPABLE, 0);
            let default: libc::sigaction = std::mem::zeroed();
            libc::sigaction(signal, &raw const default, std::ptr::null_mut());
            let mut only: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&raw mut only);
            libc::sigaddset(&raw mut only, signal);
            libc::sigprocmask(libc::SIG_UNBLOCK, &raw const only, std::ptr::null_mut());
            libc::kill(libc::getpid(), signal);
            libc::_exit(128 + signal);
        }
        libc::_exit(1)
    }
}

#[cfg(not(target_os = "linux"))]
pub(super) fn die_with_parent(_command: &mut Command) {}
