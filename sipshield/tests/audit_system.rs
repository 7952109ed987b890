//! What each host check finds (SSH, PAM, MySQL, web, services, IPS), one
//! module per check id: a case that fires, one that stays quiet, and the
//! tricky ones (first value wins, a `Match` block, an include, a comment).
//! Then how files that cannot be read are reported.

mod audit_support;

use audit_support::{at, conf, host, none, whole};

const SSHD: &str = "etc/ssh/sshd_config";
const PAM_SSHD: &str = "etc/pam.d/sshd";
const MY_CNF: &str = "etc/mysql/my.cnf";
const APACHE: &str = "etc/apache2/apache2.conf";
const TCP: &str = "proc/net/tcp";
const UDP: &str = "proc/net/udp";
const WANTS: &str = "etc/systemd/system/multi-user.target.wants";

mod ssh_root_login {
    use super::*;

    #[test]
    fn yes() {
        let h = host(&[(SSHD, &conf(&["PermitRootLogin yes"]))]);
        assert_eq!(h.hits("ssh.root-login"), [at(SSHD, 1)]);
    }

    #[test]
    fn the_default_and_prohibit_password_are_fine() {
        let unset = host(&[(SSHD, &conf(&["#PermitRootLogin yes", "Port 2222"]))]);
        assert_eq!(unset.hits("ssh.root-login"), none());
        let keys = host(&[(SSHD, &conf(&["PermitRootLogin prohibit-password"]))]);
        assert_eq!(keys.hits("ssh.root-login"), none());
    }

    #[test]
    fn the_first_value_wins_even_from_an_include() {
        let h = host(&[
            (
                SSHD,
                &conf(&[
                    "Include /etc/ssh/sshd_config.d/*.conf",
                    "PermitRootLogin yes",
                ]),
            ),
            (
                "etc/ssh/sshd_config.d/10-local.conf",
                &conf(&["PermitRootLogin no"]),
            ),
        ]);
        assert_eq!(h.hits("ssh.root-login"), none());
    }

    #[test]
    fn a_match_block_granting_it() {
        let h = host(&[(
            SSHD,
            &conf(&[
                "PermitRootLogin no",
                "Match Address 198.51.100.0/24",
                "    PermitRootLogin yes",
            ]),
        )]);
        assert_eq!(h.hits("ssh.root-login"), [at(SSHD, 3)]);
        assert!(h
            .the("ssh.root-login")
            .message
            .contains("Match Address 198.51.100.0/24"));
    }
}

mod ssh_password_auth {
    use super::*;

    #[test]
    fn passwords_on() {
        let h = host(&[(SSHD, &conf(&["PasswordAuthentication yes"]))]);
        assert_eq!(h.hits("ssh.password-auth"), [at(SSHD, 1)]);
    }

    #[test]
    fn keys_only_is_fine() {
        let h = host(&[(
            SSHD,
            &conf(&[
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM yes",
            ]),
        )]);
        assert_eq!(h.hits("ssh.password-auth"), none());
    }

    #[test]
    fn pam_keyboard_interactive_left_at_its_default() {
        let h = host(&[(SSHD, &conf(&["PasswordAuthentication no", "UsePAM yes"]))]);
        assert_eq!(h.hits("ssh.password-auth"), [at(SSHD, 2)]);
    }

    #[test]
    fn authentication_methods_that_exclude_passwords() {
        let h = host(&[(
            SSHD,
            &conf(&[
                "AuthenticationMethods publickey",
                "PasswordAuthentication yes",
                "UsePAM yes",
            ]),
        )]);
        assert_eq!(h.hits("ssh.password-auth"), none());
    }
}

mod ssh_empty_passwords {
    use super::*;

    #[test]
    fn yes() {
        let h = host(&[(SSHD, &conf(&["PermitEmptyPasswords yes"]))]);
        assert_eq!(h.hits("ssh.empty-passwords"), [at(SSHD, 1)]);
    }

    #[test]
    fn unset_is_fine() {
        let h = host(&[(SSHD, &conf(&["#PermitEmptyPasswords yes"]))]);
        assert_eq!(h.hits("ssh.empty-passwords"), none());
    }

    #[test]
    fn a_later_yes_loses_to_the_first_no() {
        let h = host(&[(
            SSHD,
            &conf(&["PermitEmptyPasswords=no", "permitemptypasswords yes"]),
        )]);
        assert_eq!(h.hits("ssh.empty-passwords"), none());
    }
}

mod ssh_default_port {
    use super::*;

