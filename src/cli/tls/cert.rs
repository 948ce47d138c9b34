//! `meridian tls cert create`: a server, client or CLI certificate signed by
//! the agent CA, as Consul's: a new ECDSA P-256 key, common name
//! `server.<dc>.<domain>` / `client.<dc>.<domain>` /
//! `cli.client.<dc>.<domain>`, key usages digital signature and key
//! encipherment; servers and clients may both serve and dial (server and
//! client auth), a CLI only dials (client auth). Files are
//! `<dc>-<kind>-<domain>-<n>.pem` and `-key.pem`, `n` the first free number.

use std::net::IpAddr;

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType, PKCS_ECDSA_P256_SHA256,
};

use super::{files, serial, validity, TlsError};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The CA's certificate file.
    #[arg(long, default_value = "#DOMAIN#-agent-ca.pem")]
    ca: String,
    /// The CA's key file.
    #[arg(long, default_value = "#DOMAIN#-agent-ca-key.pem")]
    key: String,
    /// Generates a server certificate.
    #[arg(long, num_args = 0..=1, require_equals = true,
          default_missing_value = "true", default_value = "false")]
    server: bool,
    /// Generates a client certificate.
    #[arg(long, num_args = 0..=1, require_equals = true,
          default_missing_value = "true", default_value = "false")]
    client: bool,
    /// Generates a CLI certificate.
    #[arg(long, num_args = 0..=1, require_equals = true,
          default_missing_value = "true", default_value = "false")]
    cli: bool,
    /// With -server: adds the name <node>.server.<datacenter>.<domain>.
    #[arg(long, default_value = "")]
    node: String,
    /// Number of days the certificate is valid for.
    #[arg(long, default_value_t = 365)]
    days: i64,
    /// The datacenter.
    #[arg(long, default_value = "dc1")]
    dc: String,
    /// The domain.
    #[arg(long, default_value = "consul")]
    domain: String,
    /// An additional DNS name for the Subject Alternative Names (localhost
    /// is always included); may repeat.
    #[arg(long = "additional-dnsname")]
    additional_dnsname: Vec<String>,
    /// An additional IP address for the Subject Alternative Names
    /// (127.0.0.1 is always included for servers and clients); may repeat.
    #[arg(long = "additional-ipaddress")]
    additional_ipaddress: Vec<String>,
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Server,
    Client,
    Cli,
}

/// What goes into a certificate of one kind, before any key exists.
struct Plan {
    name: String,
    prefix: String,
    dns_names: Vec<String>,
    ips: Vec<IpAddr>,
    ext_key_usages: Vec<ExtendedKeyUsagePurpose>,
}

fn plan(a: &Args) -> Result<Plan, TlsError> {
    let kind = match (a.server, a.client, a.cli) {
        (true, false, false) => Kind::Server,
        (false, true, false) => Kind::Client,
        (false, false, true) => Kind::Cli,
        _ => return Err(TlsError::Kind),
    };
    if !a.node.is_empty() && kind != Kind::Server {
        return Err(TlsError::NodeWithoutServer);
    }
    for (value, flag) in [(&a.dc, "dc"), (&a.domain, "domain")] {
        if value.is_empty() {
            return Err(TlsError::Missing(flag));
        }
    }
    let mut dns_names: Vec<String> = a
        .additional_dnsname
        .iter()
        .map(|d| d.trim().to_string())
        .filter(|d| !d.is_empty())
        .collect();
    let mut ips = a
        .additional_ipaddress
        .iter()
        .map(|i| i.trim())
        .filter(|i| !i.is_empty())
        .map(|i| {
            i.parse::<IpAddr>()
                .map_err(|_| TlsError::IpAddress(i.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (dc, domain) = (&a.dc, &a.domain);
    let (name, label, ext_key_usages) = match kind {
        Kind::Server => (
            format!("server.{dc}.{domain}"),
            "server",
            vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        ),
        Kind::Client => (
            format!("client.{dc}.{domain}"),
            "client",
            vec![
                ExtendedKeyUsagePurpose::ClientAuth,
                ExtendedKeyUsagePurpose::ServerAuth,
            ],
        ),
        Kind::Cli => (
            format!("cli.client.{dc}.{domain}"),
            "cli",
            vec![ExtendedKeyUsagePurpose::ClientAuth],
        ),
    };
    if kind == Kind::Server && !a.node.is_empty() {
        dns_names.push(format!("{}.server.{dc}.{domain}", a.node));
    }
    dns_names.push(name.clone());
    dns_names.push("localhost".to_string());
    // A CLI certificate only dials, so it has no address to be reached at.
    if kind != Kind::Cli {
        ips.push(IpAddr::from([127, 0, 0, 1]));
    }
    Ok(Plan {
        prefix: format!("{dc}-{label}-{domain}"),
        name,
        dns_names,
        ips,
        ext_key_usages,
    })
}

/// The first `<prefix>-<n>.pem` whose certificate and key names are both free.
fn free_names(prefix: &str) -> Result<(String, String), TlsError> {
    (0..=10_000)
        .map(|i| (format!("{prefix}-{i}.pem"), format!("{prefix}-{i}-key.pem")))
        .find(|(c, k)| !files::exists(c) && !files::exists(k))
        .ok_or(TlsError::NoFreeName)
}

pub(super) fn run(a: Args) -> Result<i32, TlsError> {
    let plan = plan(&a)?;
    if a.ca.is_empty() {
        return Err(TlsError::Missing("ca"));
    }
    if a.key.is_empty() {
        return Err(TlsError::Missing("key"));
    }
    let (not_before, not_after) = validity(a.days)?;
    let (cert_file, key_file) = free_names(&plan.prefix)?;
    let ca_file = a.ca.replacen("#DOMAIN#", &a.domain, 1);
    let ca_key_file = a.key.replacen("#DOMAIN#", &a.domain, 1);
    let (_, issuer) = files::load_ca(&ca_file, &ca_key_file)?;

    if a.server {
        println!(
            "==> WARNING: Server Certificates grants authority to become a\n    \
             server and access all state in the cluster including root keys\n    \
             and all ACL tokens. Do not distribute them to production hosts\n    \
             that are not server nodes. Store them as securely as CA keys."
        );
    }
    println!("==> Using {ca_file} and {ca_key_file}");

    let mut params = CertificateParams::default();
    params.serial_number = Some(serial().to_be_bytes().to_vec().into());
    params.not_before = not_before;
    params.not_after = not_after;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, plan.name.as_str());
    params.distinguished_name = dn;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = plan.ext_key_usages;
    params.use_authority_key_identifier_extension = true;
    let mut sans = Vec::with_capacity(plan.dns_names.len() + plan.ips.len());
    for d in plan.dns_names {
        let san = d
            .as_str()
            .try_into()
            .map_err(|source| TlsError::Name { name: d, source })?;
        sans.push(SanType::DnsName(san));
    }
    sans.extend(plan.ips.into_iter().map(SanType::IpAddress));
    params.subject_alt_names = sans;

    let key =
        KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|source| TlsError::Generate {
            what: "private key",
            source,
        })?;
    let cert = params
        .signed_by(&key, &issuer)
        .map_err(|source| TlsError::Generate {
            what: "certificate",
            source,
        })?;
    files::write_new(&cert_file, &cert.pem(), false)?;
    println!("==> Saved {cert_file}");
    files::write_new(&key_file, &files::sec1_pem(&key)?, true)?;
    println!("==> Saved {key_file}");
    Ok(0)
}
