#!/usr/bin/env python3
"""Generates the AdmissionReview bodies in this directory from the example pods.

Each body is what kube-apiserver (v1.33) POSTs to a mutating webhook for the CREATE of
the pod: the object is decoded with the v1 defaults applied, the ServiceAccount,
DefaultTolerationSeconds and Priority admission plugins have run (token volume and
mounts, tolerations, priority), and keys are in the order of the Go structs, as
encoding/json writes them. Regenerate with `python3 tests/data/admission/generate.py`.
"""
import json
import pathlib

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[3]
OUT = pathlib.Path(__file__).resolve().parent

# (example, review file, uid, token volume suffix, field manager, user)
CASES = [
    ("examples/gitlab-runner/build-pod.yaml", "gitlab-runner-build-pod.json",
     "2b8a6c1e-3f4d-4e5a-9b6c-7d8e9f0a1b2c", "x7k2p", "gitlab-runner",
     ("system:serviceaccount:gitlab-ci:gitlab-runner", "6a3e0d52-6f0e-4f8c-a8f1-3c1d5b2e9a47", "gitlab-ci")),
    ("examples/woodpecker/step-pod.yaml", "woodpecker-step-pod.json",
     "8c0f3a9d-1e2b-4c5d-8e7f-9a0b1c2d3e4f", "q9m4t", "woodpecker",
     ("system:serviceaccount:woodpecker:woodpecker-agent", "0f4b1c2d-9e8a-4b7c-b6d5-e4f3a2b1c0d9", "woodpecker")),
    ("examples/tekton/taskrun-pod.yaml", "tekton-taskrun-pod.json",
     "e4d3c2b1-a0f9-4e8d-b7c6-5a4b3c2d1e0f", "h3w8z", "controller",
     ("system:serviceaccount:tekton-pipelines:tekton-pipelines-controller",
      "3c9d7e1a-2b4f-4a6c-8d0e-1f2a3b4c5d6e", "tekton-pipelines")),
]

POD_SPEC_ORDER = [
    "volumes", "initContainers", "containers", "ephemeralContainers", "restartPolicy",
    "terminationGracePeriodSeconds", "activeDeadlineSeconds", "dnsPolicy", "nodeSelector",
    "serviceAccountName", "serviceAccount", "automountServiceAccountToken", "nodeName",
    "hostNetwork", "hostPID", "hostIPC", "shareProcessNamespace", "securityContext",
    "imagePullSecrets", "hostname", "subdomain", "affinity", "schedulerName", "tolerations",
    "hostAliases", "priorityClassName", "priority", "dnsConfig", "readinessGates",
    "runtimeClassName", "enableServiceLinks", "preemptionPolicy", "overhead",
    "topologySpreadConstraints", "setHostnameAsFQDN", "os", "hostUsers",
]
CONTAINER_ORDER = [
    "name", "image", "command", "args", "workingDir", "ports", "envFrom", "env", "resources",
    "resizePolicy", "restartPolicy", "volumeMounts", "volumeDevices", "livenessProbe",
    "readinessProbe", "startupProbe", "lifecycle", "terminationMessagePath",
    "terminationMessagePolicy", "imagePullPolicy", "securityContext", "stdin", "stdinOnce", "tty",
]
META_ORDER = ["name", "generateName", "namespace", "uid", "resourceVersion", "generation",
              "creationTimestamp", "labels", "annotations", "ownerReferences", "finalizers",
              "managedFields"]


def ordered(d, order):
    out = {k: d[k] for k in order if k in d}
    out.update({k: v for k, v in d.items() if k not in out})
    return out


def fields_v1(value):
    """The FieldsV1 set of an applied object, as the field manager records it."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if isinstance(v, list) and v and all(isinstance(i, dict) and "name" in i for i in v):
                out["f:" + k] = {"k:" + json.dumps({"name": i["name"]}, separators=(",", ":")):
                                 {".": {}, **fields_v1({x: y for x, y in i.items()})} for i in v}
            elif isinstance(v, dict) and v:
                out["f:" + k] = {".": {}, **fields_v1(v)} if k in ("labels", "annotations") else fields_v1(v)
            else:
                out["f:" + k] = {}
        return out
    return {}


def default_container(c, token_mount):
    c = dict(c)
    for p in c.get("ports", []):
        p.setdefault("protocol", "TCP")
    c.setdefault("resources", {})
    c["volumeMounts"] = c.get("volumeMounts", []) + [token_mount]
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    tag = c["image"].rsplit("/", 1)[-1]
    latest = ":" not in tag or tag.endswith(":latest")
    c.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
    return ordered(c, CONTAINER_ORDER)


def api_server_pod(pod, suffix, manager):
    pod = json.loads(json.dumps(pod))
    meta, spec = pod["metadata"], pod["spec"]
    managed = {
        "manager": manager, "operation": "Update", "apiVersion": "v1", "time": "2025-06-02T09:14:07Z",
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:metadata": fields_v1({k: v for k, v in meta.items() if k in ("labels", "annotations")}),
                     "f:spec": fields_v1(spec)},
    }
    meta = dict(meta, creationTimestamp=None, managedFields=[managed])
    token = f"kube-api-access-{suffix}"
    mount = {"name": token, "readOnly": True, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}
    spec["volumes"] = spec.get("volumes", []) + [{"name": token, "projected": {"sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1",
                                                                     "fieldPath": "metadata.namespace"}}]}},
    ], "defaultMode": 420}}]
    for key in ("initContainers", "containers"):
        if key in spec:
            spec[key] = [default_container(c, mount) for c in spec[key]]
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("serviceAccountName", "default")
    spec["serviceAccount"] = spec["serviceAccountName"]
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    spec["tolerations"] = [
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
         "tolerationSeconds": 300},
    ]
    spec.setdefault("priority", 0)
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    return {"kind": "Pod", "apiVersion": "v1", "metadata": ordered(meta, META_ORDER),
            "spec": ordered(spec, POD_SPEC_ORDER), "status": {}}


def review(pod, uid, user):
    username, user_uid, sa_namespace = user
    return {
        "kind": "AdmissionReview",
        "apiVersion": "admission.k8s.io/v1",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "name": pod["metadata"]["name"],
            "namespace": pod["metadata"]["namespace"],
            "operation": "CREATE",
            "userInfo": {
                "username": username,
                "uid": user_uid,
                "groups": ["system:serviceaccounts", f"system:serviceaccounts:{sa_namespace}",
                           "system:authenticated"],
                "extra": {"authentication.kubernetes.io/credential-id": ["JTI=5f0c2a4e-8b1d-4e7a-9c3f-2d6b8a1e4c70"]},
            },
            "object": pod,
            "oldObject": None,
            "dryRun": False,
            "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"},
        },
    }


for example, name, uid, suffix, manager, user in CASES:
    source = yaml.safe_load((ROOT / example).read_text())
    body = review(api_server_pod(source, suffix, manager), uid, user)
    (OUT / name).write_text(json.dumps(body, indent=2) + "\n")
    print(f"wrote {name}")
