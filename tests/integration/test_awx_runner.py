# -*- coding: utf-8 -*-
"""Catalog job templates run through ansible-runner (what AWX runs jobs with), against the lab
(real Redis, PostgreSQL 15, pm2 and the sample app; tests/helpers/app.py).

Each job gets a private data directory laid out as AWX lays it out:
  env/extravars   the template's fixed extra vars and the survey answers
  env/envvars     the custom credential types' `env` injectors (awx/catalog.yml), rendered from
                  the credentials' inputs with a sandboxed Jinja environment as AWX renders them,
                  plus the job's environment (the lab's ports, a report directory of its own)
  env/cmdline     `-e @<file>` of the credential types' `extra_vars` injectors (AWX passes them
                  so, in a file of their own)
  env/passwords   the prompts' answers (none here: the lab is reached with the local connection,
                  which prompts for nothing; custom credential types have no prompt injectors)
  inventory/      the lab's inventory (its group_vars), the host naming the project checkout
  project/        a symbolic link to this checkout; the collection resolves through
                  ANSIBLE_COLLECTIONS_PATH as in an execution environment that installed it.
Every job has a report directory of its own, like a fresh execution-environment container: the
rollback job finds no deploy record on the controller and reads the one on the host.
The Redis credential's password belongs to an ACL user made for this module; the database's
is accepted by the lab's loopback trust: both are checked never to appear in a job event or in
an artifact file."""

from __future__ import annotations

import glob
import json
import os
import shutil
import sys
import tempfile

import pytest
import yaml

from helpers.app import app_lab_session  # noqa: F401  pylint: disable=unused-import
from helpers import ROOT, node

ansible_runner = pytest.importorskip('ansible_runner')  # requirements-dev.txt pins it

REDIS_SECRET = 'rUnner-redis-Secret-7d1f0a'
PG_SECRET = 'rUnner-pg-Secret-93be2c'


def catalog():
    with open(os.path.join(ROOT, 'awx', 'catalog.yml')) as fh:
        return yaml.safe_load(fh)


def render(value, inputs):
    from jinja2.sandbox import SandboxedEnvironment
    return SandboxedEnvironment().from_string(value).render(**inputs)


