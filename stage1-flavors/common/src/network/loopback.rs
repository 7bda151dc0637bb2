//! The pod's own network namespace (`net: none`): only `lo`, which the
//! kernel creates down, so it is brought up here.

use std::os::fd::{AsRawFd, OwnedFd};

use rustix::net::{AddressFamily, SocketFlags, SocketType};
use skiff_rt::error::{Context, Result};

/// Brings `lo` of the caller's network namespace up.
pub fn up() -> Result<()> {
    let sock = rustix::net::socket_with(AddressFamily::INET, SocketType::DGRAM, SocketFlags::CLOEXEC, None)
        .context("cannot open a socket to set up lo")?;
    set_up(&sock, "lo").context("cannot bring lo up")
}

fn set_up(sock: &OwnedFd, name: &str) -> std::io::Result<()> {
    // SAFETY: ifreq is plain old data, for which all zeroes is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes().take(libc::IFNAMSIZ - 1)) {
        *dst = src as libc::c_char;
    }
    ifreq_ioctl(sock, libc::SIOCGIFFLAGS as libc::Ioctl, &mut req)?;
    // SAFETY: SIOCGIFFLAGS filled in the flags member of the union.
    unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    ifreq_ioctl(sock, libc::SIOCSIFFLAGS as libc::Ioctl, &mut req)
}

fn ifreq_ioctl(sock: &OwnedFd, request: libc::Ioctl, req: &mut libc::ifreq) -> std::io::Result<()> {
    // SAFETY: `sock` is an open socket and `req` a valid, initialised ifreq
    // that outlives the call; both requests read and write only an ifreq.
    let r = unsafe { libc::ioctl(sock.as_raw_fd(), request, req as *mut libc::ifreq) };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}