    #[test]
    fn no_port_means_22() {
        let h = host(&[(SSHD, &conf(&["PermitRootLogin no"]))]);
        assert_eq!(h.hits("ssh.default-port"), [whole(SSHD)]);
        assert_eq!(h.the("ssh.default-port").severity.as_str(), "info");
    }

    #[test]
    fn another_port_is_quiet() {
        let h = host(&[(SSHD, &conf(&["#Port 22", "Port 2222"]))]);
        assert_eq!(h.hits("ssh.default-port"), none());
    }

    #[test]
    fn ports_add_up() {
        let h = host(&[(SSHD, &conf(&["Port 2222", "Port 22"]))]);
        assert_eq!(h.hits("ssh.default-port"), [at(SSHD, 2)]);
    }
}

mod pam_ssh_lockout {
    use super::*;

    const COMMON_AUTH: &str = "etc/pam.d/common-auth";

    #[test]
    fn no_lockout_module() {
        let h = host(&[
            (
                PAM_SSHD,
                &conf(&["@include common-auth", "@include common-account"]),
            ),
            (
                COMMON_AUTH,
                &conf(&[
                    "auth [success=1 default=ignore] pam_unix.so nullok",
                    "auth requisite pam_deny.so",
                ]),
            ),
            (
                "etc/pam.d/common-account",
                &conf(&["account required pam_unix.so"]),
            ),
        ]);
        assert_eq!(h.hits("pam.ssh-lockout"), [whole(PAM_SSHD)]);
    }

    #[test]
    fn faillock_in_an_included_file() {
        let h = host(&[
            (PAM_SSHD, &conf(&["@include common-auth"])),
            (
                COMMON_AUTH,
                &conf(&[
                    "auth required pam_faillock.so preauth deny=5",
                    "auth sufficient pam_unix.so",
                ]),
            ),
        ]);
        assert_eq!(h.hits("pam.ssh-lockout"), none());
    }

    #[test]
    fn deny_zero_and_a_commented_module_do_not_lock() {
        let deny0 = host(&[(
            PAM_SSHD,
            &conf(&[
                "#auth required pam_tally2.so deny=3",
                "auth required pam_faillock.so preauth deny=0",
            ]),
        )]);
        assert_eq!(deny0.hits("pam.ssh-lockout"), [at(PAM_SSHD, 2)]);
        let conf_deny0 = host(&[
            (PAM_SSHD, &conf(&["auth required pam_faillock.so preauth"])),
            (
                "etc/security/faillock.conf",
                &conf(&["# deny = 3", "deny = 0"]),
            ),
        ]);
        assert_eq!(conf_deny0.hits("pam.ssh-lockout"), [at(PAM_SSHD, 1)]);
    }

    #[test]
    fn moot_when_sshd_takes_no_passwords() {
        let h = host(&[
            (PAM_SSHD, &conf(&["auth required pam_unix.so"])),
            (
                SSHD,
                &conf(&[
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "UsePAM yes",
                ]),
            ),
        ]);
        assert_eq!(h.hits("pam.ssh-lockout"), none());
        assert!(h
            .skipped()
            .iter()
            .any(|s| s.contains("sshd accepts no passwords")));
    }
}

mod mysql_bind_address {
    use super::*;

    #[test]
    fn a_server_without_bind_address() {
        let h = host(&[(MY_CNF, &conf(&["[mysqld]", "datadir = /var/lib/mysql"]))]);
        assert_eq!(h.hits("mysql.bind-address"), [whole(MY_CNF)]);
        assert_eq!(
            h.the("mysql.bind-address").fix,
            "bind-address = 127.0.0.1 in [mysqld] of /etc/mysql/my.cnf"
        );
    }

    #[test]
    fn loopback_addresses_are_fine() {
        let h = host(&[(MY_CNF, &conf(&["[mysqld]", "bind-address = 127.0.0.1,::1"]))]);
        assert_eq!(h.hits("mysql.bind-address"), none());
    }

    #[test]
    fn a_later_drop_in_rebinds_and_client_groups_do_not_count() {
        let h = host(&[
            (
                MY_CNF,
                &conf(&[
                    "[mysqld]",
                    "bind-address = 127.0.0.1",
                    "!includedir /etc/mysql/conf.d/",
                ]),
            ),
            (
                "etc/mysql/conf.d/90-replica.cnf",
                &conf(&[
                    "[client]",
                    "bind-address = 127.0.0.1",
                    "[mariadb]",
                    "bind_address = 127.0.0.1,192.0.2.5",
                ]),
            ),
        ]);
        assert_eq!(
            h.hits("mysql.bind-address"),
            [at("etc/mysql/conf.d/90-replica.cnf", 4)]
        );
        assert!(h.the("mysql.bind-address").message.contains("192.0.2.5"));
    }

