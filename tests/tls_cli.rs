//! `meridian tls ca create` and `tls cert create`, checked with software we
//! did not write: the built binary runs in a temporary directory, and
//! OpenSSL reads, verifies and handshakes with what it wrote.

mod tls_cli_support;

use tls_cli_support::*;

#[test]
fn ca_create_writes_consuls_ca_and_refuses_to_overwrite_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let out = ok(d, &["tls", "ca", "create"]);
    assert_eq!(
        out,
        "==> Saved consul-agent-ca.pem\n==> Saved consul-agent-ca-key.pem\n"
    );
    assert_eq!(mode(&d.join("consul-agent-ca.pem")), 0o644);
    assert_eq!(mode(&d.join("consul-agent-ca-key.pem")), 0o600);

    let text = x509_text(d, "consul-agent-ca.pem");
    assert!(text.contains("ASN1 OID: prime256v1"), "{text}");
    assert!(text.contains("ecdsa-with-SHA256"), "{text}");
    assert_eq!(field(&text, "Basic Constraints: critical"), "CA:TRUE");
    assert_eq!(
        field(&text, "Key Usage: critical"),
        "Digital Signature, Certificate Sign, CRL Sign"
    );
    let subject = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Subject: "))
        .expect("subject");
    let (rest, serial) = subject
        .rsplit_once("CN = Consul Agent CA ")
        .expect("Consul's CA common name");
    assert!(serial.parse::<u128>().is_ok(), "{subject}");
    assert_eq!(
        rest,
        "C = US, O = HashiCorp Inc., L = San Francisco, ST = CA, \
         street = 101 Second Street, postalCode = 94105, "
    );
    assert!(text.contains("Subject Key Identifier"), "{text}");
    assert!(!text.contains("Name Constraints"), "{text}");
    assert!(key_matches(
        d,
        "consul-agent-ca-key.pem",
        "consul-agent-ca.pem"
    ));
    // Five years by default.
    assert!(valid_in(d, "consul-agent-ca.pem", 1824));
    assert!(!valid_in(d, "consul-agent-ca.pem", 1826));

    let before = std::fs::read(d.join("consul-agent-ca-key.pem")).expect("key");
    let err = fails(d, &["tls", "ca", "create"]);
    assert!(err.contains("consul-agent-ca.pem already exists."), "{err}");
    let after = std::fs::read(d.join("consul-agent-ca-key.pem")).expect("key");
    assert_eq!(before, after, "the CA key must not be replaced");
}

#[test]
fn ca_create_with_domain_days_common_name_and_name_constraints() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let args = [
        "tls",
        "ca",
        "create",
        "-domain",
        "example",
        "-days",
        "10",
        "-common-name",
        "Test CA",
        "-name-constraint",
        "-additional-name-constraint",
        "example.org",
    ];
    let out = ok(d, &args);
    assert!(out.contains("==> Saved example-agent-ca.pem"), "{out}");
    let text = x509_text(d, "example-agent-ca.pem");
    assert!(text.contains("CN = Test CA"), "{text}");
    assert!(valid_in(d, "example-agent-ca.pem", 9));
    assert!(!valid_in(d, "example-agent-ca.pem", 11));
    let permitted: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.contains("Name Constraints: critical"))
        .skip(2)
        .take(3)
        .map(str::trim)
        .collect();
    assert_eq!(
        permitted,
        ["DNS:example", "DNS:localhost", "DNS:example.org"]
    );

    // A certificate inside the constraints verifies; one naming another
    // domain is signed (as Consul does) but no verifier accepts it.
    ok(
        d,
        &["tls", "cert", "create", "-server", "-domain", "example"],
    );
    assert!(verifies(
        d,
        "example-agent-ca.pem",
        "dc1-server-example-0.pem"
    ));
    let outside = [
        "tls",
        "cert",
        "create",
        "-server",
        "-domain",
        "example",
        "-additional-dnsname",
        "evil.com",
    ];
    ok(d, &outside);
    assert!(!verifies(
        d,
        "example-agent-ca.pem",
        "dc1-server-example-1.pem"
    ));
}

