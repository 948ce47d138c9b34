//! LAN gossip (SWIM over foca) — comes with the cluster issue. The single
//! server of the foundation issue is its own only member.
