//! Code fences, written once: where a tool block opens and closes in the model's text, what the
//! output block after it looks like, and how a Markdown fence line reads.
//!
//! Two grammars live here, each in one place:
//!
//! - **The tool protocol**, shared by the driver that runs blocks while the model writes and by
//!   everything that reads a finished trajectory (the scorer). A tool block opens at
//!   [`CODE_OPEN`] (```` ```python ```` and a newline) anywhere outside a block, and closes at the
//!   first [`CODE_CLOSE`] that starts a line, whatever follows it on that line. Right after a
//!   closed block the driver appends an output block ([`output_block`]): a newline, a backtick
//!   fence with the info string [`OUTPUT_INFO`], the output, and the same fence alone on a line.
//!   That fence is longer than any backtick run in the output ([`fence_for`]), so nothing the
//!   code prints can end the block early or open a tool block. [`CodeScanner`] finds opens and
//!   closes in a text that grows piece by piece; [`blocks`] lists the blocks of a finished text
//!   by running the same scanner, so both see the same blocks. (Trajectories recorded before the
//!   output fence grew with its contents read the same, except that an old output holding a line
//!   of bare ```` ``` ```` ends there.)
//! - **Markdown fence lines** ([`FenceLine`], [`markdown_blocks`]), CommonMark-style: three or
//!   more backticks or tildes, an info string, closed by a line of the same character at least as
//!   long. Notebook files and problem statements are Markdown written by people, not the tool
//!   protocol.
//!
//! Every offset is a byte offset into the text passed in. Nothing here panics on any input, and
//! the work is linear in the text.

use std::ops::Range;

/// The shortest backtick fence.
pub const FENCE: &str = "```";
/// The info string of a tool block: Python code the driver runs.
pub const CODE_INFO: &str = "python";
/// The fence line that opens a tool block, without its newline (hints end with it).
pub const CODE_FENCE: &str = "```python";
/// Opens a tool block: [`CODE_FENCE`] and the newline after which the code starts.
pub const CODE_OPEN: &str = "```python\n";
/// Closes a tool block when it starts a line.
pub const CODE_CLOSE: &str = "```";
/// The info string of the output block the driver appends after each run.
pub const OUTPUT_INFO: &str = "output";
/// What [`defuse`] puts in place of a [`CODE_OPEN`] in text that must not open a block: the same
/// fence with a space before its newline.
pub const DEFUSED_CODE_OPEN: &str = "```python \n";

/// A fence event in the tool protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FenceEvent {
    /// A [`CODE_OPEN`] at `fence_start`; the code starts at `body_start`.
    Open {
        /// Where the opening fence starts.
        fence_start: usize,
        /// Where the code starts (after the fence's newline).
        body_start: usize,
    },
    /// A closing fence: the code is `body_start..fence_start`, the fence ends at `fence_end`.
    Close {
        /// Where the code starts.
        body_start: usize,
        /// Where the closing fence starts.
        fence_start: usize,
        /// Where it ends.
        fence_end: usize,
    },
}

impl FenceEvent {
    /// Where the event's fence starts.
    pub fn fence_start(&self) -> usize {
        match *self {
            FenceEvent::Open { fence_start, .. } | FenceEvent::Close { fence_start, .. } => {
                fence_start
            }
        }
    }
}

/// Finds tool-block opens and closes in a text that only grows at its end.
///
/// An event is reported as soon as its fence is complete in the text, and never changes when
/// more text arrives, so feeding a text piece by piece gives the same events as feeding it
/// whole. It remembers how far it has looked: scanning a long text piece by piece costs time
/// linear in the text. The caller that edits the text (cuts it, appends text of its own) says
/// where to go on with [`CodeScanner::reset`] or [`CodeScanner::enter_code`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CodeScanner {
    /// Nothing before this offset can start an event still to come.
    from: usize,
    /// Inside a tool block whose code starts here.
    body_start: Option<usize>,
}

