//! Splitting a file into notebook-style cells: a Markdown file's ```` ```python ```` blocks
//! (fenced as [`start_grade::fence::markdown_blocks`] reads Markdown), or a `.py` file split on
//! `# %%` lines.

use start_grade::fence;

/// One cell: its code and the 1-based line where it starts in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    /// The cell's source.
    pub code: String,
    /// Line number of the cell's first code line.
    pub line: usize,
}

/// Splits `text` into cells: Markdown (`markdown == true`) takes fenced blocks (backticks or
/// tildes) whose language is `python`, `py` or `python3`, and skips every other fenced block
/// whole; Python splits on lines starting with `# %%`. Empty cells are dropped.
///
/// ```
/// let cells = start::cells::split("x = 1\n# %%\nprint(x)\n", false);
/// assert_eq!(cells.len(), 2);
/// assert_eq!(cells[1].code, "print(x)\n");
/// ```
pub fn split(text: &str, markdown: bool) -> Vec<Cell> {
    if markdown {
        split_markdown(text)
    } else {
        split_percent(text)
    }
}

fn push(cells: &mut Vec<Cell>, code: String, line: usize) {
    if !code.trim().is_empty() {
        cells.push(Cell { code, line });
    }
}

fn split_percent(text: &str) -> Vec<Cell> {
    let mut cells = Vec::new();
    let mut code = String::new();
    let mut start = 1;
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("# %%") {
            push(&mut cells, std::mem::take(&mut code), start);
            start = i + 2;
            continue;
        }
        code.push_str(line);
        code.push('\n');
    }
    push(&mut cells, code, start);
    cells
}

/// The languages of the Markdown blocks taken as cells.
const CELL_LANGUAGES: [&str; 3] = ["python", "py", "python3"];

fn split_markdown(text: &str) -> Vec<Cell> {
    let mut cells = Vec::new();
    // Line numbers counted incrementally: blocks come in order.
    let (mut counted, mut line) = (0, 1);
    for block in fence::markdown_blocks(text) {
        line += text[counted..block.body.start].matches('\n').count();
        counted = block.body.start;
        if CELL_LANGUAGES.contains(&block.language().as_str()) {
            let mut code = block.content.replace("\r\n", "\n");
            if !code.is_empty() && !code.ends_with('\n') {
                code.push('\n');
            }
            push(&mut cells, code, line);
        }
    }
    cells
}

/// Whether `buffer` (lines typed so far) still needs more input before it can run: an open
/// bracket or triple quote, a trailing backslash, or a block opener (`:`) not yet closed by a
/// blank line.
pub fn needs_more(buffer: &str) -> bool {
    let mut depth: i64 = 0;
    let mut in_triple: Option<&str> = None;
    let mut rest = buffer;
    while !rest.is_empty() {
        if let Some(q) = in_triple {
            match rest.find(q) {
                Some(at) => {
                    rest = &rest[at + 3..];
                    in_triple = None;
                }
                None => return true,
            }
            continue;
        }
        if rest.starts_with("\"\"\"") || rest.starts_with("'''") {
            in_triple = Some(if rest.starts_with('"') {
                "\"\"\""
            } else {
                "'''"
            });
            rest = &rest[3..];
            continue;
        }
        let mut chars = rest.chars();
        let c = chars.next().unwrap_or(' ');
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            '#' => {
                rest = rest.find('\n').map_or("", |at| &rest[at..]);
                continue;
            }
            '"' | '\'' => {
                // Skip a one-line string.
                let body = chars.as_str();
                let end = body
                    .char_indices()
                    .scan(false, |escaped, (i, ch)| {
                        let hit = !*escaped && (ch == c || ch == '\n');
                        *escaped = !*escaped && ch == '\\';
                        Some((i, hit))
                    })
                    .find(|&(_, hit)| hit)
                    .map_or(body.len(), |(i, _)| i + 1);
                rest = &body[end.min(body.len())..];
                continue;
            }
            _ => {}
        }
        rest = chars.as_str();
    }
    if depth > 0 {
        return true;
    }
    let last = buffer.trim_end_matches('\n').lines().last().unwrap_or("");
    if last.trim_end().ends_with('\\') {
        return true;
    }
    let first = buffer.lines().next().unwrap_or("");
    let opened_block =
        buffer.lines().any(|l| l.trim_end().ends_with(':')) || first.starts_with('@');
    opened_block && !buffer.ends_with("\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_takes_python_blocks_only() {
        let md = "# T\n```python\na = 1\n```\ntext\n```bash\nls\n```\n```py\nprint(a)\n```\n";
        let cells = split(md, true);
        assert_eq!(cells.len(), 2);
        assert_eq!(
            cells[0],
            Cell {
                code: "a = 1\n".into(),
                line: 3
            }
        );
        assert_eq!(cells[1].code, "print(a)\n");
    }

    #[test]
    fn markdown_fences_read_as_commonmark() {
        // A python fence inside another block is that block's text; longer fences, tildes and
        // info strings after the language work; a longer closing fence closes.
        let md = "````md\n```python\nno = 1\n```\n````\n~~~python3 title\na = 1\n~~~\n\
                  ````py\nb = '```'\n`````\n```python\r\nc = 3\r\n```\r\n";
        let cells = split(md, true);
        let codes: Vec<_> = cells.iter().map(|c| (c.code.as_str(), c.line)).collect();
        assert_eq!(
            codes,
            [("a = 1\n", 7), ("b = '```'\n", 10), ("c = 3\n", 13)]
        );
    }

    #[test]
    fn unclosed_markdown_block_still_counts() {
        assert_eq!(split("```python\nx = 2\n", true).len(), 1);
    }

    #[test]
    fn percent_split_drops_empty_cells() {
        let cells = split("# %%\n\n# %% second\ny = 2\n", false);
        assert_eq!(cells.len(), 1);
        assert_eq!(cells[0].line, 4);
    }

    #[test]
    fn continuation_rules() {
        assert!(!needs_more("x = 1\n"));
        assert!(needs_more("def f():\n"));
        assert!(needs_more("def f():\n    return 1\n"));
        assert!(!needs_more("def f():\n    return 1\n\n"));
        assert!(needs_more("x = (1,\n"));
        assert!(!needs_more("x = '('\n"));
        assert!(needs_more("s = \"\"\"abc\n"));
        assert!(!needs_more("s = \"\"\"a\"\"\"\n"));
        assert!(!needs_more("# (\n"));
        assert!(needs_more("x = 1 + \\\n"));
    }
}
