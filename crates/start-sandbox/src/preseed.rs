//! Fresh random generator states, drawn here and written into a guest just before a fresh
//! execution's call, so that the guest seeds only numpy (see `start_runtime::preseed` for why
//! and for how the snapshot records where the generators are).

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use start_runtime::preseed::{MT_INDEX_OFFSET, MT_STATE_OFFSET, MT_WORDS};

use crate::Error;

/// Bytes written per generator: its `index`, then its state words.
const WRITE_BYTES: usize = MT_STATE_OFFSET - MT_INDEX_OFFSET + 4 * MT_WORDS;

/// The generators a snapshot lets the host seed, by address in linear memory.
#[derive(Debug, Clone, Default)]
pub(crate) struct Generators {
    addresses: Vec<u32>,
}

/// What one execution's guest gets: a seed for numpy and the bytes to write, as
/// `(offset, bytes)` in linear memory.
#[derive(Debug)]
pub(crate) struct Draw {
    pub numpy_seed: u64,
    pub writes: Vec<(usize, Vec<u8>)>,
}

impl Generators {
    /// The generators recorded in `module`'s exports; none when the snapshot recorded none.
    pub fn of(module: &wasmtime::Module) -> Self {
        Generators {
            addresses: start_runtime::preseed::addresses(module.exports().map(|e| e.name())),
        }
    }

    /// Whether the guest must seed every generator itself.
    pub fn is_empty(&self) -> bool {
        self.addresses.is_empty()
    }

    /// Fresh, independent states for every generator (from a ChaCha8 stream keyed by the
    /// operating system's CSPRNG), each with `index` at `N` so the first draw regenerates, as
    /// after CPython's own seeding, and a seed for numpy from the same stream.
    pub fn draw(&self) -> Result<Draw, Error> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| Error::Io {
            action: "drawing random generator states",
            source: std::io::Error::other(e.to_string()),
        })?;
        let mut rng = ChaCha8Rng::from_seed(key);
        let numpy_seed = rng.next_u64();
        let writes = self
            .addresses
            .iter()
            .map(|&address| {
                let mut bytes = vec![0u8; WRITE_BYTES];
                let (index, state) = bytes.split_at_mut(MT_STATE_OFFSET - MT_INDEX_OFFSET);
                index.copy_from_slice(&(MT_WORDS as u32).to_le_bytes());
                rng.fill_bytes(state);
                // CPython's `init_by_array` sets the first word's top bit so that the state is
                // never all zeros; do the same.
                state[3] |= 0x80;
                (address as usize + MT_INDEX_OFFSET, bytes)
            })
            .collect();
        Ok(Draw { numpy_seed, writes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_fresh_and_shaped_like_a_seeded_generator() {
        let gens = Generators {
            addresses: vec![100, 5000],
        };
        let (a, b) = (gens.draw().unwrap(), gens.draw().unwrap());
        assert_eq!(a.writes.len(), 2);
        assert_eq!(a.writes[0].0, 100 + MT_INDEX_OFFSET);
        assert_eq!(a.writes[1].0, 5000 + MT_INDEX_OFFSET);
        for (_, bytes) in &a.writes {
            assert_eq!(bytes.len(), 4 + 4 * MT_WORDS);
            assert_eq!(bytes[..4], (MT_WORDS as u32).to_le_bytes());
            assert_eq!(bytes[7] & 0x80, 0x80);
        }
        assert_ne!(a.writes[0].1, a.writes[1].1, "generators share a state");
        assert_ne!(a.writes[0].1, b.writes[0].1, "two draws repeat");
        assert_ne!(a.numpy_seed, b.numpy_seed);
        assert!(Generators::default().draw().unwrap().writes.is_empty());
    }
}
