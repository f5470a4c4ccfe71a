//! `files` and `fetch_files`: the guest code that places a request's files in the program's
//! scratch folder before it runs and reads the fetched ones back after it ends.
//!
//! The files travel inside the program (the sandbox has no other way in: no host folder is
//! shared with a guest), so they count against the sandbox's code limit. Fetched files come
//! back on stdout after a marker drawn at random per request and are cut from the stdout the
//! client sees; a program that prints past its stdout cap loses them, and a program that finds
//! the marker can only forge its own reply.

use std::collections::BTreeMap;

use base64::Engine;

use super::error::ApiError;

/// The most files one request may send or fetch.
pub const MAX_FILES: usize = 1000;
/// The longest path accepted in `files` or `fetch_files`.
pub const MAX_PATH_BYTES: usize = 4096;

/// Checks `files` (each value valid base64, each path usable) and returns them with empty
/// content for `null`; the base64 text is kept as is, since the guest decodes it.
pub fn check_files(
    files: &BTreeMap<String, Option<String>>,
) -> Result<Vec<(String, String)>, ApiError> {
    if files.len() > MAX_FILES {
        return Err(ApiError::invalid(format!(
            "{} files sent; at most {MAX_FILES} are accepted",
            files.len()
        )));
    }
    let mut out = Vec::with_capacity(files.len());
    for (path, content) in files {
        check_path(path)?;
        let content = content.clone().unwrap_or_default();
        if let Err(e) = base64::engine::general_purpose::STANDARD.decode(content.as_bytes()) {
            return Err(ApiError::invalid(format!(
                "files[{path:?}] is not valid base64: {e}"
            )));
        }
        out.push((path.clone(), content));
    }
    Ok(out)
}

/// Checks `fetch_files`' paths.
pub fn check_fetch(paths: &[String]) -> Result<(), ApiError> {
    if paths.len() > MAX_FILES {
        return Err(ApiError::invalid(format!(
            "{} files to fetch; at most {MAX_FILES} are accepted",
            paths.len()
        )));
    }
    paths.iter().try_for_each(|p| check_path(p))
}

fn check_path(path: &str) -> Result<(), ApiError> {
    if path.is_empty() || path.len() > MAX_PATH_BYTES || path.contains('\0') {
        return Err(ApiError::invalid(format!(
            "file path {:?} must be 1 to {MAX_PATH_BYTES} bytes without NUL",
            path.chars().take(80).collect::<String>()
        )));
    }
    Ok(())
}

/// A fresh marker for one request's fetched files.
pub fn marker() -> String {
    let mut bytes = [0u8; 16];
    // Host entropy; a failure only makes the marker guessable, which lets a program forge its
    // own reply and nothing else.
    let _ = getrandom::fill(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("\u{1}start-fetched-files-{hex}:")
}

/// A Python literal for `s` (a JSON string is one: serde_json escapes quotes, backslashes and
/// control characters the way Python reads them, and a Rust string holds no lone surrogate).
fn py_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "''".into())
}

/// Guest code that writes `files` (parents created).
pub fn put_code(files: &[(String, String)]) -> String {
    let mut code = String::from(
        "def __start_put(files):\n    import base64, os\n    for path, data in files:\n        \
         parent = os.path.dirname(path)\n        if parent:\n            \
         os.makedirs(parent, exist_ok=True)\n        with open(path, 'wb') as f:\n            \
         f.write(base64.b64decode(data))\n__start_put([\n",
    );
    for (path, data) in files {
        code.push_str(&format!("    ({}, '{data}'),\n", py_str(path)));
    }
    code.push_str("])\ndel __start_put\n");
    code
}

/// Guest code that prints the `paths` that exist, base64, after `marker`.
pub fn fetch_code(paths: &[String], marker: &str) -> String {
    let list: Vec<String> = paths.iter().map(|p| py_str(p)).collect();
    format!(
        "def __start_fetch(paths, marker):\n    import base64, json, sys\n    out = {{}}\n    \
         for p in paths:\n        try:\n            with open(p, 'rb') as f:\n                \
         out[p] = base64.b64encode(f.read()).decode()\n        except (OSError, ValueError):\n            \
         pass\n    sys.__stdout__.write('\\n' + marker + json.dumps(out) + '\\n')\n    \
         sys.__stdout__.flush()\n__start_fetch([{}], {})\n",
        list.join(", "),
        py_str(marker)
    )
}

/// One program that places `files`, runs `code` as `__main__` and then, whatever it did
/// (an exception, `sys.exit`), prints the fetched files. Without files to fetch the user's
/// code still runs through `exec`, so its line numbers are its own.
pub fn wrap(code: &str, files: &[(String, String)], fetch: &[String], marker: &str) -> String {
    let mut program = put_code(files);
    let run = format!(
        "exec(compile({}, '<string>', 'exec'), {{'__name__': '__main__', '__builtins__': __builtins__}})\n",
        py_str(code)
    );
    if fetch.is_empty() {
        program.push_str(&run);
    } else {
        program.push_str("try:\n    ");
        program.push_str(&run);
        program.push_str("finally:\n");
        for line in fetch_code(fetch, marker).lines() {
            program.push_str("    ");
            program.push_str(line);
            program.push('\n');
        }
    }
    program
}

/// Splits the fetched files off `stdout`: the stdout the program printed, and the files.
pub fn take_fetched(stdout: &str, marker: &str) -> (String, BTreeMap<String, String>) {
    let needle = format!("\n{marker}");
    let Some(at) = stdout.rfind(&needle) else {
        return (stdout.to_string(), BTreeMap::new());
    };
    let json = stdout[at + needle.len()..].trim_end_matches('\n');
    let files = serde_json::from_str(json).unwrap_or_default();
    (stdout[..at].to_string(), files)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn bad_base64_and_bad_paths_are_refused() {
        let mut f = BTreeMap::new();
        f.insert("a.txt".to_string(), Some("aGk=".to_string()));
        f.insert("e".to_string(), None);
        assert_eq!(check_files(&f).unwrap().len(), 2);
        f.insert("b".to_string(), Some("not base64!".to_string()));
        assert!(check_files(&f).is_err());
        assert!(check_fetch(&[String::new()]).is_err());
        assert!(check_fetch(&["x\0".to_string()]).is_err());
        assert!(check_fetch(&["a".repeat(MAX_PATH_BYTES)]).is_ok());
        assert!(check_fetch(&["a".repeat(MAX_PATH_BYTES + 1)]).is_err());
        let many: Vec<String> = (0..=MAX_FILES).map(|i| i.to_string()).collect();
        assert!(check_fetch(&many).is_err());
    }

    #[test]
    fn fetched_files_are_cut_from_stdout() {
        let m = marker();
        let out = format!("hello\n\n{m}{{\"a\": \"aGk=\"}}\n");
        let (stdout, files) = take_fetched(&out, &m);
        assert_eq!(stdout, "hello\n");
        assert_eq!(files.get("a").map(String::as_str), Some("aGk="));
        assert_eq!(take_fetched("plain", &m).0, "plain");
    }
}
