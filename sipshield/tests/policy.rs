//! Ban policy as a specification: windows, escalation, decay, allowlist,
//! observe mode, kernel and manual bans, bounded memory.

use std::{
    net::IpAddr,
    time::{Duration, SystemTime},
};

use sipshield::{
    config::Config,
    offence::OffenceClass::{self, *},
    policy::{AllowEntry, AllowSource, Allowlist, Decision, Policy, PolicyError, PolicySettings},
    state::{BanOrigin, BanTarget},
};

const MIN: u64 = 60;
const HOUR: u64 = 3600;
const DAY: u64 = 24 * HOUR;
const WEEK: u64 = 7 * DAY;

fn t(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn secs(s: u64) -> Option<Duration> {
    Some(Duration::from_secs(s))
}

fn policy() -> Policy {
    Policy::new(PolicySettings::default(), Allowlist::new())
}

fn policy_with(config: &str) -> Policy {
    let config = Config::from_toml(config, "test.toml".as_ref()).unwrap();
    Policy::new(
        PolicySettings::from_config(&config),
        Allowlist::from_config(&config.allow),
    )
}

/// `count` offences, one per second from `start`; the last decision.
fn offend(
    policy: &mut Policy,
    addr: &str,
    class: OffenceClass,
    start: u64,
    count: u64,
) -> Decision {
    let mut last = Decision::Ignored;
    for i in 0..count {
        last = policy.offence(ip(addr), class, t(start + i));
    }
    last
}

/// Bans `addr` through the logs at `start` and returns the ban's length.
fn ban_via_logs(policy: &mut Policy, addr: &str, start: u64) -> Option<Duration> {
    match offend(policy, addr, SipAuth, start, 5) {
        Decision::Ban(order) => order.duration,
        other => panic!("expected a ban at {start}, got {other:?}"),
    }
}

// --- windows -------------------------------------------------------------

#[test]
fn the_threshold_bans_at_exactly_maxretry_offences() {
    let mut p = policy();
    for n in 1..=4 {
        assert_eq!(
            p.offence(ip("198.51.100.7"), SipAuth, t(n)),
            Decision::Pending {
                count: n as u32,
                threshold: 5
            }
        );
    }
    let Decision::Ban(order) = p.offence(ip("198.51.100.7"), SipAuth, t(5)) else {
        panic!("the fifth failure bans");
    };
    assert_eq!(order.ip, ip("198.51.100.7"));
    assert_eq!(order.class, SipAuth);
    assert_eq!(order.duration, secs(10 * MIN));
    assert_eq!(order.offence_number, 1);
    assert_eq!(order.expires_at(), Some(t(5 + 10 * MIN)));
    assert!(
        order.reason.contains("5 sip-auth offences within 10m"),
        "{}",
        order.reason
    );
    let record = p.ban_of(ip("198.51.100.7"), t(6)).unwrap();
    assert_eq!(record.origin, BanOrigin::Log);
    assert_eq!(record.target, BanTarget::Addr(ip("198.51.100.7")));
}

#[test]
fn offences_spread_beyond_the_window_do_not_ban() {
    let mut p = policy();
    // Five failures whose first and last are exactly findtime (10m) apart.
    for i in 0..5 {
        let d = p.offence(ip("198.51.100.7"), SipAuth, t(i * 150));
        assert!(matches!(d, Decision::Pending { .. }), "failure {i}: {d:?}");
    }
    // The same five, one second tighter, ban.
    let mut p = policy();
    let mut last = Decision::Ignored;
    for i in 0..5 {
        last = p.offence(ip("198.51.100.7"), SipAuth, t(i * 150 - i.min(1)));
    }
    assert!(matches!(last, Decision::Ban(_)), "{last:?}");
}

#[test]
fn a_slow_attacker_below_the_rate_is_never_banned() {
    let mut p = policy();
    for i in 0..100 {
        let d = p.offence(ip("198.51.100.7"), SipAuth, t(i * 3 * MIN));
        assert!(
            matches!(d, Decision::Pending { count: ..=4, .. }),
            "{i}: {d:?}"
        );
    }
}

#[test]
fn classes_and_sources_are_counted_apart() {
    let mut p = policy();
    offend(&mut p, "198.51.100.7", SipAuth, 0, 4);
    offend(&mut p, "198.51.100.7", Ssh, 10, 4);
    assert_eq!(
        offend(&mut p, "198.51.100.8", SipAuth, 20, 4),
        Decision::Pending {
            count: 4,
            threshold: 5
        }
    );
    assert!(p.ban_of(ip("198.51.100.7"), t(30)).is_none());
    let decision = p.offence(ip("198.51.100.7"), Ssh, t(30));
    assert!(matches!(decision, Decision::Ban(order) if order.class == Ssh));
}

#[test]
fn per_class_thresholds_come_from_the_config() {
    let mut p = policy_with(
        "[policy.ami]\nmaxretry = 2\nfindtime = \"1m\"\n[policy.ssh]\nenabled = false\n",
    );
    assert!(matches!(
        p.offence(ip("192.0.2.50"), Ami, t(0)),
        Decision::Pending {
            count: 1,
            threshold: 2
        }
    ));
    assert!(matches!(
        p.offence(ip("192.0.2.50"), Ami, t(59)),
        Decision::Ban(_)
    ));
    assert_eq!(offend(&mut p, "192.0.2.51", Ssh, 0, 50), Decision::Ignored);
    assert_eq!(
        p.offence(ip("192.0.2.52"), RateGuard, t(0)),
        Decision::Ignored,
        "kernel classes are not counted"
    );
    assert_eq!(p.offence(ip("192.0.2.52"), Manual, t(0)), Decision::Ignored);
}

#[test]
fn ipv6_and_ipv4_mapped_sources() {
    let mut p = policy();
    assert!(matches!(
        offend(&mut p, "2001:db8:bad::1", SipProbe, 0, 5),
        Decision::Ban(_)
    ));
    // The same IPv4 source seen through a dual-stack socket and directly.
    offend(&mut p, "::ffff:198.51.100.9", SipAuth, 0, 3);
    let Decision::Ban(order) = offend(&mut p, "198.51.100.9", SipAuth, 3, 2) else {
        panic!("mapped and plain IPv4 are one source");
    };
    assert_eq!(order.ip, ip("198.51.100.9"));
}

#[test]
fn offences_of_a_banned_source_do_not_stack_bans() {
    let mut p = policy();
    ban_via_logs(&mut p, "198.51.100.7", 0);
    assert_eq!(
        offend(&mut p, "198.51.100.7", SipAuth, 10, 20),
        Decision::AlreadyBanned
    );
    // After the 10 minute ban, counting starts again from zero.
    assert_eq!(p.expire(t(10 * MIN + 5)).len(), 1);
    assert!(matches!(
        p.offence(ip("198.51.100.7"), SipAuth, t(11 * MIN)),
        Decision::Pending { count: 1, .. }
    ));
}

// --- escalation and decay ------------------------------------------------

#[test]
fn repeat_offenders_climb_the_ladder() {
    let mut p = policy();
    let mut start = 0;
    let mut lengths = Vec::new();
    for _ in 0..6 {
        let length = ban_via_logs(&mut p, "198.51.100.7", start);
        lengths.push(length);
        start += length.unwrap().as_secs() + 60;
        p.expire(t(start));
    }
    assert_eq!(
        lengths,
        [
            secs(10 * MIN),
            secs(HOUR),
            secs(DAY),
            secs(WEEK),
            secs(WEEK),
            secs(WEEK)
        ]
    );
    assert_eq!(p.history_of(ip("198.51.100.7")).unwrap().bans, 6);
}

#[test]
fn a_permanent_last_step_bans_for_good() {
    let mut p = policy_with("[policy]\nban_ladder = [\"1h\", \"permanent\"]\n");
    assert_eq!(ban_via_logs(&mut p, "198.51.100.7", 0), secs(HOUR));
    p.expire(t(HOUR + 10));
    assert_eq!(ban_via_logs(&mut p, "198.51.100.7", HOUR + 10), None);
    assert!(p.expire(t(10 * 365 * DAY)).is_empty());
    assert!(p.ban_of(ip("198.51.100.7"), t(10 * 365 * DAY)).is_some());
}

#[test]
fn history_is_forgotten_after_a_quiet_week() {
    let mut p = policy();
    ban_via_logs(&mut p, "198.51.100.7", 0);
    p.expire(t(11 * MIN));
    // Quiet for just under a week after the ban ended: still remembered.
    let end = 5 + 10 * MIN;
    assert_eq!(
        ban_via_logs(&mut p, "198.51.100.7", end + WEEK - 10),
        secs(HOUR)
    );
    p.expire(t(end + WEEK + HOUR + 10));
    // Quiet for a full week after the second ban ended: a first offender again.
    let end = end + WEEK - 10 + 4 + HOUR;
    assert_eq!(
        ban_via_logs(&mut p, "198.51.100.7", end + WEEK),
        secs(10 * MIN)
    );
    assert_eq!(p.history_of(ip("198.51.100.7")).unwrap().bans, 1);
}

#[test]
fn the_quiet_period_starts_when_a_long_ban_ends() {
    let mut p = policy_with("[policy]\nban_ladder = [\"2w\", \"4w\"]\nforget_after = \"1w\"\n");
    assert_eq!(ban_via_logs(&mut p, "198.51.100.7", 0), secs(2 * WEEK));
    p.expire(t(2 * WEEK + 10));
    // Three weeks after the first offence but one day after the ban ended:
    // the source is remembered and gets the second step.
    assert_eq!(
        ban_via_logs(&mut p, "198.51.100.7", 2 * WEEK + DAY),
        secs(4 * WEEK)
    );
}

#[test]
fn expire_drops_closed_windows_and_forgotten_history() {
    let mut p = policy();
    offend(&mut p, "198.51.100.1", SipAuth, 0, 3);
    ban_via_logs(&mut p, "198.51.100.2", 0);
    assert_eq!(p.tracked_sources(), 1);
    p.expire(t(11 * MIN));
    assert_eq!(p.tracked_sources(), 0);
    assert!(p.history_of(ip("198.51.100.2")).is_some());
    p.expire(t(11 * MIN + WEEK));
    assert!(p.history_of(ip("198.51.100.2")).is_none());
}

// --- allowlist -----------------------------------------------------------

#[test]
fn an_allowlisted_source_is_reported_and_never_banned() {
    let mut p = policy_with("[allow]\ncidrs = [\"203.0.113.0/24\"]\n");
    for round in 0..3 {
        let decision = offend(&mut p, "203.0.113.9", SipAuth, round * 10, 5);
        let Decision::WouldBan {
            ban,
            allowlisted: Some(entry),
        } = decision
        else {
            panic!("round {round}: {decision:?}");
        };
        assert_eq!(entry.source, AllowSource::Config);
        assert_eq!(entry.net, "203.0.113.0/24".parse().unwrap());
        assert_eq!(
            ban.offence_number, 1,
            "no escalation for what was never banned"
        );
    }
    assert!(p.ban_of(ip("203.0.113.9"), t(100)).is_none());
    assert_eq!(p.ban_count(), 0);
    assert!(p.history_of(ip("203.0.113.9")).is_none());
}

#[test]
fn the_allowlist_wins_over_kernel_and_manual_bans() {
    let mut p = policy();
    p.allowlist_mut().insert(AllowEntry::new(
        "2001:db8:7::/48".parse().unwrap(),
        AllowSource::AsteriskTrunk,
        "pjsip.conf",
    ));
    let d = p.record_kernel_ban(ip("2001:db8:7::5"), RateGuard, t(0));
    assert!(
        d.is_allowlisted(),
        "the daemon lifts the kernel's ban: {d:?}"
    );
    assert_eq!(p.ban_count(), 0);
    let err = p
        .ban("2001:db8:7::5".parse().unwrap(), None, "operator", t(0))
        .unwrap_err();
    assert!(matches!(err, PolicyError::Allowlisted { .. }));
    assert!(err.to_string().contains("asterisk-trunk"), "{err}");
    // A wider range may be banned; the allowlisted part still passes in the kernel.
    assert!(p
        .ban("2001:db8::/32".parse().unwrap(), None, "operator", t(0))
        .is_ok());
}

#[test]
fn allowlisting_a_banned_source_lifts_its_ban() {
    let mut p = policy();
    ban_via_logs(&mut p, "192.0.2.33", 0);
    p.ban("198.51.100.0/24".parse().unwrap(), None, "noisy", t(0))
        .unwrap();
    let lifted = p.allow("192.0.2.0/24".parse().unwrap(), "our office");
    assert_eq!(lifted.len(), 1);
    assert_eq!(lifted[0].target, BanTarget::Addr(ip("192.0.2.33")));
    assert!(p.ban_of(ip("192.0.2.33"), t(10)).is_none());
    assert!(p.ban_of(ip("198.51.100.1"), t(10)).is_some());
    assert!(p.disallow("192.0.2.0/24".parse().unwrap()));
    assert!(!p.disallow("192.0.2.0/24".parse().unwrap()));
}

// --- observe mode --------------------------------------------------------

#[test]
fn observe_mode_decides_everything_and_bans_nothing() {
    let mut p = policy_with("[xdp]\nmode = \"observe\"\n");
    let Decision::WouldBan {
        ban,
        allowlisted: None,
    } = offend(&mut p, "198.51.100.7", SipAuth, 0, 5)
    else {
        panic!("observe mode reports the ban it would make");
    };
    assert_eq!(ban.duration, secs(10 * MIN));
    assert_eq!(p.ban_count(), 0);
    assert!(p.ban_of(ip("198.51.100.7"), t(10)).is_none());
    // While the would-be ban lasts, the source counts as banned.
    assert_eq!(
        offend(&mut p, "198.51.100.7", SipAuth, 10, 10),
        Decision::AlreadyBanned
    );
    // Afterwards it escalates as enforce mode would.
    p.expire(t(11 * MIN));
    let Decision::WouldBan { ban, .. } = offend(&mut p, "198.51.100.7", SipAuth, 11 * MIN, 5)
    else {
        panic!();
    };
    assert_eq!((ban.offence_number, ban.duration), (2, secs(HOUR)));
    let d = p.record_kernel_ban(ip("198.51.100.8"), Scanner, t(0));
    assert!(
        matches!(
            d,
            Decision::WouldBan {
                allowlisted: None,
                ..
            }
        ),
        "{d:?}"
    );
    assert_eq!(p.ban_count(), 0);
}

#[test]
fn a_config_reload_changes_thresholds_and_the_configured_allowlist() {
    let mut p = policy_with("[allow]\ncidrs = [\"192.0.2.0/24\"]\n");
    ban_via_logs(&mut p, "198.51.100.7", 0);
    let config = Config::from_toml(
        "[policy.sip_auth]\nmaxretry = 2\n[allow]\ncidrs = [\"198.51.100.0/24\"]\n",
        "reloaded.toml".as_ref(),
    )
    .unwrap();
    let lifted = p.apply_config(&config);
    assert_eq!(lifted.len(), 1, "the newly allowlisted source is unbanned");
    assert!(
        p.allowlist().contains(ip("192.0.2.1")).is_none(),
        "the old entry is gone"
    );
    assert!(matches!(
        offend(&mut p, "203.0.113.1", SipAuth, 10, 2),
        Decision::Ban(_)
    ));
}

#[test]
fn leaving_observe_mode_bans_for_real() {
    let mut p = policy_with("[xdp]\nmode = \"observe\"\n");
    offend(&mut p, "198.51.100.7", SipAuth, 0, 5);
    p.set_settings(PolicySettings::default());
    assert!(matches!(
        offend(&mut p, "198.51.100.7", SipAuth, 10, 5),
        Decision::Ban(_)
    ));
}

// --- kernel bans ---------------------------------------------------------

#[test]
fn a_kernel_ban_told_twice_counts_once() {
    let mut p = policy();
    let Decision::Ban(order) = p.record_kernel_ban(ip("198.51.100.9"), RateGuard, t(0)) else {
        panic!();
    };
    assert_eq!(order.offence_number, 1);
    // Adopted from the map at a restart, then its ring-buffer event.
    assert_eq!(
        p.record_kernel_ban(ip("198.51.100.9"), RateGuard, t(0)),
        Decision::AlreadyBanned
    );
    assert_eq!(
        p.record_kernel_ban(ip("198.51.100.9"), Scanner, t(5)),
        Decision::AlreadyBanned
    );
    assert_eq!(p.history_of(ip("198.51.100.9")).unwrap().bans, 1);
    assert_eq!(
        p.ban_of(ip("198.51.100.9"), t(1)).unwrap().offence_number,
        1
    );
}

#[test]
fn kernel_bans_join_the_same_history() {
    let mut p = policy();
    // First offence, a rate-guard ban: short (10m, as the ladder's first
    // step), since a UDP source can be forged.
    let Decision::Ban(order) = p.record_kernel_ban(ip("198.51.100.7"), RateGuard, t(0)) else {
        panic!();
    };
    assert_eq!((order.offence_number, order.duration), (1, secs(600)));
    assert_eq!(
        p.ban_of(ip("198.51.100.7"), t(1)).unwrap().origin,
        BanOrigin::KernelRateGuard
    );
    p.expire(t(601));
    // Then the logs: second ban, second step (1h).
    assert_eq!(ban_via_logs(&mut p, "198.51.100.7", HOUR + 10), secs(HOUR));
    p.expire(t(3 * HOUR));
    // Then a scanner signature: third ban, 1d (ladder and scanner_ban agree).
    let Decision::Ban(order) = p.record_kernel_ban(ip("198.51.100.7"), Scanner, t(3 * HOUR)) else {
        panic!();
    };
    assert_eq!((order.offence_number, order.duration), (3, secs(DAY)));
    assert_eq!(
        p.ban_of(ip("198.51.100.7"), t(3 * HOUR)).unwrap().origin,
        BanOrigin::KernelScanner
    );
    p.expire(t(3 * HOUR + DAY));
    // Fourth: the ladder's 1w is longer than rate_ban's 10m.
    let Decision::Ban(order) =
        p.record_kernel_ban(ip("198.51.100.7"), RateGuard, t(3 * HOUR + DAY))
    else {
        panic!();
    };
    assert_eq!((order.offence_number, order.duration), (4, secs(WEEK)));
}

#[test]
fn a_permanent_kernel_ban_stays_permanent() {
    let mut p = policy_with("[xdp]\nscanner_ban = \"permanent\"\n");
    let Decision::Ban(order) = p.record_kernel_ban(ip("198.51.100.7"), Scanner, t(0)) else {
        panic!();
    };
    assert_eq!(order.duration, None);
    assert_eq!(order.expires_at(), None);
    assert_eq!(p.ban_of(ip("198.51.100.7"), t(0)).unwrap().expires, None);
}

// --- manual bans ---------------------------------------------------------

#[test]
fn manual_bans_of_addresses_and_ranges() {
    let mut p = policy();
    let timed = p
        .ban(
            "198.51.100.7".parse().unwrap(),
            secs(HOUR),
            "seen in CDRs",
            t(0),
        )
        .unwrap();
    assert_eq!(timed.origin, BanOrigin::Manual);
    assert_eq!(timed.class, Manual);
    assert_eq!(timed.expires, Some(1_700_000_000 + HOUR));
    let range = p
        .ban(
            "203.0.113.0/24".parse().unwrap(),
            None,
            "hosting range",
            t(0),
        )
        .unwrap();
    assert_eq!(range.expires, None);
    // Offences from inside a banned range add nothing.
    assert_eq!(
        offend(&mut p, "203.0.113.77", SipAuth, 0, 10),
        Decision::AlreadyBanned
    );
    assert_eq!(
        p.ban_of(ip("203.0.113.77"), t(0)).unwrap().target,
        range.target
    );
    assert!(p.ban_of(ip("203.0.114.1"), t(0)).is_none());
    // Timed bans expire, permanent ones do not.
    let expired = p.expire(t(HOUR));
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].target, timed.target);
    assert!(p.unban("203.0.113.0/24".parse().unwrap()).is_some());
    assert!(p.ban_of(ip("203.0.113.77"), t(HOUR)).is_none());
    assert!(matches!(
        p.ban("192.0.2.1".parse().unwrap(), secs(0), "", t(0)),
        Err(PolicyError::ZeroDuration)
    ));
}

