//! `meridian tls ca create`: the agent CA, as Consul's: an ECDSA P-256 key,
//! a self-signed certificate with Consul's subject (`Consul Agent CA
//! <serial>`, HashiCorp's address), CA basic constraints, key usages cert
//! sign, CRL sign and digital signature, and optionally DNS name
//! constraints; saved as `<domain>-agent-ca.pem` and
//! `<domain>-agent-ca-key.pem`, never over an existing file.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, GeneralSubtree, IsCa,
    KeyIdMethod, KeyPair, KeyUsagePurpose, NameConstraints, PKCS_ECDSA_P256_SHA256,
};

use super::{files, serial, validity, TlsError};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Number of days the CA is valid for.
    #[arg(long, default_value_t = 1825)]
    days: i64,
    /// Domain of the agents (the certificates' and files' names).
    #[arg(long, default_value = "consul")]
    domain: String,
    /// Adds name constraints for the domain and localhost (and each
    /// -additional-name-constraint), so the CA can sign no other names.
    #[arg(long = "name-constraint", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", default_value = "false")]
    name_constraint: bool,
    /// An additional name constraint (with -name-constraint); may repeat.
    #[arg(long = "additional-name-constraint")]
    additional_name_constraint: Vec<String>,
    /// Common name of the CA; defaults to "Consul Agent CA <serial>".
    #[arg(long = "common-name", default_value = "")]
    common_name: String,
}

pub(super) fn run(a: Args) -> Result<i32, TlsError> {
    if a.domain.is_empty() {
        return Err(TlsError::Missing("domain"));
    }
    let cert_file = format!("{}-agent-ca.pem", a.domain);
    let key_file = format!("{}-agent-ca-key.pem", a.domain);
    for f in [&cert_file, &key_file] {
        if files::exists(f) {
            return Err(TlsError::Exists(f.clone()));
        }
    }
    let (not_before, not_after) = validity(a.days)?;
    let constraints = if a.name_constraint {
        let mut names = vec![a.domain.clone(), "localhost".to_string()];
        names.extend(a.additional_name_constraint.iter().cloned());
        names
    } else {
        Vec::new()
    };

    let key =
        KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|source| TlsError::Generate {
            what: "private key",
            source,
        })?;
    let sn = serial();
    let common_name = if a.common_name.is_empty() {
        format!("Consul Agent CA {sn}")
    } else {
        a.common_name
    };
    let params = ca_params(&common_name, sn, not_before, not_after, constraints);
    let cert = params
        .self_signed(&key)
        .map_err(|source| TlsError::Generate {
            what: "CA certificate",
            source,
        })?;

    files::write_new(&cert_file, &cert.pem(), false)?;
    println!("==> Saved {cert_file}");
    files::write_new(&key_file, &files::sec1_pem(&key)?, true)?;
    println!("==> Saved {key_file}");
    Ok(0)
}

fn ca_params(
    common_name: &str,
    sn: u128,
    not_before: time::OffsetDateTime,
    not_after: time::OffsetDateTime,
    constraints: Vec<String>,
) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.serial_number = Some(sn.to_be_bytes().to_vec().into());
    params.not_before = not_before;
    params.not_after = not_after;
    // Consul's subject, in Go's pkix order (C, O, L, ST, street, postal, CN).
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "US");
    dn.push(DnType::OrganizationName, "HashiCorp Inc.");
    dn.push(DnType::LocalityName, "San Francisco");
    dn.push(DnType::StateOrProvinceName, "CA");
    dn.push(
        DnType::CustomDnType(vec![2, 5, 4, 9]), // streetAddress
        "101 Second Street",
    );
    dn.push(DnType::CustomDnType(vec![2, 5, 4, 17]), "94105"); // postalCode
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.key_identifier_method = KeyIdMethod::Sha256;
    params.use_authority_key_identifier_extension = true;
    if !constraints.is_empty() {
        params.name_constraints = Some(NameConstraints {
            permitted_subtrees: constraints
                .into_iter()
                .map(GeneralSubtree::DnsName)
                .collect(),
            excluded_subtrees: Vec::new(),
        });
    }
    params
}
