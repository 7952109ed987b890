//! The data plane's holes, each written as the attack that used to get
//! through (issue "Data plane v2"), through BPF_PROG_TEST_RUN. Needs root.

use std::net::IpAddr;

use sipshield_common::{
    config::{RateLimit, XdpConfig},
    counters::{Action, Reason},
    sip::Method,
};
use sipshield_tests::harness::ban_at_limit;
use sipshield_tests::{harness::*, packet::*};

const SIP: u16 = 5060;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn method_count(h: &Harness, src: &str, m: Method) -> u64 {
    h.maps
        .sources
        .get(ip(src))
        .unwrap()
        .map(|s| s.methods[m as usize])
        .unwrap_or(0)
}

fn messages(h: &Harness, src: &str) -> u64 {
    h.maps
        .sources
        .get(ip(src))
        .unwrap()
        .map(|s| s.total_messages())
        .unwrap_or(0)
}

/// Only the all-messages bucket, `burst` deep, refilling at 1/s.
fn message_bucket(burst: u64) -> XdpConfig {
    XdpConfig {
        ..ban_at_limit(RateLimit::new(0, 0), RateLimit::new(1, burst))
    }
}

// ------------------------------------------ 1. methods as Asterisk reads them

#[test]
fn lower_case_method_and_leading_crlf_are_the_request_pjsip_reads() {
    let mut h = Harness::new();
    h.configure(XdpConfig {
        ..ban_at_limit(RateLimit::new(1, 3), RateLimit::new(0, 0))
    });
    let spellings: [&[u8]; 4] = [
        b"register sip:x SIP/2.0\r\nContent-Length: 0\r\n\r\n",
        b"\r\nREGISTER sip:x SIP/2.0\r\nContent-Length: 0\r\n\r\n",
        b"\r\n\r\n\n\rReGiStEr\tsip:x SIP/2.0\r\nContent-Length: 0\r\n\r\n",
        b"REGISTER sip:x SIP/2.0\r\nContent-Length: 0\r\n\r\n",
    ];
    let verdicts: Vec<u32> = spellings
        .iter()
        .map(|p| h.run(&Frame::udp("198.51.100.1", SIP, p).build()))
        .collect();
    assert_eq!(
        verdicts,
        [XDP_PASS, XDP_PASS, XDP_PASS, XDP_DROP],
        "every spelling charges the REGISTER bucket"
    );
    assert_eq!(method_count(&h, "198.51.100.1", Method::Register), 4);
    // Other methods, and responses, are case-insensitive too.
    let mut h = Harness::new();
    h.configure(message_bucket(1000));
    for (i, (p, m)) in [
        (&b"invite sip:x SIP/2.0\r\n\r\n"[..], Method::Invite),
        (b"\r\nsubscribe sip:x SIP/2.0\r\n\r\n", Method::Subscribe),
        (b"sip/2.0 200 OK\r\n\r\n", Method::Response),
        (b"\r\n\r\nOptions sip:x SIP/2.0\r\n\r\n", Method::Options),
    ]
    .into_iter()
    .enumerate()
    {
        // Twice: a source's first message is counted with its second.
        let src = format!("198.51.100.{}", 100 + i);
        h.run(&Frame::udp(&src, SIP, p).build());
        h.run(&Frame::udp(&src, SIP, p).build());
        assert_eq!(
            method_count(&h, &src, m),
            2,
            "{}",
            String::from_utf8_lossy(p)
        );
    }
}

#[test]
fn scanner_behind_leading_crlf_or_lower_case_method_is_seen() {
    let mut h = Harness::new();
    for (i, p) in [
        &b"\r\nOPTIONS sip:x SIP/2.0\r\nUser-Agent: friendly-scanner\r\n\r\n"[..],
        b"options sip:x SIP/2.0\r\nUser-Agent: friendly-scanner\r\n\r\n",
    ]
    .iter()
    .enumerate()
    {
        let src = format!("198.51.100.{}", 10 + i);
        assert_eq!(h.run(&Frame::udp(&src, SIP, p).build()), XDP_DROP);
    }
}

