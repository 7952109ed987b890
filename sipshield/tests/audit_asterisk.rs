//! What each Asterisk check finds, one module per check id: a case that
//! fires, one that stays quiet, and the tricky ones (a later override, a
//! template, an include, a commented-out line).

mod audit_support;

use audit_support::{at, conf, host, none, whole};
use sipshield::hardening::Severity;

const SIP: &str = "etc/asterisk/sip.conf";
const PJSIP: &str = "etc/asterisk/pjsip.conf";
const IAX: &str = "etc/asterisk/iax.conf";
const MANAGER: &str = "etc/asterisk/manager.conf";
const HTTP: &str = "etc/asterisk/http.conf";
const ARI: &str = "etc/asterisk/ari.conf";
const LOGGER: &str = "etc/asterisk/logger.conf";
const ASTERISK: &str = "etc/asterisk/asterisk.conf";
const EXTENSIONS: &str = "etc/asterisk/extensions.conf";
const STRONG: &str = "Vq7#tL2x9Pz!kR4m";

/// An enabled AMI on all addresses with `user` lines for one user.
fn public_ami(user: &[&str]) -> String {
    let mut lines = vec!["[general]", "enabled = yes", "", "[admin]"];
    lines.extend_from_slice(user);
    conf(&lines)
}

mod sip_weak_secret {
    use super::*;

    #[test]
    fn a_peer_secret_equal_to_its_extension() {
        let h = host(&[(
            SIP,
            &conf(&["[6001]", "type = friend", "host = dynamic", "secret = 6001"]),
        )]);
        assert_eq!(h.hits("sip.weak-secret"), [at(SIP, 4)]);
        let message = h.the("sip.weak-secret").message;
        assert!(
            message.contains("digits only") && message.contains("equal to the account name"),
            "{message}"
        );
    }

    #[test]
    fn a_long_random_secret_is_fine() {
        let h = host(&[(
            SIP,
            &conf(&[
                "[6001]",
                "type = friend",
                "host = dynamic",
                &format!("secret = {STRONG}"),
            ]),
        )]);
        assert_eq!(h.hits("sip.weak-secret"), none());
    }

    #[test]
    fn a_template_secret_counts_where_it_is_not_overridden() {
        let h = host(&[(
            SIP,
            &conf(&[
                "[phone](!)",
                "type = friend",
                "host = dynamic",
                "secret = letmein",
                "[6001](phone)",
                &format!("secret = {STRONG}"),
                "[6002](phone)",
            ]),
        )]);
        assert_eq!(
            h.hits("sip.weak-secret"),
            [at(SIP, 4)],
            "only [6002], at the template's line"
        );
        let message = h.the("sip.weak-secret").message;
        assert!(
            message.contains("[6002]") && message.contains("inherited from [phone]"),
            "{message}"
        );
    }

    #[test]
    fn a_commented_out_weak_secret_does_not_count() {
        let h = host(&[(
            SIP,
            &conf(&[
                "[6001]",
                "type = friend",
                ";secret = 1234",
                &format!("secret = {STRONG} ; rotated"),
            ]),
        )]);
        assert_eq!(h.hits("sip.weak-secret"), none());
    }

    #[test]
    fn pjsip_auth_passwords_and_iax_secrets_too() {
        let h = host(&[
            (
                PJSIP,
                &conf(&[
                    "[6001]",
                    "type = auth",
                    "auth_type = userpass",
                    "username = 6001",
                    "password = Welcome1!",
                ]),
            ),
            (
                IAX,
                &conf(&[
                    "[general]",
                    "[branch]",
                    "type = friend",
                    "secret = asterisk",
                ]),
            ),
        ]);
        assert_eq!(h.hits("sip.weak-secret"), [at(PJSIP, 5), at(IAX, 4)]);
    }

    #[test]
    fn a_pjsip_md5_credential_is_not_a_password() {
        let h = host(&[(
            PJSIP,
            &conf(&[
                "[6001]",
                "type = auth",
                "auth_type = md5",
                "username = 6001",
                "md5_cred = 0123456789abcdef0123456789abcdef",
                "password = 6001",
            ]),
        )]);
        assert_eq!(h.hits("sip.weak-secret"), none());
    }

    #[test]
    fn a_registration_password_from_an_included_file() {
        let h = host(&[
            (
                SIP,
                &conf(&[
                    "[general]",
                    "allowguest = no",
                    "#include sip_registrations.conf",
                ]),
            ),
            (
                "etc/asterisk/sip_registrations.conf",
                &conf(&["register => 4155551234:trunk2024@sip.example.net"]),
            ),
        ]);
        assert_eq!(
            h.hits("sip.weak-secret"),
            [at("etc/asterisk/sip_registrations.conf", 1)]
        );
    }
}

