use super::*;
use std::ffi::OsStr;

fn name(s: &str) -> &OsStr {
    OsStr::new(s)
}

fn volume(semantics: Semantics) -> Volume {
    Volume::new(&Config {
        semantics,
        capacity_bytes: 64 << 20,
        ..Config::default()
    })
}

fn posix() -> Volume {
    volume(Semantics::Posix)
}

const RW: OpenFlags = OpenFlags {
    append: false,
    sync: None,
};

/// A file whose entry in the root is durable, with `content` durable too.
fn durable_file(v: &mut Volume, n: &str, content: &[u8]) -> Ino {
    let (attr, fh) = v.create(ROOT, name(n), 0o644, 0, 0, RW).unwrap();
    v.write(fh, 0, content).unwrap();
    v.fsync(attr.ino, SyncKind::All).unwrap();
    v.fsyncdir(ROOT).unwrap();
    v.release(fh).unwrap();
    attr.ino
}

fn content(v: &Volume, dir: Ino, n: &str) -> Option<Vec<u8>> {
    let a = v.lookup(dir, name(n)).ok()?;
    Some(v.read(a.ino, 0, a.size as usize).unwrap())
}

fn names(v: &Volume, dir: Ino) -> Vec<String> {
    v.readdir(dir)
        .unwrap()
        .into_iter()
        .map(|e| e.name.to_string_lossy().into_owned())
        .collect()
}

#[test]
fn a_write_without_fsync_is_gone_after_a_cut() {
    let mut v = posix();
    let ino = durable_file(&mut v, "f", b"");
    let fh = v.open(ino, RW).unwrap();
    v.write(fh, 0, b"volatile").unwrap();
    assert_eq!(content(&v, ROOT, "f").unwrap(), b"volatile");
    let discarded = v.cut();
    assert_eq!(discarded.unsynced_files, 1);
    assert_eq!(discarded.unsynced_bytes, PAGE as u64);
    assert_eq!(content(&v, ROOT, "f").unwrap(), b"");
    assert_eq!(v.usage().used_bytes, 0);
}

#[test]
fn after_fsync_it_stays_and_fdatasync_keeps_the_bytes_too() {
    for kind in [SyncKind::All, SyncKind::Data] {
        let mut v = posix();
        let ino = durable_file(&mut v, "f", b"");
        let fh = v.open(ino, RW).unwrap();
        v.write(fh, 0, b"durable").unwrap();
        v.fsync(ino, kind).unwrap();
        v.write(fh, 7, b" and lost").unwrap();
        v.cut();
        assert_eq!(content(&v, ROOT, "f").unwrap(), b"durable", "{kind:?}");
    }
}

#[test]
fn an_overwrite_of_durable_bytes_is_undone_exactly() {
    let mut v = posix();
    let original: Vec<u8> = (0..3 * PAGE + 100).map(|i| (i % 251) as u8).collect();
    let ino = durable_file(&mut v, "f", &original);
    let fh = v.open(ino, RW).unwrap();
    v.write(fh, PAGE as u64 - 10, &[0xff; 30]).unwrap();
    v.write(fh, original.len() as u64, b"tail").unwrap();
    v.cut();
    assert_eq!(content(&v, ROOT, "f").unwrap(), original);
}

#[test]
fn a_new_file_synced_without_its_directory_is_lost_on_posix_kept_when_journaled() {
    for (semantics, survives) in [(Semantics::Posix, false), (Semantics::Journaled, true)] {
        let mut v = volume(semantics);
        let (attr, fh) = v.create(ROOT, name("new"), 0o644, 0, 0, RW).unwrap();
        v.write(fh, 0, b"synced bytes").unwrap();
        v.fsync(attr.ino, SyncKind::All).unwrap();
        v.cut();
        assert_eq!(
            content(&v, ROOT, "new").is_some(),
            survives,
            "{semantics}: fsync of a file whose entry is not durable"
        );
        if survives {
            assert_eq!(content(&v, ROOT, "new").unwrap(), b"synced bytes");
        }
        assert_eq!(v.usage().used_bytes, if survives { PAGE as u64 } else { 0 });
    }
}