    #[test]
    fn skip_networking_means_no_listener() {
        let h = host(&[(MY_CNF, &conf(&["[mysqld]", "skip-networking"]))]);
        assert_eq!(h.hits("mysql.bind-address"), none());
    }
}

mod mysql_skip_grant_tables {
    use super::*;

    #[test]
    fn set() {
        let h = host(&[(
            MY_CNF,
            &conf(&["[mysqld]", "bind-address = 127.0.0.1", "skip-grant-tables"]),
        )]);
        assert_eq!(h.hits("mysql.skip-grant-tables"), [at(MY_CNF, 3)]);
    }

    #[test]
    fn absent_is_fine() {
        let h = host(&[(MY_CNF, &conf(&["[mysqld]", "bind-address = 127.0.0.1"]))]);
        assert_eq!(h.hits("mysql.skip-grant-tables"), none());
    }

    #[test]
    fn spelling_loose_prefix_comments_and_groups() {
        let on = host(&[(MY_CNF, &conf(&["[mysqld]", "loose_skip_grant_tables = ON"]))]);
        assert_eq!(on.hits("mysql.skip-grant-tables"), [at(MY_CNF, 2)]);
        let off = host(&[(
            MY_CNF,
            &conf(&[
                "[mysqld]",
                "# skip-grant-tables",
                "skip-grant-tables = OFF",
                "[mysqldump]",
                "skip-grant-tables",
            ]),
        )]);
        assert_eq!(off.hits("mysql.skip-grant-tables"), none());
    }
}

mod web_admin_public {
    use super::*;

    const FREEPBX: &str = "var/www/html/admin/config.php";

    #[test]
    fn freepbx_under_a_public_document_root() {
        let h =
            host(&[(APACHE, &conf(&["Listen 80", "DocumentRoot /var/www/html"]))]).touch(FREEPBX);
        assert_eq!(h.hits("web.admin-public"), [at(APACHE, 2)]);
    }

    #[test]
    fn restricted_to_the_lan() {
        let h = host(&[(
            APACHE,
            &conf(&[
                "Listen 80",
                "DocumentRoot /var/www/html",
                "<Directory /var/www/html/admin>",
                "  Require ip 192.168.1.0/24",
                "</Directory>",
            ]),
        )])
        .touch(FREEPBX);
        assert_eq!(h.hits("web.admin-public"), none());
    }

    #[test]
    fn a_commented_require_and_a_location_that_overrides_the_directory() {
        let h = host(&[(
            APACHE,
            &conf(&[
                "Listen 80",
                "DocumentRoot /var/www/html",
                "<Directory /var/www/html/admin>",
                "  # Require ip 192.168.1.0/24",
                "  Require local",
                "</Directory>",
                "<Location /admin>",
                "  Require all granted",
                "</Location>",
            ]),
        )])
        .touch(FREEPBX);
        // Apache applies <Location> after <Directory>: the Location's
        // `Require all granted` wins, and is the block to change.
        assert_eq!(h.hits("web.admin-public"), [at(APACHE, 7)]);
    }

    #[test]
    fn a_partial_tree_with_sites_enabled_but_no_apache2_conf_is_still_checked() {
        // A container image or a copied /etc: the site is there, the main
        // file is not. Debian's default apache2.conf (and ports.conf's
        // Listen 80) is assumed.
        let site = "etc/apache2/sites-enabled/000-default.conf";
        let h = host(&[(
            site,
            &conf(&[
                "<VirtualHost *:80>",
                "  DocumentRoot /var/www/html",
                "</VirtualHost>",
            ]),
        )])
        .touch(FREEPBX);
        assert_eq!(h.hits("web.admin-public"), [at(site, 2)]);
        let report = h.report();
        assert!(
            !report
                .skipped
                .iter()
                .any(|s| s.checks.contains("web.admin-public")),
            "{:?}",
            report.skipped
        );
    }

    #[test]
    fn listening_on_a_lan_address_only() {
        let h = host(&[
            (
                APACHE,
                &conf(&[
                    "Listen 192.168.1.10:80",
                    "IncludeOptional conf-enabled/*.conf",
                ]),
            ),
            (
                "etc/apache2/conf-enabled/phpmyadmin.conf",
                &conf(&[
                    "Alias /phpmyadmin /usr/share/phpmyadmin",
                    "<Directory /usr/share/phpmyadmin>",
                    "Require all granted",
                    "</Directory>",
                ]),
            ),
        ]);
        assert_eq!(h.hits("web.admin-public"), none());
    }
}

