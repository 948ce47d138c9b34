//! Starting and running an agent: builds the actors from a RuntimeConfig,
//! binds the listeners, and waits for shutdown. (Being written.)

use crate::config::RuntimeConfig;

/// Runs an agent until it is told to leave or is interrupted.
pub fn run(_config: RuntimeConfig) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
