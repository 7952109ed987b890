//! The log parsers and `sipshield parse`, specified by example.
//!
//! Fixtures in `tests/fixtures/logs/` hold lines in the formats Asterisk and
//! OpenSSH write; each `X.log` has an `X.expected` listing, per failure line,
//! `line source event ip`. Lines not listed must produce nothing.

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sipshield::logs::{
    parse_line, AsteriskParser, FailureKind, KnownGood, LogSource, Parsed, SshLogin, SshdParser,
};
use sipshield::offence::OffenceClass;

const FIXTURES: [&str; 6] = [
    "asterisk-messages",
    "asterisk-security",
    "asterisk-syslog",
    "auth",
    "injection",
    "not-failures",
];

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/logs")
        .join(name)
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// What the line charges: (event, address).
fn charged(line: &str) -> Option<(&'static str, String)> {
    match parse_line(line)? {
        Parsed::Failure(failure) => Some((failure.kind.as_str(), failure.ip.to_string())),
        Parsed::KnownGood(_) => None,
    }
}

fn asterisk(message: &str) -> String {
    format!("[2024-03-05 10:21:46] NOTICE[1290] chan_sip.c: {message}")
}

fn security(fields: &str) -> String {
    format!("[2024-03-05 10:23:01] SECURITY[1301] res_security_log.c: {fields}")
}

fn sshd(message: &str) -> String {
    format!("Mar  5 10:30:01 pbx sshd[4001]: {message}")
}

fn expected(name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(fixture(&format!("{name}.expected"))).unwrap_or_default();
    text.lines().map(str::to_owned).collect()
}

#[test]
fn every_fixture_line_gives_exactly_the_expected_failures() {
    for name in FIXTURES {
        let log = std::fs::read_to_string(fixture(&format!("{name}.log"))).unwrap();
        let got: Vec<String> = log
            .lines()
            .enumerate()
            .filter_map(|(index, line)| match parse_line(line)? {
                Parsed::Failure(f) => {
                    Some(format!("{} {} {} {}", index + 1, f.source, f.kind, f.ip))
                }
                Parsed::KnownGood(_) => None,
            })
            .collect();
        assert_eq!(got, expected(name), "{name}.log");
    }
}

#[test]
fn the_innocent_address_in_attacker_fields_is_never_charged() {
    let innocent = ip("9.9.9.9");
    for name in FIXTURES {
        let log = std::fs::read_to_string(fixture(&format!("{name}.log"))).unwrap();
        for line in log.lines() {
            assert_ne!(parse_line(line).map(|p| p.ip()), Some(innocent), "{line}");
        }
    }
}

#[test]
fn chan_sip_registration_failure_reasons() {
    let cases = [
        ("Wrong password", "sip-wrong-password"),
        ("No matching peer found", "sip-unknown-peer"),
        ("Username/auth name mismatch", "sip-auth-name-mismatch"),
        ("Not a local domain", "sip-not-local-domain"),
        ("Device does not match ACL", "sip-acl-denied"),
        ("ACL error (permit/deny)", "sip-acl-denied"),
        ("Peer is not supposed to register", "sip-peer-not-dynamic"),
        (
            "Peer is attempting to register but host is not dynamic",
            "sip-peer-not-dynamic",
        ),
        (
            "Device not configured to use this transport type",
            "sip-wrong-transport",
        ),
    ];
    for (reason, event) in cases {
        let line = asterisk(&format!(
            "Registration from '\"100\"<sip:100@192.0.2.10>' failed for '203.0.113.5:5060' - {reason}"
        ));
        assert_eq!(
            charged(&line),
            Some((event, "203.0.113.5".into())),
            "{reason}"
        );
    }
}

#[test]
fn chan_sip_registration_address_with_or_without_port_and_ipv6() {
    let reg = |addr: &str| {
        asterisk(&format!(
            "Registration from '<sip:1@h>' failed for '{addr}' - Wrong password"
        ))
    };
    assert_eq!(
        charged(&reg("203.0.113.5:5060")),
        Some(("sip-wrong-password", "203.0.113.5".into()))
    );
    assert_eq!(
        charged(&reg("203.0.113.5")),
        Some(("sip-wrong-password", "203.0.113.5".into()))
    );
    assert_eq!(
        charged(&reg("[2001:db8:0::5]:5060")),
        Some(("sip-wrong-password", "2001:db8::5".into()))
    );
    assert_eq!(charged(&reg("203.0.113.5:5060:1")), None);
}

#[test]
fn registration_failures_that_are_the_servers_problem_charge_nobody() {
    for reason in [
        "RTP initialization failed",
        "Unknown failure",
        "Something new",
    ] {
        let line = asterisk(&format!(
            "Registration from '<sip:1@h>' failed for '203.0.113.5' - {reason}"
        ));
        assert_eq!(charged(&line), None, "{reason}");
    }
}