#[test]
fn journaled_commits_every_entry_but_only_the_synced_files_bytes() {
    let mut v = volume(Semantics::Journaled);
    let (a, fa) = v.create(ROOT, name("a"), 0o644, 0, 0, RW).unwrap();
    let (_, fb) = v.create(ROOT, name("b"), 0o644, 0, 0, RW).unwrap();
    v.write(fa, 0, b"aaa").unwrap();
    v.write(fb, 0, b"bbb").unwrap();
    v.fsync(a.ino, SyncKind::Data).unwrap();
    v.cut();
    assert_eq!(content(&v, ROOT, "a").unwrap(), b"aaa");
    // ext4 data=ordered: the entry is there, its bytes were never written back.
    assert_eq!(content(&v, ROOT, "b").unwrap(), b"");
}

#[test]
fn a_rename_without_directory_fsync_is_undone() {
    let mut v = posix();
    durable_file(&mut v, "tmp", b"new");
    durable_file(&mut v, "final", b"old");
    v.rename(ROOT, name("tmp"), ROOT, name("final"), RenameMode::Replace)
        .unwrap();
    assert_eq!(names(&v, ROOT), ["final"]);
    v.cut();
    assert_eq!(names(&v, ROOT), ["final", "tmp"]);
    assert_eq!(content(&v, ROOT, "final").unwrap(), b"old");
    assert_eq!(content(&v, ROOT, "tmp").unwrap(), b"new");

    v.rename(ROOT, name("tmp"), ROOT, name("final"), RenameMode::Replace)
        .unwrap();
    v.fsyncdir(ROOT).unwrap();
    v.cut();
    assert_eq!(names(&v, ROOT), ["final"]);
    assert_eq!(content(&v, ROOT, "final").unwrap(), b"new");
    assert_eq!(
        v.usage().used_bytes,
        PAGE as u64,
        "the replaced file is freed"
    );
}

#[test]
fn a_rename_across_directories_is_atomic_with_either_directory_synced() {
    for sync_source in [false, true] {
        let mut v = posix();
        let tmp = v.mkdir(ROOT, name("tmp"), 0o755, 0, 0).unwrap().ino;
        let blobs = v.mkdir(ROOT, name("blobs"), 0o755, 0, 0).unwrap().ino;
        v.fsyncdir(ROOT).unwrap();
        let (a, fh) = v.create(tmp, name("upload"), 0o644, 0, 0, RW).unwrap();
        v.write(fh, 0, b"blob").unwrap();
        v.fsync(a.ino, SyncKind::All).unwrap();
        v.fsyncdir(tmp).unwrap();
        v.rename(
            tmp,
            name("upload"),
            blobs,
            name("digest"),
            RenameMode::Replace,
        )
        .unwrap();
        v.fsyncdir(if sync_source { tmp } else { blobs }).unwrap();
        v.cut();
        assert_eq!(names(&v, tmp), Vec::<String>::new(), "{sync_source}");
        assert_eq!(content(&v, blobs, "digest").unwrap(), b"blob");
    }
}

#[test]
fn creates_and_unlinks_without_directory_fsync_are_undone() {
    let mut v = posix();
    durable_file(&mut v, "kept", b"durable bytes");
    v.unlink(ROOT, name("kept")).unwrap();
    v.create(ROOT, name("added"), 0o644, 0, 0, RW).unwrap();
    v.mkdir(ROOT, name("dir"), 0o755, 0, 0).unwrap();
    assert_eq!(v.volatile().unsynced_entries, 3);
    v.cut();
    assert_eq!(names(&v, ROOT), ["kept"]);
    assert_eq!(content(&v, ROOT, "kept").unwrap(), b"durable bytes");

    v.unlink(ROOT, name("kept")).unwrap();
    v.fsyncdir(ROOT).unwrap();
    v.cut();
    assert!(names(&v, ROOT).is_empty());
    assert_eq!(v.usage().used_bytes, 0);
}

#[test]
fn a_directory_whose_own_entry_is_not_durable_takes_its_synced_content_with_it() {
    let mut v = posix();
    let d = v.mkdir(ROOT, name("stream"), 0o755, 0, 0).unwrap().ino;
    let (a, fh) = v.create(d, name("1.blk"), 0o644, 0, 0, RW).unwrap();
    v.write(fh, 0, b"msg").unwrap();
    v.fsync(a.ino, SyncKind::All).unwrap();
    v.fsyncdir(d).unwrap();
    v.cut();
    assert!(names(&v, ROOT).is_empty());
    assert_eq!(
        v.usage(),
        Usage {
            capacity_bytes: 64 << 20,
            used_bytes: 0,
            inodes: 1
        }
    );
}

