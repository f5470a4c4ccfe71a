//! Whatever a guest leaves in its scratch folder is removed after the call, however deep: a
//! tree deeper than any recursive removal survives (tens of thousands of levels) neither
//! crashes the host nor stays on disk.

use std::time::{Duration, Instant};

use start_sandbox::{FileLimits, Limits, Status};

use crate::sandbox;

/// A name no other test's guest uses, to find this test's leftovers in the temporary folder.
const PROBE: &str = "deep_cleanup_probe";

fn leftovers() -> Vec<std::path::PathBuf> {
    std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .map(|e| e.path().join(PROBE))
        .filter(|p| p.exists())
        .collect()
}

#[test]
fn a_15000_deep_tree_is_removed_and_the_host_survives() {
    let code = format!(
        "import os\n\
         os.mkdir('{PROBE}')\n\
         fd = os.open('{PROBE}', os.O_RDONLY)\n\
         for i in range(15000):\n\
         \x20   os.mkdir('d', dir_fd=fd)\n\
         \x20   nfd = os.open('d', os.O_RDONLY, dir_fd=fd)\n\
         \x20   os.close(fd)\n\
         \x20   fd = nfd\n\
         open('bottom', 'w', opener=lambda p, f: os.open(p, f, dir_fd=fd)).write('x')\n\
         print('deep')\n"
    );
    let limits = Limits {
        wall_time: Duration::from_secs(60),
        // Past the default entry budget, which would stop the tree at 4096 levels.
        files: FileLimits {
            scratch_entries: 20_000,
            ..FileLimits::default()
        },
        ..Limits::default()
    };
    // A crashed earlier run may have left its own; only this run's count.
    let before = leftovers();
    let out = sandbox().exec(&code, &limits).expect("host failure");
    assert_eq!(out.status, Status::Finished, "{}", out.stderr);
    assert_eq!(out.stdout, "deep\n");
    // Teardown may run in the background: give it time, then nothing may be left.
    let deadline = Instant::now() + Duration::from_secs(30);
    let new = || -> Vec<_> {
        leftovers()
            .into_iter()
            .filter(|p| !before.contains(p))
            .collect()
    };
    while !new().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(new().is_empty(), "left on disk: {:?}", new());
    // The host (this test binary) is alive and the sandbox still serves.
    let next = sandbox().exec("print(1)", &Limits::default()).unwrap();
    assert_eq!(next.stdout, "1\n");
}

#[test]
fn release_for_exit_leaves_no_scratch_folder() {
    let root = tempfile::tempdir().unwrap();
    let sandbox = start_sandbox::Sandbox::new(start_sandbox::SandboxOptions {
        scratch_root: Some(root.path().to_path_buf()),
        max_instances: 32,
        ..Default::default()
    })
    .expect("sandbox");
    for _ in 0..3 {
        let out = sandbox
            .exec("open('f', 'w').write('x')", &Limits::default())
            .expect("host failure");
        assert_eq!(out.status, Status::Finished, "{}", out.stderr);
    }
    // The template and the restored instances each hold a folder until now.
    assert!(std::fs::read_dir(root.path()).unwrap().count() > 0);
    sandbox.release_for_exit();
    let left: Vec<_> = std::fs::read_dir(root.path()).unwrap().flatten().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
