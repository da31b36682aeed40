# -*- coding: utf-8 -*-
"""A real Redis Cluster on loopback: six `redis-server --cluster-enabled yes` on free ports,
joined by `redis-cli --cluster create ... --cluster-replicas 1 --cluster-yes`, ready once every
node reports cluster_state:ok. Three primaries, each with one replica."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time


def _lab_free_port():
    """lab/free_port.py's free_port (the benches import this file without pytest)."""
    import importlib.util
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), 'lab', 'free_port.py')
    spec = importlib.util.spec_from_file_location('oncall_lab_free_port', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.free_port


free_port = _lab_free_port()


def _free_ports(n, exclude=()):
    """n distinct ports, each with its cluster bus port (port + 10000) free too, all outside the
    ephemeral range (lab/free_port.py), none of them or their bus ports in exclude."""
    ports, taken = [], set(exclude)
    while len(ports) < n:
        port = free_port(span=10000)
        if not {port, port + 10000, port - 10000} & taken:
            ports.append(port)
            taken.update((port, port + 10000))
    return ports


def answered_by(proc, port, password=None, timeout=10):
    """Whether the redis-server process proc runs and is the one answering port (INFO
    process_id): a port found free can be taken by another worker's server before proc binds it,
    and then proc exits and a stranger answers."""
    import redis
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        try:
            info = redis.Redis(port=port, password=password, socket_timeout=1).info('server')
            return info.get('process_id') == proc.pid
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            if isinstance(exc, redis.AuthenticationError):
                return False  # another server, with another password
            time.sleep(0.05)  # not listening yet
        except redis.RedisError:
            return False  # another server that refuses this AUTH or INFO
    return False


class RedisCluster(object):
    def __init__(self, nodes=6, timeout=60):
        self.dir = tempfile.mkdtemp(prefix='oncall-cluster-')
        self.procs, self.ports = {}, []
        self.ports = self._start_nodes(nodes)
        create = subprocess.run(
            ['redis-cli', '--cluster', 'create'] + ['127.0.0.1:%d' % p for p in self.ports]
            + ['--cluster-replicas', '1', '--cluster-yes'],
            capture_output=True, text=True, timeout=120, check=False)
        if create.returncode:
            self.stop()
            raise RuntimeError('redis-cli --cluster create failed: %s %s' % (create.stdout, create.stderr))
        self.wait_ok(timeout)

    def _start_nodes(self, count, attempts=5):
        """Start `count` nodes on free ports and make sure each port is answered by the node
        started for it: a port found free can be taken by another test process (another
        pytest worker's server) before redis-server binds it; that node then exits and
        `--cluster create` would talk to a stranger ('is not configured as a cluster node')."""
        ports = _free_ports(count)
        for port in ports:
            self.start_node(port)
        for _attempt in range(attempts):
            lost = [p for p in ports if not answered_by(self.procs[p], p)]
            if not lost:
                return ports
            for port in lost:
                self.stop_node(port)
                ports.remove(port)
            fresh = _free_ports(len(lost), exclude=ports + lost)
            for port in fresh:
                self.start_node(port)
            ports.extend(fresh)
        self.ports = ports
        self.stop()
        raise RuntimeError('could not start %d cluster nodes on ports of their own' % count)

    def start_node(self, port):
        node_dir = os.path.join(self.dir, str(port))
        os.makedirs(node_dir, exist_ok=True)
        self.procs[port] = subprocess.Popen(
            ['redis-server', '--port', str(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes',
             '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000',
             '--save', '', '--appendonly', 'no', '--dir', node_dir, '--daemonize', 'no'],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def restart_command(self):
        """A command template ({port}) that starts a stopped node again, daemonized, as an
        operator's `systemctl restart` would; stop() stops those through their pid files."""
        return ("redis-server --port {port} --bind 127.0.0.1 --cluster-enabled yes "
                "--cluster-config-file nodes.conf --cluster-node-timeout 2000 --save '' "
                "--appendonly no --dir %s/{port} --daemonize yes --pidfile %s/{port}/redis.pid"
                % (self.dir, self.dir))

    def stop_node(self, port):
        proc = self.procs.pop(port, None)
        if proc:
            proc.terminate()
            proc.wait(10)

    def node(self, port):
        import redis
        return redis.Redis(port=port, decode_responses=True)

    def wait_ok(self, timeout=60, ports=None):
        """Until every (running) node says cluster_state:ok and knows every slot."""
        deadline = time.time() + timeout
        ports = ports or list(self.procs)
        while time.time() < deadline:
            try:
                infos = [self.node(p).cluster('info') for p in ports]
                if all(i.get('cluster_state') == 'ok' and int(i.get('cluster_slots_ok', 0)) == 16384
                       for i in infos):
                    # and every node agrees on the replicas (they are announced after the slots)
                    replicas = [sum(1 for r, _m in self.roles(p).values() if r == 'replica')
                                for p in ports]
                    if all(n == len(self.procs) // 2 for n in replicas) and self.replicas_in_sync(ports):
                        return
            except Exception:  # pylint: disable=broad-except
                pass
            time.sleep(0.2)
        raise RuntimeError('the cluster did not reach cluster_state:ok in %ds' % timeout)

    def replicas_in_sync(self, ports=None):
        """Every running replica connected to its primary, no full sync running."""
        for port in ports or list(self.procs):
            repl = self.node(port).info('replication')
            linked = repl.get('master_link_status') == 'up' and not repl.get('master_sync_in_progress')
            if repl.get('role') == 'slave' and not linked:
                return False
        return True

    def roles(self, port=None):
        """{port: (role, primary_port or None)} as CLUSTER NODES of one live node says."""
        port = port or next(iter(self.procs))
        text = self.node(port).execute_command('CLUSTER', 'NODES')
        out, ids, lines = {}, {}, [ln for ln in text.splitlines() if ln.strip()]
        for line in lines:
            parts = line.split()
            ids[parts[0]] = int(parts[1].split('@')[0].rsplit(':', 1)[1])
        for line in lines:
            parts = line.split()
            p = int(parts[1].split('@')[0].rsplit(':', 1)[1])
            role = 'primary' if 'master' in parts[2] else 'replica'
            out[p] = (role, ids.get(parts[3]) if role == 'replica' else None)
        return out

    def primaries(self):
        return sorted(p for p, (role, _m) in self.roles().items() if role == 'primary')

    def client(self):
        """A cluster-aware client (redis-py RedisCluster) to fill and check the data."""
        from redis.cluster import RedisCluster as RC
        return RC(host='127.0.0.1', port=self.ports[0], decode_responses=True)

    def stop(self):
        for port in list(self.procs):
            self.stop_node(port)
        for port in self.ports:  # nodes restarted daemonized by restart_command()
            pidfile = os.path.join(self.dir, str(port), 'redis.pid')
            if os.path.exists(pidfile):
                with open(pidfile) as fh:
                    pid = int(fh.read().strip() or 0)
                if pid:
                    try:
                        os.kill(pid, 15)
                    except OSError:
                        pass
        shutil.rmtree(self.dir, ignore_errors=True)


try:
    import pytest

    @pytest.fixture(scope='module')
    def redis_cluster():
        """A six-node Redis Cluster (three primaries, three replicas) for the test module."""
        cluster = RedisCluster()
        yield cluster
        cluster.stop()
except ImportError:  # pragma: no cover - the bench scripts import the harness without pytest
    pass
