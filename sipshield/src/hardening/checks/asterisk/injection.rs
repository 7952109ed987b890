//! Dialplan injection: a pattern with `.` or `!` matches any characters,
//! `&` included, so `exten => _X.,1,Dial(SIP/${EXTEN}@trunk)` lets a caller
//! dial `100&DAHDI/g0/0900…` and add channels of their own choosing to the
//! call. Asterisk's own best-practice guide says to pass `${EXTEN}` through
//! `FILTER()` wherever such a pattern feeds `Dial`.

use crate::hardening::conf::asterisk::{AsteriskConf, Value};
use crate::hardening::secret;
use crate::hardening::{Report, Severity};

use super::dialplan::{app_of, first_arg};
use super::{at, host_path, AREA};

/// What `FILTER()` keeps: the characters of a dialled number.
const NUMBER_CHARS: &str = "0-9*#+";

pub(super) fn check(dialplan: &AsteriskConf, report: &mut Report) {
    for context in dialplan.objects() {
        // `same =>` lines continue the extension of the last `exten =>`.
        let mut pattern: Option<&str> = None;
        for v in &context.values {
            let key = v.key.to_ascii_lowercase();
            let line_pattern = match key.as_str() {
                "exten" => {
                    pattern = v.value.split(',').next().map(str::trim);
                    pattern
                }
                "same" => pattern,
                _ => continue,
            };
            let Some(p) = line_pattern.filter(|p| matches_anything(p)) else {
                continue;
            };
            if let Some(device) = unfiltered_dial(app_of(&key, &v.value)) {
                report
                    .findings
                    .push(finding(&context.name, p, &key, v, &device));
            }
        }
    }
}

fn finding(
    context: &str,
    pattern: &str,
    key: &str,
    v: &Value,
    device: &str,
) -> crate::hardening::Finding {
    at(
        AREA,
        "dialplan.exten-injection",
        Severity::Medium,
        &v.origin,
        format!(
            "[{context}] pattern `{pattern}` matches any characters (`&` too) and `{}` puts the dialled digits into the dial string unfiltered: a caller can add channels of their own choosing",
            secret::mask_inline(device)
        ),
        format!(
            "{key} => {} in [{context}] of {}",
            secret::mask_inline(&filtered(&v.value)),
            host_path(&v.origin.file)
        ),
    )
}

/// `_X.`, `_9!`, `_.`: a pattern whose `.` or `!` (outside a `[...]` class)
/// matches characters other than digits.
fn matches_anything(pattern: &str) -> bool {
    let Some(p) = pattern.strip_prefix('_') else {
        return false;
    };
    let mut in_class = false;
    for c in p.chars() {
        match c {
            '[' => in_class = true,
            ']' => in_class = false,
            '.' | '!' if !in_class => return true,
            _ => {}
        }
    }
    false
}

/// The device argument of a `Dial` application when it carries
/// `${EXTEN…}` outside any `FILTER()`.
fn unfiltered_dial(app: &str) -> Option<String> {
    let open = app.find('(')?;
    if !app[..open].trim().eq_ignore_ascii_case("dial") {
        return None;
    }
    let device = first_arg(&app[open + 1..]);
    without_filters(device)
        .contains("${EXTEN")
        .then(|| format!("Dial({device}…)"))
}

/// The text with every `${FILTER(...)}` removed.
fn without_filters(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("${FILTER(") {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        let end = closing_brace(after).unwrap_or(after.len());
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// Byte index just past the `}` that closes the `${` at the start of `s`.
fn closing_brace(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

/// The line with each unfiltered `${EXTEN…}` wrapped in `FILTER()`.
fn filtered(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    loop {
        let filter = rest.find("${FILTER(");
        let exten = rest.find("${EXTEN");
        match (filter, exten) {
            (Some(f), Some(e)) if f < e => {
                let end = closing_brace(&rest[f..]).map_or(rest.len(), |n| f + n);
                out.push_str(&rest[..end]);
                rest = &rest[end..];
            }
            (_, Some(e)) => {
                let end = closing_brace(&rest[e..]).map_or(rest.len(), |n| e + n);
                out.push_str(&rest[..e]);
                out.push_str(&format!("${{FILTER({NUMBER_CHARS},{})}}", &rest[e..end]));
                rest = &rest[end..];
            }
            (_, None) => {
                out.push_str(rest);
                return out;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_that_match_any_character() {
        assert!(matches_anything("_X."));
        assert!(matches_anything("_9!"));
        assert!(matches_anything("_."));
        assert!(!matches_anything("_NXXNXXXXXX"));
        assert!(
            !matches_anything("_[.]X"),
            "a dot inside a class is a literal"
        );
        assert!(!matches_anything("100"), "not a pattern");
    }

    #[test]
    fn dials_with_unfiltered_exten() {
        assert!(unfiltered_dial(app_of("exten", "_X.,1,Dial(SIP/provider/${EXTEN},60)")).is_some());
        assert!(unfiltered_dial(app_of("exten", "_9X.,n,Dial(PJSIP/${EXTEN:1}@trunk)")).is_some());
        assert!(unfiltered_dial(app_of(
            "exten",
            "_9X.,n,Dial(PJSIP/${FILTER(0-9,${EXTEN:1})}@trunk)"
        ))
        .is_none());
        assert!(
            unfiltered_dial(app_of("exten", "_X.,1,Dial(PJSIP/6001,20,${EXTEN})")).is_none(),
            "options, not the device"
        );
        assert!(unfiltered_dial(app_of("exten", "_X.,1,Goto(internal,${EXTEN},1)")).is_none());
        assert!(
            unfiltered_dial(app_of(
                "exten",
                "_X.,1,Dial(SIP/${FILTER(0-9,${EXTEN})}&IAX2/p/${EXTEN})"
            ))
            .is_some(),
            "the second device is not filtered"
        );
    }

    #[test]
    fn the_fix_wraps_each_exten_in_filter() {
        assert_eq!(
            filtered("_9X.,n,Dial(PJSIP/${EXTEN:1}@trunk,60)"),
            "_9X.,n,Dial(PJSIP/${FILTER(0-9*#+,${EXTEN:1})}@trunk,60)"
        );
        assert_eq!(
            filtered("_X.,1,Dial(SIP/${FILTER(0-9,${EXTEN})}&IAX2/p/${EXTEN})"),
            "_X.,1,Dial(SIP/${FILTER(0-9,${EXTEN})}&IAX2/p/${FILTER(0-9*#+,${EXTEN})})"
        );
    }
}