#[test]
fn cert_create_names_numbers_and_signs_as_consul() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    ok(d, &["tls", "ca", "create"]);
    let out = ok(d, &["tls", "cert", "create", "-server", "-dc", "dc1"]);
    assert!(
        out.starts_with("==> WARNING: Server Certificates grants authority to become a\n"),
        "{out}"
    );
    assert!(out.ends_with(
        "==> Using consul-agent-ca.pem and consul-agent-ca-key.pem\n\
         ==> Saved dc1-server-consul-0.pem\n\
         ==> Saved dc1-server-consul-0-key.pem\n"
    ));
    let again = ok(d, &["tls", "cert", "create", "-server"]);
    assert!(
        again.contains("==> Saved dc1-server-consul-1.pem\n"),
        "{again}"
    );
    let client = ok(d, &["tls", "cert", "create", "-client"]);
    assert_eq!(
        client,
        "==> Using consul-agent-ca.pem and consul-agent-ca-key.pem\n\
         ==> Saved dc1-client-consul-0.pem\n\
         ==> Saved dc1-client-consul-0-key.pem\n"
    );
    ok(d, &["tls", "cert", "create", "-cli"]);
    assert_eq!(mode(&d.join("dc1-cli-consul-0-key.pem")), 0o600);

    let both = "TLS Web Server Authentication, TLS Web Client Authentication";
    let cases = [
        (
            "dc1-server-consul-0.pem",
            "server.dc1.consul",
            "DNS:server.dc1.consul, DNS:localhost, IP Address:127.0.0.1",
            both,
        ),
        (
            "dc1-server-consul-1.pem",
            "server.dc1.consul",
            "DNS:server.dc1.consul, DNS:localhost, IP Address:127.0.0.1",
            both,
        ),
        (
            "dc1-client-consul-0.pem",
            "client.dc1.consul",
            "DNS:client.dc1.consul, DNS:localhost, IP Address:127.0.0.1",
            "TLS Web Client Authentication, TLS Web Server Authentication",
        ),
        (
            "dc1-cli-consul-0.pem",
            "cli.client.dc1.consul",
            "DNS:cli.client.dc1.consul, DNS:localhost",
            "TLS Web Client Authentication",
        ),
    ];
    let ca_subject = issuer_and_subject(d, "consul-agent-ca.pem").1;
    for (file, cn, sans, eku) in cases {
        assert!(verifies(d, "consul-agent-ca.pem", file), "{file}");
        let key = file.replace(".pem", "-key.pem");
        assert!(key_matches(d, &key, file), "{key}");
        let text = x509_text(d, file);
        assert!(text.contains(&format!("Subject: CN = {cn}\n")), "{text}");
        assert_eq!(field(&text, "Subject Alternative Name"), sans, "{file}");
        assert_eq!(field(&text, "Extended Key Usage"), eku, "{file}");
        assert_eq!(
            field(&text, "Key Usage: critical"),
            "Digital Signature, Key Encipherment",
            "{file}"
        );
        assert_eq!(field(&text, "Basic Constraints: critical"), "CA:FALSE");
        assert!(text.contains("Authority Key Identifier"), "{text}");
        let (issuer, subject) = issuer_and_subject(d, file);
        assert_eq!(issuer, ca_subject, "{file}'s issuer");
        assert_ne!(subject, ca_subject, "{file}'s subject");
        assert!(valid_in(d, file, 364) && !valid_in(d, file, 366), "{file}");
    }
}

#[test]
fn cert_create_adds_node_and_additional_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    ok(d, &["tls", "ca", "create", "-domain", "example"]);
    let args = [
        "tls",
        "cert",
        "create",
        "-server",
        "-dc",
        "east",
        "-domain",
        "example",
        "-node",
        "n1",
        "-additional-dnsname",
        "meridian.internal",
        "-additional-dnsname=other.internal",
        "-additional-ipaddress",
        "10.1.2.3",
        "-additional-ipaddress",
        "::1",
        "-days",
        "30",
    ];
    let out = ok(d, &args);
    assert!(
        out.contains("==> Using example-agent-ca.pem and example-agent-ca-key.pem"),
        "{out}"
    );
    let file = "east-server-example-0.pem";
    assert!(verifies(d, "example-agent-ca.pem", file));
    let text = x509_text(d, file);
    assert_eq!(
        field(&text, "Subject Alternative Name"),
        "DNS:meridian.internal, DNS:other.internal, DNS:n1.server.east.example, \
         DNS:server.east.example, DNS:localhost, IP Address:10.1.2.3, \
         IP Address:0:0:0:0:0:0:0:1, IP Address:127.0.0.1"
    );
    assert!(valid_in(d, file, 29) && !valid_in(d, file, 31));
}

