//! Random generators the host seeds by writing their state, rather than the guest by running
//! `seed()`.
//!
//! Every fresh execution needs new random numbers (a snapshot would otherwise replay the same
//! ones in every instance). Seeding a Mersenne Twister in the guest (`random.seed`, and sympy's
//! two generators) runs its 1,900-step initialization in wasm three times: about 240,000 wasm
//! operations, more than half of what a trivial execution costs; numpy's adds 22,000. Yet each
//! state is 624 words and an index at a fixed place: every instance starts from the same
//! snapshot, so each generator lives at the same address in each one. The snapshot records
//! those places, and the host fills the words from its own CSPRNG before such a call, then
//! tells the guest (with the `fresh` turn header) what is left for it to seed.
//!
//! No layout is assumed. When the snapshot is built the guest reports each generator's address
//! (`id()`), index and words (`getstate()`), and a generator is recorded only where the host
//! finds exactly those words and that index: at CPython's `RandomObject` offsets, or for numpy
//! the one place in its bit generator object that holds them. If `random`'s or sympy's cannot
//! be checked none are recorded, and executions seed in the guest as before. The places travel
//! as extra names of the snapshot's memory export, so the compiled module carries them.

/// Prefix of the memory exports naming a preseedable generator of `random` or sympy:
/// `start.mt_state.<state address>.<index address>`.
pub const MT_STATE_EXPORT_PREFIX: &str = "start.mt_state.";
/// Prefix of the export naming numpy's global generator when it is preseedable too (same
/// form). Without it the guest seeds numpy itself.
pub const NP_STATE_EXPORT_PREFIX: &str = "start.np_state.";
/// Words of Mersenne Twister state (CPython's and numpy's `N`).
pub const MT_WORDS: usize = 624;
/// Offset of `int index` in a CPython generator object (after a 32-bit object header).
const PY_INDEX_OFFSET: u32 = 8;
/// Offset of `uint32_t state[N]` in a CPython generator object.
const PY_STATE_OFFSET: u32 = 12;
/// How far past numpy's bit generator object its `mt19937_state` (the words, then `pos`) may
/// start; it follows the object's header and a few pointers.
const NP_SEARCH_BYTES: usize = 1024;

/// Marks the probe's output line.
const PROBE_TAG: &str = "\0start-mt ";

/// Run in the build instance after the snapshot is taken: prints, for each generator
/// `_start.reseed` seeds, its kind (`py`, `np`), address, index and state words; prints no
/// `py` part when one of those generators is not as expected (`gauss_next` set, or sympy's
/// `seed` seeding other generators than these), no `np` part when numpy's is not (another bit
/// generator, a cached Gaussian).
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
        parts.append(f"py {id(g)} {state[-1]} {','.join(map(str, state[:-1]))}")
    np = sys.modules.get('numpy')
    if np is not None:
        r = np.random.mtrand._rand
        st = r.get_state()
        bg = r._bit_generator
        if st[0] == 'MT19937' and st[3] == 0 and type(bg).__name__ == 'MT19937':
            words = ','.join(map(str, st[1].tolist()))
            parts.append(f"np {id(bg)} {st[2]} {words}")
    sys.stdout.write('\0start-mt ' + ';'.join(parts) + '\n')
_probe()
del _probe
"#;

/// Where one generator keeps its state in linear memory: [`MT_WORDS`] 32-bit words at `state`,
/// and the position of the next word to draw, a 32-bit integer, at `index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Generator {
    /// Address of the first state word.
    pub state: u32,
    /// Address of the index.
    pub index: u32,
}

/// What the probe found: the generators of `random` and sympy (all of them, or none), and
/// numpy's when it could be checked too.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Located {
    /// `random`'s and sympy's generators.
    pub python: Vec<Generator>,
    /// numpy's global generator.
    pub numpy: Option<Generator>,
}

/// The generators the probe reported in `stdout`, each checked against `memory` (the build
/// instance's): a generator counts only where its reported index and state words are.
pub(crate) fn locate(stdout: &[u8], memory: &[u8]) -> Located {
    let text = String::from_utf8_lossy(stdout);
    let Some(line) = text.lines().rev().find_map(|l| l.strip_prefix(PROBE_TAG)) else {
        return Located::default();
    };
    let mut found = Located::default();
    for part in line.split(';') {
        match (part.split_once(' '), check(part, memory)) {
            (Some(("py", _)), Some(g)) => found.python.push(g),
            (Some(("np", _)), Some(g)) => found.numpy = Some(g),
            (Some(("np", _)), None) => {}
            _ => return Located::default(),
        }
    }
    if found.python.is_empty() {
        return Located::default();
    }
    found
}

