//! Go durations. (Being written.)