mod ami_weak_secret {
    use super::*;

    #[test]
    fn a_dictionary_secret() {
        let h = host(&[(MANAGER, &public_ami(&["secret = amp111"]))]);
        assert_eq!(h.hits("ami.weak-secret"), [at(MANAGER, 5)]);
    }

    #[test]
    fn a_strong_secret_is_fine() {
        let h = host(&[(MANAGER, &public_ami(&[&format!("secret = {STRONG}")]))]);
        assert_eq!(h.hits("ami.weak-secret"), none());
    }

    #[test]
    fn a_disabled_ami_is_skipped_not_judged() {
        let h = host(&[(
            MANAGER,
            &conf(&["[general]", ";enabled = yes", "[admin]", "secret = admin"]),
        )]);
        assert_eq!(h.hits("ami.weak-secret"), none());
        assert!(
            h.skipped()
                .iter()
                .any(|s| s.contains("the AMI is disabled")),
            "{:?}",
            h.skipped()
        );
    }

    #[test]
    fn a_secret_set_again_in_an_appended_section_wins() {
        let h = host(&[(
            MANAGER,
            &conf(&[
                "[general]",
                "enabled = yes",
                "bindaddr = 127.0.0.1",
                "[admin]",
                &format!("secret = {STRONG}"),
                "[admin](+)",
                "secret = admin123",
            ]),
        )]);
        assert_eq!(h.hits("ami.weak-secret"), [at(MANAGER, 7)]);
    }
}

mod ami_public_bind {
    use super::*;

    #[test]
    fn no_bindaddr_means_all_addresses() {
        let h = host(&[(MANAGER, &public_ami(&[]))]);
        assert_eq!(
            h.hits("ami.public-bind"),
            [at(MANAGER, 2)],
            "points at enabled = yes"
        );
        assert_eq!(
            h.the("ami.public-bind").fix,
            "bindaddr = 127.0.0.1 in [general] of /etc/asterisk/manager.conf"
        );
    }

    #[test]
    fn loopback_is_fine() {
        let h = host(&[(
            MANAGER,
            &conf(&["[general]", "enabled = yes", "bindaddr = 127.0.0.1"]),
        )]);
        assert_eq!(h.hits("ami.public-bind"), none());
    }

    #[test]
    fn a_later_bindaddr_overrides_the_loopback_one() {
        let h = host(&[
            (
                MANAGER,
                &conf(&[
                    "[general]",
                    "enabled = yes",
                    "bindaddr = 127.0.0.1",
                    "#include manager_general_custom.conf",
                ]),
            ),
            (
                "etc/asterisk/manager_general_custom.conf",
                &conf(&["; remote dashboard", "bindaddr = 0.0.0.0"]),
            ),
        ]);
        assert_eq!(
            h.hits("ami.public-bind"),
            [at("etc/asterisk/manager_general_custom.conf", 2)]
        );
    }
}

mod ami_no_acl {
    use super::*;

    #[test]
    fn a_user_without_deny_and_permit() {
        let h = host(&[(MANAGER, &public_ami(&[&format!("secret = {STRONG}")]))]);
        assert_eq!(h.hits("ami.no-acl"), [at(MANAGER, 4)]);
    }

    #[test]
    fn deny_then_permit_restricts() {
        let h = host(&[(
            MANAGER,
            &public_ami(&[
                &format!("secret = {STRONG}"),
                "deny = 0.0.0.0/0.0.0.0",
                "permit = 192.168.1.0/255.255.255.0",
            ]),
        )]);
        assert_eq!(h.hits("ami.no-acl"), none());
    }

    #[test]
    fn permit_alone_restricts_nothing() {
        let h = host(&[(
            MANAGER,
            &public_ami(&[
                &format!("secret = {STRONG}"),
                "permit = 192.168.1.0/255.255.255.0",
            ]),
        )]);
        assert_eq!(h.hits("ami.no-acl"), [at(MANAGER, 4)]);
        assert!(h
            .the("ami.no-acl")
            .message
            .contains("permit alone restricts nothing"));
    }

    #[test]
    fn an_acl_inherited_from_a_template_counts() {
        let h = host(&[(
            MANAGER,
            &conf(&[
                "[general]",
                "enabled = yes",
                "[lan-only](!)",
                "deny = 0.0.0.0/0.0.0.0",
                "permit = 192.168.1.0/255.255.255.0",
                "[admin](lan-only)",
                &format!("secret = {STRONG}"),
            ]),
        )]);
        assert_eq!(h.hits("ami.no-acl"), none());
        assert_eq!(
            h.hits("ami.public-bind"),
            [at(MANAGER, 2)],
            "the bind is still public"
        );
    }
}

