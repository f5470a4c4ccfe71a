//! Splitting a file into notebook-style cells: a Markdown file's ```python blocks, or a `.py`
//! file split on `# %%` lines.

/// One cell: its code and the 1-based line where it starts in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    /// The cell's source.
    pub code: String,
    /// Line number of the cell's first code line.
    pub line: usize,
}

/// Splits `text` into cells: Markdown (`markdown == true`) takes fenced ```python / ```py
/// blocks; Python splits on lines starting with `# %%`. Empty cells are dropped.
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

fn split_markdown(text: &str) -> Vec<Cell> {
    let mut cells = Vec::new();
    let mut current: Option<(String, usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        match &mut current {
            None => {
                if let Some(info) = trimmed.strip_prefix("```") {
                    let lang = info.trim().to_ascii_lowercase();
                    if lang == "python" || lang == "py" || lang == "python3" {
                        current = Some((String::new(), i + 2, "```".into()));
                    }
                } else if let Some(info) = trimmed.strip_prefix("~~~") {
                    let lang = info.trim().to_ascii_lowercase();
                    if lang == "python" || lang == "py" {
                        current = Some((String::new(), i + 2, "~~~".into()));
                    }
                }
            }
            Some((code, start, fence)) => {
                if trimmed.starts_with(fence.as_str()) && trimmed.trim_end() == fence.as_str() {
                    let (code, start) = (std::mem::take(code), *start);
                    push(&mut cells, code, start);
                    current = None;
                } else {
                    code.push_str(line);
                    code.push('\n');
                }
            }
        }
    }
    if let Some((code, start, _)) = current {
        push(&mut cells, code, start);
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
