//! The durability model through the kernel: real FUSE mounts (root), real
//! system calls, cuts of several mounts at one instant.

use bsfg_powercut::domain::PowerDomain;
use bsfg_powercut::model::{Config, Semantics};
use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Two volumes ("hosts") on one feed under a fresh temp dir; unmounted on drop,
/// also when the test fails.
struct Feed {
    // Field order is drop order: unmount before the temp dir goes.
    domain: PowerDomain,
    dir: tempfile::TempDir,
}

impl Feed {
    fn new(semantics: Semantics) -> Feed {
        bsfg_testkit::require_root("FUSE mounts with mount(2)");
        let dir = tempfile::Builder::new()
            .prefix("powercut-")
            .tempdir()
            .unwrap();
        let domain = PowerDomain::new();
        let config = Config {
            semantics,
            capacity_bytes: 256 << 20,
            ..Config::default()
        };
        for name in ["a", "b"] {
            domain
                .add_volume(name, &dir.path().join(name), &config)
                .unwrap();
        }
        Feed { domain, dir }
    }

    fn path(&self, volume: &str, rel: &str) -> PathBuf {
        self.dir.path().join(volume).join(rel)
    }

    fn cut_and_boot(&self) {
        self.domain.cut(&[]).unwrap();
        self.domain.boot(&[]).unwrap();
    }
}

fn sync_dir(p: &Path) {
    File::open(p).unwrap().sync_all().unwrap();
}

fn durable_write(path: &Path, content: &[u8]) {
    let mut f = File::create(path).unwrap();
    f.write_all(content).unwrap();
    f.sync_all().unwrap();
    sync_dir(path.parent().unwrap());
}

#[test]
fn a_cut_of_two_mounts_keeps_exactly_what_was_synced() {
    let feed = Feed::new(Semantics::Posix);
    durable_write(&feed.path("a", "synced"), b"a durable");
    durable_write(&feed.path("b", "synced"), b"b durable");
    // Written, not synced: bytes of a durable file, a new file, a new name.
    OpenOptions::new()
        .append(true)
        .open(feed.path("a", "synced"))
        .unwrap()
        .write_all(b" + volatile")
        .unwrap();
    fs::write(feed.path("b", "unsynced"), b"never synced").unwrap();
    let mut f = File::create(feed.path("b", "file-synced-dir-not")).unwrap();
    f.write_all(b"bytes synced, entry not").unwrap();
    f.sync_all().unwrap();
    drop(f);
    fs::rename(feed.path("a", "synced"), feed.path("a", "renamed")).unwrap();

    let report = feed.domain.cut(&[]).unwrap();
    assert_eq!(report.volumes.len(), 2);
    // No power: every operation fails until the boot.
    let e = fs::read(feed.path("a", "renamed")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(5), "EIO while the power is off: {e}");
    feed.domain.boot(&[]).unwrap();

    assert_eq!(fs::read(feed.path("a", "synced")).unwrap(), b"a durable");
    assert!(!feed.path("a", "renamed").exists());
    assert_eq!(fs::read(feed.path("b", "synced")).unwrap(), b"b durable");
    assert!(!feed.path("b", "unsynced").exists());
    assert!(!feed.path("b", "file-synced-dir-not").exists());
}

#[test]
fn only_the_named_volume_loses_power() {
    let feed = Feed::new(Semantics::Posix);
    durable_write(&feed.path("a", "f"), b"");
    durable_write(&feed.path("b", "f"), b"");
    fs::write(feed.path("a", "f"), b"lost").unwrap();
    fs::write(feed.path("b", "f"), b"kept: b has power").unwrap();
    feed.domain.cut(&["a".to_owned()]).unwrap();
    assert_eq!(fs::read(feed.path("b", "f")).unwrap(), b"kept: b has power");
    assert!(
        feed.domain.cut(&["a".to_owned()]).is_err(),
        "a has no power"
    );
    assert_eq!(feed.domain.boot(&[]).unwrap(), ["a"]);
    assert_eq!(fs::read(feed.path("a", "f")).unwrap(), b"");
    assert_eq!(fs::read(feed.path("b", "f")).unwrap(), b"kept: b has power");
}