mod ami_write_all {
    use super::*;

    #[test]
    fn system_writes_from_anywhere() {
        let h = host(&[(
            MANAGER,
            &public_ami(&[&format!("secret = {STRONG}"), "write = system,call"]),
        )]);
        assert_eq!(h.hits("ami.write-all"), [at(MANAGER, 6)]);
    }

    #[test]
    fn call_and_originate_only_are_fine() {
        let h = host(&[(
            MANAGER,
            &public_ami(&[&format!("secret = {STRONG}"), "write = call,originate"]),
        )]);
        assert_eq!(h.hits("ami.write-all"), none());
    }

    #[test]
    fn all_is_fine_when_only_loopback_may_log_in() {
        let h = host(&[(
            MANAGER,
            &public_ami(&[
                &format!("secret = {STRONG}"),
                "deny = 0.0.0.0/0.0.0.0",
                "permit = 127.0.0.1/255.255.255.255",
                "write = all",
            ]),
        )]);
        assert_eq!(h.hits("ami.write-all"), none());
    }
}

mod http_public_bind {
    use super::*;

    #[test]
    fn enabled_on_all_addresses() {
        let h = host(&[(
            HTTP,
            &conf(&[
                "[general]",
                "enabled = yes",
                "bindaddr = 0.0.0.0",
                "bindport = 8088",
            ]),
        )]);
        assert_eq!(h.hits("http.public-bind"), [at(HTTP, 3)]);
    }

    #[test]
    fn a_disabled_server_does_not_listen() {
        let h = host(&[(
            HTTP,
            &conf(&["[general]", ";enabled = yes", "bindaddr = 0.0.0.0"]),
        )]);
        assert_eq!(h.hits("http.public-bind"), none());
    }

    #[test]
    fn loopback_http_but_public_tls() {
        let h = host(&[(
            HTTP,
            &conf(&[
                "[general]",
                "enabled = yes",
                "bindaddr = 127.0.0.1",
                "tlsenable = yes",
                "tlsbindaddr = 0.0.0.0:8089",
            ]),
        )]);
        assert_eq!(h.hits("http.public-bind"), [at(HTTP, 5)]);
        assert!(h
            .the("http.public-bind")
            .fix
            .starts_with("tlsbindaddr = 127.0.0.1"));
    }
}

mod ari_weak_secret {
    use super::*;

    #[test]
    fn a_plain_password_equal_to_the_user() {
        let h = host(&[(
            ARI,
            &conf(&[
                "[general]",
                "enabled = yes",
                "[asterisk]",
                "type = user",
                "password = asterisk",
            ]),
        )]);
        assert_eq!(h.hits("ari.weak-secret"), [at(ARI, 5)]);
    }

    #[test]
    fn a_strong_password_is_fine() {
        let h = host(&[(
            ARI,
            &conf(&[
                "[dashboard]",
                "type = user",
                &format!("password = {STRONG}"),
            ]),
        )]);
        assert_eq!(h.hits("ari.weak-secret"), none());
    }

    #[test]
    fn a_crypt_hash_is_not_judged_as_a_password() {
        let h = host(&[(
            ARI,
            &conf(&[
                "[dashboard]",
                "type = user",
                "password_format = crypt",
                "password = $6$rounds=5000$abc$def",
            ]),
        )]);
        assert_eq!(h.hits("ari.weak-secret"), none());
    }
}

mod sip_allowguest {
    use super::*;

    #[test]
    fn not_set_means_yes() {
        let h = host(&[(SIP, &conf(&["[general]", "context = default"]))]);
        assert_eq!(h.hits("sip.allowguest"), [at(SIP, 1)]);
        assert_eq!(
            h.the("sip.allowguest").fix,
            "allowguest = no in [general] of /etc/asterisk/sip.conf"
        );
    }

    #[test]
    fn no_is_fine() {
        let h = host(&[(SIP, &conf(&["[general]", "allowguest = no"]))]);
        assert_eq!(h.hits("sip.allowguest"), none());
    }

    #[test]
    fn an_include_read_later_turns_it_back_on() {
        let h = host(&[
            (
                SIP,
                &conf(&[
                    "[general]",
                    "allowguest = no",
                    "#include sip_general_custom.conf",
                ]),
            ),
            (
                "etc/asterisk/sip_general_custom.conf",
                &conf(&["allowguest = yes"]),
            ),
        ]);
        assert_eq!(
            h.hits("sip.allowguest"),
            [at("etc/asterisk/sip_general_custom.conf", 1)]
        );
    }

