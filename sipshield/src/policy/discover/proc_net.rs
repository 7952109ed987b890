//! Default gateways and SSH peers, from the kernel's tables in `/proc/net`.
//!
//! `route`, `tcp` and `tcp6` print addresses as hex dumps of the kernel's
//! in-memory words (IPv4 one 32-bit word, IPv6 four), each as a native-endian
//! integer, so they are turned back into bytes with `to_ne_bytes`;
//! `ipv6_route` prints the 16 bytes in network order.

use std::{
    fs, io,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::Path,
};

use super::DiscoverError;

/// `RTF_GATEWAY` in the route flags.
const RTF_GATEWAY: u32 = 0x2;
/// `TCP_ESTABLISHED` in the `st` column of `/proc/net/tcp`.
const TCP_ESTABLISHED: &str = "01";

/// Reads `proc_dir/net/<name>`; a missing file (no IPv6, say) reads as empty.
fn read_table(proc_dir: &Path, name: &str) -> Result<String, DiscoverError> {
    let path = proc_dir.join("net").join(name);
    match fs::read_to_string(&path) {
        Ok(text) => Ok(text),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(String::new()),
        Err(source) => Err(DiscoverError::Read { path, source }),
    }
}

/// The next hops of the default routes, IPv4 (`net/route`) and IPv6
/// (`net/ipv6_route`), with their interfaces.
pub fn default_gateways(proc_dir: &Path) -> Result<Vec<(String, IpAddr)>, DiscoverError> {
    let mut gateways = Vec::new();
    // Iface Destination Gateway Flags RefCnt Use Metric Mask MTU Window IRTT
    for line in read_table(proc_dir, "route")?.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [iface, destination, gateway, flags, _, _, _, mask, ..] = fields[..] else {
            continue;
        };
        let (Some(destination), Some(gateway), Some(flags), Some(mask)) = (
            hex_v4(destination),
            hex_v4(gateway),
            hex_u32(flags),
            hex_v4(mask),
        ) else {
            continue;
        };
        if destination.is_unspecified()
            && mask.is_unspecified()
            && flags & RTF_GATEWAY != 0
            && !gateway.is_unspecified()
        {
            push_unique(&mut gateways, (iface.to_string(), IpAddr::V4(gateway)));
        }
    }
    // dest dest_len src src_len next_hop metric refcnt use flags iface
    for line in read_table(proc_dir, "ipv6_route")?.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [destination, dest_len, _, _, next_hop, _, _, _, flags, iface] = fields[..] else {
            continue;
        };
        let (Some(destination), Some(dest_len), Some(next_hop), Some(flags)) = (
            hex_v6_bytes(destination),
            hex_u32(dest_len),
            hex_v6_bytes(next_hop),
            hex_u32(flags),
        ) else {
            continue;
        };
        if destination.is_unspecified()
            && dest_len == 0
            && flags & RTF_GATEWAY != 0
            && !next_hop.is_unspecified()
        {
            push_unique(&mut gateways, (iface.to_string(), IpAddr::V6(next_hop)));
        }
    }
    Ok(gateways)
}

/// The remote ends (address, port) of established TCP connections to one
/// of `ssh_ports` on this host (`net/tcp`, `net/tcp6`). Only what sshd
/// accepted a login on counts as a session: see `policy::ssh_sessions`.
pub fn ssh_connections(
    proc_dir: &Path,
    ssh_ports: &[u16],
) -> Result<Vec<(IpAddr, u16)>, DiscoverError> {
    let mut peers = Vec::new();
    for (name, v6) in [("tcp", false), ("tcp6", true)] {
        // sl local_address rem_address st ...
        for line in read_table(proc_dir, name)?.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [_, local, remote, state, ..] = fields[..] else {
                continue;
            };
            if state != TCP_ESTABLISHED {
                continue;
            }
            let (Some((_, local_port)), Some((remote_ip, remote_port))) =
                (socket(local, v6), socket(remote, v6))
            else {
                continue;
            };
            if ssh_ports.contains(&local_port) {
                push_unique(&mut peers, (remote_ip.to_canonical(), remote_port));
            }
        }
    }
    Ok(peers)
}

fn socket(field: &str, v6: bool) -> Option<(IpAddr, u16)> {
    let (addr, port) = field.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let ip = if v6 {
        IpAddr::V6(hex_v6(addr)?)
    } else {
        IpAddr::V4(hex_v4(addr)?)
    };
    Some((ip, port))
}

fn hex_u32(text: &str) -> Option<u32> {
    u32::from_str_radix(text, 16).ok()
}

fn hex_v4(text: &str) -> Option<Ipv4Addr> {
    if text.len() != 8 {
        return None;
    }
    Some(Ipv4Addr::from(hex_u32(text)?.to_ne_bytes()))
}

fn hex_v6(text: &str) -> Option<Ipv6Addr> {
    if text.len() != 32 || !text.is_ascii() {
        return None;
    }
    let mut bytes = [0u8; 16];
    for (i, chunk) in bytes.chunks_exact_mut(4).enumerate() {
        chunk.copy_from_slice(&hex_u32(&text[i * 8..i * 8 + 8])?.to_ne_bytes());
    }
    Some(Ipv6Addr::from(bytes))
}

/// 32 hex digits, the address bytes in order.
fn hex_v6_bytes(text: &str) -> Option<Ipv6Addr> {
    if text.len() != 32 || !text.is_ascii() {
        return None;
    }
    let mut bytes = [0u8; 16];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[i * 2..i * 2 + 2], 16).ok()?;
    }
    Some(Ipv6Addr::from(bytes))
}

fn push_unique<T: PartialEq>(list: &mut Vec<T>, item: T) {
    if !list.contains(&item) {
        list.push(item);
    }
}

#[cfg(all(test, target_endian = "little"))]
mod tests {
    use super::*;

    #[test]
    fn decodes_proc_addresses() {
        assert_eq!(hex_v4("0101A8C0"), Some(Ipv4Addr::new(192, 168, 1, 1)));
        assert_eq!(
            hex_v6("B80D0120000000000000000001000000"),
            Some("2001:db8::1".parse().unwrap())
        );
        assert_eq!(
            socket("0000000000000000FFFF00000702000C:0016", true),
            Some(("::ffff:12.0.2.7".parse().unwrap(), 22))
        );
        assert_eq!(hex_v4("0101A8C"), None);
        assert_eq!(
            hex_v6_bytes("fe800000000000000000000000000001"),
            Some("fe80::1".parse().unwrap())
        );
    }
}
