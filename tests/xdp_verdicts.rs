//! The XDP program's decisions, one by one, on hand-built packets through
//! BPF_PROG_TEST_RUN (no NIC, no namespace). Needs root.

use std::net::IpAddr;

use sipshield::bpf::clock::monotonic_ns;
use sipshield_common::{
    config::{Mode, RateLimit, ScannerAction, XdpConfig},
    counters::{Action, Counter, Reason},
    event::EventKind,
    maps::{BanEntry, BanOrigin, RangeEntry},
    sip::Method,
};
use sipshield_tests::{harness::*, packet::*};

const SIP: u16 = 5060;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A log ban made now, ending at `expires_ns` (0: permanent).
fn log_ban_entry(expires_ns: u64) -> BanEntry {
    BanEntry {
        expires_ns,
        created_ns: monotonic_ns(),
        origin: BanOrigin::Userspace as u32,
        _pad: 0,
    }
}

fn ban(h: &mut Harness, addr: &str, expires_ns: u64) {
    h.maps
        .bans
        .insert(ip(addr), log_ban_entry(expires_ns))
        .unwrap();
}

fn ban_range(h: &mut Harness, net: &str) {
    h.maps
        .ranges
        .insert(net.parse().unwrap(), RangeEntry::default())
        .unwrap();
}

fn allow(h: &mut Harness, net: &str) {
    h.maps.allow.insert(net.parse().unwrap()).unwrap();
}

fn register(src: &str) -> Vec<u8> {
    Frame::udp(src, SIP, &sip_request("REGISTER", Some("Yealink SIP-T46S"))).build()
}

fn method_count(h: &Harness, src: &str, m: Method) -> u64 {
    h.maps
        .sources
        .get(ip(src))
        .unwrap()
        .map(|s| s.methods[m as usize])
        .unwrap_or(0)
}

/// A UDP source gets its per-source entry at its second message (the
/// first-sight filter): a keep-alive first, so the next message is counted
/// at once.
fn prime(h: &mut Harness, src: &str) {
    h.run(&Frame::udp(src, SIP, b"\r\n\r\n").build());
}

fn no_limits() -> XdpConfig {
    ban_at_limit(RateLimit::new(0, 0), RateLimit::new(0, 0))
}

// ---------------------------------------------------------------- basics

#[test]
fn non_ip_frames_pass_and_are_counted() {
    let mut h = Harness::new();
    let arp = ethernet(&[], ETH_P_ARP, &[0u8; 28]);
    assert_eq!(h.run(&arp), XDP_PASS);
    assert_eq!(h.verdicts(Action::Pass, Reason::NotIp), 1);
}

#[test]
fn unlisted_non_sip_traffic_passes() {
    let mut h = Harness::new();
    assert_eq!(
        h.run(&Frame::udp("192.0.2.10", 53, b"dns").build()),
        XDP_PASS
    );
    assert_eq!(
        h.run(&Frame::tcp("2001:db8::10", 443, b"tls").build()),
        XDP_PASS
    );
    assert_eq!(h.verdicts(Action::Pass, Reason::NotSip), 2);
}

// ------------------------------------------------------------- ban table

#[test]
fn banned_v4_source_is_dropped_on_every_port_udp_and_tcp() {
    let mut h = Harness::new();
    ban(&mut h, "198.51.100.7", 0);
    for f in [
        Frame::udp("198.51.100.7", SIP, b"x"),
        Frame::udp("198.51.100.7", 53, b"x"),
        Frame::tcp("198.51.100.7", 22, b""),
    ] {
        assert_eq!(h.run(&f.build()), XDP_DROP, "{f:?}");
    }
    assert_eq!(h.verdicts(Action::Drop, Reason::BannedExact), 3);
    assert_eq!(h.run(&register("198.51.100.8")), XDP_PASS);
}

#[test]
fn banned_v6_source_is_dropped() {
    let mut h = Harness::new();
    ban(&mut h, "2001:db8::bad", 0);
    assert_eq!(
        h.run(&Frame::udp("2001:db8::bad", SIP, b"x").build()),
        XDP_DROP
    );
    assert_eq!(
        h.run(&Frame::tcp("2001:db8::bad", 80, b"").build()),
        XDP_DROP
    );
    assert_eq!(
        h.run(&Frame::udp("2001:db8::bae", SIP, b"x").build()),
        XDP_PASS
    );
}

#[test]
fn expired_ban_is_treated_as_absent_and_future_one_applies() {
    let mut h = Harness::new();
    let now = monotonic_ns();
    ban(&mut h, "198.51.100.1", now - CLOCK_LAG_NS); // expired a tick ago
    ban(&mut h, "198.51.100.2", now + 60_000_000_000); // a minute left
    assert_eq!(
        h.run(&Frame::udp("198.51.100.1", 53, b"x").build()),
        XDP_PASS
    );
    assert_eq!(
        h.run(&Frame::udp("198.51.100.2", 53, b"x").build()),
        XDP_DROP
    );
}

#[test]
fn ban_ranges_drop_inside_and_pass_outside() {
    let mut h = Harness::new();
    ban_range(&mut h, "203.0.113.0/24");
    ban_range(&mut h, "2001:db8:bad::/48");
    assert_eq!(
        h.run(&Frame::udp("203.0.113.200", 53, b"x").build()),
        XDP_DROP
    );
    assert_eq!(
        h.run(&Frame::udp("203.0.114.1", 53, b"x").build()),
        XDP_PASS
    );
    assert_eq!(
        h.run(&Frame::udp("2001:db8:bad:1::1", 53, b"x").build()),
        XDP_DROP
    );
    assert_eq!(
        h.run(&Frame::udp("2001:db8:bae::1", 53, b"x").build()),
        XDP_PASS
    );
    assert_eq!(h.verdicts(Action::Drop, Reason::BannedRange), 2);
}

// A range userspace flagged as holding no allowlisted prefix drops on the
// fast path (untagged IPv4 and IPv6) and on the full parse (a VLAN tag)
// alike; once expired (a second ago: the program reads the coarse clock)
// it drops nothing on either.
#[test]
fn flagged_ranges_drop_on_both_paths_until_they_expire() {
    let mut h = Harness::new();
    let flagged = |expires_ns| RangeEntry {
        expires_ns,
        own_expires_ns: expires_ns,
        no_allow_inside: 1,
        ..RangeEntry::default()
    };
    h.maps
        .ranges
        .insert("203.0.113.0/24".parse().unwrap(), flagged(0))
        .unwrap();
    h.maps
        .ranges
        .insert(
            "198.18.0.0/24".parse().unwrap(),
            flagged(monotonic_ns() - 1_000_000_000),
        )
        .unwrap();
    h.maps
        .ranges
        .insert("2001:db8:bad::/48".parse().unwrap(), flagged(0))
        .unwrap();
    for src in ["203.0.113.7", "2001:db8:bad::7"] {
        let untagged = Frame::udp(src, SIP, b"x");
        let tagged = Frame::udp(src, SIP, b"x").vlan(ETH_P_8021Q, 7);
        assert_eq!(h.run(&untagged.build()), XDP_DROP, "{src}");
        assert_eq!(h.run(&tagged.build()), XDP_DROP, "{src} tagged");
    }
    assert_eq!(h.verdicts(Action::Drop, Reason::BannedRange), 4);
    let expired = Frame::udp("198.18.0.7", 53, b"x");
    let expired_tagged = Frame::udp("198.18.0.7", 53, b"x").vlan(ETH_P_8021Q, 7);
    assert_eq!(h.run(&expired.build()), XDP_PASS);
    assert_eq!(h.run(&expired_tagged.build()), XDP_PASS);
}

fn kernel_ban(h: &mut Harness, addr: &str) {
    let entry = BanEntry {
        expires_ns: 0,
        created_ns: monotonic_ns(),
        origin: BanOrigin::RateGuard as u32,
        _pad: 0,
    };
    h.maps.kernel_bans.insert(ip(addr), entry).unwrap();
}

