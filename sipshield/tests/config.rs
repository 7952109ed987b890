//! The config file: defaults, parsing, errors with locations, validation.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use sipshield::bpf::AttachMode;
use sipshield::config::{
    BanLength, Config, ConfigError, Location, Protocol, ScannerMode, ShieldMode,
    DEFAULT_CONFIG_TOML,
};
use sipshield_common::config::{
    Mode, ScannerAction, MAX_SIP_PORTS, MAX_UA_PREFIXES, PORT_PARSE, PORT_SIGHTING,
    PORT_SOURCE_ONLY, PROTO_TCP, PROTO_UDP,
};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/config")
        .join(name)
}

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml(text, Path::new("sipshield.toml"))
}

fn problems(err: ConfigError) -> Vec<(String, Option<Location>, String)> {
    match err {
        ConfigError::Invalid { problems, .. } => problems
            .into_iter()
            .map(|p| (p.key, p.location, p.message))
            .collect(),
        other => panic!("expected a validation error, got {other:?}"),
    }
}

fn at(line: usize, column: usize) -> Option<Location> {
    Some(Location { line, column })
}

#[test]
fn the_default_toml_is_exactly_the_default_config() {
    let parsed = Config::from_toml(DEFAULT_CONFIG_TOML, Path::new("default")).unwrap();
    assert_eq!(parsed, Config::default());
}

#[test]
fn the_default_toml_writes_out_every_key() {
    // Equal values after serialising the default, not merely equal after
    // defaults fill the gaps: every key must be spelled out in the file.
    let written: toml::Value = toml::from_str(DEFAULT_CONFIG_TOML).unwrap();
    let default = toml::Value::try_from(Config::default()).unwrap();
    assert_eq!(written, default);
}

#[test]
fn the_default_toml_documents_every_key() {
    // Each paragraph (run of non-blank lines) that sets keys explains them
    // in a comment before its first key.
    for paragraph in DEFAULT_CONFIG_TOML.split("\n\n") {
        let lines: Vec<&str> = paragraph.lines().collect();
        let first_key = lines
            .iter()
            .position(|l| l.contains(" = ") && !l.starts_with('#'));
        if let Some(first_key) = first_key {
            assert!(
                lines[..first_key].iter().any(|l| l.starts_with('#')),
                "keys without a comment:\n{paragraph}"
            );
        }
    }
}

#[test]
fn an_empty_file_is_the_default() {
    assert_eq!(parse("").unwrap(), Config::default());
}

#[test]
fn a_site_config_is_read_completely() {
    let config = Config::load(&fixture("site.toml")).unwrap();
    assert_eq!(config.daemon.interfaces, ["eth0", "eth1"]);
    assert_eq!(config.daemon.xdp_mode, AttachMode::Skb);
    assert_eq!(config.daemon.control_group.as_deref(), Some("sipshield"));
    assert_eq!(config.xdp.mode, ShieldMode::Observe);
    assert_eq!(
        config.xdp.sip_ports[0].protocols,
        [Protocol::Udp, Protocol::Tcp],
        "protocols default to both"
    );
    assert_eq!(config.xdp.scanner_action, ScannerMode::Count);
    assert_eq!(config.xdp.scanner_ban, BanLength::Permanent);
    assert_eq!(config.logs.poll_interval, Duration::from_secs(1));
    assert!(config.logs.from_start);
    assert_eq!(config.policy.sip_auth.maxretry, 3);
    assert_eq!(config.policy.sip_auth.findtime, Duration::from_secs(5400));
    assert_eq!(config.policy.sip_probe, Config::default().policy.sip_probe);
    assert!(!config.policy.ssh.enabled);
    assert_eq!(config.policy.ban_ladder.last(), Some(&BanLength::Permanent));
    assert_eq!(config.policy.forget_after, Duration::from_secs(30 * 86_400));
    let cidrs: Vec<String> = config.allow.cidrs.iter().map(|c| c.to_string()).collect();
    assert_eq!(
        cidrs,
        ["192.0.2.10/32", "198.51.100.0/24", "2001:db8:100::/48"]
    );
    assert_eq!(config.allow.ssh_ports, [22, 2222]);
    assert!(!config.allow.asterisk_trunks);
    assert!(
        config.allow.host_addresses,
        "unset keys keep their defaults"
    );
}