impl CodeScanner {
    /// A scanner outside any block, looking from offset `from` on.
    pub fn new(from: usize) -> Self {
        CodeScanner {
            from,
            body_start: None,
        }
    }

    /// Where the code of the open block starts, if the scanner is inside one.
    pub fn body_start(&self) -> Option<usize> {
        self.body_start
    }

    /// Enters a block whose code starts at `body_start` (text before it is not looked at).
    pub fn enter_code(&mut self, body_start: usize) {
        self.body_start = Some(body_start);
        self.from = body_start;
    }

    /// Goes on at `from`, outside any block.
    pub fn reset(&mut self, from: usize) {
        self.body_start = None;
        self.from = from;
    }

    /// The next event in `text`, without moving past it ([`CodeScanner::accept`] does), or
    /// `None` when no complete fence is there yet.
    pub fn find(&mut self, text: &str) -> Option<FenceEvent> {
        let from = text.floor_char_boundary(self.from);
        match self.body_start {
            Some(body_start) => {
                let mut search = from;
                while let Some(i) = text[search..].find(CODE_CLOSE) {
                    let at = search + i;
                    if at == body_start || text[..at].ends_with('\n') {
                        self.from = at;
                        return Some(FenceEvent::Close {
                            body_start,
                            fence_start: at,
                            fence_end: at + CODE_CLOSE.len(),
                        });
                    }
                    // The next two bytes are backticks, so neither starts a line.
                    search = at + CODE_CLOSE.len();
                }
                // A closing fence may still be arriving at the very end.
                let keep = keep_tail(text, CODE_CLOSE.len() - 1).max(body_start);
                self.from = self.from.max(keep);
                None
            }
            None => match text[from..].find(CODE_OPEN) {
                Some(i) => {
                    let fence_start = from + i;
                    self.from = fence_start;
                    Some(FenceEvent::Open {
                        fence_start,
                        body_start: fence_start + CODE_OPEN.len(),
                    })
                }
                None => {
                    self.from = self.from.max(keep_tail(text, CODE_OPEN.len() - 1));
                    None
                }
            },
        }
    }

    /// Moves past `event`, as [`CodeScanner::find`] returned it.
    pub fn accept(&mut self, event: FenceEvent) {
        match event {
            FenceEvent::Open { body_start, .. } => self.enter_code(body_start),
            FenceEvent::Close { fence_end, .. } => self.reset(fence_end),
        }
    }

    /// The next event in `text`, moving past it.
    pub fn next_event(&mut self, text: &str) -> Option<FenceEvent> {
        let event = self.find(text)?;
        self.accept(event);
        Some(event)
    }
}

/// One fenced block of a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block<'a> {
    /// Its info string: [`CODE_INFO`] or [`OUTPUT_INFO`] in the tool protocol, as written
    /// (trimmed) in Markdown.
    pub info: &'a str,
    /// Where its opening fence starts.
    pub start: usize,
    /// Where its contents lie.
    pub body: Range<usize>,
    /// The contents.
    pub content: &'a str,
    /// Where the block ends: after the closing fence (a tool block), after the closing fence's
    /// line (an output or Markdown block), or at the end of the text when it is not closed.
    pub end: usize,
    /// Whether a closing fence ends it.
    pub closed: bool,
}

impl Block<'_> {
    /// The language: the info string's first word, in lowercase.
    pub fn language(&self) -> String {
        language(self.info)
    }
}

/// The tool blocks of a finished text and the output blocks after them, in order: what
/// [`CodeScanner`] finds when the text is fed to it, plus each output block the driver appended
/// right after a closed tool block (its contents are output, never code).
///
/// In a text the driver wrote, the closed tool blocks are exactly the code it ran; a last block
/// left open (the run stopped at a length or time cap) is listed with `closed: false`.
///
/// # Examples
///
/// ````
/// use start_grade::fence::{CODE_INFO, OUTPUT_INFO, blocks};
///
/// let text = "Compute:\n```python\nprint('```')\n```\n````output\n```\n````\nSo 3.\n```python\nx =";
/// let found: Vec<_> = blocks(text).map(|b| (b.info, b.content, b.closed)).collect();
/// assert_eq!(
///     found,
///     [
///         (CODE_INFO, "print('```')\n", true),
///         (OUTPUT_INFO, "```\n", true),
///         (CODE_INFO, "x =", false),
///     ]
/// );
/// ````
pub fn blocks(text: &str) -> Blocks<'_> {
    Blocks {
        text,
        scanner: CodeScanner::new(0),
        output_after: None,
        done: false,
    }
}