#[test]
fn unbanning_an_address_forgives_it() {
    let mut p = policy();
    ban_via_logs(&mut p, "198.51.100.7", 0);
    p.expire(t(HOUR));
    ban_via_logs(&mut p, "198.51.100.7", HOUR);
    offend(&mut p, "198.51.100.7", Ssh, HOUR + 10, 3);
    let lifted = p.unban("198.51.100.7".parse().unwrap()).unwrap();
    assert_eq!(lifted.offence_number, 2);
    assert!(p.history_of(ip("198.51.100.7")).is_none());
    assert_eq!(
        p.offence(ip("198.51.100.7"), Ssh, t(HOUR + 20)),
        Decision::Pending {
            count: 1,
            threshold: 5
        }
    );
    assert_eq!(
        ban_via_logs(&mut p, "198.51.100.7", HOUR + 30),
        secs(10 * MIN)
    );
}

// --- bounded memory ------------------------------------------------------

#[test]
fn a_spoofed_source_flood_keeps_memory_bounded() {
    let mut p = policy_with("[policy]\nmax_tracked_sources = 1000\n");
    for i in 0..50_000u32 {
        let [_, b, c, d] = i.to_be_bytes();
        p.offence(IpAddr::from([10, b, c, d]), SipProbe, t(u64::from(i) / 100));
    }
    assert_eq!(p.tracked_sources(), 1000);
    assert_eq!(p.evicted_sources(), 49_000);
    // A real attacker still gets banned if its failures come close together.
    assert!(matches!(
        offend(&mut p, "198.51.100.7", SipAuth, 500, 5),
        Decision::Ban(_)
    ));
}

