//! `sipshield audit` as an operator sees it: run the binary against fixture
//! hosts (fake roots under tests/fixtures/audit) and check findings, exit
//! codes, JSON and that secrets never leak.
//!
//! - `worst`: every check fires (the positive cases).
//! - `clean`: a hardened host, nothing at medium or above (the negatives).
//! - `tricky`: overrides, templates, includes, Match blocks, commented-out
//!   lines, symlinks, each deciding a check one way or the other.
//! - `edge`, `pam-deny0`, `empty`: skipped checks and rarer layouts.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/audit")
        .join(name)
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn audit(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_sipshield"))
        .arg("audit")
        .args(args)
        .output()
        .expect("run sipshield audit");
    Run {
        code: out.status.code().expect("exit code"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn audit_host(host: &str, extra: &[&str]) -> Run {
    let root = fixture(host);
    let mut args = vec!["--root", root.to_str().expect("utf-8 path")];
    args.extend_from_slice(extra);
    audit(&args)
}

/// Human output with line wrapping undone, for looking up phrases.
fn flat(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn findings(host: &str) -> Vec<Value> {
    let run = audit_host(host, &["--json"]);
    assert!(
        run.code == 0 || run.code == 1,
        "audit failed: {}",
        run.stderr
    );
    match serde_json::from_str(&run.stdout) {
        Ok(Value::Array(items)) => items,
        other => panic!("not a JSON array: {other:?}\n{}", run.stdout),
    }
}

/// The findings with this id, as (severity, file, line).
fn with_id(all: &[Value], id: &str) -> Vec<(String, String, Option<u64>)> {
    all.iter()
        .filter(|f| f["id"] == id)
        .map(|f| {
            (
                f["severity"].as_str().unwrap_or("").to_string(),
                f["file"].as_str().unwrap_or("").to_string(),
                f["line"].as_u64(),
            )
        })
        .collect()
}

fn ids(all: &[Value]) -> Vec<String> {
    all.iter()
        .map(|f| f["id"].as_str().unwrap_or("").to_string())
        .collect()
}

fn at(sev: &str, file: &str, line: u64) -> (String, String, Option<u64>) {
    (sev.to_string(), file.to_string(), Some(line))
}

fn whole(sev: &str, file: &str) -> (String, String, Option<u64>) {
    (sev.to_string(), file.to_string(), None)
}

fn message_of<'a>(all: &'a [Value], id: &str) -> &'a str {
    all.iter()
        .find(|f| f["id"] == id)
        .and_then(|f| f["message"].as_str())
        .unwrap_or_else(|| panic!("no {id} finding"))
}

// ---------------------------------------------------------------- worst host

#[test]
fn worst_host_names_every_problem_with_file_and_line() {
    let all = findings("worst");
    let sip = "etc/asterisk/sip.conf";
    let pjsip = "etc/asterisk/pjsip.conf";
    let manager = "etc/asterisk/manager.conf";
    assert_eq!(
        with_id(&all, "sip.weak-secret"),
        vec![
            at("high", sip, 6), // register => password
            at("high", sip, 11),
            at("high", sip, 17),
            at("high", pjsip, 20),
            at("high", "etc/asterisk/iax.conf", 7),
        ]
    );
    assert_eq!(with_id(&all, "sip.allowguest"), vec![at("high", sip, 2)]);
    assert_eq!(
        with_id(&all, "sip.alwaysauthreject"),
        vec![at("medium", sip, 4)]
    );
    assert_eq!(
        with_id(&all, "sip.allowtransfer"),
        vec![at("medium", sip, 2)]
    );
    assert_eq!(with_id(&all, "sip.no-secret"), vec![at("high", sip, 20)]);
    assert_eq!(
        with_id(&all, "sip.insecure-invite"),
        // A fixed host= (an IP-authenticated trunk): low, defence in depth.
        vec![at("low", sip, 28)]
    );
    assert_eq!(
        with_id(&all, "sip.trunk-registration"),
        vec![at("low", sip, 6), at("low", pjsip, 31)]
    );
    assert_eq!(with_id(&all, "sip.qualify").len(), 5, "4 peers, 1 AOR");
    assert_eq!(with_id(&all, "pjsip.anonymous"), vec![at("high", pjsip, 8)]);
    assert_eq!(with_id(&all, "pjsip.no-auth"), vec![at("high", pjsip, 37)]);
    assert_eq!(
        with_id(&all, "dialplan.guest-outbound"),
        vec![
            at("high", sip, 3),
            at("high", pjsip, 8),
            at("high", pjsip, 37)
        ]
    );
    assert_eq!(
        with_id(&all, "dialplan.exten-injection"),
        vec![at("medium", "etc/asterisk/extensions.conf", 9)]
    );
    assert_eq!(
        with_id(&all, "asterisk.live-dangerously"),
        vec![at("medium", "etc/asterisk/asterisk.conf", 3)]
    );
    assert_eq!(
        with_id(&all, "ami.public-bind"),
        vec![at("high", manager, 2)]
    );
    assert_eq!(
        with_id(&all, "ami.weak-secret"),
        vec![at("high", manager, 6)]
    );
    assert_eq!(with_id(&all, "ami.no-acl"), vec![at("medium", manager, 5)]);
    assert_eq!(
        with_id(&all, "ami.write-all"),
        vec![at("medium", manager, 8)]
    );
    assert_eq!(
        with_id(&all, "http.public-bind"),
        vec![at("medium", "etc/asterisk/http.conf", 3)]
    );
    assert_eq!(
        with_id(&all, "ari.weak-secret"),
        vec![at("high", "etc/asterisk/ari.conf", 7)]
    );
    assert_eq!(
        with_id(&all, "asterisk.security-log"),
        vec![at("medium", "etc/asterisk/logger.conf", 3)]
    );
    let sshd = "etc/ssh/sshd_config";
    assert_eq!(with_id(&all, "ssh.root-login"), vec![at("high", sshd, 2)]);
    assert_eq!(
        with_id(&all, "ssh.password-auth"),
        vec![whole("medium", sshd), at("medium", sshd, 4)]
    );
    assert_eq!(
        with_id(&all, "ssh.empty-passwords"),
        vec![at("high", sshd, 5)]
    );
    assert_eq!(with_id(&all, "ssh.default-port"), vec![whole("info", sshd)]);
    assert_eq!(
        with_id(&all, "pam.ssh-lockout"),
        vec![whole("medium", "etc/pam.d/sshd")]
    );
    assert_eq!(
        with_id(&all, "mysql.bind-address"),
        vec![whole("high", "etc/mysql/my.cnf")]
    );
    assert_eq!(
        with_id(&all, "mysql.skip-grant-tables"),
        vec![at("high", "etc/mysql/my.cnf", 9)]
    );
    assert_eq!(
        with_id(&all, "web.admin-public"),
        vec![
            at("medium", "etc/apache2/conf-enabled/phpmyadmin.conf", 1),
            at("medium", "etc/apache2/sites-enabled/000-default.conf", 2),
        ]
    );
    assert_eq!(
        with_id(&all, "services.ftp"),
        vec![at("medium", "proc/net/tcp", 2)]
    );
    assert_eq!(
        with_id(&all, "services.tftp"),
        vec![at("medium", "proc/net/udp", 2)]
    );
    assert_eq!(
        with_id(&all, "services.telnet"),
        vec![at("medium", "proc/net/tcp", 3)]
    );
    assert_eq!(
        with_id(&all, "ips.missing"),
        vec![whole("high", "etc/systemd/system/multi-user.target.wants")]
    );
}

#[test]
fn worst_host_fires_every_check_and_no_other() {
    let mut seen = ids(&findings("worst"));
    seen.sort();
    seen.dedup();
    let mut expected = vec![
        "sip.weak-secret",
        "sip.allowguest",
        "sip.alwaysauthreject",
        "sip.allowtransfer",
        "sip.no-secret",
        "sip.insecure-invite",
        "sip.trunk-registration",
        "sip.qualify",
        "pjsip.anonymous",
        "pjsip.no-auth",
        "dialplan.guest-outbound",
        "dialplan.exten-injection",
        "asterisk.live-dangerously",
        "ami.public-bind",
        "ami.weak-secret",
        "ami.no-acl",
        "ami.write-all",
        "http.public-bind",
        "ari.weak-secret",
        "asterisk.security-log",
        "ssh.root-login",
        "ssh.password-auth",
        "ssh.empty-passwords",
        "ssh.default-port",
        "pam.ssh-lockout",
        "mysql.bind-address",
        "mysql.skip-grant-tables",
        "web.admin-public",
        "services.ftp",
        "services.tftp",
        "services.telnet",
        "ips.missing",
    ];
    expected.sort_unstable();
    assert_eq!(seen, expected);
}

#[test]
fn worst_host_fixes_are_the_lines_to_write() {
    let all = findings("worst");
    let fix = |id: &str| {
        all.iter()
            .find(|f| f["id"] == id)
            .and_then(|f| f["fix"].as_str())
            .unwrap_or_else(|| panic!("no {id} fix"))
            .to_string()
    };
    assert_eq!(
        fix("sip.alwaysauthreject"),
        "alwaysauthreject = yes in [general] of /etc/asterisk/sip.conf"
    );
    assert_eq!(
        fix("sip.allowguest"),
        "allowguest = no in [general] of /etc/asterisk/sip.conf"
    );
    assert_eq!(
        fix("ami.public-bind"),
        "bindaddr = 127.0.0.1 in [general] of /etc/asterisk/manager.conf"
    );
    assert_eq!(
        fix("mysql.bind-address"),
        "bind-address = 127.0.0.1 in [mysqld] of /etc/mysql/my.cnf"
    );
    assert!(fix("ssh.root-login").starts_with("PermitRootLogin prohibit-password"));
    assert!(fix("pam.ssh-lockout").contains("pam_faillock.so preauth"));
    assert!(fix("asterisk.security-log").starts_with("security => security in [logfiles]"));
}

#[test]
fn guest_outbound_names_the_dial_line_and_the_route() {
    let all = findings("worst");
    let msg = message_of(&all, "dialplan.guest-outbound");
    assert!(
        msg.contains("etc/asterisk/extensions.conf:9"),
        "names the Dial line: {msg}"
    );
    assert!(msg.contains("default → outbound"), "names the route: {msg}");
}

// ---------------------------------------------------------------- clean host

#[test]
fn clean_host_has_nothing_at_medium_or_above() {
    let all = findings("clean");
    let serious: Vec<&Value> = all
        .iter()
        .filter(|f| f["severity"] == "medium" || f["severity"] == "high")
        .collect();
    assert!(serious.is_empty(), "unexpected findings: {serious:#?}");
    let run = audit_host("clean", &["--fail-on", "medium"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
}

#[test]
fn clean_host_lists_what_it_skipped_and_why() {
    let run = audit_host("clean", &[]);
    let out = flat(&run.stdout);
    assert!(out.contains("Skipped"), "{}", run.stdout);
    assert!(
        out.contains("chan_sip checks: chan_sip.so is not loaded (etc/asterisk/modules.conf:3)"),
        "a noload'ed driver's weak sip.conf is not audited: {}",
        run.stdout
    );
    assert!(out.contains("IAX2 checks: etc/asterisk/iax.conf not found"));
}

// ---------------------------------------------------------------- tricky host

#[test]
fn tricky_chan_sip_values_overridden_by_an_include_and_templates() {
    let all = findings("tricky");
    let sip = "etc/asterisk/sip.conf";
    // allowguest = yes and alwaysauthreject = no are overridden by
    // sip_general_custom.conf, included later in [general].
    assert_eq!(with_id(&all, "sip.allowguest"), vec![]);
    assert_eq!(with_id(&all, "sip.alwaysauthreject"), vec![]);
    // `;allowtransfer = yes` is a comment; `allowtransfer = no` counts.
    assert_eq!(with_id(&all, "sip.allowtransfer"), vec![]);
    // The commented-out register line is not a registration.
    assert!(with_id(&all, "sip.trunk-registration").is_empty());
    // [6001] overrides the template's weak secret; [6002] inherits it, and
    // the finding points at the template's line.
    assert_eq!(with_id(&all, "sip.weak-secret")[0], at("high", sip, 14));
    assert!(message_of(&all, "sip.weak-secret").contains("[6002]"));
    assert!(message_of(&all, "sip.weak-secret").contains("inherited from [phone]"));
    // insecure=port,invite restricted by deny + permit is fine; qualify = no
    // on the peer overrides the general qualify = yes.
    assert!(with_id(&all, "sip.insecure-invite").is_empty());
    assert_eq!(with_id(&all, "sip.qualify"), vec![at("low", sip, 28)]);
}

#[test]
fn tricky_pjsip_secret_in_an_included_template_and_identify_for_any_source() {
    let all = findings("tricky");
    let auth = "etc/asterisk/pjsip_auth.conf";
    // [6101] overrides the template password with its own name; [6102] sets a
    // strong one: one finding, in the included file.
    let pjsip_secrets: Vec<_> = with_id(&all, "sip.weak-secret")
        .into_iter()
        .filter(|(_, f, _)| f == auth)
        .collect();
    assert_eq!(pjsip_secrets, vec![at("high", auth, 8)]);
    // The [anonymous] section's type line is commented out: not an endpoint.
    // The trunk's identify matches 0.0.0.0/0 and the trunk has no auth.
    assert_eq!(
        with_id(&all, "pjsip.anonymous"),
        vec![at("high", "etc/asterisk/pjsip.conf", 9)]
    );
    // from-trunk reaches the trunk through a Goto and then an include.
    let msg = message_of(&all, "dialplan.guest-outbound");
    assert!(
        msg.contains("from-trunk → did-routing → outbound"),
        "route through Goto and include: {msg}"
    );
}

#[test]
fn tricky_ami_and_http_overrides() {
    let all = findings("tricky");
    // bindaddr = 0.0.0.0 then bindaddr = 127.0.0.1: the later value wins, so
    // neither the bind nor the ACL/write checks fire.
    assert!(with_id(&all, "ami.public-bind").is_empty());
    assert!(with_id(&all, "ami.no-acl").is_empty());
    assert!(with_id(&all, "ami.write-all").is_empty());
    // amp111 (FreePBX's old default) is a dictionary word with digits appended.
    assert_eq!(
        with_id(&all, "ami.weak-secret"),
        vec![at("high", "etc/asterisk/manager.conf", 7)]
    );
    // The plain bindaddr is loopback (the 0.0.0.0 one is commented), but TLS
    // listens on all addresses.
    assert_eq!(
        with_id(&all, "http.public-bind"),
        vec![at("medium", "etc/asterisk/http.conf", 6)]
    );
    // [logfiles] gets `security` from an included file with a format prefix.
    assert!(with_id(&all, "asterisk.security-log").is_empty());
}

#[test]
fn tricky_sshd_first_value_wins_and_match_blocks_count() {
    let all = findings("tricky");
    let sshd = "etc/ssh/sshd_config";
    // The drop-in included first sets PermitRootLogin no and
    // PasswordAuthentication no; the later `yes` lines do not count. The Match
    // blocks' `yes` values are findings of their own.
    assert_eq!(with_id(&all, "ssh.root-login"), vec![at("high", sshd, 8)]);
    assert_eq!(
        with_id(&all, "ssh.password-auth"),
        vec![at("medium", sshd, 10)]
    );
    assert!(message_of(&all, "ssh.root-login").contains("Match User backup"));
    // `#Port 22` is a comment; the drop-in sets Port 2222.
    assert!(with_id(&all, "ssh.default-port").is_empty());
}

#[test]
fn tricky_pam_lockout_found_through_include_and_not_in_a_comment() {
    let all = findings("tricky");
    // pam_faillock comes from @include common-auth (its default deny is 3);
    // the commented pam_tally2 line would not have counted.
    assert!(with_id(&all, "pam.ssh-lockout").is_empty());

    let deny0 = findings("pam-deny0");
    // deny=0 never locks, and pam_tally2 without deny= neither (substack).
    assert_eq!(
        with_id(&deny0, "pam.ssh-lockout"),
        vec![at("medium", "etc/pam.d/sshd", 1)]
    );
}

#[test]
fn tricky_mysql_later_file_overrides_through_symlinked_my_cnf() {
    let all = findings("tricky");
    // my.cnf -> /etc/alternatives/my.cnf -> /etc/mysql/mariadb.cnf (absolute
    // links resolved inside the root); 60-replication.cnf is read after
    // 50-server.cnf and rebinds to all addresses with `bind_address`.
    assert_eq!(
        with_id(&all, "mysql.bind-address"),
        vec![at("high", "etc/mysql/mariadb.conf.d/60-replication.cnf", 3)]
    );
}

#[test]
fn tricky_web_commented_require_and_require_local() {
    let all = findings("tricky");
    // The admin Directory's `Require ip` is commented out; phpMyAdmin has
    // `Require local` and is fine.
    assert_eq!(
        with_id(&all, "web.admin-public"),
        vec![at(
            "medium",
            "etc/apache2/sites-enabled/000-default.conf",
            3
        )]
    );
}

#[test]
fn tricky_services_loopback_and_established_sockets_are_not_listeners() {
    let all = findings("tricky");
    // FTP on 127.0.0.1 only; the port-23 socket is an established connection.
    assert!(with_id(&all, "services.ftp").is_empty());
    assert!(with_id(&all, "services.telnet").is_empty());
    assert_eq!(
        with_id(&all, "services.tftp"),
        vec![at("medium", "proc/net/udp6", 2)]
    );
}

#[test]
fn tricky_ips_jail_disabled_by_a_later_drop_in() {
    let all = findings("tricky");
    assert_eq!(with_id(&all, "ips.missing").len(), 1);
    assert!(message_of(&all, "ips.missing").contains("no enabled Asterisk jail"));
    // The edge host's jail is enabled in jail.d over jail.conf's DEFAULT.
    assert!(with_id(&findings("edge"), "ips.missing").is_empty());
}

// ---------------------------------------------------------------- edge hosts

#[test]
fn edge_host_skips_unloaded_drivers_disabled_ami_and_client_only_mysql() {
    let run = audit_host("edge", &[]);
    let out = flat(&run.stdout);
    for reason in [
        "chan_sip.so is not loaded",
        "chan_iax2.so is not loaded",
        "the AMI is disabled",
        "only MySQL client configuration found",
        "no sshd configuration found",
    ] {
        assert!(out.contains(reason), "missing {reason:?}:\n{}", run.stdout);
    }
    let all = findings("edge");
    // Include cycles end; the anonymous endpoint's context does not exist and
    // the ::/0 identify's endpoint requires auth: no pjsip.anonymous.
    assert!(with_id(&all, "pjsip.anonymous").is_empty());
    // Weak secrets in sip.conf, iax.conf and a disabled AMI are not reported.
    assert!(with_id(&all, "sip.weak-secret").is_empty());
    assert!(with_id(&all, "ami.weak-secret").is_empty());
    // Apache listens on a LAN address only: phpMyAdmin is not public.
    assert!(with_id(&all, "web.admin-public").is_empty());
    // Without /proc, an enabled tftp.socket is the evidence.
    assert_eq!(
        with_id(&all, "services.tftp"),
        vec![whole(
            "medium",
            "etc/systemd/system/sockets.target.wants/tftp.socket"
        )]
    );
    assert_eq!(
        with_id(&all, "asterisk.security-log"),
        vec![whole("medium", "etc/asterisk/logger.conf")]
    );
}

#[test]
fn empty_host_skips_everything_with_reasons() {
    let run = audit_host("empty", &[]);
    let out = flat(&run.stdout);
    assert_eq!(run.code, 0);
    assert!(out.contains("No findings."));
    assert!(out.contains("MySQL checks: no MySQL configuration found"));
    assert!(out.contains("no Asterisk configuration found"));
    assert!(out.contains("0 findings"));
    assert!(findings("empty").is_empty());
}

// ---------------------------------------------------------------- exit codes

#[test]
fn exit_codes_follow_fail_on() {
    assert_eq!(
        audit_host("worst", &[]).code,
        1,
        "high findings, default --fail-on high"
    );
    assert_eq!(audit_host("clean", &[]).code, 0);
    // edge: two medium findings, nothing high.
    assert_eq!(audit_host("edge", &[]).code, 0);
    assert_eq!(audit_host("edge", &["--fail-on", "medium"]).code, 1);
    assert_eq!(audit_host("edge", &["--fail-on", "info"]).code, 1);
    assert_eq!(audit_host("empty", &["--fail-on", "info"]).code, 0);
}

#[test]
fn an_audit_that_cannot_run_exits_2_with_the_reason() {
    let run = audit(&["--root", "/nonexistent/sipshield-audit-root"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("/nonexistent/sipshield-audit-root")
            && run.stderr.contains("does not exist"),
        "{}",
        run.stderr
    );
    let file = fixture("empty").join("README");
    let run = audit(&["--root", file.to_str().expect("utf-8"), "--json"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("not a directory"), "{}", run.stderr);
    assert!(run.stdout.is_empty());
}

// ---------------------------------------------------------------- output

#[test]
fn json_is_an_array_of_exactly_the_documented_fields() {
    let run = audit_host("worst", &["--json"]);
    assert_eq!(run.code, 1);
    let all: Vec<Value> = serde_json::from_str(&run.stdout).expect("JSON array");
    assert!(!all.is_empty());
    for f in &all {
        let obj = f.as_object().expect("object");
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["file", "fix", "id", "line", "message", "severity"]);
        assert!(["info", "low", "medium", "high"].contains(&f["severity"].as_str().unwrap_or("")));
        let file = f["file"].as_str().expect("file");
        assert!(!file.starts_with('/'), "file relative to the root: {file}");
        assert!(
            fixture("worst").join(file).exists(),
            "{file} exists under the root"
        );
        assert!(f["line"].is_null() || f["line"].as_u64().is_some_and(|l| l > 0));
    }
    // A missing setting has no line.
    assert!(all
        .iter()
        .any(|f| f["id"] == "mysql.bind-address" && f["line"].is_null()));
}

#[test]
fn json_mode_keeps_skipped_checks_out_of_stdout() {
    let run = audit_host("edge", &["--json"]);
    let all: Vec<Value> = serde_json::from_str(&run.stdout).expect("JSON array");
    assert!(all.iter().all(|f| f["id"].is_string()));
    assert!(!run.stdout.contains("not loaded"));
    assert!(
        run.stderr.contains("chan_sip.so is not loaded"),
        "{}",
        run.stderr
    );
}

#[test]
fn human_output_groups_by_area_and_ends_with_a_summary() {
    let run = audit_host("worst", &[]);
    let out = &run.stdout;
    let order: Vec<usize> = [
        "Asterisk\n",
        "SSH\n",
        "PAM\n",
        "MySQL\n",
        "Web\n",
        "Services\n",
        "IPS\n",
    ]
    .iter()
    .map(|h| {
        out.find(h)
            .unwrap_or_else(|| panic!("no {h:?} group:\n{out}"))
    })
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "areas in order");
    let first_line = out
        .lines()
        .find(|l| l.contains("sip.alwaysauthreject"))
        .expect("the finding's first line");
    assert_eq!(
        first_line.split_whitespace().collect::<Vec<_>>(),
        ["medium", "sip.alwaysauthreject", "etc/asterisk/sip.conf:4"],
        "severity, check id and file:line on one line"
    );
    assert!(out.contains(
        "\n            fix: alwaysauthreject = yes in [general] of /etc/asterisk/sip.conf\n"
    ));
    let last = out.lines().last().unwrap_or("");
    assert_eq!(
        last,
        "Summary: 45 findings (20 high, 16 medium, 8 low, 1 info), 0 checks skipped"
    );
}

#[test]
fn human_output_fits_a_100_column_terminal() {
    for host in ["worst", "tricky", "edge", "clean"] {
        let run = audit_host(host, &[]);
        for line in run.stdout.lines() {
            assert!(
                line.chars().count() <= 100,
                "{host}: {} columns: {line}",
                line.chars().count()
            );
        }
    }
    // Wrapped text (messages, fixes, skip reasons) stays within 80.
    let run = audit_host("worst", &[]);
    for line in run.stdout.lines().filter(|l| l.starts_with("            ")) {
        assert!(line.chars().count() <= 80, "{line}");
    }
}

#[test]
fn secrets_are_never_printed_beyond_first_character_and_length() {
    // Every secret in the worst and tricky hosts that is long enough to be
    // unmistakable in output.
    let secrets = [
        "Password1",
        "welcome",
        "voip2020",
        "amp111",
        "Tr0ub4dor&3xyzQ",
        "changeme",
        "Xk9#mQ2vL7pR4tZw",
        "Zr8!pW3nQ6vT1xYc",
    ];
    for host in ["worst", "tricky"] {
        for args in [&[][..], &["--json"][..]] {
            let run = audit_host(host, args);
            for s in secrets {
                assert!(!run.stdout.contains(s), "{host} {args:?}: stdout shows {s}");
                assert!(!run.stderr.contains(s), "{host} {args:?}: stderr shows {s}");
            }
        }
    }
    let all = findings("worst");
    let msg = all
        .iter()
        .filter_map(|f| f["message"].as_str())
        .find(|m| m.contains("[101]"))
        .expect("peer 101 finding");
    assert!(msg.contains("secret \"w…\" (7 chars)"), "{msg}");
    let reg = message_of(&all, "sip.trunk-registration");
    assert!(reg.contains("\"P…\" (9 chars)"), "{reg}");
}

#[test]
fn a_symlink_chain_never_reads_outside_the_root() {
    use sipshield::hardening::conf::HostRoot;
    use std::os::unix::fs::symlink;
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret.conf");
    std::fs::write(&secret, "the auditing host's file\n").unwrap();
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("etc/asterisk");
    std::fs::create_dir_all(&dir).unwrap();
    // sip.conf -> l1 -> l2 -> ... -> l45 -> <absolute path of the secret>.
    // Past the resolver's hop limit the rest of the chain used to be left
    // to the kernel, which resolves the absolute link on the auditing host.
    symlink("l1", dir.join("sip.conf")).unwrap();
    for i in 1..45 {
        symlink(format!("l{}", i + 1), dir.join(format!("l{i}"))).unwrap();
    }
    symlink(&secret, dir.join("l45")).unwrap();
    let host = HostRoot::new(root.path());
    if let Ok(text) = host.read("etc/asterisk/sip.conf") {
        assert!(
            !text.contains("auditing host"),
            "read outside the root: {text}"
        );
    }
    // A loop is an error, never a hang or a read elsewhere.
    symlink("loop-b", dir.join("loop-a")).unwrap();
    symlink("loop-a", dir.join("loop-b")).unwrap();
    assert!(host.read("etc/asterisk/loop-a").is_err());
    assert!(!host.exists("etc/asterisk/loop-a"));
    // A link swapped in for the last component after resolution is not
    // followed: reads open the resolved path without following links.
    symlink(&secret, dir.join("pjsip.conf")).unwrap();
    if let Ok(text) = host.read("etc/asterisk/pjsip.conf") {
        assert!(!text.contains("auditing host"), "{text}");
    }
    // The audit as a whole reads nothing of it either.
    let report = sipshield::hardening::audit(root.path()).unwrap();
    assert!(!format!("{report:?}").contains("auditing host"));
}
