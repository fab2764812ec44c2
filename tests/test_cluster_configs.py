"""Static checks of the cluster configurations in cluster/ (no network, no cluster).

The ray-up configs are validated against Ray's own schema and the KubeRay manifest through
Ray's own RayCluster-to-autoscaler translation, so a renamed or misspelt field fails here.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "cluster"
RAY_UP = ["aws.yaml", "gcp.yaml"]
YAMLS = [*RAY_UP, "kuberay.yaml"]
ALL_FILES = [*YAMLS, "slurm.sbatch", "README.md"]
CLOSED_PORTS = (8265, 6379, 10001)


def load(name: str):
    return yaml.safe_load((CLUSTER / name).read_text())


def test_all_files_exist():
    for name in ALL_FILES:
        assert (CLUSTER / name).is_file(), name


@pytest.mark.parametrize("name", YAMLS)
def test_yaml_parses(name):
    assert isinstance(load(name), dict)


# --- ray up configs ---------------------------------------------------------------------

@pytest.mark.parametrize("name", RAY_UP)
def test_ray_up_matches_ray_schema(name):
    jsonschema = pytest.importorskip("jsonschema")
    import ray.autoscaler

    schema = json.loads(
        (Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())
    jsonschema.validate(load(name), schema)


@pytest.mark.parametrize("name", RAY_UP)
def test_ray_up_accepted_by_rays_own_loader(name):
    """What `ray up` does first (merge the provider's defaults, validate); offline."""
    util = pytest.importorskip("ray.autoscaler._private.util")
    util.validate_config(util.prepare_config(load(name)))


@pytest.mark.parametrize("name", RAY_UP)
def test_ray_up_node_types(name):
    cfg = load(name)
    types = cfg["available_node_types"]
    assert cfg["head_node_type"] in types
    head = types[cfg["head_node_type"]]
    assert head["resources"].get("GPU", 0) == 0, "the head is a CPU node"
    gpu = [t for n, t in types.items()
           if n != cfg["head_node_type"] and t["resources"].get("GPU", 0) >= 1]
    assert len(gpu) == 1
    assert gpu[0]["min_workers"] == 0
    assert 1 <= gpu[0]["max_workers"] <= cfg["max_workers"]
    assert cfg["auth"]["ssh_user"]
    assert cfg["provider"]["region"]


@pytest.mark.parametrize("name", RAY_UP)
def test_ray_up_installs_with_make_setup_and_runs_from_venv(name):
    cfg = load(name)
    setup = "\n".join(cfg["setup_commands"])
    assert "git clone https://github.com/<org>/theorydl.git" in setup
    assert "make setup TORCH_SPEC=torch" in setup
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        starts = [c for c in cfg[key] if "ray start" in c]
        assert starts, key
        for cmd in cfg[key]:
            assert ".venv/bin" in cmd and "RAY_AUTH_MODE=token" in cmd, cmd


@pytest.mark.parametrize("name", RAY_UP)
def test_ray_up_dashboard_local_only(name):
    cfg = load(name)
    head = " ".join(cfg["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head
    assert "0.0.0.0" not in head


@pytest.mark.parametrize("name", RAY_UP)
def test_ray_up_token_mounted_from_local_path(name):
    mounts = load(name)["file_mounts"]
    assert mounts.get("~/.ray/auth_token", "").startswith("~"), mounts


def _opens_to_world(rule: dict, port: int) -> bool:
    lo, hi = rule.get("FromPort", -1), rule.get("ToPort", -1)
    covers = rule.get("IpProtocol") == "-1" or lo == -1 or lo <= port <= hi
    ranges = [r.get("CidrIp") for r in rule.get("IpRanges", [])]
    ranges += [r.get("CidrIpv6") for r in rule.get("Ipv6Ranges", [])]
    return covers and any(r in ("0.0.0.0/0", "::/0") for r in ranges)


def test_aws_security_group_keeps_ray_ports_closed():
    rules = load("aws.yaml")["provider"].get("security_group", {}).get("IpPermissions", [])
    for rule in rules:
        for port in CLOSED_PORTS:
            assert not _opens_to_world(rule, port), rule


def test_gcp_has_no_firewall_rules():
    text = (CLUSTER / "gcp.yaml").read_text()
    cfg = load("gcp.yaml")
    assert "firewall" not in json.dumps(cfg).lower()
    assert "sourceRanges" not in text


def test_opens_to_world_detects_a_bad_rule():
    bad = {"FromPort": 8265, "ToPort": 8265, "IpProtocol": "tcp",
           "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
    assert _opens_to_world(bad, 8265)
    assert not _opens_to_world({**bad, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}, 8265)


# --- KubeRay ------------------------------------------------------------------------------

def test_kuberay_raycluster_shape():
    cr = load("kuberay.yaml")
    assert cr["apiVersion"] == "ray.io/v1"
    assert cr["kind"] == "RayCluster"
    spec = cr["spec"]
    assert spec["enableInTreeAutoscaling"] is True
    head = spec["headGroupSpec"]
    assert head.get("serviceType", "ClusterIP") == "ClusterIP"
    assert head["rayStartParams"]["dashboard-host"] in ("127.0.0.1", "0.0.0.0")
    gpu_groups = [g for g in spec["workerGroupSpecs"]
                  if any("nvidia.com/gpu" in c["resources"].get("limits", {})
                         for c in g["template"]["spec"]["containers"])]
    assert len(gpu_groups) == 1
    g = gpu_groups[0]
    assert g["minReplicas"] == 0 and g["maxReplicas"] >= 1
    for c in g["template"]["spec"]["containers"]:
        assert c["resources"]["limits"]["nvidia.com/gpu"] == 1
        assert c["resources"]["requests"]


def test_kuberay_token_from_secret_everywhere():
    spec = load("kuberay.yaml")["spec"]
    groups = [spec["headGroupSpec"], *spec["workerGroupSpecs"]]
    envs = [c.get("env", []) for g in groups for c in g["template"]["spec"]["containers"]]
    envs.append(spec["autoscalerOptions"]["env"])
    for env in envs:
        by_name = {e["name"]: e for e in env}
        assert by_name["RAY_AUTH_MODE"]["value"] == "token"
        token = by_name["RAY_AUTH_TOKEN"]
        assert "value" not in token
        assert token["valueFrom"]["secretKeyRef"]["name"]


def test_kuberay_nothing_exposed():
    text = (CLUSTER / "kuberay.yaml").read_text()
    docs = list(yaml.safe_load_all(text))
    assert all(d.get("kind") not in ("Ingress", "Service") for d in docs)
    assert "LoadBalancer" not in json.dumps(docs) and "NodePort" not in json.dumps(docs)


def test_kuberay_as_rays_autoscaler_reads_it():
    mod = pytest.importorskip("ray.autoscaler._private.kuberay.autoscaling_config")
    cfg = mod._derive_autoscaling_config_from_ray_cr(load("kuberay.yaml"))
    gpu = [t for t in cfg["available_node_types"].values()
           if t["resources"].get("GPU", 0) >= 1]
    assert len(gpu) == 1 and gpu[0]["min_workers"] == 0 and gpu[0]["max_workers"] >= 1


def test_kuberay_image_built_with_make_setup():
    text = (CLUSTER / "kuberay.yaml").read_text()
    assert "make setup" in text and "dvc repro" in text and "kubectl" in text


# --- SLURM --------------------------------------------------------------------------------

@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_slurm_script_syntax():
    proc = subprocess.run(["bash", "-n", str(CLUSTER / "slurm.sbatch")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_slurm_script_content():
    text = (CLUSTER / "slurm.sbatch").read_text()
    for directive in ("--nodes=", "--gpus-per-node=", "--cpus-per-task=", "--time="):
        assert re.search(rf"^#SBATCH {directive}", text, re.M), directive
    assert "make setup" in text
    assert re.search(r"ray start --head\b.*\\\n.*--dashboard-host=127\.0\.0\.1", text)
    assert "--block &" in text
    assert re.search(r"ray start --address=\"\$head_ip:\$port\"", text)
    assert re.search(r"^trap cleanup EXIT$", text, re.M)
    assert "ray stop" in text
    assert re.search(r'^RAY_ADDRESS="\$address" dvc repro$', text, re.M)
    assert "export RAY_AUTH_MODE=token" in text
    assert "secrets.token_hex(32)" in text


# --- every file ---------------------------------------------------------------------------

SECRET_PATTERNS = {
    "AWS access key id": re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    "64-hex token": re.compile(r"\b[0-9a-fA-F]{64}\b"),
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "AWS secret": re.compile(r"aws_secret_access_key\s*[:=]\s*\S{20,}", re.I),
    "inline Ray token": re.compile(r"RAY_AUTH_TOKEN\s*[:=]\s*[\"']?[0-9A-Za-z]{20,}"),
    "GCP key file": re.compile(r"\"private_key_id\"\s*:"),
}


@pytest.mark.parametrize("name", ALL_FILES)
def test_no_literal_secrets(name):
    text = (CLUSTER / name).read_text()
    for what, pattern in SECRET_PATTERNS.items():
        assert not pattern.search(text), f"{name}: looks like a {what}"


def test_secret_patterns_catch_examples():
    assert SECRET_PATTERNS["AWS access key id"].search("key: AKIAABCDEFGHIJKLMNOP")
    assert SECRET_PATTERNS["64-hex token"].search("t=" + "ab" * 32)
    assert SECRET_PATTERNS["inline Ray token"].search("RAY_AUTH_TOKEN=abcdefghijklmnopqrstuvwxyz")


@pytest.mark.parametrize("name", ALL_FILES)
def test_no_port_opened_to_world(name):
    text = (CLUSTER / name).read_text()
    # A CIDR "anywhere" may only appear nowhere near the Ray ports' rules: none at all here.
    assert "0.0.0.0/0" not in text and "::/0" not in text


def test_readme_covers_every_setup():
    text = (CLUSTER / "README.md").read_text()
    for needle in ("ray up cluster/aws.yaml", "ray down cluster/aws.yaml", "cluster/gcp.yaml",
                   "kubectl apply -f cluster/kuberay.yaml", "kubectl delete",
                   "sbatch cluster/slurm.sbatch", "RAY_ADDRESS", "dvc repro", "dvc push",
                   "run.store", "ray dashboard", "port-forward", "make setup"):
        assert needle in text, needle
