//! Handshakes over loopback between a listener and a dialer built from
//! files on disk: who is let in, who is refused, and that a reload
//! reaches the next handshake.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

/// A CA written to `dir/<name>-ca.pem`, able to sign leaves.
pub(crate) struct Ca {
    issuer: Issuer<'static, KeyPair>,
    file: PathBuf,
}

pub(crate) fn ca(dir: &Path, name: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).unwrap();
    let file = dir.join(format!("{name}-ca.pem"));
    std::fs::write(&file, cert.pem()).unwrap();
    Ca {
        issuer: Issuer::new(params, key),
        file,
    }
}

/// A leaf for `names`, usable as server and client (as Consul's agent
/// certificates are); returns (cert file, key file).
pub(crate) fn leaf(dir: &Path, ca: &Ca, file: &str, names: &[&str]) -> (PathBuf, PathBuf) {
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    let (c, k) = (
        dir.join(format!("{file}.pem")),
        dir.join(format!("{file}-key.pem")),
    );
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (c, k)
}

pub(crate) fn settings(ca: &Ca, pair: (PathBuf, PathBuf), verify: bool) -> TlsProtocol {
    TlsProtocol {
        ca_file: Some(ca.file.clone()),
        cert_file: Some(pair.0),
        key_file: Some(pair.1),
        verify_incoming: verify,
        verify_outgoing: verify,
        verify_server_hostname: verify,
        ..TlsProtocol::default()
    }
}

/// One echo exchange from a dialer to a listener; Err when either side's
/// handshake fails. Returns the names the listener saw the dialer's
/// certificate carry (`server.dc1.consul` or not).
async fn exchange(server: &Tls, client: &Tls, name: &str) -> Result<bool, String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server.server_config(&[]).unwrap()));
    let accepted = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut s = acceptor.accept(tcp).await.map_err(|e| e.to_string())?;
        let is_server = s
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .is_some_and(|c| cert_names(c, "server.dc1.consul"));
        let mut b = [0u8; 4];
        s.read_exact(&mut b).await.map_err(|e| e.to_string())?;
        s.write_all(&b).await.map_err(|e| e.to_string())?;
        s.flush().await.map_err(|e| e.to_string())?;
        Ok::<bool, String>(is_server)
    });
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client.client_config(&[]).unwrap()));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let dialed = async {
        let mut s = connector
            .connect(ServerName::try_from(name.to_string()).unwrap(), tcp)
            .await
            .map_err(|e| e.to_string())?;
        s.write_all(b"ping").await.map_err(|e| e.to_string())?;
        let mut b = [0u8; 4];
        s.read_exact(&mut b).await.map_err(|e| e.to_string())?;
        Ok::<(), String>(())
    };
    let dialed = dialed.await;
    let accepted = accepted.await.unwrap();
    dialed?;
    accepted
}

#[tokio::test]
async fn mutual_tls_lets_in_the_ca_and_keeps_out_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let ca1 = ca(dir.path(), "one");
    let ca2 = ca(dir.path(), "two");
    let server = Tls::new(&settings(
        &ca1,
        leaf(
            dir.path(),
            &ca1,
            "server",
            &["server.dc1.consul", "localhost"],
        ),
        true,
    ))
    .unwrap()
    .unwrap();
    let client = Tls::new(&settings(
        &ca1,
        leaf(dir.path(), &ca1, "client", &["client.dc1.consul"]),
        true,
    ))
    .unwrap()
    .unwrap();

    // A server dialed by its server name; a client's certificate is not a
    // server's.
    assert_eq!(
        exchange(&server, &client, "server.dc1.consul").await,
        Ok(false)
    );
    assert_eq!(
        exchange(&server, &server, "server.dc1.consul").await,
        Ok(true)
    );

    // verify_server_hostname: a certificate from the CA that does not name
    // the server is refused by the dialer.
    let impostor = Tls::new(&settings(
        &ca1,
        leaf(dir.path(), &ca1, "impostor", &["client.dc1.consul"]),
        true,
    ))
    .unwrap()
    .unwrap();
    assert!(exchange(&impostor, &client, "server.dc1.consul")
        .await
        .is_err());

    // Another CA's client is refused by the listener.
    let stranger = Tls::new(&settings(
        &ca2,
        leaf(dir.path(), &ca2, "stranger", &["server.dc1.consul"]),
        false,
    ))
    .unwrap()
    .unwrap();
    assert!(exchange(&server, &stranger, "server.dc1.consul")
        .await
        .is_err());

    // A dialer with the CA but no certificate is refused under
    // verify_incoming, and let in without it.
    let anonymous = Tls::new(&TlsProtocol {
        ca_file: Some(ca1.file.clone()),
        ..TlsProtocol::default()
    })
    .unwrap()
    .unwrap();
    assert!(exchange(&server, &anonymous, "server.dc1.consul")
        .await
        .is_err());
    let mut relaxed = settings(
        &ca1,
        leaf(dir.path(), &ca1, "relaxed", &["server.dc1.consul"]),
        false,
    );
    let open = Tls::new(&relaxed).unwrap().unwrap();
    assert_eq!(
        exchange(&open, &anonymous, "server.dc1.consul").await,
        Ok(false)
    );

    // A reload switches verify_incoming on for the next handshake.
    relaxed.verify_incoming = true;
    open.reload(&relaxed).unwrap();
    assert!(exchange(&open, &anonymous, "server.dc1.consul")
        .await
        .is_err());
}

