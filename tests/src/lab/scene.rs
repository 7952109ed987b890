//! The whole lab up and running: network, sipshield's daemon on the PBX,
//! the PBX itself, a registered phone and a trunk. Dropping it kills the
//! processes and removes every namespace.

use std::{
    collections::HashMap,
    net::{SocketAddr, UdpSocket},
    time::{Duration, Instant},
};

use anyhow::Result;

use super::{
    client::{CallTimes, Client},
    pbx::{Accounts, Pbx},
    shield::{Shield, ShieldOptions},
    topology::{Topology, OFFICE_PHONES, PBX, PHONE, TRUNK},
};
use crate::netns::Netns;

/// The phone's extension and its (strong) password.
pub const PHONE_EXT: &str = "200";
pub const PHONE_SECRET: &str = "k7-Vq2!mR9zx";

pub struct Lab {
    // Field order is drop order: processes first, namespaces last.
    pub shield: Shield,
    pub pbx: Pbx,
    pub phone: Client,
    pub trunk: Client,
    pub topo: Topology,
}

impl Lab {
    /// Builds the lab with namespaces named by `names(role)`.
    pub fn new(names: impl Fn(&str) -> Netns, tag: &str, opts: &ShieldOptions) -> Lab {
        let topo = Topology::new(names);
        let shield = Shield::start(&topo, tag, opts);
        let sock = topo
            .pbx
            .enter(|| UdpSocket::bind(format!("{PBX}:5060")))
            .expect("PBX binds 5060");
        let pbx = Pbx::start(
            sock,
            Accounts {
                // The phone, and the office's phones (`registrar::user`).
                users: (1..=OFFICE_PHONES)
                    .map(|i| {
                        let u = crate::registrar::user(i);
                        let pw = crate::registrar::password_of(&u);
                        (u, pw)
                    })
                    .chain([(PHONE_EXT.to_string(), PHONE_SECRET.to_string())])
                    .collect::<HashMap<_, _>>(),
                trunks: vec![TRUNK.parse().expect("trunk address")],
            },
            &shield.messages_log(),
        )
        .expect("PBX starts");
        let server: SocketAddr = format!("{PBX}:5060").parse().expect("PBX address");
        let phone = topo
            .phone
            .enter(|| UdpSocket::bind(format!("{PHONE}:5062")))
            .expect("phone socket");
        let phone = Client::new(
            phone,
            server,
            PHONE_EXT,
            Some(PHONE_SECRET),
            "Yealink SIP-T46S 66.86.0.15",
        )
        .expect("phone");
        let trunk = topo
            .trunk
            .enter(|| UdpSocket::bind(format!("{TRUNK}:5070")))
            .expect("trunk socket");
        let trunk =
            Client::new(trunk, server, "provider", None, "Kamailio (5.6.3)").expect("trunk");
        Lab {
            shield,
            pbx,
            phone,
            trunk,
            topo,
        }
    }

    /// The phone registers and makes a call; how long each took.
    pub fn phone_round(&mut self) -> Result<(Duration, CallTimes)> {
        let t = Instant::now();
        self.phone.register()?;
        let reg = t.elapsed();
        let call = self.phone.call("0049301234567")?;
        Ok((reg, call))
    }

    /// The trunk pings and delivers an inbound call.
    pub fn trunk_round(&mut self) -> Result<CallTimes> {
        let code = self.trunk.options()?;
        anyhow::ensure!(code == 200, "trunk OPTIONS answered {code}");
        self.trunk.call(PHONE_EXT)
    }
}