// The log/operator table is looked up before the allowlist: userspace
// never writes an allowlisted address there (daemon and CLI tests).
#[test]
fn allowlist_beats_kernel_bans_and_ranges() {
    let mut h = Harness::new();
    kernel_ban(&mut h, "192.0.2.1");
    ban_range(&mut h, "192.0.2.0/24");
    allow(&mut h, "192.0.2.0/28");
    kernel_ban(&mut h, "2001:db8::1");
    allow(&mut h, "2001:db8::/64");
    assert_eq!(h.run(&register("192.0.2.1")), XDP_PASS);
    assert_eq!(h.run(&register("192.0.2.5")), XDP_PASS);
    assert_eq!(h.run(&register("192.0.2.100")), XDP_DROP, "outside the /28");
    assert_eq!(
        h.run(&Frame::udp("2001:db8::1", SIP, b"x").build()),
        XDP_PASS
    );
    assert_eq!(h.verdicts(Action::Pass, Reason::Allowlisted), 3);
}

// ------------------------------------------------------------- L2 and L3

#[test]
fn vlan_and_qinq_frames_are_parsed() {
    let mut h = Harness::new();
    ban(&mut h, "198.51.100.9", 0);
    let one = Frame::udp("198.51.100.9", 53, b"x").vlan(ETH_P_8021Q, 100);
    let two = Frame::udp("198.51.100.9", 53, b"x")
        .vlan(ETH_P_8021AD, 10)
        .vlan(ETH_P_8021Q, 20);
    assert_eq!(h.run(&one.build()), XDP_DROP);
    assert_eq!(h.run(&two.build()), XDP_DROP);
    prime(&mut h, "192.0.2.33");
    let sip = Frame::udp("192.0.2.33", SIP, &sip_request("INVITE", None))
        .vlan(ETH_P_8021AD, 10)
        .vlan(ETH_P_8021Q, 20);
    assert_eq!(h.run(&sip.build()), XDP_PASS);
    assert_eq!(method_count(&h, "192.0.2.33", Method::Invite), 1);
}

#[test]
fn three_vlan_tags_are_not_ip() {
    let mut h = Harness::new();
    let f = Frame::udp("198.51.100.9", 53, b"x")
        .vlan(ETH_P_8021AD, 1)
        .vlan(ETH_P_8021Q, 2)
        .vlan(ETH_P_8021Q, 3);
    assert_eq!(h.run(&f.build()), XDP_PASS);
    assert_eq!(h.verdicts(Action::Pass, Reason::NotIp), 1);
}

#[test]
fn ipv4_options_are_skipped() {
    let mut h = Harness::new();
    // Record Route with 3 slots (11 bytes) + padding.
    let rr = [7u8, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0];
    prime(&mut h, "192.0.2.44");
    let f = Frame::udp("192.0.2.44", SIP, &sip_request("OPTIONS", None)).ipv4_options(&rr);
    assert_eq!(h.run(&f.build()), XDP_PASS);
    assert_eq!(method_count(&h, "192.0.2.44", Method::Options), 1);
    ban(&mut h, "192.0.2.45", 0);
    let banned = Frame::udp("192.0.2.45", SIP, b"x").ipv4_options(&rr);
    assert_eq!(h.run(&banned.build()), XDP_DROP);
}

#[test]
fn ipv4_first_fragment_is_inspected_and_later_ones_decided_by_source() {
    let mut h = Harness::new();
    prime(&mut h, "192.0.2.50");
    let first =
        Frame::udp("192.0.2.50", SIP, &sip_request("REGISTER", None)).ipv4_fragment(0, true);
    assert_eq!(h.run(&first.build()), XDP_PASS);
    assert_eq!(method_count(&h, "192.0.2.50", Method::Register), 1);

    let later = Frame::udp("192.0.2.50", SIP, b"tail of the message").ipv4_fragment(185, false);
    assert_eq!(h.run(&later.build()), XDP_PASS);
    assert_eq!(h.verdicts(Action::Pass, Reason::Fragment), 1);
    assert_eq!(
        method_count(&h, "192.0.2.50", Method::Other),
        0,
        "no L4 in a later fragment"
    );

    ban(&mut h, "192.0.2.51", 0);
    let banned = Frame::udp("192.0.2.51", SIP, b"tail").ipv4_fragment(185, false);
    assert_eq!(h.run(&banned.build()), XDP_DROP);
}

#[test]
fn ipv6_extension_headers_are_walked() {
    let mut h = Harness::new();
    let cases = [
        ("2001:db8::a1", vec![Ext::HopByHop]),
        ("2001:db8::a2", vec![Ext::Routing]),
        ("2001:db8::a3", vec![Ext::DestOpts]),
        (
            "2001:db8::a4",
            vec![Ext::Fragment {
                offset: 0,
                more: true,
            }],
        ),
        (
            "2001:db8::a5",
            vec![
                Ext::HopByHop,
                Ext::DestOpts,
                Ext::Routing,
                Ext::Fragment {
                    offset: 0,
                    more: false,
                },
            ],
        ),
    ];
    for (src, exts) in cases {
        prime(&mut h, src);
        let mut f = Frame::udp(src, SIP, &sip_request("REGISTER", None));
        for e in &exts {
            f = f.ext(*e);
        }
        assert_eq!(h.run(&f.build()), XDP_PASS, "{exts:?}");
        assert_eq!(method_count(&h, src, Method::Register), 1, "{exts:?}");
    }
    let tcp = Frame::tcp("2001:db8::a6", SIP, &sip_request("INVITE", None)).ext(Ext::HopByHop);
    assert_eq!(h.run(&tcp.build()), XDP_PASS);
    assert_eq!(method_count(&h, "2001:db8::a6", Method::Invite), 1);
}

#[test]
fn ipv6_later_fragment_is_decided_by_source() {
    let mut h = Harness::new();
    let f = Frame::udp("2001:db8::b1", SIP, b"tail").ext(Ext::Fragment {
        offset: 100,
        more: false,
    });
    assert_eq!(h.run(&f.build()), XDP_PASS);
    assert_eq!(h.verdicts(Action::Pass, Reason::Fragment), 1);
    ban(&mut h, "2001:db8::b2", 0);
    let f = Frame::udp("2001:db8::b2", SIP, b"tail").ext(Ext::Fragment {
        offset: 100,
        more: false,
    });
    assert_eq!(h.run(&f.build()), XDP_DROP);
}

#[test]
fn ipv6_chain_too_long_to_walk_is_decided_by_source() {
    let mut h = Harness::new();
    let mut f = Frame::udp("2001:db8::c1", SIP, &sip_request("REGISTER", None));
    for _ in 0..7 {
        f = f.ext(Ext::DestOpts);
    }
    assert_eq!(h.run(&f.build()), XDP_PASS);
    assert_eq!(h.verdicts(Action::Pass, Reason::Unparsed), 1);
    assert_eq!(method_count(&h, "2001:db8::c1", Method::Register), 0);

    ban(&mut h, "2001:db8::c2", 0);
    f.src = ip("2001:db8::c2");
    assert_eq!(h.run(&f.build()), XDP_DROP, "bans apply whatever the chain");

    h.configure(XdpConfig {
        mode: Mode::AllowlistOnly as u32,
        ..XdpConfig::default()
    });
    f.src = ip("2001:db8::c3");
    assert_eq!(
        h.run(&f.build()),
        XDP_DROP,
        "might hide SIP: not allowed in allowlist-only"
    );
}

// -------------------------------------------------------------- malformed