#[test]
fn truncation_is_volatile_until_synced_and_never_uncovers_old_bytes() {
    let mut v = posix();
    let original: Vec<u8> = (0..10_000).map(|i| (i % 200 + 1) as u8).collect();
    let ino = durable_file(&mut v, "f", &original);
    let shrink = |size| SetAttr {
        size: Some(size),
        ..SetAttr::default()
    };
    v.setattr(ino, &shrink(100)).unwrap();
    v.setattr(ino, &shrink(10_000)).unwrap();
    let now = content(&v, ROOT, "f").unwrap();
    assert_eq!(&now[..100], &original[..100]);
    assert!(now[100..].iter().all(|&b| b == 0), "grown back as a hole");
    v.cut();
    assert_eq!(content(&v, ROOT, "f").unwrap(), original);

    v.setattr(ino, &shrink(5000)).unwrap();
    v.fsync(ino, SyncKind::Data).unwrap();
    v.setattr(ino, &shrink(9000)).unwrap();
    v.cut();
    assert_eq!(content(&v, ROOT, "f").unwrap(), &original[..5000]);
    assert_eq!(
        v.usage().used_bytes,
        2 * PAGE as u64,
        "pages past 5000 freed"
    );
}

#[test]
fn sparse_writes_store_only_the_pages_written() {
    let mut v = posix();
    let ino = durable_file(&mut v, "sparse", b"");
    let fh = v.open(ino, RW).unwrap();
    let far = 1 << 30;
    v.write(fh, far, b"end").unwrap();
    v.fsync(ino, SyncKind::Data).unwrap();
    v.cut();
    let a = v.getattr(ino).unwrap();
    assert_eq!(a.size, far + 3);
    assert_eq!(a.blocks, PAGE as u64 / 512);
    assert_eq!(v.read(ino, far - 2, 10).unwrap(), b"\0\0end");
    assert_eq!(v.read(ino, 12345, 3).unwrap(), b"\0\0\0");
}

#[test]
fn o_append_writes_at_the_end_and_o_sync_makes_each_write_durable() {
    let mut v = posix();
    let ino = durable_file(&mut v, "log", b"head ");
    let append = OpenFlags {
        append: true,
        sync: Some(SyncKind::Data),
    };
    let fh = v.open(ino, append).unwrap();
    v.write(fh, 0, b"one ").unwrap();
    v.write(fh, 0, b"two").unwrap();
    v.cut();
    assert_eq!(content(&v, ROOT, "log").unwrap(), b"head one two");
}

#[test]
fn fdatasync_keeps_the_mode_volatile_fsync_does_not() {
    for (kind, expected) in [(SyncKind::Data, 0o644), (SyncKind::All, 0o600)] {
        let mut v = posix();
        let ino = durable_file(&mut v, "f", b"x");
        v.setattr(
            ino,
            &SetAttr {
                mode: Some(0o600),
                ..SetAttr::default()
            },
        )
        .unwrap();
        v.fsync(ino, kind).unwrap();
        v.cut();
        assert_eq!(v.getattr(ino).unwrap().perm, expected, "{kind:?}");
    }
}

#[test]
fn an_unlinked_open_file_lives_until_released() {
    let mut v = posix();
    let ino = durable_file(&mut v, "f", b"still readable");
    let fh = v.open(ino, RW).unwrap();
    v.unlink(ROOT, name("f")).unwrap();
    v.fsyncdir(ROOT).unwrap();
    assert_eq!(v.read(ino, 0, 100).unwrap(), b"still readable");
    assert_eq!(v.getattr(ino).unwrap().nlink, 0);
    v.release(fh).unwrap();
    assert_eq!(v.getattr(ino), Err(FsError::NotFound));
    assert_eq!(v.usage().used_bytes, 0);
}

#[test]
fn a_cut_closes_every_handle() {
    let mut v = posix();
    let ino = durable_file(&mut v, "f", b"");
    let fh = v.open(ino, RW).unwrap();
    v.cut();
    assert_eq!(v.write(fh, 0, b"x"), Err(FsError::BadHandle));
}

