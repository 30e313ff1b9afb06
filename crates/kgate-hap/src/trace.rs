//! Parsing the text output of the ftrace `function` tracer (`trace` or
//! `trace_pipe`) and collecting the functions a workload ran.
//!
//! One event line looks like this (Linux 6.1 to 6.18, options `irq-info`
//! and `sym-addr` on, `record-tgid` off):
//!
//! ```text
//!            probe-211     [000] d.h1.    16.320909: sctp_init_sock <ffffffffc0466a34> <-inet_create <ffffffff86d340ed>
//! ```
//!
//! `TASK-PID`, `[CPU]`, the latency flags, the timestamp, the function (with
//! its address when `sym-addr` is on) and its caller. The third flag
//! character says which context the function ran in: `.` process (task)
//! context, `s` softirq, `h` hardirq, `H` hardirq that interrupted a
//! softirq, `z`/`Z` NMI. A pid filter (`set_ftrace_pid`) keeps the events
//! that ran *while* a traced task was current, and interrupts that arrive
//! then run on its stack with its pid: those are the irq noise the context
//! flag lets us drop.

use std::collections::{BTreeMap, HashMap};

/// The execution context of one event, from the latency flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Context {
    /// Task context: the workload's own system calls, faults and exits.
    Process,
    /// Softirq (bottom half), including softirqs run by `local_bh_enable`.
    SoftIrq,
    /// Hard interrupt (also one that interrupted a softirq).
    HardIrq,
    /// Non-maskable interrupt.
    Nmi,
    /// The line carried no flags (`irq-info` off): context unknown.
    Unknown,
}

impl Context {
    /// From the third latency-flag character.
    pub fn from_flag(c: char) -> Context {
        match c {
            'h' | 'H' => Context::HardIrq,
            's' => Context::SoftIrq,
            'z' | 'Z' => Context::Nmi,
            _ => Context::Process,
        }
    }

    /// Interrupt noise: hardirq, softirq or NMI.
    pub fn is_irq(self) -> bool {
        matches!(self, Context::SoftIrq | Context::HardIrq | Context::Nmi)
    }
}

/// One parsed trace line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line<'a> {
    /// A function event.
    Event(Event<'a>),
    /// `CPU:N [LOST M EVENTS]` (trace_pipe) : events dropped by a full buffer.
    Lost {
        /// The CPU whose buffer overflowed.
        cpu: u32,
        /// How many events were lost.
        events: u64,
    },
    /// A comment, header, blank or `##### CPU N buffer started ####` line.
    Ignored,
    /// A line that matches none of the forms above.
    Unparsed,
}

/// One function event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event<'a> {
    /// The task's comm at the time the trace was printed.
    pub comm: &'a str,
    /// The task's pid (thread id).
    pub pid: u32,
    /// The CPU.
    pub cpu: u32,
    /// The context the function ran in.
    pub context: Context,
    /// The function name as ftrace printed it (may carry compiler suffixes
    /// such as `.isra.0` or `.constprop.0`).
    pub function: &'a str,
    /// The function's address (option `sym-addr`).
    pub address: Option<u64>,
    /// The caller's name (`<-caller`), when printed.
    pub parent: Option<&'a str>,
}

/// Interrupt and softirq machinery: never counted as the workload's own.
pub const IRQ_MACHINERY: &[&str] = &[
    "irq_enter_rcu",
    "irq_enter",
    "irq_exit_rcu",
    "irq_exit",
    "__irq_exit_rcu",
    "handle_softirqs",
    "__do_softirq",
    "do_softirq_own_stack",
];

/// Callers (prefixes) that mark a function as run at an interrupt's entry
/// or exit edge: the x86 vector entry points and the irq exit path.
pub const IRQ_CALLERS: &[&str] = &[
    "sysvec_",
    "asm_sysvec_",
    "__sysvec_",
    "common_interrupt",
    "asm_common_interrupt",
    "__common_interrupt",
    "exc_nmi",
    "irq_enter_rcu",
    "irq_exit_rcu",
    "__irq_exit_rcu",
    "irq_exit",
    "handle_softirqs",
    "__do_softirq",
];