#[test]
fn malformed_ip_headers_are_dropped_and_counted() {
    let mut h = Harness::new();
    let mut bad_ihl = Frame::udp("192.0.2.60", SIP, b"x").build();
    bad_ihl[14] = 0x44; // version 4, IHL 4 (< 5)
    assert_eq!(h.run(&bad_ihl), XDP_DROP);

    let mut short_ip = ethernet(&[], ETH_P_IPV4, &[0x45, 0, 0, 20, 0, 0]);
    short_ip.truncate(20);
    assert_eq!(h.run(&short_ip), XDP_DROP, "IPv4 header cut short");

    let mut bad_udp_len = Frame::udp("192.0.2.61", SIP, b"x").build();
    bad_udp_len[14 + 20 + 4..14 + 20 + 6].copy_from_slice(&3u16.to_be_bytes());
    assert_eq!(h.run(&bad_udp_len), XDP_DROP);

    let mut bad_doff = Frame::tcp("192.0.2.62", SIP, b"x").build();
    bad_doff[14 + 20 + 12] = 4 << 4;
    assert_eq!(h.run(&bad_doff), XDP_DROP);
    assert_eq!(h.verdicts(Action::Drop, Reason::Malformed), 4);
}

#[test]
fn allowlisted_source_passes_even_when_malformed_beyond_the_address() {
    let mut h = Harness::new();
    allow(&mut h, "192.0.2.0/24");
    let mut f = Frame::tcp("192.0.2.63", SIP, b"x").build();
    f[14 + 20 + 12] = 1 << 4;
    assert_eq!(h.run(&f), XDP_PASS);
}

// -------------------------------------------------------------------- SIP

#[test]
fn every_sip_method_is_recognised_over_udp_and_tcp() {
    let mut h = Harness::new();
    h.configure(no_limits());
    let methods = [
        Method::Register,
        Method::Invite,
        Method::Options,
        Method::Subscribe,
        Method::Notify,
        Method::Message,
        Method::Ack,
        Method::Bye,
        Method::Cancel,
        Method::Info,
        Method::Prack,
        Method::Refer,
        Method::Publish,
        Method::Update,
    ];
    prime(&mut h, "192.0.2.70");
    for m in methods {
        let req = sip_request(m.name(), None);
        assert_eq!(
            h.run(&Frame::udp("192.0.2.70", SIP, &req).build()),
            XDP_PASS
        );
        assert_eq!(
            h.run(&Frame::tcp("2001:db8::70", SIP, &req).build()),
            XDP_PASS
        );
        assert_eq!(method_count(&h, "192.0.2.70", m), 1, "{m:?} over UDP");
        assert_eq!(method_count(&h, "2001:db8::70", m), 1, "{m:?} over TCP");
    }
    prime(&mut h, "192.0.2.71");
    let reply = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP x\r\n\r\n";
    h.run(&Frame::udp("192.0.2.71", SIP, reply).build());
    h.run(&Frame::udp("192.0.2.71", SIP, b"GET / HTTP/1.1\r\n\r\n").build());
    h.run(&Frame::udp("192.0.2.71", SIP, b"REGISTE").build()); // cut short
                                                               // Read as pjsip reads it: any case (xdp_attacks.rs has the rule).
    h.run(&Frame::udp("192.0.2.71", SIP, b"register sip:x SIP/2.0\r\n").build());
    assert_eq!(method_count(&h, "192.0.2.71", Method::Response), 1);
    assert_eq!(method_count(&h, "192.0.2.71", Method::Other), 2);
    assert_eq!(method_count(&h, "192.0.2.71", Method::Register), 1);
    let stats = h.maps.sources.get(ip("192.0.2.71")).unwrap().unwrap();
    assert!(
        stats.bytes > 0 && stats.first_seen_ns > 0 && stats.last_seen_ns >= stats.first_seen_ns
    );
}

#[test]
fn empty_tcp_segments_to_sip_port_are_not_counted() {
    let mut h = Harness::new();
    assert_eq!(h.run(&Frame::tcp("192.0.2.72", SIP, b"").build()), XDP_PASS);
    assert!(h.maps.sources.get(ip("192.0.2.72")).unwrap().is_none());
}

#[test]
fn tls_port_is_counted_by_source_only() {
    let mut h = Harness::new();
    let f = Frame::tcp(
        "192.0.2.73",
        5061,
        &sip_request("REGISTER", Some("friendly-scanner")),
    );
    for _ in 0..50 {
        assert_eq!(h.run(&f.build()), XDP_PASS);
    }
    assert_eq!(method_count(&h, "192.0.2.73", Method::Tls), 50);
    assert_eq!(method_count(&h, "192.0.2.73", Method::Register), 0);
    assert!(h.maps.bans.get(ip("192.0.2.73")).unwrap().is_none());
}

#[test]
fn syns_to_a_sighting_port_note_the_source_and_nothing_else_does() {
    use sipshield_common::config::{SipPort, PORT_SIGHTING, PROTO_TCP};
    let mut h = Harness::new();
    // Port 22 is a sighting port by default.
    assert_eq!(
        XdpConfig::default().sip_ports[2],
        SipPort {
            port: 22,
            protos: PROTO_TCP,
            kind: PORT_SIGHTING
        }
    );
    let syn = |src: &str, port: u16| {
        let mut f = Frame::tcp(src, port, b"");
        f.tcp_flags = 0x02;
        f.build()
    };
    // The first SYN is remembered (the first-sight filter), the second noted.
    for _ in 0..2 {
        assert_eq!(h.run(&syn("192.0.2.75", 22)), XDP_PASS);
    }
    let seen = h
        .maps
        .sources
        .get(ip("192.0.2.75"))
        .unwrap()
        .expect("noted");
    assert!(seen.last_seen_ns > 0);
    assert_eq!(seen.total_messages(), 0, "no SIP message counted");
    assert_eq!(h.verdicts(Action::Pass, Reason::NotSip), 2);
    // Not a connection attempt (SYN-ACK, data), or not a watched port: nothing.
    for f in [
        {
            let mut f = Frame::tcp("192.0.2.76", 22, b"");
            f.tcp_flags = 0x12;
            f.build()
        },
        Frame::tcp("192.0.2.76", 22, b"SSH-2.0-x\r\n").build(),
        syn("192.0.2.76", 23),
        Frame::udp("192.0.2.76", 22, b"x").build(),
    ] {
        for _ in 0..2 {
            assert_eq!(h.run(&f), XDP_PASS);
        }
    }
    assert!(h.maps.sources.get(ip("192.0.2.76")).unwrap().is_none());
    // A banned source's SYNs are dropped before any of this.
    ban(&mut h, "192.0.2.77", 0);
    assert_eq!(h.run(&syn("192.0.2.77", 22)), XDP_DROP);
}

#[test]
fn udp_to_5061_is_not_sip_by_default() {
    let mut h = Harness::new();
    let f = Frame::udp("192.0.2.74", 5061, &sip_request("REGISTER", None));
    assert_eq!(h.run(&f.build()), XDP_PASS);
    assert_eq!(h.verdicts(Action::Pass, Reason::NotSip), 1);
}

// ------------------------------------------------------------- rate guard

/// The staged guard with small numbers: police `register` (1/s, burst
/// 5), flood 1/s burst 10 unless given, no sustained stage unless given.
fn staged(flood: RateLimit, sustain_ns: u64) -> XdpConfig {
    XdpConfig {
        register_limit: RateLimit::new(1, 5),
        message_limit: RateLimit::new(0, 0),
        register_flood: flood,
        message_flood: RateLimit::new(0, 0),
        known_register_extra: RateLimit::new(3, 15),
        known_message_extra: RateLimit::new(0, 0),
        sustain_ns,
        ..XdpConfig::default()
    }
}

