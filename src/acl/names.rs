//! Which names Consul accepts for policies, roles and identities (its
//! `acl/validation.go`), the one place the API and the state store ask.
//! Checked by hand (each pattern is one character class and a position
//! rule), so no regex has to be compiled or kept around.

use thiserror::Error;

/// Consul's limit on a policy name's length.
const POLICY_NAME_MAX_LEN: usize = 128;
/// Consul's limit on role and identity names.
const ROLE_NAME_MAX_LEN: usize = 256;
const IDENTITY_NAME_MAX_LEN: usize = 256;

/// Why a policy name is refused, in Consul's words.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum PolicyNameError {
    #[error("Invalid Policy: invalid Name. Length must be greater than 0 and less than {POLICY_NAME_MAX_LEN}")]
    Length,
    #[error("Invalid Policy: invalid Name. Names cannot be prefixed with '/' or 'builtin/'")]
    Reserved,
    #[error("Invalid Policy: invalid Name. Only alphanumeric characters, a single '/', '-' and '_' are allowed")]
    Chars,
}

/// `[A-Za-z0-9_-]`, the characters of every user-made ACL name.
fn name_chars(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Consul's current policy-name rule: 1-128 characters of `[A-Za-z0-9_-]`
/// with at most one `/` after the first character; `builtin/` is Consul's
/// own prefix (`builtin/global-read-only`), which users cannot take.
pub fn validate_policy_name(name: &str) -> Result<(), PolicyNameError> {
    if name.is_empty() || name.len() > POLICY_NAME_MAX_LEN {
        return Err(PolicyNameError::Length);
    }
    if name.starts_with('/') || name.starts_with("builtin/") {
        return Err(PolicyNameError::Reserved);
    }
    let (first, rest) = name.split_once('/').unwrap_or((name, ""));
    if first.is_empty() || !name_chars(first) || !name_chars(rest) {
        return Err(PolicyNameError::Chars);
    }
    Ok(())
}

/// Consul's `^[A-Za-z0-9\-_]{1,256}$` for role names.
pub fn valid_role_name(name: &str) -> bool {
    (1..=ROLE_NAME_MAX_LEN).contains(&name.len()) && name_chars(name)
}

/// Consul's `^[a-z0-9]([a-z0-9\-_]*[a-z0-9])?$`, at most 256 characters,
/// for service identity names: stricter than catalog names, since the name
/// is pasted into rules text.
pub fn valid_service_identity_name(name: &str) -> bool {
    let edge = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = name.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(&first), Some(&last)) => {
            bytes.len() <= IDENTITY_NAME_MAX_LEN
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
