# -*- coding: utf-8 -*-
"""A Kubernetes API for the services role's kubernetes backend: kmock's KubernetesEmulator
(PyPI kmock), served over HTTP on a free loopback port from a thread, with a kubeconfig that
points at it. It is not a real cluster: it stores objects and merges patches, nothing
reconciles. FakeController plays the Deployment controller's part the tests need - when the
pod template or the replica count changes it bumps metadata.generation and writes the status a
controller would (or, stuck, a rollout that never completes)."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import threading
import time
import urllib.request

import aiohttp.web
import kmock

WRITE = {'get', 'list', 'watch', 'create', 'update', 'patch', 'delete'}


def json_patch_as_merge(ops):
    """A JSON patch (RFC 6902) of add/replace operations as the merge patch the emulator
    understands (kubernetes.core's k8s_rollback sends one)."""
    merged = {}
    for op in ops:
        if op.get('op') not in ('add', 'replace'):
            raise ValueError('unsupported JSON patch operation %r' % op.get('op'))
        keys = [k.replace('~1', '/').replace('~0', '~') for k in op['path'].lstrip('/').split('/')]
        node = merged
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = op['value']
    return merged


class Kubernetes(kmock.KubernetesEmulator):
    """KubernetesEmulator extended with what kubernetes.core needs and kmock 0.8 lacks: a
    `kind` and `apiVersion` on list responses (the dynamic client reads them), and JSON
    patches, applied as merges (no removal of stale keys)."""

    async def _handle(self, request):
        if request.resource is not None and request.name and isinstance(request.data, list):
            async with self._lock:
                obj = self._objects[(request.resource, request.namespace, request.name)]
                obj.patch(json_patch_as_merge(request.data))
                raw = obj.raw
            return aiohttp.web.json_response(raw)
        return await super()._handle(request)

    async def _serve_list(self, request):
        payload = await super()._serve_list(request)
        info = self.resources[request.resource]
        payload['kind'] = '%sList' % info.kind
        payload['apiVersion'] = '/'.join(p for p in (request.resource.group, request.resource.version) if p)
        return payload


class Emulator(object):
    def __init__(self):
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(20):
            raise RuntimeError('kmock did not start')
        self.dir = tempfile.mkdtemp(prefix='oncall-kmock-')
        self.kubeconfig = os.path.join(self.dir, 'kubeconfig')
        with open(self.kubeconfig, 'w') as f:
            json.dump({'apiVersion': 'v1', 'kind': 'Config', 'current-context': 'kmock',
                       'clusters': [{'name': 'kmock', 'cluster': {'server': self.url}}],
                       'users': [{'name': 'kmock', 'user': {'token': 'kmock-token'}}],
                       'contexts': [{'name': 'kmock', 'context': {'cluster': 'kmock', 'user': 'kmock'}}]}, f)

    def _run(self):
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())

    async def _main(self):
        self._stop = asyncio.Event()
        async with Kubernetes() as k8s, kmock.Server(k8s):
            # Discovery info: without it kubernetes.core does not find kind Deployment.
            k8s.resources['apps/v1/deployments'] = kmock.ResourceInfo(
                kind='Deployment', singular='deployment', namespaced=True, verbs=WRITE,
                subresources={'status', 'scale'})
            k8s.resources['apps/v1/replicasets'] = kmock.ResourceInfo(
                kind='ReplicaSet', singular='replicaset', namespaced=True, verbs=WRITE,
                subresources={'status', 'scale'})
            self.url = str(k8s.url).rstrip('/')
            self._ready.set()
            await self._stop.wait()

    def stop(self):
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _req(self, method, path, body=None):
        req = urllib.request.Request(self.url + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={'Content-Type': 'application/merge-patch+json'})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read().decode())

    def deployment_path(self, ns, name=None):
        return '/apis/apps/v1/namespaces/%s/deployments%s' % (ns, '/' + name if name else '')

    def create_deployment(self, ns, name, replicas=2, image='api:1.0.0'):
        body = {'apiVersion': 'apps/v1', 'kind': 'Deployment',
                'metadata': {'name': name, 'namespace': ns, 'generation': 1},
                'spec': {'replicas': replicas, 'selector': {'matchLabels': {'app': name}},
                         'template': {'metadata': {'labels': {'app': name}, 'annotations': {}},
                                      'spec': {'containers': [{'name': name, 'image': image}]}}},
                'status': {'observedGeneration': 1, 'replicas': replicas, 'updatedReplicas': replicas,
                           'availableReplicas': replicas, 'readyReplicas': replicas}}
        req = urllib.request.Request(self.url + self.deployment_path(ns), method='POST',
                                     data=json.dumps(body).encode(), headers={'Content-Type': 'application/json'})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read().decode())

    def create_replicaset(self, ns, name, template_hash, revision, image):
        """A ReplicaSet as the Deployment controller leaves one per revision (k8s_rollback's history)."""
        body = {'apiVersion': 'apps/v1', 'kind': 'ReplicaSet',
                'metadata': {'name': '%s-%s' % (name, template_hash), 'namespace': ns,
                             'labels': {'app': name, 'pod-template-hash': template_hash},
                             'annotations': {'deployment.kubernetes.io/revision': str(revision)}},
                'spec': {'replicas': 0, 'selector': {'matchLabels': {'app': name}},
                         'template': {'metadata': {'labels': {'app': name, 'pod-template-hash': template_hash}},
                                      'spec': {'containers': [{'name': name, 'image': image}]}}}}
        req = urllib.request.Request(self.url + '/apis/apps/v1/namespaces/%s/replicasets' % ns, method='POST',
                                     data=json.dumps(body).encode(), headers={'Content-Type': 'application/json'})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read().decode())

    def get(self, ns, name):
        return self._req('GET', self.deployment_path(ns, name))

    def patch(self, ns, name, body):
        return self._req('PATCH', self.deployment_path(ns, name), body)