#[test]
fn over_the_police_rate_messages_are_dropped_and_the_source_is_not_banned() {
    let mut h = Harness::new();
    h.configure(staged(RateLimit::new(0, 0), 0));
    let src = "198.51.100.120";
    prime(&mut h, src);
    let pkt = register(src);
    for i in 1..=5 {
        assert_eq!(h.run(&pkt), XDP_PASS, "REGISTER {i} is within the burst");
    }
    for i in 6..=40 {
        assert_eq!(h.run(&pkt), XDP_DROP, "REGISTER {i} is over the rate");
    }
    assert!(!h.kernel_banned(src), "policed, not banned");
    assert_eq!(h.verdicts(Action::Drop, Reason::Policed), 35);
    assert_eq!(h.verdicts(Action::Drop, Reason::RateGuard), 0);
    assert!(h.maps.events.drain().is_empty(), "no ban, no event");
    // Other methods are not charged to the REGISTER bucket.
    let invite = Frame::udp(src, SIP, &sip_request("INVITE", None)).build();
    assert_eq!(h.run(&invite), XDP_PASS);
}

#[test]
fn a_source_over_its_flood_bucket_is_banned_at_once() {
    let mut h = Harness::new();
    h.configure(staged(RateLimit::new(1, 10), 0));
    let src = "198.51.100.121";
    prime(&mut h, src);
    let pkt = register(src);
    for _ in 1..=5 {
        assert_eq!(h.run(&pkt), XDP_PASS);
    }
    // Policed messages still drain the flood bucket.
    for i in 6..=10 {
        assert_eq!(h.run(&pkt), XDP_DROP);
        assert!(!h.kernel_banned(src), "REGISTER {i}: policed only");
    }
    assert_eq!(
        h.run(&pkt),
        XDP_DROP,
        "REGISTER 11 is over the flood bucket"
    );
    assert!(h.kernel_banned(src));
    let snap = h.maps.stats.snapshot().unwrap();
    assert_eq!(snap.verdict(Action::Drop, Reason::Policed), 5);
    assert_eq!(snap.verdict(Action::Drop, Reason::RateGuard), 1);
    assert_eq!(snap.counter(Counter::FloodBan), 1);
    assert_eq!(snap.counter(Counter::SustainedBan), 0);
    let events = h.maps.events.drain();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        (events[0].kind, events[0].reason),
        (EventKind::KernelBan, Reason::RateGuard)
    );
    assert_eq!(h.run(&pkt), XDP_DROP);
    assert_eq!(h.verdicts(Action::Drop, Reason::BannedKernel), 1);
}

