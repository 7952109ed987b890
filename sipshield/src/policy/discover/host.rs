//! The host's own addresses.

use std::{
    ffi::CStr,
    io,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    ptr,
};

use ipnet::{IpNet, Ipv4Net};

use super::DiscoverError;
use crate::policy::{AllowEntry, AllowSource};

/// Every address configured on an interface, with the interface's name
/// (`getifaddrs(3)`).
pub fn host_addresses() -> Result<Vec<(String, IpAddr)>, DiscoverError> {
    let mut head: *mut libc::ifaddrs = ptr::null_mut();
    // SAFETY: getifaddrs writes a list head we own until freeifaddrs.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(DiscoverError::Interfaces(io::Error::last_os_error()));
    }
    let mut found = Vec::new();
    let mut cursor = head;
    while !cursor.is_null() {
        // SAFETY: `cursor` is a node of the list returned above, not yet freed.
        let ifa = unsafe { &*cursor };
        cursor = ifa.ifa_next;
        if ifa.ifa_addr.is_null() {
            continue;
        }
        // SAFETY: a non-null ifa_addr points to a sockaddr whose family says
        // which larger sockaddr it is; reads are unaligned-safe.
        let ip = unsafe {
            match i32::from((*ifa.ifa_addr).sa_family) {
                libc::AF_INET => {
                    let sin = ptr::read_unaligned(ifa.ifa_addr as *const libc::sockaddr_in);
                    IpAddr::V4(Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes()))
                }
                libc::AF_INET6 => {
                    let sin6 = ptr::read_unaligned(ifa.ifa_addr as *const libc::sockaddr_in6);
                    IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr))
                }
                _ => continue,
            }
        };
        let name = if ifa.ifa_name.is_null() {
            String::new()
        } else {
            // SAFETY: ifa_name is a NUL-terminated string owned by the list.
            unsafe { CStr::from_ptr(ifa.ifa_name) }
                .to_string_lossy()
                .into_owned()
        };
        found.push((name, ip));
    }
    // SAFETY: `head` came from getifaddrs and is freed once; nothing borrowed
    // from the list outlives this point.
    unsafe { libc::freeifaddrs(head) };
    Ok(found)
}

/// Allowlist entries for the host's addresses: each address itself (never
/// its subnet, which on a hosting network holds other people's machines),
/// plus loopback.
pub fn host_entries(addresses: &[(String, IpAddr)]) -> Vec<AllowEntry> {
    let mut entries = vec![
        AllowEntry::new(
            IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::new(127, 0, 0, 0), 8)),
            AllowSource::HostAddress,
            "loopback",
        ),
        AllowEntry::new(
            IpNet::from(IpAddr::V6(Ipv6Addr::LOCALHOST)),
            AllowSource::HostAddress,
            "loopback",
        ),
    ];
    for (iface, ip) in addresses {
        let ip = ip.to_canonical();
        if ip.is_unspecified() || ip.is_multicast() || entries.iter().any(|e| e.net.contains(&ip)) {
            continue;
        }
        entries.push(AllowEntry::new(
            IpNet::from(ip),
            AllowSource::HostAddress,
            iface.clone(),
        ));
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_addresses_and_loopback_but_not_subnets() {
        let addrs = vec![
            ("lo".to_string(), "127.0.0.1".parse().unwrap()),
            ("eth0".to_string(), "203.0.113.5".parse().unwrap()),
            ("eth0".to_string(), "2001:db8::5".parse().unwrap()),
            ("eth0".to_string(), "fe80::1".parse().unwrap()),
            ("eth1".to_string(), "0.0.0.0".parse().unwrap()),
        ];
        let nets: Vec<String> = host_entries(&addrs)
            .iter()
            .map(|e| e.net.to_string())
            .collect();
        assert_eq!(
            nets,
            [
                "127.0.0.0/8",
                "::1/128",
                "203.0.113.5/32",
                "2001:db8::5/128",
                "fe80::1/128"
            ]
        );
    }

    #[test]
    fn this_machine_has_addresses() {
        let found = host_addresses().unwrap();
        assert!(found.iter().any(|(_, ip)| ip.is_loopback()), "{found:?}");
    }
}