#[test]
fn calls_to_unknown_extensions() {
    let tail = "to extension '011972' rejected because extension not found in context 'default'.";
    let cases = [
        format!("[d] NOTICE[1] chan_sip.c: Call from '' (203.0.113.1:5060) {tail}"),
        format!("[d] NOTICE[1] chan_sip.c: Call from 'guest' ([2001:db8::2]:5062) {tail}"),
        format!("[d] NOTICE[1] res_pjsip_session.c: Call from 'anonymous' (UDP:203.0.113.3:5071) {tail}"),
        format!("[d] NOTICE[1] res_pjsip_session.c:  PJSIP/anonymous-00000001: Call (TCP:203.0.113.4:40000) {tail}"),
        format!("[d] NOTICE[1] res_pjsip_session.c: Call (UDP:203.0.113.5:5060) {tail}"),
        format!("[d] NOTICE[1] res_pjsip_session.c: endpoint-9: Call (UDP6:[2001:db8::6]:5060) {tail}"),
    ];
    let want = [
        "203.0.113.1",
        "2001:db8::2",
        "203.0.113.3",
        "203.0.113.4",
        "203.0.113.5",
        "2001:db8::6",
    ];
    for (line, want) in cases.iter().zip(want) {
        assert_eq!(
            charged(line),
            Some(("sip-unknown-extension", want.into())),
            "{line}"
        );
    }
    let matched =
        "[d] NOTICE[1] chan_sip.c: Call from '' (203.0.113.1:5060) to extension '100' accepted";
    assert_eq!(charged(matched), None);
}

#[test]
fn pjsip_distributor_reasons() {
    let cases = [
        ("No matching endpoint found", "pjsip-unknown-endpoint"),
        (
            "No matching endpoint found after 5 tries in 2.003 ms",
            "pjsip-unknown-endpoint",
        ),
        ("Not match Endpoint ACL", "pjsip-acl-denied"),
        ("Not match Endpoint Contact ACL", "pjsip-contact-acl-denied"),
        ("Failed to authenticate", "pjsip-auth-failed"),
        ("Error to authenticate", "pjsip-auth-failed"),
    ];
    for method in ["'REGISTER' ", "'INVITE' ", ""] {
        for (reason, event) in cases {
            let line = format!(
                "[d] NOTICE[1] res_pjsip/pjsip_distributor.c: Request {method}from '<sip:1@h>' failed for '198.51.100.30:5060' (callid: abc) - {reason}"
            );
            assert_eq!(
                charged(&line),
                Some((event, "198.51.100.30".into())),
                "{line}"
            );
        }
    }
    let other = "[d] NOTICE[1] res_pjsip/pjsip_distributor.c: Request 'INVITE' from '<sip:1@h>' failed for '198.51.100.30:5060' (callid: abc) - Something else";
    assert_eq!(charged(other), None);
}

#[test]
fn pjsip_distributor_with_a_fake_address_in_from_or_call_id_charges_the_sender() {
    // Asterisk's log_failed_request prints From with pjsip_name_addr_print
    // (`"display" <uri>`, the URI without blanks) and the Call-ID raw: a
    // fake tail in either is told apart by where it sits.
    let from_forged = "[d] NOTICE[1] res_pjsip/pjsip_distributor.c: Request 'INVITE' from '\"x' failed for '9.9.9.9:5060' (callid: y\" <sip:1@h>' failed for '203.0.113.1:5060' (callid: c) - Failed to authenticate";
    let callid_forged = "[d] NOTICE[1] res_pjsip/pjsip_distributor.c: Request 'INVITE' from '<sip:1@h>' failed for '203.0.113.1:5060' (callid: c' failed for '9.9.9.9:5060' (callid: d) - Failed to authenticate";
    // The issue's example: a guesser's Call-ID naming someone else.
    let issue_example = "[d] NOTICE[1] res_pjsip/pjsip_distributor.c: Request 'REGISTER' from '\"100\" <sip:100@pbx>' failed for '203.0.113.1:5060' (callid: ' failed for '9.9.9.9:5060' (callid: x) - Failed to authenticate";
    for line in [from_forged, callid_forged, issue_example] {
        assert_eq!(
            charged(line),
            Some(("pjsip-auth-failed", "203.0.113.1".into())),
            "{line}"
        );
    }
    // A URI parameter with a quoted value may hold blanks and the tail.
    let uri_param = "[d] NOTICE[1] res_pjsip/pjsip_distributor.c: Request 'INVITE' from '<sip:1@h;x=\"a' failed for '9.9.9.9:5060' (callid: z\">' failed for '203.0.113.1:5060' (callid: c) - Failed to authenticate";
    assert_eq!(
        charged(uri_param),
        Some(("pjsip-auth-failed", "203.0.113.1".into()))
    );
    // What sipsak's bare From and a plain display name give (the lab's
    // PBX writes the header as it came).
    for from in [
        "sip:sipsak@10.0.0.1:5060",
        "Alice <sip:a@h>",
        "\"100\"<sip:100@1.1.1.1>",
    ] {
        let line = format!("[d] NOTICE[1] res_pjsip/pjsip_distributor.c: Request 'REGISTER' from '{from}' failed for '203.0.113.1:5060' (callid: c) - Failed to authenticate");
        assert_eq!(
            charged(&line),
            Some(("pjsip-auth-failed", "203.0.113.1".into())),
            "{line}"
        );
    }
    // A display ending in a backslash would have escaped its closing quote:
    // `"\"` cannot end a From pjsip printed, so only the real reading is left
    // (proptest found it: parse_properties.rs).
    let escaped = "[d] NOTICE[1] res_pjsip/pjsip_distributor.c: Request 'INVITE' from '\"\\\" <s:x>' failed for '9.9.9.9:5060' (callid: j\" <sip:1@h>' failed for '203.0.113.1:5060' (callid: c) - Failed to authenticate";
    assert_eq!(
        charged(escaped),
        Some(("pjsip-auth-failed", "203.0.113.1".into()))
    );
    // Text that is no address in a fake tail is the attacker's.
    let empty = "[d] NOTICE[1] res_pjsip/pjsip_distributor.c: Request 'REGISTER' from '\"\\\" <sip:100@9.9.9.9>' failed for '' (callid: x) - Failed to authenticate\" <sip:100@192.0.2.10>' failed for '203.0.113.1:5060' (callid: abc@host) - Failed to authenticate";
    assert_eq!(
        charged(empty),
        Some(("pjsip-auth-failed", "203.0.113.1".into()))
    );
    // Padding From and Call-ID to pjsip's 255-byte buffers hides nothing.
    let pad = "a".repeat(250);
    let method = "X".repeat(250);
    let padded = format!("[2024-03-05 10:21:56] NOTICE[1301] res_pjsip/pjsip_distributor.c: Request '{method}' from '<sip:{pad}@h>' failed for '203.0.113.1:5060' (callid: {pad}) - Failed to authenticate after 3 tries in 2.003 ms");
    assert!(padded.len() > 900);
    assert_eq!(
        charged(&padded),
        Some(("pjsip-auth-failed", "203.0.113.1".into()))
    );
    // Forging your own address changes nothing.
    let own = callid_forged.replace("9.9.9.9", "203.0.113.1");
    assert_eq!(
        charged(&own),
        Some(("pjsip-auth-failed", "203.0.113.1".into()))
    );
}

