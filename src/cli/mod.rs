//! CLI commands. (Being written.)

/// Runs the CLI with the process arguments; returns the exit code.
pub fn run(_args: Vec<String>) -> i32 {
    2
}
