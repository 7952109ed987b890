//! Just enough SIP over UDP for the lab's PBX, phone and trunk: build
//! requests and responses, read a message's start line and headers.

use std::fmt::Write as _;

/// One SIP message as received: start line, headers in order, body.
#[derive(Debug, Clone)]
pub struct Message {
    pub start: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// Compact header forms (RFC 3261 §7.3.3) mapped to their long names.
fn long_name(name: &str) -> &str {
    match name {
        "v" | "V" => "Via",
        "f" | "F" => "From",
        "t" | "T" => "To",
        "i" | "I" => "Call-ID",
        "m" | "M" => "Contact",
        "l" | "L" => "Content-Length",
        "c" | "C" => "Content-Type",
        other => other,
    }
}

impl Message {
    /// Parses a datagram; `None` for anything that is not SIP-shaped.
    pub fn parse(data: &[u8]) -> Option<Message> {
        let text = std::str::from_utf8(data).ok()?;
        let (head, body) = match text.split_once("\r\n\r\n") {
            Some((h, b)) => (h, b),
            None => (text.trim_end(), ""),
        };
        let mut lines = head.split("\r\n");
        let start = lines.next()?.trim().to_string();
        if !start.contains("SIP/2.0") {
            return None;
        }
        let mut headers = Vec::new();
        for line in lines {
            let (name, value) = line.split_once(':')?;
            headers.push((long_name(name.trim()).to_string(), value.trim().to_string()));
        }
        Some(Message {
            start,
            headers,
            body: body.to_string(),
        })
    }

    /// The request method, or `None` for a response.
    pub fn method(&self) -> Option<&str> {
        if self.start.starts_with("SIP/2.0 ") {
            return None;
        }
        self.start.split(' ').next()
    }

    /// The request URI (second word of the request line).
    pub fn uri(&self) -> Option<&str> {
        self.method()?;
        self.start.split(' ').nth(1)
    }

    /// The status code of a response.
    pub fn status(&self) -> Option<u16> {
        self.start.strip_prefix("SIP/2.0 ")?.get(..3)?.parse().ok()
    }

    /// The first header of this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, name: &str) -> impl Iterator<Item = &str> {
        let name = name.to_string();
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(&name))
            .map(|(_, v)| v.as_str())
    }

    /// The CSeq number and method.
    pub fn cseq(&self) -> Option<(u32, &str)> {
        let (n, m) = self.header("CSeq")?.split_once(' ')?;
        Some((n.trim().parse().ok()?, m.trim()))
    }

    /// The user part of the From or To URI (`sip:200@host` → `200`).
    pub fn user_of(&self, header: &str) -> Option<&str> {
        let v = self.header(header)?;
        let at = v.find("sip:")? + 4;
        let rest = &v[at..];
        let end = rest.find(['@', '>', ';'])?;
        rest[..end].strip_suffix(':').or(Some(&rest[..end]))
    }
}

/// A response to `req`: its transaction headers copied, `to_tag` added to
/// To when it has none, then `extra` headers and `body`.
pub fn response(
    req: &Message,
    code: u16,
    reason: &str,
    to_tag: &str,
    extra: &[(&str, String)],
    body: &str,
) -> Vec<u8> {
    let mut out = format!("SIP/2.0 {code} {reason}\r\n");
    for via in req.all("Via") {
        let _ = write!(out, "Via: {via}\r\n");
    }
    for name in ["From", "Call-ID", "CSeq"] {
        if let Some(v) = req.header(name) {
            let _ = write!(out, "{name}: {v}\r\n");
        }
    }
    if let Some(to) = req.header("To") {
        if to.contains(";tag=") || code == 100 {
            let _ = write!(out, "To: {to}\r\n");
        } else {
            let _ = write!(out, "To: {to};tag={to_tag}\r\n");
        }
    }
    for (name, value) in extra {
        let _ = write!(out, "{name}: {value}\r\n");
    }
    out.push_str("Server: sipshield-lab PBX\r\n");
    if !body.is_empty() {
        out.push_str("Content-Type: application/sdp\r\n");
    }
    let _ = write!(out, "Content-Length: {}\r\n\r\n{body}", body.len());
    out.into_bytes()
}

/// A request: start line, headers in the order given, body.
pub fn request(method: &str, uri: &str, headers: &[(&str, String)], body: &str) -> Vec<u8> {
    let mut out = format!("{method} {uri} SIP/2.0\r\n");
    for (name, value) in headers {
        let _ = write!(out, "{name}: {value}\r\n");
    }
    if !body.is_empty() {
        out.push_str("Content-Type: application/sdp\r\n");
    }
    let _ = write!(out, "Content-Length: {}\r\n\r\n{body}", body.len());
    out.into_bytes()
}

/// A short random token for tags, branches and Call-IDs.
pub fn token() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// A minimal SDP offer/answer for an audio call from `ip`.
pub fn sdp(ip: &str, port: u16) -> String {
    let family = if ip.contains(':') { "IP6" } else { "IP4" };
    format!(
        "v=0\r\no=- 1 1 IN {family} {ip}\r\ns=call\r\nc=IN {family} {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_compact_headers_and_status() {
        let m = Message::parse(
            b"SIP/2.0 401 Unauthorized\r\nv: SIP/2.0/UDP 1.2.3.4\r\nf: <sip:200@pbx>;tag=1\r\nCSeq: 7 REGISTER\r\n\r\n",
        )
        .unwrap();
        assert_eq!(m.status(), Some(401));
        assert_eq!(m.method(), None);
        assert_eq!(m.header("via"), Some("SIP/2.0/UDP 1.2.3.4"));
        assert_eq!(m.user_of("From"), Some("200"));
        assert_eq!(m.cseq(), Some((7, "REGISTER")));
    }

    #[test]
    fn rejects_non_sip() {
        assert!(Message::parse(b"\0\0\0\0").is_none());
        assert!(Message::parse(b"GET / HTTP/1.1\r\n\r\n").is_none());
    }

    #[test]
    fn response_adds_to_tag_once() {
        let req = Message::parse(
            b"OPTIONS sip:pbx SIP/2.0\r\nVia: a\r\nVia: b\r\nTo: <sip:pbx>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n\r\n",
        )
        .unwrap();
        let r = Message::parse(&response(&req, 200, "OK", "t1", &[], "")).unwrap();
        assert_eq!(r.all("Via").count(), 2);
        assert_eq!(r.header("To"), Some("<sip:pbx>;tag=t1"));
    }
}
