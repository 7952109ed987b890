//! A SIP user agent for the lab's phone and trunk: registers with digest
//! credentials, places a call (INVITE, ACK, BYE), pings with OPTIONS.
//! Retransmits like RFC 3261 timer A and gives up after a bound.

use std::{
    net::{SocketAddr, UdpSocket},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};

use super::{
    digest,
    sip::{self, Message},
};

pub struct Client {
    sock: UdpSocket,
    local: SocketAddr,
    server: SocketAddr,
    /// The user (extension) this agent speaks for.
    pub user: String,
    password: Option<String>,
    user_agent: String,
    cseq: u32,
    /// Total time a transaction may take before it fails.
    pub patience: Duration,
}

/// How a call went: time to the 200 OK and the whole dialog.
#[derive(Debug, Clone, Copy)]
pub struct CallTimes {
    pub setup: Duration,
    pub total: Duration,
}

impl Client {
    /// `sock` is bound (e.g. inside the phone's namespace).
    pub fn new(
        sock: UdpSocket,
        server: SocketAddr,
        user: &str,
        password: Option<&str>,
        user_agent: &str,
    ) -> Result<Client> {
        let local = sock.local_addr()?;
        Ok(Client {
            sock,
            local,
            server,
            user: user.into(),
            password: password.map(str::to_string),
            user_agent: user_agent.into(),
            cseq: 0,
            patience: Duration::from_secs(2),
        })
    }

    fn base(
        &mut self,
        method: &str,
        call_id: &str,
        from_tag: &str,
        to: &str,
    ) -> Vec<(&'static str, String)> {
        self.cseq += 1;
        let host = self.server.ip();
        vec![
            (
                "Via",
                format!(
                    "SIP/2.0/UDP {};branch=z9hG4bK{};rport",
                    self.local,
                    sip::token()
                ),
            ),
            ("Max-Forwards", "70".into()),
            ("From", format!("<sip:{}@{host}>;tag={from_tag}", self.user)),
            ("To", to.to_string()),
            ("Call-ID", call_id.to_string()),
            ("CSeq", format!("{} {method}", self.cseq)),
            ("Contact", format!("<sip:{}@{}>", self.user, self.local)),
            ("User-Agent", self.user_agent.clone()),
        ]
    }

    /// Sends `data` until a final response of this Call-ID and CSeq arrives
    /// (1xx are skipped); retransmits at 0.5 s, 1 s, 2 s...
    fn transact(&self, data: &[u8], call_id: &str, cseq: u32) -> Result<Message> {
        let deadline = Instant::now() + self.patience;
        let mut interval = Duration::from_millis(500);
        let mut buf = vec![0u8; 65536];
        loop {
            self.sock.send_to(data, self.server)?;
            let resend_at = Instant::now() + interval;
            loop {
                let now = Instant::now();
                let until = resend_at.min(deadline);
                if now >= until {
                    break;
                }
                self.sock.set_read_timeout(Some(until - now))?;
                let Ok((n, _)) = self.sock.recv_from(&mut buf) else {
                    continue;
                };
                let Some(m) = Message::parse(&buf[..n]) else {
                    continue;
                };
                if m.header("Call-ID") != Some(call_id) || m.cseq().map(|c| c.0) != Some(cseq) {
                    continue;
                }
                match m.status() {
                    Some(s) if s >= 200 => return Ok(m),
                    _ => {}
                }
            }
            if Instant::now() >= deadline {
                bail!("no answer from {} within {:?}", self.server, self.patience);
            }
            interval = (interval * 2).min(Duration::from_secs(4));
        }
    }

    /// OPTIONS ping; the status code.
    pub fn options(&mut self) -> Result<u16> {
        let call_id = format!("{}@{}", sip::token(), self.local.ip());
        let uri = format!("sip:{}", self.server);
        let headers = self.base("OPTIONS", &call_id, &sip::token(), &format!("<{uri}>"));
        let cseq = self.cseq;
        let r = self.transact(&sip::request("OPTIONS", &uri, &headers, ""), &call_id, cseq)?;
        r.status().context("status")
    }

