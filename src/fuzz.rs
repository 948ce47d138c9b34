//! The fuzz targets' entry points (`fuzz/`, cargo-fuzz): each hands
//! arbitrary bytes to the crate's own parsing of one kind of untrusted
//! input, as the agent would on receiving it, and checks what must hold
//! whatever the input. Nothing here parses anything itself; a panic
//! anywhere below is the finding. Compiled in every build so that it
//! cannot drift from the code it calls; not part of the API.

use crate::http::error::ApiError;
use crate::http::params::decode;
use crate::structs::rpc::{self, Method, MethodId};

/// A fixed gossip key (16 bytes, base64): the datagrams a member with this
/// key would open.
const GOSSIP_KEY: &str = "pUqJrVyVRj5jsiYEkM/tFQ==";

/// The config loader on one file's text, read as HCL and as JSON:
/// `meridian validate`'s path (parse, apply every key, TLS, validation).
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for hcl in [true, false] {
        // An error is an answer; only a panic is a finding.
        let _ = crate::config::builder::validate_text(text, hcl);
    }
}

/// Server RPC: every frame in the bytes, as the server reads them (length,
/// request id, method tag, arguments), each body also decoded as an
/// answer of its method, as a client reads one.
pub fn rpc_frame(data: &[u8]) {
    let mut r = data;
    futures::executor::block_on(async {
        while let Ok(frame) = crate::rpc::codec::read_frame(&mut r).await {
            let (Some(&tag), Some(args)) = (frame.get(4), frame.get(5..)) else {
                continue;
            };
            if let Some(method) = MethodId::from_byte(tag) {
                rpc_bodies(method, args);
            }
        }
    });
}

fn rpc_body<M: Method>(body: &[u8]) {
    let _ = crate::rpc::codec::decode::<M::Args>(body);
    let _ = crate::rpc::codec::decode::<Result<M::Reply, String>>(body);
}

fn rpc_bodies(method: MethodId, body: &[u8]) {
    match method {
        MethodId::AppendEntries => rpc_body::<rpc::AppendEntries>(body),
        MethodId::Vote => rpc_body::<rpc::Vote>(body),
        MethodId::InstallSnapshot => rpc_body::<rpc::InstallSnapshot>(body),
        MethodId::PreVote => rpc_body::<rpc::PreVote>(body),
        MethodId::Read => rpc_body::<rpc::Read>(body),
        MethodId::Write => rpc_body::<rpc::Write>(body),
        MethodId::Status => rpc_body::<rpc::Status>(body),
        MethodId::Datacenters => rpc_body::<rpc::Datacenters>(body),
        MethodId::FireEvent => rpc_body::<rpc::FireEvent>(body),
        MethodId::RemovePeer => rpc_body::<rpc::RemovePeer>(body),
        MethodId::ResolveToken => rpc_body::<rpc::ResolveToken>(body),
        MethodId::AclReplication => rpc_body::<rpc::AclReplication>(body),
        MethodId::KeyringOperation => rpc_body::<rpc::KeyringOperation>(body),
    }
}

/// A DNS query packet up to the question the answerer asks of the
/// catalog: hickory's decoding (as the server does), the first question,
/// and which lookup under `consul.` it names. The catalog read itself
/// needs a running agent and is left to the DNS tests.
pub fn dns_query(data: &[u8]) {
    use hickory_proto::op::Message;
    use hickory_proto::rr::Name;
    let Ok(msg) = Message::from_vec(data) else {
        return;
    };
    let Ok(domain) = Name::from_ascii("consul.") else {
        return;
    };
    for q in msg.queries.iter() {
        let _ = crate::actors::dns::lookup_in(&domain, q.name());
    }
}

/// A gossip datagram: opened with a keyring (tampered or truncated seals
/// must simply not open), and the packet read as a member reads it,
/// whether it came out of a seal or arrived in plain text.
pub fn gossip(data: &[u8]) {
    let Ok(ring) = crate::lan::keyring::Keyring::new(&[GOSSIP_KEY.to_string()]) else {
        return;
    };
    if let Some(packet) = ring.open(data) {
        let _ = crate::lan::wire::feed(&packet);
        // What we seal, we open again unchanged.
        let resealed = ring.seal(packet.clone());
        assert_eq!(ring.open(&resealed).as_deref(), Some(packet.as_slice()));
    }
    let _ = crate::lan::wire::feed(data);
}

/// An archive offered to `PUT /v1/snapshot`: unpacked and verified
/// (entries, sizes, SHA256SUMS) and decoded.
pub fn snapshot(data: &[u8]) {
    let _ = crate::snapshot::decode(data);
}

