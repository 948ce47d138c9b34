//! Go's JSON encodings for the fields Consul's ACL objects carry: times
//! (RFC 3339, Go's zero time for "unset"), durations (integer nanoseconds
//! out; nanoseconds or a Go duration string such as `"1h30m"` in), byte
//! slices (base64), and slices that a Go client may send as `null`.
//!
//! Kept in `structs` (the leaf every layer imports) so that the HTTP layer,
//! Raft entries and snapshots all decode these fields the same way.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serializer};

/// Go's `time.Time{}` (0001-01-01T00:00:00Z): what Consul shows for a time
/// that was never set.
pub fn go_zero_time() -> DateTime<Utc> {
    // Seconds from 0001-01-01 to 1970-01-01; always in chrono's range.
    DateTime::<Utc>::from_timestamp(-62_135_596_800, 0).unwrap_or_default()
}

/// `null` decodes as the empty value, as Go decodes a `null` slice.
pub fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A Go duration string: decimal numbers with an optional fraction, each
/// followed by a unit (`ns`, `us`, `µs`, `ms`, `s`, `m`, `h`), e.g. `90s`,
/// `1.5h`, `1h30m`. `"0"` alone is zero. Negative durations are refused:
/// nothing in an ACL object may be negative.
pub fn parse_go_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if s.starts_with('-') {
        return Err(format!("invalid duration {s:?}: it must not be negative"));
    }
    let mut total = 0f64;
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_end);
        let n: f64 = num.parse().map_err(|_| format!("invalid duration {s:?}"))?;
        let unit_end = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_end);
        let seconds = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => return Err(format!("invalid duration {s:?}: missing unit")),
            _ => return Err(format!("invalid duration {s:?}: unknown unit {unit:?}")),
        };
        total += n * seconds;
        rest = tail;
    }
    Duration::try_from_secs_f64(total).map_err(|_| format!("invalid duration {s:?}"))
}

/// An optional `time.Duration`: written as integer nanoseconds (Go's
/// encoding), read from nanoseconds or a duration string (what Consul's
/// API accepts for `ExpirationTTL`). Zero reads as absent.
pub mod opt_duration {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_u64(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
            None => s.serialize_none(),
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Nanos(u64),
        Float(f64),
        Text(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let parsed = match Option::<Raw>::deserialize(d)? {
            None => return Ok(None),
            Some(Raw::Nanos(n)) => Duration::from_nanos(n),
            Some(Raw::Float(f)) if f >= 0.0 && f.is_finite() => Duration::from_nanos(f as u64),
            Some(Raw::Float(f)) => {
                return Err(serde::de::Error::custom(format!("invalid duration {f}")))
            }
            Some(Raw::Text(t)) => parse_go_duration(&t).map_err(serde::de::Error::custom)?,
        };
        Ok((!parsed.is_zero()).then_some(parsed))
    }
}

/// A Go `[]byte` that Consul computes itself (`Hash`): written as base64
/// (`null` when empty); read leniently, since clients echo it back in any
/// shape and the state store recomputes it anyway.
pub mod hash_bytes {
    use base64::Engine;

    use super::*;

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        if v.is_empty() {
            s.serialize_none()
        } else {
            s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(v))
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        Ok(match s {
            None => Vec::new(),
            Some(s) => base64::engine::general_purpose::STANDARD
                .decode(s.as_bytes())
                .unwrap_or_else(|_| s.into_bytes()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_parse_like_go() {
        let ok = |s: &str| parse_go_duration(s).unwrap();
        assert_eq!(ok("0"), Duration::ZERO);
        assert_eq!(ok("90s"), Duration::from_secs(90));
        assert_eq!(ok("1h30m"), Duration::from_secs(5400));
        assert_eq!(ok("1.5h"), Duration::from_secs(5400));
        assert_eq!(ok("250ms"), Duration::from_millis(250));
        for bad in ["", "-1s", "10", "5x", "h"] {
            assert!(parse_go_duration(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn zero_time_is_gos() {
        assert_eq!(go_zero_time().to_rfc3339(), "0001-01-01T00:00:00+00:00");
    }
}
