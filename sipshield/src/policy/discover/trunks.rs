//! SIP trunk hosts from Asterisk's configuration: the peers an attacker
//! must never get banned by spoofing their address.
//!
//! - sip.conf: `host=` of peers that are not `dynamic`, and `register =>`.
//! - pjsip.conf: `match=` of `identify` sections, `contact=` of `aor`s,
//!   `server_uri=` of `registration`s.
//! - pjsip_wizard.conf: `remote_hosts=` of wizards.
//!
//! Host names are resolved (A/AAAA only, no SRV/NAPTR); failures are
//! reported as warnings and the rest is kept.

use std::{
    io,
    net::{IpAddr, Ipv4Addr},
    path::Path,
};

use ipnet::IpNet;

use super::asterisk_conf::{effective_entries, last_value, read, Entry, Section};
use crate::policy::{AllowEntry, AllowSource};

/// Turns a host name into addresses.
pub type Resolver<'a> = &'a dyn Fn(&str) -> io::Result<Vec<IpAddr>>;

/// The widest trunk networks taken: a provider's range is rarely wider,
/// and `match=0.0.0.0/0` must not allowlist the Internet.
pub const WIDEST_TRUNK_V4: u8 = 16;
pub const WIDEST_TRUNK_V6: u8 = 48;

/// What the Asterisk configuration says about trunks.
#[derive(Debug, Clone, Default)]
pub struct Trunks {
    pub entries: Vec<AllowEntry>,
    /// What could not be used now (unreadable file, unresolvable name): the
    /// earlier entries are kept.
    pub warnings: Vec<String>,
    /// Networks too wide to allowlist, refused for good (not a failure).
    pub refused: Vec<String>,
}

/// Trunk hosts found in `config_dir`, and what could not be used.
pub fn asterisk_trunks(config_dir: &Path, resolve: Resolver<'_>) -> Trunks {
    let mut scan = Scan {
        entries: Vec::new(),
        warnings: Vec::new(),
        refused: Vec::new(),
        resolve,
    };
    let mut warnings = Vec::new();
    if let Some(sections) = read(config_dir, "sip.conf", &mut warnings) {
        scan.chan_sip(&sections);
    }
    if let Some(sections) = read(config_dir, "pjsip.conf", &mut warnings) {
        scan.pjsip(&sections);
    }
    if let Some(sections) = read(config_dir, "pjsip_wizard.conf", &mut warnings) {
        scan.wizard(&sections);
    }
    scan.warnings.extend(warnings);
    Trunks {
        entries: scan.entries,
        warnings: scan.warnings,
        refused: scan.refused,
    }
}

struct Scan<'a> {
    entries: Vec<AllowEntry>,
    warnings: Vec<String>,
    refused: Vec<String>,
    resolve: Resolver<'a>,
}

impl Scan<'_> {
    fn chan_sip(&mut self, sections: &[Section]) {
        for section in sections.iter().filter(|s| !s.template) {
            let entries = effective_entries(sections, section);
            if section.name.eq_ignore_ascii_case("general") {
                for entry in entries.iter().filter(|e| e.key == "register") {
                    if let Some(host) = register_host(&entry.value) {
                        self.host(host, entry, &section.name);
                    }
                }
                continue;
            }
            if let Some(entry) = last_value(&entries, "host") {
                if !entry.value.eq_ignore_ascii_case("dynamic") && !entry.value.is_empty() {
                    self.host(&entry.value, entry, &section.name);
                }
            }
        }
    }

    fn pjsip(&mut self, sections: &[Section]) {
        for section in sections.iter().filter(|s| !s.template) {
            let entries = effective_entries(sections, section);
            let kind = last_value(&entries, "type").map(|e| e.value.to_ascii_lowercase());
            let (key, uri) = match kind.as_deref() {
                Some("identify") => ("match", false),
                Some("aor") => ("contact", true),
                Some("registration") => ("server_uri", true),
                _ => continue,
            };
            for entry in entries.iter().filter(|e| e.key == key) {
                for item in entry
                    .value
                    .split(',')
                    .map(str::trim)
                    .filter(|i| !i.is_empty())
                {
                    let host = if uri { uri_host(item) } else { Some(item) };
                    if let Some(host) = host {
                        self.host(host, entry, &section.name);
                    }
                }
            }
        }
    }

    fn wizard(&mut self, sections: &[Section]) {
        for section in sections.iter().filter(|s| !s.template) {
            let entries = effective_entries(sections, section);
            let is_wizard = last_value(&entries, "type")
                .is_some_and(|e| e.value.eq_ignore_ascii_case("wizard"));
            if !is_wizard {
                continue;
            }
            for entry in entries.iter().filter(|e| e.key == "remote_hosts") {
                for item in entry
                    .value
                    .split(',')
                    .map(str::trim)
                    .filter(|i| !i.is_empty())
                {
                    self.host(item, entry, &section.name);
                }
            }
        }
    }

    /// `text`: an address, a network (`/prefix` or `/netmask`), or a host
    /// name, any of them with a `:port`.
    fn host(&mut self, text: &str, entry: &Entry, section: &str) {
        let note = format!(
            "{}:{} [{section}] {}={}",
            entry.file, entry.line, entry.key, entry.value
        );
        if text.contains('/') {
            match parse_network(text) {
                Some(net) => self.push(net, note),
                None => self
                    .warnings
                    .push(format!("{note}: {text:?} is not a network")),
            }
            return;
        }
        let host = strip_port(text);
        if let Ok(ip) = host.parse::<IpAddr>() {
            self.push(IpNet::from(ip), note);
            return;
        }
        if !is_host_name(host) {
            self.warnings
                .push(format!("{note}: {host:?} is not an address or host name"));
            return;
        }
        match (self.resolve)(host) {
            Ok(addrs) if !addrs.is_empty() => {
                for ip in addrs {
                    self.push(IpNet::from(ip), format!("{note} ({host})"));
                }
            }
            Ok(_) => self.warnings.push(format!("{note}: {host} has no address")),
            Err(err) => self
                .warnings
                .push(format!("{note}: resolving {host}: {err}")),
        }
    }

    fn push(&mut self, net: IpNet, note: String) {
        let entry = AllowEntry::new(net, AllowSource::AsteriskTrunk, note);
        let widest = match entry.net {
            IpNet::V4(_) => WIDEST_TRUNK_V4,
            IpNet::V6(_) => WIDEST_TRUNK_V6,
        };
        if entry.net.prefix_len() < widest {
            self.refused.push(format!(
                "{}: {} is wider than /{widest}, not allowlisted (list the provider's addresses, or allowlist it in [allow] cidrs if you mean it)",
                entry.note, entry.net
            ));
            return;
        }
        if !self.entries.iter().any(|e| e.net == entry.net) {
            self.entries.push(entry);
        }
    }
}

