//! asterisk.conf `[options]`: `live_dangerously = yes` lets AMI and ARI
//! users evaluate functions such as `SHELL()` and `FILE()` when they read
//! or set a variable, so any manager login becomes a shell on the host.
//! Asterisk 12 and later default to `no`; only an explicit yes is a finding.

use crate::hardening::conf::asterisk::AsteriskConf;
use crate::hardening::conf::is_true;
use crate::hardening::{Report, Severity};

use super::{at, host_path, AREA};

pub(super) fn check(conf: &AsteriskConf, report: &mut Report) {
    let Some(options) = conf.section("options") else {
        return;
    };
    let Some(value) = options
        .get("live_dangerously")
        .filter(|v| is_true(&v.value))
    else {
        return;
    };
    report.findings.push(at(
        AREA,
        "asterisk.live-dangerously",
        Severity::Medium,
        &value.origin,
        format!(
            "live_dangerously = {}: AMI and ARI users can run SHELL() and write FILE() through variable reads and writes, so a manager login is a shell on this host",
            value.value
        ),
        format!(
            "live_dangerously = no in [options] of {}",
            host_path(&value.origin.file)
        ),
    ));
}
