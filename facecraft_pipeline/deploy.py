"""How each step runs: its retry policy, its Kubernetes pod (`dagster-k8s/config` tags), the Kubernetes job.

Training and sampling steps (pool "accelerator", group "training") ask for a GPU
(`nvidia.com/gpu`) and may land on GPU nodes; every other step asks for CPU and memory only.
`step_options(group, pool, env)` is what each asset gets in its decorator when it is built (`assets/recipe.py`:
group, pool, retry policy, op tags); dagster-k8s (run launcher and `k8s_job_executor`) reads the tags when it
builds a step's pod. No Kubernetes client here.

Sizes come from the environment the Definitions are built with (the code location's), so one image
serves any cluster:

    FACECRAFT_K8S_GPUS=1                  GPUs per training step (the nvidia.com/gpu limit)
    FACECRAFT_K8S_GPU_CPU=4               CPU request of a training step
    FACECRAFT_K8S_GPU_MEMORY=32Gi         memory request and limit of a training step
    FACECRAFT_K8S_CPU=1                   CPU request of every other step
    FACECRAFT_K8S_MEMORY=4Gi              memory request and limit of every other step
    FACECRAFT_K8S_GPU_NODE_SELECTOR=k=v   optional node selector for training pods (k=v,k2=v2)
    FACECRAFT_K8S_SECRET=facecraft-secrets  Kubernetes Secret whose keys become every step's env

Secrets (PostgreSQL password, MLflow credentials, webhook URL) reach pods only through that
Secret (`envFrom`), never through an image or a tag.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from facecraft_pipeline.env import env_str
from facecraft_pipeline.retries import retry_policy_from_env

K8S_CONFIG_TAG = "dagster-k8s/config"
GPU_RESOURCE = "nvidia.com/gpu"
ACCELERATOR_POOL = "accelerator"
TRAINING_GROUP = "training"


def _selector(text: str) -> dict[str, str]:
    pairs = [p.split("=", 1) for p in text.split(",") if "=" in p]
    return {k.strip(): v.strip() for k, v in pairs if k.strip()}


@dataclass(frozen=True)
class K8sSettings:
    gpus: int = 1
    gpu_cpu: str = "4"
    gpu_memory: str = "32Gi"
    cpu: str = "1"
    memory: str = "4Gi"
    gpu_node_selector: Mapping[str, str] = field(default_factory=dict)
    secret: str = "facecraft-secrets"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> K8sSettings:
        base = cls()
        gpus = int(env.get("FACECRAFT_K8S_GPUS", base.gpus))
        if gpus < 1:
            raise ValueError(f"FACECRAFT_K8S_GPUS must be at least 1, got {gpus}")
        return cls(
            gpus=gpus,
            gpu_cpu=env.get("FACECRAFT_K8S_GPU_CPU", base.gpu_cpu),
            gpu_memory=env.get("FACECRAFT_K8S_GPU_MEMORY", base.gpu_memory),
            cpu=env.get("FACECRAFT_K8S_CPU", base.cpu),
            memory=env.get("FACECRAFT_K8S_MEMORY", base.memory),
            gpu_node_selector=_selector(env.get("FACECRAFT_K8S_GPU_NODE_SELECTOR", "")),
            secret=env.get("FACECRAFT_K8S_SECRET", base.secret),
        )


def needs_accelerator(pool: str | None, group: str | None) -> bool:
    """Training and sampling steps: the accelerator pool or the training group."""
    return pool == ACCELERATOR_POOL or group == TRAINING_GROUP


def k8s_config(accelerator: bool, settings: K8sSettings | None = None) -> dict[str, Any]:
    """The `dagster-k8s/config` value for one step: container resources, pod placement, env from the Secret."""
    s = settings or K8sSettings()
    if accelerator:
        requests = {"cpu": s.gpu_cpu, "memory": s.gpu_memory, GPU_RESOURCE: str(s.gpus)}
        limits = {"memory": s.gpu_memory, GPU_RESOURCE: str(s.gpus)}
    else:
        requests = {"cpu": s.cpu, "memory": s.memory}
        limits = {"memory": s.memory}
    config: dict[str, Any] = {
        "container_config": {
            "resources": {"requests": requests, "limits": limits},
            "env_from": [{"secret_ref": {"name": s.secret, "optional": True}}],
        },
    }
    if accelerator:
        pod: dict[str, Any] = {"tolerations": [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}]}
        if s.gpu_node_selector:
            pod["node_selector"] = dict(s.gpu_node_selector)
        config["pod_spec_config"] = pod
    return config


def step_tags(pool: str | None, group: str | None, settings: K8sSettings | None = None) -> dict[str, str]:
    """Op tags for a step in `pool` / `group` (tag values are strings: the config as JSON)."""
    return {K8S_CONFIG_TAG: json.dumps(k8s_config(needs_accelerator(pool, group), settings), sort_keys=True)}


def step_options(group: str, pool: str | None, env: Mapping[str, str]) -> dict[str, Any]:
    """The `@dg.asset` keyword arguments of a step in `group` (and `pool`): the retry policy and the
    Kubernetes tags, sized by the environment the Definitions are built with. With FACECRAFT_DEVICE=cpu
    there is no accelerator to queue for: the executor's process limit shares the cores instead."""
    tags = step_tags(pool, group, K8sSettings.from_env(env))
    on_cpu = env_str("FACECRAFT_DEVICE", "auto", env).lower() == "cpu"
    return {"group_name": group, "pool": None if on_cpu else pool, "retry_policy": retry_policy_from_env(env), "op_tags": tags}


def everything_on_kubernetes(selection: dg.AssetSelection) -> dg.UnresolvedAssetJobDefinition:
    """The whole graph with one Kubernetes pod per step (dagster-k8s' k8s_job_executor): each step's
    pod gets its op's `dagster-k8s/config` tags, so training steps get their GPU and nothing else does.
    Launch it with deploy/k8s-run-config.yaml under the K8sRunLauncher (deploy/dagster-k8s.yaml)."""
    from dagster_k8s import k8s_job_executor

    return dg.define_asset_job(
        "everything_k8s",
        selection=selection,
        executor_def=k8s_job_executor,
        description="The whole graph on Kubernetes, one pod per step (GPU only for training and sampling steps).",
    )
