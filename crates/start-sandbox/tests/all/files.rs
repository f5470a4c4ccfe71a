//! The file budget ([`FileLimits`]): scratch bytes, scratch entries and open descriptors, each
//! hit, each refused with the POSIX error a real disk would give and reported as a limit; and
//! descriptors never outlive the execution that opened them.

use start_sandbox::{FileLimits, Limit, Limits, Outcome, SessionLimits, Status, TurnLimits};

use crate::sandbox;

fn with_files(files: FileLimits, code: &str) -> Outcome {
    let limits = Limits {
        files,
        ..Limits::default()
    };
    sandbox().exec(code, &limits).expect("host failure")
}

fn small(scratch_bytes: u64, scratch_entries: u32, open_files: u32) -> FileLimits {
    FileLimits {
        scratch_bytes,
        scratch_entries,
        open_files,
    }
}

fn assert_limit(out: &Outcome, limit: Limit) {
    assert_eq!(out.status, Status::LimitExceeded { limit }, "{out:#?}");
}

#[test]
fn writing_past_the_byte_budget_fails_with_enospc_and_is_a_limit() {
    let code =
        "with open('big', 'wb') as f:\n    for _ in range(100):\n        f.write(b'x' * (1 << 20))";
    let out = with_files(small(8 << 20, 100, 16), code);
    assert_limit(&out, Limit::Scratch);
    assert!(
        out.stderr.contains("No space left on device"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_guest_that_catches_enospc_finishes_and_its_file_stops_at_the_budget() {
    let code = "import errno, os\ntry:\n    with open('big', 'wb', buffering=0) as f:\n        for _ in range(100):\n            f.write(b'x' * (1 << 20))\nexcept OSError as e:\n    print('refused', errno.errorcode[e.errno])\nprint(os.path.getsize('big') <= (4 << 20))";
    let out = with_files(small(4 << 20, 100, 16), code);
    assert_eq!(out.status, Status::Finished, "{out:#?}");
    assert_eq!(out.stdout, "refused ENOSPC\nTrue\n");
}

#[test]
fn holes_made_by_seeking_and_growth_by_truncate_count_as_bytes() {
    let code = "import errno, os\nfd = os.open('sparse', os.O_WRONLY | os.O_CREAT)\n\
                try:\n    os.lseek(fd, 1 << 40, 0)\n    os.write(fd, b'x')\nexcept OSError as e:\n    print('seek', errno.errorcode[e.errno])\n\
                try:\n    os.pwrite(fd, b'x', 1 << 41)\nexcept OSError as e:\n    print('pwrite', errno.errorcode[e.errno])\n\
                try:\n    os.ftruncate(fd, 1 << 42)\nexcept OSError as e:\n    print('truncate', errno.errorcode[e.errno])\n\
                print(os.fstat(fd).st_size)";
    let out = with_files(small(1 << 20, 100, 16), code);
    assert_eq!(out.status, Status::Finished, "{out:#?}");
    assert_eq!(
        out.stdout,
        "seek ENOSPC\npwrite ENOSPC\ntruncate ENOSPC\n0\n"
    );
}

#[test]
fn removing_or_truncating_a_file_gives_its_bytes_back() {
    // Three rounds of 3 MiB under a 4 MiB budget: each round frees the last.
    let code = "import os\nfor i in range(3):\n    with open('f', 'wb') as f:\n        f.write(b'x' * (3 << 20))\n    if i == 1:\n        os.remove('f')\nprint('ok')";
    let out = with_files(small(4 << 20, 100, 16), code);
    assert_eq!(out.status, Status::Finished, "{out:#?}");
    assert_eq!(out.stdout, "ok\n");
}

#[test]
fn creating_entries_past_the_budget_is_a_limit_and_removal_gives_them_back() {
    let files = "for i in range(1000):\n    open(f'f{i}', 'w').close()";
    assert_limit(&with_files(small(1 << 20, 50, 16), files), Limit::Scratch);
    // Deep trees made by descriptor count each level.
    let deep = "import os\nfd = os.open('.', os.O_RDONLY)\nfor _ in range(1000):\n    os.mkdir('d', dir_fd=fd)\n    nxt = os.open('d', os.O_RDONLY, dir_fd=fd)\n    os.close(fd)\n    fd = nxt";
    assert_limit(&with_files(small(1 << 20, 50, 16), deep), Limit::Scratch);
    let churn = "import os\nfor i in range(200):\n    open('t', 'w').close()\n    os.remove('t')\n    os.mkdir('d')\n    os.rmdir('d')\nprint('ok')";
    let out = with_files(small(1 << 20, 5, 16), churn);
    assert_eq!(out.stdout, "ok\n", "{out:#?}");
}

#[test]
fn opening_past_the_descriptor_cap_fails_with_emfile_and_closing_frees() {
    let hold = "fs = [open('f', 'w') for _ in range(100)]";
    let out = with_files(small(1 << 20, 100, 20), hold);
    assert_limit(&out, Limit::OpenFiles);
    // wasi-libc's text for EMFILE.
    assert!(
        out.stderr.contains("No file descriptors available"),
        "{}",
        out.stderr
    );
    let cycle = "for _ in range(500):\n    open('f', 'w').close()\nprint('ok')";
    assert_eq!(with_files(small(1 << 20, 100, 20), cycle).stdout, "ok\n");
}

#[test]
fn the_default_descriptor_cap_is_hit_before_the_host_runs_out() {
    let out = start_sandbox::testutil::run("fs = [open('f', 'w') for _ in range(100000)]");
    assert_limit(&out, Limit::OpenFiles);
}

/// Descriptors this process holds now.
fn host_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn a_finished_guests_descriptors_are_closed_before_the_next_execution() {
    // The guest opens files and never closes them; its instance may be kept for reuse, and
    // must not keep them.
    let leak = "import os\nfs = [os.open(f'f{i}', os.O_CREAT | os.O_WRONLY) for i in range(200)]\nprint(len(fs))";
    for _ in 0..5 {
        let out = start_sandbox::testutil::run(leak);
        assert_eq!(out.stdout, "200\n", "{out:#?}");
    }
    // Other tests run at once in this process, so compare with a generous margin: five
    // executions that each left 200 open would hold 1000.
    let held = host_fds();
    assert!(held < 700, "the process holds {held} descriptors");
}

#[test]
fn a_sessions_budget_spans_its_turns() {
    let limits = SessionLimits {
        files: small(3 << 20, 100, 16),
        ..SessionLimits::default()
    };
    let mut session = start_sandbox::Session::open(sandbox(), limits).unwrap();
    let write = "with open(f'f{n}', 'wb') as f:\n    f.write(b'x' * (1 << 20))";
    for n in 0..3 {
        let out = session
            .run(&format!("n = {n}\n{write}"), &TurnLimits::default())
            .unwrap();
        assert_eq!(out.status, Status::Finished, "turn {n}: {out:#?}");
    }
    let out = session
        .run(&format!("n = 3\n{write}"), &TurnLimits::default())
        .unwrap();
    assert_limit(&out, Limit::Scratch);
    let out = session
        .run(
            &format!("import os\nos.remove('f0')\nn = 4\n{write}"),
            &TurnLimits::default(),
        )
        .unwrap();
    assert_eq!(out.status, Status::Finished, "{out:#?}");
}
