//! The fuzz targets' entry points (`fuzz/`, libFuzzer): each hands
//! arbitrary bytes to the crate's own parsing of one kind of untrusted
//! input, as the agent would on receiving it, and checks what must hold
//! whatever the input. Nothing here parses anything itself; a panic
//! anywhere below is the finding. Compiled in every build so that it
//! cannot drift from the code it calls; not part of the API.

use crate::config::RuntimeConfig;
use crate::http::error::ApiError;
use crate::http::params::{decode, Params};
use crate::structs::rpc::{self, Method, MethodId};

/// One target: bytes in, a panic out if something is wrong.
pub type Target = fn(&[u8]);

/// Every target by the name `fuzz/run.sh` and the fuzz binary know it by
/// (`MERIDIAN_FUZZ_TARGET`); each has its seeds in `fuzz/corpus/<name>/`.
pub const TARGETS: &[(&str, Target)] = &[
    ("config", config),
    ("rpc_frame", rpc_frame),
    ("dns_query", dns_query),
    ("gossip", gossip),
    ("snapshot", snapshot),
    ("http_json", http_json),
    ("http_query", http_query),
    ("acl_rules", acl_rules),
];

/// The target named `name`.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

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
        MethodId::CoordinateUpdate => rpc_body::<rpc::CoordinateUpdate>(body),
        MethodId::CoordinateDatacenters => rpc_body::<rpc::CoordinateDatacenters>(body),
    }
}

/// A DNS query packet up to the question the answerer asks of the
/// catalog: hickory's decoding (as the server does), the first question,
/// and which lookup under `consul.` (or which reverse address) it names.
/// The catalog read itself needs a running agent and is left to the DNS
/// tests.
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
        let _ = crate::actors::dns::reverse_ip(q.name());
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

