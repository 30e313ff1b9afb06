//! The HTML page of `kgate report`: one self-contained file (inline CSS,
//! no scripts, no external resources), rendered from the [`Data`] the
//! command gathered, the target and the HAP profiles. Every string from a
//! module, a policy or a CVE record goes through [`esc`].

use super::*;

/// Escape text for HTML.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `1 module`, `3 modules`.
fn modules(n: usize) -> String {
    if n == 1 {
        "1 module".into()
    } else {
        format!("{} modules", thousands(n as u64))
    }
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        "0%".into()
    } else {
        format!("{:.0}%", part as f64 * 100.0 / whole as f64)
    }
}

/// `YYYY-MM-DD HH:MM UTC` of now.
fn now_utc() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

const STYLE: &str = "
body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;color:#1d2430;background:#f6f7f9;margin:0}
main{max-width:1000px;margin:0 auto;padding:24px 28px 48px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:36px 0 10px;border-bottom:2px solid #d7dce3;padding-bottom:4px}
.meta{color:#5a6472;margin:0 0 18px}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{background:#fff;border:1px solid #dde2e8;border-radius:8px;padding:12px 16px;min-width:170px;flex:1}
.card .n{font-size:26px;font-weight:700}.card .l{color:#5a6472;font-size:13px}
.card .d{color:#1a7f37;font-size:13px;font-weight:600}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #dde2e8;font-size:14px}
th,td{padding:5px 9px;border-bottom:1px solid #eceff3;text-align:left;vertical-align:top}
td.r{white-space:nowrap}
th{background:#eef1f5;font-weight:600}td.r,th.r{text-align:right;font-variant-numeric:tabular-nums}
.bad{color:#b42318;font-weight:600}.good{color:#1a7f37;font-weight:600}.muted{color:#6b7480}
.note{background:#fff8e1;border:1px solid #f0d78c;border-radius:6px;padding:8px 12px;font-size:14px}
svg{background:#fff;border:1px solid #dde2e8;border-radius:6px;max-width:100%;height:auto}
svg text{font:12px system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;fill:#1d2430}
code{font:13px ui-monospace,'DejaVu Sans Mono',Menlo,Consolas,monospace;background:#eef1f5;padding:1px 4px;border-radius:3px}
footer{margin-top:40px;color:#6b7480;font-size:13px}
";

pub(super) fn render(t: &Target, d: &Data, haps: &[(PathBuf, Hap)], top: usize) -> String {
    let mut h = String::new();
    let source = if t.live {
        "this host (live)".to_owned()
    } else {
        format!(
            "offline: {}",
            t.root
                .as_deref()
                .map(|r| r.display().to_string())
                .unwrap_or_else(|| "installed kernel, not running".into())
        )
    };
    let _ = writeln!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>kgate report: {rel}</title><style>{STYLE}</style></head><body><main>\n\
         <h1>kgate report</h1>\n<p class=\"meta\">Kernel <b id=\"kernel-release\">{rel}</b> · {src} · generated {now} by kgate {ver}</p>",
        rel = esc(&t.release),
        src = esc(&source),
        now = now_utc(),
        ver = env!("CARGO_PKG_VERSION"),
    );
    summary_cards(&mut h, t, d, haps);
    score_section(&mut h, d);
    subsystem_chart(&mut h, d, top);
    cve_section(&mut h, d, top);
    hap_section(&mut h, haps, top);
    survey_section(&mut h, t, d, top);
    let _ = writeln!(
        h,
        "<footer>Reachability: an unprivileged user can make the kernel load a module through one of its \
         triggers (socket families and protocols, filesystems in a user namespace, AF_ALG, tty line disciplines, …) \
         given this host's settings; see docs/triggers.md. This page is self-contained: it loads nothing from the network.</footer>\n\
         </main></body></html>"
    );
    h
}

fn card(h: &mut String, id: &str, number: &str, label: &str, delta: Option<String>) {
    let _ = write!(
        h,
        "<div class=\"card\" id=\"{id}\"><div class=\"n\">{}</div><div class=\"l\">{}</div>{}</div>",
        esc(number),
        esc(label),
        delta
            .map(|d| format!("<div class=\"d\">{}</div>", esc(&d)))
            .unwrap_or_default()
    );
}

fn summary_cards(h: &mut String, t: &Target, d: &Data, haps: &[(PathBuf, Hap)]) {
    h.push_str("<section id=\"summary\"><div class=\"cards\">");
    let after = d.diff.as_ref().map(|x| x.after_with_settings);
    if !t.host.modules.supported {
        card(
            h,
            "card-modules",
            "0",
            "modules: this kernel cannot load modules",
            None,
        );
    } else {
        card(
            h,
            "card-modules",
            &thousands(d.before.modules as u64),
            &format!(
                "of {} loadable modules reachable by unprivileged users",
                thousands(d.loadable as u64)
            ),
            after.map(|a| format!("→ {} with the policy", thousands(a.modules as u64))),
        );
        card(
            h,
            "card-code",
            &human_bytes(d.before.text_bytes),
            &format!(
                "of module code reachable ({} of all)",
                percent(d.before.text_bytes, d.loadable_text)
            ),
            after.map(|a| format!("→ {} with the policy", human_bytes(a.text_bytes))),
        );
        card(
            h,
            "card-functions",
            &thousands(d.before.functions),
            "functions in reachable modules",
            after.map(|a| format!("→ {} with the policy", thousands(a.functions))),
        );
    }
    if let Some(score) = &d.score {
        card(
            h,
            "card-cves",
            &thousands(score.before.total.cves_any.all as u64),
            &format!(
                "kernel CVEs in reachable module code ({} HIGH/CRITICAL, {} in 12 months)",
                score.before.total.cves_any.high_critical,
                score.before.total.cves_any.last_12_months
            ),
            score.after.as_ref().map(|a| {
                format!(
                    "→ {} with the policy",
                    thousands(a.total.cves_any.all as u64)
                )
            }),
        );
    }
    if let Some((_, p)) = haps.first() {
        card(
            h,
            "card-hap",
            &thousands(p.hap as u64),
            "kernel functions run by the profiled workload (HAP)",
            haps.get(1)
                .map(|(_, q)| format!("{} in the second profile", thousands(q.hap as u64))),
        );
    }
    h.push_str("</div></section>\n");
}

fn cve_cells(c: Option<(CveCounts, CveCounts)>, with: bool) -> String {
    match (c, with) {
        (_, false) => String::new(),
        (None, true) => "<td class=\"r\">–</td>".repeat(4),
        (Some((any, only)), true) => format!(
            "<td class=\"r\">{}</td><td class=\"r\">{}</td><td class=\"r\">{}</td><td class=\"r\">{}</td>",
            thousands(any.all as u64),
            thousands(only.all as u64),
            thousands(any.high_critical as u64),
            thousands(any.last_12_months as u64)
        ),
    }
}

fn score_section(h: &mut String, d: &Data) {
    h.push_str("<section id=\"score\"><h2>Surface before and after the policy</h2>\n");
    let score = d.score.as_ref();
    let with_cves = score.is_some();
    let head = format!(
        "<table id=\"score-table\"><tr><th></th><th class=\"r\">modules</th><th class=\"r\">code</th><th class=\"r\">functions</th>{}</tr>",
        if with_cves {
            "<th class=\"r\">CVEs touching them</th><th class=\"r\">CVEs only in them</th><th class=\"r\">HIGH/CRITICAL</th><th class=\"r\">last 12 months</th>"
        } else {
            ""
        }
    );
    let row = |label: &str,
               s: &kgate_policy::Surface,
               c: Option<(CveCounts, CveCounts)>,
               class: &str| {
        format!(
            "<tr class=\"{class}\"><td>{label}</td><td class=\"r\">{}</td><td class=\"r\">{}</td><td class=\"r\">{}</td>{}</tr>",
            thousands(s.modules as u64),
            human_bytes(s.text_bytes),
            thousands(s.functions),
            cve_cells(c, with_cves)
        )
    };
    let Some(diff) = &d.diff else {
        h.push_str("<p class=\"muted\">No policy given (<code>--policy FILE</code>): only today's surface is shown.</p>\n");
        if let Some(score) = score {
            let t = score.before.total;
            let today = kgate_policy::Surface {
                modules: t.modules,
                text_bytes: t.text_bytes,
                functions: t.functions,
            };
            let _ = writeln!(
                h,
                "{head}{}</table>",
                row("today", &today, Some((t.cves_any, t.cves_only)), "")
            );
        }
        h.push_str("</section>\n");
        return;
    };
    let _ = writeln!(
        h,
        "<p>Policy <code>{}</code> (modules.mode = {}) blocks {} of {} loadable modules.</p>\n{head}",
        esc(d.policy_name.as_deref().unwrap_or("")),
        diff.mode.as_str(),
        thousands(diff.blocked.len() as u64),
        thousands(diff.loadable as u64),
    );
    let before_cves = score.map(|s| (s.before.total.cves_any, s.before.total.cves_only));
    let after_cves = score
        .and_then(|s| s.after.as_ref())
        .map(|a| (a.total.cves_any, a.total.cves_only));
    let removed_cves = score
        .and_then(|s| s.removed)
        .map(|r| (r.cves_any, r.cves_only));
    h.push_str(&row("today", &diff.before, before_cves, ""));
    h.push_str(&row("with the allowlist", &diff.after, None, "muted"));
    h.push_str(&row(
        "with the allowlist and its settings",
        &diff.after_with_settings,
        after_cves,
        "",
    ));
    let removed = kgate_policy::Surface {
        modules: diff
            .before
            .modules
            .saturating_sub(diff.after_with_settings.modules),
        text_bytes: diff
            .before
            .text_bytes
            .saturating_sub(diff.after_with_settings.text_bytes),
        functions: diff
            .before
            .functions
            .saturating_sub(diff.after_with_settings.functions),
    };
    let _ = writeln!(
        h,
        "{}</table>\n<p id=\"removed-code\" class=\"good\">The policy removes {} ({}) of the reachable module code{}.</p>",
        row("removed", &removed, removed_cves, "good"),
        human_bytes(removed.text_bytes),
        percent(removed.text_bytes, diff.before.text_bytes),
        match removed_cves {
            Some((any, _)) => format!(
                " and {} of the {} CVEs in it",
                thousands(any.all as u64),
                thousands(before_cves.map_or(0, |(a, _)| a.all) as u64)
            ),
            None => String::new(),
        }
    );
    if !diff.blocked_loaded.is_empty() {
        let _ = writeln!(
            h,
            "<p class=\"note\">The policy blocks modules that are loaded now: {}. <code>kgate apply</code> refuses it without <code>--force</code>.</p>",
            esc(&diff.blocked_loaded.join(", "))
        );
    }
    if with_cves {
        h.push_str("<p class=\"muted\">CVEs: kernel CNA records whose fix touches a file of a reachable module (\"touching\"), or only files of one module (\"only in\": blocking the module removes the vulnerable code). HIGH/CRITICAL is the CNA's own rating (it rates CVEs only since 2026-04). docs/cve.md gives the attribution rules.</p>\n");
    }
    h.push_str("</section>\n");
}

fn subsystem_chart(h: &mut String, d: &Data, top: usize) {
    h.push_str("<section id=\"subsystems\"><h2>Reachable code by subsystem</h2>\n");
    if d.subsystems.is_empty() {
        h.push_str(
            "<p class=\"muted\">No module is reachable by an unprivileged user.</p></section>\n",
        );
        return;
    }
    let with_policy = d.diff.is_some();
    let mut rows: Vec<(String, SubsystemBar)> = d.subsystems.iter().take(top).cloned().collect();
    if d.subsystems.len() > top {
        let mut other = SubsystemBar::default();
        for (_, b) in &d.subsystems[top..] {
            other.before += b.before;
            other.after += b.after;
            other.modules_before += b.modules_before;
        }
        rows.push((format!("{} others", d.subsystems.len() - top), other));
    }
    let max = rows.iter().map(|(_, b)| b.before).max().unwrap_or(1).max(1);
    let (label_w, bar_w, row_h, top_pad) =
        (170.0, 480.0, 24.0, if with_policy { 34.0 } else { 12.0 });
    let width = 900.0;
    let height = top_pad + row_h * rows.len() as f64 + 10.0;
    let _ = writeln!(
        h,
        "<svg id=\"subsystem-chart\" role=\"img\" aria-label=\"Reachable module code by subsystem\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\">"
    );
    if with_policy {
        let _ = writeln!(
            h,
            "<rect x=\"{label_w}\" y=\"8\" width=\"14\" height=\"12\" fill=\"#f4b4ae\"/><text x=\"{}\" y=\"18\">reachable today, removed by the policy</text>\
             <rect x=\"{}\" y=\"8\" width=\"14\" height=\"12\" fill=\"#3b6fb6\"/><text x=\"{}\" y=\"18\">still reachable with the policy</text>",
            label_w + 20.0,
            label_w + 290.0,
            label_w + 310.0
        );
    }
    for (i, (name, b)) in rows.iter().enumerate() {
        let y = top_pad + row_h * i as f64;
        let w_before = (b.before as f64 / max as f64 * bar_w).max(1.0);
        let w_after = b.after as f64 / max as f64 * bar_w;
        let _ = write!(
            h,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            label_w - 8.0,
            y + 15.0,
            esc(name)
        );
        if with_policy {
            let _ = write!(
                h,
                "<rect x=\"{label_w}\" y=\"{}\" width=\"{w_before:.1}\" height=\"16\" fill=\"#f4b4ae\"/>",
                y + 3.0
            );
            if w_after > 0.0 {
                let _ = write!(
                    h,
                    "<rect x=\"{label_w}\" y=\"{}\" width=\"{w_after:.1}\" height=\"16\" fill=\"#3b6fb6\"/>",
                    y + 3.0
                );
            }
        } else {
            let _ = write!(
                h,
                "<rect x=\"{label_w}\" y=\"{}\" width=\"{w_before:.1}\" height=\"16\" fill=\"#3b6fb6\"/>",
                y + 3.0
            );
        }
        let value = if with_policy {
            format!(
                "{} → {} ({})",
                human_bytes(b.before),
                human_bytes(b.after),
                modules(b.modules_before)
            )
        } else {
            format!("{} ({})", human_bytes(b.before), modules(b.modules_before))
        };
        let _ = writeln!(
            h,
            "<text x=\"{}\" y=\"{}\">{}</text>",
            label_w + w_before + 6.0,
            y + 15.0,
            esc(&value)
        );
    }
    h.push_str("</svg>\n<p class=\"muted\">Code bytes of the loadable modules an unprivileged user can get loaded, grouped by source directory.</p></section>\n");
}

fn cve_section(h: &mut String, d: &Data, top: usize) {
    h.push_str("<section id=\"cves\"><h2>CVE-bearing reachable modules</h2>\n");
    let Some(score) = &d.score else {
        h.push_str("<p class=\"muted\">No CVE database: import one with <code>kgate cve import PATH</code> or <code>kgate cve update</code>.</p></section>\n");
        return;
    };
    if score.modules.is_empty() {
        h.push_str("<p>No reachable module carries a known CVE.</p></section>\n");
        return;
    }
    let with_policy = score.after.is_some();
    let _ = writeln!(
        h,
        "<table id=\"cve-modules\"><tr><th>module</th><th class=\"r\">code</th><th class=\"r\">CVEs touching it</th><th class=\"r\">only in it</th><th class=\"r\">HIGH/CRITICAL</th><th class=\"r\">last 12 months</th><th>reached via</th>{}</tr>",
        if with_policy { "<th>policy</th>" } else { "" }
    );
    for m in score.modules.iter().take(top) {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td class=\"r\">{}</td><td class=\"r\">{}</td><td class=\"r\">{}</td><td class=\"r\">{}</td><td class=\"r\">{}</td><td>{}{}</td>{}</tr>",
            esc(&m.name),
            human_bytes(m.text_bytes),
            thousands(m.cves_any.all as u64),
            thousands(m.cves_only.all as u64),
            thousands(m.cves_any.high_critical as u64),
            thousands(m.cves_any.last_12_months as u64),
            m.kind.map(|k| k.to_string()).unwrap_or_default(),
            if m.needs_userns { " <span class=\"muted\">(user namespace)</span>" } else { "" },
            match (with_policy, m.reachable_after) {
                (false, _) => String::new(),
                (true, false) => "<td class=\"good\">blocked</td>".into(),
                (true, true) => "<td class=\"bad\">still reachable</td>".into(),
            }
        );
    }
    h.push_str("</table>\n");
    if let Some(notice) = &d.cve_notice {
        let _ = writeln!(
            h,
            "<p class=\"muted\" id=\"cve-notice\">{}</p>",
            esc(notice)
        );
    }
    h.push_str("</section>\n");
}

fn hap_section(h: &mut String, haps: &[(PathBuf, Hap)], top: usize) {
    h.push_str("<section id=\"hap\"><h2>Horizontal attack profile</h2>\n");
    if haps.is_empty() {
        h.push_str("<p class=\"muted\">No HAP profile given (<code>kgate hap -o FILE -- CMD</code>, then <code>--hap FILE</code>).</p></section>\n");
        return;
    }
    h.push_str("<p>The HAP counts the distinct kernel functions a workload makes the kernel run (ftrace function tracer, pid filter following forks, interrupt noise removed). Fewer functions, less kernel code an attacker inside the workload can steer. Bottomley's published figures are shown for scale; they were measured on other kernels and workloads.</p>\n");
    // Bars: each profile, then the anchors as ranges.
    let mut bars: Vec<(String, usize, usize, &str)> = haps
        .iter()
        .map(|(path, p)| {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (name, p.hap, p.hap, "#3b6fb6")
        })
        .collect();
    for (label, lo, hi) in ANCHORS {
        bars.push(((*label).to_owned(), *lo, *hi, "#9aa5b1"));
    }
    let max = bars.iter().map(|b| b.2).max().unwrap_or(1).max(1) as f64;
    let (label_w, bar_w, row_h) = (330.0, 430.0, 26.0);
    let height = row_h * bars.len() as f64 + 12.0;
    let _ = writeln!(
        h,
        "<svg id=\"hap-chart\" role=\"img\" aria-label=\"HAP of the profiled workloads and published anchors\" width=\"900\" height=\"{height}\" viewBox=\"0 0 900 {height}\">"
    );
    for (i, (label, lo, hi, color)) in bars.iter().enumerate() {
        let y = 6.0 + row_h * i as f64;
        let w_hi = *hi as f64 / max * bar_w;
        let w_lo = *lo as f64 / max * bar_w;
        let _ = write!(
            h,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            label_w - 8.0,
            y + 15.0,
            esc(label)
        );
        if lo == hi {
            let _ = write!(h, "<rect x=\"{label_w}\" y=\"{}\" width=\"{w_hi:.1}\" height=\"17\" fill=\"{color}\"/>", y + 3.0);
        } else {
            let _ = write!(
                h,
                "<rect x=\"{label_w}\" y=\"{}\" width=\"{w_lo:.1}\" height=\"17\" fill=\"{color}\"/><rect x=\"{}\" y=\"{}\" width=\"{:.1}\" height=\"17\" fill=\"{color}\" opacity=\"0.45\"/>",
                y + 3.0,
                label_w + w_lo,
                y + 3.0,
                w_hi - w_lo
            );
        }
        let value = if lo == hi {
            thousands(*hi as u64)
        } else {
            format!("{lo}–{hi}")
        };
        let _ = writeln!(
            h,
            "<text x=\"{}\" y=\"{}\">{}</text>",
            label_w + w_hi + 6.0,
            y + 15.0,
            value
        );
    }
    h.push_str("</svg>\n");
    for (i, (path, p)) in haps.iter().enumerate() {
        let _ = writeln!(
            h,
            "<h3 id=\"hap-{i}\">{}: <span class=\"hap-value\">{}</span> functions</h3>\n<p class=\"muted\">Workload <code>{}</code> on {}; {} events ({} interrupt noise left out, {} lost); mapped by module {}, by name prefix {}, by neighbours {}, unknown {}.</p>",
            esc(&path.display().to_string()),
            thousands(p.hap as u64),
            esc(&if p.command.is_empty() { "(saved trace)".to_owned() } else { p.command.join(" ") }),
            esc(if p.kernel.is_empty() { "an unnamed kernel" } else { &p.kernel }),
            thousands(p.events.total),
            thousands(p.events.irq_context),
            thousands(p.events.lost),
            p.mapping.module,
            p.mapping.prefix,
            p.mapping.neighbour,
            p.mapping.unknown,
        );
        let with_cves = p.subsystems.iter().any(|s| s.cves.is_some());
        let _ = writeln!(
            h,
            "<table class=\"hap-subsystems\"><tr><th>subsystem</th><th class=\"r\">functions</th>{}</tr>",
            if with_cves { "<th class=\"r\">CVEs</th><th class=\"r\">HIGH/CRITICAL</th>" } else { "" }
        );
        for s in p.subsystems.iter().take(top) {
            let cves = match (&s.cves, with_cves) {
                (Some(c), _) => format!(
                    "<td class=\"r\">{}</td><td class=\"r\">{}</td>",
                    c.all, c.high_or_critical
                ),
                (None, true) => "<td class=\"r\">–</td><td class=\"r\">–</td>".to_owned(),
                (None, false) => String::new(),
            };
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td class=\"r\">{}</td>{cves}</tr>",
                esc(&s.subsystem),
                s.functions
            );
        }
        h.push_str("</table>\n");
    }
    h.push_str("</section>\n");
}

fn survey_section(h: &mut String, t: &Target, d: &Data, top: usize) {
    let host = &t.host;
    h.push_str("<section id=\"survey\"><h2>Survey</h2>\n<table id=\"host-facts\">\n");
    let lsm = host
        .lsm
        .active
        .as_ref()
        .or(host.lsm.derived.as_ref())
        .map(|l| l.join(","))
        .unwrap_or_else(|| "unknown".into());
    let rows = [
        (
            "modules",
            if host.modules.supported {
                format!(
                    "supported: {} loadable{}",
                    thousands(d.loadable as u64),
                    if t.live {
                        format!(", {} loaded now", t.loaded.len())
                    } else {
                        String::new()
                    }
                )
            } else {
                format!("not supported ({})", host.modules.evidence)
            },
        ),
        ("LSMs", lsm),
        ("BPF-LSM", host.bpf_lsm.explain()),
        (
            "lockdown",
            host.lockdown.clone().unwrap_or_else(|| "unknown".into()),
        ),
        (
            "seccomp",
            if host.seccomp.available {
                "available".to_owned()
            } else {
                format!("not available ({})", host.seccomp.evidence)
            },
        ),
        (
            "user namespaces",
            format!(
                "{} ({})",
                if host.userns.unprivileged_allowed {
                    "unprivileged users may create them"
                } else {
                    "unprivileged users may not create them"
                },
                host.userns.reason
            ),
        ),
        (
            "reachable modules",
            format!(
                "{} ({} only through a user namespace), {} of code in {} functions",
                thousands(d.before.modules as u64),
                thousands(d.before.userns_only as u64),
                human_bytes(d.before.text_bytes),
                thousands(d.before.functions)
            ),
        ),
    ];
    for (k, v) in rows {
        let _ = writeln!(h, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(&v));
    }
    h.push_str("</table>\n<h3>Attack-surface sysctls</h3>\n<table id=\"sysctls\"><tr><th>sysctl</th><th class=\"r\">now</th><th class=\"r\">hardened</th><th>status</th><th>why it matters</th></tr>\n");
    for s in &host.sysctls {
        let (class, status) = match s.status {
            SysctlStatus::Hardened => ("good", "hardened"),
            SysctlStatus::NotHardened => ("bad", "not hardened"),
            SysctlStatus::Absent => ("muted", "absent"),
            SysctlStatus::Unreadable => ("muted", "unreadable"),
        };
        let _ = writeln!(
            h,
            "<tr><td><code>{}</code></td><td class=\"r\">{}</td><td class=\"r\">{}</td><td class=\"{class}\">{status}</td><td>{}</td></tr>",
            esc(&s.name),
            esc(s.value.as_deref().unwrap_or("–")),
            esc(&s.hardened),
            esc(&s.summary)
        );
    }
    h.push_str("</table>\n");
    if !d.modules.is_empty() {
        let _ = writeln!(
            h,
            "<h3>Largest reachable modules</h3>\n<table id=\"top-modules\"><tr><th>module</th><th class=\"r\">code</th><th class=\"r\">functions</th><th>reached via</th>{}</tr>",
            if d.diff.is_some() { "<th>policy</th>" } else { "" }
        );
        for m in d.modules.iter().take(top) {
            let _ =
                writeln!(
                h,
                "<tr><td>{}</td><td class=\"r\">{}</td><td class=\"r\">{}</td><td>{}{}</td>{}</tr>",
                esc(&m.name),
                human_bytes(m.text_bytes),
                m.functions,
                esc(&m.via),
                if m.needs_userns { " <span class=\"muted\">(user namespace)</span>" } else { "" },
                match (d.diff.is_some(), m.blocked) {
                    (false, _) => String::new(),
                    (true, true) => "<td class=\"good\">blocked</td>".into(),
                    (true, false) => "<td class=\"bad\">still reachable</td>".into(),
                }
            );
        }
        h.push_str("</table>\n");
    }
    h.push_str("</section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_and_numbers() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands(12), "12");
        assert_eq!(percent(1, 3), "33%");
        assert!(now_utc().ends_with(" UTC"));
    }
}