const COMMON: &str = r#"EventTV="2024-03-05T10:23:01.123+0000",Severity="Error",Service="PJSIP",EventVersion="1",AccountID="100",SessionID="abc",LocalAddress="IPV4/UDP/192.0.2.10/5060",RemoteAddress="IPV4/UDP/203.0.113.20/5060""#;

#[test]
fn security_events_charge_the_remote_address_never_the_local_one() {
    let cases = [
        ("InvalidAccountID", "security-invalid-account-id"),
        ("InvalidPassword", "security-invalid-password"),
        (
            "ChallengeResponseFailed",
            "security-challenge-response-failed",
        ),
        ("FailedACL", "security-failed-acl"),
        ("AuthMethodNotAllowed", "security-auth-method-not-allowed"),
        ("InvalidTransport", "security-invalid-transport"),
        ("UnexpectedAddress", "security-unexpected-address"),
        ("RequestNotAllowed", "security-request-not-allowed"),
        ("RequestNotSupported", "security-request-not-supported"),
        ("RequestBadFormat", "security-request-bad-format"),
    ];
    for (event, kind) in cases {
        let line = security(&format!("SecurityEvent=\"{event}\",{COMMON}"));
        assert_eq!(
            charged(&line),
            Some((kind, "203.0.113.20".into())),
            "{event}"
        );
    }
    let v6 = security(&format!(
        "SecurityEvent=\"InvalidPassword\",{}",
        COMMON
            .replace("IPV4/UDP/192.0.2.10/5060", "IPV6/UDP/2001:db8::10/5060")
            .replace(
                "IPV4/UDP/203.0.113.20/5060",
                "IPV6/UDP/2001:db8:bad:0::20/5060"
            )
    ));
    assert_eq!(
        charged(&v6),
        Some(("security-invalid-password", "2001:db8:bad::20".into()))
    );
}

#[test]
fn security_events_that_are_not_failures() {
    for event in [
        "ChallengeSent",
        "SessionLimit",
        "MemoryLimit",
        "LoadAverageLimit",
        "NoSuchEvent",
    ] {
        let line = security(&format!("SecurityEvent=\"{event}\",{COMMON}"));
        assert_eq!(parse_line(&line), None, "{event}");
    }
    let success = security(&format!(
        "SecurityEvent=\"SuccessfulAuth\",{COMMON},UsingPassword=\"1\""
    ));
    assert_eq!(
        parse_line(&success),
        Some(Parsed::KnownGood(KnownGood {
            source: LogSource::Asterisk,
            ip: ip("203.0.113.20"),
            session: None,
        }))
    );
}

#[test]
fn ami_security_events_count_as_ami_failures() {
    let ami = COMMON.replace("PJSIP", "AMI");
    let cases = [
        ("InvalidAccountID", Some("ami-unknown-user")),
        ("InvalidPassword", Some("ami-auth-failed")),
        ("ChallengeResponseFailed", Some("ami-auth-failed")),
        ("FailedACL", Some("ami-acl-denied")),
        ("RequestNotAllowed", None),
        ("SessionLimit", None),
    ];
    for (event, kind) in cases {
        let line = security(&format!("SecurityEvent=\"{event}\",{ami}"));
        assert_eq!(charged(&line).map(|(k, _)| k), kind, "{event}");
    }
    assert_eq!(FailureKind::AmiUnknownUser.class(), OffenceClass::Ami);
}