// --- persistence ---------------------------------------------------------

#[test]
fn snapshot_and_restore_keep_bans_history_and_manual_allows() {
    let mut p = policy();
    ban_via_logs(&mut p, "198.51.100.7", 0);
    p.record_kernel_ban(ip("2001:db8:bad::1"), Scanner, t(0));
    p.ban("203.0.113.0/24".parse().unwrap(), None, "range", t(0))
        .unwrap();
    p.allow("192.0.2.10/32".parse().unwrap(), "monitoring");
    let saved = p.snapshot(t(60));
    assert_eq!(saved.bans.len(), 3);
    assert_eq!(saved.history.len(), 2);
    assert_eq!(saved.allow.len(), 1);

    let mut restored = policy();
    restored.restore(&saved, t(120));
    assert_eq!(restored.snapshot(t(60)), saved);
    assert!(restored.allowlist().contains(ip("192.0.2.10")).is_some());
    // Escalation continues where it stopped.
    restored.expire(t(HOUR));
    assert_eq!(
        ban_via_logs(&mut restored, "198.51.100.7", HOUR),
        secs(HOUR)
    );
}

#[test]
fn restore_skips_what_ran_out_meanwhile() {
    let mut p = policy();
    ban_via_logs(&mut p, "198.51.100.7", 0);
    p.ban("203.0.113.0/24".parse().unwrap(), None, "range", t(0))
        .unwrap();
    let saved = p.snapshot(t(10));
    let mut later = policy();
    later.restore(&saved, t(2 * WEEK));
    assert_eq!(later.ban_count(), 1, "the 10m ban expired while down");
    assert!(
        later.history_of(ip("198.51.100.7")).is_none(),
        "and its history decayed"
    );
}

