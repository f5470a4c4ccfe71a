//! Fresh executions in reused instances: a finished guest is restored to the snapshot's exact
//! state and runs the next execution; nothing of the previous one may show.

use start_sandbox::{Limits, Sandbox, SandboxOptions, Session, SessionLimits, Status, TurnLimits};
use std::time::Duration;

/// A sandbox that restores inline and keeps one guest, so the next call surely reuses it.
fn reusing() -> Sandbox {
    Sandbox::new(SandboxOptions {
        reuse_instances: 1,
        teardown_in_background: false,
        ..SandboxOptions::default()
    })
    .unwrap()
}

/// Whether this kernel can report written pages (Linux 6.7+); reuse is off elsewhere.
fn reuse_supported(sandbox: &Sandbox) -> bool {
    sandbox.exec("pass", &Limits::default()).unwrap();
    sandbox.exec("pass", &Limits::default()).unwrap();
    let supported = sandbox.reused_instances() > 0;
    if !supported {
        eprintln!("instance reuse is unavailable on this kernel: the tests below check nothing");
    }
    supported
}

const DIRTY: &str = r#"
import builtins, math, os, sys, random, numpy, sympy
X = 1
builtins.leak = 1
math.pi = 3
sys.modules['evil'] = sys
sys.path.insert(0, '/evil')
sys.setrecursionlimit(77)
os.environ['LEAK'] = '1'
open('/leak.txt', 'w').write('x')
os.makedirs('/tmp/d/e', exist_ok=True)
kept_open = open('/tmp/d/e/f', 'w')
sympy.Symbol.leak = True
numpy.seterr(all='raise')
big = [str(i) * 10 for i in range(2000)]
print('dirty')
"#;

const CHECK: &str = r#"
import builtins, math, os, sys, numpy, sympy
print(
    'X' in globals(), hasattr(builtins, 'leak'), math.pi == 3, 'evil' in sys.modules,
    '/evil' in sys.path, sys.getrecursionlimit() == 77, 'LEAK' in os.environ,
    os.path.exists('/leak.txt'), os.path.exists('/tmp/d'), hasattr(sympy.Symbol, 'leak'),
    numpy.geterr()['divide'] == 'raise',
)
"#;

#[test]
fn a_reused_instance_shows_nothing_of_the_last_execution() {
    let sandbox = reusing();
    if !reuse_supported(&sandbox) {
        return;
    }
    let clean = sandbox.exec(CHECK, &Limits::default()).unwrap();
    assert_eq!(clean.status, Status::Finished, "{}", clean.stderr);
    let dirty = sandbox.exec(DIRTY, &Limits::default()).unwrap();
    assert_eq!(dirty.stdout, "dirty\n", "{}", dirty.stderr);
    let before = sandbox.reused_instances();
    let after = sandbox.exec(CHECK, &Limits::default()).unwrap();
    assert_eq!(
        sandbox.reused_instances(),
        before + 1,
        "the check ran in the reused instance"
    );
    assert_eq!(after.stdout, clean.stdout);
    assert!(!after.stdout.contains("True"), "{}", after.stdout);
}

/// Each way a guest can add a name to its folder, and a call that fails to: the restore
/// skips emptying a folder only when no call could have added one, so each is tried alone.
const ADDS_A_NAME: [&str; 7] = [
    "open('/a', 'w').close()",
    "import os; os.mkdir('/d')",
    "import os; open('/a', 'w').close(); os.rename('/a', '/b')",
    "import os; os.symlink('nowhere', '/l')",
    "import os; open('/a', 'w').close(); os.link('/a', '/h')",
    "import os; fd = os.open('/x', os.O_CREAT | os.O_WRONLY); os.close(fd)",
    // Fails (no such folder) and adds nothing; the next call finds the folder empty anyway.
    "try:\n    open('/missing/a', 'w')\nexcept OSError:\n    pass",
];

#[test]
fn every_way_of_adding_a_name_is_emptied_before_reuse() {
    let sandbox = reusing();
    if !reuse_supported(&sandbox) {
        return;
    }
    let limits = Limits::default();
    for code in ADDS_A_NAME {
        let made = sandbox.exec(code, &limits).unwrap();
        assert_eq!(made.status, Status::Finished, "{code}: {}", made.stderr);
        let before = sandbox.reused_instances();
        // A call that touches no file: its own restore is the skipping kind.
        let listed = sandbox
            .exec("import os; print(sorted(os.listdir('/')))", &limits)
            .unwrap();
        assert_eq!(sandbox.reused_instances(), before + 1, "{code}: not reused");
        assert_eq!(listed.stdout, "[]\n", "after {code}: {}", listed.stderr);
        let again = sandbox
            .exec("import os; print(sorted(os.listdir('/')))", &limits)
            .unwrap();
        assert_eq!(again.stdout, "[]\n", "two calls after {code}");
    }
}