/// One generator's `KIND ADDRESS INDEX W0,W1,...`, checked against `memory`.
fn check(part: &str, memory: &[u8]) -> Option<Generator> {
    let mut fields = part.split(' ');
    let kind = fields.next()?;
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
    let word = |at: u32| -> Option<u32> {
        let start = at as usize;
        let bytes = memory.get(start..start.checked_add(4)?)?;
        Some(u32::from_le_bytes(bytes.try_into().ok()?))
    };
    let holds = |state: u32| -> bool {
        (0..MT_WORDS as u32).all(|i| {
            state
                .checked_add(4 * i)
                .and_then(word)
                .is_some_and(|w| w == words[i as usize])
        })
    };
    let generator = match kind {
        "py" => Generator {
            state: address.checked_add(PY_STATE_OFFSET)?,
            index: address.checked_add(PY_INDEX_OFFSET)?,
        },
        "np" => {
            // numpy's `mt19937_state` is `uint32_t key[624]` then `int pos`, somewhere in its
            // bit generator object: the one place in it where the reported words are.
            let state = (0..NP_SEARCH_BYTES as u32)
                .step_by(4)
                .filter_map(|off| address.checked_add(off))
                .find(|&at| holds(at))?;
            Generator {
                state,
                index: state.checked_add(4 * MT_WORDS as u32)?,
            }
        }
        _ => return None,
    };
    (holds(generator.state) && word(generator.index)? == index).then_some(generator)
}

/// The export names recording what `located` holds.
pub(crate) fn export_names(located: &Located) -> Vec<String> {
    let name = |prefix: &str, g: &Generator| format!("{prefix}{}.{}", g.state, g.index);
    let python = located
        .python
        .iter()
        .map(|g| name(MT_STATE_EXPORT_PREFIX, g));
    python
        .chain(
            located
                .numpy
                .iter()
                .map(|g| name(NP_STATE_EXPORT_PREFIX, g)),
        )
        .collect()
}

/// The generators recorded among a module's export names (see the module docs).
pub fn from_exports<'a>(export_names: impl IntoIterator<Item = &'a str>) -> Located {
    let parse = |rest: &str| -> Option<Generator> {
        let (state, index) = rest.split_once('.')?;
        Some(Generator {
            state: state.parse().ok()?,
            index: index.parse().ok()?,
        })
    };
    let mut found = Located::default();
    for name in export_names {
        if let Some(g) = name.strip_prefix(MT_STATE_EXPORT_PREFIX).and_then(parse) {
            found.python.push(g);
        } else if let Some(g) = name.strip_prefix(NP_STATE_EXPORT_PREFIX).and_then(parse) {
            found.numpy = Some(g);
        }
    }
    if found.python.is_empty() {
        return Located::default();
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes words `0, 1, ...` at `state` and `index` at `index_at` into `memory`.
    fn put(memory: &mut [u8], state: usize, index_at: usize, index: u32) {
        memory[index_at..][..4].copy_from_slice(&index.to_le_bytes());
        for i in 0..MT_WORDS {
            let at = state + 4 * i;
            memory[at..at + 4].copy_from_slice(&(i as u32).to_le_bytes());
        }
    }

    fn part(kind: &str, address: usize, index: u32, words: impl Iterator<Item = u32>) -> String {
        let words: Vec<String> = words.map(|w| w.to_string()).collect();
        format!("{kind} {address} {index} {}", words.join(","))
    }

    fn line(parts: &[String]) -> String {
        format!("noise\n{PROBE_TAG}{}\n", parts.join(";"))
    }

    const ALL: std::ops::Range<u32> = 0..MT_WORDS as u32;

    #[test]
    fn a_generator_is_recorded_only_where_the_reported_state_is() {
        let mut memory = vec![0u8; 20_000];
        put(&mut memory, 64 + 12, 64 + 8, 624);
        // numpy's: words 40 bytes into its object at 8000, `pos` after them.
        put(&mut memory, 8040, 8040 + 4 * MT_WORDS, 624);
        let py = part("py", 64, 624, ALL);
        let np = part("np", 8000, 624, ALL);
        let both = locate(line(&[py.clone(), np.clone()]).as_bytes(), &memory);
        let expected = Located {
            python: vec![Generator {
                state: 76,
                index: 72,
            }],
            numpy: Some(Generator {
                state: 8040,
                index: 8040 + 4 * MT_WORDS as u32,
            }),
        };
        assert_eq!(both, expected);
        let names = export_names(&both);
        assert_eq!(from_exports(names.iter().map(String::as_str)), expected);

        let none = Located::default();
        let bad = [
            part("py", 64, 3, ALL),
            part("py", 64, 624, ALL.map(|w| w ^ u32::from(w == 7))),
            part("py", 64, 624, 0..10),
            part("py", 60_000, 624, ALL),
            part("py", u32::MAX as usize - 4, 624, ALL),
            part("rb", 64, 624, ALL),
        ];
        for wrong in &bad {
            assert_eq!(
                locate(line(std::slice::from_ref(wrong)).as_bytes(), &memory),
                none
            );
            // One bad generator of `random`'s and sympy's records none of them.
            assert_eq!(
                locate(line(&[py.clone(), wrong.clone()]).as_bytes(), &memory),
                none
            );
        }
        assert_eq!(locate(b"no probe line\n", &memory), none);
        // numpy's alone is not enough; a bad one leaves the others.
        assert_eq!(
            locate(line(std::slice::from_ref(&np)).as_bytes(), &memory),
            none
        );
        let np_wrong_pos = part("np", 8000, 5, ALL);
        let without_numpy = locate(line(&[py.clone(), np_wrong_pos]).as_bytes(), &memory);
        assert_eq!(without_numpy.python, expected.python);
        assert_eq!(without_numpy.numpy, None);
        assert_eq!(from_exports(["memory", "start.mt_state.x.1"]), none);
    }
}
