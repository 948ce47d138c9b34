//! Which names Consul accepts for policies and identities. Checked by
//! hand (the patterns are one character class each), so no regex has to
//! be compiled or kept around.

/// Consul's `^[A-Za-z0-9\-_]{1,128}$` for policy names (the ACL endpoint's
/// `validPolicyName`). Builtin names such as `builtin/global-read-only`
/// deliberately fail it: users cannot create them.
pub fn valid_policy_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Consul's `^[a-z0-9]([a-z0-9\-_]*[a-z0-9])?$`, at most 256 characters,
/// for service identity names: stricter than catalog names, since the name
/// is pasted into rules text.
pub fn valid_service_identity_name(name: &str) -> bool {
    let edge = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = name.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(&first), Some(&last)) => {
            bytes.len() <= 256
                && edge(first)
                && edge(last)
                && bytes.iter().all(|&b| edge(b) || b == b'-' || b == b'_')
        }
        _ => false,
    }
}

/// Node identity names follow the same pattern as service identity names.
pub fn valid_node_identity_name(name: &str) -> bool {
    valid_service_identity_name(name)
}
