//! `sipshield-lab demo`: the story `cargo xtask demo` tells. Builds the lab
//! (PBX behind a router; attacker, trunk and phone), starts sipshield on
//! the PBX, runs real attacks one by one while showing what happens, and
//! ends with who was banned, when, by which mechanism, and proof the trunk
//! and the phone kept working. Tears everything down at the end, on
//! Ctrl-C and on failure.

use std::{
    net::IpAddr,
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use sipshield::bpf::clock::monotonic_ns;
use sipshield_common::{maps::BanOrigin, sip::Method};
use sipshield_tests::{
    lab::{
        attack::{bogus_register, Attacker},
        scene::{Lab, PHONE_EXT},
        shield::ShieldOptions,
        topology::*,
    },
    netns::Netns,
    registrar::Office,
};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: i32) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

fn main() -> Result<()> {
    match std::env::args().nth(1).as_deref() {
        Some("demo") => {}
        // Its namespaces and processes go with its guards, also on failure.
        Some("fleet") => return sipshield_tests::lab::fleet::run(),
        _ => bail!("usage: sipshield-lab demo|fleet   (run through `cargo xtask demo [--fleet]`)"),
    }
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic.
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    }
    let mut demo = Demo::new();
    let result = demo.run();
    demo.lab = None;
    println!("lab removed (namespaces ssd-*, pins, processes)");
    result
}

/// One line of the final summary.
struct Row {
    who: &'static str,
    tool: &'static str,
    launched_ns: u64,
}

struct Demo {
    start: Instant,
    lab: Option<Lab>,
    rows: Vec<Row>,
    phone_ok: (u32, u32),
    trunk_ok: (u32, u32),
    /// The office's storm: every phone registered, the office not banned.
    office_ok: Option<bool>,
}

impl Demo {
    fn new() -> Demo {
        Demo {
            start: Instant::now(),
            lab: None,
            rows: Vec::new(),
            phone_ok: (0, 0),
            trunk_ok: (0, 0),
            office_ok: None,
        }
    }

    fn say(&self, what: &str) {
        println!("[{:5.1}s] {what}", self.start.elapsed().as_secs_f64());
    }

    fn detail(&self, what: &str) {
        println!("         {what}");
    }

    fn checkpoint(&self) -> Result<()> {
        if INTERRUPTED.load(Ordering::SeqCst) {
            bail!("interrupted");
        }
        Ok(())
    }

    fn lab(&mut self) -> Result<&mut Lab> {
        self.lab.as_mut().context("lab not up")
    }