impl Event<'_> {
    /// Interrupt noise: an irq context flag, the irq machinery, or a caller
    /// at an interrupt's entry or exit edge.
    pub fn is_irq_noise(&self) -> bool {
        self.context.is_irq()
            || IRQ_MACHINERY.contains(&self.function)
            || self
                .parent
                .is_some_and(|p| IRQ_CALLERS.iter().any(|c| p.starts_with(c)))
    }
}

/// Parse one line of `trace` or `trace_pipe` output.
pub fn parse_line(line: &str) -> Line<'_> {
    let trimmed = line.trim();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return Line::Ignored;
    }
    if let Some(rest) = trimmed.strip_prefix("CPU:") {
        // "CPU:1 [LOST 123 EVENTS]"
        let mut words = rest.split_whitespace();
        let cpu = words.next().and_then(|w| w.parse().ok());
        let lost = words.next() == Some("[LOST");
        let events = words.next().and_then(|w| w.parse().ok());
        return match (cpu, lost, events) {
            (Some(cpu), true, Some(events)) => Line::Lost { cpu, events },
            _ => Line::Unparsed,
        };
    }
    parse_event(line).map_or(Line::Unparsed, Line::Event)
}

fn parse_event(line: &str) -> Option<Event<'_>> {
    // The CPU field "[NNN]" is the first bracketed run of digits after the
    // task; the comm itself may contain spaces, dashes and brackets, so
    // search for the pattern " [digits] " from the left, after a "-pid".
    let bytes = line.as_bytes();
    let mut search = 0;
    let (cpu_start, cpu_end) = loop {
        let open = search + line[search..].find(" [")? + 1;
        let close = open + line[open..].find(']')?;
        let digits = &line[open + 1..close];
        if !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && bytes.get(close + 1) == Some(&b' ')
        {
            break (open, close);
        }
        search = open;
    };
    let cpu: u32 = line[cpu_start + 1..cpu_end].parse().ok()?;
    let mut task = line[..cpu_start].trim();
    // record-tgid: "comm-pid (tgid)"
    if task.ends_with(')') {
        if let Some(open) = task.rfind('(') {
            task = task[..open].trim_end();
        }
    }
    let (comm, pid) = task.rsplit_once('-')?;
    let pid: u32 = pid.parse().ok()?;
    let comm = comm.trim_start();

    let mut rest = line[cpu_end + 1..].trim_start();
    // Flags: 4 (before 5.13) or 5 characters, then the timestamp "123.456:".
    let mut context = Context::Unknown;
    let first = rest.split_whitespace().next()?;
    if !first.ends_with(':') {
        if !(4..=6).contains(&first.len()) {
            return None;
        }
        context = Context::from_flag(first.chars().nth(2)?);
        rest = rest[first.len()..].trim_start();
    }
    let stamp = rest.split_whitespace().next()?;
    if !stamp.ends_with(':') {
        return None;
    }
    rest = rest[stamp.len()..].trim_start();

    // "func <addr> <-parent <addr>" or "func <-parent".
    let mut parts = rest.splitn(2, " <-");
    let call = parts.next()?.trim();
    let parent = parts
        .next()
        .and_then(|p| p.split_whitespace().next())
        .and_then(|p| p.split('+').next())
        .filter(|p| !p.is_empty());
    let (function, address) = match call.split_once(" <") {
        Some((name, addr)) => {
            let addr = addr.strip_suffix('>')?;
            (name.trim(), u64::from_str_radix(addr, 16).ok())
        }
        None => (call, None),
    };
    // sym-offset prints "func+0x0/0x30".
    let function = function.split('+').next()?;
    if function.is_empty() || function.contains(char::is_whitespace) {
        return None;
    }
    Some(Event {
        comm,
        pid,
        cpu,
        context,
        function,
        address,
        parent,
    })
}

/// Per-function event counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hits {
    /// Events in process context (or of unknown context).
    pub process: u64,
    /// Events in hardirq, softirq or NMI context.
    pub irq: u64,
}

/// A function as the trace names it: the printed name and, with
/// `sym-addr`, its address (two static functions may share a name).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FunctionKey {
    /// The printed name.
    pub name: String,
    /// The address, when the trace printed it.
    pub address: Option<u64>,
}

