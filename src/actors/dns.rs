//! The `Dns` actor: Consul's DNS interface. (Being written.)
