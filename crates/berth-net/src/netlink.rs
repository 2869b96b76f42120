//! Netlink plumbing shared by the bridge driver and namespace creation: connections in the
//! daemon's namespace or inside another one, link lookups and errno checks.

use crate::netns::{self, NetnsError};
use futures_util::TryStreamExt;
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use rtnetlink::{Handle, LinkUnspec};
use std::io;
use std::path::Path;

/// `lo` is interface 1 in every network namespace.
pub(crate) const LOOPBACK_INDEX: u32 = 1;

/// A netlink connection in the calling thread's namespace, driven by a task on the current
/// tokio runtime; the task ends when the last handle is dropped.
pub(crate) fn connect() -> io::Result<Handle> {
    let (connection, handle, _) = rtnetlink::new_connection()?;
    tokio::spawn(connection);
    Ok(handle)
}

/// A netlink connection whose socket lives in the namespace at `path`: the socket is made
/// on a namespace thread (registered with the current runtime), then used from here.
pub(crate) async fn connect_in(path: &Path) -> Result<Handle, ConnectInError> {
    let runtime = tokio::runtime::Handle::current();
    let (connection, handle) = netns::run_in(path, move || {
        let _entered = runtime.enter();
        rtnetlink::new_connection().map(|(connection, handle, _)| (connection, handle))
    })
    .await
    .map_err(ConnectInError::Netns)?
    .map_err(ConnectInError::Socket)?;
    tokio::spawn(connection);
    Ok(handle)
}

/// Why a connection inside a namespace could not be made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectInError {
    #[error(transparent)]
    Netns(NetnsError),
    #[error("opening a netlink socket")]
    Socket(#[source] io::Error),
}

/// Brings `lo` up in the namespace at `path`.
pub(crate) async fn loopback_up(path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let handle = connect_in(path).await?;
    set_up(&handle, LOOPBACK_INDEX).await?;
    Ok(())
}

/// Sets the administrative UP flag of interface `index`.
pub(crate) async fn set_up(handle: &Handle, index: u32) -> Result<(), rtnetlink::Error> {
    handle
        .link()
        .change(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
}

/// The link called `name`, or `None` when there is none.
pub(crate) async fn link_by_name(
    handle: &Handle,
    name: &str,
) -> Result<Option<LinkMessage>, rtnetlink::Error> {
    let result = handle
        .link()
        .get()
        .match_name(name.to_string())
        .execute()
        .try_next()
        .await;
    match result {
        Ok(link) => Ok(link),
        Err(err) if errno(&err) == Some(libc_enodev()) => Ok(None),
        Err(err) => Err(err),
    }
}

/// Whether the link is administratively up.
pub(crate) fn is_up(link: &LinkMessage) -> bool {
    link.header.flags.contains(LinkFlags::Up)
}

pub(crate) fn mtu(link: &LinkMessage) -> Option<u32> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::Mtu(mtu) => Some(*mtu),
        _ => None,
    })
}

/// The positive errno of a netlink error reply, if it is one.
pub(crate) fn errno(err: &rtnetlink::Error) -> Option<i32> {
    match err {
        rtnetlink::Error::NetlinkError(message) => message.code.map(|c| -c.get()),
        _ => None,
    }
}

pub(crate) fn libc_enodev() -> i32 {
    rustix::io::Errno::NODEV.raw_os_error()
}

pub(crate) fn libc_eexist() -> i32 {
    rustix::io::Errno::EXIST.raw_os_error()
}
