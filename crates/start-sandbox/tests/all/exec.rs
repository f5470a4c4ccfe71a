//! Fresh executions: results, statuses, isolation between calls, threads.

use start_sandbox::{Limits, Status};

use crate::{run, sandbox};

#[test]
fn prints_and_finishes() {
    let out = run("import sympy\nprint(sympy.factorint(2**64-1))");
    assert_eq!(out.status, Status::Finished);
    assert_eq!(
        out.stdout,
        "{3: 1, 5: 1, 17: 1, 257: 1, 641: 1, 65537: 1, 6700417: 1}\n"
    );
    assert!(!out.stdout_truncated);
}

#[test]
fn syntax_error_is_an_exception_with_traceback() {
    let out = run("def f(:\n    pass");
    match &out.status {
        Status::Exception { name, traceback } => {
            assert_eq!(name, "SyntaxError");
            assert!(traceback.contains("<string>"), "{traceback}");
            assert!(out.stderr.contains("SyntaxError"));
        }
        other => panic!("expected an exception, got {other:?}"),
    }
    assert_eq!(out.status.exit_code(), 1);
}

#[test]
fn runtime_exception_traceback_starts_at_user_code() {
    let out = run("def f():\n    return 1/0\nf()");
    let Status::Exception { name, traceback } = &out.status else {
        panic!("{:?}", out.status);
    };
    assert_eq!(name, "ZeroDivisionError");
    assert!(traceback.contains("line 2, in f"), "{traceback}");
    assert!(
        !traceback.contains("<start>") && !traceback.contains("<turn"),
        "{traceback}"
    );
}

#[test]
fn sys_exit_gives_its_code() {
    assert_eq!(
        run("import sys; sys.exit(3)").status,
        Status::Exit { code: 3 }
    );
    assert_eq!(run("import sys; sys.exit(0)").status, Status::Finished);
    assert_eq!(run("print('a'); exit()").status, Status::Finished);
    assert_eq!(run("exit(5)").status, Status::Exit { code: 5 });
    assert_eq!(
        run("raise SystemExit(700)").status,
        Status::Exit { code: 700 & 0xFF }
    );
    let out = run("import sys; sys.exit('bye')");
    assert_eq!(out.status, Status::Exit { code: 1 });
    assert_eq!(out.stderr, "bye\n");
}

#[test]
fn stdin_is_readable_and_empty_by_default() {
    let out = run("import sys; print(repr(sys.stdin.read()))");
    assert_eq!(out.stdout, "''\n");
    let limits = Limits {
        stdin: "3 4\n".into(),
        ..Limits::default()
    };
    let out = sandbox()
        .exec("a, b = map(int, input().split()); print(a * b)", &limits)
        .unwrap();
    assert_eq!(out.stdout, "12\n");
}

#[test]
fn fresh_randomness_per_call_and_replay_with_a_seed() {
    let code = "import random, numpy\nprint(random.random(), numpy.random.rand())";
    let a = run(code).stdout;
    let b = run(code).stdout;
    assert_ne!(a, b, "two fresh calls must not share random state");
    let seeded = Limits {
        seed: Some(42),
        ..Limits::default()
    };
    let c = sandbox().exec(code, &seeded).unwrap().stdout;
    let d = sandbox().exec(code, &seeded).unwrap().stdout;
    assert_eq!(c, d, "the same seed replays the same numbers");
    assert_ne!(a, c);
}

#[test]
fn sympys_own_generator_is_reseeded_too() {
    let code = "import sympy.core.random as sr\nprint(sr.rng.random(), sr.randint(0, 10**9))";
    assert_ne!(
        run(code).stdout,
        run(code).stdout,
        "sympy replays the snapshot's numbers"
    );
    let seeded = Limits {
        seed: Some(7),
        ..Limits::default()
    };
    let c = sandbox().exec(code, &seeded).unwrap();
    assert!(c.stderr.is_empty(), "{}", c.stderr);
    assert_eq!(c.stdout, sandbox().exec(code, &seeded).unwrap().stdout);
    // Its own seed: not `random`'s numbers over again.
    let both = "import random, sympy.core.random as sr\nprint(random.random() == sr.rng.random())";
    assert_eq!(run(both).stdout, "False\n");
}

#[test]
fn the_host_written_generator_states_are_fresh_independent_and_unused() {
    // Without a seed the host writes each generator's state (see `preseed`): every one differs
    // from call to call and from the others, and none has been drawn from yet.
    let code = "import random, sympy.core.random as sr, numpy as np\n\
                gens = [random._inst, sr.rng, sr._assumptions_rng]\n\
                n = np.random.mtrand._rand.get_state()\n\
                print([g.getstate()[1][-1] for g in gens], len({g.getstate() for g in gens}), \
                n[2], n[3], n[1][0] >> 31, n[1].tolist() == gens[0].getstate()[1][:-1])\n\
                print(random.gauss(0, 1) != random.gauss(0, 1), sr._assumptions_rng.random(), \
                np.random.standard_normal())";
    let a = run(code);
    assert_eq!(a.status, Status::Finished, "{}", a.stderr);
    let b = run(code);
    let (a1, a2) = a.stdout.split_once('\n').unwrap();
    assert_eq!(a1, "[624, 624, 624] 3 624 0 1 False", "{}", a.stdout);
    assert_eq!(b.stdout.split_once('\n').unwrap().0, a1);
    assert!(a2.starts_with("True "), "{a2}");
    assert_ne!(
        a2,
        b.stdout.split_once('\n').unwrap().1,
        "sympy's second generator replays"
    );
    // An explicit seed is CPython's own `random.seed`: the numbers any CPython gives.
    let seeded = Limits {
        seed: Some(7),
        ..Limits::default()
    };
    let out = sandbox()
        .exec("import random; print(random.random())", &seeded)
        .unwrap();
    assert_eq!(out.stdout, "0.32383276483316237\n");
}

#[test]
fn nothing_leaks_between_calls() {
    let first = run(
        "open('/leak.txt', 'w').write('x'); import os; os.makedirs('/tmp/d', exist_ok=True); X = 1; print('ok')",
    );
    assert_eq!(first.status, Status::Finished, "{}", first.stderr);
    let second = run(
        "import os\nprint(os.path.exists('/leak.txt'), os.path.exists('/tmp/d'), 'X' in globals())",
    );
    assert_eq!(second.stdout, "False False False\n");
}

#[test]
fn main_namespace_is_clean() {
    let out = run("print(sorted(k for k in globals() if not k.startswith('__')))");
    assert_eq!(out.stdout, "[]\n");
    let out = run("print(__name__)");
    assert_eq!(out.stdout, "__main__\n");
}

#[test]
fn eight_threads_fifty_calls_each_get_their_own_answers() {
    let handles: Vec<_> = (0..8u64)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..50u64 {
                    let out = sandbox()
                        .exec(&format!("print({t} * 1000 + {i})"), &Limits::default())
                        .unwrap();
                    assert_eq!(out.status, Status::Finished);
                    assert_eq!(out.stdout, format!("{}\n", t * 1000 + i));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}
