//! The XDP program attached to a veth inside a namespace, with real traffic
//! from another namespace. Needs root. Floods are bounded in count.

use std::{
    io::{Read, Write},
    net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket},
    time::Duration,
};

use sipshield::bpf::{clock::monotonic_ns, ShieldMaps};
use sipshield_common::{
    config::{RateLimit, XdpConfig},
    counters::{Action, Reason},
    maps::{BanEntry, BanOrigin},
};
use sipshield_tests::harness::ban_at_limit;
use sipshield_tests::{
    netns::{drain, netns_exists, Netns, VethLab},
    packet::sip_request,
};

fn udp_receiver(lab: &VethLab, bind: &str) -> UdpSocket {
    let sock = lab
        .guarded
        .enter(|| UdpSocket::bind(bind))
        .expect("bind receiver");
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    sock
}

fn ban(maps: &mut ShieldMaps, ip: &str) {
    let entry = BanEntry {
        expires_ns: 0,
        created_ns: monotonic_ns(),
        origin: BanOrigin::Userspace as u32,
        _pad: 0,
    };
    maps.bans.insert(ip.parse().unwrap(), entry).unwrap();
}

#[test]
fn banned_source_udp_and_tcp_do_not_arrive_other_sources_do() {
    let lab = VethLab::new("10.201.1");
    let good = lab.add_sender(10);
    let bad = lab.add_sender(66);
    let (_prog, mut maps) = lab.attach_sipshield(XdpConfig::default());
    ban(&mut maps, &bad);

    let rx = udp_receiver(&lab, &format!("{}:5060", lab.guarded_addr()));
    let to: SocketAddr = format!("{}:5060", lab.guarded_addr()).parse().unwrap();
    for from in [&good, &bad] {
        let tx = lab.sender(from);
        for _ in 0..5 {
            tx.send_to(&sip_request("OPTIONS", None), to).unwrap();
        }
    }
    let got = drain(&rx);
    assert_eq!(got.len(), 5, "only the good source's datagrams arrive");
    assert!(got
        .iter()
        .all(|(_, from)| from.ip() == good.parse::<IpAddr>().unwrap()));

    // TCP: the banned source cannot even complete the handshake.
    let listener = lab
        .guarded
        .enter(|| TcpListener::bind(format!("{}:5060", lab.guarded_addr())))
        .unwrap();
    let connect = |from: &str| {
        lab.outside.enter(|| {
            let sock = socket_from(from);
            sock.connect_timeout(&to, Duration::from_millis(500))
                .map(|()| TcpStream::from(sock))
        })
    };
    let mut ok = connect(&good).expect("good source connects");
    ok.write_all(b"OPTIONS sip:x SIP/2.0\r\n\r\n").unwrap();
    let (mut conn, peer) = listener.accept().unwrap();
    assert_eq!(peer.ip(), good.parse::<IpAddr>().unwrap());
    let mut buf = [0u8; 8];
    conn.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"OPTIONS ");
    assert!(connect(&bad).is_err(), "banned source's SYN is dropped");

    let s = maps.stats.snapshot().unwrap();
    assert!(
        s.verdict(Action::Drop, Reason::BannedExact) >= 6,
        "{:?}",
        s.nonzero()
    );
}

#[test]
fn banned_ipv6_source_does_not_arrive() {
    let lab = VethLab::new("10.201.2");
    let (_prog, mut maps) = lab.attach_sipshield(XdpConfig::default());
    let rx = udp_receiver(&lab, &format!("[{}]:5060", lab.guarded_addr6()));
    let tx = lab.sender(&format!("[{}]", lab.sender_addr6()));
    let to: SocketAddr = format!("[{}]:5060", lab.guarded_addr6()).parse().unwrap();
    tx.send_to(b"OPTIONS sip:x SIP/2.0\r\n\r\n", to).unwrap();
    assert_eq!(drain(&rx).len(), 1, "reaches before the ban");
    ban(&mut maps, &lab.sender_addr6());
    tx.send_to(b"OPTIONS sip:x SIP/2.0\r\n\r\n", to).unwrap();
    assert_eq!(drain(&rx).len(), 0, "dropped after the ban");
}

#[test]
fn kernel_rate_guard_stops_a_bounded_flood() {
    let lab = VethLab::new("10.201.3");
    let flooder = lab.add_sender(77);
    let phone = lab.add_sender(20);
    let burst = 10;
    let (_prog, maps) = lab.attach_sipshield(XdpConfig {
        ..ban_at_limit(RateLimit::new(2, burst), RateLimit::new(0, 0))
    });
    let rx = udp_receiver(&lab, &format!("{}:5060", lab.guarded_addr()));
    let to: SocketAddr = format!("{}:5060", lab.guarded_addr()).parse().unwrap();
    let tx = lab.sender(&flooder);
    let flood = 500;
    for _ in 0..flood {
        tx.send_to(&sip_request("REGISTER", Some("pbx-killer")), to)
            .unwrap();
    }
    let got = drain(&rx);
    // The bucket refills 2/s: allow one extra token for the time the flood took.
    assert!(
        got.len() as u64 >= burst && got.len() as u64 <= burst + 2,
        "{} of {flood} REGISTERs arrived, burst {burst}",
        got.len()
    );
    let entry = maps
        .ban_of(flooder.parse().unwrap())
        .unwrap()
        .expect("kernel ban");
    assert_eq!(entry.origin, BanOrigin::RateGuard as u32);

    let ph = lab.sender(&phone);
    ph.send_to(&sip_request("REGISTER", None), to).unwrap();
    assert_eq!(drain(&rx).len(), 1, "another source still gets through");
}