    #[test]
    fn a_driver_that_is_not_loaded_is_skipped() {
        let h = host(&[
            (SIP, &conf(&["[general]", "allowguest = yes"])),
            (
                "etc/asterisk/modules.conf",
                &conf(&["[modules]", "autoload = yes", "noload => chan_sip.so"]),
            ),
        ]);
        assert_eq!(h.hits("sip.allowguest"), none());
        assert!(h
            .skipped()
            .iter()
            .any(|s| s.contains("chan_sip.so is not loaded")));
    }
}

mod sip_alwaysauthreject {
    use super::*;

    #[test]
    fn not_set() {
        let h = host(&[(SIP, &conf(&["[general]", "allowguest = no"]))]);
        assert_eq!(h.hits("sip.alwaysauthreject"), [at(SIP, 1)]);
    }

    #[test]
    fn yes_is_fine() {
        let h = host(&[(SIP, &conf(&["[general]", "alwaysauthreject = yes"]))]);
        assert_eq!(h.hits("sip.alwaysauthreject"), none());
    }

    #[test]
    fn the_last_value_wins() {
        let h = host(&[(
            SIP,
            &conf(&[
                "[general]",
                "alwaysauthreject = yes",
                "alwaysauthreject = no ; debugging",
            ]),
        )]);
        assert_eq!(h.hits("sip.alwaysauthreject"), [at(SIP, 3)]);
    }
}

mod sip_allowtransfer {
    use super::*;

    #[test]
    fn not_set_means_yes() {
        let h = host(&[(SIP, &conf(&["[general]", "allowguest = no"]))]);
        assert_eq!(h.hits("sip.allowtransfer"), [at(SIP, 1)]);
    }

    #[test]
    fn no_is_fine() {
        let h = host(&[(SIP, &conf(&["[general]", "allowtransfer = no"]))]);
        assert_eq!(h.hits("sip.allowtransfer"), none());
    }

    #[test]
    fn a_peer_turning_it_back_on_without_an_acl() {
        let h = host(&[(
            SIP,
            &conf(&[
                "[general]",
                "allowtransfer = no",
                "[reception](!)",
                "allowtransfer = yes",
                "[6001](reception)",
                "type = friend",
                &format!("secret = {STRONG}"),
                "qualify = yes",
            ]),
        )]);
        assert_eq!(h.hits("sip.allowtransfer"), [at(SIP, 4)]);
    }
}

mod sip_no_secret {
    use super::*;

    #[test]
    fn a_dynamic_peer_without_secret() {
        let h = host(&[(SIP, &conf(&["[6001]", "type = friend", "host = dynamic"]))]);
        assert_eq!(h.hits("sip.no-secret"), [at(SIP, 1)]);
    }

    #[test]
    fn an_acl_limits_who_can_register() {
        let h = host(&[(
            SIP,
            &conf(&[
                "[6001]",
                "type = friend",
                "host = dynamic",
                "deny = 0.0.0.0/0.0.0.0",
                "permit = 192.168.1.0/255.255.255.0",
            ]),
        )]);
        assert_eq!(h.hits("sip.no-secret"), none());
    }

    #[test]
    fn a_secret_from_a_template_counts() {
        let h = host(&[(
            SIP,
            &conf(&[
                "[phone](!)",
                &format!("secret = {STRONG}"),
                "[6001](phone)",
                "type = friend",
                "host = dynamic",
            ]),
        )]);
        assert_eq!(h.hits("sip.no-secret"), none());
    }
}

mod sip_insecure_invite {
    use super::*;

    #[test]
    fn a_peer_taking_invites_from_anywhere() {
        // host=dynamic: no fixed address to match calls by, so anyone who
        // names the peer gets in.
        let h = host(&[(
            SIP,
            &conf(&[
                "[provider]",
                "type = peer",
                "host = dynamic",
                "insecure = port,invite",
            ]),
        )]);
        assert_eq!(h.hits("sip.insecure-invite"), [at(SIP, 4)]);
        assert_eq!(h.the("sip.insecure-invite").severity, Severity::Medium);
        let no_host = host(&[(SIP, &conf(&["[p]", "type = peer", "insecure = invite"]))]);
        assert_eq!(
            no_host.the("sip.insecure-invite").severity,
            Severity::Medium
        );
    }

    #[test]
    fn an_ip_authenticated_trunk_with_a_fixed_host_is_low() {
        // The way the hardening checklist sets up a provider trunk: chan_sip
        // matches its INVITEs by the fixed host's address (and port unless
        // insecure=port). deny/permit is defence in depth there.
        for host_line in ["host = sip.example.net", "host = 203.0.113.10"] {
            let h = host(&[(
                SIP,
                &conf(&[
                    "[provider]",
                    "type = peer",
                    host_line,
                    "insecure = port,invite",
                ]),
            )]);
            let f = h.the("sip.insecure-invite");
            assert_eq!(f.severity, Severity::Low, "{host_line}: {f:?}");
            assert_eq!((f.file.as_str(), f.line), (SIP, Some(4)));
        }
    }

