//! `/proc/kallsyms`: which function lives at an address, and in which
//! module.
//!
//! Lines are `ADDRESS TYPE NAME [MODULE]`; only text symbols (`t`, `T`, `W`,
//! `w`) matter here. The `__pfx_`/`__cfi_` padding symbols that 6.x kernels
//! emit before every function are dropped. Addresses are zero for readers
//! without `CAP_SYSLOG` under `kernel.kptr_restrict` (then names still
//! resolve, but neither exact addresses nor neighbours).

use std::collections::HashMap;

/// One text symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symbol {
    /// Its address.
    pub address: u64,
    /// Its name.
    pub name: String,
    /// The module it belongs to; `None` for the kernel image (vmlinux).
    pub module: Option<String>,
}

/// The text symbols of a running kernel, sorted by address.
#[derive(Debug, Clone, Default)]
pub struct Kallsyms {
    symbols: Vec<Symbol>,
    by_name: HashMap<String, Vec<usize>>,
    hidden: bool,
}

impl Kallsyms {
    /// Parse the text of `/proc/kallsyms`. Malformed lines are skipped.
    pub fn parse(text: &str) -> Kallsyms {
        let mut symbols = Vec::new();
        let mut nonzero = false;
        for line in text.lines() {
            let mut words = line.split_whitespace();
            let (Some(addr), Some(kind), Some(name)) = (words.next(), words.next(), words.next())
            else {
                continue;
            };
            if !matches!(kind, "t" | "T" | "w" | "W") {
                continue;
            }
            if name.starts_with("__pfx_") || name.starts_with("__cfi_") {
                continue;
            }
            let Ok(address) = u64::from_str_radix(addr, 16) else {
                continue;
            };
            nonzero |= address != 0;
            let module = words
                .next()
                .and_then(|m| m.strip_prefix('[')?.strip_suffix(']'))
                .map(str::to_owned);
            symbols.push(Symbol {
                address,
                name: name.to_owned(),
                module,
            });
        }
        symbols.sort_by(|a, b| a.address.cmp(&b.address).then(a.name.cmp(&b.name)));
        let mut by_name: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, s) in symbols.iter().enumerate() {
            by_name.entry(s.name.clone()).or_default().push(i);
        }
        Kallsyms {
            hidden: !symbols.is_empty() && !nonzero,
            symbols,
            by_name,
        }
    }

    /// Every symbol, by address.
    pub fn symbols(&self) -> &[Symbol] {
        &self.symbols
    }

    /// No symbols at all.
    pub fn is_empty(&self) -> bool {
        self.symbols.is_empty()
    }

    /// Every address read as zero (`kernel.kptr_restrict` hid them).
    pub fn addresses_hidden(&self) -> bool {
        self.hidden
    }

    /// The index of the symbol named `name` that contains `address` (ftrace
    /// prints the patched call site, which is the function's address plus 4
    /// on kernels built with IBT, where functions start with `endbr64`), or,
    /// when the address is unknown or hidden, of the only symbol with that
    /// name (a name that several modules or static functions share resolves
    /// to the kernel image's copy when there is exactly one).
    pub fn find(&self, name: &str, address: Option<u64>) -> Option<usize> {
        let candidates = self.by_name.get(name)?;
        if let Some(addr) = address.filter(|_| !self.hidden) {
            let after = self.symbols.partition_point(|s| s.address <= addr);
            if let Some(i) = after.checked_sub(1) {
                if self.symbols[i].name == name {
                    return Some(i);
                }
                // Aliases share an address: look at the others there.
                let at = self.symbols[i].address;
                if let Some(&j) = candidates.iter().find(|&&j| self.symbols[j].address == at) {
                    return Some(j);
                }
            }
        }
        match candidates.as_slice() {
            [only] => Some(*only),
            many => {
                let mut vmlinux = many.iter().filter(|&&i| self.symbols[i].module.is_none());
                match (vmlinux.next(), vmlinux.next()) {
                    (Some(&i), None) => Some(i),
                    _ => None,
                }
            }
        }
    }

    /// The symbol at `index`.
    pub fn get(&self, index: usize) -> Option<&Symbol> {
        self.symbols.get(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
0000000000000000 A fixed_percpu_data
ffffffff81000000 T _stext
ffffffff81001000 t __pfx_tcp_sendmsg
ffffffff81001010 T tcp_sendmsg
ffffffff81002000 t dup_name
ffffffff81003000 D some_data
ffffffffc0100000 t sctp_init_sock\t[sctp]
ffffffffc0100100 t dup_name\t[sctp]
";

    #[test]
    fn parses_text_symbols_with_modules() {
        let k = Kallsyms::parse(TEXT);
        let names: Vec<&str> = k.symbols().iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "_stext",
                "tcp_sendmsg",
                "dup_name",
                "sctp_init_sock",
                "dup_name"
            ]
        );
        let i = k.find("sctp_init_sock", None).unwrap();
        assert_eq!(k.get(i).unwrap().module.as_deref(), Some("sctp"));
        assert!(!k.addresses_hidden());
    }

    #[test]
    fn duplicate_names_resolve_by_address_then_vmlinux() {
        let k = Kallsyms::parse(TEXT);
        let i = k.find("dup_name", Some(0xffffffffc0100104)).unwrap();
        assert_eq!(k.get(i).unwrap().module.as_deref(), Some("sctp"));
        let i = k.find("dup_name", None).unwrap();
        assert_eq!(k.get(i).unwrap().module, None);
        assert_eq!(k.find("nope", None), None);
    }

    #[test]
    fn hidden_addresses() {
        let k = Kallsyms::parse("0000000000000000 T a\n0000000000000000 t b [m]\n");
        assert!(k.addresses_hidden());
        assert_eq!(k.get(k.find("b", Some(0)).unwrap()).unwrap().name, "b");
    }
}