/// The iterator [`blocks`] returns.
#[derive(Debug, Clone)]
pub struct Blocks<'a> {
    text: &'a str,
    scanner: CodeScanner,
    /// A tool block closed here: an output block may follow.
    output_after: Option<usize>,
    /// The last block was left open.
    done: bool,
}

impl<'a> Iterator for Blocks<'a> {
    type Item = Block<'a>;

    fn next(&mut self) -> Option<Block<'a>> {
        let text = self.text;
        if self.done {
            return None;
        }
        if let Some(at) = self.output_after.take()
            && let Some(output) = output_block_at(text, at)
        {
            self.scanner.reset(output.end);
            return Some(output);
        }
        match self.scanner.next_event(text) {
            Some(FenceEvent::Open { fence_start, .. }) => match self.scanner.next_event(text) {
                Some(FenceEvent::Close {
                    body_start,
                    fence_start: close,
                    fence_end,
                }) => {
                    self.output_after = Some(fence_end);
                    Some(Block {
                        info: CODE_INFO,
                        start: fence_start,
                        body: body_start..close,
                        content: &text[body_start..close],
                        end: fence_end,
                        closed: true,
                    })
                }
                _ => {
                    let body_start = (fence_start + CODE_OPEN.len()).min(text.len());
                    // An unclosed block runs to the end: nothing follows it.
                    self.done = true;
                    Some(Block {
                        info: CODE_INFO,
                        start: fence_start,
                        body: body_start..text.len(),
                        content: &text[body_start..],
                        end: text.len(),
                        closed: false,
                    })
                }
            },
            _ => None,
        }
    }
}

/// The output block whose fence line is the line after offset `at`, if `text[at..]` starts
/// with a newline and that line is a backtick fence with the info string [`OUTPUT_INFO`].
fn output_block_at(text: &str, at: usize) -> Option<Block<'_>> {
    let start = at.checked_add(1)?;
    if text.as_bytes().get(at) != Some(&b'\n') {
        return None;
    }
    let line_end = start + text[start..].find('\n')?;
    let fence = FenceLine::parse(&text[start..line_end])?;
    if fence.indent != 0 || fence.fence_char != '`' || fence.info != OUTPUT_INFO {
        return None;
    }
    let body_start = line_end + 1;
    let (body_end, end, closed) = match fence.find_close(text, body_start) {
        Some((close, after)) => (close, after, true),
        None => (text.len(), text.len(), false),
    };
    Some(Block {
        info: OUTPUT_INFO,
        start,
        body: body_start..body_end,
        content: &text[body_start..body_end],
        end,
        closed,
    })
}

/// A backtick fence longer than any backtick run in `contents`, and at least [`FENCE`]: a
/// block fenced with it cannot be closed early by anything inside.
///
/// ```
/// use start_grade::fence::fence_for;
///
/// assert_eq!(fence_for(["3\n1 2 3"]), "```");
/// assert_eq!(fence_for(["x", "```\n"]), "````");
/// ```
pub fn fence_for<'a>(contents: impl IntoIterator<Item = &'a str>) -> String {
    let longest = contents
        .into_iter()
        .flat_map(|s| s.split(|c| c != '`'))
        .map(str::len)
        .max()
        .unwrap_or(0);
    "`".repeat(longest.max(FENCE.len() - 1) + 1)
}