#[test]
fn hard_links_survive_as_their_directories_were_synced() {
    let mut v = posix();
    let ino = durable_file(&mut v, "a", b"shared");
    let d = v.mkdir(ROOT, name("d"), 0o755, 0, 0).unwrap().ino;
    v.fsyncdir(ROOT).unwrap();
    v.link(ino, d, name("b")).unwrap();
    v.fsyncdir(d).unwrap();
    v.unlink(ROOT, name("a")).unwrap();
    v.cut();
    assert_eq!(v.getattr(ino).unwrap().nlink, 2);
    assert_eq!(content(&v, d, "b").unwrap(), b"shared");
    assert_eq!(v.link(d, ROOT, name("x")), Err(FsError::NotPermitted));
}

#[test]
fn rename_checks_and_exchange() {
    let mut v = posix();
    let a = v.mkdir(ROOT, name("a"), 0o755, 0, 0).unwrap().ino;
    let b = v.mkdir(a, name("b"), 0o755, 0, 0).unwrap().ino;
    durable_file(&mut v, "f", b"f");
    durable_file(&mut v, "g", b"g");
    let r = |v: &mut Volume, fd, f: &str, td, t: &str, m| v.rename(fd, name(f), td, name(t), m);
    use RenameMode::*;
    assert_eq!(r(&mut v, ROOT, "a", b, "x", Replace), Err(FsError::Invalid));
    assert_eq!(
        r(&mut v, ROOT, "f", ROOT, "a", Replace),
        Err(FsError::IsDir)
    );
    assert_eq!(
        r(&mut v, ROOT, "a", ROOT, "f", Replace),
        Err(FsError::NotDir)
    );
    assert_eq!(
        r(&mut v, ROOT, "f", ROOT, "g", NoReplace),
        Err(FsError::Exists)
    );
    assert_eq!(
        r(&mut v, ROOT, "nope", ROOT, "g", Replace),
        Err(FsError::NotFound)
    );
    assert_eq!(v.rmdir(ROOT, name("a")), Err(FsError::NotEmpty));
    assert_eq!(v.unlink(ROOT, name("a")), Err(FsError::IsDir));
    r(&mut v, ROOT, "f", ROOT, "g", Exchange).unwrap();
    assert_eq!(content(&v, ROOT, "f").unwrap(), b"g");
    assert_eq!(content(&v, ROOT, "g").unwrap(), b"f");
    r(&mut v, a, "b", ROOT, "b", Replace).unwrap();
    assert_eq!(v.parent(b).unwrap(), ROOT);
    assert_eq!(
        v.mkdir(ROOT, name(&"n".repeat(256)), 0o755, 0, 0),
        Err(FsError::NameTooLong)
    );
    assert_eq!(
        v.mkdir(ROOT, name("a/b"), 0o755, 0, 0),
        Err(FsError::Invalid)
    );
}

#[test]
fn a_renamed_directory_reappears_where_its_durable_entry_is() {
    let mut v = posix();
    let a = v.mkdir(ROOT, name("a"), 0o755, 0, 0).unwrap().ino;
    let b = v.mkdir(ROOT, name("b"), 0o755, 0, 0).unwrap().ino;
    let c = v.mkdir(a, name("c"), 0o755, 0, 0).unwrap().ino;
    v.fsyncdir(ROOT).unwrap();
    v.fsyncdir(a).unwrap();
    v.rename(a, name("c"), b, name("c"), RenameMode::Replace)
        .unwrap();
    v.cut();
    assert_eq!(names(&v, a), ["c"]);
    assert!(names(&v, b).is_empty());
    assert_eq!(v.parent(c).unwrap(), a);
    assert_eq!(v.getattr(a).unwrap().nlink, 3);
}

#[test]
fn the_capacity_is_enforced_without_partial_writes() {
    let mut v = Volume::new(&Config {
        capacity_bytes: 4 * PAGE as u64,
        ..Config::default()
    });
    let ino = durable_file(&mut v, "f", &[1; 3 * PAGE]);
    let fh = v.open(ino, RW).unwrap();
    assert_eq!(
        v.write(fh, 3 * PAGE as u64, &[2; 2 * PAGE]),
        Err(FsError::NoSpace)
    );
    assert_eq!(v.getattr(ino).unwrap().size, 3 * PAGE as u64);
    v.write(fh, 3 * PAGE as u64, &[2; PAGE]).unwrap();
    assert_eq!(v.usage().used_bytes, 4 * PAGE as u64);
    v.release(fh).unwrap();
    v.unlink(ROOT, name("f")).unwrap();
    assert_eq!(
        v.usage().used_bytes,
        4 * PAGE as u64,
        "the durable entry keeps it"
    );
    v.fsyncdir(ROOT).unwrap();
    assert_eq!(v.usage().used_bytes, 0);
    assert_eq!(
        v.write(fh, 0, b"x"),
        Err(FsError::BadHandle),
        "released handle"
    );
}

