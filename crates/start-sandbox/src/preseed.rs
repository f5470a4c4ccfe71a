//! Fresh random generator states, drawn here and written into a guest just before a fresh
//! execution's call, so that the guest seeds none (or only numpy) itself; see
//! `start_runtime::preseed` for why, and for how the snapshot records where the generators are.

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use start_runtime::preseed::{Generator, Located, MT_WORDS};

use crate::Error;

/// Bytes of one generator's state words.
const STATE_BYTES: usize = 4 * MT_WORDS;

/// The generators a snapshot lets the host seed.
#[derive(Debug, Clone, Default)]
pub(crate) struct Generators {
    located: Located,
}

/// What one execution's guest gets: the bytes to write, as `(offset, bytes)` in linear memory,
/// and a seed for numpy when its generator is not among them.
#[derive(Debug)]
pub(crate) struct Draw {
    pub numpy_seed: Option<u64>,
    pub writes: Vec<(usize, Vec<u8>)>,
}

impl Generators {
    /// The generators recorded in `module`'s exports; none when the snapshot recorded none.
    pub fn of(module: &wasmtime::Module) -> Self {
        Generators {
            located: start_runtime::preseed::from_exports(module.exports().map(|e| e.name())),
        }
    }

    /// Whether the guest must seed every generator itself.
    pub fn is_empty(&self) -> bool {
        self.located.python.is_empty()
    }

    /// Fresh, independent states for every generator (from a ChaCha8 stream keyed by the
    /// operating system's CSPRNG), each with its index at `N` so that the first draw
    /// regenerates, as after the generators' own seeding; and a seed for numpy from the same
    /// stream when its state is not written.
    pub fn draw(&self) -> Result<Draw, Error> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| Error::Io {
            action: "drawing random generator states",
            source: std::io::Error::other(e.to_string()),
        })?;
        let mut rng = ChaCha8Rng::from_seed(key);
        let numpy_seed = self.located.numpy.is_none().then(|| rng.next_u64());
        let mut writes = Vec::with_capacity(2 * (self.located.python.len() + 1));
        for g in self.located.python.iter().chain(&self.located.numpy) {
            let Generator { state, index } = *g;
            let mut words = vec![0u8; STATE_BYTES];
            rng.fill_bytes(&mut words);
            // Both seedings (`init_by_array`) set the first word's top bit so that the state
            // is never all zeros; do the same.
            words[3] |= 0x80;
            writes.push((state as usize, words));
            writes.push((index as usize, (MT_WORDS as u32).to_le_bytes().to_vec()));
        }
        Ok(Draw { numpy_seed, writes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generators(numpy: bool) -> Generators {
        let g = |at: u32| Generator {
            state: at + 12,
            index: at + 8,
        };
        Generators {
            located: Located {
                python: vec![g(100), g(5000)],
                numpy: numpy.then(|| g(9000)),
            },
        }
    }

    #[test]
    fn draws_are_fresh_and_shaped_like_a_seeded_generator() {
        let gens = generators(false);
        let (a, b) = (gens.draw().unwrap(), gens.draw().unwrap());
        assert_eq!(a.writes.len(), 4);
        assert_eq!((a.writes[0].0, a.writes[1].0), (112, 108));
        assert_eq!((a.writes[2].0, a.writes[3].0), (5012, 5008));
        for pair in a.writes.chunks(2) {
            assert_eq!(pair[0].1.len(), STATE_BYTES);
            assert_eq!(pair[0].1[3] & 0x80, 0x80);
            assert_eq!(pair[1].1, (MT_WORDS as u32).to_le_bytes());
        }
        assert_ne!(a.writes[0].1, a.writes[2].1, "generators share a state");
        assert_ne!(a.writes[0].1, b.writes[0].1, "two draws repeat");
        assert!(a.numpy_seed.is_some() && a.numpy_seed != b.numpy_seed);

        let with_numpy = generators(true).draw().unwrap();
        assert_eq!(with_numpy.numpy_seed, None, "numpy is seeded twice");
        assert_eq!(with_numpy.writes.len(), 6);
        assert!(Generators::default().is_empty());
    }
}