#[tokio::test]
async fn a_reload_presents_the_new_certificate_and_a_bad_one_keeps_the_old() {
    let dir = tempfile::tempdir().unwrap();
    let ca1 = ca(dir.path(), "one");
    let ca2 = ca(dir.path(), "two");
    let mut cfg = settings(
        &ca1,
        leaf(dir.path(), &ca1, "server", &["server.dc1.consul"]),
        true,
    );
    let server = Tls::new(&cfg).unwrap().unwrap();
    let dialer = |ca: &Ca, file: &str| {
        Tls::new(&settings(
            ca,
            leaf(dir.path(), ca, file, &["server.dc1.consul"]),
            true,
        ))
        .unwrap()
        .unwrap()
    };
    let old_ca_client = dialer(&ca1, "c1");
    let new_ca_client = dialer(&ca2, "c2");
    assert!(exchange(&server, &old_ca_client, "server.dc1.consul")
        .await
        .is_ok());
    assert!(exchange(&server, &new_ca_client, "server.dc1.consul")
        .await
        .is_err());

    // Certificates replaced on disk: the CA and the server's own pair.
    let (c, k) = leaf(dir.path(), &ca2, "server2", &["server.dc1.consul"]);
    std::fs::copy(&c, cfg.cert_file.as_ref().unwrap()).unwrap();
    std::fs::copy(&k, cfg.key_file.as_ref().unwrap()).unwrap();
    cfg.ca_file = Some(ca2.file.clone());
    server.reload(&cfg).unwrap();
    assert!(exchange(&server, &new_ca_client, "server.dc1.consul")
        .await
        .is_ok());
    assert!(exchange(&server, &old_ca_client, "server.dc1.consul")
        .await
        .is_err());

    // A key that does not match its certificate is refused and the
    // material in use stays.
    let (_, other_key) = leaf(dir.path(), &ca2, "other", &["x"]);
    let broken = TlsProtocol {
        key_file: Some(other_key),
        ..cfg.clone()
    };
    let err = server.reload(&broken).unwrap_err().to_string();
    assert!(err.contains("does not match"), "{err}");
    assert!(exchange(&server, &new_ca_client, "server.dc1.consul")
        .await
        .is_ok());
}

#[test]
fn settings_are_checked() {
    assert!(Tls::new(&TlsProtocol::default()).unwrap().is_none());
    let e = Tls::new(&TlsProtocol {
        ca_file: Some("/nonexistent/ca.pem".into()),
        ..TlsProtocol::default()
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("/nonexistent/ca.pem"), "{e}");
    assert!(verify::versions(Some("TLSv1_1")).is_err());
    assert_eq!(verify::versions(Some("TLSv1_3")).unwrap().len(), 1);
    let p = verify::provider(&["TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305".into()]).unwrap();
    assert!(p
        .cipher_suites
        .iter()
        .any(|s| matches!(s, rustls::SupportedCipherSuite::Tls12(_))));
    assert!(verify::provider(&["TLS_RSA_WITH_RC4_128_SHA".into()]).is_err());
}

#[test]
fn a_reload_cannot_turn_tls_on_or_off_and_changes_nothing_on_error() {
    let dir = tempfile::tempdir().unwrap();
    let ca1 = ca(dir.path(), "one");
    let rpc = settings(
        &ca1,
        leaf(dir.path(), &ca1, "server", &["server.dc1.consul"]),
        true,
    );
    let plain = TlsConfig {
        internal_rpc: rpc.clone(),
        ..TlsConfig::default()
    };
    let tls = AgentTls::new(&plain).unwrap();
    assert!(tls.https.is_none() && tls.internal_rpc.is_some());

    let on = TlsConfig {
        https: rpc.clone(),
        ..plain.clone()
    };
    let e = tls.reload(&on).unwrap_err().to_string();
    assert!(
        e.contains("tls.https: TLS cannot be turned on by a reload"),
        "{e}"
    );
    let off = TlsConfig::default();
    let e = tls.reload(&off).unwrap_err().to_string();
    assert!(
        e.contains("tls.internal_rpc: TLS cannot be turned off by a reload"),
        "{e}"
    );

    // The same protocols with verify_incoming off: taken.
    let relaxed = TlsConfig {
        internal_rpc: TlsProtocol {
            verify_incoming: false,
            ..rpc
        },
        ..TlsConfig::default()
    };
    tls.reload(&relaxed).unwrap();
    assert!(!tls.internal_rpc.as_ref().unwrap().verify_incoming());
}