/// A /proc/net table: a header, then `(local, remote, state)` per socket.
fn table(rows: &[(&str, &str, &str)]) -> String {
    let mut text = String::from("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n");
    for (i, (local, remote, state)) in rows.iter().enumerate() {
        text += &format!("  {i}: {local} {remote} {state} 00000000:00000000 00:00000000 00000000     0        0 100{i} 1\n");
    }
    text
}

const ANY_V6: &str = "00000000000000000000000000000000";

mod services_listeners {
    use super::*;

    #[test]
    fn ftp_tftp_and_telnet_on_all_addresses() {
        let h = host(&[
            (
                TCP,
                &table(&[
                    ("00000000:0015", "00000000:0000", "0A"),
                    ("00000000:0017", "00000000:0000", "0A"),
                ]),
            ),
            (UDP, &table(&[("00000000:0045", "00000000:0000", "07")])),
        ]);
        assert_eq!(h.hits("services.ftp"), [at(TCP, 2)]);
        assert_eq!(h.hits("services.telnet"), [at(TCP, 3)]);
        assert_eq!(h.hits("services.tftp"), [at(UDP, 2)]);
    }

    #[test]
    fn loopback_listeners_and_other_ports_are_fine() {
        let h = host(&[
            (
                TCP,
                &table(&[
                    ("0100007F:0015", "00000000:0000", "0A"),
                    ("00000000:08AE", "00000000:0000", "0A"),
                ]),
            ),
            (UDP, &table(&[("0100007F:0045", "00000000:0000", "07")])),
        ]);
        for id in ["services.ftp", "services.tftp", "services.telnet"] {
            assert_eq!(h.hits(id), none(), "{id}");
        }
    }

    #[test]
    fn connections_are_not_listeners_and_ipv6_counts() {
        let v6_any_21 = format!("{ANY_V6}:0015");
        let v6_none = format!("{ANY_V6}:0000");
        let h = host(&[
            (TCP, &table(&[("0A01A8C0:0017", "0201A8C0:D431", "01")])),
            ("proc/net/tcp6", &table(&[(&v6_any_21, &v6_none, "0A")])),
            (UDP, &table(&[("0A01A8C0:0045", "0201A8C0:D431", "01")])),
        ]);
        assert_eq!(
            h.hits("services.telnet"),
            none(),
            "an established telnet session"
        );
        assert_eq!(h.hits("services.tftp"), none(), "a connected UDP socket");
        assert_eq!(h.hits("services.ftp"), [at("proc/net/tcp6", 2)]);
    }

    #[test]
    fn without_proc_an_enabled_unit_is_the_evidence() {
        let h = host(&[]).touch(&format!("{WANTS}/vsftpd.service"));
        assert_eq!(
            h.hits("services.ftp"),
            [whole(&format!("{WANTS}/vsftpd.service"))]
        );
        let nothing = host(&[("etc/hostname", "pbx\n")]);
        assert!(nothing
            .skipped()
            .iter()
            .any(|s| s.starts_with("services.ftp, services.tftp, services.telnet")));
    }
}

mod ips_missing {
    use super::*;

    const SIP: (&str, &str) = ("etc/asterisk/sip.conf", "[general]\n");

    #[test]
    fn a_pbx_with_nothing_watching_it() {
        let h = host(&[SIP]);
        assert_eq!(h.hits("ips.missing"), [whole(WANTS)]);
    }

    #[test]
    fn sipshield_enabled_at_boot() {
        let h = host(&[SIP]).touch(&format!("{WANTS}/sipshield.service"));
        assert_eq!(h.hits("ips.missing"), none());
    }

    #[test]
    fn a_fail2ban_jail_turned_off_by_a_local_override() {
        let h = host(&[
            SIP,
            (
                "etc/fail2ban/jail.conf",
                &conf(&[
                    "[DEFAULT]",
                    "enabled = false",
                    "[asterisk]",
                    "enabled = true",
                ]),
            ),
            (
                "etc/fail2ban/jail.local",
                &conf(&["[asterisk]", "enabled = false"]),
            ),
        ])
        .touch(&format!("{WANTS}/fail2ban.service"));
        assert_eq!(h.hits("ips.missing"), [whole(WANTS)]);
        assert!(h
            .the("ips.missing")
            .message
            .contains("no enabled Asterisk jail"));
    }

