"""The Kubernetes API emulator, driven by the official ``kubernetes`` python client."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import pytest
from kubernetes import client, watch

from testkit.kubeapi import KubeEmulator

from .conftest import create_executor

GROUP, VERSION, PLURAL = "core.spinkube.dev", "v1alpha1", "spinapps"
APPLY = "application/apply-patch+yaml"


def spinapp(name: str, namespace: str, labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    """A SpinApp spin-operator's webhook admits: an executor of the namespace (the ``namespace``
    fixture creates it) and ``replicas`` > 0 unless autoscaled."""
    defaults: dict[str, Any] = {} if spec.get("enableAutoscaling") else {"replicas": 1}
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "SpinApp",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
        "spec": {"executor": "containerd-shim-spin", "image": f"registry.local/{name}:1", **defaults, **spec},
    }


def apply(custom: client.CustomObjectsApi, body: dict[str, Any], manager: str, force: bool = False,
          dry_run: str | None = None) -> tuple[Any, int]:
    """Server-side apply a SpinApp; returns (object or None, HTTP status)."""
    kwargs: dict[str, Any] = {"field_manager": manager, "force": force, "_content_type": APPLY}
    if dry_run:
        kwargs["dry_run"] = dry_run
    data, status, _ = custom.patch_namespaced_custom_object_with_http_info(
        GROUP, VERSION, body["metadata"]["namespace"], PLURAL, body["metadata"]["name"], body, **kwargs
    )
    return data, status


def get_app(custom: client.CustomObjectsApi, namespace: str, name: str) -> dict[str, Any]:
    return custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)


def status_body(exc: client.ApiException) -> dict[str, Any]:
    return json.loads(exc.body)


def http(emulator: KubeEmulator, method: str, path: str, body: Any = None,
         headers: dict[str, str] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(emulator.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


# ------------------------------------------------------------------------------------ namespaces


def test_namespaces_can_be_created_listed_and_deleted(core: client.CoreV1Api, emu_request: Any) -> None:
    created = core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="ns-lifecycle")))
    assert created.status.phase == "Active"
    assert created.metadata.labels["kubernetes.io/metadata.name"] == "ns-lifecycle"
    names = [ns.metadata.name for ns in core.list_namespace().items]
    assert {"default", "kube-system", "ns-lifecycle"} <= set(names)

    # Like the real server, namespace deletion answers with the Namespace, now Terminating.
    status, body = emu_request("DELETE", "/api/v1/namespaces/ns-lifecycle")
    assert (status, body["kind"], body["status"]["phase"]) == (200, "Namespace", "Terminating")
    with pytest.raises(client.ApiException) as exc:
        core.read_namespace("ns-lifecycle")
    assert exc.value.status == 404


def test_creating_in_a_missing_namespace_is_404_namespace_not_found(core: client.CoreV1Api) -> None:
    with pytest.raises(client.ApiException) as exc:
        core.create_namespaced_config_map("no-such-ns", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="c")))
    assert exc.value.status == 404
    assert status_body(exc.value)["message"] == 'namespaces "no-such-ns" not found'


def test_deleting_a_namespace_deletes_its_objects(core: client.CoreV1Api, custom: client.CustomObjectsApi) -> None:
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="ns-cascade")))
    core.create_namespaced_config_map("ns-cascade", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="c")))
    create_executor(custom, "ns-cascade")
    apply(custom, spinapp("app", "ns-cascade"), "faasops")
    core.delete_namespace("ns-cascade")
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="ns-cascade")))
    try:
        assert core.list_namespaced_config_map("ns-cascade").items == []
        assert custom.list_namespaced_custom_object(GROUP, VERSION, "ns-cascade", PLURAL)["items"] == []
    finally:
        core.delete_namespace("ns-cascade")


# ------------------------------------------------------------------------------------ CRUD


def test_create_answers_201_then_409_already_exists(core: client.CoreV1Api, namespace: str) -> None:
    cm = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="settings"), data={"a": "1"})
    created, status, _ = core.create_namespaced_config_map_with_http_info(namespace, cm)
    assert status == 201
    assert created.metadata.uid and created.metadata.creation_timestamp
    assert int(created.metadata.resource_version) > 0

    with pytest.raises(client.ApiException) as exc:
        core.create_namespaced_config_map(namespace, cm)
    assert exc.value.status == 409
    body = status_body(exc.value)
    assert body["reason"] == "AlreadyExists"
    assert body["message"] == 'configmaps "settings" already exists'


def test_get_of_a_missing_object_is_404_with_a_status_body(custom: client.CustomObjectsApi, namespace: str) -> None:
    with pytest.raises(client.ApiException) as exc:
        get_app(custom, namespace, "ghost")
    body = status_body(exc.value)
    assert (exc.value.status, body["kind"], body["reason"]) == (404, "Status", "NotFound")
    assert body["message"] == 'spinapps.core.spinkube.dev "ghost" not found'
    assert body["details"] == {"name": "ghost", "group": GROUP, "kind": "spinapps"}


def test_put_with_a_stale_resource_version_is_409_conflict(core: client.CoreV1Api, namespace: str) -> None:
    cm = core.create_namespaced_config_map(namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="cfg"), data={"v": "1"}))
    stale_version = cm.metadata.resource_version
    cm.data = {"v": "2"}
    updated = core.replace_namespaced_config_map("cfg", namespace, cm)
    assert int(updated.metadata.resource_version) > int(stale_version)

    cm.data = {"v": "3"}
    cm.metadata.resource_version = stale_version
    with pytest.raises(client.ApiException) as exc:
        core.replace_namespaced_config_map("cfg", namespace, cm)
    assert exc.value.status == 409
    assert status_body(exc.value)["message"].startswith('Operation cannot be fulfilled on configmaps "cfg"')
    assert core.read_namespaced_config_map("cfg", namespace).data == {"v": "2"}


def test_resource_versions_come_from_one_global_counter(core: client.CoreV1Api, namespace: str) -> None:
    first = core.create_namespaced_config_map(namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="a")))
    second = core.create_namespaced_secret(namespace, client.V1Secret(metadata=client.V1ObjectMeta(name="b")))
    assert int(second.metadata.resource_version) == int(first.metadata.resource_version) + 1


def test_merge_json_and_strategic_patches_change_built_in_objects(api_client: client.ApiClient, emu_request: Any,
                                                                  namespace: str) -> None:
    apps = client.AppsV1Api(api_client)
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:1"}, {"name": "sidecar", "image": "envoy:1"}]}}},
    }
    created = apps.create_namespaced_deployment(namespace, deployment)
    assert created.metadata.generation == 1

    # Strategic merge: containers merge by name, so the sidecar survives.
    apps.patch_namespaced_deployment("web", namespace, {"spec": {"template": {"spec": {"containers": [
        {"name": "web", "image": "nginx:2"}]}}}})
    containers = apps.read_namespaced_deployment("web", namespace).spec.template.spec.containers
    assert [(c.name, c.image) for c in containers] == [("web", "nginx:2"), ("sidecar", "envoy:1")]

    # JSON patch.
    apps.patch_namespaced_deployment("web", namespace, [{"op": "replace", "path": "/spec/replicas", "value": 3}])
    # JSON merge patch.
    status, _ = emu_request("PATCH", f"/apis/apps/v1/namespaces/{namespace}/deployments/web",
                            {"metadata": {"labels": {"tier": "edge"}}}, {"Content-Type": "application/merge-patch+json"})
    assert status == 200
    final = apps.read_namespaced_deployment("web", namespace)
    assert final.spec.replicas == 3
    assert final.metadata.labels == {"app": "web", "tier": "edge"}
    assert final.metadata.generation == 3  # two spec changes; the label change does not count


def test_strategic_merge_patch_on_a_custom_resource_is_415(emu_request: Any, custom: client.CustomObjectsApi,
                                                            namespace: str) -> None:
    apply(custom, spinapp("app", namespace), "faasops")
    status, body = emu_request(
        "PATCH", f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/spinapps/app", {"spec": {"replicas": 2}},
        {"Content-Type": "application/strategic-merge-patch+json"})
    assert status == 415
    assert body["reason"] == "UnsupportedMediaType"
    assert "application/merge-patch+json" in body["message"]


@pytest.fixture()
def emu_request(kube_emulator: KubeEmulator) -> Any:
    def run(method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        return http(kube_emulator, method, path, body, headers)

    return run


# ------------------------------------------------------------------------------------ selectors


@pytest.fixture()
def labelled_apps(custom: client.CustomObjectsApi, namespace: str) -> str:
    apply(custom, spinapp("a", namespace, {"function_id": "a", "tier": "web", "team": "x"}), "faasops")
    apply(custom, spinapp("b", namespace, {"function_id": "b", "tier": "worker"}), "faasops")
    apply(custom, spinapp("c", namespace, {"function_id": "c"}), "faasops")
    return namespace


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("function_id=a", ["a"]),
        ("function_id==b", ["b"]),
        ("tier!=web", ["b", "c"]),
        ("tier in (web,worker)", ["a", "b"]),
        ("tier notin (web)", ["b", "c"]),
        ("tier", ["a", "b"]),
        ("!tier", ["c"]),
        ("tier,team", ["a"]),
        ("tier=web,function_id in (a,b)", ["a"]),
    ],
)
def test_label_selector_operators_filter_lists(custom: client.CustomObjectsApi, labelled_apps: str,
                                               selector: str, expected: list[str]) -> None:
    items = custom.list_namespaced_custom_object(GROUP, VERSION, labelled_apps, PLURAL, label_selector=selector)["items"]
    assert [i["metadata"]["name"] for i in items] == expected


def test_an_invalid_label_selector_is_400(custom: client.CustomObjectsApi, labelled_apps: str) -> None:
    with pytest.raises(client.ApiException) as exc:
        custom.list_namespaced_custom_object(GROUP, VERSION, labelled_apps, PLURAL, label_selector="tier in (a")
    assert exc.value.status == 400


def test_field_selector_on_metadata_name_and_unknown_fields_rejected(custom: client.CustomObjectsApi,
                                                                    labelled_apps: str) -> None:
    items = custom.list_namespaced_custom_object(GROUP, VERSION, labelled_apps, PLURAL,
                                                 field_selector="metadata.name=b")["items"]
    assert [i["metadata"]["name"] for i in items] == ["b"]
    items = custom.list_cluster_custom_object(GROUP, VERSION, PLURAL,
                                              field_selector=f"metadata.namespace={labelled_apps},metadata.name!=b")["items"]
    assert [i["metadata"]["name"] for i in items] == ["a", "c"]
    with pytest.raises(client.ApiException) as exc:
        custom.list_namespaced_custom_object(GROUP, VERSION, labelled_apps, PLURAL, field_selector="spec.image=x")
    assert exc.value.status == 400
    assert status_body(exc.value)["message"] == (
        '"spec.image" is not a known field selector: only "metadata.name", "metadata.namespace"')


def test_cluster_wide_pages_cover_every_object_once(custom: client.CustomObjectsApi, core: client.CoreV1Api,
                                                    namespace: str) -> None:
    # "a" < "a-b" as namespaces, although "a/…" > "a-b/…" as strings.
    other = namespace + "-b"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=other)))
    create_executor(custom, other)
    try:
        for ns, name in [(namespace, "z"), (other, "c"), (namespace, "y")]:
            apply(custom, spinapp(name, ns, {"paged": namespace}), "faasops")
        seen: list[tuple[str, str]] = []
        token = None
        while True:
            kwargs = {"_continue": token} if token else {}
            page = custom.list_cluster_custom_object(GROUP, VERSION, PLURAL, label_selector=f"paged={namespace}",
                                                     limit=1, **kwargs)
            seen += [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in page["items"]]
            token = page["metadata"].get("continue")
            if not token:
                break
        assert seen == [(namespace, "y"), (namespace, "z"), (other, "c")]
    finally:
        core.delete_namespace(other)


def test_list_pages_with_limit_and_continue(custom: client.CustomObjectsApi, labelled_apps: str) -> None:
    first = custom.list_namespaced_custom_object(GROUP, VERSION, labelled_apps, PLURAL, limit=2)
    assert [i["metadata"]["name"] for i in first["items"]] == ["a", "b"]
    assert first["metadata"]["remainingItemCount"] == 1
    second = custom.list_namespaced_custom_object(GROUP, VERSION, labelled_apps, PLURAL, limit=2,
                                                  _continue=first["metadata"]["continue"])
    assert [i["metadata"]["name"] for i in second["items"]] == ["c"]
    assert "continue" not in second["metadata"]


def test_delete_collection_removes_only_matching_objects(custom: client.CustomObjectsApi, labelled_apps: str) -> None:
    custom.delete_collection_namespaced_custom_object(GROUP, VERSION, labelled_apps, PLURAL, label_selector="tier")
    remaining = custom.list_namespaced_custom_object(GROUP, VERSION, labelled_apps, PLURAL)["items"]
    assert [i["metadata"]["name"] for i in remaining] == ["c"]


# ------------------------------------------------------------------------------------ server-side apply


def test_server_side_apply_creates_with_201_and_updates_with_200(custom: client.CustomObjectsApi, namespace: str) -> None:
    _, status = apply(custom, spinapp("app", namespace, {"function_id": "f1"}, replicas=1), "faasops")
    assert status == 201
    first = get_app(custom, namespace, "app")
    assert first["metadata"]["generation"] == 1
    assert first["metadata"]["managedFields"] == [{
        "manager": "faasops", "operation": "Apply", "apiVersion": f"{GROUP}/{VERSION}",
        "time": first["metadata"]["managedFields"][0]["time"], "fieldsType": "FieldsV1",
        "fieldsV1": {"f:metadata": {"f:labels": {"f:function_id": {}}},
                     "f:spec": {"f:executor": {}, "f:image": {}, "f:replicas": {}}},
    }]

    unchanged, status = apply(custom, spinapp("app", namespace, {"function_id": "f1"}, replicas=1), "faasops")
    assert status == 200
    assert unchanged["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]

    changed, status = apply(custom, spinapp("app", namespace, {"function_id": "f1"}, replicas=2), "faasops")
    assert status == 200
    assert changed["spec"]["replicas"] == 2
    assert changed["metadata"]["generation"] == 2


def test_apply_requires_a_field_manager(emu_request: Any, namespace: str) -> None:
    status, body = emu_request("PATCH", f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/spinapps/x",
                               spinapp("x", namespace), {"Content-Type": APPLY})
    assert status == 400
    assert "fieldManager is required" in body["message"]


def test_conflicting_managers_get_409_with_the_real_message_and_force_takes_ownership(
        custom: client.CustomObjectsApi, namespace: str) -> None:
    apply(custom, spinapp("app", namespace, replicas=1), "faasops")
    custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "app", {"spec": {"replicas": 5}},
                                          field_manager="kubectl-edit")

    with pytest.raises(client.ApiException) as exc:
        apply(custom, spinapp("app", namespace, replicas=1), "faasops")
    body = status_body(exc.value)
    assert exc.value.status == 409
    assert body["reason"] == "Conflict"
    assert body["message"] == (
        'Apply failed with 1 conflict: conflict with "kubectl-edit" using core.spinkube.dev/v1alpha1: .spec.replicas')
    assert body["details"]["causes"] == [{"type": "FieldManagerConflict", "field": ".spec.replicas",
                                          "message": 'conflict with "kubectl-edit" using core.spinkube.dev/v1alpha1'}]

    apply(custom, spinapp("app", namespace, replicas=1), "faasops", force=True)
    live = get_app(custom, namespace, "app")
    assert live["spec"]["replicas"] == 1
    managers = {e["manager"]: e for e in live["metadata"]["managedFields"]}
    assert "kubectl-edit" not in managers  # its only field moved to the forcing applier
    assert "f:replicas" in managers["faasops"]["fieldsV1"]["f:spec"]


def test_two_appliers_of_the_same_value_share_a_field_without_conflict(custom: client.CustomObjectsApi,
                                                                       namespace: str) -> None:
    apply(custom, spinapp("app", namespace, replicas=2), "faasops")
    apply(custom, spinapp("app", namespace, replicas=2), "other-tool")
    with pytest.raises(client.ApiException) as exc:
        apply(custom, spinapp("app", namespace, replicas=3), "other-tool")
    assert status_body(exc.value)["message"] == (
        'Apply failed with 1 conflict: conflict with "faasops": .spec.replicas')


def test_apply_prunes_fields_the_manager_stopped_applying(custom: client.CustomObjectsApi, namespace: str) -> None:
    apply(custom, spinapp("app", namespace, {"function_id": "f", "old": "x"}, replicas=2,
                          podLabels={"function_id": "f"}), "faasops")
    apply(custom, spinapp("app", namespace, {"function_id": "f"}, enableAutoscaling=True), "faasops")
    live = get_app(custom, namespace, "app")
    assert live["metadata"]["labels"] == {"function_id": "f"}
    assert "replicas" not in live["spec"]
    assert "podLabels" not in live["spec"]


def test_apply_keeps_fields_that_another_manager_still_owns(custom: client.CustomObjectsApi, namespace: str) -> None:
    apply(custom, spinapp("app", namespace, {"a": "1", "b": "2"}), "faasops")
    custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "app",
                                          {"metadata": {"labels": {"b": "3"}}}, field_manager="kubectl-label")
    apply(custom, spinapp("app", namespace, {"a": "1"}), "faasops")
    assert get_app(custom, namespace, "app")["metadata"]["labels"] == {"a": "1", "b": "3"}


def test_a_partial_apply_is_validated_as_the_merged_object(custom: client.CustomObjectsApi, namespace: str) -> None:
    apply(custom, spinapp("app", namespace, replicas=1), "faasops")
    partial = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "SpinApp",
               "metadata": {"name": "app", "namespace": namespace}, "spec": {"podLabels": {"team": "a"}}}
    apply(custom, partial, "labeller")
    live = get_app(custom, namespace, "app")
    assert live["spec"]["podLabels"] == {"team": "a"}
    assert live["spec"]["image"] == "registry.local/app:1"
    owners = {e["manager"]: e["fieldsV1"] for e in live["metadata"]["managedFields"]}
    assert owners["labeller"] == {"f:spec": {"f:podLabels": {"f:team": {}}}}


def test_merge_patch_drift_is_recorded_as_an_update_manager(custom: client.CustomObjectsApi, namespace: str) -> None:
    apply(custom, spinapp("app", namespace, replicas=1), "faasops")
    custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "app", {"spec": {"image": "hacked:1"}},
                                          field_manager="kubectl-patch")
    entries = get_app(custom, namespace, "app")["metadata"]["managedFields"]
    drift = [e for e in entries if e["manager"] == "kubectl-patch"]
    assert drift and drift[0]["operation"] == "Update"
    assert drift[0]["fieldsV1"] == {"f:spec": {"f:image": {}}}
    owner = next(e for e in entries if e["manager"] == "faasops")
    assert "f:image" not in owner["fieldsV1"]["f:spec"]


def test_dry_run_apply_returns_the_result_without_persisting(custom: client.CustomObjectsApi, namespace: str) -> None:
    apply(custom, spinapp("app", namespace, replicas=1), "faasops")
    before = get_app(custom, namespace, "app")
    preview, status = apply(custom, spinapp("app", namespace, replicas=4), "faasops", dry_run="All")
    assert status == 200
    assert preview["spec"]["replicas"] == 4
    after = get_app(custom, namespace, "app")
    assert after == before

    created, status = apply(custom, spinapp("new", namespace), "faasops", dry_run="All")
    assert status == 201
    with pytest.raises(client.ApiException):
        get_app(custom, namespace, "new")


def test_spinapp_schema_rules_are_enforced(custom: client.CustomObjectsApi, namespace: str) -> None:
    incomplete = spinapp("bad", namespace)
    del incomplete["spec"]["image"]
    with pytest.raises(client.ApiException) as exc:
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, incomplete)
    assert exc.value.status == 422
    assert status_body(exc.value)["message"] == 'SpinApp.core.spinkube.dev "bad" is invalid: spec.image: Required value'

    with pytest.raises(client.ApiException) as exc:
        apply(custom, spinapp("auto", namespace, replicas=2, enableAutoscaling=True), "faasops")
    assert exc.value.status == 422
    assert "replicas cannot be set when autoscaling is enabled" in status_body(exc.value)["message"]


def test_unknown_fields_are_pruned_or_rejected_under_strict_validation(custom: client.CustomObjectsApi,
                                                                       namespace: str) -> None:
    body = spinapp("app", namespace, nodeSelector={"spot": "true"})
    with pytest.raises(client.ApiException) as exc:
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body, field_validation="Strict")
    assert exc.value.status == 400
    assert status_body(exc.value)["message"] == ".spec.nodeSelector: field not declared in schema"

    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body, field_validation="Ignore")
    assert "nodeSelector" not in get_app(custom, namespace, "app")["spec"]


# ------------------------------------------------------------------------------------ status


def test_status_is_ignored_on_the_main_resource_and_written_through_status(custom: client.CustomObjectsApi,
                                                                          namespace: str) -> None:
    body = spinapp("app", namespace, replicas=2)
    body["status"] = {"readyReplicas": 9}
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
    assert "status" not in get_app(custom, namespace, "app")

    custom.patch_namespaced_custom_object_status(GROUP, VERSION, namespace, PLURAL, "app",
                                                 {"status": {"readyReplicas": 2}})
    live = get_app(custom, namespace, "app")
    assert live["status"] == {"readyReplicas": 2}
    assert live["metadata"]["generation"] == 1  # status writes don't bump generation


def test_mark_spinapp_ready_sets_ready_status(kube_emulator: KubeEmulator, custom: client.CustomObjectsApi,
                                              namespace: str) -> None:
    apply(custom, spinapp("app", namespace, replicas=3), "faasops")
    kube_emulator.mark_spinapp_ready(namespace, "app")
    status = get_app(custom, namespace, "app")["status"]
    assert status["readyReplicas"] == 3
    assert {c["type"]: c["status"] for c in status["conditions"]} == {"Available": "True", "Progressing": "True"}


def test_spinapp_ready_option_marks_every_spinapp_ready_on_write() -> None:
    with KubeEmulator(spinapp_ready=True) as emulator:
        configuration = client.Configuration()
        configuration.host = emulator.url
        with client.ApiClient(configuration) as api:
            custom = client.CustomObjectsApi(api)
            create_executor(custom, "default")
            apply(custom, spinapp("app", "default", replicas=2), "faasops")
            assert get_app(custom, "default", "app")["status"]["readyReplicas"] == 2


# ------------------------------------------------------------------------------------ watch


def test_watch_streams_added_modified_and_deleted_for_matching_labels(custom: client.CustomObjectsApi,
                                                                       namespace: str) -> None:
    start = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["metadata"]["resourceVersion"]
    events: list[tuple[str, str]] = []
    ready = threading.Event()

    def consume() -> None:
        stream = watch.Watch().stream(custom.list_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL,
                                      label_selector="watched=yes", resource_version=start, timeout_seconds=5)
        ready.set()
        for event in stream:
            events.append((event["type"], event["object"]["metadata"]["name"]))
            if len(events) == 3:
                break

    consumer = threading.Thread(target=consume)
    consumer.start()
    ready.wait(5)
    time.sleep(0.2)
    apply(custom, spinapp("seen", namespace, {"watched": "yes"}, replicas=1), "faasops")
    apply(custom, spinapp("ignored", namespace, {"watched": "no"}), "faasops")
    apply(custom, spinapp("seen", namespace, {"watched": "yes"}, replicas=2), "faasops")
    custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "seen")
    consumer.join(10)
    assert events == [("ADDED", "seen"), ("MODIFIED", "seen"), ("DELETED", "seen")]


def test_watch_from_an_old_resource_version_replays_history_and_honours_timeout(
        custom: client.CustomObjectsApi, namespace: str) -> None:
    start = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["metadata"]["resourceVersion"]
    apply(custom, spinapp("a", namespace), "faasops")
    custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "a", {"metadata": {"labels": {"x": "1"}}})
    custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "a", propagation_policy="Foreground")
    began = time.monotonic()
    stream = watch.Watch().stream(custom.list_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL,
                                  resource_version=start, timeout_seconds=1, allow_watch_bookmarks=True)
    kinds = [event["type"] for event in stream]
    assert kinds == ["ADDED", "MODIFIED", "DELETED"]
    assert time.monotonic() - began < 5


def test_a_watch_with_a_selector_sees_objects_enter_and_leave_it(custom: client.CustomObjectsApi,
                                                                 namespace: str) -> None:
    start = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["metadata"]["resourceVersion"]
    apply(custom, spinapp("a", namespace, {"stage": "canary"}), "faasops")
    apply(custom, spinapp("a", namespace, {"stage": "stable"}), "faasops")
    apply(custom, spinapp("a", namespace, {"stage": "canary"}), "faasops")
    stream = watch.Watch().stream(custom.list_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL,
                                  label_selector="stage=canary", resource_version=start, timeout_seconds=1)
    assert [event["type"] for event in stream] == ["ADDED", "DELETED", "ADDED"]


def test_watch_without_a_version_starts_with_the_current_objects(core: client.CoreV1Api, namespace: str) -> None:
    core.create_namespaced_config_map(namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="here")))
    stream = watch.Watch().stream(core.list_namespaced_config_map, namespace, timeout_seconds=1)
    assert [(e["type"], e["object"].metadata.name) for e in stream] == [("ADDED", "here")]


# ------------------------------------------------------------------------------------ CRDs


def test_a_crd_created_through_the_api_becomes_a_served_resource(api_client: client.ApiClient,
                                                                 custom: client.CustomObjectsApi) -> None:
    extensions = client.ApiextensionsV1Api(api_client)
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Cluster",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wdg"]},
                 "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                     "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]},
    }
    extensions.create_custom_resource_definition(crd)
    try:
        resources = client.CustomObjectsApi(api_client).get_api_resources("example.com", "v1")
        widget = next(r for r in resources.resources if r.name == "widgets")
        assert (widget.kind, widget.namespaced, widget.short_names) == ("Widget", False, ["wdg"])
        custom.create_cluster_custom_object("example.com", "v1", "widgets", {
            "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1"}, "size": 3})
        assert custom.get_cluster_custom_object("example.com", "v1", "widgets", "w1")["size"] == 3
    finally:
        extensions.delete_custom_resource_definition("widgets.example.com")
    with pytest.raises(client.ApiException) as exc:
        custom.get_cluster_custom_object("example.com", "v1", "widgets", "w1")
    assert exc.value.status == 404


# ------------------------------------------------------------------------------------ proxy


class _EchoHandler(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def _echo(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.dumps({"method": self.command, "path": self.path, "x-test": self.headers.get("X-Test"),
                           "authorization": self.headers.get("Authorization"),
                           "body": self.rfile.read(length).decode()}).encode()
        self.send_response(202)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Backend", "echo")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _echo


@pytest.fixture()
def echo_backend() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_service_proxy_forwards_the_request_to_the_registered_backend(
        kube_emulator: KubeEmulator, core: client.CoreV1Api, namespace: str, echo_backend: str) -> None:
    core.create_namespaced_service(namespace, client.V1Service(
        metadata=client.V1ObjectMeta(name="fn"), spec=client.V1ServiceSpec(ports=[client.V1ServicePort(port=80)])))
    kube_emulator.set_service_backend(namespace, "fn", echo_backend)
    request = urllib.request.Request(
        f"{kube_emulator.url}/api/v1/namespaces/{namespace}/services/fn:80/proxy/hello/world?x=1",
        data=b'{"ping": true}', method="POST",
        headers={"X-Test": "yes", "Authorization": "Bearer secret", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 202
        assert response.headers["X-Backend"] == "echo"
        echoed = json.loads(response.read())
    assert echoed == {"method": "POST", "path": "/hello/world?x=1", "x-test": "yes", "authorization": None,
                      "body": '{"ping": true}'}


def test_service_proxy_answers_404_without_service_and_503_without_backend(
        emu_request: Any, core: client.CoreV1Api, namespace: str) -> None:
    status, body = emu_request("GET", f"/api/v1/namespaces/{namespace}/services/missing/proxy/")
    assert (status, body["message"]) == (404, 'services "missing" not found')
    core.create_namespaced_service(namespace, client.V1Service(metadata=client.V1ObjectMeta(name="nobackend")))
    status, body = emu_request("GET", f"/api/v1/namespaces/{namespace}/services/nobackend/proxy/")
    assert (status, body["reason"]) == (503, "ServiceUnavailable")


def test_service_proxy_accepts_a_spinapp_in_place_of_its_service(
        kube_emulator: KubeEmulator, custom: client.CustomObjectsApi, namespace: str, echo_backend: str) -> None:
    apply(custom, spinapp("hello", namespace), "faasops")
    status, _ = http(kube_emulator, "POST", "/emulator/v1/service-backends",
                     {"namespace": namespace, "name": "hello", "url": echo_backend})
    assert status == 201
    with urllib.request.urlopen(f"{kube_emulator.url}/api/v1/namespaces/{namespace}/services/hello/proxy/", timeout=10) as r:
        assert json.loads(r.read())["path"] == "/"


# ------------------------------------------------------------------------------------ admin, auth


def test_stats_count_requests_by_verb_and_resource_and_reset() -> None:
    with KubeEmulator() as emulator:
        configuration = client.Configuration()
        configuration.host = emulator.url
        with client.ApiClient(configuration) as api:
            custom = client.CustomObjectsApi(api)
            create_executor(custom, "default")
            emulator.reset_stats()
            apply(custom, spinapp("a", "default"), "faasops")
            apply(custom, spinapp("b", "default"), "faasops")
            custom.list_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, label_selector="x=y")
            with pytest.raises(client.ApiException):
                get_app(custom, "default", "missing")
            stats = emulator.stats()
            assert stats["requests"] == {"get spinapps.core.spinkube.dev": 1,
                                         "list spinapps.core.spinkube.dev": 1,
                                         "patch spinapps.core.spinkube.dev": 2}
            assert stats["total"] == 4
            status, over_http = http(emulator, "GET", "/emulator/v1/stats")
            assert status == 200 and over_http["requests"] == stats["requests"]
            http(emulator, "DELETE", "/emulator/v1/stats")
            assert emulator.stats()["total"] == 0


def test_reset_wipes_objects_and_restores_the_initial_state() -> None:
    with KubeEmulator() as emulator:
        configuration = client.Configuration()
        configuration.host = emulator.url
        with client.ApiClient(configuration) as api:
            core = client.CoreV1Api(api)
            core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="temp")))
            status, _ = http(emulator, "POST", "/emulator/v1/reset")
            assert status == 200
            assert "temp" not in [n.metadata.name for n in core.list_namespace().items]
            assert client.CustomObjectsApi(api).list_namespaced_custom_object(
                GROUP, VERSION, "default", PLURAL)["items"] == []


def test_a_configured_token_is_required() -> None:
    with KubeEmulator(token="s3cret") as emulator:
        status, body = http(emulator, "GET", "/api/v1/namespaces")
        assert (status, body["reason"]) == (401, "Unauthorized")
        status, _ = http(emulator, "GET", "/api/v1/namespaces", headers={"Authorization": "Bearer wrong"})
        assert status == 401
        status, body = http(emulator, "GET", "/api/v1/namespaces", headers={"Authorization": "Bearer s3cret"})
        assert status == 200 and body["kind"] == "NamespaceList"


def test_objects_with_finalizers_wait_for_them_before_disappearing(core: client.CoreV1Api, namespace: str) -> None:
    core.create_namespaced_config_map(namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="held", finalizers=["example.com/hold"])))
    core.delete_namespaced_config_map("held", namespace)
    pending = core.read_namespaced_config_map("held", namespace)
    assert pending.metadata.deletion_timestamp is not None
    core.patch_namespaced_config_map("held", namespace, [{"op": "remove", "path": "/metadata/finalizers"}])
    with pytest.raises(client.ApiException) as exc:
        core.read_namespaced_config_map("held", namespace)
    assert exc.value.status == 404
