//! A hostile guest: each attempt to reach the host must fail inside the guest. Each test accepts
//! only the outcomes it lists.

use start_sandbox::Status;

use crate::run;

/// Runs `attempt` inside try/except and prints BLOCKED or ESCAPED.
fn attempt(attempt: &str) -> String {
    let code = format!(
        "try:\n{}\n    print('ESCAPED')\nexcept Exception as e:\n    print('BLOCKED', type(e).__name__)",
        attempt
            .lines()
            .map(|l| format!("    {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let out = run(&code);
    assert_eq!(out.status, Status::Finished, "{}", out.stderr);
    out.stdout
}

#[test]
fn host_files_are_invisible() {
    assert!(attempt("open('/etc/passwd').read()").starts_with("BLOCKED"));
    assert!(attempt("open('/proc/self/environ').read()").starts_with("BLOCKED"));
    assert!(attempt("open('../../../../etc/hostname').read()").starts_with("BLOCKED"));
}

#[test]
fn the_standard_library_is_read_only() {
    assert!(attempt("open('/usr/local/lib/evil.py', 'w').write('x')").starts_with("BLOCKED"));
    assert!(attempt("import os; os.remove('/usr/local/lib/python315.zip')").starts_with("BLOCKED"));
}

#[test]
fn writing_works_only_in_scratch() {
    let out = run("open('/tmp.txt', 'w').write('hi'); print(open('/tmp.txt').read())");
    assert_eq!(out.stdout, "hi\n");
    assert!(attempt("open('/usr/local/lib/../lib/x', 'w')").starts_with("BLOCKED"));
}

#[test]
fn no_network() {
    let out = attempt("import socket\ns = socket.socket()\ns.connect(('127.0.0.1', 22))");
    assert!(out.starts_with("BLOCKED"), "{out}");
}

#[test]
fn no_subprocesses() {
    assert!(attempt("import subprocess; subprocess.run(['ls'])").starts_with("BLOCKED"));
    let out = attempt("import os\nr = os.system('ls')\nassert r == 0");
    assert!(out.starts_with("BLOCKED"), "{out}");
    assert!(attempt("import os; os.fork()").starts_with("BLOCKED"));
}

#[test]
fn environment_holds_none_of_the_hosts_variables() {
    let out = run("import os; print(sorted(os.environ))");
    assert_eq!(out.stdout, "['HOME', 'PYTHONTZPATH', 'TMPDIR']\n");
    // The test process itself has PATH and more.
    assert!(std::env::var_os("PATH").is_some());
}
