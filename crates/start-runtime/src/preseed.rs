//! Random generators the host seeds by writing their state, rather than the guest by running
//! `seed()`.
//!
//! Every fresh execution needs new random numbers (a snapshot would otherwise replay the same
//! ones in every instance). Seeding a Mersenne Twister in the guest (`random.seed`, and sympy's
//! two generators) runs its 1,900-step initialization in wasm three times: about 240,000 wasm
//! operations, more than half of what a trivial execution costs. Yet the state is only 624
//! words at a fixed place: every instance starts from the same snapshot, so each generator
//! object lives at the same address in each one. The snapshot records those addresses, and the
//! host fills the words from its own CSPRNG before such a call, then tells the guest (with the
//! `fresh` turn header) to seed only numpy.
//!
//! The layout (`index` then `state[624]` after the object header, CPython's `RandomObject`) is
//! not assumed: when the snapshot is built the guest reports each generator's address and state
//! through `getstate()`, and an address is recorded only if the host finds exactly those words
//! and that index there. Anything unexpected records none, and executions reseed in the guest.
//! The addresses travel as extra names of the snapshot's memory export
//! ([`MT_STATE_EXPORT_PREFIX`] then the address), so the compiled module carries them.

/// Prefix of the memory exports whose names give a preseedable generator's address.
pub const MT_STATE_EXPORT_PREFIX: &str = "start.mt_state.";
/// Words of Mersenne Twister state (CPython's `N`).
pub const MT_WORDS: usize = 624;
/// Offset of `int index` in a generator object (after a 32-bit object header).
pub const MT_INDEX_OFFSET: usize = 8;
/// Offset of `uint32_t state[N]` in a generator object.
pub const MT_STATE_OFFSET: usize = 12;

/// Marks the probe's output line.
const PROBE_TAG: &str = "\0start-mt ";

/// Run in the build instance after the snapshot is taken: prints the address, index and state
/// of each generator `_start.reseed` seeds by `seed()`, or nothing usable when one of them is
/// not as expected (`gauss_next` set, or sympy's `seed` seeding other generators than these).
pub(crate) const PROBE: &str = r#"
def _probe():
    import sys, random, _random
    gens = [random._inst]
    sr = sys.modules.get('sympy.core.random')
    if sr is not None and hasattr(sr, 'seed'):
        if sr.seed.__code__.co_names != ('rng', 'seed', '_assumptions_rng'):
            return
        gens += [sr.rng, sr._assumptions_rng]
    parts = []
    for g in gens:
        if not isinstance(g, _random.Random) or getattr(g, 'gauss_next', None) is not None:
            return
        version, state, gauss = g.getstate()
        parts.append(f"{id(g)} {state[-1]} {','.join(map(str, state[:-1]))}")
    sys.stdout.write('\0start-mt ' + ';'.join(parts) + '\n')
_probe()
del _probe
"#;

/// The generator addresses the probe reported in `stdout`, each checked against `memory` (the
/// build instance's): empty unless every one holds the reported index and state words.
pub(crate) fn locate(stdout: &[u8], memory: &[u8]) -> Vec<u32> {
    let text = String::from_utf8_lossy(stdout);
    let Some(line) = text.lines().rev().find_map(|l| l.strip_prefix(PROBE_TAG)) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for part in line.split(';') {
        match check(part, memory) {
            Some(address) => found.push(address),
            None => return Vec::new(),
        }
    }
    found
}

/// One generator's `ADDRESS INDEX W0,W1,...`, checked against `memory`.
fn check(part: &str, memory: &[u8]) -> Option<u32> {
    let mut fields = part.split(' ');
    let address: u32 = fields.next()?.parse().ok()?;
    let index: u32 = fields.next()?.parse().ok()?;
    let words: Vec<u32> = fields
        .next()?
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    if words.len() != MT_WORDS || fields.next().is_some() {
        return None;
    }
    let at = |offset: usize| -> Option<u32> {
        let start = (address as usize).checked_add(offset)?;
        let bytes = memory.get(start..start.checked_add(4)?)?;
        Some(u32::from_le_bytes(bytes.try_into().ok()?))
    };
    let matches = at(MT_INDEX_OFFSET)? == index
        && words
            .iter()
            .enumerate()
            .all(|(i, &w)| at(MT_STATE_OFFSET + 4 * i) == Some(w));
    matches.then_some(address)
}

/// The export name recording a generator at `address`.
pub(crate) fn export_name(address: u32) -> String {
    format!("{MT_STATE_EXPORT_PREFIX}{address}")
}

/// The generator addresses recorded among a module's export names (see the module docs).
pub fn addresses<'a>(export_names: impl IntoIterator<Item = &'a str>) -> Vec<u32> {
    export_names
        .into_iter()
        .filter_map(|name| name.strip_prefix(MT_STATE_EXPORT_PREFIX)?.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A memory holding one generator object at `address` with `index` and words `0, 1, ...`.
    fn memory_with(address: usize, index: u32) -> Vec<u8> {
        let mut memory = vec![0u8; address + MT_STATE_OFFSET + 4 * MT_WORDS];
        memory[address + MT_INDEX_OFFSET..][..4].copy_from_slice(&index.to_le_bytes());
        for i in 0..MT_WORDS {
            let at = address + MT_STATE_OFFSET + 4 * i;
            memory[at..at + 4].copy_from_slice(&(i as u32).to_le_bytes());
        }
        memory
    }

    fn line(address: usize, index: u32, words: impl Iterator<Item = u32>) -> String {
        let words: Vec<String> = words.map(|w| w.to_string()).collect();
        format!("noise\n{PROBE_TAG}{address} {index} {}\n", words.join(","))
    }

    #[test]
    fn an_address_is_recorded_only_where_the_reported_state_is() {
        let memory = memory_with(64, 624);
        let good = line(64, 624, 0..MT_WORDS as u32);
        assert_eq!(locate(good.as_bytes(), &memory), vec![64]);
        let names = [export_name(64), "memory".into()];
        assert_eq!(addresses(names.iter().map(String::as_str)), vec![64]);

        let wrong_index = line(64, 3, 0..MT_WORDS as u32);
        assert!(locate(wrong_index.as_bytes(), &memory).is_empty());
        let wrong_word = line(64, 624, (0..MT_WORDS as u32).map(|w| w ^ u32::from(w == 7)));
        assert!(locate(wrong_word.as_bytes(), &memory).is_empty());
        let short = line(64, 624, 0..10);
        assert!(locate(short.as_bytes(), &memory).is_empty());
        let past_the_end = line(60_000, 624, 0..MT_WORDS as u32);
        assert!(locate(past_the_end.as_bytes(), &memory).is_empty());
        assert!(locate(b"no probe line\n", &memory).is_empty());
        // One bad generator of two records none.
        let two = format!(
            "{};{}",
            good.trim_end(),
            line(64, 1, 0..MT_WORDS as u32)
                .trim_end()
                .trim_start_matches("noise\n")
                .trim_start_matches(PROBE_TAG)
        );
        assert!(locate(two.as_bytes(), &memory).is_empty());
    }
}