    #[test]
    fn restricted_to_the_provider_address() {
        let h = host(&[(
            SIP,
            &conf(&[
                "[provider]",
                "type = peer",
                "insecure = invite",
                "deny = 0.0.0.0/0.0.0.0",
                "permit = 203.0.113.10/255.255.255.255",
            ]),
        )]);
        assert_eq!(h.hits("sip.insecure-invite"), none());
    }

    #[test]
    fn insecure_port_alone_still_authenticates() {
        let h = host(&[(
            SIP,
            &conf(&[
                "[provider]",
                "type = peer",
                ";insecure = invite",
                "insecure = port",
            ]),
        )]);
        assert_eq!(h.hits("sip.insecure-invite"), none());
    }
}

mod pjsip_anonymous {
    use super::*;

    const DIALPLAN: &str = "[from-external]\nexten => _X.,1,Hangup()\n";

    #[test]
    fn the_anonymous_endpoint_with_an_existing_context() {
        let h = host(&[
            (
                PJSIP,
                &conf(&["[anonymous]", "type = endpoint", "context = from-external"]),
            ),
            (EXTENSIONS, DIALPLAN),
        ]);
        assert_eq!(h.hits("pjsip.anonymous"), [at(PJSIP, 3)]);
    }

    #[test]
    fn a_context_that_does_not_exist_goes_nowhere() {
        let h = host(&[
            (
                PJSIP,
                &conf(&["[anonymous]", "type = endpoint", "context = nowhere"]),
            ),
            (EXTENSIONS, DIALPLAN),
        ]);
        assert_eq!(h.hits("pjsip.anonymous"), none());
    }

    #[test]
    fn an_identify_for_every_source_address() {
        let h = host(&[
            (
                PJSIP,
                &conf(&[
                    "[trunk]",
                    "type = endpoint",
                    "context = from-external",
                    "[trunk-identify]",
                    "type = identify",
                    "endpoint = trunk",
                    "match = 203.0.113.10",
                    "match = 0.0.0.0/0",
                ]),
            ),
            (EXTENSIONS, DIALPLAN),
        ]);
        assert_eq!(h.hits("pjsip.anonymous"), [at(PJSIP, 3)]);
        assert_eq!(h.hits("pjsip.no-auth"), none(), "one finding per endpoint");
    }

    #[test]
    fn a_commented_out_type_is_not_an_endpoint() {
        let h = host(&[
            (
                PJSIP,
                &conf(&["[anonymous]", ";type = endpoint", "context = from-external"]),
            ),
            (EXTENSIONS, DIALPLAN),
        ]);
        assert_eq!(h.hits("pjsip.anonymous"), none());
    }
}

mod pjsip_no_auth {
    use super::*;

    const DIALPLAN: &str = "[internal]\nexten => _6XXX,1,Dial(PJSIP/${EXTEN})\n";

    #[test]
    fn a_phone_without_auth_is_anyone_who_says_its_name() {
        let h = host(&[
            (
                PJSIP,
                &conf(&[
                    "[6001]",
                    "type = endpoint",
                    "context = internal",
                    "aors = 6001",
                ]),
            ),
            (EXTENSIONS, DIALPLAN),
        ]);
        assert_eq!(h.hits("pjsip.no-auth"), [at(PJSIP, 1)]);
        assert!(h
            .the("pjsip.no-auth")
            .fix
            .starts_with("auth = 6001-auth in [6001]"));
    }

    #[test]
    fn a_trunk_identified_by_ip_only_is_fine() {
        let h = host(&[
            (
                PJSIP,
                &conf(&[
                    "[provider]",
                    "type = endpoint",
                    "context = internal",
                    "identify_by = ip",
                    "[provider-identify]",
                    "type = identify",
                    "endpoint = provider",
                    "match = 203.0.113.10/32",
                ]),
            ),
            (EXTENSIONS, DIALPLAN),
        ]);
        assert_eq!(h.hits("pjsip.no-auth"), none());
    }

    #[test]
    fn a_trunk_with_an_ip_identify_but_default_identify_by() {
        let h = host(&[
            (
                PJSIP,
                &conf(&[
                    "[provider]",
                    "type = endpoint",
                    "context = internal",
                    "[provider-identify]",
                    "type = identify",
                    "endpoint = provider",
                    "match = 203.0.113.10/32",
                ]),
            ),
            (EXTENSIONS, DIALPLAN),
        ]);
        assert_eq!(h.hits("pjsip.no-auth"), [at(PJSIP, 1)]);
        assert!(h
            .the("pjsip.no-auth")
            .fix
            .starts_with("identify_by = ip in [provider]"));
    }

