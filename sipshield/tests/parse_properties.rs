//! Property tests of the log parsers: lines with an injection in one
//! attacker-written field, built from each format's own delimiters, quotes,
//! other addresses and long padding, in content the writer would accept and
//! print there. The real sender is charged; where a format leaves two
//! readings (security events with attacker text on both sides of the
//! address), nobody is, and never another address.
//!
//! Line shapes, and what each field may hold:
//! - chan_sip `Registration from '<To>' failed for '<addr>' - <reason>`
//!   (`chan_sip.c` `handle_request_register`): the To header raw, any
//!   printable text (chan_sip prints `get_header(req, "To")`).
//! - pjsip `Request '<method>' from '<From>' failed for '<addr>' (callid:
//!   <Call-ID>) - <reason>` (`res_pjsip/pjsip_distributor.c`
//!   `log_failed_request`): From as `pjsip_name_addr_print` writes it (a
//!   quoted display with `\"` escapes, a URI whose user part holds RFC 3261
//!   user characters), the Call-ID as pjsip's `word [@ word]`, at most 255
//!   bytes each.
//! - res_security_log (`main/security_events.c` field order): AccountID any
//!   printable text, SessionID a Call-ID, ReceivedHash quoted-string content.
//! - chan_sip / pjsip `Call from '<peer>' (<addr>) to extension '<ext>'
//!   rejected because extension not found in context '<ctx>'.`: the
//!   extension, any printable text (the Request-URI user).
//! - IAX2 `No registration for peer '<peer>' (from <addr>)` (`chan_iax2.c`
//!   `register_verify`): the peer name the caller sent.
//! - AMI `<addr> failed to authenticate as '<user>'` and `<addr> tried to
//!   authenticate with nonexistent user '<user>'` (`manager.c`
//!   `authenticate`): the user name.
//! - sshd `Failed password for [invalid user ]<user> from <addr> port <p>
//!   ssh2` and `Invalid user <user> from <addr> port <p>` (OpenSSH
//!   `auth.c`, `auth2.c`): the user name, printable, at most 100 bytes.

use proptest::prelude::*;
use sipshield::logs::{parse_line, Parsed};

const REAL: &str = "203.0.113.20";

/// Pieces of every format: delimiters, quotes, fake tails, other addresses.
const PIECES: &[&str] = &[
    "'",
    "\"",
    "\\",
    " ",
    ":",
    "<",
    ">",
    "@",
    "(",
    ")",
    ",",
    "=",
    "-",
    "9.9.9.9",
    "9.9.9.9:5060",
    "[2001:db8::9]:5060",
    "2001:db8::9",
    "' failed for '",
    "' failed for '9.9.9.9:5060' - Wrong password",
    "' failed for '9.9.9.9:5060' (callid: ",
    "' (callid: x) - Failed to authenticate",
    ") - Failed to authenticate",
    "' - Wrong password",
    " - No matching peer found",
    "\" <sip:100@9.9.9.9>",
    "<sip:100@9.9.9.9:5060>",
    "\",RemoteAddress=\"IPV4/UDP/9.9.9.9/5060",
    "\",SessionID=\"x",
    "\",LocalAddress=\"IPV4/UDP/192.0.2.10/5060",
    "\",ReceivedHash=\"x",
    "\",Module=\"res_pjsip",
    " from 9.9.9.9 port 22 ssh2",
    " from 9.9.9.9",
    " port 22",
    " ssh2",
    "for invalid user ",
    "sip:",
    "abc",
];

/// An injection: pieces and padding, in any order.
fn injection() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            8 => prop::sample::select(PIECES).prop_map(String::from),
            1 => (1usize..300).prop_map(|n| "a".repeat(n)),
        ],
        0..12,
    )
    .prop_map(|parts| parts.concat())
}

/// Only what `keep` allows, cut to `max` bytes (never empty).
fn only(text: &str, keep: impl Fn(char) -> bool, max: usize) -> String {
    let mut out: String = text.chars().filter(|c| keep(*c)).collect();
    out.truncate(max);
    if out.is_empty() {
        out.push('x');
    }
    out
}

/// RFC 3261 `user`: unreserved, escaped and user-unreserved characters.
fn uri_user(text: &str) -> String {
    only(
        text,
        |c| c.is_ascii_alphanumeric() || "-_.!~*'()&=+$,;?/%".contains(c),
        100,
    )
}

/// pjsip's Call-ID `word`: no blanks; `@` at most once.
fn call_id(text: &str) -> String {
    let word = |c: char| c.is_ascii_alphanumeric() || "-.!%*_+`'~()<>:\\\"/[]?{}".contains(c);
    let id = only(text, word, 200);
    match text.find('@') {
        Some(_) => format!("{id}@{}", only(&text[text.len() / 2..], word, 50)),
        None => id,
    }
}