#[test]
fn security_event_fields_injected_through_account_id_or_session_id() {
    let forged_field = COMMON.replace(
        r#"AccountID="100""#,
        r#"AccountID="x",RemoteAddress="IPV4/UDP/9.9.9.9/5060""#,
    );
    // The fake field sits where no reading of InvalidPassword's field order
    // can put RemoteAddress (it would need SessionID and LocalAddress
    // before it): the real address is charged.
    assert_eq!(
        charged(&security(&format!(
            "SecurityEvent=\"InvalidPassword\",{forged_field}"
        ))),
        Some(("security-invalid-password", "203.0.113.20".into()))
    );

    let quoted_text = COMMON.replace(
        r#"SessionID="abc""#,
        r#"SessionID="a",b,"RemoteAddress="IPV4/UDP/9.9.9.9/5060"""#,
    );
    assert_eq!(
        charged(&security(&format!(
            "SecurityEvent=\"InvalidPassword\",{quoted_text}"
        ))),
        Some(("security-invalid-password", "203.0.113.20".into()))
    );

    // After the real address, in the attacker's ReceivedHash: part of that value.
    let after = format!("SecurityEvent=\"InvalidPassword\",{COMMON},ReceivedHash=\"x\",RemoteAddress=\"IPV4/UDP/9.9.9.9/5060\"");
    assert_eq!(
        charged(&security(&after)),
        Some(("security-invalid-password", "203.0.113.20".into()))
    );
    let garbage = format!(
        "SecurityEvent=\"InvalidPassword\",{COMMON},ReceivedHash=\"x\",RemoteAddress=\"nonsense\""
    );
    assert_eq!(
        charged(&security(&garbage)),
        Some(("security-invalid-password", "203.0.113.20".into()))
    );

    // Two readings truly remain: a whole fake middle in AccountID, then a
    // ReceivedHash that swallows the real one. Both fit the field order.
    let two = COMMON.replace(
        r#"AccountID="100""#,
        r#"AccountID="100",SessionID="s",LocalAddress="IPV4/UDP/192.0.2.10/5060",RemoteAddress="IPV4/UDP/9.9.9.9/5060",ReceivedHash="x""#,
    );
    assert_eq!(
        charged(&security(&format!(
            "SecurityEvent=\"InvalidPassword\",{two}"
        ))),
        None
    );
    // The same trick in an event with no attacker field after the address
    // leaves one reading: InvalidAccountID charges the real sender.
    let one = COMMON.replace(
        r#"AccountID="100""#,
        r#"AccountID="100",SessionID="s",LocalAddress="IPV4/UDP/192.0.2.10/5060",RemoteAddress="IPV4/UDP/9.9.9.9/5060",Module="x""#,
    );
    assert_eq!(
        charged(&security(&format!(
            "SecurityEvent=\"InvalidAccountID\",{one}"
        ))),
        Some(("security-invalid-account-id", "203.0.113.20".into()))
    );
    // A field a newer Asterisk might add: no reading fits, and the
    // unanimous rule decides.
    let newer = format!("SecurityEvent=\"InvalidAccountID\",{COMMON},NewField=\"1\"");
    assert_eq!(
        charged(&security(&newer)),
        Some(("security-invalid-account-id", "203.0.113.20".into()))
    );
}

#[test]
fn long_lines_that_may_have_been_cut_inside_attacker_text_charge_nobody() {
    // Asterisk cuts messages at 8 KiB, syslog often at 1 KiB: a cut can leave
    // an attacker's imitation of the tail as the end of the line.
    let padding = "a".repeat(1000);
    // Through syslog, a line as long as a transport limit (1 KiB here)
    // was cut there: nobody.
    let syslog_line = |message: &str| {
        let head = "Mar  5 10:21:46 pbx asterisk[1234]: NOTICE[1290]: chan_sip.c:24349 in handle_request_register: ";
        format!("{head}{message}")
    };
    let fake_tail = "' failed for '9.9.9.9:5060' - Wrong password";
    let head_len = syslog_line("Registration from '\"").len();
    let fill = "a".repeat(1024 - head_len - fake_tail.len());
    let register_cut = syslog_line(&format!("Registration from '\"{fill}{fake_tail}"));
    assert_eq!(register_cut.len(), 1024);
    assert_eq!(parse_line(&register_cut), None);
    let security_cut = format!(
        "Mar  5 10:23:01 pbx asterisk[1234]: SECURITY[1301]: res_security_log.c: {}",
        format_args!(
            r#"SecurityEvent="InvalidAccountID",EventTV="t",Severity="Error",Service="PJSIP",EventVersion="1",AccountID="1",SessionID="{}",LocalAddress="IPV4/UDP/192.0.2.10/5060",RemoteAddress="IPV4/UDP/9.9.9.9/5060""#,
            "a".repeat(1700)
        )
    );
    let security_cut = format!("{security_cut}{}", "b".repeat(2040 - security_cut.len()));
    assert_eq!(parse_line(&security_cut), None, "at the 2 KiB limit");
    // Asterisk's own file: lines are whole below its 8 KiB message limit,
    // so a To header padded to kilobytes still charges the sender...
    let padded = asterisk(&format!(
        "Registration from '\"{}\" <sip:100@pbx>' failed for '203.0.113.5:5060' - Wrong password",
        "a".repeat(3000)
    ));
    assert_eq!(
        charged(&padded),
        Some(("sip-wrong-password", "203.0.113.5".into()))
    );
    // ...and past it the line may have been cut: nobody.
    let over = asterisk(&format!(
        "Registration from '\"{}{fake_tail}",
        "a".repeat(8200)
    ));
    assert_eq!(parse_line(&over), None);

    // Lines whose address comes before any attacker text are not affected.
    let ami_long =
        format!("[d] NOTICE[1] manager.c: 203.0.113.7 failed to authenticate as '{padding}'");
    assert_eq!(
        charged(&ami_long),
        Some(("ami-auth-failed", "203.0.113.7".into()))
    );
}