class FakeController(object):
    """Polls one Deployment; when its pod template or replica count changes, acts like the
    Deployment controller: a new generation, then (unless stuck) every replica updated and
    available; stuck (or stuck_image in the pod template) leaves one replica updated and one
    fewer available than wanted."""

    def __init__(self, emulator, ns, name, stuck=False, stuck_image=None):
        self.emu, self.ns, self.name, self.stuck, self.stuck_image = emulator, ns, name, stuck, stuck_image
        self.rollouts = 0
        self._stop = threading.Event()
        self._seen = self._key(emulator.get(ns, name))
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @staticmethod
    def _key(d):
        return json.dumps([d['spec'].get('template'), d['spec'].get('replicas')], sort_keys=True)

    def _run(self):
        while not self._stop.is_set():
            d = self.emu.get(self.ns, self.name)
            if self._key(d) != self._seen:
                gen = int(d['metadata'].get('generation', 1)) + 1
                n = int(d['spec'].get('replicas', 1))
                self.emu.patch(self.ns, self.name, {'metadata': {'generation': gen}})
                time.sleep(0.3)  # the controller takes its time
                status = {'observedGeneration': gen, 'replicas': n, 'updatedReplicas': n,
                          'availableReplicas': n, 'readyReplicas': n}
                images = [c.get('image') for c in d['spec']['template']['spec'].get('containers', [])]
                if self.stuck or (self.stuck_image and self.stuck_image in images):
                    status.update(replicas=n + 1, updatedReplicas=1, availableReplicas=n - 1 if n > 1 else 0)
                self.emu.patch(self.ns, self.name, {'status': status})
                self._seen = self._key(self.emu.get(self.ns, self.name))
                self.rollouts += 1
            time.sleep(0.1)

    def stop(self):
        self._stop.set()
        self._thread.join(5)
