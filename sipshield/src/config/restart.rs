//! Keys a running daemon cannot take on a reload: where it attaches, where
//! its files and pins are, who may use its socket, how big its maps are and
//! how often its timers tick. A reload names the ones that changed and keeps
//! their running values until a restart.

use super::Config;

/// The keys of `new` that differ from `running` but need a restart.
pub fn restart_only_changes(running: &Config, new: &Config) -> Vec<&'static str> {
    let (a, b) = (running, new);
    let checks: [(&'static str, bool); 17] = [
        (
            "daemon.interfaces",
            a.daemon.interfaces != b.daemon.interfaces,
        ),
        ("daemon.xdp_mode", a.daemon.xdp_mode != b.daemon.xdp_mode),
        ("daemon.state_dir", a.daemon.state_dir != b.daemon.state_dir),
        (
            "daemon.control_socket",
            a.daemon.control_socket != b.daemon.control_socket,
        ),
        (
            "daemon.control_group",
            a.daemon.control_group != b.daemon.control_group,
        ),
        ("daemon.bpffs_dir", a.daemon.bpffs_dir != b.daemon.bpffs_dir),
        ("xdp.max_bans", a.xdp.max_bans != b.xdp.max_bans),
        ("xdp.max_ranges", a.xdp.max_ranges != b.xdp.max_ranges),
        ("xdp.max_allow", a.xdp.max_allow != b.xdp.max_allow),
        ("xdp.max_sources", a.xdp.max_sources != b.xdp.max_sources),
        (
            "xdp.max_kernel_bans",
            a.xdp.max_kernel_bans != b.xdp.max_kernel_bans,
        ),
        ("xdp.max_known", a.xdp.max_known != b.xdp.max_known),
        (
            "logs.poll_interval",
            a.logs.poll_interval != b.logs.poll_interval,
        ),
        ("allow.refresh", a.allow.refresh != b.allow.refresh),
        ("metrics.listen", a.metrics.listen != b.metrics.listen),
        ("hooks", a.hooks != b.hooks),
        (
            "crowdsec.machine_id",
            a.crowdsec.machine_id != b.crowdsec.machine_id
                || a.crowdsec.password != b.crowdsec.password
                || a.crowdsec.password_file != b.crowdsec.password_file
                || a.crowdsec.push_interval != b.crowdsec.push_interval,
        ),
    ];
    checks
        .into_iter()
        .filter(|(_, changed)| *changed)
        .map(|(key, _)| key)
        .collect()
}

/// `new` with the running values of every restart-only key, so what the
/// daemon reports is what it runs with.
pub fn keep_running_values(running: &Config, mut new: Config) -> Config {
    new.daemon = running.daemon.clone();
    new.xdp.max_bans = running.xdp.max_bans;
    new.xdp.max_ranges = running.xdp.max_ranges;
    new.xdp.max_allow = running.xdp.max_allow;
    new.xdp.max_sources = running.xdp.max_sources;
    new.xdp.max_kernel_bans = running.xdp.max_kernel_bans;
    new.xdp.max_known = running.xdp.max_known;
    new.logs.poll_interval = running.logs.poll_interval;
    new.allow.refresh = running.allow.refresh;
    new.metrics = running.metrics.clone();
    new.hooks = running.hooks.clone();
    // The watcher's login: its queue lives with the running pusher.
    new.crowdsec.machine_id = running.crowdsec.machine_id.clone();
    new.crowdsec.password = running.crowdsec.password.clone();
    new.crowdsec.password_file = running.crowdsec.password_file.clone();
    new.crowdsec.push_interval = running.crowdsec.push_interval;
    new
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_keys_are_named_and_kept() {
        let running = Config::default();
        let mut new = Config::default();
        new.daemon.state_dir = "/srv/sipshield".into();
        new.xdp.max_bans = 2048;
        new.policy.sip_auth.maxretry = 3;
        assert_eq!(
            restart_only_changes(&running, &new),
            ["daemon.state_dir", "xdp.max_bans"]
        );
        let applied = keep_running_values(&running, new);
        assert_eq!(applied.daemon.state_dir, running.daemon.state_dir);
        assert_eq!(applied.xdp.max_bans, running.xdp.max_bans);
        assert_eq!(applied.policy.sip_auth.maxretry, 3, "live keys change");
        assert!(restart_only_changes(&running, &applied).is_empty());
    }
}