#[test]
fn a_source_policed_without_a_pause_for_longer_than_the_sustain_time_is_banned() {
    let mut h = Harness::new();
    let sustain_ms = 300;
    h.configure(staged(RateLimit::new(0, 0), sustain_ms * 1_000_000));
    let src = "198.51.100.122";
    prime(&mut h, src);
    let pkt = register(src);
    for _ in 1..=5 {
        assert_eq!(h.run(&pkt), XDP_PASS);
    }
    let first_policed = std::time::Instant::now();
    assert_eq!(h.run(&pkt), XDP_DROP);
    // One a few ms apart (far under the 2 s gap): a run without a pause.
    while first_policed.elapsed().as_millis() < u128::from(sustain_ms) - 50 {
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(h.run(&pkt), XDP_DROP);
        assert!(
            !h.kernel_banned(src),
            "banned {:?} into the run",
            first_policed.elapsed()
        );
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert_eq!(h.run(&pkt), XDP_DROP);
    assert!(
        h.kernel_banned(src),
        "policed for longer than the sustain time"
    );
    let snap = h.maps.stats.snapshot().unwrap();
    assert_eq!(snap.counter(Counter::SustainedBan), 1);
    assert_eq!(snap.counter(Counter::FloodBan), 0);
}

#[test]
fn a_pause_longer_than_the_gap_starts_a_new_run() {
    let mut h = Harness::new();
    h.configure(staged(RateLimit::new(0, 0), 1_000_000_000));
    let src = "198.51.100.123";
    prime(&mut h, src);
    // A slow limit: the bucket is still empty after the pause.
    h.configure(XdpConfig {
        register_limit: RateLimit::new(1, 1),
        ..staged(RateLimit::new(0, 0), 1_000_000_000)
    });
    let pkt = register(src);
    assert_eq!(h.run(&pkt), XDP_PASS);
    assert_eq!(h.run(&pkt), XDP_DROP);
    // 2.2 s without a policed message (the gap is 2 s): over the sustain
    // time since the first policed one, yet a new run.
    std::thread::sleep(std::time::Duration::from_millis(2200));
    let restarted = std::time::Instant::now();
    assert_eq!(h.run(&pkt), XDP_PASS, "the bucket refilled");
    while restarted.elapsed().as_millis() < 700 {
        assert_eq!(h.run(&pkt), XDP_DROP);
        assert!(!h.kernel_banned(src), "the pause ended the first run");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // The new run bans once it lasts the sustain time (one a second still
    // passes at 1/s: the run is of the policed ones).
    while restarted.elapsed().as_millis() < 1300 {
        h.run(&pkt);
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(h.kernel_banned(src), "the second run outlasted 1 s");
}

#[test]
fn known_good_sources_get_their_extra_room_and_are_never_banned() {
    let mut h = Harness::new();
    h.configure(staged(RateLimit::new(1, 10), 200_000_000));
    let phone = "198.51.100.124";
    let stranger = "198.51.100.125";
    h.maps.known.insert(ip(phone), 0).unwrap();
    for src in [phone, stranger] {
        prime(&mut h, src);
    }
    let mut passed = 0;
    for _ in 0..60 {
        if h.run(&register(phone)) == XDP_PASS {
            passed += 1;
        }
    }
    // 4 times the burst: 5 in the police bucket, 15 in the extra one.
    assert_eq!(passed, 20, "the known-good source's burst");
    assert!(!h.kernel_banned(phone), "over the flood bucket, not banned");
    // 4/s between the two: after a second, four more.
    std::thread::sleep(std::time::Duration::from_millis(1050));
    let refilled = (0..10)
        .filter(|_| h.run(&register(phone)) == XDP_PASS)
        .count();
    assert_eq!(refilled, 4, "4/s refill");
    let snap = h.maps.stats.snapshot().unwrap();
    assert!(snap.counter(Counter::KnownGoodSpared) >= 1);
    assert_eq!(snap.counter(Counter::FloodBan), 0);
    // The stranger's own buckets: the police burst, then a flood ban.
    let mut passed = 0;
    for _ in 0..12 {
        if h.run(&register(stranger)) == XDP_PASS {
            passed += 1;
        }
    }
    assert_eq!(passed, 5);
    assert!(h.kernel_banned(stranger));
}

/// The message bucket's stages with the shipped defaults (police 60/s,
/// burst 240; flood 600/s, burst 1200), for methods other than REGISTER:
/// an OPTIONS flood is policed past 240 and banned at its flood burst.
#[test]
fn with_the_defaults_a_message_flood_is_policed_then_banned_at_the_flood_burst() {
    use sipshield_common::config::{DEFAULT_MESSAGE_FLOOD, DEFAULT_MESSAGE_POLICE};
    let mut h = Harness::new();
    h.configure(XdpConfig::default());
    let src = "198.51.100.130";
    prime(&mut h, src);
    let options = Frame::udp(src, SIP, &sip_request("OPTIONS", None)).build();
    let (police, flood) = (DEFAULT_MESSAGE_POLICE.1, DEFAULT_MESSAGE_FLOOD.1);
    let mut banned_at = None;
    for i in 1..=2 * flood {
        let v = h.run(&options);
        // The priming keep-alive took one token of the message bucket.
        if i < police {
            assert_eq!(v, XDP_PASS, "OPTIONS {i} is within the police burst");
        }
        if h.kernel_banned(src) {
            banned_at = Some(i);
            break;
        }
    }
    let at = banned_at.expect("an OPTIONS flood is banned");
    // A few tokens refill while the test runs (600/s).
    assert!((flood..flood + 30).contains(&at), "banned at {at}");
    let snap = h.maps.stats.snapshot().unwrap();
    assert!(snap.verdict(Action::Drop, Reason::Policed) >= flood - police - 30);
    assert_eq!(snap.counter(Counter::FloodBan), 1);
}

/// A known-good source's extra room on the message bucket: its burst is
/// four times the police burst, and it is never banned over the flood one.
#[test]
fn known_good_sources_get_extra_room_on_the_message_bucket_too() {
    let mut h = Harness::new();
    h.configure(XdpConfig {
        register_limit: RateLimit::new(0, 0),
        message_limit: RateLimit::new(1, 5),
        register_flood: RateLimit::new(0, 0),
        message_flood: RateLimit::new(1, 10),
        known_register_extra: RateLimit::new(0, 0),
        known_message_extra: RateLimit::new(3, 15),
        sustain_ns: 200_000_000,
        ..XdpConfig::default()
    });
    let trunk = "198.51.100.131";
    let stranger = "198.51.100.132";
    h.maps.known.insert(ip(trunk), 0).unwrap();
    for src in [trunk, stranger] {
        prime(&mut h, src);
    }
    let options = |src: &str| Frame::udp(src, SIP, &sip_request("OPTIONS", None)).build();
    let passed = (0..60)
        .filter(|_| h.run(&options(trunk)) == XDP_PASS)
        .count();
    // The priming keep-alive took one of the police bucket's five.
    assert_eq!(passed, 19, "4 in the police bucket, 15 in the extra one");
    assert!(!h.kernel_banned(trunk), "over the flood bucket, not banned");
    let passed = (0..12)
        .filter(|_| h.run(&options(stranger)) == XDP_PASS)
        .count();
    assert_eq!(passed, 4);
    assert!(h.kernel_banned(stranger));
}

#[test]
fn a_message_over_the_register_bucket_takes_nothing_from_the_message_bucket() {
    let mut h = Harness::new();
    h.configure(XdpConfig {
        register_limit: RateLimit::new(1, 2),
        message_limit: RateLimit::new(1, 4),
        register_flood: RateLimit::new(0, 0),
        message_flood: RateLimit::new(0, 0),
        sustain_ns: 0,
        ..XdpConfig::default()
    });
    let src = "198.51.100.126";
    prime(&mut h, src);
    // The keep-alive took one message token; two REGISTERs take two more.
    assert_eq!(h.run(&register(src)), XDP_PASS);
    assert_eq!(h.run(&register(src)), XDP_PASS);
    for _ in 0..10 {
        assert_eq!(h.run(&register(src)), XDP_DROP);
    }
    // One message token is left for an OPTIONS.
    let options = Frame::udp(src, SIP, &sip_request("OPTIONS", None)).build();
    assert_eq!(h.run(&options), XDP_PASS);
    assert_eq!(h.run(&options), XDP_DROP);
}

#[test]
fn a_rate_guard_ban_drops_the_source_everywhere_and_says_so() {
    let mut h = Harness::new();
    h.configure(XdpConfig {
        rate_ban_ns: 600_000_000_000,
        ..ban_at_limit(RateLimit::new(1, 5), RateLimit::new(0, 0))
    });
    let pkt = register("198.51.100.20");
    for i in 1..=5 {
        assert_eq!(h.run(&pkt), XDP_PASS, "request {i} is within the burst");
    }
    assert!(h
        .maps
        .kernel_bans
        .get(ip("198.51.100.20"))
        .unwrap()
        .is_none());
    assert_eq!(h.run(&pkt), XDP_DROP, "request 6 empties the bucket");
    let entry = h
        .maps
        .kernel_bans
        .get(ip("198.51.100.20"))
        .unwrap()
        .expect("kernel ban");
    assert_eq!(entry.origin, BanOrigin::RateGuard as u32);
    let left = entry.expires_ns - monotonic_ns();
    assert!(left > 590_000_000_000 && left <= 600_000_000_000, "{left}");
    assert_eq!(h.verdicts(Action::Drop, Reason::RateGuard), 1);

    // From now on the kernel's ban share drops it, on any port.
    assert_eq!(
        h.run(&Frame::udp("198.51.100.20", 53, b"x").build()),
        XDP_DROP
    );
    assert_eq!(h.verdicts(Action::Drop, Reason::BannedKernel), 1);
    assert!(
        h.maps.bans.get(ip("198.51.100.20")).unwrap().is_none(),
        "log/operator table untouched"
    );

    let events = h.maps.events.drain();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].kind, EventKind::KernelBan);
    assert_eq!(events[0].reason, Reason::RateGuard);
    assert_eq!(events[0].ip, ip("198.51.100.20"));
    assert_eq!(events[0].method, Some(Method::Register));
    assert_eq!(
        h.maps.stats.snapshot().unwrap().counter(Counter::KernelBan),
        1
    );

    // Another source has its own bucket.
    assert_eq!(h.run(&register("198.51.100.21")), XDP_PASS);
}

#[test]
fn a_rate_guard_ban_of_the_message_bucket_covers_all_methods_and_v6() {
    let mut h = Harness::new();
    h.configure(XdpConfig {
        rate_ban_ns: 0,
        ..ban_at_limit(RateLimit::new(0, 0), RateLimit::new(2, 3))
    });
    let opt = Frame::udp("2001:db8::20", SIP, &sip_request("OPTIONS", None)).build();
    for _ in 0..3 {
        assert_eq!(h.run(&opt), XDP_PASS);
    }
    assert_eq!(h.run(&opt), XDP_DROP);
    let entry = h
        .maps
        .kernel_bans
        .get(ip("2001:db8::20"))
        .unwrap()
        .expect("kernel ban");
    assert_eq!(entry.expires_ns, 0, "rate_ban_ns 0 means permanent");
}

#[test]
fn a_flood_of_kernel_bans_never_takes_the_log_and_operator_share() {
    let mut h = Harness::with_sizes(sipshield::bpf::MapSizes {
        max_bans: 4,
        max_ranges: 16,
        max_allow: 16,
        max_sources: 1024,
        max_kernel_bans: 8,
        max_known: 16,
    });
    h.configure(XdpConfig {
        ..ban_at_limit(RateLimit::new(1, 1), RateLimit::new(0, 0))
    });
    ban(&mut h, "198.51.100.1", 0);
    ban(&mut h, "198.51.100.2", 0);
    // 200 offenders (forged sources cost nothing) each trip the guard.
    for i in 0..200u32 {
        let src = format!("203.0.{}.{}", i / 200, i % 200 + 1);
        let pkt = register(&src);
        assert_eq!(h.run(&pkt), XDP_PASS);
        assert_eq!(h.run(&pkt), XDP_DROP, "over the limit: dropped");
    }
    assert_eq!(
        h.maps.stats.snapshot().unwrap().counter(Counter::KernelBan),
        200,
        "every offender banned: the LRU share forgets its oldest"
    );
    let (v4, _) = h.maps.kernel_bans.len();
    assert!(v4 <= 8, "the kernel share holds {v4}");
    assert!(
        h.maps.kernel_bans.get(ip("203.0.0.200")).unwrap().is_some(),
        "the newest kernel ban is held"
    );
    // The log/operator table is as it was, with room for more.
    assert!(h.maps.bans.get(ip("198.51.100.1")).unwrap().is_some());
    assert!(h.maps.bans.get(ip("198.51.100.2")).unwrap().is_some());
    ban(&mut h, "198.51.100.3", 0);
    assert_eq!(h.run(&register("198.51.100.3")), XDP_DROP);
}

#[test]
fn an_expired_kernel_ban_does_not_block_a_new_one() {
    let mut h = Harness::new();
    h.configure(XdpConfig {
        rate_ban_ns: 60_000_000_000,
        ..ban_at_limit(RateLimit::new(1, 1), RateLimit::new(0, 0))
    });
    let expired = BanEntry {
        expires_ns: monotonic_ns() - CLOCK_LAG_NS,
        created_ns: monotonic_ns() - 2 * CLOCK_LAG_NS,
        origin: BanOrigin::RateGuard as u32,
        _pad: 0,
    };
    h.maps
        .kernel_bans
        .insert(ip("198.51.100.31"), expired)
        .unwrap();
    let pkt = register("198.51.100.31");
    assert_eq!(h.run(&pkt), XDP_PASS, "the expired ban is absent");
    assert_eq!(h.run(&pkt), XDP_DROP);
    let entry = h
        .maps
        .kernel_bans
        .get(ip("198.51.100.31"))
        .unwrap()
        .unwrap();
    assert!(entry.is_active(monotonic_ns()), "banned again: {entry:?}");
    assert_eq!(
        h.run(&Frame::udp("198.51.100.31", 53, b"x").build()),
        XDP_DROP
    );
}

// ------------------------------------------------------- scanner signature

fn request_with_ua_after(extra_headers: usize, ua: &str) -> Vec<u8> {
    let mut s = String::from("OPTIONS sip:100@10.99.0.1 SIP/2.0\r\n");
    for i in 0..extra_headers {
        s.push_str(&format!("X-Filler-{i:02}: {}\r\n", "a".repeat(20)));
    }
    s.push_str(&format!("User-Agent: {ua}\r\nContent-Length: 0\r\n\r\n"));
    s.into_bytes()
}

#[test]
fn scanner_user_agent_is_banned_at_start_and_middle() {
    let mut h = Harness::new();
    for (i, extra) in [0usize, 5, 12].iter().enumerate() {
        let src = format!("198.51.100.{}", 40 + i);
        let payload = request_with_ua_after(*extra, "friendly-scanner");
        assert!(payload.len() < 512);
        // Every one dropped; the third (the configured hits) bans.
        for _ in 0..3 {
            assert_eq!(
                h.run(&Frame::udp(&src, SIP, &payload).build()),
                XDP_DROP,
                "after {extra} headers"
            );
        }
        let entry = h
            .maps
            .kernel_bans
            .get(ip(&src))
            .unwrap()
            .expect("scanner ban");
        assert_eq!(entry.origin, BanOrigin::Scanner as u32);
    }
    assert_eq!(h.verdicts(Action::Drop, Reason::Scanner), 9);
}

#[test]
fn headers_past_the_scan_window_are_passed_unscanned_and_counted() {
    let mut h = Harness::new();
    // 16 filler headers put the User-Agent past 512 bytes: still seen.
    let payload = request_with_ua_after(16, "friendly-scanner");
    assert!(
        String::from_utf8_lossy(&payload)
            .find("User-Agent")
            .unwrap()
            > 512
    );
    assert_eq!(
        h.run(&Frame::udp("198.51.100.50", SIP, &payload).build()),
        XDP_DROP
    );
    // Over TCP, headers running past the 2048-byte window are unscanned.
    let payload = request_with_ua_after(60, "friendly-scanner");
    assert!(payload.len() > 2048);
    assert_eq!(
        h.run(&Frame::tcp("198.51.100.51", SIP, &payload).build()),
        XDP_PASS
    );
    let snap = h.maps.stats.snapshot().unwrap();
    assert_eq!(snap.counter(Counter::UaUnscanned), 1);
}

#[test]
fn scanner_match_is_case_insensitive_and_tolerates_blanks() {
    let mut h = Harness::new();
    let variants: [&[u8]; 5] = [
        b"OPTIONS sip:x SIP/2.0\r\nuser-agent: sipvicious 0.3\r\n\r\n",
        b"OPTIONS sip:x SIP/2.0\r\nUSER-AGENT :Friendly-Scanner\r\n\r\n",
        b"INVITE sip:x SIP/2.0\r\nUser-Agent:\tVaxSIPUserAgent/3.1\r\n\r\n",
        b"REGISTER sip:x SIP/2.0\nUser-Agent: sipcli/v1.8\n\n",
        b"OPTIONS sip:x SIP/2.0\r\nUser-Agent: SMAP\r\n\r\n",
    ];
    for (i, p) in variants.iter().enumerate() {
        let src = format!("198.51.100.{}", 60 + i);
        assert_eq!(
            h.run(&Frame::udp(&src, SIP, p).build()),
            XDP_DROP,
            "{}",
            String::from_utf8_lossy(p)
        );
    }
}

#[test]
fn ordinary_user_agents_and_lookalikes_pass() {
    let mut h = Harness::new();
    let variants: [&[u8]; 7] = [
        b"REGISTER sip:x SIP/2.0\r\nUser-Agent: Yealink SIP-T46S 66.86.0.15\r\n\r\n",
        // In the body, past the empty line that ends the headers: not a
        // header, and not scanned.
        b"MESSAGE sip:x SIP/2.0\r\nContent-Type: text/plain\r\n\r\nhi\r\nUser-Agent: friendly-scanner\r\n",
        b"MESSAGE sip:x SIP/2.0\nContent-Type: text/plain\n\nUser-Agent: friendly-scanner\n",
        b"REGISTER sip:x SIP/2.0\r\nUser-Agent: Asterisk PBX 20.5.0\r\n\r\n",
        b"OPTIONS sip:x SIP/2.0\r\nX-User-Agent: friendly-scanner\r\n\r\n",
        b"OPTIONS sip:x SIP/2.0\r\nSubject: User-Agent: friendly-scanner\r\n\r\n",
        b"OPTIONS sip:x SIP/2.0\r\nUser-Agent: my friendly-scanner\r\n\r\n",
    ];
    for (i, p) in variants.iter().enumerate() {
        let src = format!("192.0.2.{}", 80 + i);
        assert_eq!(
            h.run(&Frame::udp(&src, SIP, p).build()),
            XDP_PASS,
            "{}",
            String::from_utf8_lossy(p)
        );
    }
    assert_eq!(
        h.maps
            .stats
            .snapshot()
            .unwrap()
            .counter(Counter::ScannerSeen),
        0
    );
}

#[test]
fn scanner_in_a_response_is_not_acted_on() {
    let mut h = Harness::new();
    let p = b"SIP/2.0 200 OK\r\nUser-Agent: friendly-scanner\r\n\r\n";
    assert_eq!(h.run(&Frame::udp("192.0.2.90", SIP, p).build()), XDP_PASS);
}

#[test]
fn scanner_count_only_action_drops_without_a_ban_and_reports_once() {
    let mut h = Harness::new();
    h.configure(XdpConfig {
        scanner_action: ScannerAction::Count as u32,
        ..XdpConfig::default()
    });
    let pkt = Frame::udp(
        "198.51.100.70",
        SIP,
        &sip_request("OPTIONS", Some("friendly-scanner")),
    )
    .build();
    // The message is dropped all the same; only the ban is left out.
    for _ in 0..3 {
        assert_eq!(h.run(&pkt), XDP_DROP);
    }
    assert!(h
        .maps
        .kernel_bans
        .get(ip("198.51.100.70"))
        .unwrap()
        .is_none());
    assert_eq!(h.verdicts(Action::Drop, Reason::Scanner), 3);
    assert_eq!(
        h.maps
            .stats
            .snapshot()
            .unwrap()
            .counter(Counter::ScannerSeen),
        3
    );
    let events = h.maps.events.drain();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, EventKind::ScannerSeen);
}

