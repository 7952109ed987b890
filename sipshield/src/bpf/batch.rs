//! `BPF_MAP_UPDATE_BATCH` and `BPF_MAP_LOOKUP_BATCH`, which aya 0.14 does
//! not wrap: a million bans go into a hash map, or are read out of it, in a
//! few hundred system calls instead of one or two million.

use std::os::fd::{AsFd, AsRawFd};

use aya::maps::MapData;

/// `BPF_MAP_LOOKUP_BATCH` and `BPF_MAP_UPDATE_BATCH` of `enum bpf_cmd`
/// (Linux 5.6+).
const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;
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

/// Below this many entries a write is not split across threads.
const SPLIT_AT: usize = 4 * CHUNK;
/// At most this many writers: the kernel's hash takes a lock per bucket,
/// so writers of one map rarely meet.
const MAX_WRITERS: usize = 4;

/// A part of a split write that stopped early: `items[written..end]` were
/// not written, for `error`.
#[derive(Debug)]
pub struct Stopped {
    pub written: usize,
    pub end: usize,
    pub error: std::io::Error,
}

/// Writes `keys[i] -> values[i]` for every `i`, a contiguous part per
/// core (a million restored bans are mostly this system call's time, on
/// one core while the others idle). Returns the parts that stopped early.
pub fn update_split<K: aya::Pod + Sync, V: aya::Pod + Sync>(
    map: &MapData,
    keys: &[K],
    values: &[V],
) -> Vec<Stopped> {
    let fd = map.fd().as_fd().as_raw_fd();
    let n = keys.len().min(values.len());
    let writers = std::thread::available_parallelism()
        .map_or(1, |c| c.get())
        .min(MAX_WRITERS)
        .min(n.div_ceil(SPLIT_AT))
        .max(1);
    let part = n.div_ceil(writers);
    let parts: Vec<(usize, usize)> = (0..writers)
        .map(|w| (w * part, ((w + 1) * part).min(n)))
        .filter(|(start, end)| start < end)
        .collect();
    let one = |&(start, end): &(usize, usize)| -> Option<Stopped> {
        let (done, error) = update_fd(fd, &keys[start..end], &values[start..end]);
        error.map(|error| Stopped {
            written: start + done,
            end,
            error,
        })
    };
    let Some((first, rest)) = parts.split_first() else {
        return Vec::new();
    };
    std::thread::scope(|scope| {
        let handles: Vec<_> = rest
            .iter()
            .map(|p| std::thread::Builder::new().spawn_scoped(scope, move || one(p)))
            .collect();
        let mut stopped: Vec<Stopped> = one(first).into_iter().collect();
        for (h, p) in handles.into_iter().zip(rest) {
            match h {
                Ok(h) => stopped.extend(h.join().ok().flatten()),
                // No thread to be had: this part on this one.
                Err(_) => stopped.extend(one(p)),
            }
        }
        stopped
    })
}

/// Writes `keys[i] -> values[i]` for every `i`, `CHUNK` at a time. Returns
/// how many were written; on failure also the error (the entries after
/// that count were not written).
fn update_fd<K: aya::Pod, V: aya::Pod>(
    fd: std::os::fd::RawFd,
    keys: &[K],
    values: &[V],
) -> (usize, Option<std::io::Error>) {
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
        if let Err(err) = unsafe { batch_call(BPF_MAP_UPDATE_BATCH, &mut attr) } {
            return (done + attr.count as usize, Some(err));
        }
        done = end;
    }
    (done, None)
}

/// Every entry of a hash map (plain or LRU), `CHUNK` or more a system
/// call. `Err` with `EINVAL`/`ENOTSUPP`-like codes on a kernel or map type
/// without batch lookups: the caller walks the map key by key instead.
pub fn lookup_all<K: aya::Pod + Default, V: aya::Pod + Default>(
    map: &MapData,
) -> std::io::Result<Vec<(K, V)>> {
    let fd = map.fd().as_fd().as_raw_fd();
    let mut out = Vec::new();
    let mut room = CHUNK;
    // The kernel's cursor between calls (a bucket index for a hash);
    // room for any cursor it may use.
    let mut cursor_in = [0u64; 8];
    let mut cursor_out = [0u64; 8];
    let mut first = true;
    let mut keys = vec![K::default(); room];
    let mut values = vec![V::default(); room];
    loop {
        let mut attr = BatchAttr {
            in_batch: if first { 0 } else { cursor_in.as_ptr() as u64 },
            out_batch: cursor_out.as_mut_ptr() as u64,
            keys: keys.as_mut_ptr() as u64,
            values: values.as_mut_ptr() as u64,
            count: room as u32,
            map_fd: fd as u32,
            ..BatchAttr::default()
        };
        // SAFETY: `keys` and `values` hold `count` elements each and the
        // cursors are 64 bytes: the kernel writes at most that much.
        let error = unsafe { batch_call(BPF_MAP_LOOKUP_BATCH, &mut attr) }.err();
        let got = (attr.count as usize).min(room);
        match error.as_ref().and_then(std::io::Error::raw_os_error) {
            // One bucket holds more than there is room for: more room.
            Some(libc::ENOSPC) if got == 0 => {
                room *= 2;
                keys.resize(room, K::default());
                values.resize(room, V::default());
                continue;
            }
            None | Some(libc::ENOENT) => {}
            _ => return Err(error.unwrap_or_else(|| std::io::Error::other("batch lookup"))),
        }
        out.extend(
            keys[..got]
                .iter()
                .copied()
                .zip(values[..got].iter().copied()),
        );
        // ENOENT: that was the last of them.
        if error.is_some() {
            return Ok(out);
        }
        cursor_in = cursor_out;
        first = false;
    }
}

/// One batch command on `attr`.
///
/// # Safety
/// `attr`'s buffers must hold `count` keys and values (and the cursors
/// the command uses) for the call.
unsafe fn batch_call(cmd: libc::c_long, attr: &mut BatchAttr) -> std::io::Result<()> {
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut BatchAttr,
            std::mem::size_of::<BatchAttr>() as u32,
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
