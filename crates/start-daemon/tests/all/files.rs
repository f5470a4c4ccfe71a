//! The file budget through the daemon: a guest that floods descriptors, entries or bytes meets
//! its own limit, and other tenants (a session on the same worker, the next execution) can
//! still open and write files; the ceilings cap what a client asks for.

use start_sandbox::{FileLimits, Limit, Limits, SessionLimits, Status, TurnLimits};

use crate::daemon;

const OPEN_ONE: &str =
    "with open('probe', 'w') as f:\n    f.write('ok')\nprint(open('probe').read())";

#[test]
fn a_descriptor_flood_does_not_reach_other_tenants() {
    let daemon = daemon(&["--workers", "1"]);
    let tenant = daemon.client();
    let session = tenant.open_session(&SessionLimits::default()).unwrap();
    tenant
        .run(&session, "held = open('mine', 'w')", &TurnLimits::default())
        .unwrap();

    let flooder = daemon.client();
    for _ in 0..3 {
        let out = flooder
            .exec(
                "import os\nfds = []\nwhile True:\n    fds.append(os.open('f', os.O_CREAT | os.O_RDONLY))",
                &Limits::default(),
            )
            .unwrap();
        assert_eq!(
            out.status,
            Status::LimitExceeded {
                limit: Limit::OpenFiles
            },
            "{out:#?}"
        );
    }
    // The next execution and the session on the same worker open files as usual.
    let next = daemon.client().exec(OPEN_ONE, &Limits::default()).unwrap();
    assert_eq!(next.stdout, "ok\n", "{next:#?}");
    let turn = tenant
        .run(
            &session,
            &format!("held.write('still here')\nheld.flush()\n{OPEN_ONE}"),
            &TurnLimits::default(),
        )
        .unwrap();
    assert_eq!(turn.stdout, "ok\n", "{turn:#?}");
    assert_eq!(daemon.client().stats().unwrap().worker_restarts, 0);
}

#[test]
fn floods_of_entries_and_bytes_are_limits_and_the_worker_goes_on() {
    let daemon = daemon(&["--workers", "1"]);
    let client = daemon.client();
    let entries = client
        .exec(
            "i = 0\nwhile True:\n    open(f'f{i}', 'w').close()\n    i += 1",
            &Limits::default(),
        )
        .unwrap();
    assert_eq!(
        entries.status,
        Status::LimitExceeded {
            limit: Limit::Scratch
        },
        "{entries:#?}"
    );
    let bytes = client
        .exec(
            "with open('big', 'wb') as f:\n    while True:\n        f.write(b'x' * (1 << 20))",
            &Limits {
                files: FileLimits {
                    scratch_bytes: 16 << 20,
                    ..FileLimits::default()
                },
                ..Limits::default()
            },
        )
        .unwrap();
    assert_eq!(
        bytes.status,
        Status::LimitExceeded {
            limit: Limit::Scratch
        },
        "{bytes:#?}"
    );
    let next = client.exec(OPEN_ONE, &Limits::default()).unwrap();
    assert_eq!(next.stdout, "ok\n", "{next:#?}");
    assert_eq!(client.stats().unwrap().worker_restarts, 0);
}

#[test]
fn the_file_ceilings_cap_what_a_client_asks_for() {
    let daemon = daemon(&[
        "--workers",
        "1",
        "--max-scratch-entries",
        "20",
        "--max-open-files",
        "10",
    ]);
    let generous = Limits {
        files: FileLimits {
            scratch_entries: 100_000,
            open_files: 4096,
            ..FileLimits::default()
        },
        ..Limits::default()
    };
    let client = daemon.client();
    let entries = client
        .exec(
            "import os\nfor i in range(100):\n    try:\n        open(f'f{i}', 'w').close()\n    except OSError:\n        break\nprint(len(os.listdir('.')))",
            &generous,
        )
        .unwrap();
    assert_eq!(entries.stdout, "20\n", "{entries:#?}");
    let open = client
        .exec(
            "fs = []\ntry:\n    while True:\n        fs.append(open('f', 'w'))\nexcept OSError:\n    print(len(fs))",
            &generous,
        )
        .unwrap();
    assert_eq!(open.stdout, "10\n", "{open:#?}");
}
