//! `meridian version`.

pub fn run() -> anyhow::Result<i32> {
    println!("Meridian v{}", env!("CARGO_PKG_VERSION"));
    println!("Protocol 2 spoken by default, understands 2 to 3 (agent will automatically use protocol >2 when speaking to compatible agents)");
    Ok(0)
}