class Jobs(object):
    def __init__(self, lab):
        self.lab = lab
        self.base = tempfile.mkdtemp(prefix='oncall-runner-')
        self.catalog = catalog()
        self.collections = os.path.join(self.base, 'collections')
        os.makedirs(os.path.join(self.collections, 'ansible_collections', 'oncall'))
        os.symlink(ROOT, os.path.join(self.collections, 'ansible_collections', 'oncall', 'runbooks'))
        self.inputs = {
            'redis': {'host': '127.0.0.1', 'port': str(lab.redis_port), 'password': REDIS_SECRET},
            'database': {'host': '127.0.0.1', 'port': str(lab.pg_port), 'user': 'postgres',
                         'password': PG_SECRET, 'db': 'payment_sandbox'},
        }

    def template(self, name):
        return [t for t in self.catalog['job_templates'] if t['name'] == name][0]

    def run(self, name, ident, survey=None, remediate=False, inputs=None):
        """One job of the template `name` (its "- remediate" twin with remediate): the private
        data directory, then ansible_runner.run(); returns (runner, private data dir)."""
        tpl = self.template(name)
        pdd = os.path.join(self.base, ident)
        os.makedirs(os.path.join(pdd, 'env'))
        os.makedirs(os.path.join(pdd, 'inventory'))
        os.symlink(ROOT, os.path.join(pdd, 'project'))
        shutil.copytree(os.path.join(ROOT, 'inventories', 'lab', 'group_vars'),
                        os.path.join(pdd, 'inventory', 'group_vars'))
        with open(os.path.join(pdd, 'inventory', 'hosts.yml'), 'w') as fh:
            yaml.safe_dump({'all': {
                'children': dict((g, {'hosts': {'lab': None}})
                                 for g in ('redis_servers', 'postgres_servers', 'app_servers', 'monitoring_servers')),
                'hosts': {'lab': {'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable,
                                  'oncall_lab_checkout': ROOT, 'oncall_redis_user': 'oncall'}}}}, fh)

        extravars = dict(tpl.get('extra_vars') or {})
        extravars.update(survey or {})
        envvars = {
            'PATH': os.path.dirname(sys.executable) + os.pathsep + os.environ.get('PATH', ''),
            'ANSIBLE_COLLECTIONS_PATH': self.collections,
            'ANSIBLE_NOCOLOR': '1',
            'LAB_DIR': self.lab.env['LAB_DIR'], 'LAB_REDIS_PORT': str(self.lab.redis_port),
            'LAB_PG_PORT': str(self.lab.pg_port), 'LAB_APP_PORT': str(self.lab.app_port),
            'ONCALL_REPORT_DIR': os.path.join(pdd, 'tmp', 'reports'),  # the job's own container
        }
        cred_vars = {}
        types = dict((t['name'], t) for t in self.catalog['credential_types'])
        for key in tpl.get('credentials') or []:
            ctype = types[self.catalog['credentials'][key]['credential_type']]
            values = dict((f['id'], f.get('default', '')) for f in ctype['inputs']['fields'])
            values.update((inputs or {}).get(key, self.inputs[key]))
            for var, value in (ctype['injectors'].get('env') or {}).items():
                envvars[var] = render(value, values)
            for var, value in (ctype['injectors'].get('extra_vars') or {}).items():
                cred_vars[var] = render(value, values)
        cred_file = os.path.join(pdd, 'env', 'credential_extravars.yml')
        for path, data in (('extravars', extravars), ('envvars', envvars), ('passwords', {}),
                           ('credential_extravars.yml', cred_vars)):
            with open(os.path.join(pdd, 'env', path), 'w') as fh:
                yaml.safe_dump(data, fh)
            os.chmod(os.path.join(pdd, 'env', path), 0o600)
        with open(os.path.join(pdd, 'env', 'cmdline'), 'w') as fh:
            fh.write('-e @%s' % cred_file)
        runner = ansible_runner.run(private_data_dir=pdd, playbook=tpl['playbook'], ident=ident, quiet=True,
                                    tags='remediate' if remediate else None)
        return runner, pdd

    def stop(self):
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope='module')
def jobs(app_lab_session):
    lab = app_lab_session
    lab.reset()
    r = lab.redis()
    r.execute_command('ACL', 'SETUSER', 'oncall', 'on', '>' + REDIS_SECRET, '~*', '&*', '+@all')
    j = Jobs(lab)
    yield j
    r.execute_command('ACL', 'DELUSER', 'oncall')
    j.stop()
    lab.reset()


def stats(runner):
    return [e for e in runner.events if e['event'] == 'playbook_on_stats'][-1]['event_data']


def artifact_data(runner):
    return stats(runner).get('artifact_data') or {}


def no_secret_anywhere(runner, pdd):
    """No secret in a job event (as ansible-runner hands them to AWX) nor in any artifact file.
    The one exception is ansible-runner's own `command` file (mode 0600), which records the
    environment the job was started with: there the database credential's PGPASSWORD injector
    is expected, under that name only."""
    for event in runner.events:
        text = json.dumps(event)
        assert REDIS_SECRET not in text and PG_SECRET not in text, event.get('event')
    hits = []
    for path in glob.glob(os.path.join(pdd, 'artifacts', '**'), recursive=True):
        if os.path.isfile(path):
            with open(path, encoding='utf-8', errors='replace') as fh:
                text = fh.read()
            if REDIS_SECRET in text or PG_SECRET in text:
                hits.append(os.path.relpath(path, pdd))
    command = os.path.join('artifacts', runner.config.ident, 'command')
    assert set(hits) <= {command}, hits
    if hits:
        with open(os.path.join(pdd, command)) as fh:
            recorded = json.load(fh)
        assert REDIS_SECRET not in json.dumps(recorded)
        assert [k for k, v in recorded['env'].items() if PG_SECRET in str(v)] == ['PGPASSWORD']
    assert len(glob.glob(os.path.join(pdd, 'artifacts', runner.config.ident, 'job_events', '*.json'))) > 10


