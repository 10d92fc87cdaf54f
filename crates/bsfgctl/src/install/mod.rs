//! Installing a host from the ISO: which disks the role's layout may touch.
//! [`disks`] is pure (lsblk's JSON and the resolved declared paths in, the
//! selection or every reason to refuse out); reading lsblk and resolving
//! `/dev/disk/by-id/…` links is the caller's I/O.

pub mod disks;