// --- automatic allowlist discovery ---------------------------------------

mod discovery {
    use std::{io, net::IpAddr, path::PathBuf};

    use sipshield::{
        config::AllowSection,
        policy::{
            discover::{
                asterisk_trunks, default_gateways, discover_with, ssh_connections, DiscoverError,
            },
            AllowEntry, AllowSource, Allowlist, Policy, PolicySettings,
        },
    };

    use super::ip;

    fn fixtures(dir: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(dir)
    }

    fn fake_dns(name: &str) -> io::Result<Vec<IpAddr>> {
        match name {
            "sip.provider-a.example" => Ok(vec![ip("192.0.2.80")]),
            "trunk.provider-d.example" => Ok(vec![ip("192.0.2.81"), ip("2001:db8:d::1")]),
            "sip.provider-e.example" => Ok(vec![ip("192.0.2.82")]),
            "sip2.provider-w.example" => Ok(vec![ip("192.0.2.83")]),
            _ => Err(io::Error::new(io::ErrorKind::NotFound, "no such host")),
        }
    }

    fn nets(entries: &[AllowEntry]) -> Vec<String> {
        let mut nets: Vec<String> = entries.iter().map(|e| e.net.to_string()).collect();
        nets.sort();
        nets
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn default_gateways_from_proc_net() {
        let found = default_gateways(&fixtures("proc")).unwrap();
        assert_eq!(
            found,
            [
                ("eth0".to_string(), ip("203.0.113.1")),
                ("eth1".to_string(), ip("198.51.100.254")),
                ("eth0".to_string(), ip("fe80::1")),
            ]
        );
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn ssh_connections_from_proc_net() {
        let found = ssh_connections(&fixtures("proc"), &[22]).unwrap();
        let peers: Vec<IpAddr> = found.iter().map(|(ip, _)| *ip).collect();
        assert_eq!(
            peers,
            [ip("192.0.2.44"), ip("2001:db8:77::9"), ip("198.51.100.23")]
        );
        assert_eq!(found[0], (ip("192.0.2.44"), 54321));
        let found = ssh_connections(&fixtures("proc"), &[22, 2222]).unwrap();
        assert!(found.iter().any(|(ip_, _)| *ip_ == ip("192.0.2.46")));
    }

    #[test]
    fn missing_proc_tables_read_as_empty() {
        let empty = tempfile::tempdir().unwrap();
        assert!(default_gateways(empty.path()).unwrap().is_empty());
        assert!(ssh_connections(empty.path(), &[22]).unwrap().is_empty());
    }

    #[test]
    fn trunk_hosts_from_asterisk_config() {
        let trunks = asterisk_trunks(&fixtures("asterisk-trunks"), &fake_dns);
        let (entries, warnings) = (trunks.entries, trunks.warnings);
        assert_eq!(
            nets(&entries),
            [
                "192.0.2.80/32",     // sip.conf register => sip.provider-a.example
                "192.0.2.81/32",     // pjsip aor contact trunk.provider-d.example
                "192.0.2.82/32",     // pjsip registration server_uri
                "192.0.2.83/32",     // wizard remote_hosts name
                "198.51.100.20/32",  // sip.conf host=
                "198.51.100.21/32",  // sip.conf host= with a comment
                "198.51.100.40/32",  // identify match list
                "198.51.100.64/26",  // identify match with a netmask, via a template
                "198.51.100.77/32",  // aor contact in an included file
                "198.51.100.90/32",  // wizard remote_hosts address
                "2001:db8:c::1/128", // identify match [v6]:port
                "2001:db8:d::1/128", // contact name with an AAAA record
                "203.0.113.0/28",    // identify match CIDR
                "203.0.113.50/32",   // sip.conf register => tcp://...
            ]
        );
        assert!(entries
            .iter()
            .all(|e| e.source == AllowSource::AsteriskTrunk));
        let note = &entries
            .iter()
            .find(|e| e.net.to_string() == "198.51.100.77/32")
            .unwrap()
            .note;
        assert!(
            note.starts_with("pjsip.trunks.conf:3 [provider-g] contact="),
            "{note}"
        );
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("gone.provider-h.example"),
            "{warnings:?}"
        );
    }

    #[test]
    fn trunk_networks_wider_than_a_site_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("pjsip.conf"),
            "[trunk-any]\ntype=identify\nendpoint=trunk\nmatch=0.0.0.0/0\nmatch=10.0.0.0/8\n\
             match=2001:db8::/32\nmatch=198.51.0.0/16\nmatch=2001:db8:1::/48\n\
             match=0.0.0.0/0.0.0.0,192.0.2.7\nmatch=::ffff:0.0.0.0/96\n",
        )
        .unwrap();
        let trunks = asterisk_trunks(dir.path(), &fake_dns);
        assert_eq!(
            nets(&trunks.entries),
            ["192.0.2.7/32", "198.51.0.0/16", "2001:db8:1::/48"]
        );
        assert_eq!(trunks.refused.len(), 5, "{:?}", trunks.refused);
        assert!(
            trunks.refused[0].contains("0.0.0.0/0") && trunks.refused[0].contains("wider than /16")
        );
        assert!(trunks.warnings.is_empty(), "{:?}", trunks.warnings);

