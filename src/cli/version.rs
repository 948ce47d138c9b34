//! `meridian version`: Consul's lines, with the revision and build date
//! that `/v1/agent/self` reports too.

use crate::build_info::{BUILD_DATE, REVISION, VERSION};

pub fn run() -> anyhow::Result<i32> {
    println!("Meridian v{VERSION}");
    println!("Revision {REVISION}");
    println!("Build Date {BUILD_DATE}");
    println!("Protocol 2 spoken by default, understands 2 to 3 (agent will automatically use protocol >2 when speaking to compatible agents)");
    Ok(0)
}