#[test]
fn exceptions_and_exits_are_reused_traps_are_not() {
    let sandbox = reusing();
    if !reuse_supported(&sandbox) {
        return;
    }
    let limits = Limits::default();
    for code in ["raise ValueError('x')", "import sys; sys.exit(3)", "exit()"] {
        sandbox.exec(code, &limits).unwrap();
        let n = sandbox.reused_instances();
        let out = sandbox.exec("print(1)", &limits).unwrap();
        assert_eq!(out.stdout, "1\n");
        assert_eq!(sandbox.reused_instances(), n + 1, "after {code}");
    }

    // A trap leaves the interpreter mid-call: that instance is torn down, not reused.
    let spin = Limits {
        wall_time: Duration::from_millis(100),
        ..Limits::default()
    };
    let out = sandbox.exec("while True: pass", &spin).unwrap();
    assert!(matches!(out.status, Status::LimitExceeded { .. }));
    let n = sandbox.reused_instances();
    assert_eq!(sandbox.exec("print(2)", &limits).unwrap().stdout, "2\n");
    assert_eq!(
        sandbox.reused_instances(),
        n,
        "a trapped instance was reused"
    );

    // So is one whose memory grew: a wasm memory cannot shrink back to the snapshot's size.
    sandbox
        .exec("x = bytearray(300 << 20); print(len(x))", &limits)
        .unwrap();
    let n = sandbox.reused_instances();
    assert_eq!(sandbox.exec("print(3)", &limits).unwrap().stdout, "3\n");
    assert_eq!(sandbox.reused_instances(), n, "a grown instance was reused");
}

#[test]
fn reuse_can_be_turned_off() {
    let sandbox = Sandbox::new(SandboxOptions {
        reuse_instances: 0,
        ..SandboxOptions::default()
    })
    .unwrap();
    for _ in 0..5 {
        assert_eq!(
            sandbox.exec("print(1)", &Limits::default()).unwrap().stdout,
            "1\n"
        );
    }
    assert_eq!(sandbox.reused_instances(), 0);
}

#[test]
fn a_closed_sessions_interpreter_is_restored_before_anyone_reuses_it() {
    let sandbox = reusing();
    if !reuse_supported(&sandbox) {
        return;
    }
    let turn = TurnLimits::default();
    let mut first = Session::open(&sandbox, SessionLimits::default()).unwrap();
    first
        .run("secret = 41\nimport builtins; builtins.mark = 1", &turn)
        .unwrap();
    assert_eq!(first.run("secret + 1", &turn).unwrap().stdout, "42\n");
    drop(first);

    let n = sandbox.reused_instances();
    let mut second = Session::open(&sandbox, SessionLimits::default()).unwrap();
    assert_eq!(sandbox.reused_instances(), n + 1, "the session reused it");
    let out = second
        .run(
            "print('secret' in globals(), hasattr(__import__('builtins'), 'mark'))",
            &turn,
        )
        .unwrap();
    assert_eq!(out.stdout, "False False\n");
    drop(second);

    // And an execution after a session likewise.
    let out = sandbox
        .exec("print('secret' in globals())", &Limits::default())
        .unwrap();
    assert_eq!(out.stdout, "False\n");
}

#[test]
fn an_instance_that_wrote_too_much_is_not_restored() {
    let sandbox = Sandbox::new(SandboxOptions {
        reuse_instances: 1,
        teardown_in_background: false,
        // A trivial call writes under 1 MiB; 4 MiB of fresh data does not fit.
        max_restore_bytes: 2 << 20,
        ..SandboxOptions::default()
    })
    .unwrap();
    if !reuse_supported(&sandbox) {
        return;
    }
    let limits = Limits::default();
    let out = sandbox
        .exec("x = bytes(range(256)) * (4 << 12); print(len(x))", &limits)
        .unwrap();
    assert_eq!(out.stdout, "4194304\n", "{}", out.stderr);
    let n = sandbox.reused_instances();
    assert_eq!(sandbox.exec("print(1)", &limits).unwrap().stdout, "1\n");
    assert_eq!(
        sandbox.reused_instances(),
        n,
        "an instance over max_restore_bytes was reused"
    );
    // Small calls go on being reused.
    sandbox.exec("print(2)", &limits).unwrap();
    assert_eq!(sandbox.reused_instances(), n + 1);
}

#[test]
fn a_memory_cap_below_the_interpreter_is_refused_with_or_without_reuse() {
    let tiny = Limits {
        memory_bytes: 1 << 20,
        ..Limits::default()
    };
    for reuse in [0, 1] {
        let sandbox = Sandbox::new(SandboxOptions {
            reuse_instances: reuse,
            ..SandboxOptions::default()
        })
        .unwrap();
        // Twice: the second call finds a restored instance where reuse is on.
        for call in 0..2 {
            sandbox.exec("print(1)", &Limits::default()).unwrap();
            let err = sandbox.exec("print(1)", &tiny).unwrap_err();
            assert!(
                matches!(err, start_sandbox::Error::Invalid(_))
                    && err.to_string().contains("the interpreter itself occupies"),
                "reuse {reuse}, call {call}: {err}"
            );
        }
        assert_eq!(
            sandbox.exec("print(2)", &Limits::default()).unwrap().stdout,
            "2\n"
        );
    }
}
