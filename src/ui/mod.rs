//! The web UI — comes with the UI issue.
