# -*- coding: utf-8 -*-
"""The sample application (lab/app) for the deploy tests: a lab on free ports with the app
under real pm2 (its own PM2_HOME inside the lab's temp directory, never shared), release
artifacts with injected faults, and helpers to read the app's and the queues' state."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request

import pytest

from helpers import Lab, ROOT, free_port, run_module, running

RELEASES = os.path.join(ROOT, 'lab', 'app', 'releases')
PM2 = os.path.join(ROOT, 'lab', 'node', 'node_modules', '.bin', 'pm2')
QUEUES = [('ai-analysis', 'bullmq'), ('notifications', 'bullmq'), ('card-generation', 'bull'),
          ('email', 'bull'), ('app-events', 'bullmq')]
LOCK_KEY = 'oncall:lock:deploy'


class AppLab(Lab):
    """lab/lab.sh with the sample app on a free port; PM2_HOME is $LAB_DIR/pm2."""

    def __init__(self):
        super().__init__()
        self.env['LAB_APP_PORT'] = str(free_port())
        self.artifacts = os.path.join(self.dir, 'artifacts')
        os.makedirs(self.artifacts)

    @property
    def app_port(self):
        return int(self.env['LAB_APP_PORT'])

    @property
    def app_dir(self):
        return os.path.join(self.env['LAB_DIR'], 'app')

    @property
    def pm2_home(self):
        return os.path.join(self.env['LAB_DIR'], 'pm2')

    def get(self, path, timeout=5):
        try:
            with urllib.request.urlopen('http://127.0.0.1:%d%s' % (self.app_port, path), timeout=timeout) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def version(self):
        status, body = self.get('/version')
        assert status == 200, body
        return json.loads(body)['version']

    def live_release(self):
        return os.path.basename(os.readlink(os.path.join(self.app_dir, 'current')))

    def pm2(self, *args):
        proc = subprocess.run([PM2] + list(args), env=dict(self.env, PM2_HOME=self.pm2_home),
                              capture_output=True, text=True, timeout=60, check=False)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    def jlist(self):
        out = self.pm2('jlist')
        return json.loads(out[out.find('['):])

    def restarts(self):
        return sorted((p['pm_id'], p['pm2_env']['restart_time'], p['pm2_env']['status']) for p in self.jlist())

    def wait_version(self, version, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if self.get('/health')[0] == 200 and self.version() == version:
                    return
            except (OSError, AssertionError):
                pass
            time.sleep(0.2)
        raise AssertionError('the app did not answer %s/health as %s' % (self.app_port, version))

    def paused(self):
        """{queue: paused flag}, as oncall.runbooks.redis_queue_info reads it."""
        res = run_module('redis_queue_info', {'login_port': self.redis_port, 'queues': [
            {'name': n, 'flavor': f} for n, f in QUEUES]})
        assert not res.failed, res.result
        return dict((q['name'], q['paused']) for q in res['queues'])

    def pause(self, name, flavor):
        res = run_module('redis_queue', {'login_port': self.redis_port, 'name': name, 'flavor': flavor,
                                         'state': 'paused', 'allow_missing': True})
        assert not res.failed, res.result

    def db_state(self):
        conn = self.pg()
        with conn.cursor() as cur:
            cur.execute('SELECT version FROM schema_migrations ORDER BY version')
            migrations = [r[0] for r in cur.fetchall()]
            cur.execute("SELECT to_regclass('public.app_notes') IS NOT NULL")
            notes = cur.fetchone()[0]
        conn.close()
        return migrations, notes

    def artifact(self, version, fault=None, bad_migration=False, **extra):
        """A release directory built from release 2.0.0 with a fault (see lab/app/server.js)."""
        dest = os.path.join(self.artifacts, version)
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(os.path.join(RELEASES, '2.0.0'), dest, symlinks=False)
        with open(os.path.join(dest, 'release.json'), 'w') as f:
            json.dump(dict({'version': version, 'fault': fault}, **extra), f)
        if bad_migration:
            base = os.path.join(dest, 'migrations', '20261125000000_broken')
            with open(base + '.up.sql', 'w') as f:
                f.write('ALTER TABLE no_such_table ADD COLUMN x int;\n')
            with open(base + '.down.sql', 'w') as f:
                f.write('SELECT 1;\n')
        return dest

    def deploy(self, version, check=False, artifacts=False, playbook='deploy.yml', **extra):
        extra_vars = dict(extra, deploy_version=version) if version else dict(extra)
        if artifacts:
            extra_vars['oncall_app_artifacts'] = self.artifacts
        return self.playbook(playbook, extra_vars=extra_vars, check=check)

    def playbook_async(self, name, extra_vars, session=False):
        """Start a playbook run in the background (a Popen with text stdout); with session, in a
        process group of its own, so that kill() can SIGKILL ansible-playbook and its workers."""
        import json as _json
        from helpers import _env, ansible_bin
        env = dict(_env(), **self.env)
        env['ANSIBLE_STDOUT_CALLBACK'] = 'ansible.builtin.default'
        return subprocess.Popen([ansible_bin('ansible-playbook'), os.path.join('playbooks', name),
                                 '-e', _json.dumps(extra_vars)], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=session)

    @staticmethod
    def kill(proc):
        """SIGKILL a playbook run started with session=True: ansible-playbook and its workers."""
        import signal
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=60)

    def lock_state(self):
        """The deploy lock and the state record beside it, as stored in Redis (dicts or None)."""
        r = self.redis()
        lock, state = r.get(LOCK_KEY), r.get(LOCK_KEY + ':state')
        return (json.loads(lock) if lock else None), (json.loads(state) if state else None)

    def reset(self):
        """Seeded data, release 1.0.0 live and healthy, no lock, no reports."""
        seeded = self.sh('seed')
        assert seeded.returncode == 0, seeded.stdout + seeded.stderr
        conn = self.pg()
        with conn.cursor() as cur:
            cur.execute('DROP TABLE IF EXISTS app_notes')
        conn.close()
        current = os.path.join(self.app_dir, 'current')
        if self.live_release() != '1.0.0':
            os.remove(current)
            os.symlink('releases/1.0.0', current)
        for name in os.listdir(os.path.join(self.app_dir, 'releases')):
            if name != '1.0.0':
                shutil.rmtree(os.path.join(self.app_dir, 'releases', name))
        self.pm2('restart', 'app')
        self.wait_version('1.0.0')
        shutil.rmtree(self.report_dir, ignore_errors=True)
        host_record = os.path.join(self.app_dir, '.oncall-deploy-latest.json')
        if os.path.exists(host_record):
            os.remove(host_record)

    def records(self, kind='deploy'):
        d = self.report_dir
        if not os.path.isdir(d):
            return []
        return [json.load(open(os.path.join(d, n))) for n in sorted(os.listdir(d))
                if n.startswith(kind + '-') and not n.endswith('-latest.json')]


@pytest.fixture(scope='session')
def app_lab_session():
    yield from running(AppLab())


@pytest.fixture()
def app_lab(app_lab_session):
    app_lab_session.reset()
    return app_lab_session


class Pm2Home(object):
    """Its own pm2 daemon (a temporary PM2_HOME) for pm2_process tests."""

    def __init__(self):
        self.home = tempfile.mkdtemp(prefix='oncall-pm2-')

    def pm2(self, *args):
        return subprocess.run([PM2] + list(args), env=dict(os.environ, PM2_HOME=self.home),
                              capture_output=True, text=True, timeout=60, check=False)

    def stop(self):
        self.pm2('kill')
        shutil.rmtree(self.home, ignore_errors=True)
