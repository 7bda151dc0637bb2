//! Addresses of the default network, as host-local keeps them: in the
//! network's data directory, one file per leased address (named by the
//! address, holding the container ID and interface), `last_reserved_ip.0`
//! for round-robin allocation, all under an `flock` on `lock`.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// An IPv4 subnet, `a.b.c.d/len`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subnet {
    pub base: u32,
    pub prefix: u8,
}

impl Subnet {
    pub fn parse(s: &str) -> Option<Subnet> {
        let (addr, len) = s.split_once('/')?;
        let prefix: u8 = len.parse().ok().filter(|p| (8..=30).contains(p))?;
        let ip: std::net::Ipv4Addr = addr.parse().ok()?;
        let mask = u32::MAX << (32 - prefix);
        Some(Subnet { base: u32::from(ip) & mask, prefix })
    }

    /// The gateway (the bridge's address): the first host address.
    pub fn gateway(&self) -> u32 {
        self.base + 1
    }

    /// Addresses pods may get: from the second host address to the last
    /// before broadcast.
    fn hosts(&self) -> std::ops::RangeInclusive<u32> {
        let size = 1u32 << (32 - self.prefix);
        (self.base + 2)..=(self.base + size - 2)
    }
}

pub fn dotted(ip: u32) -> String {
    std::net::Ipv4Addr::from(ip).to_string()
}

/// The leases of one network, locked while it lives.
pub struct Leases {
    dir: PathBuf,
    _lock: File,
}

impl Leases {
    pub fn lock(data_dir: &Path, network: &str) -> io::Result<Leases> {
        let dir = data_dir.join(network);
        std::fs::create_dir_all(&dir)?;
        let lock = File::create(dir.join("lock"))?;
        lock.lock()?;
        Ok(Leases { dir, _lock: lock })
    }

    fn leased(&self) -> io::Result<Vec<(u32, String)>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.dir)? {
            let e = e?;
            let name = e.file_name();
            let Some(ip) = name.to_str().and_then(|n| n.parse::<std::net::Ipv4Addr>().ok()) else { continue };
            out.push((u32::from(ip), std::fs::read_to_string(e.path()).unwrap_or_default()));
        }
        Ok(out)
    }

    /// The network's directory (its leases, its lock, its markers).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether no address is leased.
    pub fn is_empty(&self) -> io::Result<bool> {
        Ok(self.leased()?.is_empty())
    }

    /// Leases the next free address after the last one given, for
    /// `owner` (`container ID\ninterface`).
    pub fn allocate(&self, subnet: &Subnet, owner: &str) -> io::Result<u32> {
        let taken: std::collections::HashSet<u32> = self.leased()?.into_iter().map(|(ip, _)| ip).collect();
        let last_file = self.dir.join("last_reserved_ip.0");
        let last = std::fs::read_to_string(&last_file)
            .ok()
            .and_then(|s| s.trim().parse::<std::net::Ipv4Addr>().ok())
            .map(u32::from)
            .filter(|ip| subnet.hosts().contains(ip));
        let hosts = subnet.hosts();
        let start = last.map_or(*hosts.start(), |l| if l == *hosts.end() { *hosts.start() } else { l + 1 });
        let order = (start..=*hosts.end()).chain(*hosts.start()..start);
        for ip in order {
            if taken.contains(&ip) {
                continue;
            }
            match std::fs::OpenOptions::new().write(true).create_new(true).open(self.dir.join(dotted(ip))) {
                Ok(mut f) => {
                    std::io::Write::write_all(&mut f, owner.as_bytes())?;
                    std::fs::write(&last_file, dotted(ip))?;
                    return Ok(ip);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::other(format!("no free address left in {}/{}", dotted(subnet.base), subnet.prefix)))
    }

    /// Releases what `owner` holds; harmless when it holds nothing.
    pub fn release(&self, owner: &str) -> io::Result<()> {
        for (ip, holder) in self.leased()? {
            if holder.trim() == owner.trim() {
                std::fs::remove_file(self.dir.join(dotted(ip)))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets() {
        let s = Subnet::parse("10.231.0.0/16").unwrap();
        assert_eq!((dotted(s.base), s.prefix, dotted(s.gateway())), ("10.231.0.0".into(), 16, "10.231.0.1".into()));
        assert_eq!(Subnet::parse("10.231.7.9/16").unwrap(), s, "host bits ignored");
        for bad in ["10.231.0.0", "10.231.0.0/33", "10.231.0.0/4", "x/16", "10.231.0/16"] {
            assert!(Subnet::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn leases_go_round_and_are_released_by_owner() {
        let d = tempfile::tempdir().unwrap();
        let s = Subnet::parse("10.9.0.0/29").unwrap(); // hosts .2 to .6
        let l = Leases::lock(d.path(), "n").unwrap();
        assert!(l.is_empty().unwrap());
        let a = l.allocate(&s, "a\neth0").unwrap();
        let b = l.allocate(&s, "b\neth0").unwrap();
        assert_eq!((dotted(a), dotted(b)), ("10.9.0.2".into(), "10.9.0.3".into()));
        l.release("a\neth0").unwrap();
        // Round robin: .4 next, not the freed .2.
        assert_eq!(dotted(l.allocate(&s, "c\neth0").unwrap()), "10.9.0.4");
        for o in ["d", "e", "f"] {
            l.allocate(&s, o).unwrap();
        }
        assert!(l.allocate(&s, "g").unwrap_err().to_string().contains("no free address"));
        for o in ["b\neth0", "c\neth0", "d", "e", "f"] {
            l.release(o).unwrap();
        }
        assert!(l.is_empty().unwrap());
    }
}
