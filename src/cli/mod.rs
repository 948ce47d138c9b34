//! CLI commands. (Being written.)