        // A refusal is not a failure: the source is complete, its entries
        // replace the old ones, and the Internet is not allowlisted.
        let section = AllowSection {
            asterisk_config_dir: dir.path().to_path_buf(),
            ..AllowSection::default()
        };
        let found = discover_with(&section, &fixtures("proc"), host, &fake_dns);
        assert!(!found.incomplete.contains(&AllowSource::AsteriskTrunk));
        assert!(found.warnings.iter().any(|w| w.contains("wider than /16")));
        let mut list = Allowlist::new();
        found.apply(&mut list);
        assert!(list.contains(ip("8.8.8.8")).is_none());
        assert!(list.contains(ip("10.1.2.3")).is_none());
        assert!(list.contains(ip("198.51.7.7")).is_some());
    }

    #[test]
    fn no_asterisk_config_means_no_trunks() {
        let empty = tempfile::tempdir().unwrap();
        let trunks = asterisk_trunks(empty.path(), &fake_dns);
        assert!(trunks.entries.is_empty() && trunks.warnings.is_empty());
    }

    fn section() -> AllowSection {
        AllowSection {
            asterisk_config_dir: fixtures("asterisk-trunks"),
            ..AllowSection::default()
        }
    }

    fn host() -> Result<Vec<(String, IpAddr)>, DiscoverError> {
        Ok(vec![("eth0".to_string(), ip("203.0.113.5"))])
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn discovery_labels_each_source_and_respects_opt_outs() {
        let found = discover_with(&section(), &fixtures("proc"), host, &fake_dns);
        let source_of = |addr: &str| {
            let mut list = Allowlist::new();
            found.apply(&mut list);
            list.contains(ip(addr)).map(|e| e.source)
        };
        assert_eq!(source_of("203.0.113.5"), Some(AllowSource::HostAddress));
        assert_eq!(source_of("127.0.0.1"), Some(AllowSource::HostAddress));
        assert_eq!(source_of("203.0.113.1"), Some(AllowSource::Gateway));
        assert_eq!(
            source_of("192.0.2.44"),
            None,
            "an established connection to sshd alone proves nothing"
        );
        assert!(found
            .ssh_connections
            .as_ref()
            .unwrap()
            .contains(&(ip("192.0.2.44"), 54321)));
        assert_eq!(source_of("198.51.100.20"), Some(AllowSource::AsteriskTrunk));
        assert_eq!(
            found.incomplete,
            [AllowSource::AsteriskTrunk],
            "one trunk name did not resolve"
        );

        let opted_out = AllowSection {
            host_addresses: false,
            default_gateways: false,
            ssh_sessions: false,
            asterisk_trunks: false,
            ..section()
        };
        let found = discover_with(&opted_out, &fixtures("proc"), host, &fake_dns);
        assert!(found.entries.is_empty() && found.warnings.is_empty());
        assert!(found.ssh_connections.is_none());
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn rediscovery_replaces_complete_sources_and_keeps_incomplete_ones() {
        let mut list = Allowlist::new();
        list.insert(AllowEntry::new(
            "192.0.2.97/32".parse().unwrap(),
            AllowSource::Gateway,
            "old gateway",
        ));
        list.insert(AllowEntry::new(
            "192.0.2.98/32".parse().unwrap(),
            AllowSource::AsteriskTrunk,
            "resolved earlier",
        ));
        list.insert(AllowEntry::new(
            "10.0.0.0/8".parse().unwrap(),
            AllowSource::Config,
            "config",
        ));
        discover_with(&section(), &fixtures("proc"), host, &fake_dns).apply(&mut list);
        assert!(
            list.contains(ip("192.0.2.97")).is_none(),
            "a gateway that went is no longer allowed"
        );
        assert!(
            list.contains(ip("192.0.2.98")).is_some(),
            "a DNS failure does not drop trunks"
        );
        assert!(
            list.contains(ip("10.1.1.1")).is_some(),
            "configured entries are untouched"
        );
        // Turning a source off removes what it had found.
        let off = AllowSection {
            default_gateways: false,
            ..section()
        };
        discover_with(&off, &fixtures("proc"), host, &fake_dns).apply(&mut list);
        assert!(!list.entries().any(|e| e.source == AllowSource::Gateway));
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn an_ssh_session_is_allowlisted_from_its_accepted_line_while_its_connection_is_open() {
        let mut policy = Policy::new(PolicySettings::default(), Allowlist::new());
        let t0 = std::time::SystemTime::now();
        let later = |s: u64| t0 + std::time::Duration::from_secs(s);
        let found = discover_with(&section(), &fixtures("proc"), host, &fake_dns);
        policy.apply_discovery(&found, t0);
        assert!(policy.allowlist().contains(ip("192.0.2.44")).is_none());

        // Logged in on the connection the table shows (port 54321).
        let (_, changed) = policy.ssh_accepted(ip("192.0.2.44"), 54321, "publickey", t0);
        assert!(changed);
        let entry = policy.allowlist().contains(ip("192.0.2.44")).unwrap();
        assert_eq!(entry.source, AllowSource::SshSession);
        // Open for an hour: stays.
        for m in 1..=60 {
            policy.apply_discovery(&found, later(60 * m));
        }
        assert!(policy.allowlist().contains(ip("192.0.2.44")).is_some());
        // Gone from the table: stays for the grace (2m), then ends.
        let mut closed = found.clone();
        closed.ssh_connections = Some(Vec::new());
        policy.apply_discovery(&closed, later(3600 + 100));
        assert!(policy.allowlist().contains(ip("192.0.2.44")).is_some());
        policy.apply_discovery(&closed, later(3600 + 400));
        assert!(policy.allowlist().contains(ip("192.0.2.44")).is_none());

        // Saved and restored: a session comes back with the state file.
        policy.ssh_accepted(ip("192.0.2.44"), 54321, "password", later(4000));
        let saved = policy.snapshot(later(4001));
        let mut again = Policy::new(PolicySettings::default(), Allowlist::new());
        again.restore(&saved, later(4005));
        assert!(again.allowlist().contains(ip("192.0.2.44")).is_some());
        again.apply_discovery(&found, later(4006));
        assert!(again.allowlist().contains(ip("192.0.2.44")).is_some());
    }
}

#[test]
fn the_newest_bans_come_without_sorting_all_of_them_also_after_a_restore() {
    let mut p = policy();
    for i in 0..200u32 {
        let ip = IpAddr::from([198, 51, (i / 250) as u8, (i % 250) as u8 + 1]);
        p.record_kernel_ban(ip, RateGuard, t(u64::from(i)));
    }
    let newest: Vec<String> = p
        .newest_bans(3, t(300))
        .iter()
        .map(|b| b.target.to_string())
        .collect();
    assert_eq!(newest, ["198.51.0.200", "198.51.0.199", "198.51.0.198"]);
    let mut saved = p.snapshot(t(300));
    saved.bans.reverse();
    let mut back = policy();
    back.restore(&saved, t(300));
    let newest: Vec<String> = back
        .newest_bans(2, t(300))
        .iter()
        .map(|b| b.target.to_string())
        .collect();
    assert_eq!(newest, ["198.51.0.200", "198.51.0.199"]);
    // Lifted ones are skipped.
    back.unban("198.51.0.200".parse().unwrap());
    assert_eq!(
        back.newest_bans(1, t(300))[0].target.to_string(),
        "198.51.0.199"
    );
}

// --- remote agents (known-good sources) ----------------------------------

#[test]
fn a_source_that_authenticated_gets_a_higher_threshold_and_a_short_first_ban() {
    let mut p = policy();
    let phone = "198.51.100.50";
    // Asterisk's SuccessfulAuth named it (its password worked).
    assert!(p.known_good(ip(phone), t(0)).is_some());
    assert!(p.is_known_good(ip(phone), t(10)));
    // Its password went stale: 5 failures ban an attacker, not it...
    assert!(matches!(
        offend(&mut p, phone, SipAuth, 10, 19),
        Decision::Pending {
            count: 19,
            threshold: 20
        }
    ));
    // ...the 20th does (factor 4), for 5 minutes, not the ladder's 10.
    let Decision::Ban(order) = p.offence(ip(phone), SipAuth, t(29)) else {
        panic!("the 20th failure bans");
    };
    assert_eq!(order.duration, secs(5 * MIN));
    assert!(order.reason.contains("known-good"), "{}", order.reason);
    // An unknown source: the usual threshold and first ban.
    assert_eq!(ban_via_logs(&mut p, "198.51.100.51", 100), secs(10 * MIN));
}

#[test]
fn known_good_lasts_the_trust_window_and_is_stored() {
    let mut p = policy_with("[policy]\nknown_good_for = \"1h\"\n");
    let phone = ip("2001:db8:ca11::5");
    assert!(p.known_good(phone, t(0)).is_some());
    // Re-registrations within ten minutes do not rewrite it.
    assert!(p.known_good(phone, t(60)).is_none());
    assert!(p.known_good(phone, t(700)).is_some());
    assert!(p.is_known_good(phone, t(700 + HOUR - 1)));
    assert!(!p.is_known_good(phone, t(700 + HOUR)));
    let changes = p.take_changes();
    assert!(changes.iter().any(|c| matches!(
        c,
        sipshield::state::db::Change::KnownGood { addr, until: Some(_) } if *addr == phone
    )));
    // A restart keeps it.
    let saved = p.snapshot(t(800));
    let mut again = policy_with("[policy]\nknown_good_for = \"1h\"\n");
    again.restore(&saved, t(900));
    assert!(again.is_known_good(phone, t(900)));
    assert_eq!(again.known_good_sources(t(900)).len(), 1);
    // It ends: gone from policy, and the database is told.
    again.expire(t(700 + HOUR));
    assert!(again.known_good_sources(t(700 + HOUR)).is_empty());
    assert!(again.take_changes().iter().any(|c| matches!(
        c,
        sipshield::state::db::Change::KnownGood { until: None, .. }
    )));
    // Turned off: nobody becomes known good.
    let mut off = policy_with("[policy]\nknown_good_for = \"0s\"\n");
    assert!(off.known_good(phone, t(0)).is_none());
    assert!(!off.is_known_good(phone, t(1)));
}
