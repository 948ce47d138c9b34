//! WAN gossip and datacenter routing — comes with the federation issue.