#[test]
fn ami_and_iax2_failures() {
    let cases = [
        (
            "manager.c: 172.16.0.5 tried to authenticate with nonexistent user 'admin'",
            "ami-unknown-user",
            "172.16.0.5",
        ),
        (
            "manager.c: 172.16.0.5 failed to authenticate as 'admin'",
            "ami-auth-failed",
            "172.16.0.5",
        ),
        (
            "manager.c: 172.16.0.5 failed to pass IP ACL as 'admin'",
            "ami-acl-denied",
            "172.16.0.5",
        ),
        (
            "manager.c: Connect attempt from '172.16.0.5' unable to authenticate",
            "ami-no-auth",
            "172.16.0.5",
        ),
        (
            "manager.c: HTTP Connect attempt from '172.16.0.5' unable to authenticate",
            "ami-no-auth",
            "172.16.0.5",
        ),
        (
            "manager.c: Client from 172.16.0.5, failed to authenticate in 30 seconds",
            "ami-no-auth",
            "172.16.0.5",
        ),
        (
            "manager.c: 2001:db8::5 failed to authenticate as 'admin'",
            "ami-auth-failed",
            "2001:db8::5",
        ),
        (
            "chan_iax2.c: Host 198.51.100.4:4569 failed to authenticate as 100",
            "iax-auth-failed",
            "198.51.100.4",
        ),
        (
            "chan_iax2.c: Host [2001:db8::4]:4569 failed to authenticate as 100",
            "iax-auth-failed",
            "2001:db8::4",
        ),
        (
            "chan_iax2.c: Host 198.51.100.4 failed MD5 authentication for '100' (a != b)",
            "iax-auth-failed",
            "198.51.100.4",
        ),
        (
            "chan_iax2.c: Host 198.51.100.4 did not provide proper plaintext password for '100'",
            "iax-auth-failed",
            "198.51.100.4",
        ),
        (
            "chan_iax2.c: Host 198.51.100.4 denied access to register peer '100'",
            "iax-acl-denied",
            "198.51.100.4",
        ),
        (
            "chan_iax2.c: No registration for peer '100' (from 198.51.100.4)",
            "iax-unknown-peer",
            "198.51.100.4",
        ),
        (
            "chan_iax2.c: Empty registration from 198.51.100.4",
            "iax-unknown-peer",
            "198.51.100.4",
        ),
        (
            "chan_iax2.c: Peer 'trunk' is not dynamic (from 198.51.100.4)",
            "iax-peer-not-dynamic",
            "198.51.100.4",
        ),
        (
            "chan_sip.c: Rejecting unknown SIP connection from 198.51.100.4",
            "sip-unknown-connection",
            "198.51.100.4",
        ),
        (
            "chan_sip.c: \"Rejecting unknown SIP connection from 198.51.100.4:5060\"",
            "sip-unknown-connection",
            "198.51.100.4",
        ),
        (
            "chan_sip.c: hacking attempt detected '198.51.100.4'",
            "sip-hacking-attempt",
            "198.51.100.4",
        ),
    ];
    for (message, event, addr) in cases {
        let line = format!("[2024-03-05 10:22:01] NOTICE[1400] {message}");
        assert_eq!(charged(&line), Some((event, addr.into())), "{line}");
    }
}

#[test]
fn sshd_failures_ipv4_and_ipv6() {
    let cases = [
        ("Failed password for root from 5.6.7.8 port 22 ssh2", "ssh-failed-password", "5.6.7.8"),
        ("Failed password for invalid user admin from 5.6.7.8 port 4242 ssh2", "ssh-failed-password", "5.6.7.8"),
        ("Failed password for root from 2001:db8::8 port 22 ssh2", "ssh-failed-password", "2001:db8::8"),
        ("Failed publickey for root from 5.6.7.8 port 22 ssh2: RSA SHA256:abc", "ssh-failed-publickey", "5.6.7.8"),
        ("Failed keyboard-interactive/pam for root from 5.6.7.8 port 22 ssh2", "ssh-failed-auth", "5.6.7.8"),
        ("Invalid user admin from 5.6.7.8 port 4242", "ssh-invalid-user", "5.6.7.8"),
        ("Invalid user admin from 5.6.7.8", "ssh-invalid-user", "5.6.7.8"),
        ("Invalid user  from 2001:db8::8 port 4242", "ssh-invalid-user", "2001:db8::8"),
        ("User root from 5.6.7.8 not allowed because listed in DenyUsers", "ssh-user-not-allowed", "5.6.7.8"),
        ("error: maximum authentication attempts exceeded for root from 5.6.7.8 port 4242 ssh2 [preauth]", "ssh-max-auth-attempts", "5.6.7.8"),
        ("Disconnecting authenticating user root 5.6.7.8 port 4242: Too many authentication failures [preauth]", "ssh-too-many-auth-failures", "5.6.7.8"),
        ("Disconnecting invalid user x 2001:db8::8 port 4242: Too many authentication failures [preauth]", "ssh-too-many-auth-failures", "2001:db8::8"),
        ("Connection closed by invalid user x 5.6.7.8 port 4242 [preauth]", "ssh-preauth-disconnect", "5.6.7.8"),
        ("Connection closed by authenticating user root 5.6.7.8 port 4242 [preauth]", "ssh-preauth-disconnect", "5.6.7.8"),
        ("Connection reset by invalid user x 5.6.7.8 port 4242 [preauth]", "ssh-preauth-disconnect", "5.6.7.8"),
        ("Received disconnect from 5.6.7.8 port 4242:11: Bye Bye [preauth]", "ssh-preauth-disconnect", "5.6.7.8"),
        ("Disconnected from invalid user x 5.6.7.8 port 4242 [preauth]", "ssh-preauth-disconnect", "5.6.7.8"),
        ("Disconnected from authenticating user root 2001:db8::8 port 4242 [preauth]", "ssh-preauth-disconnect", "2001:db8::8"),
    ];
    for (message, event, addr) in cases {
        assert_eq!(
            charged(&sshd(message)),
            Some((event, addr.into())),
            "{message}"
        );
        assert_eq!(FailureKind::SshInvalidUser.class(), OffenceClass::Ssh);
    }
}