/// JSON bodies of the write endpoints, through the handlers' own decoding
/// and the checks they make before a request reaches the store. The first
/// byte picks the family, so that each keeps a corpus of its own shape.
pub fn http_json(data: &[u8]) {
    let Some((&family, body)) = data.split_first() else {
        return;
    };
    let _: Result<(), ApiError> = match family % 6 {
        0 => crate::http::txn::parse_ops(body).map(drop),
        1 => decode::<crate::http::agent::ServiceRegistration>(body)
            .and_then(|r| r.into_definition(Default::default()).map(drop)),
        2 => decode::<crate::http::agent::CheckRegistration>(body)
            .and_then(|c| c.into_definition("Check").map(drop)),
        3 => {
            for r in crate::http::acl::check_bodies(body) {
                let _ = r;
            }
            Ok(())
        }
        4 => decode::<crate::http::session::CreateBody>(body).map(drop),
        _ => decode::<crate::structs::catalog::RegisterRequest>(body).map(drop),
    };
}

/// ACL rules text, HCL or JSON, as a policy's `Rules` is parsed.
pub fn acl_rules(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crate::acl::Rules::parse(text);
    }
}

#[cfg(test)]
mod tests {
    //! The committed seeds reach what they were written for: a seed that
    //! no longer decodes would leave its target fuzzing only the error path.

    use super::*;
    use crate::lan::wire::Decoded;

    fn seed(target: &str, name: &str) -> Vec<u8> {
        let path = format!("{}/fuzz/corpus/{target}/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn config_seeds_validate() {
        let text = String::from_utf8(seed("config", "configs_server.hcl")).unwrap();
        let cfg = crate::config::builder::validate_text(&text, true).unwrap();
        assert_eq!(cfg.node_name, "server-1");
        let text = String::from_utf8(seed("config", "acl_tls.json")).unwrap();
        let cfg = crate::config::builder::validate_text(&text, false).unwrap();
        assert!(cfg.acl_enforced());
    }

    #[test]
    fn gossip_seeds_decode_plain_and_sealed() {
        let leave = seed("gossip", "leave");
        assert!(matches!(
            crate::lan::wire::feed(&leave),
            Ok(Decoded::Leave(ref n, 3)) if n == "server-1"
        ));
        let ring = crate::lan::keyring::Keyring::new(&[GOSSIP_KEY.to_string()]).unwrap();
        let opened = ring.open(&ring.seal(seed("gossip", "ping"))).unwrap();
        assert!(
            matches!(crate::lan::wire::decode(&opened), Decoded::Ping(p) if p == 7u64.to_be_bytes())
        );
        // A pong of the wrong length is dropped, not read past its end.
        assert!(matches!(
            crate::lan::wire::decode(&[4, 1, 2]),
            Decoded::Bad("pong")
        ));
    }

    #[test]
    fn snapshot_seeds_restore_or_are_refused() {
        let (meta, snap) = crate::snapshot::decode(&seed("snapshot", "good.tgz")).unwrap();
        assert_eq!((meta.index, snap.last_index), (5, 5));
        assert!(matches!(
            crate::snapshot::decode(&seed("snapshot", "bad_checksum.tgz")),
            Err(crate::snapshot::SnapshotError::Checksum(_))
        ));
        // Entries outside the archive's three files are read past, never
        // written anywhere: decoding touches no disk.
        assert!(crate::snapshot::decode(&seed("snapshot", "outside_path.tgz")).is_ok());
        for bad in ["no_sums.tgz", "size_lies.tgz"] {
            assert!(
                crate::snapshot::decode(&seed("snapshot", bad)).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn http_and_dns_seeds_decode() {
        let txn = seed("http_json", "txn_kv");
        assert_eq!(crate::http::txn::parse_ops(&txn[1..]).unwrap().len(), 2);
        let service = seed("http_json", "service");
        let r: crate::http::agent::ServiceRegistration = decode(&service[1..]).unwrap();
        assert_eq!(
            r.into_definition(Default::default()).unwrap().checks.len(),
            3
        );
        let msg = hickory_proto::op::Message::from_vec(&seed("dns_query", "tag_srv_dc")).unwrap();
        let domain = hickory_proto::rr::Name::from_ascii("consul.").unwrap();
        assert_eq!(
            crate::actors::dns::lookup_in(&domain, msg.queries[0].name()),
            Some(crate::actors::dns::Lookup::Service {
                name: "web".into(),
                tag: Some("v1".into()),
                dc: Some("dc1".into())
            })
        );
    }
}