    #[test]
    fn auth_from_a_template_counts() {
        let h = host(&[
            (
                PJSIP,
                &conf(&[
                    "[phone](!)",
                    "type = endpoint",
                    "auth = phone-auth",
                    "[6001](phone)",
                    "context = internal",
                ]),
            ),
            (EXTENSIONS, DIALPLAN),
        ]);
        assert_eq!(h.hits("pjsip.no-auth"), none());
    }

    #[test]
    fn an_endpoint_acl_or_a_global_acl_restricts_it() {
        let endpoint_acl = host(&[
            (
                PJSIP,
                &conf(&[
                    "[6001]",
                    "type = endpoint",
                    "context = internal",
                    "deny = 0.0.0.0/0",
                    "permit = 192.168.1.0/24",
                ]),
            ),
            (EXTENSIONS, DIALPLAN),
        ]);
        assert_eq!(endpoint_acl.hits("pjsip.no-auth"), none());
        let global_acl = host(&[
            (
                PJSIP,
                &conf(&[
                    "[lan]",
                    "type = acl",
                    "deny = 0.0.0.0/0",
                    "permit = 192.168.1.0/24",
                    "[6001]",
                    "type = endpoint",
                    "context = internal",
                ]),
            ),
            (EXTENSIONS, DIALPLAN),
        ]);
        assert_eq!(global_acl.hits("pjsip.no-auth"), none());
    }

    #[test]
    fn without_the_username_identifier_module_no_one_is_matched_by_name() {
        let h = host(&[
            (
                PJSIP,
                &conf(&["[6001]", "type = endpoint", "context = internal"]),
            ),
            (EXTENSIONS, DIALPLAN),
            (
                "etc/asterisk/modules.conf",
                &conf(&[
                    "[modules]",
                    "autoload = yes",
                    "noload => res_pjsip_endpoint_identifier_user.so",
                ]),
            ),
        ]);
        assert_eq!(h.hits("pjsip.no-auth"), none());
    }
}

mod sip_trunk_registration {
    use super::*;

    #[test]
    fn a_chan_sip_register_line_with_a_password() {
        let h = host(&[(
            SIP,
            &conf(&[
                "[general]",
                &format!("register => 4155551234:{STRONG}@sip.example.net/4155551234"),
            ]),
        )]);
        assert_eq!(h.hits("sip.trunk-registration"), [at(SIP, 2)]);
    }

    #[test]
    fn a_pjsip_registration_with_a_password() {
        let h = host(&[(
            PJSIP,
            &conf(&[
                "[trunk-auth]",
                "type = auth",
                &format!("password = {STRONG}"),
                "[trunk-reg]",
                "type = registration",
                "outbound_auth = trunk-auth",
                "server_uri = sip:sip.example.net",
            ]),
        )]);
        assert_eq!(h.hits("sip.trunk-registration"), [at(PJSIP, 4)]);
    }

    #[test]
    fn no_registration_no_finding() {
        let h = host(&[(SIP, &conf(&["[general]", "allowguest = no"]))]);
        assert_eq!(h.hits("sip.trunk-registration"), none());
    }

    #[test]
    fn a_commented_register_and_one_without_a_password() {
        let h = host(&[(
            SIP,
            &conf(&[
                "[general]",
                &format!(";register => 4155551234:{STRONG}@sip.example.net"),
                "register => 4155551234@sip.example.net",
            ]),
        )]);
        assert_eq!(h.hits("sip.trunk-registration"), none());
    }
}

mod sip_qualify {
    use super::*;

    #[test]
    fn a_peer_and_an_aor_without_qualify() {
        let h = host(&[
            (
                SIP,
                &conf(&[
                    "[6001]",
                    "type = friend",
                    "host = dynamic",
                    &format!("secret = {STRONG}"),
                ]),
            ),
            (PJSIP, &conf(&["[6002]", "type = aor", "max_contacts = 1"])),
        ]);
        assert_eq!(h.hits("sip.qualify"), [at(SIP, 1), at(PJSIP, 1)]);
    }

    #[test]
    fn qualified_in_general_or_by_frequency() {
        let h = host(&[
            (
                SIP,
                &conf(&[
                    "[general]",
                    "qualify = yes",
                    "[6001]",
                    "type = friend",
                    &format!("secret = {STRONG}"),
                ]),
            ),
            (
                PJSIP,
                &conf(&["[6002]", "type = aor", "qualify_frequency = 60"]),
            ),
        ]);
        assert_eq!(h.hits("sip.qualify"), none());
    }

