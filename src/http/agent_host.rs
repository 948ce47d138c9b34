//! `GET /v1/agent/host`: the machine the agent runs on, in the shape
//! Consul gives it (gopsutil's field names): memory, CPUs, host and the
//! disk of the data directory, read from `/proc` and `statvfs`. What
//! cannot be read is named in `Errors` and the rest still answered, as
//! Consul's `debug` bundle expects.

use std::collections::BTreeMap;
use std::path::Path;

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::error::ApiError;
use super::params::json as json_resp;
use super::ApiState;

pub(super) async fn host(
    req: HttpRequest,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let disk_path = state
        .config
        .data_dir
        .clone()
        .unwrap_or_else(|| std::path::PathBuf::from("/"));
    // A few small files, but files: off the HTTP worker's thread.
    let body = web::block(move || collect(&disk_path))
        .await
        .map_err(|e| ApiError::internal(format!("collecting host info: {e}")))?;
    Ok(json_resp(&req, &body))
}

fn read(path: &str, errors: &mut Vec<String>) -> String {
    match std::fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) => {
            errors.push(format!("{path}: {e}"));
            String::new()
        }
    }
}

/// `Key: value` lines (`/proc/meminfo`, one CPU block of `/proc/cpuinfo`).
fn fields(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// A meminfo figure in bytes (the file says kB).
fn kb(m: &BTreeMap<String, String>, key: &str) -> u64 {
    m.get(key)
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok())
        .map_or(0, |n| n * 1024)
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

fn memory(errors: &mut Vec<String>) -> Value {
    let m = fields(&read("/proc/meminfo", errors));
    let total = kb(&m, "MemTotal");
    let free = kb(&m, "MemFree");
    let available = kb(&m, "MemAvailable");
    let buffers = kb(&m, "Buffers");
    let cached = kb(&m, "Cached") + kb(&m, "SReclaimable");
    // gopsutil's `used`: what is neither free nor buffers nor cache.
    let used = total.saturating_sub(free + buffers + cached);
    json!({
        "total": total, "available": available, "used": used,
        "usedPercent": percent(used, total), "free": free,
        "buffers": buffers, "cached": cached,
        "swapTotal": kb(&m, "SwapTotal"), "swapFree": kb(&m, "SwapFree"),
        "shared": kb(&m, "Shmem"), "dirty": kb(&m, "Dirty"),
    })
}

fn cpus(errors: &mut Vec<String>) -> Value {
    let text = read("/proc/cpuinfo", errors);
    let list: Vec<Value> = text
        .split("\n\n")
        .map(fields)
        .filter(|c| c.contains_key("processor"))
        .map(|c| {
            let get = |k: &str| c.get(k).cloned().unwrap_or_default();
            let num = |k: &str| c.get(k).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
            let cache_kb = c
                .get("cache size")
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(0);
            json!({
                "cpu": c.get("processor").and_then(|v| v.parse::<i64>().ok()).unwrap_or(0),
                "vendorId": get("vendor_id"), "family": get("cpu family"), "model": get("model"),
                "stepping": num("stepping") as i64, "physicalId": get("physical id"),
                "coreId": get("core id"), "cores": 1, "modelName": get("model name"),
                "mhz": num("cpu MHz"), "cacheSize": cache_kb, "microcode": get("microcode"),
                "flags": get("flags").split_whitespace().collect::<Vec<_>>(),
            })
        })
        .collect();
    Value::Array(list)
}

/// `/etc/os-release`'s `ID`, `ID_LIKE` and `VERSION_ID`.
fn os_release() -> (String, String, String) {
    let text = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let mut kv = BTreeMap::new();
    for line in text.lines() {
        if let Some((k, v)) = line.split_once('=') {
            kv.insert(k.to_string(), v.trim_matches('"').to_string());
        }
    }
    let get = |k: &str| kv.get(k).cloned().unwrap_or_default();
    let family = kv
        .get("ID_LIKE")
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| get("ID"));
    (get("ID"), family, get("VERSION_ID"))
}

fn host_info(errors: &mut Vec<String>) -> Value {
    let uptime = read("/proc/uptime", errors)
        .split_whitespace()
        .next()
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0) as u64;
    let boot_time = read("/proc/stat", errors)
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let procs = std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .bytes()
                        .all(|b| b.is_ascii_digit())
                })
                .count()
        })
        .unwrap_or(0);
    let (platform, family, version) = os_release();
    json!({
        "hostname": read("/proc/sys/kernel/hostname", errors).trim(),
        "uptime": uptime, "bootTime": boot_time, "procs": procs,
        "os": std::env::consts::OS, "platform": platform, "platformFamily": family,
        "platformVersion": version,
        "kernelVersion": read("/proc/sys/kernel/osrelease", errors).trim(),
        "kernelArch": std::env::consts::ARCH,
        "virtualizationSystem": "", "virtualizationRole": "",
        "hostId": std::fs::read_to_string("/etc/machine-id").unwrap_or_default().trim(),
    })
}

// statvfs's field types differ between platforms (u32 on some 32-bit
// ones): the casts are needed there even where they are not here.
#[allow(clippy::unnecessary_cast)]
fn disk(path: &Path, errors: &mut Vec<String>) -> Value {
    use std::os::unix::ffi::OsStrExt;
    let Some(c) = std::ffi::CString::new(path.as_os_str().as_bytes()).ok() else {
        errors.push(format!("{}: not a path statvfs takes", path.display()));
        return Value::Null;
    };
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: `c` is a NUL-terminated path and `st` a buffer statvfs fills.
    let rc = unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        errors.push(format!(
            "statvfs {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        ));
        return Value::Null;
    }
    // SAFETY: statvfs returned 0, so it filled the buffer.
    let st = unsafe { st.assume_init() };
    let frsize = st.f_frsize as u64;
    let total = st.f_blocks as u64 * frsize;
    let free = st.f_bavail as u64 * frsize;
    let used = (st.f_blocks as u64).saturating_sub(st.f_bfree as u64) * frsize;
    let inodes_total = st.f_files as u64;
    let inodes_free = st.f_ffree as u64;
    let inodes_used = inodes_total.saturating_sub(inodes_free);
    json!({
        "path": path.display().to_string(), "fstype": "",
        "total": total, "free": free, "used": used,
        "usedPercent": percent(used, used + free),
        "inodesTotal": inodes_total, "inodesUsed": inodes_used, "inodesFree": inodes_free,
        "inodesUsedPercent": percent(inodes_used, inodes_total),
    })
}

fn collect(disk_path: &Path) -> Value {
    let mut errors = Vec::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let body = json!({
        "Memory": memory(&mut errors),
        "CPU": cpus(&mut errors),
        "Host": host_info(&mut errors),
        "Disk": disk(disk_path, &mut errors),
        "CollectionTime": now,
    });
    let mut body = body;
    body["Errors"] = if errors.is_empty() {
        Value::Null
    } else {
        json!(errors)
    };
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_machine_is_described_in_consuls_shape() {
        let v = collect(Path::new("/"));
        assert!(v["Memory"]["total"].as_u64().unwrap_or(0) > 0, "{v}");
        assert!(v["CPU"].as_array().is_some_and(|c| !c.is_empty()), "{v}");
        assert_eq!(v["Host"]["os"], "linux");
        assert!(v["Host"]["bootTime"].as_u64().unwrap_or(0) > 0, "{v}");
        assert!(v["Disk"]["total"].as_u64().unwrap_or(0) > 0, "{v}");
        assert_eq!(v["Errors"], Value::Null);
    }
}