// ------------------------------------------------------------------ modes

#[test]
fn observe_mode_never_drops_and_counts_would_drops() {
    let mut h = Harness::new();
    h.configure(XdpConfig {
        mode: Mode::Observe as u32,
        scanner_ban_hits: 1,
        ..ban_at_limit(RateLimit::new(1, 1), XdpConfig::default().message_limit)
    });
    ban(&mut h, "198.51.100.80", 0);
    ban_range(&mut h, "203.0.113.0/24");
    let mut bad = Frame::tcp("192.0.2.99", SIP, b"x").build();
    bad[14 + 20 + 12] = 1 << 4;
    let frames = [
        Frame::udp("198.51.100.80", SIP, b"x").build(),
        Frame::udp("203.0.113.5", SIP, b"x").build(),
        Frame::udp(
            "198.51.100.81",
            SIP,
            &sip_request("OPTIONS", Some("friendly-scanner")),
        )
        .build(),
        register("198.51.100.82"),
        register("198.51.100.82"),
        register("198.51.100.82"),
        bad,
    ];
    for f in &frames {
        assert_eq!(h.run(f), XDP_PASS);
    }
    let s = h.maps.stats.snapshot().unwrap();
    assert_eq!(s.total(Action::Drop), 0);
    assert_eq!(s.verdict(Action::WouldDrop, Reason::BannedExact), 1);
    assert_eq!(s.verdict(Action::WouldDrop, Reason::BannedRange), 1);
    assert_eq!(s.verdict(Action::WouldDrop, Reason::Scanner), 1);
    assert_eq!(s.verdict(Action::WouldDrop, Reason::RateGuard), 2);
    assert_eq!(s.verdict(Action::WouldDrop, Reason::Malformed), 1);
    assert!(
        h.maps.bans.get(ip("198.51.100.81")).unwrap().is_none(),
        "no kernel ban in observe"
    );
    assert!(h.maps.bans.get(ip("198.51.100.82")).unwrap().is_none());
    let kinds: Vec<_> = h
        .maps
        .events
        .drain()
        .into_iter()
        .map(|e| (e.kind, e.ip))
        .collect();
    assert!(
        kinds.contains(&(EventKind::WouldBan, ip("198.51.100.81"))),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&(EventKind::WouldBan, ip("198.51.100.82"))),
        "{kinds:?}"
    );
    assert_eq!(kinds.len(), 2, "one report per source: {kinds:?}");
}

