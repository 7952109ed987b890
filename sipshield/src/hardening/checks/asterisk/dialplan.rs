//! The dialplan seen from an unauthenticated caller: every context reachable
//! from a guest context through `include =>`, literal `Goto`/`Gosub`/`Macro`
//! targets and `Local/...@context`, searched for a `Dial` out through a trunk
//! (toll fraud: the reason SIP scanners exist).

use std::collections::{HashSet, VecDeque};

use crate::hardening::conf::asterisk::{AsteriskConf, Value};
use crate::hardening::{Report, Severity};

use super::{at, GuestEntry, AREA};

pub(super) fn guest_outbound(dialplan: &AsteriskConf, guests: &[GuestEntry], report: &mut Report) {
    for guest in guests {
        let Some((line, path)) = outbound_from(dialplan, &guest.context) else {
            continue;
        };
        let route = if path.len() > 1 {
            format!(" (through {})", path.join(" → "))
        } else {
            String::new()
        };
        report.findings.push(at(
            AREA,
            "dialplan.guest-outbound",
            Severity::High,
            &guest.origin,
            format!(
                "{}: unauthenticated calls land in [{}], which can dial out through a trunk at {}:{}{route}: `{}`",
                guest.via,
                guest.context,
                line.origin.file,
                line.origin.line,
                app_of(&line.value)
            ),
            guest.fix.clone(),
        ));
    }
}

/// The first trunk dial reachable from `start`, with the contexts on the way.
fn outbound_from<'a>(dialplan: &'a AsteriskConf, start: &str) -> Option<(&'a Value, Vec<String>)> {
    let mut seen = HashSet::from([start.to_string()]);
    let mut queue = VecDeque::from([vec![start.to_string()]]);
    while let Some(path) = queue.pop_front() {
        let Some(name) = path.last() else {
            continue;
        };
        // A context may be written in several sections (and files).
        for context in dialplan.objects().filter(|s| &s.name == name) {
            for v in &context.values {
                let key = v.key.to_ascii_lowercase();
                let mut next: Vec<String> = Vec::new();
                match key.as_str() {
                    "include" => {
                        next.push(v.value.split('|').next().unwrap_or("").trim().to_string())
                    }
                    "exten" | "same" => {
                        if dials_trunk(&v.value) {
                            return Some((v, path.clone()));
                        }
                        next.extend(jump_targets(&v.value));
                    }
                    _ => {}
                }
                for n in next {
                    if !n.is_empty() && seen.insert(n.clone()) {
                        let mut p = path.clone();
                        p.push(n);
                        queue.push_back(p);
                    }
                }
            }
        }
    }
    None
}

/// `_X.,1,Dial(SIP/x)` → `Dial(SIP/x)`.
fn app_of(line: &str) -> &str {
    let mut parts = line.splitn(3, ',');
    parts.next();
    parts.next();
    parts.next().unwrap_or(line).trim()
}

/// Name and arguments of the application on an `exten`/`same` line.
fn app_call(line: &str) -> Option<(String, &str)> {
    let app = app_of(line);
    let open = app.find('(')?;
    let name = app[..open].trim().to_ascii_lowercase();
    let args = app[open + 1..]
        .strip_suffix(')')
        .unwrap_or(&app[open + 1..]);
    Some((name, args))
}

/// Whether the line dials a trunk rather than a local phone: DAHDI/analog
/// lines, a technology with a peer *and* a number (`SIP/provider/${EXTEN}`,
/// `PJSIP/${EXTEN}@provider`, `IAX2/provider/...`), or FreePBX's trunk macro.
fn dials_trunk(line: &str) -> bool {
    let Some((app, args)) = app_call(line) else {
        return false;
    };
    let lower = args.to_ascii_lowercase();
    if matches!(app.as_str(), "macro" | "gosub") {
        return lower.contains("dialout-trunk") || lower.contains("dialout-dundi");
    }
    if app != "dial" {
        return false;
    }
    let target = lower.split(',').next().unwrap_or("");
    target.split('&').any(|one| {
        let one = one.trim();
        if one.starts_with("${out_") || one.starts_with("${trunk") {
            return true;
        }
        let Some((tech, rest)) = one.split_once('/') else {
            return false;
        };
        match tech {
            "dahdi" | "zap" | "misdn" | "ooh323" | "h323" => true,
            "sip" | "iax2" => rest.contains('/') || rest.contains('@'),
            "pjsip" => rest.contains('@') || rest.contains("/sip:"),
            _ => false,
        }
    })
}

/// Contexts a line jumps to by name: `Goto(ctx,ext,prio)`, `Gosub(ctx,...)`,
/// `Macro(name)` (context `macro-name`), `Dial(Local/x@ctx)`.
fn jump_targets(line: &str) -> Vec<String> {
    let Some((app, args)) = app_call(line) else {
        return Vec::new();
    };
    let fields: Vec<&str> = args.split(',').map(str::trim).collect();
    let literal = |s: &str| (!s.contains("${")).then(|| s.to_string());
    match app.as_str() {
        "goto" | "gotoif" | "gosub" | "gosubif" => {
            // GotoIf(cond?ctx,ext,prio:...) – take the branch text after `?`.
            let text = args.split_once('?').map_or(args, |(_, t)| t);
            let branches: Vec<&str> = text.split(':').collect();
            branches
                .iter()
                .filter_map(|b| {
                    let f: Vec<&str> = b.split(',').map(str::trim).collect();
                    let ctx = if f.len() == 3 { f[0] } else { "" };
                    let ctx = ctx.split('(').next().unwrap_or(ctx);
                    literal(ctx)
                })
                .collect()
        }
        "macro" => fields
            .first()
            .and_then(|m| literal(&format!("macro-{m}")))
            .into_iter()
            .collect(),
        "dial" => fields
            .first()
            .map(|t| {
                t.split('&')
                    .filter_map(|one| {
                        let one = one.trim();
                        let rest = one
                            .strip_prefix("Local/")
                            .or_else(|| one.strip_prefix("local/"))?;
                        let ctx = rest.split_once('@')?.1;
                        literal(ctx.split('/').next().unwrap_or(ctx))
                    })
                    .collect()
            })
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trunk_dials_are_told_from_local_ones() {
        assert!(dials_trunk("_X.,1,Dial(SIP/provider/${EXTEN},60)"));
        assert!(dials_trunk("_9X.,n,Dial(PJSIP/${EXTEN:1}@trunk)"));
        assert!(dials_trunk("_X.,1,Dial(DAHDI/g0/${EXTEN})"));
        assert!(dials_trunk("_X.,1,Macro(dialout-trunk,1,${EXTEN})"));
        assert!(!dials_trunk("_6XXX,1,Dial(SIP/${EXTEN},20)"));
        assert!(!dials_trunk("_6XXX,1,Dial(PJSIP/${EXTEN},20)"));
    }

    #[test]
    fn jumps_follow_literal_contexts_only() {
        assert_eq!(
            jump_targets("s,1,Goto(outbound,${EXTEN},1)"),
            vec!["outbound"]
        );
        assert_eq!(jump_targets("s,1,Goto(${CTX},s,1)"), Vec::<String>::new());
        assert_eq!(jump_targets("s,1,Dial(Local/${EXTEN}@out)"), vec!["out"]);
        assert_eq!(
            jump_targets("s,1,Macro(user-callerid)"),
            vec!["macro-user-callerid"]
        );
    }
}