    #[test]
    fn fail2ban_started_by_a_sysv_link_with_an_enabled_jail() {
        let h = host(&[
            SIP,
            (
                "etc/fail2ban/jail.d/asterisk.local",
                &conf(&["[asterisk]", "enabled = true"]),
            ),
        ])
        .touch("etc/rc3.d/S02fail2ban");
        assert_eq!(h.hits("ips.missing"), none());
    }

    #[test]
    fn no_pbx_no_check() {
        let h = host(&[(SSHD, "Port 2222\n")]);
        assert_eq!(h.hits("ips.missing"), none());
        assert!(h
            .skipped()
            .iter()
            .any(|s| s.starts_with("ips.missing: no Asterisk configuration found")));
    }
}

mod unreadable_files {
    use super::*;

    #[test]
    fn an_unreadable_config_skips_its_checks_with_the_reason() {
        let h = host(&[("etc/asterisk/extensions.conf", "[default]\n")])
            .unreadable("etc/asterisk/sip.conf");
        let skipped = h.skipped();
        assert!(
            skipped
                .iter()
                .any(|s| s.starts_with("chan_sip checks: cannot read etc/asterisk/sip.conf")),
            "{skipped:#?}"
        );
        assert_eq!(h.hits("sip.allowguest"), none());
    }

    #[test]
    fn an_unreadable_include_is_listed_and_the_rest_is_still_checked() {
        let h = host(&[
            (
                "etc/asterisk/sip.conf",
                &conf(&["[general]", "#include sip_secrets.conf", "allowguest = yes"]),
            ),
            (
                SSHD,
                &conf(&[
                    "Include /etc/ssh/sshd_config.d/*.conf",
                    "PermitRootLogin yes",
                ]),
            ),
        ])
        .unreadable("etc/asterisk/sip_secrets.conf")
        .unreadable("etc/ssh/sshd_config.d/50-locked.conf");
        let skipped = h.skipped();
        for expected in [
            "chan_sip checks (in part): etc/asterisk/sip_secrets.conf, included at etc/asterisk/sip.conf:2:",
            "SSH checks (in part): etc/ssh/sshd_config.d/50-locked.conf, included at etc/ssh/sshd_config:1:",
        ] {
            assert!(skipped.iter().any(|s| s.starts_with(expected)), "{expected}\n{skipped:#?}");
        }
        assert_eq!(h.hits("sip.allowguest"), [at("etc/asterisk/sip.conf", 3)]);
        assert_eq!(h.hits("ssh.root-login"), [at(SSHD, 2)]);
    }

    #[test]
    fn a_missing_include_is_listed_a_missing_tryinclude_is_not() {
        let h = host(&[(
            "etc/asterisk/manager.conf",
            &conf(&[
                "[general]",
                "enabled = yes",
                "bindaddr = 127.0.0.1",
                "#include manager_custom.conf",
                "#tryinclude manager_additional.conf",
            ]),
        )]);
        let skipped = h.skipped();
        assert!(
            skipped
                .iter()
                .any(|s| s.contains("etc/asterisk/manager_custom.conf")),
            "{skipped:#?}"
        );
        assert!(
            !skipped
                .iter()
                .any(|s| s.contains("manager_additional.conf")),
            "{skipped:#?}"
        );
    }

    #[test]
    fn include_cycles_in_every_format_end() {
        let h = host(&[
            (
                "etc/asterisk/sip.conf",
                &conf(&[
                    "[general]",
                    "#include sip.conf",
                    "#include *.conf",
                    "allowguest = no",
                ]),
            ),
            (
                SSHD,
                &conf(&["Include /etc/ssh/sshd_config", "Include *", "Port 2222"]),
            ),
            (
                PAM_SSHD,
                &conf(&[
                    "@include sshd",
                    "auth substack sshd",
                    "auth required pam_faillock.so deny=5",
                ]),
            ),
            (
                MY_CNF,
                &conf(&[
                    "!include /etc/mysql/my.cnf",
                    "!includedir /etc/mysql",
                    "[mysqld]",
                    "bind-address = 127.0.0.1",
                ]),
            ),
            (
                APACHE,
                &conf(&[
                    "Include apache2.conf",
                    "IncludeOptional *.conf",
                    "Listen 127.0.0.1:80",
                ]),
            ),
        ]);
        let report = h.report();
        let ids: Vec<&str> = report.findings.iter().map(|f| f.id).collect();
        for quiet in [
            "sip.allowguest",
            "ssh.default-port",
            "pam.ssh-lockout",
            "mysql.bind-address",
            "web.admin-public",
        ] {
            assert!(!ids.contains(&quiet), "{quiet} in {ids:?}");
        }
    }
}