    #[test]
    fn a_peer_overriding_the_general_value_and_a_user_that_is_never_qualified() {
        let h = host(&[(
            SIP,
            &conf(&[
                "[general]",
                "qualify = yes",
                "[6001]",
                "type = friend",
                "qualify = no",
                "[6002]",
                "type = user",
            ]),
        )]);
        assert_eq!(h.hits("sip.qualify"), [at(SIP, 5)]);
    }
}

mod asterisk_security_log {
    use super::*;

    #[test]
    fn no_channel_logs_security() {
        let h = host(&[(
            LOGGER,
            &conf(&[
                "[logfiles]",
                "messages => notice,warning,error",
                ";security => security",
            ]),
        )]);
        assert_eq!(h.hits("asterisk.security-log"), [at(LOGGER, 1)]);
        assert_eq!(
            h.the("asterisk.security-log").fix,
            "security => security in [logfiles] of /etc/asterisk/logger.conf"
        );
    }

    #[test]
    fn a_security_channel_is_fine() {
        let h = host(&[(LOGGER, &conf(&["[logfiles]", "security => security"]))]);
        assert_eq!(h.hits("asterisk.security-log"), none());
    }

    #[test]
    fn security_among_the_levels_of_an_included_channel() {
        let h = host(&[
            (
                LOGGER,
                &conf(&["[logfiles]", "#include logger_logfiles_custom.conf"]),
            ),
            (
                "etc/asterisk/logger_logfiles_custom.conf",
                &conf(&["messages => [plain]notice,warning,security"]),
            ),
        ]);
        assert_eq!(h.hits("asterisk.security-log"), none());
    }

    #[test]
    fn no_logger_conf_at_all() {
        let h = host(&[(SIP, &conf(&["[general]"]))]);
        assert_eq!(h.hits("asterisk.security-log"), [whole(LOGGER)]);
    }
}

mod asterisk_live_dangerously {
    use super::*;

    #[test]
    fn explicitly_on() {
        let h = host(&[(ASTERISK, &conf(&["[options]", "live_dangerously = yes"]))]);
        assert_eq!(h.hits("asterisk.live-dangerously"), [at(ASTERISK, 2)]);
        assert_eq!(
            h.the("asterisk.live-dangerously").fix,
            "live_dangerously = no in [options] of /etc/asterisk/asterisk.conf"
        );
    }

    #[test]
    fn off_or_unset_is_fine() {
        let off = host(&[(ASTERISK, &conf(&["[options]", "live_dangerously = no"]))]);
        assert_eq!(off.hits("asterisk.live-dangerously"), none());
        let unset = host(&[(ASTERISK, &conf(&["[options]", ";live_dangerously = yes"]))]);
        assert_eq!(unset.hits("asterisk.live-dangerously"), none());
    }

    #[test]
    fn only_the_options_section_counts_and_the_last_value_wins() {
        let h = host(&[(
            ASTERISK,
            &conf(&[
                "[directories](!)",
                "live_dangerously = yes",
                "[options]",
                "live_dangerously = yes",
                "[options](+)",
                "live_dangerously = no",
            ]),
        )]);
        assert_eq!(h.hits("asterisk.live-dangerously"), none());
    }

    #[test]
    fn no_asterisk_conf_is_skipped() {
        let h = host(&[(SIP, &conf(&["[general]"]))]);
        assert!(h
            .skipped()
            .iter()
            .any(|s| s == "asterisk.live-dangerously: etc/asterisk/asterisk.conf not found"));
    }
}

mod dialplan_guest_outbound {
    use super::*;

    fn guest_sip() -> String {
        conf(&[
            "[general]",
            "allowguest = yes",
            "context = guests",
            "alwaysauthreject = yes",
        ])
    }

    #[test]
    fn a_guest_context_that_includes_the_outbound_routes() {
        let h = host(&[
            (SIP, &guest_sip()),
            (
                EXTENSIONS,
                &conf(&[
                    "[guests]",
                    "include => outbound",
                    "[outbound]",
                    "exten => _9NXXNXXXXXX,1,Dial(SIP/provider/${EXTEN:1})",
                ]),
            ),
        ]);
        assert_eq!(h.hits("dialplan.guest-outbound"), [at(SIP, 2)]);
        let message = h.the("dialplan.guest-outbound").message;
        assert!(
            message.contains("etc/asterisk/extensions.conf:4")
                && message.contains("guests → outbound"),
            "{message}"
        );
    }

    #[test]
    fn a_guest_context_that_only_rings_local_phones() {
        let h = host(&[
            (SIP, &guest_sip()),
            (
                EXTENSIONS,
                &conf(&[
                    "[guests]",
                    "exten => _6XXX,1,Dial(SIP/${EXTEN},20)",
                    "exten => s,1,Dial(PJSIP/6001&PJSIP/6002)",
                ]),
            ),
        ]);
        assert_eq!(h.hits("dialplan.guest-outbound"), none());
    }

