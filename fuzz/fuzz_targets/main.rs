//! One libFuzzer binary for every target in `meridian::fuzz::TARGETS`,
//! picked by `MERIDIAN_FUZZ_TARGET`: one link of the instrumented crate
//! instead of one per target, which is most of what a fuzz build costs.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

static TARGET: OnceLock<meridian::fuzz::Target> = OnceLock::new();

fuzz_target!(
    init: {
        let name = std::env::var("MERIDIAN_FUZZ_TARGET").unwrap_or_default();
        match meridian::fuzz::target(&name) {
            Some(f) => {
                let _ = TARGET.set(f);
            }
            None => {
                let names: Vec<&str> = meridian::fuzz::TARGETS.iter().map(|(n, _)| *n).collect();
                eprintln!(
                    "MERIDIAN_FUZZ_TARGET={name:?} names no target; one of: {}",
                    names.join(" ")
                );
                std::process::exit(2);
            }
        }
    },
    |data: &[u8]| {
        if let Some(f) = TARGET.get() {
            f(data);
        }
    }
);
