//! `sipshield run`: start-up and the event loop.

use std::{
    collections::HashMap,
    ffi::CString,
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use anyhow::{bail, Context};
use tokio::{
    signal::unix::{signal, SignalKind},
    sync::mpsc,
};

use super::{engine::Engine, shield::Shield, store::Store, watch::LogWatch};
use crate::{
    bpf::{pins, AttachMode},
    config::{Config, ShieldMode, DEFAULT_CONFIG_PATH},
    control::{server::ControlServer, Request, Response},
    fleet::{
        crowdsec::{
            bouncer::{Bouncer, Pulled},
            watcher::{Pushed, Pusher, WatcherLogin},
        },
        feeds::{FeedUpdate, Fetcher},
    },
    logs::Parsed,
    policy::{discover, Allowlist, Policy, PolicySettings},
    state::db::StateDb,
};

/// Command-line overrides of the config file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub ifaces: Vec<String>,
    pub allow: Vec<ipnet::IpNet>,
    pub asterisk_logs: Vec<PathBuf>,
    pub auth_log: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    pub observe: bool,
    pub from_start: bool,
    pub socket: Option<PathBuf>,
    pub pin_root: Option<PathBuf>,
    pub xdp_mode: Option<AttachMode>,
}

#[derive(Debug, Clone)]
pub struct RunOptions {
    /// `None`: the default path, used only if it exists.
    pub config: Option<PathBuf>,
    pub overrides: Overrides,
    pub detach_on_exit: bool,
}

/// Reads the config file (or defaults) and applies the overrides.
pub fn load_config(opts: &RunOptions) -> anyhow::Result<(Config, String)> {
    let (mut config, shown) = match &opts.config {
        Some(path) => (Config::load(path)?, path.display().to_string()),
        None if Path::new(DEFAULT_CONFIG_PATH).exists() => (
            Config::load(Path::new(DEFAULT_CONFIG_PATH))?,
            DEFAULT_CONFIG_PATH.to_string(),
        ),
        None => (Config::default(), "(built-in defaults)".to_string()),
    };
    let o = &opts.overrides;
    if !o.ifaces.is_empty() {
        config.daemon.interfaces = o.ifaces.clone();
    }
    for net in &o.allow {
        config.allow.cidrs.push(crate::config::Cidr(*net));
    }
    if !o.asterisk_logs.is_empty() {
        config.logs.asterisk = o.asterisk_logs.clone();
    }
    if let Some(p) = &o.auth_log {
        config.logs.auth = vec![p.clone()];
    }
    if let Some(d) = &o.state_dir {
        config.daemon.state_dir = d.clone();
    }
    if o.observe {
        config.xdp.mode = ShieldMode::Observe;
    }
    if o.from_start {
        config.logs.from_start = true;
    }
    if let Some(s) = &o.socket {
        config.daemon.control_socket = s.clone();
    }
    if let Some(p) = &o.pin_root {
        config.daemon.bpffs_dir = p.clone();
    }
    if let Some(m) = o.xdp_mode {
        config.daemon.xdp_mode = m;
    }
    config.validate()?;
    Ok((config, shown))
}

fn group_id(name: &str) -> anyhow::Result<u32> {
    if let Ok(gid) = name.parse::<u32>() {
        return Ok(gid);
    }
    let c = CString::new(name)?;
    // SAFETY: valid C string; getgrnam returns null or a pointer to static data.
    let gr = unsafe { libc::getgrnam(c.as_ptr()) };
    if gr.is_null() {
        bail!("control_group {name:?}: no such group");
    }
    // SAFETY: non-null result of getgrnam.
    Ok(unsafe { (*gr).gr_gid })
}

fn watches(config: &Config, db: &StateDb) -> Vec<LogWatch> {
    let from_start = config.logs.from_start;
    let mut watches: Vec<LogWatch> = super::watch::wanted_files(config)
        .iter()
        .map(|w| LogWatch::file(w, from_start))
        .collect();
    if let Some(w) = journal_watch(config, db) {
        watches.push(w);
    }
    watches
}

