//! Agent flags. (Being written.)

/// Flags of `meridian agent`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AgentFlags {}

/// Rewrites Go-style flags (`-server`, `-node=n1`) to the double-dash form
/// clap parses. (Being written.)
pub fn go_style_args(args: Vec<String>) -> Vec<String> {
    args
}