#[test]
fn the_site_config_becomes_the_kernels_record() {
    let config = Config::load(&fixture("site.toml")).unwrap();
    let xdp = config.to_xdp_config();
    assert_eq!(xdp.mode, Mode::Observe as u32);
    assert_eq!(xdp.scanner_action, ScannerAction::Count as u32);
    let ports: Vec<(u16, u8, u8)> = xdp
        .sip_ports
        .iter()
        .map(|p| (p.port, p.protos, p.kind))
        .collect();
    assert_eq!(
        ports[..8],
        [
            (5060, PROTO_UDP | PROTO_TCP, PORT_PARSE),
            (5080, PROTO_UDP, PORT_PARSE),
            (5061, PROTO_TCP, PORT_SOURCE_ONLY),
            // The default sighting ports follow (SSH, AMI, HTTP, HTTPS).
            (22, PROTO_TCP, PORT_SIGHTING),
            (5038, PROTO_TCP, PORT_SIGHTING),
            (8088, PROTO_TCP, PORT_SIGHTING),
            (8089, PROTO_TCP, PORT_SIGHTING),
            (0, 0, 0),
        ]
    );
    assert_eq!(xdp.register_limit.interval_ns, 200_000_000);
    assert_eq!(xdp.register_limit.window_ns, 2_000_000_000);
    assert_eq!(xdp.rate_ban_ns, 2 * 3600 * 1_000_000_000);
    assert_eq!(xdp.scanner_ban_ns, 0, "permanent");
    assert_eq!(xdp.ua_prefix_count, 2);
    let prefixes = config.ua_prefixes();
    assert_eq!(
        &prefixes[1].bytes()[..prefixes[1].len as usize],
        b"sipvicious",
        "lower-cased"
    );
    assert_eq!(config.xdp.map_sizes().max_bans, 100_000);
}

#[test]
fn an_unknown_key_is_an_error_at_its_line() {
    let err = Config::load(&fixture("unknown-key.toml")).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("unknown-key.toml:6:1: unknown field `find_time`"),
        "{text}"
    );
    assert!(matches!(
        err,
        ConfigError::Parse {
            location: Some(Location { line: 6, column: 1 }),
            ..
        }
    ));
}

#[test]
fn an_unknown_section_is_an_error() {
    let err = Config::load(&fixture("unknown-section.toml")).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("unknown-section.toml:4:"), "{text}");
    assert!(text.contains("unknown field `jail`"), "{text}");
}

#[test]
fn a_syntax_error_has_file_line_and_column() {
    let err = Config::load(&fixture("syntax-error.toml")).unwrap_err();
    let ConfigError::Parse { path, location, .. } = &err else {
        panic!("{err:?}");
    };
    assert!(path.ends_with("syntax-error.toml"));
    let location = location.unwrap();
    assert!(location.line == 2 || location.line == 3, "{location:?}");
    assert!(err.to_string().starts_with(&format!(
        "{}:{}:{}: ",
        path.display(),
        location.line,
        location.column
    )));
}

