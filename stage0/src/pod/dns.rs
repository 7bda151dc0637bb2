//! The pod's /etc/resolv.conf: the host's by default, or built from
//! `--dns`, `--dns-search`, `--dns-opt`; `--dns=none` keeps the image's.

use std::net::IpAddr;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DnsOptions {
    pub servers: Vec<String>,
    pub search: Vec<String>,
    pub options: Vec<String>,
}

fn lines<'a>(text: &'a str, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    text.lines().filter(move |l| l.split_whitespace().next() == Some(key))
}

/// What to write as the pod's resolv.conf, given the host's (None: leave
/// the image's file alone).
pub fn resolv_conf(o: &DnsOptions, host: &str) -> Result<Option<String>, String> {
    match o.servers.as_slice() {
        [n] if n == "none" => {
            if !o.search.is_empty() || !o.options.is_empty() {
                return Err("--dns=none cannot be combined with --dns-search or --dns-opt".into());
            }
            return Ok(None);
        }
        [h] if h == "host" && o.search.is_empty() && o.options.is_empty() => return Ok(Some(host.to_string())),
        _ => {}
    }
    let mut out = String::new();
    let explicit: Vec<&String> = o.servers.iter().filter(|s| *s != "host").collect();
    if explicit.is_empty() {
        for l in lines(host, "nameserver") {
            out.push_str(l.trim());
            out.push('\n');
        }
    }
    for s in &explicit {
        let ip: IpAddr = s.parse().map_err(|_| format!("--dns {s:?} is not an IP address (or none, host)"))?;
        out.push_str(&format!("nameserver {ip}\n"));
    }
    for d in &o.search {
        if d.is_empty() || d.contains(char::is_whitespace) {
            return Err(format!("invalid --dns-search domain {d:?}"));
        }
    }
    if !o.search.is_empty() {
        out.push_str(&format!("search {}\n", o.search.join(" ")));
    } else if explicit.is_empty() {
        lines(host, "search").chain(lines(host, "domain")).for_each(|l| {
            out.push_str(l.trim());
            out.push('\n');
        });
    }
    if !o.options.is_empty() {
        out.push_str(&format!("options {}\n", o.options.join(" ")));
    } else if explicit.is_empty() {
        lines(host, "options").for_each(|l| {
            out.push_str(l.trim());
            out.push('\n');
        });
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "# generated\nnameserver 10.0.0.2\nsearch corp.example\noptions ndots:2\n";

    fn o(servers: &[&str], search: &[&str], options: &[&str]) -> DnsOptions {
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect();
        DnsOptions { servers: v(servers), search: v(search), options: v(options) }
    }

    #[test]
    fn host_by_default_and_overrides() {
        assert_eq!(
            resolv_conf(&o(&[], &[], &[]), HOST).unwrap().unwrap(),
            "nameserver 10.0.0.2\nsearch corp.example\noptions ndots:2\n"
        );
        assert_eq!(resolv_conf(&o(&["host"], &[], &[]), HOST).unwrap().unwrap(), HOST);
        assert_eq!(resolv_conf(&o(&["none"], &[], &[]), HOST).unwrap(), None);
        assert_eq!(
            resolv_conf(&o(&["192.0.2.1", "2001:db8::1"], &["a.example", "b.example"], &["ndots:1"]), HOST)
                .unwrap()
                .unwrap(),
            "nameserver 192.0.2.1\nnameserver 2001:db8::1\nsearch a.example b.example\noptions ndots:1\n"
        );
        assert_eq!(
            resolv_conf(&o(&[], &["x.example"], &[]), HOST).unwrap().unwrap(),
            "nameserver 10.0.0.2\nsearch x.example\noptions ndots:2\n"
        );
    }

    #[test]
    fn bad_values() {
        assert!(resolv_conf(&o(&["not-an-ip"], &[], &[]), HOST).is_err());
        assert!(resolv_conf(&o(&["none"], &["a"], &[]), HOST).is_err());
        assert!(resolv_conf(&o(&[], &["a b"], &[]), HOST).is_err());
    }
}