def the_report(runner, verdict):
    data = artifact_data(runner)
    assert data['oncall_verdict'] == verdict, data
    assert os.path.isfile(data['oncall_report']) and os.path.isfile(data['oncall_report_json'])
    assert set(data['oncall_summary']) >= {'planned', 'applied', 'findings'}, data['oncall_summary']
    stdout = runner.stdout.read()
    first = open(data['oncall_report']).read().splitlines()[0]
    assert stdout.count(first) == 1, 'the Markdown report is printed once'
    assert '\\n' not in [ln for ln in stdout.splitlines() if first in ln][0], 'printed as lines, not escaped'
    assert 'VERDICT %s - report %s' % (verdict.upper(), data['oncall_report']) in stdout
    with open(data['oncall_report_json']) as fh:
        assert json.load(fh)['verdict'] == verdict
    return data


def test_weekly_window_with_the_database_down_is_a_critical_failed_job(jobs):
    r = jobs.lab.redis()
    dead = dict(jobs.inputs['database'], port='9')  # nothing listens there
    runner, pdd = jobs.run('Weekly maintenance', 'weekly', inputs={'database': dead})
    assert runner.status == 'failed' and runner.rc != 0
    data = the_report(runner, 'critical')
    with open(data['oncall_report_json']) as fh:
        report = json.load(fh)
    assert any(f['verdict'] == 'critical' for f in report['findings'])
    assert data['oncall_summary']['findings']['critical'] >= 1
    # the queue part ran (as the credential's Redis ACL user: the default user has no password
    # here, and the inventory names the user the credential's password belongs to)
    assert any(e['event'] == 'runner_on_ok' and 'queue' in e['event_data'].get('task', '').lower()
               for e in runner.events)
    assert r.ping()
    no_secret_anywhere(runner, pdd)


def test_runbook_remediation_job_retries_the_failed_jobs(jobs):
    r = jobs.lab.redis()
    node('qtool.js', 'bull', 'make-failed', '--queue', 'email', '--count', 12, port=jobs.lab.redis_port)
    assert r.zcard('bull:email:failed') >= 12  # real failed Bull jobs: a failure ratio past its warning
    runner, pdd = jobs.run('Runbook - queue backlog', 'backlog', remediate=True,
                           survey={'queue_backlog_remove_stuck': 'false', 'queue_backlog_clear_stale_confirm': 'false',
                                   'queue_backlog_prioritize': 'false'})
    data = artifact_data(runner)
    assert runner.rc == (2 if data['oncall_verdict'] == 'critical' else 0), runner.stdout.read()[-3000:]
    assert runner.status == ('failed' if runner.rc else 'successful')
    assert r.zcard('bull:email:failed') == 0  # retried by the remediation, as the job's user
    changed = [e for e in runner.events if e['event'] == 'runner_on_ok' and e['event_data']['res'].get('changed')]
    assert changed, 'the remediation changed something'
    assert data['oncall_summary']['applied'] >= 1, data
    the_report(runner, data['oncall_verdict'])
    no_secret_anywhere(runner, pdd)


def test_deploy_then_rollback_jobs_in_fresh_environments(jobs):
    lab = jobs.lab
    runner, pdd = jobs.run('Deploy', 'deploy', survey={'deploy_version': '2.0.0'})
    assert runner.status == 'successful' and runner.rc == 0, runner.stdout.read()[-4000:]
    assert lab.version() == '2.0.0' and lab.live_release() == '2.0.0'
    no_secret_anywhere(runner, pdd)

    runner, pdd = jobs.run('Rollback', 'rollback')
    out = runner.stdout.read()
    assert runner.status == 'successful' and runner.rc == 0, out[-4000:]
    assert not os.path.exists(os.path.join(jobs.base, 'rollback', 'tmp', 'reports', 'deploy-lab-latest.json'))
    assert 'record from lab:%s/.oncall-deploy-latest.json' % lab.app_dir in ' '.join(out.split()), out[-3000:]
    assert lab.version() == '1.0.0' and lab.live_release() == '1.0.0'
    migrations, notes = lab.db_state()
    assert '20261124000000' not in migrations and not notes  # the inventory's migration rollback ran
    no_secret_anywhere(runner, pdd)
