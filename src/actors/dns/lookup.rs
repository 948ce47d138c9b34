//! What a question asks, from its name alone: which of our domains it is
//! under (`domain` or `alt_domain`, the one answers are named in), and
//! what the labels in front of it ask for; or the address a reverse
//! (`in-addr.arpa`, `ip6.arpa`) name stands for. Pure, so that the fuzz
//! target and the unit tests reach it without a server.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_proto::rr::Name;

/// What a name under our domain asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Service {
        name: String,
        tag: Option<String>,
        dc: Option<String>,
    },
    Node {
        node: String,
        dc: Option<String>,
    },
    /// A prepared query by name or ID (`NAME.query[.DC]`).
    Query {
        name: String,
        dc: Option<String>,
    },
    /// `<hex>.addr[.DC]`: the address spelled in hex (8 digits IPv4, 32
    /// IPv6), what SRV answers name an instance's own address by.
    Addr {
        ip: IpAddr,
    },
    /// The domain itself (SOA, NS).
    Apex,
    /// In our domain but not a name we know how to answer.
    Invalid,
}

/// The domains a DNS server answers for: `domain`, and `alt_domain` if
/// set. Both lowercase.
#[derive(Debug, Clone)]
pub struct Zones {
    pub domain: Name,
    pub alt: Option<Name>,
}

impl Zones {
    /// The zone `qname` is under (the longer when both match, as one may
    /// be under the other) and the labels in front of it, lowercased.
    pub fn split(&self, qname: &Name) -> Option<(&Name, Vec<String>)> {
        let lower = qname.to_lowercase();
        let zone = std::iter::once(&self.domain)
            .chain(self.alt.as_ref())
            .filter(|z| z.zone_of(&lower))
            .max_by_key(|z| z.num_labels())?;
        let own = lower.num_labels().saturating_sub(zone.num_labels()) as usize;
        let labels = lower
            .iter()
            .take(own)
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect();
        Some((zone, labels))
    }

    /// Whether `name` is under one of our domains.
    pub fn contains(&self, name: &Name) -> bool {
        self.split(name).is_some()
    }
}

/// What a query name asks of `domain`, or None when the name is outside
/// it (a question for the recursors).
pub fn lookup_in(domain: &Name, qname: &Name) -> Option<Lookup> {
    let zones = Zones {
        domain: domain.to_lowercase(),
        alt: None,
    };
    zones.split(qname).map(|(_, labels)| parse_labels(&labels))
}

/// Parses the labels in front of the domain (lowercased, domain removed).
pub fn parse_labels(labels: &[String]) -> Lookup {
    let n = labels.len();
    if n == 0 {
        return Lookup::Apex;
    }
    // Find the type label and the optional datacenter after it.
    let kind = |l: &str| matches!(l, "service" | "node" | "query" | "addr");
    let (kind_at, dc) = if kind(&labels[n - 1]) {
        (Some(n - 1), None)
    } else if n >= 2 && kind(&labels[n - 2]) {
        (Some(n - 2), Some(labels[n - 1].clone()))
    } else if n >= 3 && labels[n - 1] == "dc" && kind(&labels[n - 3]) {
        (Some(n - 3), Some(labels[n - 2].clone()))
    } else {
        (None, None)
    };
    let Some(at) = kind_at else {
        // `_name._tcp.consul`: the service label may be left out for SRV.
        if n == 2 && labels[0].starts_with('_') && labels[1].starts_with('_') {
            return rfc2782(&labels[0], &labels[1], None);
        }
        return Lookup::Invalid;
    };
    let rest = &labels[..at];
    if rest.is_empty() {
        return Lookup::Invalid;
    }
    match labels[at].as_str() {
        "node" => Lookup::Node {
            node: rest.join("."),
            dc,
        },
        // `_NAME._tcp.query` names the query NAME; otherwise the labels
        // are the name, dots and all (Consul joins them).
        "query" => {
            let name = if rest.len() == 2 && rest[0].starts_with('_') && rest[1].starts_with('_') {
                rest[0].trim_start_matches('_').to_string()
            } else {
                rest.join(".")
            };
            if name.is_empty() {
                return Lookup::Invalid;
            }
            Lookup::Query { name, dc }
        }
        // The datacenter of an `.addr.` name says nothing: the address is
        // the answer wherever it is.
        "addr" => match rest {
            [hex] => hex_ip(hex).map_or(Lookup::Invalid, |ip| Lookup::Addr { ip }),
            _ => Lookup::Invalid,
        },
        _ => {
            if rest.len() == 2 && rest[0].starts_with('_') && rest[1].starts_with('_') {
                return rfc2782(&rest[0], &rest[1], dc);
            }
            let name = rest[rest.len() - 1].clone();
            // Everything before the last label is the tag (tags may hold dots).
            let tag = (rest.len() > 1).then(|| rest[..rest.len() - 1].join("."));
            Lookup::Service { name, tag, dc }
        }
    }
}