    /// REGISTER, answering the digest challenge. Ok when the PBX says 200.
    pub fn register(&mut self) -> Result<()> {
        let call_id = format!("{}@{}", sip::token(), self.local.ip());
        let tag = sip::token();
        let uri = format!("sip:{}", self.server.ip());
        let aor = format!("<sip:{}@{}>", self.user, self.server.ip());
        let mut auth: Option<String> = None;
        for _ in 0..2 {
            let mut headers = self.base("REGISTER", &call_id, &tag, &aor);
            headers.push(("Expires", "300".into()));
            if let Some(a) = &auth {
                headers.push(("Authorization", a.clone()));
            }
            let cseq = self.cseq;
            let r = self.transact(
                &sip::request("REGISTER", &uri, &headers, ""),
                &call_id,
                cseq,
            )?;
            match r.status() {
                Some(200) => return Ok(()),
                Some(401) if auth.is_none() => {
                    auth = Some(self.answer(&r, "WWW-Authenticate", "REGISTER", &uri)?);
                }
                other => bail!("REGISTER refused: {other:?}"),
            }
        }
        bail!("REGISTER refused after credentials")
    }

    /// A whole call to `extension`: INVITE (with credentials when
    /// challenged), 200 OK, ACK, a moment of "talk", BYE, 200 OK.
    pub fn call(&mut self, extension: &str) -> Result<CallTimes> {
        let start = Instant::now();
        let call_id = format!("{}@{}", sip::token(), self.local.ip());
        let tag = sip::token();
        let uri = format!("sip:{extension}@{}", self.server.ip());
        let body = sip::sdp(&self.local.ip().to_string(), 20_000);
        let mut auth: Option<String> = None;
        let ok = loop {
            let mut headers = self.base("INVITE", &call_id, &tag, &format!("<{uri}>"));
            if let Some(a) = &auth {
                headers.push(("Proxy-Authorization", a.clone()));
            }
            let cseq = self.cseq;
            let r = self.transact(
                &sip::request("INVITE", &uri, &headers, &body),
                &call_id,
                cseq,
            )?;
            match r.status() {
                Some(200) => break r,
                Some(401 | 407) if auth.is_none() => {
                    self.ack(&r, &uri, &call_id, &tag, cseq)?;
                    let name = if r.status() == Some(407) {
                        "Proxy-Authenticate"
                    } else {
                        "WWW-Authenticate"
                    };
                    auth = Some(self.answer(&r, name, "INVITE", &uri)?);
                }
                other => bail!("INVITE refused: {other:?}"),
            }
        };
        let setup = start.elapsed();
        let cseq = self.cseq;
        self.ack(&ok, &uri, &call_id, &tag, cseq)?;
        std::thread::sleep(Duration::from_millis(20));
        let to = ok.header("To").context("To in 200 OK")?.to_string();
        let headers = self.base("BYE", &call_id, &tag, &to);
        let cseq = self.cseq;
        let r = self.transact(&sip::request("BYE", &uri, &headers, ""), &call_id, cseq)?;
        if r.status() != Some(200) {
            bail!("BYE answered {:?}", r.status());
        }
        Ok(CallTimes {
            setup,
            total: start.elapsed(),
        })
    }

    fn ack(&self, resp: &Message, uri: &str, call_id: &str, tag: &str, cseq: u32) -> Result<()> {
        let headers = vec![
            (
                "Via",
                format!("SIP/2.0/UDP {};branch=z9hG4bK{}", self.local, sip::token()),
            ),
            ("Max-Forwards", "70".into()),
            (
                "From",
                format!("<sip:{}@{}>;tag={tag}", self.user, self.server.ip()),
            ),
            ("To", resp.header("To").unwrap_or_default().to_string()),
            ("Call-ID", call_id.to_string()),
            ("CSeq", format!("{cseq} ACK")),
        ];
        self.sock
            .send_to(&sip::request("ACK", uri, &headers, ""), self.server)?;
        Ok(())
    }

