//! Conversions between `std::net` addresses / `ipnet` prefixes and map keys
//! (raw network-order bytes; LPM keys carry the prefix length).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use aya::maps::lpm_trie::Key;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

pub fn v4_key(a: Ipv4Addr) -> [u8; 4] {
    a.octets()
}

pub fn v6_key(a: Ipv6Addr) -> [u8; 16] {
    a.octets()
}

/// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are stored as IPv4: that is
/// how such packets arrive on the wire.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
        v4 => v4,
    }
}

pub fn lpm_v4(net: Ipv4Net) -> Key<[u8; 4]> {
    Key::new(u32::from(net.prefix_len()), net.network().octets())
}

pub fn lpm_v6(net: Ipv6Net) -> Key<[u8; 16]> {
    Key::new(u32::from(net.prefix_len()), net.network().octets())
}

pub fn net_from_v4(key: &Key<[u8; 4]>) -> IpNet {
    let len = key.prefix_len().min(32) as u8;
    IpNet::V4(Ipv4Net::new(Ipv4Addr::from(key.data()), len).unwrap_or_default())
}

pub fn net_from_v6(key: &Key<[u8; 16]>) -> IpNet {
    let len = key.prefix_len().min(128) as u8;
    IpNet::V6(Ipv6Net::new(Ipv6Addr::from(key.data()), len).unwrap_or_default())
}

/// A prefix normalised to its network address (`10.1.2.3/8` → `10.0.0.0/8`),
/// IPv4-mapped IPv6 prefixes folded to IPv4.
/// True when the two networks share an address (one holds the other).
pub fn overlap(a: IpNet, b: IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

pub fn canonical_net(net: IpNet) -> IpNet {
    match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.network().to_ipv4_mapped() {
            Some(v4) => IpNet::V4(Ipv4Net::new(v4, v6.prefix_len() - 96).unwrap_or_default()),
            None => net.trunc(),
        },
        _ => net.trunc(),
    }
}

/// Parses `a.b.c.d`, `a.b.c.d/n`, an IPv6 address or prefix; a bare address
/// becomes a host prefix (/32 or /128).
pub fn parse_net(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    if let Ok(net) = s.parse::<IpNet>() {
        return Ok(net);
    }
    match s
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        Ok(ip) => Ok(IpNet::from(ip)),
        Err(_) => Err(format!("{s:?} is not an IP address or CIDR prefix")),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn bare_addresses_parse_as_host_prefixes() {
        assert_eq!(parse_net("192.0.2.1").unwrap().to_string(), "192.0.2.1/32");
        assert_eq!(
            parse_net("[2001:db8::1]").unwrap().to_string(),
            "2001:db8::1/128"
        );
        assert_eq!(parse_net("10.0.0.0/8").unwrap().to_string(), "10.0.0.0/8");
        assert!(parse_net("10.0.0.0/33").is_err());
        assert!(parse_net("example.com").is_err());
    }

    use super::*;

    #[test]
    fn mapped_v6_is_stored_as_v4() {
        let ip: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(canonical(ip), "192.0.2.7".parse::<IpAddr>().unwrap());
        let net: IpNet = "::ffff:192.0.2.0/120".parse().unwrap();
        assert_eq!(canonical_net(net), "192.0.2.0/24".parse::<IpNet>().unwrap());
    }

    #[test]
    fn prefixes_are_truncated_to_network() {
        let net: IpNet = "10.1.2.3/8".parse().unwrap();
        assert_eq!(canonical_net(net).to_string(), "10.0.0.0/8");
        let key = lpm_v4("10.1.2.3/8".parse::<Ipv4Net>().unwrap().trunc());
        assert_eq!(key.prefix_len(), 8);
        assert_eq!(key.data(), [10, 0, 0, 0]);
        assert_eq!(net_from_v4(&key).to_string(), "10.0.0.0/8");
    }
}
