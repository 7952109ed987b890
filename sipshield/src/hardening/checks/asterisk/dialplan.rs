//! The dialplan seen from an unauthenticated caller: every context reachable
//! from a guest context through `include =>`, literal `Goto`/`Gosub`/`Macro`
//! targets and `Local/...@context`, searched for a `Dial` out through a trunk
//! (toll fraud: the reason SIP scanners exist).

use std::collections::{HashSet, VecDeque};

use crate::hardening::conf::asterisk::{AsteriskConf, Value};
use crate::hardening::{secret, Report, Severity};

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
                secret::mask_inline(app_of(&line.key, &line.value))
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
                    // `include => ctx,09:00-17:00,mon-fri,*,*`: the timing
                    // limits when, not whether, the context is reachable.
                    "include" => next.push(
                        v.value
                            .split([',', '|'])
                            .next()
                            .unwrap_or("")
                            .trim()
                            .to_string(),
                    ),
                    "exten" | "same" => {
                        let app = app_of(&key, &v.value);
                        if dials_trunk(app) {
                            return Some((v, path.clone()));
                        }
                        next.extend(jump_targets(app));
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

/// The application of a dialplan line: `exten => _X.,1,Dial(SIP/x)` and
/// `same => n,Dial(SIP/x)` both give `Dial(SIP/x)`; empty when there is none.
pub(super) fn app_of<'a>(key: &str, value: &'a str) -> &'a str {
    let fields_before = if key.eq_ignore_ascii_case("same") {
        1
    } else {
        2
    };
    value
        .splitn(fields_before + 1, ',')
        .nth(fields_before)
        .unwrap_or("")
        .trim()
}

/// Name (lower-cased) and arguments of an application call.
fn app_call(app: &str) -> Option<(String, &str)> {
    let open = app.find('(')?;
    let name = app[..open].trim().to_ascii_lowercase();
    let args = app[open + 1..]
        .strip_suffix(')')
        .unwrap_or(&app[open + 1..]);
    Some((name, args))
}

/// The first argument of an application: up to the first comma (or the
/// closing parenthesis) outside nested `(...)` and `${...}`, so that
/// `PJSIP/${FILTER(0-9,${EXTEN})}@trunk` stays one device.
pub(super) fn first_arg(args: &str) -> &str {
    let mut depth = 0usize;
    for (i, c) in args.char_indices() {
        match c {
            '(' | '{' => depth += 1,
            ')' | '}' if depth > 0 => depth -= 1,
            ',' | ')' if depth == 0 => return &args[..i],
            _ => {}
        }
    }
    args
}