/// A request's query string, and before a `?` the key of a KV request,
/// through what each endpoint family's handlers do with them before
/// anything reaches the store: the decoding and token lookup every handler
/// shares, blocking and consistency options, KV's reads and writes, health's
/// service filters, `?filter=` expressions (parsed, checked and run on a
/// health entry), ACL token filters, keyring, maintenance and raft peer
/// options. (Sessions, catalog reads and the ACL objects read nothing
/// beyond the shared options, `dc`, `token` and `tag`.)
pub fn http_query(data: &[u8]) {
    use crate::http::{acl, agent_checks, health, keyring, kv, operator};
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (key, query) = text.split_once('?').unwrap_or(("", text));
    let Ok(p) = Params::parse(query, |_| None) else {
        return;
    };
    let cfg = RuntimeConfig::default();
    if let Ok(opts) = p.query_options(&cfg) {
        // However long `?wait=` asks for, a query waits at most
        // max_query_time and its jitter (a sixteenth).
        assert!(opts.max_wait <= cfg.max_query_time + cfg.max_query_time / 16);
        // `?stale` with `?consistent` is refused whatever else is asked.
        assert!(!(p.has("stale") && p.has("consistent")));
    }
    let _ = p.dc();
    let _ = p.all("tag");
    let _ = kv::get_request(&p, key, &cfg);
    if let Ok(put) = kv::PutArgs::parse(&p, key.to_string()) {
        let _ = put.command(Vec::new());
    }
    let _ = kv::delete_command(&p, key.to_string());
    if let Ok(Some(f)) = p.filter(&crate::filter::schema::CHECK_SERVICE_NODE) {
        f.matches(&serde_json::json!({
            "Node": {"Node": "n1", "Meta": {"env": "prod"}, "TaggedAddresses": {}},
            "Service": {"Service": "web", "Tags": ["v1"], "Port": 80, "Weights": {"Passing": 1}},
            "Checks": [{"Status": "passing", "ServiceTags": ["v1"], "Definition": {"HTTP": "h"}}],
        }));
    }
    let _ = health::service_args(&p, "web".into());
    let _ = p.near(&cfg);
    let _ = acl::token::list_query(&p);
    for list in [true, false] {
        let _ = keyring::options(&p, list);
    }
    let _ = agent_checks::maintenance_params(&p);
    let _ = operator::peer_ref(&p);
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
        // A pong carries the answering member's coordinate.
        assert!(matches!(
            crate::lan::wire::decode(&seed("gossip", "pong_coordinate")),
            Decoded::Pong(7, Some(ref c)) if c.vec.len() == 8 && c.height == 1e-5
        ));
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

    fn query_seed(name: &str) -> (String, Params) {
        let text = String::from_utf8(seed("http_query", name)).unwrap();
        let (key, query) = text.split_once('?').unwrap();
        (key.to_string(), Params::parse(query, |_| None).unwrap())
    }

    #[test]
    fn http_query_seeds_reach_each_family() {
        use crate::http::{health, kv};
        use crate::structs::{Command, Consistency};
        let cfg = RuntimeConfig::default();
        let (_, p) = query_seed("blocking");
        let opts = p.query_options(&cfg).unwrap();
        assert_eq!(
            (opts.min_index, opts.dc.as_deref(), opts.token.as_deref()),
            (1234, Some("dc1"), Some("root"))
        );
        assert!(opts.max_wait >= std::time::Duration::from_secs(300));
        let (_, p) = query_seed("consistent");
        assert_eq!(
            p.query_options(&cfg).unwrap().consistency,
            Consistency::Consistent
        );
        let (_, p) = query_seed("stale_and_consistent");
        assert!(p.query_options(&cfg).is_err());

        let (key, p) = query_seed("kv_acquire");
        let cmd = kv::PutArgs::parse(&p, key).unwrap().command(b"v".to_vec());
        assert!(
            matches!(cmd, Ok(Command::KvLock { ref key, flags: 1, .. }) if key == "locks/leader")
        );
        let (key, p) = query_seed("kv_cas_flags");
        let cmd = kv::PutArgs::parse(&p, key).unwrap().command(Vec::new());
        assert!(matches!(
            cmd,
            Ok(Command::KvCas {
                flags: 42,
                cas: 0,
                ..
            })
        ));
        let (key, p) = query_seed("kv_conflict");
        assert!(kv::PutArgs::parse(&p, key).is_err());
        let (key, p) = query_seed("kv_raw_traversal");
        assert!(kv::get_request(&p, &key, &cfg).is_err());
        let (key, p) = query_seed("kv_keys");
        assert!(matches!(
            kv::get_request(&p, &key, &cfg),
            Ok((_, crate::state::query::Query::KvKeys { separator: Some(ref s), .. })) if s == "/"
        ));

        let (_, p) = query_seed("health");
        let args = health::service_args(&p, "web".into());
        assert_eq!(
            args.meta,
            [("rack".into(), "r1".into()), ("zone".into(), String::new())]
        );
        let agent = RuntimeConfig {
            node_name: "agent-node".into(),
            ..RuntimeConfig::default()
        };
        assert_eq!(p.near(&agent).as_deref(), Some("agent-node"));
        let (_, p) = query_seed("keyring");
        assert_eq!(crate::http::keyring::options(&p, true).unwrap(), (3, true));
        let (_, p) = query_seed("maintenance");
        assert_eq!(
            crate::http::agent_checks::maintenance_params(&p).unwrap(),
            (true, "upgrade in progress".to_string())
        );
    }

    /// fuzz/run.sh fuzzes one target per corpus directory, by name.
    #[test]
    fn every_target_has_a_corpus_and_every_corpus_a_target() {
        let dir = format!("{}/fuzz/corpus", env!("CARGO_MANIFEST_DIR"));
        let mut corpora: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        corpora.sort();
        let mut names: Vec<String> = TARGETS.iter().map(|(n, _)| n.to_string()).collect();
        names.sort();
        assert_eq!(corpora, names);
    }

    /// The fuzz build reuses the main build's compiled dependencies only
    /// if it resolves them to the same versions (fuzz/Cargo.toml).
    #[test]
    fn the_fuzz_lock_file_pins_what_the_main_one_does() {
        fn packages(path: &str) -> std::collections::BTreeSet<(String, String)> {
            let text = std::fs::read_to_string(path).unwrap();
            text.split("[[package]]")
                .skip(1)
                .map(|block| {
                    let field = |name: &str| {
                        block
                            .lines()
                            .find_map(|l| l.strip_prefix(&format!("{name} = \"")))
                            .and_then(|v| v.strip_suffix('"'))
                            .unwrap()
                            .to_string()
                    };
                    (field("name"), field("version"))
                })
                .collect()
        }
        let root = env!("CARGO_MANIFEST_DIR");
        let main = packages(&format!("{root}/Cargo.lock"));
        let fuzz = packages(&format!("{root}/fuzz/Cargo.lock"));
        let missing: Vec<_> = main
            .iter()
            .filter(|(name, _)| name != "meridian")
            .filter(|p| !fuzz.contains(p))
            .collect();
        assert!(
            missing.is_empty(),
            "fuzz/Cargo.lock lacks or pins otherwise: {missing:?}"
        );
    }
}