#[test]
fn bare_crlf_keepalive_stays_a_keepalive_and_charges_the_message_bucket() {
    let mut h = Harness::new();
    h.configure(message_bucket(3));
    let ping = Frame::udp("198.51.100.3", SIP, b"\r\n\r\n").build();
    for _ in 0..3 {
        assert_eq!(h.run(&ping), XDP_PASS);
    }
    assert_eq!(method_count(&h, "198.51.100.3", Method::KeepAlive), 3);
    assert_eq!(
        h.run(&ping),
        XDP_DROP,
        "a keep-alive flood is still a flood"
    );
}

// ----------------------------------------------------------- 2. fragments

#[test]
fn first_fragments_holding_only_the_udp_header_are_no_way_around() {
    let mut h = Harness::new();
    h.configure(message_bucket(1000));
    let v4 = Frame::udp("198.51.100.20", SIP, b"").ipv4_fragment(0, true);
    let v6 = Frame::udp("2001:db8::20", SIP, b"").ext(Ext::Fragment {
        offset: 0,
        more: true,
    });
    assert_eq!(
        h.run(&v4.build()),
        XDP_DROP,
        "IPv4 first fragment, no payload"
    );
    assert_eq!(
        h.run(&v6.build()),
        XDP_DROP,
        "IPv6 first fragment, no payload"
    );
    let short = Frame::udp("198.51.100.21", SIP, b"REG").ipv4_fragment(0, true);
    assert_eq!(
        h.run(&short.build()),
        XDP_DROP,
        "too short for a request line"
    );
    assert_eq!(h.verdicts(Action::Drop, Reason::ShortFragment), 3);
}

#[test]
fn each_first_fragment_counts_as_one_message() {
    let mut h = Harness::new();
    h.configure(message_bucket(3));
    let first = Frame::udp("198.51.100.22", SIP, &sip_request("INVITE", None))
        .ipv4_fragment(0, true)
        .build();
    for _ in 0..3 {
        assert_eq!(h.run(&first), XDP_PASS, "a large INVITE that fragments");
    }
    assert_eq!(h.run(&first), XDP_DROP);
    // The rest of a fragmented datagram is decided by its source.
    let mut h = Harness::new();
    let rest = Frame::udp("198.51.100.23", SIP, b"tail").ipv4_fragment(185, false);
    assert_eq!(h.run(&rest.build()), XDP_PASS);
}

// ------------------------------------------------ 3. long IPv6 chains

#[test]
fn long_ipv6_extension_chains_are_charged_to_their_source() {
    let mut h = Harness::new();
    h.configure(message_bucket(3));
    let mut f = Frame::udp("2001:db8::30", SIP, &sip_request("REGISTER", None));
    for _ in 0..7 {
        f = f.ext(Ext::DestOpts);
    }
    let pkt = f.build();
    for _ in 0..3 {
        assert_eq!(h.run(&pkt), XDP_PASS);
    }
    assert_eq!(h.run(&pkt), XDP_DROP, "the fourth is over the burst");
    assert_eq!(method_count(&h, "2001:db8::30", Method::Other), 4);
}

// ------------------------------------------------- 4. User-Agent scan gaps

