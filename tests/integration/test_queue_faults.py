# -*- coding: utf-8 -*-
"""redis_queue when Redis dies in the middle of its work (issue 14, "Faults in the middle of
work", item 5): the failure reports the jobs really removed, and the rerun converges.

The Redis here writes an append-only file with fsync on every write (as a production Redis
that must not lose jobs does), so that after redis-server is killed and started again it holds
exactly what it had acknowledged.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import tempfile
import time
import types

import redis

from helpers import ROOT, ModuleRun, _env, ansible_bin, free_port, node, run_module

JOBS = 70000
BATCH = 500
DAY_MS = 86400 * 1000

# Bull's moveToFinished for a completed job, for every waiting job at once: the job leaves
# wait, enters completed scored by its finish time, and its hash gets finishedOn, processedOn
# and returnvalue. (70,000 jobs run by a real worker take minutes on this machine; the jobs
# themselves are made by the real library.)
FINISH_LUA = r"""
local ids = redis.call('LRANGE', KEYS[1], 0, -1)
for _, id in ipairs(ids) do
  redis.call('ZADD', KEYS[2], ARGV[2], id)
  redis.call('HSET', ARGV[1] .. id, 'finishedOn', ARGV[2], 'processedOn', ARGV[2],
             'returnvalue', '{"ok":true}')
end
redis.call('DEL', KEYS[1])
return #ids
"""


class AofRedis(object):
    def __init__(self):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix='oncall-redis-aof-')
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            ['redis-server', '--port', str(self.port), '--bind', '127.0.0.1', '--save', '',
             '--appendonly', 'yes', '--appendfsync', 'always', '--dir', self.dir,
             '--daemonize', 'no'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if self.client().ping():
                    return
            except redis.exceptions.RedisError:
                time.sleep(0.1)
        raise RuntimeError('redis-server did not start on port %d' % self.port)

    def client(self):
        return redis.Redis(port=self.port, decode_responses=True, socket_timeout=30)

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


def start_module(args):
    cmd = [ansible_bin('ansible'), 'localhost', '-i', 'localhost,', '-c', 'local',
           '-m', 'oncall.runbooks.redis_queue', '-a', json.dumps(args)]
    return subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_redis_killed_mid_clean_reports_the_jobs_removed_and_the_rerun_converges():
    server = AofRedis()
    try:
        r = server.client()
        node('qtool.js', 'bull', 'add', '--queue', 'big', '--count', JOBS, port=server.port,
             timeout=600)
        assert r.eval(FINISH_LUA, 2, 'bull:big:wait', 'bull:big:completed', 'bull:big:',
                      int(time.time() * 1000) - 2 * DAY_MS) == JOBS

        args = dict(login_host='127.0.0.1', login_port=server.port, name='big', flavor='bull',
                    batch_size=BATCH, clean=[{'status': 'completed', 'older_than': '1d'}])
        proc = start_module(args)
        deadline = time.time() + 300
        while time.time() < deadline and r.zcard('bull:big:completed') > JOBS - 20000:
            time.sleep(0.005)
        server.kill()
        out, err = proc.communicate(timeout=300)
        res = ModuleRun(types.SimpleNamespace(returncode=proc.returncode, stdout=out, stderr=err))
        assert res.failed, res.result
        match = re.match(r'clean on big/completed failed after (\d+) of 70000 job\(s\) were handled '
                         r'\(0 of 1 action\(s\) complete before it\): cannot reach Redis at '
                         r'127\.0\.0\.1:%d/0' % server.port, res['msg'])
        assert match, res['msg']
        reported = int(match.group(1))
        assert res['actions'][0]['count'] == reported and res['actions'][0]['planned'] == JOBS
        assert res['changed'] is True

        server.start()  # the same data directory: what Redis acknowledged is back
        r = server.client()
        left = r.zcard('bull:big:completed')
        removed = JOBS - left
        # every acknowledged batch is counted; one batch in flight when Redis died may have
        # been applied without its answer reaching the module
        assert 20000 <= reported <= removed <= reported + BATCH, (reported, removed)
        print('redis killed mid-clean: %d removed, %d reported' % (removed, reported))
        # nothing half-removed: every id still in the set has its job, and no job hash is orphaned
        hashes = len(list(r.scan_iter(match='bull:big:[0-9]*', count=5000)))
        assert hashes == left

        rerun = run_module('redis_queue', args)
        assert not rerun.failed, rerun.result
        assert rerun['actions'][0]['count'] == left
        assert r.zcard('bull:big:completed') == 0
        assert list(r.scan_iter(match='bull:big:[0-9]*', count=5000)) == []
        again = run_module('redis_queue', args)
        assert again['changed'] is False and again['plan'] == []
    finally:
        server.stop()
