//! The cluster files in `deploy/`: the Kubernetes manifests pass `kubernetes-validate` (strict,
//! against a pinned Kubernetes version), the Slurm scripts pass `bash -n`, the pieces agree
//! with each other (the Job's shard count, the Service it calls, the server's probe), and every
//! `start` command they run parses with the real CLI.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use start_daemon::testutil::TestCommand;

use crate::venv::venv;

/// The validator, pinned (its schemas come with it).
const KUBERNETES_VALIDATE: &str = "kubernetes-validate==1.37.0";
/// The Kubernetes version the manifests are checked against.
const KUBERNETES_VERSION: &str = "1.37.0";

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

fn manifests() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(deploy().join("k8s"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "{files:?}");
    files
}

fn validate(files: &[PathBuf]) -> std::process::Output {
    let venv = venv("kubernetes-validate", &[KUBERNETES_VALIDATE], &[]);
    Command::new(venv.bin("kubernetes-validate"))
        .args(["--strict", "-k", KUBERNETES_VERSION])
        .args(files)
        .output()
        .unwrap()
}

/// Every document of the manifests, as JSON (read by PyYAML, which the validator brings).
fn documents() -> Vec<Value> {
    let venv = venv("kubernetes-validate", &[KUBERNETES_VALIDATE], &[]);
    let out = TestCommand::new(venv.python())
        .args([
            "-c",
            "import json, sys, yaml\n\
             print(json.dumps([d for f in sys.argv[1:] for d in yaml.safe_load_all(open(f))]))",
        ])
        .args(manifests())
        .assert_success();
    serde_json::from_slice(&out.stdout).unwrap()
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

/// The `start ...` commands of a shell script: each line that runs `start` (after an
/// optional `exec`), with its backslash-continued lines.
fn start_commands(script: &str) -> Vec<String> {
    let mut commands = Vec::new();
    let mut lines = script.lines();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        let Some(rest) = trimmed
            .strip_prefix("exec start ")
            .or_else(|| trimmed.strip_prefix("start "))
        else {
            continue;
        };
        let mut command = format!("start {rest}");
        let mut last = line;
        while last.trim_end().ends_with('\\') {
            let Some(next) = lines.next() else { break };
            command.push('\n');
            command.push_str(next);
            last = next;
        }
        commands.push(command);
    }
    commands
}

/// Runs `command` with bash (`set -u`: every variable it uses must be in `vars`), `start`
/// being the real CLI with `--help` appended: clap parses every argument, values included,
/// before it prints the help, so an unknown flag or a bad value fails.
fn parses(command: &str, vars: &[(&str, &str)]) -> std::process::Output {
    let shim = "start() { \"$START_BIN\" \"$@\" --help >/dev/null; }\n";
    let mut bash = Command::new("bash");
    bash.args(["-u", "-c", &format!("{shim}{command}")])
        .env("START_BIN", env!("CARGO_BIN_EXE_start"));
    for (k, v) in vars {
        bash.env(k, v);
    }
    bash.output().unwrap()
}