#[test]
fn folded_decoy_and_padded_user_agents_do_not_hide_a_scanner() {
    let mut h = Harness::new();
    let mut padded = String::from("OPTIONS sip:x SIP/2.0\r\n");
    while padded.len() < 900 {
        padded.push_str("X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
    padded.push_str("User-Agent: friendly-scanner\r\n\r\n");
    let mut spaced = String::from("OPTIONS sip:x SIP/2.0\r\nUser-Agent:");
    spaced.push_str(&" ".repeat(100));
    spaced.push_str("sipvicious\r\n\r\n");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "folded",
            b"OPTIONS sip:x SIP/2.0\r\nUser-Agent:\r\n friendly-scanner\r\n\r\n".to_vec(),
        ),
        (
            "folded twice",
            b"OPTIONS sip:x SIP/2.0\r\nUser-Agent: \r\n\t\r\n  sipvicious\r\n\r\n".to_vec(),
        ),
        (
            "decoy name",
            b"OPTIONS sip:x SIP/2.0\r\nUser-AgentX: a\r\nUser-Agent: friendly-scanner\r\n\r\n"
                .to_vec(),
        ),
        (
            "benign first",
            b"OPTIONS sip:x SIP/2.0\r\nUser-Agent: Yealink\r\nUser-Agent: friendly-scanner\r\n\r\n"
                .to_vec(),
        ),
        ("padded past 512 bytes", padded.into_bytes()),
        ("100 blanks before the value", spaced.into_bytes()),
        // The word-at-a-time path to the value and its edges.
        (
            "blanks around the colon",
            b"OPTIONS sip:x SIP/2.0\r\nUser-Agent \t:\t \tfriendly-scanner\r\n\r\n".to_vec(),
        ),
        (
            "seven blanks after the colon",
            b"OPTIONS sip:x SIP/2.0\r\nUser-Agent:       sipvicious\r\n\r\n".to_vec(),
        ),
        (
            "eight blanks after the colon",
            b"OPTIONS sip:x SIP/2.0\r\nUser-Agent:        sipvicious\r\n\r\n".to_vec(),
        ),
        (
            "the value ends the datagram",
            b"OPTIONS sip:x SIP/2.0\r\nUser-Agent: sipvicious".to_vec(),
        ),
    ];
    for (i, (what, p)) in cases.iter().enumerate() {
        let src = format!("198.51.100.{}", 40 + i);
        assert_eq!(h.run(&Frame::udp(&src, SIP, p).build()), XDP_DROP, "{what}");
    }
}

#[test]
fn an_empty_user_agent_before_the_body_is_not_a_scanner() {
    let mut h = Harness::new();
    let p = b"MESSAGE sip:x SIP/2.0\r\nUser-Agent:\r\n\r\nfriendly-scanner\r\n";
    assert_eq!(h.run(&Frame::udp("192.0.2.40", SIP, p).build()), XDP_PASS);
}

// ----------------------------------------------- 10. TCP: every message counts

#[test]
fn several_messages_in_one_tcp_segment_are_each_charged() {
    let mut h = Harness::new();
    h.configure(message_bucket(4));
    let mut seg = Vec::new();
    for _ in 0..5 {
        seg.extend_from_slice(&sip_request("OPTIONS", None));
    }
    assert_eq!(
        h.run(&Frame::tcp("198.51.100.60", SIP, &seg).build()),
        XDP_DROP,
        "five messages over a burst of four"
    );
    assert_eq!(messages(&h, "198.51.100.60"), 5);
    assert!(h.kernel_banned("198.51.100.60"));
}

// ------------------------------------- 5. a forged datagram bans nobody

use sipshield::bpf::clock::monotonic_ns;
use sipshield_common::{
    config::{Mode, ScannerAction},
    counters::Counter,
    maps::{BanOrigin, RangeEntry},
};

fn scanner_probe(src: &str) -> Vec<u8> {
    Frame::udp(src, SIP, &sip_request("OPTIONS", Some("friendly-scanner"))).build()
}

#[test]
fn one_forged_scanner_datagram_is_dropped_but_bans_nobody() {
    let mut h = Harness::new();
    // The trunk's address, forged: the message goes, the address stays.
    assert_eq!(h.run(&scanner_probe("192.0.2.50")), XDP_DROP);
    assert!(
        !h.kernel_banned("192.0.2.50"),
        "one datagram proves nothing"
    );
    assert_eq!(h.verdicts(Action::Drop, Reason::Scanner), 1);
    // A real scanner keeps sending: banned at the configured hits, briefly.
    let defaults = XdpConfig::default();
    for _ in 0..defaults.scanner_ban_hits {
        assert_eq!(h.run(&scanner_probe("198.51.100.70")), XDP_DROP);
    }
    let ban = h
        .maps
        .kernel_bans
        .get(ip("198.51.100.70"))
        .unwrap()
        .unwrap();
    assert_eq!(ban.origin, BanOrigin::Scanner as u32);
    let left = ban.expires_ns - monotonic_ns();
    assert!(left <= 600_000_000_000, "first ban is short: {left} ns");
}

