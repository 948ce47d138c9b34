//! Fitting an answer into what the transport carries, as Consul does:
//! plain UDP holds at most `udp_answer_limit` answers (never over 8) and
//! 512 bytes, EDNS UDP the client's advertised size, TCP 64 KiB. Answers
//! are cut from the end (they are shuffled already), the authority
//! section goes first, and the additional section keeps only what the
//! remaining answers name, so that no SRV target is left without its
//! address nor an address without its SRV. The caller sets TC only with
//! `enable_truncate`.

use std::collections::HashSet;

use hickory_proto::rr::{Name, RData, Record};

/// Consul's ceiling on answers in a plain UDP response, whatever
/// `udp_answer_limit` says: more would not fit 512 bytes anyway.
pub const MAX_UDP_ANSWERS: usize = 8;
/// The largest UDP payload Consul sends (64 KiB less IP and UDP headers).
pub const MAX_UDP_SIZE: usize = 65535 - 68;
/// The largest TCP message Consul sends (64 KiB less DNS overhead).
pub const MAX_TCP_SIZE: usize = 65523;

/// What one response may hold.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_answers: Option<usize>,
    pub max_bytes: usize,
}

/// The three sections of a response that trimming touches.
#[derive(Debug)]
pub struct Sections<'a> {
    pub answers: &'a mut Vec<Record>,
    pub authorities: &'a mut Vec<Record>,
    pub additionals: &'a mut Vec<Record>,
}

/// Cuts the sections to `limits`; `size` measures the encoded response
/// the sections would make. Returns whether answers were cut. One
/// answer is always kept, even when it alone is too big (the transport
/// then sets TC itself).
pub fn trim(
    s: Sections<'_>,
    limits: Limits,
    size: impl Fn(&[Record], &[Record], &[Record]) -> usize,
) -> bool {
    let original = s.answers.len();
    // The additionals as the answer came: copied only once cutting starts.
    let mut pool: Option<Vec<Record>> = None;
    if let Some(max) = limits.max_answers {
        if s.answers.len() > max {
            let pool = pool.get_or_insert_with(|| s.additionals.clone());
            s.answers.truncate(max.max(1));
            *s.additionals = related(s.answers, pool);
        }
    }
    let fits = |a: &[Record], n: &[Record], d: &[Record]| size(a, n, d) <= limits.max_bytes;
    if s.answers.len() > 1 && !fits(s.answers, s.authorities, s.additionals) {
        s.authorities.clear();
        if !fits(s.answers, s.authorities, s.additionals) {
            let pool = pool.get_or_insert_with(|| s.additionals.clone());
            // The most answers that fit: the size grows with the count, so
            // a binary search over it finds them in a few encodings.
            let all = std::mem::take(s.answers);
            let (mut lo, mut hi) = (1, all.len());
            while lo < hi {
                let mid = (lo + hi).div_ceil(2);
                let extra = related(&all[..mid], pool);
                if fits(&all[..mid], s.authorities, &extra) {
                    lo = mid;
                } else {
                    hi = mid - 1;
                }
            }
            *s.answers = all;
            s.answers.truncate(lo);
            *s.additionals = related(s.answers, pool);
        }
    }
    s.answers.len() < original
}

/// The records of `pool` that `answers` lead to: by owner name, SRV
/// target or CNAME target, following CNAMEs within the pool.
fn related(answers: &[Record], pool: &[Record]) -> Vec<Record> {
    let mut names: HashSet<Name> = HashSet::new();
    for r in answers {
        names.insert(r.name.clone());
        match &r.data {
            RData::SRV(srv) => {
                names.insert(srv.target.clone());
            }
            RData::CNAME(c) => {
                names.insert(c.0.clone());
            }
            _ => {}
        }
    }
    let mut keep = vec![false; pool.len()];
    // A CNAME kept names another record to keep: repeat until nothing new.
    loop {
        let mut grew = false;
        for (i, r) in pool.iter().enumerate() {
            if !keep[i] && names.contains(&r.name) {
                keep[i] = true;
                grew = true;
                if let RData::CNAME(c) = &r.data {
                    names.insert(c.0.clone());
                }
            }
        }
        if !grew {
            break;
        }
    }
    pool.iter()
        .zip(keep)
        .filter(|(_, k)| *k)
        .map(|(r, _)| r.clone())
        .collect()
}

/// An upper bound on the wire size of `records`: without name
/// compression, which only shrinks them. None for a record type it does
/// not know (the caller then encodes to measure). Computing it costs far
/// less than encoding, and most answers are well under their limit.
pub fn wire_bound(records: &[Record]) -> Option<usize> {
    records
        .iter()
        .map(|r| Some(name_len(&r.name) + 10 + rdata_bound(&r.data)?))
        .sum()
}

/// A name's uncompressed wire length: each label with its length byte,
/// and the root.
pub fn name_len(n: &Name) -> usize {
    n.iter().map(|l| l.len() + 1).sum::<usize>() + 1
}

fn rdata_bound(d: &RData) -> Option<usize> {
    Some(match d {
        RData::A(_) => 4,
        RData::AAAA(_) => 16,
        RData::SRV(s) => 6 + name_len(&s.target),
        RData::CNAME(c) => name_len(&c.0),
        RData::NS(n) => name_len(&n.0),
        RData::PTR(p) => name_len(&p.0),
        RData::TXT(t) => t.txt_data.iter().map(|s| s.len() + 1).sum(),
        RData::SOA(s) => name_len(&s.mname) + name_len(&s.rname) + 20,
        _ => return None,
    })
}