/// The journal, when configured or when it is where sshd logs; resumed
/// where the database says the last run left it.
pub(super) fn journal_watch(config: &Config, db: &StateDb) -> Option<LogWatch> {
    let spec = config.logs.journal_spec(|p| p.exists())?;
    if config.logs.journal.is_empty() {
        if !crate::logs::journal::available() {
            log::warn!(
                "no sshd log ({}) and no journalctl: SSH guessing goes unseen",
                config
                    .logs
                    .auth
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            return None;
        }
        log::warn!("no sshd log file: following sshd in the journal");
    }
    let cursor = match db.meta(&spec.cursor_key()) {
        Ok(c) => c,
        Err(e) => {
            log::warn!("reading the journal position: {e}; starting at the end");
            None
        }
    };
    Some(LogWatch::journal(spec, cursor))
}

pub async fn run(opts: RunOptions) -> anyhow::Result<()> {
    // First of all: a SIGTERM during start-up (the control socket exists
    // before the kernel is reconciled) is then handled once start-up is
    // done, instead of killing the daemon with the program's config unwritten.
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sighup = signal(SignalKind::hangup())?;
    let (config, config_shown) = load_config(&opts)?;
    let mut config = config;
    let wanted = config.daemon.interfaces.clone();
    config.daemon.interfaces = config.daemon.resolved_interfaces(Path::new("/proc"));
    if config.daemon.interfaces.is_empty() {
        if wanted.iter().any(|i| i == crate::config::AUTO_INTERFACES) {
            bail!("interfaces = [\"auto\"] but no interface carries a default route: pass --iface IF or set daemon.interfaces");
        }
        bail!("no interface to guard: pass --iface IF or set daemon.interfaces");
    }
    let now = SystemTime::now();
    let started = std::time::Instant::now();
    let took = |what: &str| {
        log::info!(
            "start-up: {what} after {} ms",
            started.elapsed().as_millis()
        )
    };

    // The state database is read (a million bans take most of a second)
    // while the program is loaded and verified: two cores, half the wait.
    // A corrupt database is moved aside and reported, never silently
    // replaced; a newer schema stops the start.
    let state_job = {
        let config = config.clone();
        std::thread::Builder::new()
            .name("sipshield-restore".into())
            .spawn(move || -> anyhow::Result<(StateDb, Policy)> {
                let read = std::time::Instant::now();
                let (db, saved) = super::restore::open_state(&config.daemon.state_dir, now)?;
                log::info!(
                    "start-up: state database read in {} ms",
                    read.elapsed().as_millis()
                );
                let mut policy = Policy::new(
                    PolicySettings::from_config(&config),
                    Allowlist::from_config(&config.allow),
                );
                policy.restore(&saved, now);
                // A million restored bans as loaded: not kept twice.
                drop(saved);
                Ok((db, policy))
            })
            .context("starting the state loader")?
    };
    let section = config.allow.clone();
    let discovery =
        tokio::task::spawn_blocking(move || discover::discover(&section, Path::new("/proc")));

    let pin_root = config.daemon.bpffs_dir.clone();
    let pinned = pins::attach_all(
        &pin_root,
        &config.daemon.interfaces,
        config.daemon.xdp_mode,
        config.xdp.map_sizes(),
    )
    .with_context(|| format!("guarding {}", config.daemon.interfaces.join(", ")))?;
    log::warn!(
        "guarding {} with program {} ({}); maps shared in {}",
        config.daemon.interfaces.join(", "),
        pinned.program_id,
        pinned.how,
        pins::maps_dir(&pin_root).display()
    );
    took("program attached");
    let (db, mut policy) = state_job
        .join()
        .map_err(|_| anyhow::anyhow!("the state loader panicked"))??;
    took("state restored");
    let found = discovery.await.context("allowlist discovery")?;
    for w in &found.warnings {
        log::warn!("allowlist discovery: {w}");
    }
    // Bans this lifts are lifted in the kernel by `reconcile`.
    policy.apply_discovery(&found, now);
    let mut shield = Shield::new(pinned, config.xdp.max_bans)?;
    shield
        .shares
        .set_fleet(config.crowdsec.pulls(), !config.feeds.is_empty());

    let group = config
        .daemon
        .control_group
        .as_deref()
        .map(group_id)
        .transpose()?;
    let server = ControlServer::bind(&config.daemon.control_socket, group)?;
    let poll = config.logs.poll_interval;
    let refresh = config.allow.refresh;
    let watches = watches(&config, &db);
    let feed_cursors: HashMap<String, String> = config
        .feeds
        .iter()
        .filter_map(|f| {
            let c = db
                .meta(&super::engine::feed_cursor_key(&f.name))
                .ok()
                .flatten()?;
            Some((f.name.clone(), c))
        })
        .collect();
    let alert_queue = match db.load_alert_queue() {
        Ok((q, skipped)) => {
            if skipped > 0 {
                log::warn!("{skipped} queued CrowdSec alert(s) in the state database did not parse: skipped");
            }
            q
        }
        Err(e) => {
            log::error!("reading the CrowdSec alert queue: {e}");
            Vec::new()
        }
    };
    let fleet_saved = match db.load_fleet(crate::state::unix_secs(SystemTime::now())) {
        Ok((saved, skipped)) => {
            if skipped > 0 {
                log::warn!(
                    "{skipped} fleet decision(s) in the state database did not parse: skipped"
                );
            }
            saved
        }
        Err(e) => {
            log::error!("reading fleet decisions: {e}; CrowdSec's next pull brings them back");
            Vec::new()
        }
    };
    let mut engine = Engine::new(
        config.clone(),
        config_shown,
        policy,
        shield,
        Store::start(db),
        watches,
    );
    if let Some(addr) = config.metrics.address() {
        match engine.metrics.serve(addr) {
            Ok(()) => log::info!("metrics at http://{addr}/metrics"),
            // Guarding matters more than graphs: say so and go on.
            Err(e) => log::error!("metrics: cannot listen on {addr}: {e}"),
        }
    }
    took("tables counted");
    for d in fleet_saved {
        engine.fleet.insert(d);
    }
    for (name, cursor) in feed_cursors {
        engine.feeds.entry(name).or_default().cursor = Some(cursor);
    }
    engine.reconcile()?;
    took("kernel reconciled");
    engine.flush();
    release_start_up_memory();

    let (req_tx, mut req_rx) =
        mpsc::channel::<(Request, tokio::sync::oneshot::Sender<Response>)>(64);
    let socket_path = server.path().to_path_buf();
    let server_task = tokio::spawn(server.serve(req_tx, engine.events.sender()));
    let (disc_tx, mut disc_rx) = mpsc::channel(1);
    // Pulls wait for the engine (bounded): a slow apply slows the pulls.
    let (cs_tx, mut cs_rx) = mpsc::channel::<Pulled>(4);
    let (feed_tx, mut feed_rx) = mpsc::channel::<FeedUpdate>(16);
    let mut fleet = FleetThreads::start(&mut engine, cs_tx, feed_tx);
    let (push_tx, mut push_rx) = mpsc::channel::<Pushed>(16);
    let pusher = start_pusher(&engine, &push_tx);
    engine.set_pusher(pusher, alert_queue);

    let mut log_tick = tokio::time::interval(poll);
    let mut event_tick = tokio::time::interval(Duration::from_millis(50));
    let mut house_tick = tokio::time::interval(Duration::from_secs(1));
    let mut flush_tick = tokio::time::interval(super::engine::FLUSH_EVERY);
    let mut discovery_tick = tokio::time::interval(refresh.max(Duration::from_secs(1)));
    for t in [
        &mut log_tick,
        &mut event_tick,
        &mut house_tick,
        &mut flush_tick,
        &mut discovery_tick,
    ] {
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    }
    log::warn!(
        "sipshield running; control socket {}",
        socket_path.display()
    );

    loop {
        tokio::select! {
            _ = sigterm.recv() => { log::warn!("SIGTERM: shutting down"); break; }
            _ = sigint.recv() => { log::warn!("SIGINT: shutting down"); break; }
            _ = sighup.recv() => {
                let before = (engine.config.crowdsec.clone(), engine.config.feeds.clone());
                let msg = reload(&mut engine, &opts);
                log::warn!("SIGHUP: {msg}");
                fleet.follow(&mut engine, &before.0, &before.1);
            }
            Some(pulled) = cs_rx.recv() => {
                engine.on_pulled(pulled);
            }
            Some(pushed) = push_rx.recv() => {
                engine.on_pushed(pushed);
            }
            Some(update) = feed_rx.recv() => {
                engine.on_feed(update);
            }
            Some((req, reply)) = req_rx.recv() => {
                let response = if req == Request::Reload {
                    let before = (engine.config.crowdsec.clone(), engine.config.feeds.clone());
                    let r = match try_reload(&mut engine, &opts) {
                        Ok(msg) => Response::ok(serde_json::json!({"message": msg})),
                        Err(e) => Response::error(format!("{e:#}")),
                    };
                    fleet.follow(&mut engine, &before.0, &before.1);
                    r
                } else {
                    engine.handle(req)
                };
                let _ = reply.send(response);
                // Operator changes are rare: on disk at once.
                engine.flush();
            }
            _ = log_tick.tick() => {
                let at = SystemTime::now();
                let mut lines = Vec::new();
                let shield = &engine.shield;
                let tie_break = engine.config.logs.tie_break;
                let seen = |ip| tie_break && shield.sent_lately(ip);
                for w in &mut engine.watches {
                    lines.extend(w.poll(&seen));
                }
                for parsed in &lines {
                    match parsed {
                        Parsed::Failure(f) => engine.on_failure(f, at),
                        Parsed::KnownGood(good) => engine.on_known_good(good, at),
                    }
                }
            }
            _ = event_tick.tick() => {
                let events = engine.shield.drain_events();
                if !events.is_empty() {
                    engine.on_kernel_events(events);
                }
            }
            _ = house_tick.tick() => {
                engine.housekeeping();
            }
            _ = flush_tick.tick() => {
                engine.flush();
            }
            _ = discovery_tick.tick() => {
                let section = engine.config.allow.clone();
                let tx = disc_tx.clone();
                tokio::task::spawn_blocking(move || {
                    let _ = tx.blocking_send(discover::discover(&section, Path::new("/proc")));
                });
            }
            Some(found) = disc_rx.recv() => {
                engine.on_discovery(&found);
            }
        }
    }

    server_task.abort();
    drop(fleet);
    engine.save_now();
    let _ = std::fs::remove_file(&socket_path);
    if opts.detach_on_exit {
        let ifaces: Vec<String> = engine
            .shield
            .links
            .iter()
            .map(|l| l.iface.clone())
            .collect();
        drop(engine);
        for iface in ifaces {
            match pins::detach(&pin_root, &iface) {
                Ok(_) => log::warn!("{iface}: detached (--detach-on-exit)"),
                Err(e) => log::error!("{iface}: detach failed: {e}"),
            }
        }
    } else {
        log::warn!("exiting; bans stay enforced by the pinned program");
    }
    Ok(())
}

/// Starts the CrowdSec bouncer when `[crowdsec] api_url` and a key are set.
/// A key that cannot be read is reported (status, log), never a reason not
/// to guard.
fn start_bouncer(engine: &mut Engine, tx: &mpsc::Sender<Pulled>) -> Option<Bouncer> {
    let section = engine.config.crowdsec.clone();
    engine.crowdsec.enabled = section.pulls();
    engine.crowdsec.url = section.api_url.clone();
    if !section.pulls() {
        return None;
    }
    let key = match section.key() {
        Ok(k) => k,
        Err(e) => {
            log::error!("crowdsec: no bouncer key: {e}; not pulling");
            engine.crowdsec.last_error = Some(format!("no bouncer key: {e}"));
            engine
                .crowdsec
                .down_since
                .get_or_insert_with(SystemTime::now);
            return None;
        }
    };
    match Bouncer::start(&section, key, tx.clone()) {
        Ok(b) => {
            log::info!(
                "crowdsec: pulling decisions from {} every {}",
                section.api_url,
                crate::config::format_duration(section.update_frequency)
            );
            Some(b)
        }
        Err(e) => {
            log::error!("crowdsec: cannot start the puller: {e}");
            None
        }
    }
}

/// The fleet's threads (CrowdSec's puller, the feeds' fetcher), restarted
/// when a reload changes what they run with.
struct FleetThreads {
    bouncer: Option<Bouncer>,
    fetcher: Option<Fetcher>,
    cs_tx: mpsc::Sender<Pulled>,
    feed_tx: mpsc::Sender<FeedUpdate>,
}

impl FleetThreads {
    fn start(
        engine: &mut Engine,
        cs_tx: mpsc::Sender<Pulled>,
        feed_tx: mpsc::Sender<FeedUpdate>,
    ) -> FleetThreads {
        FleetThreads {
            bouncer: start_bouncer(engine, &cs_tx),
            fetcher: start_fetcher(engine, &feed_tx),
            cs_tx,
            feed_tx,
        }
    }

    /// After a reload (applied or not): what changed restarts, the shares
    /// follow what is configured.
    fn follow(
        &mut self,
        engine: &mut Engine,
        crowdsec: &crate::config::CrowdSecSection,
        feeds: &[crate::config::FeedSection],
    ) {
        if engine.config.crowdsec != *crowdsec {
            drop(self.bouncer.take());
            self.bouncer = start_bouncer(engine, &self.cs_tx);
        }
        engine.shield.shares.set_fleet(
            engine.config.crowdsec.pulls(),
            !engine.config.feeds.is_empty(),
        );
        if engine.config.feeds != feeds {
            drop(self.fetcher.take());
            engine.drop_unconfigured_feeds();
            self.fetcher = start_fetcher(engine, &self.feed_tx);
        }
    }
}

/// Starts fetching the `[[feeds]]`, from where APIBAN feeds were left.
fn start_fetcher(engine: &Engine, tx: &mpsc::Sender<FeedUpdate>) -> Option<Fetcher> {
    if engine.config.feeds.is_empty() {
        return None;
    }
    let feeds: Vec<_> = engine.config.feeds.iter().map(|f| f.resolved()).collect();
    let cursors: HashMap<String, String> = engine
        .feeds
        .iter()
        .filter_map(|(n, st)| Some((n.clone(), st.cursor.clone()?)))
        .collect();
    match Fetcher::start(&feeds, &cursors, tx.clone()) {
        Ok(f) => {
            log::info!(
                "feeds: {}",
                feeds
                    .iter()
                    .map(|f| format!("{} ({})", f.name, f.url))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            Some(f)
        }
        Err(e) => {
            log::error!("feeds: cannot start the fetcher: {e}");
            None
        }
    }
}

/// Starts the watcher when `[crowdsec] machine_id` is set (a password that
/// cannot be read is reported, never a reason not to guard).
fn start_pusher(engine: &Engine, tx: &mpsc::Sender<Pushed>) -> Option<Pusher> {
    let section = &engine.config.crowdsec;
    if !section.pushes() {
        return None;
    }
    let password = match section.watcher_password() {
        Ok(p) => p,
        Err(e) => {
            log::error!("crowdsec: no watcher password: {e}; no alerts sent");
            return None;
        }
    };
    let login = WatcherLogin {
        api_url: section.api_url.clone(),
        machine_id: section.machine_id.clone(),
        password,
    };
    match Pusher::start(login, section.push_interval, tx.clone()) {
        Ok(p) => {
            log::info!(
                "crowdsec: sending proof-backed bans to {} as {}",
                section.api_url,
                section.machine_id
            );
            Some(p)
        }
        Err(e) => {
            log::error!("crowdsec: cannot start the alert sender: {e}");
            None
        }
    }
}

fn try_reload(engine: &mut Engine, opts: &RunOptions) -> anyhow::Result<String> {
    let (mut config, _) = load_config(opts)?;
    // Compared with the running (resolved) list: `auto` is no change.
    config.daemon.interfaces = config.daemon.resolved_interfaces(Path::new("/proc"));
    Ok(engine.reload(config)?)
}

fn reload(engine: &mut Engine, opts: &RunOptions) -> String {
    match try_reload(engine, opts) {
        Ok(msg) => msg,
        Err(e) => format!("new configuration rejected, keeping the running one: {e:#}"),
    }
}

/// Start-up reads every ban twice over (database rows, kernel tables) and
/// frees it again; glibc keeps freed heap for reuse unless told: give it
/// back, so the daemon's resident size is what it holds.
fn release_start_up_memory() {
    // SAFETY: malloc_trim only returns free heap pages to the system.
    #[cfg(target_env = "gnu")]
    unsafe {
        libc::malloc_trim(0);
    }
}
