//! The only crate of berth allowed to use `unsafe`.
//!
//! It holds the few system calls that `rustix` and `nix` do not expose safely for our
//! needs. Each `unsafe` block carries a `SAFETY:` comment stating the invariant it relies
//! on. Everything else in berth is `#![deny(unsafe_code)]`.

#![deny(unsafe_op_in_unsafe_fn)]

pub mod netns;

use std::io;

/// Sends signal `sig` (any number from 1 to 64, real-time signals included) to `pid`.
///
/// `rustix` only names the classic signals safely; `kill -s RTMIN+3` needs any number.
pub fn send_signal(pid: i32, sig: i32) -> io::Result<()> {
    if pid <= 0 {
        // 0 and negative pids address process groups; never do that by accident.
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("refusing to signal pid {pid}"),
        ));
    }
    if !(1..=64).contains(&sig) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid signal {sig}"),
        ));
    }
    // SAFETY: kill(2) takes plain integers and touches no memory of ours; pid > 0 limits it
    // to one process.
    let rc = unsafe { libc::kill(pid, sig) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Moves the calling process into a new mount namespace (a copy of the current one).
///
/// Only for single-threaded processes (the shim): `CLONE_NEWNS` implies unsharing the
/// filesystem attributes, which the kernel refuses for a thread that shares them.
pub fn unshare_mount_namespace() -> io::Result<()> {
    // SAFETY: unshare(2) with CLONE_NEWNS only gives this process a private copy of its
    // mount table; no memory or file descriptor of ours changes meaning.
    let rc = unsafe { libc::unshare(libc::CLONE_NEWNS) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_zero_pids_and_bad_numbers_are_refused() {
        assert!(send_signal(0, 15).is_err());
        assert!(send_signal(-1, 15).is_err());
        assert!(send_signal(1, 0).is_err());
        assert!(send_signal(1, 65).is_err());
    }

    #[test]
    fn signalling_a_live_child_works() {
        let mut child = std::process::Command::new("sleep")
            .arg("10")
            .spawn()
            .unwrap();
        send_signal(child.id() as i32, 9).unwrap();
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9));
    }
}
