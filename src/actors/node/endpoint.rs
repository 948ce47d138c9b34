//! What a server answers on its RPC port: Raft's messages go to its Raft
//! node; everything else enters the request path ([`Router`]) with the hop
//! the sender gave it. This is the [`Service`] the RPC listener is handed.

use futures::future::BoxFuture;
use openraft::raft::AppendEntriesResponse;

use super::router::Router;
use crate::actors::raft::LocalServer;
use crate::rpc::server::{answer, Service};
use crate::structs::rpc::{self, MethodId};

/// While an append from the current leader waits for this server's disk,
/// the leader counts as heard every tick, for at most this long.
const KEEP_HEARD_TICK: std::time::Duration = std::time::Duration::from_millis(100);
const KEEP_HEARD_MAX: std::time::Duration = std::time::Duration::from_secs(5);

pub struct Endpoint {
    pub local: LocalServer,
    pub router: Router,
}

impl Service for Endpoint {
    fn serve(&self, method: MethodId, args: Vec<u8>) -> BoxFuture<'static, Vec<u8>> {
        let (local, router) = (self.local.clone(), self.router.clone());
        Box::pin(async move {
            match method {
                MethodId::AppendEntries => {
                    answer::<rpc::AppendEntries, _, _>(&args, |r| async move {
                        // From the leader this server already follows: that
                        // is contact on arrival, as openraft counts it for
                        // its own vote refusal, and for as long as the answer
                        // waits for the entries' fsync (openraft sends the
                        // follower nothing else meanwhile, heartbeats
                        // included). A disk busy with a snapshot held answers
                        // for a second: counted only once answered, followers
                        // started elections against a healthy leader.
                        let known = r.vote.is_committed() && {
                            let m = local.raft().metrics();
                            let mine = m.borrow().vote;
                            mine == r.vote
                        };
                        let append = local.raft().append_entries(r);
                        tokio::pin!(append);
                        // Bounded: a disk stuck for good must not hold off
                        // elections for good.
                        let until = tokio::time::Instant::now() + KEEP_HEARD_MAX;
                        let resp = loop {
                            if known {
                                local.contact().touch();
                            }
                            tokio::select! {
                                r = &mut append => break r,
                                _ = tokio::time::sleep(KEEP_HEARD_TICK),
                                    if known && tokio::time::Instant::now() < until => {}
                            }
                        };
                        // Otherwise only an accepted append is contact with a
                        // current leader (a deposed one's is refused).
                        if matches!(
                            resp,
                            Ok(AppendEntriesResponse::Success
                                | AppendEntriesResponse::PartialSuccess(_))
                        ) {
                            local.contact().touch();
                        }
                        resp
                    })
                    .await
                }
                MethodId::Vote => {
                    answer::<rpc::Vote, _, _>(&args, |r| async move { local.raft().vote(r).await })
                        .await
                }
                MethodId::InstallSnapshot => {
                    answer::<rpc::InstallSnapshot, _, _>(&args, |r| async move {
                        let vote = r.vote;
                        let resp = local.raft().install_snapshot(r).await;
                        // A chunk accepted from the current leader is contact
                        // too (a long install sends nothing else); a stale
                        // leader's is answered with the newer vote.
                        if resp.as_ref().is_ok_and(|r| r.vote == vote) {
                            local.contact().touch();
                        }
                        resp
                    })
                    .await
                }
                MethodId::PreVote => {
                    answer::<rpc::PreVote, _, _>(&args, |r| async move { local.pre_vote(&r) }).await
                }
                MethodId::Read => {
                    answer::<rpc::Read, _, _>(&args, |r| router.read_hop(r.req, r.hop)).await
                }
                MethodId::Write => {
                    answer::<rpc::Write, _, _>(&args, |w| router.write_hop(w.req, w.hop)).await
                }
                MethodId::Status => {
                    answer::<rpc::Status, _, _>(&args, |s| router.status(s.req, s.hop)).await
                }
                MethodId::Datacenters => {
                    answer::<rpc::Datacenters, _, _>(&args, |()| router.datacenters()).await
                }
                MethodId::FireEvent => {
                    answer::<rpc::FireEvent, _, _>(&args, |e| router.fire_event(e.req)).await
                }
                MethodId::ResolveToken => {
                    answer::<rpc::ResolveToken, _, _>(&args, |secret| async move {
                        router.resolve_token(secret).await
                    })
                    .await
                }
                MethodId::RemovePeer => {
                    answer::<rpc::RemovePeer, _, _>(&args, |p| router.remove_peer(p.req, p.hop))
                        .await
                }
                MethodId::KeyringOperation => {
                    answer::<rpc::KeyringOperation, _, _>(&args, |k| router.keyring_lan(k)).await
                }
                MethodId::CoordinateUpdate => {
                    answer::<rpc::CoordinateUpdate, _, _>(&args, |c| {
                        router.coordinate_update(c.req, c.hop)
                    })
                    .await
                }
                MethodId::CoordinateDatacenters => {
                    answer::<rpc::CoordinateDatacenters, _, _>(&args, |()| {
                        router.coordinate_datacenters()
                    })
                    .await
                }
                MethodId::AclReplication => {
                    answer::<rpc::AclReplication, _, _>(&args, |a| {
                        router.acl_replication(a.req, a.hop)
                    })
                    .await
                }
            }
        })
    }
}