#[test]
fn o_sync_writes_sparse_files_truncation_and_directories_through_the_kernel() {
    let feed = Feed::new(Semantics::Posix);
    let dir = feed.path("a", "stream/msgs");
    fs::create_dir_all(&dir).unwrap();
    sync_dir(&feed.path("a", "stream"));
    sync_dir(&feed.path("a", ""));
    durable_write(&dir.join("1.blk"), b"");
    let f = OpenOptions::new()
        .write(true)
        .custom_flags(rustix::fs::OFlags::SYNC.bits() as i32)
        .open(dir.join("1.blk"))
        .unwrap();
    f.write_all_at(b"synced by O_SYNC", 0).unwrap();
    drop(f);

    let mut sparse = File::create(dir.join("sparse")).unwrap();
    sparse.seek(SeekFrom::Start(100 << 20)).unwrap();
    sparse.write_all(b"end").unwrap();
    sparse.sync_all().unwrap();
    drop(sparse);
    sync_dir(&dir);

    durable_write(&feed.path("a", "big"), &[7u8; 20_000]);
    let big = OpenOptions::new()
        .write(true)
        .open(feed.path("a", "big"))
        .unwrap();
    big.set_len(10).unwrap();
    drop(big);
    fs::create_dir(feed.path("a", "unsynced-dir")).unwrap();

    feed.cut_and_boot();
    assert_eq!(fs::read(dir.join("1.blk")).unwrap(), b"synced by O_SYNC");
    let meta = fs::metadata(dir.join("sparse")).unwrap();
    assert_eq!(meta.len(), (100 << 20) + 3);
    assert!(
        std::os::unix::fs::MetadataExt::blocks(&meta) <= 16,
        "only the written page is stored"
    );
    assert_eq!(fs::read(feed.path("a", "big")).unwrap(), vec![7u8; 20_000]);
    assert!(!feed.path("a", "unsynced-dir").exists());
}

#[test]
fn journaled_semantics_keep_a_synced_file_whose_directory_was_not_synced() {
    let feed = Feed::new(Semantics::Journaled);
    fs::create_dir(feed.path("a", "d")).unwrap();
    fs::write(feed.path("a", "d/g"), b"bytes never synced").unwrap();
    let mut f = File::create(feed.path("a", "d/f")).unwrap();
    f.write_all(b"ext4 commits the entry with the file")
        .unwrap();
    f.sync_data().unwrap();
    drop(f);
    fs::write(feed.path("a", "d/h"), b"created after the last sync").unwrap();
    feed.cut_and_boot();
    assert_eq!(
        fs::read(feed.path("a", "d/f")).unwrap(),
        b"ext4 commits the entry with the file"
    );
    assert_eq!(
        fs::read(feed.path("a", "d/g")).unwrap(),
        b"",
        "entry yes, bytes no"
    );
    assert!(!feed.path("a", "d/h").exists());
}

#[test]
fn the_binary_cuts_and_boots_through_its_control_socket() {
    bsfg_testkit::require_root("FUSE mounts with mount(2)");
    let dir = tempfile::Builder::new()
        .prefix("powercut-bin-")
        .tempdir()
        .unwrap();
    let socket = dir.path().join("control.sock");
    let mut cmd = std::process::Command::new(bsfg_testkit::bins::workspace_binary("bsfg-powercut"));
    cmd.arg("--control").arg(&socket).arg("serve");
    for host in ["alpha", "beta", "gamma"] {
        cmd.arg("--volume")
            .arg(format!("{host}={}", dir.path().join(host).display()));
    }
    let mut daemon =
        bsfg_testkit::process::Daemon::spawn("bsfg-powercut", cmd, &dir.path().join("log"))
            .unwrap();
    let client = bsfg_powercut::control::Client::new(&socket);
    let status = client
        .wait_ready(std::time::Duration::from_secs(20))
        .unwrap();
    assert_eq!(status.len(), 3);
    for host in ["alpha", "beta", "gamma"] {
        durable_write(&dir.path().join(host).join("synced"), host.as_bytes());
        fs::write(dir.path().join(host).join("volatile"), b"x").unwrap();
    }
    let unsynced: u64 = client
        .status()
        .unwrap()
        .iter()
        .map(|v| v.volatile.unsynced_entries)
        .sum();
    assert_eq!(unsynced, 3);
    let report = client.cut(&[]).unwrap();
    assert_eq!(
        report
            .volumes
            .iter()
            .map(|(_, v)| v.unsynced_entries)
            .sum::<u64>(),
        3
    );
    assert!(client.status().unwrap().iter().all(|v| !v.powered));
    assert_eq!(client.boot(&[]).unwrap().len(), 3);
    for host in ["alpha", "beta", "gamma"] {
        assert_eq!(
            fs::read(dir.path().join(host).join("synced")).unwrap(),
            host.as_bytes()
        );
        assert!(!dir.path().join(host).join("volatile").exists());
    }
    // SIGTERM unmounts everything.
    daemon.signal(rustix::process::Signal::TERM);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while daemon.is_running() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(!daemon.is_running(), "{}", daemon.log_tail(20));
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(dir.path().to_str().unwrap()),
        "left mounted"
    );
}