/// The output block shown to the model after a run: a fence from [`fence_for`] with the info
/// string [`OUTPUT_INFO`], `shown`, a newline if `shown` lacks one, and the fence again. The
/// driver puts it on the line after the tool block's closing fence.
///
/// ```
/// use start_grade::fence::output_block;
///
/// assert_eq!(output_block("42"), "```output\n42\n```\n");
/// assert_eq!(output_block("```\n"), "````output\n```\n````\n");
/// ```
pub fn output_block(shown: &str) -> String {
    let fence = fence_for([shown]);
    let newline = if shown.ends_with('\n') { "" } else { "\n" };
    format!("{fence}{OUTPUT_INFO}\n{shown}{newline}{fence}\n")
}

/// `text` with every [`CODE_OPEN`] replaced by [`DEFUSED_CODE_OPEN`], for prose the driver
/// inserts (a hint, sample tests) that must not open a tool block.
///
/// ```
/// use start_grade::fence::{CODE_OPEN, defuse};
///
/// assert!(!defuse("see:\n```python\nx\n```").contains(CODE_OPEN));
/// ```
pub fn defuse(text: &str) -> String {
    text.replace(CODE_OPEN, DEFUSED_CODE_OPEN)
}

/// Whether `after` written right after `before` would complete a [`CODE_OPEN`] that starts in
/// `before`: a fence nobody saw open while `before` was scanned alone.
///
/// ```
/// use start_grade::fence::opens_across;
///
/// assert!(opens_across("Done. ```python", "\n\nWait"));
/// assert!(!opens_across("Done. ```python\n", "x"));
/// ```
pub fn opens_across(before: &str, after: &str) -> bool {
    (1..CODE_OPEN.len())
        .any(|k| before.ends_with(&CODE_OPEN[..k]) && after.starts_with(&CODE_OPEN[k..]))
}

/// A Markdown fence line: indentation, a run of three or more backticks or tildes, and an info
/// string (which may not contain a backtick after a backtick fence, as in CommonMark).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FenceLine<'a> {
    /// Leading spaces.
    pub indent: usize,
    /// `` ` `` or `~`.
    pub fence_char: char,
    /// How many of them.
    pub len: usize,
    /// The rest of the line, trimmed.
    pub info: &'a str,
}

impl<'a> FenceLine<'a> {
    /// Reads `line` (without its newline) as an opening fence.
    ///
    /// ```
    /// use start_grade::fence::FenceLine;
    ///
    /// let fence = FenceLine::parse("  ~~~~ Python\r").unwrap();
    /// assert_eq!((fence.indent, fence.fence_char, fence.len, fence.info), (2, '~', 4, "Python"));
    /// assert_eq!(fence.language(), "python");
    /// assert!(fence.is_closed_by("~~~~~") && !fence.is_closed_by("~~~"));
    /// assert!(FenceLine::parse("``").is_none() && FenceLine::parse("``` a`b").is_none());
    /// ```
    pub fn parse(line: &'a str) -> Option<FenceLine<'a>> {
        let trimmed = line.trim_start_matches(' ');
        let indent = line.len() - trimmed.len();
        let fence_char = trimmed.chars().next().filter(|c| *c == '`' || *c == '~')?;
        // Both fence characters are one byte.
        let len = trimmed
            .bytes()
            .take_while(|&b| b == fence_char as u8)
            .count();
        if len < FENCE.len() {
            return None;
        }
        let info = &trimmed[len..];
        if fence_char == '`' && info.contains('`') {
            return None;
        }
        Some(FenceLine {
            indent,
            fence_char,
            len,
            info: info.trim(),
        })
    }

    /// The language: the info string's first word, in lowercase.
    pub fn language(&self) -> String {
        language(self.info)
    }

    /// Whether `line` closes a block this fence opened: only the fence character, at least as
    /// many, and whitespace around.
    pub fn is_closed_by(&self, line: &str) -> bool {
        let trimmed = line.trim();
        trimmed.len() >= self.len && trimmed.bytes().all(|b| b == self.fence_char as u8)
    }

    /// The first line of `text` from `from` (a line start) on that closes this fence: where
    /// that line starts and where it ends, its newline included.
    fn find_close(&self, text: &str, from: usize) -> Option<(usize, usize)> {
        let mut line_start = from;
        while line_start < text.len() {
            let line_end = text[line_start..]
                .find('\n')
                .map_or(text.len(), |i| line_start + i);
            let after = (line_end + 1).min(text.len());
            if self.is_closed_by(&text[line_start..line_end]) {
                return Some((line_start, after));
            }
            line_start = after;
        }
        None
    }
}

/// The fenced blocks of a Markdown text, in order, by [`FenceLine`]: a block opens at a fence
/// line and closes at the first line that [`FenceLine::is_closed_by`]; a block left open runs
/// to the end. Whatever is inside a block (another fence line included) is its contents.
///
/// ```
/// use start_grade::fence::markdown_blocks;
///
/// let md = "# Notes\n````md\n```python\nno\n```\n````\n~~~py\nx = 1\n~~~\n";
/// let found: Vec<_> = markdown_blocks(md).map(|b| (b.info, b.content)).collect();
/// assert_eq!(found, [("md", "```python\nno\n```\n"), ("py", "x = 1\n")]);
/// ```
pub fn markdown_blocks(text: &str) -> MarkdownBlocks<'_> {
    MarkdownBlocks { text, at: 0 }
}

