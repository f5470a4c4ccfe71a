//! The file budget through the daemon: a guest that floods descriptors, entries or bytes meets
//! its own limit, and other tenants (a session on the same worker, the next execution) can
//! still open and write files; the ceilings cap what a client asks for.

use start_sandbox::{FileLimits, Limit, Limits, SessionLimits, Status, TurnLimits};

use crate::daemon;

const OPEN_ONE: &str = "with open('probe', 'w') as f:\n    f.write('ok')\nprint(open('probe').read())";

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