    #[test]
    fn a_route_through_goto_and_a_time_limited_include() {
        let h = host(&[
            (SIP, &guest_sip()),
            (
                EXTENSIONS,
                &conf(&[
                    "[guests]",
                    "exten => _X.,1,Goto(ivr,${EXTEN:1},1)",
                    "[ivr]",
                    "include => after-hours,18:00-08:00,*,*,*",
                    "[after-hours]",
                    "exten => _0.,1,Dial(PJSIP/${FILTER(0-9,${EXTEN})}@provider,60)",
                ]),
            ),
        ]);
        assert_eq!(h.hits("dialplan.guest-outbound"), [at(SIP, 2)]);
        assert!(h
            .the("dialplan.guest-outbound")
            .message
            .contains("guests → ivr → after-hours"));
    }

    #[test]
    fn a_trunk_dial_on_a_same_line() {
        let h = host(&[
            (SIP, &guest_sip()),
            (
                EXTENSIONS,
                &conf(&[
                    "[guests]",
                    "exten => _X.,1,NoOp(guest call)",
                    " same => n,Set(CALLERID(num)=4155551234)",
                    " same => n,Dial(PJSIP/${EXTEN}@provider)",
                ]),
            ),
        ]);
        assert_eq!(h.hits("dialplan.guest-outbound"), [at(SIP, 2)]);
        assert!(h
            .the("dialplan.guest-outbound")
            .message
            .contains("etc/asterisk/extensions.conf:4"));
    }

    #[test]
    fn a_goto_to_a_computed_context_is_not_followed() {
        let h = host(&[
            (SIP, &guest_sip()),
            (
                EXTENSIONS,
                &conf(&[
                    "[guests]",
                    "exten => s,1,Goto(${TARGET},s,1)",
                    "[outbound]",
                    "exten => _X.,1,Dial(SIP/provider/${EXTEN})",
                ]),
            ),
        ]);
        assert_eq!(h.hits("dialplan.guest-outbound"), none());
    }

    #[test]
    fn inline_iax2_credentials_in_the_quoted_dial_are_masked() {
        let h = host(&[
            (SIP, &guest_sip()),
            (
                EXTENSIONS,
                &conf(&[
                    "[guests]",
                    "exten => _X.,1,Dial(IAX2/branch:Br4nchSecret99@10.0.0.2/${EXTEN})",
                ]),
            ),
        ]);
        let message = h.the("dialplan.guest-outbound").message;
        assert!(!message.contains("Br4nchSecret99"), "{message}");
        assert!(
            message.contains("IAX2/branch:\"B…\" (14 chars)@10.0.0.2"),
            "{message}"
        );
    }
}

mod dialplan_exten_injection {
    use super::*;

    #[test]
    fn any_character_pattern_into_dial() {
        let h = host(&[(
            EXTENSIONS,
            &conf(&[
                "[outbound]",
                "exten => _9X.,1,Dial(PJSIP/${EXTEN:1}@provider,60)",
            ]),
        )]);
        assert_eq!(h.hits("dialplan.exten-injection"), [at(EXTENSIONS, 2)]);
        assert_eq!(
            h.the("dialplan.exten-injection").fix,
            "exten => _9X.,1,Dial(PJSIP/${FILTER(0-9*#+,${EXTEN:1})}@provider,60) in [outbound] of /etc/asterisk/extensions.conf"
        );
    }

    #[test]
    fn filtered_or_digits_only_patterns_are_fine() {
        let h = host(&[(
            EXTENSIONS,
            &conf(&[
                "[outbound]",
                "exten => _9X.,1,Dial(PJSIP/${FILTER(0-9,${EXTEN:1})}@provider,60)",
                "exten => _9NXXNXXXXXX,1,Dial(PJSIP/${EXTEN:1}@provider,60)",
            ]),
        )]);
        assert_eq!(h.hits("dialplan.exten-injection"), none());
    }

    #[test]
    fn a_same_line_continues_the_pattern_above_it() {
        let h = host(&[(
            EXTENSIONS,
            &conf(&[
                "[outbound]",
                "exten => _00!,1,NoOp(international)",
                " same => n,Set(CALLERID(num)=4155551234)",
                " same => n,Dial(SIP/${EXTEN}@provider)",
                "exten => _6XXX,1,NoOp(local)",
                " same => n,Dial(SIP/${EXTEN})",
            ]),
        )]);
        assert_eq!(h.hits("dialplan.exten-injection"), [at(EXTENSIONS, 4)]);
        assert!(h
            .the("dialplan.exten-injection")
            .fix
            .starts_with("same => n,Dial(SIP/${FILTER("));
    }
}
