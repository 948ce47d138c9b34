//! The records of an answer, built from catalog rows: the names Consul
//! gives things (`<node>.node.<dc>.<domain>`, `<hex>.addr.<dc>.<domain>`,
//! `<service>.service.<dc>.<domain>`), address records, node meta as TXT,
//! and where an instance is reached (its node, its own IP, or a host
//! name). Pure: no reads, no I/O.

use std::net::IpAddr;

use hickory_proto::rr::rdata::{A, AAAA, CNAME, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::lookup::ip_hex;
use crate::state::structs::DnsInstance;

/// `<label>.<kind>.<dc>.<zone>`, or None when the label cannot be a DNS
/// label (a node name with a space in it has no DNS name).
pub fn canonical(label: &str, kind: &str, dc: &str, zone: &Name) -> Option<Name> {
    Name::from_ascii(format!("{label}.{kind}.{dc}"))
        .and_then(|n| n.append_domain(zone))
        .ok()
}

/// `<node>.node.<dc>.<zone>`.
pub fn node_name(node: &str, dc: &str, zone: &Name) -> Option<Name> {
    canonical(node, "node", dc, zone)
}

/// `<hex>.addr.<dc>.<zone>`: the SRV target of an instance with its own
/// address, which `.addr.` lookups answer with that address.
pub fn addr_name(ip: IpAddr, dc: &str, zone: &Name) -> Option<Name> {
    canonical(&ip_hex(ip), "addr", dc, zone)
}

pub fn addr_record(name: &Name, ttl: u32, ip: IpAddr) -> Record {
    match ip {
        IpAddr::V4(v4) => Record::from_rdata(name.clone(), ttl, RData::A(A(v4))),
        IpAddr::V6(v6) => Record::from_rdata(name.clone(), ttl, RData::AAAA(AAAA(v6))),
    }
}

pub fn cname_record(name: &Name, ttl: u32, target: &Name) -> Record {
    Record::from_rdata(name.clone(), ttl, RData::CNAME(CNAME(target.clone())))
}

/// Whether a question of type `qtype` takes an address record for `ip`.
pub fn wants(qtype: RecordType, ip: &IpAddr) -> bool {
    matches!(
        (qtype, ip),
        (RecordType::A, IpAddr::V4(_)) | (RecordType::AAAA, IpAddr::V6(_)) | (RecordType::ANY, _)
    )
}

/// An address as Consul reads it: an IP, else a host name (made fully
/// qualified); None when it is neither (empty, or not a DNS name).
pub enum Address {
    Ip(IpAddr),
    Host(Name),
}

pub fn address(s: &str) -> Option<Address> {
    if s.is_empty() {
        return None;
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(Address::Ip(ip));
    }
    let mut name = Name::from_ascii(s).ok()?;
    name.set_fqdn(true);
    Some(Address::Host(name))
}

/// Where one instance is reached, which decides its records.
pub enum Reach {
    /// At its node's address: named by the node (`<node>.node.<dc>`).
    Node(IpAddr),
    /// At an address of its own: named by the address
    /// (`<hex>.addr.<dc>`), so that no answer gives the node's name an
    /// address the node's own lookup would contradict.
    Own(IpAddr),
    /// At a host name (the service's address, or the node's when the
    /// service has none): a CNAME to it, and the SRV target is the name.
    Host(Name),
}

/// Consul's choice for instance `n` asked as `qname`: the service's own
/// address when set and different from the node's, else the node's.
pub fn reach(n: &DnsInstance, qname: &Name) -> Option<Reach> {
    let node = address(&n.node_address);
    match (address(&n.address), node) {
        (None, Some(Address::Ip(ip))) => Some(Reach::Node(ip)),
        (None, Some(Address::Host(h))) => Some(Reach::Host(h)),
        (None, None) => None,
        (Some(Address::Ip(ip)), Some(Address::Ip(node_ip))) if ip == node_ip => {
            Some(Reach::Node(ip))
        }
        (Some(Address::Ip(ip)), _) => Some(Reach::Own(ip)),
        // A service whose address is the very name asked would CNAME to
        // itself: Consul answers with the node's address instead.
        (Some(Address::Host(h)), Some(Address::Ip(node_ip))) if h == *qname => {
            Some(Reach::Node(node_ip))
        }
        (Some(Address::Host(h)), _) => Some(Reach::Host(h)),
    }
}

/// Node meta as TXT records named `name`: `key=value` (RFC 1464, with
/// its escapes), or the bare value for keys starting `rfc1035-`, as
/// Consul writes them.
pub fn meta_txt(
    name: &Name,
    meta: &std::collections::BTreeMap<String, String>,
    ttl: u32,
) -> Vec<Record> {
    meta.iter()
        .map(|(k, v)| {
            let text = if k.to_ascii_lowercase().starts_with("rfc1035-") {
                v.clone()
            } else {
                rfc1464(k, v)
            };
            Record::from_rdata(name.clone(), ttl, RData::TXT(TXT::new(vec![text])))
        })
        .collect()
}

/// `key=value` with RFC 1464's escapes: a backquote doubled, `=` in the
/// key quoted, and the key's leading and trailing spaces quoted (they
/// would otherwise be dropped by a reader).
pub fn rfc1464(key: &str, value: &str) -> String {
    let key = key.replace('`', "``").replace('=', "`=");
    let trimmed_start = key.trim_start_matches(' ');
    let leading = key.len() - trimmed_start.len();
    let core = trimmed_start.trim_end_matches(' ');
    let trailing = trimmed_start.len() - core.len();
    format!(
        "{}{}{}={}",
        "` ".repeat(leading),
        core,
        "` ".repeat(trailing),
        value.replace('`', "``")
    )
}
