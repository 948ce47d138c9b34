//! The `meridian` binary: parses the command and hands over to it.

fn main() {
    std::process::exit(meridian::cli::run(std::env::args().collect()));
}
