//! A small ext4 filesystem in a loop-mounted image, for a server's data
//! directory that runs out of space: [`LoopFs::fill`] takes every free
//! block with a ballast file, [`LoopFs::free`] gives them back. ext4 and
//! not tmpfs: fsync on tmpfs does nothing, and redb's durability is what
//! is under test.
//!
//! The image and the mount point live in a temp dir named with the test
//! process's id; Drop unmounts (the loop device goes with it: `mount -o
//! loop` sets autoclear) and removes the dir, also when the test panics.
//! A mount left by a killed run (no Drop) is swept by the next one. Needs
//! root and mkfs.ext4; [`LoopFs::available`] says why not.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::netns::sh;

/// Marks this harness's mount points in /proc/mounts (the sweep's key).
const TAG: &str = "meridian-fault-fs-";

pub struct LoopFs {
    mnt: PathBuf,
    dir: Option<tempfile::TempDir>,
}

fn unmount(mnt: &Path) {
    let m = mnt.display().to_string();
    // A process that just died may hold the mount busy for a moment.
    for _ in 0..20 {
        if sh(&["umount", &m]).is_ok() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = sh(&["umount", "-l", &m]);
}

impl LoopFs {
    /// `None` when a loop ext4 can be mounted here, else why not.
    pub fn available() -> Option<String> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Some("not root: mount needs CAP_SYS_ADMIN".into());
        }
        if Command::new("mkfs.ext4").arg("-V").output().is_err() {
            return Some("mkfs.ext4 is not installed (e2fsprogs)".into());
        }
        if !Path::new("/dev/loop-control").exists() {
            return Some("no /dev/loop-control".into());
        }
        None
    }

    /// A fresh `mib` MiB ext4, mounted.
    pub fn new(mib: u64) -> LoopFs {
        Self::sweep();
        let dir = tempfile::Builder::new()
            .prefix(&format!("{TAG}{}-", std::process::id()))
            .tempdir()
            .expect("tempdir");
        let img = dir.path().join("fs.img");
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt).expect("mount point");
        std::fs::File::create(&img)
            .and_then(|f| f.set_len(mib << 20))
            .expect("image file");
        let (i, m) = (img.display().to_string(), mnt.display().to_string());
        sh(&["mkfs.ext4", "-q", "-F", "-m", "0", &i]).expect("mkfs.ext4");
        sh(&["mount", "-o", "loop", &i, &m]).expect("mount -o loop");
        LoopFs {
            mnt,
            dir: Some(dir),
        }
    }

    pub fn path(&self) -> &Path {
        &self.mnt
    }

    fn ballast(&self) -> PathBuf {
        self.mnt.join("ballast")
    }

    /// Writes the ballast until the filesystem refuses (ENOSPC); returns
    /// how many bytes it took.
    pub fn fill(&self) -> u64 {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.ballast())
            .expect("ballast");
        let chunk = vec![0u8; 64 << 10];
        let mut n = 0u64;
        loop {
            match f.write(&chunk) {
                Ok(0) | Err(_) => break,
                Ok(k) => n += k as u64,
            }
        }
        // Blocks still held in the page cache are allocated at write on
        // ext4 (delayed allocation reserves them): the disk is full now.
        let _ = f.sync_all();
        n
    }

    pub fn free(&self) {
        let _ = std::fs::remove_file(self.ballast());
    }

    /// Unmounts what a killed run (its process gone) left mounted.
    fn sweep() {
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        for line in mounts.lines() {
            let Some(mnt) = line.split_whitespace().nth(1) else {
                continue;
            };
            let Some(rest) = mnt.split(TAG).nth(1) else {
                continue;
            };
            let pid: i32 = rest
                .split('-')
                .next()
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            // SAFETY: signal 0 only checks that the process exists.
            if pid > 0 && unsafe { libc::kill(pid, 0) } != 0 {
                unmount(Path::new(mnt));
                if let Some(dir) = Path::new(mnt).parent() {
                    let _ = std::fs::remove_dir_all(dir);
                }
            }
        }
    }
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        unmount(&self.mnt);
        // Only once unmounted: removing the dir would otherwise walk into
        // the mounted filesystem.
        if let Some(d) = self.dir.take() {
            drop(d);
        }
    }
}
