//! The process's own figures, read from `/proc/self` when shown: what
//! client_golang's process collector reports under `process_*`, which
//! Consul's Prometheus output carries beside its own metrics.

use std::time::{SystemTime, UNIX_EPOCH};

/// One reading; a field is None where the system did not say (not Linux,
/// `/proc` not mounted).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Process {
    pub cpu_seconds: Option<f64>,
    pub resident_bytes: Option<f64>,
    pub virtual_bytes: Option<f64>,
    pub threads: Option<f64>,
    pub open_fds: Option<f64>,
    pub max_fds: Option<f64>,
    pub start_time_seconds: Option<f64>,
}

/// Fields of `/proc/self/stat` after the command name (which may hold
/// spaces and parentheses, so the split is at the last `)`): the first is
/// field 3, `state`.
fn stat_fields(stat: &str) -> Option<Vec<&str>> {
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().collect())
}

fn sysconf(name: libc::c_int) -> Option<f64> {
    // SAFETY: sysconf reads a system constant and has no preconditions.
    let v = unsafe { libc::sysconf(name) };
    (v > 0).then_some(v as f64)
}

/// Seconds since the epoch at boot, from `/proc/stat`'s `btime`.
fn boot_time(proc_stat: &str) -> Option<f64> {
    proc_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// Reads `/proc/self/stat` (`stat`) into the figures it holds.
pub fn parse(stat: &str, proc_stat: Option<&str>, ticks: f64, page: f64) -> Process {
    let mut p = Process::default();
    let Some(f) = stat_fields(stat) else {
        return p;
    };
    // Field n of proc(5) is f[n - 3].
    let num = |n: usize| f.get(n - 3).and_then(|v| v.parse::<f64>().ok());
    if let (Some(u), Some(s)) = (num(14), num(15)) {
        p.cpu_seconds = Some((u + s) / ticks);
    }
    p.threads = num(20);
    p.virtual_bytes = num(23);
    p.resident_bytes = num(24).map(|pages| pages * page);
    if let (Some(start), Some(boot)) = (num(22), proc_stat.and_then(boot_time)) {
        p.start_time_seconds = Some(boot + start / ticks);
    }
    p
}

/// The figures now.
pub fn read() -> Process {
    let ticks = sysconf(libc::_SC_CLK_TCK).unwrap_or(100.0);
    let page = sysconf(libc::_SC_PAGESIZE).unwrap_or(4096.0);
    let mut p = match std::fs::read_to_string("/proc/self/stat") {
        Ok(stat) => parse(
            &stat,
            std::fs::read_to_string("/proc/stat").ok().as_deref(),
            ticks,
            page,
        ),
        Err(_) => Process::default(),
    };
    p.open_fds = std::fs::read_dir("/proc/self/fd")
        .ok()
        .map(|d| d.count() as f64);
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        p.max_fds = Some(lim.rlim_cur as f64);
    }
    if p.start_time_seconds.is_none() {
        p.start_time_seconds = Some(process_start());
    }
    p
}

/// When the registry was first used, for systems without `/proc`.
fn process_start() -> f64 {
    static START: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *START.get_or_init(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_survive_a_command_with_spaces_and_parentheses() {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt
        // majflt cmajflt utime stime cutime cstime priority nice threads
        // itrealvalue starttime vsize rss
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 7 0 1000 123456789 300 18446744073709551615";
        let p = parse(stat, Some("cpu  1 2 3\nbtime 1700000000\n"), 100.0, 4096.0);
        assert_eq!(p.cpu_seconds, Some(3.0));
        assert_eq!(p.threads, Some(7.0));
        assert_eq!(p.virtual_bytes, Some(123456789.0));
        assert_eq!(p.resident_bytes, Some(300.0 * 4096.0));
        assert_eq!(p.start_time_seconds, Some(1700000010.0));
    }

    #[test]
    fn this_process_has_memory_threads_and_files() {
        let p = read();
        if std::path::Path::new("/proc/self/stat").exists() {
            assert!(p.resident_bytes.unwrap_or(0.0) > 0.0, "{p:?}");
            assert!(p.threads.unwrap_or(0.0) >= 1.0, "{p:?}");
            assert!(p.open_fds.unwrap_or(0.0) >= 1.0, "{p:?}");
        }
        assert!(p.max_fds.unwrap_or(0.0) > 0.0, "{p:?}");
    }
}
