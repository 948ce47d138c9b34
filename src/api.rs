//! Conventions of the agent's HTTP API that every client of it shares
//! (the CLI's client and the watch runner). It sits below both so that
//! neither has to borrow from the other.

/// Percent-encodes a path or query component, keeping `/` in keys.
pub fn enc(s: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'/')
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, SET).to_string()
}
