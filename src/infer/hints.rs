//! The hint library: the natural-language nudges START inserts into a chain of thought so the
//! model starts writing Python.
//!
//! The bundled library ([`HintLibrary::bundled`], from `src/hints.toml`) holds the paper's six
//! math hints verbatim and the code *debug hint* with its two slots: `{code_template}` (a
//! program that runs the solution on the samples, and its output block: the figure's
//! "[A code template]" and "[The output of the code]") and `{testcase}` (the samples recalled),
//! both filled by [`crate::infer::prompt::hint_slots`]. Users can load
//! their own file of the same layout with [`HintLibrary::from_toml`]. Every hint must end by
//! opening a ```` ```python ```` fence, so that after the hint the model writes code. Sampling
//! takes the caller's seeded generator, so a run is reproducible.

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::problem::ProblemKind;

/// The bundled library's TOML text.
pub const BUNDLED_TOML: &str = include_str!("hints.toml");
/// The fence every hint must end with (a newline may follow).
pub use start_grade::fence::CODE_FENCE;
/// The slot in a code hint that [`Hint::render`] fills with the problem's sample tests.
pub const TESTCASE_SLOT: &str = "{testcase}";
/// The slot in a code hint that [`Hint::render`] fills with a program template that runs the
/// solution on the samples, followed by its output block.
pub const CODE_TEMPLATE_SLOT: &str = "{code_template}";
/// Largest hint library file accepted, in bytes.
pub const MAX_LIBRARY_BYTES: usize = 256 * 1024;
/// Most hints one library may hold.
pub const MAX_HINTS: usize = 256;

/// One hint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hint {
    /// A short stable name, recorded in trajectories (`general`, `debug`).
    pub id: String,
    /// Which problems it is for.
    pub kind: ProblemKind,
    /// The text inserted, ending with an opened ```` ```python ```` fence.
    pub text: String,
}

/// What a hint's slots are filled with (empty for a math problem).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HintSlots {
    /// For [`TESTCASE_SLOT`]: the sample tests the model may see.
    pub testcase: String,
    /// For [`CODE_TEMPLATE_SLOT`]: the program template and its output block.
    pub code_template: String,
}

impl Hint {
    /// The text to insert, with its slots filled in one pass (text a slot is filled with is
    /// never scanned for slots again).
    pub fn render(&self, slots: &HintSlots) -> String {
        let mut out = String::with_capacity(self.text.len());
        let mut rest = self.text.as_str();
        loop {
            let next = [
                (TESTCASE_SLOT, slots.testcase.as_str()),
                (CODE_TEMPLATE_SLOT, slots.code_template.as_str()),
            ]
            .into_iter()
            .filter_map(|(slot, value)| rest.find(slot).map(|at| (at, slot, value)))
            .min_by_key(|(at, _, _)| *at);
            let Some((at, slot, value)) = next else {
                out.push_str(rest);
                return out;
            };
            out.push_str(&rest[..at]);
            out.push_str(value);
            rest = &rest[at + slot.len()..];
        }
    }
}

