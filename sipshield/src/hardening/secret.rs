//! Judging and showing secrets: what makes a SIP/AMI password guessable by
//! the scanners that try them (SIPVicious and friends work through short
//! numeric and dictionary passwords and the account name itself), and how
//! to mention one in a report without disclosing it.

/// The shortest secret not called short. Scanners try millions of guesses
/// against an exposed SIP port; 12 random characters are out of reach.
pub const MIN_LEN: usize = 12;

/// Defaults shipped by PBX distributions and sample configs, and the words
/// brute-force dictionaries start with. Compared case-insensitively, also
/// with digits or punctuation appended (`Admin123!`) and with common letter
/// substitutions (`p@ssw0rd`).
const COMMON: &[&str] = &[
    "password",
    "passwd",
    "pass",
    "admin",
    "administrator",
    "root",
    "secret",
    "mysecret",
    "asterisk",
    "freepbx",
    "elastix",
    "trixbox",
    "issabel",
    "vitalpbx",
    "amp",
    "voip",
    "sip",
    "pbx",
    "phone",
    "trunk",
    "user",
    "guest",
    "test",
    "demo",
    "default",
    "welcome",
    "qwerty",
    "qwertz",
    "azerty",
    "letmein",
    "changeme",
    "changeit",
    "abc",
    "abcd",
    "abcdef",
    "iloveyou",
    "monkey",
    "dragon",
    "master",
    "manager",
    "login",
    "office",
    "support",
    "service",
    "temp",
    "1234",
    "12345",
    "123456",
    "1234567",
    "12345678",
    "123456789",
    "1234567890",
    "111111",
    "000000",
    "654321",
    "1q2w3e",
    "1q2w3e4r",
    "qwe123",
    "zaq12wsx",
    "operator",
    "sysadmin",
    "telephone",
    "extension",
    "voicemail",
    "cisco",
    "yealink",
    "polycom",
    "grandstream",
];

/// Reasons a secret is weak, empty when it is not. `names` are the account's
/// own names (section, username, extension): a secret equal to one of them is
/// the first thing scanners try.
pub fn weaknesses(secret: &str, names: &[&str]) -> Vec<&'static str> {
    let mut out = Vec::new();
    if secret.is_empty() {
        out.push("empty");
        return out;
    }
    if secret.chars().count() < MIN_LEN {
        out.push("shorter than 12 characters");
    }
    if secret.chars().all(|c| c.is_ascii_digit()) {
        out.push("digits only");
    }
    let lower = secret.to_lowercase();
    let same_as_name = names.iter().filter(|n| !n.is_empty()).any(|n| {
        let n = n.to_lowercase();
        lower == n
            || lower
                .strip_prefix(n.as_str())
                .is_some_and(|rest| rest.chars().all(|c| c.is_ascii_digit()))
    });
    if same_as_name {
        out.push("equal to the account name");
    }
    if is_common(&lower) {
        out.push("a common default or dictionary word");
    }
    let first = secret.chars().next();
    if secret.chars().count() > 1 && secret.chars().all(|c| Some(c) == first) {
        out.push("one repeated character");
    }
    out
}

fn is_common(lower: &str) -> bool {
    if COMMON.contains(&lower) {
        return true;
    }
    let base = lower.trim_end_matches(|c: char| c.is_ascii_digit() || c.is_ascii_punctuation());
    if base.is_empty() {
        return false;
    }
    if COMMON.contains(&base) {
        return true;
    }
    let unleet: String = base
        .chars()
        .map(|c| match c {
            '@' | '4' => 'a',
            '0' => 'o',
            '3' => 'e',
            '1' | '!' => 'i',
            '$' | '5' => 's',
            '7' => 't',
            c => c,
        })
        .collect();
    COMMON.contains(&unleet.as_str()) || (unleet.starts_with("passw") && unleet.len() <= 9)
}

/// `"p…" (6 chars)`: at most the first character, and only when the secret
/// is long enough that it gives little away.
pub fn mask(secret: &str) -> String {
    let len = secret.chars().count();
    match secret.chars().next() {
        None => "\"\" (empty)".to_string(),
        Some(first) if len >= 4 => format!("\"{first}…\" ({len} chars)"),
        Some(_) => format!("\"…\" ({len} chars)"),
    }
}

/// Masks passwords written inline in dial strings and SIP URIs
/// (`IAX2/user:secret@peer/100`, `sip:user:password@host`), so that a config
/// line quoted in a finding never carries one. An RSA key name
/// (`IAX2/user:[key]@peer`) and dialplan expressions are left as written.
pub fn mask_inline(text: &str) -> String {
    const MARKERS: [&str; 3] = ["iax2/", "sip:", "sips:"];
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let next = MARKERS
            .iter()
            .filter_map(|m| lower[i..].find(m).map(|p| i + p + m.len()))
            .min();
        let Some(body) = next else {
            out.push_str(&text[i..]);
            break;
        };
        out.push_str(&text[i..body]);
        i = body;
        let rest = &text[body..];
        let Some(end) = rest.find(['@', '&', ',', ')', '/', ' ', '>', ';', '"']) else {
            continue;
        };
        if !rest[end..].starts_with('@') {
            continue;
        }
        let userinfo = &rest[..end];
        match userinfo.split_once(':') {
            Some((user, secret))
                if !secret.is_empty() && !secret.starts_with('[') && !userinfo.contains("${") =>
            {
                out.push_str(user);
                out.push(':');
                out.push_str(&mask(secret));
            }
            _ => out.push_str(userinfo),
        }
        i = body + end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_secrets() {
        assert!(weaknesses("1234", &[]).contains(&"digits only"));
        assert!(weaknesses("Asterisk2024!", &[]).contains(&"a common default or dictionary word"));
        assert!(weaknesses("P@ssw0rd", &[]).contains(&"a common default or dictionary word"));
        assert!(weaknesses("6001", &["6001"]).contains(&"equal to the account name"));
        assert!(weaknesses("alice12345678", &["Alice"]).contains(&"equal to the account name"));
        assert_eq!(
            weaknesses("Vq7#tL2x9Pz!kR4m", &["6001"]),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn masks_never_show_more_than_the_first_character() {
        assert_eq!(mask("passwd"), "\"p…\" (6 chars)");
        assert_eq!(mask("abc"), "\"…\" (3 chars)");
        assert_eq!(mask(""), "\"\" (empty)");
    }

    #[test]
    fn inline_credentials_are_masked_in_dial_strings_and_uris() {
        assert_eq!(
            mask_inline("Dial(IAX2/pbx2:Sup3rSecret@10.0.0.2/${EXTEN})"),
            "Dial(IAX2/pbx2:\"S…\" (11 chars)@10.0.0.2/${EXTEN})"
        );
        assert_eq!(
            mask_inline("sip:alice:hunter22@example.com"),
            "sip:alice:\"h…\" (8 chars)@example.com"
        );
        for untouched in [
            "Dial(IAX2/pbx2:[pbxkey]@10.0.0.2/100)",
            "Dial(PJSIP/${EXTEN:1}@provider,60)",
            "Dial(SIP/provider/${EXTEN},60)",
            "sip:sip.provider.example",
            "sip:4155550000@sip.provider.example",
        ] {
            assert_eq!(mask_inline(untouched), untouched);
        }
    }
}