fn assert_parses(command: &str, vars: &[(&str, &str)]) {
    let out = parses(command, vars);
    assert!(
        out.status.success(),
        "{command}\nfailed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The check can fail: the same command with a flag `start` lacks, or a bad shard, does.
    let bogus = format!("{command} --no-such-flag");
    assert!(!parses(&bogus, vars).status.success(), "{bogus}");
}

#[test]
fn manifests_pass_the_schema_check() {
    let files = manifests();
    let out = validate(&files);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    for resource in [
        "job/start-infer",
        "job/start-merge",
        "deployment/vllm",
        "service/vllm",
        "deployment/sglang",
        "service/sglang",
        "persistentvolumeclaim/start-data",
        "deployment/startd",
        "service/startd",
        "horizontalpodautoscaler/startd",
        "poddisruptionbudget/startd",
    ] {
        assert!(
            stdout.contains(&format!("passed for resource {resource} ")),
            "{resource}: {stdout}{stderr}"
        );
    }
    assert!(!stdout.contains("did not validate"), "{stdout}");

    // The validator rejects what a cluster would: a misspelt field under --strict.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    let job = std::fs::read_to_string(deploy().join("k8s/infer-job.yaml")).unwrap();
    std::fs::write(&bad, job.replace("completionMode:", "completionMod:")).unwrap();
    let out = validate(&[bad]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("'completionMod' was unexpected"));
}

#[test]
fn the_pieces_agree_and_every_start_command_parses() {
    let docs = documents();
    let job = find(&docs, "Job", "start-infer");
    assert_eq!(job["spec"]["completionMode"], "Indexed");
    let completions = job["spec"]["completions"].as_u64().unwrap();
    let container = &job["spec"]["template"]["spec"]["containers"][0];
    let shards = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "SHARDS")
        .and_then(|e| e["value"].as_str())
        .unwrap();
    assert_eq!(
        shards,
        completions.to_string(),
        "SHARDS must equal completions"
    );
    let script = container["args"][0].as_str().unwrap();
    let commands = start_commands(script);
    assert_eq!(commands.len(), 1, "{script}");
    let infer = &commands[0];
    assert!(infer.starts_with("start infer"), "{infer}");
    assert!(
        infer.contains("--shard \"$JOB_COMPLETION_INDEX/$SHARDS\""),
        "{infer}"
    );
    assert!(
        infer.contains("shard-$JOB_COMPLETION_INDEX-of-$SHARDS.jsonl"),
        "{infer}"
    );
    assert_parses(infer, &[("JOB_COMPLETION_INDEX", "3"), ("SHARDS", shards)]);
    let bad_shard = parses(infer, &[("JOB_COMPLETION_INDEX", "9"), ("SHARDS", shards)]);
    assert!(!bad_shard.status.success(), "shard 9/8 must not parse");

    // The Job calls the vLLM Service, which selects the vLLM pods, which are probed on the
    // models endpoint and serve what the Job asks for.
    assert!(infer.contains("--model http://vllm:8000/v1"), "{infer}");
    let service = find(&docs, "Service", "vllm");
    assert_eq!(service["spec"]["ports"][0]["port"], 8000);
    let deployment = find(&docs, "Deployment", "vllm");
    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    for (k, v) in service["spec"]["selector"].as_object().unwrap() {
        assert_eq!(&labels[k], v, "the Service selects the vLLM pods");
    }
    let server = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(server["readinessProbe"]["httpGet"]["path"], "/v1/models");
    assert_eq!(server["resources"]["limits"]["nvidia.com/gpu"], "2");
    let args: Vec<&str> = server["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(args[0], "Qwen/QwQ-32B");
    for flag in ["--max-model-len=32768", "--enable-prefix-caching"] {
        assert!(args.contains(&flag), "{args:?}");
    }
    let served = args
        .iter()
        .find_map(|a| a.strip_prefix("--served-model-name="))
        .unwrap();
    assert!(infer.contains(&format!("--model-name {served}")), "{infer}");

    let merge_job = find(&docs, "Job", "start-merge");
    let script = merge_job["spec"]["template"]["spec"]["containers"][0]["args"][0]
        .as_str()
        .unwrap();
    let merge = start_commands(script);
    assert_eq!(merge.len(), 1, "{script}");
    assert!(
        merge[0].contains(&format!("shard-*-of-{shards}.jsonl")),
        "{}",
        merge[0]
    );
    assert_parses(&merge[0], &[]);
}

#[test]
fn the_startd_fleet_is_probed_served_scaled_and_protected() {
    let docs = documents();
    let deployment = find(&docs, "Deployment", "startd");
    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    let server = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(server["command"][0], "startd");
    for probe in ["readinessProbe", "livenessProbe", "startupProbe"] {
        assert_eq!(server[probe]["httpGet"]["path"], "/health", "{probe}");
        assert_eq!(server[probe]["httpGet"]["port"], "http", "{probe}");
    }
    let port = &server["ports"][0];
    assert_eq!(port["name"], "http");
    let args: Vec<&str> = server["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let listen = format!("--http=0.0.0.0:{}", port["containerPort"]);
    assert!(args.contains(&listen.as_str()), "{args:?}");
    // A pod address is not loopback: startd refuses it without the flag.
    assert!(args.contains(&"--http-allow-remote"), "{args:?}");
    // One worker per requested core.
    let cpus = server["resources"]["requests"]["cpu"].as_str().unwrap();
    assert!(
        args.contains(&format!("--workers={cpus}").as_str()),
        "{args:?}"
    );
    assert!(server["resources"]["requests"]["memory"].is_string());
    let service = find(&docs, "Service", "startd");
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "http");
    for (k, v) in service["spec"]["selector"].as_object().unwrap() {
        assert_eq!(&labels[k], v, "the Service selects the startd pods");
    }
    let hpa = find(&docs, "HorizontalPodAutoscaler", "startd");
    assert_eq!(hpa["spec"]["scaleTargetRef"]["name"], "startd");
    assert_eq!(hpa["spec"]["scaleTargetRef"]["kind"], "Deployment");
    let pdb = find(&docs, "PodDisruptionBudget", "startd");
    for (k, v) in pdb["spec"]["selector"]["matchLabels"].as_object().unwrap() {
        assert_eq!(&labels[k], v, "the PDB covers the startd pods");
    }
    // The pod has time to finish its requests after SIGTERM.
    let grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        .as_u64()
        .unwrap();
    let shutdown: u64 = args
        .iter()
        .find_map(|a| a.strip_prefix("--shutdown-grace="))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        shutdown < grace,
        "--shutdown-grace {shutdown} s within {grace} s"
    );
}

