//! The few rtnetlink requests the default network needs, built by hand:
//! a bridge, a veth pair with one end in the pod's namespace, addresses,
//! links up, a default route. Each request asks for an acknowledgement
//! and its error is returned as the kernel's errno.

use std::os::fd::{BorrowedFd, OwnedFd};

use rustix::io::Errno;
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};

const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLMSG_ERROR: u16 = 2;
const RTM_NEWLINK: u16 = 16;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;
const IFLA_IFNAME: u16 = 3;
const IFLA_MASTER: u16 = 10;
const IFLA_PROTINFO: u16 = 12;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
const IFLA_BRPORT_MODE: u16 = 4;
const NLA_F_NESTED: u16 = 0x8000;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const AF_INET: u8 = 2;
const AF_BRIDGE: u8 = 7;
const AF_UNSPEC: u8 = 0;
const IFF_UP: u32 = 1;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_BOOT: u8 = 3;
const RTN_UNICAST: u8 = 1;

/// One request being built: the header, a fixed part, attributes.
struct Msg {
    buf: Vec<u8>,
    /// Offsets of the nested attributes still open.
    open: Vec<usize>,
}

impl Msg {
    fn new(kind: u16, flags: u16) -> Msg {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&0u32.to_ne_bytes());
        buf.extend_from_slice(&kind.to_ne_bytes());
        buf.extend_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        buf.extend_from_slice(&1u32.to_ne_bytes()); // sequence
        buf.extend_from_slice(&0u32.to_ne_bytes()); // port: the kernel fills it
        Msg { buf, open: Vec::new() }
    }

    /// `struct ifinfomsg`.
    fn ifinfo(mut self, family: u8, index: i32, flags: u32, change: u32) -> Msg {
        self.buf.extend_from_slice(&[family, 0]);
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf.extend_from_slice(&index.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&change.to_ne_bytes());
        self
    }

    fn attr(&mut self, kind: u16, data: &[u8]) -> &mut Msg {
        let len = u16::try_from(4 + data.len()).unwrap_or(u16::MAX);
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.pad();
        self
    }

    fn attr_str(&mut self, kind: u16, s: &str) -> &mut Msg {
        let mut data = s.as_bytes().to_vec();
        data.push(0);
        self.attr(kind, &data)
    }

    fn begin(&mut self, kind: u16) -> &mut Msg {
        self.open.push(self.buf.len());
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf.extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        self
    }

    fn end(&mut self) -> &mut Msg {
        if let Some(at) = self.open.pop() {
            let len = u16::try_from(self.buf.len() - at).unwrap_or(u16::MAX);
            self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
        }
        self
    }

    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }

    fn finish(mut self) -> Vec<u8> {
        let len = u32::try_from(self.buf.len()).unwrap_or(u32::MAX);
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf
    }
}

/// A route netlink socket of the calling thread's network namespace.
pub struct Netlink {
    sock: OwnedFd,
}

impl Netlink {
    pub fn open() -> Result<Netlink, Errno> {
        let sock = rustix::net::socket_with(
            AddressFamily::NETLINK,
            SocketType::RAW,
            SocketFlags::CLOEXEC,
            None, // protocol 0: NETLINK_ROUTE
        )?;
        Ok(Netlink { sock })
    }

    /// Sends one request and waits for its acknowledgement.
    fn request(&self, msg: Msg) -> Result<(), Errno> {
        let data = msg.finish();
        rustix::net::send(&self.sock, &data, SendFlags::empty())?;
        let mut reply = [0u8; 4096];
        loop {
            let (n, _) = rustix::net::recv(&self.sock, &mut reply[..], RecvFlags::empty())?;
            // Every reply here is one message: NLMSG_ERROR (0 is the ack).
            if n >= 20 && u16::from_ne_bytes([reply[4], reply[5]]) == NLMSG_ERROR {
                let err = i32::from_ne_bytes([reply[16], reply[17], reply[18], reply[19]]);
                return if err == 0 { Ok(()) } else { Err(Errno::from_raw_os_error(-err)) };
            }
        }
    }

    /// The index of interface `name` in this namespace.
    pub fn index(&self, name: &str) -> Result<u32, Errno> {
        rustix::net::netdevice::name_to_index(&self.sock, name)
    }