/// `[peer?][transport://]user[:secret[:authuser]]@host[:port][/extension][~expiry]`.
fn register_host(value: &str) -> Option<&str> {
    let after_user = &value[value.rfind('@')? + 1..];
    let end = after_user.find(['/', '~']).unwrap_or(after_user.len());
    let host = after_user[..end].trim();
    (!host.is_empty()).then_some(host)
}

/// The host of `sip:user@host:port;params` (also `sips:`, `<...>`).
fn uri_host(uri: &str) -> Option<&str> {
    let uri = uri.trim().trim_start_matches('<');
    let uri = uri.find(':').map_or(uri, |i| {
        let scheme = &uri[..i];
        if scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips") {
            &uri[i + 1..]
        } else {
            uri
        }
    });
    let uri = &uri[..uri.find([';', '?', '>']).unwrap_or(uri.len())];
    let host = uri.rfind('@').map_or(uri, |i| &uri[i + 1..]);
    let host = strip_port(host.trim());
    (!host.is_empty()).then_some(host)
}

/// `[v6]:port` → `v6`, `v4:port` or `name:port` → the host; a bare IPv6
/// address is left whole.
fn strip_port(text: &str) -> &str {
    if let Some(rest) = text.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    if text.parse::<IpAddr>().is_ok() {
        return text;
    }
    match text.split_once(':') {
        Some((host, port)) if !port.contains(':') => host,
        _ => text,
    }
}

/// `addr/prefix` or `addr/dotted-netmask`.
fn parse_network(text: &str) -> Option<IpNet> {
    let (addr, mask) = text.split_once('/')?;
    let addr: IpAddr = addr.trim().trim_matches(['[', ']']).parse().ok()?;
    let prefix = match mask.trim().parse::<u8>() {
        Ok(prefix) => prefix,
        Err(_) => {
            let mask: Ipv4Addr = mask.trim().parse().ok()?;
            let bits = u32::from(mask);
            // Only contiguous masks mean a prefix.
            if bits.leading_ones() + bits.trailing_zeros() != 32 {
                return None;
            }
            u8::try_from(bits.leading_ones()).ok()?
        }
    };
    IpNet::new(addr, prefix).ok().map(|n| n.trunc())
}

fn is_host_name(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 253
        && text.chars().any(|c| c.is_ascii_alphabetic())
        && text.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_lines() {
        assert_eq!(
            register_host("user:secret@sip.example.net:5060/1234"),
            Some("sip.example.net:5060")
        );
        assert_eq!(
            register_host("peer?tcp://u:p@203.0.113.9~3600"),
            Some("203.0.113.9")
        );
        assert_eq!(register_host("no-at-sign"), None);
    }

    #[test]
    fn uris() {
        assert_eq!(uri_host("sip:203.0.113.10:5060"), Some("203.0.113.10"));
        assert_eq!(
            uri_host("<sips:trunk@sip.example.net;transport=tls>"),
            Some("sip.example.net")
        );
        assert_eq!(uri_host("sip:[2001:db8::10]:5060"), Some("2001:db8::10"));
        assert_eq!(uri_host("SIP:user@198.51.100.7"), Some("198.51.100.7"));
    }

    #[test]
    fn networks() {
        assert_eq!(
            parse_network("198.51.100.0/24"),
            "198.51.100.0/24".parse().ok()
        );
        assert_eq!(
            parse_network("198.51.100.9/255.255.255.0"),
            "198.51.100.0/24".parse().ok()
        );
        assert_eq!(parse_network("198.51.100.9/255.0.255.0"), None);
        assert_eq!(parse_network("2001:db8::/32"), "2001:db8::/32".parse().ok());
    }

    #[test]
    fn host_names() {
        assert!(is_host_name("sip.example.net"));
        assert!(!is_host_name("1.2.3"));
        assert!(!is_host_name("bad_name.example"));
        assert!(!is_host_name(""));
    }
}