#[test]
fn allowlist_only_mode_drops_sip_from_everyone_else() {
    let mut h = Harness::new();
    h.configure(XdpConfig {
        mode: Mode::AllowlistOnly as u32,
        ..XdpConfig::default()
    });
    allow(&mut h, "192.0.2.0/24");
    assert_eq!(h.run(&register("192.0.2.10")), XDP_PASS);
    assert_eq!(h.run(&register("198.51.100.90")), XDP_DROP);
    assert_eq!(
        h.run(&Frame::tcp("2001:db8::90", SIP, b"INVITE x").build()),
        XDP_DROP
    );
    assert_eq!(
        h.run(&Frame::udp("198.51.100.90", 53, b"dns").build()),
        XDP_PASS,
        "non-SIP untouched"
    );
    assert_eq!(h.verdicts(Action::Drop, Reason::NotAllowlisted), 2);
}

// ------------------------------------------------------------ robustness

fn fixtures() -> Vec<Vec<u8>> {
    vec![
        register("192.0.2.1"),
        Frame::tcp(
            "192.0.2.2",
            SIP,
            &sip_request("INVITE", Some("friendly-scanner")),
        )
        .build(),
        Frame::udp("2001:db8::1", SIP, &sip_request("OPTIONS", None))
            .ext(Ext::HopByHop)
            .ext(Ext::Fragment {
                offset: 0,
                more: true,
            })
            .build(),
        Frame::udp("192.0.2.3", SIP, &sip_request("REGISTER", None))
            .vlan(ETH_P_8021AD, 1)
            .vlan(ETH_P_8021Q, 2)
            .ipv4_options(&[7, 7, 4, 0, 0, 0, 0])
            .build(),
        Frame::udp("192.0.2.4", SIP, b"x")
            .ipv4_fragment(10, false)
            .build(),
    ]
}

#[test]
fn every_truncation_of_every_fixture_gets_pass_or_drop() {
    let mut h = Harness::new();
    h.configure(no_limits());
    for f in fixtures() {
        // The kernel refuses test runs on frames shorter than an Ethernet header.
        for len in 14..=f.len() {
            let v = h.run(&f[..len]);
            assert!(v == XDP_PASS || v == XDP_DROP, "len {len}: verdict {v}");
        }
    }
}

#[test]
fn random_bytes_never_abort_and_follow_the_source_rules() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5195_41e1d);
    let mut h = Harness::new();
    h.configure(no_limits());
    ban(&mut h, "198.51.100.99", 0);
    allow(&mut h, "192.0.2.0/24");
    let runs = 100_000u64;
    let before = h.maps.stats.snapshot().unwrap().packets();
    for i in 0..runs {
        let len = rng.gen_range(14..600);
        let mut f: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        match i % 4 {
            // Fully random frame.
            0 => {}
            // IPv4 with a random header from a banned source: DROP whatever follows.
            1 if len >= 34 => {
                f[12..14].copy_from_slice(&ETH_P_IPV4.to_be_bytes());
                f[26..30].copy_from_slice(&[198, 51, 100, 99]);
            }
            // IPv4 from an allowlisted source: PASS whatever follows.
            2 if len >= 34 => {
                f[12..14].copy_from_slice(&ETH_P_IPV4.to_be_bytes());
                f[26..30].copy_from_slice(&[192, 0, 2, 7]);
            }
            // IPv6 with random extension chain and payload.
            _ => f[12..14].copy_from_slice(&ETH_P_IPV6.to_be_bytes()),
        }
        let v = h.run(&f);
        assert_ne!(v, XDP_ABORTED, "run {i}");
        assert!(v == XDP_PASS || v == XDP_DROP, "run {i}: {v}");
        if i % 4 == 1 && len >= 34 {
            assert_eq!(v, XDP_DROP, "run {i}: banned source");
        }
        if i % 4 == 2 && len >= 34 {
            assert_eq!(v, XDP_PASS, "run {i}: allowlisted source");
        }
    }
    let after = h.maps.stats.snapshot().unwrap().packets();
    assert_eq!(after - before, runs, "every packet counted exactly once");
}

#[test]
fn a_full_allowlist_map_follows_a_refresh_that_replaces_every_entry() {
    use sipshield::bpf::allowlist::KernelAllow;
    let mut h = Harness::with_sizes(sipshield::bpf::MapSizes {
        max_allow: 4,
        ..Harness::small_sizes()
    });
    let list = |base: u8| -> Vec<KernelAllow> {
        (1..=4u8)
            .map(|i| KernelAllow::uncapped(format!("192.0.{base}.{i}/32").parse().unwrap()))
            .collect()
    };
    h.maps.allow.replace_all_capped(&list(2)).unwrap();
    // Every session ended and four new ones began: the map is full, so the
    // stale entries must leave before the new ones can enter.
    h.maps.allow.replace_all_capped(&list(3)).unwrap();
    let mut now: Vec<String> = h
        .maps
        .allow
        .entries()
        .unwrap()
        .iter()
        .map(|n| n.to_string())
        .collect();
    now.sort();
    assert_eq!(
        now,
        [
            "192.0.3.1/32",
            "192.0.3.2/32",
            "192.0.3.3/32",
            "192.0.3.4/32"
        ]
    );
    assert_eq!(h.run(&register("192.0.3.4")), XDP_PASS);
    assert_eq!(
        h.verdicts(Action::Pass, Reason::Allowlisted),
        1,
        "the new entry is in force"
    );
    // More than fits: an error, and what fits is in force.
    let mut five = list(4);
    five.push(KernelAllow::uncapped("192.0.4.5/32".parse().unwrap()));
    assert!(h.maps.allow.replace_all_capped(&five).is_err());
    assert_eq!(h.maps.allow.entries().unwrap().len(), 4);
}