#[test]
fn a_known_good_source_is_policed_but_never_banned_by_the_kernel() {
    let mut h = Harness::new();
    h.configure(XdpConfig {
        scanner_ban_hits: 1,
        ..ban_at_limit(RateLimit::new(1, 2), RateLimit::new(0, 0))
    });
    let phone = "100.64.20.20";
    h.maps
        .known
        .insert(ip(phone), monotonic_ns() + 3_600_000_000_000)
        .unwrap();
    for _ in 0..5 {
        assert_eq!(h.run(&scanner_probe(phone)), XDP_DROP, "signature: dropped");
    }
    let reg = Frame::udp(phone, SIP, &sip_request("REGISTER", None)).build();
    let verdicts: Vec<u32> = (0..4).map(|_| h.run(&reg)).collect();
    assert_eq!(
        verdicts,
        [XDP_PASS, XDP_PASS, XDP_DROP, XDP_DROP],
        "policed"
    );
    assert!(!h.kernel_banned(phone), "never banned");
    assert!(
        h.maps
            .stats
            .snapshot()
            .unwrap()
            .counter(Counter::KnownGoodSpared)
            >= 7
    );
    // Once its entry expires it is an unknown source again.
    h.maps
        .known
        .insert(ip(phone), monotonic_ns() - CLOCK_LAG_NS)
        .unwrap();
    assert_eq!(h.run(&scanner_probe(phone)), XDP_DROP);
    assert!(h.kernel_banned(phone));
}

#[test]
fn count_only_still_drops_the_signature_and_observe_drops_nothing() {
    let mut h = Harness::new();
    h.configure(XdpConfig {
        scanner_action: ScannerAction::Count as u32,
        scanner_ban_hits: 1,
        ..XdpConfig::default()
    });
    assert_eq!(h.run(&scanner_probe("198.51.100.71")), XDP_DROP);
    assert!(!h.kernel_banned("198.51.100.71"));
    h.configure(XdpConfig {
        mode: Mode::Observe as u32,
        ..XdpConfig::default()
    });
    assert_eq!(h.run(&scanner_probe("198.51.100.72")), XDP_PASS);
    assert_eq!(h.verdicts(Action::WouldDrop, Reason::Scanner), 1);
}

// ----------------------------------------------- 8. ranges carry expiry

fn range(h: &mut Harness, net: &str, own_expires_ns: u64) {
    let entry = RangeEntry {
        created_ns: monotonic_ns(),
        expires_ns: own_expires_ns,
        own_expires_ns,
        origin: BanOrigin::Operator as u32,
        no_allow_inside: 1,
    };
    h.maps.ranges.insert(net.parse().unwrap(), entry).unwrap();
}

#[test]
fn a_timed_range_ban_ends_in_the_kernel_without_the_daemon() {
    let mut h = Harness::new();
    let now = monotonic_ns();
    range(&mut h, "203.0.113.0/24", now - CLOCK_LAG_NS);
    range(&mut h, "198.18.0.0/16", now + 60_000_000_000);
    assert_eq!(
        h.run(&Frame::udp("203.0.113.9", 53, b"x").build()),
        XDP_PASS,
        "expired range"
    );
    assert_eq!(h.run(&Frame::udp("198.18.4.4", 53, b"x").build()), XDP_DROP);
}

#[test]
fn an_expired_narrow_range_does_not_hide_an_active_wider_one() {
    let mut h = Harness::new();
    let now = monotonic_ns();
    range(&mut h, "203.0.113.0/24", 0);
    range(&mut h, "203.0.113.0/28", now - CLOCK_LAG_NS);
    range(&mut h, "2001:db8:bad::/48", now + 60_000_000_000);
    range(&mut h, "2001:db8:bad:1::/64", now - CLOCK_LAG_NS);
    assert_eq!(
        h.run(&Frame::udp("203.0.113.5", 53, b"x").build()),
        XDP_DROP,
        "inside the expired /28 and the permanent /24"
    );
    assert_eq!(
        h.run(&Frame::udp("2001:db8:bad:1::5", 53, b"x").build()),
        XDP_DROP
    );
    // Lifting the wide range leaves the narrow one as it was: expired.
    assert!(h
        .maps
        .ranges
        .remove("203.0.113.0/24".parse().unwrap())
        .unwrap());
    assert_eq!(
        h.run(&Frame::udp("203.0.113.5", 53, b"x").build()),
        XDP_PASS
    );
}

