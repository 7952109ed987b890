//! The lab's PBX: a SIP registrar and call answerer on UDP 5060 that
//! behaves like Asterisk's PJSIP stack where attackers meet it (digest
//! challenges on REGISTER and INVITE, calls from the trunk accepted by source
//! address) and writes its failures to a log in Asterisk's format, which is
//! what sipshield's daemon reads. Kamailio's stock config would silently drop
//! scanner User-Agents and hide what sipshield does; this one answers all.

use std::{
    collections::HashMap,
    fs::{File, OpenOptions},
    io::Write,
    net::{IpAddr, SocketAddr, UdpSocket},
    path::Path,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use super::{
    digest,
    sip::{self, Message},
};

/// What the PBX saw from one source address.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub requests: u64,
    pub registered: u64,
    pub calls: u64,
    pub auth_failures: u64,
}

/// Who may register and call, and who is the trunk.
#[derive(Debug, Clone)]
pub struct Accounts {
    /// extension → password
    pub users: HashMap<String, String>,
    /// Sources accepted without credentials (PJSIP `identify` by IP).
    pub trunks: Vec<IpAddr>,
}

pub struct Pbx {
    seen: Arc<Mutex<HashMap<IpAddr, Seen>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub addr: SocketAddr,
}

impl Pbx {
    /// Serves on `sock` (already bound, e.g. inside the PBX namespace) and
    /// appends failure lines to `log`.
    pub fn start(sock: UdpSocket, accounts: Accounts, log: &Path) -> std::io::Result<Pbx> {
        let addr = sock.local_addr()?;
        sock.set_read_timeout(Some(Duration::from_millis(50)))?;
        deep_receive_buffer(&sock)?;
        let log = OpenOptions::new().create(true).append(true).open(log)?;
        let seen = Arc::new(Mutex::new(HashMap::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let mut server = Server {
            sock,
            accounts,
            log,
            seen: Arc::clone(&seen),
            nonce_seq: 0,
            pid: std::process::id(),
        };
        let st = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("lab-pbx".into())
            .spawn(move || server.serve(&st))?;
        Ok(Pbx {
            seen,
            stop,
            thread: Some(thread),
            addr,
        })
    }

    /// What the PBX saw from `ip` so far.
    pub fn seen(&self, ip: IpAddr) -> Seen {
        self.lock().get(&ip).copied().unwrap_or_default()
    }

    /// Requests from every source so far.
    pub fn all_seen(&self) -> HashMap<IpAddr, Seen> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Seen>> {
        match self.seen.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

impl Drop for Pbx {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Server {
    sock: UdpSocket,
    accounts: Accounts,
    log: File,
    seen: Arc<Mutex<HashMap<IpAddr, Seen>>>,
    nonce_seq: u64,
    pid: u32,
}

enum Outcome {
    Nothing,
    Registered,
    Call,
    AuthFailed,
}

impl Server {
    fn serve(&mut self, stop: &AtomicBool) {
        let mut buf = vec![0u8; 65536];
        while !stop.load(Ordering::Relaxed) {
            let Ok((n, peer)) = self.sock.recv_from(&mut buf) else {
                continue;
            };
            let msg = Message::parse(&buf[..n]);
            let outcome = match &msg {
                Some(m) if m.method().is_some() => self.handle(m, peer),
                _ => Outcome::Nothing,
            };
            let mut seen = match self.seen.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            let s = seen.entry(peer.ip()).or_default();
            s.requests += 1;
            match outcome {
                Outcome::Registered => s.registered += 1,
                Outcome::Call => s.calls += 1,
                Outcome::AuthFailed => s.auth_failures += 1,
                Outcome::Nothing => {}
            }
        }
    }

    fn handle(&mut self, req: &Message, peer: SocketAddr) -> Outcome {
        let method = req.method().unwrap_or_default().to_string();
        let tag = sip::token();
        match method.as_str() {
            "REGISTER" => self.authenticated(req, peer, "WWW", |s, req| {
                let contact = req.header("Contact").unwrap_or("*").to_string();
                s.send(
                    peer,
                    sip::response(
                        req,
                        200,
                        "OK",
                        &tag,
                        &[("Contact", format!("{contact};expires=300"))],
                        "",
                    ),
                );
                Outcome::Registered
            }),
            "INVITE" => {
                self.send(peer, sip::response(req, 100, "Trying", &tag, &[], ""));
                let answer = |s: &mut Server, req: &Message| {
                    let me = s.sock.local_addr().map(|a| a.ip().to_string());
                    let body = sip::sdp(&me.unwrap_or_default(), 10_000);
                    let contact = format!(
                        "<sip:pbx@{}>",
                        s.sock
                            .local_addr()
                            .map_or_else(|_| String::new(), |a| a.to_string())
                    );
                    s.send(
                        peer,
                        sip::response(req, 200, "OK", &tag, &[("Contact", contact)], &body),
                    );
                    Outcome::Call
                };
                if self.accounts.trunks.contains(&peer.ip()) {
                    answer(self, req)
                } else {
                    self.authenticated(req, peer, "Proxy", answer)
                }
            }
            "ACK" => Outcome::Nothing,
            "OPTIONS" | "BYE" | "CANCEL" => {
                self.send(peer, sip::response(req, 200, "OK", &tag, &[], ""));
                Outcome::Nothing
            }
            _ => {
                self.send(
                    peer,
                    sip::response(req, 501, "Not Implemented", &tag, &[], ""),
                );
                Outcome::Nothing
            }
        }
    }

    /// Digest authentication as PJSIP does it: no credentials → challenge;
    /// wrong credentials or unknown user → log the failure and challenge
    /// again (never telling the two apart); right ones → `ok`.
    fn authenticated(
        &mut self,
        req: &Message,
        peer: SocketAddr,
        kind: &str,
        ok: impl FnOnce(&mut Server, &Message) -> Outcome,
    ) -> Outcome {
        let method = req.method().unwrap_or_default().to_string();
        let header = if kind == "WWW" {
            "Authorization"
        } else {
            "Proxy-Authorization"
        };
        let user = req.user_of("From").unwrap_or_default().to_string();
        let known = self.accounts.users.get(&user).cloned();
        let mut outcome = Outcome::Nothing;
        if let Some(creds) = req.header(header).and_then(digest::parse) {
            match known {
                Some(password)
                    if creds.username == user
                        && creds.response == digest::expected(&creds, &method, &password) =>
                {
                    return ok(self, req);
                }
                Some(_) => self.log_failure(req, peer, "Failed to authenticate"),
                None => self.log_failure(req, peer, "No matching endpoint found"),
            }
            outcome = Outcome::AuthFailed;
        } else if known.is_none() {
            self.log_failure(req, peer, "No matching endpoint found");
            outcome = Outcome::AuthFailed;
        }
        self.nonce_seq += 1;
        let nonce = format!("{:08x}{}", self.nonce_seq, sip::token());
        let (code, reason, name) = if kind == "WWW" {
            (401, "Unauthorized", "WWW-Authenticate")
        } else {
            (407, "Proxy Authentication Required", "Proxy-Authenticate")
        };
        let tag = sip::token();
        self.send(
            peer,
            sip::response(
                req,
                code,
                reason,
                &tag,
                &[(name, digest::challenge(&nonce))],
                "",
            ),
        );
        outcome
    }

    fn send(&self, peer: SocketAddr, data: Vec<u8>) {
        let _ = self.sock.send_to(&data, peer);
    }

    /// `[2026-11-25 10:21:46] NOTICE[pid] res_pjsip/pjsip_distributor.c:
    /// Request 'REGISTER' from '<sip:200@pbx>' failed for 'ip:port'
    /// (callid: ...) - Failed to authenticate`, as Asterisk 16+ writes it.
    /// The attacker's From and Call-ID are written as they came, quotes and
    /// all, as Asterisk does: the From as `pjsip_name_addr_print` prints
    /// it, the Call-ID raw.
    fn log_failure(&mut self, req: &Message, peer: SocketAddr, why: &str) {
        let from = req.header("From").map(printed_from).unwrap_or_default();
        let line = format!(
            "[{}] NOTICE[{}] res_pjsip/pjsip_distributor.c: Request '{}' from '{}' failed for '{}' (callid: {}) - {why}\n",
            timestamp(),
            self.pid,
            req.method().unwrap_or_default(),
            from,
            peer,
            req.header("Call-ID").unwrap_or_default(),
        );
        let _ = self.log.write_all(line.as_bytes());
    }
}

/// A From header as pjsip's `pjsip_name_addr_print` writes it: a quoted
/// display name as it came (escapes kept), a token display quoted, then
/// `<uri>`; header parameters (`;tag=`) left out.
pub fn printed_from(header: &str) -> String {
    let h = header.trim();
    let (display, rest) = if let Some(body) = h.strip_prefix('"') {
        // The closing quote is the first one not escaped.
        let bytes = body.as_bytes();
        let mut i = 0;
        while i < bytes.len() && bytes[i] != b'"' {
            i += if bytes[i] == b'\\' { 2 } else { 1 };
        }
        let end = i.min(body.len());
        (
            Some(&body[..end]),
            body.get(end + 1..).unwrap_or("").trim_start(),
        )
    } else if let Some(lt) = h.find('<') {
        let d = h[..lt].trim();
        ((!d.is_empty()).then_some(d), &h[lt..])
    } else {
        (None, h)
    };
    let uri = match rest.strip_prefix('<') {
        Some(inner) => inner.split('>').next().unwrap_or(inner),
        None => rest.split(';').next().unwrap_or(rest),
    };
    match display {
        Some(d) => format!("\"{d}\" <{uri}>"),
        None => format!("<{uri}>"),
    }
}

/// Local wall-clock time as Asterisk prints it (UTC here: the lab has no
/// time zone of its own), `2026-11-25 10:21:46`.
pub fn timestamp() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 → proleptic Gregorian (year, month, day).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Bytes of receive buffer the PBX asks for. A sipsak flood of 1500 that the
/// kernel passes (observe mode) arrives faster than the PBX thread reads it on
/// a loaded two-core machine; with the default buffer (about 200 KiB, some 90
/// datagrams of kernel memory) the socket overflowed and a test read what the
/// scheduler allowed instead of what XDP passed.
const RECEIVE_BUFFER: libc::c_int = 32 << 20;

/// Sets `RECEIVE_BUFFER` past `net.core.rmem_max` (tests run as root).
fn deep_receive_buffer(sock: &UdpSocket) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: a setsockopt on a descriptor `sock` owns, with a c_int option.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            &RECEIVE_BUFFER as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_headers_are_printed_as_pjsip_does() {
        assert_eq!(
            printed_from("\"Alice \\\"A\\\" x\" <sip:200@pbx>;tag=1"),
            "\"Alice \\\"A\\\" x\" <sip:200@pbx>"
        );
        assert_eq!(
            printed_from("Bob <sip:b@h;lr>;tag=2"),
            "\"Bob\" <sip:b@h;lr>"
        );
        assert_eq!(printed_from("sip:c@h;tag=3"), "<sip:c@h>");
        assert_eq!(
            printed_from("\"x' failed for '1.2.3.4:5060' (callid: y\" <sip:200@pbx>;tag=a"),
            "\"x' failed for '1.2.3.4:5060' (callid: y\" <sip:200@pbx>"
        );
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_417), (2025, 11, 25));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