/// Why a hint library was refused.
#[derive(Debug, thiserror::Error)]
pub enum HintError {
    /// The file is not valid TOML of the expected layout.
    #[error("the hint library is not valid: {0}")]
    Parse(#[from] toml::de::Error),
    /// The file is too large.
    #[error("the hint library is {0} bytes; at most {MAX_LIBRARY_BYTES} are accepted")]
    TooLarge(usize),
    /// A hint breaks a rule (fence, empty id, duplicate id, too many hints).
    #[error("hint {id:?}: {reason}")]
    Invalid {
        /// The hint's id.
        id: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No hint for a kind of problem that was asked for.
    #[error("the hint library has no {0} hints")]
    NoHints(ProblemKind),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LibraryFile {
    hint: Vec<Hint>,
}

/// A validated set of hints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HintLibrary {
    hints: Vec<Hint>,
}

impl HintLibrary {
    /// The library bundled in the crate (the paper's hints).
    ///
    /// ```
    /// let lib = start::infer::hints::HintLibrary::bundled();
    /// assert_eq!(lib.of_kind(start::problem::ProblemKind::Math).count(), 6);
    /// ```
    pub fn bundled() -> Self {
        match Self::from_toml(BUNDLED_TOML) {
            Ok(lib) => lib,
            // The bundled file is checked by a unit test; an empty library is never used.
            Err(_) => HintLibrary { hints: Vec::new() },
        }
    }

    /// Parses and validates a library in the `hints.toml` layout.
    ///
    /// # Errors
    /// [`HintError`] when the text is not valid TOML or a hint breaks a rule (no closing
    /// ```` ```python ```` fence, empty or duplicate id, more than [`MAX_HINTS`]).
    pub fn from_toml(text: &str) -> Result<Self, HintError> {
        if text.len() > MAX_LIBRARY_BYTES {
            return Err(HintError::TooLarge(text.len()));
        }
        let file: LibraryFile = toml::from_str(text)?;
        let mut seen = std::collections::HashSet::new();
        for (index, hint) in file.hint.iter().enumerate() {
            let invalid = |reason: &str| HintError::Invalid {
                id: hint.id.clone(),
                reason: reason.to_string(),
            };
            if index >= MAX_HINTS {
                return Err(invalid(&format!("more than {MAX_HINTS} hints")));
            }
            if hint.id.trim().is_empty() {
                return Err(invalid("the id is empty"));
            }
            if !seen.insert(hint.id.clone()) {
                return Err(invalid("the id is used twice"));
            }
            if !hint.text.trim_end().ends_with(CODE_FENCE) {
                return Err(invalid(&format!(
                    "the text must end by opening a {CODE_FENCE} fence"
                )));
            }
        }
        let mut hints = file.hint;
        for hint in &mut hints {
            // Exactly one newline after the fence, so the model starts on the code's first line.
            let trimmed = hint.text.trim_end().len();
            hint.text.truncate(trimmed);
            hint.text.push('\n');
        }
        Ok(HintLibrary { hints })
    }

    /// All hints for one kind of problem, in file order.
    pub fn of_kind(&self, kind: ProblemKind) -> impl Iterator<Item = &Hint> {
        self.hints.iter().filter(move |h| h.kind == kind)
    }

    /// Samples one hint for `kind`, uniformly.
    ///
    /// # Errors
    /// [`HintError::NoHints`] when the library has none of that kind.
    pub fn sample<R: Rng + ?Sized>(
        &self,
        kind: ProblemKind,
        rng: &mut R,
    ) -> Result<&Hint, HintError> {
        let count = self.of_kind(kind).count();
        if count == 0 {
            return Err(HintError::NoHints(kind));
        }
        let index = rng.random_range(0..count);
        self.of_kind(kind)
            .nth(index)
            .ok_or(HintError::NoHints(kind))
    }

    /// Checks that the library can serve `kind`.
    ///
    /// # Errors
    /// [`HintError::NoHints`] when it holds no hint of that kind.
    pub fn require(&self, kind: ProblemKind) -> Result<(), HintError> {
        match self.of_kind(kind).next() {
            Some(_) => Ok(()),
            None => Err(HintError::NoHints(kind)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn bundled_library_is_valid_and_complete() {
        let lib = HintLibrary::from_toml(BUNDLED_TOML).unwrap();
        assert_eq!(lib.of_kind(ProblemKind::Math).count(), 6);
        let debug: Vec<_> = lib.of_kind(ProblemKind::Code).collect();
        assert_eq!(debug.len(), 1);
        assert!(debug[0].text.contains(TESTCASE_SLOT));
        assert!(debug[0].text.contains(CODE_TEMPLATE_SLOT));
        assert!(!debug[0].text.contains("[A code template]"));
        for hint in lib.of_kind(ProblemKind::Math) {
            assert!(hint.text.ends_with("```python\n"), "{}", hint.id);
        }
        let general = lib
            .of_kind(ProblemKind::Math)
            .find(|h| h.id == "general")
            .unwrap();
        assert_eq!(
            general.text,
            "maybe using python here is a good idea.\n```python\n"
        );
    }

    #[test]
    fn sampling_is_seeded() {
        let lib = HintLibrary::bundled();
        let draw = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            (0..20)
                .map(|_| lib.sample(ProblemKind::Math, &mut rng).unwrap().id.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
    }

    #[test]
    fn bad_libraries_are_refused() {
        let no_fence = "[[hint]]\nid = \"a\"\nkind = \"math\"\ntext = \"use python\"\n";
        assert!(matches!(
            HintLibrary::from_toml(no_fence),
            Err(HintError::Invalid { .. })
        ));
        let dup = "[[hint]]\nid = \"a\"\nkind = \"math\"\ntext = \"x ```python\"\n\
                   [[hint]]\nid = \"a\"\nkind = \"math\"\ntext = \"y ```python\"\n";
        assert!(HintLibrary::from_toml(dup).is_err());
        assert!(HintLibrary::from_toml("not toml [").is_err());
        let math_only = "[[hint]]\nid = \"a\"\nkind = \"math\"\ntext = \"x ```python\"\n";
        let lib = HintLibrary::from_toml(math_only).unwrap();
        assert!(matches!(
            lib.require(ProblemKind::Code),
            Err(HintError::NoHints(_))
        ));
    }

    #[test]
    fn slots_are_filled_once() {
        let lib = HintLibrary::bundled();
        let debug = lib.of_kind(ProblemKind::Code).next().unwrap();
        let slots = HintSlots {
            testcase: "Sample 1\nInput: 1\nExpected output: 2 {code_template}".into(),
            code_template: "```python\nprint(2)\n``` {testcase}".into(),
        };
        let text = debug.render(&slots);
        assert!(text.contains("Sample 1\nInput: 1"));
        assert!(text.contains("print(2)"));
        // A slot's text is not filled again: each literal slot name shows once, from the other.
        assert_eq!(text.matches(TESTCASE_SLOT).count(), 1);
        assert_eq!(text.matches(CODE_TEMPLATE_SLOT).count(), 1);
        assert!(
            text.find("print(2)") < text.find("Sample 1"),
            "template first"
        );
    }
}