// --------------------------------------------- 9. allowlist entry caps

#[test]
fn a_capped_allowlist_entry_drops_its_excess_and_is_never_banned() {
    let mut h = Harness::new();
    h.maps
        .allow
        .insert_capped("192.0.2.50/32".parse().unwrap(), Some(RateLimit::new(1, 5)))
        .unwrap();
    h.maps
        .allow
        .insert("192.0.2.60/32".parse().unwrap())
        .unwrap();
    let trunk = Frame::udp("192.0.2.50", SIP, &sip_request("INVITE", None)).build();
    let passed = (0..20).filter(|_| h.run(&trunk) == XDP_PASS).count();
    assert_eq!(passed, 5, "a forged flood costs the trunk only its excess");
    assert_eq!(h.verdicts(Action::Drop, Reason::AllowCapped), 15);
    assert!(!h.kernel_banned("192.0.2.50"));
    let uncapped = Frame::udp("192.0.2.60", SIP, &sip_request("INVITE", None)).build();
    // Past the default police and flood bursts (240, 1200): an uncapped
    // entry is never policed nor banned.
    assert!(
        (0..2000).all(|_| h.run(&uncapped) == XDP_PASS),
        "off by default"
    );
    assert!(!h.kernel_banned("192.0.2.60"));
    assert_eq!(h.verdicts(Action::Drop, Reason::Policed), 0);
}

// ------------------- forged one-off sources churn nothing (first sight)

#[test]
fn a_flood_of_forged_one_off_sources_never_evicts_a_real_sources_bucket() {
    let mut h = Harness::with_sizes(sipshield::bpf::MapSizes {
        max_sources: 64,
        ..Harness::small_sizes()
    });
    h.configure(XdpConfig {
        ..ban_at_limit(RateLimit::new(1, 5), RateLimit::new(0, 0))
    });
    let real = Frame::udp("198.51.100.90", SIP, &sip_request("REGISTER", None)).build();
    for _ in 0..4 {
        assert_eq!(h.run(&real), XDP_PASS);
    }
    // 5000 forged sources, one REGISTER each: none gets an entry.
    for i in 0..5000u32 {
        let src = format!("10.{}.{}.{}", i >> 16, (i >> 8) & 0xff, i & 0xff);
        let f = Frame::udp(&src, SIP, &sip_request("REGISTER", None)).build();
        assert_eq!(h.run(&f), XDP_PASS);
    }
    let (v4, _) = h.maps.sources.len();
    assert!(v4 <= 2, "{v4} entries after the one-off flood");
    // The real source's bucket is where it was: two more, then over.
    assert_eq!(h.run(&real), XDP_PASS);
    assert_eq!(h.run(&real), XDP_DROP, "its burst of 5 is spent");
    assert_eq!(method_count(&h, "198.51.100.90", Method::Register), 6);
}

#[test]
fn a_scanners_first_request_is_counted_once() {
    let mut h = Harness::new();
    let probe = Frame::udp(
        "198.51.100.91",
        SIP,
        &sip_request("OPTIONS", Some("sipvicious")),
    )
    .build();
    assert_eq!(h.run(&probe), XDP_DROP);
    assert_eq!(messages(&h, "198.51.100.91"), 1);
    assert_eq!(
        h.maps
            .sources
            .get(ip("198.51.100.91"))
            .unwrap()
            .unwrap()
            .scanner_hits,
        1
    );
    assert_eq!(h.run(&probe), XDP_DROP);
    assert_eq!(messages(&h, "198.51.100.91"), 2);
}