#[test]
fn namespaces_are_removed_even_when_a_test_fails() {
    let mut names = Vec::new();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let lab = VethLab::new("10.201.4");
        names.push(lab.guarded.name.clone());
        names.push(lab.outside.name.clone());
        assert!(netns_exists(&lab.guarded.name));
        panic!("simulated test failure");
    }));
    assert!(result.is_err());
    assert_eq!(names.len(), 2);
    for n in names {
        assert!(!netns_exists(&n), "{n} left behind");
    }
    let lone = Netns::create("x");
    let name = lone.name.clone();
    drop(lone);
    assert!(!netns_exists(&name));
}

fn socket_from(from: &str) -> socket2_lite::Socket {
    socket2_lite::Socket::tcp_bound(from)
}

/// A tiny TCP socket bound to a chosen source address (std cannot bind
/// before connect).
mod socket2_lite {
    use std::{
        net::{SocketAddr, TcpStream},
        os::fd::{FromRawFd, OwnedFd},
        time::Duration,
    };

    pub struct Socket(OwnedFd);

    impl Socket {
        pub fn tcp_bound(ip: &str) -> Socket {
            let addr: SocketAddr = format!("{ip}:0").parse().unwrap();
            let family = if addr.is_ipv4() {
                libc::AF_INET
            } else {
                libc::AF_INET6
            };
            // SAFETY: plain socket(2)/bind(2) on a fresh fd we own.
            unsafe {
                let fd = libc::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
                assert!(fd >= 0);
                let owned = OwnedFd::from_raw_fd(fd);
                let (sa, len) = sockaddr(&addr);
                assert_eq!(
                    libc::bind(fd, &sa as *const _ as *const libc::sockaddr, len),
                    0
                );
                Socket(owned)
            }
        }

        pub fn connect_timeout(&self, to: &SocketAddr, timeout: Duration) -> std::io::Result<()> {
            use std::os::fd::AsRawFd;
            let fd = self.0.as_raw_fd();
            let tv = libc::timeval {
                tv_sec: timeout.as_secs() as libc::time_t,
                tv_usec: timeout.subsec_micros() as libc::suseconds_t,
            };
            let (sa, len) = sockaddr(to);
            // SAFETY: valid fd and sockaddr; SO_SNDTIMEO bounds connect(2).
            unsafe {
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_SNDTIMEO,
                    &tv as *const _ as *const libc::c_void,
                    std::mem::size_of::<libc::timeval>() as u32,
                );
                if libc::connect(fd, &sa as *const _ as *const libc::sockaddr, len) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        }
    }

    impl From<Socket> for TcpStream {
        fn from(s: Socket) -> TcpStream {
            TcpStream::from(s.0)
        }
    }

    fn sockaddr(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
        // SAFETY: zeroed sockaddr_storage is valid; we fill the family's fields.
        let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        match addr {
            SocketAddr::V4(a) => {
                let sin = unsafe { &mut *(&mut ss as *mut _ as *mut libc::sockaddr_in) };
                sin.sin_family = libc::AF_INET as u16;
                sin.sin_port = a.port().to_be();
                sin.sin_addr.s_addr = u32::from_ne_bytes(a.ip().octets());
                (ss, std::mem::size_of::<libc::sockaddr_in>() as u32)
            }
            SocketAddr::V6(a) => {
                let sin6 = unsafe { &mut *(&mut ss as *mut _ as *mut libc::sockaddr_in6) };
                sin6.sin6_family = libc::AF_INET6 as u16;
                sin6.sin6_port = a.port().to_be();
                sin6.sin6_addr.s6_addr = a.ip().octets();
                (ss, std::mem::size_of::<libc::sockaddr_in6>() as u32)
            }
        }
    }
}

/// A driver with native XDP that refuses this program (veth does when its
/// peer's MTU is past what one page holds and the program is not
/// frags-aware): `auto` falls back to generic mode, which still drops, so
/// the first attach on a PBX never leaves an interface unguarded or fails.
#[test]
fn a_native_attach_the_driver_refuses_falls_back_to_generic() {
    use sipshield::bpf::{AttachMode, LoadedProgram, MapSizes};
    use sipshield_tests::netns::{GUARD_DEV, OUTSIDE_DEV};
    let lab = VethLab::new("10.201.9");
    lab.outside.ip(&["link", "set", OUTSIDE_DEV, "mtu", "9000"]);
    lab.guarded.ip(&["link", "set", GUARD_DEV, "mtu", "9000"]);
    let mut prog = LoadedProgram::load(MapSizes::default()).expect("load");
    let native = lab
        .guarded
        .enter(|| prog.attach(GUARD_DEV, AttachMode::Driver));
    assert!(native.is_err(), "veth took a native attach at MTU 9000");
    let mut maps = prog.take_maps().expect("maps");
    maps.config
        .write(
            &XdpConfig::default(),
            &sipshield_tests::harness::Harness::default_prefixes(),
        )
        .expect("config");
    lab.guarded
        .enter(|| prog.attach(GUARD_DEV, AttachMode::Auto))
        .expect("auto falls back to generic");
    let shown = lab
        .guarded
        .command("ip")
        .args(["link", "show", "dev", GUARD_DEV])
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.contains("xdpgeneric"), "{shown}");
    // And it guards: a banned source's datagrams are dropped.
    let bad = lab.add_sender(66);
    ban(&mut maps, &bad);
    let rx = lab.receiver();
    assert!(
        !lab.arrives(&bad, &rx),
        "generic mode drops the banned source"
    );
    let good = lab.add_sender(10);
    assert!(lab.arrives(&good, &rx));
}
