//! Builds a RuntimeConfig. (Being written.)
use thiserror::Error;
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("{0}")]
    Invalid(String),
}
pub fn build(_flags: &super::AgentFlags) -> Result<super::RuntimeConfig, ConfigError> {
    Err(ConfigError::Invalid("not yet".into()))
}
pub fn load_files(_paths: &[std::path::PathBuf]) -> Result<(), ConfigError> {
    Ok(())
}
/// Checks config files or directories without starting an agent (`meridian validate`).
pub fn validate_paths(_paths: &[std::path::PathBuf]) -> Result<super::RuntimeConfig, ConfigError> {
    Err(ConfigError::Invalid("not yet".into()))
}