#[test]
fn a_wrong_type_points_at_the_value() {
    let err = Config::load(&fixture("wrong-type.toml")).unwrap_err();
    assert!(
        matches!(
            err,
            ConfigError::Parse {
                location: Some(Location {
                    line: 2,
                    column: 18
                }),
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_bad_duration_says_what_is_wrong() {
    let err = Config::load(&fixture("bad-duration.toml")).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("bad-duration.toml:2:16:"), "{text}");
    assert!(text.contains("unknown unit \"fortnight\""), "{text}");
}

#[test]
fn a_bad_cidr_is_an_error_at_its_line() {
    let err = Config::load(&fixture("bad-cidr.toml")).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("\"198.51.100.0/33\" is not an IP address or CIDR"),
        "{text}"
    );
    assert!(
        matches!(
            err,
            ConfigError::Parse {
                location: Some(Location { line: 2 | 4, .. }),
                ..
            }
        ),
        "{text}"
    );
}

#[test]
fn semantic_errors_name_the_key_and_its_place() {
    let err = Config::load(&fixture("invalid.toml")).unwrap_err();
    let text = err.to_string();
    let found = problems(err);
    let keys: Vec<&str> = found.iter().map(|(key, _, _)| key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "xdp.sip_ports[1].port",
            "xdp.scanner_user_agents[0]",
            "xdp.scanner_user_agents[1]",
            "policy.sip_auth.maxretry",
            "policy.ban_ladder[1]",
        ],
        "{text}"
    );
    let location_of = |key: &str| {
        found
            .iter()
            .find(|(k, _, _)| k == key)
            .and_then(|(_, l, _)| *l)
    };
    assert_eq!(location_of("xdp.sip_ports[1].port"), at(5, 14));
    assert_eq!(location_of("xdp.scanner_user_agents[1]"), at(7, 28));
    assert_eq!(location_of("policy.ban_ladder[1]"), at(10, 21));
    assert_eq!(location_of("policy.sip_auth.maxretry"), at(13, 12));
    assert!(
        text.contains("invalid.toml:5:14: xdp.sip_ports[1].port: port 5060 is listed twice"),
        "{text}"
    );
    let limit = format!(
        "at most {} fit",
        sipshield_common::config::UA_PREFIX_MAX_LEN
    );
    assert!(text.contains(&limit), "{text}");
}

#[test]
fn zero_thresholds_and_durations_are_refused() {
    let err =
        parse("[policy.ami]\nfindtime = \"0s\"\n[policy]\nforget_after = \"0s\"\n").unwrap_err();
    let keys: Vec<String> = problems(err).into_iter().map(|(k, _, _)| k).collect();
    assert_eq!(keys, ["policy.ami.findtime", "policy.forget_after"]);
    let err = parse("[xdp]\nrate_ban = \"0s\"\n").unwrap_err();
    assert_eq!(problems(err)[0].0, "xdp.rate_ban");
}

#[test]
fn too_many_ports_or_prefixes_do_not_fit_the_kernel() {
    let ports: Vec<String> = (0..=MAX_SIP_PORTS)
        .map(|i| format!("{{ port = {} }}", 5060 + i))
        .collect();
    let err = parse(&format!("[xdp]\nsip_ports = [{}]\n", ports.join(", "))).unwrap_err();
    let found = problems(err);
    assert_eq!(found[0].0, "xdp.sip_ports");
    assert!(found[0].2.contains("at most 8"), "{found:?}");

    let agents: Vec<String> = (0..=MAX_UA_PREFIXES)
        .map(|i| format!("\"scanner-{i}\""))
        .collect();
    let err = parse(&format!(
        "[xdp]\nscanner_user_agents = [{}]\n",
        agents.join(", ")
    ))
    .unwrap_err();
    assert_eq!(problems(err)[0].0, "xdp.scanner_user_agents");
}

#[test]
fn tls_over_udp_is_refused() {
    let err = parse("[xdp]\nsip_ports = [{ port = 5061, tls = true }]\n").unwrap_err();
    assert_eq!(problems(err)[0].0, "xdp.sip_ports[0].protocols");
}

#[test]
fn an_allowlist_of_everything_is_refused() {
    let err = parse("[allow]\ncidrs = [\"0.0.0.0/0\"]\n").unwrap_err();
    assert_eq!(problems(err)[0].0, "allow.cidrs[0]");
}

#[test]
fn a_missing_file_is_a_read_error() {
    let err = Config::load(Path::new("/nonexistent/sipshield.toml")).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }));
    assert!(err.to_string().starts_with("/nonexistent/sipshield.toml: "));
}

#[test]
fn validate_checks_a_config_changed_in_code() {
    let mut config = Config::default();
    assert!(config.validate().is_ok());
    config.daemon.interfaces = vec!["eth0".into(), "an-interface-name-too-long".into()];
    config.policy.max_tracked_sources = 0;
    let keys: Vec<String> = problems(config.validate().unwrap_err())
        .into_iter()
        .map(|(k, _, _)| k)
        .collect();
    assert_eq!(keys, ["daemon.interfaces[1]", "policy.max_tracked_sources"]);
}

#[test]
fn allowlist_caps_are_read_and_checked() {
    let config = parse(
        "[allow]\ncidrs = [\"192.0.2.50\"]\ncaps = [{ net = \"192.0.2.0/24\", per_second = 500, burst = 1000 }]\n",
    )
    .unwrap();
    let cap = config.allow.cap_for("192.0.2.50/32".parse().unwrap());
    assert_eq!(
        cap,
        Some(sipshield_common::config::RateLimit::new(500, 1000))
    );
    let err = parse("[allow]\ncaps = [{ net = \"192.0.2.50\", per_second = 0, burst = 0 }]\n")
        .unwrap_err();
    let keys: Vec<String> = problems(err).into_iter().map(|(k, _, _)| k).collect();
    assert!(
        keys.contains(&"allow.caps[0].per_second".to_string()),
        "{keys:?}"
    );
    assert!(
        keys.contains(&"allow.caps[0].burst".to_string()),
        "{keys:?}"
    );
    let err = parse("[allow]\ncaps = [{ net = \"192.0.2.50\", per_second = 5 }]\n").unwrap_err();
    assert!(err.to_string().contains("burst"), "{err}");
}

#[test]
fn scanner_ban_hits_of_zero_is_refused() {
    let err = parse("[xdp]\nscanner_ban_hits = 0\n").unwrap_err();
    assert_eq!(problems(err)[0].0, "xdp.scanner_ban_hits");
}

