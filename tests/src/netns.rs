//! Network namespaces and veth pairs that tests create and always remove
//! (`Drop`), also when the test panics. Nothing here touches the machine's
//! own interfaces: every device lives inside a namespace made here.

use std::{
    fs::File,
    net::{SocketAddr, UdpSocket},
    os::fd::AsRawFd,
    process::{Command, Output, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use sipshield::bpf::{AttachMode, LoadedProgram, MapSizes, ShieldMaps};
use sipshield_common::config::XdpConfig;

use crate::harness::Harness;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A named network namespace, deleted on drop (its processes killed first).
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// Creates `sst<pid>-<tag><n>`: unique per process and call.
    pub fn create(tag: &str) -> Netns {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("sst{}-{tag}{n}", std::process::id());
        run_ok(Command::new("ip").args(["netns", "add", &name]));
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// Creates a namespace with exactly this name (the demo's readable
    /// `ssd-pbx`...), replacing a stale one left by a killed run.
    pub fn named(name: &str) -> Netns {
        let _ = Command::new("ip")
            .args(["netns", "del", name])
            .stderr(Stdio::null())
            .status();
        run_ok(Command::new("ip").args(["netns", "add", name]));
        let ns = Netns { name: name.into() };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// Runs `ip <args>` inside the namespace; panics with its stderr on failure.
    pub fn ip(&self, args: &[&str]) {
        run_ok(Command::new("ip").args(["-n", &self.name]).args(args));
    }

    /// A command that will run inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Runs `f` with the calling thread inside this namespace, then returns
    /// the thread to where it was. Sockets and XDP attachments made inside
    /// `f` belong to this namespace.
    pub fn enter<R>(&self, f: impl FnOnce() -> R) -> R {
        enter_named(&self.name, f)
    }
}

/// As `Netns::enter`, for a namespace known by name (owned elsewhere).
pub fn enter_named<R>(name: &str, f: impl FnOnce() -> R) -> R {
    {
        let home = File::open("/proc/thread-self/ns/net").expect("open current netns");
        let target = File::open(format!("/run/netns/{name}")).expect("open namespace handle");
        setns(&target);
        let restore = RestoreNs(home);
        let r = f();
        drop(restore);
        r
    }
}

struct RestoreNs(File);

impl Drop for RestoreNs {
    fn drop(&mut self) {
        setns(&self.0);
    }
}

fn setns(f: &File) {
    // SAFETY: a valid namespace fd; affects only the calling thread.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-9", pid]).status();
            }
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

/// True while a namespace of this name exists.
pub fn netns_exists(name: &str) -> bool {
    std::path::Path::new("/run/netns").join(name).exists()
}

/// Two namespaces joined by a veth pair: `guarded` (where sipshield
/// attaches, device `GUARD_DEV`, address `.1`) and `outside` (senders at
/// `.2` and any extra addresses added with `add_sender`).
pub struct VethLab {
    pub guarded: Netns,
    pub outside: Netns,
    pub prefix: String,
}

pub const GUARD_DEV: &str = "sg0";
pub const OUTSIDE_DEV: &str = "so0";

impl VethLab {
    /// `subnet` like "10.201.7" (a /24 only inside these namespaces).
    pub fn new(subnet: &str) -> VethLab {
        let guarded = Netns::create("g");
        let outside = Netns::create("o");
        run_ok(Command::new("ip").args([
            "link",
            "add",
            GUARD_DEV,
            "netns",
            &guarded.name,
            "type",
            "veth",
            "peer",
            "name",
            OUTSIDE_DEV,
            "netns",
            &outside.name,
        ]));
        guarded.ip(&["addr", "add", &format!("{subnet}.1/24"), "dev", GUARD_DEV]);
        outside.ip(&["addr", "add", &format!("{subnet}.2/24"), "dev", OUTSIDE_DEV]);
        guarded.ip(&[
            "addr",
            "add",
            &format!("fd00:{}::1/64", subnet.replace('.', ":")),
            "dev",
            GUARD_DEV,
            "nodad",
        ]);
        outside.ip(&[
            "addr",
            "add",
            &format!("fd00:{}::2/64", subnet.replace('.', ":")),
            "dev",
            OUTSIDE_DEV,
            "nodad",
        ]);
        guarded.ip(&["link", "set", GUARD_DEV, "up"]);
        outside.ip(&["link", "set", OUTSIDE_DEV, "up"]);
        VethLab {
            guarded,
            outside,
            prefix: subnet.to_string(),
        }
    }

    pub fn guarded_addr(&self) -> String {
        format!("{}.1", self.prefix)
    }

    pub fn guarded_addr6(&self) -> String {
        format!("fd00:{}::1", self.prefix.replace('.', ":"))
    }

    pub fn sender_addr6(&self) -> String {
        format!("fd00:{}::2", self.prefix.replace('.', ":"))
    }

    /// A UDP socket on the guarded side, port 5060 of `.1`, with a short
    /// read timeout.
    pub fn receiver(&self) -> UdpSocket {
        let rx = self
            .guarded
            .enter(|| UdpSocket::bind(format!("{}:5060", self.guarded_addr())))
            .expect("bind receiver");
        rx.set_read_timeout(Some(Duration::from_millis(150)))
            .expect("timeout");
        rx
    }

    /// A TCP connection from `from` (outside) to `port` of the guarded
    /// address, which must be listening.
    pub fn tcp_connect(&self, from: &str, port: u16) -> std::net::TcpStream {
        let to: SocketAddr = format!("{}:{port}", self.guarded_addr())
            .parse()
            .expect("address");
        let from: std::net::Ipv4Addr = from.parse().expect("IPv4 sender");
        self.outside.enter(|| tcp_from(from, to))
    }

    /// A UDP socket on the outside, bound to `from`.
    pub fn sender(&self, from: &str) -> UdpSocket {
        self.outside
            .enter(|| UdpSocket::bind(format!("{from}:0")))
            .expect("bind sender")
    }

    /// Sends one SIP OPTIONS from `from` to `.1:5060`; true if it reached `rx`.
    pub fn arrives(&self, from: &str, rx: &UdpSocket) -> bool {
        self.sender(from)
            .send_to(
                b"OPTIONS sip:100@pbx SIP/2.0\r\n\r\n",
                format!("{}:5060", self.guarded_addr()),
            )
            .expect("send");
        drain(rx)
            .iter()
            .any(|(_, peer)| peer.ip().to_string() == from)
    }

    /// sipshield's program with default map sizes and `config`, attached
    /// (native) to the guarded end.
    pub fn attach_sipshield(&self, config: XdpConfig) -> (LoadedProgram, ShieldMaps) {
        let mut prog = LoadedProgram::load(MapSizes::default()).expect("load");
        let mut maps = prog.take_maps().expect("maps");
        maps.config
            .write(&config, &Harness::default_prefixes())
            .expect("config");
        self.guarded
            .enter(|| prog.attach(GUARD_DEV, AttachMode::Auto))
            .expect("attach to veth in namespace");
        (prog, maps)
    }

    /// A second veth pair between the same namespaces: `guard_dev` on the
    /// guarded side with `{subnet}.1/24`, `out_dev` outside with `.2`.
    pub fn add_link(&self, guard_dev: &str, out_dev: &str, subnet: &str) {
        run_ok(Command::new("ip").args([
            "link",
            "add",
            guard_dev,
            "netns",
            &self.guarded.name,
            "type",
            "veth",
            "peer",
            "name",
            out_dev,
            "netns",
            &self.outside.name,
        ]));
        self.guarded
            .ip(&["addr", "add", &format!("{subnet}.1/24"), "dev", guard_dev]);
        self.outside
            .ip(&["addr", "add", &format!("{subnet}.2/24"), "dev", out_dev]);
        self.guarded.ip(&["link", "set", guard_dev, "up"]);
        self.outside.ip(&["link", "set", out_dev, "up"]);
    }

    /// A further guarded host: namespace `tag` with `guard_dev`
    /// (`{subnet}.1/24`) to `out_dev` (`.2`) in the outside namespace.
    pub fn add_namespace(&self, tag: &str, guard_dev: &str, out_dev: &str, subnet: &str) -> Netns {
        let ns = Netns::create(tag);
        run_ok(Command::new("ip").args([
            "link",
            "add",
            guard_dev,
            "netns",
            &ns.name,
            "type",
            "veth",
            "peer",
            "name",
            out_dev,
            "netns",
            &self.outside.name,
        ]));
        ns.ip(&["addr", "add", &format!("{subnet}.1/24"), "dev", guard_dev]);
        self.outside
            .ip(&["addr", "add", &format!("{subnet}.2/24"), "dev", out_dev]);
        ns.ip(&["link", "set", guard_dev, "up"]);
        self.outside.ip(&["link", "set", out_dev, "up"]);
        ns
    }

    /// Adds `{prefix}.{host}` to the outside end; returns it.
    pub fn add_sender(&self, host: u8) -> String {
        let a = format!("{}.{host}", self.prefix);
        self.outside
            .ip(&["addr", "add", &format!("{a}/24"), "dev", OUTSIDE_DEV]);
        a
    }
}

/// Datagrams that arrive before the socket's read timeout.
pub fn drain(sock: &UdpSocket) -> Vec<(Vec<u8>, SocketAddr)> {
    let mut out = Vec::new();
    let mut buf = [0u8; 2048];
    while let Ok((n, from)) = sock.recv_from(&mut buf) {
        out.push((buf[..n].to_vec(), from));
    }
    out
}

fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `connect` from a chosen local address (std binds only after connecting).
fn tcp_from(from: std::net::Ipv4Addr, to: SocketAddr) -> std::net::TcpStream {
    use std::os::fd::FromRawFd;
    let SocketAddr::V4(to) = to else {
        panic!("IPv4 only");
    };
    let sockaddr = |ip: std::net::Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(ip.octets()),
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: plain socket calls on a fresh descriptor we own.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let local = sockaddr(from, 0);
        let rc = libc::bind(fd, &local as *const _ as *const libc::sockaddr, len);
        assert_eq!(rc, 0, "bind {from}: {}", std::io::Error::last_os_error());
        let remote = sockaddr(*to.ip(), to.port());
        let rc = libc::connect(fd, &remote as *const _ as *const libc::sockaddr, len);
        assert_eq!(rc, 0, "connect {to}: {}", std::io::Error::last_os_error());
        std::net::TcpStream::from_raw_fd(fd)
    }
}