#[test]
fn sshd_lines_that_are_not_failures() {
    for message in [
        "Received disconnect from 5.6.7.8 port 4242:11: disconnected by user",
        "Disconnected from user root 5.6.7.8 port 4242",
        "Connection closed by 5.6.7.8 port 4242 [preauth]",
        "Connection from 5.6.7.8 port 4242 on 192.0.2.10 port 22 rdomain \"\"",
        "Failed none for invalid user x from 5.6.7.8 port 4242 ssh2",
        "Postponed keyboard-interactive for root from 5.6.7.8 port 4242 ssh2 [preauth]",
        "User root not allowed because account is locked",
        "Server listening on 0.0.0.0 port 22.",
        "pam_unix(sshd:session): session closed for user root",
    ] {
        assert_eq!(parse_line(&sshd(message)), None, "{message}");
    }
    let accepted =
        sshd("Accepted publickey for ops from 2001:db8::70 port 60001 ssh2: ED25519 SHA256:abc");
    assert_eq!(
        parse_line(&accepted),
        Some(Parsed::KnownGood(KnownGood {
            source: LogSource::Sshd,
            ip: ip("2001:db8::70"),
            session: Some(SshLogin {
                port: 60001,
                method: "publickey"
            }),
        }))
    );
}

#[test]
fn every_prefix_form_leads_to_the_same_failure() {
    let message = "Failed password for root from 5.6.7.8 port 22 ssh2";
    for prefix in [
        "Mar  5 10:30:01 pbx sshd[4001]: ",
        "Mar 05 10:30:01 pbx sshd[4001]: ",
        "Mar 05 10:30:01.123456 pbx sshd-session[4001]: ",
        "2024-03-05T10:30:01.123456+01:00 pbx sshd[4001]: ",
        "2024-03-05T10:30:01+0100 pbx sshd[4001]: ",
        "Tue 2024-03-05 10:30:01 CET pbx sshd[4001]: ",
        "",
    ] {
        let line = format!("{prefix}{message}\n");
        assert_eq!(
            charged(&line),
            Some(("ssh-failed-password", "5.6.7.8".into())),
            "{prefix:?}"
        );
    }
    let message = "Registration from '<sip:1@h>' failed for '5.6.7.8' - Wrong password";
    for prefix in [
        "[2024-03-05 10:21:46] NOTICE[1290] chan_sip.c: ",
        "[Mar  5 10:21:46] NOTICE[1290][C-0000000a] chan_sip.c: ",
        "[2024-03-05 10:21:46.123] NOTICE[1290][C-0000000a]: chan_sip.c:28475 handle_request_register: ",
        "[Mar  5 10:21:46] NOTICE[1290]: chan_sip.c:23433 in handle_request_register: ",
        "Mar  5 10:21:46 pbx asterisk[12]: NOTICE[1290][C-0000000a]: chan_sip.c:28475 in handle_request_register: ",
        "2024-03-05T10:21:46.123+00:00 pbx asterisk[12]: NOTICE[1290]: chan_sip.c:28475 in handle_request_register: ",
        "NOTICE[1290]: chan_sip.c:28475 in handle_request_register: ",
        "",
    ] {
        let line = format!("{prefix}{message}\r\n");
        assert_eq!(charged(&line), Some(("sip-wrong-password", "5.6.7.8".into())), "{prefix:?}");
    }
}

#[test]
fn lines_from_other_programs_and_modules_are_not_ours() {
    for line in [
        "Mar  5 10:31:08 pbx sudo[5001]: Failed password for root from 9.9.9.9 port 22 ssh2",
        "Mar  5 10:31:08 pbx webapp: Registration from '<sip:1@h>' failed for '9.9.9.9' - Wrong password",
        "[2024-03-05 10:50:13] WARNING[1234] app_voicemail.c: Failed password for root from 9.9.9.9 port 22 ssh2",
        "[2024-03-05 10:50:14] NOTICE[1290] pbx.c: 9.9.9.9 failed to authenticate as 'admin'",
        "[2024-03-05 10:50:14] NOTICE[1290] func_odbc.c: Registration from '<sip:1@h>' failed for '9.9.9.9' - Wrong password",
    ] {
        assert_eq!(parse_line(line), None, "{line}");
    }
}

#[test]
fn dedicated_parsers_take_only_their_programs_lines() {
    let ssh = sshd("Invalid user admin from 5.6.7.8 port 4242");
    let ast = asterisk("Registration from '<sip:1@h>' failed for '5.6.7.8' - Wrong password");
    assert!(SshdParser::new().parse(&ssh).is_some());
    assert!(AsteriskParser::new().parse(&ssh).is_none());
    assert!(AsteriskParser::new().parse(&ast).is_some());
    assert!(SshdParser::new().parse(&ast).is_none());
    // With no prefix, either parser takes its own messages.
    assert!(SshdParser::new()
        .parse("Invalid user admin from 5.6.7.8 port 4242")
        .is_some());
    assert!(AsteriskParser::new()
        .parse("Invalid user admin from 5.6.7.8 port 4242")
        .is_none());
}

// --- sipshield parse ------------------------------------------------------

fn sipshield() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sipshield"))
}

#[test]
fn cli_json_prints_one_object_per_failure_line_of_each_file() {
    let files: Vec<PathBuf> = FIXTURES
        .iter()
        .map(|name| fixture(&format!("{name}.log")))
        .collect();
    let output = sipshield()
        .arg("parse")
        .arg("--json")
        .args(&files)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.stderr.is_empty(),
        "json mode writes nothing else: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    let stdout = String::from_utf8(output.stdout).unwrap();
    let mut got: Vec<Vec<String>> = vec![Vec::new(); files.len()];
    for line in stdout.lines() {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        let object = record.as_object().unwrap();
        let keys: Vec<&str> = object.keys().map(String::as_str).collect();
        assert_eq!(keys.len(), 5, "{line}");
        for key in ["file", "line", "source", "event", "ip"] {
            assert!(object.contains_key(key), "{key} missing in {line}");
        }
        let file = object["file"].as_str().unwrap();
        let index = files.iter().position(|f| f.to_str() == Some(file)).unwrap();
        got[index].push(format!(
            "{} {} {} {}",
            object["line"].as_u64().unwrap(),
            object["source"].as_str().unwrap(),
            object["event"].as_str().unwrap(),
            object["ip"].as_str().unwrap()
        ));
    }
    for (name, got) in FIXTURES.iter().zip(got) {
        assert_eq!(got, expected(name), "{name}.log");
    }
}

