//! The guard an `exec` command runs under on Linux, so that the command and whatever it
//! starts in its process group die with mqpilot however mqpilot ends.
//!
//! The guard is the process mqpilot spawns: forked again before exec, it leads the process
//! group, runs the command in it and waits; mqpilot's death (its parent-death signal) makes
//! it kill the group. All of it runs between fork and exec, so it makes only
//! async-signal-safe calls and allocates nothing.

#[cfg(target_os = "linux")]
use std::io;
#[cfg(target_os = "linux")]
use std::sync::atomic::{AtomicI32, Ordering};

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
        PARENT.store(parent, Ordering::Relaxed);
        let mut on_death: libc::sigaction = std::mem::zeroed();
        on_death.sa_sigaction = pass_on as *const () as libc::sighandler_t;
        on_death.sa_flags = libc::SA_SIGINFO;
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
        COMMAND.store(command, Ordering::Relaxed);
        close_every_descriptor();
        libc::prctl(libc::PR_SET_NAME, c"mqpilot-exec".as_ptr());
        default_handlers();
        // A stop signal meant for the command (systemd's stop signals every process of the
        // service, `pkill -f` matches the guard's command line, which is mqpilot's) reaches
        // it, instead of killing the guard and leaving the command without one.
        for signal in [libc::SIGINT, libc::SIGHUP, libc::SIGQUIT, libc::SIGUSR1, libc::SIGUSR2] {
            libc::sigaction(signal, &raw const on_death, std::ptr::null_mut());
        }
        let mut status = 0;
        while libc::waitpid(command, &raw mut status, 0) == -1 {
            if *libc::__errno_location() != libc::EINTR {
                libc::_exit(127);
            }
        }
        end_as(status)
    }
}

/// mqpilot's pid, as the guard saw it at its start.
#[cfg(target_os = "linux")]
static PARENT: AtomicI32 = AtomicI32::new(0);

/// The command's pid, once the guard has started it (0 before).
#[cfg(target_os = "linux")]
static COMMAND: AtomicI32 = AtomicI32::new(0);

/// The guard's signal handler. mqpilot's death (the parent-death SIGTERM, which the kernel
/// sends as from the dying mqpilot, and which may come when one of mqpilot's threads has
/// taken the guard over for a moment; or any signal once the guard has a new parent): SIGKILL
/// to the whole process group, the guard included. A signal from anyone else is passed on
/// to the command.
#[cfg(target_os = "linux")]
extern "C" fn pass_on(signal: libc::c_int, info: *mut libc::siginfo_t, _context: *mut libc::c_void) {
    let parent = PARENT.load(Ordering::Relaxed);
    // SAFETY: the kernel passes a valid siginfo (SA_SIGINFO); getppid(2) and kill(2) are
    // async-signal-safe; pid 0 names the caller's group.
    unsafe {
        let from_parent = !info.is_null() && (*info).si_pid() == parent;
        if from_parent || libc::getppid() != parent {
            libc::kill(0, libc::SIGKILL);
            return;
        }
        let command = COMMAND.load(Ordering::Relaxed);
        if command > 0 {
            libc::kill(command, signal);
        }
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
        // Before Linux 5.9: the open ones, as /proc lists them; trying every number up to the
        // descriptor limit could take seconds (containers often allow a million).
        if close_listed_descriptors() {
            return;
        }
        let open_max = libc::c_int::try_from(libc::sysconf(libc::_SC_OPEN_MAX)).unwrap_or(1 << 20);
        for fd in 0..open_max.max(1024) {
            libc::close(fd);
        }
    }
}

/// Closes the descriptors `/proc/self/fd` lists, reading it with getdents64(2) into a buffer
/// on the stack, until a pass finds none but its own (at most a few passes); false if `/proc`
/// cannot be read or still lists some.
///
/// # Safety
/// Only in the guard, which uses no descriptor after this.
#[cfg(target_os = "linux")]
unsafe fn close_listed_descriptors() -> bool {
    // SAFETY: open(2), getdents64(2) and close(2) are async-signal-safe system calls; the
    // records are read within the bytes getdents64 wrote into `buf`.
    unsafe {
        for _ in 0..4 {
            let dir = libc::open(
                c"/proc/self/fd".as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            );
            if dir < 0 {
                return false;
            }
            let mut closed_any = false;
            let mut buf = [0_u8; 4096];
            loop {
                let n = libc::syscall(libc::SYS_getdents64, dir, buf.as_mut_ptr(), buf.len());
                let Ok(n) = usize::try_from(n) else {
                    libc::close(dir);
                    return false;
                };
                if n == 0 {
                    break;
                }
                // struct linux_dirent64: d_ino (8), d_off (8), d_reclen (2), d_type (1), d_name.
                let mut at = 0;
                while at + 19 < n {
                    let reclen = usize::from(u16::from_ne_bytes([buf[at + 16], buf[at + 17]]));
                    if reclen == 0 {
                        break;
                    }
                    let mut fd: libc::c_int = 0;
                    let mut digits = 0;
                    for &b in buf[at + 19..(at + reclen).min(n)]
                        .iter()
                        .take_while(|b| b.is_ascii_digit())
                    {
                        fd = fd.saturating_mul(10).saturating_add(libc::c_int::from(b - b'0'));
                        digits += 1;
                    }
                    if digits > 0 && fd != dir {
                        libc::close(fd);
                        closed_any = true;
                    }
                    at += reclen;
                }
            }
            libc::close(dir);
            if !closed_any {
                return true;
            }
        }
        false
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

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::os::fd::AsRawFd as _;

    /// The fallback for kernels without close_range(2) closes every descriptor `/proc` lists.
    #[test]
    fn the_descriptors_proc_lists_are_all_closed() {
        let files: Vec<std::fs::File> = (0..40)
            .map(|_| std::fs::File::open("/proc/self/stat").expect("open"))
            .collect();
        let mut fds = [0; 40];
        for (fd, file) in fds.iter_mut().zip(&files) {
            *fd = file.as_raw_fd();
        }
        // SAFETY: the child makes only async-signal-safe calls (the function under test,
        // fcntl(2), _exit(2)) on memory it owns.
        unsafe {
            let child = libc::fork();
            assert!(child >= 0, "fork");
            if child == 0 {
                let mut code = if super::close_listed_descriptors() { 0 } else { 2 };
                for fd in [0, 1, 2].iter().chain(&fds) {
                    if libc::fcntl(*fd, libc::F_GETFD) != -1 {
                        code = 3;
                    }
                }
                libc::_exit(code);
            }
            let mut status = 0;
            assert_eq!(libc::waitpid(child, &raw mut status, 0), child);
            assert!(libc::WIFEXITED(status), "status {status}");
            assert_eq!(
                libc::WEXITSTATUS(status),
                0,
                "0: all closed, 2: /proc unread, 3: one left open"
            );
        }
        drop(files);
    }
}