#[test]
fn a_batch_write_into_a_full_table_says_which_entries_it_refused() {
    let mut h = Harness::with_sizes(sipshield::bpf::MapSizes {
        max_bans: 4,
        ..Harness::small_sizes()
    });
    let entry = log_ban_entry(0);
    let items: Vec<(IpAddr, BanEntry)> = (1..=6u8)
        .map(|i| (ip(&format!("198.51.100.{i}")), entry))
        .chain([(ip("2001:db8::1"), entry)])
        .collect();
    let refused = h.maps.bans.insert_many(&items);
    let refused: Vec<String> = refused.iter().map(|(a, _)| a.to_string()).collect();
    assert_eq!(refused, ["198.51.100.5", "198.51.100.6"]);
    assert_eq!(h.maps.bans.len(), (4, 1));
    assert_eq!(h.run(&register("198.51.100.4")), XDP_DROP);
    assert_eq!(h.run(&register("198.51.100.5")), XDP_PASS);
}

/// The verifier stops at 1M processed instructions. The program once stood
/// at 940k, where any change to the User-Agent scan failed to load; the scan
/// as a global function (checked once) brought it to about 310k. This keeps
/// the room visible: a change that eats it fails here, with the figure,
/// before it fails to load on some other kernel.
#[test]
fn the_program_leaves_the_verifier_half_its_limit() {
    let mut h = Harness::new();
    let info = h.program.xdp().unwrap().info().unwrap();
    let verified = info
        .verified_instruction_count()
        .expect("the kernel reports verified instructions");
    eprintln!("verified instructions: {verified}");
    assert!(verified < 500_000, "{verified} of the verifier's 1M");
}

/// The tables only userspace writes (log and operator bans, known-good
/// sources) take kernel memory as entries arrive. Preallocated, the default
/// million bans a family held ~200 MB of kernel memory from the first start
/// on, and creating them was most of a second of every start.
#[test]
fn tables_only_userspace_writes_are_not_preallocated() {
    const BPF_F_NO_PREALLOC: u32 = 1;
    let mut h = Harness::new();
    let ids = h
        .program
        .xdp()
        .unwrap()
        .info()
        .unwrap()
        .map_ids()
        .unwrap()
        .expect("the kernel reports the program's maps");
    let mut seen = Vec::new();
    for id in ids {
        let info = aya::maps::MapInfo::from_id(id).unwrap();
        let name = info.name_as_str().unwrap_or("").to_string();
        if ["BANS_V4", "BANS_V6", "KNOWN_V4", "KNOWN_V6"].contains(&name.as_str()) {
            assert_ne!(
                info.map_flags() & BPF_F_NO_PREALLOC,
                0,
                "{name} is preallocated"
            );
            seen.push(name);
        }
    }
    seen.sort();
    assert_eq!(seen, ["BANS_V4", "BANS_V6", "KNOWN_V4", "KNOWN_V6"]);
}

/// A large batch is written by several threads at once (a 1M restore is
/// mostly this write): into a table with room for half of it, exactly the
/// entries that are not in the kernel come back refused, wherever each
/// writer stopped.
#[test]
fn a_batch_split_across_writers_refuses_exactly_what_did_not_fit() {
    const ROOM: u32 = 20_000;
    let mut h = Harness::with_sizes(sipshield::bpf::MapSizes {
        max_bans: ROOM,
        ..Harness::small_sizes()
    });
    let entry = log_ban_entry(0);
    let items: Vec<(IpAddr, BanEntry)> = (0..2 * ROOM)
        .map(|i| (IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i)), entry))
        .collect();
    let refused = h.maps.bans.insert_many(&items);
    // A table this large counts its entries per CPU (the kernel's
    // percpu_counter, batches of 32) and checks the count apart from
    // adding to it: writers on several CPUs at once may fill it a few
    // entries past its size (seen: one in about ten runs). What must hold
    // exactly is that every entry is either held or refused.
    let slack = 32 * std::thread::available_parallelism().map_or(8, |n| n.get());
    let held = h.maps.bans.len().0;
    assert!(
        held.abs_diff(ROOM as usize) <= slack,
        "{held} held of room for {ROOM}"
    );
    assert_eq!(held + refused.len(), items.len());
    let refused: std::collections::HashSet<IpAddr> = refused.iter().map(|(a, _)| *a).collect();
    for (a, _) in &items {
        let held = h.maps.bans.get(*a).unwrap().is_some();
        assert_ne!(held, refused.contains(a), "{a}: held {held}");
    }
}

/// The program skips the exact ban table when an address's filter bit is
/// clear, so every way userspace writes a ban marks it first: one by one,
/// and in a batch large enough to be split across writers. The filter
/// rules out what is not banned.
#[test]
fn every_ban_written_is_marked_in_the_ban_filter_first() {
    let mut h = Harness::with_sizes(sipshield::bpf::MapSizes {
        max_bans: 1 << 17,
        ..Harness::small_sizes()
    });
    ban(&mut h, "198.51.100.1", 0);
    ban(&mut h, "2001:db8::1", 0);
    let entry = log_ban_entry(0);
    let items: Vec<(IpAddr, BanEntry)> = (0..40_000u32)
        .map(|i| IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i)))
        .chain((0..40_000u32).map(|i| {
            IpAddr::V6(std::net::Ipv6Addr::from(
                (0x2001_0db8_0001u128 << 80) + u128::from(i),
            ))
        }))
        .map(|a| (a, entry))
        .collect();
    assert!(h.maps.bans.insert_many(&items).is_empty());
    let marked = |h: &Harness, a: IpAddr| {
        let filter = h.maps.bans.filter().expect("the ban table has its filter");
        filter.is_marked(a)
    };
    let sample: Vec<IpAddr> = items
        .iter()
        .step_by(997)
        .map(|(a, _)| *a)
        .chain([ip("198.51.100.1"), ip("2001:db8::1")])
        .collect();
    for a in sample {
        assert!(marked(&h, a), "{a} not marked");
        assert_eq!(h.run(&register(&a.to_string())), XDP_DROP, "{a}");
    }
    let fill = h.maps.bans.filter().map(|f| f.fill()).unwrap_or(0.0);
    assert!(fill > 0.0 && fill < 0.02, "{fill}");
    assert!(!marked(&h, ip("198.51.100.2")));
    assert_eq!(h.run(&register("198.51.100.2")), XDP_PASS);
}

/// Tables are read in batches: every entry comes back once, across many
/// system calls, from the plain hash and from the kernel's LRU alike.
#[test]
fn a_table_read_in_batches_returns_every_entry_once() {
    let mut h = Harness::with_sizes(sipshield::bpf::MapSizes {
        max_bans: 1 << 15,
        max_kernel_bans: 1 << 15,
        ..Harness::small_sizes()
    });
    let entry = log_ban_entry(0);
    let items: Vec<(IpAddr, BanEntry)> = (0..10_000u32)
        .map(|i| IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i)))
        .chain((0..3_000u32).map(|i| {
            IpAddr::V6(std::net::Ipv6Addr::from(
                (0x2001_0db8u128 << 96) + u128::from(i),
            ))
        }))
        .enumerate()
        .map(|(i, a)| {
            (
                a,
                BanEntry {
                    created_ns: i as u64,
                    ..entry
                },
            )
        })
        .collect();
    assert!(h.maps.bans.insert_many(&items).is_empty());
    assert!(h.maps.kernel_bans.insert_many(&items[..5000]).is_empty());
    let mut got = h.maps.bans.entries().unwrap();
    got.sort_by_key(|(_, e)| e.created_ns);
    assert_eq!(got, items);
    let mut kernel = h.maps.kernel_bans.entries().unwrap();
    kernel.sort_by_key(|(_, e)| e.created_ns);
    assert_eq!(kernel, items[..5000]);
}