/// The iterator [`markdown_blocks`] returns.
#[derive(Debug, Clone)]
pub struct MarkdownBlocks<'a> {
    text: &'a str,
    /// The start of the next line to read.
    at: usize,
}

impl<'a> Iterator for MarkdownBlocks<'a> {
    type Item = Block<'a>;

    fn next(&mut self) -> Option<Block<'a>> {
        let text = self.text;
        while self.at < text.len() {
            let start = self.at;
            let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
            let body_start = (line_end + 1).min(text.len());
            self.at = body_start;
            let Some(fence) = FenceLine::parse(&text[start..line_end]) else {
                continue;
            };
            let (body_end, end, closed) = match fence.find_close(text, body_start) {
                Some((close, after)) => (close, after, true),
                None => (text.len(), text.len(), false),
            };
            self.at = end;
            return Some(Block {
                info: fence.info,
                start,
                body: body_start..body_end,
                content: &text[body_start..body_end],
                end,
                closed,
            });
        }
        None
    }
}

/// An info string's first word, in lowercase.
fn language(info: &str) -> String {
    info.split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_lowercase()
}

/// An offset `keep` bytes before the end of `text`, on a character boundary.
fn keep_tail(text: &str, keep: usize) -> usize {
    text.floor_char_boundary(text.len().saturating_sub(keep))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `pieces` one after another, as the driver does, collecting every event.
    fn feed(pieces: &[&str]) -> (String, Vec<FenceEvent>) {
        let mut scanner = CodeScanner::new(0);
        let mut text = String::new();
        let mut events = Vec::new();
        for piece in pieces {
            text.push_str(piece);
            while let Some(event) = scanner.next_event(&text) {
                events.push(event);
            }
        }
        (text, events)
    }

    fn code_bodies(text: &str) -> Vec<&str> {
        blocks(text)
            .filter(|b| b.info == CODE_INFO && b.closed)
            .map(|b| b.content)
            .collect()
    }

    #[test]
    fn streaming_and_whole_agree_however_the_text_is_cut() {
        let text = "a ```python\nx = '```'\ny = 1 ```\n``` trailing\nb ``` ```python\n```\nc \
                    é```python\nz";
        let (_, whole) = feed(&[text]);
        for split in 0..=text.len() {
            if !text.is_char_boundary(split) {
                continue;
            }
            let (_, pieces) = feed(&[&text[..split], &text[split..]]);
            assert_eq!(pieces, whole, "split at {split}");
        }
        let bytes: Vec<String> = text.chars().map(String::from).collect();
        let refs: Vec<&str> = bytes.iter().map(String::as_str).collect();
        assert_eq!(feed(&refs).1, whole);
        assert_eq!(code_bodies(text), ["x = '```'\ny = 1 ```\n", ""]);
        let open: Vec<_> = blocks(text).filter(|b| !b.closed).collect();
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].content, "z");
    }

    #[test]
    fn the_close_is_a_line_start_whatever_follows() {
        // `python` after the fence does not make it an open: the block closes there.
        assert_eq!(code_bodies("```python\na\n```python\nb\n```\n"), ["a\n"]);
        assert_eq!(code_bodies("```python\n```"), [""]);
        assert_eq!(code_bodies("```python\n  ```\n```"), ["  ```\n"]);
        assert_eq!(code_bodies("```python3\nx\n```\n"), Vec::<&str>::new());
        assert_eq!(code_bodies("```py\nx\n```\n"), Vec::<&str>::new());
        assert_eq!(code_bodies("mid-line ```python\nx\n```\n"), ["x\n"]);
        assert_eq!(code_bodies("```python\r\nx\r\n```\r\n"), Vec::<&str>::new());
    }

    #[test]
    fn output_blocks_are_skipped_whole() {
        let shown = "```\n```python\nnot code\n```\n";
        let text = format!("```python\nprint(1)\n```\n{}after\n", output_block(shown));
        let found: Vec<_> = blocks(&text).map(|b| (b.info, b.content)).collect();
        assert_eq!(found, [(CODE_INFO, "print(1)\n"), (OUTPUT_INFO, shown)]);
        let output = blocks(&text).nth(1).unwrap();
        assert_eq!(&text[output.end..], "after\n");
        // Only right after a tool block: elsewhere an output fence is prose.
        let stray = "```output\n```python\nx\n```\n";
        assert_eq!(code_bodies(stray), ["x\n"]);
        // An output block left open hides the rest of the text.
        let open = "```python\n1\n```\n```output\n```python\nx\n";
        assert_eq!(code_bodies(open), ["1\n"]);
        assert!(!blocks(open).nth(1).unwrap().closed);
    }

    #[test]
    fn fences_outgrow_backtick_runs() {
        assert_eq!(fence_for([""]), "```");
        assert_eq!(fence_for(["a `` b"]), "```");
        assert_eq!(fence_for(["`````"]), "``````");
        assert_eq!(output_block(""), "```output\n\n```\n");
    }

    #[test]
    fn defused_text_opens_nothing() {
        let prose = "```python\n```python\nx";
        assert_eq!(code_bodies(&defuse(prose)), Vec::<&str>::new());
        assert!(blocks(&defuse(prose)).next().is_none());
        for k in 0..=CODE_OPEN.len() {
            let (a, b) = CODE_OPEN.split_at(k);
            assert_eq!(opens_across(a, b), (1..CODE_OPEN.len()).contains(&k), "{k}");
        }
        assert!(!opens_across("", CODE_OPEN) && !opens_across("é", "x"));
    }

    #[test]
    fn markdown_fences() {
        let md = "```python\na\n````\n  ~~~ Python title\nb\n```\n~~~\n```\nopen";
        let found: Vec<_> = markdown_blocks(md)
            .map(|b| (b.info, b.content, b.closed))
            .collect();
        assert_eq!(
            found,
            [
                ("python", "a\n", true),
                ("Python title", "b\n```\n", true),
                ("", "open", false),
            ]
        );
        assert!(FenceLine::parse("```").is_some_and(|f| f.info.is_empty()));
        assert!(!FenceLine::parse("```").unwrap().is_closed_by(""));
        assert_eq!(markdown_blocks("```").next().map(|b| b.body), Some(3..3));
    }

    #[test]
    fn odd_offsets_do_not_panic() {
        let mut scanner = CodeScanner::new(usize::MAX);
        assert_eq!(scanner.find("é```python\n"), None);
        let mut scanner = CodeScanner::new(1);
        assert!(scanner.find("é```python\n").is_some());
        scanner.enter_code(1);
        assert!(scanner.find("é").is_none());
        assert!(output_block_at("x", usize::MAX).is_none());
        assert!(output_block_at("```python\n```\n```output", 13).is_none());
    }
}