    fn run(&mut self) -> Result<()> {
        println!("sipshield demo: a PBX on the internet, under attack\n");
        self.say(
            "building the lab: namespaces ssd-pbx, ssd-router, ssd-attacker, ssd-trunk, ssd-phone",
        );
        self.detail(&format!(
            "pbx {PBX} (guarded interface {PBX_DEV}), trunk {TRUNK}, phone {PHONE}, attacker 203.0.113.0/24"
        ));
        self.lab = Some(Lab::new(
            |role| Netns::named(&format!("ssd-{role}")),
            "demo",
            &ShieldOptions::default(),
        ));
        self.say(
            "sipshield run is guarding pbx0; the PBX writes Asterisk-format log lines it follows",
        );
        self.detail(&format!(
            "trunk {TRUNK} allowlisted automatically from pjsip.conf (identify match=)"
        ));
        self.legit("before the attack")?;
        self.status("before the attack")?;
        self.checkpoint()?;

        let attacker = Attacker::new(&self.lab()?.topo);

        self.say(&format!(
            "attack 1: svmap scans for SIP servers from {SCANNER}"
        ));
        self.launch(SCANNER, "svmap");
        attacker.svmap(SCANNER);
        self.verdict(SCANNER)?;
        self.checkpoint()?;

        self.say(&format!(
            "attack 2: svwar enumerates extensions 100-199 from {ATTACKER}"
        ));
        self.launch(ATTACKER, "svwar");
        attacker.svwar(ATTACKER, "100-199");
        self.verdict(ATTACKER)?;
        self.checkpoint()?;

        self.say(&format!(
            "attack 3: password guessing on extension {PHONE_EXT} from {GUESSER} (sipsak: no scanner User-Agent, the kernel cannot tell)"
        ));
        self.launch(GUESSER, "sipsak guessing");
        // Each sipsak run is one wrong guess; stop at the first one that
        // meets silence (a real guesser would go on, into the ban).
        for n in 1..=10 {
            let run = attacker.sipsak_register(GUESSER, PHONE_EXT, &format!("guess{n:02}"));
            if !run.output.contains("401") {
                self.detail(&format!(
                    "guesses 1-{} were refused by the PBX; guess {n} got no answer at all",
                    n - 1
                ));
                break;
            }
        }
        self.verdict(GUESSER)?;
        self.checkpoint()?;

        self.say(&format!(
            "attack 4: sipsak floods 5000 OPTIONS from {FLOODER}, while a power cut ends at an office: \
             {OFFICE_PHONES} phones behind {OFFICE} (baresip) re-register at once"
        ));
        self.launch(FLOODER, "sipsak flood");
        let office_ns = &self.lab()?.topo.phone;
        let office = Office::start(office_ns, OFFICE, PBX, OFFICE_PHONES);
        let storm = Instant::now();
        attacker.sipsak_flood(FLOODER, 5_000);
        let mut registered = 0;
        while storm.elapsed() < Duration::from_secs(10) {
            registered = office.registered();
            if registered >= OFFICE_PHONES as usize {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let took = storm.elapsed();
        drop(office);
        self.verdict(FLOODER)?;
        self.office_verdict(registered, took)?;
        self.checkpoint()?;

        self.say(&format!(
            "attack 5: hping3 forges failing REGISTERs from {} and from the trunk {TRUNK}, 500/s each, while the phone and the trunk call",
            SPOOFED.join(", ")
        ));
        for src in SPOOFED {
            self.launch(src, "hping3 forged");
        }
        std::thread::scope(|s| -> Result<()> {
            let floods: Vec<_> = SPOOFED
                .iter()
                .copied()
                .chain([TRUNK])
                .map(|src| {
                    let a = &attacker;
                    s.spawn(move || a.hping_flood(src, 1_000, 2_000, &bogus_register(src)))
                })
                .collect();
            std::thread::sleep(Duration::from_millis(300));
            for _ in 0..4 {
                std::thread::sleep(Duration::from_millis(250));
                self.legit("during the flood")?;
            }
            for f in floods {
                let _ = f.join();
            }
            Ok(())
        })?;
        for src in SPOOFED {
            self.verdict(src)?;
        }
        self.trunk_verdict()?;
        self.status("during the attack")?;
        self.checkpoint()?;

        self.say(&format!(
            "crash: SIGKILL the daemon, then svcrack attacks from {CRACKER} while it is down"
        ));
        let before = self.program_id()?;
        self.lab()?.shield.crash();
        self.launch(CRACKER, "svcrack (daemon down)");
        attacker.svcrack(CRACKER, PHONE_EXT, &["1234", "0000", "password", "200"]);
        self.verdict(CRACKER)?;
        self.legit("with the daemon down")?;
        let lab = self.lab()?;
        let topo = &lab.topo;
        lab.shield.restart(topo);
        let after = self.program_id()?;
        let known = self.lab()?.shield.bans().len();
        self.say(&format!(
            "restart: program {after} {}; the daemon knows {} bans",
            if before == after {
                "adopted from its pins, never detached"
            } else {
                "reloaded (was not adopted!)"
            },
            known
        ));
        self.legit("after the restart")?;
        self.status("after the attack")?;
        self.summary()
    }

    fn launch(&mut self, who: &'static str, tool: &'static str) {
        self.rows.push(Row {
            who,
            tool,
            launched_ns: monotonic_ns(),
        });
    }

    /// Phone registers and calls, trunk pings and calls in.
    fn legit(&mut self, when: &str) -> Result<()> {
        let lab = self.lab()?;
        let phone = lab.phone_round();
        let trunk = lab.trunk_round();
        self.phone_ok.1 += 1;
        self.trunk_ok.1 += 1;
        let mut words = Vec::new();
        match &phone {
            Ok((reg, call)) => {
                self.phone_ok.0 += 1;
                words.push(format!(
                    "phone registered in {} and called in {}",
                    ms(*reg),
                    ms(call.setup)
                ));
            }
            Err(e) => words.push(format!("PHONE FAILED: {e:#}")),
        }
        match &trunk {
            Ok(call) => {
                self.trunk_ok.0 += 1;
                words.push(format!("trunk call set up in {}", ms(call.setup)));
            }
            Err(e) => words.push(format!("TRUNK FAILED: {e:#}")),
        }
        self.detail(&format!("{when}: {}", words.join("; ")));
        Ok(())
    }

    /// What happened to the last-launched `who`.
    fn verdict(&mut self, who: &str) -> Result<()> {
        std::thread::sleep(Duration::from_millis(150));
        let line = self.fate(who)?;
        self.detail(&format!("→ {line}"));
        Ok(())
    }

    fn fate(&mut self, who: &str) -> Result<String> {
        let lab = self.lab()?;
        let ip: IpAddr = who.parse()?;
        let maps = lab.shield.maps();
        let reached = lab.pbx.seen(ip).requests;
        let counted = maps
            .sources
            .get(ip)
            .ok()
            .flatten()
            .map_or(0, |s| s.total_messages());
        let launched = self
            .rows
            .iter()
            .rev()
            .find(|r| r.who == who)
            .map_or(0, |r| r.launched_ns);
        Ok(match maps.ban_of(ip).ok().flatten() {
            Some(ban) => format!(
                "{who} banned {:.0} ms after launch by the {}; {reached} requests reached the PBX, {counted} counted by the kernel",
                ban.created_ns.saturating_sub(launched) as f64 / 1e6,
                mechanism(ban.origin)
            ),
            None if reached == 0 && counted > 0 => format!(
                "{who} not banned ({counted} requests, fewer than the scanner hits that ban: one forged datagram must not ban anyone); every one dropped, none reached the PBX"
            ),
            None => format!("{who} NOT banned; {reached} requests reached the PBX"),
        })
    }

    /// The office after its storm: every phone registered, not banned.
    fn office_verdict(&mut self, registered: usize, took: Duration) -> Result<()> {
        let lab = self.lab()?;
        let ip: IpAddr = OFFICE.parse()?;
        let banned = lab.shield.maps().ban_of(ip).ok().flatten().is_some();
        let sent = lab
            .shield
            .maps()
            .sources
            .get(ip)
            .ok()
            .flatten()
            .map_or(0, |s| s.methods[Method::Register as usize]);
        let ok = registered >= OFFICE_PHONES as usize && !banned;
        self.office_ok = Some(ok);
        let line = format!(
            "office {OFFICE}: {registered}/{OFFICE_PHONES} phones registered in {:.1} s ({sent} REGISTERs with challenges and \
             retransmissions: policed past the burst, never banned){}",
            took.as_secs_f64(),
            if banned { "; THE OFFICE WAS BANNED" } else { "" }
        );
        self.detail(&format!("→ {line}"));
        Ok(())
    }

    fn trunk_verdict(&mut self) -> Result<()> {
        let lab = self.lab()?;
        let ip: IpAddr = TRUNK.parse()?;
        let banned = lab.shield.maps().ban_of(ip).ok().flatten().is_some();
        let failures = lab.pbx.seen(ip).auth_failures;
        let line = if banned {
            format!("TRUNK {TRUNK} WAS BANNED")
        } else {
            format!(
                "trunk {TRUNK}: {failures} forged failures in the log, never banned (allowlisted; reported as would-ban)"
            )
        };
        self.detail(&format!("→ {line}"));
        Ok(())
    }

    fn status(&mut self, when: &str) -> Result<()> {
        let text = self.lab()?.shield.status_text();
        println!("\n--- sipshield status ({when}) ---");
        for l in text.lines() {
            println!("  {l}");
        }
        println!();
        Ok(())
    }

    fn program_id(&mut self) -> Result<u32> {
        self.lab()?
            .topo
            .pbx_program_id()
            .context("no XDP program on pbx0")
    }

    fn summary(&mut self) -> Result<()> {
        println!("=== summary ===");
        println!(
            "  {:<15} {:<22} {:>13} {:<20} {:>11}",
            "SOURCE", "TOOL", "BANNED AFTER", "BY", "REACHED PBX"
        );
        let lab = self.lab.as_ref().context("lab")?;
        let maps = lab.shield.maps();
        let mut all_banned = true;
        for r in &self.rows {
            let ip: IpAddr = r.who.parse()?;
            let reached = lab.pbx.seen(ip).requests;
            let (after, by) = match maps.ban_of(ip).ok().flatten() {
                Some(b) => (
                    format!(
                        "{:.0} ms",
                        b.created_ns.saturating_sub(r.launched_ns) as f64 / 1e6
                    ),
                    mechanism(b.origin),
                ),
                // Dropped at every request, too few to ban (svmap's one probe).
                None if reached == 0 => ("all dropped".into(), "scanner signature"),
                None => {
                    all_banned = false;
                    ("not banned".into(), "-")
                }
            };
            println!(
                "  {:<15} {:<22} {:>13} {:<20} {:>11}",
                r.who, r.tool, after, by, reached
            );
        }
        let stats = maps.stats.snapshot()?;
        let dropped = stats.total(sipshield_common::counters::Action::Drop);
        println!("  packets dropped by XDP on {PBX_DEV}: {dropped}");
        println!(
            "  phone: {}/{} register+call rounds ok; trunk: {}/{} OPTIONS+call rounds ok; trunk banned: {}",
            self.phone_ok.0,
            self.phone_ok.1,
            self.trunk_ok.0,
            self.trunk_ok.1,
            if maps.ban_of(TRUNK.parse()?).ok().flatten().is_some() { "YES" } else { "never" }
        );
        println!(
            "  office: {}",
            match self.office_ok {
                Some(true) => "every phone registered through the storm, never banned",
                Some(false) => "PHONES FAILED TO REGISTER OR THE OFFICE WAS BANNED",
                None => "not run",
            }
        );
        if !all_banned
            || self.phone_ok.0 != self.phone_ok.1
            || self.trunk_ok.0 != self.trunk_ok.1
            || self.office_ok != Some(true)
        {
            bail!("the demo did not go as it should (see above)");
        }
        Ok(())
    }
}

/// A short duration for people: "0.8 ms", "12 ms".
fn ms(d: Duration) -> String {
    let m = d.as_secs_f64() * 1e3;
    if m < 10.0 {
        format!("{m:.1} ms")
    } else {
        format!("{m:.0} ms")
    }
}

fn mechanism(origin: u32) -> &'static str {
    match origin {
        o if o == BanOrigin::Scanner as u32 => "scanner signature",
        o if o == BanOrigin::RateGuard as u32 => "kernel rate guard",
        _ => "log failures",
    }
}
