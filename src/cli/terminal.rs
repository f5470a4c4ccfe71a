//! Guest output shown on a terminal: control characters are made visible, so a program cannot
//! drive the user's terminal (move the cursor, retitle the window, rewrite what was printed,
//! or worse) with escape sequences. Output to a pipe or file is copied unchanged.

use std::borrow::Cow;
use std::io::{IsTerminal, Write};

/// `text` with every control character other than newline and tab written as a visible
/// escape (`\x1b`, `\r`, `\u{9b}`), for a terminal.
pub fn visible(text: &str) -> Cow<'_, str> {
    let is_plain = |c: char| !c.is_control() || c == '\n' || c == '\t';
    if text.chars().all(is_plain) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            c if is_plain(c) => out.push(c),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        }
    }
    Cow::Owned(out)
}

/// Writes guest stdout to ours, made [`visible`] when ours is a terminal.
pub fn print_guest_stdout(text: &str) {
    write_guest(std::io::stdout().lock(), text);
}

/// Writes guest stderr to ours, made [`visible`] when ours is a terminal.
pub fn print_guest_stderr(text: &str) {
    write_guest(std::io::stderr().lock(), text);
}

fn write_guest(mut to: impl Write + IsTerminal, text: &str) {
    let shown = if to.is_terminal() {
        visible(text)
    } else {
        Cow::Borrowed(text)
    };
    // A closed pipe (`start exec ... | head`) is not an error worth reporting here.
    let _ = to.write_all(shown.as_bytes());
    let _ = to.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_made_visible_and_plain_text_is_untouched() {
        assert!(matches!(visible("ok\tfine\n"), Cow::Borrowed("ok\tfine\n")));
        assert_eq!(visible("\x1b[2Jgone\r\n"), "\\x1b[2Jgone\\r\n");
        assert_eq!(visible("\u{9b}31m\x07"), "\\u{9b}31m\\x07");
        assert_eq!(visible("\u{7f}é"), "\\x7fé");
    }
}
