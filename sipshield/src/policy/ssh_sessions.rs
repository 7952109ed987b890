//! Authenticated SSH sessions: the operator's "don't ban yourself".
//!
//! A TCP connection to sshd proves nothing (anyone can connect and hold it),
//! so a peer counts only once sshd logged `Accepted ... from IP port P`.
//! The session then lives while the kernel shows that connection (remote
//! IP and port) established to an SSH port, plus a grace after it is gone,
//! so a dropped link that reconnects is not banned for a typo meanwhile.

use std::{
    collections::BTreeMap,
    net::IpAddr,
    time::{Duration, SystemTime},
};

use super::{AllowEntry, AllowSource};
use crate::state::{self, SshSession};
use ipnet::IpNet;

/// Sessions kept at most: one attacker with a password cannot grow the
/// table without bound (each needs a real login).
pub const MAX_SESSIONS: usize = 4096;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SshSessions {
    by_peer: BTreeMap<(IpAddr, u16), SshSession>,
}

impl SshSessions {
    /// sshd accepted a login from `ip` port `port`. False if it was known.
    pub fn accepted(&mut self, ip: IpAddr, port: u16, method: &str, now: SystemTime) -> bool {
        let ip = ip.to_canonical();
        let now = state::unix_secs(now);
        if let Some(s) = self.by_peer.get_mut(&(ip, port)) {
            s.last_open = s.last_open.max(now);
            return false;
        }
        if self.by_peer.len() >= MAX_SESSIONS {
            // The session seen open longest ago goes first.
            if let Some(oldest) = self
                .by_peer
                .iter()
                .min_by_key(|(_, s)| s.last_open)
                .map(|(k, _)| *k)
            {
                self.by_peer.remove(&oldest);
            }
        }
        self.by_peer.insert(
            (ip, port),
            SshSession {
                ip,
                port,
                method: method.to_string(),
                accepted: now,
                last_open: now,
            },
        );
        true
    }

    /// The established connections to an SSH port now (`open`: remote
    /// address and port): sessions among them are marked open, the others
    /// end once `grace` has passed since they were last open. True when a
    /// session ended.
    pub fn refresh(&mut self, open: &[(IpAddr, u16)], grace: Duration, now: SystemTime) -> bool {
        let now = state::unix_secs(now);
        for (ip, port) in open {
            if let Some(s) = self.by_peer.get_mut(&(ip.to_canonical(), *port)) {
                s.last_open = now;
            }
        }
        let before = self.by_peer.len();
        let grace = grace.as_secs();
        self.by_peer
            .retain(|_, s| now.saturating_sub(s.last_open) <= grace);
        self.by_peer.len() != before
    }

    /// One allowlist entry per address with a live session.
    pub fn entries(&self) -> Vec<AllowEntry> {
        let mut by_ip: BTreeMap<IpAddr, Vec<&SshSession>> = BTreeMap::new();
        for s in self.by_peer.values() {
            by_ip.entry(s.ip).or_default().push(s);
        }
        by_ip
            .into_iter()
            .map(|(ip, sessions)| {
                let first = sessions[0];
                let mut note = format!("sshd Accepted {} from port {}", first.method, first.port);
                if sessions.len() > 1 {
                    note.push_str(&format!(" (+{} more sessions)", sessions.len() - 1));
                }
                AllowEntry::new(IpNet::from(ip), AllowSource::SshSession, note)
            })
            .collect()
    }

    pub fn records(&self) -> Vec<SshSession> {
        self.by_peer.values().cloned().collect()
    }

    /// Takes back saved sessions (after a restart); the next refresh keeps
    /// those whose connection is still open.
    pub fn restore(&mut self, saved: &[SshSession]) {
        for s in saved {
            let ip = s.ip.to_canonical();
            if s.port != 0 && self.by_peer.len() < MAX_SESSIONS {
                self.by_peer
                    .insert((ip, s.port), SshSession { ip, ..s.clone() });
            }
        }
    }

    pub fn len(&self) -> usize {
        self.by_peer.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_peer.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        state::from_unix_secs(1_800_000_000 + secs)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_session_lives_while_its_connection_is_open_then_the_grace() {
        let mut s = SshSessions::default();
        let grace = Duration::from_secs(120);
        assert!(s.accepted(ip("192.0.2.5"), 50000, "publickey", at(0)));
        assert!(!s.accepted(ip("192.0.2.5"), 50000, "publickey", at(1)));
        // Open for an hour: refreshed every minute.
        for m in 1..=60 {
            assert!(!s.refresh(&[(ip("192.0.2.5"), 50000)], grace, at(60 * m)));
        }
        // Another connection from the same address is not this session.
        assert!(!s.refresh(&[(ip("192.0.2.5"), 50001)], grace, at(3600 + 100)));
        assert_eq!(s.entries().len(), 1);
        assert!(s.refresh(&[(ip("192.0.2.5"), 50001)], grace, at(3600 + 121)));
        assert!(s.entries().is_empty());
    }

    #[test]
    fn entries_are_per_address_and_say_where_they_came_from() {
        let mut s = SshSessions::default();
        s.accepted(ip("::ffff:192.0.2.5"), 50000, "password", at(0));
        s.accepted(ip("192.0.2.5"), 50002, "publickey", at(5));
        s.accepted(ip("2001:db8::5"), 40000, "publickey", at(5));
        let e = s.entries();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].net.to_string(), "192.0.2.5/32");
        assert!(
            e[0].note.contains("Accepted password from port 50000"),
            "{}",
            e[0].note
        );
        assert!(e[0].note.contains("+1 more"), "{}", e[0].note);
        assert_eq!(e[0].source, AllowSource::SshSession);
    }

    #[test]
    fn saved_sessions_come_back_and_the_table_is_bounded() {
        let mut s = SshSessions::default();
        for i in 0..(MAX_SESSIONS as u32 + 10) {
            s.accepted(
                IpAddr::from((0x0a00_0000u32 + i).to_be_bytes()),
                22000,
                "publickey",
                at(u64::from(i)),
            );
        }
        assert_eq!(s.len(), MAX_SESSIONS);
        assert!(
            !s.entries()
                .iter()
                .any(|e| e.net.to_string() == "10.0.0.0/32"),
            "oldest gone first"
        );
        let mut back = SshSessions::default();
        back.restore(&s.records());
        assert_eq!(back, s);
    }
}
