//! The lab's network: four hosts behind one router namespace, so every
//! packet to the PBX crosses the interface sipshield guards (`pbx0`).
//!
//! ```text
//!  attacker 203.0.113.66/24 ─┐
//!  trunk    192.0.2.50/24   ─┤ router (forwarding, no reverse-path
//!  phone    100.64.20.20/24 ─┤         filter: spoofed sources get through,
//!  (office  100.64.20.30)    │
//!  pbx      198.51.100.10/24─┘         as on the internet)
//! ```
//! Addresses are documentation/shared ranges and exist only inside these
//! namespaces.

use std::process::Command;

use crate::netns::Netns;

pub const PBX: &str = "198.51.100.10";
pub const TRUNK: &str = "192.0.2.50";
pub const PHONE: &str = "100.64.20.20";
/// An office of `OFFICE_PHONES` phones behind one NAT address, on the
/// phone's network.
pub const OFFICE: &str = "100.64.20.30";
pub const OFFICE_PHONES: u32 = 100;
/// The attacker's primary address (svwar always sends from it).
pub const ATTACKER: &str = "203.0.113.66";
/// Further attacker addresses, one per tool so the story reads clearly.
pub const SCANNER: &str = "203.0.113.65";
pub const CRACKER: &str = "203.0.113.67";
pub const GUESSER: &str = "203.0.113.68";
pub const FLOODER: &str = "203.0.113.69";
/// Sources the UDP flood forges (besides the trunk's).
pub const SPOOFED: [&str; 3] = ["203.0.113.201", "203.0.113.202", "198.18.7.7"];

/// The device sipshield attaches to, inside the PBX namespace.
pub const PBX_DEV: &str = "pbx0";

pub struct Topology {
    pub pbx: Netns,
    pub attacker: Netns,
    pub trunk: Netns,
    pub phone: Netns,
    pub router: Netns,
}

struct Host<'a> {
    ns: &'a Netns,
    dev: &'a str,
    router_dev: &'a str,
    addr: &'a str,
    extra: &'a [&'a str],
}

impl Topology {
    /// Creates the namespaces (named by `name(role)`) and wires them.
    pub fn new(name: impl Fn(&str) -> Netns) -> Topology {
        let t = Topology {
            router: name("router"),
            pbx: name("pbx"),
            attacker: name("attacker"),
            trunk: name("trunk"),
            phone: name("phone"),
        };
        let hosts = [
            Host {
                ns: &t.pbx,
                dev: PBX_DEV,
                router_dev: "r-pbx",
                addr: PBX,
                extra: &[],
            },
            Host {
                ns: &t.attacker,
                dev: "att0",
                router_dev: "r-att",
                addr: ATTACKER,
                extra: &[SCANNER, CRACKER, GUESSER, FLOODER],
            },
            Host {
                ns: &t.trunk,
                dev: "trk0",
                router_dev: "r-trk",
                addr: TRUNK,
                extra: &[],
            },
            Host {
                ns: &t.phone,
                dev: "phn0",
                router_dev: "r-phn",
                addr: PHONE,
                extra: &[OFFICE],
            },
        ];
        for h in &hosts {
            t.wire(h);
        }
        for key in [
            "net.ipv4.ip_forward=1",
            "net.ipv4.conf.all.rp_filter=0",
            "net.ipv4.conf.default.rp_filter=0",
        ] {
            sysctl(&t.router, key);
        }
        for h in &hosts {
            sysctl(
                &t.router,
                &format!("net.ipv4.conf.{}.rp_filter=0", h.router_dev),
            );
        }
        t
    }

    fn wire(&self, h: &Host) {
        let status = Command::new("ip")
            .args(["link", "add", h.dev, "netns", &h.ns.name, "type", "veth"])
            .args(["peer", "name", h.router_dev, "netns", &self.router.name])
            .status()
            .expect("ip link add");
        assert!(status.success(), "veth {} <-> {}", h.dev, h.router_dev);
        let gw = gateway(h.addr);
        h.ns.ip(&["addr", "add", &format!("{}/24", h.addr), "dev", h.dev]);
        for a in h.extra {
            h.ns.ip(&["addr", "add", &format!("{a}/24"), "dev", h.dev]);
        }
        h.ns.ip(&["link", "set", h.dev, "up"]);
        h.ns.ip(&["route", "add", "default", "via", &gw]);
        self.router
            .ip(&["addr", "add", &format!("{gw}/24"), "dev", h.router_dev]);
        self.router.ip(&["link", "set", h.router_dev, "up"]);
    }

    /// The id of the XDP program on the PBX's guarded interface, if any.
    pub fn pbx_program_id(&self) -> Option<u32> {
        self.pbx
            .enter(|| sipshield::bpf::pins::attached_program_id(PBX_DEV))
    }

    /// All five namespace names (for messages).
    pub fn names(&self) -> [&str; 5] {
        [
            &self.pbx.name,
            &self.router.name,
            &self.attacker.name,
            &self.trunk.name,
            &self.phone.name,
        ]
    }
}

/// The router's address on a host's /24: `.1`.
pub fn gateway(addr: &str) -> String {
    let (net, _) = addr.rsplit_once('.').expect("IPv4 address");
    format!("{net}.1")
}

fn sysctl(ns: &Netns, kv: &str) {
    let status = ns
        .command("sysctl")
        .args(["-q", "-w", kv])
        .status()
        .expect("sysctl");
    assert!(status.success(), "sysctl {kv} in {}", ns.name);
}
