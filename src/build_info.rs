//! What this binary was built from, captured by `build.rs`: the version,
//! the git revision and the build date that `meridian version`,
//! `/v1/agent/self` and the agent's gossip tags all report.

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The short git commit (`unknown` when built outside a git checkout).
pub const REVISION: &str = env!("MERIDIAN_REVISION");

/// UTC, RFC 3339 (`SOURCE_DATE_EPOCH` when set, for reproducible builds).
pub const BUILD_DATE: &str = env!("MERIDIAN_BUILD_DATE");