#[test]
fn cli_human_output_is_a_table_with_a_summary_on_stderr() {
    let log = fixture("auth.log");
    let output = sipshield().arg("parse").arg(&log).output().unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    let first = stdout.lines().next().unwrap();
    assert_eq!(
        first,
        format!("{}:2  sshd  ssh-invalid-user  203.0.113.60", log.display())
    );
    assert_eq!(stdout.lines().count(), expected("auth").len());

    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let lines = std::fs::read_to_string(&log).unwrap().lines().count();
    assert!(
        stderr.starts_with(&format!("{lines} lines read, 19 failures (")),
        "{stderr}"
    );
    assert!(stderr.contains("ssh-invalid-user 3,"), "{stderr}");
    assert!(stderr.contains("ssh-preauth-disconnect 6"), "{stderr}");
    assert!(stderr.trim_end().ends_with(", 2 known good"), "{stderr}");
}

#[test]
fn cli_reads_standard_input_for_a_dash() {
    let mut child = sipshield()
        .args(["parse", "--json", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(
            b"hello\nMar  5 10:30:01 pbx sshd[1]: Invalid user a from 2001:DB8:0:0::1 port 2\n",
        )
        .unwrap();
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        "{\"file\":\"-\",\"line\":2,\"source\":\"sshd\",\"event\":\"ssh-invalid-user\",\"ip\":\"2001:db8::1\"}\n"
    );
}

#[test]
fn cli_reports_an_unreadable_file() {
    let output = sipshield()
        .args(["parse", "/nonexistent/sipshield/messages"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("/nonexistent/sipshield/messages"),
        "{stderr}"
    );
}

#[test]
fn a_level_written_with_a_space_and_call_id_tags() {
    // FreePBX hosts (logger.conf `dateformat`, Asterisk 13-16) write the level
    // apart from its thread id: the issue's `NOTICE [22382] manager.c: ...`.
    assert_eq!(
        charged("[2024-03-05 10:21:46] NOTICE [22382] manager.c: 203.0.113.7 failed to authenticate as 'admin'"),
        Some(("ami-auth-failed", "203.0.113.7".into()))
    );
    assert_eq!(
        charged("[2024-03-05 10:21:46] WARNING[8447][C-00000244] chan_sip.c: Registration from '<sip:1@h>' failed for '203.0.113.8' - Wrong password"),
        Some(("sip-wrong-password", "203.0.113.8".into()))
    );
}

#[test]
fn ansi_colour_escapes_hide_nothing() {
    // Asterisk's logger colours the level, file and function names
    // (term_color in logger.c) when writing to a terminal; redirected
    // consoles and some syslog setups keep the escapes.
    let line = "[Mar  5 10:21:46] \u{1b}[1;33mNOTICE\u{1b}[0m[1290]: \u{1b}[1;37mchan_sip.c\u{1b}[0m:24349 \u{1b}[1;37mhandle_request_register\u{1b}[0m: Registration from '\"100\" <sip:100@pbx>' failed for '203.0.113.5:5060' - Wrong password";
    assert_eq!(
        charged(line),
        Some(("sip-wrong-password", "203.0.113.5".into()))
    );
    let syslog = "Mar  5 10:21:46 pbx asterisk[1234]: \u{1b}[1;31mNOTICE\u{1b}[0m[1290]: manager.c:2287 in authenticate: 203.0.113.9 tried to authenticate with nonexistent user 'admin'";
    assert_eq!(
        charged(syslog),
        Some(("ami-unknown-user", "203.0.113.9".into()))
    );
    // The daemon's parser does the same.
    assert!(AsteriskParser::new().parse(line).is_some());
}

#[test]
fn transports_with_a_bracketed_ipv4_address() {
    // res_pjsip_session names the transport and address of an unknown
    // extension's call, brackets and all: `(TCP:[1.2.3.4]:61470)`.
    let tail =
        "to extension '100' rejected because extension not found in context 'from-external'.";
    assert_eq!(
        charged(&format!(
            "[d] NOTICE[1] res_pjsip_session.c: Call (TCP:[203.0.113.4]:61470) {tail}"
        )),
        Some(("sip-unknown-extension", "203.0.113.4".into()))
    );
    assert_eq!(
        charged(&format!(
            "[d] NOTICE[1] res_pjsip_session.c: Call (TLS:[2001:db8::4]:5061) {tail}"
        )),
        Some(("sip-unknown-extension", "2001:db8::4".into()))
    );
}

#[test]
fn freepbx_log_lines_of_unknown_sip_connections() {
    // FreePBX's from-sip-external context: `Log(WARNING,"Rejecting unknown
    // SIP connection from ${CHANNEL(recvip)}")`; app_verbose.c logs it with
    // `Ext. <exten>` as the file and `@ <context>` as the function.
    let cases = [
        ("[2024-03-05 10:21:46] WARNING[2245][C-00000012] Ext. s: \"Rejecting unknown SIP connection from 192.0.2.2\"", "192.0.2.2"),
        ("[2024-03-05 10:21:46] WARNING[2245][C-00000012] Ext. s:6 in @ from-sip-external: \"Rejecting unknown SIP connection from 192.0.2.3:5060\"", "192.0.2.3"),
        ("[2024-03-05 10:21:46] WARNING[2245] Ext. s: \"Rejecting unknown SIP connection from [2001:db8::2]:5060\"", "2001:db8::2"),
        ("[2024-03-05 10:21:46] WARNING[2245] Ext. s: \"Rejecting unknown SIP connection from 2001:db8::3\"", "2001:db8::3"),
        ("Mar  5 10:21:46 pbx asterisk[1234]: WARNING[2245][C-00000012]: Ext. s:6 in @ from-sip-external: \"Rejecting unknown SIP connection from 192.0.2.4\"", "192.0.2.4"),
    ];
    for (line, ip) in cases {
        assert_eq!(
            charged(line),
            Some(("sip-unknown-connection", ip.into())),
            "{line}"
        );
    }
    // Log() lines are only ever the dialplan's texts: a registration
    // failure wording there is not chan_sip's, and charges nobody.
    assert_eq!(
        charged("[d] NOTICE[1] Ext. s: Registration from '<sip:1@h>' failed for '192.0.2.9' - Wrong password"),
        None
    );
}

#[test]
fn failure_lines_that_charge_nobody_are_told_from_other_lines() {
    use sipshield::logs::asterisk::Reading;
    let p = AsteriskParser::new();
    // Two readings truly remain: a whole fake middle, then a ReceivedHash
    // that could have swallowed the real one (security_event.rs).
    let both = security(&format!(
        "SecurityEvent=\"InvalidPassword\",{}",
        COMMON.replace(
            r#"AccountID="100""#,
            r#"AccountID="100",SessionID="s",LocalAddress="IPV4/UDP/192.0.2.10/5060",RemoteAddress="IPV4/UDP/9.9.9.9/5060",ReceivedHash="x""#,
        )
    ));
    match p.read(&both) {
        Reading::Ambiguous(a) => assert_eq!(
            a.candidates().map(|ip| ip.to_string()).collect::<Vec<_>>(),
            ["9.9.9.9", "203.0.113.20"]
        ),
        other => panic!("two readings: {other:?}"),
    }
    // Cut by Asterisk's 8 KiB limit.
    let cut = format!(
        "[d] NOTICE[1] chan_sip.c: Registration from '{}' failed for '9.9.9.9' - Wrong password",
        "a".repeat(8200)
    );
    assert_eq!(p.read(&cut), Reading::Nobody);
    // A security event whose address is unreadable.
    let garbage = "[d] SECURITY[1] res_security_log.c: SecurityEvent=\"InvalidPassword\",EventTV=\"t\",Severity=\"Error\",Service=\"PJSIP\",EventVersion=\"2\",AccountID=\"1\",SessionID=\"s\",LocalAddress=\"IPV4/UDP/192.0.2.10/5060\",RemoteAddress=\"nonsense\"";
    assert_eq!(p.read(garbage), Reading::Nobody);
    // The server's own problem, and an ordinary line: silent.
    assert_eq!(
        p.read("[d] NOTICE[1] chan_sip.c: Registration from '<sip:1@h>' failed for '203.0.113.5' - RTP initialization failed"),
        Reading::Silent
    );
    assert_eq!(
        p.read("[d] NOTICE[1] chan_sip.c: Peer '100' is now Reachable."),
        Reading::Silent
    );
    assert!(matches!(
        p.read("[d] NOTICE[1] chan_sip.c: Registration from '<sip:1@h>' failed for '203.0.113.5' - Wrong password"),
        Reading::Charged(_)
    ));
}

#[test]
fn cli_explain_says_per_line_what_was_charged_or_why_nobody() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("messages");
    let cut = format!(
        "[d] NOTICE[1] chan_sip.c: Registration from '{}' failed for '9.9.9.9' - Wrong password",
        "a".repeat(8200)
    );
    std::fs::write(
        &log,
        format!(
            "[d] NOTICE[1] chan_sip.c: Registration from '<sip:1@h>' failed for '203.0.113.5' - Wrong password\n\
             [d] NOTICE[1] chan_sip.c: Peer '100' is now Reachable.\n\
             {cut}\n\
             Mar  5 10:30:06 pbx sshd[4002]: Failed password for root from 203.0.113.61 port 40000 ssh2\n"
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let out = sipshield()
            .arg("parse")
            .args(args)
            .arg(&log)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let explained = run(&["--explain"]);
    let lines: Vec<&str> = explained.lines().collect();
    assert_eq!(lines.len(), 4, "{explained}");
    assert!(
        lines[0].ends_with(":1  charged 203.0.113.5 as sip-wrong-password (asterisk parser)"),
        "{explained}"
    );
    assert!(lines[1].ends_with(":2  no failure"), "{explained}");
    assert!(lines[2].contains(":3  charged nobody"), "{explained}");
    assert!(
        lines[3].contains("charged 203.0.113.61 as ssh-failed-password (sshd parser)"),
        "{explained}"
    );
    // --kind: exactly the daemon's parser for that kind of file.
    let asterisk_only = run(&["--json", "--kind", "asterisk"]);
    assert_eq!(asterisk_only.lines().count(), 1, "{asterisk_only}");
    let sshd_only = run(&["--json", "--kind", "sshd"]);
    assert_eq!(sshd_only.lines().count(), 1, "{sshd_only}");
    assert!(sshd_only.contains("203.0.113.61"));
}