#[test]
fn slurm_scripts_are_valid_bash_and_run_real_commands() {
    let slurm = deploy().join("slurm");
    let infer = slurm.join("infer-array.sh");
    let merge = slurm.join("merge.sh");
    for script in [&infer, &merge] {
        let out = Command::new("bash").arg("-n").arg(script).output().unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = std::fs::read_to_string(&infer).unwrap();
    assert!(text.contains("#SBATCH --array=0-"), "an array job");
    let commands = start_commands(&text);
    assert_eq!(commands.len(), 1, "{commands:?}");
    assert!(
        commands[0].contains("--shard \"$SLURM_ARRAY_TASK_ID/$SHARDS\""),
        "{}",
        commands[0]
    );
    let vars = [
        ("SLURM_ARRAY_TASK_ID", "3"),
        ("SHARDS", "8"),
        ("PORT", "20003"),
        ("DATA", "/data"),
    ];
    assert_parses(&commands[0], &vars);
    let text = std::fs::read_to_string(&merge).unwrap();
    let commands = start_commands(&text);
    assert_eq!(commands.len(), 1, "{commands:?}");
    assert!(commands[0].starts_with("start merge"), "{}", commands[0]);
    assert_parses(&commands[0], &[("DATA", "/data")]);
}

/// `line` without a trailing shell comment (a `#` after a blank, outside quotes).
fn strip_comment(line: &str) -> &str {
    let (mut single, mut double) = (false, false);
    let mut previous = ' ';
    for (i, c) in line.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && previous.is_whitespace() => return line[..i].trim_end(),
            _ => {}
        }
        previous = c;
    }
    line
}

/// The lines of the ```sh blocks of a Markdown file, without their comments.
fn shell_blocks(markdown: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in markdown.lines() {
        match (inside, line.trim_start()) {
            (false, fence) if fence.starts_with("```sh") => inside = true,
            (true, fence) if fence.starts_with("```") => inside = false,
            (true, _) => {
                out.push_str(strip_comment(line));
                out.push('\n');
            }
            _ => {}
        }
    }
    out
}

#[test]
fn every_start_command_of_the_readmes_parses() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut checked = 0;
    for readme in [root.join("README.md"), deploy().join("README.md")] {
        let text = std::fs::read_to_string(&readme).unwrap();
        for command in start_commands(&shell_blocks(&text)) {
            // `start rft ... -- INFER ARGS`: both halves, each as the command it is.
            match command.split_once(" -- ") {
                Some((rft, infer)) => {
                    assert_parses(rft.trim_end_matches(['\\', ' ']), &[]);
                    let infer = infer.trim_start_matches(['\\', '\n', ' ']);
                    assert_parses(&format!("start infer {infer}"), &[]);
                }
                None => assert_parses(&command, &[]),
            }
            checked += 1;
        }
    }
    assert!(checked >= 15, "only {checked} commands found");
}
