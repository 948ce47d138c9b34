//! `meridian keygen`: a new gossip encryption key for `encrypt`.

use anyhow::Result;

pub fn run() -> Result<i32> {
    println!("{}", crate::lan::keyring::generate_key());
    Ok(0)
}