    /// A bridge named `name`; EEXIST if there is one.
    pub fn create_bridge(&self, name: &str) -> Result<(), Errno> {
        let mut m = Msg::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL).ifinfo(AF_UNSPEC, 0, 0, 0);
        m.attr_str(IFLA_IFNAME, name);
        m.begin(IFLA_LINKINFO).attr_str(IFLA_INFO_KIND, "bridge").end();
        self.request(m)
    }

    /// A veth pair: `host` on this side, enslaved to bridge `master`, and
    /// `peer` created directly in the namespace `netns`.
    pub fn create_veth(&self, host: &str, master: u32, peer: &str, netns: BorrowedFd<'_>) -> Result<(), Errno> {
        let mut m = Msg::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL).ifinfo(AF_UNSPEC, 0, 0, 0);
        m.attr_str(IFLA_IFNAME, host);
        m.attr(IFLA_MASTER, &master.to_ne_bytes());
        m.begin(IFLA_LINKINFO).attr_str(IFLA_INFO_KIND, "veth").begin(IFLA_INFO_DATA).begin(VETH_INFO_PEER);
        // The peer's own ifinfomsg comes first inside VETH_INFO_PEER.
        m.buf.extend_from_slice(&[AF_UNSPEC, 0, 0, 0]);
        m.buf.extend_from_slice(&[0u8; 12]);
        let fd = u32::try_from(rustix::fd::AsRawFd::as_raw_fd(&netns)).unwrap_or(u32::MAX);
        m.attr_str(IFLA_IFNAME, peer).attr(IFLA_NET_NS_FD, &fd.to_ne_bytes());
        m.end().end().end();
        self.request(m)
    }

    pub fn set_up(&self, index: u32) -> Result<(), Errno> {
        let index = i32::try_from(index).map_err(|_| Errno::INVAL)?;
        self.request(Msg::new(RTM_NEWLINK, 0).ifinfo(AF_UNSPEC, index, IFF_UP, IFF_UP))
    }

    /// Hairpin mode on a bridge port: a pod reaches itself through a port
    /// published on the host.
    pub fn set_hairpin(&self, index: u32) -> Result<(), Errno> {
        let index = i32::try_from(index).map_err(|_| Errno::INVAL)?;
        let mut m = Msg::new(RTM_NEWLINK, 0).ifinfo(AF_BRIDGE, index, 0, 0);
        m.begin(IFLA_PROTINFO).attr(IFLA_BRPORT_MODE, &[1]).end();
        self.request(m)
    }

    /// IPv4 address `addr`/`prefix` on interface `index`; EEXIST if it
    /// has it.
    pub fn add_address(&self, index: u32, addr: [u8; 4], prefix: u8) -> Result<(), Errno> {
        let mut m = Msg::new(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
        m.buf.extend_from_slice(&[AF_INET, prefix, 0, 0]);
        m.buf.extend_from_slice(&index.to_ne_bytes());
        m.attr(IFA_LOCAL, &addr).attr(IFA_ADDRESS, &addr);
        self.request(m)
    }

    /// The default route, through `gateway` on interface `index`.
    pub fn add_default_route(&self, index: u32, gateway: [u8; 4]) -> Result<(), Errno> {
        let mut m = Msg::new(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
        m.buf.extend_from_slice(&[AF_INET, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, 0, RTN_UNICAST]);
        m.buf.extend_from_slice(&0u32.to_ne_bytes());
        m.attr(RTA_GATEWAY, &gateway).attr(RTA_OIF, &index.to_ne_bytes());
        self.request(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_attributes_carry_their_length() {
        let mut m = Msg::new(RTM_NEWLINK, 0).ifinfo(AF_UNSPEC, 0, 0, 0);
        m.begin(IFLA_LINKINFO).attr_str(IFLA_INFO_KIND, "veth").end();
        let b = m.finish();
        assert_eq!(u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize, b.len());
        // 16 header + 16 ifinfomsg, then the nest: 4 + ("veth\0" 4 + 5 = 9, padded to 12).
        assert_eq!(b.len(), 32 + 4 + 12);
        assert_eq!(u16::from_ne_bytes([b[32], b[33]]), 16);
        assert_eq!(u16::from_ne_bytes([b[34], b[35]]), IFLA_LINKINFO | NLA_F_NESTED);
        assert_eq!(&b[40..45], b"veth\0");
    }
}