/// Whether the line dials a trunk rather than a local phone: DAHDI/analog
/// lines, a technology with a peer *and* a number (`SIP/provider/${EXTEN}`,
/// `PJSIP/${EXTEN}@provider`, `IAX2/provider/...`), or FreePBX's trunk macro.
fn dials_trunk(app: &str) -> bool {
    let Some((app, args)) = app_call(app) else {
        return false;
    };
    let lower = args.to_ascii_lowercase();
    if matches!(app.as_str(), "macro" | "gosub") {
        return lower.contains("dialout-trunk") || lower.contains("dialout-dundi");
    }
    if app != "dial" {
        return false;
    }
    let target = first_arg(&lower);
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
/// both branches of `GotoIf(cond?ctx,ext,1:ctx2,ext,1)`, `Macro(name)`
/// (context `macro-name`), `Dial(Local/x@ctx)`.
fn jump_targets(app: &str) -> Vec<String> {
    let Some((app, args)) = app_call(app) else {
        return Vec::new();
    };
    let literal = |s: &str| {
        let s = s.trim();
        (!s.is_empty() && !s.contains("${")).then(|| s.to_string())
    };
    match app.as_str() {
        "goto" | "gosub" => goto_context(args).and_then(literal).into_iter().collect(),
        "gotoif" | "gosubif" => {
            let branches = split_top(args, '?').get(1).copied().unwrap_or("");
            split_top(branches, ':')
                .into_iter()
                .filter_map(goto_context)
                .filter_map(literal)
                .collect()
        }
        "macro" => split_top(args, ',')
            .first()
            .and_then(|m| literal(&format!("macro-{}", m.trim())))
            .into_iter()
            .collect(),
        "dial" => split_top(first_arg(args), '&')
            .into_iter()
            .filter_map(|one| {
                let one = one.trim();
                let rest = one
                    .strip_prefix("Local/")
                    .or_else(|| one.strip_prefix("local/"))?;
                let ctx = rest.split_once('@')?.1;
                literal(ctx.split('/').next().unwrap_or(ctx))
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The context of `ctx,ext,prio` (a Goto target names one only with all
/// three parts); a `Gosub` priority may carry `(args)`.
fn goto_context(target: &str) -> Option<&str> {
    let parts = split_top(target, ',');
    (parts.len() == 3).then_some(parts[0])
}

/// Splits at `sep` outside nested `(...)` and `${...}`, so `${EXTEN:1}` and
/// `${FILTER(0-9,${EXTEN})}` stay whole.
fn split_top(s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' | '{' => depth += 1,
            ')' | '}' => depth = depth.saturating_sub(1),
            c if c == sep && depth == 0 => {
                out.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trunk_dials_are_told_from_local_ones() {
        assert!(dials_trunk(app_of(
            "exten",
            "_X.,1,Dial(SIP/provider/${EXTEN},60)"
        )));
        assert!(dials_trunk(app_of(
            "exten",
            "_9X.,n,Dial(PJSIP/${EXTEN:1}@trunk)"
        )));
        assert!(dials_trunk(app_of(
            "exten",
            "_X.,1,Dial(DAHDI/g0/${EXTEN})"
        )));
        assert!(dials_trunk(app_of(
            "exten",
            "_X.,1,Macro(dialout-trunk,1,${EXTEN})"
        )));
        assert!(!dials_trunk(app_of(
            "exten",
            "_6XXX,1,Dial(SIP/${EXTEN},20)"
        )));
        assert!(!dials_trunk(app_of(
            "exten",
            "_6XXX,1,Dial(PJSIP/${EXTEN},20)"
        )));
    }

    #[test]
    fn the_application_of_exten_and_same_lines() {
        assert_eq!(
            app_of("exten", "_X.,1,Dial(SIP/p/${EXTEN},60)"),
            "Dial(SIP/p/${EXTEN},60)"
        );
        assert_eq!(
            app_of("same", "n(out),Dial(SIP/p/${EXTEN})"),
            "Dial(SIP/p/${EXTEN})"
        );
        assert_eq!(app_of("exten", "s,1"), "");
        assert!(dials_trunk(app_of("same", "n,Dial(SIP/provider/${EXTEN})")));
    }

    #[test]
    fn jumps_follow_literal_contexts_only() {
        assert_eq!(
            jump_targets(app_of("exten", "s,1,Goto(outbound,${EXTEN},1)")),
            vec!["outbound"]
        );
        assert_eq!(
            jump_targets(app_of("exten", "s,1,Goto(${CTX},s,1)")),
            Vec::<String>::new()
        );
        assert_eq!(
            jump_targets(app_of("exten", "s,1,Dial(Local/${EXTEN}@out)")),
            vec!["out"]
        );
        assert_eq!(
            jump_targets(app_of("exten", "s,1,Macro(user-callerid)")),
            vec!["macro-user-callerid"]
        );
        assert_eq!(
            jump_targets(app_of("exten", "_9X.,1,Goto(outbound,${EXTEN:1},1)")),
            vec!["outbound"],
            "a colon inside ${{...}} is not a GotoIf branch"
        );
        assert_eq!(
            jump_targets(app_of(
                "exten",
                "s,n,GotoIf($[${X}=1]?day,s,1:night,${EXTEN:2},1)"
            )),
            vec!["day", "night"]
        );
        assert_eq!(
            jump_targets(app_of("exten", "s,1,Goto(s,2)")),
            Vec::<String>::new()
        );
    }
}
