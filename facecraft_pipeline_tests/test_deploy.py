"""Deployment settings that can't run here, validated: Kubernetes step specs (GPU for training steps),
the Dagster instance YAMLs, docker-compose.yml, the Dockerfile, the webserver's loopback default."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import dagster as dg
import pytest
import yaml

from facecraft_pipeline.deploy import GPU_RESOURCE, K8S_CONFIG_TAG, K8sSettings, k8s_config

PROJECT = Path(__file__).resolve().parents[1]
TRAINING = {"gan_checkpoint", "wgan_gp_checkpoint", "lora_weights", "sample_galleries"}


def step_job_spec(op_tags):
    """The Kubernetes Job dagster-k8s builds for a step with these op tags."""
    from dagster_k8s.job import DagsterK8sJobConfig, UserDefinedDagsterK8sConfig, construct_dagster_k8s_job, get_user_defined_k8s_config

    config = DagsterK8sJobConfig(job_image="facecraft:test", dagster_home="/opt/dagster/home", image_pull_policy="IfNotPresent")
    user = get_user_defined_k8s_config(op_tags)
    assert isinstance(user, UserDefinedDagsterK8sConfig)
    return construct_dagster_k8s_job(config, ["dagster", "api", "execute_step"], "dagster-step-x", user_defined_k8s_config=user)


def test_training_steps_ask_for_a_gpu_and_other_steps_do_not():
    from facecraft_pipeline.definitions import defs

    job = defs.resolve_job_def("everything")
    seen = set()
    for node in job.graph.nodes:
        spec = step_job_spec(node.definition.tags).to_dict()
        container = spec["spec"]["template"]["spec"]["containers"][0]
        resources = container["resources"]
        if node.name in TRAINING:
            seen.add(node.name)
            assert resources["limits"][GPU_RESOURCE] == "1", node.name
            assert resources["requests"][GPU_RESOURCE] == "1", node.name
            tolerations = spec["spec"]["template"]["spec"]["tolerations"]
            assert any(t["key"] == GPU_RESOURCE for t in tolerations)
        else:  # other assets, and the asset checks' ops (no tags: the launcher's defaults, no GPU)
            assert GPU_RESOURCE not in (resources.get("limits") or {}), node.name
            assert GPU_RESOURCE not in (resources.get("requests") or {}), node.name
            if K8S_CONFIG_TAG not in node.definition.tags:
                continue
            assert resources["requests"]["cpu"] == "1"
        assert container["env_from"][0]["secret_ref"]["name"] == "facecraft-secrets"
        assert not any(re.search("PASSWORD|TOKEN|SECRET", e["name"]) for e in container.get("env") or [])
    assert seen == TRAINING


def test_each_run_of_the_face_shards_backfill_gets_a_faces_pod_sized_by_the_environment():
    from facecraft_pipeline.definitions import build_definitions

    job = build_definitions(env={"FACECRAFT_K8S_CPU": "8", "FACECRAFT_K8S_MEMORY": "16Gi"}).resolve_job_def("extract_face_shards")
    container = step_job_spec(job.tags).to_dict()["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["requests"] == {"cpu": "8", "memory": "16Gi"}  # no GPU
    assert job.partitions_def.get_partition_keys() == [f"{n:02d}" for n in range(16)]


def test_gpu_count_and_node_selector_come_from_the_environment():
    settings = K8sSettings.from_env({"FACECRAFT_K8S_GPUS": "2", "FACECRAFT_K8S_GPU_NODE_SELECTOR": "gpu=h100,pool=train"})
    config = k8s_config(True, settings)
    assert config["container_config"]["resources"]["limits"][GPU_RESOURCE] == "2"
    assert config["pod_spec_config"]["node_selector"] == {"gpu": "h100", "pool": "train"}
    with pytest.raises(ValueError):
        K8sSettings.from_env({"FACECRAFT_K8S_GPUS": "0"})


def test_each_asset_declares_its_pool_group_retry_policy_and_step_tags():
    from facecraft_pipeline.definitions import build_assets
    from facecraft_pipeline.retries import RETRY_POLICY

    by_name = {a.key.to_user_string(): a for a in build_assets()}
    for name, asset in by_name.items():
        assert asset.op.retry_policy == RETRY_POLICY and K8S_CONFIG_TAG in asset.op.tags, name
        assert (asset.op.pool == "accelerator") == (name in TRAINING), name
    assert by_name["gan_checkpoint"].group_names_by_key[dg.AssetKey("gan_checkpoint")] == "training"
    assert by_name["sample_galleries"].group_names_by_key[dg.AssetKey("sample_galleries")] == "evaluation"


def test_on_a_cpu_the_trainers_share_no_pool_so_the_executor_may_run_them_side_by_side():
    from facecraft_pipeline.definitions import build_assets

    for asset in build_assets(env={"FACECRAFT_DEVICE": "cpu"}):
        name = asset.key.to_user_string()
        assert asset.op.pool is None, name
        if name in TRAINING:  # a Kubernetes pod of a training step still asks for a GPU
            assert GPU_RESOURCE in json.loads(asset.op.tags[K8S_CONFIG_TAG])["container_config"]["resources"]["limits"]


def test_the_longest_training_starts_first_when_steps_wait_for_a_process():
    from facecraft_pipeline.definitions import build_assets

    priority = {a.key.to_user_string(): int(a.op.tags.get("dagster/priority", 0)) for a in build_assets()}
    assert priority["wgan_gp_checkpoint"] > priority["gan_checkpoint"] > priority["lora_weights"] == priority["sample_galleries"]


def _instance_config(name: str) -> dict:
    return yaml.safe_load((PROJECT / "deploy" / name).read_text())


def test_the_k8s_instance_yaml_is_valid_for_dagster_k8s_and_takes_secrets_from_a_secret(monkeypatch):
    monkeypatch.setenv("FACECRAFT_K8S_NAMESPACE", "facecraft")
    monkeypatch.setenv("FACECRAFT_IMAGE", "registry.example/facecraft:1")
    from dagster_k8s import K8sRunLauncher

    config = _instance_config("dagster-k8s.yaml")
    launcher = config["run_launcher"]
    assert launcher["class"] == "K8sRunLauncher"

    @dg.op(config_schema=K8sRunLauncher.config_type())  # the launcher's own schema, checked by Dagster's config system
    def k8s_run_launcher() -> None: ...

    @dg.job
    def launcher_config() -> None:
        k8s_run_launcher()

    processed = dg.validate_run_config(launcher_config, {"ops": {"k8s_run_launcher": {"config": launcher["config"]}}})
    assert processed["ops"]["k8s_run_launcher"]["config"]["job_namespace"] == "facecraft"  # {env: FACECRAFT_K8S_NAMESPACE}
    with pytest.raises(dg.DagsterInvalidConfigError):
        dg.validate_run_config(launcher_config, {"ops": {"k8s_run_launcher": {"config": {**launcher["config"], "no_such_key": 1}}}})
    assert config["storage"]["postgres"]["postgres_db"]["password"] == {"env": "DAGSTER_PG_PASSWORD"}
    assert "facecraft-secrets" in launcher["config"]["env_secrets"]


def test_the_postgres_instance_yaml_reads_every_connection_setting_from_the_environment():
    db = _instance_config("dagster-postgres.yaml")["storage"]["postgres"]["postgres_db"]
    for key in ("hostname", "port", "db_name", "username", "password"):
        assert set(db[key]) == {"env"}, key


def test_docker_compose_parses_and_wires_the_five_services_without_baked_secrets():
    compose = yaml.safe_load((PROJECT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "mlflow", "codelocation", "webserver", "daemon"} <= set(services)
    assert services["codelocation"]["build"]["dockerfile"] == "Dockerfile"
    gpu = services["codelocation"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["capabilities"] == ["gpu"]
    text = (PROJECT / "docker-compose.yml").read_text()
    for line in text.splitlines():
        if re.search(r"PASSWORD\s*[:=]", line):
            assert "${" in line, f"secret must come from the environment: {line.strip()}"
    ports = [p for s in services.values() for p in s.get("ports", [])]
    assert ports and all(str(p).startswith("127.0.0.1:") for p in ports), ports
    mlflow_cmd = " ".join(map(str, services["mlflow"]["command"]))
    assert "--artifacts-destination" in mlflow_cmd and "postgresql" not in mlflow_cmd  # the store URI holds a password: env, not argv
    assert services["mlflow"]["environment"]["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql+psycopg2://facecraft:${FACECRAFT_PG_PASSWORD")


def test_dockerfile_uses_a_cuda_runtime_the_pinned_environment_and_serves_grpc():
    text = (PROJECT / "Dockerfile").read_text()
    assert re.search(r"^FROM nvidia/cuda:[\w.\-]+runtime", text, re.M)
    assert "constraints.txt" in text and "dagster" in text and "code-server" in text or "api grpc" in text
    assert not re.search(r"^(ENV|ARG)\s+\S*(PASSWORD|TOKEN|SECRET)", text, re.M | re.I)
    ignored = (PROJECT / ".dockerignore").read_text().split()
    assert "data/" in ignored or "data" in ignored


def test_the_web_ui_binds_loopback_unless_told_otherwise():
    makefile = (PROJECT / "Makefile").read_text()
    (dev,) = [line for line in makefile.splitlines() if "dagster dev" in line]
    assert "-h $(DAGSTER_HOST)" in dev or "--host $(DAGSTER_HOST)" in dev
    assert re.search(r"^DAGSTER_HOST \?= 127\.0\.0\.1$", makefile, re.M)


def test_definitions_load_on_the_postgres_instance_settings():
    """The code location loads unchanged with the deploy settings (no storage touched at import)."""
    os.environ.setdefault("DAGSTER_PG_PASSWORD", "unused")
    from facecraft_pipeline.definitions import defs

    assert {s.name for s in defs.sensors} >= {"new_photos_sensor", "failed_run_report"}


def test_the_kubernetes_job_runs_one_pod_per_step_and_takes_the_deploy_run_config():
    from facecraft_pipeline.definitions import defs

    job = defs.resolve_job_def("everything_k8s")
    assert job.executor_def.name == "k8s"
    run_config = yaml.safe_load((PROJECT / "deploy" / "k8s-run-config.yaml").read_text())
    assert dg.validate_run_config(job, run_config)
    step_tags = {node.name: node.definition.tags for node in job.graph.nodes}
    assert GPU_RESOURCE in step_tags["lora_weights"][K8S_CONFIG_TAG] and GPU_RESOURCE not in step_tags["photos"][K8S_CONFIG_TAG]


@pytest.mark.slow
def test_the_code_location_serves_over_grpc_as_the_image_runs_it(tmp_path):
    """The Dockerfile's CMD (`dagster code-server start -m facecraft_pipeline.definitions`), on loopback: it answers
    the standard gRPC health check, and a workspace pointing at it (as the webserver's does) loads without errors."""
    import subprocess
    import sys
    import time

    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from facecraft_pipeline_tests.infra.servers import free_port

    port = free_port()
    bin_dir = Path(sys.executable).parent
    env = dict(os.environ, DAGSTER_HOME=str(tmp_path), FACECRAFT_HOME=str(tmp_path / "data"))
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(yaml.safe_dump({"load_from": [{"grpc_server": {"host": "127.0.0.1", "port": port, "location_name": "facecraft"}}]}))
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(bin_dir / "dagster"), "code-server", "start", "-h", "127.0.0.1", "-p", str(port), "-m", "facecraft_pipeline.definitions"],
                                stdout=out, stderr=subprocess.STDOUT, env=env, cwd=PROJECT)
    try:
        deadline = time.monotonic() + 180
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            while True:
                assert proc.poll() is None, log.read_text()[-3000:]
                try:
                    answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service="DagsterApi"), timeout=5)
                    if answer.status == health_pb2.HealthCheckResponse.SERVING:
                        break
                except grpc.RpcError:
                    pass
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(1)
        check = subprocess.run([str(bin_dir / "dagster"), "definitions", "validate", "-w", str(workspace)],
                               capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
        assert check.returncode == 0, check.stdout[-3000:] + check.stderr[-3000:]
        assert "facecraft" in check.stdout + check.stderr
    finally:  # the server stops on SIGTERM; a loaded machine may take its time, a stuck one is killed
        proc.terminate()
        try:
            proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
