//! Agent flags. (Being written.)
#[derive(Debug, Clone, Default)]
pub struct AgentFlags {}