    fn answer(&self, resp: &Message, header: &str, method: &str, uri: &str) -> Result<String> {
        let password = self
            .password
            .as_deref()
            .context("challenged, but this agent has no password")?;
        let ch = resp
            .header(header)
            .and_then(digest::parse)
            .with_context(|| format!("{header} missing or not digest"))?;
        Ok(digest::credentials(&self.user, password, &ch, method, uri))
    }
}

#[cfg(test)]
mod tests {
    use std::{collections::HashMap, net::UdpSocket};

    use super::*;
    use crate::lab::pbx::{Accounts, Pbx};

    fn pbx(dir: &std::path::Path) -> Pbx {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        Pbx::start(
            sock,
            Accounts {
                users: HashMap::from([("200".to_string(), "right".to_string())]),
                trunks: vec!["127.0.0.2".parse().unwrap()],
            },
            &dir.join("messages"),
        )
        .unwrap()
    }

    fn client(server: SocketAddr, from: &str, user: &str, password: Option<&str>) -> Client {
        let sock = UdpSocket::bind(format!("{from}:0")).unwrap();
        Client::new(sock, server, user, password, "Yealink SIP-T46S").unwrap()
    }

    #[test]
    fn phone_registers_and_calls_with_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let pbx = pbx(dir.path());
        let mut phone = client(pbx.addr, "127.0.0.1", "200", Some("right"));
        phone.register().unwrap();
        phone.call("300").unwrap();
        assert_eq!(phone.options().unwrap(), 200);
        let seen = pbx.seen("127.0.0.1".parse().unwrap());
        assert_eq!((seen.registered, seen.calls, seen.auth_failures), (1, 1, 0));
        let log = std::fs::read_to_string(dir.path().join("messages")).unwrap();
        assert!(log.is_empty(), "no failures logged: {log}");
    }

    #[test]
    fn wrong_password_is_refused_and_logged_like_asterisk() {
        let dir = tempfile::tempdir().unwrap();
        let pbx = pbx(dir.path());
        let mut guesser = client(pbx.addr, "127.0.0.1", "200", Some("guess"));
        guesser.patience = Duration::from_millis(600);
        assert!(guesser.register().is_err());
        let mut nobody = client(pbx.addr, "127.0.0.1", "999", Some("x"));
        nobody.patience = Duration::from_millis(600);
        assert!(nobody.register().is_err());
        drop(pbx);
        let log = std::fs::read_to_string(dir.path().join("messages")).unwrap();
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(lines.len(), 3, "{log}");
        assert!(lines[0].contains("res_pjsip/pjsip_distributor.c: Request 'REGISTER' from '<sip:200@127.0.0.1>' failed for '127.0.0.1:"));
        assert!(lines[0].ends_with("- Failed to authenticate"));
        assert!(lines[2].ends_with("- No matching endpoint found"));
        // sipshield's own parser reads these lines as SIP auth failures.
        let parser = sipshield::logs::asterisk::AsteriskParser::new();
        for l in lines {
            assert!(
                matches!(parser.parse(l), Some(sipshield::logs::Parsed::Failure(f)) if f.ip.to_string() == "127.0.0.1"),
                "sipshield reads a failure of 127.0.0.1 in {l}"
            );
        }
    }

    #[test]
    fn the_trunk_calls_without_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let pbx = pbx(dir.path());
        let mut trunk = client(pbx.addr, "127.0.0.2", "provider", None);
        trunk.call("200").unwrap();
        let mut stranger = client(pbx.addr, "127.0.0.3", "provider", None);
        assert!(stranger.call("200").is_err(), "others are challenged");
    }
}