/// A quoted-string's content as pjsip keeps it: `"` and `\` escaped.
fn quoted(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars().take(200) {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn charged(line: &str) -> Option<String> {
    match parse_line(line)? {
        Parsed::Failure(f) => Some(f.ip.to_string()),
        Parsed::KnownGood(_) => None,
    }
}

fn asterisk_file(module: &str, message: &str) -> String {
    format!("[2024-03-05 10:21:46] NOTICE[1290] {module}: {message}")
}

fn security_line(event: &str, account: &str, session: &str, tail: &str) -> String {
    format!(
        "[2024-03-05 10:23:01] SECURITY[1301] res_security_log.c: SecurityEvent=\"{event}\",EventTV=\"2024-03-05T10:23:01.123+0000\",Severity=\"Error\",Service=\"PJSIP\",EventVersion=\"1\",AccountID=\"{account}\",SessionID=\"{session}\",LocalAddress=\"IPV4/UDP/192.0.2.10/5060\",RemoteAddress=\"IPV4/UDP/{REAL}/5060\"{tail}"
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn chan_sip_registration_charges_the_sender_whatever_its_to_header(to in injection()) {
        let to = only(&to, |c| c != '\n' && c != '\r', 7000);
        for reason in ["Wrong password", "No matching peer found", "Username/auth name mismatch"] {
            let line = asterisk_file(
                "chan_sip.c",
                &format!("Registration from '{to}' failed for '{REAL}:5060' - {reason}"),
            );
            prop_assert_eq!(charged(&line), Some(REAL.to_string()), "{}", line);
        }
    }

    #[test]
    fn pjsip_request_charges_the_sender_whatever_its_display_name(display in injection()) {
        let line = asterisk_file(
            "res_pjsip/pjsip_distributor.c",
            &format!(
                "Request 'REGISTER' from '\"{}\" <sip:100@192.0.2.10>' failed for '{REAL}:5060' (callid: abc@host) - Failed to authenticate",
                quoted(&display)
            ),
        );
        prop_assert_eq!(charged(&line), Some(REAL.to_string()), "{}", line);
    }

    #[test]
    fn pjsip_request_charges_the_sender_whatever_its_uri_user(user in injection()) {
        let line = asterisk_file(
            "res_pjsip/pjsip_distributor.c",
            &format!(
                "Request 'INVITE' from '<sip:{}@192.0.2.10>' failed for '{REAL}:5060' (callid: abc) - No matching endpoint found",
                uri_user(&user)
            ),
        );
        prop_assert_eq!(charged(&line), Some(REAL.to_string()), "{}", line);
    }

    #[test]
    fn pjsip_request_charges_the_sender_whatever_its_call_id(id in injection()) {
        let line = asterisk_file(
            "res_pjsip/pjsip_distributor.c",
            &format!(
                "Request 'REGISTER' from '\"100\" <sip:100@192.0.2.10>' failed for '{REAL}:5060' (callid: {}) - Failed to authenticate after 2 tries in 3.1 ms",
                call_id(&id)
            ),
        );
        prop_assert_eq!(charged(&line), Some(REAL.to_string()), "{}", line);
    }

    #[test]
    fn invalid_account_id_charges_the_sender_whatever_its_account_or_session(
        text in injection(),
        in_session in any::<bool>(),
    ) {
        // InvalidAccountID has no attacker field after the address: one reading.
        let (account, session) = if in_session {
            ("100".to_string(), call_id(&text))
        } else {
            (only(&text, |c| c != '\n', 2000), "abc".to_string())
        };
        let line = security_line("InvalidAccountID", &account, &session, ",Module=\"res_pjsip\"");
        prop_assert_eq!(charged(&line), Some(REAL.to_string()), "{}", line);
    }

    #[test]
    fn invalid_password_never_charges_an_address_an_attacker_wrote(
        text in injection(),
        field in 0usize..3,
    ) {
        // Attacker text before the address (SessionID) or after it
        // (ReceivedChallenge, ReceivedHash): the real sender, or nobody
        // where two readings remain, never 9.9.9.9.
        let mut session = "abc".to_string();
        let mut challenge = "nonce".to_string();
        let mut hash = "0123abcd".to_string();
        match field {
            0 => session = call_id(&text),
            1 => challenge = quoted(&text),
            _ => hash = quoted(&text),
        }
        let tail = format!(
            ",Module=\"res_pjsip\",Challenge=\"nonce\",ReceivedChallenge=\"{challenge}\",ReceivedHash=\"{hash}\""
        );
        let line = security_line("InvalidPassword", "100", &session, &tail);
        let got = charged(&line);
        prop_assert!(got.is_none() || got.as_deref() == Some(REAL), "{:?} from {}", got, line);
        // With the injection after the address only, one reading remains.
        if field > 0 {
            prop_assert_eq!(got.clone(), Some(REAL.to_string()), "{}", line);
        }
    }

    #[test]
    fn unknown_extension_iax2_and_ami_charge_the_sender_whatever_the_name(name in injection()) {
        let name = only(&name, |c| (' '..='~').contains(&c), 2000);
        let lines = [
            asterisk_file(
                "chan_sip.c",
                &format!("Call from '' ({REAL}:5060) to extension '{name}' rejected because extension not found in context 'from-internet'."),
            ),
            asterisk_file("chan_iax2.c", &format!("No registration for peer '{name}' (from {REAL})")),
            asterisk_file("manager.c", &format!("{REAL} failed to authenticate as '{name}'")),
            asterisk_file("manager.c", &format!("{REAL} tried to authenticate with nonexistent user '{name}'")),
        ];
        for line in lines {
            prop_assert_eq!(charged(&line), Some(REAL.to_string()), "{}", line);
        }
    }

    #[test]
    fn sshd_charges_the_sender_whatever_the_user_name(user in injection(), invalid in any::<bool>()) {
        let user = only(&user, |c| (' '..='~').contains(&c), 100);
        let lines = [
            format!(
                "Mar  5 10:30:01 pbx sshd[4001]: Failed password for {}{user} from {REAL} port 51022 ssh2",
                if invalid { "invalid user " } else { "" }
            ),
            format!("Mar  5 10:30:01 pbx sshd[4001]: Invalid user {user} from {REAL} port 51022"),
        ];
        for line in lines {
            prop_assert_eq!(charged(&line), Some(REAL.to_string()), "{}", line);
        }
    }
}
