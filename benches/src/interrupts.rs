//! The interrupts the machine delivered: the `CAL` (function-call IPIs,
//! what `membarrier(PRIVATE_EXPEDITED_SYNC_CORE)` sends to each CPU running
//! one of our threads) and `TLB` (shootdowns, what a page-table change such
//! as an `mprotect` or `mremap` of text sends) lines of `/proc/interrupts`,
//! summed over CPUs. They count the whole machine, not only this process:
//! another build on the same cores adds to them.

/// Machine-wide interrupt counts at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Interrupts {
    /// Function-call interrupts, all CPUs.
    pub cal: u64,
    /// TLB shootdowns, all CPUs.
    pub tlb: u64,
}

impl Interrupts {
    /// Reads `/proc/interrupts` now (zeros where it cannot be read).
    pub fn now() -> Interrupts {
        std::fs::read_to_string("/proc/interrupts")
            .map(|text| Interrupts::parse(&text))
            .unwrap_or_default()
    }

    /// Parses the text of `/proc/interrupts`.
    pub fn parse(text: &str) -> Interrupts {
        let mut out = Interrupts::default();
        for line in text.lines() {
            let mut words = line.split_whitespace();
            let slot = match words.next() {
                Some("CAL:") => &mut out.cal,
                Some("TLB:") => &mut out.tlb,
                _ => continue,
            };
            // Per-CPU counts come first; the description follows.
            *slot = words.map_while(|w| w.parse::<u64>().ok()).sum();
        }
        out
    }

    /// Counts since `earlier`.
    pub fn since(self, earlier: Interrupts) -> Interrupts {
        Interrupts {
            cal: self.cal.saturating_sub(earlier.cal),
            tlb: self.tlb.saturating_sub(earlier.tlb),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_cal_and_tlb_over_cpus() {
        let text = "           CPU0       CPU1\n\
                    \x20 0:         44          0   IO-APIC   2-edge      timer\n\
                    CAL:     111775     105677   Function call interrupts\n\
                    TLB:      54972      55919   TLB shootdowns\n";
        let i = Interrupts::parse(text);
        assert_eq!(i.cal, 111_775 + 105_677);
        assert_eq!(i.tlb, 54_972 + 55_919);
        assert_eq!(
            Interrupts { cal: 10, tlb: 5 }.since(Interrupts { cal: 4, tlb: 5 }),
            Interrupts { cal: 6, tlb: 0 }
        );
    }
}