/// Counters over a whole trace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    /// Function events parsed.
    pub events: u64,
    /// ... in process context.
    pub process_events: u64,
    /// ... in irq, softirq or NMI context, or at an interrupt's edge
    /// ([`Event::is_irq_noise`]).
    pub irq_events: u64,
    /// ... of unknown context (no latency flags).
    pub unknown_context_events: u64,
    /// Events the ring buffer lost (from `[LOST N EVENTS]` lines).
    pub lost_events: u64,
    /// Lines that could not be parsed.
    pub unparsed_lines: u64,
    /// Events dropped because they came from an excluded pid.
    pub excluded_pid_events: u64,
}

/// Accumulates a trace, line by line, with bounded memory: one entry per
/// distinct function and per task.
#[derive(Debug, Default)]
pub struct Collector {
    functions: HashMap<FunctionKey, Hits>,
    tasks: BTreeMap<u32, String>,
    totals: Totals,
    exclude_pids: Vec<u32>,
    unparsed_examples: Vec<String>,
}

impl Collector {
    /// An empty collector.
    pub fn new() -> Collector {
        Collector::default()
    }

    /// Drop events of these pids (the tracer's own process).
    pub fn exclude_pid(&mut self, pid: u32) {
        self.exclude_pids.push(pid);
    }

    /// Feed one line.
    pub fn line(&mut self, line: &str) {
        match parse_line(line) {
            Line::Event(e) => self.event(&e),
            Line::Lost { events, .. } => self.totals.lost_events += events,
            Line::Ignored => {}
            Line::Unparsed => {
                self.totals.unparsed_lines += 1;
                if self.unparsed_examples.len() < 3 {
                    self.unparsed_examples
                        .push(line.chars().take(200).collect());
                }
            }
        }
    }

    /// Feed a whole text.
    pub fn text(&mut self, text: &str) {
        text.lines().for_each(|l| self.line(l));
    }

    /// Feed one parsed event.
    pub fn event(&mut self, e: &Event<'_>) {
        if self.exclude_pids.contains(&e.pid) {
            self.totals.excluded_pid_events += 1;
            return;
        }
        self.totals.events += 1;
        let key = FunctionKey {
            name: e.function.to_owned(),
            address: e.address,
        };
        let hits = match self.functions.get_mut(&key) {
            Some(h) => h,
            None => self.functions.entry(key).or_default(),
        };
        match e.context {
            _ if e.is_irq_noise() => {
                hits.irq += 1;
                self.totals.irq_events += 1;
            }
            Context::Unknown => {
                hits.process += 1;
                self.totals.unknown_context_events += 1;
            }
            _ => {
                hits.process += 1;
                self.totals.process_events += 1;
            }
        }
        if self.tasks.get(&e.pid).map(String::as_str) != Some(e.comm) {
            self.tasks.insert(e.pid, e.comm.to_owned());
        }
    }

    /// Add events the tracer reported lost by other means (per-CPU stats).
    pub fn add_lost(&mut self, events: u64) {
        self.totals.lost_events += events;
    }

    /// Every distinct function with its counts.
    pub fn functions(&self) -> &HashMap<FunctionKey, Hits> {
        &self.functions
    }

    /// pid → comm of every task seen.
    pub fn tasks(&self) -> &BTreeMap<u32, String> {
        &self.tasks
    }

    /// The counters.
    pub fn totals(&self) -> &Totals {
        &self.totals
    }

