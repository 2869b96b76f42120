//! Network namespace switching for the calling thread only.
//!
//! [`ThreadNetnsGuard`] moves the calling thread into another network namespace (an existing
//! one with [`ThreadNetnsGuard::enter`], or a new empty one with
//! [`ThreadNetnsGuard::enter_new`]) and moves it back when dropped. The network namespace is
//! a per-thread attribute on Linux, so other threads of the process are not affected; but
//! every socket the thread creates meanwhile belongs to the entered namespace, which is the
//! point: callers create sockets (netlink, DNS) there and use them from anywhere afterwards.
//!
//! Use it only on a thread made for the purpose (berth-net spawns one per call), never on an
//! async runtime's worker thread: tasks scheduled there would silently run in the wrong
//! namespace. The guard is `!Send` so it cannot leave the thread it was made on.

use std::fs::File;
use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

/// The calling thread's own network namespace, as `/proc` names it.
const THREAD_NETNS: &str = "/proc/thread-self/ns/net";

/// Holds the calling thread inside another network namespace until dropped (or
/// [`restore`](Self::restore)d), then moves it back to the one it came from.
#[derive(Debug)]
pub struct ThreadNetnsGuard {
    /// `None` once restored.
    original: Option<OwnedFd>,
    // Raw pointers are !Send: the guard must be dropped on the thread that entered.
    _thread_bound: PhantomData<*const ()>,
}

impl ThreadNetnsGuard {
    /// Moves the calling thread into the network namespace that `target` refers to (an open
    /// nsfs file: `/proc/<pid>/ns/net` or a bind mount of one).
    pub fn enter(target: BorrowedFd<'_>) -> io::Result<Self> {
        let original = current_netns()?;
        set_thread_netns(target)?;
        Ok(Self {
            original: Some(original),
            _thread_bound: PhantomData,
        })
    }

    /// Moves the calling thread into a new network namespace, which holds only a `lo` that
    /// is down. The namespace lives as long as something refers to it (this thread while it
    /// stays inside, an open file or a bind mount of `/proc/thread-self/ns/net`).
    pub fn enter_new() -> io::Result<Self> {
        let original = current_netns()?;
        // SAFETY: unshare(2) with CLONE_NEWNET only replaces the calling thread's network
        // namespace (the namespace proxy is per task); no memory or file descriptor of the
        // process changes meaning, and the other threads keep their namespace.
        let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self {
            original: Some(original),
            _thread_bound: PhantomData,
        })
    }

    /// Moves the thread back to the namespace it was in before, reporting a failure (drop
    /// only tries).
    pub fn restore(mut self) -> io::Result<()> {
        match self.original.take() {
            Some(original) => set_thread_netns(original.as_fd()),
            None => Ok(()),
        }
    }
}

impl Drop for ThreadNetnsGuard {
    fn drop(&mut self) {
        let Some(original) = self.original.take() else {
            return;
        };
        if let Err(err) = set_thread_netns(original.as_fd()) {
            // A thread stuck in a foreign namespace must not go on as if nothing happened;
            // panicking ends the dedicated thread (and aborts if it is already unwinding).
            panic!("cannot restore the thread's network namespace: {err}");
        }
    }
}

fn current_netns() -> io::Result<OwnedFd> {
    Ok(File::open(THREAD_NETNS)?.into())
}

fn set_thread_netns(target: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: setns(2) reads only the file descriptor, which `BorrowedFd` guarantees is open
    // for the duration of the call; with CLONE_NEWNET the kernel refuses any fd that is not a
    // network namespace and changes nothing but the calling thread's network namespace.
    let rc = unsafe { libc::setns(target.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn thread_netns_inode() -> u64 {
        std::fs::metadata(THREAD_NETNS).unwrap().ino()
    }

    #[test]
    fn entering_a_new_namespace_changes_only_this_thread_and_drop_restores_it() {
        if !rustix_free_is_root() {
            return;
        }
        let outer = thread_netns_inode();
        let (inside_tx, inside_rx) = std::sync::mpsc::channel();
        let (checked_tx, checked_rx) = std::sync::mpsc::channel::<()>();
        let worker = std::thread::spawn(move || {
            let before = thread_netns_inode();
            let guard = ThreadNetnsGuard::enter_new().unwrap();
            let inside = thread_netns_inode();
            assert_ne!(before, inside);
            inside_tx.send(inside).unwrap();
            // Stay inside until the outer thread has looked at its own namespace.
            checked_rx.recv().unwrap();
            let ns = File::open(THREAD_NETNS).unwrap();
            drop(guard);
            assert_eq!(thread_netns_inode(), before);
            let again = ThreadNetnsGuard::enter(ns.as_fd()).unwrap();
            assert_eq!(thread_netns_inode(), inside);
            again.restore().unwrap();
            assert_eq!(thread_netns_inode(), before);
        });
        let inside = inside_rx.recv().unwrap();
        assert_ne!(inside, outer);
        assert_eq!(thread_netns_inode(), outer);
        checked_tx.send(()).unwrap();
        worker.join().unwrap();
    }

    #[test]
    fn entering_something_that_is_not_a_namespace_fails_and_changes_nothing() {
        let before = thread_netns_inode();
        let file = File::open("/proc/self/status").unwrap();
        assert!(ThreadNetnsGuard::enter(file.as_fd()).is_err());
        assert_eq!(thread_netns_inode(), before);
    }

    /// Root check without extra dependencies: this crate depends on libc only.
    fn rustix_free_is_root() -> bool {
        // SAFETY: geteuid(2) takes no arguments and cannot fail.
        if unsafe { libc::geteuid() } == 0 {
            return true;
        }
        if std::env::var("BERTH_SKIP_ROOT_TESTS").as_deref() == Ok("1") {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "!!!!!!!! SKIPPED root test in berth-sys::netns: not root and BERTH_SKIP_ROOT_TESTS=1 !!!!!!!!"
            );
            return false;
        }
        panic!("berth-sys netns tests need root: run as root, or set BERTH_SKIP_ROOT_TESTS=1");
    }
}