fn rfc2782(service: &str, proto: &str, dc: Option<String>) -> Lookup {
    let name = service.trim_start_matches('_').to_string();
    let proto = proto.trim_start_matches('_');
    let tag = (!matches!(proto, "tcp" | "udp")).then(|| proto.to_string());
    if name.is_empty() {
        return Lookup::Invalid;
    }
    Lookup::Service { name, tag, dc }
}

/// The label an `.addr.` name spells `ip` with: its bytes in hex, 8
/// digits for IPv4, 32 for IPv6.
pub fn ip_hex(ip: IpAddr) -> String {
    let bytes = match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    };
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The address an `.addr.` label spells, if it spells one.
pub fn hex_ip(label: &str) -> Option<IpAddr> {
    // Only hex digits: Rust's integer parsing would take a `+` sign.
    if !label.bytes().all(|b| b.is_ascii_hexdigit()) || !label.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Vec<u8> = (0..label.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&label[i..i + 2], 16).ok())
        .collect::<Option<_>>()?;
    match bytes.len() {
        4 => Some(IpAddr::V4(Ipv4Addr::new(
            bytes[0], bytes[1], bytes[2], bytes[3],
        ))),
        16 => {
            let octets: [u8; 16] = bytes.try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(octets)))
        }
        _ => None,
    }
}

/// The address a reverse name stands for: all four octets under
/// `in-addr.arpa.`, or all 32 nibbles under `ip6.arpa.`. Anything shorter
/// names a network, which has no PTR of ours.
pub fn reverse_ip(qname: &Name) -> Option<IpAddr> {
    let labels: Vec<String> = qname
        .to_lowercase()
        .iter()
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect();
    match labels.as_slice() {
        [a, b, c, d, inaddr, arpa] if inaddr == "in-addr" && arpa == "arpa" => {
            let octet = |s: &str| {
                // Digits only (no `+`), and no leading zero: `01` is not
                // how an octet is written in a reverse name.
                let plain =
                    s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
                plain.then(|| s.parse::<u8>().ok()).flatten()
            };
            Some(IpAddr::V4(Ipv4Addr::new(
                octet(d)?,
                octet(c)?,
                octet(b)?,
                octet(a)?,
            )))
        }
        [nibbles @ .., ip6, arpa] if nibbles.len() == 32 && ip6 == "ip6" && arpa == "arpa" => {
            let mut v: u128 = 0;
            for n in nibbles.iter().rev() {
                if n.len() != 1 {
                    return None;
                }
                v = (v << 4) | u128::from(u8::from_str_radix(n, 16).ok()?);
            }
            Some(IpAddr::V6(Ipv6Addr::from(v)))
        }
        _ => None,
    }
}

/// Whether `qname` is a reverse-lookup name (`*.arpa.`), which the
/// PTR handler answers or passes on.
pub fn is_reverse(qname: &Name) -> bool {
    qname
        .iter()
        .next_back()
        .is_some_and(|l| l.eq_ignore_ascii_case(b"arpa"))
}
