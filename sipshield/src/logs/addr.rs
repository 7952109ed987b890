//! Peer addresses as Asterisk and sshd print them.

use std::net::IpAddr;

/// Parses `1.2.3.4`, `1.2.3.4:5060`, `2001:db8::1`, `[2001:db8::1]` and
/// `[2001:db8::1]:5060` into the canonical address (an IPv4-mapped IPv6
/// address becomes IPv4).
///
/// An unspecified address (`0.0.0.0`, `::`) is never a peer and gives `None`.
/// A bare IPv6 address followed by a port is not accepted: nothing we parse
/// prints one, and `2001:db8::1:5060` is itself a valid address.
pub(crate) fn parse_peer(text: &str) -> Option<IpAddr> {
    let ip = if let Some(inner) = text.strip_prefix('[') {
        let (host, after) = inner.split_once(']')?;
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(is_port)) {
            return None;
        }
        // pjsip also brackets IPv4 in transport names: `(TCP:[1.2.3.4]:5061)`.
        host.parse::<IpAddr>().ok()?
    } else if let Ok(ip) = text.parse::<IpAddr>() {
        ip
    } else {
        let (host, port) = text.rsplit_once(':')?;
        if !is_port(port) {
            return None;
        }
        IpAddr::V4(host.parse().ok()?)
    };
    let ip = ip.to_canonical();
    (!ip.is_unspecified()).then_some(ip)
}

/// Decimal port number, 0..=65535, no sign or padding beyond five digits.
pub(crate) fn is_port(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 5
        && text.bytes().all(|b| b.is_ascii_digit())
        && text.parse::<u16>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn accepts_the_forms_asterisk_and_sshd_print() {
        assert_eq!(parse_peer("5.6.7.8"), Some(ip("5.6.7.8")));
        assert_eq!(parse_peer("5.6.7.8:5060"), Some(ip("5.6.7.8")));
        assert_eq!(parse_peer("2001:db8::1"), Some(ip("2001:db8::1")));
        assert_eq!(parse_peer("[2001:db8::1]"), Some(ip("2001:db8::1")));
        assert_eq!(parse_peer("[2001:db8::1]:5060"), Some(ip("2001:db8::1")));
        // pjsip transport names bracket IPv4 too.
        assert_eq!(parse_peer("[5.6.7.8]:5060"), Some(ip("5.6.7.8")));
        assert_eq!(
            parse_peer("[2001:0db8:0:0::0001]:5060"),
            Some(ip("2001:db8::1"))
        );
    }

    #[test]
    fn ipv4_mapped_ipv6_is_reported_as_ipv4() {
        assert_eq!(parse_peer("::ffff:5.6.7.8"), Some(ip("5.6.7.8")));
        assert_eq!(parse_peer("[::ffff:5.6.7.8]:5060"), Some(ip("5.6.7.8")));
    }

    #[test]
    fn rejects_what_is_not_a_peer_address() {
        for text in [
            "",
            "host.example.com",
            "5.6.7.8:",
            "5.6.7.8:99999",
            "5.6.7.8:50a",
            "5.6.7.256",
            "[2001:db8::1",
            "[2001:db8::1]5060",
            "[5.6.7.8]5060",
            "0.0.0.0",
            "0.0.0.0:5060",
            "::",
            "[::]:5060",
            " 5.6.7.8",
            "fe80::1%eth0",
        ] {
            assert_eq!(parse_peer(text), None, "{text:?}");
        }
    }
}
