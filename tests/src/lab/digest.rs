//! HTTP digest authentication for SIP (RFC 2617 with MD5, the variant
//! Asterisk and every scanner speak): challenges, responses, checks.

use md5::{Digest, Md5};

pub const REALM: &str = "sipshield-lab";

fn md5_hex(s: &str) -> String {
    Md5::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The parameters of an `Authorization`/`Proxy-Authorization` or of a
/// `WWW-Authenticate` header, after the `Digest` keyword.
#[derive(Debug, Default, Clone)]
pub struct Params {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    pub response: String,
    pub qop: Option<String>,
    pub nc: Option<String>,
    pub cnonce: Option<String>,
}

/// Splits `Digest a="b", c=d` into its fields; `None` if not digest.
pub fn parse(header: &str) -> Option<Params> {
    let rest = header.trim().strip_prefix("Digest")?.trim_start();
    let mut p = Params::default();
    let mut s = rest;
    while !s.is_empty() {
        let (key, after) = s.split_once('=')?;
        let after = after.trim_start();
        let (value, tail) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"')?;
            (&q[..end], &q[end + 1..])
        } else {
            match after.find(',') {
                Some(c) => (after[..c].trim(), &after[c..]),
                None => (after.trim(), ""),
            }
        };
        let value = value.to_string();
        match key.trim().to_ascii_lowercase().as_str() {
            "username" => p.username = value,
            "realm" => p.realm = value,
            "nonce" => p.nonce = value,
            "uri" => p.uri = value,
            "response" => p.response = value,
            "qop" => p.qop = Some(value),
            "nc" => p.nc = Some(value),
            "cnonce" => p.cnonce = Some(value),
            _ => {}
        }
        s = tail.trim_start().trim_start_matches(',').trim_start();
    }
    Some(p)
}

/// The expected `response` for these parameters, method and password.
pub fn expected(p: &Params, method: &str, password: &str) -> String {
    let ha1 = md5_hex(&format!("{}:{}:{password}", p.username, p.realm));
    let ha2 = md5_hex(&format!("{method}:{}", p.uri));
    match (&p.qop, &p.nc, &p.cnonce) {
        (Some(qop), Some(nc), Some(cnonce)) => {
            md5_hex(&format!("{ha1}:{}:{nc}:{cnonce}:{qop}:{ha2}", p.nonce))
        }
        _ => md5_hex(&format!("{ha1}:{}:{ha2}", p.nonce)),
    }
}

/// A challenge header value with a fresh nonce.
pub fn challenge(nonce: &str) -> String {
    format!("Digest algorithm=MD5, realm=\"{REALM}\", nonce=\"{nonce}\"")
}

/// The credentials header value a client sends for `method uri`.
pub fn credentials(
    user: &str,
    password: &str,
    challenge: &Params,
    method: &str,
    uri: &str,
) -> String {
    let p = Params {
        username: user.into(),
        realm: challenge.realm.clone(),
        nonce: challenge.nonce.clone(),
        uri: uri.into(),
        ..Params::default()
    };
    let response = expected(&p, method, password);
    format!(
        "Digest username=\"{user}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", response=\"{response}\", algorithm=MD5",
        p.realm, p.nonce
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2617_example_without_qop_round_trips() {
        let ch = parse(&challenge("abc123")).unwrap();
        assert_eq!(ch.realm, REALM);
        let cred = credentials("200", "s3cret", &ch, "REGISTER", "sip:pbx");
        let p = parse(&cred).unwrap();
        assert_eq!(p.response, expected(&p, "REGISTER", "s3cret"));
        assert_ne!(p.response, expected(&p, "REGISTER", "wrong"));
        assert_ne!(p.response, expected(&p, "INVITE", "s3cret"));
    }

    #[test]
    fn known_md5_vector() {
        // RFC 2617 §3.5 (qop=auth).
        let p = Params {
            username: "Mufasa".into(),
            realm: "testrealm@host.com".into(),
            nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093".into(),
            uri: "/dir/index.html".into(),
            qop: Some("auth".into()),
            nc: Some("00000001".into()),
            cnonce: Some("0a4f113b".into()),
            ..Params::default()
        };
        assert_eq!(
            expected(&p, "GET", "Circle Of Life"),
            "6629fae49393a05397450978507c4ef1"
        );
    }

    #[test]
    fn garbage_is_not_digest() {
        assert!(parse("Basic abc").is_none());
        assert!(parse("Digest username").is_none());
    }
}