#[test]
fn cert_create_refuses_unclear_requests_naming_the_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let kind = "Please provide either -server, -client, or -cli";
    assert!(fails(d, &["tls", "cert", "create"]).contains(kind));
    assert!(fails(d, &["tls", "cert", "create", "-server", "-client"]).contains(kind));
    assert!(fails(d, &["tls", "cert", "create", "-cli", "-client"]).contains(kind));
    let node = fails(d, &["tls", "cert", "create", "-client", "-node", "n1"]);
    assert!(node.contains("-node requires -server"), "{node}");

    let missing = fails(d, &["tls", "cert", "create", "-client"]);
    assert!(
        missing.contains("Error reading CA consul-agent-ca.pem"),
        "{missing}"
    );
    ok(d, &["tls", "ca", "create"]);
    let no_key = fails(
        d,
        &["tls", "cert", "create", "-client", "-key", "absent-key.pem"],
    );
    assert!(
        no_key.contains("Error reading CA key absent-key.pem"),
        "{no_key}"
    );
    let ip = fails(
        d,
        &[
            "tls",
            "cert",
            "create",
            "-cli",
            "-additional-ipaddress",
            "nope",
        ],
    );
    assert!(ip.contains("-additional-ipaddress \"nope\""), "{ip}");
    let days = fails(d, &["tls", "cert", "create", "-cli", "-days", "0"]);
    assert!(days.contains("-days"), "{days}");

    // A CA key that is not the CA certificate's own is refused up front.
    let other = tempfile::tempdir().expect("tempdir");
    ok(other.path(), &["tls", "ca", "create"]);
    let foreign = other.path().join("consul-agent-ca-key.pem");
    let foreign = foreign.to_str().expect("utf-8 path");
    let wrong = fails(d, &["tls", "cert", "create", "-client", "-key", foreign]);
    assert!(
        wrong.contains("it is not the key of consul-agent-ca.pem"),
        "{wrong}"
    );
    // Nothing was written by the refused requests.
    assert!(!d.join("dc1-client-consul-0.pem").exists());
    assert!(!d.join("dc1-cli-consul-0.pem").exists());
}

#[test]
fn cert_create_signs_with_a_ca_whose_key_is_sec1_as_consuls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let key = openssl(
        d,
        &[
            "ecparam",
            "-genkey",
            "-name",
            "prime256v1",
            "-noout",
            "-out",
            "ca-key.pem",
        ],
    );
    assert!(key.status.success());
    let pem = std::fs::read_to_string(d.join("ca-key.pem")).expect("key");
    assert!(pem.starts_with("-----BEGIN EC PRIVATE KEY-----"), "{pem}");
    let ca = openssl(
        d,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "ca-key.pem",
            "-subj",
            "/CN=Other CA",
            "-days",
            "5",
            "-out",
            "ca.pem",
        ],
    );
    assert!(ca.status.success());
    ok(
        d,
        &[
            "tls",
            "cert",
            "create",
            "-client",
            "-ca",
            "ca.pem",
            "-key",
            "ca-key.pem",
        ],
    );
    assert!(verifies(d, "ca.pem", "dc1-client-consul-0.pem"));
    assert_eq!(
        issuer_and_subject(d, "dc1-client-consul-0.pem").0,
        issuer_and_subject(d, "ca.pem").1,
        "the issuer name is the CA's subject byte for byte"
    );
}

#[test]
fn openssl_handshakes_with_the_certificates_and_checks_the_server_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    ok(d, &["tls", "ca", "create"]);
    ok(d, &["tls", "cert", "create", "-server"]);
    ok(d, &["tls", "cert", "create", "-client"]);
    ok(d, &["tls", "cert", "create", "-cli"]);

    // Mutual TLS: the server's name is checked, the CLI certificate is
    // accepted as a client's.
    let (mut server, port) = s_server(d, "dc1-server-consul-0.pem", "dc1-server-consul-0-key.pem");
    let accepted = s_client(d, port, "server.dc1.consul");
    let _ = server.kill();
    let _ = server.wait();
    assert!(accepted, "handshake with the server certificate failed");

    // A client certificate does not name server.dc1.consul, so it cannot
    // pass for a server.
    let (mut server, port) = s_server(d, "dc1-client-consul-0.pem", "dc1-client-consul-0-key.pem");
    let accepted = s_client(d, port, "server.dc1.consul");
    let _ = server.kill();
    let _ = server.wait();
    assert!(!accepted, "a client certificate passed as a server");
}
