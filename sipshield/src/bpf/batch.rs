//! `BPF_MAP_UPDATE_BATCH`, which aya 0.14 does not wrap: a million bans go
//! into a hash map in a few hundred system calls instead of a million.

use std::os::fd::{AsFd, AsRawFd};

use aya::maps::MapData;

/// `BPF_MAP_UPDATE_BATCH` of `enum bpf_cmd` (Linux 5.6+).
const BPF_MAP_UPDATE_BATCH: libc::c_long = 26;

/// Entries per system call: large enough to amortise it, small enough
/// for the kernel's copy of the keys and values.
pub const CHUNK: usize = 4096;

/// The `batch` member of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

/// Writes `keys[i] -> values[i]` for every `i`, `CHUNK` at a time. Returns
/// how many were written; on failure also the error (the entries after
/// that count were not written).
pub fn update<K: aya::Pod, V: aya::Pod>(
    map: &MapData,
    keys: &[K],
    values: &[V],
) -> (usize, Option<std::io::Error>) {
    let fd = map.fd().as_fd().as_raw_fd();
    let n = keys.len().min(values.len());
    let mut done = 0;
    while done < n {
        let end = (done + CHUNK).min(n);
        let mut attr = BatchAttr {
            keys: keys[done..end].as_ptr() as u64,
            values: values[done..end].as_ptr() as u64,
            count: (end - done) as u32,
            map_fd: fd as u32,
            ..BatchAttr::default()
        };
        // SAFETY: `attr` points at `count` keys and values that live for
        // the call; the kernel reads them and writes back only `count`.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_MAP_UPDATE_BATCH,
                &mut attr as *mut BatchAttr,
                std::mem::size_of::<BatchAttr>() as u32,
            )
        };
        if rc < 0 {
            let err = std::io::Error::last_os_error();
            return (done + attr.count as usize, Some(err));
        }
        done = end;
    }
    (done, None)
}
