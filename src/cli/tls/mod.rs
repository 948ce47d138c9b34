//! `meridian tls ...`: Consul's `tls ca create` and `tls cert create`, which
//! make the agent CA and the server, client and CLI certificates it signs,
//! with Consul's file names, subjects, SANs and key usages, so a Consul
//! tutorial's TLS steps work with `consul` replaced by `meridian`.
//!
//! Files: `ca.rs` the CA; `cert.rs` the leaf certificates; `files.rs` the
//! file side (names that must not exist yet, key files private, reading
//! the CA back, Consul's SEC1 keys).

mod ca;
mod cert;
mod files;

use anyhow::Result;
use clap::Subcommand;

#[derive(Subcommand)]
pub enum TlsCmd {
    /// Creates and manages certificate authorities.
    Ca {
        #[command(subcommand)]
        cmd: CaCmd,
    },
    /// Creates and manages certificates.
    Cert {
        #[command(subcommand)]
        cmd: CertCmd,
    },
}

#[derive(Subcommand)]
pub enum CaCmd {
    /// Creates a new certificate authority.
    Create(ca::Args),
}

#[derive(Subcommand)]
pub enum CertCmd {
    /// Creates a new certificate.
    Create(cert::Args),
}

pub fn run(cmd: TlsCmd) -> Result<i32> {
    match cmd {
        TlsCmd::Ca {
            cmd: CaCmd::Create(a),
        } => Ok(ca::run(a)?),
        TlsCmd::Cert {
            cmd: CertCmd::Create(a),
        } => Ok(cert::run(a)?),
    }
}

/// What can go wrong making a CA or a certificate; each names the file or
/// flag at fault.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{0} already exists.")]
    Exists(String),
    #[error("Please provide either -server, -client, or -cli")]
    Kind,
    #[error("-node requires -server")]
    NodeWithoutServer,
    #[error("Please provide the {0}")]
    Missing(&'static str),
    #[error("-days must be at least 1, not {0}")]
    Days(i64),
    #[error("-additional-ipaddress {0:?} is not an IP address")]
    IpAddress(String),
    #[error("invalid name {name:?}")]
    Name { name: String, source: rcgen::Error },
    #[error("Error reading {what} {path}")]
    Read {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("Error parsing {what} {path}: {reason}")]
    Parse {
        what: &'static str,
        path: String,
        reason: String,
    },
    #[error("Error writing {path}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("Could not find a filename that doesn't already exist")]
    NoFreeName,
    #[error("error generating {what}")]
    Generate {
        what: &'static str,
        source: rcgen::Error,
    },
}

/// Validity from now for `days` days, as Consul's `-days`.
fn validity(days: i64) -> Result<(time::OffsetDateTime, time::OffsetDateTime), TlsError> {
    if days < 1 {
        return Err(TlsError::Days(days));
    }
    let now = time::OffsetDateTime::now_utc();
    Ok((now, now + time::Duration::days(days)))
}

/// A random positive 127-bit serial number: Consul draws 128 bits; one less
/// keeps the DER integer within 16 bytes without a sign byte.
fn serial() -> u128 {
    rand::random::<u128>() >> 1
}