    /// Up to three lines that could not be parsed, for error messages.
    pub fn unparsed_examples(&self) -> &[String] {
        &self.unparsed_examples
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_with_address_and_flags() {
        let l = "           probe-211     [000] d.h1.    16.320909: sctp_init_sock <ffffffffc0466a34> <-inet_create <ffffffff86d340ed>";
        let Line::Event(e) = parse_line(l) else {
            panic!("not an event")
        };
        assert_eq!(e.comm, "probe");
        assert_eq!(e.pid, 211);
        assert_eq!(e.cpu, 0);
        assert_eq!(e.context, Context::HardIrq);
        assert_eq!(e.function, "sctp_init_sock");
        assert_eq!(e.address, Some(0xffffffffc0466a34));
        assert_eq!(e.parent, Some("inet_create"));
        assert!(e.is_irq_noise());
    }

    #[test]
    fn interrupt_edges_are_noise() {
        // Real lines from Debian 6.12: process-context flags, irq edge.
        for l in [
            "  cat-210 [001] d.... 15.1: irq_enter_rcu <ffffffff86e8f9e4> <-sysvec_apic_timer_interrupt <ffffffff86e8f0d5>",
            "  cat-210 [001] d.... 15.1: idle_cpu <ffffffff86315684> <-__irq_exit_rcu <ffffffff862cd0f7>",
            "  cat-210 [001] d.... 15.1: handle_softirqs <ffffffff862ccd04> <-__local_bh_enable_ip <ffffffff862ccb2a>",
        ] {
            let Line::Event(e) = parse_line(l) else {
                panic!("not an event: {l}")
            };
            assert_eq!(e.context, Context::Process);
            assert!(e.is_irq_noise(), "{l}");
        }
        let Line::Event(e) =
            parse_line("  cat-210 [001] d.... 15.1: idle_cpu <-select_task_rq_fair")
        else {
            panic!()
        };
        assert!(!e.is_irq_noise());
    }

    #[test]
    fn event_variants() {
        // No sym-addr, 4-character flags, a comm with spaces and dashes.
        let l = " my-prog x-12 [003] ..s.  99.1: tcp_v4_rcv <-ip_protocol_deliver_rcu";
        let Line::Event(e) = parse_line(l) else {
            panic!("not an event")
        };
        assert_eq!((e.comm, e.pid, e.cpu), ("my-prog x", 12, 3));
        assert_eq!(e.context, Context::SoftIrq);
        assert_eq!((e.function, e.address), ("tcp_v4_rcv", None));
        assert_eq!(e.parent, Some("ip_protocol_deliver_rcu"));
        // No irq-info: no flags.
        let l = "  sh-5  [001]  3.5: do_sys_openat2 <-__x64_sys_openat";
        let Line::Event(e) = parse_line(l) else {
            panic!("not an event")
        };
        assert_eq!(e.context, Context::Unknown);
        // record-tgid.
        let l = "  sh-5  (    4) [001] .....  3.5: ksys_read <-do_syscall_64";
        assert!(matches!(parse_line(l), Line::Event(Event { pid: 5, .. })));
        // sym-offset.
        let l = "  sh-5  [001] .....  3.5: ksys_read+0x0/0x30 <-do_syscall_64+0x5/0x90";
        assert!(matches!(
            parse_line(l),
            Line::Event(Event {
                function: "ksys_read",
                ..
            })
        ));
    }

    #[test]
    fn lost_and_ignored_lines() {
        assert_eq!(
            parse_line("CPU:1 [LOST 123 EVENTS]"),
            Line::Lost {
                cpu: 1,
                events: 123
            }
        );
        assert_eq!(parse_line("# tracer: function"), Line::Ignored);
        assert_eq!(parse_line(""), Line::Ignored);
        assert_eq!(parse_line("garbage"), Line::Unparsed);
    }

    #[test]
    fn collector_splits_contexts_and_excludes_pids() {
        let mut c = Collector::new();
        c.exclude_pid(7);
        c.text(
            "  a-1 [000] ..... 1.0: f1 <-x\n  a-1 [000] ..s.. 1.1: f1 <-x\n  a-1 [000] d.h.. 1.2: f2 <-x\n  k-7 [000] ..... 1.3: f3 <-x\nbad line\nCPU:0 [LOST 5 EVENTS]\n",
        );
        let t = c.totals();
        assert_eq!((t.events, t.process_events, t.irq_events), (3, 1, 2));
        assert_eq!(
            (t.lost_events, t.unparsed_lines, t.excluded_pid_events),
            (5, 1, 1)
        );
        let f1 = c.functions()[&FunctionKey {
            name: "f1".into(),
            address: None,
        }];
        assert_eq!(f1, Hits { process: 1, irq: 1 });
        assert_eq!(c.functions().len(), 2);
    }
}