#[test]
fn a_sync_costs_the_pages_written_since_the_last_one() {
    let mut v = posix();
    let ino = durable_file(&mut v, "blk", &vec![7; 4 << 20]);
    let fh = v.open(ino, RW).unwrap();
    for i in 0..100u64 {
        v.write(fh, (4 << 20) + i * 100, &[i as u8; 100]).unwrap();
        assert!(v.volatile().unsynced_bytes <= 2 * PAGE as u64);
        v.fsync(ino, SyncKind::Data).unwrap();
        assert_eq!(v.volatile(), Volatile::default());
    }
    assert_eq!(v.usage().used_bytes, (4 << 20) + 3 * PAGE as u64);
}

/// Random writes, truncations, syncs and cuts on one file against a naive
/// model that copies the whole file at every sync.
#[test]
fn file_bytes_match_a_naive_model_under_random_operations() {
    use rand::{Rng, SeedableRng};
    for seed in 0..20u64 {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut v = posix();
        let ino = durable_file(&mut v, "f", b"");
        let mut fh = v.open(ino, RW).unwrap();
        let (mut current, mut durable) = (Vec::<u8>::new(), Vec::<u8>::new());
        for step in 0..300 {
            match rng.random_range(0..10) {
                0..=4 => {
                    let off = rng.random_range(0..(6 * PAGE)) as u64;
                    let len = rng.random_range(1..(2 * PAGE));
                    let byte = rng.random_range(1..=255u8);
                    v.write(fh, off, &vec![byte; len]).unwrap();
                    let end = off as usize + len;
                    if current.len() < end {
                        current.resize(end, 0);
                    }
                    current[off as usize..end].fill(byte);
                }
                5 | 6 => {
                    let size = rng.random_range(0..(7 * PAGE));
                    v.setattr(
                        ino,
                        &SetAttr {
                            size: Some(size as u64),
                            ..SetAttr::default()
                        },
                    )
                    .unwrap();
                    current.resize(size, 0);
                }
                7 | 8 => {
                    v.fsync(ino, SyncKind::Data).unwrap();
                    durable = current.clone();
                }
                _ => {
                    v.cut();
                    current = durable.clone();
                    fh = v.open(ino, RW).unwrap();
                }
            }
            let got = v.read(ino, 0, 1 << 20).unwrap();
            assert!(got == current, "seed {seed} step {step}: content differs");
        }
    }
}

#[test]
fn background_writeback_makes_old_bytes_and_journaled_metadata_durable() {
    let mut v = Volume::new(&Config {
        semantics: Semantics::Journaled,
        writeback: Some(Writeback::LINUX_DEFAULTS),
        ..Config::default()
    });
    let (old, fh_old) = v.create(ROOT, name("old"), 0o644, 0, 0, RW).unwrap();
    v.write(fh_old, 0, b"written at 0 s").unwrap();
    v.tick(20_000);
    let (_, fh_new) = v.create(ROOT, name("new"), 0o644, 0, 0, RW).unwrap();
    v.write(fh_new, 0, b"written at 20 s").unwrap();
    v.tick(31_000);
    assert_eq!(v.getattr(old.ino).unwrap().size, 14);
    v.cut();
    // The journal committed both names; only the old bytes had expired.
    assert_eq!(content(&v, ROOT, "old").unwrap(), b"written at 0 s");
    assert_eq!(content(&v, ROOT, "new").unwrap(), b"");

    let mut strict = posix();
    let ino = durable_file(&mut strict, "f", b"");
    let fh = strict.open(ino, RW).unwrap();
    strict.write(fh, 0, b"x").unwrap();
    strict.tick(3_600_000);
    strict.cut();
    assert_eq!(
        content(&strict, ROOT, "f").unwrap(),
        b"",
        "no writeback modelled"
    );
}