#[test]
fn durations_too_long_for_the_kernel_clock_are_refused() {
    // 1000000 weeks is 19000 years: in nanoseconds past u64, it used to
    // saturate and then wrap in the kernel into a ban that had expired.
    for (text, key) in [
        ("[xdp]\nrate_ban = \"1000000w\"\n", "xdp.rate_ban"),
        ("[xdp]\nscanner_ban = \"5300w\"\n", "xdp.scanner_ban"),
        (
            "[policy]\nban_ladder = [\"10m\", \"1000000w\"]\n",
            "policy.ban_ladder",
        ),
        (
            "[policy.ssh]\nfindtime = \"99999999d\"\n",
            "policy.ssh.findtime",
        ),
    ] {
        let err = parse(text).unwrap_err().to_string();
        assert!(
            err.contains("longer than 100 years") && err.contains("sipshield.toml:"),
            "{key}: {err}"
        );
    }
    // A century fits, and permanent is the way to say forever.
    assert!(parse("[xdp]\nrate_ban = \"5200w\"\n").is_ok());
    assert!(parse("[xdp]\nrate_ban = \"permanent\"\n").is_ok());
    assert_eq!(
        sipshield::config::parse_duration("1000000w").unwrap_err().to_string(),
        "\"1000000w\" is longer than 100 years (the kernel clock's reach): write \"permanent\" for a ban that never ends"
    );
}

#[test]
fn sshd_is_followed_in_the_journal_when_no_auth_log_exists() {
    let config = Config::default();
    // Debian 12 without rsyslog: no /var/log/auth.log.
    let spec = config
        .logs
        .journal_spec(|_| false)
        .expect("journal followed");
    assert_eq!(
        spec.matches,
        ["_SYSTEMD_UNIT=ssh.service", "_SYSTEMD_UNIT=sshd.service"]
    );
    assert_eq!(spec.directory, None);
    // With an auth log, the file is read and the journal is not (no line twice).
    assert!(config.logs.journal_spec(|_| true).is_none());
    // Configured matches are followed either way.
    let set = parse(
        "[logs]\njournal = [\"SYSLOG_IDENTIFIER=asterisk _UID=0\"]\njournal_directory = \"/var/log/journal/remote\"\n",
    )
    .unwrap();
    let spec = set.logs.journal_spec(|_| true).expect("journal followed");
    assert_eq!(spec.matches, ["SYSLOG_IDENTIFIER=asterisk _UID=0"]);
    assert_eq!(
        spec.directory.as_deref(),
        Some(Path::new("/var/log/journal/remote"))
    );
}

#[test]
fn journal_matches_are_checked() {
    let found = problems(
        parse("[logs]\njournal = [\"ssh.service\", \"_UID=0\", \"_UID=0\"]\n").unwrap_err(),
    );
    let keys: Vec<&str> = found.iter().map(|(k, _, _)| k.as_str()).collect();
    assert_eq!(keys, ["logs.journal[0]", "logs.journal[2]"], "{found:?}");
}

#[test]
fn sighting_ports_share_the_port_table_and_never_shadow_a_sip_port() {
    let found = problems(parse("[xdp]\nsighting_ports = [22, 22, 5060, 0]\n").unwrap_err());
    let keys: Vec<&str> = found.iter().map(|(k, _, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "xdp.sighting_ports[1]",
            "xdp.sighting_ports[2]",
            "xdp.sighting_ports[3]"
        ],
        "{found:?}"
    );
    let full =
        problems(parse("[xdp]\nsighting_ports = [22, 23, 24, 25, 26, 27, 28]\n").unwrap_err());
    assert_eq!(full[0].0, "xdp.sighting_ports", "{full:?}");
}

#[test]
fn auto_asterisk_logs_are_the_ones_this_host_has_counted_once() {
    use std::path::Path;
    let config = Config::default();
    let logs = |present: &[&str]| -> Vec<(String, bool)> {
        let present: Vec<String> = present.iter().map(|s| s.to_string()).collect();
        config
            .logs
            .asterisk_logs(|p: &Path| present.contains(&p.display().to_string()))
            .into_iter()
            .map(|l| (l.path.display().to_string(), l.failures))
            .collect()
    };
    // Plain Asterisk: messages (followed once it appears).
    assert_eq!(
        logs(&[]),
        [("/var/log/asterisk/messages".to_string(), true)]
    );
    // FreePBX: full, and security for its SuccessfulAuth events only.
    assert_eq!(
        logs(&[
            "/var/log/asterisk/full",
            "/var/log/asterisk/security",
            "/var/log/asterisk/messages"
        ]),
        [
            ("/var/log/asterisk/full".to_string(), true),
            ("/var/log/asterisk/security".to_string(), false)
        ]
    );
    // Listed by hand: every failure of every file counts.
    let set = parse("[logs]\nasterisk = [\"/var/log/asterisk/security\"]\n").unwrap();
    let chosen = set.logs.asterisk_logs(|_| true);
    assert_eq!(chosen.len(), 1);
    assert!(chosen[0].failures);
}
